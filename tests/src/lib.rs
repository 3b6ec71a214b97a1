//! Helpers shared by the protocol, metadata and compatibility tests: where the built agents and
//! the repository files are, every agent's description, running a program, reading metadata XML.

use iha_meta::Agent;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Every agent of the suite: its description and installed name.
pub fn agents() -> [&'static Agent; 5] {
    [
        &iha_agent_fence_compute::SPEC,
        &iha_agent_fence_evacuate::SPEC,
        &iha_agent_nova_evacuate::SPEC,
        &iha_agent_nova_compute_wait::SPEC,
        &iha_agent_nova_compute::SPEC,
    ]
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The reference agents' captured metadata (../shared/docs/reference-metadata), when present.
pub fn reference_dir() -> Option<PathBuf> {
    let d = repo().join("../shared/docs/reference-metadata");
    d.is_dir().then_some(d)
}

/// The directory of the built binaries: `IHA_BIN_DIR`, else the profile directory this test
/// executable was built into (`target/<profile>/deps/..`).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("IHA_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default()
}

/// The path of a built agent; panics with the command to run when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} is not built: run `cargo build --workspace --bins` first", p.display());
    p
}

/// Runs `cmd` with `stdin` and returns its output.
pub fn run(cmd: &mut Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    child.wait_with_output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// The `name` attributes of every `<parameter>` in a metadata document.
pub fn parameter_names(xml: &str) -> Vec<String> {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let mut r = Reader::from_str(xml);
    let mut names = Vec::new();
    loop {
        match r.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if e.name().as_ref() == "parameter" => {
                for a in e.attributes().flatten() {
                    if a.key.as_ref() == "name" {
                        names.push(a.value.to_string());
                    }
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => panic!("bad XML: {e}"),
            _ => {}
        }
    }
    names
}

/// Side-by-side runs of our agents and the Python reference agents.
pub mod compat;
