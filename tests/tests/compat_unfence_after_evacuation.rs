//! The `evacuate` attribute as our NovaEvacuate leaves it is what unfencing waits for: after
//! our NovaEvacuate settles a host (`<node>@<epoch>` then `no`), both our fence_compute and the
//! Python reference's `on` proceed at once (REFERENCE.md §1.2: `no` or empty = done). Uses the
//! side-by-side harness (tests/src/compat.rs) and its recording `attrd_updater`.

use iha_tests::compat::{CLI_AUTH, Fixture, Invocation, Side};
use iha_testkit::{HostConfig, Scenario};
use std::time::Duration;

const C0: &str = "compute-0.example.com";
const C1: &str = "compute-1.example.com";

fn scenario() -> Scenario {
    let mut s = Scenario::with_hosts(0);
    s.hosts = vec![
        HostConfig { name: C0.into(), state: Some("down".into()), status: Some("disabled".into()), forced_down: true, ..Default::default() },
        HostConfig { name: C1.into(), ..Default::default() },
    ];
    s.add_servers(C0, "vm", 4);
    s
}

/// `start` then one `monitor` of our NovaEvacuate on the fixture.
fn nova_evacuate(f: &Fixture) {
    let rsc = f.attrd_dir.join("rsc");
    std::fs::create_dir_all(&rsc).unwrap();
    let auth = f.sim.auth_url();
    for action in ["start", "monitor"] {
        let inv = Invocation::args(&[action])
            .env("HA_RSCTMP", rsc.to_str().unwrap())
            .env("OCF_RESOURCE_INSTANCE", "nova-evacuate")
            .env("OCF_RESKEY_CRM_meta_interval", "10000")
            .env("OCF_RESKEY_CRM_meta_timeout", "60000")
            .env("OCF_RESKEY_auth_url", &auth)
            .env("OCF_RESKEY_username", "admin")
            .env("OCF_RESKEY_password", "secret")
            .env("OCF_RESKEY_tenant_name", "admin")
            .env("OCF_RESKEY_fence_check", "nova")
            .env("OCF_RESKEY_poll_min_ms", "20");
        let r = f.run(Side::Ours, "NovaEvacuate", &inv);
        assert_eq!(r.code, Some(0), "{action}: {}", r.show());
        if action == "monitor" {
            assert_eq!(r.evacuate(C0), Some("no"), "{}", r.show());
            let writes = r.attrd_writes();
            assert_eq!(writes.len(), 2, "{writes:?}");
            assert!(writes[0].1.contains('@'), "in-progress marker first: {writes:?}");
            assert_eq!(writes[1], (C0.to_string(), "no".to_string()));
        }
    }
    assert!(f.sim.state().servers_on(C0).is_empty());
}

#[test]
fn unfencing_proceeds_after_our_evacuation_ours_and_reference() {
    for side in [Side::Ours, Side::Theirs] {
        let f = Fixture::new(&scenario(), &[(C0, "yes")]);
        nova_evacuate(&f);
        let mut a: Vec<&str> = CLI_AUTH.to_vec();
        a.extend_from_slice(&["-o", "on", "-n", C0]);
        let inv = Invocation::args(&a).timeout(Duration::from_secs(15));
        let Some(r) = f.try_run(side, "fence_compute", &inv) else {
            eprintln!("reference fence_compute not available: our side only");
            continue;
        };
        // Not killed by the harness: `on` did not wait for the attribute.
        assert_eq!(r.code, Some(0), "{:?} on after our evacuation\n{}", side, r.show());
        let svc = r.service(C0).unwrap();
        assert_eq!(svc.status, "enabled", "{:?}: {}", side, r.show());
    }
}
