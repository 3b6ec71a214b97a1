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
//!
//! **The override must work during the storm.** A resource agent runs with the parameters it
//! was started with; Pacemaker applies `pcs resource update` by restarting the resource in a new
//! transition, which waits for every fencing action in flight, and during a storm those include
//! the held nodes' unfencing, which waits (fence_compute `on`, up to its timeout, then again) for
//! the very evacuations being held. So an agent about to hold reads the limits the CIB holds now
//! ([`live_limits`]) and applies those: the operator's change takes effect at the next monitor.

use iha_openstack::Service;
use iha_pacemaker::{Cluster, PcmkError};
use std::collections::BTreeSet;
use std::time::Instant;

/// The parameter holding [`StormLimits::max_share_percent`].
pub const MAX_SHARE_PARAM: &str = "storm_max_share";
/// The parameter holding [`StormLimits::max_hosts`].
pub const MAX_HOSTS_PARAM: &str = "storm_max_hosts";

/// The guard's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl StormLimits {
    /// The limits from the values of `storm_max_share` and `storm_max_hosts`: unset or empty
    /// means the default (50, 0); otherwise a whole number, 0-100 and 0-1000000. `Err` names the
    /// parameter that is wrong.
    pub fn from_params(max_share: Option<&str>, max_hosts: Option<&str>) -> Result<StormLimits, String> {
        fn int(name: &str, raw: Option<&str>, max: u32, default: u32) -> Result<u32, String> {
            let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else { return Ok(default) };
            let n: i64 = raw.trim().parse().map_err(|_| format!("{name}='{raw}' is not a whole number"))?;
            u32::try_from(n).ok().filter(|n| *n <= max).ok_or_else(|| format!("{name}={n} is out of range 0..{max}"))
        }
        let d = StormLimits::default();
        Ok(StormLimits {
            max_share_percent: int(MAX_SHARE_PARAM, max_share, 100, d.max_share_percent)?,
            max_hosts: int(MAX_HOSTS_PARAM, max_hosts, 1_000_000, d.max_hosts)?,
        })
    }
}

impl std::fmt::Display for StormLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{MAX_SHARE_PARAM}={} {MAX_HOSTS_PARAM}={}", self.max_share_percent, self.max_hosts)
    }
}

/// Why the limits in the CIB could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveLimitsError {
    /// The CIB could not be asked (cluster down, no such resource, tool missing, deadline).
    Cib(PcmkError),
    /// A value in the CIB is not a valid limit.
    Invalid(String),
}

impl std::fmt::Display for LiveLimitsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LiveLimitsError::Cib(e) => write!(f, "{e}"),
            LiveLimitsError::Invalid(m) => write!(f, "invalid value in the CIB: {m}"),
        }
    }
}

impl std::error::Error for LiveLimitsError {}

/// The limits configured *now* for the primitive `resource` (its `storm_max_share` and
/// `storm_max_hosts` in the CIB; unset means the default), which may be newer than those the
/// running agent was started with. Two reads, each bounded by `deadline`.
pub fn live_limits(cluster: &dyn Cluster, resource: &str, deadline: Instant) -> Result<StormLimits, LiveLimitsError> {
    let share = cluster.resource_param(resource, MAX_SHARE_PARAM, deadline).map_err(LiveLimitsError::Cib)?;
    let hosts = cluster.resource_param(resource, MAX_HOSTS_PARAM, deadline).map_err(LiveLimitsError::Cib)?;
    StormLimits::from_params(share.as_deref(), hosts.as_deref()).map_err(LiveLimitsError::Invalid)
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

/// Which limits decided a [`assess_live`] verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// The agent's own limits did not hold: the CIB was not read.
    NotRead,
    /// The CIB holds the same limits as the agent's.
    Same,
    /// The CIB holds other limits (an operator's change that Pacemaker has not applied by a
    /// restart yet); they decided the verdict.
    Live(StormLimits),
    /// The CIB could not be read: the agent's limits decided (the safe side: a hold stands).
    Unreadable(LiveLimitsError),
}

/// [`assess`] for an agent started with `limits`: when these would hold, the limits the CIB
/// holds now for the primitive `resource` decide instead, so an override applies at once
/// ([`live_limits`]); nothing is read from the CIB when there is no storm.
pub fn assess_live(
    services: &[Service],
    marked: &[String],
    limits: StormLimits,
    cluster: &dyn Cluster,
    resource: &str,
    deadline: Instant,
) -> (StormVerdict, Decided) {
    let verdict = assess(services, marked, limits);
    if verdict.hold.is_none() {
        return (verdict, Decided::NotRead);
    }
    match live_limits(cluster, resource, deadline) {
        Ok(live) if live == limits => (verdict, Decided::Same),
        Ok(live) => (assess(services, marked, live), Decided::Live(live)),
        Err(e) => (verdict, Decided::Unreadable(e)),
    }
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
    fn limits_from_parameters() {
        assert_eq!(StormLimits::from_params(None, None), Ok(StormLimits::default()));
        assert_eq!(StormLimits::from_params(Some(" "), Some("")), Ok(StormLimits::default()));
        assert_eq!(
            StormLimits::from_params(Some("100"), Some(" 3 ")),
            Ok(StormLimits { max_share_percent: 100, max_hosts: 3 })
        );
        assert_eq!(StormLimits::from_params(Some("150"), None), Err("storm_max_share=150 is out of range 0..100".into()));
        assert_eq!(StormLimits::from_params(None, Some("-1")), Err("storm_max_hosts=-1 is out of range 0..1000000".into()));
        assert_eq!(StormLimits::from_params(Some("all"), None), Err("storm_max_share='all' is not a whole number".into()));
        assert_eq!(StormLimits { max_share_percent: 100, max_hosts: 0 }.to_string(), "storm_max_share=100 storm_max_hosts=0");
    }

    #[test]
    fn live_limits_come_from_the_cib_and_fail_safe() {
        use iha_pacemaker::fake::FakeCluster;
        let c = FakeCluster::new("ctl0");
        let d = Instant::now();
        // The CIB cannot be asked: an error (the caller keeps holding), never the defaults.
        c.cib_unreachable(true);
        let e = live_limits(&c, "nova-evacuate", d).unwrap_err();
        assert!(matches!(e, LiveLimitsError::Cib(_)) && e.to_string().contains("Could not connect to the CIB"), "{e}");
        c.cib_unreachable(false);
        assert!(matches!(live_limits(&c, "nova-evacuate", d), Err(LiveLimitsError::Cib(_))), "unknown resource");
        // Not set in the CIB: the defaults, as the agent would get them after a restart.
        c.set_resource_param("nova-evacuate", "auth_url", Some("http://keystone"));
        assert_eq!(live_limits(&c, "nova-evacuate", d), Ok(StormLimits::default()));
        // The operator's override.
        c.set_resource_param("nova-evacuate", MAX_SHARE_PARAM, Some("100"));
        assert_eq!(live_limits(&c, "nova-evacuate", d), Ok(StormLimits { max_share_percent: 100, max_hosts: 0 }));
        c.set_resource_param("nova-evacuate", MAX_HOSTS_PARAM, Some("many"));
        let e = live_limits(&c, "nova-evacuate", d).unwrap_err();
        assert_eq!(e.to_string(), "invalid value in the CIB: storm_max_hosts='many' is not a whole number");
        assert_eq!(
            c.param_reads().last(),
            Some(&("nova-evacuate".to_string(), MAX_HOSTS_PARAM.to_string()))
        );
    }

    #[test]
    fn a_hold_rereads_the_cib_and_the_override_releases_it() {
        use iha_pacemaker::fake::FakeCluster;
        let c = FakeCluster::new("ctl0");
        let d = Instant::now();
        let r = "nova-evacuate";
        c.set_resource_param(r, "auth_url", Some("http://keystone"));
        let storm = vec![svc("c1", "down", true), svc("c2", "down", true), svc("c3", "down", false), svc("c4", "up", false)];
        let calm = vec![svc("c1", "down", true), svc("c2", "up", false), svc("c3", "up", false), svc("c4", "up", false)];
        let started = StormLimits::default();
        // No storm: the CIB is not asked at all.
        let (v, how) = assess_live(&calm, &["c1".into()], started, &c, r, d);
        assert!(v.hold.is_none());
        assert_eq!(how, Decided::NotRead);
        assert!(c.param_reads().is_empty(), "{:?}", c.param_reads());
        // A storm, nothing changed in the CIB: held.
        let (v, how) = assess_live(&storm, &[], started, &c, r, d);
        assert!(v.hold.is_some());
        assert_eq!(how, Decided::Same);
        // The operator's pcs resource update, not yet applied by Pacemaker: released.
        c.set_resource_param(r, MAX_SHARE_PARAM, Some("100"));
        let (v, how) = assess_live(&storm, &[], started, &c, r, d);
        assert!(v.hold.is_none(), "{v:?}");
        assert_eq!(how, Decided::Live(StormLimits { max_share_percent: 100, max_hosts: 0 }));
        // An override that is not enough still holds, and says so with the live limits.
        c.set_resource_param(r, MAX_HOSTS_PARAM, Some("2"));
        let (v, _) = assess_live(&storm, &[], started, &c, r, d);
        assert!(v.hold.unwrap().contains("storm_max_hosts=2"));
        // The CIB cannot be read: the hold stands.
        c.cib_unreachable(true);
        let (v, how) = assess_live(&storm, &[], started, &c, r, d);
        assert!(v.hold.is_some());
        assert!(matches!(how, Decided::Unreadable(LiveLimitsError::Cib(_))), "{how:?}");
        // A wrong value in the CIB: the hold stands too.
        c.cib_unreachable(false);
        c.set_resource_param(r, MAX_HOSTS_PARAM, Some("lots"));
        let (v, how) = assess_live(&storm, &[], started, &c, r, d);
        assert!(v.hold.is_some());
        assert!(matches!(how, Decided::Unreadable(LiveLimitsError::Invalid(_))), "{how:?}");
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
