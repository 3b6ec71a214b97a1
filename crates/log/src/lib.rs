//! Logging for the agents: one `log::Log` implementation shared by both runtimes.
//!
//! Library crates log through the `log` facade; the runtime of each agent installs this logger
//! once, after it has parsed its parameters, so it knows:
//!
//! * where records go: syslog (`/dev/log`, facility from `HA_LOGFACILITY` or a parameter),
//!   a file (`HA_LOGFILE` for OCF agents as `ocf-shellfuncs` does, `debug_file` for fence
//!   agents), and stderr (which Pacemaker captures into its own log);
//! * how much goes to each sink: debug only with `HA_debug=1` or `verbose`;
//! * which strings are secret: every value of a parameter marked secret (passwords, application
//!   credential secrets, tokens) and anything registered later with [`add_secret`] (a password
//!   produced by `password_script`). Secrets are replaced by `****` in every record, in every
//!   sink, at every level, debug included — redaction is not a level and cannot be turned off.
//!
//! Records logged with `target: "notice"` are emitted at the syslog `notice` severity, which
//! operators of the reference agents grep for (`Completed evacuation of …`).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The replacement text for a redacted secret.
pub const REDACTED: &str = "****";

/// How stderr lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `2026-11-21 18:05:54,719 WARNING: message`, as fencing.py prints.
    Fence,
    /// `NovaEvacuate(nova-evacuate)[123]: INFO: message`, as ocf-shellfuncs prints.
    Ocf,
}

/// Where and how much to log.
#[derive(Debug, Clone)]
pub struct Config {
    /// syslog ident and stderr tag (`fence_compute`, `NovaEvacuate(nova-evacuate)`).
    pub ident: String,
    pub style: Style,
    /// Most detailed level written to stderr; `Off` for `quiet`.
    pub stderr: LevelFilter,
    /// syslog facility code (`daemon` = 3), or `None` for no syslog.
    pub syslog_facility: Option<u8>,
    /// Most detailed level written to syslog.
    pub syslog: LevelFilter,
    /// A file to append to, and its level.
    pub file: Option<(PathBuf, LevelFilter)>,
    /// Secret strings to redact.
    pub secrets: Vec<String>,
}

impl Config {
    /// Stderr only, warnings and errors: what the runtimes use before parameters are parsed.
    pub fn stderr_only(ident: &str, style: Style) -> Self {
        Config {
            ident: ident.to_string(),
            style,
            stderr: LevelFilter::Warn,
            syslog_facility: None,
            syslog: LevelFilter::Off,
            file: None,
            secrets: Vec::new(),
        }
    }
}

/// Maps a syslog facility name (as in `HA_LOGFACILITY`) to its code; `None` for `none`/unknown.
pub fn facility(name: &str) -> Option<u8> {
    let code = match name.trim().to_ascii_lowercase().as_str() {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    };
    Some(code)
}

struct Sinks {
    config: Config,
    syslog: Option<UnixDatagram>,
    file: Option<File>,
}

struct Logger {
    sinks: RwLock<Option<Sinks>>,
    secrets: RwLock<Vec<String>>,
    /// Serialises writes so lines from worker threads never interleave.
    write: Mutex<()>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn logger() -> &'static Logger {
    LOGGER.get_or_init(|| Logger {
        sinks: RwLock::new(None),
        secrets: RwLock::new(Vec::new()),
        write: Mutex::new(()),
    })
}

/// Installs (or reconfigures) the process-wide logger. Safe to call more than once: the runtime
/// starts with [`Config::stderr_only`] and reconfigures once parameters are known.
pub fn init(config: Config) {
    let l = logger();
    for s in &config.secrets {
        add_secret(s);
    }
    let syslog = config.syslog_facility.and_then(|_| {
        let sock = UnixDatagram::unbound().ok()?;
        // No syslog daemon (a container, the lab) is normal: the other sinks still work.
        sock.connect("/dev/log").ok()?;
        Some(sock)
    });
    let file = config
        .file
        .as_ref()
        .and_then(|(p, _)| OpenOptions::new().create(true).append(true).open(p).ok());
    let max = [
        config.stderr,
        if syslog.is_some() { config.syslog } else { LevelFilter::Off },
        config.file.as_ref().map_or(LevelFilter::Off, |f| f.1),
    ]
    .into_iter()
    .max()
    .unwrap_or(LevelFilter::Off);
    if let Ok(mut g) = l.sinks.write() {
        *g = Some(Sinks { config, syslog, file });
    }
    // The facade may already point at us; either way the new level applies.
    let _ = log::set_logger(l);
    log::set_max_level(max);
}

/// Registers one more secret to redact (e.g. a password read from `password_script`).
pub fn add_secret(secret: &str) {
    if secret.is_empty() {
        return;
    }
    if let Ok(mut s) = logger().secrets.write() {
        if !s.iter().any(|x| x == secret) {
            s.push(secret.to_string());
            // Longest first, so a secret containing another is redacted whole.
            s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }
}

/// Replaces every registered secret in `text` with [`REDACTED`].
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    if let Ok(secrets) = logger().secrets.read() {
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
    }
    out
}

fn level_name(level: Level, notice: bool) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info if notice => "NOTICE",
        Level::Info => "INFO",
        Level::Debug | Level::Trace => "DEBUG",
    }
}

fn severity(level: Level, notice: bool) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info if notice => 5,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let notice = record.target() == "notice";
        let level = record.level();
        let msg = redact(&record.args().to_string());
        let Ok(mut guard) = self.sinks.write() else { return };
        let Some(sinks) = guard.as_mut() else {
            if level <= Level::Warn {
                eprintln!("{}: {msg}", level_name(level, notice));
            }
            return;
        };
        let _w = self.write.lock();
        let now = now_utc();
        let name = level_name(level, notice);
        let line = match sinks.config.style {
            Style::Fence => format!("{} {name}: {msg}", now.fence()),
            Style::Ocf => {
                format!("{}[{}]: {} {name}: {msg}", sinks.config.ident, std::process::id(), now.ocf())
            }
        };
        if level <= sinks.config.stderr {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "{line}");
        }
        if let Some((_, flevel)) = &sinks.config.file {
            if level <= *flevel {
                if let Some(f) = sinks.file.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
            }
        }
        if level <= sinks.config.syslog {
            if let (Some(sock), Some(fac)) = (&sinks.syslog, sinks.config.syslog_facility) {
                let pri = u16::from(fac) * 8 + u16::from(severity(level, notice));
                let m = format!(
                    "<{pri}>{} {}[{}]: {name}: {msg}",
                    now.syslog(),
                    sinks.config.ident,
                    std::process::id()
                );
                let _ = sock.send(m.as_bytes());
            }
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Makes a panic anywhere in the process a clean failure: `line` turns the (redacted) panic
/// message into the one line printed on stderr, then the process exits with `code`. Exiting in
/// the hook matters: with `panic = "abort"` the process would otherwise die of SIGABRT (134)
/// with only a backtrace, which Pacemaker reports as a crash without a reason.
pub fn install_panic_hook(line: fn(&str) -> String, code: i32) {
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("{}", line(&format!("internal error: {}{at}", redact(&msg))));
        std::process::exit(code);
    }));
}

/// A UTC wall-clock time broken into fields (no timezone database needed, nothing to go wrong
/// in a minimal environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

/// The current time in UTC.
pub fn now_utc() -> Utc {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Utc::from_unix_millis(d.as_millis() as i64)
}

impl Utc {
    /// Converts milliseconds since the epoch (days-from-civil inverse, H. Hinnant's algorithm).
    pub fn from_unix_millis(ms: i64) -> Self {
        let secs = ms.div_euclid(1000);
        let millis = ms.rem_euclid(1000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc { year, month, day, hour: sod / 3600, minute: sod / 60 % 60, second: sod % 60, millis }
    }

    /// `2026-11-21 18:05:54,719`
    pub fn fence(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }

    /// `2026/11/21_18:05:54` (ocf-shellfuncs' `hadate`)
    pub fn ocf(&self) -> String {
        format!(
            "{:04}/{:02}/{:02}_{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `Nov 21 18:05:54` (RFC 3164)
    pub fn syslog(&self) -> String {
        const M: [&str; 12] =
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let m = M.get((self.month as usize).wrapping_sub(1)).copied().unwrap_or("Jan");
        format!("{m} {:>2} {:02}:{:02}:{:02}", self.day, self.hour, self.minute, self.second)
    }

    /// RFC 3339 with milliseconds, for JSON timelines.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(Utc::from_unix_millis(0).fence(), "1970-01-01 00:00:00,000");
        // 2026-11-21T18:30:50.205Z, the lab notes' recorded start.
        let t = Utc::from_unix_millis(1_795_285_850_205);
        assert_eq!(t.rfc3339(), "2026-11-21T18:30:50.205Z");
        assert_eq!(t.syslog(), "Nov 21 18:30:50");
        assert_eq!(Utc::from_unix_millis(951_782_400_000).ocf(), "2000/02/29_00:00:00");
    }

    #[test]
    fn secrets_are_redacted_longest_first() {
        add_secret("s3cret");
        add_secret("s3cret-and-more");
        add_secret("");
        assert_eq!(redact("pw=s3cret-and-more x=s3cret"), "pw=**** x=****");
        assert_eq!(redact("nothing here"), "nothing here");
    }

    #[test]
    fn facilities() {
        assert_eq!(facility("daemon"), Some(3));
        assert_eq!(facility("LOCAL7"), Some(23));
        assert_eq!(facility("none"), None);
    }
}
