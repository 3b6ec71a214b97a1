//! Benchmark-shaped load: 1000 servers evacuated by 64 concurrent clients
//! with 50-200 ms injected latency. Ignored by default (it takes seconds);
//! run with `cargo test -p iha-testkit --release --test load -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use iha_testkit::{BulkSpec, FaultRule, FaultSet, Latency, Scenario, Simulator};
use serde_json::json;

#[test]
#[ignore]
fn thousand_evacuations_64_concurrent() {
    let mut s = Scenario::with_hosts(11);
    s.rebuild_delay_ms = 500;
    s.rebuild_jitter_ms = 500;
    let sim = Simulator::start(s).unwrap();
    let ids = sim.add_servers(BulkSpec { host: "compute-0".into(), count: 1000, ..Default::default() }).unwrap();
    sim.kill_host("compute-0");
    sim.set_faults(FaultSet {
        rules: vec![FaultRule { service: Some("nova".into()), latency: Some(Latency { uniform_ms: Some([50, 200]), ..Default::default() }), ..Default::default() }],
        ..Default::default()
    });
    let nova = sim.nova().mv("2.53");
    let t0 = Instant::now();
    let r = nova.get("/servers/detail?all_tenants=1&host=compute-0").unwrap();
    assert_eq!(r.json()["servers"].as_array().unwrap().len(), 1000);
    println!("list 1000 servers: {:?}", t0.elapsed());
    let queue = std::sync::Arc::new(std::sync::Mutex::new(ids));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let nova = nova.clone();
            let queue = queue.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                loop {
                    let Some(id) = queue.lock().unwrap().pop() else { return n };
                    let st = nova.post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap().status;
                    assert_eq!(st, 200);
                    // Poll the migration like an agent would.
                    loop {
                        let m = nova.get(&format!("/os-migrations?instance_uuid={id}&migration_type=evacuation")).unwrap().json();
                        if m["migrations"][0]["status"] == "done" {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    n += 1;
                }
            })
        })
        .collect();
    let done: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let elapsed = t0.elapsed();
    println!("1000 evacuations tracked to done with 64 workers: {elapsed:?}; log entries {}", sim.log().len());
    assert_eq!(done, 1000);
    assert!(sim.state().servers_on("compute-0").is_empty());
}

#[test]
#[ignore]
fn list_cost_without_latency() {
    let sim = Simulator::start(Scenario::with_hosts(2)).unwrap();
    sim.add_servers(BulkSpec { host: "compute-0".into(), count: 1000, ..Default::default() }).unwrap();
    let nova = sim.nova().mv("2.53");
    for _ in 0..3 {
        let t0 = Instant::now();
        let r = nova.get("/servers/detail?all_tenants=1&host=compute-0").unwrap();
        println!("list 1000 servers: {:?} ({} bytes)", t0.elapsed(), r.body.len());
    }
    let t0 = Instant::now();
    let _ = sim.state();
    println!("state dump: {:?}", t0.elapsed());
}

#[test]
#[ignore]
fn handler_cost_in_process() {
    for n in [100, 1000, 2000] {
        handler_cost(n);
    }
}

fn handler_cost(n: usize) {
    use iha_testkit::http::Request;
    let sim = Simulator::start(Scenario::with_hosts(2)).unwrap();
    sim.add_servers(BulkSpec { host: "compute-0".into(), count: n, ..Default::default() }).unwrap();
    let token = sim.admin_token();
    let req = Request {
        method: "GET".into(),
        target: "/compute/v2.1/servers/detail?all_tenants=1&host=compute-0".into(),
        path: "/compute/v2.1/servers/detail".into(),
        raw_query: "all_tenants=1&host=compute-0".into(),
        query: vec![("all_tenants".into(), "1".into()), ("host".into(), "compute-0".into())],
        headers: vec![("X-Auth-Token".into(), token), ("OpenStack-API-Version".into(), "compute 2.53".into())],
        body: vec![],
        scheme: "http",
    };
    for _ in 0..3 {
        let t0 = Instant::now();
        let r = sim.with_world(|w| {
            let now = w.now();
            iha_testkit::nova::handle(w, &req, now, "/compute").materialize()
        });
        println!("handler {n}: {:?} ({} bytes)", t0.elapsed(), r.body.len());
    }
}

#[test]
#[ignore]
fn view_cost() {
    let sim = Simulator::start(Scenario::with_hosts(2)).unwrap();
    sim.add_servers(BulkSpec { host: "compute-0".into(), count: 1000, ..Default::default() }).unwrap();
    sim.with_world(|w| {
        let now = w.now();
        let t0 = Instant::now();
        let v: Vec<serde_json::Value> = w.servers.values().map(|s| iha_testkit::nova::server_json_admin(w, s, now)).collect();
        println!("views: {:?}", t0.elapsed());
        let t0 = Instant::now();
        let b = serde_json::to_vec(&v).unwrap();
        println!("serialize: {:?} {}", t0.elapsed(), b.len());
        let t0 = Instant::now();
        drop(v);
        println!("drop: {:?}", t0.elapsed());
        let t0 = Instant::now();
        for _ in 0..1000 { let _ = w.now(); }
        println!("now x1000: {:?}", t0.elapsed());
    });
}
