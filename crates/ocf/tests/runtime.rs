//! The OCF runtime driven as Pacemaker drives it, against a Dummy-like test agent.

use iha_meta::{Action, Agent, Param, Protocol, Type};
use iha_ocf::{Context, Env, OcfError, ResourceAgent, Running, run_io};
use std::collections::HashMap;
use std::sync::Mutex;

static PARAMS: &[Param] = &[
    Param { required: true, ..Param::new("auth_url", "URL") },
    Param { deprecated: &["passwd"], secret: true, ..Param::new("password", "Password") },
    Param { ty: Type::Integer, default: Some("0"), ..Param::new("evacuate_delay", "Delay") },
    Param { ty: Type::Boolean, default: Some("0"), ..Param::new("verbose", "Debug") },
    Param { ty: Type::Select(&["a", "b"]), ..Param::new("mode", "Mode") },
];
static AGENT: Agent = Agent {
    name: "TestAgent",
    protocol: Protocol::Ocf,
    version: "0.1.0",
    shortdesc: "Test",
    longdesc: "Test agent",
    vendor_url: "",
    params: &[PARAMS],
    actions: &[
        Action::timed("start", 20, ""),
        Action::timed("stop", 20, ""),
        Action { interval: Some(10), depth: Some(0), ..Action::timed("monitor", 600, "") },
        Action::timed("validate-all", 20, ""),
        Action::timed("meta-data", 5, ""),
    ],
    default_action: "",
    man_section: 7,
    exit_statuses: &[],
    notes: &[],
};

#[derive(Default)]
struct Dummy {
    seen: Mutex<Vec<String>>,
}

impl ResourceAgent for Dummy {
    fn start(&self, ctx: &Context<'_>) -> Result<(), OcfError> {
        ctx.check_params()?;
        std::fs::write(ctx.state_file("state"), b"").map_err(|e| OcfError::generic(e.to_string()))
    }
    fn stop(&self, ctx: &Context<'_>) -> Result<(), OcfError> {
        let _ = std::fs::remove_file(ctx.state_file("state"));
        Ok(())
    }
    fn monitor(&self, ctx: &Context<'_>) -> Result<Running, OcfError> {
        self.seen.lock().unwrap().push(format!(
            "probe={} remaining<={}",
            ctx.probe,
            ctx.remaining().as_secs()
        ));
        if ctx.values.get("mode") == Some("b") {
            panic!("boom with {}", ctx.values.get("password").unwrap_or(""));
        }
        Ok(if ctx.state_file("state").exists() { Running::Yes } else { Running::No })
    }
}

struct TestEnv(HashMap<String, String>);
impl Env for TestEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

fn env(pairs: &[(&str, &str)], dir: &std::path::Path) -> TestEnv {
    let mut m: HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    m.insert("HA_RSCTMP".into(), dir.display().to_string());
    m.insert("OCF_RESOURCE_INSTANCE".into(), "t1".into());
    TestEnv(m)
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("iha-ocf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(h: &Dummy, action: Option<&str>, e: &TestEnv) -> (u8, String) {
    let mut out = Vec::new();
    let code = run_io(&AGENT, h, action, &mut out, e);
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn lifecycle_like_ocf_tester() {
    let d = tmpdir("life");
    let e = env(&[("OCF_RESKEY_auth_url", "http://k")], &d);
    let h = Dummy::default();
    assert_eq!(run(&h, Some("monitor"), &e).0, 7);
    assert_eq!(run(&h, Some("start"), &e).0, 0);
    assert_eq!(run(&h, Some("start"), &e).0, 0);
    assert_eq!(run(&h, Some("monitor"), &e).0, 0);
    assert_eq!(run(&h, Some("stop"), &e).0, 0);
    assert_eq!(run(&h, Some("stop"), &e).0, 0);
    assert_eq!(run(&h, Some("monitor"), &e).0, 7);
    assert_eq!(run(&h, Some("notify"), &e).0, 3);
    assert_eq!(run(&h, Some("promote"), &e).0, 3);
    assert_eq!(run(&h, None, &e).0, 2);
}

#[test]
fn metadata_and_usage_need_nothing() {
    let d = tmpdir("meta");
    let h = Dummy::default();
    let e = env(&[], &d);
    let (code, xml) = run(&h, Some("meta-data"), &e);
    assert_eq!(code, 0);
    assert!(xml.contains("<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">"));
    assert!(xml.contains("<action name=\"monitor\"      timeout=\"600\" interval=\"10\" depth=\"0\" />"));
    assert!(run(&h, Some("usage"), &e).1.starts_with("usage: TestAgent {start|stop|monitor"));
}

#[test]
fn validate_all_checks_parameters() {
    let d = tmpdir("validate");
    let h = Dummy::default();
    assert_eq!(run(&h, Some("validate-all"), &env(&[], &d)).0, 6, "required missing");
    let bad = env(&[("OCF_RESKEY_auth_url", "x"), ("OCF_RESKEY_evacuate_delay", "soon")], &d);
    assert_eq!(run(&h, Some("validate-all"), &bad).0, 6);
    let bad = env(&[("OCF_RESKEY_auth_url", "x"), ("OCF_RESKEY_mode", "c")], &d);
    assert_eq!(run(&h, Some("validate-all"), &bad).0, 6);
    let ok = env(&[("OCF_RESKEY_auth_url", "x"), ("OCF_RESKEY_passwd", "pw")], &d);
    assert_eq!(run(&h, Some("validate-all"), &ok).0, 0);
    assert_eq!(run(&h, Some("start"), &env(&[], &d)).0, 6);
}

#[test]
fn probe_and_deadline_from_crm_meta() {
    let d = tmpdir("probe");
    let h = Dummy::default();
    let e = env(
        &[("OCF_RESKEY_auth_url", "x"), ("OCF_RESKEY_CRM_meta_interval", "0"), ("OCF_RESKEY_CRM_meta_timeout", "20000")],
        &d,
    );
    run(&h, Some("monitor"), &e);
    let e = env(&[("OCF_RESKEY_auth_url", "x"), ("OCF_RESKEY_CRM_meta_interval", "10000")], &d);
    run(&h, Some("monitor"), &e);
    let seen = h.seen.lock().unwrap();
    // 20 s timeout minus a 2 s margin; without CRM_meta_timeout the metadata's 600 s minus 5 s.
    assert_eq!(seen[0], "probe=true remaining<=17");
    assert_eq!(seen[1], "probe=false remaining<=594");
}
