//! `NovaCompute` (OCF, provider `openstack`, legacy): runs nova-compute itself behind the same
//! evacuation gate as `nova-compute-wait` (REFERENCE.md §7; still used by the SUSE recipe).

use iha_meta::common::OCF_OPENSTACK;
use iha_meta::{Action, Agent, ExitStatus, Param, Protocol, Type};

mod handlers;
pub use handlers::NovaCompute;

static OWN: &[Param] = &[Param {
    ty: Type::Integer,
    default: Some("120"),
    longdesc: "How long to wait for nova to finish evacuating instances elsewhere before \
starting nova-compute. Only used when the agent detects evacuations might be in progress.",
    ..Param::new("evacuation_delay", "Delay to allow evacuations time to complete")
}];

/// The description of `NovaCompute`.
pub static SPEC: Agent = Agent {
    name: "NovaCompute",
    protocol: Protocol::Ocf,
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "OpenStack Nova Compute Server",
    longdesc: "OpenStack Nova Compute Server: starts nova-compute on this node once any \
evacuation of the node's instances has finished, stops it, and monitors it.",
    vendor_url: "",
    params: &[OCF_OPENSTACK, OWN],
    actions: &[
        Action::timed("start", 600, "Wait until this host's evacuation is finished, then start nova-compute and wait until Nova reports it up."),
        Action::timed("stop", 300, "Stop nova-compute and wait until it is gone."),
        Action { interval: Some(10), depth: Some(0), ..Action::timed("monitor", 20, "Check the nova-compute process and Nova's view of it.") },
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
