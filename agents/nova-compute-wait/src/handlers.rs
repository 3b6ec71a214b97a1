//! The actions of `nova-compute-wait`; the evacuation gate arrives with the compute-node agents
//! issue and answers "unimplemented" until then.

use iha_ocf::{Context, OcfError, ResourceAgent, Running};

/// The `nova-compute-wait` handlers.
#[derive(Debug, Default)]
pub struct NovaComputeWait;

impl ResourceAgent for NovaComputeWait {
    fn start(&self, _ctx: &Context<'_>) -> Result<(), OcfError> {
        Err(OcfError::unimplemented("start"))
    }
    fn stop(&self, _ctx: &Context<'_>) -> Result<(), OcfError> {
        Err(OcfError::unimplemented("stop"))
    }
    fn monitor(&self, _ctx: &Context<'_>) -> Result<Running, OcfError> {
        Err(OcfError::unimplemented("monitor"))
    }
}
