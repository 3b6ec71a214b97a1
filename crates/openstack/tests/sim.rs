//! Every call against the Nova/Keystone/Glance simulator of `iha-testkit`.

mod support;

use std::time::Duration;

use iha_openstack::*;
use iha_testkit::{FaultAction, FaultRule, Scenario, SimHandle, Simulator, TlsConfig};
use support::{Logs, TempDir};

fn options(sim: &SimHandle, cache: &TempDir, logs: &Logs) -> ConnectionOptions {
    let p = AuthParams {
        auth_url: Some(sim.auth_url()),
        username: Some("admin".into()),
        password: Some("secret".into()),
        project_name: Some("admin".into()),
        user_domain_name: Some("Default".into()),
        project_domain_name: Some("Default".into()),
        interface: Some("internal".into()),
        region_name: Some("RegionOne".into()),
        ..Default::default()
    };
    let mut o = ConnectionOptions::from_params(p).unwrap();
    o.token_cache = TokenCacheMode::Dir(cache.path().to_path_buf());
    o.logger = LogSink::new(logs.logger());
    o.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
    };
    o
}

fn keystone_requests(sim: &SimHandle) -> usize {
    sim.log().iter().filter(|e| e.service == "keystone").count()
}

#[test]
fn fence_evacuate_and_recover_a_host() {
    let mut sc = Scenario::with_hosts(3);
    sc.add_servers("compute-0", "vm", 5);
    let sim = Simulator::start(sc).unwrap();
    let cache = TempDir::new("sim-flow");
    let logs = Logs::default();
    let nova = Client::new(ConnectionOptions {
        page_size: 2,
        ..options(&sim, &cache, &logs)
    });

    let q = ServiceQuery {
        binary: Some("nova-compute".into()),
        host: None,
    };
    let services = nova.list_services(&q).unwrap();
    assert_eq!(services.len(), 3);
    assert!(services.iter().all(|s| s.is_up() && s.id.contains('-')));

    sim.kill_host("compute-0");
    let victim = ServiceRef::compute("compute-0");
    nova.force_down(&victim, true).unwrap();
    nova.disable_service(&victim, Some("fenced by instance-ha"))
        .unwrap();
    let s = &nova
        .list_services(&ServiceQuery {
            host: Some("compute-0".into()),
            ..q.clone()
        })
        .unwrap()[0];
    assert_eq!(
        (s.state.as_deref(), s.status.as_str(), s.forced_down),
        (Some("down"), "disabled", Some(true))
    );
    assert_eq!(s.disabled_reason.as_deref(), Some("fenced by instance-ha"));

    let servers = nova.list_servers_on_host("compute-0").unwrap();
    assert_eq!(servers.len(), 5, "all pages");
    for s in &servers {
        let out = nova.evacuate(&s.id, &EvacuateRequest::default()).unwrap();
        assert_eq!(out.microversion, Microversion::new(2, 94));
    }
    let mq = MigrationQuery {
        source_compute: Some("compute-0".into()),
        migration_type: Some("evacuation".into()),
        ..Default::default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = nova.list_migrations(&mq).unwrap();
        if m.len() == 5 && m.iter().all(|m| m.status == "done") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "evacuations did not finish: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for s in &servers {
        let now = nova.get_server(&s.id).unwrap();
        assert_ne!(now.host.as_deref(), Some("compute-0"));
        assert_eq!(
            now.status, "ACTIVE",
            "pre-2.95 semantics keep the server running"
        );
    }
    // Nova refuses to un-force while `done` evacuations remain.
    let e = nova.force_down(&victim, false).unwrap_err();
    assert!(matches!(e, Error::BadRequest { .. }), "{e}");
    sim.start_host("compute-0");
    assert!(sim.wait_until(Duration::from_secs(10), |st| {
        st.migrations.iter().all(|m| m.status == "completed")
    }));
    nova.force_down(&victim, false).unwrap();
    nova.enable_service(&victim).unwrap();
    let s = &nova
        .list_services(&ServiceQuery {
            host: Some("compute-0".into()),
            ..q
        })
        .unwrap()[0];
    assert_eq!(s.status, "enabled");
    assert!(!logs.all().contains("secret"), "{}", logs.all());
}

#[test]
fn reads_and_server_actions() {
    let mut sc = Scenario::with_hosts(2);
    sc.add_servers("compute-1", "web", 2);
    let sim = Simulator::start(sc).unwrap();
    let cache = TempDir::new("sim-reads");
    let logs = Logs::default();
    let nova = Client::new(options(&sim, &cache, &logs));
    assert_eq!(nova.api_versions().unwrap().max, Microversion::new(2, 104));
    let hv = nova.list_hypervisors().unwrap();
    assert_eq!(hv.len(), 2);
    let flavors = nova.list_flavors().unwrap();
    assert!(flavors.iter().any(|f| f.name == "m1.tiny"));
    assert!(nova.flavor_extra_specs(&flavors[0].id).is_ok());
    let images = nova.list_images(&ImageQuery::default()).unwrap();
    assert!(images.iter().any(|i| i.name.as_deref() == Some("cirros")));
    nova.list_aggregates().unwrap();
    let s = &nova.list_servers_on_host("compute-1").unwrap()[0];
    assert!(s.flavor.original_name.is_some(), "embedded flavor at 2.47+");
    nova.server_metadata(&s.id).unwrap();
    nova.server_tags(&s.id).unwrap();
    nova.lock_server(&s.id, Some("instance-ha evacuation"))
        .unwrap();
    let locked = nova.get_server(&s.id).unwrap();
    assert_eq!(locked.locked, Some(true));
    assert_eq!(
        locked.locked_reason.as_deref(),
        Some("instance-ha evacuation")
    );
    nova.unlock_server(&s.id).unwrap();
    // os-instance-actions is not simulated yet; covered by tests/client.rs.
    let e = nova
        .get_server("00000000-0000-0000-0000-000000000000")
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

#[test]
fn warm_cache_makes_no_keystone_request() {
    let sim = Simulator::start(Scenario::with_hosts(1)).unwrap();
    let cache = TempDir::new("sim-cache");
    let logs = Logs::default();
    Client::new(options(&sim, &cache, &logs))
        .list_services(&ServiceQuery::default())
        .unwrap();
    assert_eq!(keystone_requests(&sim), 1);
    sim.clear_log();
    Client::new(options(&sim, &cache, &logs))
        .list_services(&ServiceQuery::default())
        .unwrap();
    assert_eq!(sim.log_lines().len(), 1, "{:?}", sim.log_lines());
    // Revoked tokens: one re-authentication, then success.
    sim.revoke_tokens();
    sim.clear_log();
    Client::new(options(&sim, &cache, &logs))
        .list_services(&ServiceQuery::default())
        .unwrap();
    assert_eq!(keystone_requests(&sim), 1, "{:?}", sim.log_lines());
}

#[test]
fn evacuate_reset_after_processing_is_outcome_unknown() {
    let mut sc = Scenario::with_hosts(2);
    sc.add_servers("compute-0", "vm", 1);
    let sim = Simulator::start(sc).unwrap();
    let cache = TempDir::new("sim-unknown");
    let logs = Logs::default();
    let nova = Client::new(options(&sim, &cache, &logs));
    sim.kill_host("compute-0");
    nova.force_down(&ServiceRef::compute("compute-0"), true)
        .unwrap();
    let id = nova.list_servers_on_host("compute-0").unwrap()[0]
        .id
        .clone();
    sim.add_fault(FaultRule {
        method: Some("POST".into()),
        path: Some("*/action".into()),
        action: Some(FaultAction::ResetAfter),
        times: Some(1),
        ..Default::default()
    });
    let e = nova.evacuate(&id, &EvacuateRequest::default()).unwrap_err();
    assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e}");
    let posts = sim
        .log_lines()
        .iter()
        .filter(|l| l.starts_with("POST") && l.ends_with("/action"))
        .count();
    assert_eq!(posts, 1, "never repeated");
    // The caller checks the state: the evacuation did happen.
    let m = nova
        .list_migrations(&MigrationQuery {
            instance_uuid: Some(id),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(m.len(), 1);
}

#[test]
fn legacy_microversions() {
    let mut sc = Scenario::with_hosts(2);
    sc.max_microversion = "2.40".into();
    sc.add_servers("compute-0", "vm", 1);
    let sim = Simulator::start(sc).unwrap();
    let cache = TempDir::new("sim-legacy");
    let logs = Logs::default();
    let nova = Client::new(options(&sim, &cache, &logs));
    sim.kill_host("compute-0");
    let victim = ServiceRef::compute("compute-0");
    nova.force_down(&victim, true).unwrap();
    nova.disable_service(&victim, Some("fenced")).unwrap();
    let lines = sim.log_lines();
    assert!(
        lines.iter().any(|l| l.ends_with("/os-services/force-down")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("/os-services/disable-log-reason")),
        "{lines:?}"
    );
    let s = &nova
        .list_services(&ServiceQuery {
            host: Some("compute-0".into()),
            ..Default::default()
        })
        .unwrap()[0];
    assert_eq!(s.forced_down, Some(true));
    let id = nova.list_servers_on_host("compute-0").unwrap()[0]
        .id
        .clone();
    let req = EvacuateRequest {
        host: Some("compute-1".into()),
        force: true,
        ..Default::default()
    };
    assert_eq!(
        nova.evacuate(&id, &req).unwrap().microversion,
        Microversion::new(2, 40)
    );
}

#[test]
fn images_aggregates_app_credentials_and_hangs() {
    let mut sc = Scenario::with_hosts(2);
    sc.images = Some(
        serde_json::from_value(serde_json::json!([
            {"id": "11111111-1111-1111-1111-111111111111", "name": "ha", "tags": ["evacuable"], "properties": {"evacuable": "true"}},
            {"id": "22222222-2222-2222-2222-222222222222", "name": "plain"}
        ]))
        .unwrap(),
    );
    sc.aggregates = serde_json::from_value(serde_json::json!([
        {"name": "ha-hosts", "hosts": ["compute-0"], "metadata": {"evacuable": "true"}}
    ]))
    .unwrap();
    sc.auth.app_credentials =
        serde_json::from_value(serde_json::json!([{"id": "ac1", "secret": "ac-secret"}])).unwrap();
    sc.add_servers("compute-0", "vm", 1);
    let sim = Simulator::start(sc).unwrap();
    let cache = TempDir::new("sim-misc");
    let p = AuthParams {
        auth_url: Some(sim.auth_url()),
        application_credential_id: Some("ac1".into()),
        application_credential_secret: Some("ac-secret".into()),
        interface: Some("internalURL".into()),
        ..Default::default()
    };
    let mut o = ConnectionOptions::from_params(p).unwrap();
    o.token_cache = TokenCacheMode::Dir(cache.path().to_path_buf());
    o.retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
    };
    let nova = Client::new(o);
    let tagged = nova
        .list_images(&ImageQuery {
            tags: vec!["evacuable".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0].property("evacuable").as_deref(), Some("true"));
    let aggs = nova.list_aggregates().unwrap();
    assert_eq!(aggs[0].hosts, ["compute-0"]);
    assert_eq!(aggs[0].metadata["evacuable"], "true");
    // A hung Nova: the deadline ends the call with a timeout.
    sim.add_fault(FaultRule {
        path: Some("*/os-aggregates".into()),
        action: Some(FaultAction::Hang),
        ..Default::default()
    });
    let t = std::time::Instant::now();
    let e = nova
        .with_deadline(Deadline::after(Duration::from_millis(400)))
        .list_aggregates()
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn stop_after_evacuation_is_opt_in_295() {
    let mut sc = Scenario::with_hosts(2);
    sc.add_servers("compute-0", "vm", 1);
    let sim = Simulator::start(sc).unwrap();
    let cache = TempDir::new("sim-295");
    let nova = Client::new(options(&sim, &cache, &Logs::default()));
    sim.kill_host("compute-0");
    nova.force_down(&ServiceRef::compute("compute-0"), true)
        .unwrap();
    let id = nova.list_servers_on_host("compute-0").unwrap()[0]
        .id
        .clone();
    let out = nova
        .evacuate(
            &id,
            &EvacuateRequest {
                stop_after: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(out.microversion, Microversion::new(2, 95));
    assert!(
        sim.wait_until(Duration::from_secs(10), |st| st.servers.iter().any(|s| s
            .id
            == id
            && s.host.as_deref() != Some("compute-0")
            && s.task_state.is_none()))
    );
    assert_eq!(nova.get_server(&id).unwrap().status, "SHUTOFF");
}

#[test]
fn a_new_simulator_on_the_same_port_with_a_lower_maximum() {
    // What the compat suite ran into: the cached session (token and range
    // 2.1–2.95) belongs to a simulator that is gone, and a new one listens
    // on its port offering up to 2.52. The stale token gets 401 (one
    // re-authentication), the stale microversion 406 (one rediscovery), and
    // the operation succeeds with the host call of 2.52.
    let cache = TempDir::new("sim-same-port");
    let logs = Logs::default();
    let mut sc = Scenario::with_hosts(2);
    sc.max_microversion = "2.95".into();
    let first = Simulator::start(sc).unwrap();
    Client::new(options(&first, &cache, &logs))
        .api_versions()
        .unwrap();
    let addr = first.addr().to_string();
    drop(first);
    let mut sc = Scenario::with_hosts(2);
    sc.max_microversion = "2.52".into();
    let second = Simulator::start_on(&addr, sc, TlsConfig::default()).unwrap();
    Client::new(options(&second, &cache, &logs))
        .force_down(&ServiceRef::compute("compute-0"), true)
        .unwrap();
    let nova: Vec<_> = second
        .log()
        .into_iter()
        .filter(|e| e.service == "nova")
        .map(|e| (e.method, e.path, e.microversion, e.status))
        .collect();
    let puts: Vec<_> = nova.iter().filter(|e| e.0 == "PUT").collect();
    assert_eq!(puts.len(), 1, "{nova:?}");
    assert!(
        puts[0].1.ends_with("/os-services/force-down")
            && puts[0].2.as_deref() == Some("2.52")
            && puts[0].3 == 200,
        "{nova:?}"
    );
    assert_eq!(nova.iter().filter(|e| e.3 == 401).count(), 1, "{nova:?}");
    assert_eq!(nova.iter().filter(|e| e.3 == 406).count(), 1, "{nova:?}");
    assert_eq!(keystone_requests(&second), 1);
    let s = second
        .state()
        .hosts
        .into_iter()
        .find(|h| h.name == "compute-0")
        .unwrap();
    assert!(s.forced_down);
}

#[test]
fn a_cold_read_assumes_the_range_and_nova_confirms_or_refuses_it() {
    // No range known (cold cache): a read goes out at once at the version we would choose
    // on any Nova offering 2.95, and Nova's answer confirms it; the first write discovers
    // the range, since a write is never sent on an assumption.
    let nova_log = |sim: &SimHandle| -> Vec<(String, String, Option<String>, u16)> {
        sim.log()
            .into_iter()
            .filter(|e| e.service == "nova")
            .map(|e| (e.method, e.path.split('?').next().unwrap_or_default().to_owned(), e.microversion, e.status))
            .collect()
    };
    let at = |m: &str, p: &str, v: Option<&str>, s: u16| (m.to_owned(), p.to_owned(), v.map(str::to_owned), s);
    let logs = Logs::default();

    let cache = TempDir::new("sim-assume");
    let mut sc = Scenario::with_hosts(2);
    sc.max_microversion = "2.100".into();
    let sim = Simulator::start(sc).unwrap();
    let c = Client::new(options(&sim, &cache, &logs));
    assert!(c.list_services(&ServiceQuery::default()).unwrap().iter().any(|s| s.host == "compute-0"));
    c.force_down(&ServiceRef::compute("compute-0"), true).unwrap();
    let log = nova_log(&sim);
    assert_eq!(log[0], at("GET", "/compute/v2.1/os-services", Some("2.95"), 200), "{log:?}");
    let discovery = log.iter().position(|e| e.1 == "/compute/v2.1/").expect("the write discovers");
    let put = log.iter().position(|e| e.0 == "PUT").unwrap();
    assert!(discovery > 0 && discovery < put, "{log:?}");

    // An older Nova refuses the assumed version (406, nothing done): the range is
    // discovered and the read made again at its maximum; no third attempt.
    let cache = TempDir::new("sim-assume-old");
    let mut sc = Scenario::with_hosts(2);
    sc.max_microversion = "2.60".into();
    let sim = Simulator::start(sc).unwrap();
    let c = Client::new(options(&sim, &cache, &logs));
    assert!(c.list_services(&ServiceQuery::default()).unwrap().iter().any(|s| s.host == "compute-0"));
    let log = nova_log(&sim);
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[0], at("GET", "/compute/v2.1/os-services", Some("2.95"), 406), "{log:?}");
    assert_eq!(log[2], at("GET", "/compute/v2.1/os-services", Some("2.60"), 200), "{log:?}");
    // The same process goes on with the discovered range: no assumption, no 406.
    c.list_hypervisors().unwrap();
    let log = nova_log(&sim);
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(log[3].2.as_deref(), Some("2.60"), "{log:?}");
}
