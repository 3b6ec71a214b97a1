//! What fence_evacuate and NovaEvacuate share: the evacuation engine's parameters (one
//! description, so both agents document and accept them identically), their translation into
//! the engine's settings, and the OpenStack connection from agent parameters.

use iha_core::engine::{FenceCheck, Settings};
use iha_core::policy::PolicyConfig;
use iha_core::storm::{MAX_HOSTS_PARAM, MAX_SHARE_PARAM, StormLimits};
use iha_meta::{Getopt, Param, Type, Values};
use iha_openstack::{ConnectionOptions, options_from_values};
use std::time::Duration;

/// Order of our additions in fence metadata: after every reference parameter.
const OURS: u16 = 310;

const fn gl(long: &'static str, value: &'static str) -> Option<Getopt> {
    Some(Getopt::long(long, value))
}

/// The evacuation engine's parameters (both agents).
pub static ENGINE_PARAMS: &[Param] = &[
    Param {
        getopt: gl("concurrency", "number"),
        ty: Type::Integer,
        default: Some("16"),
        order: OURS,
        longdesc: "How many evacuate calls may be in flight at once (for NovaEvacuate: across all \
hosts being evacuated). Nova's rebuilds then run in parallel; raise it for hosts with many \
instances if Nova's API and conductors keep up.",
        ..Param::new("concurrency", "Parallel evacuations")
    },
    Param {
        getopt: gl("evacuation-attempts", "number"),
        ty: Type::Integer,
        default: Some("3"),
        order: OURS,
        longdesc: "Attempts per instance for failures worth retrying (no valid host found, the \
rebuild failed on the destination, a call lost or rate-limited). Attempts are counted from \
Nova's own migration records, so a restarted agent keeps the budget. After the last one the \
instance is reported failed and, for NovaEvacuate, the host is settled so that it can be \
unfenced.",
        ..Param::new("evacuation_attempts", "Attempts per instance")
    },
    Param {
        getopt: gl("retry-backoff", "seconds"),
        ty: Type::Second,
        default: Some("5"),
        order: OURS,
        longdesc: "Wait before the second attempt of an instance; doubled for each further one.",
        ..Param::new("retry_backoff", "Back-off between attempts")
    },
    Param {
        getopt: gl("track-evacuations", "bool"),
        ty: Type::Boolean,
        default: Some("1"),
        order: OURS,
        longdesc: "Follow every evacuation through Nova's migration records and the server until \
it runs on another host (ACTIVE, or SHUTOFF if it was stopped). 0 restores the reference \
behaviour: success as soon as Nova accepts the calls.",
        ..Param::new("track_evacuations", "Track evacuations to completion")
    },
    Param {
        getopt: gl("tracking-timeout", "seconds"),
        ty: Type::Second,
        default: Some("900"),
        order: OURS,
        longdesc: "An evacuation that has not finished this long after Nova accepted it is \
reported failed (0: no limit other than the action's deadline).",
        ..Param::new("tracking_timeout", "Evacuation timeout per instance")
    },
    Param {
        getopt: gl("poll-interval", "seconds"),
        ty: Type::Second,
        default: Some("10"),
        order: OURS,
        longdesc: "Longest pause between two looks at the host's evacuations: polling starts \
every second and backs off to this while nothing changes. One look lists the servers of the \
host and its evacuation migrations, whatever the number of instances.",
        ..Param::new("poll_interval", "Slowest polling of evacuations")
    },
    Param {
        getopt: gl("poll-min-ms", "ms"),
        ty: Type::Integer,
        default: Some("1000"),
        order: OURS,
        visible: false,
        ..Param::new("poll_min_ms", "Fastest polling in milliseconds (tests)")
    },
    Param {
        getopt: gl("evacuable-tag", "name"),
        default: Some("evacuable"),
        order: OURS,
        longdesc: "The marker of evacuable instances: flavor extra spec and image property \
'<name>=true', image tag '<name>', host aggregate metadata '<name>=true|false', and server tag \
'<name>' (opt-in). If no flavor and no image in the cloud is marked, every instance is \
evacuated; if any aggregate carries the key, only hosts in an aggregate with '<name>=true' are.",
        ..Param::new("evacuable_tag", "Evacuable marker name")
    },
    Param {
        getopt: gl("server-evacuate-key", "key"),
        default: Some("instance-ha:evacuate"),
        order: OURS,
        longdesc: "Server metadata key for owners: 'false' keeps the instance where it is (also \
with instance_filtering off), 'true' evacuates it whatever its flavor and image.",
        ..Param::new("server_evacuate_key", "Per-server opt-in/opt-out metadata key")
    },
    Param {
        getopt: gl("server-opt-out-tag", "tag"),
        default: Some("instance-ha:no-evacuate"),
        order: OURS,
        longdesc: "Server tag that keeps an instance where it is.",
        ..Param::new("server_opt_out_tag", "Per-server opt-out tag")
    },
    Param {
        getopt: gl("priority-key", "key"),
        default: Some("instance-ha:priority"),
        order: OURS,
        longdesc: "Server metadata key, else flavor extra spec, holding an integer priority: \
higher values are evacuated first (default 0); equal priorities go by name.",
        ..Param::new("priority_key", "Evacuation priority key")
    },
    Param {
        getopt: gl("use-aggregates", "bool"),
        ty: Type::Boolean,
        default: Some("1"),
        order: OURS,
        longdesc: "Consult host aggregates' evacuable metadata (see evacuable_tag).",
        ..Param::new("use_aggregates", "Aggregate-based selection")
    },
    Param {
        getopt: gl("reserved-hosts", "hosts"),
        default: Some(""),
        order: OURS,
        longdesc: "Comma-separated Nova hosts tried first, in turn, as evacuation targets (those \
up and enabled); when Nova refuses one or an attempt fails, the scheduler chooses.",
        ..Param::new("reserved_hosts", "Reserved target hosts")
    },
    Param {
        getopt: gl("reserved-aggregate", "name"),
        default: Some(""),
        order: OURS,
        longdesc: "Host aggregate whose hosts (up and enabled) are tried first as targets, as \
reserved_hosts.",
        ..Param::new("reserved_aggregate", "Reserved target aggregate")
    },
    Param {
        getopt: gl("storm-max-share", "percent"),
        ty: Type::Integer,
        default: Some("50"),
        order: OURS,
        longdesc: "Storm guard: hold new evacuations while more than this percentage of \
nova-compute hosts is failed (down, forced down, or marked for evacuation, counting hosts \
already being evacuated). Logged at error level until it clears. 100 disables the check; to \
force evacuation during a real mass failure, raise it (and storm_max_hosts).",
        ..Param::new("storm_max_share", "Storm guard: failed share")
    },
    Param {
        getopt: gl("storm-max-hosts", "number"),
        ty: Type::Integer,
        default: Some("0"),
        order: OURS,
        longdesc: "Storm guard: hold new evacuations while more than this many nova-compute hosts \
are failed; 0 disables the check.",
        ..Param::new("storm_max_hosts", "Storm guard: failed hosts")
    },
    Param {
        getopt: gl("reset-task-state", "bool"),
        ty: Type::Boolean,
        default: Some("0"),
        order: OURS,
        longdesc: "An instance caught in the middle of a task when its host died (task_state \
powering-off, resize_prep...) can never finish it, and Nova refuses to evacuate it. 1 resets such \
an instance to ERROR once (os-resetState), which makes it evacuable; 0 reports it as failed.",
        ..Param::new("reset_task_state", "Reset stuck tasks before evacuating")
    },
    Param {
        getopt: gl("fence-check", "how"),
        ty: Type::Select(&["history", "nova"]),
        default: Some("history"),
        order: OURS,
        longdesc: "How a host is confirmed fenced before anything is evacuated. 'history': Nova \
must report its nova-compute forced down (or down and disabled) and, where Pacemaker's fencing \
history can be read, the node's last fencing operation must be a successful off or reboot. \
'nova': Nova's report alone (for node names Pacemaker does not share with Nova).",
        ..Param::new("fence_check", "Fencing confirmation")
    },
];

fn int(v: &Values, name: &str, min: i64, max: i64) -> Result<i64, String> {
    let Some(raw) = v.get(name).filter(|s| !s.trim().is_empty()) else {
        return v
            .agent()
            .param(name)
            .and_then(|p| p.default)
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("{name} has no value"));
    };
    let n: i64 = raw.trim().parse().map_err(|_| format!("{name}='{raw}' is not a whole number"))?;
    if (min..=max).contains(&n) { Ok(n) } else { Err(format!("{name}={n} is out of range {min}..{max}")) }
}

fn text(v: &Values, name: &str) -> String {
    v.nonempty(name).map(str::to_string).or_else(|| v.agent().param(name).and_then(|p| p.default).map(str::to_string)).unwrap_or_default()
}

fn secs(n: i64) -> Duration {
    Duration::from_secs(u64::try_from(n).unwrap_or(0))
}

/// The engine's settings, the selection policy and the storm limits from the parameters;
/// `Err` names the parameter that is wrong.
pub fn engine_config(v: &Values, fence_check: FenceCheck) -> Result<(Settings, PolicyConfig, StormLimits), String> {
    let list = |name: &str| -> Vec<String> {
        text(v, name).split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
    };
    let tracking = int(v, "tracking_timeout", 0, 86_400 * 7)?;
    let poll_max = secs(int(v, "poll_interval", 1, 3600)?);
    let poll_min = Duration::from_millis(u64::try_from(int(v, "poll_min_ms", 1, 60_000)?).unwrap_or(1000)).min(poll_max);
    let check = match text(v, "fence_check").as_str() {
        "nova" => FenceCheck::NovaOnly,
        _ => fence_check,
    };
    let no_shared = v.flag("no_shared_storage");
    let settings = Settings {
        concurrency: usize::try_from(int(v, "concurrency", 1, 1024)?).unwrap_or(16),
        attempts: u32::try_from(int(v, "evacuation_attempts", 1, 100)?).unwrap_or(3),
        retry_backoff: secs(int(v, "retry_backoff", 0, 3600)?),
        track: v.flag("track_evacuations"),
        poll_min,
        poll_max,
        tracking_timeout: (tracking > 0).then(|| secs(tracking)),
        recheck_after: poll_min.max(Duration::from_millis(500)).min(Duration::from_secs(2)),
        // Only used below 2.14, where Nova cannot find out (O3: false means shared).
        on_shared_storage: Some(!no_shared),
        reserved_hosts: list("reserved_hosts"),
        reserved_aggregate: v.nonempty("reserved_aggregate").map(str::to_string),
        fence_check: check,
        reset_task_state: v.flag("reset_task_state"),
        ..Settings::default()
    };
    let policy = PolicyConfig {
        // O12: instance_filtering=false really turns filtering off.
        filtering: v.flag("instance_filtering"),
        tag: text(v, "evacuable_tag"),
        server_key: text(v, "server_evacuate_key"),
        opt_out_tag: text(v, "server_opt_out_tag"),
        priority_key: text(v, "priority_key"),
        aggregates: v.flag("use_aggregates"),
    };
    if policy.tag.is_empty() {
        return Err("evacuable_tag must not be empty".into());
    }
    // One parser for these two, shared with NovaEvacuate's read of the live limits in the CIB.
    let storm = StormLimits::from_params(v.get(MAX_SHARE_PARAM), v.get(MAX_HOSTS_PARAM))?;
    Ok((settings, policy, storm))
}

/// Connection options from the parameters, clouds.yaml and `OS_*`; no network. The client logs
/// through the `log` facade, so its records land in the agent's log with the runtime's redaction.
pub fn options(v: &Values, password: Option<&str>) -> Result<ConnectionOptions, String> {
    options_from_values(v, password).map_err(|e| format!("openstack credentials: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> Values {
        let mut v = Values::new(&crate::SPEC);
        for (k, val) in pairs {
            assert!(v.set(k, *val).is_some(), "{k} is a parameter");
        }
        v
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let (s, p, storm) = engine_config(&values(&[]), FenceCheck::InsideFencing).unwrap();
        assert_eq!(s.concurrency, 16);
        assert_eq!(s.attempts, 3);
        assert!(s.track);
        assert_eq!(s.tracking_timeout, Some(Duration::from_secs(900)));
        assert_eq!(s.poll_max, Duration::from_secs(10));
        assert_eq!(s.poll_min, Duration::from_secs(1));
        assert_eq!(s.fence_check, FenceCheck::InsideFencing);
        assert_eq!(s.on_shared_storage, Some(true));
        assert!(p.filtering && p.aggregates);
        assert_eq!(p.tag, "evacuable");
        assert_eq!(storm, StormLimits { max_share_percent: 50, max_hosts: 0 });
    }

    #[test]
    fn false_means_false_and_values_are_checked() {
        // O3/O12: the reference reads any present value as "set".
        let (s, p, _) = engine_config(
            &values(&[("no_shared_storage", "false"), ("instance_filtering", "false"), ("track_evacuations", "0")]),
            FenceCheck::InsideFencing,
        )
        .unwrap();
        assert_eq!(s.on_shared_storage, Some(true));
        assert!(!p.filtering);
        assert!(!s.track);
        let (s, _, _) = engine_config(&values(&[("no_shared_storage", "1"), ("fence_check", "nova"), ("tracking_timeout", "0"), ("reserved_hosts", "r1, r2,,r3")]), FenceCheck::History).unwrap();
        assert_eq!(s.on_shared_storage, Some(false));
        assert_eq!(s.fence_check, FenceCheck::NovaOnly);
        assert_eq!(s.tracking_timeout, None);
        assert_eq!(s.reserved_hosts, vec!["r1", "r2", "r3"]);
        for bad in [("concurrency", "0"), ("concurrency", "many"), ("storm_max_share", "150"), ("evacuation_attempts", "-1")] {
            let e = engine_config(&values(&[bad]), FenceCheck::History).unwrap_err();
            assert!(e.contains(bad.0), "{e}");
        }
    }
}
