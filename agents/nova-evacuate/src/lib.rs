//! `NovaEvacuate` (OCF, provider `openstack`): evacuates every compute host marked for
//! evacuation.
//!
//! One primitive on a controller. Every monitor reads the `evacuate` attribute of all hosts,
//! confirms each marked host is fenced, evacuates its instances in parallel, tracks them until
//! they run elsewhere, and marks the host done so unfencing can proceed (REFERENCE.md §5).

use iha_meta::common::OCF_OPENSTACK;
use iha_meta::{Action, Agent, ExitStatus, Param, Protocol, Type};

mod handlers;
pub use handlers::{NovaEvacuate, monitor_with};

static OWN: &[Param] = &[
    Param {
        ty: Type::Integer,
        default: Some("0"),
        longdesc: "Allows delaying the nova evacuate API call, e.g. to give a storage array time to \
clean up eventual locks/leases. Applied once per host when its evacuation starts, in that \
host's own thread, without holding up other hosts.",
        ..Param::new("evacuate_delay", "Nova evacuate delay")
    },
    Param {
        ty: Type::Boolean,
        default: Some("1"),
        longdesc: "Select instances by the evacuable markers (see evacuable_tag); 0 evacuates every \
instance of the host except those whose owner opted out.",
        ..Param::new("instance_filtering", "Evacuate only evacuable instances")
    },
    Param {
        ty: Type::Second,
        default: Some("120"),
        longdesc: "An in-progress marker (<node>@<time>) of another node that has not been refreshed \
for this long is taken over. The node working on a host refreshes its marker every few seconds \
and at the end of every monitor, so this bounds how long a dead controller can hold a host \
(the reference used a fixed 60 s, however long the evacuation really took). Keep it above \
the monitor interval.",
        ..Param::new("takeover_after", "Take over a stale evacuation after")
    },
    Param {
        ty: Type::Boolean,
        default: Some("1"),
        longdesc: "When instances cannot be evacuated after all attempts, write them into the \
nova-compute service's disabled_reason (as well as the log) before marking the host done, so \
the failure shows in 'openstack compute service list --long' until the host is unfenced \
(enabling the service clears the reason).",
        ..Param::new("record_failures", "Record failed instances in Nova")
    },
];

const MONITOR_NOTE: &str = "Every monitor reads the evacuate attribute of all hosts. A host marked \
yes is evacuated once Nova reports its nova-compute forced down (or down and disabled) and, where \
Pacemaker's fencing history can be read, its last fencing operation is a successful off or \
reboot (fence_check=nova relies on Nova alone); otherwise it stays yes and is looked at again at \
the next monitor. Hosts are evacuated concurrently, each in its own thread, sharing the \
concurrency limit. The node working on a host writes <node>@<time> and refreshes it every few \
seconds; a host is marked no only when every instance is settled (running on another host, \
skipped by the selection, or given up), which is what unfencing waits for. A host not settled \
when the monitor's timeout approaches keeps the marker and the next monitor continues from \
Nova's state, without evacuating anything twice. The monitor returns 0 while the resource runs, \
also when Nova or Keystone cannot be reached (logged at error level): a restart cannot fix \
Nova, and failed monitors would eventually ban the resource from every controller.";

const FAILED_NOTE: &str = "An instance Nova cannot evacuate (paused, suspended, shelved, a \
task in progress) or that still fails after evacuation_attempts is given up: logged at error \
level with Nova's reason, listed in the host's one-line JSON summary (event host-evacuation), \
and, with record_failures=1, written into the nova-compute service's disabled reason (shown by \
openstack compute service list --long until the host is unfenced). The host is then marked no \
so it can be unfenced. To retry after fixing the instance: attrd_updater -p -n evacuate -N \
<host> -U yes.";

const STORM_NOTE: &str = "When more than storm_max_share percent of the nova-compute hosts \
(default 50), or more than storm_max_hosts hosts (default: no limit), are failed at once (down, \
forced down, or marked for evacuation, counting hosts already being evacuated), hosts still \
marked yes are held and every monitor logs why at error level; hosts already in progress \
continue. To evacuate anyway during a real mass failure: pcs resource update <resource> \
storm_max_share=100 storm_max_hosts=0; it takes effect at the next monitor. Pacemaker passes a \
changed parameter only when it restarts the resource, and during a storm that restart waits for \
the held nodes' unfencing, which waits for these evacuations; so before holding, every monitor \
reads both limits from the CIB (crm_resource --get-parameter) and uses those. If the CIB cannot \
be read, the hold stands and the log says why. Set the limits back afterwards.";

/// The description of `NovaEvacuate`.
pub static SPEC: Agent = Agent {
    name: "NovaEvacuate",
    protocol: Protocol::Ocf,
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Evacuator for OpenStack Nova Compute Server",
    longdesc: "Facility for tracking a list of compute nodes and reliably evacuating the ones \
that fence_compute has flagged: each monitor finds hosts whose evacuate attribute is set, checks \
that they are fenced, evacuates their evacuable instances in parallel, follows every instance \
until it runs on another host, and marks the host done so that it can be unfenced.",
    vendor_url: "",
    params: &[OCF_OPENSTACK, OWN, iha_agent_fence_evacuate::shared::ENGINE_PARAMS],
    actions: &[
        Action::timed("start", 20, "Validate the configuration and mark the resource started (no evacuation work, so the start timeout can stay low)."),
        Action::timed("stop", 20, "Mark the resource stopped."),
        Action { interval: Some(10), depth: Some(0), ..Action::timed("monitor", 600, "Evacuate every marked host; 7 when stopped.") },
        Action::timed("validate-all", 20, "Check the parameters."),
        Action::timed("meta-data", 5, "Print the agent's metadata."),
        Action { advertised: false, ..Action::new("usage", "Print usage.") },
    ],
    default_action: "",
    man_section: 7,
    exit_statuses: &[
        ExitStatus { code: 0, meaning: "Success; monitor: running." },
        ExitStatus { code: 1, meaning: "Generic failure." },
        ExitStatus { code: 3, meaning: "Unimplemented action." },
        ExitStatus { code: 5, meaning: "A required program is missing." },
        ExitStatus { code: 6, meaning: "The configuration is invalid." },
        ExitStatus { code: 7, meaning: "Monitor: not running." },
    ],
    notes: &[("MONITOR", MONITOR_NOTE), ("INSTANCES THAT CANNOT BE EVACUATED", FAILED_NOTE), ("STORM GUARD", STORM_NOTE)],
};
