//! The actions of `nova-compute-wait`: glue between the OCF runtime and [`crate::gate`].

use crate::gate::{self, GateState, check_config, check_node, prepare, resolve_host};
use iha_core::unfence::SystemClock;
use iha_ocf::{Context, OcfError, ResourceAgent, Running};
use iha_openstack::ComputeApi;
use iha_pacemaker::Tools;

/// The `nova-compute-wait` handlers.
#[derive(Debug, Default)]
pub struct NovaComputeWait;

impl ResourceAgent for NovaComputeWait {
    fn start(&self, ctx: &Context<'_>) -> Result<(), OcfError> {
        let path = ctx.state_file("state");
        let (settings, nova) = prepare(ctx)?;
        if GateState::load(&path).is_some() {
            log::info!("the gate is already open");
            return Ok(());
        }
        let host = resolve_host(ctx, &settings, nova.as_ref())?;
        let opened = gate::open(&Tools::default(), nova.as_ref().map(|c| c as &dyn ComputeApi), &SystemClock, &host, &settings, ctx.deadline)?;
        log::info!(
            "gate open for {host}: nova-compute may start{}",
            if opened.unforce_pending { " (forced-down is cleared once it has started)" } else { "" }
        );
        GateState { host, unforce_pending: opened.unforce_pending, last_view: None }.save(&path)
    }

    fn stop(&self, ctx: &Context<'_>) -> Result<(), OcfError> {
        GateState::remove(&ctx.state_file("state"))
    }

    fn monitor(&self, ctx: &Context<'_>) -> Result<Running, OcfError> {
        let path = ctx.state_file("state");
        let Some(state) = GateState::load(&path) else {
            return Ok(Running::No);
        };
        // A probe asks "is it running here?": the state file answers; nothing else is needed,
        // so a node without nova.conf or Nova credentials never fails a probe (O25).
        if ctx.probe {
            return Ok(Running::Yes);
        }
        gate::monitor_open(ctx, &path, state)
    }

    /// Configuration always; this node only from `OCF_CHECK_LEVEL` 10 (OCF 1.1), because
    /// `pcs resource create` validates on the node pcs runs on, usually a controller without
    /// nova.conf.
    fn validate(&self, ctx: &Context<'_>) -> Result<(), OcfError> {
        let (settings, _) = check_config(ctx)?;
        if ctx.check_level >= 10 {
            check_node(ctx, &settings)?;
        }
        Ok(())
    }

    fn notify(&self, _ctx: &Context<'_>) -> Result<(), OcfError> {
        Ok(())
    }
}
