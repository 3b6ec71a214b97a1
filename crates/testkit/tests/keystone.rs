//! Keystone v3: discovery, token methods, catalog, expiry faults.

use std::time::Duration;

use iha_testkit::client::{Api, request};
use iha_testkit::{Scenario, Simulator, TokenFaults};
use serde_json::{Value, json};

fn password_body(user: &str, pw: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": pw}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
}

#[test]
fn discovery_documents() {
    let sim = Simulator::start(Scenario::with_hosts(1)).unwrap();
    let r = request("GET", &format!("{}/identity", sim.base_url()), &[], None, Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, 300);
    assert_eq!(r.json()["versions"]["values"][0]["id"], "v3.14");
    let r = request("GET", &sim.auth_url(), &[], None, Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["version"]["status"], "stable");
    assert!(r.json()["version"]["links"][0]["href"].as_str().unwrap().ends_with("/identity/v3/"));
}

#[test]
fn password_token_and_catalog() {
    let sim = Simulator::start(Scenario::with_hosts(1)).unwrap();
    let ks = Api::new(&sim.auth_url());
    let r = ks.post("/auth/tokens", &password_body("admin", "secret")).unwrap();
    assert_eq!(r.status, 201);
    let token = r.header("x-subject-token").unwrap().to_string();
    let body = r.json();
    assert!(body["token"]["expires_at"].as_str().unwrap().ends_with('Z'));
    let catalog = body["token"]["catalog"].as_array().unwrap();
    let compute = catalog.iter().find(|s| s["type"] == "compute").unwrap();
    let eps = compute["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 6, "2 regions x 3 interfaces");
    let url = |region: &str, iface: &str| {
        eps.iter().find(|e| e["region_id"] == region && e["interface"] == iface).unwrap()["url"].as_str().unwrap().to_string()
    };
    assert!(url("RegionOne", "internal").ends_with("/compute/v2.1"));
    assert!(url("RegionOne", "public").ends_with("/public-compute/v2.1"));
    assert!(url("RegionTwo", "internal").ends_with("/r2-compute/v2.1"));
    assert!(catalog.iter().any(|s| s["type"] == "image"));
    // Every endpoint works and is told apart in the log.
    for e in eps {
        let api = Api::new(e["url"].as_str().unwrap()).with_token(&token);
        assert_eq!(api.get("/os-services").unwrap().status, 200);
    }
    let paths: Vec<String> = sim.log().iter().map(|e| e.path.clone()).collect();
    assert!(paths.iter().any(|p| p.starts_with("/r2-admin-compute/v2.1/os-services")));
    // The password is masked in the log.
    let auth = sim.log().into_iter().find(|e| e.path == "/identity/v3/auth/tokens").unwrap();
    assert!(!auth.body.unwrap().to_string().contains("secret"));
    // Validation.
    let r = request(
        "GET",
        &format!("{}/auth/tokens", sim.auth_url()),
        &[("X-Auth-Token", &token), ("X-Subject-Token", &token)],
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn wrong_password_and_unknown_user() {
    let sim = Simulator::start(Scenario::with_hosts(1)).unwrap();
    let ks = Api::new(&sim.auth_url());
    let r = ks.post("/auth/tokens", &password_body("admin", "nope")).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], 401);
    assert_eq!(ks.post("/auth/tokens", &password_body("ghost", "secret")).unwrap().status, 401);
    // Domain by id and user by id work too.
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "secret"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
    assert_eq!(ks.post("/auth/tokens", &body).unwrap().status, 201);
    let uid = iha_testkit::scenario::AuthConfig::default().user_id;
    let pid = iha_testkit::scenario::AuthConfig::default().project_id;
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": "secret"}}},
        "scope": {"project": {"id": pid}}}});
    assert_eq!(ks.post("/auth/tokens", &body).unwrap().status, 201);
    // Wrong project → 401.
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "secret"}}},
        "scope": {"project": {"name": "other", "domain": {"name": "Default"}}}}});
    assert_eq!(ks.post("/auth/tokens", &body).unwrap().status, 401);
}

#[test]
fn application_credential_and_token_methods() {
    let mut s = Scenario::with_hosts(1);
    s.auth.app_credentials.push(iha_testkit::scenario::AppCredential {
        id: "ac1".into(),
        name: Some("ha".into()),
        secret: "s3cr3t".into(),
        user: None,
    });
    let sim = Simulator::start(s).unwrap();
    let ks = Api::new(&sim.auth_url());
    let by_id = json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "ac1", "secret": "s3cr3t"}}}});
    let r = ks.post("/auth/tokens", &by_id).unwrap();
    assert_eq!(r.status, 201);
    assert!(r.json()["token"]["catalog"].is_array());
    let by_name = json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"name": "ha", "secret": "s3cr3t", "user": {"name": "admin", "domain": {"name": "Default"}}}}}});
    assert_eq!(ks.post("/auth/tokens", &by_name).unwrap().status, 201);
    let bad = json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "ac1", "secret": "x"}}}});
    assert_eq!(ks.post("/auth/tokens", &bad).unwrap().status, 401);
    let token = r.header("x-subject-token").unwrap();
    let rescope = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}});
    let r2 = ks.post("/auth/tokens", &rescope).unwrap();
    assert_eq!(r2.status, 201);
    assert_ne!(r2.header("x-subject-token").unwrap(), token);
    assert!(!sim.log().iter().any(|e| e.body.as_ref().is_some_and(|b| b.to_string().contains(token))));
}

#[test]
fn token_expiry_faults() {
    let mut s = Scenario::with_hosts(1);
    s.auth.token_lifetime_secs = 100.0;
    let sim = Simulator::start(s).unwrap();
    let nova = sim.nova();
    assert_eq!(nova.get("/os-services").unwrap().status, 200);
    // Lifetime on the simulated clock.
    sim.advance_clock(Duration::from_secs(101));
    let r = nova.get("/os-services").unwrap();
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    // Expire after N requests.
    sim.set_token_faults(TokenFaults { expire_after_requests: Some(2), ..Default::default() });
    let nova = sim.nova();
    assert_eq!(nova.get("/os-services").unwrap().status, 200);
    assert_eq!(nova.get("/os-services").unwrap().status, 200);
    assert_eq!(nova.get("/os-services").unwrap().status, 401);
    // Expire after N seconds (earlier than expires_at says).
    sim.set_token_faults(TokenFaults { expire_after_secs: Some(5.0), ..Default::default() });
    let nova = sim.nova();
    assert_eq!(nova.get("/os-services").unwrap().status, 200);
    sim.advance_clock(Duration::from_secs(6));
    assert_eq!(nova.get("/os-services").unwrap().status, 401);
    // No token at all.
    assert_eq!(Api::new(&sim.compute_url()).get("/os-services").unwrap().status, 401);
}

#[test]
fn non_admin_user_is_confined() {
    let mut s = Scenario::with_hosts(2);
    s.auth.users.push(iha_testkit::scenario::UserConfig {
        name: "demo".into(),
        id: None,
        password: "demo".into(),
        domain: "Default".into(),
        project: Some("demo".into()),
        admin: false,
    });
    s.add_servers("compute-0", "admin-vm", 1);
    let sim = Simulator::start(s).unwrap();
    let ks = Api::new(&sim.auth_url());
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "demo", "domain": {"name": "Default"}, "password": "demo"}}},
        "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}});
    let r = ks.post("/auth/tokens", &body).unwrap();
    assert_eq!(r.status, 201);
    let demo = Api::new(&sim.compute_url()).with_token(r.header("x-subject-token").unwrap()).mv("2.53");
    let r = demo.get("/os-services").unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["forbidden"]["message"], "Policy doesn't allow os_compute_api:os-services:list to be performed.");
    // all_tenants is ignored for non-admins: only the own project is listed.
    let r = demo.get("/servers/detail?all_tenants=1").unwrap().json();
    assert_eq!(r["servers"].as_array().unwrap().len(), 0);
    let id = sim.state().servers[0].id.clone();
    assert_eq!(demo.get(&format!("/servers/{id}")).unwrap().status, 404);
    // Scoping to the admin project is refused.
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "demo", "domain": {"name": "Default"}, "password": "demo"}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    assert_eq!(ks.post("/auth/tokens", &body).unwrap().status, 401);
    // Log filters.
    let c = Api::new(&format!("{}/sim", sim.base_url()));
    let r = c.get("/log?service=nova&path_contains=os-services").unwrap().json();
    assert_eq!(r["entries"].as_array().unwrap().len(), 1);
    let r = c.get("/log?method=POST").unwrap().json();
    assert_eq!(r["entries"].as_array().unwrap().len(), 2);
}

#[test]
fn names_need_domains() {
    let sim = Simulator::start(Scenario::with_hosts(1)).unwrap();
    let ks = Api::new(&sim.auth_url());
    let no_user_domain = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "secret"}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    assert_eq!(ks.post("/auth/tokens", &no_user_domain).unwrap().status, 400);
    let no_project_domain = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "secret"}}},
        "scope": {"project": {"name": "admin"}}}});
    assert_eq!(ks.post("/auth/tokens", &no_project_domain).unwrap().status, 400);
    // Unscoped: a token without catalog.
    let unscoped = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "secret"}}}}});
    let r = ks.post("/auth/tokens", &unscoped).unwrap();
    assert_eq!(r.status, 201);
    assert!(r.json()["token"].get("catalog").is_none());
    // System scope.
    let system = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "secret"}}},
        "scope": {"system": {"all": true}}}});
    let r = ks.post("/auth/tokens", &system).unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["token"]["system"]["all"], true);
}
