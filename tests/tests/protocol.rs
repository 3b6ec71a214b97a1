//! The built agents run exactly as Pacemaker and operators run them: stdin lines or arguments for
//! fence agents, `OCF_RESKEY_*` and `argv[1]` for OCF agents; exit codes, output and secrecy.

use iha_tests::{bin, have, run};
use std::process::{Command, Output};

fn fence(agent: &str, args: &[&str], stdin: &str) -> Output {
    run(Command::new(bin(agent)).args(args).env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), stdin)
}

fn ocf(agent: &str, action: &str, env: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir().join(format!("iha-protocol-{}-{agent}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = Command::new(bin(agent));
    c.arg(action).env_clear().env("HA_RSCTMP", &dir).env("OCF_RESOURCE_INSTANCE", "t");
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c, "")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn fence_agents_validate_what_pacemaker_sends() {
    for agent in ["fence_compute", "fence_evacuate"] {
        // stonith_admin --validate without a target, as pcs does on `stonith create`.
        let o = fence(agent, &[], "action=validate-all\nauth_url=http://127.0.0.1:5000/v3\nlogin=admin\npasswd=s3cret\ntenant_name=admin\nrecord_only=1\n");
        assert_eq!(o.status.code(), Some(0), "{agent}: {}", text(&o.stderr));
        let o = fence(agent, &[], "action=validate-all\npower_timeout=soon\n");
        assert_eq!(o.status.code(), Some(1), "{agent}");
        assert!(text(&o.stderr).contains("power_timeout"), "{agent}: {}", text(&o.stderr));
    }
}

#[test]
fn fence_agents_reject_bad_input_with_exit_1() {
    let o = fence("fence_compute", &["--no-such-option"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("option --no-such-option not recognized"));
    let o = fence("fence_compute", &["-o", "reboot", "-n", "c0"], "");
    assert_eq!(o.status.code(), Some(1), "fabric agent: reboot is Pacemaker's to remap");
    assert!(text(&o.stderr).contains("Unrecognised action 'reboot'"));
    let o = fence("fence_compute", &[], "action=off\n");
    assert_eq!(o.status.code(), Some(1), "off needs a target");
    let o = fence("fence_evacuate", &[], "action=on\nport=c0\n");
    assert_eq!(o.status.code(), Some(1), "fence_evacuate does not support on");
    // Binary junk on stdin is not a panic.
    let o = fence("fence_compute", &[], "\u{0}\u{1}=\u{ff}\nport\n=\n");
    assert!(matches!(o.status.code(), Some(0 | 1)), "{o:?}");
    assert!(!text(&o.stderr).contains("panicked"));
}

#[test]
fn record_only_disabled_device_is_inert() {
    let o = fence("fence_compute", &[], "action=off\nport=c0\nrecord_only=disabled\n");
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
}

#[test]
fn secrets_never_reach_stderr_even_verbose() {
    let o = fence(
        "fence_compute",
        &[],
        "action=validate-all\nverbose=1\npasswd=Pa55-w0rd\napplication_credential_secret=AppSecret9\npower_wait=nope\nunknown_thing=Pa55-w0rd\n",
    );
    let err = text(&o.stderr);
    assert!(!err.contains("Pa55-w0rd") && !err.contains("AppSecret9"), "{err}");
    assert!(err.contains("unknown_thing"), "unknown keys are named: {err}");
}

#[test]
fn ocf_agents_follow_the_spec() {
    for agent in ["NovaEvacuate", "nova-compute-wait", "NovaCompute"] {
        let o = ocf(agent, "meta-data", &[]);
        assert_eq!(o.status.code(), Some(0), "{agent}");
        let o = ocf(agent, "usage", &[]);
        assert_eq!(o.status.code(), Some(0), "{agent}");
        assert!(text(&o.stdout).starts_with(&format!("usage: {agent} {{start|stop|monitor")));
        let o = ocf(agent, "promote", &[]);
        assert_eq!(o.status.code(), Some(3), "{agent}: unknown action is unimplemented");
        let o = ocf(agent, "validate-all", &[("OCF_RESKEY_endpoint_type", "sideURL")]);
        assert_eq!(o.status.code(), Some(6), "{agent}");
        assert!(text(&o.stderr).contains("ocf-exit-reason:"), "{agent}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("endpoint_type"), "{agent}");
        let o = ocf(agent, "validate-all", &[("OCF_RESKEY_insecure", "sometimes")]);
        assert_eq!(o.status.code(), Some(6), "{agent}");
        let o = ocf(agent, "validate-all", &[("OCF_RESKEY_auth_url", "http://k/v3"), ("OCF_RESKEY_endpoint_type", "internalURL")]);
        assert_eq!(o.status.code(), Some(0), "{agent}: {}", text(&o.stderr));
    }
    let o = ocf("NovaEvacuate", "validate-all", &[("OCF_RESKEY_evacuate_delay", "later")]);
    assert_eq!(o.status.code(), Some(6));
}

#[test]
fn nova_evacuate_start_stop_are_idempotent() {
    let env = [("OCF_RESKEY_auth_url", "http://k/v3")];
    assert_eq!(ocf("NovaEvacuate", "stop", &env).status.code(), Some(0));
    assert_eq!(ocf("NovaEvacuate", "monitor", &env).status.code(), Some(7));
    assert_eq!(ocf("NovaEvacuate", "start", &env).status.code(), Some(0));
    assert_eq!(ocf("NovaEvacuate", "start", &env).status.code(), Some(0));
    assert_eq!(ocf("NovaEvacuate", "stop", &env).status.code(), Some(0));
    assert_eq!(ocf("NovaEvacuate", "stop", &env).status.code(), Some(0));
    assert_eq!(ocf("NovaEvacuate", "monitor", &env).status.code(), Some(7));
}

#[test]
fn meta_data_works_as_nobody_like_ocf_tester_checks() {
    if !nix_is_root() || !have("su") {
        eprintln!("not root: skipped");
        return;
    }
    for agent in ["NovaEvacuate", "nova-compute-wait", "NovaCompute"] {
        let p = bin(agent);
        let o = run(Command::new("su").args(["nobody", "-s", "/bin/sh", "-c"]).arg(format!("{} meta-data", p.display())), "");
        if o.status.code() == Some(126) || text(&o.stderr).contains("Permission denied") {
            eprintln!("{} not reachable by nobody (build directory permissions): skipped", p.display());
            return;
        }
        assert_eq!(o.status.code(), Some(0), "{agent}: {}", text(&o.stderr));
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

#[test]
fn info_reaches_the_log_file_without_verbose_but_not_stderr() {
    // D7: progress is visible without debug; stderr (logged by Pacemaker as warnings) stays quiet.
    let log = std::env::temp_dir().join(format!("iha-protocol-d7-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let o = fence(
        "fence_compute",
        &[],
        &format!("action=validate-all\nauth_url=http://127.0.0.1:5000/v3\nlogin=admin\npasswd=pw\ntenant_name=admin\ndebug_file={}\n", log.display()),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let written = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(written.contains(" INFO: "), "debug_file gets INFO without verbose: {written:?}");
    assert!(!text(&o.stderr).contains("INFO"), "{}", text(&o.stderr));
}

#[test]
fn ocf_verbose_turns_on_debug_output() {
    // D24: the reference's `verbose` parameter really raises the detail level.
    let quiet = ocf("NovaEvacuate", "validate-all", &[("OCF_RESKEY_auth_url", "http://k/v3")]);
    let verbose = ocf("NovaEvacuate", "validate-all", &[("OCF_RESKEY_auth_url", "http://k/v3"), ("OCF_RESKEY_verbose", "1")]);
    assert!(!text(&quiet.stderr).contains("DEBUG"), "{}", text(&quiet.stderr));
    assert!(text(&verbose.stderr).contains("DEBUG"), "{}", text(&verbose.stderr));
}
