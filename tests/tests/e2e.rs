//! The end-to-end failover tier on the real lab cluster: `tests/e2e/run` (every scenario: a
//! node's daemon killed, hung, cut off; the power device failing once; evacuation faults; the
//! node back before its evacuation finished; two nodes; a storm held then released; an instance
//! Nova cannot evacuate). Ignored unless `IHA_LAB=1`: it needs root, brings the lab up with 4
//! compute nodes and our agents (`IHA_AGENTS_DIR`, default target/release), takes about 10
//! minutes and the lab's lock. Run it alone: `IHA_LAB=1 cargo test -p iha-tests --test e2e --
//! --test-threads=1`. `IHA_E2E_ONLY=kill,storm` runs some scenarios only.

use std::process::Command;

#[test]
fn failover_end_to_end_on_the_lab() {
    if std::env::var("IHA_LAB").as_deref() != Ok("1") {
        eprintln!("IHA_LAB=1 runs tests/e2e/run on the lab: skipped");
        return;
    }
    let script = iha_tests::repo().join("tests/e2e/run");
    let mut cmd = Command::new(&script);
    if let Ok(only) = std::env::var("IHA_E2E_ONLY") {
        cmd.args(["--only", &only]);
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    match status.code() {
        Some(0) => {}
        Some(77) => eprintln!("{}: skipped (see its output)", script.display()),
        other => panic!("{} failed ({other:?}); details in /var/tmp/iha-e2e", script.display()),
    }
}
