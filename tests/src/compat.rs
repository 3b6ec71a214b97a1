//! Side-by-side harness: one scenario, run against our agent ("ours") and the Python reference
//! from Debian's fence-agents ("theirs"), each on a fresh simulator (`iha_testkit`) and a fresh
//! recording `attrd_updater` (tests/compat/attrd_updater) first on `PATH`.
//!
//! ```no_run
//! use iha_tests::compat::{Fixture, Invocation, Side};
//! use iha_testkit::Scenario;
//! let scn = Scenario::with_hosts(2);
//! let ours = Fixture::new(&scn, &[]).run(Side::Ours, "fence_compute", &Invocation::args(&["-o", "list"]));
//! if let Some(theirs) = Fixture::new(&scn, &[]).try_run(Side::Theirs, "fence_compute", &Invocation::args(&["-o", "list"])) {
//!     assert_eq!(ours.stdout, theirs.stdout);
//! }
//! ```
//!
//! A [`Run`] holds what matters for comparison: the exit code (`None` when the harness killed
//! a run that did not end in time, as the reference does when it loops), stdout, stderr, the
//! Nova requests (Keystone, version discovery and 401 re-authentication dropped), the
//! *effects* of those requests on services ([`Effect`]: the same whether sent at 2.11 by host
//! or at 2.53+ by service UUID), the `attrd_updater` invocations and the attribute database
//! afterwards, and the services as the simulator holds them afterwards.
//!
//! The reference is found by [`reference_agent`]: the Python script among `/usr/sbin/<name>`
//! and `/usr/sbin/<name>.distrib` (the lab diverts Debian's files when it installs ours). It
//! crashes on Python 3.11 (REFERENCE.md O1), so it runs under `/usr/bin/python3 -c` with
//! `inspect.getargspec = inspect.getfullargspec` set first; its arguments pass through
//! unchanged, no shell involved. When it or python3-novaclient is missing,
//! [`Fixture::try_run`] returns `None` and callers skip the comparison (and say so).

use iha_testkit::{Scenario, SimHandle, Simulator};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Which implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ours,
    Theirs,
}

/// How an agent is invoked.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// Command-line arguments; `{auth_url}` is replaced by the simulator's Keystone URL.
    pub args: Vec<String>,
    /// Text on stdin (Pacemaker's mode when `args` is empty); `{auth_url}` replaced too.
    pub stdin: String,
    /// Extra environment (e.g. `PCMK_service=pacemaker-fenced`).
    pub env: Vec<(String, String)>,
    /// Extra arguments or stdin lines only our agent understands (e.g. `action_timeout=3`).
    pub ours_extra: Vec<String>,
    /// Kill the run after this long (default 20 s).
    pub timeout: Option<Duration>,
}

impl Invocation {
    /// A command-line invocation.
    pub fn args(a: &[&str]) -> Invocation {
        Invocation { args: a.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    /// A stdin invocation, one `key=value` per item.
    pub fn stdin(lines: &[&str]) -> Invocation {
        let mut s = lines.join("\n");
        s.push('\n');
        Invocation { stdin: s, ..Default::default() }
    }

    /// Adds an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Invocation {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Runs as pacemaker-fenced does (`PCMK_service=pacemaker-fenced`).
    pub fn under_pacemaker(self) -> Invocation {
        self.env("PCMK_service", "pacemaker-fenced")
    }

    /// Adds something only our agent gets (an argument, or a stdin line in stdin mode).
    pub fn ours(mut self, extra: &str) -> Invocation {
        self.ours_extra.push(extra.into());
        self
    }

    /// Sets the kill timeout.
    pub fn timeout(mut self, d: Duration) -> Invocation {
        self.timeout = Some(d);
        self
    }
}

/// A change a request made to a `nova-compute` service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    ForceDown { host: String, forced: bool },
    Disable { host: String, reason: Option<String> },
    Enable { host: String },
    /// A write Nova refused (status ≥ 400), or one we cannot interpret.
    Other { method: String, path: String, status: u16 },
}

impl Effect {
    /// The effect without the disable reason (the reference never sends one).
    pub fn without_reason(&self) -> Effect {
        match self {
            Effect::Disable { host, .. } => Effect::Disable { host: host.clone(), reason: None },
            e => e.clone(),
        }
    }
}

/// One Nova request, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct NovaCall {
    pub method: String,
    /// Path below the endpoint (`/os-services?binary=nova-compute`).
    pub path: String,
    pub microversion: Option<String>,
    pub body: Option<Value>,
    pub status: u16,
}

/// A service after the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAfter {
    pub host: String,
    pub state: String,
    pub status: String,
    pub forced_down: bool,
    pub disabled_reason: Option<String>,
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct Run {
    pub side: Side,
    /// `None`: killed by the harness after the timeout.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub nova: Vec<NovaCall>,
    pub effects: Vec<Effect>,
    /// Every `attrd_updater` argv.
    pub attrd: Vec<Vec<String>>,
    /// name → host → value afterwards.
    pub attrd_db: BTreeMap<String, BTreeMap<String, String>>,
    pub services: Vec<ServiceAfter>,
    pub elapsed: Duration,
}

impl Run {
    /// The `attrd_updater` calls that wrote a value (`-U`), as (host, value).
    pub fn attrd_writes(&self) -> Vec<(String, String)> {
        self.attrd
            .iter()
            .filter_map(|a| {
                let get = |f: &str| a.iter().position(|x| x == f).and_then(|i| a.get(i + 1)).cloned();
                Some((get("-N")?, get("-U")?))
            })
            .collect()
    }

    /// The value of `evacuate` for `host` afterwards.
    pub fn evacuate(&self, host: &str) -> Option<&str> {
        self.attrd_db.get("evacuate").and_then(|m| m.get(host)).map(String::as_str)
    }

    /// The service of `host` afterwards.
    pub fn service(&self, host: &str) -> Option<&ServiceAfter> {
        self.services.iter().find(|s| s.host == host)
    }

    /// Effects without disable reasons.
    pub fn effects_plain(&self) -> Vec<Effect> {
        self.effects.iter().map(Effect::without_reason).collect()
    }

    /// A readable dump for assertion messages.
    pub fn show(&self) -> String {
        format!(
            "{:?}: code {:?}\nstdout: {}\nstderr: {}\nnova: {:#?}\neffects: {:?}\nattrd: {:?}\n",
            self.side, self.code, self.stdout, self.stderr, self.nova, self.effects, self.attrd
        )
    }
}

/// Where the reference agent `name` is: the Python script among `/usr/sbin/<name>` and
/// `/usr/sbin/<name>.distrib` (the lab's diversion) and `/usr/sbin/<name>.fence-agents` (our
/// package's diversion), or `IHA_REFERENCE_DIR`, provided `/usr/bin/python3` can import
/// novaclient. `None` when it is not available here — unless `IHA_REQUIRE_REFERENCE` is set
/// (tools/test-all sets it), where a missing reference is a failure, not a silent one-sided run.
pub fn reference_agent(name: &str) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = match std::env::var_os("IHA_REFERENCE_DIR") {
        Some(d) => vec![PathBuf::from(d)],
        None => vec![PathBuf::from("/usr/sbin")],
    };
    let candidates = |d: &PathBuf| [d.join(format!("{name}.distrib")), d.join(format!("{name}.fence-agents")), d.join(name)];
    let found = dirs.iter().flat_map(candidates).find(|p| {
        let mut head = [0u8; 64];
        std::fs::File::open(p)
            .and_then(|mut f| f.read(&mut head))
            .is_ok_and(|n| head[..n].starts_with(b"#!") && String::from_utf8_lossy(&head[..n]).contains("python"))
    });
    let required = std::env::var_os("IHA_REQUIRE_REFERENCE").is_some();
    let Some(found) = found else {
        assert!(!required, "the Python reference {name} is not installed (Debian fence-agents); IHA_REQUIRE_REFERENCE is set");
        return None;
    };
    static NOVACLIENT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *NOVACLIENT.get_or_init(|| {
        Command::new("/usr/bin/python3")
            .args(["-c", "import novaclient, keystoneauth1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(ok || !required, "/usr/bin/python3 cannot import novaclient/keystoneauth1 for the reference {name}; IHA_REQUIRE_REFERENCE is set");
    ok.then_some(found)
}

/// The recording `attrd_updater` script.
pub fn fake_attrd_dir() -> PathBuf {
    crate::repo().join("tests/compat")
}

/// A fresh simulator and attribute store for one run.
#[derive(Debug)]
pub struct Fixture {
    pub sim: SimHandle,
    pub attrd_dir: PathBuf,
}

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Fixture {
    /// Starts a simulator on `scenario` and an attribute store holding `evacuate` = `attrs`.
    pub fn new(scenario: &Scenario, attrs: &[(&str, &str)]) -> Fixture {
        let sim = Simulator::start(scenario.clone()).expect("simulator starts");
        forget_cached_sessions(&sim.base_url());
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let attrd_dir = std::env::temp_dir().join(format!("iha-compat-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&attrd_dir);
        std::fs::create_dir_all(&attrd_dir).expect("attrd dir");
        if !attrs.is_empty() {
            let m: BTreeMap<&str, &str> = attrs.iter().copied().collect();
            let db = serde_json::json!({ "evacuate": m });
            std::fs::write(attrd_dir.join("db.json"), db.to_string()).expect("attrd db");
        }
        Fixture { sim, attrd_dir }
    }

    /// Runs `side`; panics when the reference is not available (see [`Fixture::try_run`]).
    pub fn run(&self, side: Side, agent: &str, inv: &Invocation) -> Run {
        self.try_run(side, agent, inv).unwrap_or_else(|| panic!("the reference {agent} is not available"))
    }

    /// Runs `side`; `None` when `side` is the reference and it is not available here.
    pub fn try_run(&self, side: Side, agent: &str, inv: &Invocation) -> Option<Run> {
        let auth = self.sim.auth_url();
        let subst = |s: &str| s.replace("{auth_url}", &auth);
        let mut args: Vec<String> = inv.args.iter().map(|a| subst(a)).collect();
        let mut stdin = subst(&inv.stdin);
        if side == Side::Ours {
            if args.is_empty() {
                for e in &inv.ours_extra {
                    stdin.push_str(e);
                    stdin.push('\n');
                }
            } else {
                args.extend(inv.ours_extra.iter().cloned());
            }
        }
        let mut cmd = match side {
            Side::Ours => Command::new(crate::bin(agent)),
            Side::Theirs => {
                let script = reference_agent(agent)?;
                let mut c = Command::new("/usr/bin/python3");
                c.arg("-c")
                    .arg(
                        "import inspect, runpy, sys\n\
                         inspect.getargspec = inspect.getfullargspec\n\
                         path = sys.argv[1]\n\
                         sys.argv = [path] + sys.argv[2:]\n\
                         runpy.run_path(path, run_name='__main__')\n",
                    )
                    .arg(script);
                c
            }
        };
        cmd.args(&args);
        let path = format!("{}:{}", fake_attrd_dir().display(), std::env::var("PATH").unwrap_or_default());
        cmd.env("PATH", path).env("IHA_ATTRD_DIR", &self.attrd_dir).env_remove("PCMK_service");
        for (k, v) in &inv.env {
            cmd.env(k, v);
        }
        for k in ["OS_CLOUD", "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME"] {
            cmd.env_remove(k);
        }
        self.sim.clear_log();
        let _ = std::fs::remove_file(self.attrd_dir.join("calls.jsonl"));
        let start = Instant::now();
        let (code, stdout, stderr) = run_with_timeout(cmd, &stdin, inv.timeout.unwrap_or(Duration::from_secs(20)));
        let elapsed = start.elapsed();
        Some(self.collect(side, code, stdout, stderr, elapsed))
    }

    fn collect(&self, side: Side, code: Option<i32>, stdout: String, stderr: String, elapsed: Duration) -> Run {
        let state = self.sim.state();
        let uuid_host: BTreeMap<String, String> =
            state.hosts.iter().map(|h| (h.service_uuid.clone(), h.name.clone())).collect();
        let mut nova = Vec::new();
        let mut effects = Vec::new();
        for e in self.sim.log() {
            if e.service != "nova" || e.status == 401 {
                continue;
            }
            // Below the endpoint: /compute/v2.1/os-services → /os-services.
            let path = match e.path.find("/v2.1") {
                Some(i) => e.path[i + 5..].to_string(),
                None => e.path.clone(),
            };
            if path.is_empty() || path == "/" {
                continue; // version discovery
            }
            if e.method == "PUT" && path.starts_with("/os-services") {
                effects.push(effect(&path, e.body.as_ref(), e.status, &uuid_host));
            }
            nova.push(NovaCall { method: e.method, path, microversion: e.microversion, body: e.body, status: e.status });
        }
        let attrd = std::fs::read_to_string(self.attrd_dir.join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Vec<String>>(l).ok())
            .collect();
        let attrd_db = std::fs::read_to_string(self.attrd_dir.join("db.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let services = state
            .hosts
            .iter()
            .map(|h| ServiceAfter {
                host: h.name.clone(),
                state: h.state.clone(),
                status: h.status.clone(),
                forced_down: h.forced_down,
                disabled_reason: h.disabled_reason.clone(),
            })
            .collect();
        Run { side, code, stdout, stderr, nova, effects, attrd, attrd_db, services, elapsed }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.attrd_dir);
    }
}

fn effect(path: &str, body: Option<&Value>, status: u16, uuid_host: &BTreeMap<String, String>) -> Effect {
    let other = || Effect::Other { method: "PUT".into(), path: path.into(), status };
    if status >= 400 {
        return other();
    }
    let b = body.cloned().unwrap_or(Value::Null);
    let tail = path.trim_start_matches("/os-services/");
    let legacy_host = b.get("host").and_then(Value::as_str).map(str::to_string);
    let reason = b.get("disabled_reason").and_then(Value::as_str).map(str::to_string);
    match tail {
        "force-down" => match (legacy_host, b.get("forced_down").and_then(Value::as_bool)) {
            (Some(host), Some(forced)) => Effect::ForceDown { host, forced },
            _ => other(),
        },
        "disable" | "disable-log-reason" => legacy_host.map_or_else(other, |host| Effect::Disable { host, reason }),
        "enable" => legacy_host.map_or_else(other, |host| Effect::Enable { host }),
        uuid => {
            let Some(host) = uuid_host.get(uuid).cloned() else { return other() };
            // One 2.53 PUT may carry both fields; the reference sends them as two calls in
            // the order forced_down, then status.
            if let Some(forced) = b.get("forced_down").and_then(Value::as_bool) {
                if b.get("status").is_some() {
                    return other();
                }
                return Effect::ForceDown { host, forced };
            }
            match b.get("status").and_then(Value::as_str) {
                Some("disabled") => Effect::Disable { host, reason },
                Some("enabled") => Effect::Enable { host },
                _ => other(),
            }
        }
    }
}

/// Removes the token cache files of our agents that name `base` (`http://127.0.0.1:PORT`).
///
/// The agents run here with the default cache (`/run/instance-ha/tokens` for every test run
/// as root; it outlives the run), keyed by auth URL and credentials: the same for every
/// simulator that gets this port. A new simulator would otherwise inherit an earlier one's
/// token, catalog and microversion range. Usually the token gets a 401 and the client starts
/// over (re-authentication, then rediscovery; a range above the new maximum also costs a 406
/// and a rediscovery), but the first call is already made at the stale microversion, and
/// simulators started with the same `seed` issue the same token ids, so a stale token can be
/// accepted and a stale, lower range used for the whole run (2.11 host calls to a 2.104
/// simulator). Clearing the files keeps each run independent of which port the kernel handed
/// out. Files of running simulators are never touched: no two share a port.
pub fn forget_cached_sessions(base: &str) {
    let needle = format!("{}/", base.trim_end_matches('/'));
    let mut dirs = vec![PathBuf::from("/run/instance-ha/tokens")];
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
        dirs.push(Path::new(&x).join("instance-ha/tokens"));
    }
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        dirs.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("instance-ha-"))
                .map(|e| e.path().join("tokens")),
        );
    }
    for dir in dirs {
        let Ok(files) = std::fs::read_dir(&dir) else { continue };
        for f in files.flatten() {
            let path = f.path();
            if path.extension().is_some_and(|e| e == "json")
                && std::fs::read_to_string(&path).is_ok_and(|t| t.contains(&needle))
            {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Runs `cmd` with `stdin`; kills it (and reports `None`) after `timeout`.
pub fn run_with_timeout(mut cmd: Command, stdin: &str, timeout: Duration) -> (Option<i32>, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = err.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let end = Instant::now() + timeout;
    let code = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code(),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    (code, t_out.join().unwrap_or_default(), t_err.join().unwrap_or_default())
}

/// The credentials of the simulator's admin, as command-line options.
pub const CLI_AUTH: [&str; 8] = ["-k", "{auth_url}", "-l", "admin", "-p", "secret", "-t", "admin"];

/// The same as stdin lines, as Pacemaker sends a device's options.
pub const STDIN_AUTH: [&str; 4] = ["auth_url={auth_url}", "login=admin", "passwd=secret", "tenant_name=admin"];

/// Whether `p` is our build of an agent (for messages).
pub fn describe(p: &Path) -> String {
    p.display().to_string()
}
