//! The `nova-sim` binary: serve with a scenario, pid and log files; the
//! compute heartbeat loop; clean exits on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iha_testkit::client::request;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("nova-sim-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn serve_compute_and_sigterm() {
    let dir = tmpdir("serve");
    let scenario = dir.join("scenario.json");
    std::fs::write(&scenario, r#"{"hosts": [{"name": "cn-0", "state": "down"}, {"name": "cn-1", "heartbeat": "external"}],
        "servers": [{"name": "vm", "host": "cn-0"}], "report_interval_secs": 1}"#)
    .unwrap();
    let pid_file = dir.join("sim.pid");
    let log_file = dir.join("requests.jsonl");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_nova-sim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--scenario"])
        .arg(&scenario)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("--log-file")
        .arg(&log_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(serve.stdout.take().unwrap()).read_line(&mut first).unwrap();
    // "nova-sim listening on http://127.0.0.1:PORT (auth_url ...)"
    let base = first.split_whitespace().nth(3).unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap().trim(), serve.id().to_string());
    let t = Duration::from_secs(5);
    assert_eq!(request("GET", &format!("{base}/identity/v3"), &[], None, t).unwrap().status, 200);

    let mut compute = Command::new(env!("CARGO_BIN_EXE_nova-sim"))
        .args(["compute", "--host", "cn-9", "--url", &base, "--interval", "0.2", "--quiet"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = request("GET", &format!("{base}/sim/state"), &[], None, t).unwrap().json();
        let hosts = st["hosts"].as_array().unwrap();
        if hosts.iter().any(|h| h["name"] == "cn-9" && h["state"] == "up" && h["heartbeat"] == "external") {
            break;
        }
        assert!(Instant::now() < deadline, "cn-9 never registered: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(Pid::from_raw(compute.id() as i32), Signal::SIGTERM).unwrap();
    let status = compute.wait().unwrap();
    assert_eq!(status.code(), Some(0), "compute exits cleanly on SIGTERM");

    kill(Pid::from_raw(serve.id() as i32), Signal::SIGTERM).unwrap();
    let status = serve.wait().unwrap();
    assert_eq!(status.code(), Some(0), "serve exits cleanly on SIGTERM");
    assert!(!pid_file.exists(), "pid file removed");
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(log.lines().any(|l| l.contains(r#""path":"/identity/v3""#)), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_fail_cleanly() {
    let out = Command::new(env!("CARGO_BIN_EXE_nova-sim")).args(["serve", "--scenario", "/nonexistent.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_nova-sim")).args(["compute", "--host", "x", "--url", "ftp://y"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(env!("CARGO_BIN_EXE_nova-sim")).args(["compute", "--host", "x", "--url", "http://y", "--interval", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(env!("CARGO_BIN_EXE_nova-sim")).arg("example-scenario").output().unwrap();
    assert!(out.status.success());
    iha_testkit::Scenario::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
}
