//! `nova-compute-wait` (OCF, provider `openstack`, cloned on compute nodes): keeps nova-compute
//! from starting on a recovered host until the evacuation of its instances has finished, and
//! lets it start at once on a host that was never fenced (REFERENCE.md §6).
//!
//! The gate logic lives in [`gate`] (shared with `NovaCompute`, which depends on this crate);
//! the handlers only glue it to the OCF runtime, Pacemaker's tools and the Nova client.

use iha_meta::common::OCF_OPENSTACK;
use iha_meta::{Action, Agent, ExitStatus, Param, Protocol, Type};

pub mod gate;
mod handlers;
pub use handlers::NovaComputeWait;

/// `evacuation_delay`, as both compute-node agents define it now.
pub const EVACUATION_DELAY_LONG: &str = "How long to wait for nova to finish evacuating \
instances elsewhere before starting nova-compute. Only used when the agent detects evacuations \
might be in progress: once the host's evacuate attribute is settled (no, empty or absent), the \
agent asks Nova for evacuations from this host that are still rebuilding (accepted, \
pre-migrating, migrating...) and pauses while there are any, for at most this many seconds, \
never past the start timeout. No evacuation in progress means no pause (the reference agent \
slept this long on every start once the host had ever been fenced). 0 disables the check.";

/// `nova_conf`, shared by both compute-node agents.
pub const NOVA_CONF_PARAM: Param = Param {
    default: Some(gate::DEFAULT_NOVA_CONF),
    longdesc: "nova.conf of this compute node. Its [DEFAULT] host (and that of the drop-in \
files <nova_conf>.d/*.conf, the last one winning) is the name of this node in Nova, the same \
name fence_compute marks the node with; without one, the host name is used, with domain \
appended to a short name, and matched against Nova's nova-compute services the way \
fence_compute matches its target. A missing default file is normal (nova-compute in a \
container); a missing file given explicitly is an error of this node (exit 5).",
    ..Param::new("nova_conf", "nova.conf that names this node in Nova")
};

/// `evacuation_timeout`, shared by both compute-node agents.
pub const EVACUATION_TIMEOUT_PARAM: Param = Param {
    ty: Type::Integer,
    default: Some("0"),
    longdesc: "Longest time start waits for the evacuation of this host to finish, in seconds; \
start then fails (nova-compute stays stopped) and Pacemaker retries it. 0: until the start \
timeout.",
    ..Param::new("evacuation_timeout", "Longest wait for the evacuation to finish")
};

static OWN: &[Param] = &[
    Param {
        ty: Type::Integer,
        default: Some("120"),
        longdesc: EVACUATION_DELAY_LONG,
        ..Param::new("evacuation_delay", "Delay to allow evacuations time to complete")
    },
    NOVA_CONF_PARAM,
    EVACUATION_TIMEOUT_PARAM,
];

/// The man page's account of the monitor and of un-forcing (shared with NovaCompute).
pub const MONITOR_NOTE: &str = "Monitor: 7 when the gate is closed (after stop, or after a \
reboot: the state file lives on tmpfs). 7 with a reason also when an evacuation of this host is \
requested while the gate is open (evacuate is yes or in progress): Pacemaker then stops the gate \
and what is ordered after it (nova-compute), and the next start waits for the evacuation. \
Otherwise 0, whatever Nova says: the service being down, disabled, forced down by someone else, \
not registered yet, or Nova being unreachable are logged when they change, never returned as \
failures, because a failed monitor restarts nova-compute on every compute node at each \
control-plane hiccup and a restart cannot fix Nova. Probes only look at the state file, so they \
are never fatal, with or without nova.conf.";

/// How un-forcing is ordered around the start of nova-compute (shared with NovaCompute).
pub const UNFORCE_NOTE: &str = "Nova refuses to clear forced_down while `done` evacuation \
records of the host remain, and only a nova-compute start on the host turns them `completed`. \
Start therefore enables the service (when fencing disabled it) and tries to clear forced_down \
once; when Nova refuses, start succeeds anyway (the evacuation is settled, which is what the \
gate guards) and every monitor retries until Nova accepts, which it does once nova-compute has \
started. fence_compute on (unfencing) does the same. No systemd drop-in, no password in any \
file: the reference wrote one, world-readable (O23). Without OpenStack credentials (the reference documents them as not in use) the gate works on the evacuate attribute alone: the node is named by nova.conf or the host name rule, start neither pauses for rebuilds nor touches the service (fence_compute on restores it), and the monitor only watches the attribute.";

/// The description of `nova-compute-wait`.
pub static SPEC: Agent = Agent {
    name: "nova-compute-wait",
    protocol: Protocol::Ocf,
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "OpenStack Nova Compute Server",
    longdesc: "Gate for OpenStack Nova Compute Server: on a compute node that comes back from \
fencing, start waits until the evacuation of the node's instances has finished and Nova accepts \
the service back; on a node that was never fenced it returns at once. Order the nova-compute \
service after it.",
    vendor_url: "",
    params: &[OCF_OPENSTACK, OWN],
    actions: &[
        Action::timed("start", 600, "Wait until this host's evacuation is finished, then make sure its nova-compute service is enabled and, once Nova allows it, no longer forced down."),
        Action::timed("stop", 300, "Close the gate."),
        Action { interval: Some(10), depth: Some(0), ..Action::timed("monitor", 20, "7 when the gate is closed or an evacuation of this host is requested; otherwise 0, logging Nova's view of the service.") },
        Action::timed("validate-all", 20, "Check the parameters (6) and this node (5: a file or program missing here, 2: this node cannot be named in Nova)."),
        Action::timed("meta-data", 5, "Print the agent's metadata."),
        Action { advertised: false, ..Action::new("notify", "Nothing to do.") },
        Action { advertised: false, ..Action::new("usage", "Print usage.") },
    ],
    default_action: "",
    man_section: 7,
    exit_statuses: &[
        ExitStatus { code: 0, meaning: "Success; monitor: running." },
        ExitStatus { code: 1, meaning: "Generic failure (start: the evacuation did not finish in time)." },
        ExitStatus { code: 2, meaning: "This node cannot be named in Nova unambiguously." },
        ExitStatus { code: 3, meaning: "Unimplemented action." },
        ExitStatus { code: 4, meaning: "A file of this node cannot be read or written." },
        ExitStatus { code: 5, meaning: "A file or program is missing on this node." },
        ExitStatus { code: 6, meaning: "The configuration is invalid." },
        ExitStatus { code: 7, meaning: "Monitor: not running (gate closed, or evacuation requested)." },
    ],
    notes: &[("MONITOR", MONITOR_NOTE), ("UN-FORCING AND NOVA-COMPUTE", UNFORCE_NOTE)],
};
