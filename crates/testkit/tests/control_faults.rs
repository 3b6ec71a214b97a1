//! The /sim/ control API over HTTP, fault injection at the socket level,
//! heartbeats, and concurrency.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use iha_testkit::client::{Api, request};
use iha_testkit::{FaultAction, FaultRule, FaultSet, Latency, Scenario, Simulator, StateDump};
use serde_json::json;

fn ctl(sim: &iha_testkit::SimHandle) -> Api {
    Api::new(&format!("{}/sim", sim.base_url()))
}

#[test]
fn control_api_round_trip() {
    let sim = Simulator::start(Scenario::with_hosts(2)).unwrap();
    let c = ctl(&sim);
    assert_eq!(c.get("/health").unwrap().json()["ok"], true);
    // Bulk servers.
    let r = c.post("/servers/bulk", &json!({"host": "compute-0", "count": 25, "name_prefix": "b"})).unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["ids"].as_array().unwrap().len(), 25);
    assert_eq!(c.post("/servers/bulk", &json!({"host": "nosuch", "count": 1})).unwrap().status, 400);
    // State dump parses into the typed form.
    let st: StateDump = serde_json::from_slice(&c.get("/state").unwrap().body).unwrap();
    assert_eq!(st.servers_on("compute-0").len(), 25);
    assert_eq!(st.host("compute-1").unwrap().state, "up");
    // Heartbeat of an unknown host registers a new nova-compute.
    let r = c.post("/hosts/compute-9/heartbeat", &json!({})).unwrap();
    assert_eq!(r.json()["registered"], true);
    assert_eq!(sim.state().host("compute-9").unwrap().heartbeat, "external");
    // Stop (stale) → down; start → up.
    assert_eq!(c.post("/hosts/compute-1/stop", &json!({"stale": true})).unwrap().status, 200);
    assert_eq!(sim.state().host("compute-1").unwrap().state, "down");
    assert_eq!(c.post("/hosts/compute-1/start", &json!({})).unwrap().status, 200);
    assert_eq!(sim.state().host("compute-1").unwrap().state, "up");
    assert_eq!(c.post("/hosts/nosuch/stop", &json!({})).unwrap().status, 404);
    // Log: only OpenStack requests, clearable.
    let nova = sim.nova();
    nova.get("/os-services").unwrap();
    let log = c.get("/log").unwrap().json();
    assert_eq!(log["entries"].as_array().unwrap().len(), 1);
    assert_eq!(log["entries"][0]["status"], 200);
    assert_eq!(c.delete("/log").unwrap().status, 204);
    assert!(sim.log().is_empty());
    // Faults replace.
    let r = c.post("/faults", &json!([{"service": "nova", "path": "*/os-services", "action": {"error": {"status": 503}}, "times": 1}])).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(nova.get("/os-services").unwrap().status, 503);
    assert_eq!(nova.get("/os-services").unwrap().status, 200);
    assert_eq!(c.get("/faults").unwrap().json()["rules"][0]["fired"], 1);
    assert_eq!(c.post("/faults", &json!({"bogus": 1})).unwrap().status, 400);
    // Config and clock.
    let r = c.post("/config", &json!({"rebuild_delay_ms": 5, "max_microversion": "2.60"})).unwrap();
    assert_eq!(r.json()["rebuild_delay_ms"], 5);
    assert_eq!(nova.clone().mv("2.61").get("/os-services").unwrap().status, 406);
    assert_eq!(c.post("/clock/advance", &json!({"seconds": 1000})).unwrap().status, 200);
    // Scenario reload.
    let r = c.post("/scenario", &json!({"hosts": [{"name": "x0"}], "rebuild_delay_ms": 1})).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(sim.state().hosts.len(), 1);
    assert_eq!(c.post("/scenario", &json!({"hosts": [{"name": "x0", "state": "weird"}]})).unwrap().status, 400);
}

#[test]
fn heartbeat_restart_semantics() {
    let mut s = Scenario::with_hosts(2);
    s.service_down_time_secs = 30.0;
    s.hosts[0].heartbeat = Some("external".into());
    s.add_servers("compute-0", "vm", 1);
    let sim = Simulator::start(s).unwrap();
    sim.freeze_clock();
    // An external host goes down once heartbeats stop.
    sim.advance_clock(Duration::from_secs(31));
    assert_eq!(sim.state().host("compute-0").unwrap().state, "down");
    assert_eq!(sim.state().host("compute-1").unwrap().state, "up", "auto host keeps reporting");
    // Evacuate (down by staleness, not forced).
    let id = sim.state().server("vm-0").unwrap().id.clone();
    let r = sim.nova().mv("2.53").post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap();
    assert_eq!(r.status, 200);
    sim.advance_clock(Duration::from_secs(1));
    assert_eq!(sim.state().migrations[0].status, "done");
    // A heartbeat after staleness counts as a nova-compute restart.
    assert!(sim.heartbeat("compute-0").unwrap());
    assert_eq!(sim.state().migrations[0].status, "completed");
    assert_eq!(sim.state().host("compute-0").unwrap().state, "up");
    // A fresh heartbeat is not a restart.
    sim.advance_clock(Duration::from_secs(5));
    assert!(!sim.heartbeat("compute-0").unwrap());
}

#[test]
fn latency_and_slow_keystone() {
    let sim = Simulator::start(Scenario::with_hosts(1)).unwrap();
    sim.set_faults(FaultSet {
        rules: vec![
            FaultRule { service: Some("keystone".into()), latency: Some(Latency { fixed_ms: Some(150), ..Default::default() }), ..Default::default() },
            FaultRule { service: Some("nova".into()), latency: Some(Latency { uniform_ms: Some([20, 40]), ..Default::default() }), ..Default::default() },
        ],
        ..Default::default()
    });
    let t0 = Instant::now();
    request("GET", &sim.auth_url(), &[], None, Duration::from_secs(5)).unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(150));
    let nova = sim.nova();
    let t0 = Instant::now();
    nova.get("/os-services").unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(20));
    assert!(sim.log().last().unwrap().faults.len() == 1);
}

#[test]
fn hang_and_reset() {
    let sim = Simulator::start(Scenario::with_hosts(1)).unwrap();
    let token = sim.admin_token();
    sim.add_fault(FaultRule { path: Some("*/os-hypervisors*".into()), action: Some(FaultAction::Hang), times: Some(1), ..Default::default() });
    sim.add_fault(FaultRule { path: Some("*/os-services".into()), action: Some(FaultAction::Reset), times: Some(1), ..Default::default() });
    let url = format!("{}/os-hypervisors", sim.compute_url());
    let t0 = Instant::now();
    let r = request("GET", &url, &[("X-Auth-Token", &token)], None, Duration::from_millis(300));
    assert!(r.is_err(), "hang must time out");
    assert!(t0.elapsed() >= Duration::from_millis(290));
    // Second time the one-shot rule is spent.
    assert_eq!(request("GET", &url, &[("X-Auth-Token", &token)], None, Duration::from_secs(5)).unwrap().status, 200);
    // Reset: the peer sees ECONNRESET (or an empty read), never a response.
    let mut s = TcpStream::connect(sim.addr()).unwrap();
    s.write_all(format!("GET /compute/v2.1/os-services HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n\r\n").as_bytes()).unwrap();
    let mut buf = Vec::new();
    let res = s.read_to_end(&mut buf);
    assert!(res.is_err() || buf.is_empty(), "got {:?}", String::from_utf8_lossy(&buf));
    let outcomes: Vec<String> = sim.log().iter().map(|e| e.outcome.clone()).collect();
    assert_eq!(outcomes, vec!["hang", "ok", "reset"]);
}

#[test]
fn reset_after_processing_changes_state() {
    let mut s = Scenario::with_hosts(2);
    s.add_servers("compute-0", "vm", 1);
    let sim = Simulator::start(s).unwrap();
    sim.freeze_clock();
    sim.kill_host("compute-0");
    sim.add_fault(FaultRule { body_contains: Some("evacuate".into()), action: Some(FaultAction::ResetAfter), times: Some(1), ..Default::default() });
    let id = sim.state().server("vm-0").unwrap().id.clone();
    let r = sim.nova().mv("2.53").post(&format!("/servers/{id}/action"), &json!({"evacuate": {}}));
    assert!(r.is_err() || r.unwrap().status == 0);
    // The evacuation happened even though the client never heard back.
    let st = sim.state();
    assert_eq!(st.migrations.len(), 1);
    assert_eq!(st.server("vm-0").unwrap().task_state.as_deref(), Some("rebuilding"));
    // Nova does not check task_state for evacuate: a blind retry is
    // accepted and starts a second evacuation.
    let r = sim.nova().mv("2.53").post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(sim.state().migrations.len(), 2);
}

#[test]
fn keep_alive_and_many_connections() {
    let sim = Simulator::start(Scenario::with_hosts(1)).unwrap();
    let token = sim.admin_token();
    // Several requests on one connection.
    let mut s = TcpStream::connect(sim.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..3 {
        s.write_all(format!("GET /compute/v2.1/os-services HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n\r\n").as_bytes()).unwrap();
        let mut buf = [0u8; 65536];
        let n = s.read(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("Connection: keep-alive"));
    }
    // Hundreds of concurrent connections.
    let conns: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(sim.addr()).unwrap()).collect();
    let handles: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let token = token.clone();
            std::thread::spawn(move || {
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                c.write_all(format!("GET /compute/v2.1/os-services HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: {token}\r\n\r\n").as_bytes()).unwrap();
                let mut out = Vec::new();
                c.read_to_end(&mut out).unwrap();
                String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200")
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
    // Garbage gets a 400, not a crash.
    let mut g = TcpStream::connect(sim.addr()).unwrap();
    g.write_all(b"NONSENSE\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = g.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 400"));
    let nova = sim.nova();
    assert_eq!(nova.post("/servers/x/action", &json!("not an object")).unwrap().status, 400);
    let r = nova.call("POST", "/os-aggregates", None).unwrap();
    assert_eq!(r.status, 400);
}

#[test]
fn parallel_evacuation_of_many_servers() {
    let mut s = Scenario::with_hosts(5);
    s.rebuild_delay_ms = 20;
    s.rebuild_jitter_ms = 20;
    let sim = Simulator::start(s).unwrap();
    let ids = sim.add_servers(iha_testkit::BulkSpec { host: "compute-0".into(), count: 400, ..Default::default() }).unwrap();
    sim.kill_host("compute-0");
    sim.set_faults(FaultSet {
        rules: vec![FaultRule { service: Some("nova".into()), latency: Some(Latency { uniform_ms: Some([1, 5]), ..Default::default() }), ..Default::default() }],
        ..Default::default()
    });
    let nova = sim.nova().mv("2.53");
    let chunks: Vec<Vec<String>> = ids.chunks(25).map(|c| c.to_vec()).collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let nova = nova.clone();
            std::thread::spawn(move || chunk.iter().all(|id| nova.post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap().status == 200))
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
    assert!(sim.wait_until(Duration::from_secs(10), |st| st.migrations.len() == 400 && st.migrations.iter().all(|m| m.status == "done")));
    let st = sim.state();
    assert!(st.servers_on("compute-0").is_empty());
    for h in 1..5 {
        let n = st.servers_on(&format!("compute-{h}")).len();
        assert!((90..=110).contains(&n), "spread: compute-{h} has {n}");
    }
}

#[test]
fn external_compute_silence_means_dead_before_nova_notices() {
    let mut s = Scenario::with_hosts(0);
    s.service_down_time_secs = 60.0;
    s.hosts = vec![
        iha_testkit::HostConfig { name: "src".into(), state: Some("down".into()), ..Default::default() },
        iha_testkit::HostConfig { name: "dst".into(), heartbeat: Some("external".into()), ..Default::default() },
    ];
    s.add_servers("src", "vm", 1);
    let sim = Simulator::start(s).unwrap();
    sim.freeze_clock();
    for _ in 0..3 {
        sim.advance_clock(Duration::from_secs(2));
        sim.heartbeat("dst").unwrap();
    }
    assert!(sim.state().host("dst").unwrap().running);
    // The stand-in stops reporting: after 2.5 periods it counts as dead,
    // while Nova still reports the service up for a minute.
    sim.advance_clock(Duration::from_secs(6));
    let st = sim.state();
    assert!(!st.host("dst").unwrap().running);
    assert_eq!(st.host("dst").unwrap().state, "up");
    let id = st.server("vm").map(|s| s.id.clone()).unwrap_or_else(|| st.servers[0].id.clone());
    assert_eq!(sim.nova().mv("2.53").post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap().status, 200);
    sim.advance_clock(Duration::from_secs(5));
    assert_eq!(sim.state().migrations[0].status, "accepted");
}
