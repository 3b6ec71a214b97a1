//! Nova compute API v2.1 (microversions 2.1 to the configured maximum,
//! 2.104 by default as in Nova 34).
//!
//! Followed real Nova (openstack/nova master, 2026) for:
//! * microversion negotiation (`nova/api/openstack/wsgi.py`,
//!   `api_version_request.py`): `OpenStack-API-Version: compute X.Y` wins
//!   over `X-OpenStack-Nova-API-Version`; no header = 2.1; `latest` = max;
//!   malformed = 400; out of range = 406 (`computeFault` body, as
//!   `Fault._fault_names` has no 406 entry); response headers
//!   `OpenStack-API-Version`, `X-OpenStack-Nova-API-Version`, `Vary`;
//! * fault bodies `{"badRequest": {"code": 400, "message": ...}}` etc.;
//! * JSON-schema error texts `Invalid input for field/attribute <f>. Value:
//!   <python repr>. <message>` (`nova/api/validation/validators.py`);
//! * `os-services` (`services.py`): 2.11 host+binary actions, 2.53 UUID
//!   `PUT /os-services/{id}` (a non-UUID such as `force-down` is `400
//!   Invalid uuid`, not 404), the `done`-evacuation check when un-forcing;
//! * evacuate (`evacuate.py`, `compute/api.py`): schema per microversion,
//!   check order (target 404, same host 400, vm_state 409 — task_state is
//!   not checked, service in use 400),
//!   adminPass before 2.14, target state stopped from 2.95;
//! * `os-migrations` (`migrations.py`): fields per microversion, paging
//!   from 2.59, `host` matches source or destination.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::Digest;

use crate::http::{Request, Response};
use crate::keystone;
use crate::util::{fmt_nova, fmt_z, is_uuid_like, parse_iso, percent_encode};
use crate::world::{ApiError, ApiResult, EvacPlan, Migration, Outcome, POWER_NOSTATE, POWER_RUNNING, POWER_SHUTDOWN, Server, World, parse_version};

type Mv = (u32, u32);

/// Who is calling and how.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub mv: Mv,
    pub project_id: String,
    pub user_id: String,
    pub is_admin: bool,
    pub origin: String,
    /// `/compute`, `/public-compute`, ... (without `/v2.1`).
    pub prefix: String,
    pub request_id: String,
}

impl Ctx {
    fn ge(&self, v: Mv) -> bool {
        self.mv >= v
    }
    fn base(&self) -> String {
        format!("{}{}/v2.1", self.origin, self.prefix)
    }
    fn bookmark(&self) -> String {
        format!("{}{}", self.origin, self.prefix)
    }
}

pub fn fault_name(status: u16) -> &'static str {
    match status {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

pub fn fault(status: u16, message: &str) -> Response {
    Response::json(status, &json!({fault_name(status): {"code": status, "message": message}}))
}

fn err(e: ApiError) -> Response {
    fault(e.status, &e.message)
}

/// Python `repr` of a JSON value, as Nova's validation messages show it.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter().map(|(k, v)| format!("'{k}': {}", py_repr(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn schema_err(field: Option<&str>, value: &Value, message: &str) -> ApiError {
    match field {
        Some(f) => ApiError::bad(format!("Invalid input for field/attribute {f}. Value: {}. {message}", py_repr(value))),
        None => ApiError::bad(message),
    }
}

const BOOL_ENUM: &str = "[True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no']";

/// `parameter_types.boolean` plus `strutils.bool_from_string`.
fn schema_bool(field: &str, v: &Value) -> ApiResult<bool> {
    let b = match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "True" | "TRUE" | "true" | "1" | "ON" | "On" | "on" | "YES" | "Yes" | "yes" => Some(true),
            "False" | "FALSE" | "false" | "0" | "OFF" | "Off" | "off" | "NO" | "No" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    };
    b.ok_or_else(|| schema_err(Some(field), v, &format!("{} is not one of {BOOL_ENUM}", py_repr(v))))
}

fn schema_string(field: &str, v: &Value, min: usize, max: usize) -> ApiResult<String> {
    let Value::String(s) = v else {
        return Err(schema_err(Some(field), v, &format!("{} is not of type 'string'", py_repr(v))));
    };
    if s.chars().count() < min {
        return Err(schema_err(Some(field), v, &format!("{} is too short", py_repr(v))));
    }
    if s.chars().count() > max {
        return Err(schema_err(Some(field), v, &format!("{} is too long", py_repr(v))));
    }
    Ok(s.clone())
}

fn schema_object<'a>(field: Option<&str>, v: &'a Value) -> ApiResult<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| schema_err(field, v, &format!("{} is not of type 'object'", py_repr(v))))
}

fn schema_allowed(field: Option<&str>, v: &Value, obj: &Map<String, Value>, allowed: &[&str]) -> ApiResult<()> {
    let extra: Vec<String> = obj.keys().filter(|k| !allowed.contains(&k.as_str())).map(|k| format!("'{k}'")).collect();
    if extra.is_empty() {
        return Ok(());
    }
    let verb = if extra.len() == 1 { "was" } else { "were" };
    Err(schema_err(field, v, &format!("Additional properties are not allowed ({} {verb} unexpected)", extra.join(", "))))
}

fn schema_required(field: Option<&str>, v: &Value, obj: &Map<String, Value>, required: &[&str]) -> ApiResult<()> {
    for r in required {
        if !obj.contains_key(*r) {
            return Err(schema_err(field, v, &format!("'{r}' is a required property")));
        }
    }
    Ok(())
}

/// Query schemas with `additionalProperties: False` (os-services from 2.75,
/// os-migrations from 2.59): unknown parameters are a 400.
fn check_query(req: &Request, allowed: &[&str]) -> ApiResult<()> {
    let mut extra: Vec<String> = req
        .query
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !allowed.contains(k))
        .map(|k| format!("'{k}'"))
        .collect();
    extra.dedup();
    if extra.is_empty() {
        return Ok(());
    }
    let verb = if extra.len() == 1 { "was" } else { "were" };
    Err(ApiError::bad(format!("Additional properties are not allowed ({} {verb} unexpected)", extra.join(", "))))
}

fn parse_body(req: &Request) -> ApiResult<Value> {
    if req.body.is_empty() {
        return Err(ApiError::bad("The request body is empty or malformed."));
    }
    serde_json::from_slice(&req.body).map_err(|_| ApiError::bad("Malformed request body"))
}

/// Parses the requested microversion. `Err` is the response to send.
pub fn negotiate(req: &Request, max: Mv) -> Result<(Mv, Option<String>), Response> {
    let mut requested: Option<String> = None;
    if let Some(h) = req.header("openstack-api-version") {
        for part in h.split(',') {
            let mut it = part.split_whitespace();
            if it.next().is_some_and(|s| s.eq_ignore_ascii_case("compute")) {
                requested = Some(it.next().unwrap_or("").to_string());
            }
        }
    }
    if requested.is_none() {
        requested = req.header("x-openstack-nova-api-version").map(|s| s.trim().to_string());
    }
    let Some(r) = requested.clone() else { return Ok(((2, 1), None)) };
    if r.eq_ignore_ascii_case("latest") {
        return Ok((max, requested));
    }
    let Some(v) = parse_version(&r) else {
        return Err(fault(400, &format!("API Version String {r} is of invalid format. Must be of format MajorNum.MinorNum.")));
    };
    if v < (2, 1) || v > max {
        return Err(fault(
            406,
            &format!("Version {}.{} is not supported by the API. Minimum is 2.1 and maximum is {}.{}.", v.0, v.1, max.0, max.1),
        ));
    }
    Ok((v, requested))
}

fn version_doc(w: &World, base: &str) -> Value {
    let (a, b) = w.cfg.max_microversion;
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": format!("{a}.{b}"),
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base}/v2.1/")}, {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]
    })
}

/// Entry point for everything under a compute endpoint prefix.
pub fn handle(w: &mut World, req: &Request, now: f64, prefix: &str) -> Response {
    let origin = req.origin();
    let rest = &req.path[prefix.len()..];
    let base = format!("{origin}{prefix}");
    // Version documents are public, as in Nova's paste pipeline.
    match rest {
        "" | "/" if req.method == "GET" => {
            let v21 = version_doc(w, &base);
            return Response::json(
                200,
                &json!({"versions": [
                    {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z",
                     "links": [{"rel": "self", "href": format!("{base}/v2/")}]},
                    {"id": v21["id"], "status": v21["status"], "version": v21["version"], "min_version": v21["min_version"],
                     "updated": v21["updated"], "links": [{"rel": "self", "href": format!("{base}/v2.1/")}]}
                ]}),
            );
        }
        // api-paste.ini: `/v2.1` (exact) is the public VersionsV2 app;
        // `/v2.1/` and below is the authenticated API router.
        "/v2.1" if req.method == "GET" => return Response::json(200, &json!({"version": version_doc(w, &base)})),
        _ => {}
    }
    let Some(api_path) = rest.strip_prefix("/v2.1/") else {
        return fault(404, "The resource could not be found.");
    };
    // Authentication (keystonemiddleware runs before Nova proper).
    let (project_id, user_id, is_admin) = match req.header("x-auth-token") {
        None => return keystone::unauthorized(&origin),
        Some(t) if w.scenario.auth.mode == "noauth" => {
            let (u, p) = t.split_once(':').unwrap_or((t, t));
            (p.to_string(), u.to_string(), u == "admin")
        }
        Some(t) => match keystone::check_token(w, t, now) {
            Some(tok) => (tok.project_id.unwrap_or_default(), tok.user_id, tok.is_admin),
            None => return keystone::unauthorized(&origin),
        },
    };
    let (mv, _) = match negotiate(req, w.cfg.max_microversion) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let request_id = req.header(REQUEST_ID_HEADER).unwrap_or("req-unknown").to_string();
    let ctx = Ctx { mv, project_id, user_id, is_admin, origin, prefix: prefix.to_string(), request_id };
    let segs: Vec<&str> = api_path.trim_end_matches('/').split('/').collect();
    let resp = match segs.as_slice() {
        // GET /v2.1/ : the router's own version `show`.
        [""] if req.method == "GET" => Ok(Response::json(200, &json!({"version": version_doc(w, &format!("{}{}", ctx.origin, ctx.prefix))}))),
        _ => route(w, req, &ctx, &segs, now),
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) => err(e),
    };
    let v = format!("{}.{}", mv.0, mv.1);
    resp.with_header("OpenStack-API-Version", &format!("compute {v}"))
        .with_header("X-OpenStack-Nova-API-Version", &v)
        .with_header("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
}

fn require_admin(ctx: &Ctx, policy: &str) -> ApiResult<()> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::new(403, format!("Policy doesn't allow {policy} to be performed.")))
    }
}

fn ok(v: Value) -> ApiResult<Response> {
    Ok(Response::json(200, &v))
}

fn route(w: &mut World, req: &Request, ctx: &Ctx, segs: &[&str], now: f64) -> ApiResult<Response> {
    let m = req.method.as_str();
    match (m, segs) {
        ("GET", ["os-services"]) => services_list(w, req, ctx, now),
        ("PUT", ["os-services", id]) => services_update(w, req, ctx, id, now),
        ("DELETE", ["os-services", id]) => services_delete(w, ctx, id),
        ("GET", ["os-hypervisors"]) => hypervisors(w, req, ctx, now, false),
        ("GET", ["os-hypervisors", "detail"]) => hypervisors(w, req, ctx, now, true),
        ("GET", ["os-hypervisors", pattern, "search"]) if !ctx.ge((2, 53)) => hypervisor_search(w, ctx, pattern, now, false),
        ("GET", ["os-hypervisors", pattern, "servers"]) if !ctx.ge((2, 53)) => hypervisor_search(w, ctx, pattern, now, true),
        ("GET", ["os-hypervisors", id]) => hypervisor_show(w, ctx, id, now),
        ("GET", ["servers"]) => servers_list(w, req, ctx, now, false),
        ("GET", ["servers", "detail"]) => servers_list(w, req, ctx, now, true),
        ("POST", ["servers"]) => server_create(w, req, ctx, now),
        ("GET", ["servers", id]) => {
            let s = visible_server(w, ctx, id)?;
            ok(json!({"server": server_view(&ViewEnv::new(w, now), ctx, &s, true)}))
        }
        ("DELETE", ["servers", id]) => {
            visible_server(w, ctx, id)?;
            w.remove_server(id);
            Ok(Response::new(204))
        }
        ("POST", ["servers", id, "action"]) => server_action(w, req, ctx, id, now),
        ("GET", ["servers", id, "os-instance-actions"]) => {
            let s = visible_server(w, ctx, id)?;
            let list: Vec<Value> = s.actions.iter().rev().map(|a| action_view(&s, a, ctx, false)).collect();
            ok(json!({"instanceActions": list}))
        }
        ("GET", ["servers", id, "os-instance-actions", req_id]) => {
            let s = visible_server(w, ctx, id)?;
            match s.actions.iter().find(|a| a.request_id == *req_id) {
                Some(a) => ok(json!({"instanceAction": action_view(&s, a, ctx, true)})),
                None => Err(ApiError::not_found(format!("Action {req_id} could not be found."))),
            }
        }
        ("GET", ["servers", id, "migrations"]) => {
            visible_server(w, ctx, id)?;
            ok(json!({"migrations": []}))
        }
        (_, ["servers", id, "metadata", rest @ ..]) => server_metadata(w, req, ctx, id, rest, now),
        (_, ["servers", id, "tags", rest @ ..]) => server_tags(w, req, ctx, id, rest, now),
        ("GET", ["flavors"]) => flavors_list(w, req, ctx, false),
        ("GET", ["flavors", "detail"]) => flavors_list(w, req, ctx, true),
        ("GET", ["flavors", id]) => {
            let f = w.flavor(id).ok_or_else(|| ApiError::not_found(format!("Flavor {id} could not be found.")))?;
            ok(json!({"flavor": flavor_view(f, ctx, true)}))
        }
        ("GET", ["flavors", id, "os-extra_specs"]) => {
            let f = w.flavor(id).ok_or_else(|| ApiError::not_found(format!("Flavor {id} could not be found.")))?;
            ok(json!({"extra_specs": f.extra_specs}))
        }
        ("GET", ["flavors", id, "os-extra_specs", key]) => {
            let f = w.flavor(id).ok_or_else(|| ApiError::not_found(format!("Flavor {id} could not be found.")))?;
            match f.extra_specs.get(*key) {
                Some(v) => ok(json!({*key: v})),
                None => Err(ApiError::not_found(format!("Flavor {id} has no extra specs with key {key}."))),
            }
        }
        ("GET", ["os-aggregates"]) => {
            require_admin(ctx, "os_compute_api:os-aggregates:index")?;
            ok(json!({"aggregates": w.aggregates.iter().map(|a| aggregate_view(a, ctx)).collect::<Vec<_>>()}))
        }
        ("POST", ["os-aggregates"]) => aggregate_create(w, req, ctx, now),
        ("GET", ["os-aggregates", id]) => {
            require_admin(ctx, "os_compute_api:os-aggregates:show")?;
            let a = find_aggregate(w, id)?;
            ok(json!({"aggregate": aggregate_view(&w.aggregates[a], ctx)}))
        }
        ("DELETE", ["os-aggregates", id]) => {
            require_admin(ctx, "os_compute_api:os-aggregates:delete")?;
            let a = find_aggregate(w, id)?;
            if !w.aggregates[a].hosts.is_empty() {
                return Err(ApiError::bad(format!("Cannot remove aggregate {id}: it still has hosts.")));
            }
            w.aggregates.remove(a);
            Ok(Response::new(200))
        }
        ("POST", ["os-aggregates", id, "action"]) => aggregate_action(w, req, ctx, id, now),
        ("GET", ["os-migrations"]) => migrations_list(w, req, ctx),
        ("GET", ["os-availability-zone"] | ["os-availability-zone", "detail"]) => {
            let mut zones: Vec<String> = w.hosts.iter().map(|h| h.zone.clone()).collect();
            zones.sort();
            zones.dedup();
            ok(json!({"availabilityZoneInfo": zones.iter().map(|z| json!({"zoneName": z, "zoneState": {"available": true}, "hosts": null})).collect::<Vec<_>>()}))
        }
        ("GET", ["limits"]) => ok(json!({"limits": {"absolute": {"maxTotalInstances": 10000, "maxTotalCores": 100000, "maxTotalRAMSize": 51200000, "totalInstancesUsed": 0, "totalCoresUsed": 0, "totalRAMUsed": 0}, "rate": []}})),
        (_, [first, ..]) if ["os-services", "os-hypervisors", "servers", "flavors", "os-aggregates", "os-migrations"].contains(first) => {
            // Known collection, wrong method.
            if segs.len() <= 2 && m != "GET" {
                Err(ApiError::new(405, "The method specified is not allowed for this resource."))
            } else {
                Err(ApiError::not_found("The resource could not be found."))
            }
        }
        _ => Err(ApiError::not_found("The resource could not be found.")),
    }
}

// ---------------------------------------------------------------- services

fn service_detail(w: &World, ctx: &Ctx, idx: ServiceRef, now: f64) -> Value {
    let (binary, host, id, uuid, zone, disabled, reason, forced, state, updated) = match idx {
        ServiceRef::Compute(i) => {
            let h = &w.hosts[i];
            let up = w.host_up(h, now);
            (
                "nova-compute".to_string(),
                h.name.clone(),
                h.service_id,
                h.service_uuid.clone(),
                h.zone.clone(),
                h.disabled,
                h.disabled_reason.clone(),
                h.forced_down,
                up,
                w.last_heartbeat(h, now),
            )
        }
        ServiceRef::Other(i) => {
            let s = &w.other_services[i];
            let ri = w.cfg.report_interval.max(0.001);
            (s.binary.clone(), s.host.clone(), s.id, s.uuid.clone(), s.zone.clone(), false, None, false, true, (now / ri).floor() * ri)
        }
    };
    let mut v = json!({
        "binary": binary,
        "host": host,
        "id": if ctx.ge((2, 53)) { json!(uuid) } else { json!(id) },
        "zone": zone,
        "status": if disabled { "disabled" } else { "enabled" },
        "state": if state { "up" } else { "down" },
        "updated_at": fmt_nova(updated),
        "disabled_reason": reason,
    });
    if ctx.ge((2, 11)) {
        v["forced_down"] = json!(forced);
    }
    v
}

#[derive(Clone, Copy)]
enum ServiceRef {
    Compute(usize),
    Other(usize),
}

fn all_services(w: &World) -> Vec<(u64, ServiceRef)> {
    let mut v: Vec<(u64, ServiceRef)> = w
        .other_services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id, ServiceRef::Other(i)))
        .chain(w.hosts.iter().enumerate().map(|(i, h)| (h.service_id, ServiceRef::Compute(i))))
        .collect();
    v.sort_by_key(|(id, _)| *id);
    v
}

fn service_ident(w: &World, r: ServiceRef) -> (String, String) {
    match r {
        ServiceRef::Compute(i) => ("nova-compute".into(), w.hosts[i].name.clone()),
        ServiceRef::Other(i) => (w.other_services[i].binary.clone(), w.other_services[i].host.clone()),
    }
}

fn services_list(w: &mut World, req: &Request, ctx: &Ctx, now: f64) -> ApiResult<Response> {
    if ctx.ge((2, 75)) {
        check_query(req, &["host", "binary"])?;
    }
    require_admin(ctx, "os_compute_api:os-services:list")?;
    let host = req.query_get("host").filter(|s| !s.is_empty());
    let binary = req.query_get("binary").filter(|s| !s.is_empty());
    let list: Vec<Value> = all_services(w)
        .into_iter()
        .filter(|(_, r)| {
            let (b, h) = service_ident(w, *r);
            host.is_none_or(|x| x == h) && binary.is_none_or(|x| x == b)
        })
        .filter_map(|(_, r)| match r {
            // Services in a down cell: minimal record from 2.69, else skipped.
            ServiceRef::Compute(i) if w.hosts[i].cell_down => ctx
                .ge((2, 69))
                .then(|| json!({"binary": "nova-compute", "host": w.hosts[i].name, "status": "UNKNOWN"})),
            _ => Some(service_detail(w, ctx, r, now)),
        })
        .collect();
    ok(json!({"services": list}))
}

/// Nova refuses to un-force a host while `done` evacuations from it remain.
fn check_for_evacuations(w: &World, host: &str) -> ApiResult<()> {
    let pending = w
        .migrations
        .iter()
        .any(|m| m.migration_type == "evacuation" && m.status == "done" && m.source_compute.as_deref() == Some(host));
    if pending {
        return Err(ApiError::bad(format!(
            "Unable to force up host {host} as `done` evacuation migration records remain associated with the host. \
             Ensure the compute service has been restarted, allowing these records to move to `completed` before retrying this request."
        )));
    }
    Ok(())
}

fn services_update(w: &mut World, req: &Request, ctx: &Ctx, id: &str, now: f64) -> ApiResult<Response> {
    let body = parse_body(req)?;
    if ctx.ge((2, 53)) {
        return services_update_v253(w, ctx, id, &body, now);
    }
    // Schema: update (2.1-2.10) / update_v211 (2.11-2.52).
    let obj = schema_object(None, &body)?;
    let mut allowed = vec!["host", "binary", "disabled_reason"];
    if ctx.ge((2, 11)) {
        allowed.push("forced_down");
    }
    schema_required(None, &body, obj, &["host", "binary"])?;
    schema_allowed(None, &body, obj, &allowed)?;
    let host = schema_string("host", &obj["host"], 1, 255)?;
    let binary = schema_string("binary", &obj["binary"], 1, 255)?;
    let reason = match obj.get("disabled_reason") {
        Some(v) => Some(schema_string("disabled_reason", v, 1, 255)?),
        None => None,
    };
    let forced = match obj.get("forced_down") {
        Some(v) => Some(schema_bool("forced_down", v)?),
        None => None,
    };
    require_admin(ctx, "os_compute_api:os-services:update")?;
    let action = match id {
        "enable" | "disable" | "disable-log-reason" => id,
        "force-down" if ctx.ge((2, 11)) => id,
        _ => return Err(ApiError::not_found("Unknown action")),
    };
    if action == "disable-log-reason" && reason.is_none() {
        return Err(ApiError::bad("Missing disabled reason field"));
    }
    if action == "force-down" {
        let Some(f) = forced else { return Err(ApiError::bad("Missing forced_down field")) };
        if binary == "nova-compute" && !f {
            check_for_evacuations(w, &host)?;
        }
    }
    if binary != "nova-compute" {
        return Err(ApiError::bad(format!(
            "Updating a {binary} service is not supported. Only nova-compute services can be updated."
        )));
    }
    if w.host(&host).is_none() {
        return Err(ApiError::not_found(format!("Host '{host}' is not mapped to any cell")));
    }
    let delay = if action == "force-down" { 0 } else { status_rpc_delay(w, &host, now) };
    let Some(h) = w.host_mut(&host) else {
        return Err(ApiError::not_found(format!("Host '{host}' is not mapped to any cell")));
    };
    let resp = match action {
        "enable" => {
            h.disabled = false;
            h.disabled_reason = None;
            json!({"service": {"host": host, "binary": binary, "status": "enabled"}})
        }
        "disable" => {
            h.disabled = true;
            h.disabled_reason = None;
            json!({"service": {"host": host, "binary": binary, "status": "disabled"}})
        }
        "disable-log-reason" => {
            h.disabled = true;
            h.disabled_reason = reason.clone();
            json!({"service": {"host": host, "binary": binary, "status": "disabled", "disabled_reason": reason}})
        }
        _ => {
            let f = forced.unwrap_or(false);
            h.forced_down = f;
            json!({"service": {"host": host, "binary": binary, "forced_down": f}})
        }
    };
    ok(resp).map(|r| with_delay(r, delay))
}

/// Enabling/disabling a service Nova believes is up makes a synchronous RPC
/// to its nova-compute (`HostAPI._update_compute_provider_status`); if that
/// process is dead the call waits for the RPC timeout, then succeeds anyway.
fn status_rpc_delay(w: &World, host: &str, now: f64) -> u64 {
    match w.host(host) {
        Some(h) if w.host_up(h, now) && !w.compute_alive(h, now) => w.cfg.rpc_timeout_ms,
        _ => 0,
    }
}

/// Internal request header carrying the request id from the dispatcher.
pub const REQUEST_ID_HEADER: &str = "x-sim-request-id";

/// Internal header the dispatcher turns into a sleep outside the lock.
pub const DELAY_HEADER: &str = "X-Sim-Delay-Ms";

fn with_delay(r: Response, ms: u64) -> Response {
    if ms == 0 { r } else { r.with_header(DELAY_HEADER, &ms.to_string()) }
}

fn services_update_v253(w: &mut World, ctx: &Ctx, id: &str, body: &Value, now: f64) -> ApiResult<Response> {
    let obj = schema_object(None, body)?;
    schema_allowed(None, body, obj, &["status", "disabled_reason", "forced_down"])?;
    let status = match obj.get("status") {
        Some(v @ Value::String(s)) if s == "enabled" || s == "disabled" => Some(s.clone()).filter(|_| v.is_string()),
        Some(v) => return Err(schema_err(Some("status"), v, &format!("{} is not one of ['enabled', 'disabled']", py_repr(v)))),
        None => None,
    };
    let reason = match obj.get("disabled_reason") {
        Some(v) => Some(schema_string("disabled_reason", v, 1, 255)?),
        None => None,
    };
    let forced = match obj.get("forced_down") {
        Some(v) => Some(schema_bool("forced_down", v)?),
        None => None,
    };
    if !is_uuid_like(id) {
        return Err(ApiError::bad(format!("Invalid uuid {id}")));
    }
    require_admin(ctx, "os_compute_api:os-services:update")?;
    let found = all_services(w).into_iter().find(|(_, r)| match r {
        ServiceRef::Compute(i) => w.hosts[*i].service_uuid == id,
        ServiceRef::Other(i) => w.other_services[*i].uuid == id,
    });
    let Some((_, sref)) = found else {
        return Err(ApiError::not_found(format!("Service {id} could not be found.")));
    };
    let ServiceRef::Compute(i) = sref else {
        let (binary, _) = service_ident(w, sref);
        return Err(ApiError::bad(format!("Updating a {binary} service is not supported. Only nova-compute services can be updated.")));
    };
    if status.as_deref() == Some("enabled") && reason.is_some() {
        return Err(ApiError::bad("Specifying 'disabled_reason' with status 'enabled' is invalid."));
    }
    if forced == Some(false) {
        let host = w.hosts[i].name.clone();
        check_for_evacuations(w, &host)?;
    }
    if status.is_none() && forced.is_none() {
        return Err(ApiError::bad("No updates were requested. Fields 'status' or 'forced_down' should be specified."));
    }
    // The RPC happens after forced_down is applied (service.forced_down is
    // set on the object before HostAPI.service_update checks is_up).
    let delay = if status.is_some() && forced != Some(true) {
        let name = w.hosts[i].name.clone();
        status_rpc_delay(w, &name, now)
    } else {
        0
    };
    let h = &mut w.hosts[i];
    match status.as_deref() {
        Some("enabled") => {
            h.disabled = false;
            h.disabled_reason = None;
        }
        Some(_) => {
            h.disabled = true;
            h.disabled_reason = reason;
        }
        None => {}
    }
    if let Some(f) = forced {
        h.forced_down = f;
    }
    ok(json!({"service": service_detail(w, ctx, ServiceRef::Compute(i), now)})).map(|r| with_delay(r, delay))
}

fn services_delete(w: &mut World, ctx: &Ctx, id: &str) -> ApiResult<Response> {
    require_admin(ctx, "os_compute_api:os-services:delete")?;
    let idx = if ctx.ge((2, 53)) {
        if !is_uuid_like(id) {
            return Err(ApiError::bad(format!("Invalid uuid {id}")));
        }
        w.hosts.iter().position(|h| h.service_uuid == id)
    } else {
        w.hosts.iter().position(|h| h.service_id.to_string() == id)
    };
    let Some(i) = idx else { return Err(ApiError::not_found(format!("Service {id} could not be found."))) };
    let name = w.hosts[i].name.clone();
    if w.servers.values().any(|s| s.host.as_deref() == Some(name.as_str())) {
        return Err(ApiError::conflict("Unable to delete compute service that is hosting instances. Migrate or delete the instances first."));
    }
    w.hosts.remove(i);
    Ok(Response::new(204))
}

// ------------------------------------------------------------- hypervisors

fn hypervisor_view(w: &World, ctx: &Ctx, i: usize, now: f64, detail: bool, with_servers: bool) -> Value {
    let h = &w.hosts[i];
    let up = w.host_up(h, now);
    let mut v = json!({
        "hypervisor_hostname": h.hypervisor_hostname,
        "id": if ctx.ge((2, 53)) { json!(h.hypervisor_uuid) } else { json!(h.hypervisor_id) },
        "state": if up { "up" } else { "down" },
        "status": if h.disabled { "disabled" } else { "enabled" },
    });
    if detail {
        let usage = w.usage();
        let (n, cpus, ram) = usage.get(h.name.as_str()).copied().unwrap_or_default();
        v["host_ip"] = json!(h.ip);
        v["hypervisor_type"] = json!("fake");
        v["hypervisor_version"] = json!(1000);
        v["service"] = json!({
            "host": h.name,
            "id": if ctx.ge((2, 53)) { json!(h.service_uuid) } else { json!(h.service_id) },
            "disabled_reason": h.disabled_reason,
        });
        if ctx.ge((2, 88)) {
            v["uptime"] = Value::Null;
        } else {
            let vcpus = h.vcpus.map(u64::from).unwrap_or(1000);
            let mem = h.ram_mb.unwrap_or(8_000_000);
            let cpu_info = json!({"arch": "x86_64", "model": "Nehalem", "vendor": "Intel", "features": ["pge", "clflush"], "topology": {"cores": 1, "threads": 1, "sockets": 4}});
            v["cpu_info"] = if ctx.ge((2, 28)) { cpu_info } else { json!(cpu_info.to_string()) };
            v["current_workload"] = json!(0);
            v["disk_available_least"] = json!(600_000);
            v["free_disk_gb"] = json!(600_000);
            v["free_ram_mb"] = json!(mem.saturating_sub(ram) as i64);
            v["local_gb"] = json!(600_000);
            v["local_gb_used"] = json!(n);
            v["memory_mb"] = json!(mem);
            v["memory_mb_used"] = json!(ram);
            v["running_vms"] = json!(n);
            v["vcpus"] = json!(vcpus);
            v["vcpus_used"] = json!(cpus);
        }
    }
    if with_servers {
        let servers: Vec<Value> = w
            .servers
            .values()
            .filter(|s| s.host.as_deref() == Some(h.name.as_str()))
            .map(|s| json!({"name": instance_name(s), "uuid": s.id}))
            .collect();
        if !servers.is_empty() {
            v["servers"] = json!(servers);
        }
    }
    v
}

fn hypervisors(w: &mut World, req: &Request, ctx: &Ctx, now: f64, detail: bool) -> ApiResult<Response> {
    require_admin(ctx, if detail { "os_compute_api:os-hypervisors:detail" } else { "os_compute_api:os-hypervisors:list" })?;
    let pattern = if ctx.ge((2, 53)) { req.query_get("hypervisor_hostname_pattern") } else { None };
    let with_servers = ctx.ge((2, 53)) && req.query_get("with_servers").is_some_and(|v| matches!(v, "1" | "true" | "True" | "yes" | "on"));
    let idx: Vec<usize> = (0..w.hosts.len())
        .filter(|&i| pattern.is_none_or(|p| w.hosts[i].hypervisor_hostname.contains(p)))
        .collect();
    if let Some(p) = pattern {
        if idx.is_empty() {
            return Err(ApiError::not_found(format!("No hypervisor matching '{p}' could be found.")));
        }
    }
    let (limit, marker) = if ctx.ge((2, 33)) && pattern.is_none() {
        (parse_limit(req, w.cfg.max_limit)?, req.query_get("marker"))
    } else {
        (None, None)
    };
    let mut idx = idx;
    if let Some(mk) = marker {
        let pos = idx
            .iter()
            .position(|&i| if ctx.ge((2, 53)) { w.hosts[i].hypervisor_uuid == mk } else { w.hosts[i].hypervisor_id.to_string() == mk })
            .ok_or_else(|| ApiError::bad(format!("marker [{mk}] not found")))?;
        idx.drain(..=pos);
    }
    let limited = limit.is_some_and(|l| idx.len() > l);
    if let Some(l) = limit {
        idx.truncate(l);
    }
    let list: Vec<Value> = idx.iter().map(|&i| hypervisor_view(w, ctx, i, now, detail, with_servers)).collect();
    let mut out = json!({"hypervisors": list});
    if limited || limit.is_some_and(|l| idx.len() == l && l > 0) {
        if let Some(&last) = idx.last() {
            let mk = if ctx.ge((2, 53)) { w.hosts[last].hypervisor_uuid.clone() } else { w.hosts[last].hypervisor_id.to_string() };
            let coll = if detail { "os-hypervisors/detail" } else { "os-hypervisors" };
            out["hypervisors_links"] = json!([{"rel": "next", "href": next_link(ctx, coll, req, &mk)}]);
        }
    }
    ok(out)
}

fn hypervisor_search(w: &mut World, ctx: &Ctx, pattern: &str, now: f64, servers: bool) -> ApiResult<Response> {
    require_admin(ctx, "os_compute_api:os-hypervisors:search")?;
    let list: Vec<Value> = (0..w.hosts.len())
        .filter(|&i| w.hosts[i].hypervisor_hostname.contains(pattern))
        .map(|i| hypervisor_view(w, ctx, i, now, false, servers))
        .collect();
    if list.is_empty() {
        return Err(ApiError::not_found(format!("No hypervisor matching '{pattern}' could be found.")));
    }
    ok(json!({"hypervisors": list}))
}

fn hypervisor_show(w: &mut World, ctx: &Ctx, id: &str, now: f64) -> ApiResult<Response> {
    require_admin(ctx, "os_compute_api:os-hypervisors:show")?;
    let i = if ctx.ge((2, 53)) {
        if !is_uuid_like(id) {
            return Err(ApiError::bad(format!("Invalid uuid {id}")));
        }
        w.hosts.iter().position(|h| h.hypervisor_uuid == id)
    } else {
        w.hosts.iter().position(|h| h.hypervisor_id.to_string() == id)
    };
    let i = i.ok_or_else(|| ApiError::not_found(format!("Hypervisor with ID {id} could not be found.")))?;
    ok(json!({"hypervisor": hypervisor_view(w, ctx, i, now, true, false)}))
}

// ----------------------------------------------------------------- servers

fn parse_limit(req: &Request, max_limit: usize) -> ApiResult<Option<usize>> {
    match req.query_get("limit") {
        None => Ok(None),
        Some(l) => {
            let n: i64 = l.parse().map_err(|_| ApiError::bad("limit param must be an integer"))?;
            if n < 0 {
                return Err(ApiError::bad("limit param must be positive"));
            }
            Ok(Some((n as usize).min(max_limit)))
        }
    }
}

/// Next link: the request's own query with `marker` replaced
/// (`nova/api/openstack/common.py ViewBuilder._get_next_link`).
fn next_link(ctx: &Ctx, collection: &str, req: &Request, marker: &str) -> String {
    let mut params: Vec<(String, String)> = req.query.iter().filter(|(k, _)| k != "marker").cloned().collect();
    params.push(("marker".into(), marker.into()));
    let q: Vec<String> = params.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
    format!("{}/{collection}?{}", ctx.base(), q.join("&"))
}

fn instance_name(s: &Server) -> String {
    format!("instance-{:08x}", s.seq)
}

fn host_id(project: &str, host: Option<&str>) -> String {
    match host {
        None => String::new(),
        Some(h) => {
            let mut hasher = sha2::Sha224::new();
            hasher.update(project.as_bytes());
            hasher.update(h.as_bytes());
            hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
        }
    }
}

/// ImageMetaProps fields (2.98 shows only these, never custom keys such as
/// `evacuable`): the hw_/img_/os_ families plus a few bare names.
fn is_standard_image_property(k: &str) -> bool {
    k.starts_with("hw_")
        || k.starts_with("img_")
        || k.starts_with("os_")
        || k.starts_with("trait:")
        || matches!(
            k,
            "architecture" | "auto_disk_config" | "hypervisor_type" | "hypervisor_version_requires" | "vm_mode" | "traits_required"
        )
}

/// What server views need from the world, copied out so that large lists
/// can be rendered after the state lock is released.
struct ViewEnv {
    flavors: std::collections::HashMap<String, crate::world::Flavor>,
    /// Standard image properties (hw_*, os_*, img_*) per image, for 2.98.
    image_props: std::collections::HashMap<String, Map<String, Value>>,
    /// host name → (availability zone, host_status, cell down)
    hosts: std::collections::HashMap<String, (String, &'static str, bool)>,
}

impl ViewEnv {
    fn new(w: &World, now: f64) -> Self {
        let hosts = w
            .hosts
            .iter()
            .map(|h| {
                let status = if h.forced_down {
                    "DOWN"
                } else if h.disabled {
                    "MAINTENANCE"
                } else if w.host_up(h, now) {
                    "UP"
                } else {
                    "UNKNOWN"
                };
                (h.name.clone(), (h.zone.clone(), status, h.cell_down))
            })
            .collect();
        let image_props = w
            .images
            .iter()
            .map(|i| {
                let props = i
                    .properties
                    .iter()
                    .filter(|(k, _)| is_standard_image_property(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (i.id.clone(), props)
            })
            .collect();
        let flavors = w.flavors.iter().map(|f| (f.id.clone(), f.clone())).collect();
        ViewEnv { flavors, image_props, hosts }
    }

    fn host_status(&self, s: &Server) -> &'static str {
        s.host.as_deref().and_then(|h| self.hosts.get(h)).map(|h| h.1).unwrap_or("")
    }

    fn in_down_cell(&self, s: &Server) -> bool {
        s.host.as_deref().and_then(|h| self.hosts.get(h)).is_some_and(|h| h.2)
    }
}

fn server_view(env: &ViewEnv, ctx: &Ctx, s: &Server, detail: bool) -> Value {
    let links = json!([
        {"rel": "self", "href": format!("{}/servers/{}", ctx.base(), s.id)},
        {"rel": "bookmark", "href": format!("{}/servers/{}", ctx.bookmark(), s.id)}
    ]);
    if !detail {
        return json!({"id": s.id, "name": s.name, "links": links});
    }
    let flavor = match env.flavors.get(&s.flavor_id) {
        Some(f) if ctx.ge((2, 47)) => json!({
            "vcpus": f.vcpus, "ram": f.ram, "disk": f.disk, "ephemeral": f.ephemeral, "swap": f.swap,
            "original_name": f.name, "extra_specs": f.extra_specs,
        }),
        _ => json!({"id": s.flavor_id, "links": [{"rel": "bookmark", "href": format!("{}/flavors/{}", ctx.bookmark(), s.flavor_id)}]}),
    };
    let image = if s.image_id.is_empty() {
        json!("")
    } else {
        let mut im = json!({"id": s.image_id, "links": [{"rel": "bookmark", "href": format!("{}/images/{}", ctx.bookmark(), s.image_id)}]});
        if ctx.ge((2, 98)) {
            im["properties"] = Value::Object(env.image_props.get(&s.image_id).cloned().unwrap_or_default());
        }
        im
    };
    let zone = s.host.as_deref().and_then(|h| env.hosts.get(h)).map(|h| h.0.clone()).unwrap_or_default();
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "status": s.status(),
        "tenant_id": s.project_id,
        "user_id": s.user_id,
        "metadata": s.metadata,
        "hostId": host_id(&s.project_id, s.host.as_deref()),
        "image": image,
        "flavor": flavor,
        "created": fmt_z(s.created),
        "updated": fmt_z(s.updated),
        "addresses": {},
        "accessIPv4": "",
        "accessIPv6": "",
        "links": links,
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": zone,
        "config_drive": "",
        "key_name": null,
        "OS-SRV-USG:launched_at": s.launched_at.map(fmt_nova),
        "OS-SRV-USG:terminated_at": null,
        "OS-EXT-SRV-ATTR:host": s.host,
        "OS-EXT-SRV-ATTR:instance_name": instance_name(s),
        "OS-EXT-SRV-ATTR:hypervisor_hostname": s.node,
        "OS-EXT-STS:task_state": s.task_state,
        "OS-EXT-STS:vm_state": s.vm_state,
        "OS-EXT-STS:power_state": s.power_state,
        "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": "default"}],
    });
    // views/servers.py shows progress only for these statuses.
    if matches!(s.status(), "ACTIVE" | "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING") {
        v["progress"] = json!(0);
    }
    if !ctx.is_admin {
        let o = v.as_object_mut().expect("object");
        for k in ["OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:instance_name", "OS-EXT-SRV-ATTR:hypervisor_hostname"] {
            o.remove(k);
        }
    }
    if ctx.ge((2, 3)) && ctx.is_admin {
        v["OS-EXT-SRV-ATTR:hostname"] = json!(s.name.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-"));
        v["OS-EXT-SRV-ATTR:kernel_id"] = json!("");
        v["OS-EXT-SRV-ATTR:launch_index"] = json!(0);
        v["OS-EXT-SRV-ATTR:ramdisk_id"] = json!("");
        v["OS-EXT-SRV-ATTR:reservation_id"] = json!(format!("r-{:08x}", s.seq));
        v["OS-EXT-SRV-ATTR:root_device_name"] = json!("/dev/vda");
        v["OS-EXT-SRV-ATTR:user_data"] = Value::Null;
    }
    if ctx.ge((2, 9)) {
        v["locked"] = json!(s.locked);
    }
    if ctx.ge((2, 16)) {
        v["host_status"] = json!(env.host_status(s));
    }
    if ctx.ge((2, 19)) {
        v["description"] = Value::Null;
    }
    if ctx.ge((2, 26)) {
        v["tags"] = json!(s.tags);
    }
    if ctx.ge((2, 63)) {
        v["trusted_image_certificates"] = Value::Null;
    }
    if ctx.ge((2, 73)) {
        v["locked_reason"] = json!(s.locked_reason);
    }
    if ctx.ge((2, 90)) && !ctx.is_admin {
        // 2.90 shows the hostname to everyone.
        v["OS-EXT-SRV-ATTR:hostname"] = json!(s.name.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-"));
    }
    if ctx.ge((2, 96)) {
        v["pinned_availability_zone"] = Value::Null;
    }
    if ctx.ge((2, 100)) {
        v["scheduler_hints"] = json!({});
    }
    if let Some(f) = &s.fault {
        if matches!(s.vm_state.as_str(), "error" | "deleted") {
            v["fault"] = json!({"code": f.code, "created": fmt_z(f.created), "message": f.message});
        }
    }
    v
}

fn visible_server(w: &World, ctx: &Ctx, id: &str) -> ApiResult<Server> {
    match w.server(id) {
        Some(s) if ctx.is_admin || s.project_id == ctx.project_id => Ok(s.clone()),
        _ => Err(ApiError::not_found(format!("Instance {id} could not be found."))),
    }
}

fn truthy(v: &str) -> bool {
    !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "f" | "no" | "n" | "off")
}

fn servers_list(w: &mut World, req: &Request, ctx: &Ctx, now: f64, detail: bool) -> ApiResult<Response> {
    let all_tenants = ctx.is_admin && req.query_get("all_tenants").is_some_and(truthy);
    let project = if all_tenants {
        req.query_get("project_id").or(req.query_get("tenant_id")).map(String::from)
    } else {
        Some(ctx.project_id.clone())
    };
    // host/node are admin-only filters; Nova drops them for others.
    let host = if ctx.is_admin { req.query_get("host") } else { None };
    let node = if ctx.is_admin { req.query_get("node") } else { None };
    let name = req.query_get("name");
    let status = req.query_get("status").map(|s| s.to_ascii_uppercase());
    let vm_state = req.query_get("vm_state");
    let flavor = req.query_get("flavor");
    let image = req.query_get("image");
    let locked = if ctx.ge((2, 73)) { req.query_get("locked").map(truthy) } else { None };
    let changes_since = match req.query_get("changes-since") {
        Some(cs) => Some(parse_iso(cs).ok_or_else(|| ApiError::bad(format!("Invalid filter field: changes-since. Value: {cs}")))?),
        None => None,
    };
    let split = |k: &str| -> Option<Vec<String>> { req.query_get(k).map(|v| v.split(',').map(String::from).collect()) };
    let (tags, tags_any, not_tags, not_tags_any) = if ctx.ge((2, 26)) {
        (split("tags"), split("tags-any"), split("not-tags"), split("not-tags-any"))
    } else {
        (None, None, None, None)
    };
    let limit = parse_limit(req, w.cfg.max_limit)?;
    let effective_limit = limit.unwrap_or(w.cfg.max_limit);
    // The marker may be any server, even one the filters exclude: listing
    // continues after its position in the sort order (created_at desc).
    let marker_seq = match req.query_get("marker") {
        Some(mk) => Some(w.server(mk).map(|s| s.seq).ok_or_else(|| ApiError::bad(format!("marker [{mk}] not found")))?),
        None => None,
    };
    let filtered = w.servers.values().rev().filter(|s| {
        marker_seq.is_none_or(|m| s.seq < m) &&
        project.as_deref().is_none_or(|p| s.project_id == p)
            && host.is_none_or(|h| s.host.as_deref() == Some(h))
            && node.is_none_or(|n| s.node.as_deref() == Some(n))
            && name.is_none_or(|n| s.name.contains(n))
            && status.as_deref().is_none_or(|st| s.status() == st)
            && vm_state.is_none_or(|v| s.vm_state == v)
            && flavor.is_none_or(|f| s.flavor_id == f)
            && image.is_none_or(|i| s.image_id == i)
            && locked.is_none_or(|l| s.locked == l)
            && changes_since.is_none_or(|t| s.updated >= t)
            && tags.as_ref().is_none_or(|t| t.iter().all(|x| s.tags.contains(x)))
            && tags_any.as_ref().is_none_or(|t| t.iter().any(|x| s.tags.contains(x)))
            && not_tags.as_ref().is_none_or(|t| !t.iter().all(|x| s.tags.contains(x)))
            && not_tags_any.as_ref().is_none_or(|t| !t.iter().any(|x| s.tags.contains(x)))
    });
    // Copy the page out and render it after the lock is released: a
    // 1000-server detail list must not stall every other client.
    let page: Vec<Server> = filtered.take(effective_limit).cloned().collect();
    let env = ViewEnv::new(w, now);
    let next = match page.last() {
        Some(last) if page.len() == effective_limit => {
            let coll = if detail { "servers/detail" } else { "servers" };
            Some(next_link(ctx, coll, req, &last.id))
        }
        _ => None,
    };
    let ctx = ctx.clone();
    Ok(Response::json_deferred(200, move || {
        let list: Vec<Value> = page
            .iter()
            .filter(|s| ctx.ge((2, 69)) || !env.in_down_cell(s))
            .map(|s| {
                if env.in_down_cell(s) {
                    let mut v = json!({"id": s.id, "status": "UNKNOWN", "links": [
                        {"rel": "self", "href": format!("{}/servers/{}", ctx.base(), s.id)},
                        {"rel": "bookmark", "href": format!("{}/servers/{}", ctx.bookmark(), s.id)}]});
                    if detail {
                        v["tenant_id"] = json!(s.project_id);
                        v["created"] = json!(fmt_z(s.created));
                    }
                    v
                } else {
                    server_view(&env, &ctx, s, detail)
                }
            })
            .collect();
        let mut out = json!({"servers": list});
        if let Some(href) = next {
            out["servers_links"] = json!([{"rel": "next", "href": href}]);
        }
        out
    }))
}

fn server_create(w: &mut World, req: &Request, ctx: &Ctx, now: f64) -> ApiResult<Response> {
    let body = parse_body(req)?;
    let top = schema_object(None, &body)?;
    schema_required(None, &body, top, &["server"])?;
    let sv = &top["server"];
    let so = schema_object(Some("server"), sv)?;
    let mut required = vec!["name", "flavorRef"];
    if ctx.ge((2, 37)) {
        required.push("networks");
    }
    schema_required(Some("server"), sv, so, &required)?;
    let name = schema_string("name", &so["name"], 1, 255)?;
    let flavor_ref = match &so["flavorRef"] {
        Value::String(s) => s.rsplit('/').next().unwrap_or(s).to_string(),
        Value::Number(n) => n.to_string(),
        v => return Err(schema_err(Some("flavorRef"), v, &format!("{} is not of type 'string', 'integer'", py_repr(v)))),
    };
    let bfv = so.contains_key("block_device_mapping_v2");
    let image_ref = match so.get("imageRef") {
        Some(Value::String(s)) => s.rsplit('/').next().unwrap_or(s).to_string(),
        None | Some(Value::Null) => String::new(),
        Some(v) => return Err(schema_err(Some("imageRef"), v, &format!("{} is not of type 'string'", py_repr(v)))),
    };
    if w.flavor(&flavor_ref).is_none() {
        return Err(ApiError::bad(format!("Flavor {flavor_ref} could not be found.")));
    }
    if image_ref.is_empty() && !bfv {
        return Err(ApiError::bad("Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid."));
    }
    if !image_ref.is_empty() && !w.images.iter().any(|i| i.id == image_ref) {
        return Err(ApiError::bad(format!("Image {image_ref} could not be found.")));
    }
    let metadata: BTreeMap<String, String> = match so.get("metadata") {
        None => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(schema_err(Some(k), other, &format!("{} is not of type 'string'", py_repr(other)))),
            })
            .collect::<ApiResult<_>>()?,
        Some(v) => return Err(schema_err(Some("metadata"), v, &format!("{} is not of type 'object'", py_repr(v)))),
    };
    let tags: Vec<String> = match so.get("tags") {
        Some(Value::Array(a)) if ctx.ge((2, 52)) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    };
    // availability_zone "zone:host" pins the host (admin only in Nova).
    let forced_host = so
        .get("availability_zone")
        .and_then(Value::as_str)
        .and_then(|az| az.split_once(':'))
        .map(|(_, h)| h.to_string())
        .filter(|h| !h.is_empty());
    if let Some(h) = &forced_host {
        if w.host(h).is_none() {
            return Err(ApiError::bad(format!("Compute host {h} could not be found.")));
        }
    }
    let dest = w.schedule(now, &flavor_ref, None, forced_host.as_deref());
    let no_host = w.no_valid_host_message(&flavor_ref, forced_host.as_deref());
    let sc = crate::scenario::ServerConfig {
        id: None,
        name,
        host: dest.clone(),
        flavor: flavor_ref,
        image: Some(image_ref),
        vm_state: if dest.is_some() { "building".into() } else { "error".into() },
        task_state: dest.as_ref().map(|_| "spawning".into()),
        metadata,
        tags,
        locked: false,
        locked_reason: None,
        project_id: Some(ctx.project_id.clone()),
    };
    let id = w.place_server(&sc, now).map_err(|e| ApiError::bad(e.to_string()))?;
    let boot_at = now + w.cfg.boot_delay_ms as f64 / 1000.0;
    let user = ctx.user_id.clone();
    if let Some(s) = w.server_mut(&id) {
        s.created = now;
        s.updated = now;
        s.launched_at = None;
        s.user_id = user.clone();
        s.record_action("create", &ctx.request_id, &user, now);
        if dest.is_some() {
            s.boot_done_at = Some(boot_at);
        } else {
            s.fault = Some(crate::world::Fault {
                code: 500,
                message: no_host.into(),
                created: now,
            });
        }
    }
    if dest.is_some() {
        w.booting.push(id.clone());
        w.tick(now);
    }
    let pass = w.rng.hex(6);
    let links = json!([
        {"rel": "self", "href": format!("{}/servers/{id}", ctx.base())},
        {"rel": "bookmark", "href": format!("{}/servers/{id}", ctx.bookmark())}
    ]);
    Ok(Response::json(
        202,
        &json!({"server": {"id": id, "links": links, "OS-DCF:diskConfig": "MANUAL", "security_groups": [{"name": "default"}], "adminPass": pass}}),
    )
    .with_header("Location", &format!("{}/servers/{id}", ctx.base())))
}

fn action_view(s: &Server, a: &crate::world::InstanceAction, ctx: &Ctx, events: bool) -> Value {
    let mut v = json!({
        "action": a.action,
        "instance_uuid": s.id,
        "message": a.message,
        "project_id": a.project_id,
        "request_id": a.request_id,
        "start_time": fmt_nova(a.start_time),
        "user_id": a.user_id,
    });
    if ctx.ge((2, 58)) {
        v["updated_at"] = json!(fmt_nova(a.updated_at));
    }
    if events && (ctx.is_admin || ctx.ge((2, 51))) {
        let evs: Vec<Value> = a
            .events
            .iter()
            .map(|e| {
                let mut ev = json!({
                    "event": e.event,
                    "start_time": fmt_nova(e.start_time),
                    "finish_time": e.finish_time.map(fmt_nova),
                    "result": e.result,
                });
                if ctx.is_admin {
                    ev["traceback"] = Value::Null;
                }
                if ctx.ge((2, 62)) {
                    ev["hostId"] = json!(host_id(&s.project_id, e.host.as_deref()));
                    if ctx.is_admin {
                        ev["host"] = json!(e.host.clone().unwrap_or_default());
                    }
                }
                if ctx.ge((2, 84)) {
                    ev["details"] = json!(e.details);
                }
                ev
            })
            .collect();
        v["events"] = json!(evs);
    }
    v
}

fn invalid_state(action: &str, id: &str, attr: &str, state: &str) -> ApiError {
    ApiError::conflict(format!("Cannot '{action}' instance {id} while it is in {attr} {state}"))
}

fn check_state(s: &Server, action: &str, vm: &[&str]) -> ApiResult<()> {
    if !vm.contains(&s.vm_state.as_str()) {
        return Err(invalid_state(action, &s.id, "vm_state", &s.vm_state));
    }
    if let Some(t) = &s.task_state {
        return Err(invalid_state(action, &s.id, "task_state", t));
    }
    Ok(())
}

fn server_action(w: &mut World, req: &Request, ctx: &Ctx, id: &str, now: f64) -> ApiResult<Response> {
    let body = parse_body(req)?;
    let Some(obj) = body.as_object() else {
        return Err(ApiError::bad("Malformed request body"));
    };
    let Some((action, _)) = obj.iter().next() else {
        return Err(ApiError::bad("Malformed request body"));
    };
    match action.as_str() {
        "evacuate" => evacuate(w, ctx, id, &body, now),
        "lock" => {
            let mut reason = None;
            if ctx.ge((2, 73)) {
                schema_allowed(None, &body, obj, &["lock"])?;
                match &obj["lock"] {
                    Value::Null => {}
                    v @ Value::Object(o) => {
                        schema_allowed(Some("lock"), v, o, &["locked_reason"])?;
                        if let Some(r) = o.get("locked_reason") {
                            reason = Some(schema_string("locked_reason", r, 1, 255)?);
                        }
                    }
                    v => return Err(schema_err(Some("lock"), v, &format!("{} is not of type 'object', 'null'", py_repr(v)))),
                }
            }
            visible_server(w, ctx, id)?;
            if let Some(s) = w.server_mut(id) {
                s.locked = true;
                s.locked_reason = reason;
                s.updated = now;
                s.record_action("lock", &ctx.request_id, &ctx.user_id, now);
            }
            Ok(Response::new(202))
        }
        "unlock" => {
            visible_server(w, ctx, id)?;
            if let Some(s) = w.server_mut(id) {
                s.locked = false;
                s.locked_reason = None;
                s.updated = now;
                s.record_action("unlock", &ctx.request_id, &ctx.user_id, now);
            }
            Ok(Response::new(202))
        }
        "os-stop" | "os-start" => {
            let s = visible_server(w, ctx, id)?;
            let stop = action == "os-stop";
            // compute/api.py: @check_instance_lock, @check_instance_host(),
            // then @check_instance_state, in that order.
            if s.locked && !ctx.is_admin {
                return Err(ApiError::conflict(format!("Instance {id} is locked")));
            }
            if s.host.is_none() {
                return Err(ApiError::conflict(format!("Instance {id} is not ready")));
            }
            if stop {
                check_state(&s, "stop", &["active", "error"])?;
            } else {
                check_state(&s, "start", &["stopped"])?;
            }
            let alive = s.host.as_deref().is_some_and(|h| w.compute_alive_by_name(h, now));
            if let Some(s) = w.server_mut(id) {
                s.updated = now;
                s.record_action(if stop { "stop" } else { "start" }, &ctx.request_id, &ctx.user_id, now);
                if !alive {
                    // The RPC cast goes to a dead compute: stuck in the task.
                    s.task_state = Some(if stop { "powering-off".into() } else { "powering-on".into() });
                } else if stop {
                    s.vm_state = "stopped".into();
                    s.power_state = POWER_SHUTDOWN;
                } else {
                    s.vm_state = "active".into();
                    s.power_state = POWER_RUNNING;
                }
            }
            Ok(Response::new(202))
        }
        "os-resetState" => {
            schema_allowed(None, &body, obj, &["os-resetState"])?;
            let rs = &obj["os-resetState"];
            let ro = schema_object(Some("os-resetState"), rs)?;
            schema_required(Some("os-resetState"), rs, ro, &["state"])?;
            schema_allowed(Some("os-resetState"), rs, ro, &["state"])?;
            let state = match &ro["state"] {
                Value::String(s) if s == "active" || s == "error" => s.clone(),
                v => return Err(schema_err(Some("state"), v, &format!("{} is not one of ['active', 'error']", py_repr(v)))),
            };
            require_admin(ctx, "os_compute_api:os-admin-actions:reset_state")?;
            visible_server(w, ctx, id)?;
            if let Some(s) = w.server_mut(id) {
                s.vm_state = state;
                s.task_state = None;
                s.updated = now;
            }
            Ok(Response::new(202))
        }
        other => {
            visible_server(w, ctx, id)?;
            Err(ApiError::bad(format!("There is no such action: {other}")))
        }
    }
}

fn evacuate(w: &mut World, ctx: &Ctx, id: &str, body: &Value, now: f64) -> ApiResult<Response> {
    // Schema (evacuate / _v214 / _v229 / _v268 / _v295).
    let top = schema_object(None, body)?;
    schema_allowed(None, body, top, &["evacuate"])?;
    let ev = &top["evacuate"];
    let eo = schema_object(Some("evacuate"), ev)?;
    let mut allowed = vec!["host", "adminPass"];
    if !ctx.ge((2, 14)) {
        allowed.push("onSharedStorage");
        schema_required(Some("evacuate"), ev, eo, &["onSharedStorage"])?;
    }
    let force_allowed = ctx.ge((2, 29)) && !ctx.ge((2, 68));
    if force_allowed {
        allowed.push("force");
    }
    schema_allowed(Some("evacuate"), ev, eo, &allowed)?;
    let host = match eo.get("host") {
        Some(v) => Some(schema_string("host", v, 1, 255)?),
        None => None,
    };
    let on_shared = match eo.get("onSharedStorage") {
        Some(v) => Some(schema_bool("onSharedStorage", v)?),
        None => None,
    };
    let admin_pass = match eo.get("adminPass") {
        Some(v) => Some(schema_string("adminPass", v, 0, 255)?),
        None => None,
    };
    let force = match eo.get("force") {
        Some(v) => Some(schema_bool("force", v)?),
        // evacuate.py: from 2.29 on `force` defaults to False (2.68+ too,
        // where the schema no longer accepts it); before 2.29 it is None.
        None if ctx.ge((2, 29)) => Some(false),
        None => None,
    };
    let server = visible_server(w, ctx, id)?;
    require_admin(ctx, "os_compute_api:os-evacuate")?;
    if let Some(f) = w.take_evacuation_fault(&server) {
        if f.kind == "api_error" {
            let status = f.status.unwrap_or(500);
            return Err(ApiError::new(status, "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.\n<class 'nova.exception.SimulatedFault'>"));
        }
        return evacuate_checked(w, ctx, &server, host, on_shared, admin_pass, force, now, Some(f.kind));
    }
    evacuate_checked(w, ctx, &server, host, on_shared, admin_pass, force, now, None)
}

#[allow(clippy::too_many_arguments)]
fn evacuate_checked(
    w: &mut World,
    ctx: &Ctx,
    server: &Server,
    host: Option<String>,
    on_shared: Option<bool>,
    admin_pass: Option<String>,
    force: Option<bool>,
    now: f64,
    fault_kind: Option<String>,
) -> ApiResult<Response> {
    let id = server.id.as_str();
    if force == Some(true) && host.is_none() {
        return Err(ApiError::bad("Can't force to a non-provided destination"));
    }
    let password: Option<String> = if ctx.ge((2, 14)) {
        Some(admin_pass.unwrap_or_else(|| w.rng.hex(6)))
    } else if admin_pass.is_some() {
        if on_shared == Some(true) {
            return Err(ApiError::bad("admin password can't be changed on existing disk"));
        }
        admin_pass
    } else if on_shared != Some(true) {
        Some(w.rng.hex(6))
    } else {
        None
    };
    if let Some(h) = &host {
        if w.host(h).is_none() {
            return Err(ApiError::not_found(format!("Compute host {h} not found.")));
        }
    }
    // Nova compares even when both are None (a never-scheduled server).
    if server.host == host {
        return Err(ApiError::bad("The target host can't be the same one."));
    }
    if server.host.is_none() {
        // Service.get_by_compute_host(None) raises, uncaught by the API.
        return Err(ApiError::new(
            500,
            "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.\n<class 'nova.exception.ComputeHostNotFound'>",
        ));
    }
    // Nova 34: `@check_instance_state(vm_state=[ACTIVE, STOPPED, ERROR],
    // task_state=None)`: None disables the task-state check, so a server
    // already rebuilding (or stuck powering-off on a dead host) is accepted
    // again (verified against real Nova 34 by iha-openstack's faithfulness test).
    if !["active", "stopped", "error"].contains(&server.vm_state.as_str()) {
        return Err(invalid_state("evacuate", id, "vm_state", &server.vm_state));
    }
    let src = server.host.clone().unwrap_or_default();
    if w.host_is_up(&src, now) {
        return Err(ApiError::bad(format!("Compute service of {src} is still in use.")));
    }
    // Accepted: task_state rebuilding, migration `accepted`.
    let sched_at = now + w.cfg.schedule_delay_ms as f64 / 1000.0;
    let rebuild = w.cfg.rebuild_delay_ms.saturating_add(w.jitter_ms()) as f64 / 1000.0;
    let spawn_at = sched_at + rebuild / 2.0;
    let done_at = sched_at + rebuild;
    // compute/api.py only turns a requested host into a scheduler hint
    // when force is False (2.29+); force=True and pre-2.29 requests go to
    // the host directly, bypassing the scheduler.
    let forced = host.is_some() && force != Some(false);
    let dest = match &host {
        Some(h) if forced => Some(h.clone()),
        Some(h) => w.schedule(now, &server.flavor_id, Some(&src), Some(h)),
        None => w.schedule(now, &server.flavor_id, Some(&src), None),
    };
    let mut outcome = if dest.is_some() { Outcome::Ok } else { Outcome::NoValidHost };
    // A forced destination skips the scheduler but not the placement claim
    // (conductor: claim_resources_on_destination).
    let keep_vm_state = forced && dest.as_deref().is_some_and(|d| !w.has_capacity(d, &server.flavor_id));
    if keep_vm_state {
        outcome = Outcome::NoValidHost;
    }
    match fault_kind.as_deref() {
        Some("no_valid_host") => outcome = Outcome::NoValidHost,
        Some("rebuild_failed") if dest.is_some() => outcome = Outcome::RebuildFailed,
        Some("stuck") if dest.is_some() => outcome = Outcome::Stuck,
        _ => {}
    }
    let mut failure: Option<String> = None;
    if let (Some(claimed), Some(real)) = (on_shared, w.scenario.shared_storage) {
        if claimed != real && outcome == Outcome::Ok {
            outcome = Outcome::RebuildFailed;
            failure = Some("Invalid state of instance files on shared storage".into());
        }
    }
    let uuid = w.rng.uuid4();
    let fid = w.flavor(&server.flavor_id).map(|f| f.internal_id).unwrap_or(1);
    let mig = Migration {
        id: w.migrations.len() as u64 + 1,
        uuid,
        instance_uuid: id.to_string(),
        source_compute: server.host.clone(),
        source_node: server.node.clone(),
        dest_compute: host.clone(),
        dest_node: None,
        dest_host: None,
        status: "accepted".into(),
        migration_type: "evacuation".into(),
        created: now,
        updated: None,
        old_instance_type_id: fid,
        new_instance_type_id: fid,
        user_id: ctx.user_id.clone(),
        project_id: server.project_id.clone(),
        plan: Some(EvacPlan {
            sched_at,
            spawn_at,
            done_at,
            dest: if outcome == Outcome::NoValidHost { None } else { dest },
            outcome,
            target_stopped: ctx.ge((2, 95)),
            prior_vm_state: server.vm_state.clone(),
            phase: 0,
            on_shared_storage: on_shared,
            request_id: ctx.request_id.clone(),
            forced,
            keep_vm_state,
            failure,
            requested_host: host.clone(),
        }),
    };
    w.migrations.push(mig);
    w.inflight.push(w.migrations.len() - 1);
    if let Some(s) = w.server_mut(id) {
        s.task_state = Some("rebuilding".into());
        s.updated = now;
        s.record_action("evacuate", &ctx.request_id, &ctx.user_id, now);
    }
    w.tick(now);
    if !ctx.ge((2, 14)) && w.cfg.enable_instance_password {
        return ok(json!({"adminPass": password}));
    }
    Ok(Response::new(200))
}

fn server_metadata(w: &mut World, req: &Request, ctx: &Ctx, id: &str, rest: &[&str], now: f64) -> ApiResult<Response> {
    let s = visible_server(w, ctx, id)?;
    let m = req.method.as_str();
    let string_map = |v: &Value, field: &str| -> ApiResult<BTreeMap<String, String>> {
        let o = schema_object(Some(field), v)?;
        o.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(schema_err(Some(k), other, &format!("{} is not of type 'string'", py_repr(other)))),
            })
            .collect()
    };
    match (m, rest) {
        ("GET", []) => ok(json!({"metadata": s.metadata})),
        ("PUT" | "POST", []) => {
            let body = parse_body(req)?;
            let top = schema_object(None, &body)?;
            schema_required(None, &body, top, &["metadata"])?;
            let md = string_map(&top["metadata"], "metadata")?;
            let srv = w.server_mut(id).expect("visible");
            if m == "PUT" {
                srv.metadata = md;
            } else {
                srv.metadata.extend(md);
            }
            srv.updated = now;
            ok(json!({"metadata": srv.metadata}))
        }
        ("GET", [key]) => match s.metadata.get(*key) {
            Some(v) => ok(json!({"meta": {*key: v}})),
            None => Err(ApiError::not_found("Metadata item was not found")),
        },
        ("PUT", [key]) => {
            let body = parse_body(req)?;
            let top = schema_object(None, &body)?;
            schema_required(None, &body, top, &["meta"])?;
            let md = string_map(&top["meta"], "meta")?;
            if md.len() != 1 || !md.contains_key(*key) {
                return Err(ApiError::bad("Request body and URI mismatch"));
            }
            let srv = w.server_mut(id).expect("visible");
            srv.metadata.extend(md.clone());
            srv.updated = now;
            ok(json!({"meta": md}))
        }
        ("DELETE", [key]) => {
            let srv = w.server_mut(id).expect("visible");
            if srv.metadata.remove(*key).is_none() {
                return Err(ApiError::not_found("Metadata item was not found"));
            }
            srv.updated = now;
            Ok(Response::new(204))
        }
        _ => Err(ApiError::new(405, "The method specified is not allowed for this resource.")),
    }
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty() && t.chars().count() <= 60 && !t.contains('/') && !t.contains(',')
}

fn server_tags(w: &mut World, req: &Request, ctx: &Ctx, id: &str, rest: &[&str], now: f64) -> ApiResult<Response> {
    if !ctx.ge((2, 26)) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    let s = visible_server(w, ctx, id)?;
    match (req.method.as_str(), rest) {
        ("GET", []) => ok(json!({"tags": s.tags})),
        ("PUT", []) => {
            let body = parse_body(req)?;
            let top = schema_object(None, &body)?;
            schema_required(None, &body, top, &["tags"])?;
            let Some(arr) = top["tags"].as_array() else {
                return Err(schema_err(Some("tags"), &top["tags"], "is not of type 'array'"));
            };
            let mut tags = Vec::new();
            for t in arr {
                let Some(t) = t.as_str().filter(|t| valid_tag(t)) else {
                    return Err(schema_err(Some("tags"), t, "is not a valid tag"));
                };
                if !tags.iter().any(|x: &String| x == t) {
                    tags.push(t.to_string());
                }
            }
            if tags.len() > 50 {
                return Err(ApiError::bad("The number of tags exceeded the per-server limit 50"));
            }
            let srv = w.server_mut(id).expect("visible");
            srv.tags = tags;
            srv.updated = now;
            ok(json!({"tags": srv.tags}))
        }
        ("DELETE", []) => {
            let srv = w.server_mut(id).expect("visible");
            srv.tags.clear();
            srv.updated = now;
            Ok(Response::new(204))
        }
        ("GET", [tag]) => {
            if s.tags.iter().any(|t| t == tag) {
                Ok(Response::new(204))
            } else {
                Err(ApiError::not_found(format!("Tag '{tag}' could not be found.")))
            }
        }
        ("PUT", [tag]) => {
            let tag = crate::util::percent_decode(tag);
            if !valid_tag(&tag) {
                return Err(ApiError::bad(format!("Tag '{tag}' is invalid.")));
            }
            let srv = w.server_mut(id).expect("visible");
            if srv.tags.contains(&tag) {
                return Ok(Response::new(204));
            }
            if srv.tags.len() >= 50 {
                return Err(ApiError::bad("The number of tags exceeded the per-server limit 50"));
            }
            srv.tags.push(tag.clone());
            srv.updated = now;
            Ok(Response::new(201).with_header("Location", &format!("{}/servers/{id}/tags/{tag}", ctx.base())))
        }
        ("DELETE", [tag]) => {
            let srv = w.server_mut(id).expect("visible");
            let before = srv.tags.len();
            srv.tags.retain(|t| t != tag);
            if srv.tags.len() == before {
                return Err(ApiError::not_found(format!("Tag '{tag}' could not be found.")));
            }
            srv.updated = now;
            Ok(Response::new(204))
        }
        _ => Err(ApiError::new(405, "The method specified is not allowed for this resource.")),
    }
}

// ----------------------------------------------------------------- flavors

fn flavor_view(f: &crate::world::Flavor, ctx: &Ctx, detail: bool) -> Value {
    let links = json!([
        {"rel": "self", "href": format!("{}/flavors/{}", ctx.base(), f.id)},
        {"rel": "bookmark", "href": format!("{}/flavors/{}", ctx.bookmark(), f.id)}
    ]);
    let mut v = json!({"id": f.id, "name": f.name, "links": links});
    if ctx.ge((2, 55)) {
        v["description"] = json!(f.description);
    }
    if !detail {
        return v;
    }
    v["ram"] = json!(f.ram);
    v["disk"] = json!(f.disk);
    v["vcpus"] = json!(f.vcpus);
    v["OS-FLV-EXT-DATA:ephemeral"] = json!(f.ephemeral);
    v["OS-FLV-DISABLED:disabled"] = json!(false);
    // Before 2.75 a zero swap is shown as "".
    v["swap"] = if f.swap == 0 && !ctx.ge((2, 75)) { json!("") } else { json!(f.swap) };
    v["rxtx_factor"] = json!(1.0);
    v["os-flavor-access:is_public"] = json!(f.is_public);
    if ctx.ge((2, 61)) {
        v["extra_specs"] = json!(f.extra_specs);
    }
    v
}

fn flavors_list(w: &mut World, req: &Request, ctx: &Ctx, detail: bool) -> ApiResult<Response> {
    // Admins see public flavors by default, everything with is_public=None
    // (`flavors.py _parse_is_public`); others only public ones.
    let is_public: Option<bool> = if ctx.is_admin {
        match req.query_get("is_public") {
            None => Some(true),
            Some(v) if v.eq_ignore_ascii_case("none") => None,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "t" | "yes" | "y" | "on" => Some(true),
                "false" | "0" | "f" | "no" | "n" | "off" => Some(false),
                _ => return Err(ApiError::bad(format!("Invalid is_public filter [{v}]"))),
            },
        }
    } else {
        Some(true)
    };
    let limit = parse_limit(req, w.cfg.max_limit)?;
    let marker = req.query_get("marker");
    let mut list: Vec<&crate::world::Flavor> = w.flavors.iter().filter(|f| is_public.is_none_or(|p| f.is_public == p)).collect();
    // Nova sorts flavors by flavorid ascending by default.
    list.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(mk) = marker {
        let pos = list.iter().position(|f| f.id == mk).ok_or_else(|| ApiError::bad(format!("marker [{mk}] not found")))?;
        list.drain(..=pos);
    }
    let effective = limit.unwrap_or(w.cfg.max_limit);
    list.truncate(effective);
    let items: Vec<Value> = list.iter().map(|f| flavor_view(f, ctx, detail)).collect();
    let mut out = json!({"flavors": items});
    if !list.is_empty() && list.len() == effective {
        if let Some(last) = list.last() {
            out["flavors_links"] = json!([{"rel": "next", "href": next_link(ctx, if detail { "flavors/detail" } else { "flavors" }, req, &last.id)}]);
        }
    }
    ok(out)
}

// -------------------------------------------------------------- aggregates

fn aggregate_view(a: &crate::world::Aggregate, ctx: &Ctx) -> Value {
    let mut v = json!({
        "id": a.id,
        "name": a.name,
        "availability_zone": a.availability_zone,
        "hosts": a.hosts,
        "metadata": a.metadata,
        "created_at": fmt_nova(a.created),
        "updated_at": a.updated.map(fmt_nova),
        "deleted_at": null,
        "deleted": false,
    });
    if ctx.ge((2, 41)) {
        v["uuid"] = json!(a.uuid);
    }
    v
}

fn find_aggregate(w: &World, id: &str) -> ApiResult<usize> {
    w.aggregates
        .iter()
        .position(|a| a.id.to_string() == id)
        .ok_or_else(|| ApiError::not_found(format!("Aggregate {id} could not be found.")))
}

fn aggregate_create(w: &mut World, req: &Request, ctx: &Ctx, now: f64) -> ApiResult<Response> {
    let body = parse_body(req)?;
    let top = schema_object(None, &body)?;
    schema_required(None, &body, top, &["aggregate"])?;
    let ag = &top["aggregate"];
    let ao = schema_object(Some("aggregate"), ag)?;
    schema_required(Some("aggregate"), ag, ao, &["name"])?;
    schema_allowed(Some("aggregate"), ag, ao, &["name", "availability_zone"])?;
    let name = schema_string("name", &ao["name"], 1, 255)?;
    let az = match ao.get("availability_zone") {
        None | Some(Value::Null) => None,
        Some(v) => Some(schema_string("availability_zone", v, 1, 255)?),
    };
    require_admin(ctx, "os_compute_api:os-aggregates:create")?;
    if w.aggregates.iter().any(|a| a.name == name) {
        return Err(ApiError::conflict(format!("Aggregate {name} already exists.")));
    }
    let id = w.aggregates.iter().map(|a| a.id).max().unwrap_or(0) + 1;
    let uuid = w.rng.uuid4();
    let mut metadata = BTreeMap::new();
    if let Some(z) = &az {
        metadata.insert("availability_zone".to_string(), z.clone());
    }
    let a = crate::world::Aggregate { id, uuid, name, availability_zone: az, hosts: Vec::new(), metadata, created: now, updated: None };
    let v = aggregate_view(&a, ctx);
    w.aggregates.push(a);
    ok(json!({"aggregate": v}))
}

fn aggregate_action(w: &mut World, req: &Request, ctx: &Ctx, id: &str, now: f64) -> ApiResult<Response> {
    let body = parse_body(req)?;
    let top = schema_object(None, &body)?;
    require_admin(ctx, "os_compute_api:os-aggregates:add_host")?;
    let i = find_aggregate(w, id)?;
    let (action, arg) = top.iter().next().ok_or_else(|| ApiError::bad("Malformed request body"))?;
    match action.as_str() {
        "add_host" | "remove_host" => {
            let ao = schema_object(Some(action), arg)?;
            schema_required(Some(action), arg, ao, &["host"])?;
            let host = schema_string("host", &ao["host"], 1, 255)?;
            if w.host(&host).is_none() {
                return Err(ApiError::not_found(format!("Compute host {host} could not be found.")));
            }
            let a = &mut w.aggregates[i];
            if action == "add_host" {
                if a.hosts.contains(&host) {
                    return Err(ApiError::conflict(format!("Aggregate {id} already has host {host}.")));
                }
                a.hosts.push(host);
            } else {
                if !a.hosts.contains(&host) {
                    return Err(ApiError::not_found(format!("Aggregate {id} has no host {host}.")));
                }
                a.hosts.retain(|h| *h != host);
            }
            a.updated = Some(now);
        }
        "set_metadata" => {
            let ao = schema_object(Some(action), arg)?;
            schema_required(Some(action), arg, ao, &["metadata"])?;
            let md = schema_object(Some("metadata"), &ao["metadata"])?;
            let a = &mut w.aggregates[i];
            for (k, v) in md {
                match v {
                    Value::Null => {
                        a.metadata.remove(k);
                    }
                    Value::String(s) => {
                        a.metadata.insert(k.clone(), s.clone());
                    }
                    other => {
                        a.metadata.insert(k.clone(), other.to_string());
                    }
                }
            }
            a.availability_zone = a.metadata.get("availability_zone").cloned();
            a.updated = Some(now);
        }
        other => return Err(ApiError::bad(format!("There is no such action: {other}"))),
    }
    ok(json!({"aggregate": aggregate_view(&w.aggregates[i], ctx)}))
}

// -------------------------------------------------------------- migrations

fn migration_view(m: &Migration, ctx: &Ctx) -> Value {
    let mut v = json!({
        "id": m.id,
        "instance_uuid": m.instance_uuid,
        "source_compute": m.source_compute,
        "source_node": m.source_node,
        "dest_compute": m.dest_compute,
        "dest_node": m.dest_node,
        "dest_host": m.dest_host,
        "status": m.status,
        "created_at": fmt_nova(m.created),
        "updated_at": m.updated.map(fmt_nova),
        "old_instance_type_id": m.old_instance_type_id,
        "new_instance_type_id": m.new_instance_type_id,
    });
    if ctx.ge((2, 23)) {
        v["migration_type"] = json!(m.migration_type);
    }
    if ctx.ge((2, 59)) {
        v["uuid"] = json!(m.uuid);
    }
    if ctx.ge((2, 80)) {
        v["user_id"] = json!(m.user_id);
        v["project_id"] = json!(m.project_id);
    }
    v
}

fn migrations_list(w: &mut World, req: &Request, ctx: &Ctx) -> ApiResult<Response> {
    if ctx.ge((2, 59)) {
        let mut allowed = vec!["hidden", "host", "instance_uuid", "source_compute", "status", "migration_type", "limit", "marker", "changes-since"];
        if ctx.ge((2, 66)) {
            allowed.push("changes-before");
        }
        if ctx.ge((2, 80)) {
            allowed.extend(["user_id", "project_id"]);
        }
        check_query(req, &allowed)?;
    }
    require_admin(ctx, "os_compute_api:os-migrations:index")?;
    let q = |k: &str| req.query_get(k).filter(|v| !v.is_empty());
    let host = q("host");
    let source = q("source_compute");
    let status = q("status");
    let itype = q("instance_uuid");
    let mtype = q("migration_type");
    let paging = ctx.ge((2, 59));
    let changes_since = match q("changes-since").filter(|_| paging) {
        Some(cs) => Some(parse_iso(cs).ok_or_else(|| {
            ApiError::bad(format!("Invalid input for query parameters changes-since. Value: {cs}. '{cs}' is not a 'date-time'"))
        })?),
        None => None,
    };
    let changes_before = match q("changes-before").filter(|_| ctx.ge((2, 66))) {
        Some(cb) => Some(parse_iso(cb).ok_or_else(|| {
            ApiError::bad(format!("Invalid input for query parameters changes-before. Value: {cb}. '{cb}' is not a 'date-time'"))
        })?),
        None => None,
    };
    if let (Some(a), Some(b)) = (changes_since, changes_before) {
        if b < a {
            return Err(ApiError::bad("The value of changes-since must be less than or equal to changes-before."));
        }
    }
    let user = q("user_id").filter(|_| ctx.ge((2, 80)));
    let project = q("project_id").filter(|_| ctx.ge((2, 80)));
    let mut list: Vec<&Migration> = w
        .migrations
        .iter()
        .filter(|m| {
            host.is_none_or(|h| m.source_compute.as_deref() == Some(h) || m.dest_compute.as_deref() == Some(h))
                && source.is_none_or(|s| m.source_compute.as_deref() == Some(s))
                && status.is_none_or(|s| m.status == s)
                && itype.is_none_or(|i| m.instance_uuid == i)
                && mtype.is_none_or(|t| m.migration_type == t)
                && user.is_none_or(|u| m.user_id == u)
                && project.is_none_or(|p| m.project_id == p)
                && changes_since.is_none_or(|t| m.updated.unwrap_or(m.created) >= t)
                && changes_before.is_none_or(|t| m.updated.unwrap_or(m.created) <= t)
        })
        .collect();
    if paging {
        // created_at desc, id desc (migrations.py sort_keys).
        list.sort_by(|a, b| b.created.total_cmp(&a.created).then(b.id.cmp(&a.id)));
    }
    let mut limit = None;
    if paging {
        limit = parse_limit(req, w.cfg.max_limit)?;
        if let Some(mk) = q("marker") {
            let pos = list
                .iter()
                .position(|m| m.uuid == mk)
                .ok_or_else(|| ApiError::bad(format!("Marker {mk} could not be found.")))?;
            list.drain(..=pos);
        }
        let effective = limit.unwrap_or(w.cfg.max_limit);
        list.truncate(effective);
        limit = Some(effective);
    }
    let items: Vec<Value> = list.iter().map(|m| migration_view(m, ctx)).collect();
    let mut out = json!({"migrations": items});
    if let (Some(l), Some(last)) = (limit, list.last()) {
        if list.len() == l {
            out["migrations_links"] = json!([{"rel": "next", "href": next_link(ctx, "os-migrations", req, &last.uuid)}]);
        }
    }
    ok(out)
}

/// Used by the control API to dump servers in the Nova detail shape.
pub fn server_json_admin(w: &World, s: &Server, now: f64) -> Value {
    let ctx = Ctx {
        mv: w.cfg.max_microversion,
        project_id: String::new(),
        user_id: String::new(),
        is_admin: true,
        origin: String::new(),
        prefix: "/compute".into(),
        request_id: String::new(),
    };
    let mut v = server_view(&ViewEnv::new(w, now), &ctx, s, true);
    v["power_state_name"] = json!(match s.power_state {
        POWER_RUNNING => "running",
        POWER_SHUTDOWN => "shutdown",
        POWER_NOSTATE => "nostate",
        _ => "other",
    });
    v
}
