//! `mqtt-sn-gateway check-config` as an operator pipes it: into a reader that closes early
//! (`check-config | head`), it still exits 0 without a panic.

use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn check_config_into_a_closed_pipe_exits_0_without_a_panic() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/gateway.toml");
    // The reading end is closed before the gateway starts, so its first write fails with
    // EPIPE, as with `check-config | head` once head has exited.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-sn-gateway"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.is_empty(),
        "a closed pipe is not worth a message: {err}"
    );
}
