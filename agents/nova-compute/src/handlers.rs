//! The actions of `NovaCompute`: the gate of nova-compute-wait, then nova-compute itself
//! ([`crate::process`]), then Nova's view of it.

use crate::process::{self, CommandSpec, Manager};
use iha_agent_nova_compute_wait::gate::{self, GateState, Settings, check_config, check_node, resolve_host};
use iha_core::unfence::{self, SystemClock, UnfenceError};
use iha_ocf::{Context, OcfError, ResourceAgent, Running};
use iha_openstack::{Client, ComputeApi};
use iha_pacemaker::Tools;
use log::{info, warn};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The `NovaCompute` handlers.
#[derive(Debug, Default)]
pub struct NovaCompute;

/// How often start looks at Nova while waiting for the service to come up.
const POLL: Duration = Duration::from_secs(1);

/// When Nova cannot be reached at all, start accepts a running nova-compute after this many
/// failed queries spanning at least [`UNREACHABLE_GRACE`]: waiting out a 600 s start timeout
/// would only get nova-compute banned from the node (start failures are fatal by default).
const UNREACHABLE_QUERIES: u32 = 3;
const UNREACHABLE_GRACE: Duration = Duration::from_secs(30);

/// How nova-compute is run, from the parameters (configuration errors: 6).
fn manager(ctx: &Context<'_>) -> Result<Manager, OcfError> {
    let Some(command) = ctx.values.nonempty("command") else {
        return Ok(Manager::Systemd { unit: ctx.values.nonempty("systemd_unit").map(str::to_string) });
    };
    let argv = iha_fence::args::split_words(command)
        .map_err(|e| OcfError::configured(format!("command: {}", e.0)))?;
    if argv.is_empty() {
        return Err(OcfError::configured("command is empty"));
    }
    let pidfile = ctx.values.nonempty("pidfile").map_or_else(|| ctx.state_file("pid"), PathBuf::from);
    Ok(Manager::Command(CommandSpec { argv, user: ctx.values.nonempty("user").map(str::to_string), pidfile }))
}

/// Checks of this node for the manager (5): the program, its user, the systemd unit.
fn check_manager(mgr: &mut Manager, deadline: Instant) -> Result<(), OcfError> {
    match mgr {
        Manager::Command(spec) => {
            let user = spec.user.as_deref().map(process::lookup_user).transpose()?;
            process::launch_argv(spec, user.as_ref()).map(|_| ())
        }
        Manager::Systemd { unit } => {
            *unit = Some(process::detect_unit(unit.as_deref(), deadline)?);
            Ok(())
        }
    }
}

/// Whether nova-compute runs. Errors only when it cannot be told (systemctl missing...).
fn is_running(mgr: &Manager, deadline: Instant) -> Result<bool, OcfError> {
    match mgr {
        Manager::Command(spec) => Ok(process::running(&spec.pidfile).is_some()),
        Manager::Systemd { unit: Some(u) } => process::unit_active(u, deadline),
        Manager::Systemd { unit: None } => match process::detect_unit(None, deadline) {
            Ok(u) => process::unit_active(&u, deadline),
            Err(e) => Err(e),
        },
    }
}

/// Waits until Nova reports `host`'s nova-compute up, clearing forced-down on the way when
/// the gate left it pending. Returns the state to save.
fn wait_up(ctx: &Context<'_>, mgr: &Manager, nova: &Client, settings: &Settings, mut state: GateState) -> Result<GateState, OcfError> {
    let started = Instant::now();
    let mut unreachable = 0u32;
    let mut last: String;
    loop {
        if !is_running(mgr, ctx.deadline)? {
            return Err(OcfError::generic("nova-compute exited during start"));
        }
        match unfence::compute_service(nova, &state.host) {
            Ok(svc) => {
                unreachable = 0;
                if state.unforce_pending && svc.forced_down != Some(false) {
                    if let Ok(true) = unfence::clear_forced_down(nova, &state.host) {
                        state.unforce_pending = false;
                        continue;
                    }
                } else if svc.forced_down == Some(true) {
                    warn!("nova-compute on {} is forced down in Nova by someone else: not waiting for it to be up", state.host);
                    return Ok(state);
                }
                if svc.forced_down != Some(true) {
                    state.unforce_pending = false;
                }
                if svc.is_up() && svc.forced_down != Some(true) {
                    info!("nova-compute on {} is up in Nova after {}s", state.host, started.elapsed().as_secs());
                    state.last_view = Some(gate::View::Up);
                    return Ok(state);
                }
                last = format!("{}, forced_down={:?}", svc.state.as_deref().unwrap_or("?"), svc.forced_down);
            }
            Err(UnfenceError::UnknownHost { .. }) => {
                // A new node registers under nova-compute's own idea of its name: look again.
                let renamed = resolve_host(ctx, settings, Some(nova))?;
                if renamed != state.host {
                    info!("nova-compute registered this node as {renamed}");
                    state.host = renamed;
                    continue;
                }
                last = "not registered".into();
            }
            Err(e) => {
                unreachable += 1;
                last = e.to_string();
                if unreachable >= UNREACHABLE_QUERIES && started.elapsed() >= UNREACHABLE_GRACE {
                    warn!("nova-compute runs, but Nova cannot be asked about it ({e}): the monitor keeps watching");
                    return Ok(state);
                }
            }
        }
        if Instant::now() + POLL > ctx.deadline {
            return Err(OcfError::generic(format!(
                "nova-compute runs but Nova does not report it up on {} before the start timeout ({last})",
                state.host
            )));
        }
        std::thread::sleep(POLL);
    }
}

impl ResourceAgent for NovaCompute {
    fn start(&self, ctx: &Context<'_>) -> Result<(), OcfError> {
        let (settings, opts) = check_config(ctx)?;
        let mut mgr = manager(ctx)?;
        check_node(ctx, &settings)?;
        check_manager(&mut mgr, ctx.deadline)?;
        let path = ctx.state_file("state");
        if is_running(&mgr, ctx.deadline)? {
            info!("nova-compute is already running");
            return Ok(());
        }
        let nova = gate::client(ctx, opts);
        let host = resolve_host(ctx, &settings, nova.as_ref())?;
        let api = nova.as_ref().map(|c| c as &dyn ComputeApi);
        let opened = gate::open(&Tools::default(), api, &SystemClock, &host, &settings, ctx.deadline)?;
        let state = GateState { host, unforce_pending: opened.unforce_pending, last_view: None };
        state.save(&path)?;
        match &mgr {
            Manager::Command(spec) => {
                process::spawn(spec)?;
            }
            Manager::Systemd { unit } => process::unit_start(unit.as_deref().unwrap_or_default(), ctx.deadline)?,
        }
        let Some(nova) = nova else {
            // Without credentials Nova cannot be asked: running is all start can check.
            std::thread::sleep(POLL.min(ctx.remaining()));
            return if is_running(&mgr, ctx.deadline)? {
                Ok(())
            } else {
                Err(OcfError::generic("nova-compute exited during start"))
            };
        };
        let state = wait_up(ctx, &mgr, &nova, &settings, state)?;
        state.save(&path)
    }

    fn stop(&self, ctx: &Context<'_>) -> Result<(), OcfError> {
        // A stop that fails gets the node fenced: with parameters that no longer parse, stop
        // what the default pid file records.
        let mgr = manager(ctx).unwrap_or_else(|e| {
            warn!("{e}: stopping what {} records", ctx.state_file("pid").display());
            Manager::Command(CommandSpec { argv: Vec::new(), user: None, pidfile: ctx.state_file("pid") })
        });
        match &mgr {
            Manager::Command(spec) => {
                // SIGKILL a little before the deadline, so that its effect can still be seen.
                let slack = (ctx.remaining() / 4).min(Duration::from_secs(5));
                process::stop(&spec.pidfile, ctx.deadline.checked_sub(slack).unwrap_or(ctx.deadline), ctx.deadline)?;
            }
            Manager::Systemd { unit } => match process::detect_unit(unit.as_deref(), ctx.deadline) {
                Ok(u) => process::unit_stop(&u, ctx.deadline)?,
                // No systemctl or no such unit: nothing can be running.
                Err(e) => info!("nothing to stop: {e}"),
            },
        }
        GateState::remove(&ctx.state_file("state"))
    }

    fn monitor(&self, ctx: &Context<'_>) -> Result<Running, OcfError> {
        let mgr = match manager(ctx) {
            Ok(m) => m,
            // A probe is never fatal: with an unusable configuration nothing of ours runs.
            Err(_) if ctx.probe => return Ok(Running::No),
            Err(e) => return Err(e),
        };
        let running = match is_running(&mgr, ctx.deadline) {
            Ok(r) => r,
            Err(_) if ctx.probe => false,
            Err(e) => return Err(e),
        };
        if !running {
            return Ok(Running::No);
        }
        if ctx.probe {
            return Ok(Running::Yes);
        }
        let path = ctx.state_file("state");
        match GateState::load(&path) {
            Some(state) => gate::monitor_open(ctx, &path, state),
            // Started outside Pacemaker: nothing known to watch yet.
            None => Ok(Running::Yes),
        }
    }

    fn validate(&self, ctx: &Context<'_>) -> Result<(), OcfError> {
        let (settings, _) = check_config(ctx)?;
        let mut mgr = manager(ctx)?;
        // This node only from OCF_CHECK_LEVEL 10: pcs validates on the node it runs on.
        if ctx.check_level >= 10 {
            check_node(ctx, &settings)?;
            check_manager(&mut mgr, ctx.deadline)?;
        }
        Ok(())
    }

    fn notify(&self, _ctx: &Context<'_>) -> Result<(), OcfError> {
        Ok(())
    }
}
