//! `NovaCompute` (OCF, provider `openstack`, legacy): runs nova-compute itself behind the same
//! evacuation gate as `nova-compute-wait` (REFERENCE.md §7; still used by the SUSE recipe).
//!
//! The gate is `nova-compute-wait`'s ([`iha_agent_nova_compute_wait::gate`]); [`process`] runs
//! nova-compute as a systemd unit or as a command of its own; the handlers glue them together.

use iha_agent_nova_compute_wait::{EVACUATION_DELAY_LONG, EVACUATION_TIMEOUT_PARAM, MONITOR_NOTE, NOVA_CONF_PARAM, UNFORCE_NOTE};
use iha_meta::common::OCF_OPENSTACK;
use iha_meta::{Action, Agent, ExitStatus, Param, Protocol, Type};

mod handlers;
pub mod process;
pub use handlers::NovaCompute;

static OWN: &[Param] = &[
    Param {
        ty: Type::Integer,
        default: Some("120"),
        longdesc: EVACUATION_DELAY_LONG,
        ..Param::new("evacuation_delay", "Delay to allow evacuations time to complete")
    },
    NOVA_CONF_PARAM,
    EVACUATION_TIMEOUT_PARAM,
    Param {
        default: Some(""),
        longdesc: "systemd unit that runs nova-compute (systemctl start, stop, is-active). Empty: \
the first of openstack-nova-compute.service and nova-compute.service that systemd knows. \
Ignored when command is set.",
        ..Param::new("systemd_unit", "systemd unit of nova-compute")
    },
    Param {
        default: Some(""),
        longdesc: "Run nova-compute directly instead of through systemd: the program and its \
arguments, split into words like a shell would (quotes and backslashes) but without a shell, \
e.g. \"/usr/bin/nova-compute --config-file /etc/nova/nova.conf\". It runs as user, in a session \
of its own, with a clean environment; its pid goes to pidfile; stop sends SIGTERM to its process \
group, then SIGKILL when it has not exited in time.",
        ..Param::new("command", "nova-compute command line (instead of systemd)")
    },
    Param {
        default: Some("nova"),
        longdesc: "User that command runs as, with its groups (e.g. libvirt). Empty: the \
agent's own user (root).",
        ..Param::new("user", "User of the nova-compute command")
    },
    Param {
        default: Some(""),
        longdesc: "Where the pid of the nova-compute command is recorded (with its start time, \
so that a recycled pid is never mistaken for it). Empty: a file in the resource-agents state \
directory (HA_RSCTMP, on tmpfs).",
        ..Param::new("pidfile", "pid file of the nova-compute command")
    },
];

const PROCESS_NOTE: &str = "Start: if nova-compute already runs, nothing is done. Otherwise the \
gate of nova-compute-wait is passed (a never-fenced host passes at once; a fenced one once its \
evacuation has finished), nova-compute is started, forced_down is cleared as soon as Nova \
accepts it, and start returns once Nova reports the service up (bounded by the start timeout; \
when Nova cannot be reached at all, once the process has kept running for a while). Stop: \
systemctl stop, or SIGTERM to the command's process group, then SIGKILL shortly before the stop \
timeout; processes are never looked up by name. Monitor: 7 when the process or unit is not \
running, then as nova-compute-wait.";

/// The description of `NovaCompute`.
pub static SPEC: Agent = Agent {
    name: "NovaCompute",
    protocol: Protocol::Ocf,
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "OpenStack Nova Compute Server",
    longdesc: "OpenStack Nova Compute Server: starts nova-compute on this node once any \
evacuation of the node's instances has finished, stops it, and monitors it, as a systemd unit \
or as a command of its own.",
    vendor_url: "",
    params: &[OCF_OPENSTACK, OWN],
    actions: &[
        Action::timed("start", 600, "Wait until this host's evacuation is finished, then start nova-compute and wait until Nova reports it up."),
        Action::timed("stop", 300, "Stop nova-compute and wait until it is gone."),
        Action { interval: Some(10), depth: Some(0), ..Action::timed("monitor", 20, "7 when nova-compute is not running or an evacuation of this host is requested; otherwise 0, logging Nova's view of the service.") },
        Action::timed("validate-all", 20, "Check the parameters (6) and this node (5: a file, program, unit or user missing here, 2: this node cannot be named in Nova)."),
        Action::timed("meta-data", 5, "Print the agent's metadata."),
        Action { advertised: false, ..Action::new("notify", "Nothing to do.") },
        Action { advertised: false, ..Action::new("usage", "Print usage.") },
    ],
    default_action: "",
    man_section: 7,
    exit_statuses: &[
        ExitStatus { code: 0, meaning: "Success; monitor: running." },
        ExitStatus { code: 1, meaning: "Generic failure (start: the evacuation did not finish, or nova-compute did not come up, in time)." },
        ExitStatus { code: 2, meaning: "This node cannot be named in Nova unambiguously." },
        ExitStatus { code: 3, meaning: "Unimplemented action." },
        ExitStatus { code: 4, meaning: "A file of this node cannot be read or written." },
        ExitStatus { code: 5, meaning: "A file, program, systemd unit or user is missing on this node." },
        ExitStatus { code: 6, meaning: "The configuration is invalid." },
        ExitStatus { code: 7, meaning: "Monitor: not running (or evacuation requested)." },
    ],
    notes: &[("OPERATION", PROCESS_NOTE), ("MONITOR", MONITOR_NOTE), ("UN-FORCING AND NOVA-COMPUTE", UNFORCE_NOTE)],
};
