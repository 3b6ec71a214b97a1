//! The actions of `NovaEvacuate`.
//!
//! `start`/`stop` keep a state file in `HA_RSCTMP` as the reference does (no evacuation work in
//! `start`, so its timeout can stay low). Every recurring `monitor`:
//!
//! 1. reads every host's `evacuate` value; hosts marked `yes`, our own in-progress markers and
//!    other nodes' markers not refreshed for `takeover_after` seconds need work, fresh markers
//!    of other nodes are left to them ([`iha_core::state`]). Without work, Nova is not called.
//! 2. applies the storm guard: when too many compute hosts are failed, hosts still marked `yes`
//!    are held (logged at error level every monitor); hosts already in progress continue. Before
//!    holding, the limits are read again from the CIB (`crm_resource --get-parameter`), so an
//!    operator's `pcs resource update <resource> storm_max_share=100` applies at the next
//!    monitor rather than when Pacemaker gets round to restarting the resource, which waits for
//!    the held nodes' unfencing ([`iha_core::storm`]). Unreadable: the hold stands.
//! 3. processes every host in its own thread, sharing one client and one concurrency limit:
//!    confirm it is fenced (else leave `yes`, retried next monitor), wait `evacuate_delay` for
//!    that host alone, write `<node>@<now>`, evacuate through the engine while refreshing the
//!    marker, and once every instance is settled record failures in the service's
//!    `disabled_reason` and write `no` (unfencing, ours or the reference's, waits for `no`).
//!    A host not settled by the monitor's deadline keeps our marker and is resumed next
//!    monitor.
//!
//! Nova unreachable: the monitor still returns 0 (running) and logs an error; see
//! docs/deviations.md. Probes only check the state file.

use iha_agent_fence_evacuate::shared::{engine_config, options};
use iha_core::clock::now_epoch;
use iha_core::engine::{Engine, EngineError, FenceCheck, Limiter};
use iha_core::state::{self, Mark, Plan};
use iha_core::storm::{self, Decided};
use iha_ocf::{Context, OcfError, ResourceAgent, Running};
use iha_openstack::{Client, ComputeApi, Deadline, ServiceQuery, ServiceRef};
use iha_pacemaker::{Cluster, EVACUATE_ATTR, Tools, primitive_id};
use log::{debug, error, info, warn};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The `NovaEvacuate` handlers.
#[derive(Debug, Default)]
pub struct NovaEvacuate;

fn active_file(ctx: &Context<'_>) -> std::path::PathBuf {
    ctx.state_file("active")
}

/// How often the in-progress marker is rewritten while a host is being worked on.
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// Parameter checks without the network. Credentials are resolved (parameters, clouds.yaml,
/// `OS_*`) when a monitor has work, since they may come from files that change after start.
fn configured(ctx: &Context<'_>) -> Result<(), OcfError> {
    ctx.check_params()?;
    engine_config(ctx.values, FenceCheck::History).map_err(|e| OcfError::configured(format!("invalid parameter: {e}")))?;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "localhost".into())
}

impl ResourceAgent for NovaEvacuate {
    fn start(&self, ctx: &Context<'_>) -> Result<(), OcfError> {
        configured(ctx)?;
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

    fn validate(&self, ctx: &Context<'_>) -> Result<(), OcfError> {
        configured(ctx)
    }

    fn monitor(&self, ctx: &Context<'_>) -> Result<Running, OcfError> {
        if !active_file(ctx).exists() {
            return Ok(Running::No);
        }
        if ctx.probe {
            // A probe asks "is it running here?", never "evacuate now".
            return Ok(Running::Yes);
        }
        configured(ctx)?;
        let tools = Tools::default();
        monitor_with(ctx, &tools)?;
        Ok(Running::Yes)
    }
}

/// One monitor's evacuation work against `cluster` (tests inject a fake).
pub fn monitor_with(ctx: &Context<'_>, cluster: &dyn Cluster) -> Result<(), OcfError> {
    let (settings, policy, limits) =
        engine_config(ctx.values, FenceCheck::History).map_err(|e| OcfError::configured(format!("invalid parameter: {e}")))?;
    let takeover = ctx.values.seconds("takeover_after").unwrap_or(Duration::from_secs(120));
    let marks = match cluster.attr_query_all(EVACUATE_ATTR, ctx.deadline) {
        Ok(m) => m,
        Err(e) => {
            warn!("cannot read the {EVACUATE_ATTR} attribute: {e}; trying again next monitor");
            return Ok(());
        }
    };
    let local = cluster.local_node(ctx.deadline).unwrap_or_else(|e| {
        warn!("cannot ask Pacemaker for this node's name ({e}); using the host name");
        hostname()
    });
    let now = now_epoch();
    let mut work: Vec<(String, Plan)> = Vec::new();
    let mut marked: Vec<String> = Vec::new();
    for (host, value) in marks {
        let mark = Mark::parse(&value);
        if matches!(mark, Mark::Required | Mark::InProgress { .. }) {
            marked.push(host.clone());
        }
        match state::plan(&mark, &local, now, takeover) {
            Plan::Ignore => debug!("{host} is either fine or already handled ({value:?})"),
            Plan::Defer { owner, age } => info!(
                "Deferring processing partial evacuation of {host} by {owner}: refreshed {} s ago",
                age.as_secs()
            ),
            p => work.push((host, p)),
        }
    }
    if work.is_empty() {
        return Ok(());
    }
    let opts = options(ctx.values, ctx.values.get("password")).map_err(OcfError::configured)?;
    let nova = Client::new(opts).with_deadline(Deadline::at(ctx.deadline));
    let services = match nova.list_services(&ServiceQuery { binary: Some("nova-compute".into()), host: None }) {
        Ok(s) => s,
        Err(e) => {
            let hosts: Vec<&str> = work.iter().map(|(h, _)| h.as_str()).collect();
            error!("nova is unreachable ({e}): evacuation of {} postponed to the next monitor", hosts.join(", "));
            return Ok(());
        }
    };
    let verdict = storm_verdict(ctx, cluster, &services, &marked, limits);
    if let Some(why) = &verdict.hold {
        error!(
            "{why} (pcs resource update {} storm_max_share=100 storm_max_hosts=0; applied at the next monitor)",
            primitive_id(&ctx.instance)
        );
        work.retain(|(host, p)| {
            let keep = !matches!(p, Plan::Start);
            if !keep {
                error!("evacuation of {host} held by the storm guard");
            }
            keep
        });
    }
    let limiter = Limiter::new(settings.concurrency);
    let engine = Engine { nova: &nova, cluster: Some(cluster), settings: &settings, policy: &policy, limiter: &limiter };
    let delay = ctx.values.seconds("evacuate_delay").unwrap_or_default();
    let record = ctx.values.flag("record_failures");
    let nova = &nova;
    std::thread::scope(|sc| {
        for (host, plan) in &work {
            let engine = &engine;
            let local = local.as_str();
            let deadline = ctx.deadline;
            sc.spawn(move || process_host(deadline, cluster, engine, nova, local, host, plan, delay, record));
        }
    });
    Ok(())
}

/// A CIB read while holding gets at most this long: hosts already in progress are processed
/// after it, in the same monitor.
const CIB_READ_LIMIT: Duration = Duration::from_secs(10);

/// The storm guard's verdict with the limits Pacemaker passed or, when those would hold, with
/// the limits the CIB holds now for this resource; says in the log which decided.
fn storm_verdict(
    ctx: &Context<'_>,
    cluster: &dyn Cluster,
    services: &[iha_openstack::Service],
    marked: &[String],
    limits: storm::StormLimits,
) -> storm::StormVerdict {
    let resource = primitive_id(&ctx.instance);
    let deadline = ctx.deadline.min(Instant::now() + CIB_READ_LIMIT);
    let (verdict, decided) = storm::assess_live(services, marked, limits, cluster, resource, deadline);
    match &decided {
        Decided::NotRead | Decided::Same => {}
        Decided::Live(live) if verdict.hold.is_none() => warn!(
            "storm guard overridden: the CIB now has {live} for {resource} (started with {limits}; Pacemaker \
             applies it with a restart later): evacuating {} failed compute host(s) of {}",
            verdict.failed.len(),
            verdict.total
        ),
        Decided::Live(live) => info!("storm guard: using the limits the CIB now has for {resource} ({live}; started with {limits})"),
        Decided::Unreadable(e) => error!(
            "storm guard: cannot read the current limits of {resource} from the CIB ({e}); holding with {limits} \
             as Pacemaker passed them"
        ),
    }
    verdict
}

/// How often, and at most how long, a monitor polls for a fencing in progress to complete.
const FENCING_POLL: Duration = Duration::from_millis(100);
const FENCING_PATIENCE: Duration = Duration::from_secs(30);

/// Polls the engine's fencing check until the fencing of `host` that is in progress has
/// completed (`Ok`), or the check refuses for another reason, or the patience (at most half of
/// what is left of the monitor) runs out: then the error to report.
fn wait_for_fencing(engine: &Engine<'_>, host: &str, deadline: Instant, heartbeat: &dyn Fn()) -> Result<(), EngineError> {
    let patience = FENCING_PATIENCE.min(deadline.saturating_duration_since(Instant::now()) / 2);
    let until = Instant::now() + patience;
    loop {
        std::thread::sleep(FENCING_POLL);
        heartbeat();
        match engine.check_fenced(host, Some(deadline)) {
            Ok(_) => return Ok(()),
            Err(EngineError::FencingPending(_)) if Instant::now() + FENCING_POLL < until => {}
            Err(EngineError::FencingPending(why)) => {
                return Err(EngineError::FencingPending(format!("{why} after {} s", patience.as_secs())));
            }
            Err(e) => return Err(e),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn process_host(
    deadline: Instant,
    cluster: &dyn Cluster,
    engine: &Engine<'_>,
    nova: &dyn ComputeApi,
    local: &str,
    host: &str,
    plan: &Plan,
    delay: Duration,
    record: bool,
) {
    match plan {
        Plan::Start => info!("Initiating evacuation of {host}"),
        Plan::Resume => info!("Resuming evacuation of {host}"),
        Plan::TakeOver { owner, age } => {
            info!("Processing partial evacuation of {host} by {owner}: not refreshed for {} s, taking over", age.as_secs());
        }
        _ => return,
    }
    // The engine confirms the fencing before it evacuates anything (its first reads go out
    // together with that check, D58); a host it refuses gets its `yes` back below.
    let write = |value: &str| cluster.attr_update(EVACUATE_ATTR, host, value, deadline);
    if let Err(e) = write(&state::in_progress(local, now_epoch())) {
        // Only this host is skipped (the reference gave up on every remaining host, O15).
        warn!("Can not set evacuation state of {host}: {e}");
        return;
    }
    let last = Mutex::new(Instant::now());
    // Called from the engine's workers: the lock only decides who refreshes; the write
    // happens outside it, so no worker waits for attrd_updater.
    let heartbeat = || {
        let due = {
            let mut l = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = l.elapsed() >= REFRESH_EVERY;
            if due {
                *l = Instant::now();
            }
            due
        };
        if due {
            if let Err(e) = write(&state::in_progress(local, now_epoch())) {
                warn!("cannot refresh the evacuation marker of {host}: {e}");
            }
        }
    };
    if matches!(plan, Plan::Start) && !delay.is_zero() {
        // Per host, in this host's thread: other hosts are not held up (O15, O19).
        if Instant::now() + delay + Duration::from_secs(5) >= deadline {
            warn!("evacuate_delay of {} s for {host} does not fit in this monitor; the next one continues", delay.as_secs());
            return;
        }
        info!("Delaying nova evacuate of {host} by {} seconds", delay.as_secs());
        let until = Instant::now() + delay;
        while Instant::now() < until {
            std::thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_secs(1)));
            heartbeat();
        }
    }
    let mut waited = false;
    let report = loop {
        let refused = match engine.evacuate_host(host, Some(deadline), &heartbeat) {
            Ok(r) => break r,
            // fence_compute records the mark inside the fencing operation, so a monitor can see
            // it before Pacemaker has recorded that operation as complete. Waiting for it here
            // (about a second) instead of for the next monitor (10 s in the recipe) is the
            // difference between evacuating when the fencing completes and up to an interval
            // later. Once: a host still pending after the wait is the next monitor's.
            Err(EngineError::FencingPending(why)) if !waited => {
                waited = true;
                info!("{why}: this monitor waits for it");
                let t0 = Instant::now();
                match wait_for_fencing(engine, host, deadline, &heartbeat) {
                    Ok(()) => {
                        info!("the fencing of {host} completed after {} ms; evacuating", t0.elapsed().as_millis());
                        continue;
                    }
                    Err(e) => e,
                }
            }
            Err(EngineError::Nova(e)) => {
                error!("evacuation of {host} interrupted: {e}; the next monitor continues where it stopped");
                return;
            }
            Err(e) => e,
        };
        // Nothing was evacuated: the host keeps its mark and is looked at again next monitor.
        match refused {
            EngineError::UnknownHost(_) => info!("Nova does not know about {host}"),
            e => warn!("evacuation of {host} not started: {e}"),
        }
        if let Err(e) = write(state::REQUIRED) {
            warn!("Can not set evacuation state of {host}: {e}");
        }
        return;
    };
    report.log();
    if !report.settled() {
        info!("evacuation of {host} continues at the next monitor: {} instance(s) in progress", report.count("in-progress"));
        if let Err(e) = write(&state::in_progress(local, now_epoch())) {
            warn!("cannot refresh the evacuation marker of {host}: {e}");
        }
        return;
    }
    let failed = report.count("failed");
    if failed > 0 {
        let ids: Vec<&str> = report.failed().map(|i| i.id.as_str()).collect();
        error!(
            "Evacuation of {host} finished with {failed} instance(s) nova did not evacuate: {}; the host is released for unfencing",
            ids.join(", ")
        );
        if record {
            let reason = report.disabled_reason();
            if let Err(e) = nova.disable_service(&ServiceRef::compute(host), Some(&reason)) {
                warn!("cannot record the failures in the disabled reason of {host}: {e}");
            }
        }
    }
    match write(state::DONE) {
        Ok(()) => info!("Completed evacuation of {host}"),
        Err(e) => warn!("Can not set evacuation state of {host} to no: {e}; the next monitor retries"),
    }
}
