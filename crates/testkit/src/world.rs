//! The simulated cloud's state and its rules: hosts and their nova-compute
//! services, servers, flavors, images, aggregates, migrations, tokens.
//!
//! Time-driven progress (boots, evacuations) is computed lazily: every
//! request first calls [`World::tick`], which moves each in-flight operation
//! through the steps whose time has come. Nothing runs in the background, so
//! the state is deterministic for a given sequence of requests and clock.
//!
//! Behaviour follows Nova 34 (`nova/compute/api.py` `evacuate`,
//! `nova/conductor/manager.py` `rebuild_instance`, `nova/servicegroup`):
//! a service is up iff its last heartbeat is within `service_down_time` and
//! it is not forced down; evacuation sets task_state `rebuilding` and creates
//! a migration `accepted`; the conductor schedules (NoValidHost → migration
//! `error`, instance ERROR with a fault); the destination rebuilds
//! (claim: `pre-migrating`; `rebuild_spawning`; the instance moves to the
//! destination only at the end, `ResourceTracker.finish_evacuation`, then
//! `done`); a restarting
//! nova-compute on the source turns its `done` evacuations `completed` and
//! destroys the local copies (`ComputeManager._destroy_evacuated_instances`).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::faults::{EvacuationFault, FaultSet};
use crate::scenario::{self, HostConfig, Scenario, ServerConfig};
use crate::util::{Rng, wall_now};

/// An API error with Nova's status and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Nova power states (`nova/compute/power_state.py`).
pub const POWER_NOSTATE: u8 = 0;
pub const POWER_RUNNING: u8 = 1;
pub const POWER_SHUTDOWN: u8 = 4;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    pub service_id: u64,
    pub service_uuid: String,
    pub hypervisor_id: u64,
    pub hypervisor_uuid: String,
    pub hypervisor_hostname: String,
    pub ip: String,
    pub zone: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    /// Is the (simulated) nova-compute process running?
    pub running: bool,
    /// Heartbeats come from outside (`nova-sim compute`) instead of the simulator.
    pub external: bool,
    /// Last heartbeat (for running `auto` hosts: the time it was last stopped/started).
    pub last_seen: f64,
    pub max_instances: Option<u32>,
    pub vcpus: Option<u32>,
    pub ram_mb: Option<u64>,
    /// The host's cell is down (see [`HostConfig::cell_down`]).
    #[serde(default)]
    pub cell_down: bool,
    /// Observed period of external heartbeats.
    #[serde(default)]
    pub heartbeat_interval: Option<f64>,
    /// Servers evacuated away whose local copy the host has not destroyed yet.
    pub stale_copies: Vec<String>,
    /// How many times nova-compute (re)started.
    pub starts: u64,
    pub created: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtherService {
    pub id: u64,
    pub uuid: String,
    pub binary: String,
    pub host: String,
    pub zone: String,
    pub created: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    pub code: u16,
    pub message: String,
    pub created: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub host: Option<String>,
    pub node: Option<String>,
    pub flavor_id: String,
    /// `""` = boot from volume.
    pub image_id: String,
    pub vm_state: String,
    pub task_state: Option<String>,
    pub power_state: u8,
    pub locked: bool,
    pub locked_reason: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub created: f64,
    pub updated: f64,
    pub launched_at: Option<f64>,
    pub fault: Option<Fault>,
    /// Creation order (list order and markers).
    pub seq: u64,
    /// When a BUILD finishes.
    #[serde(skip)]
    pub boot_done_at: Option<f64>,
    /// `os-instance-actions` records, oldest first.
    pub actions: Vec<InstanceAction>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionEvent {
    pub event: String,
    pub start_time: f64,
    pub finish_time: Option<f64>,
    /// `Success` / `Error`, `None` while running.
    pub result: Option<String>,
    pub host: Option<String>,
    pub details: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceAction {
    pub action: String,
    pub request_id: String,
    pub user_id: String,
    pub project_id: String,
    pub start_time: f64,
    pub updated_at: f64,
    /// `Error` once an event failed (Nova's convention).
    pub message: Option<String>,
    pub events: Vec<ActionEvent>,
}

impl Server {
    /// Records an API action (no events yet).
    pub fn record_action(&mut self, action: &str, request_id: &str, user_id: &str, now: f64) {
        self.actions.push(InstanceAction {
            action: action.into(),
            request_id: request_id.into(),
            user_id: user_id.into(),
            project_id: self.project_id.clone(),
            start_time: now,
            updated_at: now,
            message: None,
            events: Vec::new(),
        });
    }

    fn action_event(&mut self, request_id: &str, ev: ActionEvent) {
        if let Some(a) = self.actions.iter_mut().rev().find(|a| a.request_id == request_id) {
            if ev.result.as_deref() == Some("Error") {
                a.message = Some("Error".into());
            }
            a.updated_at = ev.finish_time.unwrap_or(ev.start_time);
            a.events.push(ev);
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram: u64,
    pub disk: u64,
    pub ephemeral: u64,
    pub swap: u64,
    pub is_public: bool,
    pub description: Option<String>,
    pub extra_specs: BTreeMap<String, String>,
    /// Nova's integer primary key (migrations' old/new_instance_type_id).
    pub internal_id: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub properties: BTreeMap<String, serde_json::Value>,
    pub visibility: String,
    pub created: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Aggregate {
    pub id: u64,
    pub uuid: String,
    pub name: String,
    pub availability_zone: Option<String>,
    pub hosts: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub created: f64,
    pub updated: Option<f64>,
}

/// How an evacuation will end (decided when accepted, from capacity and
/// one-shot faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    NoValidHost,
    RebuildFailed,
    Stuck,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvacPlan {
    pub sched_at: f64,
    pub spawn_at: f64,
    pub done_at: f64,
    pub dest: Option<String>,
    pub outcome: Outcome,
    /// 2.95+: the instance ends stopped whatever its state.
    pub target_stopped: bool,
    pub prior_vm_state: String,
    /// 0 accepted, 1 scheduled, 2 spawning on destination, 3 finished.
    pub phase: u8,
    pub on_shared_storage: Option<bool>,
    /// Request id of the evacuate call (instance action).
    #[serde(default)]
    pub request_id: String,
    /// `force: true` (2.29-2.67): no scheduler involvement.
    #[serde(default)]
    pub forced: bool,
    /// The `host` the API call asked for.
    #[serde(default)]
    pub requested_host: Option<String>,
    /// A forced host without room: the conductor's placement claim fails
    /// and Nova leaves vm_state as it was (only task_state is cleared).
    #[serde(default)]
    pub keep_vm_state: bool,
    /// Fault message when the destination fails the rebuild.
    #[serde(default)]
    pub failure: Option<String>,
}

impl EvacPlan {
    /// When the evacuation's next step is due (`None` once finished).
    fn next_due(&self) -> Option<f64> {
        match self.phase {
            0 => Some(self.sched_at),
            1 => Some(self.spawn_at),
            2 => Some(self.done_at),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Migration {
    pub id: u64,
    pub uuid: String,
    pub instance_uuid: String,
    pub source_compute: Option<String>,
    pub source_node: Option<String>,
    pub dest_compute: Option<String>,
    pub dest_node: Option<String>,
    pub dest_host: Option<String>,
    pub status: String,
    pub migration_type: String,
    pub created: f64,
    pub updated: Option<f64>,
    pub old_instance_type_id: u64,
    pub new_instance_type_id: u64,
    pub user_id: String,
    pub project_id: String,
    pub plan: Option<EvacPlan>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub user_id: String,
    pub user_name: String,
    pub user_domain: String,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub project_domain: Option<String>,
    pub system: bool,
    pub is_admin: bool,
    pub methods: Vec<String>,
    pub issued: f64,
    pub expires: f64,
    pub uses: u64,
    pub revoked: bool,
}

/// One request as recorded in the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogEntry {
    pub seq: u64,
    /// `keystone`, `nova`, `glance`, `sim` or `unknown`.
    pub service: String,
    pub method: String,
    /// Path and query as received.
    pub path: String,
    /// Compute microversion as requested (header value, e.g. `2.11`,
    /// `latest`), `None` when no header was sent.
    pub microversion: Option<String>,
    /// The JSON body with secrets masked (or the raw text if not JSON).
    pub body: Option<serde_json::Value>,
    /// 0 while in flight or when the connection was hung/reset.
    pub status: u16,
    /// `ok`, `pending`, `hang`, `reset`.
    pub outcome: String,
    /// Fault rules that fired.
    pub faults: Vec<String>,
    pub request_id: String,
    /// Simulated-clock seconds since the epoch.
    pub started: f64,
    pub finished: Option<f64>,
}

/// Timing and limits from the scenario, adjustable at runtime.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub service_down_time: f64,
    pub report_interval: f64,
    pub rebuild_delay_ms: u64,
    pub rebuild_jitter_ms: u64,
    pub schedule_delay_ms: u64,
    pub boot_delay_ms: u64,
    pub rpc_timeout_ms: u64,
    pub max_microversion: (u32, u32),
    pub max_limit: usize,
    pub enable_instance_password: bool,
}

/// The whole simulated cloud.
#[derive(Debug)]
pub struct World {
    pub scenario: Scenario,
    pub cfg: Config,
    pub clock_offset: f64,
    /// When set, the clock stands still here and moves only by `advance_clock`.
    pub frozen_at: Option<f64>,
    pub rng: Rng,
    pub hosts: Vec<Host>,
    pub other_services: Vec<OtherService>,
    pub servers: BTreeMap<u64, Server>,
    pub server_index: HashMap<String, u64>,
    pub flavors: Vec<Flavor>,
    pub images: Vec<Image>,
    pub aggregates: Vec<Aggregate>,
    pub migrations: Vec<Migration>,
    /// Indices into `migrations` still progressing.
    pub inflight: Vec<usize>,
    /// The earliest time a step of an in-flight evacuation is due, and how
    /// many were in flight when it was worked out (see [`World::tick`]).
    inflight_due: Option<(f64, usize)>,
    pub booting: Vec<String>,
    pub tokens: HashMap<String, Token>,
    pub faults: FaultSet,
    pub log: Vec<LogEntry>,
    pub log_first_seq: u64,
    pub next_seq: u64,
    next_server_seq: u64,
    next_service_id: u64,
}

pub fn parse_version(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.trim().split_once('.')?;
    if a.is_empty() || b.is_empty() || !a.chars().all(|c| c.is_ascii_digit()) || !b.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn server_status(vm_state: &str, task_state: Option<&str>) -> &'static str {
    // nova/api/openstack/common.py _STATE_MAP (the parts that matter here).
    let rebuilding = matches!(task_state, Some("rebuilding" | "rebuild_block_device_mapping" | "rebuild_spawning"));
    match vm_state {
        "active" => match task_state {
            _ if rebuilding => "REBUILD",
            Some("rebooting") => "REBOOT",
            Some("reboot_pending" | "reboot_started") => "REBOOT",
            Some("rebooting_hard" | "reboot_pending_hard" | "reboot_started_hard") => "HARD_REBOOT",
            Some("migrating") => "MIGRATING",
            Some("resize_prep" | "resize_migrating" | "resize_migrated" | "resize_finish") => "RESIZE",
            _ => "ACTIVE",
        },
        "stopped" => {
            if rebuilding {
                "REBUILD"
            } else {
                "SHUTOFF"
            }
        }
        "building" => "BUILD",
        "error" => "ERROR",
        "paused" => "PAUSED",
        "suspended" => "SUSPENDED",
        "rescued" => "RESCUE",
        "resized" => "VERIFY_RESIZE",
        "soft-delete" => "SOFT_DELETED",
        "shelved" => "SHELVED",
        "shelved_offloaded" => "SHELVED_OFFLOADED",
        "deleted" => "DELETED",
        _ => "UNKNOWN",
    }
}

impl Server {
    pub fn status(&self) -> &'static str {
        server_status(&self.vm_state, self.task_state.as_deref())
    }
}

impl World {
    pub fn new(scenario: Scenario) -> anyhow::Result<Self> {
        let max_mv = parse_version(&scenario.max_microversion)
            .ok_or_else(|| anyhow::anyhow!("bad max_microversion {:?}", scenario.max_microversion))?;
        if max_mv < (2, 1) {
            anyhow::bail!("max_microversion must be at least 2.1");
        }
        let cfg = Config {
            service_down_time: scenario.service_down_time_secs,
            report_interval: scenario.report_interval_secs,
            rebuild_delay_ms: scenario.rebuild_delay_ms,
            rebuild_jitter_ms: scenario.rebuild_jitter_ms,
            schedule_delay_ms: scenario.schedule_delay_ms,
            boot_delay_ms: scenario.boot_delay_ms,
            rpc_timeout_ms: scenario.rpc_timeout_ms,
            max_microversion: max_mv,
            max_limit: scenario.max_limit.max(1),
            enable_instance_password: scenario.enable_instance_password,
        };
        let rng = match scenario.seed {
            Some(s) => Rng::new(s),
            None => Rng::from_time(),
        };
        let mut w = World {
            cfg,
            clock_offset: 0.0,
            frozen_at: None,
            rng,
            hosts: Vec::new(),
            other_services: Vec::new(),
            servers: BTreeMap::new(),
            server_index: HashMap::new(),
            flavors: Vec::new(),
            images: Vec::new(),
            aggregates: Vec::new(),
            migrations: Vec::new(),
            inflight: Vec::new(),
            inflight_due: None,
            booting: Vec::new(),
            tokens: HashMap::new(),
            faults: scenario.faults.clone(),
            log: Vec::new(),
            log_first_seq: 1,
            next_seq: 1,
            next_server_seq: 1,
            next_service_id: 1,
            scenario: scenario.clone(),
        };
        let now = w.now();
        // Non-compute services first, as a deployment registers them first.
        for binary in ["nova-scheduler", "nova-conductor"] {
            let id = w.next_service_id;
            w.next_service_id += 1;
            let uuid = w.rng.uuid4();
            w.other_services.push(OtherService {
                id,
                uuid,
                binary: binary.into(),
                host: scenario.controller_host.clone(),
                zone: "internal".into(),
                created: now - 3600.0,
            });
        }
        for hc in &scenario.hosts {
            w.add_host(hc, now)?;
        }
        for (i, f) in scenario.flavors.clone().unwrap_or_else(scenario::default_flavors).into_iter().enumerate() {
            if w.flavors.iter().any(|x| x.id == f.id) {
                anyhow::bail!("duplicate flavor id {}", f.id);
            }
            w.flavors.push(Flavor {
                id: f.id,
                name: f.name,
                vcpus: f.vcpus,
                ram: f.ram,
                disk: f.disk,
                ephemeral: f.ephemeral,
                swap: f.swap,
                is_public: f.is_public,
                description: f.description,
                extra_specs: f.extra_specs,
                internal_id: i as u64 + 1,
            });
        }
        for im in scenario.images.clone().unwrap_or_else(scenario::default_images) {
            w.images.push(Image {
                id: im.id,
                name: im.name,
                tags: im.tags,
                properties: im.properties,
                visibility: im.visibility.unwrap_or_else(|| "public".into()),
                created: now - 7200.0,
            });
        }
        for (i, a) in scenario.aggregates.iter().enumerate() {
            let uuid = w.rng.uuid4();
            let mut metadata = a.metadata.clone();
            if let Some(az) = &a.availability_zone {
                metadata.insert("availability_zone".into(), az.clone());
            }
            w.aggregates.push(Aggregate {
                id: i as u64 + 1,
                uuid,
                name: a.name.clone(),
                availability_zone: a.availability_zone.clone(),
                hosts: a.hosts.clone(),
                metadata,
                created: now - 3600.0,
                updated: None,
            });
        }
        for sc in &scenario.servers {
            w.place_server(sc, now)?;
        }
        Ok(w)
    }

    /// Simulated time: wall clock plus the offset moved by `advance_clock`.
    pub fn now(&self) -> f64 {
        self.frozen_at.unwrap_or_else(|| wall_now() + self.clock_offset)
    }

    /// Moves the simulated clock forward (frozen or not).
    pub fn advance_clock(&mut self, secs: f64) {
        match &mut self.frozen_at {
            Some(t) => *t += secs,
            None => self.clock_offset += secs,
        }
        let now = self.now();
        self.tick(now);
    }

    /// Stops (true) or restarts (false) the simulated clock. A restarted
    /// clock continues from where it stood.
    pub fn freeze_clock(&mut self, frozen: bool) {
        let now = self.now();
        if frozen {
            self.frozen_at = Some(now);
        } else if self.frozen_at.take().is_some() {
            self.clock_offset = now - wall_now();
        }
    }

    pub fn add_host(&mut self, hc: &HostConfig, now: f64) -> anyhow::Result<()> {
        if hc.name.is_empty() {
            anyhow::bail!("host name must not be empty");
        }
        if self.host(&hc.name).is_some() {
            anyhow::bail!("duplicate host {}", hc.name);
        }
        let n = self.hosts.len() as u64 + 1;
        let id = self.next_service_id;
        self.next_service_id += 1;
        let service_uuid = self.rng.uuid4();
        let hypervisor_uuid = self.rng.uuid4();
        let state = hc.state.as_deref().unwrap_or("up");
        let (running, last_seen) = match state {
            "up" => (true, now),
            "stopped" => (false, now),
            "down" => (false, now - 10.0 * self.cfg.service_down_time.max(1.0) - 3600.0),
            other => anyhow::bail!("host {}: unknown state {other:?} (up, down, stopped)", hc.name),
        };
        let disabled = match hc.status.as_deref().unwrap_or("enabled") {
            "enabled" => false,
            "disabled" => true,
            other => anyhow::bail!("host {}: unknown status {other:?}", hc.name),
        };
        let external = match hc.heartbeat.as_deref().unwrap_or("auto") {
            "auto" => false,
            "external" => true,
            other => anyhow::bail!("host {}: unknown heartbeat mode {other:?}", hc.name),
        };
        self.hosts.push(Host {
            name: hc.name.clone(),
            service_id: id,
            service_uuid,
            hypervisor_id: n,
            hypervisor_uuid,
            hypervisor_hostname: hc.hypervisor_hostname.clone().unwrap_or_else(|| hc.name.clone()),
            ip: hc.ip.clone().unwrap_or_else(|| format!("192.0.2.{}", 10 + (n % 240))),
            zone: hc.zone.clone().unwrap_or_else(|| "nova".into()),
            disabled,
            disabled_reason: hc.disabled_reason.clone(),
            forced_down: hc.forced_down,
            running,
            external,
            last_seen,
            max_instances: hc.max_instances,
            vcpus: hc.vcpus,
            ram_mb: hc.ram_mb,
            cell_down: hc.cell_down,
            heartbeat_interval: None,
            stale_copies: Vec::new(),
            starts: u64::from(running),
            created: now - 3600.0,
        });
        Ok(())
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn host_mut(&mut self, name: &str) -> Option<&mut Host> {
        self.hosts.iter_mut().find(|h| h.name == name)
    }

    /// The time of the last heartbeat as Nova's DB would show it.
    pub fn last_heartbeat(&self, h: &Host, now: f64) -> f64 {
        if h.running && !h.external {
            // An auto host reports every report_interval; show the last report.
            let ri = self.cfg.report_interval.max(0.001);
            let since = (now - h.last_seen).max(0.0);
            h.last_seen + (since / ri).floor() * ri
        } else {
            h.last_seen
        }
    }

    /// Is the host's nova-compute process alive (able to act on RPCs)? For
    /// external hosts: heartbeats keep arriving (within 2.5 periods).
    pub fn compute_alive(&self, h: &Host, now: f64) -> bool {
        if !h.running {
            return false;
        }
        if !h.external {
            return true;
        }
        let period = h.heartbeat_interval.unwrap_or(self.cfg.report_interval).max(0.2);
        now - h.last_seen <= 2.5 * period
    }

    pub fn compute_alive_by_name(&self, name: &str, now: f64) -> bool {
        self.host(name).is_some_and(|h| self.compute_alive(h, now))
    }

    /// `nova.servicegroup.drivers.db.DbDriver.is_up`: forced_down wins, else
    /// the heartbeat must be within service_down_time.
    pub fn host_up(&self, h: &Host, now: f64) -> bool {
        if h.forced_down {
            return false;
        }
        now - self.last_heartbeat(h, now) <= self.cfg.service_down_time
    }

    pub fn host_is_up(&self, name: &str, now: f64) -> bool {
        self.host(name).is_some_and(|h| self.host_up(h, now))
    }

    pub fn flavor(&self, id: &str) -> Option<&Flavor> {
        self.flavors.iter().find(|f| f.id == id)
    }

    pub fn server(&self, id: &str) -> Option<&Server> {
        self.server_index.get(id).and_then(|s| self.servers.get(s))
    }

    pub fn server_mut(&mut self, id: &str) -> Option<&mut Server> {
        match self.server_index.get(id) {
            Some(s) => self.servers.get_mut(s),
            None => None,
        }
    }

    fn insert_server(&mut self, s: Server) {
        self.server_index.insert(s.id.clone(), s.seq);
        self.servers.insert(s.seq, s);
    }

    pub fn remove_server(&mut self, id: &str) -> Option<Server> {
        let seq = self.server_index.remove(id)?;
        self.booting.retain(|b| b != id);
        // Its evacuation, if any, errors at the next tick (see `tick`).
        self.inflight_due = None;
        self.servers.remove(&seq)
    }

    /// Places a server directly on a host (scenario, bulk creation).
    pub fn place_server(&mut self, sc: &ServerConfig, now: f64) -> anyhow::Result<String> {
        if let Some(h) = &sc.host {
            if self.host(h).is_none() {
                anyhow::bail!("server {}: unknown host {h}", sc.name);
            }
        }
        if self.flavor(&sc.flavor).is_none() {
            anyhow::bail!("server {}: unknown flavor {}", sc.name, sc.flavor);
        }
        let image_id = match &sc.image {
            Some(i) if i.is_empty() => String::new(),
            Some(i) => {
                if !self.images.iter().any(|im| &im.id == i) {
                    anyhow::bail!("server {}: unknown image {i}", sc.name);
                }
                i.clone()
            }
            None => self.images.first().map(|i| i.id.clone()).unwrap_or_default(),
        };
        let id = match &sc.id {
            Some(id) => {
                if self.server_index.contains_key(id) {
                    anyhow::bail!("duplicate server id {id}");
                }
                id.clone()
            }
            None => self.rng.uuid4(),
        };
        let power_state = match sc.vm_state.as_str() {
            "active" | "rescued" => POWER_RUNNING,
            "paused" => 3,
            "suspended" => 7,
            "stopped" | "shelved" | "shelved_offloaded" => POWER_SHUTDOWN,
            "error" | "building" => POWER_NOSTATE,
            other => anyhow::bail!("server {}: unsupported vm_state {other:?}", sc.name),
        };
        let seq = self.next_server_seq;
        self.next_server_seq += 1;
        let node = sc.host.as_ref().and_then(|h| self.host(h)).map(|h| h.hypervisor_hostname.clone());
        let project_id = sc.project_id.clone().unwrap_or_else(|| self.scenario.auth.project_id.clone());
        let server = Server {
            id: id.clone(),
            name: sc.name.clone(),
            project_id,
            user_id: self.scenario.auth.user_id.clone(),
            host: sc.host.clone(),
            node,
            flavor_id: sc.flavor.clone(),
            image_id,
            vm_state: sc.vm_state.clone(),
            task_state: sc.task_state.clone(),
            power_state,
            locked: sc.locked,
            locked_reason: sc.locked_reason.clone(),
            metadata: sc.metadata.clone(),
            tags: sc.tags.clone(),
            // Keep creation order visible in timestamps (list sorting).
            created: now - 600.0 + seq as f64 * 1e-3,
            updated: now - 600.0 + seq as f64 * 1e-3,
            launched_at: Some(now - 600.0),
            fault: None,
            seq,
            boot_done_at: None,
            actions: Vec::new(),
        };
        self.insert_server(server);
        Ok(id)
    }

    /// Resource usage per host: (instances, vcpus, ram), counting servers
    /// on the host and evacuations that will land there.
    ///
    /// Called for every scheduling decision, so once per evacuate call: it
    /// borrows the host names and looks each flavor up once, because a scan
    /// of a 1000-instance world per call, allocating per server, made the
    /// simulator's lock (not its configured latency) what a benchmark of
    /// parallel evacuation measured.
    pub fn usage(&self) -> HashMap<&str, (u32, u64, u64)> {
        // A few hosts, many servers: a list searched from the last hit beats
        // hashing every server's host name.
        let mut per_host: Vec<(&str, (u32, u64, u64))> = Vec::with_capacity(self.hosts.len());
        let mut last = 0;
        fn add<'a>(per_host: &mut Vec<(&'a str, (u32, u64, u64))>, last: &mut usize, host: &'a str, (c, r): (u64, u64)) {
            let at = match per_host.get(*last) {
                Some((h, _)) if *h == host => *last,
                _ => match per_host.iter().position(|(h, _)| *h == host) {
                    Some(at) => at,
                    None => {
                        per_host.push((host, (0, 0, 0)));
                        per_host.len() - 1
                    }
                },
            };
            *last = at;
            let e = &mut per_host[at].1;
            e.0 += 1;
            e.1 += c;
            e.2 += r;
        }
        let mut flavors: Vec<(&str, (u64, u64))> = Vec::with_capacity(self.flavors.len());
        let mut fl = |id: &str| match flavors.iter().find(|(f, _)| *f == id) {
            Some(&(_, cr)) => cr,
            None => match self.flavor(id) {
                Some(f) => {
                    let cr = (f.vcpus as u64, f.ram);
                    flavors.push((f.id.as_str(), cr));
                    cr
                }
                None => (1, 512),
            },
        };
        for s in self.servers.values() {
            if let Some(h) = &s.host {
                add(&mut per_host, &mut last, h, fl(&s.flavor_id));
            }
        }
        for &i in &self.inflight {
            let m = &self.migrations[i];
            if let Some(p) = &m.plan {
                // The instance stays on the source until `done`, so every
                // in-flight evacuation holds a claim on its destination.
                if p.phase < 3 && p.outcome != Outcome::NoValidHost {
                    if let (Some(d), Some(s)) = (&p.dest, self.server(&m.instance_uuid)) {
                        add(&mut per_host, &mut last, d, fl(&s.flavor_id));
                    }
                }
            }
        }
        per_host.into_iter().collect()
    }

    fn fits(h: &Host, used: (u32, u64, u64), vcpus: u64, ram: u64) -> bool {
        h.max_instances.is_none_or(|m| used.0 < m)
            && h.vcpus.is_none_or(|v| used.1 + vcpus <= v as u64)
            && h.ram_mb.is_none_or(|r| used.2 + ram <= r)
    }

    /// Nova's NoValidHost message. When Placement has no candidate at all
    /// (every host disabled — the COMPUTE_STATUS_DISABLED trait — or without
    /// room for the flavor's VCPU/MEMORY_MB) the scheduler raises it with an
    /// empty reason: `"No valid host was found. "`; when candidates exist
    /// but the filters reject them all (down or forced down, the evacuation's
    /// source, max_instances) the reason is `There are not enough hosts
    /// available.` (scheduler/manager.py; the first seen against real Nova
    /// 34 evacuating to a disabled requested host).
    pub fn no_valid_host_message(&self, flavor_id: &str, only: Option<&str>) -> &'static str {
        let usage = self.usage();
        let (vcpus, ram) = self.flavor(flavor_id).map(|f| (f.vcpus as u64, f.ram)).unwrap_or((1, 512));
        let candidates = self.hosts.iter().filter(|h| only.is_none_or(|o| o == h.name)).any(|h| {
            let used = usage.get(h.name.as_str()).copied().unwrap_or_default();
            !h.disabled && h.vcpus.is_none_or(|v| used.1 + vcpus <= v as u64) && h.ram_mb.is_none_or(|r| used.2 + ram <= r)
        });
        if candidates {
            "No valid host was found. There are not enough hosts available."
        } else {
            "No valid host was found. "
        }
    }

    /// Does `host` have room for one more instance of `flavor_id`?
    pub fn has_capacity(&self, host: &str, flavor_id: &str) -> bool {
        let usage = self.usage();
        let (vcpus, ram) = self.flavor(flavor_id).map(|f| (f.vcpus as u64, f.ram)).unwrap_or((1, 512));
        self.host(host).is_some_and(|h| Self::fits(h, usage.get(host).copied().unwrap_or_default(), vcpus, ram))
    }

    /// The filter scheduler, reduced to what matters here: compute service
    /// up and enabled, not ignored, enough capacity; spread by instance count.
    pub fn schedule(&self, now: f64, flavor_id: &str, ignore: Option<&str>, only: Option<&str>) -> Option<String> {
        let usage = self.usage();
        let (vcpus, ram) = self.flavor(flavor_id).map(|f| (f.vcpus as u64, f.ram)).unwrap_or((1, 512));
        self.hosts
            .iter()
            .filter(|h| Some(h.name.as_str()) != ignore)
            .filter(|h| only.is_none_or(|o| o == h.name))
            .filter(|h| !h.disabled && self.host_up(h, now))
            .filter(|h| Self::fits(h, usage.get(h.name.as_str()).copied().unwrap_or_default(), vcpus, ram))
            .min_by(|a, b| {
                let ua = usage.get(a.name.as_str()).map(|u| u.0).unwrap_or(0);
                let ub = usage.get(b.name.as_str()).map(|u| u.0).unwrap_or(0);
                ua.cmp(&ub).then_with(|| a.name.cmp(&b.name))
            })
            .map(|h| h.name.clone())
    }

    /// Moves every time-driven operation forward to `now`.
    pub fn tick(&mut self, now: f64) {
        if !self.booting.is_empty() {
            let booting = std::mem::take(&mut self.booting);
            for id in booting {
                let done = self.server(&id).and_then(|s| s.boot_done_at).is_some_and(|t| now >= t);
                if done {
                    if let Some(s) = self.server_mut(&id) {
                        s.vm_state = "active".into();
                        s.task_state = None;
                        s.power_state = POWER_RUNNING;
                        s.launched_at = Some(now);
                        s.updated = now;
                        s.boot_done_at = None;
                    }
                } else if self.server(&id).is_some() {
                    self.booting.push(id);
                }
            }
        }
        if self.inflight.is_empty() {
            return;
        }
        // Every request ticks, under the world's lock: walking a thousand
        // evacuations each time made that lock, not the configured latency,
        // what a benchmark of parallel evacuation measured. Nothing happens to
        // an evacuation before its next step is due unless its instance is
        // deleted, so a tick before the earliest due time has nothing to do
        // (deleting a server forgets that time; so does any evacuation added).
        if let Some((due, n)) = self.inflight_due {
            if now < due && n == self.inflight.len() {
                return;
            }
        }
        let inflight = std::mem::take(&mut self.inflight);
        let mut still = Vec::with_capacity(inflight.len());
        let mut next = f64::INFINITY;
        for i in inflight {
            // Not yet due and its instance still there: leave it as it is
            // (the full step below clones the plan).
            let waiting = self.migrations[i].plan.as_ref().and_then(EvacPlan::next_due).filter(|&d| now < d);
            if let Some(d) = waiting {
                if self.server_index.contains_key(&self.migrations[i].instance_uuid) {
                    next = next.min(d);
                    still.push(i);
                    continue;
                }
            }
            if self.advance_migration(i, now) {
                if let Some(d) = self.migrations[i].plan.as_ref().and_then(EvacPlan::next_due) {
                    next = next.min(d);
                }
                still.push(i);
            }
        }
        // Keep any added while advancing (none today) after the survivors.
        let added = !self.inflight.is_empty();
        still.append(&mut self.inflight);
        self.inflight_due = (!added).then_some((next, still.len()));
        self.inflight = still;
    }

    /// Advances one evacuation; returns whether it is still in flight.
    fn advance_migration(&mut self, i: usize, now: f64) -> bool {
        loop {
            let Some(plan) = self.migrations[i].plan.clone() else { return false };
            let inst = self.migrations[i].instance_uuid.clone();
            if self.server(&inst).is_none() {
                // Deleted meanwhile: Nova would error the migration.
                let m = &mut self.migrations[i];
                m.status = "error".into();
                m.updated = Some(now);
                return false;
            }
            // The conductor really schedules at sched_at; the choice made when
            // the API accepted the call is only a reservation. If that host
            // stopped qualifying meanwhile (disabled, forced down, stale),
            // schedule again.
            if plan.phase == 0 && now >= plan.sched_at && plan.outcome != Outcome::NoValidHost && !plan.forced {
                let qualifies = plan
                    .dest
                    .as_deref()
                    .and_then(|d| self.host(d))
                    .is_some_and(|h| !h.disabled && self.host_up(h, plan.sched_at));
                if !qualifies {
                    let flavor = self.server(&inst).map(|s| s.flavor_id.clone()).unwrap_or_default();
                    let src = self.migrations[i].source_compute.clone();
                    let new = self.schedule(plan.sched_at, &flavor, src.as_deref(), plan.requested_host.as_deref());
                    if let Some(p) = &mut self.migrations[i].plan {
                        if new.is_none() {
                            p.outcome = Outcome::NoValidHost;
                        }
                        p.dest = new;
                    }
                    continue;
                }
            }
            // Every step after scheduling runs on the destination's
            // nova-compute. If that process is dead (the scheduler happily
            // picks a host that died less than service_down_time ago, and
            // force=true skips it entirely) the RPC cast is lost: the
            // evacuation hangs in its current state for good, as in Nova.
            let due = match plan.phase {
                0 => now >= plan.sched_at && plan.outcome != Outcome::NoValidHost,
                1 => now >= plan.spawn_at,
                2 => now >= plan.done_at,
                _ => false,
            };
            // Judged at the step's due time, not at the (later) tick.
            let at = match plan.phase {
                0 => plan.sched_at,
                1 => plan.spawn_at,
                _ => plan.done_at,
            };
            let dest_dead = plan.dest.as_deref().is_some_and(|d| !self.compute_alive_by_name(d, at));
            if due && dest_dead {
                if let Some(p) = &mut self.migrations[i].plan {
                    p.outcome = Outcome::Stuck;
                }
                return false;
            }
            match plan.phase {
                0 if now >= plan.sched_at => {
                    if plan.outcome == Outcome::NoValidHost {
                        let flavor = self.server(&inst).map(|s| s.flavor_id.clone()).unwrap_or_default();
                        let requested = self.migrations[i].dest_compute.clone();
                        let no_host = self.no_valid_host_message(&flavor, requested.as_deref());
                        let m = &mut self.migrations[i];
                        m.status = "error".into();
                        m.updated = Some(plan.sched_at);
                        if let Some(p) = &mut m.plan {
                            p.phase = 3;
                        }
                        if let Some(s) = self.server_mut(&inst) {
                            s.action_event(&plan.request_id, ActionEvent {
                                event: "conductor_rebuild_server".into(),
                                start_time: plan.sched_at - 0.001,
                                finish_time: Some(plan.sched_at),
                                result: Some("Error".into()),
                                host: None,
                                details: Some(no_host.into()),
                            });
                            if plan.keep_vm_state {
                                s.task_state = None;
                                s.updated = plan.sched_at;
                                return false;
                            }
                            s.vm_state = "error".into();
                            s.task_state = None;
                            s.updated = plan.sched_at;
                            s.fault = Some(Fault {
                                code: 500,
                                message: no_host.into(),
                                created: plan.sched_at,
                            });
                        }
                        return false;
                    }
                    // The destination's rebuild claim (ResourceTracker
                    // _move_claim) records itself and goes pre-migrating.
                    let dest = plan.dest.clone();
                    let (node, ip) = match dest.as_deref().and_then(|d| self.host(d)) {
                        Some(h) => (Some(h.hypervisor_hostname.clone()), Some(h.ip.clone())),
                        None => (dest.clone(), None),
                    };
                    if let Some(s) = self.server_mut(&inst) {
                        s.action_event(&plan.request_id, ActionEvent {
                            event: "conductor_rebuild_server".into(),
                            start_time: plan.sched_at - 0.001,
                            finish_time: Some(plan.sched_at),
                            result: Some("Success".into()),
                            host: None,
                            details: None,
                        });
                    }
                    let m = &mut self.migrations[i];
                    m.status = "pre-migrating".into();
                    m.dest_compute = dest;
                    m.dest_node = node;
                    m.dest_host = ip;
                    m.updated = Some(plan.sched_at);
                    if let Some(p) = &mut m.plan {
                        p.phase = 1;
                    }
                }
                1 if now >= plan.spawn_at => {
                    if plan.outcome == Outcome::Stuck {
                        return false;
                    }
                    let m = &mut self.migrations[i];
                    if let Some(p) = &mut m.plan {
                        p.phase = 2;
                    }
                    if let Some(s) = self.server_mut(&inst) {
                        // Still on the source host: Nova moves the instance
                        // only in ResourceTracker.finish_evacuation, right
                        // before the migration turns `done`.
                        s.task_state = Some("rebuild_spawning".into());
                        s.updated = plan.spawn_at;
                    }
                }
                2 if now >= plan.done_at => {
                    let failure_message = plan
                        .failure
                        .clone()
                        .unwrap_or_else(|| "Build of instance failed during rebuild on the destination (simulated).".into());
                    let src = self.migrations[i].source_compute.clone();
                    let failed = plan.outcome == Outcome::RebuildFailed;
                    let m = &mut self.migrations[i];
                    m.status = if failed { "failed".into() } else { "done".into() };
                    m.updated = Some(plan.done_at);
                    if let Some(p) = &mut m.plan {
                        p.phase = 3;
                    }
                    let dest = plan.dest.clone();
                    let node = dest.as_deref().and_then(|d| self.host(d)).map(|h| h.hypervisor_hostname.clone());
                    if let Some(s) = self.server_mut(&inst) {
                        if !failed {
                            s.host = dest;
                            s.node = node;
                        }
                        s.action_event(&plan.request_id, ActionEvent {
                            event: "compute_rebuild_instance".into(),
                            start_time: plan.spawn_at,
                            finish_time: Some(plan.done_at),
                            result: Some(if failed { "Error".into() } else { "Success".into() }),
                            host: plan.dest.clone(),
                            details: failed.then(|| failure_message.clone()),
                        });
                        s.task_state = None;
                        s.updated = plan.done_at;
                        if failed {
                            s.vm_state = "error".into();
                            s.power_state = POWER_NOSTATE;
                            s.fault = Some(Fault {
                                code: 500,
                                message: failure_message.clone(),
                                created: plan.done_at,
                            });
                        } else if (plan.target_stopped && plan.prior_vm_state != "error") || plan.prior_vm_state == "stopped" {
                            // 2.95's target state does not apply to ERROR
                            // instances (`_do_rebuild_instance`): they come
                            // back ACTIVE.
                            s.vm_state = "stopped".into();
                            s.power_state = POWER_SHUTDOWN;
                        } else {
                            // active stays active; error comes back active.
                            s.vm_state = "active".into();
                            s.power_state = POWER_RUNNING;
                            s.launched_at = Some(plan.done_at);
                        }
                    }
                    if !failed {
                        if let Some(h) = src.as_deref().and_then(|s| self.hosts.iter_mut().find(|h| h.name == s)) {
                            h.stale_copies.push(inst.clone());
                        }
                    }
                    return false;
                }
                3 => return false,
                _ => return true,
            }
        }
    }

    /// A nova-compute (re)start on `host`: the service reports, and
    /// `ComputeManager._destroy_evacuated_instances` cleans up: evacuations
    /// from this host in `accepted`, `pre-migrating` or `done` whose instance
    /// still exists become `completed`, local copies go away. An evacuation
    /// still in flight is overwritten with `done` when its destination
    /// finishes, exactly as in Nova (the un-force check then blocks until
    /// the next restart).
    pub fn compute_started(&mut self, host: &str, now: f64) {
        let existing: std::collections::HashSet<String> = self.server_index.keys().cloned().collect();
        for m in self.migrations.iter_mut() {
            if m.migration_type == "evacuation"
                && matches!(m.status.as_str(), "accepted" | "pre-migrating" | "done")
                && m.source_compute.as_deref() == Some(host)
                && existing.contains(&m.instance_uuid)
            {
                m.status = "completed".into();
                m.updated = Some(now);
            }
        }
        if let Some(h) = self.host_mut(host) {
            h.running = true;
            h.last_seen = now;
            h.starts += 1;
            h.stale_copies.clear();
        }
    }

    /// Stops nova-compute on a host (it dies). `stale` backdates the last
    /// heartbeat so Nova sees the service down at once.
    pub fn compute_stopped(&mut self, host: &str, now: f64, stale: bool) -> bool {
        let down = self.cfg.service_down_time;
        let ri = self.cfg.report_interval;
        let last = self.host(host).map(|h| self.last_heartbeat(h, now));
        match self.host_mut(host) {
            Some(h) => {
                h.running = false;
                h.last_seen = if stale { now - down - ri - 1.0 } else { last.unwrap_or(now) };
                true
            }
            None => false,
        }
    }

    /// A heartbeat from an external nova-compute stand-in. Unknown hosts
    /// register like a new nova-compute; a heartbeat after the service was
    /// stopped or stale (or with `restart` true) counts as a restart.
    pub fn heartbeat(&mut self, host: &str, now: f64, restart: Option<bool>) -> anyhow::Result<bool> {
        if self.host(host).is_none() {
            let hc = HostConfig { name: host.into(), heartbeat: Some("external".into()), ..Default::default() };
            self.add_host(&hc, now)?;
            return Ok(true);
        }
        let down = self.cfg.service_down_time;
        let (was_running, last, external) = {
            let h = self.host(host).expect("checked above");
            (h.running, self.last_heartbeat(h, now), h.external)
        };
        let stale = now - last > down;
        let is_restart = restart.unwrap_or(!was_running || (external && stale));
        if let Some(h) = self.host_mut(host) {
            h.external = true;
        }
        if let Some(h) = self.host_mut(host) {
            let gap = now - h.last_seen;
            if !is_restart && gap > 0.0 && gap <= down {
                h.heartbeat_interval = Some(gap);
            }
        }
        if is_restart {
            self.compute_started(host, now);
        } else if let Some(h) = self.host_mut(host) {
            h.running = true;
            h.last_seen = now;
        }
        Ok(is_restart)
    }

    /// Matches one-shot evacuation faults against a server being evacuated.
    pub fn take_evacuation_fault(&mut self, server: &Server) -> Option<EvacuationFault> {
        let src = server.host.clone().unwrap_or_default();
        for f in self.faults.evacuations.iter_mut() {
            if f.fired >= f.times {
                continue;
            }
            let server_ok = f.server.as_deref().is_none_or(|s| s == "*" || s == server.id || s == server.name);
            let host_ok = f.host.as_deref().is_none_or(|h| h == "*" || h == src);
            if server_ok && host_ok {
                f.fired += 1;
                return Some(f.clone());
            }
        }
        None
    }

    pub fn jitter_ms(&mut self) -> u64 {
        let j = self.cfg.rebuild_jitter_ms;
        if j == 0 { 0 } else { self.rng.range(0, j) }
    }

    /// Bulk creation for large scenarios.
    pub fn add_servers_bulk(&mut self, spec: &BulkSpec, now: f64) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::with_capacity(spec.count);
        for i in 0..spec.count {
            let sc = ServerConfig {
                id: None,
                name: format!("{}-{}", spec.name_prefix.as_deref().unwrap_or("bulk"), i + spec.start_index.unwrap_or(0)),
                host: Some(spec.host.clone()),
                flavor: spec.flavor.clone().unwrap_or_else(|| "1".into()),
                image: spec.image.clone(),
                vm_state: spec.vm_state.clone().unwrap_or_else(|| "active".into()),
                task_state: None,
                metadata: spec.metadata.clone(),
                tags: spec.tags.clone(),
                locked: false,
                locked_reason: None,
                project_id: spec.project_id.clone(),
            };
            ids.push(self.place_server(&sc, now)?);
        }
        Ok(ids)
    }
}

/// `POST /sim/servers/bulk` and [`crate::SimHandle::add_servers`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkSpec {
    pub host: String,
    pub count: usize,
    #[serde(default)]
    pub name_prefix: Option<String>,
    #[serde(default)]
    pub start_index: Option<usize>,
    #[serde(default)]
    pub flavor: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub vm_state: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub project_id: Option<String>,
}
