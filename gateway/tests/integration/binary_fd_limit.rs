//! The `mqtt-sn-gateway` binary under a low open-file limit (set with util-linux `prlimit`, or
//! the shell's `ulimit` where it is missing): it raises the soft limit to the hard limit,
//! warns at start when the limit is below what the configuration needs, and warns (once a
//! minute, not per failure) when upstream connections fail for want of file descriptors.
//! Every wait is bounded; the only fixed wait is where an absence is asserted.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sn_codec::{Connect, Packet};

use super::common::{Killed, Mosquitto, TempDir, free_tcp_port, free_udp_port};

const WAIT: Duration = Duration::from_secs(10);

/// `line` without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The gateway binary started with the open-file limit `soft:hard`, its stderr collected
/// line by line.
struct Gateway {
    child: Killed,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    fn start(config: &str, dir: &TempDir, soft: u64, hard: u64) -> Gateway {
        let file = dir.join("gateway.toml");
        std::fs::write(&file, config).unwrap();
        let bin = env!("CARGO_BIN_EXE_mqtt-sn-gateway");
        let has_prlimit = Command::new("prlimit")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let mut cmd = if has_prlimit {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={soft}:{hard}")).arg("--").arg(bin);
            c
        } else {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!(
                    "ulimit -H -n {hard} && ulimit -S -n {soft} && exec \"$0\" \"$@\""
                ))
                .arg(bin);
            c
        };
        // Both wrappers exec the gateway: the child's pid is the gateway's.
        let mut child = cmd
            .arg("--config")
            .arg(&file)
            .args(["--log", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                eprintln!("gateway: {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Gateway {
            child: Killed(child),
            lines,
        }
    }

    /// The first stderr line that contains every one of `parts`, waiting at most [`WAIT`].
    fn wait_line(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(l) = self.matching(parts).first() {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {parts:?} within {WAIT:?} in:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every stderr line so far that contains every one of `parts`.
    fn matching(&self, parts: &[&str]) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .cloned()
            .collect()
    }

    /// `(soft, hard)` of "Max open files" in /proc/PID/limits.
    fn open_file_limits(&self) -> (String, String) {
        let limits =
            std::fs::read_to_string(format!("/proc/{}/limits", self.child.0.id())).unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap();
        let v: Vec<&str> = line.split_whitespace().collect();
        (v[3].to_owned(), v[4].to_owned())
    }
}

/// A transparent-mode configuration for 1000 motes: UDP and HTTP on free loopback ports, the
/// broker at `broker`.
/// The test motes all send from 127.0.0.1, so its limit of new sessions is raised.
fn config(udp: u16, broker: u16) -> String {
    format!(
        "[gateway]\nmax_clients = 1000\n[[listeners.udp]]\nbind = \"127.0.0.1:{udp}\"\n\
         [upstream]\nurl = \"mqtt://127.0.0.1:{broker}\"\nmode = \"transparent\"\n\
         [http]\nlisten = \"127.0.0.1:{}\"\n\
         [limits]\nnew_sessions_per_address = {{ burst = 1000, per_second = 1000 }}\n",
        free_tcp_port()
    )
}

#[test]
fn a_low_open_file_limit_is_a_warning_at_start_naming_what_the_configuration_needs() {
    let dir = TempDir::new("fd-low");
    // No broker: the warning comes from the configuration alone.
    let gw = Gateway::start(&config(free_udp_port(), free_tcp_port()), &dir, 64, 64);
    let warning = gw.wait_line(&["WARN", "open-file limit"]);
    for want in [
        "is 64,",
        // max_clients + the HTTP connection cap + the fixed part
        "below the 1096 this configuration needs",
        "1000 upstream connections in transparent mode",
        "LimitNOFILE=1096",
        "ulimit -n 1096",
    ] {
        assert!(warning.contains(want), "{want:?} missing in {warning}");
    }
    gw.wait_line(&["INFO", "open-file limit: unchanged"]);
    // It still runs.
    gw.wait_line(&["listening for MQTT-SN over UDP"]);
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_limit() {
    let dir = TempDir::new("fd-raise");
    // A broker, so that no warning about an unreachable one can come either.
    let broker = Mosquitto::start();
    let gw = Gateway::start(&config(free_udp_port(), broker.port), &dir, 64, 4096);
    let raised = gw.wait_line(&["INFO", "raised the soft limit to the hard limit"]);
    assert!(
        raised.contains("from=64") && raised.contains("to=4096"),
        "{raised}"
    );
    gw.wait_line(&["listening for MQTT-SN over UDP"]);
    assert_eq!(gw.open_file_limits(), ("4096".into(), "4096".into()));
    // 4096 is enough for 1000 motes: no warning at start (it would come before "listening").
    assert_eq!(gw.matching(&["WARN"]), Vec::<String>::new());
}

#[test]
fn upstream_connections_failing_for_want_of_descriptors_are_a_warning_once_a_minute() {
    let dir = TempDir::new("fd-exhausted");
    let broker = Mosquitto::start();
    let udp = free_udp_port();
    let gw = Gateway::start(&config(udp, broker.port), &dir, 64, 64);
    gw.wait_line(&["listening for MQTT-SN over UDP"]);

    // More motes than the limit has descriptors for: each one's upstream connection takes one.
    let gateway = SocketAddr::from(([127, 0, 0, 1], udp));
    let motes: Vec<UdpSocket> = (0..100)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, mote) in motes.iter().enumerate() {
        let id = format!("mote-{i}");
        let connect = Packet::Connect(Connect {
            will: false,
            clean_session: true,
            duration: 60,
            client_id: id.as_bytes(),
        });
        let mut buf = vec![0u8; connect.encoded_len().unwrap()];
        let n = connect.encode(&mut buf).unwrap();
        mote.send_to(&buf[..n], gateway).unwrap();
    }
    let warning = gw.wait_line(&[
        "WARN",
        "opening an upstream connection failed: out of file descriptors",
    ]);
    assert!(warning.contains("open_file_limit=64"), "{warning}");
    assert!(warning.contains("LimitNOFILE="), "{warning}");
    // The links keep retrying (and failing) with backoff; the warning is not repeated within
    // the minute.
    std::thread::sleep(Duration::from_secs(3));
    let failures = gw
        .matching(&["upstream link down", "Too many open files"])
        .len();
    assert!(failures > 1, "only {failures} failures logged at INFO");
    assert_eq!(
        gw.matching(&["WARN", "out of file descriptors"]).len(),
        1,
        "one warning for {failures} failures"
    );
}
