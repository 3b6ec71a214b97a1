//! Keystone v3 under `/identity`: version discovery, token issue
//! (password, application_credential, token methods), validation and
//! revocation, and the service catalog.
//!
//! Shapes follow keystone's api-ref (`POST /v3/auth/tokens` → 201 with
//! `X-Subject-Token`; `GET /` → 300 with `versions.values`; `GET /v3` → 200
//! `version`). Errors use Keystone's `{"error": {"code", "message", "title"}}`.

use serde_json::{Value, json};

use crate::http::{Request, Response};
use crate::scenario::AuthConfig;
use crate::util::fmt_keystone;
use crate::world::{Token, World};

pub fn error(status: u16, title: &str, message: &str) -> Response {
    Response::json(status, &json!({"error": {"code": status, "message": message, "title": title}}))
}

pub fn unauthorized(origin: &str) -> Response {
    error(401, "Unauthorized", "The request you have made requires authentication.")
        .with_header("WWW-Authenticate", &format!("Keystone uri=\"{origin}/identity\""))
}

fn version_doc(origin: &str) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{origin}/identity/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
    })
}

/// Endpoints for one region/interface, as the catalog and the router agree.
pub fn endpoint_path(kind: &str, region_prefix: &str, interface: &str) -> String {
    match interface {
        "internal" => format!("/{region_prefix}{kind}"),
        other => format!("/{region_prefix}{other}-{kind}"),
    }
}

pub fn catalog(w: &World, origin: &str) -> Value {
    let mut services = Vec::new();
    // placement and network are listed like in a real catalog (clients must
    // pick by type); the simulator does not serve them (404).
    let kinds = [
        ("compute", "nova", "compute", "/v2.1"),
        ("image", "glance", "image", ""),
        ("identity", "keystone", "identity", "/v3"),
        ("placement", "placement", "placement", ""),
        ("network", "neutron", "network", ""),
    ];
    for (idx, (kind, name, path_kind, suffix)) in kinds.iter().enumerate() {
        let mut endpoints = Vec::new();
        for (ri, region) in w.scenario.regions.iter().enumerate() {
            for (ii, interface) in ["public", "internal", "admin"].iter().enumerate() {
                let url = if *kind == "identity" {
                    format!("{origin}/identity/v3")
                } else {
                    format!("{origin}{}{suffix}", endpoint_path(path_kind, &region.prefix, interface))
                };
                endpoints.push(json!({
                    "id": format!("{:02x}{:02x}{:02x}{}", idx, ri, ii, "e0e0e0e0e0e0e0e0e0e0e0e0e0"),
                    "interface": interface,
                    "region": region.name,
                    "region_id": region.name,
                    "url": url,
                }));
            }
        }
        services.push(json!({
            "id": format!("{:02x}{}", idx, "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"),
            "type": kind,
            "name": name,
            "endpoints": endpoints,
        }));
    }
    Value::Array(services)
}

fn token_body(w: &World, t: &Token, origin: &str) -> Value {
    let mut token = json!({
        "methods": t.methods,
        "user": {"id": t.user_id, "name": t.user_name, "domain": {"id": domain_id(&t.user_domain), "name": t.user_domain}, "password_expires_at": null},
        "audit_ids": [t.id.get(..22).unwrap_or(&t.id)],
        "expires_at": fmt_keystone(t.expires),
        "issued_at": fmt_keystone(t.issued),
        "roles": if t.is_admin { json!([{"id": "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0", "name": "admin"}, {"id": "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0", "name": "member"}, {"id": "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0", "name": "reader"}]) } else { json!([{"id": "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0", "name": "member"}, {"id": "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0", "name": "reader"}]) },
    });
    if let (Some(pid), Some(pname)) = (&t.project_id, &t.project_name) {
        let pd = t.project_domain.clone().unwrap_or_else(|| "Default".into());
        token["project"] = json!({"id": pid, "name": pname, "domain": {"id": domain_id(&pd), "name": pd}});
        token["is_domain"] = json!(false);
        token["catalog"] = catalog(w, origin);
    } else if t.system {
        token["system"] = json!({"all": true});
        token["catalog"] = catalog(w, origin);
    }
    json!({"token": token})
}

fn domain_id(name: &str) -> String {
    if name.eq_ignore_ascii_case("default") { "default".into() } else { name.to_ascii_lowercase() }
}

/// Does a `{"name": .., "id": ..}` domain reference match a domain name?
fn domain_matches(r: Option<&Value>, name: &str) -> bool {
    match r {
        None => true, // ids/names of users may be given without a domain
        Some(d) => {
            let by_name = d.get("name").and_then(Value::as_str);
            let by_id = d.get("id").and_then(Value::as_str);
            by_name.map(|n| n == name).unwrap_or(true) && by_id.map(|i| i == domain_id(name)).unwrap_or(true)
        }
    }
}

struct Principal {
    user_id: String,
    user_name: String,
    user_domain: String,
    /// Project the user may scope to (admin: any configured project).
    project: Option<(String, String, String)>,
    is_admin: bool,
}

fn admin_principal(a: &AuthConfig) -> Principal {
    Principal {
        user_id: a.user_id.clone(),
        user_name: a.username.clone(),
        user_domain: a.user_domain.clone(),
        project: Some((a.project_id.clone(), a.project.clone(), a.project_domain.clone())),
        is_admin: true,
    }
}

fn find_user(a: &AuthConfig, user: &Value) -> Option<(Principal, String)> {
    let name = user.get("name").and_then(Value::as_str);
    let id = user.get("id").and_then(Value::as_str);
    let domain = user.get("domain");
    if (name == Some(a.username.as_str()) && domain_matches(domain, &a.user_domain)) || id == Some(a.user_id.as_str()) {
        return Some((admin_principal(a), a.password.clone()));
    }
    for u in &a.users {
        let uid = u.id.clone().unwrap_or_else(|| format!("u-{}", u.name));
        if (name == Some(u.name.as_str()) && domain_matches(domain, &u.domain)) || id == Some(uid.as_str()) {
            let project = u.project.as_ref().map(|p| (format!("p-{p}"), p.clone(), u.domain.clone()));
            let project = if u.admin && project.is_none() { admin_principal(a).project } else { project };
            return Some((
                Principal { user_id: uid, user_name: u.name.clone(), user_domain: u.domain.clone(), project, is_admin: u.admin },
                u.password.clone(),
            ));
        }
    }
    None
}

enum Scope {
    None,
    System,
    Project { id: Option<String>, name: Option<String>, domain: Option<Value> },
}

fn parse_scope(auth: &Value) -> Result<Scope, Response> {
    let Some(scope) = auth.get("scope") else { return Ok(Scope::None) };
    if scope.get("system").is_some() {
        return Ok(Scope::System);
    }
    if let Some(p) = scope.get("project") {
        return Ok(Scope::Project {
            id: p.get("id").and_then(Value::as_str).map(String::from),
            name: p.get("name").and_then(Value::as_str).map(String::from),
            domain: p.get("domain").cloned(),
        });
    }
    if scope.get("domain").is_some() {
        return Ok(Scope::None);
    }
    Err(error(400, "Bad Request", "Invalid scope in the request."))
}

fn issue(w: &mut World, p: &Principal, scope: Scope, methods: Vec<String>, now: f64, origin: &str) -> Response {
    let (project, system) = match scope {
        Scope::None => (None, false),
        Scope::System => {
            if !p.is_admin {
                return error(401, "Unauthorized", "The request you have made requires authentication.");
            }
            (None, true)
        }
        Scope::Project { id, name, domain } => {
            let Some((pid, pname, pdom)) = &p.project else {
                return error(401, "Unauthorized", "The request you have made requires authentication.");
            };
            let ok = id.as_deref().map(|i| i == pid).unwrap_or(true)
                && name.as_deref().map(|n| n == pname).unwrap_or(true)
                && (id.is_some() || name.is_some())
                && (id.is_some() || domain_matches(domain.as_ref(), pdom));
            if !ok {
                return error(401, "Unauthorized", "The request you have made requires authentication.");
            }
            (Some((pid.clone(), pname.clone(), pdom.clone())), false)
        }
    };
    let id = format!("gAAAAA{}", w.rng.hex(90));
    let t = Token {
        id: id.clone(),
        user_id: p.user_id.clone(),
        user_name: p.user_name.clone(),
        user_domain: p.user_domain.clone(),
        project_id: project.as_ref().map(|p| p.0.clone()),
        project_name: project.as_ref().map(|p| p.1.clone()),
        project_domain: project.as_ref().map(|p| p.2.clone()),
        system,
        is_admin: p.is_admin,
        methods,
        issued: now,
        expires: now + w.scenario.auth.token_lifetime_secs,
        uses: 0,
        revoked: false,
    };
    let body = token_body(w, &t, origin);
    w.tokens.insert(id.clone(), t);
    Response::json(201, &body).with_header("X-Subject-Token", &id)
}

/// Is this token currently usable (for Nova/Glance)? Counts one use.
pub fn check_token(w: &mut World, token: &str, now: f64) -> Option<Token> {
    let tf = w.faults.token.clone();
    let t = w.tokens.get_mut(token)?;
    if t.revoked || now >= t.expires {
        return None;
    }
    if let Some(s) = tf.expire_after_secs {
        if now - t.issued >= s {
            return None;
        }
    }
    if let Some(n) = tf.expire_after_requests {
        if t.uses >= n {
            return None;
        }
    }
    t.uses += 1;
    Some(t.clone())
}

/// Token validity without counting a use (Keystone's own validation).
fn token_valid(w: &World, token: &str, now: f64) -> Option<Token> {
    let t = w.tokens.get(token)?;
    if t.revoked || now >= t.expires {
        return None;
    }
    if let Some(s) = w.faults.token.expire_after_secs {
        if now - t.issued >= s {
            return None;
        }
    }
    if let Some(n) = w.faults.token.expire_after_requests {
        if t.uses >= n {
            return None;
        }
    }
    Some(t.clone())
}

const CLIENT_ERROR: &str = "The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.";

/// Keystone needs a domain to resolve a user (or project) given by name.
fn names_need_domain(obj: &Value, what: &str) -> Option<Response> {
    let by_name = obj.get("name").is_some() && obj.get("id").is_none();
    (by_name && obj.get("domain").is_none())
        .then(|| error(400, "Bad Request", &format!("Expecting to find domain in {what}. {CLIENT_ERROR}")))
}

pub fn handle(w: &mut World, req: &Request, now: f64) -> Response {
    let origin = req.origin();
    let path = req.path.trim_end_matches('/');
    match (req.method.as_str(), path) {
        ("GET", "/identity") => Response::json(300, &json!({"versions": {"values": [version_doc(&origin)]}})),
        ("GET", "/identity/v3") => Response::json(200, &json!({"version": version_doc(&origin)})),
        ("POST", "/identity/v3/auth/tokens") => authenticate(w, req, now, &origin),
        ("GET" | "HEAD", "/identity/v3/auth/tokens") => {
            let Some(subject) = req.header("x-subject-token") else {
                return error(404, "Not Found", "Could not find token.");
            };
            if req.header("x-auth-token").and_then(|t| token_valid(w, t, now)).is_none() {
                return unauthorized(&origin);
            }
            match token_valid(w, subject, now) {
                Some(t) => Response::json(200, &token_body(w, &t, &origin)).with_header("X-Subject-Token", subject),
                None => error(404, "Not Found", &format!("Could not find token: {subject}.")),
            }
        }
        ("DELETE", "/identity/v3/auth/tokens") => {
            let Some(subject) = req.header("x-subject-token").map(String::from) else {
                return error(404, "Not Found", "Could not find token.");
            };
            match w.tokens.get_mut(&subject) {
                Some(t) if !t.revoked => {
                    t.revoked = true;
                    Response::new(204)
                }
                _ => error(404, "Not Found", &format!("Could not find token: {subject}.")),
            }
        }
        ("GET", "/identity/v3/auth/catalog") => match req.header("x-auth-token").and_then(|t| token_valid(w, t, now)) {
            Some(_) => Response::json(200, &json!({"catalog": catalog(w, &origin)})),
            None => unauthorized(&origin),
        },
        _ => error(404, "Not Found", "The resource could not be found."),
    }
}

fn authenticate(w: &mut World, req: &Request, now: f64, origin: &str) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return error(400, "Bad Request", "Expecting to find auth in request body. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.");
    };
    let Some(auth) = body.get("auth") else {
        return error(400, "Bad Request", "'auth' is a required property");
    };
    let Some(identity) = auth.get("identity") else {
        return error(400, "Bad Request", "'identity' is a required property");
    };
    let methods: Vec<String> = identity
        .get("methods")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    if methods.is_empty() {
        return error(400, "Bad Request", "'methods' is a required property");
    }
    let scope = match parse_scope(auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let a = w.scenario.auth.clone();
    let fail = || error(401, "Unauthorized", "The request you have made requires authentication.");
    match methods[0].as_str() {
        "password" => {
            let Some(user) = identity.get("password").and_then(|p| p.get("user")) else {
                return error(400, "Bad Request", "'user' is a required property");
            };
            if let Some(r) = names_need_domain(user, "user") {
                return r;
            }
            if let Scope::Project { id: None, name: Some(_), domain: None } = &scope {
                return error(400, "Bad Request", &format!("Expecting to find domain in project. {CLIENT_ERROR}"));
            }
            let password = user.get("password").and_then(Value::as_str).unwrap_or("");
            match find_user(&a, user) {
                Some((p, pw)) if pw == password => issue(w, &p, scope, methods, now, origin),
                _ => fail(),
            }
        }
        "application_credential" => {
            let Some(ac) = identity.get("application_credential") else {
                return error(400, "Bad Request", "'application_credential' is a required property");
            };
            let secret = ac.get("secret").and_then(Value::as_str).unwrap_or("");
            let id = ac.get("id").and_then(Value::as_str);
            let name = ac.get("name").and_then(Value::as_str);
            let found = a.app_credentials.iter().find(|c| {
                if let Some(id) = id {
                    return c.id == id;
                }
                let owner = c.user.clone().unwrap_or_else(|| a.username.clone());
                let user_ok = ac.get("user").is_some_and(|u| {
                    u.get("name").and_then(Value::as_str) == Some(owner.as_str())
                        || (owner == a.username && u.get("id").and_then(Value::as_str) == Some(a.user_id.as_str()))
                });
                name.is_some() && c.name.as_deref() == name && user_ok
            });
            match found {
                Some(c) if c.secret == secret => {
                    let owner = c.user.clone().unwrap_or_else(|| a.username.clone());
                    let p = find_user(&a, &json!({"name": owner})).map(|(p, _)| p).unwrap_or_else(|| admin_principal(&a));
                    // The credential carries its own project scope.
                    let scope = match &p.project {
                        Some((pid, _, _)) => Scope::Project { id: Some(pid.clone()), name: None, domain: None },
                        None => Scope::None,
                    };
                    issue(w, &p, scope, methods, now, origin)
                }
                _ => fail(),
            }
        }
        "token" => {
            let Some(old) = identity.get("token").and_then(|t| t.get("id")).and_then(Value::as_str) else {
                return error(400, "Bad Request", "'id' is a required property");
            };
            match token_valid(w, old, now) {
                Some(t) => {
                    let p = find_user(&a, &json!({"id": t.user_id}))
                        .map(|(p, _)| p)
                        .unwrap_or_else(|| admin_principal(&a));
                    let scope = match scope {
                        Scope::None => match (&t.project_id, t.system) {
                            (Some(pid), _) => Scope::Project { id: Some(pid.clone()), name: None, domain: None },
                            (None, true) => Scope::System,
                            _ => Scope::None,
                        },
                        s => s,
                    };
                    issue(w, &p, scope, methods, now, origin)
                }
                None => error(404, "Not Found", &format!("Could not find token: {old}.")),
            }
        }
        other => error(401, "Unauthorized", &format!("Attempted to authenticate with an unsupported method: {other}")),
    }
}
