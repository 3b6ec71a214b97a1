//! The evacuation engine: evacuates one fenced host's instances in parallel and follows each to
//! the end.
//!
//! [`Engine::evacuate_host`] is the whole job for one host, used by NovaEvacuate (one thread per
//! marked host) and fence_evacuate (`off`, through [`Engine::evacuate_host_gated`] with its
//! storm guard as the gate):
//!
//! 1. **Fenced first** ([`Engine::check_fenced`]): Nova must report the host's `nova-compute`
//!    forced down (or down and disabled, as the reference accepts), and where Pacemaker's
//!    fencing history can be read, the node's last fencing operation must be a successful `off`
//!    or `reboot` (a pending one is accepted only from inside that fencing operation, i.e. by
//!    fence_evacuate as a topology level). Otherwise nothing is evacuated: no zombie twins.
//! 2. **Which instances**: [`crate::policy`], with a reason for every instance.
//! 3. **Reads first, all at once**: the fencing check, the caller's gate, the policy's flavor,
//!    image and aggregate lists, the reserved targets, and the first listing of the host's
//!    servers and migrations are independent reads: they are issued together, one thread each,
//!    so the first evacuation waits for the slowest of them instead of their sum. None of them
//!    changes anything, and nothing is evacuated until every one has answered, the host is
//!    confirmed fenced and the gate is open (a host that is not fenced costs those few reads).
//!    The first migrations listing cannot wait for the incident's start (it comes from the
//!    service read it runs beside): it asks for `lookback` and is narrowed to the incident once
//!    known, or made again when the service changed before `lookback`.
//! 4. **Rounds**: each round lists the servers still on the host and the host's evacuation
//!    migrations since the incident (two paginated calls at once, whatever the number of
//!    instances), decides per instance, issues the evacuations due (priority order, bounded
//!    concurrency over one shared client, reserved hosts first when configured), and looks at
//!    an instance again only once its migration is `done`: its server record, or, when more
//!    than [`MIN_TRACKING_READS`] are to be confirmed at once, one listing of the servers
//!    changed since (Nova's `changes-since`), with a read of each it does not show (a thousand
//!    confirmations cost a request or two, not a thousand). When the calls due take more than one
//!    wave, the evacuations issued first are followed while the rest are issued: one migrations
//!    listing per poll, and a server read for each found `done` (only successes are settled
//!    there; failures and retries stay with the rounds). Polling starts fast and backs off while
//!    nothing changes.
//! 5. **Crash safety**: Nova is the journal. Before issuing, an instance is checked where it is
//!    (gone from the host ⇒ not evacuated again), its `task_state` and its evacuation
//!    migrations (`accepted`, `pre-migrating`, `running`... ⇒ attach and track, never
//!    re-issue). An evacuate POST whose outcome is unknown (lost answer, 5xx, 409) is re-checked
//!    in the next round before anything else happens; Nova itself refuses a second evacuation
//!    while `task_state` is set. Attempts are counted from Nova's `error`/`failed` migrations,
//!    so a killed and restarted engine keeps the same retry budget.
//! 6. **Outcome**: every instance ends evacuated, skipped (why) or failed (why); instances
//!    still moving when the deadline comes are reported in progress and the host is not
//!    settled ([`HostReport::settled`]): a timeout is never a success.
//!
//! **How much Nova sees at once.** One [`Limiter`] per engine, shared by every host it
//! evacuates, holds two separate budgets: at most `concurrency` evacuate calls (default 16),
//! and at most max(`concurrency`, [`MIN_TRACKING_READS`] = 16) per-instance tracking reads (the
//! server record of each finished evacuation), so that confirming evacuations never waits for
//! issuing them, nor the reverse. On top of those, per host being evacuated: the one wave of at
//! most eight list reads before its first evacuation (the gate's, the fencing check's, flavors,
//! images, aggregates, the reserved targets', servers, migrations; plus, on clouds before 2.61,
//! at most [`crate::policy::EXTRA_SPECS_READS`] = 8 flavor extra-spec reads), then two listings
//! per round, or one migrations listing per poll while issuing. With the defaults: at most 16
//! evacuations, 16 reads and 2 listings per host in flight. Why that is safe for a production
//! Nova: `concurrency` is what the operator lets the cloud take of evacuate calls, each costing
//! Nova an API request, a conductor task, a scheduler run and compute RPCs; a tracking read is
//! one API request and a database lookup. Allowing as many reads as evacuations (never fewer
//! than 16) keeps the load within a small multiple of what the operator already accepted, and
//! an API with too few workers queues the excess (uWSGI listen queue, HAProxy `maxconn`)
//! rather than failing it.
//!
//! No lock is held across an HTTP call except a budget's permit, and nothing sleeps in the
//! issuing path, so a host's evacuation takes about `ceil(N / concurrency) × latency` plus
//! Nova's rebuild, plus the one latency of the reads before it.

use crate::clock::{iso8601, now_epoch, parse_iso8601};
use crate::fanout::{Permits, Signal, join, parallel};
use crate::policy::{PolicyConfig, Selector};
use iha_openstack::{ComputeApi, Error, EvacuateRequest, Migration, MigrationQuery, ResetState, Server, Service, ServiceQuery};
use iha_pacemaker::{Cluster, FenceState};
use log::{debug, info, warn};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How the fencing of the host is confirmed beyond Nova's forced-down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceCheck {
    /// Pacemaker's history, when readable, must show a completed successful off/reboot as the
    /// node's last fencing operation (NovaEvacuate).
    History,
    /// As `History`, but a pending operation counts: the caller runs inside it, after the power
    /// device of the same topology level succeeded (fence_evacuate).
    InsideFencing,
    /// Nova's forced-down (or down and disabled) only.
    NovaOnly,
}

/// The engine's knobs (agent parameters).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Evacuate calls in flight at once (shared by all hosts through the [`Limiter`]).
    pub concurrency: usize,
    /// Attempts per instance before giving up (failed migrations and refused retryable calls).
    pub attempts: u32,
    /// Back-off before the second attempt; doubles for each further one.
    pub retry_backoff: Duration,
    /// Follow every instance to the end; `false` is the reference's fire-and-forget.
    pub track: bool,
    /// Fastest and slowest polling of the migrations.
    pub poll_min: Duration,
    pub poll_max: Duration,
    /// Give up on an evacuation that has not finished this long after Nova created it.
    pub tracking_timeout: Option<Duration>,
    /// How long to wait before re-checking an evacuate call whose outcome is unknown.
    pub recheck_after: Duration,
    /// `onSharedStorage` for clouds older than 2.14.
    pub on_shared_storage: Option<bool>,
    /// Hosts tried first as targets (in turn), before the scheduler.
    pub reserved_hosts: Vec<String>,
    /// An aggregate whose hosts are tried first as targets.
    pub reserved_aggregate: Option<String>,
    pub fence_check: FenceCheck,
    /// Reset an instance stuck in a task_state other than an evacuation (e.g. `powering-off`
    /// when the host died) to ERROR once, so that it can be evacuated.
    pub reset_task_state: bool,
    /// Pacemaker node names of the host known to the caller (fence agents get `nodename=`),
    /// checked before the names derived from the Nova host.
    pub node_names: Vec<String>,
    /// Window for the host's evacuation migrations when the service's `updated_at` is unknown.
    pub lookback: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 16,
            attempts: 3,
            retry_backoff: Duration::from_secs(5),
            track: true,
            poll_min: Duration::from_secs(1),
            poll_max: Duration::from_secs(10),
            tracking_timeout: Some(Duration::from_secs(900)),
            recheck_after: Duration::from_secs(2),
            on_shared_storage: None,
            reserved_hosts: Vec::new(),
            reserved_aggregate: None,
            fence_check: FenceCheck::History,
            reset_task_state: false,
            node_names: Vec::new(),
            lookback: Duration::from_secs(6 * 3600),
        }
    }
}

/// The fewest per-instance tracking reads allowed in flight, whatever `concurrency` says.
pub const MIN_TRACKING_READS: usize = 16;

/// The budgets bounding concurrent Nova calls across every host an engine evacuates (see the
/// module documentation): `concurrency` evacuate calls, and separately
/// max(`concurrency`, [`MIN_TRACKING_READS`]) per-instance tracking reads.
#[derive(Debug)]
pub struct Limiter {
    evacuations: Permits,
    reads: Permits,
}

impl Limiter {
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        Limiter { evacuations: Permits::new(size), reads: Permits::new(size.max(MIN_TRACKING_READS)) }
    }

    /// The number of evacuate calls allowed in flight.
    pub fn size(&self) -> usize {
        self.evacuations.size()
    }

    /// The number of per-instance tracking reads allowed in flight.
    pub fn read_size(&self) -> usize {
        self.reads.size()
    }
}

/// How one instance ended (or where it stands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Runs on `to` with `status` (ACTIVE, or SHUTOFF for stopped instances / 2.95).
    Evacuated { to: String, status: String },
    /// Accepted by Nova, not tracked (`track=false`).
    Accepted,
    /// Left alone on purpose.
    Skipped(String),
    /// Nova would not or could not evacuate it.
    Failed(String),
    /// Still moving when the deadline came.
    InProgress(String),
}

impl Outcome {
    /// `evacuated`, `accepted`, `skipped`, `failed` or `in-progress`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Evacuated { .. } => "evacuated",
            Outcome::Accepted => "accepted",
            Outcome::Skipped(_) => "skipped",
            Outcome::Failed(_) => "failed",
            Outcome::InProgress(_) => "in-progress",
        }
    }

    fn why(&self) -> String {
        match self {
            Outcome::Evacuated { to, status } => format!("runs on {to} ({status})"),
            Outcome::Accepted => "evacuation accepted by nova (not tracked)".into(),
            Outcome::Skipped(w) | Outcome::Failed(w) | Outcome::InProgress(w) => w.clone(),
        }
    }
}

/// The result for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceReport {
    pub id: String,
    pub name: String,
    pub priority: i64,
    /// Why it was (not) selected.
    pub decision: String,
    pub outcome: Outcome,
    /// Failed attempts.
    pub attempts: u32,
}

/// The result for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    pub host: String,
    pub instances: Vec<InstanceReport>,
    pub elapsed: Duration,
    pub rounds: u32,
    /// Migrations listings made while a long issuance was still running, to confirm the
    /// evacuations it had already started (on top of the two listings of each round).
    pub follow_polls: u32,
}

impl HostReport {
    /// Every instance has reached an end (evacuated, accepted, skipped or failed).
    pub fn settled(&self) -> bool {
        !self.instances.iter().any(|i| matches!(i.outcome, Outcome::InProgress(_)))
    }

    /// Settled with no failure.
    pub fn ok(&self) -> bool {
        self.settled() && !self.instances.iter().any(|i| matches!(i.outcome, Outcome::Failed(_)))
    }

    /// How many instances ended as `kind` ([`Outcome::kind`]).
    pub fn count(&self, kind: &str) -> usize {
        self.instances.iter().filter(|i| i.outcome.kind() == kind).count()
    }

    /// The failed instances.
    pub fn failed(&self) -> impl Iterator<Item = &InstanceReport> {
        self.instances.iter().filter(|i| matches!(i.outcome, Outcome::Failed(_)))
    }

    /// One line of JSON: counts, and the instances that did not evacuate (at most 50, so the
    /// line fits a syslog message).
    pub fn summary_json(&self) -> String {
        let notable: Vec<serde_json::Value> = self
            .instances
            .iter()
            .filter(|i| matches!(i.outcome, Outcome::Failed(_) | Outcome::InProgress(_)))
            .take(50)
            .map(|i| {
                serde_json::json!({"id": i.id, "name": i.name, "outcome": i.outcome.kind(),
                    "why": i.outcome.why(), "attempts": i.attempts})
            })
            .collect();
        serde_json::json!({
            "event": "host-evacuation",
            "host": self.host,
            "settled": self.settled(),
            "instances": self.instances.len(),
            "evacuated": self.count("evacuated"),
            "accepted": self.count("accepted"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "in_progress": self.count("in-progress"),
            "elapsed_s": (self.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "rounds": self.rounds,
            "not_evacuated": notable,
        })
        .to_string()
    }

    /// Logs the summary (JSON at info) and one readable line per instance.
    pub fn log(&self) {
        for i in &self.instances {
            let line = format!("{} ({}) on {}: {}: {}", i.id, i.name, self.host, i.outcome.kind(), i.outcome.why());
            match i.outcome {
                Outcome::Failed(_) => log::error!("{line}; selected because {}", i.decision),
                Outcome::InProgress(_) => warn!("{line}"),
                Outcome::Skipped(_) => info!("{line}"),
                _ => info!("{line}; selected because {}", i.decision),
            }
        }
        info!(
            "evacuation of {}: {} evacuated, {} accepted, {} skipped, {} failed, {} in progress ({:.1} s)",
            self.host,
            self.count("evacuated"),
            self.count("accepted"),
            self.count("skipped"),
            self.count("failed"),
            self.count("in-progress"),
            self.elapsed.as_secs_f64()
        );
        info!("{}", self.summary_json());
    }

    /// A `disabled_reason` for the service (Nova's limit: 255 characters) naming the failures;
    /// it stays until the host is unfenced (enabling the service clears it).
    pub fn disabled_reason(&self) -> String {
        let failed: Vec<&str> = self.failed().map(|i| i.id.as_str()).collect();
        // The prefix tells unfencing (crate::unfence) that fencing disabled the service, so it
        // is still re-enabled when the host comes back.
        let mut s = format!(
            "{} evacuation finished {}: {} evacuated, {} failed",
            crate::unfence::REASON_PREFIX,
            iso8601(now_epoch()),
            self.count("evacuated") + self.count("accepted"),
            failed.len()
        );
        if !failed.is_empty() {
            s.push_str(": ");
            s.push_str(&failed.join(" "));
        }
        if s.chars().count() > 255 {
            s = s.chars().take(252).collect::<String>() + "...";
        }
        s
    }
}

/// Why a host was not (fully) processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// Nova has no `nova-compute` service by that name.
    UnknownHost(String),
    /// The host is not confirmed fenced: nothing was evacuated.
    NotFenced(String),
    /// Not fenced yet, but Pacemaker is fencing it now (off or reboot in progress): nothing
    /// was evacuated; asking again soon is expected to succeed.
    FencingPending(String),
    /// Nova failed in a way the engine cannot work around.
    Nova(Error),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::UnknownHost(h) => write!(f, "nova does not know about {h}"),
            EngineError::NotFenced(why) | EngineError::FencingPending(why) => write!(f, "{why}"),
            EngineError::Nova(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// Why [`Engine::evacuate_host_gated`] did not evacuate (or not everything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gated<E> {
    /// The caller's gate stayed closed: nothing was evacuated.
    Closed(E),
    /// As [`Engine::evacuate_host`].
    Engine(EngineError),
}

impl From<Error> for EngineError {
    fn from(e: Error) -> Self {
        EngineError::Nova(e)
    }
}

/// Nova's view: forced down, or down and disabled (the reference's "off").
pub fn fenced_in_nova(s: &Service) -> bool {
    s.status != "UNKNOWN" && (s.forced_down == Some(true) || (s.state.as_deref() == Some("down") && s.status == "disabled"))
}

/// Pacemaker node names the Nova host may have (exact, then short name).
pub fn node_candidates(host: &str) -> Vec<String> {
    let mut v = vec![host.to_string()];
    if let Some((short, _)) = host.split_once('.') {
        if !short.is_empty() {
            v.push(short.to_string());
        }
    }
    v
}

/// Consecutive failed tracking rounds tolerated before the run gives up (and a later run resumes).
const MAX_TRANSIENT: u32 = 10;

const IN_FLIGHT: &[&str] = &["accepted", "pre-migrating", "running", "migrating", "queued", "preparing", "post-migrating", "confirming"];
const FAILED: &[&str] = &["error", "failed", "cancelled"];

/// Slack (seconds) of the follower's "changed since the previous listing" window, for
/// records committed late or timestamps rounded down.
const FOLLOW_SLACK_S: i64 = 5;

/// A finished evacuation (the server is then read to confirm where and how it runs).
const DONE: &[&str] = &["done", "completed"];

fn mig_order(m: &Migration) -> (i64, u64) {
    (m.created_at.as_deref().and_then(parse_iso8601).unwrap_or(0), m.id.parse::<u64>().unwrap_or(0))
}

/// Migrations by instance, oldest first.
fn by_instance(migrations: Vec<Migration>) -> BTreeMap<String, Vec<Migration>> {
    let mut by_inst: BTreeMap<String, Vec<Migration>> = BTreeMap::new();
    for m in migrations {
        if let Some(i) = m.instance_uuid.clone() {
            by_inst.entry(i).or_default().push(m);
        }
    }
    for v in by_inst.values_mut() {
        v.sort_by_key(mig_order);
    }
    by_inst
}

/// Nova's own `changes-since` rule (`updated_at >= since`), applied here too: the first
/// listing is read with a wider window, and clouds before 2.59 ignore the filter. A record
/// without a readable time is kept.
fn since_filter(migrations: Vec<Migration>, since: i64) -> Vec<Migration> {
    migrations
        .into_iter()
        .filter(|m| m.updated_at.as_deref().or(m.created_at.as_deref()).and_then(parse_iso8601).is_none_or(|t| t >= since))
        .collect()
}

fn secs_i64(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The server runs on another host, its evacuation over.
fn runs_elsewhere(host: &str, sv: &Server) -> bool {
    sv.host.as_deref() != Some(host) && sv.task_state.is_none() && matches!(sv.status.as_str(), "ACTIVE" | "SHUTOFF")
}

/// What a server read says about an instance that left the host or whose evacuation ended.
fn settle(host: &str, id: &str, t: &mut Track, r: Result<Server, Error>) {
    match r {
        Ok(sv) if sv.host.as_deref() == Some(host) => {
            // Listed on the host a moment ago... or back: decided next round.
        }
        Ok(sv) => {
            if t.name == id {
                // Known so far only from its migration (an earlier run issued it).
                t.name = sv.name.clone();
            }
            let to = sv.host.clone().unwrap_or_else(|| "?".into());
            if runs_elsewhere(host, &sv) {
                t.st = St::Final(Outcome::Evacuated { to, status: sv.status });
            } else if sv.status == "ERROR" && sv.task_state.is_none() {
                let why = format!(
                    "instance is in ERROR on {to} after its evacuation (migration {})",
                    t.migration.as_deref().unwrap_or("unknown")
                );
                t.st = St::Final(Outcome::Failed(with_fault(why, &sv)));
            } else {
                t.st = St::InFlight;
            }
        }
        Err(e) if e.is_not_found() => t.st = St::Final(Outcome::Skipped("the server was deleted".into())),
        Err(e) => debug!("cannot read server {id}: {e}; checked again next round"),
    }
}

/// One look at a host: the servers on it and its evacuation migrations.
type Listing = (Vec<Server>, Vec<Migration>);

/// What [`Engine::prepare`] read.
struct Prepared {
    selector: Selector,
    targets: Vec<String>,
    /// Start of the incident's migrations window (Unix time).
    since: i64,
    /// The first round's listing.
    first: Result<Listing, Error>,
}

/// What [`Engine::follow_while_issuing`] found.
#[derive(Default)]
struct Followed {
    /// Servers found running elsewhere, by id.
    running: BTreeMap<String, Server>,
    /// Migrations listings made.
    polls: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum St {
    /// Waiting to be (re)issued.
    Idle,
    /// An evacuation is under way.
    InFlight,
    /// An evacuate call's outcome is unknown since then.
    Uncertain(Instant),
    Final(Outcome),
}

#[derive(Debug, Clone)]
struct Track {
    name: String,
    priority: i64,
    decision: String,
    st: St,
    /// Failed evacuate calls of this run that left no migration (refused retryable, lost).
    call_failures: u32,
    /// Failed migrations seen in Nova.
    failed_migrations: u32,
    next_try: Option<Instant>,
    last_error: Option<String>,
    /// The instance's latest migration status, for messages.
    migration: Option<String>,
    /// Its stuck task_state was reset once already.
    reset: bool,
}

impl Track {
    fn new(name: &str, priority: i64, decision: String) -> Track {
        Track {
            name: name.to_string(),
            priority,
            decision,
            st: St::Idle,
            call_failures: 0,
            failed_migrations: 0,
            next_try: None,
            last_error: None,
            migration: None,
            reset: false,
        }
    }
    fn attempts(&self) -> u32 {
        self.call_failures + self.failed_migrations
    }
    fn is_final(&self) -> bool {
        matches!(self.st, St::Final(_))
    }
}

/// What an evacuate call came to.
enum Issued {
    Accepted,
    Uncertain(String),
    Retryable(String),
    Refused(String),
    Gone(String),
}

/// The engine for one invocation.
pub struct Engine<'a> {
    pub nova: &'a dyn ComputeApi,
    /// Pacemaker, when the agent runs under it.
    pub cluster: Option<&'a dyn Cluster>,
    pub settings: &'a Settings,
    pub policy: &'a PolicyConfig,
    pub limiter: &'a Limiter,
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("settings", &self.settings).field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Engine<'_> {
    /// Confirms `host` is fenced (see the module documentation); returns its service.
    pub fn check_fenced(&self, host: &str, deadline: Option<Instant>) -> Result<Service, EngineError> {
        let q = ServiceQuery { binary: Some("nova-compute".into()), host: Some(host.to_string()) };
        let history = match (self.cluster, self.settings.fence_check) {
            (Some(cluster), FenceCheck::History | FenceCheck::InsideFencing) => Some(cluster),
            _ => None,
        };
        let until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(30));
        let mut nodes = self.settings.node_names.clone();
        nodes.extend(node_candidates(host).into_iter().filter(|n| !self.settings.node_names.contains(n)));
        // Nova's record and Pacemaker's history (one stonith_admin per candidate node name) are
        // read at once: this check comes before every evacuation, and is polled while a fencing
        // completes (NovaEvacuate), so its latency is the slowest read, not their sum.
        let (services, histories) = std::thread::scope(|sc| {
            let histories: Vec<_> = match history {
                Some(cluster) => nodes.iter().map(|n| sc.spawn(move || (n.as_str(), cluster.fence_history(n, until)))).collect(),
                None => Vec::new(),
            };
            (self.nova.list_services(&q), histories.into_iter().map(join).collect::<Vec<_>>())
        });
        let svc = services?
            .into_iter()
            .find(|s| s.host == host && s.binary == "nova-compute")
            .ok_or_else(|| EngineError::UnknownHost(host.to_string()))?;
        if !fenced_in_nova(&svc) {
            return Err(EngineError::NotFenced(format!(
                "refusing to evacuate {host}: its nova-compute service is {} and {} (forced_down={}), not fenced in nova",
                svc.state.as_deref().unwrap_or("unknown"),
                svc.status,
                svc.forced_down.map_or("unknown".to_string(), |f| f.to_string())
            )));
        }
        if history.is_none() {
            return Ok(svc);
        }
        let mut readable = false;
        let mut events = Vec::new();
        for (node, read) in histories {
            match read {
                Ok(Some(ev)) => {
                    readable = true;
                    events.extend(ev.into_iter().filter(|e| e.target == node).enumerate());
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(EngineError::NotFenced(format!("refusing to evacuate {host}: cannot read its fencing history: {e}")));
                }
            }
        }
        if !readable {
            info!("fencing history of {host} cannot be read here; relying on nova's forced-down");
            return Ok(svc);
        }
        // The latest successful operation decides: a later successful unfencing (`on`) means the
        // node is back; a failed or pending one changed nothing.
        let latest = events
            .iter()
            .filter(|(_, e)| e.state == FenceState::Success)
            .max_by_key(|(i, e)| (e.completed_epoch.unwrap_or(i64::MIN), *i))
            .map(|(_, e)| e);
        // Only a fencing in progress is waited for, not the unfencing (`on`) of a node that came
        // back: Pacemaker requests it as soon as the node rejoins and, in the production recipe,
        // it waits (fence_compute `on`, nova-compute-wait) for this very evacuation. A reboot
        // through a topology level of several devices is carried out as `off` on each, then
        // `on` on the power device, and while the `on` phase runs the history shows that
        // operation as a pending `on` (pacemaker-fenced renames it). fence_compute marks the
        // host during the `off` phase, so a monitor can see the mark right then; a pending `on`
        // with no completed fencing since the last successful `on` is that phase, not an
        // unfencing (which follows a completed fencing).
        let pending = |action: &str| events.iter().any(|(_, e)| e.state == FenceState::Pending && e.action == action);
        let fencing = pending("off") || pending("reboot");
        let reboot_on_phase = pending("on") && !latest.is_some_and(|e| e.is_successful_fence());
        if fencing && self.settings.fence_check == FenceCheck::InsideFencing {
            return Ok(svc);
        }
        if fencing || reboot_on_phase {
            return Err(EngineError::FencingPending(format!("waiting for {host}: its fencing is still in progress")));
        }
        match latest {
            None => Err(EngineError::NotFenced(format!(
                "refusing to evacuate {host}: pacemaker has no record of fencing it (nodes {}); set fence_check=nova to rely on nova alone",
                nodes.join(", ")
            ))),
            Some(e) if e.is_successful_fence() => Ok(svc),
            Some(e) => Err(EngineError::NotFenced(format!(
                "refusing to evacuate {host}: the last fencing operation on it was '{}' ({:?})",
                e.action, e.state
            ))),
        }
    }

    /// The targets to try before the scheduler: up, enabled, not the failed host.
    fn reserved_targets(&self, host: &str) -> Result<Vec<String>, Error> {
        let s = self.settings;
        if s.reserved_hosts.is_empty() && s.reserved_aggregate.is_none() {
            return Ok(Vec::new());
        }
        let mut wanted = s.reserved_hosts.clone();
        if let Some(name) = &s.reserved_aggregate {
            match self.nova.list_aggregates()?.into_iter().find(|a| &a.name == name) {
                Some(a) => wanted.extend(a.hosts),
                None => warn!("reserved aggregate {name} does not exist; using the scheduler"),
            }
        }
        let services = self.nova.list_services(&ServiceQuery { binary: Some("nova-compute".into()), host: None })?;
        let mut out = Vec::new();
        for h in wanted {
            let usable = services.iter().any(|v| v.host == h && v.is_up() && v.status == "enabled" && v.forced_down != Some(true));
            if h != host && usable && !out.contains(&h) {
                out.push(h);
            } else if h != host {
                debug!("reserved host {h} is not up and enabled; not used as a target");
            }
        }
        Ok(out)
    }

    fn issue(&self, id: &str, target: Option<String>) -> Issued {
        let req = EvacuateRequest {
            host: target.clone(),
            on_shared_storage: self.settings.on_shared_storage,
            ..Default::default()
        };
        let first = self.nova.evacuate(id, &req);
        let result = match (first, &target) {
            // The reserved host cannot take it (refused, unknown, full): let the scheduler pick.
            (Err(e @ (Error::BadRequest { .. } | Error::Conflict { .. } | Error::NotFound { .. })), Some(t))
                if !e.service_message().unwrap_or("").contains("still in use") =>
            {
                info!("evacuation of {id} to reserved host {t} refused ({e}); trying the scheduler");
                self.nova.evacuate(id, &EvacuateRequest { host: None, ..req })
            }
            (r, _) => r,
        };
        match result {
            Ok(_) => Issued::Accepted,
            Err(e) => {
                let msg = e.service_message().map_or_else(|| e.to_string(), str::to_owned);
                match e {
                    Error::OutcomeUnknown { .. } | Error::ServerError { .. } | Error::Timeout { .. } | Error::Connection { .. } | Error::Conflict { .. } => {
                        Issued::Uncertain(msg)
                    }
                    Error::RateLimited { .. } => Issued::Retryable(msg),
                    Error::NotFound { .. } => Issued::Gone(msg),
                    _ => Issued::Refused(msg),
                }
            }
        }
    }

    /// Evacuates `host` (see the module documentation). `heartbeat` is called once per round
    /// and after every evacuate call (it must be cheap or rate-limit itself)
    /// while work goes on (NovaEvacuate refreshes its in-progress marker there).
    pub fn evacuate_host(
        &self,
        host: &str,
        deadline: Option<Instant>,
        heartbeat: &(dyn Fn() + Sync),
    ) -> Result<HostReport, EngineError> {
        match self.evacuate_host_gated(host, deadline, heartbeat, || Ok::<(), std::convert::Infallible>(())) {
            Ok(r) => Ok(r),
            Err(Gated::Engine(e)) => Err(e),
            Err(Gated::Closed(never)) => match never {},
        }
    }

    /// As [`Engine::evacuate_host`], with one more condition for the first evacuation: `gate`
    /// (e.g. fence_evacuate's storm guard) runs alongside the reads that precede it, and unless
    /// it returns `Ok` nothing is evacuated and its error is returned as [`Gated::Closed`]
    /// (before any fencing or Nova error).
    pub fn evacuate_host_gated<E: Send>(
        &self,
        host: &str,
        deadline: Option<Instant>,
        heartbeat: &(dyn Fn() + Sync),
        gate: impl FnOnce() -> Result<(), E> + Send,
    ) -> Result<HostReport, Gated<E>> {
        let start = Instant::now();
        let s = self.settings;
        let Prepared { selector, targets, since, first } = self.prepare(host, deadline, gate)?;
        let rr = AtomicUsize::new(0);
        let mut tracks: BTreeMap<String, Track> = BTreeMap::new();
        let mut poll = s.poll_min;
        let mut rounds = 0u32;
        let mut follow_polls = 0u32;
        let mut transient = 0u32;
        let mut first = Some(first);
        loop {
            rounds += 1;
            let listing = first.take().unwrap_or_else(|| self.listing(host, since));
            let (mut servers, migrations) = match listing {
                Ok(x) => {
                    transient = 0;
                    x
                }
                // Ridden out for a while (bounded even without a deadline), then reported.
                Err(e) if e.is_transient() && transient < MAX_TRANSIENT && !deadline_near(deadline, poll) => {
                    transient += 1;
                    warn!("evacuation of {host}: nova failed ({e}); retrying in {:.1} s", poll.as_secs_f64());
                    std::thread::sleep(poll.min(s.poll_max) * transient.min(4));
                    continue;
                }
                Err(e) => return Err(Gated::Engine(e.into())),
            };
            let by_inst = by_instance(migrations);
            selector.order(&mut servers);
            let on_host: BTreeSet<String> = servers.iter().map(|x| x.id.clone()).collect();
            let mut changed = false;
            let mut queue: Vec<String> = Vec::new();
            let now = Instant::now();
            for sv in &servers {
                let t = tracks.entry(sv.id.clone()).or_insert_with(|| {
                    let d = selector.decide(sv);
                    let mut t = Track::new(&sv.name, selector.priority(sv), d.why.clone());
                    if !d.evacuate {
                        t.st = St::Final(Outcome::Skipped(d.why));
                    }
                    t
                });
                if t.is_final() {
                    continue;
                }
                let before = t.st.clone();
                self.decide_on_host(host, sv, by_inst.get(&sv.id).map(Vec::as_slice).unwrap_or(&[]), t, now);
                changed |= t.st != before;
                if t.st == St::Idle && t.next_try.is_none_or(|n| n <= now) {
                    queue.push(sv.id.clone());
                }
            }
            // Instances no longer listed on the host: evacuated (by us now, by an earlier run
            // of ours, or by someone else) or deleted.
            let mut to_check = Vec::new();
            for (id, migs) in &by_inst {
                if on_host.contains(id) {
                    continue;
                }
                let t = tracks.entry(id.clone()).or_insert_with(|| {
                    Track::new(id, 0, "its evacuation was already under way when this run started".into())
                });
                if t.is_final() {
                    continue;
                }
                let latest = migs.last();
                t.migration = latest.map(|m| m.status.clone());
                match latest.map(|m| m.status.as_str()) {
                    Some(st) if IN_FLIGHT.contains(&st) => {
                        if t.st != St::InFlight {
                            t.st = St::InFlight;
                            changed = true;
                        }
                        if let Some(why) = self.timed_out(latest) {
                            t.st = St::Final(Outcome::Failed(why));
                            changed = true;
                        }
                    }
                    _ => to_check.push(id.clone()),
                }
            }
            for (id, t) in &tracks {
                if !t.is_final() && !on_host.contains(id) && !by_inst.contains_key(id) {
                    to_check.push(id.clone());
                }
            }
            // The servers of the instances whose evacuation ended (see `read_servers`).
            let checked = self.read_servers(to_check, since);
            for (id, r) in checked {
                let Some(t) = tracks.get_mut(&id) else { continue };
                let before = t.st.clone();
                settle(host, &id, t, r);
                changed |= t.st != before;
            }
            // Issue what is due, in priority order (`servers` is sorted).
            if !queue.is_empty() {
                let jobs: Vec<(String, Option<String>)> = queue
                    .iter()
                    .map(|id| {
                        let fresh = tracks.get(id).is_some_and(|t| t.attempts() == 0);
                        let target = (fresh && !targets.is_empty())
                            .then(|| targets[rr.fetch_add(1, Ordering::Relaxed) % targets.len()].clone());
                        (id.clone(), target)
                    })
                    .collect();
                info!("evacuation of {host}: issuing {} evacuation(s)", jobs.len());
                // More than one wave of calls: the evacuations issued first finish while the
                // last are still being issued; follow them meanwhile, so that the host is
                // settled soon after its last instance runs elsewhere.
                let follow = s.track && jobs.len() > s.concurrency;
                let accepted: Mutex<Vec<String>> = Mutex::new(Vec::new());
                let issuing = Signal::default();
                let (results, followed) = std::thread::scope(|sc| {
                    let follower = follow.then(|| sc.spawn(|| self.follow_while_issuing(host, since, &accepted, &issuing)));
                    let results = parallel(jobs, s.concurrency, Some(&self.limiter.evacuations), |(id, target)| {
                        let r = self.issue(&id, target);
                        if matches!(r, Issued::Accepted) {
                            accepted.lock().unwrap_or_else(PoisonError::into_inner).push(id.clone());
                        }
                        // Issuing hundreds of evacuations can take a while: keep the marker fresh.
                        heartbeat();
                        (id, r)
                    });
                    issuing.set();
                    (results, follower.map(join).unwrap_or_default())
                });
                let now = Instant::now();
                for (id, r) in results {
                    let Some(t) = tracks.get_mut(&id) else { continue };
                    changed = true;
                    match r {
                        Issued::Accepted if s.track => t.st = St::InFlight,
                        Issued::Accepted => t.st = St::Final(Outcome::Accepted),
                        Issued::Uncertain(msg) => {
                            warn!("evacuation of {id} on {host}: outcome unknown ({msg}); checking before anything else");
                            t.last_error = Some(msg);
                            t.st = St::Uncertain(now);
                        }
                        Issued::Retryable(msg) => {
                            t.call_failures += 1;
                            t.next_try = Some(now + backoff(s.retry_backoff, t.attempts()));
                            t.last_error = Some(msg);
                        }
                        Issued::Refused(msg) => {
                            log::error!("Evacuation of {id} on {host} failed: {msg}");
                            t.st = St::Final(Outcome::Failed(format!("nova refused the evacuation: {msg}")));
                        }
                        Issued::Gone(msg) => t.st = St::Final(Outcome::Skipped(format!("the server no longer exists: {msg}"))),
                    }
                }
                follow_polls += followed.polls;
                for (id, sv) in followed.running {
                    if let Some(t) = tracks.get_mut(&id).filter(|t| t.st == St::InFlight) {
                        settle(host, &id, t, Ok(sv));
                    }
                }
            }
            let pending = tracks.values().filter(|t| !t.is_final()).count();
            if pending == 0 {
                break;
            }
            if !s.track && tracks.values().all(|t| t.is_final() || t.st == St::InFlight) {
                break;
            }
            if deadline_near(deadline, poll) {
                break;
            }
            heartbeat();
            poll = if changed { s.poll_min } else { (poll * 2).min(s.poll_max) };
            debug!("evacuation of {host}: {pending} instance(s) pending; next round in {:.2} s", poll.as_secs_f64());
            std::thread::sleep(poll);
        }
        let mut instances: Vec<InstanceReport> = tracks
            .into_iter()
            .map(|(id, t)| {
                let outcome = match &t.st {
                    St::Final(o) => o.clone(),
                    St::InFlight => Outcome::InProgress(format!(
                        "evacuation still in progress (migration {})",
                        t.migration.as_deref().unwrap_or("not yet visible")
                    )),
                    St::Uncertain(_) => Outcome::InProgress("evacuate call outcome not yet known".into()),
                    St::Idle => Outcome::InProgress(format!(
                        "waiting to retry after {} failed attempt(s): {}",
                        t.attempts(),
                        t.last_error.as_deref().unwrap_or("-")
                    )),
                };
                InstanceReport { id, name: t.name.clone(), priority: t.priority, decision: t.decision.clone(), outcome, attempts: t.attempts() }
            })
            .collect();
        instances.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.name.cmp(&b.name)).then_with(|| a.id.cmp(&b.id)));
        Ok(HostReport { host: host.to_string(), instances, elapsed: start.elapsed(), rounds, follow_polls })
    }

    /// Everything the first evacuation depends on, read at once (see the module documentation):
    /// the fencing check, `gate`, the policy's flavors, images and aggregates, the reserved
    /// targets, and the first listing of the host's servers and evacuation migrations.
    fn prepare<E: Send>(&self, host: &str, deadline: Option<Instant>, gate: impl FnOnce() -> Result<(), E> + Send) -> Result<Prepared, Gated<E>> {
        // The incident's window for the migrations comes from the service read alongside; the
        // first listing uses the widest window the rule can give (`lookback`) and is narrowed
        // to the incident's once it is known, or made again if the incident is older.
        let wide = now_epoch() - secs_i64(self.settings.lookback);
        let (gate, fenced, selector, targets, first) = std::thread::scope(|sc| {
            let gate = sc.spawn(gate);
            let fenced = sc.spawn(|| self.check_fenced(host, deadline));
            let selector = sc.spawn(|| Selector::prepare(self.nova, self.policy, host));
            let targets = sc.spawn(|| self.reserved_targets(host));
            // With a cold cache the reads go out on an assumed version range, but the
            // evacuations (writes) need the discovered one: ask for it alongside so the first
            // evacuation does not wait a round trip for it. A failure here is not ours to
            // report: the first write asks again and reports it.
            let versions = sc.spawn(|| self.nova.api_versions());
            let first = self.listing(host, wide);
            let _ = join(versions);
            (join(gate), join(fenced), join(selector), join(targets), first)
        });
        gate.map_err(Gated::Closed)?;
        let svc = fenced.map_err(Gated::Engine)?;
        let since = self.incident_since(&svc);
        let selector = selector.map_err(|e| Gated::Engine(e.into()))?;
        let targets = targets.map_err(|e| Gated::Engine(e.into()))?;
        let first = match first {
            Ok((servers, migrations)) if since >= wide => Ok((servers, since_filter(migrations, since))),
            Ok((servers, _)) => self.list_migrations(host, since).map(|m| (servers, m)),
            Err(e) => Err(e),
        };
        Ok(Prepared { selector, targets, since, first })
    }

    /// Nova's journal of this incident starts when the service was last changed (fence_compute's
    /// force-down / disable), with slack for clock skew; `lookback` when that is unknown.
    fn incident_since(&self, svc: &Service) -> i64 {
        svc.updated_at
            .as_deref()
            .and_then(parse_iso8601)
            .map_or_else(|| now_epoch() - secs_i64(self.settings.lookback), |t| t - 300)
    }

    /// The host's evacuation migrations changed since `since`.
    fn list_migrations(&self, host: &str, since: i64) -> Result<Vec<Migration>, Error> {
        let q = MigrationQuery {
            source_compute: Some(host.to_string()),
            migration_type: Some("evacuation".into()),
            changes_since: Some(iso8601(since)),
            ..Default::default()
        };
        Ok(since_filter(self.nova.list_migrations(&q)?, since))
    }

    /// One look at the host: its servers and its evacuation migrations, both at once.
    fn listing(&self, host: &str, since: i64) -> Result<Listing, Error> {
        let (servers, migrations) = std::thread::scope(|sc| {
            let migrations = sc.spawn(|| self.list_migrations(host, since));
            (self.nova.list_servers_on_host(host), join(migrations))
        });
        Ok((servers?, migrations?))
    }

    /// The current records of `ids`, servers known to have changed at or after `since` (their
    /// evacuation ended). Up to [`MIN_TRACKING_READS`] are read one by one, in parallel under the
    /// tracking budget (one round trip); more take one listing of the servers changed since then instead
    /// (Nova's `changes-since`, every project, paginated): a host's thousand finished
    /// evacuations are confirmed in one or two requests rather than a thousand. Whatever the
    /// listing does not show alive (deleted, or missing however it happened) or cannot give
    /// is read one by one as before, so the listing only ever saves reads.
    fn read_servers(&self, ids: Vec<String>, since: i64) -> Vec<(String, Result<Server, Error>)> {
        let one_by_one = |ids: Vec<String>| {
            parallel(ids, self.limiter.read_size(), Some(&self.limiter.reads), |id| {
                let r = self.nova.get_server(&id);
                (id, r)
            })
        };
        if ids.len() <= MIN_TRACKING_READS {
            return one_by_one(ids);
        }
        let listed = match self.limiter.reads.run(|| self.nova.list_servers_changed_since(&iso8601(since))) {
            Ok(list) => list,
            Err(e) => {
                debug!("cannot list the servers changed since {} ({e}); reading {} one by one", iso8601(since), ids.len());
                return one_by_one(ids);
            }
        };
        let mut by_id: HashMap<String, Server> =
            listed.into_iter().filter(|sv| sv.status != "DELETED").map(|sv| (sv.id.clone(), sv)).collect();
        let mut out = Vec::with_capacity(ids.len());
        let mut rest = Vec::new();
        for id in ids {
            match by_id.remove(&id) {
                Some(sv) => out.push((id, Ok(sv))),
                None => rest.push(id),
            }
        }
        out.extend(one_by_one(rest));
        out
    }

    /// While an issuance runs (until `issuing` is set): every poll, one migrations listing of
    /// the host tells which of the evacuations accepted so far are `done`, and those servers
    /// are read (tracking budget). Returns the ones found running elsewhere; anything else is
    /// left to the next round, which alone decides failures and retries. After the first
    /// listing only what changed since the previous one is asked for (by Nova's own times,
    /// with slack), so a poll stays small however many instances the host had.
    fn follow_while_issuing(&self, host: &str, since: i64, accepted: &Mutex<Vec<String>>, issuing: &Signal) -> Followed {
        let s = self.settings;
        let mut out = Followed::default();
        let mut poll = s.poll_min;
        let mut changed_since = since;
        while !issuing.wait(poll) {
            let pending: Vec<String> = accepted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter(|id| !out.running.contains_key(*id))
                .cloned()
                .collect();
            if pending.is_empty() {
                continue;
            }
            out.polls += 1;
            // What this poll finds `done` changed at or after the window it asks for.
            let window = changed_since;
            let by_inst = match self.list_migrations(host, changed_since) {
                Ok(m) => {
                    let newest = m.iter().filter_map(|m| m.updated_at.as_deref().or(m.created_at.as_deref()).and_then(parse_iso8601)).max();
                    if let Some(t) = newest {
                        changed_since = changed_since.max(t - FOLLOW_SLACK_S);
                    }
                    by_instance(m)
                }
                Err(e) => {
                    debug!("evacuation of {host}: cannot list its migrations while issuing ({e}); the next round will");
                    poll = (poll * 2).min(s.poll_max);
                    continue;
                }
            };
            let done: Vec<String> = pending
                .into_iter()
                .filter(|id| by_inst.get(id).and_then(|m| m.last()).is_some_and(|m| DONE.contains(&m.status.as_str())))
                .collect();
            let read = self.read_servers(done, window - FOLLOW_SLACK_S);
            let mut found = false;
            for (id, r) in read {
                match r {
                    Ok(sv) if runs_elsewhere(host, &sv) => {
                        out.running.insert(id, sv);
                        found = true;
                    }
                    Ok(_) => {}
                    Err(e) => debug!("cannot read server {id}: {e}; checked again later"),
                }
            }
            poll = if found { s.poll_min } else { (poll * 2).min(s.poll_max) };
        }
        out
    }

    /// `Some(reason)` when the migration has run longer than the tracking timeout.
    fn timed_out(&self, m: Option<&Migration>) -> Option<String> {
        let limit = self.settings.tracking_timeout?;
        let m = m?;
        let created = m.created_at.as_deref().and_then(parse_iso8601)?;
        let age = now_epoch().saturating_sub(created);
        (age > i64::try_from(limit.as_secs()).unwrap_or(i64::MAX)).then(|| {
            format!("evacuation did not finish within {} s (migration {} since {} s)", limit.as_secs(), m.status, age)
        })
    }

    /// One instance still on the failed host.
    fn decide_on_host(&self, host: &str, sv: &Server, migs: &[Migration], t: &mut Track, now: Instant) {
        let s = self.settings;
        let latest = migs.last();
        t.migration = latest.map(|m| m.status.clone());
        t.failed_migrations = u32::try_from(migs.iter().filter(|m| FAILED.contains(&m.status.as_str())).count()).unwrap_or(u32::MAX);
        let in_flight = latest.is_some_and(|m| IN_FLIGHT.contains(&m.status.as_str()));
        if let Some(ts) = sv.task_state.as_deref() {
            if in_flight || ts.starts_with("rebuild") {
                if t.st != St::InFlight {
                    info!("evacuation of {} on {host} is under way (task_state {ts}); following it", sv.id);
                }
                t.st = St::InFlight;
                if let Some(why) = self.timed_out(latest) {
                    t.st = St::Final(Outcome::Failed(why));
                }
            } else if self.settings.reset_task_state && !t.reset {
                // The task can never finish on a fenced host. Resetting to ERROR clears it and
                // leaves the instance evacuable (Red Hat InstanceHA's smart mode does the same).
                t.reset = true;
                match self.nova.reset_state(&sv.id, ResetState::Error) {
                    Ok(()) => info!("reset {} on {host} from task_state {ts} to ERROR so that it can be evacuated", sv.id),
                    Err(e) => {
                        t.st = St::Final(Outcome::Failed(format!("its task_state is {ts} and resetting it failed: {e}")));
                    }
                }
            } else {
                t.st = St::Final(Outcome::Failed(format!("nova cannot evacuate it while its task_state is {ts}")));
            }
            return;
        }
        if in_flight {
            t.st = St::InFlight;
            if let Some(why) = self.timed_out(latest) {
                t.st = St::Final(Outcome::Failed(why));
            }
            return;
        }
        let vm = sv.vm_state.as_deref().unwrap_or("unknown");
        if !matches!(vm, "active" | "stopped" | "error") {
            t.st = St::Final(Outcome::Failed(format!("nova cannot evacuate an instance in vm_state {vm}")));
            return;
        }
        // Idle on the failed host: never issued, or the last attempt ended without moving it.
        match t.st.clone() {
            St::InFlight => {
                let status = latest.map_or("vanished", |m| m.status.as_str()).to_string();
                t.last_error = Some(with_fault(format!("migration {status}"), sv));
                warn!("evacuation of {} on {host} ended with migration {status}", sv.id);
                t.st = St::Idle;
                t.next_try = Some(now + backoff(s.retry_backoff, t.attempts()));
            }
            St::Uncertain(at) => {
                if now.duration_since(at) < s.recheck_after {
                    return;
                }
                // Checked: the call did not take effect. Counted as an attempt.
                t.call_failures += 1;
                t.st = St::Idle;
                t.next_try = Some(now + backoff(s.retry_backoff, t.attempts()));
            }
            _ => {}
        }
        if t.last_error.is_none() && t.failed_migrations > 0 {
            t.last_error = latest.map(|m| with_fault(format!("migration {}", m.status), sv));
        }
        if t.attempts() >= s.attempts {
            t.st = St::Final(Outcome::Failed(format!(
                "gave up after {} attempt(s): {}",
                t.attempts(),
                t.last_error.as_deref().unwrap_or("failed")
            )));
        }
    }
}

/// `what`, followed by Nova's fault message for the server when it has one (e.g. "No valid
/// host was found. There are not enough hosts available.").
fn with_fault(what: String, sv: &Server) -> String {
    match sv.fault.as_ref().and_then(|f| f.message.as_deref()).filter(|m| !m.is_empty()) {
        Some(m) => format!("{what}: {m}"),
        None => what,
    }
}

fn backoff(base: Duration, attempts: u32) -> Duration {
    base * 2u32.saturating_pow(attempts.saturating_sub(1).min(6))
}

/// True when another round would not fit before the deadline.
fn deadline_near(deadline: Option<Instant>, poll: Duration) -> bool {
    deadline.is_some_and(|d| Instant::now() + poll + Duration::from_millis(200) >= d)
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
