//! The evacuation gate on a compute node, shared by `nova-compute-wait` and `NovaCompute`.
//!
//! What the two agents have in common, as glue between the OCF runtime and the shared domain
//! rules of `iha-core` (naming: which Nova host this node is; unfence: wait for the evacuation
//! and restore the service):
//!
//! * [`Settings`]: the parameters, checked, with `validate-all`'s distinction between a
//!   configuration wrong everywhere (6) and a problem of this node (5, 2);
//! * [`this_host`]: the Nova host name of this node (`[DEFAULT] host` of nova.conf, else the
//!   host name rule), confirmed against Nova's service list when Nova answers: the same key
//!   fence_compute writes the `evacuate` attribute under (REFERENCE.md O27);
//! * [`open`]: the gate itself — return at once for a host that was never fenced; otherwise wait
//!   (bounded) until the evacuation is settled, pause while Nova still runs evacuations from
//!   this host (at most `evacuation_delay`), then enable the service and clear forced-down
//!   where Nova allows it;
//! * [`watch`]: what a recurring monitor does — close the gate (not running) when an evacuation
//!   of this host is requested, finish a deferred un-forcing, and report Nova's view of the
//!   service without ever failing for it;
//! * [`GateState`]: the state file (`HA_RSCTMP`, tmpfs: gone after a reboot, as a fenced host's
//!   gate must be).

use iha_core::naming::{self, LocalHost, NamingError, NovaConfPaths};
use iha_core::unfence::{self, Clock, Options, Unforce, UnfenceError, is_settled};
use iha_meta::Values;
use iha_ocf::{Context, OcfError, Running, Status};
use iha_openstack::{AuthParams, Client, ComputeApi, ConnectionOptions, Deadline, MigrationQuery, Service, ServiceQuery, auth_params_from_values};
use iha_pacemaker::{Cluster, EVACUATE_ATTR, Tools};
use log::{info, warn};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The default nova.conf; its absence is normal on nodes that run nova-compute in a container.
pub const DEFAULT_NOVA_CONF: &str = "/etc/nova/nova.conf";

/// Evacuation migration states in which Nova is still rebuilding an instance elsewhere.
const IN_FLIGHT: &[&str] = &["accepted", "queued", "preparing", "pre-migrating", "migrating", "post-migrating", "running"];

/// How often the gate looks again at attrd and Nova while it waits.
const POLL: Duration = Duration::from_secs(2);

/// The parameters the gate uses, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub nova_conf: PathBuf,
    /// `nova_conf` was set explicitly (then its absence is an error).
    pub nova_conf_given: bool,
    pub domain: Option<String>,
    /// Longest pause after the evacuation settled while Nova still runs evacuations from here.
    pub evacuation_delay: Duration,
    /// Longest wait for the evacuation to settle; `None`: until the action's deadline.
    pub evacuation_timeout: Option<Duration>,
}

fn seconds(values: &Values, name: &str) -> Result<u64, OcfError> {
    match values.nonempty(name) {
        None => Ok(0),
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| OcfError::configured(format!("{name} must be a whole number of seconds, not '{v}'"))),
    }
}

impl Settings {
    /// Reads and checks the gate's parameters (`ErrConfigured` for values wrong everywhere).
    pub fn from_values(values: &Values) -> Result<Settings, OcfError> {
        let nova_conf = values.nonempty("nova_conf").unwrap_or(DEFAULT_NOVA_CONF);
        let timeout = seconds(values, "evacuation_timeout")?;
        Ok(Settings {
            nova_conf: PathBuf::from(nova_conf),
            nova_conf_given: values.nonempty("nova_conf").is_some_and(|v| v != DEFAULT_NOVA_CONF),
            domain: naming::effective_domain(values.get("domain"), None),
            evacuation_delay: Duration::from_secs(seconds(values, "evacuation_delay")?),
            evacuation_timeout: (timeout > 0).then(|| Duration::from_secs(timeout)),
        })
    }

    /// nova.conf and its drop-in directory `<nova_conf>.d`.
    pub fn conf_paths(&self) -> NovaConfPaths {
        let mut dir = self.nova_conf.clone().into_os_string();
        dir.push(".d");
        NovaConfPaths { file: self.nova_conf.clone(), dir: Some(PathBuf::from(dir)) }
    }

    /// Checks of this node: an explicitly configured nova.conf must exist and be readable.
    pub fn check_node(&self) -> Result<(), OcfError> {
        match std::fs::File::open(&self.nova_conf) {
            Ok(_) => Ok(()),
            Err(_) if !self.nova_conf_given => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(OcfError::perm(format!("cannot read {}: {e}", self.nova_conf.display())))
            }
            Err(e) => Err(OcfError::installed(format!("{} not found on this node: {e}", self.nova_conf.display()))),
        }
    }
}

/// The OCF agents' OpenStack parameters as the client's explicit settings (the mapping every
/// agent shares).
pub fn auth_params(values: &Values) -> AuthParams {
    auth_params_from_values(values, values.get("password").filter(|p| !p.is_empty()))
}

/// Resolves the connection settings (parameters over clouds.yaml over `OS_*`). No credential
/// at all is allowed: the gate then works on the `evacuate` attribute alone and leaves Nova
/// to fence_compute `on` (the reference documents these parameters as "not in use"), so
/// `Ok(None)`. Credentials that are incomplete or contradictory are a configuration error (6).
pub fn connection(values: &Values) -> Result<Option<ConnectionOptions>, OcfError> {
    let params = auth_params(values);
    let any = params.password.is_some()
        || params.application_credential_secret.is_some()
        || params.application_credential_id.is_some()
        || params.cloud.is_some();
    let opts = match ConnectionOptions::from_process_env(params) {
        Ok(o) => o,
        Err(_) if !any => return Ok(None),
        Err(e) => return Err(OcfError::configured(format!("OpenStack connection: {e}"))),
    };
    // The client logs through the `log` facade by default: its records land in the agent's log.
    Ok(Some(opts))
}

/// TLS files named by the parameters must exist on this node (5 when not).
pub fn check_tls_files(values: &Values) -> Result<(), OcfError> {
    for name in ["cacert", "cert", "key"] {
        if let Some(p) = values.nonempty(name) {
            if !Path::new(p).is_file() {
                return Err(OcfError::installed(format!("{name} {p} not found on this node")));
            }
        }
    }
    Ok(())
}

/// `attrd_updater` must be reachable: the gate reads the `evacuate` attribute with it.
pub fn check_attrd_updater() -> Result<(), OcfError> {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("attrd_updater").is_file()));
    if found { Ok(()) } else { Err(OcfError::installed("attrd_updater (pacemaker-cli-utils) is not installed")) }
}

/// This machine's host name (`uname -n`, as the kernel has it for this UTS namespace).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// The Nova host name of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThisHost {
    /// The key of the `evacuate` attribute and the host of the nova-compute service.
    pub host: String,
    /// Nova confirmed the name (it lists a nova-compute service with it).
    pub confirmed: bool,
}

/// The Nova host name of this node: nova.conf or the host name rule ([`naming::local_nova_host`]),
/// then matched against Nova's nova-compute services ([`naming::resolve`]) exactly as
/// fence_compute matches its target. When Nova cannot be asked or does not know the host yet
/// (a new node), the local name is used. An ambiguous match is an error of this node's
/// configuration (2): guessing could open the gate of another host.
pub fn this_host(local: &LocalHost, hostname: &str, domain: Option<&str>, nova: Option<&dyn ComputeApi>) -> Result<ThisHost, OcfError> {
    let Some(nova) = nova else {
        return Ok(ThisHost { host: local.name.clone(), confirmed: false });
    };
    let q = ServiceQuery { binary: Some("nova-compute".into()), host: None };
    let hosts: Vec<String> = match nova.list_services(&q) {
        Ok(s) => s.into_iter().filter(|s| s.binary == "nova-compute").map(|s| s.host).collect(),
        Err(e) => {
            warn!("cannot list nova-compute services to confirm this host's name ({e}); using {}", local.name);
            return Ok(ThisHost { host: local.name.clone(), confirmed: false });
        }
    };
    match naming::resolve(&[&local.name, hostname], domain, &hosts) {
        Ok(r) => Ok(ThisHost { host: r.host, confirmed: true }),
        Err(e @ NamingError::Ambiguous { .. }) => Err(OcfError::args(format!("cannot name this node in Nova: {e}"))),
        Err(e) => {
            info!("{e}; using {} (nova-compute has not registered this host yet)", local.name);
            Ok(ThisHost { host: local.name.clone(), confirmed: false })
        }
    }
}

// ---- OCF glue shared by the two agents

/// Longest time spent asking Nova for this node's name: a never-fenced node must not wait on
/// an unreachable Nova.
const NAMING_BUDGET: Duration = Duration::from_secs(15);

/// The configuration checks (6): parameters, then the OpenStack connection settings as a set.
pub fn check_config(ctx: &Context<'_>) -> Result<(Settings, Option<ConnectionOptions>), OcfError> {
    ctx.check_params()?;
    let settings = Settings::from_values(ctx.values)?;
    let opts = connection(ctx.values)?;
    Ok((settings, opts))
}

/// The checks of this node (5, 4): files and programs the gate needs here.
pub fn check_node(ctx: &Context<'_>, settings: &Settings) -> Result<(), OcfError> {
    settings.check_node()?;
    check_tls_files(ctx.values)?;
    check_attrd_updater()
}

/// Every check start runs, and the Nova client.
pub fn prepare(ctx: &Context<'_>) -> Result<(Settings, Option<Client>), OcfError> {
    let (settings, opts) = check_config(ctx)?;
    check_node(ctx, &settings)?;
    Ok((settings, client(ctx, opts)))
}

/// The Nova client of an action, bounded by its deadline; `None` without credentials.
pub fn client(ctx: &Context<'_>, opts: Option<ConnectionOptions>) -> Option<Client> {
    if opts.is_none() {
        info!("no OpenStack credentials: only the evacuate attribute is watched (fence_compute on restores the service)");
    }
    opts.map(|o| Client::new(o).with_deadline(Deadline::at(ctx.deadline)))
}

/// This node's Nova host name (see [`this_host`]), asking Nova for at most
/// [`NAMING_BUDGET`].
pub fn resolve_host(ctx: &Context<'_>, settings: &Settings, nova: Option<&Client>) -> Result<String, OcfError> {
    let hostname = hostname();
    let local = naming::local_nova_host(&settings.conf_paths(), &hostname, settings.domain.as_deref());
    let quick = nova.map(|n| n.with_deadline(Deadline::at(ctx.deadline.min(Instant::now() + NAMING_BUDGET))));
    Ok(this_host(&local, &hostname, settings.domain.as_deref(), quick.as_ref().map(|c| c as &dyn ComputeApi))?.host)
}


/// A recurring monitor of an open gate whose state is `state` (saved at `path`): [`watch`],
/// logging Nova's view when it changes; 7 only when an evacuation of the host is requested.
pub fn monitor_open(ctx: &Context<'_>, path: &Path, mut state: GateState) -> Result<Running, OcfError> {
    if state.host.is_empty() {
        return Ok(Running::Yes);
    }
    let nova = match connection(ctx.values) {
        Ok(opts) => opts.map(|o| Client::new(o).with_deadline(Deadline::at(ctx.deadline))),
        Err(e) => {
            warn!("cannot watch nova-compute in Nova: {e}");
            None
        }
    };
    let watched = watch(&Tools::default(), nova.as_ref().map(|c| c as &dyn ComputeApi), &state.host, state.unforce_pending, ctx.deadline)?;
    log_view_change(&state.host, state.last_view, watched.view, watched.unforce_pending);
    if state.last_view != Some(watched.view) || state.unforce_pending != watched.unforce_pending {
        state.last_view = Some(watched.view);
        state.unforce_pending = watched.unforce_pending;
        // Only the log's change detection and the retry depend on it: not fatal.
        if let Err(e) = state.save(path) {
            warn!("{e}");
        }
    }
    Ok(Running::Yes)
}

/// What [`open`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The `evacuate` value at the start: `None` when the host was never fenced.
    pub initial: Option<String>,
    /// The gate waited for an evacuation to settle.
    pub waited: bool,
    /// Clearing forced-down is left to a later step (after nova-compute has started).
    pub unforce_pending: bool,
}

/// Opens the gate for `host` (see the module documentation). Never fails because of Nova: the
/// evacuation being settled is what the gate guards; Nova problems are logged, and un-forcing
/// is then left to the monitor. Fails (1) when the evacuation is not settled by `deadline`.
pub fn open(
    cluster: &dyn Cluster,
    nova: Option<&dyn ComputeApi>,
    clock: &dyn Clock,
    host: &str,
    settings: &Settings,
    deadline: Instant,
) -> Result<Opened, OcfError> {
    let now = clock.now();
    let initial = match cluster.attr_query(EVACUATE_ATTR, host, deadline.min(now + Duration::from_secs(30))) {
        Ok(None) => {
            info!("{host} was never fenced: nothing to wait for");
            return Ok(Opened { initial: None, waited: false, unforce_pending: false });
        }
        Ok(Some(v)) => Some(v),
        // Unknown: wait_for_evacuation retries the query until the deadline.
        Err(e) => {
            warn!("cannot read the evacuate attribute of {host}: {e}");
            Some(String::from("?"))
        }
    };
    let mut waited = false;
    if !is_settled(initial.as_deref()) {
        let wait_deadline = settings.evacuation_timeout.map_or(deadline, |t| deadline.min(now + t));
        let opts = Options { poll: POLL, ..Options::with_deadline(Some(wait_deadline)) };
        unfence::wait_for_evacuation(cluster, host, &opts, clock).map_err(|e| match e {
            UnfenceError::EvacuationPending { .. } => OcfError::generic(format!("{e}; nova-compute stays stopped")),
            e => OcfError::generic(e.to_string()),
        })?;
        waited = true;
    }
    let Some(nova) = nova else {
        return Ok(Opened { initial, waited, unforce_pending: false });
    };
    pause_for_rebuilds(nova, clock, host, settings.evacuation_delay, deadline);
    // Before nova-compute runs, Nova refuses to clear forced-down while `done` evacuation
    // records remain: do not retry now (unforce_window 0), leave it for after the start.
    let opts = Options { unforce_window: Duration::ZERO, ..Options::with_deadline(Some(deadline)) };
    let unforce_pending = match unfence::restore_service(nova, host, &opts, clock) {
        Ok(r) => matches!(r.unforce, Unforce::Refused { .. }),
        Err(UnfenceError::UnknownHost { .. }) => false,
        Err(e) => {
            warn!("{e}: retried by the monitor");
            true
        }
    };
    Ok(Opened { initial, waited, unforce_pending })
}

/// Pauses, at most `max` and never past `deadline`, while Nova lists evacuations from `host`
/// that are still rebuilding elsewhere: the host's nova-compute cleans up evacuated instances
/// when it starts, and must not race with a rebuild that has not finished. This is what
/// `evacuation_delay` bounds; no evacuation in flight means no pause at all.
pub fn pause_for_rebuilds(nova: &dyn ComputeApi, clock: &dyn Clock, host: &str, max: Duration, deadline: Instant) {
    if max.is_zero() {
        return;
    }
    let start = clock.now();
    // Keep time for the rest of the action after the pause.
    let end = (start + max).min(deadline.checked_sub(Duration::from_secs(5)).unwrap_or(deadline));
    let q = MigrationQuery {
        source_compute: Some(host.to_string()),
        migration_type: Some("evacuation".into()),
        ..MigrationQuery::default()
    };
    let mut logged = false;
    loop {
        let in_flight = match nova.list_migrations(&q) {
            Ok(m) => m.into_iter().filter(|m| IN_FLIGHT.contains(&m.status.as_str())).count(),
            Err(e) => {
                warn!("cannot list evacuations from {host} ({e}); not pausing");
                return;
            }
        };
        if in_flight == 0 {
            if logged {
                info!("evacuations from {host} finished after {}s", clock.now().saturating_duration_since(start).as_secs());
            }
            return;
        }
        let now = clock.now();
        if now + POLL > end {
            warn!(
                "{in_flight} evacuation(s) from {host} still in progress after {}s (evacuation_delay): going on",
                now.saturating_duration_since(start).as_secs()
            );
            return;
        }
        if !logged {
            info!("Pausing to give evacuations from {host} time to complete ({in_flight} in progress)");
            logged = true;
        }
        clock.sleep(POLL);
    }
}

/// Nova's view of the service, as the monitor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Up,
    /// Not heartbeating (and not forced down).
    Down,
    ForcedDown,
    Disabled,
    /// Nova lists no nova-compute service for the host (not registered yet).
    Unregistered,
    /// Nova could not be asked.
    Unreachable,
    /// No credentials: Nova is not asked.
    NotWatched,
}

impl View {
    pub fn as_str(self) -> &'static str {
        match self {
            View::Up => "up",
            View::Down => "down",
            View::ForcedDown => "forced-down",
            View::Disabled => "disabled",
            View::Unregistered => "unregistered",
            View::Unreachable => "unreachable",
            View::NotWatched => "not-watched",
        }
    }

    fn of(svc: &Service) -> View {
        if svc.forced_down == Some(true) {
            View::ForcedDown
        } else if !svc.is_up() {
            View::Down
        } else if svc.status == "disabled" {
            View::Disabled
        } else {
            View::Up
        }
    }
}

/// What a recurring monitor concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub view: View,
    /// Still waiting to clear forced-down.
    pub unforce_pending: bool,
}

/// One recurring monitor of an open gate for `host`:
///
/// * an evacuation of this host requested (`evacuate` is `yes` or in progress) → `Err` with
///   status 7: Pacemaker then stops the gate and everything ordered after it (nova-compute),
///   and the next start waits for the evacuation — nova-compute must not run on a host whose
///   instances are being rebuilt elsewhere;
/// * a deferred un-forcing is retried (Nova accepts once nova-compute has started);
/// * Nova's view is reported, never failed on: Nova unreachable, the service down, disabled or
///   not registered are logged when they change (a failed monitor would restart nova-compute on
///   every compute node at each control-plane hiccup, and restarting cannot fix Nova).
pub fn watch(
    cluster: &dyn Cluster,
    nova: Option<&dyn ComputeApi>,
    host: &str,
    unforce_pending: bool,
    deadline: Instant,
) -> Result<Watched, OcfError> {
    let now = Instant::now();
    match cluster.attr_query(EVACUATE_ATTR, host, deadline.min(now + Duration::from_secs(10))) {
        Ok(v) if !is_settled(v.as_deref()) => {
            return Err(OcfError::new(
                Status::NotRunning,
                format!(
                    "evacuation of {host} requested (evacuate={}): closing the gate so that nova-compute stays stopped until it is finished",
                    v.unwrap_or_default()
                ),
            ));
        }
        Ok(_) => {}
        Err(e) => log::debug!("cannot read the evacuate attribute of {host}: {e}"),
    }
    let mut pending = unforce_pending;
    let Some(nova) = nova else {
        return Ok(Watched { view: View::NotWatched, unforce_pending: false });
    };
    let svc = match unfence::compute_service(nova, host) {
        Ok(s) => s,
        Err(UnfenceError::UnknownHost { .. }) => return Ok(Watched { view: View::Unregistered, unforce_pending: pending }),
        Err(e) => {
            log::debug!("{e}");
            return Ok(Watched { view: View::Unreachable, unforce_pending: pending });
        }
    };
    let mut view = View::of(&svc);
    if pending && svc.forced_down != Some(false) {
        match unfence::clear_forced_down(nova, host) {
            Ok(true) => {
                pending = false;
                view = match unfence::compute_service(nova, host) {
                    Ok(s) => View::of(&s),
                    Err(_) => view,
                };
            }
            Ok(false) => {}
            Err(e) => log::debug!("{e}"),
        }
    } else if svc.forced_down == Some(false) {
        pending = false;
    }
    Ok(Watched { view, unforce_pending: pending })
}

/// Logs a change of Nova's view between two monitors.
pub fn log_view_change(host: &str, before: Option<View>, now: View, unforce_pending: bool) {
    if before == Some(now) {
        return;
    }
    match now {
        View::Up => info!("nova-compute on {host} is up in Nova"),
        View::ForcedDown if unforce_pending => {
            info!("nova-compute on {host} is still forced down: Nova clears it once nova-compute has started and completed the evacuation records")
        }
        View::ForcedDown => warn!("nova-compute on {host} is forced down in Nova (not by this agent: left as it is)"),
        View::Down => warn!("nova-compute on {host} is down in Nova (no heartbeat)"),
        View::Disabled => warn!("nova-compute on {host} is disabled in Nova"),
        View::Unregistered => warn!("Nova has no nova-compute service on {host} yet"),
        View::Unreachable => warn!("cannot ask Nova about nova-compute on {host}"),
        View::NotWatched => info!("no OpenStack credentials: Nova's view of nova-compute on {host} is not watched"),
    }
}

/// The gate's state file: present while the gate is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateState {
    pub host: String,
    pub unforce_pending: bool,
    pub last_view: Option<View>,
}

impl GateState {
    /// Reads the state file; `None` when absent. A file we cannot parse still means "open".
    pub fn load(path: &Path) -> Option<GateState> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut st = GateState { host: String::new(), unforce_pending: false, last_view: None };
        for line in text.lines() {
            match line.split_once('=') {
                Some(("host", v)) => st.host = v.trim().to_string(),
                Some(("unforce_pending", v)) => st.unforce_pending = v.trim() == "1",
                Some(("last_view", v)) => {
                    st.last_view = [
                        View::Up,
                        View::Down,
                        View::ForcedDown,
                        View::Disabled,
                        View::Unregistered,
                        View::Unreachable,
                        View::NotWatched,
                    ]
                        .into_iter()
                        .find(|x| x.as_str() == v.trim());
                }
                _ => {}
            }
        }
        Some(st)
    }

    /// Writes the state file atomically (it holds no secret).
    pub fn save(&self, path: &Path) -> Result<(), OcfError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| OcfError::perm(format!("cannot create {}: {e}", dir.display())))?;
        }
        let text = format!(
            "host={}\nunforce_pending={}\nlast_view={}\n",
            self.host,
            u8::from(self.unforce_pending),
            self.last_view.map_or("", View::as_str)
        );
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| OcfError::perm(format!("cannot write state file {}: {e}", path.display())))
    }

    /// Removes the state file (absent is fine).
    pub fn remove(path: &Path) -> Result<(), OcfError> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(OcfError::generic(format!("cannot remove {}: {e}", path.display()))),
        }
    }
}
