//! The compute-node gate on the real lab cluster: `tests/lab/compute-gate` (pacemaker_remote
//! nodes, fencing through fence-power + fence_compute, compute-unfence-trigger, nova-compute-wait
//! cloned with the production constraints). Ignored unless `IHA_LAB=1`: it needs root, brings
//! the lab up (and down again) unless one runs, and takes about a minute.

use std::process::Command;

#[test]
fn compute_gate_on_the_lab() {
    if std::env::var("IHA_LAB").as_deref() != Ok("1") {
        eprintln!("IHA_LAB=1 runs tests/lab/compute-gate on the lab: skipped");
        return;
    }
    let script = iha_tests::repo().join("tests/lab/compute-gate");
    let status = Command::new(&script).status().unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    match status.code() {
        Some(0) => {}
        Some(77) => eprintln!("{}: skipped (see its output)", script.display()),
        other => panic!("{} failed ({other:?})", script.display()),
    }
}
