//! The actions of `fence_compute`.
//!
//! Nova-facing actions arrive with the OpenStack client (issue: fence_compute); until then they
//! fail honestly with "not implemented" instead of pretending success.

use iha_fence::{Context, Handlers};

/// The `fence_compute` handlers.
#[derive(Debug, Default)]
pub struct FenceCompute;

impl Handlers for FenceCompute {
    fn short_circuit(&self, ctx: &Context<'_>) -> bool {
        // A device configured with record_only=2/disabled is present but inert (REFERENCE.md §3.2).
        matches!(ctx.values.get("record_only").map(str::trim), Some("2" | "disabled" | "Disabled"))
    }
}
