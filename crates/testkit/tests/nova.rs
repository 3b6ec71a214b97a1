//! Nova rules: microversions, os-services, evacuation life cycle,
//! migrations, paging, server actions.

use std::time::Duration;

use iha_testkit::client::Api;
use iha_testkit::{EvacuationFault, Scenario, SimHandle, Simulator};
use serde_json::{Value, json};

fn sim_with(n_hosts: usize, servers_on_0: usize) -> SimHandle {
    let mut s = Scenario::with_hosts(n_hosts);
    s.add_servers("compute-0", "vm", servers_on_0);
    Simulator::start(s).unwrap()
}

fn server_id(sim: &SimHandle, name: &str) -> String {
    sim.state().server(name).unwrap().id.clone()
}

fn service_uuid(sim: &SimHandle, host: &str) -> String {
    sim.state().host(host).unwrap().service_uuid.clone()
}

fn msg(v: &Value) -> String {
    v.as_object().and_then(|o| o.values().next()).and_then(|f| f["message"].as_str()).unwrap_or("").to_string()
}

#[test]
fn microversion_negotiation() {
    let sim = sim_with(1, 0);
    let nova = sim.nova();
    let r = nova.get("/os-services").unwrap();
    assert_eq!(r.header("openstack-api-version"), Some("compute 2.1"));
    assert!(r.json()["services"][0].get("forced_down").is_none());
    let r = nova.clone().mv("latest").get("/os-services").unwrap();
    assert_eq!(r.header("openstack-api-version"), Some("compute 2.104"));
    assert!(r.header("vary").unwrap().contains("OpenStack-API-Version"));
    let r = nova.clone().mv("2.200").get("/os-services").unwrap();
    assert_eq!(r.status, 406);
    assert_eq!(msg(&r.json()), "Version 2.200 is not supported by the API. Minimum is 2.1 and maximum is 2.104.");
    assert!(r.json().get("computeFault").is_some());
    assert_eq!(nova.clone().mv("2.x").get("/os-services").unwrap().status, 400);
    // Legacy header.
    let r = iha_testkit::client::request(
        "GET",
        &format!("{}/os-hypervisors/detail", sim.compute_url()),
        &[("X-Auth-Token", &sim.admin_token()), ("X-OpenStack-Nova-API-Version", "2.11")],
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-openstack-nova-api-version"), Some("2.11"));
    assert!(r.header("x-openstack-request-id").unwrap().starts_with("req-"));
    // A lower configured maximum rejects 2.11, as the reference's fallback test needs.
    sim.configure(iha_testkit::control::ConfigPatch { max_microversion: Some("2.10".into()), ..Default::default() }).unwrap();
    assert_eq!(nova.clone().mv("2.11").get("/os-hypervisors/detail").unwrap().status, 406);
    // Version documents.
    let r = Api::new(&sim.base_url()).get("/compute/").unwrap();
    assert_eq!(r.json()["versions"][1]["version"], "2.10");
    let r = Api::new(&sim.base_url()).get("/compute/v2.1").unwrap();
    assert_eq!(r.json()["version"]["min_version"], "2.1");
    // With the slash it is the API router: authenticated.
    assert_eq!(Api::new(&sim.base_url()).get("/compute/v2.1/").unwrap().status, 401);
    assert_eq!(nova.get("/").unwrap().json()["version"]["id"], "v2.1");
}

#[test]
fn legacy_211_fence_sequence() {
    let sim = sim_with(2, 0);
    let nova = sim.nova().mv("2.11");
    let host = json!({"host": "compute-0", "binary": "nova-compute"});
    let r = nova.put("/os-services/force-down", &json!({"host": "compute-0", "binary": "nova-compute", "forced_down": true})).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"service": {"host": "compute-0", "binary": "nova-compute", "forced_down": true}}));
    let r = nova.put("/os-services/disable", &host).unwrap();
    assert_eq!(r.json(), json!({"service": {"host": "compute-0", "binary": "nova-compute", "status": "disabled"}}));
    let r = nova.get("/os-services?host=compute-0&binary=nova-compute").unwrap();
    let svc = &r.json()["services"][0];
    assert_eq!(svc["state"], "down");
    assert_eq!(svc["status"], "disabled");
    assert_eq!(svc["forced_down"], true);
    assert!(svc["id"].is_u64());
    let r = nova.put("/os-services/disable-log-reason", &json!({"host": "compute-0", "binary": "nova-compute", "disabled_reason": "fenced"})).unwrap();
    assert_eq!(r.json()["service"]["disabled_reason"], "fenced");
    // Unfence.
    assert_eq!(nova.put("/os-services/force-down", &json!({"host": "compute-0", "binary": "nova-compute", "forced_down": false})).unwrap().status, 200);
    assert_eq!(nova.put("/os-services/enable", &host).unwrap().status, 200);
    let r = nova.get("/os-services?host=compute-0&binary=nova-compute").unwrap();
    assert_eq!(r.json()["services"][0]["state"], "up");
    // Errors.
    assert_eq!(nova.put("/os-services/enable", &json!({"host": "nosuch", "binary": "nova-compute"})).unwrap().status, 404);
    let r = nova.put("/os-services/disable", &json!({"host": "controller-0", "binary": "nova-scheduler"})).unwrap();
    assert_eq!(r.status, 400);
    assert!(msg(&r.json()).contains("Only nova-compute services can be updated"));
    assert_eq!(nova.put("/os-services/bogus", &host).unwrap().status, 404);
    let r = nova.put("/os-services/disable", &json!({"host": "compute-0"})).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(msg(&r.json()), "'binary' is a required property");
    // force-down does not exist before 2.11: the schema rejects forced_down.
    let r = sim.nova().mv("2.10").put("/os-services/force-down", &json!({"host": "compute-0", "binary": "nova-compute", "forced_down": true})).unwrap();
    assert_eq!(r.status, 400);
    // Filters.
    let r = nova.get("/os-services?binary=nova-compute").unwrap();
    assert_eq!(r.json()["services"].as_array().unwrap().len(), 2);
    assert_eq!(nova.get("/os-services").unwrap().json()["services"].as_array().unwrap().len(), 4);
    assert_eq!(nova.get("/os-services?host=a%2Cb&binary=nova-compute").unwrap().json()["services"], json!([]));
}

#[test]
fn services_253_uuid_rules() {
    let sim = sim_with(2, 0);
    let nova = sim.nova().mv("2.53");
    let list = nova.get("/os-services?binary=nova-compute").unwrap().json();
    let id = list["services"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(id, service_uuid(&sim, "compute-0"));
    let r = nova.put(&format!("/os-services/{id}"), &json!({"forced_down": true})).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["service"]["state"], "down");
    assert_eq!(r.json()["service"]["forced_down"], true);
    let r = nova.put(&format!("/os-services/{id}"), &json!({"status": "disabled", "disabled_reason": "fenced by test"})).unwrap();
    assert_eq!(r.json()["service"]["status"], "disabled");
    assert_eq!(r.json()["service"]["disabled_reason"], "fenced by test");
    let r = nova.put(&format!("/os-services/{id}"), &json!({"status": "enabled", "disabled_reason": "x"})).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(msg(&r.json()), "Specifying 'disabled_reason' with status 'enabled' is invalid.");
    let r = nova.put(&format!("/os-services/{id}"), &json!({})).unwrap();
    assert_eq!(r.status, 400);
    assert!(msg(&r.json()).starts_with("No updates were requested."));
    // The 2.11 action URLs are not UUIDs: 400 Invalid uuid.
    let r = nova.put("/os-services/force-down", &json!({"forced_down": true})).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(msg(&r.json()), "Invalid uuid force-down");
    let r = nova.put("/os-services/force-down", &json!({"host": "compute-0", "binary": "nova-compute", "forced_down": true})).unwrap();
    assert_eq!(r.status, 400, "host/binary are not allowed at 2.53");
    let r = nova.put("/os-services/00000000-0000-4000-8000-000000000000", &json!({"forced_down": true})).unwrap();
    assert_eq!(r.status, 404);
    let r = nova.put(&format!("/os-services/{id}"), &json!({"forced_down": "maybe"})).unwrap();
    assert_eq!(r.status, 400);
    // Non-compute service.
    let all = nova.get("/os-services").unwrap().json();
    let sched = all["services"].as_array().unwrap().iter().find(|s| s["binary"] == "nova-scheduler").unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(nova.put(&format!("/os-services/{sched}"), &json!({"status": "disabled"})).unwrap().status, 400);
}

/// Nova 34 checks the vm_state of a server it evacuates, not its task_state
/// (`check_instance_state(..., task_state=None)`): a server stuck in
/// `powering-off` on the dead host, or one already rebuilding, is accepted
/// (seen against real Nova 34: crates/openstack/tests/faithfulness.rs).
#[test]
fn evacuate_checks_vm_state_not_task_state() {
    let sim = sim_with(3, 2);
    let nova = sim.nova().mv("2.53");
    let (vm0, vm1) = (server_id(&sim, "vm-0"), server_id(&sim, "vm-1"));
    sim.freeze_clock();
    sim.stop_host("compute-0");
    // The stop goes to a dead nova-compute: stuck in powering-off.
    assert_eq!(nova.post(&format!("/servers/{vm1}/action"), &json!({"os-stop": null})).unwrap().status, 202);
    assert_eq!(sim.state().server("vm-1").unwrap().task_state.as_deref(), Some("powering-off"));
    let svc = service_uuid(&sim, "compute-0");
    assert_eq!(nova.put(&format!("/os-services/{svc}"), &json!({"forced_down": true})).unwrap().status, 200);
    let ev = |id: &str| nova.post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap();
    assert_eq!(ev(&vm1).status, 200, "powering-off is no obstacle");
    assert_eq!(ev(&vm0).status, 200);
    assert_eq!(sim.state().server("vm-0").unwrap().task_state.as_deref(), Some("rebuilding"));
    assert_eq!(ev(&vm0).status, 200, "a second evacuate while rebuilding is accepted too");
    let st = sim.state();
    assert_eq!(st.migrations.iter().filter(|m| m.instance_uuid == vm0).count(), 2);
}

#[test]
fn evacuation_lifecycle_253() {
    let sim = sim_with(3, 2);
    let nova = sim.nova().mv("2.53");
    let vm0 = server_id(&sim, "vm-0");
    let svc = service_uuid(&sim, "compute-0");
    sim.freeze_clock();
    // Source still up: 400 ComputeServiceInUse.
    let r = nova.post(&format!("/servers/{vm0}/action"), &json!({"evacuate": {}})).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"badRequest": {"code": 400, "message": "Compute service of compute-0 is still in use."}}));
    // Dead but not yet stale: still "up" for Nova.
    sim.stop_host("compute-0");
    assert_eq!(nova.post(&format!("/servers/{vm0}/action"), &json!({"evacuate": {}})).unwrap().status, 400);
    // Force down, then evacuate.
    assert_eq!(nova.put(&format!("/os-services/{svc}"), &json!({"forced_down": true})).unwrap().status, 200);
    let r = nova.post(&format!("/servers/{vm0}/action"), &json!({"evacuate": {}})).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty());
    let s = nova.get(&format!("/servers/{vm0}")).unwrap().json();
    assert_eq!(s["server"]["OS-EXT-STS:task_state"], "rebuilding");
    assert_eq!(s["server"]["status"], "REBUILD");
    let migs = nova.get("/os-migrations?migration_type=evacuation&source_compute=compute-0").unwrap().json();
    assert_eq!(migs["migrations"][0]["status"], "accepted");
    assert!(migs["migrations"][0].get("uuid").is_none(), "uuid only from 2.59");
    sim.advance_clock(Duration::from_millis(10));
    let st = sim.state();
    assert_eq!(st.migrations[0].status, "pre-migrating");
    assert!(st.migrations[0].dest_compute.is_some(), "the destination claim records itself");
    assert_eq!(st.server("vm-0").unwrap().host.as_deref(), Some("compute-0"));
    sim.advance_clock(Duration::from_millis(30));
    let st = sim.state();
    assert_eq!(st.server("vm-0").unwrap().task_state.as_deref(), Some("rebuild_spawning"));
    assert_eq!(st.server("vm-0").unwrap().host.as_deref(), Some("compute-0"), "moves only when done");
    sim.advance_clock(Duration::from_millis(30));
    assert!(sim.state().migrations.iter().all(|m| m.status == "done"));
    let s = nova.get(&format!("/servers/{vm0}")).unwrap().json();
    assert_eq!(s["server"]["status"], "ACTIVE");
    assert_eq!(s["server"]["OS-EXT-STS:task_state"], Value::Null);
    let dest = s["server"]["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string();
    assert_ne!(dest, "compute-0");
    let m = &nova.get("/os-migrations?migration_type=evacuation&source_compute=compute-0").unwrap().json()["migrations"][0];
    assert_eq!(m["dest_compute"], dest.as_str());
    assert_eq!(m["migration_type"], "evacuation");
    // Un-forcing is refused while `done` evacuations remain.
    let r = nova.put(&format!("/os-services/{svc}"), &json!({"forced_down": false})).unwrap();
    assert_eq!(r.status, 400);
    assert!(msg(&r.json()).starts_with("Unable to force up host compute-0 as `done` evacuation migration records remain associated with the host."));
    // Same with the 2.11 API.
    let r = sim.nova().mv("2.11").put("/os-services/force-down", &json!({"host": "compute-0", "binary": "nova-compute", "forced_down": false})).unwrap();
    assert_eq!(r.status, 400);
    // nova-compute restarts: done -> completed, local copies destroyed.
    assert_eq!(sim.state().host("compute-0").unwrap().stale_copies, vec![vm0.clone()]);
    sim.start_host("compute-0");
    let st = sim.state();
    assert!(st.migrations.iter().all(|m| m.status == "completed"));
    assert!(st.host("compute-0").unwrap().stale_copies.is_empty());
    assert_eq!(st.host("compute-0").unwrap().state, "down", "still forced down");
    let r = nova.put(&format!("/os-services/{svc}"), &json!({"forced_down": false})).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["service"]["state"], "up");
}

#[test]
fn a_server_deleted_while_evacuating_errors_its_migration_at_once() {
    // The world steps evacuations only when one is due (so a tick with a thousand in flight
    // costs nothing); a deletion must still be seen at the next tick, not at the next due step.
    let sim = sim_with(3, 2);
    let nova = sim.nova().mv("2.53");
    let (vm0, vm1) = (server_id(&sim, "vm-0"), server_id(&sim, "vm-1"));
    let svc = service_uuid(&sim, "compute-0");
    sim.freeze_clock();
    sim.stop_host("compute-0");
    assert_eq!(nova.put(&format!("/os-services/{svc}"), &json!({"forced_down": true})).unwrap().status, 200);
    for id in [&vm0, &vm1] {
        assert_eq!(nova.post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap().status, 200);
    }
    sim.advance_clock(Duration::from_millis(10));
    assert!(sim.state().migrations.iter().all(|m| m.status == "pre-migrating"));
    assert_eq!(nova.delete(&format!("/servers/{vm0}")).unwrap().status, 204);
    let st = sim.state();
    let status = |id: &str| st.migrations.iter().find(|m| m.instance_uuid == id).unwrap().status.clone();
    assert_eq!(status(&vm0), "error");
    assert_eq!(status(&vm1), "pre-migrating", "the other one is not due yet");
    sim.advance_clock(Duration::from_millis(60));
    let st = sim.state();
    assert_eq!(st.migrations.iter().find(|m| m.instance_uuid == vm1).unwrap().status, "done");
    assert_ne!(st.server("vm-1").unwrap().host.as_deref(), Some("compute-0"));
}

#[test]
fn evacuate_body_rules_per_microversion() {
    let sim = sim_with(3, 3);
    sim.kill_host("compute-0");
    let vm0 = server_id(&sim, "vm-0");
    let vm1 = server_id(&sim, "vm-1");
    let vm2 = server_id(&sim, "vm-2");
    let act = |mv: &str, id: &str, body: Value| sim.nova().mv(mv).post(&format!("/servers/{id}/action"), &body).unwrap();
    // < 2.14: onSharedStorage required.
    let r = act("2.11", &vm0, json!({"evacuate": {}}));
    assert_eq!(r.status, 400);
    assert_eq!(msg(&r.json()), "Invalid input for field/attribute evacuate. Value: {}. 'onSharedStorage' is a required property");
    let r = act("2.11", &vm0, json!({"evacuate": {"onSharedStorage": true, "adminPass": "x"}}));
    assert_eq!(r.status, 400);
    assert_eq!(msg(&r.json()), "admin password can't be changed on existing disk");
    // force only 2.29-2.67.
    assert_eq!(act("2.14", &vm0, json!({"evacuate": {"force": true}})).status, 400);
    assert_eq!(act("2.68", &vm0, json!({"evacuate": {"force": false}})).status, 400);
    let r = act("2.29", &vm0, json!({"evacuate": {"force": true}}));
    assert_eq!(msg(&r.json()), "Can't force to a non-provided destination");
    // Unknown and same target host.
    let r = act("2.53", &vm0, json!({"evacuate": {"host": "nosuch"}}));
    assert_eq!(r.status, 404);
    assert_eq!(msg(&r.json()), "Compute host nosuch not found.");
    let r = act("2.53", &vm0, json!({"evacuate": {"host": "compute-0"}}));
    assert_eq!(r.status, 400);
    assert_eq!(msg(&r.json()), "The target host can't be the same one.");
    // Unknown server.
    assert_eq!(act("2.53", "00000000-0000-0000-0000-000000000000", json!({"evacuate": {}})).status, 404);
    // Pre-2.14 with shared storage: 200 and adminPass null; without: a password.
    let r = act("2.11", &vm0, json!({"evacuate": {"onSharedStorage": true}}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"adminPass": null}));
    let r = act("2.11", &vm1, json!({"evacuate": {"onSharedStorage": false}}));
    assert!(r.json()["adminPass"].is_string());
    // Requested target host.
    let r = act("2.53", &vm2, json!({"evacuate": {"host": "compute-2"}}));
    assert_eq!(r.status, 200);
    assert!(sim.wait_until(Duration::from_secs(5), |st| st.migrations.iter().all(|m| m.status == "done")));
    assert_eq!(sim.state().server("vm-2").unwrap().host.as_deref(), Some("compute-2"));
}

#[test]
fn evacuated_state_by_microversion() {
    let mut s = Scenario::with_hosts(2);
    s.add_servers("compute-0", "vm", 4);
    s.servers[1].vm_state = "stopped".into();
    s.servers[2].vm_state = "error".into();
    s.servers[3].vm_state = "paused".into();
    let sim = Simulator::start(s).unwrap();
    sim.kill_host("compute-0");
    let ids: Vec<String> = (0..4).map(|i| server_id(&sim, &format!("vm-{i}"))).collect();
    let ev = |mv: &str, id: &str| sim.nova().mv(mv).post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap().status;
    assert_eq!(ev("2.95", &ids[0]), 200);
    assert_eq!(ev("2.53", &ids[1]), 200);
    assert_eq!(ev("2.95", &ids[2]), 200);
    assert_eq!(ev("2.53", &ids[3]), 409, "paused is not evacuable");
    assert!(sim.wait_until(Duration::from_secs(5), |st| st.migrations.iter().all(|m| m.status == "done")));
    let st = sim.state();
    assert_eq!(st.server("vm-0").unwrap().status, "SHUTOFF", "2.95+: stopped at destination");
    assert_eq!(st.server("vm-1").unwrap().status, "SHUTOFF");
    assert_eq!(st.server("vm-2").unwrap().status, "ACTIVE", "error comes back active, even at 2.95");
    assert_eq!(st.server("vm-3").unwrap().host.as_deref(), Some("compute-0"));
}

#[test]
fn no_valid_host_when_capacity_is_exhausted() {
    let mut s = Scenario::with_hosts(2);
    s.hosts[1].max_instances = Some(1);
    s.add_servers("compute-0", "vm", 2);
    let sim = Simulator::start(s).unwrap();
    sim.kill_host("compute-0");
    let nova = sim.nova().mv("2.59");
    for i in 0..2 {
        let id = server_id(&sim, &format!("vm-{i}"));
        assert_eq!(nova.post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap().status, 200);
    }
    assert!(sim.wait_until(Duration::from_secs(5), |st| st.migrations.iter().all(|m| m.status == "done" || m.status == "error")));
    let st = sim.state();
    assert_eq!(st.migrations.iter().filter(|m| m.status == "done").count(), 1);
    assert_eq!(st.migrations.iter().filter(|m| m.status == "error").count(), 1);
    let failed = st.servers.iter().find(|s| s.status == "ERROR").unwrap();
    assert_eq!(failed.host.as_deref(), Some("compute-0"));
    let v = nova.get(&format!("/servers/{}", failed.id)).unwrap().json();
    assert!(v["server"]["fault"]["message"].as_str().unwrap().starts_with("No valid host was found."));
    let m = nova.get("/os-migrations?status=error").unwrap().json();
    assert!(m["migrations"][0]["uuid"].is_string());
}

#[test]
fn one_shot_evacuation_faults() {
    let sim = sim_with(2, 1);
    sim.kill_host("compute-0");
    let id = server_id(&sim, "vm-0");
    sim.fail_evacuations(EvacuationFault { server: Some("vm-0".into()), host: None, times: 1, kind: "api_error".into(), status: Some(500), fired: 0 });
    sim.fail_evacuations(EvacuationFault { server: Some(id.clone()), host: None, times: 1, kind: "no_valid_host".into(), status: None, fired: 0 });
    let nova = sim.nova().mv("2.53");
    let ev = || nova.post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap().status;
    assert_eq!(ev(), 500);
    assert_eq!(ev(), 200);
    assert!(sim.wait_until(Duration::from_secs(5), |st| st.server("vm-0").unwrap().status == "ERROR"));
    // Retry after the failure (error is evacuable) succeeds.
    assert_eq!(ev(), 200);
    assert!(sim.wait_until(Duration::from_secs(5), |st| st.server("vm-0").unwrap().host.as_deref() == Some("compute-1")
        && st.server("vm-0").unwrap().status == "ACTIVE"));
}

#[test]
fn servers_detail_paging_and_views() {
    let mut s = Scenario::with_hosts(2);
    s.add_servers("compute-0", "vm", 5);
    s.add_servers("compute-1", "other", 2);
    s.servers[0].tags = vec!["ha".into()];
    s.servers[0].metadata.insert("evacuable".into(), "true".into());
    s.servers[1].image = Some(String::new());
    let sim = Simulator::start(s).unwrap();
    let nova = sim.nova().mv("2.53");
    let mut seen = Vec::new();
    let mut url = "/servers/detail?all_tenants=1&host=compute-0&limit=2".to_string();
    loop {
        let r = nova.get(&url).unwrap().json();
        seen.extend(r["servers"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()));
        match r["servers_links"][0]["href"].as_str() {
            Some(next) => {
                assert!(next.contains("marker="));
                url = next.to_string();
            }
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, vec!["vm-0", "vm-1", "vm-2", "vm-3", "vm-4"]);
    let all = nova.get("/servers/detail?all_tenants=1&host=compute-0").unwrap().json();
    let vm0 = all["servers"].as_array().unwrap().iter().find(|s| s["name"] == "vm-0").unwrap().clone();
    assert_eq!(vm0["flavor"]["original_name"], "m1.tiny");
    assert!(vm0["flavor"]["extra_specs"].is_object());
    assert_eq!(vm0["tags"], json!(["ha"]));
    assert_eq!(vm0["metadata"]["evacuable"], "true");
    assert_eq!(vm0["OS-EXT-STS:power_state"], 1);
    let vm1 = all["servers"].as_array().unwrap().iter().find(|s| s["name"] == "vm-1").unwrap().clone();
    assert_eq!(vm1["image"], "");
    // Pre-2.47 flavor is a link; pre-2.26 no tags.
    let old = sim.nova().mv("2.11").get("/servers/detail?all_tenants=1&host=compute-0").unwrap().json();
    assert_eq!(old["servers"][0]["flavor"]["id"], "1");
    assert!(old["servers"][0].get("tags").is_none());
    // Bad marker.
    assert_eq!(nova.get("/servers/detail?marker=nosuch").unwrap().status, 400);
    // Tag filter.
    let r = nova.get("/servers/detail?all_tenants=1&tags=ha").unwrap().json();
    assert_eq!(r["servers"].as_array().unwrap().len(), 1);
}

#[test]
fn server_actions_lock_stop_reset() {
    let sim = sim_with(2, 1);
    let id = server_id(&sim, "vm-0");
    let nova = sim.nova().mv("2.73");
    let act = |body: Value| nova.post(&format!("/servers/{id}/action"), &body).unwrap();
    assert_eq!(act(json!({"lock": {"locked_reason": "evacuating"}})).status, 202);
    let s = nova.get(&format!("/servers/{id}")).unwrap().json();
    assert_eq!(s["server"]["locked"], true);
    assert_eq!(s["server"]["locked_reason"], "evacuating");
    assert_eq!(act(json!({"unlock": null})).status, 202);
    assert_eq!(act(json!({"os-stop": null})).status, 202);
    assert_eq!(sim.state().server("vm-0").unwrap().status, "SHUTOFF");
    assert_eq!(act(json!({"os-stop": null})).status, 409);
    assert_eq!(act(json!({"os-start": null})).status, 202);
    assert_eq!(act(json!({"os-resetState": {"state": "error"}})).status, 202);
    assert_eq!(sim.state().server("vm-0").unwrap().status, "ERROR");
    assert_eq!(act(json!({"os-resetState": {"state": "bogus"}})).status, 400);
    assert_eq!(act(json!({"frobnicate": null})).status, 400);
    // Metadata and tags.
    let r = nova.put(&format!("/servers/{id}/tags/evacuable"), &json!(null)).unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(nova.get(&format!("/servers/{id}/tags")).unwrap().json(), json!({"tags": ["evacuable"]}));
    let r = nova.post(&format!("/servers/{id}/metadata"), &json!({"metadata": {"a": "b"}})).unwrap();
    assert_eq!(r.json(), json!({"metadata": {"a": "b"}}));
    assert_eq!(sim.nova().mv("2.25").get(&format!("/servers/{id}/tags")).unwrap().status, 404);
    // Delete.
    assert_eq!(nova.delete(&format!("/servers/{id}")).unwrap().status, 204);
    assert_eq!(nova.get(&format!("/servers/{id}")).unwrap().status, 404);
}

#[test]
fn boot_schedules_onto_up_enabled_hosts() {
    let mut s = Scenario::with_hosts(3);
    s.hosts[0].status = Some("disabled".into());
    s.hosts[1].state = Some("down".into());
    let sim = Simulator::start(s).unwrap();
    let nova = sim.nova().mv("2.53");
    let image = sim.state();
    let _ = image;
    let r = nova.post("/servers", &json!({"server": {"name": "a", "flavorRef": "1", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b", "networks": "none"}})).unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["server"]["id"].as_str().unwrap().to_string();
    assert!(sim.wait_until(Duration::from_secs(2), |st| st.server(&id).unwrap().status == "ACTIVE"));
    assert_eq!(sim.state().server(&id).unwrap().host.as_deref(), Some("compute-2"));
    // networks is required from 2.37.
    let r = nova.post("/servers", &json!({"server": {"name": "b", "flavorRef": "1", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"}})).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(nova.post("/servers", &json!({"server": {"name": "b", "flavorRef": "99", "imageRef": "x", "networks": "none"}})).unwrap().status, 400);
}

#[test]
fn flavors_aggregates_hypervisors() {
    let mut s = Scenario::with_hosts(2);
    let mut flavors = iha_testkit::scenario::default_flavors();
    flavors[0].extra_specs.insert("evacuable".into(), "true".into());
    flavors[2].is_public = false;
    s.flavors = Some(flavors);
    s.aggregates.push(iha_testkit::scenario::AggregateConfig {
        name: "ha".into(),
        availability_zone: None,
        hosts: vec!["compute-0".into()],
        metadata: [("evacuable".to_string(), "true".to_string())].into(),
    });
    let sim = Simulator::start(s).unwrap();
    let nova = sim.nova();
    assert_eq!(nova.get("/flavors/detail").unwrap().json()["flavors"].as_array().unwrap().len(), 2);
    let all = nova.get("/flavors/detail?is_public=None").unwrap().json();
    assert_eq!(all["flavors"].as_array().unwrap().len(), 3);
    assert_eq!(all["flavors"][0]["swap"], "");
    assert_eq!(nova.get("/flavors/1/os-extra_specs").unwrap().json(), json!({"extra_specs": {"evacuable": "true"}}));
    assert_eq!(nova.get("/flavors/99/os-extra_specs").unwrap().status, 404);
    let aggs = nova.get("/os-aggregates").unwrap().json();
    assert_eq!(aggs["aggregates"][0]["hosts"], json!(["compute-0"]));
    let r = nova.post("/os-aggregates/1/action", &json!({"add_host": {"host": "compute-1"}})).unwrap();
    assert_eq!(r.json()["aggregate"]["hosts"], json!(["compute-0", "compute-1"]));
    assert_eq!(nova.post("/os-aggregates/1/action", &json!({"add_host": {"host": "compute-1"}})).unwrap().status, 409);
    let h = nova.clone().mv("2.11").get("/os-hypervisors/detail").unwrap().json();
    assert_eq!(h["hypervisors"].as_array().unwrap().len(), 2);
    assert!(h["hypervisors"][0]["id"].is_u64());
    let h = nova.clone().mv("2.53").get("/os-hypervisors?hypervisor_hostname_pattern=compute-1&with_servers=true").unwrap().json();
    assert!(h["hypervisors"][0]["id"].is_string());
    assert_eq!(nova.clone().mv("2.53").get("/os-hypervisors?hypervisor_hostname_pattern=zzz").unwrap().status, 404);
}

#[test]
fn migrations_paging_259() {
    let sim = sim_with(3, 5);
    sim.kill_host("compute-0");
    let nova = sim.nova().mv("2.59");
    for s in sim.state().servers_on("compute-0") {
        assert_eq!(nova.post(&format!("/servers/{}/action", s.id), &json!({"evacuate": {}})).unwrap().status, 200);
    }
    let mut seen = 0;
    let mut url = "/os-migrations?migration_type=evacuation&limit=2".to_string();
    loop {
        let r = nova.get(&url).unwrap().json();
        seen += r["migrations"].as_array().unwrap().len();
        match r["migrations_links"][0]["href"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, 5);
    assert_eq!(nova.get("/os-migrations?marker=nosuch").unwrap().status, 400);
    let r = nova.get("/os-migrations?changes-since=2000-01-01T00:00:00Z").unwrap().json();
    assert_eq!(r["migrations"].as_array().unwrap().len(), 5);
    let r = nova.get("/os-migrations?changes-since=2999-01-01T00:00:00Z").unwrap().json();
    assert_eq!(r["migrations"].as_array().unwrap().len(), 0);
    assert_eq!(nova.get("/os-migrations?changes-since=yesterday").unwrap().status, 400);
}

#[test]
fn disable_before_force_down_waits_for_rpc_timeout() {
    let mut s = Scenario::with_hosts(2);
    s.rpc_timeout_ms = 300;
    let sim = Simulator::start(s).unwrap();
    sim.stop_host("compute-0"); // dead, but Nova still sees it up
    let nova = sim.nova().mv("2.11");
    let host = json!({"host": "compute-0", "binary": "nova-compute"});
    let t0 = std::time::Instant::now();
    assert_eq!(nova.put("/os-services/disable", &host).unwrap().status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(300), "synchronous RPC to a dead compute");
    assert_eq!(nova.put("/os-services/enable", &host).unwrap().status, 200);
    // Forced down first: no RPC, fast.
    nova.put("/os-services/force-down", &json!({"host": "compute-0", "binary": "nova-compute", "forced_down": true})).unwrap();
    let t0 = std::time::Instant::now();
    assert_eq!(nova.put("/os-services/disable", &host).unwrap().status, 200);
    assert!(t0.elapsed() < Duration::from_millis(250));
    // 2.53: status + forced_down in one call skips the RPC too.
    let svc = service_uuid(&sim, "compute-1");
    sim.stop_host("compute-1");
    let t0 = std::time::Instant::now();
    let r = sim.nova().mv("2.53").put(&format!("/os-services/{svc}"), &json!({"status": "disabled", "forced_down": true})).unwrap();
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() < Duration::from_millis(250));
}

#[test]
fn unknown_query_parameters() {
    let sim = sim_with(1, 0);
    let nova = sim.nova();
    assert_eq!(nova.clone().mv("2.74").get("/os-services?foo=1").unwrap().status, 200);
    let r = nova.clone().mv("2.75").get("/os-services?foo=1").unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(msg(&r.json()), "Additional properties are not allowed ('foo' was unexpected)");
    assert_eq!(nova.clone().mv("2.58").get("/os-migrations?foo=1").unwrap().status, 200);
    assert_eq!(nova.clone().mv("2.59").get("/os-migrations?foo=1").unwrap().status, 400);
    assert_eq!(nova.clone().mv("2.59").get("/os-migrations?user_id=x").unwrap().status, 400);
    assert_eq!(nova.clone().mv("2.80").get("/os-migrations?user_id=x").unwrap().status, 200);
}

#[test]
fn down_cell_records() {
    let sim = sim_with(2, 2);
    sim.set_cell_down("compute-0", true);
    let nova = sim.nova();
    let r = nova.clone().mv("2.69").get("/os-services?binary=nova-compute").unwrap().json();
    assert_eq!(r["services"][0], json!({"binary": "nova-compute", "host": "compute-0", "status": "UNKNOWN"}));
    let r = nova.clone().mv("2.68").get("/os-services?binary=nova-compute").unwrap().json();
    assert_eq!(r["services"].as_array().unwrap().len(), 1);
    let r = nova.clone().mv("2.69").get("/servers/detail?all_tenants=1").unwrap().json();
    assert!(r["servers"].as_array().unwrap().iter().all(|s| s["status"] == "UNKNOWN"));
    let r = nova.clone().mv("2.68").get("/servers/detail?all_tenants=1").unwrap().json();
    assert!(r["servers"].as_array().unwrap().is_empty());
}

#[test]
fn instance_actions_record_evacuations() {
    let mut s = Scenario::with_hosts(2);
    s.hosts[1].max_instances = Some(0);
    s.add_servers("compute-0", "vm", 1);
    let sim = Simulator::start(s).unwrap();
    sim.kill_host("compute-0");
    let id = server_id(&sim, "vm-0");
    let nova = sim.nova().mv("2.84");
    let r = nova.post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap();
    let req_id = r.header("x-openstack-request-id").unwrap().to_string();
    assert!(sim.wait_until(Duration::from_secs(5), |st| st.server("vm-0").unwrap().status == "ERROR"));
    let list = nova.get(&format!("/servers/{id}/os-instance-actions")).unwrap().json();
    assert_eq!(list["instanceActions"][0]["action"], "evacuate");
    assert_eq!(list["instanceActions"][0]["request_id"], req_id.as_str());
    assert_eq!(list["instanceActions"][0]["message"], "Error");
    let a = nova.get(&format!("/servers/{id}/os-instance-actions/{req_id}")).unwrap().json();
    let ev = &a["instanceAction"]["events"][0];
    assert_eq!(ev["event"], "conductor_rebuild_server");
    assert_eq!(ev["result"], "Error");
    assert!(ev["details"].as_str().unwrap().starts_with("No valid host"));
}

#[test]
fn marker_outside_filter_and_unscheduled_server() {
    let mut s = Scenario::with_hosts(2);
    s.add_servers("compute-0", "a", 3);
    s.add_servers("compute-1", "b", 3);
    s.add_servers("compute-0", "c", 3);
    let sim = Simulator::start(s).unwrap();
    let nova = sim.nova().mv("2.53");
    // Newest first: c-2..c-0, b-2..b-0, a-2..a-0. Marker b-1 (other host).
    let b1 = server_id(&sim, "b-1");
    let r = nova.get(&format!("/servers/detail?all_tenants=1&host=compute-0&marker={b1}")).unwrap().json();
    let names: Vec<&str> = r["servers"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["a-2", "a-1", "a-0"]);
    // A server that never got a host: no capacity anywhere.
    sim.with_world(|w| w.hosts.iter_mut().for_each(|h| h.max_instances = Some(0)));
    let r = nova.post("/servers", &json!({"server": {"name": "x", "flavorRef": "1", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b", "networks": "none"}})).unwrap();
    let id = r.json()["server"]["id"].as_str().unwrap().to_string();
    let v = nova.get(&format!("/servers/{id}")).unwrap().json();
    assert_eq!(v["server"]["status"], "ERROR");
    assert_eq!(v["server"]["OS-EXT-SRV-ATTR:host"], Value::Null);
    let r = nova.post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap();
    assert_eq!(r.status, 400, "instance.host == host (both None)");
    let r = nova.post(&format!("/servers/{id}/action"), &json!({"evacuate": {"host": "compute-1"}})).unwrap();
    assert_eq!(r.status, 500);
}

#[test]
fn source_restart_during_evacuation_leaves_done_behind() {
    let sim = sim_with(2, 1);
    sim.freeze_clock();
    sim.kill_host("compute-0");
    let id = server_id(&sim, "vm-0");
    let nova = sim.nova().mv("2.53");
    assert_eq!(nova.post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap().status, 200);
    // nova-compute on the source comes back while the rebuild runs.
    sim.start_host("compute-0");
    assert_eq!(sim.state().migrations[0].status, "completed");
    sim.advance_clock(Duration::from_secs(1));
    // The destination finishes and writes `done` over it.
    assert_eq!(sim.state().migrations[0].status, "done");
    let svc = service_uuid(&sim, "compute-0");
    nova.put(&format!("/os-services/{svc}"), &json!({"forced_down": true})).unwrap();
    assert_eq!(nova.put(&format!("/os-services/{svc}"), &json!({"forced_down": false})).unwrap().status, 400);
    sim.start_host("compute-0");
    assert_eq!(nova.put(&format!("/os-services/{svc}"), &json!({"forced_down": false})).unwrap().status, 200);
}

#[test]
fn evacuation_to_a_freshly_dead_host_hangs() {
    let mut s = Scenario::with_hosts(3);
    s.hosts[2].status = Some("disabled".into());
    s.add_servers("compute-0", "vm", 1);
    let sim = Simulator::start(s).unwrap();
    sim.freeze_clock();
    sim.kill_host("compute-0");
    sim.stop_host("compute-1"); // dead, but Nova still counts it up
    let id = server_id(&sim, "vm-0");
    let r = sim.nova().mv("2.53").post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap();
    assert_eq!(r.status, 200);
    sim.advance_clock(Duration::from_secs(5));
    let st = sim.state();
    assert_eq!(st.migrations[0].status, "accepted", "the cast to the dead destination is lost");
    assert_eq!(st.server("vm-0").unwrap().task_state.as_deref(), Some("rebuilding"));
    // It stays so even after the destination comes back.
    sim.start_host("compute-1");
    sim.advance_clock(Duration::from_secs(5));
    assert_eq!(sim.state().server("vm-0").unwrap().task_state.as_deref(), Some("rebuilding"));
    // os-resetState is the way out, then a new evacuation works.
    let nova = sim.nova().mv("2.53");
    assert_eq!(nova.post(&format!("/servers/{id}/action"), &json!({"os-resetState": {"state": "error"}})).unwrap().status, 202);
    assert_eq!(nova.post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap().status, 200);
    sim.advance_clock(Duration::from_secs(5));
    assert_eq!(sim.state().server("vm-0").unwrap().host.as_deref(), Some("compute-1"));
}

#[test]
fn conductor_reschedules_when_the_reserved_host_stops_qualifying() {
    let mut s = Scenario::with_hosts(3);
    s.schedule_delay_ms = 1000;
    s.add_servers("compute-0", "vm", 1);
    let sim = Simulator::start(s).unwrap();
    sim.freeze_clock();
    sim.kill_host("compute-0");
    let id = server_id(&sim, "vm-0");
    let nova = sim.nova().mv("2.53");
    assert_eq!(nova.post(&format!("/servers/{id}/action"), &json!({"evacuate": {}})).unwrap().status, 200);
    // The API reserved compute-1 (fewest instances, then name); disable it
    // before the conductor runs.
    let svc = service_uuid(&sim, "compute-1");
    nova.put(&format!("/os-services/{svc}"), &json!({"status": "disabled"})).unwrap();
    sim.advance_clock(Duration::from_secs(3));
    assert_eq!(sim.state().server("vm-0").unwrap().host.as_deref(), Some("compute-2"));
}

#[test]
fn requested_host_is_forced_before_229_and_scheduled_after() {
    let mut s = Scenario::with_hosts(3);
    s.hosts[2].status = Some("disabled".into());
    s.add_servers("compute-0", "vm", 2);
    let sim = Simulator::start(s).unwrap();
    sim.freeze_clock();
    sim.kill_host("compute-0");
    let (a, b) = (server_id(&sim, "vm-0"), server_id(&sim, "vm-1"));
    // 2.11: the host is used as is, even though it is disabled.
    let r = sim.nova().mv("2.11").post(&format!("/servers/{a}/action"), &json!({"evacuate": {"host": "compute-2", "onSharedStorage": false}})).unwrap();
    assert_eq!(r.status, 200);
    // 2.68: the scheduler validates it: disabled -> NoValidHost.
    let r = sim.nova().mv("2.68").post(&format!("/servers/{b}/action"), &json!({"evacuate": {"host": "compute-2"}})).unwrap();
    assert_eq!(r.status, 200);
    sim.advance_clock(Duration::from_secs(2));
    let st = sim.state();
    assert_eq!(st.server("vm-0").unwrap().host.as_deref(), Some("compute-2"));
    assert_eq!(st.server("vm-1").unwrap().status, "ERROR");
}

#[test]
fn forced_host_without_room_keeps_vm_state() {
    let mut s = Scenario::with_hosts(3);
    s.hosts[1].max_instances = Some(0);
    s.add_servers("compute-0", "vm", 1);
    let sim = Simulator::start(s).unwrap();
    sim.freeze_clock();
    sim.kill_host("compute-0");
    let id = server_id(&sim, "vm-0");
    let r = sim.nova().mv("2.29").post(&format!("/servers/{id}/action"), &json!({"evacuate": {"host": "compute-1", "force": true}})).unwrap();
    assert_eq!(r.status, 200);
    sim.advance_clock(Duration::from_secs(2));
    let st = sim.state();
    assert_eq!(st.migrations[0].status, "error");
    let vm = st.server("vm-0").unwrap();
    assert_eq!((vm.status.as_str(), vm.task_state.as_deref(), vm.host.as_deref()), ("ACTIVE", None, Some("compute-0")));
}

#[test]
fn pre_214_shared_storage_must_match() {
    let mut s = Scenario::with_hosts(2);
    s.shared_storage = Some(true);
    s.add_servers("compute-0", "vm", 2);
    let sim = Simulator::start(s).unwrap();
    sim.freeze_clock();
    sim.kill_host("compute-0");
    let (a, b) = (server_id(&sim, "vm-0"), server_id(&sim, "vm-1"));
    let nova = sim.nova().mv("2.11");
    assert_eq!(nova.post(&format!("/servers/{a}/action"), &json!({"evacuate": {"onSharedStorage": true}})).unwrap().status, 200);
    assert_eq!(nova.post(&format!("/servers/{b}/action"), &json!({"evacuate": {"onSharedStorage": false}})).unwrap().status, 200);
    sim.advance_clock(Duration::from_secs(2));
    let st = sim.state();
    assert_eq!(st.server("vm-0").unwrap().status, "ACTIVE");
    assert_eq!(st.server("vm-0").unwrap().host.as_deref(), Some("compute-1"));
    let vm1 = st.server("vm-1").unwrap();
    assert_eq!((vm1.status.as_str(), vm1.host.as_deref()), ("ERROR", Some("compute-0")));
    assert_eq!(vm1.fault.as_deref(), Some("Invalid state of instance files on shared storage"));
    assert!(st.migrations.iter().any(|m| m.instance_uuid == b && m.status == "failed"));
}
