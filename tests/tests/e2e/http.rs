//! The gateway's local HTTP endpoint end to end, against a real mosquitto: pairing through the
//! admin API (the registry file gains the mote, comments kept), the Prometheus metrics after
//! real traffic, health following the broker, the loopback-only admin API, the refusal of
//! cross-site requests to it, and the endpoint surviving a flood of half-open connections.
//! Every wait is bounded.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use gateway::admin_client::{self, AdminError};
use gateway::core::config::{Admission, GatewayConfig};
use gateway::io::config::IoConfig;
use gateway::io::http::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS};
use sn_codec::{Packet, Publish, QoS, ReturnCode, TopicRef};
use sn_tests::{Mosquitto, SnClient, TestGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);

/// Test settings with the HTTP endpoint on a free loopback port.
fn settings(broker: &Mosquitto) -> (GatewayConfig, IoConfig) {
    let (core, mut io) = sn_tests::gateway::test_settings(&broker.url()).unwrap();
    io.http = Some("127.0.0.1:0".parse().unwrap());
    (core, io)
}

/// `GET`/`POST` through the same client the subcommands use: (status, body).
async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    match admin_client::request(addr, method, path).await {
        Ok(body) => (200, String::from_utf8(body).unwrap()),
        Err(AdminError::Status { status, body, .. }) => (status, body),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

/// Polls `check` every 50 ms until it holds; panics with `what` after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test]
async fn a_pairing_window_admits_an_unknown_mote_and_appends_it_to_the_registry_file() {
    let broker = Mosquitto::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("clients.toml");
    let original = "# Motes of the north field: keep this comment.\n\n\
                    [[client]]\nclient_id = \"known-1\"  # the weather mast\n";
    std::fs::write(&registry, original).unwrap();
    let (mut core, mut io) = settings(&broker);
    let loaded = gateway::config::registry::load_registry(&registry, 23).unwrap();
    loaded.apply_to(&mut core);
    core.clients.admission = Admission::RegisteredOnly;
    io.registry_file = Some(registry.clone());
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    let http_addr = gw.http_addr().unwrap();

    // Registered-only: the known mote is in, an unknown one is refused.
    let known = SnClient::new(gw.addr).await.unwrap();
    assert_eq!(
        known.connect("known-1", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    let early = SnClient::new(gw.addr).await.unwrap();
    assert_eq!(
        early.connect("new-early", true, 60).await.unwrap(),
        ReturnCode::NotSupported
    );

    // `pair --for 1s` calls this.
    let p = admin_client::open_pairing(http_addr, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(p.seconds, 1);
    assert_eq!(p.registry.as_deref(), Some(registry.to_str().unwrap()));
    let list = admin_client::clients(http_addr).await.unwrap();
    assert_eq!(list.pairing_secs, Some(1));

    let newcomer = SnClient::new(gw.addr).await.unwrap();
    assert_eq!(
        newcomer.connect("paired-1", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    eventually(WAIT, "the registry file gaining paired-1", || async {
        read(&registry).contains("client_id = \"paired-1\"")
    })
    .await;
    let text = read(&registry);
    assert!(
        text.starts_with(original),
        "comments and layout kept:\n{text}"
    );
    assert!(
        text.contains("[[client]]\nclient_id = \"paired-1\""),
        "{text}"
    );
    assert!(text.contains("paired from 127.0.0.1:"), "{text}");
    // The file still loads and now has both motes.
    let reloaded = gateway::config::registry::load_registry(&registry, 23).unwrap();
    let mut check = GatewayConfig::default();
    reloaded.apply_to(&mut check);
    assert!(check.clients.registry.contains_key("known-1"));
    assert!(check.clients.registry.contains_key("paired-1"));

    // The window closes on its own; then the next unknown mote is refused again.
    eventually(WAIT, "the pairing window closing", || async {
        admin_client::clients(http_addr)
            .await
            .unwrap()
            .pairing_secs
            .is_none()
    })
    .await;
    let late = SnClient::new(gw.addr).await.unwrap();
    assert_eq!(
        late.connect("new-late", true, 60).await.unwrap(),
        ReturnCode::NotSupported
    );
    assert!(!read(&registry).contains("new-late"));

    let list = admin_client::clients(http_addr).await.unwrap();
    let ids: Vec<&str> = list.clients.iter().map(|c| c.client_id.as_str()).collect();
    assert!(
        ids.contains(&"known-1") && ids.contains(&"paired-1"),
        "{ids:?}"
    );
    let table = admin_client::format_clients(&list);
    assert!(table.starts_with("CLIENT ID"), "{table}");
    assert!(
        table.contains("paired-1") && table.contains("active"),
        "{table}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn metrics_count_real_traffic_and_health_follows_the_broker() {
    let mut broker = Mosquitto::start().await.unwrap();
    let (mut core, io) = settings(&broker);
    core.predefined.global.insert(1, "site/status".into());
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    let addr = gw.http_addr().unwrap();
    assert_eq!(http(addr, "GET", "/healthz").await, (200, "ok\n".into()));

    let m = SnClient::new(gw.addr).await.unwrap();
    assert_eq!(
        m.connect("mote-m", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    m.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::One,
        retain: false,
        topic: TopicRef::Predefined(1),
        msg_id: 7,
        data: b"21.5",
    }))
    .await
    .unwrap();
    m.expect(&Packet::Puback {
        topic_id: 1,
        msg_id: 7,
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();
    let junk = SnClient::new(gw.addr).await.unwrap();
    junk.send_raw(&[0x05, 0x0C, 0x00]).await.unwrap();
    m.send(&Packet::Pingreq { client_id: None }).await.unwrap();
    m.expect(&Packet::Pingresp).await.unwrap();

    let (status, text) = http(addr, "GET", "/metrics").await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "mqttsn_gateway_publishes_total{qos=\"1\",direction=\"upstream\"} 1",
        "mqttsn_gateway_publishes_total{qos=\"0\",direction=\"downstream\"} 0",
        "mqttsn_gateway_dropped_total{reason=\"malformed\"} 1",
        "mqttsn_gateway_clients{state=\"active\"} 1",
        "mqttsn_gateway_clients{state=\"asleep\"} 0",
        "mqttsn_gateway_packets_received_total{type=\"CONNECT\"} 1",
        "mqttsn_gateway_packets_received_total{type=\"PUBLISH\"} 1",
        "mqttsn_gateway_packets_received_total{type=\"PINGREQ\"} 1",
        "mqttsn_gateway_packets_sent_total{type=\"CONNACK\"} 1",
        "mqttsn_gateway_packets_sent_total{type=\"PUBACK\"} 1",
        "mqttsn_gateway_upstream_up 1",
        "mqttsn_gateway_upstream_links{state=\"up\"} 1",
        "mqttsn_gateway_datagrams_received_total 4",
        "mqttsn_gateway_sleep_buffered_messages 0",
        "# TYPE mqttsn_gateway_upstream_connects_total counter",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{text}");
    }
    assert!(
        !text.contains("mote-m"),
        "no per-client labels in the metrics"
    );

    // The broker goes away: health turns 503 and the gauge drops to 0.
    broker.stop().await.unwrap();
    eventually(WAIT, "/healthz turning 503", || async {
        http(addr, "GET", "/healthz").await.0 == 503
    })
    .await;
    let (_, body) = http(addr, "GET", "/healthz").await;
    assert!(
        body.contains(&format!(
            "upstream broker {} (transparent mode) is unreachable: ",
            broker.url()
        )),
        "{body}"
    );
    assert!(body.contains("next try"), "{body}");
    let (_, text) = http(addr, "GET", "/metrics").await;
    assert!(
        text.lines().any(|l| l == "mqttsn_gateway_upstream_up 0"),
        "{text}"
    );
    let (status, _) = http(addr, "GET", "/nonexistent").await;
    assert_eq!(status, 404);
    gw.stop().await;
}

/// A non-loopback address of this host (the source address towards a documentation network;
/// no packet is sent), if it has one.
fn lan_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn the_admin_api_refuses_peers_that_are_not_on_loopback() {
    let Some(ip) = lan_ip() else {
        eprintln!("SKIP: this host has no non-loopback address (covered by the unit test)");
        return;
    };
    let broker = Mosquitto::start().await.unwrap();
    let (core, mut io) = settings(&broker);
    io.http = Some("0.0.0.0:0".parse().unwrap());
    let gw = TestGateway::start_with(core, io).await.unwrap();
    let port = gw.http_addr().unwrap().port();
    let lan = SocketAddr::new(ip, port);
    let loopback = SocketAddr::from(([127, 0, 0, 1], port));

    let (status, body) = http(lan, "GET", "/api/clients").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("loopback"), "{body}");
    assert_eq!(http(lan, "POST", "/api/pairing?seconds=60").await.0, 403);
    assert_eq!(http(lan, "GET", "/metrics").await.0, 200);
    assert_eq!(http(lan, "GET", "/").await.0, 200);
    // Nothing was opened by the refused request.
    let list = admin_client::clients(loopback).await.unwrap();
    assert_eq!(list.pairing_secs, None);
    assert_eq!(
        http(loopback, "POST", "/api/pairing?seconds=0").await.0,
        400
    );
    gw.stop().await;
}

/// A tmpfs mounted for one test; unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a 64 KiB tmpfs at `at`; `None` when this process may not mount (not root, or no
    /// CAP_SYS_ADMIN in its namespace).
    fn mount(at: &Path) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    /// Fills the file system to the last byte.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = [0u8; 4096];
        while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
    }

    /// Makes the file system read-only.
    fn remount_read_only(&self) {
        let st = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "remount read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Starts a registered-only gateway whose registry is `registry` and checks that
/// `POST /api/pairing` is refused with a one-line reason naming the file and containing `why`,
/// and that the window stays closed.
async fn pairing_is_refused(broker: &Mosquitto, registry: &Path, why: &str) {
    let (mut core, mut io) = settings(broker);
    core.clients.admission = Admission::RegisteredOnly;
    io.registry_file = Some(registry.to_path_buf());
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    let http_addr = gw.http_addr().unwrap();

    let e = admin_client::open_pairing(http_addr, Duration::from_secs(60))
        .await
        .unwrap_err();
    let AdminError::Status { status, body, .. } = &e else {
        panic!("{why}: expected a refusal, got {e:?}");
    };
    assert_eq!(*status, 409, "{body}");
    assert_eq!(body.lines().count(), 1, "{body}");
    assert!(body.contains(&registry.display().to_string()), "{body}");
    assert!(body.contains(why), "{body}");
    // What `mqtt-sn-gateway pair` prints before exiting 1.
    let printed = format!("error: {e}");
    assert!(printed.contains(body.as_str()), "{printed}");

    // The window stayed closed: an unknown mote is refused.
    assert_eq!(
        admin_client::clients(http_addr).await.unwrap().pairing_secs,
        None
    );
    let mote = SnClient::new(gw.addr).await.unwrap();
    assert_eq!(
        mote.connect("new-1", true, 60).await.unwrap(),
        ReturnCode::NotSupported
    );
    gw.stop().await;
}

#[tokio::test]
async fn pairing_is_refused_when_the_registry_cannot_be_written() {
    let broker = Mosquitto::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    // The registry's directory is a regular file: no one, root included, can create it.
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    pairing_is_refused(&broker, &file.join("clients.toml"), "Not a directory").await;

    // A full file system and a read-only one stop root as well; they need a mount.
    let Some(full) = Tmpfs::mount(&dir.path().join("full")) else {
        eprintln!("SKIP full and read-only file systems: this process may not mount a tmpfs");
        return;
    };
    let registry = full.0.join("clients.toml");
    std::fs::write(&registry, "[[client]]\nclient_id = \"known-1\"\n").unwrap();
    full.fill();
    pairing_is_refused(&broker, &registry, "No space left on device").await;

    let ro = Tmpfs::mount(&dir.path().join("read-only")).unwrap();
    let registry = ro.0.join("clients.toml");
    std::fs::write(&registry, "[[client]]\nclient_id = \"known-1\"\n").unwrap();
    ro.remount_read_only();
    pairing_is_refused(&broker, &registry, "Read-only file system").await;
}

/// Sends `request` as it is on a fresh connection and reads the whole answer:
/// (status, body).
async fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.unwrap();
        answer
    };
    let answer = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("no complete answer");
    let text = String::from_utf8(answer).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

#[tokio::test]
async fn the_admin_api_refuses_cross_site_requests_from_browsers() {
    let broker = Mosquitto::start().await.unwrap();
    let (core, io) = settings(&broker);
    let gw = TestGateway::start_with(core, io).await.unwrap();
    let addr = gw.http_addr().unwrap();
    let host = format!("127.0.0.1:{}", addr.port());

    // What a web page in a local browser sends for a cross-site HTML form: the attacker's
    // Origin, a form body, and no custom header (a browser cannot add one cross-site without
    // a CORS preflight, which the endpoint never grants).
    let form = format!(
        "POST /api/pairing?seconds=600 HTTP/1.1\r\nHost: {host}\r\n\
         Origin: http://evil.example\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\
         Connection: close\r\n\r\nseconds=60"
    );
    let (status, body) = raw(addr, &form).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body.lines().count(), 1, "a one-line reason: {body:?}");

    // Each rule on its own, the custom header present.
    let with_header = |method: &str, path: &str, host: &str, extra: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-MQTT-SN-Admin: 1\r\n{extra}\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
    };
    for (what, request, reason) in [
        (
            "a foreign Origin",
            with_header(
                "POST",
                "/api/pairing?seconds=600",
                &host,
                "Origin: http://evil.example\r\n",
            ),
            "Origin",
        ),
        (
            "Sec-Fetch-Site: cross-site",
            with_header(
                "POST",
                "/api/pairing?seconds=600",
                &host,
                "Sec-Fetch-Site: cross-site\r\n",
            ),
            "Sec-Fetch-Site",
        ),
        (
            "a page of another local port (same site, other origin)",
            with_header(
                "POST",
                "/api/pairing?seconds=600",
                &host,
                "Sec-Fetch-Site: same-site\r\n",
            ),
            "Sec-Fetch-Site",
        ),
        (
            // DNS rebinding: the attacker's name now resolves to 127.0.0.1, so the browser
            // deems the request same-origin and lets the page add any header.
            "a host name instead of an address",
            with_header(
                "POST",
                "/api/pairing?seconds=600",
                &format!("evil.example:{}", addr.port()),
                &format!(
                    "Origin: http://evil.example:{}\r\nSec-Fetch-Site: same-origin\r\n",
                    addr.port()
                ),
            ),
            "Host",
        ),
    ] {
        let (status, body) = raw(addr, &request).await;
        assert_eq!(status, 403, "{what}: {body}");
        assert!(body.contains(reason), "{what}: {body}");
        assert_eq!(body.lines().count(), 1, "{what}: {body:?}");
    }
    // Reading is refused without the header too (a cross-site <script src> would get it).
    let (status, body) = raw(
        addr,
        &format!("GET /api/clients HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("X-MQTT-SN-Admin"), "{body}");

    // Nothing above opened the pairing window.
    let list = admin_client::clients(addr).await.unwrap();
    assert_eq!(list.pairing_secs, None);
    // A same-origin request with the header (a page served by the endpoint itself) and the
    // routes that are not the admin API still answer.
    let (status, body) = raw(
        addr,
        &with_header(
            "GET",
            "/api/clients",
            &host,
            &format!("Origin: http://{host}\r\nSec-Fetch-Site: same-origin\r\n"),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = raw(
        addr,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\n\
             Connection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 200);
    gw.stop().await;
}

/// Whether `raw` holds a complete answer with a `content-length` body.
fn complete(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    length.is_some_and(|n| body.len() >= n)
}

/// How the server ended a connection, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// An orderly close (read returned 0), perhaps after an answer.
    Eof,
    /// A reset.
    Reset,
    /// Still open when the test stopped waiting.
    Open,
}

/// Reads (and discards) until the server closes `s`, for at most `limit`.
async fn until_closed(mut s: TcpStream, limit: Duration) -> Ended {
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return Ended::Eof,
                Ok(_) => {}
                Err(_) => return Ended::Reset,
            }
        }
    };
    tokio::time::timeout(limit, read_all)
        .await
        .unwrap_or(Ended::Open)
}

#[tokio::test]
async fn half_open_connections_are_capped_and_cut_and_the_endpoint_keeps_answering() {
    let broker = Mosquitto::start().await.unwrap();
    let (core, io) = settings(&broker);
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    let addr = gw.http_addr().unwrap();
    let limit = HEADER_READ_TIMEOUT + Duration::from_secs(5);

    // A keep-alive client that got its answer and then stays silent holds a slot.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    while !complete(&answer) {
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(WAIT, idle.read(&mut buf))
            .await
            .expect("an answer to the keep-alive client")
            .unwrap();
        assert!(n > 0, "the keep-alive connection closed before its answer");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    let idle = tokio::spawn(until_closed(idle, limit));

    // Slowloris: more connections than the cap, each with part of a request head and then
    // silence.
    let flood = MAX_CONNECTIONS + 20;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..flood {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // A connection beyond the cap may already be closed: the write may fail then.
        let _ = s
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .await;
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(until_closed(s, limit).await);
        });
    }
    drop(tx);

    // The cap holds: every connection beyond it is closed at once, well before the header
    // timeout, and the others stay open for now.
    let beyond = flood - (MAX_CONNECTIONS - 1);
    let mut ended = Vec::new();
    let early = tokio::time::Instant::now() + HEADER_READ_TIMEOUT / 2;
    while ended.len() < beyond {
        match tokio::time::timeout_at(early, rx.recv()).await {
            Ok(Some(e)) => ended.push(e),
            _ => break,
        }
    }
    assert_eq!(
        ended.len(),
        beyond,
        "connections beyond the cap of {MAX_CONNECTIONS} closed at once: {ended:?}"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "no connection within the cap is closed before the header timeout"
    );

    // The header timeout cuts every half-open connection within the cap, and the idle
    // keep-alive connection as well: an orderly close each.
    let mut cut = Vec::new();
    while let Some(e) = rx.recv().await {
        cut.push(e);
    }
    assert_eq!(cut.len(), MAX_CONNECTIONS - 1);
    assert!(cut.iter().all(|e| *e == Ended::Eof), "{cut:?}");
    assert_eq!(
        idle.await.unwrap(),
        Ended::Eof,
        "the idle keep-alive connection"
    );

    // The endpoint answers again.
    assert_eq!(http(addr, "GET", "/healthz").await, (200, "ok\n".into()));
    assert_eq!(http(addr, "GET", "/metrics").await.0, 200);
    gw.stop().await;
}
