//! The scenario files shipped in `scenarios/` parse and load.

use iha_testkit::{Scenario, Simulator};

#[test]
fn shipped_scenarios_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let s = Scenario::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let sim = Simulator::start(s).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!sim.state().hosts.is_empty());
            n += 1;
        }
    }
    assert!(n >= 3);
}
