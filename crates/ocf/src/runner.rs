//! The OCF runner: from `argv[1]` and the environment to an exit code.

use iha_meta::{Agent, ProblemKind, Values, ocf_xml, usage};
use log::{LevelFilter, debug, error};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// OCF exit codes (OCF 1.0 §3.4; REFERENCE.md §9.3 for how Pacemaker reacts to each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Success = 0,
    /// Soft error: Pacemaker recovers per `on-fail`.
    ErrGeneric = 1,
    /// Hard: bad arguments for this node.
    ErrArgs = 2,
    Unimplemented = 3,
    ErrPerm = 4,
    /// Hard: something the agent needs is not installed here (on a probe: "not running here").
    ErrInstalled = 5,
    /// Fatal: the configuration is wrong everywhere; Pacemaker stops the resource on all nodes.
    ErrConfigured = 6,
    NotRunning = 7,
}

/// A failed action: the runner prints `ocf-exit-reason:<reason>` and exits with `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcfError {
    pub status: Status,
    pub reason: String,
}

impl OcfError {
    pub fn new(status: Status, reason: impl Into<String>) -> Self {
        OcfError { status, reason: reason.into() }
    }
    pub fn generic(reason: impl Into<String>) -> Self {
        Self::new(Status::ErrGeneric, reason)
    }
    pub fn args(reason: impl Into<String>) -> Self {
        Self::new(Status::ErrArgs, reason)
    }
    pub fn perm(reason: impl Into<String>) -> Self {
        Self::new(Status::ErrPerm, reason)
    }
    pub fn installed(reason: impl Into<String>) -> Self {
        Self::new(Status::ErrInstalled, reason)
    }
    pub fn configured(reason: impl Into<String>) -> Self {
        Self::new(Status::ErrConfigured, reason)
    }
    pub fn unimplemented(action: &str) -> Self {
        Self::new(Status::Unimplemented, format!("action {action} is not implemented by this agent"))
    }
}

impl std::fmt::Display for OcfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for OcfError {}

/// The answer of `monitor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Running {
    /// Exit 0.
    Yes,
    /// Exit 7.
    No,
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

/// What a handler knows about the invocation.
pub struct Context<'a> {
    pub values: &'a Values,
    pub action: &'a str,
    /// `OCF_RESOURCE_INSTANCE` (the agent's name when run by hand).
    pub instance: String,
    /// When the action must be finished (Pacemaker's timeout minus a safety margin).
    pub deadline: Instant,
    /// `OCF_RESKEY_CRM_meta_interval` in milliseconds (0 for a probe or a one-shot action).
    pub interval_ms: u64,
    /// A probe: `monitor` with interval 0, asking "is it running here?".
    pub probe: bool,
    /// `OCF_CHECK_LEVEL` (0 lightest).
    pub check_level: u32,
    /// `HA_RSCTMP` (default `/run/resource-agents`): where state files live.
    pub state_dir: PathBuf,
    env: &'a dyn Env,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("action", &self.action)
            .field("instance", &self.instance)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

impl Context<'_> {
    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// An environment variable (e.g. `OCF_RESKEY_CRM_meta_on_node`).
    pub fn env(&self, name: &str) -> Option<String> {
        self.env.var(name)
    }

    /// A Pacemaker meta attribute (`OCF_RESKEY_CRM_meta_<name>`).
    pub fn meta(&self, name: &str) -> Option<String> {
        self.env.var(&format!("OCF_RESKEY_CRM_meta_{name}"))
    }

    /// The agent's state file for this resource instance: `<HA_RSCTMP>/<agent>-<instance>.<ext>`.
    pub fn state_file(&self, ext: &str) -> PathBuf {
        let name = format!("{}-{}.{ext}", self.values.agent().name, self.instance);
        self.state_dir.join(name.replace('/', "_"))
    }

    /// Checks every parameter against the description: `OCF_ERR_CONFIGURED` naming each
    /// problem (missing required, wrong type, value not allowed).
    pub fn check_params(&self) -> Result<(), OcfError> {
        let problems = self.values.problems(&[]);
        if problems.is_empty() {
            return Ok(());
        }
        let text: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        let kind = if problems.iter().all(|p| p.kind == ProblemKind::Missing) {
            "missing parameters"
        } else {
            "invalid parameters"
        };
        Err(OcfError::configured(format!("{kind}: {}", text.join("; "))))
    }
}

/// The agent-specific part of an OCF agent.
pub trait ResourceAgent {
    fn start(&self, ctx: &Context<'_>) -> Result<(), OcfError>;
    fn stop(&self, ctx: &Context<'_>) -> Result<(), OcfError>;
    fn monitor(&self, ctx: &Context<'_>) -> Result<Running, OcfError>;
    /// Agent-specific checks of `validate-all`, after the parameter checks passed. Return
    /// `ErrConfigured` for configuration that is wrong everywhere, `ErrInstalled` for something
    /// missing on this node, `ErrArgs` for arguments wrong for this node.
    fn validate(&self, _ctx: &Context<'_>) -> Result<(), OcfError> {
        Ok(())
    }
    fn notify(&self, _ctx: &Context<'_>) -> Result<(), OcfError> {
        Err(OcfError::unimplemented("notify"))
    }
}

/// Runs the agent as a process (`argv[1]` is the action) and returns its exit code.
pub fn run(agent: &'static Agent, handlers: &dyn ResourceAgent) -> ExitCode {
    iha_log::install_panic_hook(
        |m| {
            let prefix = std::env::var("OCF_EXIT_REASON_PREFIX").unwrap_or_else(|_| "ocf-exit-reason:".into());
            format!("{prefix}{m}")
        },
        Status::ErrGeneric as i32,
    );
    let action = std::env::args().nth(1);
    let mut stdout = std::io::stdout().lock();
    let code = run_io(agent, handlers, action.as_deref(), &mut stdout, &ProcessEnv);
    if stdout.flush().is_err() {
        return ExitCode::from(Status::ErrGeneric as u8);
    }
    ExitCode::from(code)
}

/// Everything [`run`] does, on injected output and environment.
pub fn run_io(
    agent: &'static Agent,
    handlers: &dyn ResourceAgent,
    action: Option<&str>,
    out: &mut dyn Write,
    env: &dyn Env,
) -> u8 {
    let started = Instant::now();
    let prefix = env.var("OCF_EXIT_REASON_PREFIX").unwrap_or_else(|| "ocf-exit-reason:".into());
    let fail = |e: OcfError| -> u8 {
        // The exit reason goes to stderr (Pacemaker shows it); the log gets it too.
        eprintln!("{prefix}{}", iha_log::redact(&e.reason));
        error!("{}", e.reason);
        e.status as u8
    };
    let Some(action) = action else {
        let _ = out.write_all(usage(agent).as_bytes());
        return fail(OcfError::args("no action given"));
    };
    match action {
        "meta-data" => return write(out, &ocf_xml(agent)),
        "usage" | "help" => return write(out, &usage(agent)),
        _ => {}
    }

    let mut values = Values::new(agent);
    for p in agent.all_params() {
        // Canonical name last, so it wins over an older spelling.
        for name in p.deprecated.iter().chain(p.aliases).chain(std::iter::once(&p.name)) {
            if let Some(v) = env.var(&format!("OCF_RESKEY_{name}")) {
                values.set(p.name, v);
            }
        }
    }
    let instance = env.var("OCF_RESOURCE_INSTANCE").unwrap_or_else(|| agent.name.to_string());
    let debug = env.var("HA_debug").is_some_and(|v| v.trim() != "0" && !v.trim().is_empty())
        || (agent.param("verbose").is_some() && values.flag("verbose"));
    setup_logging(agent, &instance, &values, debug, env);

    let timeout = env
        .var("OCF_RESKEY_CRM_meta_timeout")
        .and_then(|t| t.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or_else(|| {
            Duration::from_secs(u64::from(agent.action(action).and_then(|a| a.timeout).unwrap_or(20)))
        });
    // Finish before Pacemaker's SIGKILL: keep 10% (1 to 5 s) for reporting and cleanup.
    let margin = (timeout / 10).clamp(Duration::from_secs(1), Duration::from_secs(5)).min(timeout / 2);
    let interval_ms = env
        .var("OCF_RESKEY_CRM_meta_interval")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let ctx = Context {
        values: &values,
        action,
        instance,
        deadline: started + timeout - margin,
        interval_ms,
        probe: action == "monitor"
            && env.var("OCF_RESKEY_CRM_meta_interval").is_some_and(|v| v.trim() == "0"),
        check_level: env.var("OCF_CHECK_LEVEL").and_then(|v| v.trim().parse().ok()).unwrap_or(0),
        state_dir: env
            .var("HA_RSCTMP")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("/run/resource-agents"), PathBuf::from),
        env,
    };
    debug!("{} {action} (timeout {} ms)", ctx.instance, timeout.as_millis());
    let result = match action {
        "start" => handlers.start(&ctx).map(|()| Status::Success),
        "stop" => handlers.stop(&ctx).map(|()| Status::Success),
        "monitor" => handlers.monitor(&ctx).map(|r| match r {
            Running::Yes => Status::Success,
            Running::No => Status::NotRunning,
        }),
        "validate-all" => {
            ctx.check_params().and_then(|()| handlers.validate(&ctx)).map(|()| Status::Success)
        }
        "notify" => handlers.notify(&ctx).map(|()| Status::Success),
        other => {
            let _ = out.write_all(usage(agent).as_bytes());
            Err(OcfError::unimplemented(other))
        }
    };
    let code = match result {
        Ok(s) => s as u8,
        Err(e) => fail(e),
    };
    debug!("{} {action} : {code}", ctx.instance);
    code
}

fn write(out: &mut dyn Write, text: &str) -> u8 {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Status::Success as u8,
        Err(_) => Status::ErrGeneric as u8,
    }
}

/// Where records go, as ocf-shellfuncs decides: syslog with `HA_LOGFACILITY`, the file
/// `HA_LOGFILE` (what pacemaker-execd and pacemaker-remoted set), else stderr.
fn setup_logging(agent: &Agent, instance: &str, values: &Values, debug: bool, env: &dyn Env) {
    let detail = if debug { LevelFilter::Debug } else { LevelFilter::Info };
    let facility = env.var("HA_LOGFACILITY").and_then(|f| iha_log::facility(&f));
    let file = env.var("HA_LOGFILE").filter(|f| !f.is_empty()).map(|f| (PathBuf::from(f), detail));
    let stderr = if facility.is_none() && file.is_none() { detail } else { LevelFilter::Warn };
    iha_log::init(iha_log::Config {
        ident: format!("{}({instance})", agent.name),
        style: iha_log::Style::Ocf,
        stderr,
        syslog_facility: facility,
        syslog: detail,
        file,
        secrets: values.secrets().map(str::to_string).collect(),
    });
}
