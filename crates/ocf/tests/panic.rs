//! A panic in a handler is a clean failure: an exit reason, OCF_ERR_GENERIC, secrets redacted.

use std::process::Command;

#[test]
fn a_panicking_handler_fails_cleanly() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("examples/panicking_ocf");
    assert!(bin.exists(), "{} not built (cargo test builds examples)", bin.display());
    let out = Command::new(&bin).arg("monitor").env_clear().env("OCF_RESKEY_password", "Hunter22").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ocf-exit-reason:internal error: boom with ****"), "{err}");
    assert!(!err.contains("Hunter22"), "{err}");
}
