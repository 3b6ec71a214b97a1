//! The actions of `fence_compute`: glue between the fence runtime, the OpenStack client,
//! Pacemaker's tools and the domain rules in `iha-core` ([`crate::fence`] for `off`,
//! `iha_core::unfence` for `on`, `iha_core::naming` for host names).
//!
//! Exit codes follow the fence protocol (docs/deviations.md, fence_compute section): `status`
//! is `Status: OFF`/2 when Nova reports the service down and disabled or forced down,
//! `Status: ON`/0 otherwise, and a failure (1) when the host is unknown or Nova, Keystone or
//! the credentials fail — never a guess (O7, O9). `list` fails when Nova cannot be asked (O28);
//! `monitor` really authenticates and lists the services; `on` without Nova fails (O8).

use crate::{fence, nova};
use iha_core::naming;
use iha_core::unfence::{self, Options, SystemClock, Unforce};
use iha_fence::{Context, FenceError, Handlers, ListEntry, Power};
use iha_pacemaker::Tools;
use log::info;

/// The `fence_compute` handlers.
#[derive(Debug, Default)]
pub struct FenceCompute;

fn domain(ctx: &Context<'_>) -> Option<String> {
    naming::effective_domain(ctx.values.get("domain"), ctx.values.get("compute_domain"))
}

/// `port`, then Pacemaker's `nodename` (differs when `pcmk_host_map` maps the node).
fn names<'a>(ctx: &'a Context<'_>, target: &'a str) -> Vec<&'a str> {
    let mut n = vec![target];
    n.extend(ctx.nodename);
    n
}

fn fail(message: impl Into<String>) -> FenceError {
    FenceError::new(message)
}

impl Handlers for FenceCompute {
    fn short_circuit(&self, ctx: &Context<'_>) -> bool {
        // A device configured with record_only=2/disabled is present but inert (REFERENCE.md §3.2).
        matches!(ctx.values.get("record_only").map(str::trim), Some("2" | "disabled" | "Disabled"))
    }

    fn validate(&self, ctx: &Context<'_>) -> Result<(), FenceError> {
        nova::validate(ctx)
    }

    fn off(&self, ctx: &Context<'_>, target: &str) -> Result<(), FenceError> {
        let client = nova::connect(ctx)?;
        let reason = fence::fence_reason(&iha_log::now_utc().rfc3339());
        let d = domain(ctx);
        let host = fence::off(&client, &Tools::default(), &names(ctx, target), d.as_deref(), &reason, ctx.deadline)
            .map_err(fail)?;
        info!("{host} is fenced in nova and recorded for evacuation");
        Ok(())
    }

    fn on(&self, ctx: &Context<'_>, target: &str) -> Result<(), FenceError> {
        let client = nova::connect(ctx)?;
        let services = fence::compute_services(&client).map_err(fail)?;
        let d = domain(ctx);
        let hosts: Vec<String> = services.iter().map(|s| s.host.clone()).collect();
        let opts = Options::with_deadline(ctx.deadline);
        let host = match naming::resolve(&names(ctx, target), d.as_deref(), &hosts) {
            Ok(r) => r.host,
            // A node whose nova-compute has never registered (a new compute node) has nothing
            // to restore in Nova; failing here would keep nova-compute, which starts after
            // unfencing, from ever registering it. Its evacuation state is still honoured.
            Err(naming::NamingError::Unknown { .. } | naming::NamingError::NoServices) => {
                let guess = match d.as_deref() {
                    Some(dom) if naming::domain_of(target).is_none() => format!("{target}.{dom}"),
                    _ => target.to_string(),
                };
                unfence::wait_for_evacuation(&Tools::default(), &guess, &opts, &SystemClock)
                    .map_err(|e| fail(e.to_string()))?;
                info!("nova has no nova-compute service for {target} (yet): nothing to restore in nova");
                return Ok(());
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        let done = unfence::unfence(&client, &Tools::default(), &host, &opts, &SystemClock)
            .map_err(|e| fail(e.to_string()))?;
        match done.unforce {
            Unforce::Refused { .. } => info!("{host} unfenced: enabled; forced-down is cleared once its nova-compute has started"),
            _ => info!("{host} unfenced"),
        }
        Ok(())
    }

    fn status(&self, ctx: &Context<'_>, target: &str) -> Result<Power, FenceError> {
        let client = nova::connect(ctx)?;
        let services = fence::compute_services(&client).map_err(fail)?;
        let d = domain(ctx);
        let (r, svc) = fence::find(&services, &names(ctx, target), d.as_deref()).map_err(fail)?;
        let fenced = fence::is_fenced(&svc);
        log::debug!(
            "Status of nova-compute on {} is {}, {}, forced_down={:?}: {}",
            r.host,
            svc.state.as_deref().unwrap_or("unknown"),
            svc.status,
            svc.forced_down,
            if fenced { "fenced" } else { "not fenced" }
        );
        Ok(if fenced { Power::Off } else { Power::On })
    }

    fn list(&self, ctx: &Context<'_>) -> Result<Vec<ListEntry>, FenceError> {
        let client = nova::connect(ctx)?;
        let services = fence::compute_services(&client).map_err(fail)?;
        let mut out: Vec<ListEntry> = Vec::new();
        for s in &services {
            let status = Some(if fence::is_fenced(s) { Power::Off } else { Power::On });
            for name in [s.host.as_str(), naming::short_name(&s.host)] {
                if !name.is_empty() && !out.iter().any(|e| e.name == name) {
                    out.push(ListEntry { name: name.to_string(), alias: String::new(), status });
                }
            }
        }
        Ok(out)
    }

    fn monitor(&self, ctx: &Context<'_>) -> Result<(), FenceError> {
        let client = nova::connect(ctx)?;
        let services = fence::compute_services(&client).map_err(fail)?;
        info!("monitor: keystone and nova answer; {} nova-compute services", services.len());
        Ok(())
    }
}
