//! The actions of `fence_evacuate`.
//!
//! Evacuation arrives with the evacuation engine (issue: evacuation engine); until then the
//! Nova-facing actions fail honestly with "not implemented".

use iha_fence::{Context, FenceError, Handlers};

/// The `fence_evacuate` handlers.
#[derive(Debug, Default)]
pub struct FenceEvacuate;

impl Handlers for FenceEvacuate {
    fn on(&self, _ctx: &Context<'_>, _target: &str) -> Result<(), FenceError> {
        // The reference answers `on` with a failure too (REFERENCE.md §4.3).
        Err(FenceError::new("Action on is not supported by this agent"))
    }
}
