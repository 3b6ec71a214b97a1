//! The simulator serves every request the Python reference agents made in
//! docs/reference-transcripts (fence_compute, fence_evacuate via
//! novaclient 18 / keystoneauth 5): the same paths, the legacy 2.11
//! microversion, requests without a microversion header, and Keystone
//! discovery on the auth URL.

use std::time::Duration;

use iha_testkit::client::request;
use iha_testkit::scenario::{FlavorConfig, HostConfig, ImageConfig, ServerConfig};
use iha_testkit::{Scenario, Simulator};
use serde_json::{Value, json};

fn reference_scenario() -> Scenario {
    let mut s = Scenario::with_hosts(0);
    // The evacuated servers must still be rebuilding when the test lists compute-0's servers
    // at the end: with the default 50 ms a loaded machine let srv-c finish and move away.
    s.rebuild_delay_ms = 600_000;
    s.hosts = vec![
        HostConfig { name: "compute-0.example.com".into(), state: Some("down".into()), ..Default::default() },
        HostConfig { name: "compute-1.example.com".into(), ..Default::default() },
    ];
    let flavor = |id: &str, evac: bool| FlavorConfig {
        id: id.into(),
        name: id.into(),
        vcpus: 1,
        ram: 512,
        disk: 1,
        ephemeral: 0,
        swap: 0,
        is_public: true,
        description: None,
        extra_specs: if evac { [("evacuable".to_string(), "true".to_string())].into() } else { Default::default() },
    };
    s.flavors = Some(vec![flavor("f-tagged", true), flavor("f-plain", false)]);
    s.images = Some(vec![
        ImageConfig { id: "img-tagged".into(), name: "tagged".into(), tags: vec!["evacuable".into()], properties: Default::default(), visibility: None },
        ImageConfig { id: "img-plain".into(), name: "plain".into(), tags: vec![], properties: Default::default(), visibility: None },
    ]);
    for (id, flavor, image) in [("srv-a", "f-tagged", "img-plain"), ("srv-b", "f-plain", "img-tagged"), ("srv-c", "f-plain", "")] {
        s.servers.push(ServerConfig {
            id: Some(id.into()),
            name: id.into(),
            host: Some("compute-0.example.com".into()),
            flavor: flavor.into(),
            image: Some(image.into()),
            vm_state: "active".into(),
            task_state: None,
            metadata: Default::default(),
            tags: vec![],
            locked: false,
            locked_reason: None,
            project_id: None,
        });
    }
    s
}

/// (method, path, microversion header, body, expected status)
type Call = (&'static str, &'static str, Option<&'static str>, Option<Value>, u16);

fn calls() -> Vec<Call> {
    let h0 = json!({"host": "compute-0.example.com", "binary": "nova-compute"});
    vec![
        ("GET", "/compute/v2.1/os-hypervisors/detail", Some("2.11"), None, 200),
        ("GET", "/compute/v2.1/os-hypervisors/detail", None, None, 200),
        ("GET", "/compute/v2.1/os-services?binary=nova-compute", Some("2.11"), None, 200),
        ("GET", "/compute/v2.1/os-services?binary=nova-compute", None, None, 200),
        ("GET", "/compute/v2.1/os-services?host=compute-0.example.com&binary=nova-compute", Some("2.11"), None, 200),
        ("GET", "/compute/v2.1/os-services?host=nosuch.example.com&binary=nova-compute", Some("2.11"), None, 200),
        ("GET", "/compute/v2.1/os-services?host=compute-0.example.com%2Ccompute-1.example.com&binary=nova-compute", Some("2.11"), None, 200),
        ("GET", "/public-compute/v2.1/os-hypervisors/detail", Some("2.11"), None, 200),
        ("GET", "/r2-compute/v2.1/os-services?binary=nova-compute", Some("2.11"), None, 200),
        ("PUT", "/compute/v2.1/os-services/force-down", Some("2.11"), Some(json!({"host": "compute-0.example.com", "binary": "nova-compute", "forced_down": true})), 200),
        ("PUT", "/compute/v2.1/os-services/disable", Some("2.11"), Some(h0.clone()), 200),
        ("PUT", "/public-compute/v2.1/os-services/disable", Some("2.11"), Some(h0.clone()), 200),
        // A short name is not a Nova host.
        ("PUT", "/compute/v2.1/os-services/disable", Some("2.11"), Some(json!({"host": "compute-0", "binary": "nova-compute"})), 404),
        ("GET", "/image/v2/images", Some("2.11"), None, 200),
        ("GET", "/compute/v2.1/flavors/detail?is_public=None", Some("2.11"), None, 200),
        ("GET", "/compute/v2.1/flavors/f-tagged/os-extra_specs", Some("2.11"), None, 200),
        ("GET", "/compute/v2.1/flavors/f-plain/os-extra_specs", Some("2.11"), None, 200),
        ("GET", "/compute/v2.1/servers/detail?all_tenants=1&host=compute-0.example.com", Some("2.11"), None, 200),
        ("POST", "/compute/v2.1/servers/srv-a/action", Some("2.11"), Some(json!({"evacuate": {"onSharedStorage": true}})), 200),
        ("POST", "/compute/v2.1/servers/srv-b/action", Some("2.11"), Some(json!({"evacuate": {"onSharedStorage": false}})), 200),
        // novaclient "2" (no header = 2.1) also evacuates with onSharedStorage.
        ("POST", "/compute/v2.1/servers/srv-c/action", None, Some(json!({"evacuate": {"onSharedStorage": false}})), 200),
        // Rebuilding now: Nova checks vm_state only, so a second round is accepted.
        ("POST", "/compute/v2.1/servers/srv-a/action", Some("2.11"), Some(json!({"evacuate": {"onSharedStorage": true}})), 200),
    ]
}

#[test]
fn reference_agent_requests_are_served() {
    let sim = Simulator::start(reference_scenario()).unwrap();
    let base = sim.base_url();
    let t = Duration::from_secs(5);
    // Keystone: discovery twice on the auth URL, then the password token.
    for _ in 0..2 {
        assert_eq!(request("GET", &sim.auth_url(), &[], None, t).unwrap().status, 200);
    }
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"password": "secret", "name": "admin", "domain": {"name": "Default"}}}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let bytes = serde_json::to_vec(&body).unwrap();
    let r = request("POST", &format!("{}/auth/tokens", sim.auth_url()), &[("Content-Type", "application/json")], Some(&bytes), t).unwrap();
    assert_eq!(r.status, 201);
    let token = r.header("x-subject-token").unwrap().to_string();
    for (method, path, mv, body, expected) in calls() {
        let mut headers = vec![("X-Auth-Token", token.as_str()), ("Accept", "application/json"), ("User-Agent", "python-novaclient")];
        if let Some(v) = mv {
            headers.push(("X-OpenStack-Nova-API-Version", v));
        }
        let bytes = body.as_ref().map(|b| serde_json::to_vec(b).unwrap());
        if bytes.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let r = request(method, &format!("{base}{path}"), &headers, bytes.as_deref(), t).unwrap();
        assert_eq!(r.status, expected, "{method} {path} [mv {mv:?}]: {}", r.text());
    }
    // Shapes the agents read.
    let st = sim.state();
    let h0 = st.host("compute-0.example.com").unwrap();
    assert_eq!((h0.state.as_str(), h0.status.as_str(), h0.forced_down), ("down", "disabled", true));
    let log = sim.log();
    assert_eq!(log.iter().filter(|e| e.microversion.as_deref() == Some("2.11")).count(), calls().iter().filter(|c| c.2.is_some()).count());
    assert!(log.iter().any(|e| e.path == "/r2-compute/v2.1/os-services?binary=nova-compute"));
    // Glance lists tags; extra specs are strings.
    let nova = sim.nova().mv("2.11");
    let images = iha_testkit::client::Api::new(&sim.image_url()).with_token(&token).get("/v2/images").unwrap().json();
    assert_eq!(images["images"].as_array().unwrap().len(), 2);
    let tagged = iha_testkit::client::Api::new(&sim.image_url()).with_token(&token).get("/v2/images?tag=evacuable").unwrap().json();
    assert_eq!(tagged["images"][0]["id"], "img-tagged");
    let servers = nova.get("/servers/detail?all_tenants=1&host=compute-0.example.com").unwrap().json();
    let c = servers["servers"].as_array().unwrap().iter().find(|s| s["id"] == "srv-c").unwrap().clone();
    assert_eq!(c["image"], "");
    assert_eq!(c["flavor"]["id"], "f-plain");
}

#[test]
fn status_mapping_inputs() {
    // fence_compute maps state/status of the first service; the simulator
    // must present every combination.
    let mut s = reference_scenario();
    s.hosts.push(HostConfig { name: "compute-2.example.com".into(), status: Some("disabled".into()), ..Default::default() });
    let sim = Simulator::start(s).unwrap();
    let nova = sim.nova().mv("2.11");
    let r = nova.get("/os-services?binary=nova-compute").unwrap().json();
    let got: Vec<(String, String)> = r["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["state"].as_str().unwrap().to_string(), s["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(got, vec![("down".into(), "enabled".into()), ("up".into(), "enabled".into()), ("up".into(), "disabled".into())]);
}
