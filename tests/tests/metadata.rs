//! Metadata: committed files are current, valid against the installed schemas, complete with
//! respect to the reference agents, and printable with nothing else available.
//!
//! Regenerate the committed files with `IHA_BLESS=1 cargo test -p iha-tests --test metadata`.

use iha_meta::{Agent, Protocol, fence_xml, man, ocf_xml};
use iha_tests::{agents, bin, have, parameter_names, reference_dir, repo, run};
use std::process::Command;

fn rendered(a: &Agent) -> String {
    match a.protocol {
        Protocol::Fence => fence_xml(a),
        Protocol::Ocf => ocf_xml(a),
    }
}

fn printed(a: &Agent) -> std::process::Output {
    let mut c = Command::new(bin(a.name));
    match a.protocol {
        Protocol::Fence => c.args(["-o", "metadata"]),
        Protocol::Ocf => c.arg("meta-data"),
    };
    // Nothing from our environment: metadata must not need it.
    c.env_clear();
    run(&mut c, "")
}

#[test]
fn committed_metadata_and_man_pages_are_current() {
    let dir = repo().join("ocf-metadata");
    let bless = std::env::var_os("IHA_BLESS").is_some();
    let mut stale = Vec::new();
    for a in agents() {
        let files = [
            (dir.join(format!("{}.xml", a.name)), rendered(a)),
            (dir.join(format!("{}.{}", a.name, a.man_section)), man(a)),
        ];
        for (path, want) in files {
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &want).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files (run `IHA_BLESS=1 cargo test -p iha-tests --test metadata`): {stale:?}"
    );
}

#[test]
fn built_binaries_print_the_committed_metadata_with_an_empty_environment() {
    for a in agents() {
        let out = printed(a);
        assert_eq!(out.status.code(), Some(0), "{}: {out:?}", a.name);
        let committed = std::fs::read_to_string(repo().join(format!("ocf-metadata/{}.xml", a.name)))
            .expect("committed metadata");
        assert_eq!(String::from_utf8_lossy(&out.stdout), committed, "{}", a.name);
        assert!(out.stderr.is_empty(), "{}: {}", a.name, String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn fence_metadata_validates_against_the_fence_agents_schema() {
    let rng = "/usr/share/cluster/relaxng/metadata.rng";
    assert!(have("xmllint") && std::path::Path::new(rng).exists(), "need libxml2-utils and fence-agents");
    for a in agents().into_iter().filter(|a| a.protocol == Protocol::Fence) {
        let out = run(Command::new("xmllint").args(["--noout", "--relaxng", rng, "-"]), &rendered(a));
        assert!(out.status.success(), "{}: {}", a.name, String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn ocf_metadata_validates_against_ra_api_dtd() {
    let dir = "/usr/share/resource-agents";
    assert!(have("xmllint") && std::path::Path::new(dir).join("ra-api-1.dtd").exists(), "need libxml2-utils and resource-agents");
    for a in agents().into_iter().filter(|a| a.protocol == Protocol::Ocf) {
        // Exactly what ocf-tester runs: the DOCTYPE resolves relative to the working directory.
        let out = run(Command::new("xmllint").args(["--noout", "--valid", "-"]).current_dir(dir), &rendered(a));
        assert!(out.status.success(), "{}: {}", a.name, String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "{}: {}", a.name, String::from_utf8_lossy(&out.stderr));
    }
}

/// The reference metadata files and the agent each belongs to.
fn reference_files() -> Vec<(std::path::PathBuf, &'static Agent)> {
    let Some(dir) = reference_dir() else { return Vec::new() };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !file.ends_with(".xml") {
            continue;
        }
        let stem = file.split('.').next().unwrap_or("");
        let agent = agents().into_iter().find(|a| a.name == stem).unwrap_or_else(|| panic!("no agent for {file}"));
        out.push((entry.path(), agent));
    }
    out
}

#[test]
fn every_reference_parameter_and_action_exists_in_ours() {
    let files = reference_files();
    if files.is_empty() {
        eprintln!("reference metadata not found next to the repository: skipped");
        return;
    }
    assert_eq!(files.len(), 8, "all eight reference metadata files");
    for (path, agent) in files {
        let theirs = std::fs::read_to_string(&path).unwrap();
        let ours = rendered(agent);
        let our_names = parameter_names(&ours);
        for name in parameter_names(&theirs) {
            assert!(our_names.contains(&name), "{}: parameter {name} of {} missing", agent.name, path.display());
        }
        for action in theirs.split("<action name=\"").skip(1) {
            let name = action.split('"').next().unwrap();
            assert!(agent.action(name).is_some(), "{}: action {name} missing", agent.name);
        }
    }
}

#[test]
fn fence_metadata_reproduces_the_reference_entries_exactly() {
    let Some(dir) = reference_dir() else { return };
    for a in agents().into_iter().filter(|a| a.protocol == Protocol::Fence) {
        let theirs = std::fs::read_to_string(dir.join(format!("{}.metadata.xml", a.name))).unwrap();
        let ours = rendered(a);
        // Every reference parameter block appears verbatim (ours adds parameters after them).
        for block in theirs.split("\t<parameter ").skip(1) {
            let block = block.split("\t</parameter>").next().unwrap();
            assert!(ours.contains(block), "{}: differs from the reference:\n{block}", a.name);
        }
        let actions = |x: &str| x.split("<actions>").nth(1).unwrap().to_string();
        assert_eq!(actions(&ours), actions(&theirs), "{}: actions", a.name);
    }
}

#[test]
fn ocf_reference_parameters_keep_types_and_defaults() {
    for (path, agent) in reference_files().into_iter().filter(|(_, a)| a.protocol == Protocol::Ocf) {
        let theirs = std::fs::read_to_string(&path).unwrap();
        for block in theirs.split("<parameter name=\"").skip(1) {
            let name = block.split('"').next().unwrap();
            let Some(content) = block.split("<content ").nth(1) else { continue };
            let p = agent.param(name).unwrap();
            let ty = content.split("type=\"").nth(1).unwrap().split('"').next().unwrap();
            assert_eq!(p.ty.ocf_name(), ty, "{} {name} type", agent.name);
            let default = content.split("default=\"").nth(1).map(|d| d.split('"').next().unwrap());
            assert_eq!(p.default, default, "{} {name} default", agent.name);
        }
    }
}

#[test]
fn usage_lists_every_documented_option() {
    for a in agents() {
        let text = iha_meta::usage(a);
        for p in a.all_params().filter(|p| p.visible) {
            let needle = match (a.protocol, p.getopt) {
                (Protocol::Fence, Some(g)) => format!("--{}", g.long),
                _ => p.name.to_string(),
            };
            assert!(text.contains(&needle), "{}: {needle} missing from usage", a.name);
        }
    }
}

#[test]
fn man_pages_render_with_man() {
    if !have("man") && !have("groff") {
        eprintln!("no man/groff: skipped");
        return;
    }
    for a in agents() {
        let tool = if have("groff") { "groff" } else { "man" };
        let mut c = Command::new(tool);
        if tool == "groff" {
            c.args(["-man", "-Tutf8", "-ww", "-z"]);
        } else {
            c.args(["-l", "-"]);
        }
        let out = run(&mut c, &man(a));
        assert!(out.status.success(), "{}: {}", a.name, String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "{}: {}", a.name, String::from_utf8_lossy(&out.stderr));
    }
}
