//! "The host has recovered": the shared unfencing logic (fence_compute `on`, and the
//! compute-node agents nova-compute-wait and NovaCompute).
//!
//! Two steps, both bounded by the caller's deadline (the reference waits forever, O6):
//!
//! 1. [`wait_for_evacuation`]: poll the host's private `evacuate` attribute every
//!    [`Options::poll`] until it is settled: `no`, empty or absent ([`is_settled`]). `yes`, an
//!    in-progress `<node>@<epoch>` marker and any value we do not know keep us waiting; the log
//!    says what we wait for. When the deadline comes first, the result is
//!    [`UnfenceError::EvacuationPending`]: a failure, so Pacemaker retries unfencing later;
//!    never a success that would let nova-compute start under an unfinished evacuation.
//! 2. [`restore_service`]: clear `forced_down` (when set), then enable the service (when it is
//!    disabled by fencing: by us, or with no reason, as the reference agent left it; a service
//!    an operator disabled with a reason of their own stays disabled).
//!
//! **Nova refuses to clear forced-down** (400) while `done` evacuation migrations of the host
//! remain; only a nova-compute start on the host turns them `completed`. Under Pacemaker the
//! host's nova-compute is usually started *after* unfencing (compute-unfence-trigger has
//! `requires=unfencing`; nova-compute-wait gates the service), so an unfencing that insisted
//! on clearing forced-down would deadlock: it would wait for a nova-compute start that waits
//! for it. The rule, which cannot deadlock:
//!
//! * the service is enabled anyway, and clearing forced-down is retried with backoff for at most
//!   [`Options::unforce_window`] (within the deadline) — enough when nova-compute is started
//!   by something else at the same time;
//! * then `restore_service` **succeeds** with [`Unforce::Refused`] and a warning saying that
//!   the host stays forced down until its nova-compute has started once: the evacuation is
//!   settled (step 1), which is what unfencing guards. Whoever starts nova-compute calls
//!   [`clear_forced_down`] afterwards (nova-compute-wait and NovaCompute on start and monitor;
//!   a later unfencing does the same), and Nova accepts it then.
//!
//! Any other Nova failure is an error with the reason, so the action fails and is retried.

use iha_openstack::{ComputeApi, Error as NovaError, Service, ServiceQuery, ServiceRef};
use iha_pacemaker::{Cluster, EVACUATE_ATTR};
use log::{debug, info, warn};
use std::time::{Duration, Instant};

/// Prefix of the `disabled_reason` our agents write; a service disabled with another reason
/// was disabled by someone else and is left disabled.
pub const REASON_PREFIX: &str = "instance-ha:";

/// Time as the waiting loops see it; injectable so tests need no real sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A clock whose `sleep` advances time at once, for tests of deadline logic (here and in the
/// agents that use this module) without real waiting.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<Instant>,
    slept: std::sync::Mutex<Vec<Duration>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock { now: std::sync::Mutex::new(Instant::now()), slept: std::sync::Mutex::new(Vec::new()) }
    }
}

impl ManualClock {
    /// The sleeps requested so far.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.slept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Total time slept.
    pub fn slept(&self) -> Duration {
        self.sleeps().iter().sum()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sleep(&self, d: Duration) {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += d;
        self.slept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(d);
    }
}

/// Knobs of the unfencing loops.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// When everything must be finished; `None` = no limit (only with `action_timeout=0`).
    pub deadline: Option<Instant>,
    /// Interval between two reads of the `evacuate` attribute (the reference's 2 s).
    pub poll: Duration,
    /// How long to keep retrying a refused un-forcing before leaving it to the compute node.
    pub unforce_window: Duration,
    /// First retry delay of a refused un-forcing; doubles up to `backoff_max`.
    pub backoff: Duration,
    pub backoff_max: Duration,
}

impl Options {
    /// Defaults with this deadline.
    pub fn with_deadline(deadline: Option<Instant>) -> Options {
        Options {
            deadline,
            poll: Duration::from_secs(2),
            unforce_window: Duration::from_secs(10),
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(4),
        }
    }
}

/// Whether an `evacuate` value means "nothing left to do": `no`, empty, or absent.
pub fn is_settled(value: Option<&str>) -> bool {
    matches!(value.map(str::trim), None | Some("" | "no"))
}

/// Why unfencing did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnfenceError {
    /// The deadline came while the evacuation was still pending (`value` is the last value read).
    EvacuationPending { host: String, value: Option<String>, waited: Duration },
    /// The attribute could not be read until the deadline.
    Cluster { host: String, message: String },
    /// Nova has no `nova-compute` service for the host.
    UnknownHost { host: String },
    /// A Nova call failed.
    Nova { host: String, what: &'static str, error: NovaError },
}

impl std::fmt::Display for UnfenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnfenceError::EvacuationPending { host, value, waited } => write!(
                f,
                "evacuation of {host} is not finished after {}s (evacuate={}); unfencing will be retried",
                waited.as_secs(),
                value.as_deref().unwrap_or("")
            ),
            UnfenceError::Cluster { host, message } => {
                write!(f, "cannot read the evacuate attribute of {host}: {message}")
            }
            UnfenceError::UnknownHost { host } => write!(f, "nova has no nova-compute service on host {host}"),
            UnfenceError::Nova { host, what, error } => write!(f, "cannot {what} nova-compute on {host}: {error}"),
        }
    }
}

impl std::error::Error for UnfenceError {}

/// Each query of attrd gets at most this long when there is no overall deadline.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until the evacuation of `host` (a Nova host name, the attribute key) is settled;
/// returns the settled value (`None` when absent).
pub fn wait_for_evacuation(
    cluster: &dyn Cluster,
    host: &str,
    opts: &Options,
    clock: &dyn Clock,
) -> Result<Option<String>, UnfenceError> {
    let start = clock.now();
    let mut last: Option<Option<String>> = None;
    let mut last_error: Option<String>;
    loop {
        let now = clock.now();
        let query_deadline = opts.deadline.unwrap_or(now + QUERY_TIMEOUT).min(now + QUERY_TIMEOUT);
        match cluster.attr_query(EVACUATE_ATTR, host, query_deadline) {
            Ok(v) if is_settled(v.as_deref()) => {
                info!("Evacuation complete for: {host} '{}'", v.as_deref().unwrap_or(""));
                return Ok(v);
            }
            Ok(v) => {
                if last.as_ref() != Some(&v) {
                    info!(
                        "Waiting for {host} to complete evacuations: {} (unfencing continues when it is no, empty or absent)",
                        v.as_deref().unwrap_or("")
                    );
                } else {
                    debug!("still waiting for {host}: evacuate={}", v.as_deref().unwrap_or(""));
                }
                last = Some(v);
                last_error = None;
            }
            Err(e) => {
                warn!("cannot read the evacuate attribute of {host}: {e}; retrying");
                last_error = Some(e.to_string());
            }
        }
        let now = clock.now();
        if let Some(d) = opts.deadline {
            if now + opts.poll > d {
                let waited = now.saturating_duration_since(start);
                return Err(match (last, last_error) {
                    (_, Some(message)) => UnfenceError::Cluster { host: host.into(), message },
                    (value, None) => {
                        UnfenceError::EvacuationPending { host: host.into(), value: value.flatten(), waited }
                    }
                });
            }
        }
        clock.sleep(opts.poll);
    }
}

/// What happened to `forced_down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unforce {
    /// It was not set.
    NotForced,
    /// We cleared it.
    Cleared,
    /// Nova refused until the deadline or the window passed (`done` evacuation records remain
    /// until the host's nova-compute starts); the service stays forced down for now.
    Refused { message: String },
}

/// The outcome of [`restore_service`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub unforce: Unforce,
    /// The service was disabled by fencing and is now enabled.
    pub enabled: bool,
    /// Disabled by someone else (with this reason) and left so.
    pub left_disabled: Option<String>,
}

/// Whether `e` is Nova's refusal to clear forced-down while `done` evacuations remain.
pub fn is_done_migrations_refusal(e: &NovaError) -> bool {
    match e {
        NovaError::BadRequest { message, .. } => {
            let m = message.to_ascii_lowercase();
            m.contains("evacuation") && (m.contains("done") || m.contains("force up"))
        }
        _ => false,
    }
}

/// The `nova-compute` service of `host`.
pub fn compute_service(nova: &dyn ComputeApi, host: &str) -> Result<Service, UnfenceError> {
    let q = ServiceQuery { binary: Some("nova-compute".into()), host: Some(host.into()) };
    nova.list_services(&q)
        .map_err(|error| UnfenceError::Nova { host: host.into(), what: "query", error })?
        .into_iter()
        .find(|s| s.host == host && s.binary == "nova-compute")
        .ok_or_else(|| UnfenceError::UnknownHost { host: host.into() })
}

/// Whether a disabled service was disabled by fencing (ours, or the reference's empty reason).
pub fn disabled_by_fencing(s: &Service) -> bool {
    s.disabled_reason.as_deref().map(str::trim).is_none_or(|r| r.is_empty() || r.starts_with(REASON_PREFIX))
}

/// Clears `forced_down` and enables the service of `host` (see the module documentation for
/// the refused-un-forcing rule).
pub fn restore_service(
    nova: &dyn ComputeApi,
    host: &str,
    opts: &Options,
    clock: &dyn Clock,
) -> Result<Restored, UnfenceError> {
    let svc = compute_service(nova, host)?;
    let sref: ServiceRef = svc.to_ref();
    debug!(
        "Status of nova-compute on {host} is {}, {}, forced_down={:?}",
        svc.state.as_deref().unwrap_or("?"),
        svc.status,
        svc.forced_down
    );
    let mut out = Restored { unforce: Unforce::NotForced, enabled: false, left_disabled: None };
    // Before 2.11 forced_down is not reported: clear it blindly, as the reference does.
    let forced = svc.forced_down != Some(false);
    let mut refusal: Option<String> = None;
    if forced {
        info!("Forcing nova-compute back up on {host}");
        match nova.force_down(&sref, false) {
            Ok(()) => out.unforce = Unforce::Cleared,
            Err(e) if is_done_migrations_refusal(&e) => {
                info!("nova refuses to clear forced-down on {host} until its nova-compute has restarted once: {e}");
                refusal = Some(e.service_message().unwrap_or_default().to_string());
            }
            Err(error) => return Err(UnfenceError::Nova { host: host.into(), what: "clear forced-down of", error }),
        }
    }
    if svc.status == "disabled" {
        if disabled_by_fencing(&svc) {
            info!("Enabling nova-compute on {host}");
            nova.enable_service(&sref).map_err(|error| UnfenceError::Nova { host: host.into(), what: "enable", error })?;
            out.enabled = true;
        } else {
            let reason = svc.disabled_reason.clone().unwrap_or_default();
            warn!("nova-compute on {host} stays disabled: it was disabled by someone else ({reason})");
            out.left_disabled = Some(reason);
        }
    }
    if let Some(mut message) = refusal {
        let start = clock.now();
        let mut end = start + opts.unforce_window;
        if let Some(d) = opts.deadline {
            end = end.min(d.checked_sub(Duration::from_secs(1)).unwrap_or(d));
        }
        let mut backoff = opts.backoff;
        loop {
            let now = clock.now();
            if now + backoff > end {
                warn!(
                    "nova-compute on {host} stays forced down: nova refused to clear it for {}s ({message}); \
                     it is cleared once nova-compute has started on {host} (nova-compute-wait/NovaCompute, or the next unfencing)",
                    now.saturating_duration_since(start).as_secs()
                );
                out.unforce = Unforce::Refused { message };
                break;
            }
            info!("retrying to clear forced-down on {host} in {}s", backoff.as_secs_f64());
            clock.sleep(backoff);
            backoff = (backoff * 2).min(opts.backoff_max);
            match nova.force_down(&sref, false) {
                Ok(()) => {
                    info!("forced-down cleared on {host}");
                    out.unforce = Unforce::Cleared;
                    break;
                }
                Err(e) if is_done_migrations_refusal(&e) => message = e.service_message().unwrap_or_default().to_string(),
                Err(error) => {
                    return Err(UnfenceError::Nova { host: host.into(), what: "clear forced-down of", error });
                }
            }
        }
    }
    Ok(out)
}

/// The whole unfencing: [`wait_for_evacuation`], then [`restore_service`].
pub fn unfence(
    nova: &dyn ComputeApi,
    cluster: &dyn Cluster,
    host: &str,
    opts: &Options,
    clock: &dyn Clock,
) -> Result<Restored, UnfenceError> {
    wait_for_evacuation(cluster, host, opts, clock)?;
    restore_service(nova, host, opts, clock)
}

/// For the compute node after its nova-compute has started: clears `forced_down` when set and
/// the evacuation is settled. `Ok(true)` when it is (now) clear; `Ok(false)` when Nova still
/// refuses (the restarted nova-compute has not yet completed the `done` records; try again at
/// the next monitor).
pub fn clear_forced_down(nova: &dyn ComputeApi, host: &str) -> Result<bool, UnfenceError> {
    let svc = compute_service(nova, host)?;
    if svc.forced_down == Some(false) {
        return Ok(true);
    }
    match nova.force_down(&svc.to_ref(), false) {
        Ok(()) => {
            info!("forced-down cleared on {host}");
            Ok(true)
        }
        Err(e) if is_done_migrations_refusal(&e) => {
            info!("nova still refuses to clear forced-down on {host}: {e}");
            Ok(false)
        }
        Err(error) => Err(UnfenceError::Nova { host: host.into(), what: "clear forced-down of", error }),
    }
}

/// A small scripted Nova for the tests of this module: services and migrations in memory, an
/// ordered call log, queued failures per operation, and Nova's refusal to clear forced-down
/// while `done` evacuation records remain (until `restart_compute`).
#[cfg(test)]
mod testnova {
    use iha_openstack::{
        Aggregate, ComputeApi, Error, EvacuateOutcome, EvacuateRequest, Flavor, Hypervisor, Image, ImageQuery,
        InstanceAction, Migration, MigrationQuery, ResetState, Result, Server, Service, ServiceQuery, ServiceRef,
        VersionRange,
    };
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    pub struct State {
        pub services: Vec<Service>,
        pub migrations: Vec<Migration>,
        pub calls: Vec<String>,
        pub failures: BTreeMap<String, VecDeque<Error>>,
    }

    #[derive(Debug, Default)]
    pub struct FakeNova {
        st: Mutex<State>,
    }

    pub fn done_migrations_error(host: &str) -> Error {
        Error::BadRequest {
            request: "PUT /os-services".into(),
            message: format!(
                "Unable to force up host {host} as `done` evacuation migration records remain associated with the host. \
                 Ensure the compute service has been restarted, allowing these records to move to `completed` before retrying this request."
            ),
        }
    }

    fn unsupported() -> Error {
        Error::Unsupported { message: "not in this fake".into() }
    }

    impl FakeNova {
        pub fn with_hosts(hosts: &[&str]) -> FakeNova {
            let n = FakeNova::default();
            for h in hosts {
                n.add_service(h, "up", "enabled", false);
            }
            n
        }
        pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
            f(&mut self.st.lock().unwrap())
        }
        pub fn add_service(&self, host: &str, state: &str, status: &str, forced: bool) {
            self.with(|s| {
                let id = format!("00000000-0000-4000-8000-{:012}", s.services.len());
                s.services.push(Service {
                    id,
                    binary: "nova-compute".into(),
                    host: host.into(),
                    status: status.into(),
                    state: Some(state.into()),
                    forced_down: Some(forced),
                    ..Default::default()
                })
            });
        }
        pub fn service(&self, host: &str) -> Option<Service> {
            self.with(|s| s.services.iter().find(|v| v.host == host).cloned())
        }
        pub fn add_evacuation(&self, host: &str, instance: &str, status: &str) {
            self.with(|s| {
                let id = (s.migrations.len() + 1).to_string();
                s.migrations.push(Migration {
                    id,
                    instance_uuid: Some(instance.into()),
                    source_compute: Some(host.into()),
                    status: status.into(),
                    migration_type: Some("evacuation".into()),
                    ..Default::default()
                })
            });
        }
        pub fn restart_compute(&self, host: &str) {
            self.with(|s| {
                for m in s.migrations.iter_mut().filter(|m| m.source_compute.as_deref() == Some(host) && m.status == "done") {
                    m.status = "completed".into();
                }
            });
        }
        pub fn fail_next(&self, op: &str, e: Error) {
            self.with(|s| s.failures.entry(op.into()).or_default().push_back(e));
        }
        pub fn calls(&self) -> Vec<String> {
            self.with(|s| s.calls.clone())
        }
        pub fn calls_of(&self, prefix: &str) -> Vec<String> {
            self.calls().into_iter().filter(|c| c.starts_with(prefix)).collect()
        }
        fn enter(&self, op: &str, detail: &str) -> Result<()> {
            self.with(|s| {
                s.calls.push(format!("{op} {detail}"));
                s.failures.get_mut(op).and_then(VecDeque::pop_front).map_or(Ok(()), Err)
            })
        }
        fn update(&self, r: &ServiceRef, f: impl FnOnce(&mut Service)) -> Result<()> {
            self.with(|s| match s.services.iter_mut().find(|v| Some(&v.id) == r.id.as_ref() || v.host == r.host) {
                Some(v) => {
                    f(v);
                    Ok(())
                }
                None => Err(Error::NotFound { request: "PUT /os-services".into(), message: r.host.clone() }),
            })
        }
    }

    impl ComputeApi for FakeNova {
        fn api_versions(&self) -> Result<VersionRange> {
            Ok(VersionRange { min: iha_openstack::Microversion::BASE, max: iha_openstack::Microversion::MAX_SUPPORTED })
        }
        fn list_services(&self, q: &ServiceQuery) -> Result<Vec<Service>> {
            self.enter("list_services", q.host.as_deref().unwrap_or("*"))?;
            Ok(self.with(|s| s.services.iter().filter(|v| q.host.as_ref().is_none_or(|h| &v.host == h)).cloned().collect()))
        }
        fn force_down(&self, r: &ServiceRef, forced: bool) -> Result<()> {
            self.enter("force_down", &format!("{} {forced}", r.host))?;
            let blocked = self.with(|s| {
                s.migrations.iter().any(|m| m.source_compute.as_deref() == Some(r.host.as_str()) && m.status == "done")
            });
            if !forced && blocked {
                return Err(done_migrations_error(&r.host));
            }
            self.update(r, |v| {
                v.forced_down = Some(forced);
                if forced {
                    v.state = Some("down".into());
                }
            })
        }
        fn disable_service(&self, r: &ServiceRef, reason: Option<&str>) -> Result<()> {
            self.enter("disable", &r.host)?;
            self.update(r, |v| {
                v.status = "disabled".into();
                v.disabled_reason = reason.map(str::to_string);
            })
        }
        fn enable_service(&self, r: &ServiceRef) -> Result<()> {
            self.enter("enable", &r.host)?;
            self.update(r, |v| {
                v.status = "enabled".into();
                v.disabled_reason = None;
            })
        }
        fn list_hypervisors(&self) -> Result<Vec<Hypervisor>> {
            Err(unsupported())
        }
        fn list_servers_on_host(&self, _: &str) -> Result<Vec<Server>> {
            Err(unsupported())
        }
        fn list_servers_changed_since(&self, _: &str) -> Result<Vec<Server>> {
            Err(unsupported())
        }
        fn get_server(&self, _: &str) -> Result<Server> {
            Err(unsupported())
        }
        fn server_metadata(&self, _: &str) -> Result<BTreeMap<String, String>> {
            Err(unsupported())
        }
        fn server_tags(&self, _: &str) -> Result<Vec<String>> {
            Err(unsupported())
        }
        fn server_actions(&self, _: &str) -> Result<Vec<InstanceAction>> {
            Err(unsupported())
        }
        fn list_flavors(&self) -> Result<Vec<Flavor>> {
            Err(unsupported())
        }
        fn flavor_extra_specs(&self, _: &str) -> Result<BTreeMap<String, String>> {
            Err(unsupported())
        }
        fn list_images(&self, _: &ImageQuery) -> Result<Vec<Image>> {
            Err(unsupported())
        }
        fn list_aggregates(&self) -> Result<Vec<Aggregate>> {
            Err(unsupported())
        }
        fn evacuate(&self, _: &str, _: &EvacuateRequest) -> Result<EvacuateOutcome> {
            Err(unsupported())
        }
        fn lock_server(&self, _: &str, _: Option<&str>) -> Result<()> {
            Err(unsupported())
        }
        fn unlock_server(&self, _: &str) -> Result<()> {
            Err(unsupported())
        }
        fn reset_state(&self, _: &str, _: ResetState) -> Result<()> {
            Err(unsupported())
        }
        fn list_migrations(&self, _: &MigrationQuery) -> Result<Vec<Migration>> {
            Err(unsupported())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::testnova::{FakeNova, done_migrations_error};
    use iha_pacemaker::fake::FakeCluster;

    fn fenced_nova(host: &str) -> FakeNova {
        let nova = FakeNova::default();
        nova.add_service(host, "down", "disabled", true);
        nova.with(|s| s.services[0].disabled_reason = Some("instance-ha: fenced by fence_compute".into()));
        nova
    }

    fn opts(clock: &ManualClock, secs: u64) -> Options {
        Options::with_deadline(Some(clock.now() + Duration::from_secs(secs)))
    }

    #[test]
    fn settled_values() {
        assert!(is_settled(None));
        assert!(is_settled(Some("")));
        assert!(is_settled(Some("no")));
        assert!(!is_settled(Some("yes")));
        assert!(!is_settled(Some("ctl0@1700000000")));
        assert!(!is_settled(Some("No")));
    }

    #[test]
    fn absent_empty_and_no_unfence_at_once() {
        for value in [None, Some(""), Some("no")] {
            let clock = ManualClock::default();
            let nova = fenced_nova("c0.example.com");
            let cluster = FakeCluster::new("ctl0");
            if let Some(v) = value {
                cluster.set(EVACUATE_ATTR, "c0.example.com", v);
            }
            let r = unfence(&nova, &cluster, "c0.example.com", &opts(&clock, 55), &clock).unwrap();
            assert_eq!(r, Restored { unforce: Unforce::Cleared, enabled: true, left_disabled: None });
            assert_eq!(nova.calls_of("force_down"), ["force_down c0.example.com false"]);
            assert_eq!(nova.calls_of("enable"), ["enable c0.example.com"]);
            assert_eq!(clock.slept(), Duration::ZERO);
            assert!(cluster.writes().is_empty(), "unfencing never writes the attribute");
        }
    }

    #[test]
    fn waits_for_yes_within_the_deadline_and_fails_clearly() {
        let clock = ManualClock::default();
        let nova = fenced_nova("c0");
        let cluster = FakeCluster::new("ctl0");
        cluster.set(EVACUATE_ATTR, "c0", "yes");
        let e = unfence(&nova, &cluster, "c0", &opts(&clock, 10), &clock).unwrap_err();
        assert!(matches!(&e, UnfenceError::EvacuationPending { value: Some(v), .. } if v == "yes"), "{e}");
        assert!(e.to_string().contains("evacuation of c0 is not finished"), "{e}");
        assert!(clock.slept() <= Duration::from_secs(10));
        assert!(clock.slept() >= Duration::from_secs(8));
        assert!(nova.calls().is_empty(), "nothing is touched before the evacuation is settled");
    }

    #[test]
    fn in_progress_marker_keeps_waiting_until_no() {
        let clock = std::sync::Arc::new(ManualClock::default());
        let nova = fenced_nova("c0");
        let cluster = std::sync::Arc::new(FakeCluster::new("ctl0"));
        cluster.set(EVACUATE_ATTR, "c0", "ctl0@1700000000");
        // The engine finishes after three polls.
        struct Flip(std::sync::Arc<FakeCluster>, std::sync::Arc<ManualClock>, std::sync::Mutex<u32>);
        impl Clock for Flip {
            fn now(&self) -> Instant {
                self.1.now()
            }
            fn sleep(&self, d: Duration) {
                self.1.sleep(d);
                let mut n = self.2.lock().unwrap();
                *n += 1;
                if *n == 3 {
                    self.0.set(EVACUATE_ATTR, "c0", "no");
                }
            }
        }
        let flip = Flip(cluster.clone(), clock.clone(), std::sync::Mutex::new(0));
        let r = unfence(&nova, &*cluster, "c0", &opts(&clock, 55), &flip).unwrap();
        assert!(r.enabled);
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(2); 3]);
    }

    #[test]
    fn attrd_failures_are_retried_then_reported() {
        let clock = ManualClock::default();
        let nova = fenced_nova("c0");
        let cluster = FakeCluster::new("ctl0");
        cluster.fail_queries(100);
        let e = unfence(&nova, &cluster, "c0", &opts(&clock, 6), &clock).unwrap_err();
        assert!(matches!(e, UnfenceError::Cluster { .. }), "{e}");
        let clock = ManualClock::default();
        cluster.fail_queries(0);
        let cluster = FakeCluster::new("ctl0");
        cluster.fail_queries(1);
        assert!(unfence(&nova, &cluster, "c0", &opts(&clock, 6), &clock).is_ok());
    }

    #[test]
    fn refused_unforce_enables_retries_and_succeeds_leaving_it_to_the_node() {
        let clock = ManualClock::default();
        let nova = fenced_nova("c0");
        nova.add_evacuation("c0", "vm-1", "done");
        let cluster = FakeCluster::new("ctl0");
        cluster.set(EVACUATE_ATTR, "c0", "no");
        let r = unfence(&nova, &cluster, "c0", &opts(&clock, 55), &clock).unwrap();
        assert!(matches!(&r.unforce, Unforce::Refused { message } if message.contains("`done` evacuation")), "{r:?}");
        assert!(r.enabled, "the service is enabled although forced-down stays");
        let svc = nova.service("c0").unwrap();
        assert_eq!((svc.status.as_str(), svc.forced_down), ("enabled", Some(true)));
        // Bounded by the window, with backoff 1, 2, 4, 4 … s.
        assert!(clock.slept() <= Duration::from_secs(10), "{:?}", clock.sleeps());
        assert_eq!(clock.sleeps()[..3], [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)]);
        assert!(nova.calls_of("force_down").len() >= 3);
        // After nova-compute restarted, the compute node clears it.
        assert!(!clear_forced_down(&nova, "c0").unwrap());
        nova.restart_compute("c0");
        assert!(clear_forced_down(&nova, "c0").unwrap());
        assert_eq!(nova.service("c0").unwrap().forced_down, Some(false));
        assert!(clear_forced_down(&nova, "c0").unwrap());
    }

    #[test]
    fn refusal_that_clears_during_the_window_is_cleared() {
        let clock = ManualClock::default();
        let nova = fenced_nova("c0");
        nova.fail_next("force_down", done_migrations_error("c0"));
        nova.fail_next("force_down", done_migrations_error("c0"));
        let r = restore_service(&nova, "c0", &opts(&clock, 55), &clock).unwrap();
        assert_eq!(r.unforce, Unforce::Cleared);
        assert_eq!(clock.sleeps(), [Duration::from_secs(1), Duration::from_secs(2)]);
        // The deadline cuts the window short.
        let clock = ManualClock::default();
        nova.with(|s| s.services[0].forced_down = Some(true));
        for _ in 0..10 {
            nova.fail_next("force_down", done_migrations_error("c0"));
        }
        let r = restore_service(&nova, "c0", &opts(&clock, 3), &clock).unwrap();
        assert!(matches!(r.unforce, Unforce::Refused { .. }));
        assert!(clock.slept() < Duration::from_secs(3));
    }

    #[test]
    fn other_failures_are_errors_and_operator_disables_are_kept() {
        let clock = ManualClock::default();
        let nova = fenced_nova("c0");
        nova.fail_next("force_down", NovaError::ServerError { request: "PUT".into(), status: 500, message: "boom".into() });
        let e = restore_service(&nova, "c0", &opts(&clock, 55), &clock).unwrap_err();
        assert!(e.to_string().starts_with("cannot clear forced-down of nova-compute on c0"), "{e}");
        assert!(matches!(restore_service(&nova, "nosuch", &opts(&clock, 55), &clock), Err(UnfenceError::UnknownHost { .. })));

        let nova = FakeNova::default();
        nova.add_service("c1", "down", "disabled", true);
        nova.with(|s| s.services[0].disabled_reason = Some("maintenance ticket 42".into()));
        let r = restore_service(&nova, "c1", &opts(&clock, 55), &clock).unwrap();
        assert_eq!(r.left_disabled.as_deref(), Some("maintenance ticket 42"));
        assert!(nova.calls_of("enable").is_empty());
        // A healthy host: nothing to do.
        let nova = FakeNova::with_hosts(&["c2"]);
        let r = restore_service(&nova, "c2", &opts(&clock, 55), &clock).unwrap();
        assert_eq!(r, Restored { unforce: Unforce::NotForced, enabled: false, left_disabled: None });
        assert_eq!(nova.calls(), ["list_services c2"]);
    }
}
