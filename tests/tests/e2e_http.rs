//! The gateway's local HTTP endpoint end to end, against a real mosquitto: pairing through the
//! admin API (the registry file gains the mote, comments kept), the Prometheus metrics after
//! real traffic, health following the broker, the loopback-only admin API, and the status page
//! in headless Chromium. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use gateway::admin::{self, AdminError};
use gateway::core::config::{Admission, GatewayConfig};
use gateway::io::config::IoConfig;
use sn_codec::{Packet, Publish, QoS, ReturnCode, TopicRef};
use sn_tests::{Mosquitto, SnClient, TestGateway};

const WAIT: Duration = Duration::from_secs(5);

/// Test settings with the HTTP endpoint on a free loopback port.
fn settings(broker: &Mosquitto) -> (GatewayConfig, IoConfig) {
    let (core, mut io) = sn_tests::gateway::test_settings(&broker.url()).unwrap();
    io.http = Some("127.0.0.1:0".parse().unwrap());
    (core, io)
}

/// `GET`/`POST` through the same client the subcommands use: (status, body).
async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    match admin::request(addr, method, path).await {
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
    let p = admin::open_pairing(http_addr, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(p.seconds, 1);
    assert_eq!(p.registry.as_deref(), Some(registry.to_str().unwrap()));
    let list = admin::clients(http_addr).await.unwrap();
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
        admin::clients(http_addr)
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

    let list = admin::clients(http_addr).await.unwrap();
    let ids: Vec<&str> = list.clients.iter().map(|c| c.client_id.as_str()).collect();
    assert!(
        ids.contains(&"known-1") && ids.contains(&"paired-1"),
        "{ids:?}"
    );
    let table = admin::format_clients(&list);
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
    assert!(body.contains("upstream broker is unreachable"), "{body}");
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
    let list = admin::clients(loopback).await.unwrap();
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

    let e = admin::open_pairing(http_addr, Duration::from_secs(60))
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
    assert_eq!(admin::clients(http_addr).await.unwrap().pairing_secs, None);
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
