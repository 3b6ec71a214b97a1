//! The compute-node agents (`nova-compute-wait`, `NovaCompute`) as Pacemaker runs them, against
//! the Nova simulator (`nova-sim serve`), with a fake nova.conf and a fake `attrd_updater` on
//! `PATH`: `/usr/sbin/ocf-tester` passes, and each reference bug of these agents (REFERENCE.md
//! O21–O25, O27) is pinned by a test named after it.
//!
//! The agents and `nova-sim` are copied into a temporary directory readable by everyone, because
//! ocf-tester runs `meta-data` as `nobody` and NovaCompute's command runs as `nobody` here.
//! Needs the built binaries (`cargo build --workspace --bins`), ocf-tester (resource-agents) and
//! root (ocf-tester's `su`, NovaCompute's user switch); without them a test says so and returns.

use iha_tests::{bin, have};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const HOST: &str = "compute-0.localdomain";
const PASSWORD: &str = "s3cret-$(touch /tmp/iha-o21-injected)";

/// attrd_updater as the agents call it, keeping values in files (test fake, a shell script).
const FAKE_ATTRD: &str = r#"#!/bin/sh
dir=$(dirname "$0")/../attrd
name= host= value= mode=query
while [ $# -gt 0 ]; do
  case "$1" in
    -n) name=$2; shift ;;
    -N) host=$2; shift ;;
    -U|-v) value=$2; mode=update; shift ;;
    -D) mode=delete ;;
  esac
  shift
done
echo "$mode $host $value" >> "$dir/calls"
f="$dir/$name@$host"
case $mode in
  update) printf '%s' "$value" > "$f" ;;
  delete) : > "$f" ;;
  query)
    if [ -f "$f" ]; then printf 'name="%s" host="%s" value="%s"\n' "$name" "$host" "$(cat "$f")"
    else echo "Could not query value of $name: attribute does not exist" >&2; exit 105; fi ;;
esac
"#;

/// Programs the reference agents called to borrow credentials (O21): must never run.
const TRAP: &str = "#!/bin/sh\necho \"$0 $*\" >> \"$(dirname \"$0\")/../trapped\"\nexit 1\n";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One isolated world: a simulator, a node's files, fake tools, copies of the agents.
struct World {
    dir: PathBuf,
    sim: Child,
    url: String,
}

impl Drop for World {
    fn drop(&mut self) {
        // A failed test may leave a stand-in the agent started: stop what the pid files name.
        for e in std::fs::read_dir(self.dir.join("rsctmp")).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "pid") {
                let pid = std::fs::read_to_string(e.path()).unwrap_or_default();
                if let Some(pid) = pid.split_whitespace().next().filter(|p| p.parse::<u32>().is_ok_and(|n| n > 1)) {
                    let _ = Command::new("kill").arg(pid).status();
                }
            }
        }
        let _ = self.sim.kill();
        let _ = self.sim.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_exec(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl World {
    fn new(name: &str) -> World {
        World::with_host(name, &format!(r#"{{"name": "{HOST}", "heartbeat": "external", "state": "down"}}"#), "")
    }

    /// A world whose HOST is described by `host_json`, with `servers_json` (a JSON list body).
    fn with_host(name: &str, host_json: &str, servers_json: &str) -> World {
        let dir = std::env::temp_dir().join(format!("iha-ocft-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["bin", "attrd", "rsctmp", "etc"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for a in ["nova-compute-wait", "NovaCompute", "nova-sim", "fence_evacuate"] {
            std::fs::copy(bin(a), dir.join("bin").join(a)).unwrap();
        }
        write_exec(&dir.join("bin/attrd_updater"), FAKE_ATTRD);
        for t in ["pcs", "stonith_admin", "crudini", "fence_compute"] {
            write_exec(&dir.join("bin").join(t), TRAP);
        }
        std::fs::write(dir.join("etc/nova.conf"), format!("[DEFAULT]\nhost = {HOST}\n")).unwrap();
        let scenario = dir.join("scenario.json");
        std::fs::write(
            &scenario,
            format!(
                r#"{{"service_down_time_secs": 10, "report_interval_secs": 1,
                    "auth": {{"password": "{PASSWORD}"}},
                    "servers": [{servers_json}],
                    "hosts": [{host_json}, {{"name": "compute-1.localdomain"}}]}}"#
            ),
        )
        .unwrap();
        let mut sim = Command::new(dir.join("bin/nova-sim"))
            .args(["serve", "--listen", "127.0.0.1:0", "--scenario"])
            .arg(&scenario)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(sim.stdout.take().unwrap()).read_line(&mut line).unwrap();
        // "nova-sim listening on http://127.0.0.1:PORT (auth_url …)"
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();
        World { dir, sim, url }
    }

    fn agent(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    fn path_env(&self) -> String {
        format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.dir.join("bin").display())
    }

    /// The parameters every run gets, as (name, value).
    fn params(&self) -> Vec<(String, String)> {
        vec![
            ("auth_url".into(), format!("{}/identity/v3", self.url)),
            ("username".into(), "admin".into()),
            ("password".into(), PASSWORD.into()),
            ("tenant_name".into(), "admin".into()),
            ("domain".into(), "localdomain".into()),
            ("nova_conf".into(), self.dir.join("etc/nova.conf").display().to_string()),
        ]
    }

    fn nova_compute_params(&self, user: &str) -> Vec<(String, String)> {
        let mut p = self.params();
        p.push((
            "command".into(),
            format!("{} compute --host {HOST} --url {} --interval 1 --quiet", self.agent("nova-sim").display(), self.url),
        ));
        p.push(("user".into(), user.into()));
        p
    }

    fn command(&self, agent: &str, action: &str, params: &[(String, String)], extra: &[(&str, &str)]) -> Command {
        let mut c = Command::new(self.agent(agent));
        c.arg(action)
            .env_clear()
            .env("PATH", self.path_env())
            .env("HA_RSCTMP", self.dir.join("rsctmp"))
            .env("OCF_ROOT", "/usr/lib/ocf")
            .env("OCF_RESOURCE_INSTANCE", "t")
            .env("OCF_RESKEY_CRM_meta_timeout", "20000");
        for (k, v) in params {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    }

    fn run(&self, agent: &str, action: &str, params: &[(String, String)], extra: &[(&str, &str)]) -> Output {
        self.command(agent, action, params, extra).output().unwrap()
    }

    fn set_attr(&self, host: &str, value: &str) {
        std::fs::write(self.dir.join("attrd").join(format!("evacuate@{host}")), value).unwrap();
    }

    fn attrd_calls(&self) -> String {
        std::fs::read_to_string(self.dir.join("attrd/calls")).unwrap_or_default()
    }

    fn ocf_tester(&self, agent: &str, params: &[(String, String)]) -> Output {
        let mut c = Command::new("/usr/sbin/ocf-tester");
        c.arg("-n").arg(format!("t-{agent}"));
        for (k, v) in params {
            c.arg("-o").arg(format!("{k}={v}"));
        }
        c.arg(self.agent(agent))
            .env_clear()
            .env("PATH", self.path_env())
            .env("HA_RSCTMP", self.dir.join("rsctmp"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// HOST's entry in the simulator's state dump (compact JSON, no nested objects).
    fn host_state(&self) -> String {
        let state = self.sim_get("/sim/state");
        let name = format!(r#""name":"{HOST}""#);
        state.split('}').find(|o| o.contains(&name)).expect("HOST in /sim/state").to_string()
    }

    /// A GET of the simulator's control API (plain HTTP/1.1 on loopback).
    fn sim_get(&self, path: &str) -> String {
        self.sim_request("GET", path, "")
    }

    fn sim_request(&self, method: &str, path: &str, body: &str) -> String {
        let addr = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

fn prerequisites(what: &str) -> bool {
    if !is_root() || !have("su") || !Path::new("/usr/sbin/ocf-tester").exists() || !have("xmllint") {
        eprintln!("{what}: needs root, su, xmllint and /usr/sbin/ocf-tester (resource-agents): skipped");
        return false;
    }
    true
}

fn assert_passed(o: &Output, what: &str) {
    let out = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{what}: ocf-tester failed:\n{out}");
    assert!(out.contains("passed all tests"), "{what}:\n{out}");
}

#[test]
fn ocf_tester_passes_nova_compute_wait_never_fenced_and_after_an_evacuation() {
    if !prerequisites("nova-compute-wait") {
        return;
    }
    let w = World::new("ncw");
    assert_passed(&w.ocf_tester("nova-compute-wait", &w.params()), "never fenced");
    // A host whose evacuation finished (the reference slept 120 s per start here, O22).
    w.set_attr(HOST, "no");
    assert_passed(&w.ocf_tester("nova-compute-wait", &w.params()), "evacuated");
    assert!(w.attrd_calls().lines().all(|l| l.starts_with("query ")), "the gate never writes the attribute");
}

#[test]
fn ocf_tester_passes_nova_compute_running_a_stand_in_as_nobody() {
    if !prerequisites("NovaCompute") {
        return;
    }
    let w = World::new("nc");
    let params = w.nova_compute_params("nobody");
    assert_passed(&w.ocf_tester("NovaCompute", &params), "NovaCompute command mode");
    // ocf-tester ends with stop: nothing of ours is left running.
    let pidfile = w.dir.join("rsctmp/NovaCompute-t-NovaCompute.pid");
    assert!(!pidfile.exists());
}

/// Start, Nova's view, environment and stop of the command, step by step.
#[test]
fn nova_compute_starts_the_command_detached_as_its_user_and_waits_for_nova() {
    if !prerequisites("NovaCompute") {
        return;
    }
    let w = World::new("ncsteps");
    let p = w.nova_compute_params("nobody");
    let o = w.run("NovaCompute", "start", &p, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(w.sim_get("/sim/state").contains("\"up\""), "Nova reports the stand-in up once start returns");
    let pidfile = w.dir.join("rsctmp/NovaCompute-t.pid");
    let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap().split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(uid, "65534", "runs as nobody");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    assert_eq!(fields[3], pid.to_string(), "its own session (setsid)");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = text(&environ);
    assert!(!environ.contains("s3cret") && !environ.contains("OCF_RESKEY"), "clean environment: {environ}");
    assert_eq!(w.run("NovaCompute", "monitor", &p, &[("OCF_RESKEY_CRM_meta_interval", "10000")]).status.code(), Some(0));
    assert_eq!(w.run("NovaCompute", "start", &p, &[]).status.code(), Some(0), "start twice");
    let o = w.run("NovaCompute", "stop", &p, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap().contains(") Z"));
    assert_eq!(w.run("NovaCompute", "monitor", &p, &[("OCF_RESKEY_CRM_meta_interval", "10000")]).status.code(), Some(7));
    assert_eq!(w.run("NovaCompute", "stop", &p, &[]).status.code(), Some(0), "stop twice");
}

/// NovaCompute: the stand-in starts only once the evacuation is settled.
#[test]
fn nova_compute_starts_only_after_the_evacuation() {
    if !prerequisites("NovaCompute") {
        return;
    }
    let w = World::new("ncgate");
    let p = w.nova_compute_params("");
    w.set_attr(HOST, "yes");
    let mut start = w.command("NovaCompute", "start", &p, &[("OCF_RESKEY_CRM_meta_timeout", "60000")]).spawn().unwrap();
    let pidfile = w.dir.join("rsctmp/NovaCompute-t.pid");
    std::thread::sleep(Duration::from_secs(3));
    assert!(start.try_wait().unwrap().is_none(), "start waits while evacuate=yes");
    assert!(!pidfile.exists(), "nova-compute is not started during the evacuation");
    w.set_attr(HOST, "no");
    let settled = Instant::now();
    let status = start.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    start.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(pidfile.exists(), "{err}");
    let started = std::fs::metadata(&pidfile).unwrap().modified().unwrap();
    assert!(started.elapsed().unwrap() <= settled.elapsed(), "the pid file was written after evacuate=no");
    assert_eq!(w.run("NovaCompute", "stop", &p, &[]).status.code(), Some(0));
}

/// O22: the reference loops until the start timeout on an empty attribute.
#[test]
fn o22_an_empty_attribute_means_done() {
    let w = World::new("o22");
    w.set_attr(HOST, "");
    let o = w.run("nova-compute-wait", "start", &w.params(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(w.run("nova-compute-wait", "stop", &w.params(), &[]).status.code(), Some(0));
}

/// The gate waits for `yes` to become `no`, fails (1) when the evacuation does not finish in
/// time, and a monitor closes the gate (7) when an evacuation is requested while it is open.
#[test]
fn the_gate_waits_bounded_and_the_monitor_closes_it_on_a_new_evacuation() {
    let w = World::new("gate");
    let p = w.params();
    w.set_attr(HOST, "yes");
    let mut short = p.clone();
    short.push(("evacuation_timeout".into(), "3".into()));
    let o = w.run("nova-compute-wait", "start", &short, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("ocf-exit-reason:evacuation of compute-0.localdomain is not finished"), "{}", text(&o.stderr));
    let mut start = w.command("nova-compute-wait", "start", &p, &[]).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(start.try_wait().unwrap().is_none(), "start waits while evacuate=yes");
    w.set_attr(HOST, "no");
    assert_eq!(start.wait().unwrap().code(), Some(0));
    let mon = [("OCF_RESKEY_CRM_meta_interval", "10000")];
    assert_eq!(w.run("nova-compute-wait", "monitor", &p, &mon).status.code(), Some(0));
    w.set_attr(HOST, "yes");
    let o = w.run("nova-compute-wait", "monitor", &p, &mon);
    assert_eq!(o.status.code(), Some(7));
    assert!(text(&o.stderr).contains("ocf-exit-reason:evacuation of compute-0.localdomain requested"), "{}", text(&o.stderr));
    // Nova unreachable: still running (a control-plane hiccup must not restart nova-compute).
    w.set_attr(HOST, "no");
    let mut gone = p.clone();
    gone.retain(|(k, _)| k != "auth_url");
    gone.push(("auth_url".into(), "http://127.0.0.1:9/identity/v3".into()));
    assert_eq!(w.run("nova-compute-wait", "monitor", &gone, &mon).status.code(), Some(0));
}

/// O21: no credential borrowing from stonith devices (pcs, stonith_admin), no shell `eval`
/// of values, and values with `-` are used as given.
#[test]
fn o21_no_credential_borrowing_no_eval_no_mangling() {
    let w = World::new("o21");
    let _ = std::fs::remove_file("/tmp/iha-o21-injected");
    let mut p = w.params();
    p.retain(|(k, _)| k != "nova_conf" && k != "domain");
    p.push(("domain".into(), "my-cloud.example".into()));
    p.push(("nova_conf".into(), "/nonexistent-default-like/nova.conf".into()));
    // Without auth_url the reference asked pcs for the fence device's credentials.
    let mut no_url = p.clone();
    no_url.retain(|(k, _)| k != "auth_url" && k != "password" && k != "nova_conf");
    let o = w.run("nova-compute-wait", "start", &no_url, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!w.dir.join("trapped").exists(), "called: {}", std::fs::read_to_string(w.dir.join("trapped")).unwrap_or_default());
    assert!(!Path::new("/tmp/iha-o21-injected").exists(), "a value was evaluated by a shell");
    // The key keeps its hyphens: <short host name>.my-cloud.example.
    let calls = w.attrd_calls();
    assert!(calls.lines().any(|l| l.starts_with("query ") && l.trim_end().ends_with(".my-cloud.example")), "{calls}");
}

/// O23: no systemd drop-in, and the password is in no file the agents write.
#[test]
fn o23_no_drop_in_and_no_password_in_any_file() {
    let w = World::new("o23");
    let p = w.params();
    w.set_attr(HOST, "no");
    assert_eq!(w.run("nova-compute-wait", "start", &p, &[]).status.code(), Some(0));
    for entry in std::fs::read_dir(w.dir.join("rsctmp")).unwrap().flatten() {
        let content = std::fs::read(entry.path()).unwrap_or_default();
        assert!(!text(&content).contains("s3cret"), "{} holds the password", entry.path().display());
    }
    for d in ["/run/systemd/system/openstack-nova-compute.service.d", "/run/systemd/system/nova-compute.service.d"] {
        assert!(!Path::new(d).join("unfence-20.conf").exists(), "{d}/unfence-20.conf");
    }
}

/// O24: valid metadata, also checked by ocf-tester above; here against the DTD directly.
#[test]
fn o24_metadata_is_valid_against_ra_api_dtd() {
    if !have("xmllint") || !Path::new("/usr/share/resource-agents/ra-api-1.dtd").exists() {
        eprintln!("needs xmllint and resource-agents: skipped");
        return;
    }
    for agent in ["nova-compute-wait", "NovaCompute"] {
        let xml = Command::new(bin(agent)).arg("meta-data").output().unwrap().stdout;
        let mut lint = Command::new("xmllint")
            .args(["--noout", "--valid", "-"])
            .current_dir("/usr/share/resource-agents")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        lint.stdin.take().unwrap().write_all(&xml).unwrap();
        let o = lint.wait_with_output().unwrap();
        assert!(o.status.success() && o.stderr.is_empty(), "{agent}: {}", text(&o.stderr));
    }
}

/// O25: a probe on a node without nova.conf (or credentials) is 7, never 6; validate-all tells
/// this node's problems (5, from OCF_CHECK_LEVEL 10) from configuration errors (6).
#[test]
fn o25_probes_are_never_fatal_and_validate_all_tells_node_from_configuration() {
    let w = World::new("o25");
    let probe = [("OCF_RESKEY_CRM_meta_interval", "0")];
    let missing = vec![("nova_conf".to_string(), "/nonexistent/nova.conf".to_string())];
    for agent in ["nova-compute-wait", "NovaCompute"] {
        for params in [missing.clone(), Vec::new()] {
            let o = w.run(agent, "monitor", &params, &probe);
            assert_eq!(o.status.code(), Some(7), "{agent}: {}", text(&o.stderr));
        }
        let mut p = w.params();
        p.retain(|(k, _)| k != "nova_conf");
        p.extend(missing.clone());
        if agent == "NovaCompute" {
            p.push(("command".into(), format!("{} compute --host x --url y", w.agent("nova-sim").display())));
        }
        // Level 0 (pcs on a controller): configuration only.
        assert_eq!(w.run(agent, "validate-all", &p, &[]).status.code(), Some(0), "{agent}");
        let o = w.run(agent, "validate-all", &p, &[("OCF_CHECK_LEVEL", "10")]);
        assert_eq!(o.status.code(), Some(5), "{agent}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("/nonexistent/nova.conf not found on this node"), "{}", text(&o.stderr));
        // start on such a node: 5 (banned here), not 6 (stopped everywhere).
        assert_eq!(w.run(agent, "start", &p, &[]).status.code(), Some(5), "{agent}");
        let mut bad = p.clone();
        bad.push(("evacuation_delay".into(), "soon".into()));
        assert_eq!(w.run(agent, "validate-all", &bad, &[]).status.code(), Some(6), "{agent}");
        let mut half = w.params();
        half.retain(|(k, _)| k != "username");
        let o = w.run(agent, "validate-all", &half, &[]);
        assert_eq!(o.status.code(), Some(6), "{agent}: a password without a user: {}", text(&o.stderr));
    }
    let mut nc = w.params();
    nc.push(("command".into(), "/nonexistent/nova-compute".into()));
    assert_eq!(w.run("NovaCompute", "validate-all", &nc, &[("OCF_CHECK_LEVEL", "10")]).status.code(), Some(5));
    nc.push(("user".into(), "no-such-user-iha".into()));
    nc.retain(|(k, _)| k != "command");
    nc.push(("command".into(), w.agent("nova-sim").display().to_string()));
    assert_eq!(w.run("NovaCompute", "validate-all", &nc, &[("OCF_CHECK_LEVEL", "10")]).status.code(), Some(5));
    nc.push(("command".into(), "'unterminated".into()));
    assert_eq!(w.run("NovaCompute", "validate-all", &nc, &[]).status.code(), Some(6));
}

/// O27: both agents key the attribute with the name fence_compute uses (nova.conf's host).
#[test]
fn o27_both_agents_query_the_nova_host_name() {
    let w = World::new("o27");
    w.set_attr(HOST, "no");
    assert_eq!(w.run("nova-compute-wait", "start", &w.params(), &[]).status.code(), Some(0));
    if is_root() {
        let p = w.nova_compute_params("");
        let o = w.run("NovaCompute", "start", &p, &[]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert_eq!(w.run("NovaCompute", "stop", &p, &[]).status.code(), Some(0));
    }
    let calls = w.attrd_calls();
    assert!(!calls.is_empty());
    for l in calls.lines() {
        assert_eq!(l.trim_end(), format!("query {HOST}"), "{calls}");
    }
}

/// The un-forcing order on a host back from fencing: Nova refuses to clear forced-down while
/// `done` evacuation records remain; NovaCompute enables the service, starts nova-compute (whose
/// start completes the records), then clears forced-down and waits for the service to be up.
#[test]
fn nova_compute_clears_forced_down_once_its_nova_compute_has_started() {
    if !prerequisites("NovaCompute") {
        return;
    }
    let w = evacuated_world("unforce");
    let p = w.nova_compute_params("");
    let o = w.run("NovaCompute", "start", &p, &[]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("until its nova-compute has restarted once"), "Nova refused first: {err}");
    let host = w.host_state();
    for want in [r#""forced_down":false"#, r#""state":"up""#, r#""status":"enabled""#] {
        assert!(host.contains(want), "{want}: {host}");
    }
    assert!(w.sim_get("/sim/state").contains(&format!(r#""source_compute":"{HOST}","status":"completed""#)));
    assert_eq!(w.run("NovaCompute", "stop", &p, &[]).status.code(), Some(0));
}

/// nova-compute-wait starts before nova-compute: it enables the service, leaves forced-down
/// (Nova refuses), and a monitor after nova-compute's start clears it.
#[test]
fn nova_compute_wait_leaves_unforcing_to_the_monitor_after_nova_compute_started() {
    let w = evacuated_world("ncwunforce");
    let p = w.params();
    let o = w.run("nova-compute-wait", "start", &p, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let host = w.host_state();
    assert!(host.contains(r#""forced_down":true"#) && host.contains(r#""status":"enabled""#), "{host}");
    let mon = [("OCF_RESKEY_CRM_meta_interval", "10000")];
    assert_eq!(w.run("nova-compute-wait", "monitor", &p, &mon).status.code(), Some(0), "still forced down: running");
    assert!(w.host_state().contains(r#""forced_down":true"#));
    // nova-compute starts (ordered after the gate): its first heartbeat completes the records.
    let r = w.sim_request("POST", &format!("/sim/hosts/{HOST}/heartbeat"), r#"{"restart": true}"#);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(w.run("nova-compute-wait", "monitor", &p, &mon).status.code(), Some(0));
    assert!(w.host_state().contains(r#""forced_down":false"#), "{}", w.host_state());
    let state = std::fs::read_to_string(w.dir.join("rsctmp/nova-compute-wait-t.state")).unwrap();
    assert!(state.contains("unforce_pending=0"), "{state}");
}

/// HOST as fence_compute leaves it, with one instance evacuated by our fence_evacuate (a `done`
/// evacuation record remains), and its evacuate attribute settled.
fn evacuated_world(name: &str) -> World {
    let w = World::with_host(
        name,
        &format!(
            r#"{{"name": "{HOST}", "heartbeat": "external", "state": "down", "status": "disabled",
                "forced_down": true, "disabled_reason": "instance-ha: fenced by fence_compute"}}"#
        ),
        &format!(r#"{{"name": "vm-0", "host": "{HOST}"}}"#),
    );
    // Evacuate the host with our fence_evacuate, as NovaEvacuate does.
    let stdin = format!(
        "action=off\nport={HOST}\nauth_url={}/identity/v3\nlogin=admin\npasswd={PASSWORD}\ntenant_name=admin\n",
        w.url
    );
    let o = iha_tests::run(Command::new(w.agent("fence_evacuate")).env_clear().env("PATH", w.path_env()), &stdin);
    assert_eq!(o.status.code(), Some(0), "fence_evacuate: {}", text(&o.stderr));
    let until = Instant::now() + Duration::from_secs(20);
    while !w.sim_get("/sim/state").contains(&format!(r#""source_compute":"{HOST}","status":"done""#)) {
        assert!(Instant::now() < until, "no done evacuation: {}", w.sim_get("/sim/state"));
        std::thread::sleep(Duration::from_millis(100));
    }
    w.set_attr(HOST, "no");
    w
}
