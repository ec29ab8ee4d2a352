//! The `mqtt-sn-gateway` binary as an operator runs it: SIGHUP reloads the client registry
//! without dropping sessions, SIGTERM stops it cleanly. Uses the embedded broker, so nothing
//! else needs to run. Every wait is bounded.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sn_codec::{Connect, Packet, ReturnCode};

use super::common::{Killed, TempDir, encode, free_tcp_port, free_udp_port, signal};

struct Mote {
    socket: UdpSocket,
    gateway: SocketAddr,
}

impl Mote {
    fn new(gateway: SocketAddr) -> Mote {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        Mote { socket, gateway }
    }

    /// Sends `p` and returns the answer, retrying (bounded) while nothing comes back.
    fn ask(&self, p: &Packet<'_>, limit: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            self.socket.send_to(&encode(p), self.gateway).unwrap();
            if let Ok((n, _)) = self.socket.recv_from(&mut buf) {
                return Some(buf[..n].to_vec());
            }
        }
        None
    }

    fn connect(&self, id: &str) -> Option<ReturnCode> {
        let c = Packet::Connect(Connect {
            will: false,
            clean_session: true,
            duration: 60,
            client_id: id.as_bytes(),
        });
        match Packet::decode(&self.ask(&c, Duration::from_secs(10))?) {
            Ok(Packet::Connack { return_code }) => Some(return_code),
            _ => None,
        }
    }
}

/// The gateway process, killed on drop.
type Gateway = Killed;

#[test]
fn sighup_reloads_the_registry_without_dropping_sessions_and_sigterm_stops_cleanly() {
    let dir = TempDir::new("reload");
    std::fs::write(
        dir.join("clients.toml"),
        "# paired motes\n[[client]]\nclient_id = \"mote-a\"\n",
    )
    .unwrap();
    let (gw, addr) = start_registered_only(&dir);

    let a = Mote::new(addr);
    assert_eq!(
        a.connect("mote-a"),
        Some(ReturnCode::Accepted),
        "registered mote"
    );
    let b = Mote::new(addr);
    assert_eq!(
        b.connect("mote-b"),
        Some(ReturnCode::NotSupported),
        "not registered yet"
    );

    std::fs::write(
        dir.join("clients.toml"),
        "# paired motes\n[[client]]\nclient_id = \"mote-a\"\n[[client]]\nclient_id = \"mote-b\"\n",
    )
    .unwrap();
    signal(&gw.0, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut accepted = false;
    while Instant::now() < deadline && !accepted {
        accepted = b.connect("mote-b") == Some(ReturnCode::Accepted);
    }
    assert!(accepted, "mote-b is admitted after the reload");
    // mote-a's session survived the reload.
    let pong = a
        .ask(&Packet::Pingreq { client_id: None }, Duration::from_secs(5))
        .unwrap();
    assert_eq!(Packet::decode(&pong), Ok(Packet::Pingresp));

    let mut gw = gw;
    signal(&gw.0, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = gw.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A gateway started from `dir/gateway.toml` (registered-only, registry `dir/clients.toml`,
/// no HTTP endpoint), logging at info level to `dir/gateway.log`; returns it and its UDP
/// address.
fn start_registered_only(dir: &std::path::Path) -> (Gateway, SocketAddr) {
    start_with_http(dir, "off")
}

/// [`start_registered_only`] with `[http] listen = "{http}"`.
fn start_with_http(dir: &std::path::Path, http: &str) -> (Gateway, SocketAddr) {
    let udp = free_udp_port();
    let broker = free_tcp_port();
    std::fs::write(
        dir.join("gateway.toml"),
        format!(
            "[[listeners.udp]]\nbind = \"127.0.0.1:{udp}\"\n[upstream]\nurl = \"embedded://127.0.0.1:{broker}\"\n\
             [http]\nlisten = \"{http}\"\n[clients]\npolicy = \"registered-only\"\nregistry = \"clients.toml\"\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("gateway.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mqtt-sn-gateway"))
        .arg("--config")
        .arg(dir.join("gateway.toml"))
        .args(["--log", "info"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    (Killed(child), SocketAddr::from(([127, 0, 0, 1], udp)))
}

/// How many lines of the gateway's log contain `needle`.
fn log_count(dir: &std::path::Path, needle: &str) -> usize {
    std::fs::read_to_string(dir.join("gateway.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Sends SIGHUP and waits (bounded) until the gateway has dealt with it: one more line saying
/// the reload was refused or done.
fn reload(gw: &Gateway, dir: &std::path::Path) {
    let handled = |d: &std::path::Path| {
        log_count(d, "reload refused")
            + log_count(d, "client registry and predefined topics reloaded")
    };
    let before = handled(dir);
    signal(&gw.0, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while handled(dir) == before {
        assert!(
            Instant::now() < deadline,
            "the gateway did not handle SIGHUP:\n{}",
            std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_emptied_or_deleted_registry_is_refused_on_reload_and_the_paired_mote_stays_admitted() {
    let dir = TempDir::new("reload-empty");
    let registry = dir.join("clients.toml");
    std::fs::write(
        &registry,
        "# paired motes\n[[client]]\nclient_id = \"mote-a\"\n",
    )
    .unwrap();
    let (gw, addr) = start_registered_only(&dir);
    // Each mote keeps its port (a CONNECT from a new port would be a takeover).
    let mote_mote_a = Mote::new(addr);
    let mote_mote_z = Mote::new(addr);
    assert_eq!(mote_mote_a.connect("mote-a"), Some(ReturnCode::Accepted));
    let cases: [(&str, &dyn Fn()); 3] = [
        ("no [[client]] left, only comments", &|| {
            std::fs::write(&registry, "# paired motes\n").unwrap()
        }),
        ("an empty file", &|| std::fs::write(&registry, "").unwrap()),
        ("a deleted file", &|| {
            std::fs::remove_file(&registry).unwrap()
        }),
    ];
    for (n, (what, change)) in cases.iter().enumerate() {
        change();
        reload(&gw, &dir);
        // A new CONNECT of the paired mote (a takeover from a new port) is still accepted.
        assert_eq!(
            mote_mote_a.connect("mote-a"),
            Some(ReturnCode::Accepted),
            "{what}: the paired mote was locked out"
        );
        assert_eq!(log_count(&dir, "reload refused"), n + 1, "{what}");
    }
    let log = std::fs::read_to_string(dir.join("gateway.log")).unwrap();
    let line = log.lines().find(|l| l.contains("reload refused")).unwrap();
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains(&registry.display().to_string()), "{line}");
    assert!(line.contains("allow_empty = true"), "{line}");
    assert!(line.contains("unpair"), "{line}");
    // Unknown motes are still refused: the running settings stayed.
    assert_eq!(
        mote_mote_z.connect("mote-z"),
        Some(ReturnCode::NotSupported)
    );
    drop(gw);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `mqtt-sn-gateway --config DIR/gateway.toml ARGS`: (exit code, stdout, stderr).
fn run_cli(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-sn-gateway"))
        .arg("--config")
        .arg(dir.join("gateway.toml"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Connects `id` from new sockets until the answer is `want` (bounded).
fn connect_until(addr: SocketAddr, id: &str, want: ReturnCode) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while Instant::now() < deadline {
        last = Mote::new(addr).connect(id);
        if last == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{id}: expected {want:?}, last answer {last:?}");
}

#[test]
fn unpair_removes_motes_from_the_file_and_the_last_one_empties_the_registry_on_reload() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("unpair");
    let registry = dir.join("clients.toml");
    std::fs::write(
        &registry,
        "# Motes of the north field.\n\n# the weather mast\n[[client]]\nclient_id = \"mote-a\"\n\n\
         # the shed\n[[client]]\nclient_id = \"mote-b\"  # battery\n",
    )
    .unwrap();
    std::fs::set_permissions(&registry, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (gw, addr) = start_registered_only(&dir);
    // Each mote keeps its port (a CONNECT from a new port would be a takeover).
    let mote_mote_a = Mote::new(addr);
    let mote_mote_b = Mote::new(addr);
    assert_eq!(mote_mote_a.connect("mote-a"), Some(ReturnCode::Accepted));
    assert_eq!(mote_mote_b.connect("mote-b"), Some(ReturnCode::Accepted));

    // A ClientId that is not in the file: exit 1, naming the file; nothing changes.
    let before = std::fs::read_to_string(&registry).unwrap();
    let (code, _, err) = run_cli(&dir, &["unpair", "mote-x"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("mote-x"), "{err}");
    assert!(err.contains(&registry.display().to_string()), "{err}");
    assert_eq!(std::fs::read_to_string(&registry).unwrap(), before);

    let (code, out, err) = run_cli(&dir, &["unpair", "mote-b"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("systemctl reload mqtt-sn-gateway"), "{out}");
    let text = std::fs::read_to_string(&registry).unwrap();
    assert_eq!(
        text,
        "# Motes of the north field.\n\n# the weather mast\n[[client]]\nclient_id = \"mote-a\"\n",
        "the entry and the comment right above it are gone, the rest is kept"
    );
    assert_eq!(
        std::fs::metadata(&registry).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    signal(&gw.0, "-HUP");
    connect_until(addr, "mote-b", ReturnCode::NotSupported);
    assert_eq!(mote_mote_a.connect("mote-a"), Some(ReturnCode::Accepted));

    // The last one: the file says it is empty on purpose, and the reload empties the registry.
    let (code, out, err) = run_cli(&dir, &["unpair", "mote-a"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("systemctl reload mqtt-sn-gateway"), "{out}");
    let text = std::fs::read_to_string(&registry).unwrap();
    assert!(text.starts_with("# Motes of the north field.\n"), "{text}");
    assert!(text.contains("allow_empty = true"), "{text}");
    assert!(!text.contains("mote-a"), "{text}");
    signal(&gw.0, "-HUP");
    connect_until(addr, "mote-a", ReturnCode::NotSupported);
    assert_eq!(log_count(&dir, "reload refused"), 0);
    drop(gw);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_registry_filled_by_pairing_since_the_start_is_protected_as_well() {
    let dir = TempDir::new("reload-paired");
    let registry = dir.join("clients.toml");
    // A first start: no registry file yet, which is fine.
    let (gw, addr) = start_with_http(&dir, &format!("127.0.0.1:{}", free_tcp_port()));
    // Each mote keeps its port (a CONNECT from a new port would be a takeover).
    let mote_mote_p = Mote::new(addr);
    let mote_mote_q = Mote::new(addr);
    assert_eq!(
        mote_mote_p.connect("mote-p"),
        Some(ReturnCode::NotSupported)
    );
    let (code, out, err) = run_cli(&dir, &["pair", "--for", "2s"]);
    let window_closed = Instant::now() + Duration::from_millis(2500);
    assert_eq!(code, Some(0), "{out}{err}");
    // It says which gateway it talked to.
    let config = dir.join("gateway.toml");
    assert!(
        err.starts_with("gateway at http://127.0.0.1:")
            && err.contains(&format!("(configuration {})", config.display())),
        "{err}"
    );
    assert_eq!(mote_mote_p.connect("mote-p"), Some(ReturnCode::Accepted));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&registry)
        .unwrap_or_default()
        .contains("\"mote-p\"")
    {
        assert!(Instant::now() < deadline, "mote-p was not saved");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The window closes.
    std::thread::sleep(window_closed.saturating_duration_since(Instant::now()));
    assert_eq!(
        mote_mote_q.connect("mote-q"),
        Some(ReturnCode::NotSupported)
    );

    // The file goes away: the gateway runs with the paired mote, so the reload is refused.
    std::fs::remove_file(&registry).unwrap();
    reload(&gw, &dir);
    assert_eq!(log_count(&dir, "reload refused"), 1);
    assert_eq!(
        mote_mote_p.connect("mote-p"),
        Some(ReturnCode::Accepted),
        "the paired mote was locked out"
    );
    drop(gw);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Under systemd with its output in the journal (`JOURNAL_STREAM` names stderr), log lines carry
/// their syslog priority as a `<N>` prefix and no timestamp of their own; with the variable
/// inherited but stderr elsewhere (here: its value names another file), lines are as usual.
#[test]
fn log_lines_for_the_journal_carry_their_priority_and_no_second_timestamp() {
    use std::os::unix::fs::MetadataExt;
    let run = |journal_names_stderr: bool| -> String {
        let dir = TempDir::new("journal");
        let udp = free_udp_port();
        let broker = free_tcp_port();
        std::fs::write(
            dir.join("gateway.toml"),
            format!(
                "[[listeners.udp]]\nbind = \"127.0.0.1:{udp}\"\n[upstream]\nurl = \"embedded://127.0.0.1:{broker}\"\n[http]\nlisten = \"off\"\n"
            ),
        )
        .unwrap();
        let log_path = dir.join("gateway.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let named = if journal_names_stderr {
            log.metadata().unwrap()
        } else {
            std::fs::metadata(dir.join("gateway.toml")).unwrap()
        };
        let child = Command::new(env!("CARGO_BIN_EXE_mqtt-sn-gateway"))
            .arg("--config")
            .arg(dir.join("gateway.toml"))
            .args(["--log", "info"])
            .env("JOURNAL_STREAM", format!("{}:{}", named.dev(), named.ino()))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let gw: Gateway = Killed(child);
        // The start-up lines up to the broker link's health are enough to see the format.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("upstream health up=true")
        {
            assert!(Instant::now() < deadline, "the gateway did not get ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(gw);
        std::fs::read_to_string(&log_path).unwrap()
    };

    let journal = run(true);
    let lines: Vec<&str> = journal.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            line.starts_with("<6>") || line.starts_with("<4>") || line.starts_with("<3>"),
            "no priority prefix: {line:?}\n{journal}"
        );
        assert!(
            !line.contains("Z ") && !line.starts_with("20"),
            "a timestamp of its own: {line:?}"
        );
    }
    assert!(lines.iter().any(|l| l.starts_with("<6> INFO")), "{journal}");
    // The embedded broker's own lines are off by default.
    assert!(!journal.contains("rumqttd"), "{journal}");

    let file = run(false);
    assert!(
        file.lines().next().is_some_and(|l| l.starts_with("20")),
        "plain lines start with a timestamp: {file}"
    );
    assert!(!file.contains("<6>"), "{file}");
}
