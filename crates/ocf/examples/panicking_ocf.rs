//! An OCF agent whose `monitor` panics: the runtime must print an exit reason and exit 1
//! (used by tests/panic.rs).
use iha_meta::{Action, Agent, Param, Protocol};
use iha_ocf::{Context, OcfError, ResourceAgent, Running};

static PARAMS: &[Param] = &[Param { secret: true, ..Param::new("password", "Password") }];
static SPEC: Agent = Agent {
    name: "Panicking",
    protocol: Protocol::Ocf,
    version: "0",
    shortdesc: "",
    longdesc: "",
    vendor_url: "",
    params: &[PARAMS],
    actions: &[Action::timed("monitor", 20, "")],
    default_action: "",
    man_section: 7,
    exit_statuses: &[],
    notes: &[],
};

struct Boom;
impl ResourceAgent for Boom {
    fn start(&self, _: &Context<'_>) -> Result<(), OcfError> {
        Ok(())
    }
    fn stop(&self, _: &Context<'_>) -> Result<(), OcfError> {
        Ok(())
    }
    fn monitor(&self, ctx: &Context<'_>) -> Result<Running, OcfError> {
        panic!("boom with {}", ctx.values.get("password").unwrap_or(""));
    }
}

fn main() -> std::process::ExitCode {
    iha_ocf::run(&SPEC, &Boom)
}
