//! Unit tests of the engine against the in-memory Nova and cluster.

use super::*;
use crate::clock::iso8601;
use crate::fake::{EvacFault, FakeNova};
use iha_pacemaker::fake::FakeCluster;
use iha_pacemaker::FenceEvent;

fn fast() -> Settings {
    Settings {
        poll_min: Duration::from_millis(1),
        poll_max: Duration::from_millis(4),
        retry_backoff: Duration::from_millis(1),
        recheck_after: Duration::from_millis(1),
        fence_check: FenceCheck::NovaOnly,
        ..Settings::default()
    }
}

fn cloud(n: usize) -> (FakeNova, Vec<String>) {
    let nova = FakeNova::new();
    nova.add_host_fenced("dead");
    nova.add_host_up("c1");
    nova.add_host_up("c2");
    let ids = nova.add_servers("dead", "s", n);
    (nova, ids)
}

fn run(nova: &FakeNova, settings: &Settings, cluster: Option<&dyn Cluster>) -> Result<HostReport, EngineError> {
    let limiter = Limiter::new(settings.concurrency);
    let policy = PolicyConfig::default();
    let engine = Engine { nova, cluster, settings, policy: &policy, limiter: &limiter };
    engine.evacuate_host("dead", Some(Instant::now() + Duration::from_secs(20)), &|| {})
}

fn outcome<'a>(r: &'a HostReport, id: &str) -> &'a Outcome {
    &r.instances.iter().find(|i| i.id == id).unwrap_or_else(|| panic!("{id} not in report")).outcome
}

#[test]
fn evacuates_every_instance_once_and_tracks_it_to_the_end() {
    let (nova, ids) = cloud(40);
    let r = run(&nova, &fast(), None).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    assert_eq!(r.count("evacuated"), 40);
    for id in &ids {
        assert_eq!(nova.accepted(id), 1, "{id}");
        match outcome(&r, id) {
            Outcome::Evacuated { to, status } => {
                assert_ne!(to, "dead");
                assert_eq!(status, "ACTIVE");
            }
            o => panic!("{id}: {o:?}"),
        }
    }
    // Batched tracking: one servers listing and one migrations listing per round, whatever N
    // (and one migrations listing per poll while a long issuance runs).
    assert_eq!(nova.calls("list_migrations"), r.rounds + r.follow_polls);
    assert_eq!(nova.calls("list_servers_on_host"), r.rounds);
    // Each finished evacuation confirmed once: no server read twice, and the many left at the
    // end by one listing (see the next test).
    for id in &ids {
        assert!(nova.server_reads(id) <= 1, "{id}");
    }
    assert!(nova.calls("get_server") < 40);
    assert_eq!(nova.calls("list_servers_changed_since"), 1);
    let json: serde_json::Value = serde_json::from_str(&r.summary_json()).unwrap();
    assert_eq!(json["evacuated"], 40);
    assert_eq!(json["settled"], true);
}

#[test]
fn finished_evacuations_are_confirmed_by_a_listing_when_many_and_read_one_by_one_otherwise() {
    // A few: one read each, no listing.
    let (nova, ids) = cloud(5);
    let r = run(&nova, &fast(), None).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    assert_eq!(nova.calls("get_server"), ids.len() as u32);
    assert_eq!(nova.calls("list_servers_changed_since"), 0);

    // Many, some of which the listing does not show: those, and only those, are read. (One
    // wave of evacuate calls, so no follower confirms a few of them meanwhile.)
    let one_wave = Settings { concurrency: 64, ..fast() };
    let (nova, ids) = cloud(40);
    let left_out: Vec<String> = ids.iter().step_by(10).cloned().collect();
    nova.leave_out_of_changes(&left_out);
    let r = run(&nova, &one_wave, None).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    assert_eq!(r.count("evacuated"), 40);
    assert_eq!(nova.calls("list_servers_changed_since"), 1);
    assert_eq!(nova.calls("get_server"), left_out.len() as u32);
    for id in &left_out {
        assert_eq!(nova.server_reads(id), 1, "{id}");
    }

    // The listing fails: every one is read, nothing is lost.
    let (nova, ids) = cloud(40);
    nova.fail_changes_listing();
    let r = run(&nova, &one_wave, None).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    assert_eq!(r.count("evacuated"), 40);
    for id in &ids {
        assert_eq!(nova.accepted(id), 1, "{id}");
    }
    assert_eq!(nova.calls("get_server"), 40);
}

#[test]
fn a_live_or_unfenced_host_is_never_evacuated() {
    let nova = FakeNova::new();
    nova.add_host_up("dead"); // the name is a lie: it is up
    nova.add_host_up("c1");
    nova.add_servers("dead", "s", 3);
    let e = run(&nova, &fast(), None).unwrap_err();
    assert!(matches!(&e, EngineError::NotFenced(w) if w.contains("not fenced in nova")), "{e}");
    // Down (heartbeat lost) but neither forced down nor disabled: not fenced either.
    nova.edit_service("dead", |s| s.state = Some("down".into()));
    assert!(matches!(run(&nova, &fast(), None), Err(EngineError::NotFenced(_))));
    // Down and disabled: the reference's "off" is accepted.
    nova.edit_service("dead", |s| s.status = "disabled".into());
    assert!(run(&nova, &fast(), None).unwrap().ok());
    let unknown = FakeNova::new();
    assert!(matches!(run(&unknown, &fast(), None), Err(EngineError::UnknownHost(_))));
    assert_eq!(nova.calls("evacuate"), 3);
    // The reads issued alongside the fencing check changed nothing on the refused host.
    let (nova, _) = cloud(3);
    nova.edit_service("dead", |s| *s = Service { state: Some("up".into()), status: "enabled".into(), forced_down: Some(false), ..s.clone() });
    assert!(matches!(run(&nova, &fast(), None), Err(EngineError::NotFenced(_))));
    assert!(nova.calls("list_servers_on_host") > 0);
    assert!(nova.journal().iter().all(|c| c.starts_with("list_") || c == "api_versions"), "{:?}", nova.journal());
}

#[test]
fn the_reads_an_evacuation_needs_are_issued_together_and_answered_before_it() {
    let (nova, ids) = cloud(6);
    nova.add_flavor("plain", &[]);
    nova.add_aggregate("agg", &["c1"], &[]);
    let cluster = FakeCluster::new("ctl0");
    cluster.fenced("dead", 100);
    let settings = Settings { fence_check: FenceCheck::History, reserved_hosts: vec!["c1".into()], ..fast() };
    // Seven independent reads precede the first evacuation: the fencing check, flavors,
    // images, aggregates, the reserved targets' services, the host's servers and migrations.
    // Held until seven wait together: one after the other, each would wait 5 s and fail this.
    nova.hold_reads_until(7);
    let r = run(&nova, &settings, Some(&cluster)).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    assert_eq!(nova.reads_held_together(), 7, "the reads were issued together");
    // Their order among themselves is free; what matters: every one was answered before the
    // first evacuation, and nothing but reads came before it.
    let journal = nova.journal();
    let first = journal.iter().position(|c| c == "evacuate").expect("evacuated");
    let before = &journal[..first];
    for read in ["list_flavors", "list_images", "list_aggregates", "list_servers_on_host", "list_migrations"] {
        assert_eq!(before.iter().filter(|c| *c == read).count(), 1, "{read} before the first evacuation: {journal:?}");
    }
    assert_eq!(before.iter().filter(|c| *c == "list_services").count(), 2, "fencing check and reserved targets: {journal:?}");
    // And the version range the evacuations are sent with, asked alongside (with a cold
    // cache the reads above go out on an assumed range; the writes never do).
    assert_eq!(before.iter().filter(|c| *c == "api_versions").count(), 1, "{journal:?}");
    assert_eq!(before.len(), 8, "{journal:?}");
    for id in &ids {
        assert_eq!(nova.accepted(id), 1, "{id}");
    }
}

#[test]
fn a_closed_gate_evacuates_nothing() {
    let (nova, _) = cloud(3);
    let limiter = Limiter::new(4);
    let policy = PolicyConfig::default();
    let settings = fast();
    let engine = Engine { nova: &nova, cluster: None, settings: &settings, policy: &policy, limiter: &limiter };
    let held = engine.evacuate_host_gated("dead", None, &|| {}, || Err::<(), _>("held by the storm guard"));
    assert_eq!(held.unwrap_err(), Gated::Closed("held by the storm guard"));
    assert_eq!(nova.calls("evacuate"), 0);
    // The gate's verdict comes first, also for a host that is not fenced.
    nova.edit_service("dead", |s| s.forced_down = Some(false));
    nova.edit_service("dead", |s| s.state = Some("up".into()));
    assert_eq!(engine.evacuate_host_gated("dead", None, &|| {}, || Err::<(), _>("held")).unwrap_err(), Gated::Closed("held"));
    assert!(matches!(engine.evacuate_host_gated("dead", None, &|| {}, || Ok::<(), &str>(())), Err(Gated::Engine(EngineError::NotFenced(_)))));
    assert_eq!(nova.calls("evacuate"), 0);
    nova.edit_service("dead", |s| s.forced_down = Some(true));
    let r = engine.evacuate_host_gated("dead", None, &|| {}, || Ok::<(), &str>(())).unwrap();
    assert!(r.ok() && r.count("evacuated") == 3, "{}", r.summary_json());
}

fn old_migration(id: &str, instance: &str, status: &str, at: i64) -> Migration {
    Migration {
        id: id.into(),
        instance_uuid: Some(instance.into()),
        source_compute: Some("dead".into()),
        status: status.into(),
        migration_type: Some("evacuation".into()),
        created_at: Some(iso8601(at)),
        updated_at: Some(iso8601(at)),
        ..Default::default()
    }
}

#[test]
fn the_first_listing_is_narrowed_to_the_incident() {
    // Fenced an hour ago; three hours ago, in an earlier incident, an evacuation of the same
    // instance failed (it came back since). The first listing, read before the incident's start
    // is known, covers `lookback` and contains it: it must not count as an attempt now.
    let now = now_epoch();
    let (nova, ids) = cloud(1);
    nova.edit_service("dead", |s| s.updated_at = Some(iso8601(now - 3600)));
    nova.add_migration(old_migration("900", &ids[0], "error", now - 3 * 3600));
    let settings = Settings { attempts: 1, ..fast() };
    let r = run(&nova, &settings, None).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    assert_eq!(nova.accepted(&ids[0]), 2, "the old record and this incident's evacuation");
    assert_eq!(nova.calls("list_migrations"), r.rounds + r.follow_polls, "the first listing was used, narrowed");
    // An incident older than `lookback`: its migrations are listed again with its own window.
    let (nova, ids) = cloud(1);
    nova.edit_service("dead", |s| s.updated_at = Some(iso8601(now - 8 * 3600)));
    nova.add_migration(old_migration("901", &ids[0], "error", now - 9 * 3600));
    let r = run(&nova, &settings, None).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    assert_eq!(nova.calls("list_migrations"), r.rounds + r.follow_polls + 1);
}

#[test]
fn evacuations_are_confirmed_while_the_rest_are_still_being_issued() {
    let (nova, ids) = cloud(30);
    nova.evacuate_latency(Duration::from_millis(10));
    // One call at a time: the issuing takes 30 calls' time, polling is every few milliseconds.
    let settings = Settings { concurrency: 1, ..fast() };
    let r = run(&nova, &settings, None).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    assert!(r.follow_polls > 0);
    let journal = nova.journal();
    let last = journal.iter().rposition(|c| c == "evacuate").unwrap();
    assert!(journal[..last].iter().any(|c| c == "get_server"), "confirmed before the last was issued: {journal:?}");
    for id in &ids {
        assert_eq!(nova.accepted(id), 1, "{id}");
    }
    // One confirmation per instance: a read of its own while the follower finds a few done at
    // a time, or a listing for the many left once the issuing ends.
    for id in &ids {
        assert!(nova.server_reads(id) <= 1, "{id} read {} times", nova.server_reads(id));
    }
    assert!(nova.calls("list_servers_changed_since") <= 1);
    if nova.calls("list_servers_changed_since") == 0 {
        assert_eq!(nova.calls("get_server"), 30);
    }
    // Confirmations have their own budget, never below MIN_TRACKING_READS.
    assert_eq!(Limiter::new(1).read_size(), MIN_TRACKING_READS);
    assert_eq!(Limiter::new(64).read_size(), 64);
    assert_eq!(Limiter::new(1).size(), 1);
}

#[test]
fn pacemaker_history_must_confirm_the_fencing() {
    let (nova, _) = cloud(2);
    let settings = Settings { fence_check: FenceCheck::History, ..fast() };
    let cluster = FakeCluster::new("ctl0");
    // Nothing recorded: refused.
    let e = run(&nova, &settings, Some(&cluster)).unwrap_err();
    assert!(e.to_string().contains("no record of fencing"), "{e}");
    // In progress: wait (NovaEvacuate), but fence_evacuate runs inside that operation.
    cluster.history_event(FenceEvent {
        target: "dead".into(),
        action: "reboot".into(),
        state: FenceState::Pending,
        completed: None,
        completed_epoch: None,
        delegate: None,
    });
    let e = run(&nova, &settings, Some(&cluster)).unwrap_err();
    assert!(matches!(e, EngineError::FencingPending(_)), "{e}");
    assert!(e.to_string().contains("still in progress"), "{e}");
    let inside = Settings { fence_check: FenceCheck::InsideFencing, ..fast() };
    assert!(run(&nova, &inside, Some(&cluster)).unwrap().ok());
    assert_eq!(nova.calls("evacuate"), 2);

    // A successful fence followed by an unfencing: the node is back, refuse.
    let (nova, _) = cloud(1);
    let cluster = FakeCluster::new("ctl0");
    cluster.fenced("dead", 100);
    cluster.history_event(FenceEvent {
        target: "dead".into(),
        action: "on".into(),
        state: FenceState::Success,
        completed: None,
        completed_epoch: Some(200),
        delegate: None,
    });
    let e = run(&nova, &settings, Some(&cluster)).unwrap_err();
    assert!(e.to_string().contains("'on'"), "{e}");
    cluster.fenced("dead", 300);
    assert!(run(&nova, &settings, Some(&cluster)).unwrap().ok());

    // Fenced, then the node rejoined: its unfencing is pending (fence_compute `on` waits for this
    // evacuation) or failed (timed out waiting): the node is still fenced, evacuate.
    let (nova, _) = cloud(1);
    let cluster = FakeCluster::new("ctl0");
    cluster.fenced("dead", 100);
    for (state, at) in [(FenceState::Failed, Some(200)), (FenceState::Pending, None)] {
        cluster.history_event(FenceEvent {
            target: "dead".into(),
            action: "on".into(),
            state,
            completed: None,
            completed_epoch: at,
            delegate: None,
        });
    }
    assert!(run(&nova, &settings, Some(&cluster)).unwrap().ok());

    // A reboot through a multi-device topology level in its `on` phase: the history shows the
    // operation as a pending `on`, and the last completed operation is the node's unfencing
    // when it joined. That is a fencing in progress (waited for), not a node coming back; once
    // the reboot completes it is fenced.
    let (nova, _) = cloud(1);
    let cluster = FakeCluster::new("ctl0");
    let event = |action: &str, state, completed_epoch| FenceEvent {
        target: "dead".into(),
        action: action.into(),
        state,
        completed: None,
        completed_epoch,
        delegate: None,
    };
    cluster.history_event(event("on", FenceState::Success, Some(50)));
    cluster.history_event(event("on", FenceState::Pending, None));
    let e = run(&nova, &settings, Some(&cluster)).unwrap_err();
    assert!(matches!(e, EngineError::FencingPending(_)), "{e}");
    assert_eq!(nova.calls("evacuate"), 0);
    let cluster = FakeCluster::new("ctl0");
    cluster.history_event(event("on", FenceState::Success, Some(50)));
    cluster.fenced("dead", 100);
    assert!(run(&nova, &settings, Some(&cluster)).unwrap().ok());
    // Never fenced at all, only unfenced: refused (after the pending `on` completes too).
    let (nova, _) = cloud(1);
    let cluster = FakeCluster::new("ctl0");
    cluster.history_event(event("on", FenceState::Success, Some(50)));
    let e = run(&nova, &settings, Some(&cluster)).unwrap_err();
    assert!(matches!(e, EngineError::NotFenced(_)), "{e}");

    // History unreadable here (no fencer): Nova's forced-down alone decides.
    let (nova, _) = cloud(1);
    let cluster = FakeCluster::new("ctl0");
    cluster.history_unavailable();
    assert!(run(&nova, &settings, Some(&cluster)).unwrap().ok());
}

#[test]
fn fqdn_hosts_match_short_node_names() {
    let nova = FakeNova::new();
    nova.add_host_fenced("dead.example.com");
    nova.add_host_up("c1");
    nova.add_servers("dead.example.com", "s", 1);
    let cluster = FakeCluster::new("ctl0");
    cluster.fenced("dead", 100);
    let settings = Settings { fence_check: FenceCheck::History, ..fast() };
    let limiter = Limiter::new(4);
    let policy = PolicyConfig::default();
    let engine = Engine { nova: &nova, cluster: Some(&cluster), settings: &settings, policy: &policy, limiter: &limiter };
    assert!(engine.evacuate_host("dead.example.com", None, &|| {}).unwrap().ok());
    assert_eq!(node_candidates("dead.example.com"), vec!["dead.example.com".to_string(), "dead".to_string()]);
}

#[test]
fn instances_nova_cannot_evacuate_are_reported_not_retried() {
    let (nova, _) = cloud(0);
    for (id, vm, task) in [("paused", "paused", None), ("busy", "active", Some("spawning")), ("stopped", "stopped", None)] {
        let mut s = FakeNova::server(id, "dead");
        s.vm_state = Some(vm.into());
        s.task_state = task.map(str::to_owned);
        if vm == "stopped" {
            s.status = "SHUTOFF".into();
        }
        nova.add_server(s);
    }
    let r = run(&nova, &fast(), None).unwrap();
    assert!(r.settled());
    assert!(!r.ok());
    assert!(matches!(outcome(&r, "paused"), Outcome::Failed(w) if w.contains("vm_state paused")));
    assert!(matches!(outcome(&r, "busy"), Outcome::Failed(w) if w.contains("task_state is spawning")));
    assert!(matches!(outcome(&r, "stopped"), Outcome::Evacuated { status, .. } if status == "SHUTOFF"));
    assert_eq!(nova.evacuations().len(), 1, "only the stopped instance was issued");
    assert!(r.disabled_reason().contains("paused") && r.disabled_reason().contains("busy"));
    // Unfencing must still recognise the service as disabled by fencing.
    let svc = iha_openstack::Service { disabled_reason: Some(r.disabled_reason()), ..Default::default() };
    assert!(crate::unfence::disabled_by_fencing(&svc));
}

#[test]
fn retryable_failures_are_retried_with_a_budget() {
    let (nova, ids) = cloud(3);
    nova.fault(&ids[0], EvacFault::NoValidHost);
    nova.fault(&ids[1], EvacFault::RebuildFailed);
    for _ in 0..5 {
        nova.fault(&ids[2], EvacFault::NoValidHost);
    }
    let r = run(&nova, &fast(), None).unwrap();
    assert!(matches!(outcome(&r, &ids[0]), Outcome::Evacuated { .. }));
    // RebuildFailed leaves the instance in ERROR on the source: still evacuable, retried.
    assert!(matches!(outcome(&r, &ids[1]), Outcome::Evacuated { .. }), "{:?}", outcome(&r, &ids[1]));
    match outcome(&r, &ids[2]) {
        Outcome::Failed(w) => assert!(
            w.contains("gave up after 3 attempt(s)") && w.contains("migration error: No valid host was found"),
            "{w}"
        ),
        o => panic!("{o:?}"),
    }
    assert_eq!(nova.accepted(&ids[2]), 3);
    assert_eq!(r.instances.iter().find(|i| i.id == ids[0]).unwrap().attempts, 1);
}

#[test]
fn refusals_carry_novas_message_and_are_final() {
    let (nova, ids) = cloud(2);
    nova.fault(&ids[0], EvacFault::Refuse(400, "No valid host was found. There are not enough hosts available.".into()));
    let r = run(&nova, &fast(), None).unwrap();
    match outcome(&r, &ids[0]) {
        Outcome::Failed(w) => assert!(w.contains("No valid host was found"), "{w}"),
        o => panic!("{o:?}"),
    }
    assert!(matches!(outcome(&r, &ids[1]), Outcome::Evacuated { .. }));
    assert_eq!(nova.calls("evacuate"), 2, "the refused call is not repeated");
}

#[test]
fn capacity_exhausted_ends_in_reported_failures() {
    let (nova, _) = cloud(10);
    nova.capacity(6);
    let r = run(&nova, &fast(), None).unwrap();
    assert!(r.settled());
    assert_eq!(r.count("evacuated"), 6);
    assert_eq!(r.count("failed"), 4);
    assert!(r.failed().all(|i| matches!(&i.outcome, Outcome::Failed(w) if w.contains("gave up"))));
}

#[test]
fn a_lost_answer_is_checked_never_repeated() {
    let (nova, ids) = cloud(2);
    nova.fault(&ids[0], EvacFault::LostAnswer);
    nova.fault(&ids[1], EvacFault::LostRequest);
    let r = run(&nova, &fast(), None).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    // Carried out though the answer was lost: found in flight, followed, not re-issued.
    assert_eq!(nova.evacuations().iter().filter(|(i, _)| i == &ids[0]).count(), 1);
    assert_eq!(nova.accepted(&ids[0]), 1);
    // Never carried out: checked, then issued again; still only one evacuation in Nova.
    assert_eq!(nova.calls("evacuate"), 3);
    assert_eq!(nova.accepted(&ids[1]), 1);
}

#[test]
fn a_rerun_after_a_crash_attaches_instead_of_reissuing() {
    let (nova, ids) = cloud(6);
    // A killed earlier run had issued the first three; one of them has even finished.
    for id in &ids[..3] {
        nova.evacuate(id, &EvacuateRequest::default()).unwrap();
    }
    let _ = nova.list_migrations(&MigrationQuery::default());
    let _ = nova.list_migrations(&MigrationQuery::default());
    nova.evacuate(&ids[3], &EvacuateRequest::default()).unwrap();
    let r = run(&nova, &fast(), None).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    assert_eq!(r.count("evacuated"), 6);
    for id in &ids {
        assert_eq!(nova.accepted(id), 1, "{id} evacuated once");
    }
    assert_eq!(nova.calls("evacuate"), 6);
    // And a third run finds nothing left to do.
    let again = run(&nova, &fast(), None).unwrap();
    assert_eq!(nova.calls("evacuate"), 6);
    assert!(again.ok());
}

#[test]
fn the_deadline_leaves_work_in_progress_never_success() {
    let (nova, ids) = cloud(2);
    nova.fault(&ids[0], EvacFault::Stuck);
    let limiter = Limiter::new(4);
    let policy = PolicyConfig::default();
    let settings = fast();
    let engine = Engine { nova: &nova, cluster: None, settings: &settings, policy: &policy, limiter: &limiter };
    let beats = std::sync::atomic::AtomicU32::new(0);
    let r = engine
        .evacuate_host("dead", Some(Instant::now() + Duration::from_millis(400)), &|| {
            beats.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    assert!(!r.settled());
    assert!(!r.ok());
    assert!(matches!(outcome(&r, &ids[0]), Outcome::InProgress(_)));
    assert!(matches!(outcome(&r, &ids[1]), Outcome::Evacuated { .. }));
    assert!(beats.load(Ordering::Relaxed) > 0, "heartbeat called while working");
    // The tracking timeout turns a stuck evacuation into a failure.
    let settings = Settings { tracking_timeout: Some(Duration::ZERO), ..fast() };
    std::thread::sleep(Duration::from_millis(1100));
    let r = run(&nova, &settings, None).unwrap();
    assert!(matches!(outcome(&r, &ids[0]), Outcome::Failed(w) if w.contains("did not finish")), "{:?}", outcome(&r, &ids[0]));
    assert_eq!(nova.accepted(&ids[0]), 1);
}

#[test]
fn reserved_hosts_first_then_the_scheduler() {
    let (nova, ids) = cloud(4);
    nova.add_host_up("spare");
    nova.add_service("spare-down", "down", "enabled", false);
    let settings = Settings {
        reserved_hosts: vec!["spare".into(), "spare-down".into()],
        ..fast()
    };
    nova.fault(&ids[1], EvacFault::Refuse(400, "host spare is full".into()));
    let r = run(&nova, &settings, None).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    let ev = nova.evacuations();
    // Only the usable reserved host is targeted; a refusal falls back to the scheduler at once.
    assert!(ev.iter().all(|(_, h)| h.as_deref() != Some("spare-down")));
    assert!(ev.iter().any(|(i, h)| i == &ids[1] && h.is_none()));
    assert!(matches!(outcome(&r, &ids[0]), Outcome::Evacuated { to, .. } if to == "spare"));
    // Aggregates too.
    let (nova, _) = cloud(2);
    nova.add_host_up("r1");
    nova.add_aggregate("reserved", &["r1"], &[]);
    let settings = Settings { reserved_aggregate: Some("reserved".into()), ..fast() };
    let r = run(&nova, &settings, None).unwrap();
    assert!(r.instances.iter().all(|i| matches!(&i.outcome, Outcome::Evacuated { to, .. } if to == "r1")));
}

#[test]
fn priority_decides_the_order_of_issue() {
    let (nova, _) = cloud(0);
    for (id, prio) in [("low", None), ("high", Some("900")), ("mid", Some("10"))] {
        let mut s = FakeNova::server(id, "dead");
        if let Some(p) = prio {
            s.metadata.insert("instance-ha:priority".into(), p.into());
        }
        nova.add_server(s);
    }
    let settings = Settings { concurrency: 1, ..fast() };
    run(&nova, &settings, None).unwrap();
    let order: Vec<String> = nova.evacuations().into_iter().map(|(i, _)| i).collect();
    assert_eq!(order, ["high", "mid", "low"]);
}

#[test]
fn policy_skips_are_reported_with_their_reason() {
    let (nova, ids) = cloud(2);
    nova.add_flavor("plain", &[]);
    nova.add_flavor("ha", &[("evacuable", "true")]);
    nova.edit(&ids[0], |s| s.flavor.id = Some("ha".into()));
    nova.edit(&ids[1], |s| s.flavor.id = Some("plain".into()));
    let r = run(&nova, &fast(), None).unwrap();
    assert!(r.ok());
    assert!(matches!(outcome(&r, &ids[1]), Outcome::Skipped(w) if w.contains("not marked evacuable")), "{:?}", outcome(&r, &ids[1]));
    assert_eq!(nova.accepted(&ids[1]), 0);
    let i0 = r.instances.iter().find(|i| i.id == ids[0]).unwrap();
    assert!(i0.decision.contains("flavor ha has evacuable=true"), "{}", i0.decision);
}

#[test]
fn transient_nova_errors_are_ridden_out() {
    let (nova, _) = cloud(5);
    let limiter = Limiter::new(16);
    let policy = PolicyConfig::default();
    let settings = fast();
    let engine = Engine { nova: &nova, cluster: None, settings: &settings, policy: &policy, limiter: &limiter };
    // Let the engine get past its preparation, then break reads twice mid-run.
    nova.read_errors(0);
    let r = engine.evacuate_host("dead", Some(Instant::now() + Duration::from_secs(10)), &|| nova.read_errors(1)).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    assert_eq!(r.count("evacuated"), 5);
}

#[test]
fn fire_and_forget_when_tracking_is_off() {
    let (nova, _) = cloud(3);
    let settings = Settings { track: false, ..fast() };
    let r = run(&nova, &settings, None).unwrap();
    assert!(r.ok());
    assert_eq!(r.count("accepted"), 3);
}

#[test]
fn the_disabled_reason_fits_novas_column() {
    let (nova, _) = cloud(0);
    for i in 0..40 {
        let mut s = FakeNova::server(&format!("paused-server-with-a-long-uuid-{i:04}"), "dead");
        s.vm_state = Some("paused".into());
        nova.add_server(s);
    }
    let r = run(&nova, &fast(), None).unwrap();
    assert_eq!(r.count("failed"), 40);
    assert!(r.disabled_reason().chars().count() <= 255);
    assert!(r.summary_json().len() < 16_000);
}

#[test]
fn concurrency_is_bounded_and_shared_across_hosts() {
    let nova = FakeNova::new();
    nova.add_host_fenced("dead");
    nova.add_host_fenced("dead2");
    nova.add_host_up("c1");
    nova.add_servers("dead", "a", 12);
    nova.add_servers("dead2", "b", 12);
    nova.evacuate_latency(Duration::from_millis(20));
    let settings = Settings { concurrency: 3, ..fast() };
    let limiter = Limiter::new(3);
    let policy = PolicyConfig::default();
    let engine = Engine { nova: &nova, cluster: None, settings: &settings, policy: &policy, limiter: &limiter };
    let (r1, r2) = std::thread::scope(|sc| {
        let h1 = sc.spawn(|| engine.evacuate_host("dead", None, &|| {}));
        let h2 = sc.spawn(|| engine.evacuate_host("dead2", None, &|| {}));
        (h1.join().unwrap().unwrap(), h2.join().unwrap().unwrap())
    });
    assert!(r1.ok() && r2.ok());
    assert_eq!(r1.count("evacuated") + r2.count("evacuated"), 24);
    let max = nova.max_concurrent_evacuations();
    assert!(max <= 3, "at most 3 evacuate calls at once across both hosts, saw {max}");
    assert!(max >= 2, "calls do overlap (saw {max})");
}

#[test]
fn a_stuck_task_state_can_be_reset_once_then_evacuated() {
    let (nova, _) = cloud(0);
    let mut s = FakeNova::server("stuck", "dead");
    s.task_state = Some("powering-off".into());
    nova.add_server(s);
    let settings = Settings { reset_task_state: true, ..fast() };
    let r = run(&nova, &settings, None).unwrap();
    assert!(r.ok(), "{}", r.summary_json());
    assert!(matches!(outcome(&r, "stuck"), Outcome::Evacuated { .. }));
    assert_eq!(nova.calls("reset_state"), 1);
    assert_eq!(nova.accepted("stuck"), 1);
}
