//! fence_compute, ours and the Python reference side by side (tests/src/compat.rs), on the
//! scenarios of docs/reference-transcripts (fc_scenarios.out, extra_scenarios.out), in
//! command-line mode and in stdin mode exactly as pacemaker-fenced sends a device's options.
//!
//! Where the two agree, the test compares exit code, stdout, the effects on Nova services
//! (force-down / disable / enable, in order), the attribute writes and the services afterwards.
//! Where we differ on purpose the test asserts both behaviours and names the deviation
//! (docs/deviations.md, "fence_compute"). The wire differs everywhere on purpose (D40: one
//! service listing instead of probe + listing + per-host query; 2.53+ calls by service UUID
//! instead of 2.11 calls by host; a reason with the disable), so requests are compared as
//! effects. Without the reference (fence-agents or python3-novaclient missing) only our side
//! is checked.

use iha_tests::compat::{CLI_AUTH, Effect, Fixture, Invocation, Run, STDIN_AUTH, Side};
use iha_testkit::{FaultAction, FaultRule, HostConfig, Scenario};
use std::time::Duration;

const AGENT: &str = "fence_compute";
const C0: &str = "compute-0.example.com";
const C1: &str = "compute-1.example.com";

fn host(name: &str, state: &str, status: &str, forced: bool) -> HostConfig {
    HostConfig {
        name: name.into(),
        state: Some(state.into()),
        status: Some(status.into()),
        forced_down: forced,
        ..Default::default()
    }
}

/// The transcripts' cloud: compute-0 dead but not yet fenced (down, enabled), compute-1 up.
fn cloud() -> Scenario {
    with_hosts(vec![host(C0, "down", "enabled", false), host(C1, "up", "enabled", false)])
}

fn with_hosts(hosts: Vec<HostConfig>) -> Scenario {
    Scenario { hosts, ..Default::default() }
}

/// compute-0 as fence_compute leaves it.
fn fenced_cloud() -> Scenario {
    with_hosts(vec![host(C0, "down", "disabled", true), host(C1, "up", "enabled", false)])
}

fn cli(extra: &[&str]) -> Invocation {
    let mut a: Vec<&str> = CLI_AUTH.to_vec();
    a.extend_from_slice(extra);
    Invocation::args(&a)
}

fn stdin(extra: &[&str]) -> Invocation {
    let mut l: Vec<&str> = STDIN_AUTH.to_vec();
    l.extend_from_slice(extra);
    Invocation::stdin(&l)
}

/// Runs ours and (when available) theirs, each on a fresh fixture.
fn both(scn: &Scenario, attrs: &[(&str, &str)], inv: &Invocation, setup: impl Fn(&Fixture)) -> (Run, Option<Run>) {
    let f = Fixture::new(scn, attrs);
    setup(&f);
    let ours = f.run(Side::Ours, AGENT, inv);
    let f = Fixture::new(scn, attrs);
    setup(&f);
    let theirs = f.try_run(Side::Theirs, AGENT, inv);
    if theirs.is_none() {
        eprintln!("reference fence_compute not available: checking our side only");
    }
    (ours, theirs)
}

fn nothing(_: &Fixture) {}

fn nova_down(f: &Fixture) {
    f.sim.add_fault(FaultRule {
        id: Some("nova-down".into()),
        service: Some("nova".into()),
        action: Some(FaultAction::Error { status: 500, body: None }),
        ..Default::default()
    });
}

/// Exit code, stdout, effects (reasons aside), attribute writes and services afterwards agree.
fn assert_same(ours: &Run, theirs: &Option<Run>) {
    let Some(t) = theirs else { return };
    let ctx = || format!("\n--- ours\n{}\n--- theirs\n{}", ours.show(), t.show());
    assert_eq!(ours.code, t.code, "exit code{}", ctx());
    assert_eq!(ours.stdout, t.stdout, "stdout{}", ctx());
    assert_eq!(ours.effects_plain(), t.effects_plain(), "effects on nova{}", ctx());
    assert_eq!(ours.attrd_writes(), t.attrd_writes(), "attribute writes{}", ctx());
    assert_eq!(ours.attrd_db, t.attrd_db, "attributes afterwards{}", ctx());
    let svc = |r: &Run| r.services.iter().map(|s| (s.host.clone(), s.state.clone(), s.status.clone(), s.forced_down)).collect::<Vec<_>>();
    assert_eq!(svc(ours), svc(t), "services afterwards{}", ctx());
}

fn fence(host: &str) -> Vec<Effect> {
    vec![
        Effect::ForceDown { host: host.into(), forced: true },
        Effect::Disable { host: host.into(), reason: None },
    ]
}

fn unfence(host: &str) -> Vec<Effect> {
    vec![Effect::ForceDown { host: host.into(), forced: false }, Effect::Enable { host: host.into() }]
}

// ---------------------------------------------------------------- status

#[test]
fn status_of_failed_node_short_name_same() {
    for inv in [cli(&["-o", "status", "-n", "compute-0"]), stdin(&["action=status", "port=compute-0", "nodename=compute-0"]).under_pacemaker()] {
        let (ours, theirs) = both(&cloud(), &[], &inv, nothing);
        assert_eq!((ours.code, ours.stdout.as_str()), (Some(0), "Status: ON\n"), "{}", ours.show());
        assert!(ours.effects.is_empty());
        assert_same(&ours, &theirs);
    }
}

#[test]
fn status_of_up_node_same_and_fenced_node_off() {
    let (ours, theirs) = both(&cloud(), &[], &cli(&["-o", "status", "-n", C1]), nothing);
    assert_eq!(ours.stdout, "Status: ON\n");
    assert_same(&ours, &theirs);
    let (ours, theirs) = both(&fenced_cloud(), &[], &stdin(&["action=status", "port=compute-0"]), nothing);
    assert_eq!((ours.code, ours.stdout.as_str()), (Some(2), "Status: OFF\n"), "{}", ours.show());
    assert_same(&ours, &theirs);
}

#[test]
fn status_of_unknown_node_fails_d30() {
    for inv in [cli(&["-o", "status", "-n", "nosuch"]), stdin(&["action=status", "port=nosuch"])] {
        let (ours, theirs) = both(&cloud(), &[], &inv, nothing);
        // D30 (O7): the reference says ON for a host Nova does not know.
        assert_eq!(ours.code, Some(1), "D30: unknown host is a failure\n{}", ours.show());
        assert!(ours.stdout.is_empty());
        assert!(ours.stderr.contains("no nova-compute service matches 'nosuch'"), "{}", ours.stderr);
        if let Some(t) = theirs {
            assert_eq!((t.code, t.stdout.as_str()), (Some(0), "Status: ON\n"), "{}", t.show());
        }
    }
}

#[test]
fn status_with_nova_unreachable_fails_d30() {
    let inv = stdin(&["action=status", "port=compute-0"]).under_pacemaker();
    let (ours, theirs) = both(&cloud(), &[], &inv, nova_down);
    assert_eq!(ours.code, Some(1), "D30: nova unreachable is a failure\n{}", ours.show());
    assert!(ours.stderr.contains("cannot list nova-compute services"), "{}", ours.stderr);
    if let Some(t) = theirs {
        assert_eq!((t.code, t.stdout.as_str()), (Some(0), "Status: ON\n"), "{}", t.show());
    }
}

#[test]
fn status_of_several_plugs_same() {
    let (ours, theirs) = both(&cloud(), &[], &cli(&["-o", "status", "-n", "compute-0,compute-1"]), nothing);
    assert_eq!(ours.stdout, "Status: ON\n");
    assert_same(&ours, &theirs);
}

#[test]
fn status_with_compute_domain_same() {
    let (ours, theirs) =
        both(&cloud(), &[], &cli(&["-o", "status", "-n", "compute-0", "--compute-domain", "example.com"]), nothing);
    assert_eq!(ours.stdout, "Status: ON\n");
    assert_same(&ours, &theirs);
}

#[test]
fn status_without_plug_fails_same() {
    let inv = stdin(&["action=status", "nodename=compute-0"]);
    let (ours, theirs) = both(&cloud(), &[], &inv, nothing);
    assert_eq!(ours.code, Some(1));
    assert_same(&ours, &theirs);
}

// ---------------------------------------------------------------- list, monitor

#[test]
fn list_same() {
    for inv in [cli(&["-o", "list"]), stdin(&["action=list"])] {
        let (ours, theirs) = both(&cloud(), &[], &inv, nothing);
        assert_eq!(ours.stdout, format!("{C0},\ncompute-0,\n{C1},\ncompute-1,\n"));
        assert_same(&ours, &theirs);
    }
}

#[test]
fn list_status_reports_real_status_d31() {
    let (ours, theirs) = both(&fenced_cloud(), &[], &cli(&["-o", "list-status"]), nothing);
    assert_eq!(ours.code, Some(0));
    // D31: the reference prints UNKNOWN for every host.
    assert_eq!(ours.stdout, format!("{C0},,OFF\ncompute-0,,OFF\n{C1},,ON\ncompute-1,,ON\n"), "D31");
    if let Some(t) = theirs {
        assert_eq!(t.stdout, format!("{C0},,UNKNOWN\ncompute-0,,UNKNOWN\n{C1},,UNKNOWN\ncompute-1,,UNKNOWN\n"));
    }
}

#[test]
fn list_and_monitor_with_nova_down_fail_d38() {
    for action in ["action=list", "action=monitor"] {
        let inv = stdin(&[action]).under_pacemaker();
        let (ours, theirs) = both(&cloud(), &[], &inv, nova_down);
        // D38 (O28, O30): an empty list or a passing monitor would hide a dead Nova.
        assert_eq!((ours.code, ours.stdout.as_str()), (Some(1), ""), "D38 {action}\n{}", ours.show());
        if let Some(t) = theirs {
            assert_eq!((t.code, t.stdout.as_str()), (Some(0), ""), "{}", t.show());
        }
    }
}

#[test]
fn monitor_same() {
    let (ours, theirs) = both(&cloud(), &[], &stdin(&["action=monitor"]).under_pacemaker(), nothing);
    assert_eq!(ours.code, Some(0), "{}", ours.show());
    assert!(ours.nova.iter().any(|c| c.path.starts_with("/os-services")), "monitor really asks nova");
    assert_same(&ours, &theirs);
}

#[test]
fn monitor_with_wrong_password_fails() {
    let inv = Invocation::stdin(&["action=monitor", "auth_url={auth_url}", "login=admin", "passwd=wrong", "tenant_name=admin"]);
    let f = Fixture::new(&cloud(), &[]);
    let ours = f.run(Side::Ours, AGENT, &inv);
    assert_eq!(ours.code, Some(1), "{}", ours.show());
    assert!(ours.stderr.contains("authentication failed"), "{}", ours.stderr);
    assert!(!ours.stderr.contains("wrong"), "the password never reaches the log");
}

// ---------------------------------------------------------------- off

#[test]
fn off_short_name_same_effects() {
    let invs = [
        cli(&["-o", "off", "-n", "compute-0"]),
        // What pacemaker-fenced sends (fc_scenarios "off via stdin (pacemaker style)").
        stdin(&[
            "action=off",
            "port=compute-0",
            "project_domain=Default",
            "user_domain=Default",
            "nodename=compute-0",
            "region_name=RegionOne",
            "endpoint_type=publicURL",
        ])
        .under_pacemaker(),
    ];
    for inv in invs {
        let (ours, theirs) = both(&cloud(), &[], &inv, nothing);
        assert_eq!(ours.code, Some(0), "{}", ours.show());
        assert_eq!(ours.effects_plain(), fence(C0), "force-down, then disable\n{}", ours.show());
        assert_eq!(ours.attrd_writes(), [(C0.to_string(), "yes".to_string())]);
        assert_eq!(ours.attrd[0], ["-p", "-n", "evacuate", "-U", "yes", "-N", C0]);
        let s = ours.service(C0).unwrap();
        assert_eq!((s.state.as_str(), s.status.as_str(), s.forced_down), ("down", "disabled", true));
        // D32: the disable carries a reason naming the fencing.
        let reason = s.disabled_reason.clone().unwrap_or_default();
        assert!(reason.starts_with("instance-ha: fenced by fence_compute at "), "D32: {reason}");
        assert_same(&ours, &theirs);
    }
}

#[test]
fn off_uses_uuid_calls_at_2_53_and_host_calls_before_d40() {
    let f = Fixture::new(&cloud(), &[]);
    let ours = f.run(Side::Ours, AGENT, &cli(&["-o", "off", "-n", "compute-0"]));
    let puts: Vec<_> = ours.nova.iter().filter(|c| c.method == "PUT").collect();
    assert_eq!(puts.len(), 2);
    assert!(puts.iter().all(|c| !c.path.contains("force-down") && c.microversion.as_deref() >= Some("2.53")), "{puts:?}");
    // A cloud capped at 2.52: the 2.11 host+binary calls, as the reference sends them.
    let mut scn = cloud();
    scn.max_microversion = "2.52".into();
    let f = Fixture::new(&scn, &[]);
    let ours = f.run(Side::Ours, AGENT, &cli(&["-o", "off", "-n", "compute-0"]));
    let paths: Vec<&str> = ours.nova.iter().filter(|c| c.method == "PUT").map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["/os-services/force-down", "/os-services/disable-log-reason"], "{}", ours.show());
    assert_eq!(ours.effects_plain(), fence(C0));
}

#[test]
fn off_already_fenced_records_evacuation_d33() {
    let (ours, theirs) = both(&fenced_cloud(), &[], &cli(&["-o", "off", "-n", "compute-0"]), nothing);
    assert_eq!(ours.code, Some(0));
    assert!(ours.effects.is_empty(), "nothing to change in nova\n{}", ours.show());
    // D33 (O5): the reference does not queue a host that was already down and disabled.
    assert_eq!(ours.attrd_writes(), [(C0.to_string(), "yes".to_string())], "D33");
    if let Some(t) = theirs {
        assert_eq!(t.code, Some(0));
        assert!(t.attrd_writes().is_empty(), "{}", t.show());
    }
}

#[test]
fn off_already_fenced_and_evacuated_keeps_the_value_same() {
    for value in ["no", "ctl0@1700000000"] {
        let (ours, theirs) = both(&fenced_cloud(), &[(C0, value)], &cli(&["-o", "off", "-n", "compute-0"]), nothing);
        assert_eq!(ours.code, Some(0));
        assert!(ours.attrd_writes().is_empty(), "{value} kept\n{}", ours.show());
        assert_eq!(ours.evacuate(C0), Some(value));
        assert_same(&ours, &theirs);
    }
}

#[test]
fn off_with_domain_mismatch_same() {
    let (ours, theirs) = both(&cloud(), &[], &cli(&["-o", "off", "-n", "compute-0", "-d", "other.org"]), nothing);
    assert_eq!(ours.effects_plain(), fence(C0));
    assert_same(&ours, &theirs);
}

#[test]
fn off_with_short_named_nova_same() {
    let scn = with_hosts(vec![host("compute-0", "down", "enabled", false), host("compute-1", "up", "enabled", false)]);
    let (ours, theirs) = both(&scn, &[], &cli(&["-o", "off", "-n", C0]), nothing);
    assert_eq!(ours.effects_plain(), fence("compute-0"));
    assert_eq!(ours.attrd_writes(), [("compute-0".to_string(), "yes".to_string())]);
    assert_same(&ours, &theirs);
}

#[test]
fn off_with_several_domains_in_nova_works_d37() {
    let mut scn = cloud();
    scn.hosts.push(host("compute-9.other.org", "up", "enabled", false));
    let (ours, theirs) = both(&scn, &[], &cli(&["-o", "off", "-n", "compute-0"]), nothing);
    // D37 (O2): the reference fails every action (KeyError traceback).
    assert_eq!(ours.code, Some(0), "D37\n{}", ours.show());
    assert_eq!(ours.effects_plain(), fence(C0));
    if let Some(t) = theirs {
        assert_eq!(t.code, Some(1));
        assert!(t.stderr.contains("KeyError"), "{}", t.stderr);
        assert!(t.effects.is_empty());
    }
}

#[test]
fn off_ambiguous_short_name_fails_clearly() {
    let scn = with_hosts(vec![host(C0, "down", "enabled", false), host("compute-0.other.org", "up", "enabled", false)]);
    let f = Fixture::new(&scn, &[]);
    let ours = f.run(Side::Ours, AGENT, &cli(&["-o", "off", "-n", "compute-0"]));
    assert_eq!(ours.code, Some(1));
    assert!(ours.stderr.contains("ambiguous"), "{}", ours.stderr);
    assert!(ours.effects.is_empty() && ours.attrd.is_empty());
    // The domain decides.
    let ours = f.run(Side::Ours, AGENT, &cli(&["-o", "off", "-n", "compute-0", "-d", "other.org"]));
    assert_eq!(ours.effects_plain(), fence("compute-0.other.org"), "{}", ours.show());
}

#[test]
fn off_via_pcmk_host_map_value_and_nodename() {
    // pcmk_host_map=compute-0:nova-c0.example.com → port=nova-c0.example.com, nodename=compute-0.
    let scn = with_hosts(vec![host("nova-c0.example.com", "down", "enabled", false)]);
    let f = Fixture::new(&scn, &[]);
    let inv = stdin(&["action=off", "port=nova-c0.example.com", "nodename=compute-0"]).under_pacemaker();
    let ours = f.run(Side::Ours, AGENT, &inv);
    assert_eq!(ours.code, Some(0), "{}", ours.show());
    assert_eq!(ours.attrd_writes(), [("nova-c0.example.com".to_string(), "yes".to_string())]);
}

#[test]
fn off_record_only_disabled_same() {
    for v in ["disabled", "2", "Disabled"] {
        let line = format!("record_only={v}");
        let inv = Invocation::stdin(&["action=off", "port=compute-0", &line]);
        let (ours, theirs) = both(&cloud(), &[], &inv, nothing);
        assert_eq!(ours.code, Some(0));
        assert!(ours.nova.is_empty() && ours.attrd.is_empty(), "{}", ours.show());
        assert_same(&ours, &theirs);
    }
}

#[test]
fn off_without_force_down_support_fails_d35() {
    let mut scn = cloud();
    scn.max_microversion = "2.10".into();
    let inv = cli(&["-o", "off", "-n", "compute-0"]).timeout(Duration::from_secs(5));
    let (ours, theirs) = both(&scn, &[], &inv, nothing);
    // D35 (O4): the reference polls forever once force-down fails.
    assert_eq!(ours.code, Some(1), "D35\n{}", ours.show());
    assert!(ours.stderr.contains("cannot force nova-compute down on compute-0.example.com"), "{}", ours.stderr);
    assert!(ours.attrd.is_empty());
    assert!(ours.effects.is_empty(), "disable is not attempted after a failed force-down");
    if let Some(t) = theirs {
        assert_eq!(t.code, None, "the reference loops until killed\n{}", t.show());
    }
}

#[test]
fn off_of_host_unknown_to_nova_fails_d46() {
    let inv = cli(&["-o", "off", "-n", "compute-7"]).timeout(Duration::from_secs(5));
    let (ours, theirs) = both(&cloud(), &[], &inv, nothing);
    // D46: the reference tries to force down a host Nova does not have, then polls forever (O4).
    assert_eq!(ours.code, Some(1), "D46\n{}", ours.show());
    assert!(ours.stderr.contains("no nova-compute service matches 'compute-7'"), "{}", ours.stderr);
    assert!(ours.effects.is_empty() && ours.attrd.is_empty());
    if let Some(t) = theirs {
        assert_eq!(t.code, None, "{}", t.show());
        assert!(t.attrd_writes().is_empty());
    }
}

#[test]
fn off_with_nova_unreachable_fails_same() {
    let inv = stdin(&["action=off", "port=compute-0"]).under_pacemaker();
    let (ours, theirs) = both(&cloud(), &[], &inv, nova_down);
    assert_eq!(ours.code, Some(1), "{}", ours.show());
    assert_same(&ours, &theirs);
}

#[test]
fn off_when_attrd_fails_is_a_failure_d36() {
    let f = Fixture::new(&cloud(), &[]);
    let inv = cli(&["-o", "off", "-n", "compute-0"]).env("IHA_ATTRD_FAIL", "1");
    let ours = f.run(Side::Ours, AGENT, &inv);
    // D36: the reference ignores attrd_updater's exit status; the host would never be evacuated.
    assert_eq!(ours.code, Some(1), "D36\n{}", ours.show());
    assert!(ours.stderr.contains("cannot record compute-0.example.com for evacuation"), "{}", ours.stderr);
}

#[test]
fn reboot_is_rejected_same() {
    let inv = stdin(&["action=reboot", "port=compute-0"]);
    let (ours, theirs) = both(&cloud(), &[], &inv, nothing);
    assert_eq!(ours.code, Some(1));
    assert!(ours.stderr.contains("Unrecognised action 'reboot'"), "{}", ours.stderr);
    assert_same(&ours, &theirs);
}

// ---------------------------------------------------------------- on

#[test]
fn on_with_evacuation_done_same() {
    for value in ["no", ""] {
        let inv = stdin(&["action=on", "port=compute-0"]).under_pacemaker();
        let (ours, theirs) = both(&fenced_cloud(), &[(C0, value)], &inv, nothing);
        assert_eq!(ours.code, Some(0), "{}", ours.show());
        assert_eq!(ours.effects_plain(), unfence(C0), "{}", ours.show());
        assert!(ours.attrd_writes().is_empty(), "on never writes the attribute");
        assert_same(&ours, &theirs);
    }
}

#[test]
fn on_up_disabled_forced_with_empty_value_same() {
    let scn = with_hosts(vec![host(C0, "up", "disabled", true), host(C1, "up", "enabled", false)]);
    let (ours, theirs) = both(&scn, &[(C0, "")], &stdin(&["action=on", "port=compute-0"]), nothing);
    assert_eq!(ours.effects_plain(), unfence(C0), "{}", ours.show());
    assert_same(&ours, &theirs);
}

#[test]
fn on_of_healthy_node_same() {
    let (ours, theirs) = both(&cloud(), &[], &cli(&["-o", "on", "-n", "compute-1"]), nothing);
    assert_eq!(ours.code, Some(0));
    assert!(ours.effects.is_empty());
    assert_same(&ours, &theirs);
}

#[test]
fn on_of_host_unknown_to_nova_succeeds_same() {
    // A new compute node whose nova-compute never registered: nothing to restore, and failing
    // would keep nova-compute (started after unfencing) from ever registering it.
    let (ours, theirs) = both(&cloud(), &[], &stdin(&["action=on", "port=compute-7"]).under_pacemaker(), nothing);
    assert_eq!(ours.code, Some(0), "{}", ours.show());
    assert!(ours.effects.is_empty());
    assert_eq!(ours.attrd, [["-p", "-n", "evacuate", "-Q", "-N", "compute-7"]]);
    assert_same(&ours, &theirs);
}

#[test]
fn on_while_evacuation_pending_fails_at_the_deadline_d34() {
    for value in ["yes", "ctrl-0@123"] {
        let inv = stdin(&["action=on", "port=compute-0"]).ours("action_timeout=3").timeout(Duration::from_secs(5));
        let (ours, theirs) = both(&fenced_cloud(), &[(C0, value)], &inv, nothing);
        // D34 (O6): the reference waits forever.
        assert_eq!(ours.code, Some(1), "D34\n{}", ours.show());
        assert!(ours.stderr.contains("evacuation of compute-0.example.com is not finished"), "{}", ours.stderr);
        assert!(ours.effects.is_empty(), "nothing is re-enabled before the evacuation is settled");
        assert!(ours.attrd.len() >= 2, "polled: {:?}", ours.attrd);
        if let Some(t) = theirs {
            assert_eq!(t.code, None, "{}", t.show());
            assert!(t.effects.is_empty());
        }
    }
}

#[test]
fn on_of_service_not_forced_only_enables_d39() {
    let scn = with_hosts(vec![host(C0, "down", "disabled", false), host(C1, "up", "enabled", false)]);
    let (ours, theirs) = both(&scn, &[], &stdin(&["action=on", "port=compute-0"]), nothing);
    assert_eq!(ours.code, Some(0));
    // D39: no un-forcing of a service that is not forced down.
    assert_eq!(ours.effects_plain(), [Effect::Enable { host: C0.into() }], "D39\n{}", ours.show());
    if let Some(t) = theirs {
        assert_eq!(t.effects_plain(), unfence(C0));
    }
}

#[test]
fn on_with_nova_unreachable_fails_in_both_modes_d41() {
    for (inv, reference_code) in [
        (cli(&["-o", "on", "-n", "compute-0", "--power-timeout", "3"]), Some(0)),
        (stdin(&["action=on", "port=compute-0"]).under_pacemaker(), Some(1)),
    ] {
        let (ours, theirs) = both(&cloud(), &[], &inv, nova_down);
        // D41 (O8): the reference succeeds from the command line, fails under Pacemaker.
        assert_eq!(ours.code, Some(1), "D41\n{}", ours.show());
        if let Some(t) = theirs {
            assert_eq!(t.code, reference_code, "{}", t.show());
        }
    }
}

/// compute-0 fenced, its two instances evacuated: `done` migrations remain until its
/// nova-compute restarts, and Nova refuses to clear forced-down until then.
fn evacuated(f: &Fixture) {
    let ids: Vec<String> = f.sim.state().servers_on(C0).iter().map(|s| s.id.clone()).collect();
    let nova = f.sim.nova().mv("2.29");
    for id in &ids {
        let r = nova.post(&format!("/servers/{id}/action"), &serde_json::json!({"evacuate": {}})).expect("evacuate");
        assert!(r.status < 300, "evacuate {id}: {}", r.text());
    }
    let done = |s: &iha_testkit::StateDump| {
        s.migrations.iter().filter(|m| m.source_compute.as_deref() == Some(C0) && m.status == "done").count() == ids.len()
    };
    assert!(f.sim.wait_until(Duration::from_secs(10), done), "evacuations done");
}

#[test]
fn on_with_done_evacuations_enables_and_leaves_forced_down_d43() {
    let mut scn = fenced_cloud();
    scn.rebuild_delay_ms = 20;
    scn.schedule_delay_ms = 5;
    scn.add_servers(C0, "vm", 2);
    let inv = stdin(&["action=on", "port=compute-0"]).under_pacemaker().timeout(Duration::from_secs(30));
    let (ours, theirs) = both(&scn, &[(C0, "no")], &inv, evacuated);
    // D43: Nova refuses the un-forcing; ours retries (bounded), enables, and succeeds.
    assert_eq!(ours.code, Some(0), "D43\n{}", ours.show());
    let svc = ours.service(C0).unwrap();
    assert_eq!((svc.status.as_str(), svc.forced_down), ("enabled", true), "{}", ours.show());
    let refused = ours.effects.iter().filter(|e| matches!(e, Effect::Other { status: 400, .. })).count();
    assert!(refused >= 2, "retried: {:?}", ours.effects);
    assert!(ours.stderr.contains("stays forced down"), "{}", ours.stderr);
    if let Some(t) = theirs {
        // The reference warns once and enables: the same end state, no retry.
        assert_eq!(t.code, Some(0), "{}", t.show());
        let s = t.service(C0).unwrap();
        assert_eq!((s.status.as_str(), s.forced_down), ("enabled", true), "{}", t.show());
    }
    // Once nova-compute has started on the host (done → completed), unfencing clears it.
    let f = Fixture::new(&scn, &[(C0, "no")]);
    evacuated(&f);
    assert!(f.sim.start_host(C0));
    let r = f.run(Side::Ours, AGENT, &stdin(&["action=on", "port=compute-0"]));
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert!(!r.service(C0).unwrap().forced_down, "{}", r.show());
}

#[test]
fn on_keeps_an_operators_disable() {
    let mut c0 = host(C0, "down", "disabled", true);
    c0.disabled_reason = Some("maintenance: ticket 42".into());
    let f = Fixture::new(&with_hosts(vec![c0, host(C1, "up", "enabled", false)]), &[(C0, "no")]);
    let ours = f.run(Side::Ours, AGENT, &stdin(&["action=on", "port=compute-0"]));
    assert_eq!(ours.code, Some(0), "{}", ours.show());
    assert_eq!(ours.effects_plain(), [Effect::ForceDown { host: C0.into(), forced: false }]);
    assert_eq!(ours.service(C0).unwrap().status, "disabled");
}

// ---------------------------------------------------------------- validation, TLS, names

#[test]
fn validate_all_without_port_d4() {
    let (ours, theirs) = both(&cloud(), &[], &stdin(&["action=validate-all"]), nothing);
    assert_eq!(ours.code, Some(0), "D4\n{}", ours.show());
    assert!(ours.nova.is_empty(), "validate-all makes no request");
    if let Some(t) = theirs {
        assert_eq!(t.code, Some(1));
    }
}

#[test]
fn validate_all_checks_credentials_and_endpoint_type() {
    let f = Fixture::new(&cloud(), &[]);
    let run = |lines: &[&str]| f.run(Side::Ours, AGENT, &Invocation::stdin(lines));
    let r = run(&["action=validate-all", "auth_url=http://x/v3", "login=admin", "tenant_name=admin"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("no credentials"), "{}", r.stderr);
    let r = run(&["action=validate-all", "auth_url=http://x/v3", "passwd=secret", "tenant_name=admin"]);
    assert!(r.stderr.contains("needs a username or user_id"), "{}", r.stderr);
    let r = run(&["action=validate-all", "auth_url=http://x/v3", "login=a", "passwd=b", "endpoint_type=privateURL"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("endpoint_type 'privateURL' is not one of"), "{}", r.stderr);
    let r = run(&["action=validate-all", "auth_url=http://x/v3", "application_credential_id=abc", "application_credential_secret=s"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = run(&["action=validate-all", "auth_url=http://x/v3", "login=a", "password_script=/bin/echo s"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(f.sim.log().is_empty(), "no network");
}

#[test]
fn keystone_v2_auth_url_is_refused_clearly() {
    let f = Fixture::new(&cloud(), &[]);
    let inv = Invocation::args(&["-o", "monitor", "-k", "http://127.0.0.1:9/v2.0", "-l", "admin", "-p", "secret", "-t", "admin"]);
    let ours = f.run(Side::Ours, AGENT, &inv);
    assert_eq!(ours.code, Some(1));
    assert!(ours.stderr.contains("v2"), "{}", ours.stderr);
}

#[test]
fn shell_metacharacters_in_a_host_name_are_harmless() {
    let marker = std::env::temp_dir().join(format!("iha-fc-pwned-{}", std::process::id()));
    let evil = format!("c0;touch {};$(touch {})`touch {}`", marker.display(), marker.display(), marker.display());
    let scn = with_hosts(vec![host(&evil, "down", "enabled", false)]);
    let f = Fixture::new(&scn, &[]);
    let port = format!("port={evil}");
    let ours = f.run(Side::Ours, AGENT, &stdin(&["action=off", &port]));
    assert_eq!(ours.code, Some(0), "{}", ours.show());
    assert_eq!(ours.attrd[0], ["-p", "-n", "evacuate", "-U", "yes", "-N", evil.as_str()]);
    assert_eq!(ours.evacuate(&evil), Some("yes"));
    assert!(!marker.exists(), "a shell ran the host name");
}

#[test]
fn insecure_false_keeps_tls_verification_d1() {
    let data = iha_tests::repo().join("crates/testkit/data");
    let (Ok(cert), Ok(key)) = (std::fs::read(data.join("server.pem")), std::fs::read(data.join("server.key"))) else {
        eprintln!("no test certificates: skipped");
        return;
    };
    let sim = iha_testkit::Simulator::start_tls(cloud(), &cert, &key).expect("tls simulator");
    let auth = format!("auth_url={}", sim.auth_url());
    let base = ["action=status", "port=compute-0", "login=admin", "passwd=secret", "tenant_name=admin"];
    let mut lines: Vec<&str> = base.to_vec();
    lines.extend([auth.as_str(), "insecure=false"]);
    let stdin = lines.join("\n") + "\n";
    let bin = iha_tests::bin(AGENT);
    let (code, out, err) =
        iha_tests::compat::run_with_timeout(std::process::Command::new(&bin), &stdin, Duration::from_secs(20));
    assert_eq!(code, Some(1), "D1: insecure=false verifies the certificate\n{out}{err}");
    assert!(err.to_lowercase().contains("tls") || err.contains("certificate"), "{err}");
    let cacert = format!("cacert={}", data.join("ca.pem").display());
    let stdin2 = format!("{stdin}{cacert}\n");
    let (code, out, err) =
        iha_tests::compat::run_with_timeout(std::process::Command::new(&bin), &stdin2, Duration::from_secs(20));
    assert_eq!((code, out.as_str()), (Some(0), "Status: ON\n"), "{err}");
    if let Some(script) = iha_tests::compat::reference_agent(AGENT) {
        // Its Keystone discovery (keystoneclient) always verifies, so the CA is trusted through
        // REQUESTS_CA_BUNDLE; the keystoneauth session then shows that insecure=false turned
        // verification off (`curl ... --insecure` in its debug output).
        let mut c = std::process::Command::new("/usr/bin/python3");
        c.arg("-c")
            .arg("import inspect,runpy,sys\ninspect.getargspec=inspect.getfullargspec\np=sys.argv[1]\nsys.argv=[p]\nrunpy.run_path(p,run_name='__main__')\n")
            .arg(script)
            .env("REQUESTS_CA_BUNDLE", data.join("ca.pem"));
        let (code, out, err) = iha_tests::compat::run_with_timeout(c, &format!("{stdin}verbose=1\n"), Duration::from_secs(20));
        assert_eq!((code, out.as_str()), (Some(0), "Status: ON\n"), "{err}");
        assert!(err.contains("--insecure"), "the reference turns verification off for insecure=false (O3)\n{err}");
    }
}

#[test]
fn the_password_never_reaches_the_log_even_verbose() {
    let mut scn = cloud();
    scn.auth.password = "Zq9-unique-pw".into();
    let f = Fixture::new(&scn, &[]);
    let inv = Invocation::stdin(&[
        "action=off",
        "port=compute-0",
        "auth_url={auth_url}",
        "login=admin",
        "passwd=Zq9-unique-pw",
        "tenant_name=admin",
        "verbose=1",
    ]);
    let r = f.run(Side::Ours, AGENT, &inv);
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert!(r.stderr.contains("Forcing nova-compute down"), "verbose shows progress: {}", r.stderr);
    assert!(!r.stderr.contains("Zq9-unique-pw"), "{}", r.stderr);
}
