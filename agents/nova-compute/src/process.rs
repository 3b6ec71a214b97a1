//! How `NovaCompute` runs nova-compute: a systemd unit, or a command it spawns itself.
//!
//! * **systemd** (the default): `systemctl start|stop|is-active <unit>`, argument vectors,
//!   bounded by the action's deadline. With no unit configured, the first of
//!   `openstack-nova-compute.service` (RHEL) and `nova-compute.service` (Debian, Ubuntu, SUSE)
//!   that systemd knows is used.
//! * **command**: the command line is split into words (quotes honoured, no shell), run as the
//!   configured user (`setpriv --init-groups`, so the user's groups such as `libvirt` apply) in
//!   its own session (`setsid`, so Pacemaker's kill of the agent's process group at a timeout
//!   never reaches it), with a clean environment (the agent's `OCF_RESKEY_*` hold the password).
//!   Its pid and kernel start time go to a pid file; the start time makes a recycled pid
//!   harmless. Stop sends SIGTERM to its process group, waits, then SIGKILL; processes are never
//!   looked up by name.

use iha_ocf::OcfError;
use iha_pacemaker::{PcmkError, run_tool};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, User};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The systemd units tried, in order, when none is configured.
pub const DEFAULT_UNITS: &[&str] = &["openstack-nova-compute.service", "nova-compute.service"];

/// Where system programs are looked up; what the spawned command gets as `PATH`.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A spawned command, as configured.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Run as this user (`None`: as the agent, i.e. root).
    pub user: Option<String>,
    pub pidfile: PathBuf,
}

/// How nova-compute is managed.
#[derive(Debug, Clone)]
pub enum Manager {
    /// A systemd unit; `None` until detected.
    Systemd { unit: Option<String> },
    Command(CommandSpec),
}

/// A live process recorded in a pid file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat` when it was spawned.
    pub start_time: Option<u64>,
}

fn tool_error(what: &str, e: PcmkError) -> OcfError {
    match e {
        PcmkError::NotInstalled(p) => OcfError::installed(format!("{p} is not installed on this node")),
        PcmkError::Timeout(p) => OcfError::generic(format!("{what}: {p} did not finish before the deadline")),
        e => OcfError::generic(format!("{what}: {e}")),
    }
}

/// `systemctl show --property=LoadState --value <unit>` is `loaded`.
pub fn unit_exists(unit: &str, deadline: Instant) -> Result<bool, OcfError> {
    match run_tool(Path::new("systemctl"), &["show", "--property=LoadState", "--value", unit], deadline) {
        Ok(out) => Ok(out.trim() == "loaded"),
        Err(e) => Err(tool_error(&format!("cannot ask systemd about {unit}"), e)),
    }
}

/// The configured unit, or the first default unit systemd knows.
pub fn detect_unit(configured: Option<&str>, deadline: Instant) -> Result<String, OcfError> {
    if let Some(u) = configured {
        if unit_exists(u, deadline)? {
            return Ok(u.to_string());
        }
        return Err(OcfError::installed(format!("systemd has no unit {u} on this node")));
    }
    for u in DEFAULT_UNITS {
        if unit_exists(u, deadline)? {
            return Ok((*u).to_string());
        }
    }
    Err(OcfError::installed(format!(
        "systemd has none of {} on this node (set systemd_unit, or command to run nova-compute directly)",
        DEFAULT_UNITS.join(", ")
    )))
}

/// Whether systemd reports the unit active (`reloading` counts: the service is up).
pub fn unit_active(unit: &str, deadline: Instant) -> Result<bool, OcfError> {
    match run_tool(Path::new("systemctl"), &["is-active", unit], deadline) {
        Ok(out) => Ok(matches!(out.trim(), "active" | "reloading")),
        // is-active exits non-zero (3) for inactive, failed, activating...
        Err(PcmkError::Failed { code: Some(_), .. }) => Ok(false),
        Err(e) => Err(tool_error(&format!("cannot ask systemd whether {unit} is active"), e)),
    }
}

/// `systemctl start <unit>` (systemd waits for the unit's own readiness).
pub fn unit_start(unit: &str, deadline: Instant) -> Result<(), OcfError> {
    run_tool(Path::new("systemctl"), &["start", unit], deadline)
        .map(|_| ())
        .map_err(|e| tool_error(&format!("systemctl start {unit} failed"), e))
}

/// `systemctl stop <unit>`.
pub fn unit_stop(unit: &str, deadline: Instant) -> Result<(), OcfError> {
    run_tool(Path::new("systemctl"), &["stop", unit], deadline)
        .map(|_| ())
        .map_err(|e| tool_error(&format!("systemctl stop {unit} failed"), e))
}

/// Field 22 (`starttime`) and field 3 (`state`) of `/proc/<pid>/stat`.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state come fields 4..; starttime is field 22, the 19th after the state.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Whether `pid` is a live (not zombie, not dead) process with the recorded start time.
pub fn alive(rec: Recorded) -> bool {
    match proc_stat(rec.pid) {
        Some((state, start)) => {
            !matches!(state, 'Z' | 'X' | 'x') && rec.start_time.is_none_or(|t| t == start)
        }
        None => false,
    }
}

/// Reads a pid file: `PID [STARTTIME]`. `None` when absent or unreadable as such.
pub fn read_pidfile(path: &Path) -> Option<Recorded> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut w = text.split_whitespace();
    let pid: i32 = w.next()?.parse().ok()?;
    // Pid 1 or a process group id of 0 would make a kill hit far too much.
    if pid <= 1 {
        return None;
    }
    let start_time = w.next().and_then(|s| s.parse().ok());
    Some(Recorded { pid, start_time })
}

/// The live process recorded in `path`, if any.
pub fn running(path: &Path) -> Option<Recorded> {
    read_pidfile(path).filter(|r| alive(*r))
}

/// The user's uid, gid and home.
pub fn lookup_user(name: &str) -> Result<User, OcfError> {
    match User::from_name(name) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(OcfError::installed(format!("user {name} does not exist on this node"))),
        Err(e) => Err(OcfError::installed(format!("cannot look up user {name}: {e}"))),
    }
}

/// Finds `program` as `execvp` would, on the system `PATH` when it has no `/`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_exec(&p).then_some(p);
    }
    std::env::split_paths(SYSTEM_PATH).map(|d| d.join(program)).find(|p| is_exec(p))
}

/// The argument vector that runs `spec` detached and as its user.
pub fn launch_argv(spec: &CommandSpec, user: Option<&User>) -> Result<Vec<String>, OcfError> {
    let program = spec.argv.first().ok_or_else(|| OcfError::configured("command is empty"))?;
    let found = find_program(program)
        .ok_or_else(|| OcfError::installed(format!("command {program} is not an executable on this node")))?;
    let setsid = find_program("setsid").ok_or_else(|| OcfError::installed("setsid (util-linux) is not installed"))?;
    let mut argv = vec![setsid.display().to_string()];
    if let Some(u) = user {
        let setpriv =
            find_program("setpriv").ok_or_else(|| OcfError::installed("setpriv (util-linux) is not installed"))?;
        argv.push(setpriv.display().to_string());
        argv.push(format!("--reuid={}", u.uid));
        argv.push(format!("--regid={}", u.gid));
        argv.push("--init-groups".into());
        argv.push("--".into());
    }
    argv.push(found.display().to_string());
    argv.extend(spec.argv.iter().skip(1).cloned());
    Ok(argv)
}

/// Spawns the command and records it; returns the pid.
pub fn spawn(spec: &CommandSpec) -> Result<Recorded, OcfError> {
    let user = match &spec.user {
        Some(name) => Some(lookup_user(name)?),
        None => None,
    };
    let argv = launch_argv(spec, user.as_ref())?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .env("LANG", "C.UTF-8")
        // As the reference agent did: libguestfs must not try to reach libvirtd as the user.
        .env("LIBGUESTFS_ATTACH_METHOD", "appliance")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(u) = &user {
        cmd.env("HOME", &u.dir).env("USER", &u.name).env("LOGNAME", &u.name);
    }
    log::info!("starting {}", argv.join(" "));
    let child = cmd.spawn().map_err(|e| OcfError::generic(format!("cannot start {}: {e}", argv[0])))?;
    let pid = i32::try_from(child.id()).map_err(|_| OcfError::generic("pid out of range"))?;
    // setsid and setpriv exec in place: the child's pid is nova-compute's pid.
    let start_time = proc_stat(pid).map(|(_, t)| t);
    let rec = Recorded { pid, start_time };
    write_pidfile(&spec.pidfile, rec)?;
    // The child is not waited for: it outlives this agent and is reparented to init.
    drop(child);
    Ok(rec)
}

fn write_pidfile(path: &Path, rec: Recorded) -> Result<(), OcfError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| OcfError::perm(format!("cannot create {}: {e}", dir.display())))?;
    }
    let tmp = path.with_extension("tmp");
    let text = match rec.start_time {
        Some(t) => format!("{} {t}\n", rec.pid),
        None => format!("{}\n", rec.pid),
    };
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| OcfError::perm(format!("cannot write pid file {}: {e}", path.display())))
}

fn signal(rec: Recorded, sig: Signal) {
    let pid = Pid::from_raw(rec.pid);
    // setsid made it a session and process-group leader: signal its helpers too.
    let leader = nix::unistd::getpgid(Some(pid)).is_ok_and(|g| g == pid);
    let r = if leader { killpg(pid, sig) } else { kill(pid, sig) };
    if let Err(e) = r {
        log::debug!("signal {sig} to {}: {e}", rec.pid);
    }
}

/// Stops the recorded process: SIGTERM, wait until `kill_at`, SIGKILL, wait until `deadline`.
/// Removes the pid file once the process is gone.
pub fn stop(pidfile: &Path, kill_at: Instant, deadline: Instant) -> Result<(), OcfError> {
    let Some(rec) = running(pidfile) else {
        let _ = std::fs::remove_file(pidfile);
        return Ok(());
    };
    log::info!("stopping nova-compute (pid {}) with SIGTERM", rec.pid);
    signal(rec, Signal::SIGTERM);
    if !wait_gone(rec, kill_at) {
        log::warn!("nova-compute (pid {}) still running after SIGTERM: SIGKILL", rec.pid);
        signal(rec, Signal::SIGKILL);
        if !wait_gone(rec, deadline) {
            return Err(OcfError::generic(format!(
                "nova-compute (pid {}) survived SIGKILL (uninterruptible sleep?)",
                rec.pid
            )));
        }
    }
    let _ = std::fs::remove_file(pidfile);
    Ok(())
}

fn wait_gone(rec: Recorded, until: Instant) -> bool {
    loop {
        if !alive(rec) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("iha-ncproc-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn own_process_is_alive_with_its_start_time_and_not_with_another() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let (_, start) = proc_stat(pid).unwrap();
        assert!(alive(Recorded { pid, start_time: Some(start) }));
        assert!(alive(Recorded { pid, start_time: None }));
        assert!(!alive(Recorded { pid, start_time: Some(start + 1) }), "a recycled pid is not ours");
    }

    #[test]
    fn pid_files_are_parsed_defensively() {
        let d = tmp("pidfile");
        let f = d.join("p");
        for (text, want) in [
            ("123 456\n", Some(Recorded { pid: 123, start_time: Some(456) })),
            ("123\n", Some(Recorded { pid: 123, start_time: None })),
            ("1\n", None),
            ("0 5\n", None),
            ("-5\n", None),
            ("abc\n", None),
            ("", None),
        ] {
            std::fs::write(&f, text).unwrap();
            assert_eq!(read_pidfile(&f), want, "{text:?}");
        }
        assert_eq!(read_pidfile(&d.join("absent")), None);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn spawn_records_a_detached_process_and_stop_ends_it() {
        let d = tmp("spawn");
        let spec = CommandSpec { argv: vec!["sleep".into(), "30".into()], user: None, pidfile: d.join("pid") };
        let rec = spawn(&spec).unwrap();
        assert_eq!(running(&spec.pidfile), Some(rec));
        // Its own session once setsid has run: not in this process group.
        let pid = Pid::from_raw(rec.pid);
        let until = Instant::now() + Duration::from_secs(5);
        while nix::unistd::getpgid(Some(pid)).unwrap() != pid && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(nix::unistd::getsid(Some(pid)).unwrap(), pid);
        let now = Instant::now();
        stop(&spec.pidfile, now + Duration::from_secs(10), now + Duration::from_secs(15)).unwrap();
        // Reap it (we are its parent here) so it is not left as a zombie of the test.
        let _ = nix::sys::wait::waitpid(Pid::from_raw(rec.pid), None);
        assert!(!spec.pidfile.exists());
        assert_eq!(running(&spec.pidfile), None);
        // Stopping again is fine.
        stop(&spec.pidfile, now, now).unwrap();
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_process_ignoring_sigterm_is_killed() {
        let d = tmp("sigkill");
        // A program that ignores SIGTERM, without a shell in the product: the test uses one.
        let spec = CommandSpec {
            argv: vec!["sh".into(), "-c".into(), "trap '' TERM; while :; do sleep 1; done".into()],
            user: None,
            pidfile: d.join("pid"),
        };
        let rec = spawn(&spec).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let now = Instant::now();
        stop(&spec.pidfile, now + Duration::from_millis(300), now + Duration::from_secs(10)).unwrap();
        let _ = nix::sys::wait::waitpid(Pid::from_raw(rec.pid), None);
        assert!(!alive(rec));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn launch_argv_switches_user_without_a_shell() {
        let spec = CommandSpec { argv: vec!["sleep".into(), "a b".into()], user: Some("nobody".into()), pidfile: "/x".into() };
        let user = lookup_user("root").unwrap();
        let argv = launch_argv(&spec, Some(&user)).unwrap();
        assert!(argv[0].ends_with("/setsid"), "{argv:?}");
        assert!(argv[1].ends_with("/setpriv"), "{argv:?}");
        assert_eq!(&argv[2..6], ["--reuid=0", "--regid=0", "--init-groups", "--"]);
        assert!(argv[6].ends_with("/sleep"));
        assert_eq!(argv[7], "a b");
        assert!(lookup_user("no-such-user-iha").is_err());
        let bad = CommandSpec { argv: vec!["/nonexistent/nova-compute".into()], ..spec };
        assert_eq!(launch_argv(&bad, None).unwrap_err().status, iha_ocf::Status::ErrInstalled);
    }
}
