//! fence_evacuate, ours and the Python reference side by side (tests/src/compat.rs), on the
//! scenarios of docs/reference-transcripts/fe_scenarios.out, in command-line and stdin mode.
//!
//! Compared where behaviour is shared: exit code, stdout, and *which* instances Nova was asked
//! to evacuate (from the simulator's migration records). The wire differs on purpose (one
//! service listing, the 2.47+ embedded flavor instead of one call per flavor, tracking calls;
//! docs/deviations.md "fence_evacuate"), so requests are not compared one by one. Without the
//! reference (fence-agents or python3-novaclient missing) only our side is checked.

use iha_tests::compat::{CLI_AUTH, Fixture, Invocation, Run, STDIN_AUTH, Side};
use iha_testkit::scenario::{FlavorConfig, ImageConfig, ServerConfig};
use iha_testkit::{FaultAction, FaultRule, HostConfig, Scenario};
use std::collections::BTreeSet;

const AGENT: &str = "fence_evacuate";
const C0: &str = "compute-0.example.com";
const C1: &str = "compute-1.example.com";

fn host(name: &str, state: &str, status: &str, forced: bool) -> HostConfig {
    HostConfig { name: name.into(), state: Some(state.into()), status: Some(status.into()), forced_down: forced, ..Default::default() }
}

fn server(id: &str, flavor: &str, image: &str) -> ServerConfig {
    serde_json::from_value(serde_json::json!({"id": id, "name": id, "host": C0, "flavor": flavor, "image": image})).unwrap()
}

/// The transcripts' cloud: compute-0 fenced (or as given), compute-1 up; srv-a has the tagged
/// flavor, srv-b the tagged image, srv-c neither.
fn cloud(c0: HostConfig, tagged: bool) -> Scenario {
    let mut s = Scenario::with_hosts(0);
    s.seed = Some(3);
    s.hosts = vec![c0, host(C1, "up", "enabled", false)];
    let mut specs = std::collections::BTreeMap::new();
    if tagged {
        specs.insert("evacuable".to_string(), "true".to_string());
    }
    let flavor = |id: &str, extra: std::collections::BTreeMap<String, String>| -> FlavorConfig {
        serde_json::from_value(serde_json::json!({"id": id, "name": id, "extra_specs": extra})).unwrap()
    };
    s.flavors = Some(vec![flavor("f-tagged", specs), flavor("f-plain", Default::default())]);
    let image = |id: &str, tags: Vec<&str>| -> ImageConfig {
        serde_json::from_value(serde_json::json!({"id": id, "name": id, "tags": tags})).unwrap()
    };
    s.images = Some(vec![image("img-tagged", if tagged { vec!["evacuable"] } else { vec![] }), image("img-plain", vec![])]);
    s.servers = vec![server("srv-a", "f-tagged", "img-plain"), server("srv-b", "f-plain", "img-tagged"), server("srv-c", "f-plain", "img-plain")];
    s
}

fn fenced() -> HostConfig {
    host(C0, "down", "disabled", true)
}

fn cli(extra: &[&str]) -> Invocation {
    let mut a: Vec<&str> = CLI_AUTH.to_vec();
    a.extend_from_slice(extra);
    Invocation::args(&a).ours("--poll-min-ms=20")
}

fn stdin(extra: &[&str]) -> Invocation {
    let mut l: Vec<&str> = STDIN_AUTH.to_vec();
    l.extend_from_slice(extra);
    Invocation::stdin(&l).ours("poll_min_ms=20")
}

/// A run and the instances Nova recorded an evacuation for.
struct Side2 {
    run: Run,
    evacuated: BTreeSet<String>,
}

fn one(scn: &Scenario, inv: &Invocation, side: Side, setup: &dyn Fn(&Fixture)) -> Option<Side2> {
    let f = Fixture::new(scn, &[]);
    setup(&f);
    let run = f.try_run(side, AGENT, inv)?;
    let evacuated = f.sim.state().migrations.into_iter().filter(|m| m.migration_type == "evacuation").map(|m| m.instance_uuid).collect();
    Some(Side2 { run, evacuated })
}

fn both(scn: &Scenario, inv: &Invocation, setup: &dyn Fn(&Fixture)) -> (Side2, Option<Side2>) {
    let ours = one(scn, inv, Side::Ours, setup).expect("our agent runs");
    let theirs = one(scn, inv, Side::Theirs, setup);
    if theirs.is_none() {
        eprintln!("reference fence_evacuate not available: checking our side only");
    }
    (ours, theirs)
}

fn nothing(_: &Fixture) {}

fn assert_same(ours: &Side2, theirs: &Option<Side2>) {
    let Some(t) = theirs else { return };
    let ctx = || format!("\n--- ours\n{}\n--- theirs\n{}", ours.run.show(), t.run.show());
    assert_eq!(ours.run.code, t.run.code, "exit code{}", ctx());
    assert_eq!(ours.run.stdout, t.run.stdout, "stdout{}", ctx());
    assert_eq!(ours.evacuated, t.evacuated, "instances evacuated{}", ctx());
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_string()).collect()
}

#[test]
fn off_evacuates_tagged_flavor_and_tagged_image_same() {
    for inv in [cli(&["-o", "off", "-n", C0]), stdin(&["action=off", "port=compute-0.example.com"])] {
        let (ours, theirs) = both(&cloud(fenced(), true), &inv, &nothing);
        assert_eq!(ours.run.code, Some(0), "{}", ours.run.show());
        assert_eq!(ours.evacuated, set(&["srv-a", "srv-b"]));
        assert_same(&ours, &theirs);
    }
}

#[test]
fn reboot_is_off_same() {
    let (ours, theirs) = both(&cloud(fenced(), true), &cli(&["-o", "reboot", "-n", C0]), &nothing);
    assert_eq!(ours.run.code, Some(0), "{}", ours.run.show());
    assert_same(&ours, &theirs);
}

#[test]
fn nothing_tagged_evacuates_everything_same() {
    let (ours, theirs) = both(&cloud(fenced(), false), &cli(&["-o", "off", "-n", C0, "--no-shared-storage"]), &nothing);
    assert_eq!(ours.run.code, Some(0), "{}", ours.run.show());
    assert_eq!(ours.evacuated, set(&["srv-a", "srv-b", "srv-c"]));
    assert_same(&ours, &theirs);
}

#[test]
fn unfenced_or_unknown_host_is_refused_same() {
    let (ours, theirs) = both(&cloud(host(C0, "down", "enabled", false), true), &cli(&["-o", "off", "-n", C0]), &nothing);
    assert_eq!(ours.run.code, Some(1));
    assert!(ours.run.stderr.contains("Cannot resurrect instances from compute-0.example.com"), "{}", ours.run.stderr);
    assert!(ours.evacuated.is_empty());
    assert_same(&ours, &theirs);
    // No domain fix-up in fence_evacuate: the short name is unknown to Nova.
    let (ours, theirs) = both(&cloud(fenced(), true), &cli(&["-o", "off", "-n", "compute-0"]), &nothing);
    assert_eq!(ours.run.code, Some(1));
    assert!(ours.run.stderr.contains("nova does not know about compute-0"), "{}", ours.run.stderr);
    assert_same(&ours, &theirs);
}

#[test]
fn refused_evacuations_fail_with_novas_message_same() {
    let refuse = |f: &Fixture| {
        f.sim.add_fault(FaultRule {
            id: Some("refuse".into()),
            service: Some("nova".into()),
            method: Some("POST".into()),
            path: Some("*/action".into()),
            action: Some(FaultAction::Error { status: 400, body: Some(serde_json::json!({"badRequest": {"code": 400, "message": "nope"}})) }),
            ..Default::default()
        });
    };
    let (ours, theirs) = both(&cloud(fenced(), true), &cli(&["-o", "off", "-n", C0]), &refuse);
    assert_eq!(ours.run.code, Some(1));
    assert!(ours.run.stderr.contains("Evacuation of srv-a on compute-0.example.com failed: nope"), "{}", ours.run.stderr);
    assert!(ours.run.stderr.contains("Resurrection of instances from compute-0.example.com failed"), "{}", ours.run.stderr);
    assert_same(&ours, &theirs);
}

#[test]
fn on_is_not_supported_same() {
    let (ours, theirs) = both(&cloud(fenced(), true), &cli(&["-o", "on", "-n", C0]), &nothing);
    assert_eq!(ours.run.code, Some(1));
    assert!(ours.run.stderr.contains("Action on is not supported by this agent"));
    assert_same(&ours, &theirs);
}

#[test]
fn status_off_on_failed_unknown_same() {
    let (ours, theirs) = both(&cloud(fenced(), true), &cli(&["-o", "status", "-n", C0]), &nothing);
    assert_eq!((ours.run.code, ours.run.stdout.as_str()), (Some(2), "Status: OFF\n"));
    assert_same(&ours, &theirs);
    let (ours, theirs) = both(&cloud(fenced(), true), &cli(&["-o", "status", "-n", C1]), &nothing);
    assert_eq!((ours.run.code, ours.run.stdout.as_str()), (Some(0), "Status: ON\n"));
    assert_same(&ours, &theirs);
    let (ours, theirs) = both(&cloud(host(C0, "down", "enabled", false), true), &cli(&["-o", "status", "-n", C0]), &nothing);
    assert_eq!(ours.run.code, Some(1));
    assert!(ours.run.stderr.contains("Unable to obtain correct plug status"), "{}", ours.run.stderr);
    assert_same(&ours, &theirs);
    let (ours, theirs) = both(&cloud(fenced(), true), &stdin(&["action=status", "port=nosuch"]), &nothing);
    assert_eq!(ours.run.code, Some(1));
    assert_same(&ours, &theirs);
}

#[test]
fn list_same() {
    let (ours, theirs) = both(&cloud(host(C0, "down", "enabled", false), true), &cli(&["-o", "list"]), &nothing);
    assert_eq!(ours.run.stdout, "compute-0.example.com,\ncompute-0,\ncompute-1.example.com,\ncompute-1,\n");
    assert_same(&ours, &theirs);
}

#[test]
fn false_means_false_o3_o12() {
    // no_shared_storage=false and instance_filtering=false on stdin: the reference reads both
    // as set (O3): "not shared" storage and filtering still on (O12). Ours: storage shared (only
    // sent below 2.14 anyway) and no filtering, so srv-c is evacuated too.
    let inv = stdin(&["action=off", "port=compute-0.example.com", "no_shared_storage=false", "instance_filtering=false"]);
    let (ours, theirs) = both(&cloud(fenced(), true), &inv, &nothing);
    assert_eq!(ours.run.code, Some(0), "{}", ours.run.show());
    assert_eq!(ours.evacuated, set(&["srv-a", "srv-b", "srv-c"]));
    if let Some(t) = theirs {
        assert_eq!(t.run.code, Some(0));
        assert_eq!(t.evacuated, set(&["srv-a", "srv-b"]), "{}", t.run.show());
        let shared: Vec<_> = t.run.nova.iter().filter_map(|c| c.body.as_ref()?.get("evacuate")?.get("onSharedStorage").cloned()).collect();
        assert!(shared.iter().all(|v| v == &serde_json::json!(false)), "{shared:?}");
    }
    // Ours never sends onSharedStorage to a 2.14+ cloud.
    assert!(ours.run.nova.iter().all(|c| c.body.as_ref().and_then(|b| b.get("evacuate")).is_none_or(|e| e.get("onSharedStorage").is_none())));
}
