//! `fence_compute`: the fence agent every Instance HA cluster has in its fencing topology.
//!
//! `off` tells Nova the host is dead (force-down, then disable with a reason) and records it for
//! evacuation in the private attrd attribute `evacuate`; `on` (automatic unfencing) waits until
//! the evacuation is finished, then clears forced-down and enables the service. It is a fabric
//! agent: no `reboot`, default action `off`, `automatic="1"` on `on` (REFERENCE.md §3).
//!
//! This module is the agent's one description; the handlers live in [`handlers`].

use iha_meta::common::{FENCE_OPENSTACK, FENCE_STANDARD};
use iha_meta::{Action, Agent, ExitStatus, Getopt, Param, Protocol};

pub mod fence;
mod handlers;
mod nova;
pub use handlers::FenceCompute;

static OWN: &[Param] = &[
    Param {
        getopt: Some(Getopt::with_short('o', "action", "action")),
        default: Some("off"),
        required: true,
        order: 1,
        ..Param::new("action", "Fencing action")
    },
    Param {
        getopt: Some(Getopt {
            short: Some('r'),
            long: "record-only",
            value: Some(""),
            mixed: Some("--record-only"),
        }),
        default: Some("False"),
        order: 8,
        longdesc: "Only record the target as needing evacuation. Kept for compatibility: this \
agent always only records (evacuation is NovaEvacuate's job). The values 2, disabled and Disabled \
turn the device into a no-op that succeeds at once.",
        ..Param::new("record_only", "Only record the target as needing evacuation")
    },
];

/// The description of `fence_compute`.
pub static SPEC: Agent = Agent {
    name: "fence_compute",
    protocol: Protocol::Fence,
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Fence agent for the automatic resurrection of OpenStack compute instances",
    longdesc: "Used to tell Nova that compute nodes are down and to reschedule flagged instances",
    vendor_url: "",
    params: &[OWN, FENCE_OPENSTACK, FENCE_STANDARD],
    actions: &[
        Action {
            automatic: Some(true),
            ..Action::new("on", "Unfence: wait until the host's evacuation is finished, then clear forced-down and enable its nova-compute service.")
        },
        Action::new("off", "Fence: force the host's nova-compute service down, disable it with a reason, and record the host for evacuation."),
        Action::new("status", "Print Status: OFF (exit 2) when Nova reports the service down and disabled or forced down, Status: ON (exit 0) when it is not fenced; exit 1 when the state is unknown or Nova is unreachable."),
        Action::new("list", "List the nova-compute hosts known to Nova, long and short names."),
        Action::new("list-status", "List the hosts with their status."),
        Action::new("monitor", "Check that Keystone and Nova answer with these credentials."),
        Action::new("metadata", "Print the agent's metadata."),
        Action::new("manpage", "Print this manual page."),
        Action::new("validate-all", "Check the options without contacting anything."),
    ],
    default_action: "off",
    man_section: 8,
    exit_statuses: &[
        ExitStatus { code: 0, meaning: "Success; for status: the host is not fenced (Status: ON)." },
        ExitStatus { code: 1, meaning: "Failure, or for status: the state cannot be determined." },
        ExitStatus { code: 2, meaning: "For status: the host is fenced (Status: OFF)." },
    ],
    notes: &[],
};
