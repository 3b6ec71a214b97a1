//! fence_evacuate and NovaEvacuate, the built binaries, against the simulator: 1, 50 and 1000
//! instances on the failed host, with faults (5xx, lost answers, token expiry mid-run, capacity
//! exhausted, SIGKILL mid-run then rerun). What is asserted is Nova's side (the simulator's
//! state and request log): every instance evacuated exactly once, nothing evacuated from a live
//! host, and the `evacuate` attribute written as unfencing expects. Simulator delays are in
//! milliseconds; nothing here asserts a wall-clock time.
//!
//! NovaEvacuate runs with stand-ins for attrd_updater, crm_node, stonith_admin and crm_resource
//! (tests/evacuate-tools) first on PATH.

use iha_tests::{bin, run};
use iha_testkit::{EvacuationFault, FaultAction, FaultRule, HostConfig, Scenario, SimHandle, Simulator, TokenFaults};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const DEAD: &str = "compute-0";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// compute-0 fenced (forced down, disabled) with `n` servers; compute-1..`hosts` up.
fn scenario(n: usize, hosts: usize) -> Scenario {
    let mut s = Scenario::with_hosts(hosts);
    s.seed = Some(7);
    s.hosts[0] = HostConfig {
        name: DEAD.into(),
        state: Some("down".into()),
        status: Some("disabled".into()),
        forced_down: true,
        ..Default::default()
    };
    s.add_servers(DEAD, "vm", n);
    s
}

fn start(s: Scenario) -> SimHandle {
    Simulator::start(s).expect("simulator starts")
}

/// A private directory per test (token cache when not root, attrd stand-in state).
fn cache_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("iha-evac-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fence_cmd(sim: &SimHandle, tag: &str, lines: &[&str]) -> (Command, String) {
    let mut c = Command::new(bin("fence_evacuate"));
    c.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("XDG_RUNTIME_DIR", cache_dir(tag))
        .env("HOME", cache_dir(tag));
    let mut stdin = format!(
        "auth_url={}\nusername=admin\npassword=secret\ntenant_name=admin\npoll_min_ms=20\npoll_interval=1\nretry_backoff=0\n",
        sim.auth_url()
    );
    for l in lines {
        stdin.push_str(l);
        stdin.push('\n');
    }
    (c, stdin)
}

fn fence_evacuate(sim: &SimHandle, tag: &str, lines: &[&str]) -> Output {
    let (mut c, stdin) = fence_cmd(sim, tag, lines);
    run(&mut c, &stdin)
}

/// Evacuate POSTs that Nova carried out, per server id (from the request log).
fn evacuations(sim: &SimHandle) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in sim.log() {
        let is_evac = e.method == "POST"
            && e.path.contains("/servers/")
            && e.path.ends_with("/action")
            && e.body.as_ref().is_some_and(|b| b.get("evacuate").is_some());
        if is_evac && (200..300).contains(&e.status) {
            let id = e.path.split("/servers/").nth(1).and_then(|r| r.split('/').next()).unwrap_or("").to_string();
            *m.entry(id).or_default() += 1;
        }
    }
    m
}

/// Evacuation migrations per instance (Nova's own record).
fn migrations(sim: &SimHandle) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for mg in sim.state().migrations {
        if mg.migration_type == "evacuation" {
            *m.entry(mg.instance_uuid).or_default() += 1;
        }
    }
    m
}

fn assert_all_evacuated_once(sim: &SimHandle, n: usize) {
    let st = sim.state();
    assert!(st.servers_on(DEAD).is_empty(), "left on {DEAD}: {}", st.servers_on(DEAD).len());
    let moved: Vec<_> = st.servers.iter().filter(|s| s.host.as_deref() != Some(DEAD)).collect();
    assert_eq!(moved.len(), n);
    assert!(moved.iter().all(|s| s.status == "ACTIVE"), "all ACTIVE");
    let migs = migrations(sim);
    assert_eq!(migs.len(), n);
    assert!(migs.values().all(|c| *c == 1), "one evacuation per instance: {migs:?}");
}

#[test]
fn fence_evacuate_one_instance() {
    let sim = start(scenario(1, 3));
    let o = fence_evacuate(&sim, "one", &["action=off", "plug=compute-0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_all_evacuated_once(&sim, 1);
    assert_eq!(evacuations(&sim).values().sum::<usize>(), 1);
}

#[test]
fn fence_evacuate_fifty_through_5xx_lost_answers_and_token_expiry() {
    let sim = start(scenario(50, 4));
    // Reads fail now and then; two evacuate answers are lost after Nova carried them out;
    // tokens die after 25 requests each (re-authentication mid-run).
    sim.add_fault(FaultRule {
        id: Some("list-503".into()),
        service: Some("nova".into()),
        method: Some("GET".into()),
        path: Some("*/os-migrations".into()),
        action: Some(FaultAction::Error { status: 503, body: None }),
        times: Some(3),
        ..Default::default()
    });
    sim.add_fault(FaultRule {
        id: Some("lost".into()),
        service: Some("nova".into()),
        method: Some("POST".into()),
        path: Some("*/action".into()),
        body_contains: Some("evacuate".into()),
        action: Some(FaultAction::ResetAfter),
        skip: Some(10),
        times: Some(2),
        ..Default::default()
    });
    sim.set_token_faults(TokenFaults { expire_after_requests: Some(25), ..Default::default() });
    let o = fence_evacuate(&sim, "fifty", &["action=reboot", "plug=compute-0", "concurrency=8"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_all_evacuated_once(&sim, 50);
    let log = sim.log();
    let fired = |id: &str| log.iter().filter(|e| e.faults.iter().any(|f| f == id)).count();
    assert_eq!(fired("lost"), 2, "two answers were lost");
    assert_eq!(fired("list-503"), 3);
    let tokens = log.iter().filter(|e| e.service == "keystone" && e.method == "POST").count();
    assert!(tokens > 1, "re-authenticated mid-run ({tokens} tokens)");
}

#[test]
fn fence_evacuate_a_thousand_instances() {
    let mut s = scenario(1000, 6);
    s.rebuild_delay_ms = 20;
    let sim = start(s);
    let o = fence_evacuate(&sim, "thousand", &["action=off", "plug=compute-0", "concurrency=32", "action_timeout=120"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_all_evacuated_once(&sim, 1000);
    // Tracking is batched: far fewer migration listings than instances.
    let listings = sim.log().iter().filter(|e| e.method == "GET" && e.path.contains("/os-migrations")).count();
    assert!(listings < 200, "{listings} migration listings");
}

#[test]
fn fence_evacuate_reads_together_and_evacuates_only_after_every_read_it_needs() {
    let sim = start(scenario(4, 3));
    // Every Nova call takes 150 ms: reads one after the other could not overlap.
    sim.add_fault(FaultRule {
        id: Some("latency".into()),
        service: Some("nova".into()),
        latency: Some(iha_testkit::Latency { fixed_ms: Some(150), ..Default::default() }),
        ..Default::default()
    });
    let o = fence_evacuate(&sim, "together", &["action=off", "plug=compute-0", "concurrency=2"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_all_evacuated_once(&sim, 4);
    let log = sim.log();
    let is_evac = |e: &&iha_testkit::LogEntry| e.method == "POST" && e.body.as_ref().is_some_and(|b| b.get("evacuate").is_some());
    let first_post = log.iter().filter(is_evac).map(|e| e.started).fold(f64::MAX, f64::min);
    let before: Vec<&iha_testkit::LogEntry> = log.iter().filter(|e| e.started < first_post).collect();
    // Nothing but reads before the first evacuation (no write before the fencing is confirmed)...
    assert!(before.iter().all(|e| e.method == "GET" || e.service == "keystone"), "{:?}", before.iter().map(|e| (&e.method, &e.path)).collect::<Vec<_>>());
    // ...and every read an evacuation depends on answered before it; their mutual order is free.
    type PathMatch = fn(&str) -> bool;
    let needed: [(&str, PathMatch); 7] = [
        ("fencing check", |p| p.contains("/os-services") && p.contains("host=compute-0")),
        ("storm guard", |p| p.contains("/os-services") && !p.contains("host=")),
        ("flavors", |p| p.contains("/flavors/detail")),
        ("images", |p| p.contains("/v2/images")),
        ("aggregates", |p| p.contains("/os-aggregates")),
        ("servers", |p| p.contains("/servers/detail") && p.contains("host=compute-0")),
        ("migrations", |p| p.contains("/os-migrations")),
    ];
    for (what, matches) in needed {
        let e = before.iter().find(|e| e.method == "GET" && matches(&e.path)).unwrap_or_else(|| panic!("no {what} read before the first evacuation"));
        assert!(e.finished.is_some_and(|f| f <= first_post), "{what} answered before the first evacuation");
    }
    // Issued together: several Nova reads were in flight at the same moment.
    let reads: Vec<(f64, f64)> = before.iter().filter(|e| e.service == "nova").map(|e| (e.started, e.finished.unwrap_or(f64::MAX))).collect();
    let most = reads.iter().map(|(s, _)| reads.iter().filter(|(s2, f2)| s2 <= s && f2 > s).count()).max().unwrap_or(0);
    assert!(most >= 4, "at most {most} reads in flight at once before the first evacuation");
}

#[test]
fn fence_evacuate_capacity_exhausted_fails_and_reports() {
    let mut s = scenario(12, 2);
    s.hosts[1].max_instances = Some(5);
    let sim = start(s);
    let o = fence_evacuate(&sim, "capacity", &["action=off", "plug=compute-0", "evacuation_attempts=2"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("Resurrection of instances from compute-0 failed: 7 failed"), "{err}");
    assert!(err.contains("No valid host was found"), "nova's own message is reported: {err}");
    let st = sim.state();
    assert_eq!(st.servers.iter().filter(|s| s.host.as_deref() == Some("compute-1")).count(), 5);
    assert!(migrations(&sim).values().all(|c| *c <= 2), "attempt budget respected");
}

#[test]
fn fence_evacuate_one_shot_failures_are_retried() {
    let sim = start(scenario(6, 3));
    sim.fail_evacuations(EvacuationFault { server: None, host: None, times: 2, kind: "no_valid_host".into(), status: None, fired: 0 });
    let o = fence_evacuate(&sim, "oneshot", &["action=off", "plug=compute-0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let st = sim.state();
    assert!(st.servers_on(DEAD).is_empty());
    assert_eq!(st.migrations.iter().filter(|m| m.status == "error").count(), 2);
}

#[test]
fn fence_evacuate_never_touches_a_live_host() {
    let mut s = scenario(3, 2);
    s.hosts[0] = HostConfig { name: DEAD.into(), ..Default::default() };
    let sim = start(s);
    let o = fence_evacuate(&sim, "live", &["action=off", "plug=compute-0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("Cannot resurrect instances from compute-0"), "{}", text(&o.stderr));
    assert!(evacuations(&sim).is_empty());
    assert_eq!(sim.state().servers_on(DEAD).len(), 3);
}

#[test]
fn fence_evacuate_sigkill_mid_run_then_rerun_evacuates_each_once() {
    let mut s = scenario(200, 4);
    s.rebuild_delay_ms = 400;
    let sim = start(s);
    let (mut c, stdin) = fence_cmd(&sim, "kill", &["action=off", "plug=compute-0", "concurrency=4"]);
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    }
    let until = Instant::now() + Duration::from_secs(30);
    while evacuations(&sim).len() < 40 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = evacuations(&sim).len();
    assert!((40..200).contains(&before), "killed mid-run after {before} evacuations");
    let o = fence_evacuate(&sim, "kill", &["action=off", "plug=compute-0", "concurrency=16"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_all_evacuated_once(&sim, 200);
    assert!(evacuations(&sim).values().all(|c| *c == 1));
}

#[test]
fn fence_evacuate_hung_nova_is_a_failure_then_a_rerun_finishes() {
    let sim = start(scenario(10, 3));
    // Nova stops answering the tracking listing: the action fails at its deadline.
    sim.add_fault(FaultRule {
        id: Some("hang".into()),
        service: Some("nova".into()),
        method: Some("GET".into()),
        path: Some("*/os-migrations".into()),
        action: Some(FaultAction::Hang),
        ..Default::default()
    });
    let o = fence_evacuate(&sim, "hang", &["action=off", "plug=compute-0", "action_timeout=3"]);
    assert_eq!(o.status.code(), Some(1), "a timeout is a failure: {}", text(&o.stderr));
    assert!(text(&o.stderr).contains("Resurrection of instances from compute-0 failed"), "{}", text(&o.stderr));
    sim.clear_faults();
    let o = fence_evacuate(&sim, "hang", &["action=off", "plug=compute-0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_all_evacuated_once(&sim, 10);
}

#[test]
fn fence_evacuate_status_list_monitor() {
    let sim = start(scenario(0, 3));
    let o = fence_evacuate(&sim, "status", &["action=status", "plug=compute-0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "Status: OFF\n");
    let o = fence_evacuate(&sim, "status", &["action=status", "plug=compute-1"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout), "Status: ON\n");
    let o = fence_evacuate(&sim, "status", &["action=status", "plug=nowhere"]);
    assert_eq!(o.status.code(), Some(1));
    let o = fence_evacuate(&sim, "status", &["action=list"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout), "compute-0,\ncompute-1,\ncompute-2,\n");
    let o = fence_evacuate(&sim, "status", &["action=list-status"]);
    assert!(text(&o.stdout).contains("compute-0,,OFF\n"), "{}", text(&o.stdout));
    let o = fence_evacuate(&sim, "status", &["action=monitor"]);
    assert_eq!(o.status.code(), Some(0));
    let o = fence_evacuate(&sim, "status", &["action=on", "plug=compute-0"]);
    assert_eq!(o.status.code(), Some(1));
    // Monitor really asks Nova.
    let (mut c, _) = fence_cmd(&sim, "status", &[]);
    let o = run(&mut c, "action=monitor\nauth_url=http://127.0.0.1:9/v3\nusername=a\npassword=b\ntenant_name=c\naction_timeout=5\n");
    assert_eq!(o.status.code(), Some(1));
}

// ---- NovaEvacuate

struct Pcmk {
    dir: PathBuf,
}

impl Pcmk {
    fn new(tag: &str, attrs: &[(&str, &str)]) -> Pcmk {
        let dir = cache_dir(&format!("pcmk-{tag}"));
        let db: serde_json::Map<String, serde_json::Value> =
            attrs.iter().map(|(h, v)| ((*h).to_string(), serde_json::Value::String((*v).to_string()))).collect();
        std::fs::write(dir.join("attrd.json"), serde_json::json!({ "evacuate": db }).to_string()).unwrap();
        Pcmk { dir }
    }
    fn fenced(&self, nodes: &[&str]) {
        std::fs::write(self.dir.join("fenced"), nodes.join("\n")).unwrap();
    }
    /// Pacemaker is fencing `nodes` now: their history shows a reboot in progress.
    fn fencing(&self, nodes: &[&str]) {
        std::fs::write(self.dir.join("fencing"), nodes.join("\n")).unwrap();
    }
    fn get(&self, host: &str) -> Option<String> {
        let db: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(self.dir.join("attrd.json")).ok()?).ok()?;
        db["evacuate"][host].as_str().map(str::to_string)
    }
    /// The resource parameters `crm_resource --get-parameter` finds in the CIB; `None`: the CIB
    /// cannot be reached.
    fn cib(&self, params: Option<&[(&str, &str)]>) {
        let path = self.dir.join("cib.json");
        match params {
            Some(p) => {
                let m: serde_json::Map<String, serde_json::Value> =
                    p.iter().map(|(k, v)| ((*k).to_string(), serde_json::Value::String((*v).to_string()))).collect();
                std::fs::write(path, serde_json::json!({ "nova-evacuate": m }).to_string()).unwrap();
            }
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    /// How many times crm_resource was run.
    fn cib_reads(&self) -> usize {
        std::fs::read_to_string(self.dir.join("crm_resource.calls")).unwrap_or_default().lines().count()
    }
    fn writes(&self, host: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("writes.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Vec<String>>(l).ok())
            .filter(|w| w[1] == host)
            .map(|w| w[2].clone())
            .collect()
    }
}

fn nova_evacuate(sim: &SimHandle, pcmk: &Pcmk, action: &str, extra: &[(&str, &str)]) -> Output {
    run(&mut nova_evacuate_cmd(sim, pcmk, action, extra), "")
}

fn nova_evacuate_cmd(sim: &SimHandle, pcmk: &Pcmk, action: &str, extra: &[(&str, &str)]) -> Command {
    let tools = iha_tests::repo().join("tests/evacuate-tools");
    let mut c = Command::new(bin("NovaEvacuate"));
    c.arg(action)
        .env_clear()
        .env("PATH", format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", tools.display()))
        .env("IHA_PCMK_DIR", &pcmk.dir)
        .env("IHA_PCMK_NODE", "ctl0")
        .env("HA_RSCTMP", &pcmk.dir)
        .env("XDG_RUNTIME_DIR", &pcmk.dir)
        .env("OCF_RESOURCE_INSTANCE", "nova-evacuate")
        .env("OCF_RESKEY_CRM_meta_interval", "10000")
        .env("OCF_RESKEY_CRM_meta_timeout", "60000")
        .env("OCF_RESKEY_auth_url", sim.auth_url())
        .env("OCF_RESKEY_username", "admin")
        .env("OCF_RESKEY_password", "secret")
        .env("OCF_RESKEY_tenant_name", "admin")
        .env("OCF_RESKEY_poll_min_ms", "20")
        .env("OCF_RESKEY_poll_interval", "1")
        .env("OCF_RESKEY_retry_backoff", "0");
    for (k, v) in extra {
        if k.starts_with("IHA_") || k.starts_with("OCF_") {
            c.env(k, v);
        } else {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
    }
    c
}

#[test]
fn nova_evacuate_settles_marked_hosts_and_leaves_others() {
    let mut s = scenario(20, 4);
    s.hosts[3] = HostConfig {
        name: "compute-3".into(),
        state: Some("down".into()),
        status: Some("disabled".into()),
        forced_down: true,
        ..Default::default()
    };
    s.add_servers("compute-3", "other", 5);
    let sim = start(s);
    let pcmk = Pcmk::new("settle", &[(DEAD, "yes"), ("compute-1", ""), ("compute-2", "no"), ("compute-3", "yes")]);
    pcmk.fenced(&[DEAD, "compute-3"]);
    // Probe and monitor before start: not running here.
    assert_eq!(nova_evacuate(&sim, &pcmk, "monitor", &[("CRM_meta_interval", "0")]).status.code(), Some(7));
    assert_eq!(nova_evacuate(&sim, &pcmk, "monitor", &[]).status.code(), Some(7));
    assert!(sim.log().iter().all(|e| e.service != "nova"), "probes never evacuate");
    assert_eq!(nova_evacuate(&sim, &pcmk, "start", &[]).status.code(), Some(0));
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[("concurrency", "8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("no"));
    assert_eq!(pcmk.get("compute-3").as_deref(), Some("no"));
    assert_eq!(pcmk.get("compute-1").as_deref(), Some(""));
    // In progress before done, as unfencing expects.
    let w = pcmk.writes(DEAD);
    assert!(w.first().is_some_and(|v| v.starts_with("ctl0@")), "{w:?}");
    assert_eq!(w.last().map(String::as_str), Some("no"));
    let st = sim.state();
    assert!(st.servers_on(DEAD).is_empty() && st.servers_on("compute-3").is_empty());
    assert!(migrations(&sim).values().all(|c| *c == 1));
    assert_eq!(pcmk.cib_reads(), 0, "2 of 4 hosts failed is no storm: the CIB is not read");
    // A second monitor has nothing to do and does not call Nova.
    sim.clear_log();
    assert_eq!(nova_evacuate(&sim, &pcmk, "monitor", &[]).status.code(), Some(0));
    assert!(sim.log().iter().all(|e| e.service != "nova"));
}

#[test]
fn nova_evacuate_refuses_unfenced_hosts_and_survives_an_unreachable_nova() {
    let sim = start(scenario(3, 3));
    let pcmk = Pcmk::new("refuse", &[(DEAD, "yes")]);
    assert_eq!(nova_evacuate(&sim, &pcmk, "start", &[]).status.code(), Some(0));
    // No fencing recorded by Pacemaker: nothing happens, the mark stays.
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(evacuations(&sim).is_empty());
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("yes"));
    // Nova unreachable: still running (0), mark untouched.
    pcmk.fenced(&[DEAD]);
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[("auth_url", "http://127.0.0.1:9/v3")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("unreachable") || text(&o.stderr).contains("ERROR"), "{}", text(&o.stderr));
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("yes"));
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("no"));
}

#[test]
fn nova_evacuate_waits_in_the_monitor_for_a_fencing_in_progress() {
    // fence_compute marks the host inside the fencing operation: a monitor may see `yes` while
    // Pacemaker still shows the reboot in progress. That monitor waits for it to complete and
    // evacuates then, instead of leaving the host to the next monitor (an interval later).
    let sim = start(scenario(3, 3));
    let pcmk = Pcmk::new("pending", &[(DEAD, "yes")]);
    pcmk.fencing(&[DEAD]);
    assert_eq!(nova_evacuate(&sim, &pcmk, "start", &[]).status.code(), Some(0));
    let completes = {
        let dir = pcmk.dir.clone();
        std::thread::spawn(move || {
            // Only once the monitor has asked (its first look must find the fencing pending).
            let until = Instant::now() + Duration::from_secs(20);
            while std::fs::read_to_string(dir.join("writes.jsonl")).unwrap_or_default().is_empty() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(600));
            std::fs::write(dir.join("fenced"), DEAD).unwrap();
            std::fs::remove_file(dir.join("fencing")).unwrap();
        })
    };
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[]);
    completes.join().unwrap();
    let log = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{log}");
    assert!(log.contains("its fencing is still in progress: this monitor waits for it"), "{log}");
    assert!(log.contains("the fencing of compute-0 completed after"), "{log}");
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("no"), "{log}");
    assert_all_evacuated_once(&sim, 3);

    // A fencing that stays pending: the wait ends (at most half of what the monitor has
    // left), nothing is evacuated and the host keeps its `yes` for the next monitor.
    let sim = start(scenario(3, 3));
    let pcmk = Pcmk::new("pending-long", &[(DEAD, "yes")]);
    pcmk.fencing(&[DEAD]);
    assert_eq!(nova_evacuate(&sim, &pcmk, "start", &[]).status.code(), Some(0));
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[("CRM_meta_timeout", "6000")]);
    let log = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{log}");
    assert!(log.contains("evacuation of compute-0 not started"), "{log}");
    assert!(evacuations(&sim).is_empty(), "{log}");
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("yes"), "{log}");
}

#[test]
fn nova_evacuate_resumes_across_monitors_without_reissuing() {
    let mut s = scenario(30, 3);
    // Rebuilds take a simulated minute: the first monitor cannot see them finish.
    s.rebuild_delay_ms = 60_000;
    let sim = start(s);
    let pcmk = Pcmk::new("resume", &[(DEAD, "yes")]);
    pcmk.fenced(&[DEAD]);
    assert_eq!(nova_evacuate(&sim, &pcmk, "start", &[]).status.code(), Some(0));
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[("CRM_meta_timeout", "4000")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let mark = pcmk.get(DEAD).unwrap_or_default();
    assert!(mark.starts_with("ctl0@"), "still in progress: {mark}");
    assert_eq!(evacuations(&sim).len(), 30, "all issued by the first monitor");
    sim.advance_clock(Duration::from_secs(120));
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("no"));
    assert_all_evacuated_once(&sim, 30);
    assert!(evacuations(&sim).values().all(|c| *c == 1));
}

#[test]
fn nova_evacuate_holds_a_storm_and_settles_an_unevacuable_host() {
    // Storm: 2 of 3 compute hosts failed and marked.
    let mut s = scenario(2, 3);
    s.hosts[1] = HostConfig { name: "compute-1".into(), state: Some("down".into()), status: Some("disabled".into()), forced_down: true, ..Default::default() };
    let sim = start(s);
    let pcmk = Pcmk::new("storm", &[(DEAD, "yes"), ("compute-1", "yes")]);
    pcmk.fenced(&[DEAD, "compute-1"]);
    assert_eq!(nova_evacuate(&sim, &pcmk, "start", &[]).status.code(), Some(0));
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stderr).contains("storm guard"), "{}", text(&o.stderr));
    assert!(evacuations(&sim).is_empty());
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("yes"));
    // The documented override.
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[("storm_max_share", "100")]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("no"));

    // One instance Nova will not evacuate does not block the host forever.
    let mut s = scenario(3, 3);
    s.servers[0].vm_state = "paused".into();
    let sim = start(s);
    let pcmk = Pcmk::new("paused", &[(DEAD, "yes")]);
    pcmk.fenced(&[DEAD]);
    assert_eq!(nova_evacuate(&sim, &pcmk, "start", &[]).status.code(), Some(0));
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("no"));
    let st = sim.state();
    let paused = st.servers.iter().find(|s| s.vm_state == "paused").unwrap();
    assert_eq!(paused.host.as_deref(), Some(DEAD));
    let reason = st.host(DEAD).and_then(|h| h.disabled_reason.clone()).unwrap_or_default();
    assert!(reason.contains(&paused.id) && reason.contains("1 failed"), "{reason}");
    assert!(text(&o.stderr).contains("vm_state paused"), "{}", text(&o.stderr));
}

#[test]
fn nova_evacuate_takes_the_override_from_the_cib_at_the_next_monitor() {
    // 2 of 3 compute hosts failed and marked: held with the parameters Pacemaker passed.
    let mut s = scenario(2, 3);
    s.hosts[1] = HostConfig { name: "compute-1".into(), state: Some("down".into()), status: Some("disabled".into()), forced_down: true, ..Default::default() };
    let sim = start(s);
    let pcmk = Pcmk::new("override", &[(DEAD, "yes"), ("compute-1", "yes")]);
    pcmk.fenced(&[DEAD, "compute-1"]);
    pcmk.cib(Some(&[("auth_url", "http://keystone.example.com/v3")]));
    // As a clone instance: the CIB is asked about the primitive, nova-evacuate.
    let clone = [("OCF_RESOURCE_INSTANCE", "nova-evacuate:0")];
    assert_eq!(nova_evacuate(&sim, &pcmk, "start", &clone).status.code(), Some(0));
    let o = nova_evacuate(&sim, &pcmk, "monitor", &clone);
    assert_eq!(o.status.code(), Some(0));
    let err = text(&o.stderr);
    assert!(err.contains("2 of 3 compute hosts failed") && err.contains("pcs resource update nova-evacuate storm_max_share=100"), "{err}");
    assert!(err.contains("evacuation of compute-0 held by the storm guard"), "{err}");
    assert_eq!(pcmk.cib_reads(), 2, "both limits read from the CIB before holding");
    assert!(evacuations(&sim).is_empty());
    // The CIB cannot be read: the hold stands, and the log says why.
    pcmk.cib(None);
    let o = nova_evacuate(&sim, &pcmk, "monitor", &clone);
    let err = text(&o.stderr);
    assert!(err.contains("cannot read the current limits of nova-evacuate from the CIB") && err.contains("Could not connect to the CIB"), "{err}");
    assert!(err.contains("held by the storm guard"), "{err}");
    assert!(evacuations(&sim).is_empty());
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("yes"));
    // The operator's pcs resource update: in the CIB, not yet in the agent's environment (the
    // restart waits for the held nodes' unfencing). The next monitor evacuates.
    pcmk.cib(Some(&[("auth_url", "http://keystone.example.com/v3"), ("storm_max_share", "100")]));
    let o = nova_evacuate(&sim, &pcmk, "monitor", &clone);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("storm guard overridden: the CIB now has storm_max_share=100 storm_max_hosts=0 for nova-evacuate"), "{err}");
    assert!(!err.contains("held by the storm guard"), "{err}");
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("no"));
    assert_eq!(pcmk.get("compute-1").as_deref(), Some("no"));
    assert!(evacuations(&sim).values().all(|c| *c == 1));
}

#[test]
fn nova_evacuate_killed_mid_monitor_is_deferred_then_taken_over_once() {
    let mut s = scenario(200, 4);
    s.rebuild_delay_ms = 300;
    let sim = start(s);
    let pcmk = Pcmk::new("kill", &[(DEAD, "yes")]);
    pcmk.fenced(&[DEAD]);
    assert_eq!(nova_evacuate(&sim, &pcmk, "start", &[]).status.code(), Some(0));
    // ctl1's monitor is killed (SIGKILL) in the middle of issuing.
    let mut c = nova_evacuate_cmd(&sim, &pcmk, "monitor", &[("IHA_PCMK_NODE", "ctl1"), ("concurrency", "4")]);
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while evacuations(&sim).len() < 40 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100)); // requests already received finish
    let issued = evacuations(&sim).len();
    assert!((40..200).contains(&issued), "killed after {issued} evacuations");
    assert!(pcmk.get(DEAD).unwrap_or_default().starts_with("ctl1@"));
    // ctl0 sees a fresh marker of ctl1: it defers and touches nothing.
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(evacuations(&sim).len(), issued, "deferred: no new evacuation");
    assert!(pcmk.get(DEAD).unwrap_or_default().starts_with("ctl1@"));
    // Once the marker has not been refreshed for takeover_after, ctl0 takes over and finishes.
    std::thread::sleep(Duration::from_millis(2100));
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[("takeover_after", "1")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("no"));
    assert_all_evacuated_once(&sim, 200);
    assert!(evacuations(&sim).values().all(|c| *c == 1), "no instance evacuated twice");
}

#[test]
fn nova_evacuate_delay_is_per_host_and_never_serialises_hosts() {
    let mut s = scenario(3, 4);
    s.hosts[3] = HostConfig { name: "compute-3".into(), state: Some("down".into()), status: Some("disabled".into()), forced_down: true, ..Default::default() };
    s.add_servers("compute-3", "other", 3);
    let sim = start(s);
    let pcmk = Pcmk::new("delay", &[(DEAD, "yes"), ("compute-3", "yes")]);
    pcmk.fenced(&[DEAD, "compute-3"]);
    assert_eq!(nova_evacuate(&sim, &pcmk, "start", &[]).status.code(), Some(0));
    // The monitor's deadline (9 s minus the margin) fits one 2 s delay plus the 5 s the agent
    // keeps for the work after it, but not two delays one after the other: both hosts settle
    // in this monitor only if each waits in its own thread.
    let o = nova_evacuate(&sim, &pcmk, "monitor", &[("evacuate_delay", "2"), ("CRM_meta_timeout", "9000")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(pcmk.get(DEAD).as_deref(), Some("no"));
    assert_eq!(pcmk.get("compute-3").as_deref(), Some("no"));
    let st = sim.state();
    assert!(st.servers_on(DEAD).is_empty() && st.servers_on("compute-3").is_empty());
    // The delay came before the first evacuation of each host, after the marker was written.
    let first_post = sim.log().iter().filter(|e| e.method == "POST" && e.path.ends_with("/action")).map(|e| e.started).fold(f64::MAX, f64::min);
    let first_read = sim.log().iter().filter(|e| e.service == "nova").map(|e| e.started).fold(f64::MAX, f64::min);
    assert!(first_post - first_read >= 2.0, "evacuate_delay honoured: {}", first_post - first_read);
}

#[test]
fn fence_evacuate_under_pacemaker_consults_the_fencing_history() {
    let sim = start(scenario(2, 3));
    let pcmk = Pcmk::new("fe-history", &[]);
    let tools = iha_tests::repo().join("tests/evacuate-tools");
    let run_fenced = |nodename: &str| {
        let (mut c, stdin) = fence_cmd(&sim, "fe-history", &["action=off", "port=compute-0", &format!("nodename={nodename}")]);
        c.env("PATH", format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", tools.display()))
            .env("PCMK_service", "pacemaker-fenced")
            .env("IHA_PCMK_DIR", &pcmk.dir);
        run(&mut c, &stdin)
    };
    // Pacemaker has no record of fencing the node: nothing is evacuated.
    let o = run_fenced("node-0");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("no record of fencing"), "{}", text(&o.stderr));
    assert!(evacuations(&sim).is_empty());
    // The node (by its Pacemaker name from nodename=) was fenced: evacuated.
    pcmk.fenced(&["node-0"]);
    let o = run_fenced("node-0");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_all_evacuated_once(&sim, 2);
}

#[test]
fn fence_evacuate_stuck_task_is_reported_or_reset_on_request() {
    let mut s = scenario(2, 3);
    s.servers[0].task_state = Some("powering-off".into());
    let stuck = s.servers[0].name.clone();
    let sim = start(s.clone());
    let o = fence_evacuate(&sim, "stuck", &["action=off", "plug=compute-0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("task_state is powering-off"), "{}", text(&o.stderr));
    assert_eq!(sim.state().servers_on(DEAD).len(), 1, "only the stuck one stays");
    let sim = start(s);
    let o = fence_evacuate(&sim, "stuck", &["action=off", "plug=compute-0", "reset_task_state=1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_all_evacuated_once(&sim, 2);
    assert!(sim.state().server(&stuck).is_some_and(|v| v.host.as_deref() != Some(DEAD)));
}

#[test]
fn engine_parameters_are_validated_by_both_agents() {
    let sim = start(scenario(0, 2));
    let pcmk = Pcmk::new("validate", &[]);
    let o = nova_evacuate(&sim, &pcmk, "validate-all", &[("concurrency", "0")]);
    assert_eq!(o.status.code(), Some(6));
    assert!(text(&o.stderr).contains("ocf-exit-reason:") && text(&o.stderr).contains("concurrency"), "{}", text(&o.stderr));
    assert_eq!(nova_evacuate(&sim, &pcmk, "validate-all", &[("fence_check", "sometimes")]).status.code(), Some(6));
    assert_eq!(nova_evacuate(&sim, &pcmk, "validate-all", &[("storm_max_share", "80")]).status.code(), Some(0));
    let o = fence_evacuate(&sim, "validate", &["action=validate-all", "storm_max_share=101"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("storm_max_share"), "{}", text(&o.stderr));
}
