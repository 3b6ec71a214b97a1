//! The `instance-ha` package: this member owns the `[package.metadata.deb]` and
//! `[package.metadata.generate-rpm]` of the .deb and .rpm that install all five agents (see
//! `packaging/README.md`). It has no code of its own; its tests keep the asset lists and the Debian
//! maintainer scripts in step with the agents the workspace builds.

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    const OCF_DIR: &str = "/usr/lib/ocf/resource.d/openstack/";

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root")
            .to_path_buf()
    }

    fn read(path: &str) -> String {
        fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The `[[bin]]` names of every agents/*/Cargo.toml: the installed agent names.
    fn agents() -> Vec<String> {
        let mut names = Vec::new();
        for entry in fs::read_dir(root().join("agents")).expect("agents/") {
            let manifest =
                fs::read_to_string(entry.expect("agents/ entry").path().join("Cargo.toml"))
                    .expect("agent Cargo.toml");
            let mut in_bin = false;
            for line in manifest.lines().map(str::trim) {
                if line.starts_with('[') {
                    in_bin = line == "[[bin]]";
                } else if let (true, Some(value)) = (in_bin, line.strip_prefix("name")) {
                    names.push(
                        value
                            .trim_start_matches([' ', '='])
                            .trim_matches('"')
                            .to_owned(),
                    );
                }
            }
        }
        names.sort();
        names
    }

    fn is_fence_agent(name: &str) -> bool {
        name.starts_with("fence_")
    }

    fn install_dir(name: &str) -> &'static str {
        if is_fence_agent(name) {
            "/usr/sbin/"
        } else {
            OCF_DIR
        }
    }

    #[test]
    fn every_agent_is_packaged_where_pacemaker_looks() {
        let manifest = read("packaging/Cargo.toml");
        let agents = agents();
        assert_eq!(agents.len(), 5, "{agents:?}");
        for name in &agents {
            let dir = install_dir(name);
            let deb = format!(r#"["target/release/{name}", "{}", "755"]"#, &dir[1..]);
            let rpm = format!(
                r#"{{ source = "target/release/{name}", dest = "{dir}{name}", mode = "755" }}"#
            );
            assert!(manifest.contains(&deb), "no deb asset {deb}");
            assert!(manifest.contains(&rpm), "no rpm asset {rpm}");
        }
        assert_eq!(
            manifest.matches("\"target/release/").count(),
            2 * agents.len(),
            "a stray binary asset"
        );
    }

    #[test]
    fn every_agent_has_the_metadata_and_man_page_the_globs_pick_up() {
        for name in agents() {
            let section = if is_fence_agent(&name) { 8 } else { 7 };
            for file in [
                format!("ocf-metadata/{name}.xml"),
                format!("ocf-metadata/{name}.{section}"),
            ] {
                assert!(root().join(&file).is_file(), "{file} is missing");
            }
        }
    }

    #[test]
    fn maintainer_scripts_divert_exactly_the_fence_agents() {
        let fence: Vec<String> = agents().into_iter().filter(|n| is_fence_agent(n)).collect();
        let loop_line = format!("for agent in {}; do", fence.join(" "));
        for script in ["packaging/deb/preinst", "packaging/deb/postrm"] {
            assert!(
                read(script).contains(&loop_line),
                "{script} does not run `{loop_line}`"
            );
        }
    }
}
