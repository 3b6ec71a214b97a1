//! A tiny logging facade: the runtimes (`iha-ocf`, `iha-fence`) own the real
//! logger and hand this crate a [`Logger`] trait object, or use
//! [`LogSink::log_crate`] to forward to the `log` facade they install.
//! Tests pass a closure and inspect what was logged.

use std::fmt;
use std::sync::Arc;

/// Severity of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Per-request detail (method, path, status, elapsed time).
    Debug,
    /// Noteworthy but normal (re-authentication, version fallback).
    Info,
    /// Something went wrong but was handled (retry, ignored cache file).
    Warn,
    /// A failure the caller will also see as an error.
    Error,
}

/// Receives log messages. Messages never contain tokens, passwords or secrets.
pub trait Logger: Send + Sync {
    /// Records one message.
    fn log(&self, level: Level, message: &str);
}

impl<F> Logger for F
where
    F: Fn(Level, &str) + Send + Sync,
{
    fn log(&self, level: Level, message: &str) {
        self(level, message)
    }
}

/// A shareable logger handle; the default discards everything.
#[derive(Clone, Default)]
pub struct LogSink(Option<Arc<dyn Logger>>);

impl LogSink {
    /// Wraps a logger.
    pub fn new(logger: Arc<dyn Logger>) -> Self {
        LogSink(Some(logger))
    }

    /// A sink that forwards to the `log` crate facade (target
    /// `iha_openstack`), which the agents' runtimes (`iha-log`) install.
    pub fn log_crate() -> Self {
        LogSink(Some(Arc::new(|level: Level, m: &str| {
            let l = match level {
                Level::Debug => log::Level::Debug,
                Level::Info => log::Level::Info,
                Level::Warn => log::Level::Warn,
                Level::Error => log::Level::Error,
            };
            log::log!(target: "iha_openstack", l, "{m}");
        })))
    }

    /// A sink that drops every message.
    pub fn none() -> Self {
        LogSink(None)
    }

    pub(crate) fn log(&self, level: Level, message: impl FnOnce() -> String) {
        if let Some(l) = &self.0 {
            l.log(level, &message());
        }
    }

    pub(crate) fn debug(&self, message: impl FnOnce() -> String) {
        self.log(Level::Debug, message)
    }

    pub(crate) fn info(&self, message: impl FnOnce() -> String) {
        self.log(Level::Info, message)
    }

    pub(crate) fn warn(&self, message: impl FnOnce() -> String) {
        self.log(Level::Warn, message)
    }
}

impl fmt::Debug for LogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "LogSink(set)"
        } else {
            "LogSink(none)"
        })
    }
}
