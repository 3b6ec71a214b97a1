//! The fence runtime driven the way Pacemaker and operators drive it, against a test agent.

use iha_fence::args::{parse_argv, parse_stdin, split_words};
use iha_fence::{Context, Env, FenceError, Handlers, ListEntry, Power, run_io};
use iha_meta::common::{FENCE_OPENSTACK, FENCE_STANDARD};
use iha_meta::{Action, Agent, Getopt, Param, Protocol};
use std::collections::HashMap;
use std::sync::Mutex;

static OWN: &[Param] = &[
    Param {
        getopt: Some(Getopt::with_short('o', "action", "action")),
        default: Some("off"),
        required: true,
        order: 1,
        ..Param::new("action", "Fencing action")
    },
    Param {
        getopt: Some(Getopt { short: Some('r'), long: "record-only", value: Some(""), mixed: Some("--record-only") }),
        default: Some("False"),
        order: 8,
        ..Param::new("record_only", "Only record")
    },
];

static AGENT: Agent = Agent {
    name: "fence_test",
    protocol: Protocol::Fence,
    version: "0.1.0",
    shortdesc: "Test agent",
    longdesc: "A test agent",
    vendor_url: "",
    params: &[OWN, FENCE_OPENSTACK, FENCE_STANDARD],
    actions: &[
        Action { automatic: Some(true), ..Action::new("on", "") },
        Action::new("off", ""),
        Action::new("status", ""),
        Action::new("list", ""),
        Action::new("list-status", ""),
        Action::new("monitor", ""),
        Action::new("metadata", ""),
        Action::new("manpage", ""),
        Action::new("validate-all", ""),
    ],
    default_action: "off",
    man_section: 8,
    exit_statuses: &[],
    notes: &[],
};

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
    status: Option<Power>,
}

impl Handlers for Recorder {
    fn short_circuit(&self, ctx: &Context<'_>) -> bool {
        matches!(ctx.values.get("record_only"), Some("2" | "disabled" | "Disabled"))
    }
    fn off(&self, ctx: &Context<'_>, t: &str) -> Result<(), FenceError> {
        self.calls.lock().unwrap().push(format!("off {t} pw={:?}", ctx.password()));
        Ok(())
    }
    fn on(&self, _: &Context<'_>, t: &str) -> Result<(), FenceError> {
        self.calls.lock().unwrap().push(format!("on {t}"));
        Err(FenceError::new("cannot power on"))
    }
    fn status(&self, _: &Context<'_>, t: &str) -> Result<Power, FenceError> {
        self.calls.lock().unwrap().push(format!("status {t}"));
        self.status.ok_or_else(|| FenceError::new("unknown"))
    }
    fn list(&self, _: &Context<'_>) -> Result<Vec<ListEntry>, FenceError> {
        Ok(vec![
            ListEntry { name: "compute-0.example.com".into(), alias: "".into(), status: None },
            ListEntry { name: "compute-0".into(), alias: "".into(), status: Some(Power::Off) },
        ])
    }
    fn monitor(&self, _: &Context<'_>) -> Result<(), FenceError> {
        Ok(())
    }
}

struct TestEnv(HashMap<&'static str, &'static str>);
impl Env for TestEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|s| s.to_string())
    }
}

fn run(h: &Recorder, args: &[&str], stdin: &str) -> (u8, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let code = run_io(&AGENT, h, &args, &mut stdin.as_bytes(), &mut out, &TestEnv(HashMap::new()));
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn stdin_edge_cases() {
    let text = "# comment\r\n\r\naction=off\r\nport = compute-0  \npassword=a=b=c\nauth-url=\"http://x/v3\"\nproject-domain=D\nnodename=compute-0\nbogus=secret\nverbose=maybe\ninsecure=false\nport=compute-1\n";
    let p = parse_stdin(&AGENT, text);
    assert_eq!(p.values.get("plug"), Some("compute-1"), "last duplicate wins");
    assert_eq!(p.values.get("password"), Some("a=b=c"), "= inside values");
    assert_eq!(p.values.get("auth_url"), Some("http://x/v3"), "quotes stripped, - and _ equal");
    assert_eq!(p.values.get("project_domain"), Some("D"));
    assert_eq!(p.values.get("nodename"), Some("compute-0"));
    assert!(!p.values.flag("insecure"), "false is false");
    assert!(p.values.is_given("insecure"));
    assert!(p.warnings.iter().any(|w| w.contains("'bogus'") && !w.contains("secret")), "{:?}", p.warnings);
    assert!(p.warnings.iter().any(|w| w.contains("'verbose'")));
    assert!(p.from_stdin);
}

#[test]
fn every_alias_on_stdin() {
    for (key, canonical) in [
        ("login", "username"), ("username", "username"), ("passwd", "password"),
        ("password", "password"), ("passwd_script", "password_script"),
        ("password-script", "password_script"), ("port", "plug"), ("plug", "plug"),
        ("user-domain", "user_domain"), ("user_domain", "user_domain"),
        ("compute-domain", "compute_domain"), ("debug", "debug_file"), ("debug-file", "debug_file"),
        ("power-timeout", "power_timeout"), ("retry_on", "retry_on"), ("tenant-name", "tenant_name"),
    ] {
        let p = parse_stdin(&AGENT, &format!("{key}=v\n"));
        assert_eq!(p.values.get(canonical), Some("v"), "{key}");
        assert!(p.warnings.is_empty(), "{key}: {:?}", p.warnings);
    }
}

#[test]
fn argv_forms() {
    let a = |v: &[&str]| parse_argv(&AGENT, &v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let p = a(&["-o", "status", "--plug=c0", "--auth=http://k", "-lAdmin", "--password", "pw", "-vv", "extra"]).unwrap();
    assert_eq!(p.values.get("action"), Some("status"));
    assert_eq!(p.values.get("plug"), Some("c0"));
    assert_eq!(p.values.get("auth_url"), Some("http://k"), "unique prefix");
    assert_eq!(p.values.get("username"), Some("Admin"), "attached short value");
    assert_eq!(p.values.get("password"), Some("pw"));
    assert_eq!(p.verbose_count, 2);
    assert!(p.warnings[0].contains("Unused arguments"));
    let p = a(&["--insecure", "-r", "2", "--", "-n"]).unwrap();
    assert!(p.values.flag("insecure"));
    assert_eq!(p.values.get("record_only"), Some("2"));
    assert_eq!(p.values.get("plug"), None, "-- ends options");
    assert!(a(&["--nosuch"]).unwrap_err().0.contains("option --nosuch not recognized"));
    assert!(a(&["-Z"]).is_err());
    assert!(a(&["--pass=x"]).unwrap_err().0.contains("not a unique prefix"), "password vs password-script");
    assert!(a(&["--plu=x"]).is_err(), "plug vs plug-separator, as GNU getopt");
    assert!(a(&["-n"]).unwrap_err().0.contains("requires argument"));
    assert!(a(&["--insecure=1"]).is_err());
}

#[test]
fn status_and_exit_codes() {
    let h = Recorder { status: Some(Power::Off), ..Default::default() };
    assert_eq!(run(&h, &["-o", "status", "-n", "c0"], ""), (2, "Status: OFF\n".into()));
    let h = Recorder { status: Some(Power::On), ..Default::default() };
    assert_eq!(run(&h, &[], "action=status\nport=c0\n"), (0, "Status: ON\n".into()));
    let h = Recorder::default();
    assert_eq!(run(&h, &["-o", "status", "-n", "c0"], "").0, 1, "unknown status is a failure");
}

#[test]
fn target_required_and_actions_checked() {
    let h = Recorder::default();
    assert_eq!(run(&h, &["-o", "off"], "").0, 1);
    assert_eq!(run(&h, &["-o", "reboot", "-n", "x"], "").0, 1, "fabric agent has no reboot");
    assert_eq!(run(&h, &["-o", "start", "-n", "x"], "").0, 1);
    assert_eq!(run(&h, &["-o", "disable", "-n", "x"], "").0, 0, "disable = off for fabric agents");
    assert_eq!(h.calls.lock().unwrap().as_slice(), ["off x pw=None"]);
    assert_eq!(run(&h, &[], "action=on\nport=x\n").0, 1, "handler failure exits 1");
}

#[test]
fn list_formats() {
    let h = Recorder::default();
    assert_eq!(run(&h, &["-o", "list"], "").1, "compute-0.example.com,\ncompute-0,\n");
    assert_eq!(
        run(&h, &["-o", "list-status", "-C", ";"], "").1,
        "compute-0.example.com;;UNKNOWN\ncompute-0;;OFF\n"
    );
    assert_eq!(run(&h, &["-o", "monitor"], ""), (0, String::new()));
}

#[test]
fn docs_need_nothing_and_validate() {
    let h = Recorder::default();
    let (code, xml) = run(&h, &[], "action=meta-data\n");
    assert_eq!(code, 0);
    assert!(xml.starts_with("<?xml") && xml.contains("name=\"port\""));
    assert!(run(&h, &["--help"], "").1.contains("--plug=[id]"));
    assert!(run(&h, &["-V"], "").1.contains("0.1.0"));
    assert!(run(&h, &["-o", "manpage"], "").1.starts_with(".TH FENCE_TEST 8"));
    assert_eq!(run(&h, &[], "action=validate-all\n").0, 0, "no target needed to validate a device");
    assert_eq!(run(&h, &[], "action=validate-all\ndelay=soon\n").0, 1);
    assert_eq!(run(&h, &[], "action=validate-all\ninsecure=maybe\n").0, 0, "bad stdin booleans are ignored with a warning");
    assert_eq!(run(&h, &["--delay=x", "-o", "off", "-n", "c"], "").0, 1);
    assert!(h.calls.lock().unwrap().is_empty());
}

#[test]
fn record_only_disabled_short_circuits() {
    let h = Recorder::default();
    assert_eq!(run(&h, &[], "action=off\nport=c\nrecord_only=disabled\ndelay=100\n"), (0, String::new()));
    assert!(h.calls.lock().unwrap().is_empty());
}

#[test]
fn password_script_runs_without_a_shell() {
    let h = Recorder::default();
    let (code, _) = run(&h, &[], "action=off\nport=c\npassword_script=/bin/echo 'hunter 2' ;ls\n");
    assert_eq!(code, 0);
    assert_eq!(h.calls.lock().unwrap()[0], "off c pw=Some(\"hunter 2 ;ls\")");
    let (code, _) = run(&h, &[], "action=off\nport=c\npassword_script=/nonexistent/script\n");
    assert_eq!(code, 1);
}

#[test]
fn delay_is_honoured_before_off() {
    let h = Recorder::default();
    let t = std::time::Instant::now();
    assert_eq!(run(&h, &[], "action=off\nport=c\ndelay=0.3\n").0, 0);
    assert!(t.elapsed() >= std::time::Duration::from_millis(250));
    assert_eq!(run(&h, &[], "action=off\nport=c\ndelay=10\naction_timeout=1\n").0, 1, "delay past the deadline fails at once");
}

#[test]
fn shell_words() {
    assert_eq!(split_words(r#"a 'b c' "d \"e\"" f\ g"#).unwrap(), ["a", "b c", "d \"e\"", "f g"]);
    assert!(split_words("'open").is_err());
    assert!(split_words("").unwrap().is_empty());
}
