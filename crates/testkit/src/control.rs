//! The unauthenticated control API under `/sim/`, used by the lab and the
//! benchmarks (and mirrored by [`crate::SimHandle`] for Rust tests).
//!
//! | call | effect |
//! |---|---|
//! | `GET /sim/health` | `{"ok": true}` |
//! | `GET /sim/state` | [`StateDump`]: hosts/services, servers, migrations, aggregates |
//! | `GET /sim/log[?since=SEQ][&service=nova][&method=POST][&path_contains=/action]` | `{"entries": [LogEntry...]}` |
//! | `DELETE /sim/log` | clear the request log |
//! | `GET /sim/faults`, `POST /sim/faults`, `DELETE /sim/faults` | read / replace / clear fault rules ([`crate::faults`]) |
//! | `POST /sim/hosts` | add a host ([`crate::scenario::HostConfig`]) |
//! | `POST /sim/hosts/{h}/heartbeat` | nova-compute stand-in reports (`{"restart": bool}` optional) |
//! | `POST /sim/hosts/{h}/stop` | nova-compute dies (`{"stale": true}`: heartbeat already too old) |
//! | `POST /sim/hosts/{h}/start` | nova-compute starts (done → completed) |
//! | `POST /sim/hosts/{h}/cell` | `{"down": true}`: the host's cell DB is unreachable (2.69 UNKNOWN records) |
//! | `POST /sim/scenario` | replace everything with a new scenario (log cleared) |
//! | `POST /sim/servers/bulk` | [`crate::world::BulkSpec`] → `{"ids": [...]}` |
//! | `POST /sim/clock/advance` | `{"seconds": N}`: move the simulated clock |
//! | `POST /sim/clock` | `{"frozen": true}`: stop the clock (only `advance` moves it); `false` restarts it |
//! | `GET /sim/config`, `POST /sim/config` | read / patch timings (rebuild_delay_ms, ...) |
//! | `POST /sim/tokens/revoke` | invalidate every issued token |

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::faults::FaultSet;
use crate::http::{Request, Response};
use crate::scenario::{HostConfig, Scenario};
use crate::util::fmt_nova;
use crate::world::{BulkSpec, World};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostState {
    pub name: String,
    pub service_id: u64,
    pub service_uuid: String,
    /// `up` / `down` as Nova reports it.
    pub state: String,
    /// `enabled` / `disabled`.
    pub status: String,
    pub forced_down: bool,
    pub disabled_reason: Option<String>,
    /// Is the simulated nova-compute process running?
    pub running: bool,
    /// `auto` or `external`.
    pub heartbeat: String,
    pub last_heartbeat: String,
    pub instances: usize,
    pub stale_copies: Vec<String>,
    pub starts: u64,
    pub cell_down: bool,
    pub zone: String,
    pub hypervisor_hostname: String,
    pub max_instances: Option<u32>,
    pub vcpus: Option<u32>,
    pub ram_mb: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerState {
    pub id: String,
    pub name: String,
    pub host: Option<String>,
    pub status: String,
    pub vm_state: String,
    pub task_state: Option<String>,
    pub power_state: u8,
    pub locked: bool,
    pub locked_reason: Option<String>,
    pub flavor: String,
    pub image: String,
    pub project_id: String,
    pub metadata: std::collections::BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub fault: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MigrationState {
    pub id: u64,
    pub uuid: String,
    pub instance_uuid: String,
    pub source_compute: Option<String>,
    pub dest_compute: Option<String>,
    pub status: String,
    pub migration_type: String,
    pub created_at: String,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StateDump {
    /// Simulated clock, seconds since the epoch.
    pub now: f64,
    pub hosts: Vec<HostState>,
    pub servers: Vec<ServerState>,
    pub migrations: Vec<MigrationState>,
    pub aggregates: Vec<Value>,
}

impl StateDump {
    pub fn host(&self, name: &str) -> Option<&HostState> {
        self.hosts.iter().find(|h| h.name == name)
    }
    pub fn server(&self, id_or_name: &str) -> Option<&ServerState> {
        self.servers.iter().find(|s| s.id == id_or_name || s.name == id_or_name)
    }
    pub fn servers_on(&self, host: &str) -> Vec<&ServerState> {
        self.servers.iter().filter(|s| s.host.as_deref() == Some(host)).collect()
    }
}

/// The state dump. Served by `GET /sim/state` through `serde_json::Value`,
/// so object keys come out sorted alphabetically: shell/grep consumers rely
/// on e.g. `"source_compute":"H","status":"done"` being adjacent.
pub fn dump(w: &World, now: f64) -> StateDump {
    let usage = w.usage();
    let hosts = w
        .hosts
        .iter()
        .map(|h| HostState {
            name: h.name.clone(),
            service_id: h.service_id,
            service_uuid: h.service_uuid.clone(),
            state: if w.host_up(h, now) { "up".into() } else { "down".into() },
            status: if h.disabled { "disabled".into() } else { "enabled".into() },
            forced_down: h.forced_down,
            disabled_reason: h.disabled_reason.clone(),
            running: w.compute_alive(h, now),
            heartbeat: if h.external { "external".into() } else { "auto".into() },
            last_heartbeat: fmt_nova(w.last_heartbeat(h, now)),
            instances: w.servers.values().filter(|s| s.host.as_deref() == Some(h.name.as_str())).count(),
            stale_copies: h.stale_copies.clone(),
            starts: h.starts,
            cell_down: h.cell_down,
            zone: h.zone.clone(),
            hypervisor_hostname: h.hypervisor_hostname.clone(),
            max_instances: h.max_instances,
            vcpus: h.vcpus,
            ram_mb: h.ram_mb,
        })
        .collect();
    let _ = usage;
    let servers = w
        .servers
        .values()
        .map(|s| ServerState {
            id: s.id.clone(),
            name: s.name.clone(),
            host: s.host.clone(),
            status: s.status().into(),
            vm_state: s.vm_state.clone(),
            task_state: s.task_state.clone(),
            power_state: s.power_state,
            locked: s.locked,
            locked_reason: s.locked_reason.clone(),
            flavor: s.flavor_id.clone(),
            image: s.image_id.clone(),
            project_id: s.project_id.clone(),
            metadata: s.metadata.clone(),
            tags: s.tags.clone(),
            fault: s.fault.as_ref().map(|f| f.message.clone()),
        })
        .collect();
    let migrations = w
        .migrations
        .iter()
        .map(|m| MigrationState {
            id: m.id,
            uuid: m.uuid.clone(),
            instance_uuid: m.instance_uuid.clone(),
            source_compute: m.source_compute.clone(),
            dest_compute: m.dest_compute.clone(),
            status: m.status.clone(),
            migration_type: m.migration_type.clone(),
            created_at: fmt_nova(m.created),
            updated_at: m.updated.map(fmt_nova),
        })
        .collect();
    let aggregates = w
        .aggregates
        .iter()
        .map(|a| json!({"id": a.id, "uuid": a.uuid, "name": a.name, "availability_zone": a.availability_zone, "hosts": a.hosts, "metadata": a.metadata}))
        .collect();
    StateDump { now, hosts, servers, migrations, aggregates }
}

/// Runtime-adjustable settings (`POST /sim/config`), all optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    pub rebuild_delay_ms: Option<u64>,
    pub rebuild_jitter_ms: Option<u64>,
    pub schedule_delay_ms: Option<u64>,
    pub boot_delay_ms: Option<u64>,
    pub rpc_timeout_ms: Option<u64>,
    pub service_down_time_secs: Option<f64>,
    pub report_interval_secs: Option<f64>,
    pub max_microversion: Option<String>,
    pub max_limit: Option<usize>,
    pub enable_instance_password: Option<bool>,
    pub token_lifetime_secs: Option<f64>,
}

pub fn apply_config(w: &mut World, p: &ConfigPatch) -> Result<(), String> {
    if let Some(v) = &p.max_microversion {
        let mv = crate::world::parse_version(v).filter(|mv| *mv >= (2, 1)).ok_or_else(|| format!("bad max_microversion {v:?}"))?;
        w.cfg.max_microversion = mv;
        w.scenario.max_microversion = v.clone();
    }
    if let Some(v) = p.rebuild_delay_ms {
        w.cfg.rebuild_delay_ms = v;
    }
    if let Some(v) = p.rebuild_jitter_ms {
        w.cfg.rebuild_jitter_ms = v;
    }
    if let Some(v) = p.schedule_delay_ms {
        w.cfg.schedule_delay_ms = v;
    }
    if let Some(v) = p.boot_delay_ms {
        w.cfg.boot_delay_ms = v;
    }
    if let Some(v) = p.rpc_timeout_ms {
        w.cfg.rpc_timeout_ms = v;
    }
    if let Some(v) = p.service_down_time_secs {
        w.cfg.service_down_time = v;
    }
    if let Some(v) = p.report_interval_secs {
        w.cfg.report_interval = v;
    }
    if let Some(v) = p.max_limit {
        w.cfg.max_limit = v.max(1);
    }
    if let Some(v) = p.enable_instance_password {
        w.cfg.enable_instance_password = v;
    }
    if let Some(v) = p.token_lifetime_secs {
        w.scenario.auth.token_lifetime_secs = v;
    }
    Ok(())
}

fn bad(msg: &str) -> Response {
    Response::json(400, &json!({"error": msg}))
}

fn json_body(req: &Request) -> Result<Value, Response> {
    if req.body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body).map_err(|e| bad(&format!("invalid JSON: {e}")))
}

pub fn handle(w: &mut World, req: &Request, now: f64) -> Response {
    let segs: Vec<&str> = req.path.trim_start_matches("/sim").trim_matches('/').split('/').collect();
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["health"]) => Response::json(200, &json!({"ok": true})),
        ("GET", ["state"]) => Response::json(200, &serde_json::to_value(dump(w, now)).unwrap_or(Value::Null)),
        ("GET", ["log"]) => {
            let since: u64 = req.query_get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
            let service = req.query_get("service");
            let contains = req.query_get("path_contains");
            let method = req.query_get("method");
            let entries: Vec<&crate::world::LogEntry> = w
                .log
                .iter()
                .filter(|e| e.seq > since && service.is_none_or(|s| e.service == s))
                .filter(|e| contains.is_none_or(|c| e.path.contains(c)) && method.is_none_or(|m| e.method.eq_ignore_ascii_case(m)))
                .collect();
            Response::json(200, &json!({"entries": entries}))
        }
        ("DELETE", ["log"]) => {
            w.log_first_seq = w.next_seq;
            w.log.clear();
            Response::new(204)
        }
        ("GET", ["faults"]) => Response::json(200, &serde_json::to_value(&w.faults).unwrap_or(Value::Null)),
        ("POST" | "PUT", ["faults"]) => match FaultSet::from_json(body) {
            Ok(fs) => {
                set_faults(w, fs);
                Response::json(200, &serde_json::to_value(&w.faults).unwrap_or(Value::Null))
            }
            Err(e) => bad(&e),
        },
        ("DELETE", ["faults"]) => {
            w.faults = FaultSet::default();
            Response::new(204)
        }
        ("POST", ["hosts"]) => match serde_json::from_value::<HostConfig>(body) {
            Ok(hc) => match w.add_host(&hc, now) {
                Ok(()) => Response::json(201, &json!({"host": hc.name})),
                Err(e) => bad(&e.to_string()),
            },
            Err(e) => bad(&e.to_string()),
        },
        ("POST", ["hosts", host, "heartbeat"]) => {
            let restart = body.get("restart").and_then(Value::as_bool);
            let known = w.host(host).is_some();
            match w.heartbeat(host, now, restart) {
                Ok(r) => Response::json(200, &json!({"host": host, "registered": !known, "restart": r})),
                Err(e) => bad(&e.to_string()),
            }
        }
        ("POST", ["hosts", host, "stop"]) => {
            let stale = body.get("stale").and_then(Value::as_bool).unwrap_or(false);
            if w.compute_stopped(host, now, stale) {
                Response::json(200, &json!({"host": host, "running": false}))
            } else {
                Response::json(404, &json!({"error": format!("unknown host {host}")}))
            }
        }
        ("POST", ["hosts", host, "cell"]) => match (w.host_mut(host), body.get("down").and_then(Value::as_bool)) {
            (Some(h), Some(down)) => {
                h.cell_down = down;
                Response::json(200, &json!({"host": host, "cell_down": down}))
            }
            (None, _) => Response::json(404, &json!({"error": format!("unknown host {host}")})),
            (_, None) => bad("expected {\"down\": true|false}"),
        },
        ("POST", ["hosts", host, "start"]) => {
            if w.host(host).is_none() {
                return Response::json(404, &json!({"error": format!("unknown host {host}")}));
            }
            w.compute_started(host, now);
            Response::json(200, &json!({"host": host, "running": true}))
        }
        ("POST", ["scenario"]) => match serde_json::from_value::<Scenario>(body) {
            Ok(s) => match World::new(s) {
                Ok(nw) => {
                    let next_seq = w.next_seq;
                    *w = nw;
                    w.next_seq = next_seq;
                    w.log_first_seq = next_seq;
                    Response::json(200, &json!({"ok": true}))
                }
                Err(e) => bad(&e.to_string()),
            },
            Err(e) => bad(&e.to_string()),
        },
        ("POST", ["servers", "bulk"]) => match serde_json::from_value::<BulkSpec>(body) {
            Ok(spec) => match w.add_servers_bulk(&spec, now) {
                Ok(ids) => Response::json(201, &json!({"ids": ids})),
                Err(e) => bad(&e.to_string()),
            },
            Err(e) => bad(&e.to_string()),
        },
        ("POST", ["clock", "advance"]) => match body.get("seconds").and_then(Value::as_f64) {
            Some(s) if s.is_finite() && s >= 0.0 => {
                w.advance_clock(s);
                Response::json(200, &json!({"now": w.now()}))
            }
            _ => bad("expected {\"seconds\": N} with N >= 0"),
        },
        ("POST", ["clock"]) => match body.get("frozen").and_then(Value::as_bool) {
            Some(f) => {
                w.freeze_clock(f);
                Response::json(200, &json!({"now": w.now(), "frozen": f}))
            }
            None => bad("expected {\"frozen\": true|false}"),
        },
        ("GET", ["config"]) => Response::json(200, &serde_json::to_value(&w.cfg).unwrap_or(Value::Null)),
        ("POST", ["config"]) => match serde_json::from_value::<ConfigPatch>(body) {
            Ok(p) => match apply_config(w, &p) {
                Ok(()) => Response::json(200, &serde_json::to_value(&w.cfg).unwrap_or(Value::Null)),
                Err(e) => bad(&e),
            },
            Err(e) => bad(&e.to_string()),
        },
        ("POST", ["tokens", "revoke"]) => {
            w.tokens.values_mut().for_each(|t| t.revoked = true);
            Response::new(204)
        }
        _ => Response::json(404, &json!({"error": "unknown control API call"})),
    }
}

/// Installs a fault set; `token.revoke_all` is applied once, right away.
pub fn set_faults(w: &mut World, mut fs: FaultSet) {
    if fs.token.revoke_all {
        w.tokens.values_mut().for_each(|t| t.revoked = true);
        fs.token.revoke_all = false;
    }
    w.faults = fs;
}
