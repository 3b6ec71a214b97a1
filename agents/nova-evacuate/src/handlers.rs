//! The actions of `NovaEvacuate`.
//!
//! `start`/`stop` keep a state file in `HA_RSCTMP` as the reference does; the evacuation work of
//! `monitor` arrives with the evacuation engine and answers "unimplemented" until then.

use iha_ocf::{Context, OcfError, ResourceAgent, Running};

/// The `NovaEvacuate` handlers.
#[derive(Debug, Default)]
pub struct NovaEvacuate;

fn active_file(ctx: &Context<'_>) -> std::path::PathBuf {
    ctx.state_file("active")
}

impl ResourceAgent for NovaEvacuate {
    fn start(&self, ctx: &Context<'_>) -> Result<(), OcfError> {
        ctx.check_params()?;
        std::fs::create_dir_all(&ctx.state_dir)
            .and_then(|()| std::fs::write(active_file(ctx), b""))
            .map_err(|e| OcfError::generic(format!("cannot write state file in {}: {e}", ctx.state_dir.display())))
    }

    fn stop(&self, ctx: &Context<'_>) -> Result<(), OcfError> {
        match std::fs::remove_file(active_file(ctx)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(OcfError::generic(format!("cannot remove state file: {e}"))),
        }
    }

    fn monitor(&self, ctx: &Context<'_>) -> Result<Running, OcfError> {
        if !active_file(ctx).exists() {
            return Ok(Running::No);
        }
        Err(OcfError::unimplemented("monitor (evacuation)"))
    }
}
