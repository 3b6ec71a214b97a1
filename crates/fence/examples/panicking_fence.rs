//! A fence agent whose `off` panics: the runtime must turn that into `Failed:` and exit 1
//! (used by tests/panic.rs).
use iha_fence::{Context, FenceError, Handlers};
use iha_meta::common::{FENCE_OPENSTACK, FENCE_STANDARD};
use iha_meta::{Action, Agent, Getopt, Param, Protocol};

static OWN: &[Param] = &[Param {
    getopt: Some(Getopt::with_short('o', "action", "action")),
    default: Some("off"),
    order: 1,
    ..Param::new("action", "Fencing action")
}];
static SPEC: Agent = Agent {
    name: "fence_panicking",
    protocol: Protocol::Fence,
    version: "0",
    shortdesc: "",
    longdesc: "",
    vendor_url: "",
    params: &[OWN, FENCE_OPENSTACK, FENCE_STANDARD],
    actions: &[Action::new("off", "")],
    default_action: "off",
    man_section: 8,
    exit_statuses: &[],
    notes: &[],
};

struct Boom;
impl Handlers for Boom {
    fn off(&self, ctx: &Context<'_>, _t: &str) -> Result<(), FenceError> {
        panic!("boom with {}", ctx.password().unwrap_or(""));
    }
}

fn main() -> std::process::ExitCode {
    iha_fence::run(&SPEC, &Boom)
}
