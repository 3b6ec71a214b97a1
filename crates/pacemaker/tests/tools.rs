//! The process implementation against stand-in tools: argument vectors reach the tool intact
//! (no shell), deadlines kill hung tools, attrd's "does not exist" and crm_resource's "not found"
//! are absent values.

use iha_pacemaker::{Cluster, PcmkError, Tools};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn tooldir(name: &str, scripts: &[(&str, &str)]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("iha-pcmk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    for (tool, body) in scripts {
        let p = d.join(tool);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    d
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[test]
fn arguments_are_passed_verbatim_without_a_shell() {
    let d = tooldir("argv", &[("attrd_updater", "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$(dirname \"$0\")/argv\"")]);
    let t = Tools { dir: Some(d.clone()) };
    let evil = "compute-0; touch /tmp/iha-pwned $(id) `id` | cat";
    t.attr_update("evacuate", evil, "yes", soon()).unwrap();
    let argv = std::fs::read_to_string(d.join("argv")).unwrap();
    assert_eq!(argv.lines().collect::<Vec<_>>(), ["-p", "-n", "evacuate", "-U", "yes", "-N", evil]);
    assert!(!std::path::Path::new("/tmp/iha-pwned").exists());
}

#[test]
fn query_parses_and_absent_is_none() {
    let d = tooldir(
        "query",
        &[("attrd_updater", "case \"$*\" in *missing*) echo 'Could not query value of evacuate: attribute does not exist' >&2; exit 78;; *-A*) printf 'name=\"evacuate\" host=\"a\" value=\"yes\"\\nname=\"evacuate\" host=\"b\" value=\"no\"\\n';; *) printf 'name=\"evacuate\" host=\"%s\" value=\"ctl0@17\"\\n' \"$6\";; esac")],
    );
    let t = Tools { dir: Some(d) };
    assert_eq!(t.attr_query("evacuate", "h1", soon()), Ok(Some("ctl0@17".into())));
    assert_eq!(t.attr_query("evacuate", "missing", soon()), Ok(None));
    assert_eq!(t.attr_query_all("evacuate", soon()).unwrap().len(), 2);
}

#[test]
fn hung_tool_is_killed_at_the_deadline() {
    let d = tooldir("hang", &[("crm_node", "exec sleep 30")]);
    let t = Tools { dir: Some(d) };
    let start = Instant::now();
    let r = t.local_node(Instant::now() + Duration::from_millis(300));
    assert!(matches!(r, Err(PcmkError::Timeout(_))), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn missing_tools_are_reported() {
    let t = Tools { dir: Some(PathBuf::from("/nonexistent")) };
    assert!(matches!(t.local_node(soon()), Err(PcmkError::NotInstalled(_))));
    assert_eq!(t.fence_history("n", soon()), Ok(None), "no fencer: history unknown");
    assert!(matches!(t.resource_param("r", "p", soon()), Err(PcmkError::NotInstalled(_))), "no CIB tool: an error, never unset");
}

#[test]
fn resource_param_reads_the_cib_like_crm_resource_prints_it() {
    // As Pacemaker 2.1.5 answers: the value alone on stdout; an unset parameter exits 0 with
    // nothing on stdout; an unknown resource exits 105; a stopped cluster 102.
    let d = tooldir(
        "crm-resource",
        &[(
            "crm_resource",
            "[ \"$1 $3\" = '--resource --get-parameter' ] || exit 64\n\
             case \"$2\" in nova-evacuate) ;; down) echo 'crm_resource: Could not connect to the CIB: Transport endpoint is not connected' >&2; exit 102;; \
             *) echo \"crm_resource: Resource '$2' not found\" >&2; exit 105;; esac\n\
             case \"$4\" in storm_max_share) echo 100;; empty) echo;; *) echo \"Attribute '$4' not found for '$2'\" >&2;; esac",
        )],
    );
    let t = Tools { dir: Some(d) };
    assert_eq!(t.resource_param("nova-evacuate", "storm_max_share", soon()), Ok(Some("100".into())));
    assert_eq!(t.resource_param("nova-evacuate", "storm_max_hosts", soon()), Ok(None));
    assert_eq!(t.resource_param("nova-evacuate", "empty", soon()), Ok(None));
    let e = t.resource_param("other", "storm_max_share", soon()).unwrap_err();
    assert!(matches!(e, PcmkError::Failed { code: Some(105), .. }), "{e:?}");
    let e = t.resource_param("down", "storm_max_share", soon()).unwrap_err();
    assert!(e.to_string().contains("Could not connect to the CIB"), "{e}");
}
