//! `nova-compute-wait` (OCF, provider `openstack`, cloned on compute nodes): keeps nova-compute
//! from starting on a recovered host until the evacuation of its instances has finished, and
//! lets it start at once on a host that was never fenced (REFERENCE.md §6).

use iha_meta::common::OCF_OPENSTACK;
use iha_meta::{Action, Agent, ExitStatus, Param, Protocol, Type};

mod handlers;
pub use handlers::NovaComputeWait;

static OWN: &[Param] = &[Param {
    ty: Type::Integer,
    default: Some("120"),
    longdesc: "How long to wait for nova to finish evacuating instances elsewhere before \
starting nova-compute. Only used when the agent detects evacuations might be in progress.\n\n\
You may need to increase the start timeout when increasing this value.",
    ..Param::new("evacuation_delay", "Delay to allow evacuations time to complete")
}];

/// The description of `nova-compute-wait`.
pub static SPEC: Agent = Agent {
    name: "nova-compute-wait",
    protocol: Protocol::Ocf,
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "OpenStack Nova Compute Server",
    longdesc: "Gate for OpenStack Nova Compute Server: on a compute node that comes back from \
fencing, start waits until the evacuation of the node's instances has finished and Nova accepts \
the service back; on a node that was never fenced it returns at once.",
    vendor_url: "",
    params: &[OCF_OPENSTACK, OWN],
    actions: &[
        Action::timed("start", 600, "Wait until this host's evacuation is finished, then make sure its nova-compute service is un-forced and enabled."),
        Action::timed("stop", 300, "Mark the gate closed."),
        Action { interval: Some(10), depth: Some(0), ..Action::timed("monitor", 20, "Report this host's nova-compute service as Nova sees it.") },
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
        ExitStatus { code: 6, meaning: "The configuration is invalid." },
        ExitStatus { code: 7, meaning: "Monitor: not running." },
    ],
    notes: &[],
};
