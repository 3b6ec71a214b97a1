//! The evacuation gate against the Nova simulator (real HTTP client, Nova's 400 on un-forcing
//! with `done` evacuations) and an in-memory attrd, with a clock that never really sleeps.

use iha_agent_nova_compute_wait::gate::{self, GateState, Settings, View};
use iha_core::naming::{self, LocalHost, LocalSource};
use iha_core::unfence::Clock;
use iha_ocf::Status;
use iha_openstack::{AuthParams, Client, ComputeApi, ConnectionOptions, Secret, ServiceQuery, TokenCacheMode};
use iha_pacemaker::fake::FakeCluster;
use iha_pacemaker::{Cluster, EVACUATE_ATTR};
use iha_testkit::world::Migration;
use iha_testkit::{HostConfig, Scenario, SimHandle, Simulator};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A clock whose sleeps pass at once and run a hook (the world changing meanwhile).
struct TestClock<'a> {
    now: Mutex<Instant>,
    sleeps: Mutex<Vec<Duration>>,
    hook: Box<dyn Fn(usize) + Send + Sync + 'a>,
}

impl<'a> TestClock<'a> {
    fn new(hook: impl Fn(usize) + Send + Sync + 'a) -> Self {
        TestClock { now: Mutex::new(Instant::now()), sleeps: Mutex::new(Vec::new()), hook: Box::new(hook) }
    }
    fn slept(&self) -> Duration {
        self.sleeps.lock().unwrap().iter().sum()
    }
    fn count(&self) -> usize {
        self.sleeps.lock().unwrap().len()
    }
}

impl Clock for TestClock<'_> {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap()
    }
    fn sleep(&self, d: Duration) {
        *self.now.lock().unwrap() += d;
        let n = {
            let mut s = self.sleeps.lock().unwrap();
            s.push(d);
            s.len()
        };
        (self.hook)(n);
    }
}

const HOST: &str = "compute-0.localdomain";

/// A cloud with HOST as fence_compute leaves it (forced down, disabled by us) and a healthy host.
fn sim() -> SimHandle {
    let mut s = Scenario::with_hosts(0);
    s.hosts.push(HostConfig {
        name: HOST.into(),
        state: Some("down".into()),
        status: Some("disabled".into()),
        forced_down: true,
        disabled_reason: Some("instance-ha: fenced by fence_compute".into()),
        ..HostConfig::default()
    });
    s.hosts.push(HostConfig { name: "compute-1.localdomain".into(), ..HostConfig::default() });
    // The evacuated instance, now on compute-1 (Nova completes an evacuation record only for
    // an instance that exists).
    s.add_servers("compute-1.localdomain", "vm", 1);
    Simulator::start(s).unwrap()
}

fn client(sim: &SimHandle) -> Client {
    let p = AuthParams {
        auth_url: Some(sim.auth_url()),
        username: Some("admin".into()),
        password: Some(Secret::from("secret")),
        project_name: Some("admin".into()),
        ..AuthParams::default()
    };
    let mut opts = ConnectionOptions::from_params(p).unwrap();
    opts.token_cache = TokenCacheMode::Disabled;
    Client::new(opts)
}

fn settings(delay: u64, timeout: Option<u64>) -> Settings {
    Settings {
        nova_conf: "/nonexistent/nova.conf".into(),
        nova_conf_given: false,
        domain: Some("localdomain".into()),
        evacuation_delay: Duration::from_secs(delay),
        evacuation_timeout: timeout.map(Duration::from_secs),
    }
}

fn evacuation(sim: &SimHandle, id: u64, status: &str) {
    let instance = sim.state().servers.first().map(|s| s.id.clone()).unwrap_or_default();
    sim.with_world(|w| {
        w.migrations.push(Migration {
            id,
            uuid: format!("00000000-0000-4000-8000-{id:012}"),
            instance_uuid: instance,
            source_compute: Some(HOST.into()),
            source_node: Some(HOST.into()),
            dest_compute: Some("compute-1.localdomain".into()),
            dest_node: Some("compute-1.localdomain".into()),
            dest_host: None,
            status: status.into(),
            migration_type: "evacuation".into(),
            created: w.now(),
            updated: None,
            old_instance_type_id: 1,
            new_instance_type_id: 1,
            user_id: "u".into(),
            project_id: "p".into(),
            plan: None,
        })
    });
}

fn set_migrations(sim: &SimHandle, status: &str) {
    sim.with_world(|w| w.migrations.iter_mut().for_each(|m| m.status = status.into()));
}

fn service(nova: &Client, host: &str) -> iha_openstack::Service {
    let q = ServiceQuery { binary: Some("nova-compute".into()), host: Some(host.into()) };
    nova.list_services(&q).unwrap().into_iter().next().unwrap()
}

fn nova_requests(sim: &SimHandle) -> Vec<String> {
    sim.log_lines().into_iter().filter(|l| !l.contains("/identity")).collect()
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

#[test]
fn a_never_fenced_host_opens_at_once_without_asking_nova() {
    let sim = sim();
    let nova = client(&sim);
    let cluster = FakeCluster::new("compute-0");
    let clock = TestClock::new(|_| {});
    sim.clear_log();
    let o = gate::open(&cluster, Some(&nova), &clock, HOST, &settings(120, None), far()).unwrap();
    assert_eq!(o, gate::Opened { initial: None, waited: false, unforce_pending: false });
    assert_eq!(clock.count(), 0);
    assert!(nova_requests(&sim).is_empty(), "{:?}", nova_requests(&sim));
    assert!(cluster.writes().is_empty(), "the gate never writes the attribute");
}

/// O22: an empty attribute does not block forever, and `no` does not cost 120 s per start.
#[test]
fn o22_settled_values_open_without_waiting_or_sleeping() {
    for value in ["", "no"] {
        let sim = sim();
        let nova = client(&sim);
        let cluster = FakeCluster::new("compute-0");
        cluster.set(EVACUATE_ATTR, HOST, value);
        let clock = TestClock::new(|_| {});
        let o = gate::open(&cluster, Some(&nova), &clock, HOST, &settings(120, None), far()).unwrap();
        assert!(!o.waited, "{value:?}");
        assert_eq!(clock.slept(), Duration::ZERO, "{value:?}: no evacuation in flight, no pause");
        assert!(!o.unforce_pending);
        let s = service(&nova, HOST);
        assert_eq!((s.status.as_str(), s.forced_down), ("enabled", Some(false)), "{value:?}");
    }
}

#[test]
fn waits_for_the_evacuation_then_for_rebuilds_in_flight_then_leaves_unforcing_for_later() {
    let sim = sim();
    let nova = client(&sim);
    let cluster = FakeCluster::new("compute-0");
    cluster.set(EVACUATE_ATTR, HOST, "ctl0@1795285850");
    evacuation(&sim, 1, "accepted");
    // NovaEvacuate marks the host done after 3 polls; the rebuild finishes 2 polls later.
    let clock = TestClock::new(|n| {
        if n == 3 {
            cluster.set(EVACUATE_ATTR, HOST, "no");
        }
        if n == 5 {
            set_migrations(&sim, "done");
        }
    });
    let o = gate::open(&cluster, Some(&nova), &clock, HOST, &settings(120, None), far()).unwrap();
    assert!(o.waited);
    assert_eq!(o.initial.as_deref(), Some("ctl0@1795285850"));
    assert_eq!(clock.count(), 5, "3 polls of attrd, 2 of Nova's migrations");
    // Nova refuses un-forcing while the `done` record remains: enabled, still forced down,
    // and the start does not fail for it.
    assert!(o.unforce_pending);
    let s = service(&nova, HOST);
    assert_eq!((s.status.as_str(), s.forced_down), ("enabled", Some(true)));
    // Once nova-compute has started (the record becomes `completed`), the monitor clears it.
    let w = gate::watch(&cluster, Some(&nova), HOST, true, far()).unwrap();
    assert_eq!(w, gate::Watched { view: View::ForcedDown, unforce_pending: true });
    sim.start_host(HOST);
    let w = gate::watch(&cluster, Some(&nova), HOST, true, far()).unwrap();
    assert!(!w.unforce_pending);
    assert_eq!(service(&nova, HOST).forced_down, Some(false));
    assert_eq!(w.view, View::Up);
}

#[test]
fn evacuation_delay_bounds_the_pause_and_zero_disables_it() {
    let sim = sim();
    let nova = client(&sim);
    let cluster = FakeCluster::new("compute-0");
    cluster.set(EVACUATE_ATTR, HOST, "no");
    evacuation(&sim, 1, "migrating");
    let clock = TestClock::new(|_| {});
    gate::open(&cluster, Some(&nova), &clock, HOST, &settings(10, None), far()).unwrap();
    assert!(clock.slept() <= Duration::from_secs(10) && clock.slept() >= Duration::from_secs(8), "{:?}", clock.slept());
    // Capped by the deadline too (5 s are kept for the rest of the start).
    let clock = TestClock::new(|_| {});
    gate::open(&cluster, Some(&nova), &clock, HOST, &settings(120, None), clock.now() + Duration::from_secs(12)).unwrap();
    assert!(clock.slept() <= Duration::from_secs(7), "{:?}", clock.slept());
    let clock = TestClock::new(|_| {});
    gate::open(&cluster, Some(&nova), &clock, HOST, &settings(0, None), far()).unwrap();
    assert_eq!(clock.slept(), Duration::ZERO);
}

#[test]
fn an_unfinished_evacuation_fails_the_start_at_the_deadline_and_touches_nothing() {
    let sim = sim();
    let nova = client(&sim);
    let cluster = FakeCluster::new("compute-0");
    cluster.set(EVACUATE_ATTR, HOST, "yes");
    let clock = TestClock::new(|_| {});
    sim.clear_log();
    let e = gate::open(&cluster, Some(&nova), &clock, HOST, &settings(120, Some(30)), far()).unwrap_err();
    assert_eq!(e.status, Status::ErrGeneric);
    assert!(e.reason.contains("not finished") && e.reason.contains("nova-compute stays stopped"), "{}", e.reason);
    assert!(clock.slept() <= Duration::from_secs(30));
    assert!(nova_requests(&sim).is_empty(), "nothing is touched before the evacuation is settled");
    // The action deadline bounds it too.
    let clock = TestClock::new(|_| {});
    let e = gate::open(&cluster, Some(&nova), &clock, HOST, &settings(120, None), clock.now() + Duration::from_secs(9));
    assert!(e.is_err());
    assert!(clock.slept() <= Duration::from_secs(9));
}

#[test]
fn the_monitor_closes_the_gate_when_an_evacuation_is_requested_and_never_fails_for_nova() {
    let sim = sim();
    let nova = client(&sim);
    let cluster = FakeCluster::new("compute-0");
    let w = gate::watch(&cluster, Some(&nova), "compute-1.localdomain", false, far()).unwrap();
    assert_eq!(w.view, View::Up);
    for v in ["yes", "ctl0@1795285850"] {
        cluster.set(EVACUATE_ATTR, "compute-1.localdomain", v);
        let e = gate::watch(&cluster, Some(&nova), "compute-1.localdomain", false, far()).unwrap_err();
        assert_eq!(e.status, Status::NotRunning, "{v}");
        assert!(e.reason.contains("evacuation of compute-1.localdomain requested"), "{}", e.reason);
    }
    cluster.set(EVACUATE_ATTR, "compute-1.localdomain", "no");
    // Down, unregistered, forced down by someone else: reported, not failed.
    sim.kill_host("compute-1.localdomain");
    assert_eq!(gate::watch(&cluster, Some(&nova), "compute-1.localdomain", false, far()).unwrap().view, View::Down);
    assert_eq!(gate::watch(&cluster, Some(&nova), "compute-9", false, far()).unwrap().view, View::Unregistered);
    let w = gate::watch(&cluster, Some(&nova), HOST, false, far()).unwrap();
    assert_eq!(w.view, View::ForcedDown);
    assert_eq!(service(&nova, HOST).forced_down, Some(true), "not ours to clear");
    // Nova unreachable.
    drop(sim);
    let w = gate::watch(&cluster, Some(&nova), HOST, true, Instant::now() + Duration::from_secs(5)).unwrap();
    assert_eq!(w, gate::Watched { view: View::Unreachable, unforce_pending: true });
    // attrd unreachable: no verdict from it.
    cluster.fail_queries(5);
    assert!(gate::watch(&cluster, Some(&nova), HOST, true, Instant::now() + Duration::from_secs(5)).is_ok());
}

/// O27: the node names itself exactly as fence_compute names its target, whatever Nova uses.
#[test]
fn o27_the_gate_keys_the_attribute_as_fence_compute_does() {
    let cases: &[(&[&str], &str)] = &[
        (&["compute-0.localdomain", "compute-1.localdomain"], "compute-0.localdomain"),
        (&["compute-0", "compute-1"], "compute-0"),
        (&["compute-0.other.org", "compute-1.localdomain"], "compute-0.other.org"),
    ];
    for (hosts, want) in cases {
        let mut s = Scenario::with_hosts(0);
        for h in *hosts {
            s.hosts.push(HostConfig { name: (*h).into(), ..HostConfig::default() });
        }
        let sim = Simulator::start(s).unwrap();
        let nova = client(&sim);
        // No nova.conf: the host name rule, then Nova's list, as on the lab's nodes.
        let local = naming::local_nova_host(&settings(0, None).conf_paths(), "compute-0", Some("localdomain"));
        assert_eq!(local.source, LocalSource::HostnameWithDomain);
        let this = gate::this_host(&local, "compute-0", Some("localdomain"), Some(&nova)).unwrap();
        let nova_hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        // What fence_compute computes for the Pacemaker node compute-0.
        let fc = naming::resolve(&["compute-0"], Some("localdomain"), &nova_hosts).unwrap();
        assert_eq!(this.host, fc.host, "{hosts:?}");
        assert_eq!(this.host, *want);
        assert!(this.confirmed);
    }
    // nova.conf's [DEFAULT] host wins, exactly.
    let sim = sim();
    let nova = client(&sim);
    let local = LocalHost { name: "compute-1.localdomain".into(), source: LocalSource::NovaConf("/etc/nova/nova.conf".into()) };
    assert_eq!(gate::this_host(&local, "whatever", None, Some(&nova)).unwrap().host, "compute-1.localdomain");
    // A host Nova does not know yet keeps its local name; an ambiguous one is an error (2).
    let local = LocalHost { name: "compute-7.localdomain".into(), source: LocalSource::HostnameWithDomain };
    let this = gate::this_host(&local, "compute-7", Some("localdomain"), Some(&nova)).unwrap();
    assert_eq!((this.host.as_str(), this.confirmed), ("compute-7.localdomain", false));
    let mut s = Scenario::with_hosts(0);
    for h in ["compute-0.a.org", "compute-0.b.org"] {
        s.hosts.push(HostConfig { name: h.into(), ..HostConfig::default() });
    }
    let sim2 = Simulator::start(s).unwrap();
    let local = LocalHost { name: "compute-0".into(), source: LocalSource::Hostname };
    let e = gate::this_host(&local, "compute-0", None, Some(&client(&sim2))).unwrap_err();
    assert_eq!(e.status, Status::ErrArgs);
    // Nova unreachable: the local name.
    drop(sim2);
    let local = LocalHost { name: "compute-0.localdomain".into(), source: LocalSource::HostnameWithDomain };
    let quick = client(&sim).with_deadline(iha_openstack::Deadline::after(Duration::from_secs(3)));
    drop(sim);
    assert_eq!(gate::this_host(&local, "compute-0", None, Some(&quick)).unwrap().host, "compute-0.localdomain");
}

#[test]
fn the_state_file_round_trips_and_holds_no_secret() {
    let dir = std::env::temp_dir().join(format!("iha-gate-state-{}", std::process::id()));
    let path = dir.join("nova-compute-wait-x.state");
    assert_eq!(GateState::load(&path), None);
    let st = GateState { host: HOST.into(), unforce_pending: true, last_view: Some(View::ForcedDown) };
    st.save(&path).unwrap();
    assert_eq!(GateState::load(&path), Some(st));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, format!("host={HOST}\nunforce_pending=1\nlast_view=forced-down\n"));
    GateState::remove(&path).unwrap();
    GateState::remove(&path).unwrap();
    assert_eq!(GateState::load(&path), None);
    // A file we cannot parse still means "open".
    std::fs::write(&path, "garbage").unwrap();
    assert!(GateState::load(&path).is_some());
    let _ = std::fs::remove_dir_all(dir);
    // Cluster trait object use compiles with the fake.
    let c: &dyn Cluster = &FakeCluster::new("x");
    assert!(c.attr_query(EVACUATE_ATTR, "h", far()).unwrap().is_none());
}

/// Without credentials (the reference calls them "not in use") the gate still guards the
/// start with the attribute alone, and the monitor still closes it on an evacuation.
#[test]
fn without_credentials_the_attribute_alone_gates() {
    let cluster = FakeCluster::new("compute-0");
    cluster.set(EVACUATE_ATTR, HOST, "yes");
    let clock = TestClock::new(|n| {
        if n == 2 {
            cluster.set(EVACUATE_ATTR, HOST, "no");
        }
    });
    let o = gate::open(&cluster, None, &clock, HOST, &settings(120, None), far()).unwrap();
    assert!(o.waited && !o.unforce_pending);
    assert_eq!(clock.count(), 2);
    let w = gate::watch(&cluster, None, HOST, false, far()).unwrap();
    assert_eq!(w.view, View::NotWatched);
    cluster.set(EVACUATE_ATTR, HOST, "yes");
    assert_eq!(gate::watch(&cluster, None, HOST, false, far()).unwrap_err().status, Status::NotRunning);
}
