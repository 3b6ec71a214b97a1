//! The actions of `fence_evacuate` (REFERENCE.md §4.3).
//!
//! * `off`/`reboot`: confirm the host is fenced, then evacuate its evacuable instances through
//!   the engine and follow them until they run elsewhere, within the action's deadline. Exit 0
//!   only when every selected instance was evacuated; a failed instance or one still moving at
//!   the deadline fails the action (a rerun continues where this one stopped).
//! * `status`: `Status: OFF` (2) when Nova reports the host forced down or down and disabled,
//!   `Status: ON` (0) when up and enabled, otherwise exit 1.
//! * `list`/`list-status`: the nova-compute hosts; `monitor`: Keystone and Nova answer.
//! * `on`: not supported (exit 1), as the reference.

use crate::shared::{engine_config, options};
use iha_core::engine::{Engine, EngineError, FenceCheck, Gated, Limiter, fenced_in_nova};
use iha_core::{naming, storm};
use iha_fence::{Context, FenceError, Handlers, ListEntry, Power};
use iha_openstack::{Client, ComputeApi, Deadline, Interface, ServiceQuery};
use iha_pacemaker::{Cluster, Tools};
use log::{error, info};

/// The `fence_evacuate` handlers.
#[derive(Debug, Default)]
pub struct FenceEvacuate;

fn connect(ctx: &Context<'_>) -> Result<Client, FenceError> {
    let opts = options(ctx.values, ctx.password()).map_err(FenceError::new)?;
    Ok(Client::new(opts).with_deadline(ctx.deadline.map_or(Deadline::NONE, Deadline::at)))
}

fn computes(nova: &Client) -> Result<Vec<iha_openstack::Service>, FenceError> {
    nova.list_services(&ServiceQuery { binary: Some("nova-compute".into()), host: None })
        .map_err(|e| FenceError::new(format!("cannot list nova-compute services: {e}")))
}

fn evacuate(ctx: &Context<'_>, host: &str) -> Result<(), FenceError> {
    let (mut settings, policy, limits) =
        engine_config(ctx.values, FenceCheck::InsideFencing).map_err(|e| FenceError::new(format!("invalid option: {e}")))?;
    if let Some(n) = ctx.nodename {
        settings.node_names.push(n.to_string());
    }
    let nova = connect(ctx)?;
    // The storm guard needs every compute service; it is read alongside the engine's own reads
    // and nothing is evacuated unless it lets the evacuation go ahead.
    let storm_guard = || {
        let verdict = storm::assess(&computes(&nova)?, &[host.to_string()], limits);
        match verdict.hold {
            Some(why) => {
                error!("{why}");
                Err(FenceError::new(format!("Resurrection of instances from {host} held: {why}")))
            }
            None => Ok(()),
        }
    };
    let tools = Tools::default();
    // Pacemaker's fencing history is consulted only under the fencer; by hand, Nova decides.
    let cluster: Option<&dyn Cluster> = ctx.under_pacemaker.then_some(&tools as &dyn Cluster);
    let limiter = Limiter::new(settings.concurrency);
    let engine = Engine { nova: &nova, cluster, settings: &settings, policy: &policy, limiter: &limiter };
    info!("Initiating evacuation of {host}");
    match engine.evacuate_host_gated(host, ctx.deadline, &|| {}, storm_guard) {
        Ok(report) => {
            report.log();
            if report.ok() {
                info!("Resurrection of instances from {host} complete");
                Ok(())
            } else {
                Err(FenceError::new(format!(
                    "Resurrection of instances from {host} failed: {} failed, {} still in progress",
                    report.count("failed"),
                    report.count("in-progress")
                )))
            }
        }
        Err(Gated::Closed(e)) => Err(e),
        Err(Gated::Engine(e @ (EngineError::NotFenced(_) | EngineError::FencingPending(_) | EngineError::UnknownHost(_)))) => {
            Err(FenceError::new(format!("Cannot resurrect instances from {host}: {e}")))
        }
        Err(Gated::Engine(EngineError::Nova(e))) => {
            Err(FenceError::new(format!("Resurrection of instances from {host} failed: {e}")))
        }
    }
}

impl Handlers for FenceEvacuate {
    fn validate(&self, ctx: &Context<'_>) -> Result<(), FenceError> {
        let mut problems = Vec::new();
        if let Some(t) = ctx.values.nonempty("endpoint_type") {
            if Interface::parse(t).is_err() {
                problems.push(format!("endpoint_type '{t}' is not one of publicURL, internalURL, adminURL (or public, internal, admin)"));
            }
        }
        if let Err(e) = engine_config(ctx.values, FenceCheck::InsideFencing) {
            problems.push(e);
        }
        // password_script runs after validation; stand in for its output.
        let stand_in = ctx.values.nonempty("password_script").map(|_| "from-password-script");
        if let Err(e) = options(ctx.values, ctx.password().or(stand_in)) {
            problems.push(e);
        }
        if problems.is_empty() { Ok(()) } else { Err(FenceError::new(problems.join("; "))) }
    }

    fn off(&self, ctx: &Context<'_>, target: &str) -> Result<(), FenceError> {
        evacuate(ctx, target)
    }

    fn reboot(&self, ctx: &Context<'_>, target: &str) -> Result<(), FenceError> {
        // As the reference: reboot evacuates, nothing is powered on.
        evacuate(ctx, target)
    }

    fn on(&self, _ctx: &Context<'_>, _target: &str) -> Result<(), FenceError> {
        // The reference answers `on` with a failure too (REFERENCE.md §4.3).
        Err(FenceError::new("Action on is not supported by this agent"))
    }

    fn status(&self, ctx: &Context<'_>, target: &str) -> Result<Power, FenceError> {
        let nova = connect(ctx)?;
        let q = ServiceQuery { binary: Some("nova-compute".into()), host: Some(target.to_string()) };
        let unable = |why: String| FenceError::new(format!("Unable to obtain correct plug status or plug is not available: {why}"));
        let services = nova.list_services(&q).map_err(|e| unable(e.to_string()))?;
        let Some(s) = services.iter().find(|s| s.host == target) else {
            return Err(unable(format!("nova does not know about {target}")));
        };
        if fenced_in_nova(s) {
            Ok(Power::Off)
        } else if s.is_up() && s.status == "enabled" {
            Ok(Power::On)
        } else {
            Err(unable(format!(
                "nova-compute of {target} is {} and {} (forced_down={})",
                s.state.as_deref().unwrap_or("unknown"),
                s.status,
                s.forced_down.map_or("unknown".into(), |f| f.to_string())
            )))
        }
    }

    fn list(&self, ctx: &Context<'_>) -> Result<Vec<ListEntry>, FenceError> {
        // As the reference (and our fence_compute): each host by its Nova name, then its short
        // name, in Nova's order; the status as `status` reports it.
        let nova = connect(ctx)?;
        let mut out: Vec<ListEntry> = Vec::new();
        for s in computes(&nova)? {
            let status = if fenced_in_nova(&s) {
                Some(Power::Off)
            } else if s.is_up() && s.status == "enabled" {
                Some(Power::On)
            } else {
                None
            };
            for name in [s.host.as_str(), naming::short_name(&s.host)] {
                if !name.is_empty() && !out.iter().any(|e| e.name == name) {
                    out.push(ListEntry { name: name.to_string(), alias: String::new(), status });
                }
            }
        }
        Ok(out)
    }

    fn monitor(&self, ctx: &Context<'_>) -> Result<(), FenceError> {
        // Really asks Nova (the reference exits 0 even when Nova is unreachable).
        let nova = connect(ctx)?;
        computes(&nova).map(|_| ())
    }
}
