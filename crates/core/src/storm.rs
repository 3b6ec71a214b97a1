//! The storm guard: no mass evacuation when many compute hosts fail at once.
//!
//! A rack losing power, a network partition that isolates the controllers, or a Nova database
//! outage can make many hosts look dead together; evacuating them all at once would overload
//! the survivors or, worse, act on a wrong verdict. Following Red Hat InstanceHA (BEYOND.md
//! §3.3 item 7), the guard counts the *total* impact, not only new failures: every
//! `nova-compute` service that is down or forced down, plus every compute host marked for
//! evacuation or being evacuated, so a slow cascade accumulates. When that exceeds a share of all compute
//! services or an absolute count, new evacuations are held (hosts already being evacuated
//! continue) and the reason is logged at error level on every monitor until the count drops
//! or an operator raises the limits (`storm_max_share=100` and `storm_max_hosts=0` turn the
//! guard off).
//!
//! Services in a down cell (2.69, status `UNKNOWN`) are never counted as dead.

use iha_openstack::Service;
use std::collections::BTreeSet;

/// The guard's limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StormLimits {
    /// Hold when more than this percentage of compute hosts is failed; 100 disables.
    pub max_share_percent: u32,
    /// Hold when more than this many compute hosts are failed; 0 disables.
    pub max_hosts: u32,
}

impl Default for StormLimits {
    fn default() -> Self {
        StormLimits { max_share_percent: 50, max_hosts: 0 }
    }
}

/// The guard's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormVerdict {
    /// Hosts counted as failed (sorted).
    pub failed: Vec<String>,
    /// Compute hosts known.
    pub total: usize,
    /// `Some(reason)` when new evacuations must be held.
    pub hold: Option<String>,
}

/// Counts failed hosts among `services` (nova-compute) plus `marked` hosts and applies `limits`.
pub fn assess(services: &[Service], marked: &[String], limits: StormLimits) -> StormVerdict {
    let mut all = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for s in services.iter().filter(|s| s.binary == "nova-compute") {
        all.insert(s.host.clone());
        if s.status == "UNKNOWN" {
            continue;
        }
        if s.forced_down == Some(true) || s.state.as_deref() == Some("down") {
            failed.insert(s.host.clone());
        }
    }
    // A marked host Nova does not know is no compute host at all (a typo, a stale mark).
    for h in marked.iter().filter(|h| all.contains(*h)) {
        failed.insert(h.clone());
    }
    let total = all.len();
    let n = failed.len();
    let mut why = Vec::new();
    if limits.max_hosts > 0 && n > limits.max_hosts as usize {
        why.push(format!("{n} failed compute hosts exceed storm_max_hosts={}", limits.max_hosts));
    }
    // Integer arithmetic: n/total > p/100  <=>  100 n > p total.
    if limits.max_share_percent < 100 && total > 0 && 100 * n > limits.max_share_percent as usize * total {
        why.push(format!(
            "{n} of {total} compute hosts failed ({}%) exceeds storm_max_share={}%",
            100 * n / total,
            limits.max_share_percent
        ));
    }
    let failed: Vec<String> = failed.into_iter().collect();
    let hold = (!why.is_empty()).then(|| {
        format!(
            "storm guard: holding new evacuations: {} (failed: {}); set storm_max_share=100 and storm_max_hosts=0 to override",
            why.join("; "),
            failed.join(", ")
        )
    });
    StormVerdict { failed, total, hold }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(host: &str, state: &str, forced: bool) -> Service {
        Service {
            binary: "nova-compute".into(),
            host: host.into(),
            status: "enabled".into(),
            state: Some(state.into()),
            forced_down: Some(forced),
            ..Default::default()
        }
    }

    #[test]
    fn counts_down_forced_and_marked_hosts() {
        let s = vec![svc("c1", "up", false), svc("c2", "down", true), svc("c3", "up", false), svc("c4", "up", false)];
        let v = assess(&s, &[], StormLimits::default());
        assert_eq!(v.failed, vec!["c2".to_string()]);
        assert!(v.hold.is_none());
        // Two down + one marked (still reported up by Nova: a slow heartbeat) = 3 of 4.
        let s2 = vec![svc("c1", "down", false), svc("c2", "down", true), svc("c3", "up", false), svc("c4", "up", false)];
        let v = assess(&s2, &["c3".into()], StormLimits::default());
        assert_eq!(v.failed.len(), 3);
        let why = v.hold.unwrap();
        assert!(why.contains("3 of 4 compute hosts failed (75%)"), "{why}");
        assert!(why.contains("override"), "{why}");
        // Exactly half is not "more than half".
        assert!(assess(&s2, &[], StormLimits::default()).hold.is_none());
        // A mark for a host Nova does not know counts for nothing.
        assert!(assess(&s2, &["typo".into()], StormLimits::default()).hold.is_none());
    }

    #[test]
    fn absolute_count_and_disabling() {
        let s: Vec<Service> = (0..10).map(|i| svc(&format!("c{i}"), if i < 3 { "down" } else { "up" }, false)).collect();
        let limits = StormLimits { max_share_percent: 100, max_hosts: 2 };
        assert!(assess(&s, &[], limits).hold.unwrap().contains("storm_max_hosts=2"));
        let off = StormLimits { max_share_percent: 100, max_hosts: 0 };
        let all_down: Vec<Service> = (0..10).map(|i| svc(&format!("c{i}"), "down", true)).collect();
        assert!(assess(&all_down, &[], off).hold.is_none());
    }

    #[test]
    fn down_cells_are_not_dead() {
        let mut unknown = svc("c2", "down", false);
        unknown.status = "UNKNOWN".into();
        unknown.state = None;
        let s = vec![svc("c1", "up", false), unknown, svc("c3", "down", true)];
        let v = assess(&s, &[], StormLimits::default());
        assert_eq!(v.failed, vec!["c3".to_string()]);
        assert!(v.hold.is_none());
    }
}
