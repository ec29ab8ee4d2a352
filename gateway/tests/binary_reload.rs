//! The `mqtt-sn-gateway` binary as an operator runs it: SIGHUP reloads the client registry
//! without dropping sessions, SIGTERM stops it cleanly. Uses the embedded broker, so nothing
//! else needs to run. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sn_codec::{Connect, Packet, ReturnCode};

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn encode(p: &Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; p.encoded_len().unwrap()];
    let n = p.encode(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

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

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn sighup_reloads_the_registry_without_dropping_sessions_and_sigterm_stops_cleanly() {
    let dir = std::env::temp_dir().join(format!("gw-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let udp = free_udp_port();
    let broker = free_tcp_port();
    std::fs::write(
        dir.join("gateway.toml"),
        format!(
            "[[listeners.udp]]\nbind = \"127.0.0.1:{udp}\"\n[upstream]\nurl = \"embedded://127.0.0.1:{broker}\"\n\
             [http]\nlisten = \"off\"\n[clients]\npolicy = \"registered-only\"\nregistry = \"clients.toml\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("clients.toml"),
        "# paired motes\n[[client]]\nclient_id = \"mote-a\"\n",
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mqtt-sn-gateway"))
        .arg("--config")
        .arg(dir.join("gateway.toml"))
        .args(["--log", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let gw = Gateway(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], udp));

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
