//! The values of the `evacuate` attribute and what NovaEvacuate does with each
//! (REFERENCE.md §1.2).
//!
//! | value | meaning |
//! |---|---|
//! | absent, `""`, `no` | nothing to do (`""` and `no` both mean "done" to every unfencer) |
//! | `yes` | evacuation required |
//! | `<node>@<epoch>` | evacuation in progress, driven by `node`, last refreshed at `epoch` |
//!
//! The reference treats an in-progress marker older than a fixed 60 s as abandoned, however
//! long the evacuation really takes (O16). Ours refreshes the marker every tracking round
//! while its owner works on the host, so its age measures the time since its owner last made
//! progress: the current owner always resumes its own marker, and another node takes it over
//! only once it has not been refreshed for longer than a configured bound.

use std::time::Duration;

/// One host's `evacuate` value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// `""` or `no`: settled (or never fenced).
    Done,
    /// `yes`.
    Required,
    /// `<owner>@<epoch>`.
    InProgress { owner: String, epoch: i64 },
    /// Anything else: ignored, as the reference does.
    Other(String),
}

impl Mark {
    /// Parses an attribute value.
    pub fn parse(value: &str) -> Mark {
        let v = value.trim();
        match v {
            "" | "no" => Mark::Done,
            "yes" => Mark::Required,
            _ => match v.rsplit_once('@') {
                Some((owner, epoch)) if !owner.is_empty() => match epoch.parse::<i64>() {
                    Ok(epoch) => Mark::InProgress { owner: owner.to_string(), epoch },
                    Err(_) => Mark::Other(v.to_string()),
                },
                _ => Mark::Other(v.to_string()),
            },
        }
    }
}

/// The in-progress marker `<owner>@<epoch>` (the reference's format).
pub fn in_progress(owner: &str, epoch: i64) -> String {
    format!("{owner}@{epoch}")
}

/// The value written once a host is settled.
pub const DONE: &str = "no";
/// The value that asks for evacuation.
pub const REQUIRED: &str = "yes";

/// What to do with one host in this monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Settled or not ours to touch.
    Ignore,
    /// `yes`: start evacuating.
    Start,
    /// Our own marker: continue where we (or our killed predecessor) stopped.
    Resume,
    /// Another node's marker, not refreshed for `age`: take it over.
    TakeOver { owner: String, age: Duration },
    /// Another node's fresh marker: it is working on the host.
    Defer { owner: String, age: Duration },
}

/// Decides for one host. `stale_after` is how long another node's marker may go without a
/// refresh before it is presumed dead.
pub fn plan(mark: &Mark, local: &str, now: i64, stale_after: Duration) -> Plan {
    match mark {
        Mark::Done | Mark::Other(_) => Plan::Ignore,
        Mark::Required => Plan::Start,
        Mark::InProgress { owner, .. } if owner == local => Plan::Resume,
        Mark::InProgress { owner, epoch } => {
            // A marker from the future (clock skew) counts as fresh.
            let age = Duration::from_secs(u64::try_from(now.saturating_sub(*epoch)).unwrap_or(0));
            if age > stale_after {
                Plan::TakeOver { owner: owner.clone(), age }
            } else {
                Plan::Defer { owner: owner.clone(), age }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_like_the_reference() {
        assert_eq!(Mark::parse(""), Mark::Done);
        assert_eq!(Mark::parse("no"), Mark::Done);
        assert_eq!(Mark::parse("yes"), Mark::Required);
        assert_eq!(
            Mark::parse("ctl0@1763740000"),
            Mark::InProgress { owner: "ctl0".into(), epoch: 1_763_740_000 }
        );
        assert_eq!(Mark::parse("a@b@5"), Mark::InProgress { owner: "a@b".into(), epoch: 5 });
        assert_eq!(Mark::parse("@5"), Mark::Other("@5".into()));
        assert_eq!(Mark::parse("ctl0@soon"), Mark::Other("ctl0@soon".into()));
        assert_eq!(Mark::parse("maybe"), Mark::Other("maybe".into()));
        assert_eq!(in_progress("ctl0", 7), "ctl0@7");
    }

    #[test]
    fn staleness_follows_refreshes_not_a_fixed_window() {
        let bound = Duration::from_secs(120);
        let own = Mark::parse("ctl0@100");
        // Our own marker is always resumed, however old (a killed monitor of ours).
        assert_eq!(plan(&own, "ctl0", 100_000, bound), Plan::Resume);
        let other = Mark::parse("ctl1@1000");
        // 90 s without refresh: the reference would take over after 60 s; we wait.
        assert!(matches!(plan(&other, "ctl0", 1090, bound), Plan::Defer { .. }));
        assert!(matches!(plan(&other, "ctl0", 1121, bound), Plan::TakeOver { .. }));
        assert!(matches!(plan(&other, "ctl0", 900, bound), Plan::Defer { .. }));
        assert_eq!(plan(&Mark::Required, "ctl0", 0, bound), Plan::Start);
        assert_eq!(plan(&Mark::Done, "ctl0", 0, bound), Plan::Ignore);
    }
}
