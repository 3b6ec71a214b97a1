//! What `off`, `status` and `list` do, against the `ComputeApi` and `Cluster` traits.
//!
//! `off` (REFERENCE.md §3.4.4 with O4 and O5 fixed):
//! 1. find the host's `nova-compute` service (one listing; [`iha_core::naming::resolve`]);
//! 2. force it down unless it already is (2.53+ by service UUID, else 2.11 by host and binary:
//!    the client decides) — **first**, because from Nova Train on a disable of a service Nova
//!    still believes up talks to the dead host;
//! 3. disable it with a reason naming the fencing, unless it is already disabled (an
//!    operator's reason is kept, so unfencing leaves that host disabled);
//! 4. record `evacuate=yes` for the Nova host name in attrd. When the host was already fenced
//!    before this call (down, disabled, forced down) and its value says the evacuation is
//!    finished (`no`) or running (`<node>@<epoch>`), the value is kept: re-marking would start
//!    a second evacuation pass. In every other case — including "already fenced" with no value,
//!    which the reference skipped (O5) — `yes` is written.
//!
//! A failure at any step is an error naming the step; nothing loops (O4).

use iha_core::naming::{self, Resolved};
use iha_core::unfence::REASON_PREFIX;
use iha_openstack::{ComputeApi, Service, ServiceQuery};
use iha_pacemaker::{Cluster, EVACUATE_ATTR};
use log::{debug, info, warn};
use std::time::{Duration, Instant};

/// Every `nova-compute` service Nova lists.
pub fn compute_services(nova: &dyn ComputeApi) -> Result<Vec<Service>, String> {
    let q = ServiceQuery { binary: Some("nova-compute".into()), host: None };
    nova.list_services(&q).map_err(|e| format!("cannot list nova-compute services: {e}"))
}

/// The service of the target named by `names` (`port`, then `nodename`).
pub fn find(services: &[Service], names: &[&str], domain: Option<&str>) -> Result<(Resolved, Service), String> {
    let hosts: Vec<String> = services.iter().map(|s| s.host.clone()).collect();
    let r = naming::resolve(names, domain, &hosts).map_err(|e| e.to_string())?;
    let svc = services
        .iter()
        .find(|s| s.host == r.host)
        .cloned()
        .ok_or_else(|| format!("nova-compute service of {} vanished", r.host))?;
    Ok((r, svc))
}

/// Fenced as far as Nova is concerned: down, and disabled or forced down.
pub fn is_fenced(s: &Service) -> bool {
    !s.is_up() && (s.status == "disabled" || s.forced_down == Some(true))
}

fn describe(s: &Service) -> String {
    format!(
        "{}, {}{}",
        s.state.as_deref().unwrap_or("unknown"),
        s.status,
        match s.forced_down {
            Some(true) => ", forced down",
            _ => "",
        }
    )
}

/// The `disabled_reason` of a fencing at `when` (UTC, RFC 3339).
pub fn fence_reason(when: &str) -> String {
    format!("{REASON_PREFIX} fenced by fence_compute at {when}")
}

/// The `off` action for one target; returns the Nova host that was fenced.
pub fn off(
    nova: &dyn ComputeApi,
    cluster: &dyn Cluster,
    names: &[&str],
    domain: Option<&str>,
    reason: &str,
    deadline: Option<Instant>,
) -> Result<String, String> {
    let services = compute_services(nova)?;
    let (r, svc) = find(&services, names, domain)?;
    let host = r.host;
    let sref = svc.to_ref();
    let was_fenced = !svc.is_up() && svc.status == "disabled" && svc.forced_down != Some(false);
    debug!("Status of nova-compute on {host} is {}", describe(&svc));
    if svc.forced_down == Some(true) {
        info!("nova-compute on {host} is already forced down");
    } else {
        info!("Forcing nova-compute down on {host}");
        nova.force_down(&sref, true).map_err(|e| format!("cannot force nova-compute down on {host}: {e}"))?;
    }
    if svc.status == "disabled" {
        info!(
            "nova-compute on {host} is already disabled ({}): reason kept",
            svc.disabled_reason.as_deref().filter(|r| !r.is_empty()).unwrap_or("no reason")
        );
    } else {
        info!("Disabling nova-compute on {host}: {reason}");
        nova.disable_service(&sref, Some(reason)).map_err(|e| format!("cannot disable nova-compute on {host}: {e}"))?;
    }
    let call_deadline = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(30));
    if was_fenced {
        match cluster.attr_query(EVACUATE_ATTR, &host, call_deadline) {
            Ok(Some(v)) if v == "no" || v.contains('@') => {
                info!("{host} was already fenced and its evacuation is {} (evacuate={v}): value kept", if v == "no" { "finished" } else { "in progress" });
                return Ok(host);
            }
            Ok(_) => {}
            Err(e) => warn!("cannot read the evacuate attribute of {host} ({e}); recording it for evacuation"),
        }
    }
    info!("Setting fencing status for {host} to yes");
    cluster
        .attr_update(EVACUATE_ATTR, &host, "yes", call_deadline)
        .map_err(|e| format!("cannot record {host} for evacuation: {e}"))?;
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iha_core::fake::FakeNova;
    use iha_pacemaker::fake::FakeCluster;

    const H: &str = "compute-0.example.com";
    const REASON: &str = "instance-ha: fenced by fence_compute at 2026-11-21T18:05:54.000Z";

    fn nova(state: &str, status: &str, forced: bool) -> FakeNova {
        let n = FakeNova::new();
        n.add_service(H, state, status, forced);
        n.add_service("compute-1.example.com", "up", "enabled", false);
        n
    }

    fn run(n: &FakeNova, c: &FakeCluster) -> Result<String, String> {
        off(n, c, &["compute-0"], None, REASON, None)
    }

    #[test]
    fn off_forces_down_disables_with_reason_and_records() {
        let (n, c) = (nova("down", "enabled", false), FakeCluster::new("ctl0"));
        assert_eq!(run(&n, &c).unwrap(), H);
        assert_eq!((n.calls("force_down"), n.calls("disable_service")), (1, 1));
        assert_eq!(n.disabled_reason(H).as_deref(), Some(REASON));
        assert_eq!(c.writes(), [("evacuate".to_string(), H.to_string(), "yes".to_string())]);
    }

    #[test]
    fn off_of_a_fenced_host_records_it_unless_done_or_running() {
        // O5: the reference skipped the attribute for an already fenced host.
        let (n, c) = (nova("down", "disabled", true), FakeCluster::new("ctl0"));
        run(&n, &c).unwrap();
        assert_eq!((n.calls("force_down"), n.calls("disable_service")), (0, 0));
        assert_eq!(c.get("evacuate", H).as_deref(), Some("yes"));
        for kept in ["no", "ctl0@1700000000"] {
            let c = FakeCluster::new("ctl0");
            c.set("evacuate", H, kept);
            run(&n, &c).unwrap();
            assert!(c.writes().is_empty(), "{kept} is kept");
        }
        // A host that is not yet fenced is always (re)marked, whatever the old value.
        let (n, c) = (nova("down", "enabled", false), FakeCluster::new("ctl0"));
        c.set("evacuate", H, "no");
        run(&n, &c).unwrap();
        assert_eq!(c.get("evacuate", H).as_deref(), Some("yes"));
    }

    #[test]
    fn an_operators_disable_reason_is_kept() {
        let (n, c) = (nova("down", "disabled", false), FakeCluster::new("ctl0"));
        n.edit_service(H, |s| s.disabled_reason = Some("maintenance".into()));
        run(&n, &c).unwrap();
        assert_eq!((n.calls("force_down"), n.calls("disable_service")), (1, 0));
        assert_eq!(c.get("evacuate", H).as_deref(), Some("yes"));
    }

    #[test]
    fn failures_are_errors_naming_the_step() {
        let (n, c) = (nova("down", "enabled", false), FakeCluster::new("ctl0"));
        c.fail_updates(1);
        let e = run(&n, &c).unwrap_err();
        assert!(e.starts_with("cannot record compute-0.example.com for evacuation"), "{e}");
        let e = off(&n, &c, &["compute-9"], None, REASON, None).unwrap_err();
        assert!(e.contains("no nova-compute service matches 'compute-9'"), "{e}");
        n.read_errors(10);
        let e = run(&n, &c).unwrap_err();
        assert!(e.starts_with("cannot list nova-compute services"), "{e}");
    }

    #[test]
    fn fenced_means_down_and_disabled_or_forced() {
        let s = |state: &str, status: &str, forced| Service {
            state: Some(state.into()),
            status: status.into(),
            forced_down: Some(forced),
            ..Default::default()
        };
        assert!(is_fenced(&s("down", "disabled", false)));
        assert!(is_fenced(&s("down", "enabled", true)));
        assert!(!is_fenced(&s("down", "enabled", false)));
        assert!(!is_fenced(&s("up", "disabled", false)));
    }
}
