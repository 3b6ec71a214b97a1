//! The lab's reference mode (`lab/up --agents reference`: Debian's Python fence_compute and
//! fence_evacuate, the NovaEvacuate stand-in written from REFERENCE.md §5) still completes a
//! failover, and the reference agents are the ones that did it: `tests/lab/reference-mode` (see
//! its header). It keeps bench/run's side-by-side end-to-end figures from rotting silently.
//! Ignored unless `IHA_LAB=1`: it needs root and Debian's fence-agents, brings the lab up and
//! down (skipped when one runs) and takes about a minute and a half.

use std::process::Command;

#[test]
fn reference_mode_on_the_lab() {
    if std::env::var("IHA_LAB").as_deref() != Ok("1") {
        eprintln!("IHA_LAB=1 runs tests/lab/reference-mode on the lab: skipped");
        return;
    }
    let script = iha_tests::repo().join("tests/lab/reference-mode");
    let status = Command::new(&script).status().unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    match status.code() {
        Some(0) => {}
        Some(77) => eprintln!("{}: skipped (see its output)", script.display()),
        other => panic!("{} failed ({other:?})", script.display()),
    }
}
