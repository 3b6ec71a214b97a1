//! A panic in a handler is a clean failure: one `Failed:` line, exit 1, secrets redacted.

use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn a_panicking_handler_fails_cleanly() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("examples/panicking_fence");
    assert!(bin.exists(), "{} not built (cargo test builds examples)", bin.display());
    let mut child = Command::new(&bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"action=off\nport=c0\npassword=Hunter22\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Failed: internal error: boom with ****"), "{err}");
    assert!(!err.contains("Hunter22"), "{err}");
}
