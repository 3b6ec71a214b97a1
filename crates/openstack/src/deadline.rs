//! The absolute time by which a whole agent action must be finished.
//! Pacemaker gives every action a timeout; the runner turns it into a
//! [`Deadline`] and every HTTP request gets at most the time that is left.

use std::time::{Duration, Instant};

/// An absolute deadline, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: only per-request timeouts apply.
    pub const NONE: Deadline = Deadline(None);

    /// A deadline at `at`.
    pub fn at(at: Instant) -> Self {
        Deadline(Some(at))
    }

    /// A deadline `d` from now.
    pub fn after(d: Duration) -> Self {
        Deadline(Instant::now().checked_add(d))
    }

    /// The instant, if any.
    pub fn instant(&self) -> Option<Instant> {
        self.0
    }

    /// Time left, `None` without a deadline; zero once passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// True once the deadline has passed.
    pub fn expired(&self) -> bool {
        self.remaining().is_some_and(|r| r.is_zero())
    }

    /// `timeout` capped by the time left.
    pub fn cap(&self, timeout: Duration) -> Duration {
        match self.remaining() {
            Some(r) => r.min(timeout),
            None => timeout,
        }
    }
}

impl Default for Deadline {
    fn default() -> Self {
        Deadline::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps() {
        assert_eq!(
            Deadline::NONE.cap(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        let d = Deadline::after(Duration::from_secs(2));
        assert!(d.cap(Duration::from_secs(5)) <= Duration::from_secs(2));
        assert!(!d.expired());
        assert!(Deadline::at(Instant::now()).expired());
    }
}
