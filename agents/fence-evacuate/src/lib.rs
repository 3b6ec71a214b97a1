//! `fence_evacuate`: evacuates the instances of a fenced compute host.
//!
//! Usable alone as a fencing-topology level (after the power device of the same level) and by
//! hand; our `NovaEvacuate` calls the same engine directly instead of running this agent. Not a
//! fabric agent: default action `reboot`, `on` not automatic (REFERENCE.md §4).

use iha_meta::common::{FENCE_OPENSTACK, FENCE_STANDARD};
use iha_meta::{Action, Agent, ExitStatus, Getopt, Param, Protocol};

mod handlers;
pub mod shared;
pub use handlers::FenceEvacuate;

static OWN: &[Param] = &[Param {
    getopt: Some(Getopt::with_short('o', "action", "action")),
    default: Some("reboot"),
    required: true,
    order: 1,
    ..Param::new("action", "Fencing action")
}];

const OFF_NOTE: &str = "off and reboot evacuate the host's evacuable instances: only when Nova \
reports its nova-compute forced down (or down and disabled) and, when run by pacemaker-fenced, \
Pacemaker's fencing history of the node confirms it. Evacuations are issued concurrency at a \
time in priority order and followed until every instance runs on another host; the action \
succeeds only then. An instance that cannot be evacuated, or is still moving when the action's \
deadline (action_timeout) comes, fails the action; running it again continues where it stopped \
and never evacuates an instance twice. track_evacuations=0 restores the reference's behaviour \
(success once Nova accepted every call).";

/// The description of `fence_evacuate`.
pub static SPEC: Agent = Agent {
    name: "fence_evacuate",
    protocol: Protocol::Fence,
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Fence agent for the automatic resurrection of OpenStack compute instances",
    longdesc: "Used to reschedule flagged instances",
    vendor_url: "",
    params: &[OWN, FENCE_OPENSTACK, shared::ENGINE_PARAMS, FENCE_STANDARD],
    actions: &[
        Action { automatic: Some(false), ..Action::new("on", "Not supported: exits 1, as the reference.") },
        Action::new("off", "Evacuate the evacuable instances of the fenced host and track them until they run elsewhere."),
        Action::new("reboot", "Same as off."),
        Action::new("status", "Status: OFF (exit 2) when the host is fenced in Nova, Status: ON (exit 0) when it is up and enabled, exit 1 otherwise."),
        Action::new("list", "List the nova-compute hosts known to Nova."),
        Action::new("list-status", "List the hosts with their status."),
        Action::new("monitor", "Check that Keystone and Nova answer with these credentials."),
        Action::new("metadata", "Print the agent's metadata."),
        Action::new("manpage", "Print this manual page."),
        Action::new("validate-all", "Check the options without contacting anything."),
    ],
    default_action: "reboot",
    man_section: 8,
    exit_statuses: &[
        ExitStatus { code: 0, meaning: "Success; for status: the host is up (Status: ON)." },
        ExitStatus { code: 1, meaning: "Failure, or for status: neither on nor off." },
        ExitStatus { code: 2, meaning: "For status: the host is fenced (Status: OFF)." },
    ],
    notes: &[("EVACUATION", OFF_NOTE)],
};
