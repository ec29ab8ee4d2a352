//! The `mqtt-sn-forwarder` binary as a process: `check-config` exit codes and messages (also
//! into a pipe nobody reads), and a graceful stop on SIGTERM. Every wait is bounded.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-sn-forwarder");

fn config(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn check_config_prints_the_effective_settings_or_the_positioned_error() {
    let ok = Command::new(BIN)
        .args(["--config", &config("forwarder.toml"), "check-config"])
        .output()
        .unwrap();
    assert!(ok.status.success());
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        out.contains("configuration OK") && out.contains("xbee-api2"),
        "{out}"
    );

    let bad_file = config("invalid/forwarder-baud-zero.toml");
    let bad = Command::new(BIN)
        .args(["--config", &bad_file, "check-config"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains(&format!("{bad_file}:4:8: invalid value for ports[0].baud")),
        "{err}"
    );

    let flag = Command::new(BIN)
        .args([
            "--config",
            &config("forwarder.toml"),
            "--radio",
            "serial:///dev/x?framing=raw",
            "check-config",
        ])
        .output()
        .unwrap();
    assert_eq!(flag.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&flag.stderr).contains("--radio"));
}

#[test]
fn check_config_into_a_closed_pipe_exits_0_without_a_panic() {
    // The reading end is closed before the forwarder starts, so its first write fails with
    // EPIPE, as with `check-config | head` once head has exited.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(BIN)
        .args(["--config", &config("forwarder.toml"), "check-config"])
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

#[test]
fn sigterm_stops_the_forwarder_gracefully() {
    let dir = std::env::temp_dir().join(format!("fwd-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("forwarder.toml");
    std::fs::write(
        &file,
        "[forwarder]\ngateway = \"127.0.0.1:9\"\nbind = \"127.0.0.1:0\"\nrelay_advertise = false\n\n\
         [[ports]]\nudp = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["--config", &file.display().to_string(), "--log", "info"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait_line = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains('\u{1b}') => panic!("colour codes in a pipe: {line:?}"),
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {needle:?}: {e}"),
            }
        }
    };
    wait_line("gateway-side socket bound");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_line("forwarder stopped");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the forwarder did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
