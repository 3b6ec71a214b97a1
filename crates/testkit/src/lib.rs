//! `iha-testkit`: a faithful, stateful simulator of the OpenStack APIs the
//! instance-HA agents use — Keystone v3, Nova v2.1 (microversions up to
//! 2.104) and Glance v2 — with fault injection, a request log and a control
//! API. Every test, the lab and the benchmarks run against it; the
//! `nova-sim` binary serves it standalone.
//!
//! ```no_run
//! use iha_testkit::{Scenario, Simulator};
//! let mut scenario = Scenario::with_hosts(3);
//! scenario.add_servers("compute-0", "vm", 4);
//! let sim = Simulator::start(scenario).unwrap();
//! println!("auth_url = {}", sim.auth_url()); // http://127.0.0.1:PORT/identity/v3
//! sim.kill_host("compute-0");               // nova-compute dies, heartbeat stale
//! assert_eq!(sim.state().host("compute-0").unwrap().state, "down");
//! ```
//!
//! URL layout (one listener): `/identity` (Keystone), compute endpoints
//! `/{r}compute`, `/{r}public-compute`, `/{r}admin-compute` (internal,
//! public, admin interface; `r` is the region prefix: empty for RegionOne,
//! `r2-` for RegionTwo) each with `/v2.1`, image endpoints likewise with
//! `image`, and `/sim/` for control. The reference transcripts in
//! `docs/reference-transcripts` use exactly these paths.
//!
//! Module map: [`http`] (std::net HTTP/1.1 server), [`world`] (state and
//! rules), [`keystone`], [`nova`], [`glance`], [`faults`], [`control`],
//! [`scenario`], [`client`] (tiny test client).

pub mod client;
pub mod control;
pub mod faults;
pub mod glance;
pub mod http;
pub mod keystone;
pub mod nova;
pub mod scenario;
pub mod util;
pub mod world;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use control::{HostState, MigrationState, ServerState, StateDump};
pub use faults::{EvacuationFault, FaultAction, FaultRule, FaultSet, Latency, TokenFaults};
pub use http::TlsConfig;
pub use scenario::{HostConfig, Scenario};
pub use world::{BulkSpec, LogEntry, World};

use http::{Handler, HttpServer, Outcome, Request, Response};
use util::{global_rng, mask_secrets};

/// Largest request log kept; older entries are dropped first.
const MAX_LOG: usize = 200_000;

/// Shared state behind the server.
#[derive(Debug)]
pub struct Shared {
    world: Mutex<World>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock must not take every later request down.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Which API a path belongs to, and the endpoint prefix it came through.
fn classify(w: &World, path: &str) -> (&'static str, String) {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if first == "identity" {
        return ("keystone", "/identity".into());
    }
    if first == "sim" {
        return ("sim", "/sim".into());
    }
    for region in &w.scenario.regions {
        for (kind, service) in [("compute", "nova"), ("image", "glance")] {
            for iface in ["internal", "public", "admin"] {
                let p = keystone::endpoint_path(kind, &region.prefix, iface);
                if p.trim_start_matches('/') == first {
                    return (service, p);
                }
            }
        }
    }
    ("unknown", String::new())
}

fn requested_microversion(req: &Request) -> Option<String> {
    if let Some(h) = req.header("openstack-api-version") {
        for part in h.split(',') {
            let mut it = part.split_whitespace();
            if it.next().is_some_and(|s| s.eq_ignore_ascii_case("compute")) {
                return Some(it.next().unwrap_or("").to_string());
            }
        }
    }
    req.header("x-openstack-nova-api-version").map(|s| s.trim().to_string())
}

fn log_body(body: &[u8]) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            mask_secrets(&mut v);
            Some(v)
        }
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
            Some(Value::String(text))
        }
    }
}

struct SimHandler {
    shared: Arc<Shared>,
}

impl SimHandler {
    fn finish(&self, seq: u64, status: u16, outcome: &str) {
        let mut w = self.shared.lock();
        let now = w.now();
        if seq < w.log_first_seq {
            return;
        }
        let first = w.log.first().map(|e| e.seq).unwrap_or(seq);
        let idx = (seq - first) as usize;
        if let Some(e) = w.log.get_mut(idx).filter(|e| e.seq == seq) {
            e.status = status;
            e.outcome = outcome.into();
            e.finished = Some(now);
        }
    }
}

impl Handler for SimHandler {
    fn handle(&self, mut req: Request) -> Outcome {
        let request_id = format!("req-{}", global_rng(|r| r.uuid4()));
        // Clients cannot inject it: drop any copy they sent.
        req.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(nova::REQUEST_ID_HEADER));
        req.headers.push((nova::REQUEST_ID_HEADER.into(), request_id.clone()));
        // Phase 1: classify, decide faults, open the log entry.
        let (service, prefix, decision, seq) = {
            let mut w = self.shared.lock();
            let now = w.now();
            let (service, prefix) = classify(&w, &req.path);
            if service == "sim" {
                (service, prefix, faults::Decision::default(), 0)
            } else {
                let World { faults, rng, .. } = &mut *w;
                let d = faults::decide(&mut faults.rules, rng, service, &req.method, &req.path, &req.raw_query, &req.body);
                let seq = w.next_seq;
                w.next_seq += 1;
                if w.log.len() >= MAX_LOG {
                    w.log.drain(..MAX_LOG / 10);
                }
                w.log.push(LogEntry {
                    seq,
                    service: service.into(),
                    method: req.method.clone(),
                    path: req.target.clone(),
                    microversion: requested_microversion(&req),
                    body: log_body(&req.body),
                    status: 0,
                    outcome: "pending".into(),
                    faults: d.rule_ids.clone(),
                    request_id: request_id.clone(),
                    started: now,
                    finished: None,
                });
                (service, prefix, d, seq)
            }
        };
        // Latency is served without the lock so other requests proceed.
        if decision.latency_ms > 0 {
            std::thread::sleep(Duration::from_millis(decision.latency_ms));
        }
        let mut after: Option<FaultAction> = None;
        match decision.action {
            Some(FaultAction::Hang) => {
                self.finish(seq, 0, "hang");
                return Outcome::Hang;
            }
            Some(FaultAction::Reset) => {
                self.finish(seq, 0, "reset");
                return Outcome::Reset;
            }
            Some(FaultAction::Error { status, body }) => {
                let resp = match body {
                    Some(Value::String(s)) => Response::text(status, &s),
                    Some(v) => Response::json(status, &v),
                    None if service == "keystone" => keystone::error(status, "Injected", "Injected fault."),
                    None => nova::fault(status, "Injected fault."),
                };
                self.finish(seq, status, "ok");
                return Outcome::Respond(resp.with_header("x-openstack-request-id", &request_id));
            }
            Some(a @ (FaultAction::ResetAfter | FaultAction::HangAfter)) => after = Some(a),
            None => {}
        }
        // Phase 2: process under the lock (no sleeping in here).
        let resp = {
            let mut w = self.shared.lock();
            let now = w.now();
            w.tick(now);
            match service {
                "keystone" => keystone::handle(&mut w, &req, now),
                "nova" => nova::handle(&mut w, &req, now, &prefix),
                "glance" => glance::handle(&mut w, &req, now, &prefix),
                "sim" => control::handle(&mut w, &req, now),
                _ => Response::json(404, &json!({"error": {"code": 404, "message": "The resource could not be found."}})),
            }
        };
        // Deferred bodies (large lists) are rendered here, without the lock.
        let mut resp = resp.materialize();
        if let Some(pos) = resp.headers.iter().position(|(k, _)| k == nova::DELAY_HEADER) {
            let (_, ms) = resp.headers.remove(pos);
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
        }
        let resp = match service {
            "nova" => resp.with_header("x-openstack-request-id", &request_id).with_header("x-compute-request-id", &request_id),
            "sim" => resp,
            _ => resp.with_header("x-openstack-request-id", &request_id),
        };
        match after {
            Some(FaultAction::ResetAfter) => {
                self.finish(seq, resp.status, "reset");
                Outcome::Reset
            }
            Some(_) => {
                self.finish(seq, resp.status, "hang");
                Outcome::Hang
            }
            None => {
                if service != "sim" {
                    self.finish(seq, resp.status, "ok");
                }
                Outcome::Respond(resp)
            }
        }
    }
}

/// Reads the request log from another thread.
#[derive(Debug, Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl LogReader {
    /// Finished entries with `seq > since`, in order; stops at the first
    /// entry still in flight so that every entry is returned once, final.
    pub fn finished_since(&self, since: u64) -> Vec<LogEntry> {
        let w = self.shared.lock();
        w.log.iter().filter(|e| e.seq > since).take_while(|e| e.outcome != "pending").cloned().collect()
    }

    /// Every entry with `seq > since`, in flight or not.
    pub fn all_since(&self, since: u64) -> Vec<LogEntry> {
        let w = self.shared.lock();
        w.log.iter().filter(|e| e.seq > since).cloned().collect()
    }
}

/// Starts simulators.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Serves `scenario` on an ephemeral 127.0.0.1 port.
    pub fn start(scenario: Scenario) -> anyhow::Result<SimHandle> {
        Self::start_on("127.0.0.1:0", scenario, TlsConfig::default())
    }

    /// Serves HTTPS with the given PEM certificate chain and key.
    #[cfg(feature = "tls")]
    pub fn start_tls(scenario: Scenario, cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<SimHandle> {
        Self::start_on("127.0.0.1:0", scenario, TlsConfig::from_pem(cert_pem, key_pem)?)
    }

    /// Serves HTTPS with the built-in test certificate ([`testcerts`]);
    /// clients trust [`testcerts::CA_PEM`].
    #[cfg(feature = "tls")]
    pub fn start_tls_test_cert(scenario: Scenario) -> anyhow::Result<SimHandle> {
        Self::start_tls(scenario, testcerts::SERVER_CERT_PEM, testcerts::SERVER_KEY_PEM)
    }

    pub fn start_on(addr: &str, scenario: Scenario, tls: TlsConfig) -> anyhow::Result<SimHandle> {
        let world = World::new(scenario)?;
        let shared = Arc::new(Shared { world: Mutex::new(world) });
        let scheme = tls_scheme(&tls);
        let handler: Arc<dyn Handler> = Arc::new(SimHandler { shared: shared.clone() });
        let server = HttpServer::bind(addr, handler, tls)?;
        let base = format!("{scheme}://{}", server.local_addr());
        Ok(SimHandle { server, shared, base })
    }
}

#[cfg(feature = "tls")]
fn tls_scheme(tls: &TlsConfig) -> &'static str {
    if tls.server.is_some() { "https" } else { "http" }
}

#[cfg(not(feature = "tls"))]
fn tls_scheme(_tls: &TlsConfig) -> &'static str {
    "http"
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct SimHandle {
    server: HttpServer,
    shared: Arc<Shared>,
    base: String,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.base.clone()
    }
    /// Keystone v3: `http://127.0.0.1:PORT/identity/v3`
    pub fn auth_url(&self) -> String {
        format!("{}/identity/v3", self.base)
    }
    /// RegionOne internal compute endpoint: `.../compute/v2.1`
    pub fn compute_url(&self) -> String {
        format!("{}/compute/v2.1", self.base)
    }
    /// RegionOne internal image endpoint: `.../image`
    pub fn image_url(&self) -> String {
        format!("{}/image", self.base)
    }
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }
    pub fn active_connections(&self) -> usize {
        self.server.active_connections()
    }

    /// Direct access to the world (ticked to now first).
    pub fn with_world<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        let mut w = self.shared.lock();
        let now = w.now();
        w.tick(now);
        f(&mut w)
    }

    pub fn state(&self) -> StateDump {
        self.with_world(|w| {
            let now = w.now();
            control::dump(w, now)
        })
    }

    pub fn log(&self) -> Vec<LogEntry> {
        self.with_world(|w| w.log.clone())
    }

    /// Log entries as `"METHOD path"` strings, convenient for assertions.
    pub fn log_lines(&self) -> Vec<String> {
        self.log().iter().map(|e| format!("{} {}", e.method, e.path)).collect()
    }

    /// A cheap, thread-safe reader of the request log (for log shippers).
    pub fn log_reader(&self) -> LogReader {
        LogReader { shared: self.shared.clone() }
    }

    pub fn clear_log(&self) {
        self.with_world(|w| {
            w.log_first_seq = w.next_seq;
            w.log.clear();
        })
    }

    pub fn set_faults(&self, faults: FaultSet) {
        self.with_world(|w| control::set_faults(w, faults))
    }
    pub fn add_fault(&self, rule: FaultRule) {
        self.with_world(|w| w.faults.rules.push(rule))
    }
    pub fn clear_faults(&self) {
        self.with_world(|w| w.faults = FaultSet::default())
    }
    pub fn set_token_faults(&self, t: TokenFaults) {
        self.with_world(|w| {
            let mut fs = w.faults.clone();
            fs.token = t;
            control::set_faults(w, fs)
        })
    }
    /// One-shot evacuation failures (see [`EvacuationFault`]).
    pub fn fail_evacuations(&self, f: EvacuationFault) {
        self.with_world(|w| w.faults.evacuations.push(f))
    }
    pub fn revoke_tokens(&self) {
        self.with_world(|w| w.tokens.values_mut().for_each(|t| t.revoked = true))
    }

    /// nova-compute on `host` stops; Nova notices after service_down_time.
    pub fn stop_host(&self, host: &str) -> bool {
        self.with_world(|w| {
            let now = w.now();
            w.compute_stopped(host, now, false)
        })
    }
    /// nova-compute on `host` died long enough ago that Nova sees it down now.
    pub fn kill_host(&self, host: &str) -> bool {
        self.with_world(|w| {
            let now = w.now();
            w.compute_stopped(host, now, true)
        })
    }
    /// nova-compute on `host` (re)starts: `done` evacuations → `completed`.
    pub fn start_host(&self, host: &str) -> bool {
        self.with_world(|w| {
            let now = w.now();
            if w.host(host).is_none() {
                return false;
            }
            w.compute_started(host, now);
            true
        })
    }
    /// Marks the host's cell database as unreachable (or back).
    pub fn set_cell_down(&self, host: &str, down: bool) -> bool {
        self.with_world(|w| match w.host_mut(host) {
            Some(h) => {
                h.cell_down = down;
                true
            }
            None => false,
        })
    }
    pub fn heartbeat(&self, host: &str) -> anyhow::Result<bool> {
        self.with_world(|w| {
            let now = w.now();
            w.heartbeat(host, now, None)
        })
    }
    pub fn add_host(&self, hc: HostConfig) -> anyhow::Result<()> {
        self.with_world(|w| {
            let now = w.now();
            w.add_host(&hc, now)
        })
    }
    pub fn add_servers(&self, spec: BulkSpec) -> anyhow::Result<Vec<String>> {
        self.with_world(|w| {
            let now = w.now();
            w.add_servers_bulk(&spec, now)
        })
    }
    /// Moves the simulated clock forward (service liveness, token expiry,
    /// evacuation progress all follow it).
    pub fn advance_clock(&self, d: Duration) {
        self.with_world(|w| w.advance_clock(d.as_secs_f64()))
    }
    /// Freezes the simulated clock: nothing time-driven happens (heartbeats
    /// age, evacuations progress, tokens expire) except by `advance_clock`.
    /// Makes step-by-step tests deterministic.
    pub fn freeze_clock(&self) {
        self.with_world(|w| w.freeze_clock(true))
    }
    pub fn unfreeze_clock(&self) {
        self.with_world(|w| w.freeze_clock(false))
    }
    pub fn configure(&self, patch: control::ConfigPatch) -> Result<(), String> {
        self.with_world(|w| control::apply_config(w, &patch))
    }
    /// Replaces the whole world with a new scenario (log cleared).
    pub fn load_scenario(&self, s: Scenario) -> anyhow::Result<()> {
        let nw = World::new(s)?;
        self.with_world(|w| {
            let next = w.next_seq;
            *w = nw;
            w.next_seq = next;
            w.log_first_seq = next;
        });
        Ok(())
    }

    /// Issues an admin token directly (no request logged).
    pub fn admin_token(&self) -> String {
        self.with_world(|w| {
            let now = w.now();
            let a = w.scenario.auth.clone();
            let id = format!("gAAAAA{}", w.rng.hex(90));
            w.tokens.insert(
                id.clone(),
                world::Token {
                    id: id.clone(),
                    user_id: a.user_id.clone(),
                    user_name: a.username.clone(),
                    user_domain: a.user_domain.clone(),
                    project_id: Some(a.project_id.clone()),
                    project_name: Some(a.project.clone()),
                    project_domain: Some(a.project_domain.clone()),
                    system: false,
                    is_admin: true,
                    methods: vec!["password".into()],
                    issued: now,
                    expires: now + a.token_lifetime_secs,
                    uses: 0,
                    revoked: false,
                },
            );
            id
        })
    }

    /// A test client for the RegionOne internal compute endpoint with an
    /// admin token.
    pub fn nova(&self) -> client::Api {
        client::Api::new(&self.compute_url()).with_token(&self.admin_token())
    }

    /// Polls the state until `pred` holds or `timeout` passes.
    pub fn wait_until(&self, timeout: Duration, mut pred: impl FnMut(&StateDump) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.state()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A throw-away test PKI (valid until 2126) so TLS tests need no tooling:
/// a CA and a server certificate for `localhost` and `127.0.0.1`.
/// Never use these outside tests: the private key is public.
pub mod testcerts {
    /// The CA certificate clients should trust.
    pub const CA_PEM: &[u8] = include_bytes!("../data/ca.pem");
    /// Server certificate (CN=localhost, SAN DNS:localhost, IP:127.0.0.1).
    pub const SERVER_CERT_PEM: &[u8] = include_bytes!("../data/server.pem");
    /// The server certificate's private key (RSA 2048, PKCS#8).
    pub const SERVER_KEY_PEM: &[u8] = include_bytes!("../data/server.key");
}
