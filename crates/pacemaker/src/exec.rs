//! Running one Pacemaker tool: argument vector, no shell, `LC_ALL=C`, bounded by a deadline.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Why a tool did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcmkError {
    /// The program is not installed.
    NotInstalled(String),
    /// The deadline passed; the child was killed.
    Timeout(String),
    /// The program exited non-zero.
    Failed { program: String, code: Option<i32>, stderr: String },
    /// The output made no sense.
    Parse(String),
}

impl PcmkError {
    /// attrd's "attribute does not exist" answer (exit 78 in Pacemaker 2.1, 105 in later ones).
    pub fn is_absent_attribute(&self) -> bool {
        matches!(self, PcmkError::Failed { stderr, code, .. }
            if stderr.contains("does not exist") || stderr.contains("No such") || *code == Some(105))
    }
}

impl std::fmt::Display for PcmkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PcmkError::NotInstalled(p) => write!(f, "{p} is not installed"),
            PcmkError::Timeout(p) => write!(f, "{p} did not finish before the deadline"),
            PcmkError::Failed { program, code, stderr } => {
                write!(f, "{program} failed")?;
                if let Some(c) = code {
                    write!(f, " with exit code {c}")?;
                }
                let s = stderr.trim();
                if !s.is_empty() {
                    write!(f, ": {s}")?;
                }
                Ok(())
            }
            PcmkError::Parse(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for PcmkError {}

/// Runs `program args…` and returns its stdout; kills it at `deadline`.
pub fn run_tool(program: &Path, args: &[&str], deadline: Instant) -> Result<String, PcmkError> {
    run_tool_unsetting(program, args, deadline, &[])
}

/// [`run_tool`] with the variables `unset` removed from the child's environment.
pub fn run_tool_unsetting(program: &Path, args: &[&str], deadline: Instant, unset: &[&str]) -> Result<String, PcmkError> {
    let name = program.display().to_string();
    log::debug!("running {name} {}", args.join(" "));
    let mut cmd = Command::new(program);
    for v in unset {
        cmd.env_remove(v);
    }
    let mut child = cmd
        .args(args)
        .env("LC_ALL", "C")
        .env("LANG", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                PcmkError::NotInstalled(name.clone())
            } else {
                PcmkError::Failed { program: name.clone(), code: None, stderr: e.to_string() }
            }
        })?;
    // Drain both pipes in threads so a chatty child never blocks on a full pipe.
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = so.as_mut() {
            let _ = o.read_to_end(&mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = se.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PcmkError::Timeout(name));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(PcmkError::Failed { program: name, code: None, stderr: e.to_string() }),
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    if status.success() {
        Ok(stdout)
    } else {
        Err(PcmkError::Failed { program: name, code: status.code(), stderr })
    }
}
