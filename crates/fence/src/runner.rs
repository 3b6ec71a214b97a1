//! The fence-agent runner: from process start to exit code.
//!
//! Order of work (REFERENCE.md §2.3, with the deviations in docs/deviations.md):
//! 1. read options (argv, else stdin); a bad command line exits 1 with a clear message;
//! 2. normalise the action (`meta-data` → `metadata`; `enable`/`disable` for fabric agents);
//! 3. `metadata`, `manpage`, `--help`, `--version` answer from static data: no validation, no
//!    logging set-up, no network, no child process;
//! 4. set up logging (syslog, stderr unless `quiet`, `debug_file`), secrets registered first;
//! 5. check the action, the target and every parameter (`validate-all` reports all problems);
//! 6. resolve `password_script` (run without a shell), honour `delay` before `off`/`reboot`;
//! 7. dispatch to the agent's [`Handlers`] with a [`Context`] carrying the deadline, and print
//!    the result the way fencing.py does (`Status: ON`/`OFF`, `list` lines).
//!
//! Only this module decides exit codes: 0 success (and `Status: ON`), 1 failure, 2 `Status: OFF`.

use crate::args::{self, Parsed, split_words};
use iha_meta::{Agent, Values, fence_xml, man, usage};
use log::{debug, error, info, warn};
use std::io::{Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Power state reported by `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    On,
    Off,
}

/// One line of `list` / `list-status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub name: String,
    pub alias: String,
    /// `None` prints `UNKNOWN` in `list-status`.
    pub status: Option<Power>,
}

/// A failed action: logged, then the agent exits 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceError {
    pub message: String,
}

impl FenceError {
    pub fn new(message: impl Into<String>) -> Self {
        FenceError { message: message.into() }
    }

    /// The answer of an action this agent does not implement (yet).
    pub fn unimplemented(action: &str) -> Self {
        FenceError::new(format!("action {action} is not implemented by this agent"))
    }
}

impl std::fmt::Display for FenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FenceError {}

/// What a handler knows about the invocation.
#[derive(Debug)]
pub struct Context<'a> {
    pub values: &'a Values,
    /// The normalised action.
    pub action: &'a str,
    /// The Pacemaker node name of the target (`nodename=`), if Pacemaker sent one.
    pub nodename: Option<&'a str>,
    /// When the action must be finished; `None` only with `action_timeout=0`.
    pub deadline: Option<Instant>,
    /// Run by pacemaker-fenced (`PCMK_service=pacemaker-fenced`).
    pub under_pacemaker: bool,
    password: Option<String>,
}

impl Context<'_> {
    /// The password: `password`, or the output of `password_script`.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Time left before the deadline (`Duration::MAX` without one).
    pub fn remaining(&self) -> Duration {
        self.deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// The agent-specific part of a fence agent. Unimplemented actions answer honestly.
pub trait Handlers {
    /// Exit 0 at once, before any delay or network call (fence_compute's disabled
    /// `record_only`).
    fn short_circuit(&self, _ctx: &Context<'_>) -> bool {
        false
    }
    /// Agent-specific checks for `validate-all` and every action; no network.
    fn validate(&self, _ctx: &Context<'_>) -> Result<(), FenceError> {
        Ok(())
    }
    fn off(&self, _ctx: &Context<'_>, _target: &str) -> Result<(), FenceError> {
        Err(FenceError::unimplemented("off"))
    }
    fn on(&self, _ctx: &Context<'_>, _target: &str) -> Result<(), FenceError> {
        Err(FenceError::unimplemented("on"))
    }
    /// Default: `off` then `on`.
    fn reboot(&self, ctx: &Context<'_>, target: &str) -> Result<(), FenceError> {
        self.off(ctx, target)?;
        self.on(ctx, target)
    }
    fn status(&self, _ctx: &Context<'_>, _target: &str) -> Result<Power, FenceError> {
        Err(FenceError::unimplemented("status"))
    }
    fn list(&self, _ctx: &Context<'_>) -> Result<Vec<ListEntry>, FenceError> {
        Err(FenceError::unimplemented("list"))
    }
    fn monitor(&self, _ctx: &Context<'_>) -> Result<(), FenceError> {
        Err(FenceError::unimplemented("monitor"))
    }
}

/// The process environment, injectable for tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real environment.
#[derive(Debug)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Runs the agent as a process: reads `std::env::args`, stdin, the environment; returns the exit
/// code. A panic anywhere becomes a `Failed:` line and exit 1, never only a backtrace.
pub fn run(agent: &'static Agent, handlers: &dyn Handlers) -> ExitCode {
    iha_log::install_panic_hook(|m| format!("Failed: {m}"), 1);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let code = run_io(agent, handlers, &args, &mut stdin, &mut stdout, &ProcessEnv);
    if stdout.flush().is_err() {
        return ExitCode::from(1);
    }
    ExitCode::from(code)
}

/// Everything [`run`] does, on injected I/O; returns the exit code.
pub fn run_io(
    agent: &'static Agent,
    handlers: &dyn Handlers,
    args: &[String],
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    env: &dyn Env,
) -> u8 {
    let started = Instant::now();
    iha_log::init(iha_log::Config::stderr_only(agent.name, iha_log::Style::Fence));
    let parsed = if args.is_empty() {
        let mut text = String::new();
        if let Err(e) = stdin.read_to_string(&mut text) {
            eprintln!("Failed: cannot read options from stdin: {e}");
            return 1;
        }
        args::parse_stdin(agent, &text)
    } else {
        match args::parse_argv(agent, args) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        }
    };
    let Parsed { values, verbose_count, warnings, from_stdin } = parsed;
    for s in values.secrets() {
        iha_log::add_secret(s);
    }

    let raw_action = values.get("action").unwrap_or(agent.default_action).trim().to_ascii_lowercase();
    let fabric = agent.action("reboot").is_none();
    let action = match raw_action.as_str() {
        "meta-data" => "metadata".to_string(),
        "enable" if fabric => "on".to_string(),
        "disable" if fabric => "off".to_string(),
        a => a.to_string(),
    };

    // Static answers first: nothing below may be needed to print documentation.
    if values.flag("help") {
        return print(out, &usage(agent));
    }
    if values.flag("version") {
        return print(out, &format!("{} {} (instance-ha)\n", agent.name, agent.version));
    }
    match action.as_str() {
        "metadata" => return print(out, &fence_xml(agent)),
        "manpage" => return print(out, &man(agent)),
        _ => {}
    }

    let verbose = values.flag("verbose")
        || verbose_count > 0
        || values.int("verbose_level").is_some_and(|l| l > 0);
    setup_logging(agent, &values, verbose, env);
    for w in &warnings {
        warn!("{w}");
    }
    debug!("Running {action} ({} options from {})", values.given().count(), if from_stdin { "stdin" } else { "the command line" });

    if agent.action(&action).is_none() || action == "metadata" || action == "manpage" {
        error!("Failed: Unrecognised action '{raw_action}'");
        return 1;
    }

    let under_pacemaker = env.var("PCMK_service").as_deref() == Some("pacemaker-fenced");
    let needs_target = matches!(action.as_str(), "on" | "off" | "reboot" | "status");
    let mut problems: Vec<String> =
        values.problems(&["plug"]).into_iter().map(|p| p.message).collect();
    let target = values.nonempty("plug").map(str::to_string);
    if needs_target && target.is_none() {
        problems.push("You have to enter plug number or machine identification".into());
    }

    let deadline = match values.seconds("action_timeout") {
        Some(d) if d.is_zero() => None,
        Some(d) => Some(started + d),
        None => Some(started + Duration::from_secs(55)),
    };
    let nodename = values.nonempty("nodename").map(str::to_string);
    let mut ctx = Context {
        values: &values,
        action: &action,
        nodename: nodename.as_deref(),
        deadline,
        under_pacemaker,
        password: values.nonempty("password").map(str::to_string),
    };

    if handlers.short_circuit(&ctx) {
        debug!("{} is disabled by its configuration: nothing to do", agent.name);
        return 0;
    }
    if let Err(e) = handlers.validate(&ctx) {
        problems.push(e.message);
    }
    if action == "validate-all" {
        if problems.is_empty() {
            info!("validate-all: configuration is valid");
            return 0;
        }
        for p in &problems {
            error!("Failed: {p}");
        }
        error!("validate-all failed");
        return 1;
    }
    if let Some(p) = problems.first() {
        error!("Failed: {p}");
        return 1;
    }

    if let Some(script) = values.nonempty("password_script").map(str::to_string) {
        match run_password_script(&script, &ctx) {
            Ok(pw) => {
                iha_log::add_secret(&pw);
                ctx.password = Some(pw);
            }
            Err(e) => {
                error!("Failed: {e}");
                return 1;
            }
        }
    }

    if matches!(action.as_str(), "off" | "reboot") {
        if let Some(delay) = values.seconds("delay").filter(|d| !d.is_zero()) {
            let left = delay.saturating_sub(started.elapsed());
            if ctx.remaining() <= left {
                error!("Failed: delay of {}s does not fit in the action deadline", delay.as_secs_f64());
                return 1;
            }
            info!("Delay {}s before {action}", left.as_secs_f64());
            std::thread::sleep(left);
        }
    }

    let targets: Vec<String> = match &target {
        Some(t) => {
            let sep = values.get("plug_separator").filter(|s| !s.is_empty()).unwrap_or(",");
            t.split(sep).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
        }
        None => Vec::new(),
    };
    let result = dispatch(handlers, &ctx, &action, &targets, out);
    match result {
        Ok(code) => code,
        Err(e) => {
            error!("Failed: {}", e.message);
            1
        }
    }
}

fn dispatch(
    h: &dyn Handlers,
    ctx: &Context<'_>,
    action: &str,
    targets: &[String],
    out: &mut dyn Write,
) -> Result<u8, FenceError> {
    let sep = ctx.values.get("separator").unwrap_or(",");
    match action {
        "on" | "off" | "reboot" => {
            for t in targets {
                match action {
                    "on" => h.on(ctx, t)?,
                    "off" => h.off(ctx, t)?,
                    _ => h.reboot(ctx, t)?,
                }
            }
            Ok(0)
        }
        "status" => {
            let mut all_off = true;
            for t in targets {
                all_off &= h.status(ctx, t)? == Power::Off;
            }
            let (text, code) = if all_off { ("Status: OFF\n", 2) } else { ("Status: ON\n", 0) };
            Ok(if print(out, text) == 0 { code } else { 1 })
        }
        "list" | "list-status" => {
            let mut text = String::new();
            for e in h.list(ctx)? {
                text.push_str(&e.name);
                text.push_str(sep);
                text.push_str(&e.alias);
                if action == "list-status" {
                    text.push_str(sep);
                    text.push_str(match e.status {
                        Some(Power::On) => "ON",
                        Some(Power::Off) => "OFF",
                        None => "UNKNOWN",
                    });
                }
                text.push('\n');
            }
            Ok(print(out, &text))
        }
        "monitor" => h.monitor(ctx).map(|()| 0),
        other => Err(FenceError::new(format!("Unrecognised action '{other}'"))),
    }
}

fn print(out: &mut dyn Write, text: &str) -> u8 {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn setup_logging(agent: &Agent, values: &Values, verbose: bool, env: &dyn Env) {
    use log::LevelFilter;
    let facility = match env.var("HA_LOGFACILITY") {
        Some(f) => iha_log::facility(&f),
        None => iha_log::facility("daemon"),
    };
    let detail = if verbose { LevelFilter::Debug } else { LevelFilter::Info };
    iha_log::init(iha_log::Config {
        ident: agent.name.to_string(),
        style: iha_log::Style::Fence,
        // Pacemaker logs a fence agent's stderr as warnings: keep progress off it unless asked.
        stderr: if values.flag("quiet") {
            LevelFilter::Off
        } else if verbose {
            LevelFilter::Debug
        } else {
            LevelFilter::Warn
        },
        syslog_facility: facility,
        syslog: detail,
        file: values.nonempty("debug_file").map(|f| (f.into(), detail)),
        secrets: values.secrets().map(str::to_string).collect(),
    });
}

/// Runs `password_script` without a shell and returns its right-stripped standard output.
fn run_password_script(script: &str, ctx: &Context<'_>) -> Result<String, String> {
    let words = split_words(script).map_err(|e| format!("password_script: {e}"))?;
    let Some((prog, rest)) = words.split_first() else {
        return Err("password_script is empty".into());
    };
    let mut child = Command::new(prog)
        .args(rest)
        .env("LC_ALL", "C")
        .env("LANG", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run password_script {prog}: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("password_script has no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let limit = Instant::now() + ctx.remaining().min(Duration::from_secs(60));
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let text = reader.join().unwrap_or_default();
                if !status.success() {
                    return Err(format!("password_script {prog} failed: {status}"));
                }
                return Ok(text.trim_end().to_string());
            }
            Ok(None) if Instant::now() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("password_script {prog} timed out"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("password_script {prog}: {e}")),
        }
    }
}
