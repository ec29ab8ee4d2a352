//! `RumqttcConnector` against a real mosquitto started per test on a free loopback port.
//!
//! Every wait is bounded; the only fixed waits are where an absence is asserted (no Will after
//! a graceful close) or a rate is counted (reconnect backoff).

use std::collections::VecDeque;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use gateway::core::config::{ClientIdentity, Credentials};
use gateway::core::upstream::{
    BrokerRefusal, DeliveryId, LinkId, MqttQos, Token, UpstreamCmd, UpstreamEvent, Will,
};
use gateway::io::config::{Scheme, UpstreamEndpoint};
use gateway::io::upstream::{RumqttcConnector, UpstreamConnector};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;

use super::common::{Mosquitto, TempDir, free_tcp_port};

const WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// events

/// The connector's event stream with a backlog, so a test can wait for one event while others
/// arrive; `arrived` keeps the arrival order of everything.
struct Events {
    rx: UnboundedReceiver<UpstreamEvent>,
    backlog: VecDeque<UpstreamEvent>,
    arrived: Vec<UpstreamEvent>,
}

impl Events {
    fn new(rx: UnboundedReceiver<UpstreamEvent>) -> Self {
        Events {
            rx,
            backlog: VecDeque::new(),
            arrived: Vec::new(),
        }
    }

    /// Waits (at most `WAIT`) for the first event matching `pred` and takes it.
    async fn expect(&mut self, what: &str, pred: impl Fn(&UpstreamEvent) -> bool) -> UpstreamEvent {
        self.expect_within(what, WAIT, pred).await
    }

    async fn expect_within(
        &mut self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&UpstreamEvent) -> bool,
    ) -> UpstreamEvent {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).unwrap();
        }
        let deadline = Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(event)) => {
                    self.arrived.push(event.clone());
                    if pred(&event) {
                        return event;
                    }
                    self.backlog.push_back(event);
                }
                Ok(None) => panic!("event channel closed while waiting for {what}"),
                Err(_) => panic!(
                    "timed out after {limit:?} waiting for {what}; unconsumed: {:#?}",
                    self.backlog
                ),
            }
        }
    }

    /// Collects every event arriving within `window` (a fixed wait: only for absences/rates).
    async fn collect_for(&mut self, window: Duration) -> Vec<UpstreamEvent> {
        let deadline = Instant::now() + window;
        let mut got: Vec<UpstreamEvent> = self.backlog.drain(..).collect();
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.arrived.push(event.clone());
            got.push(event);
        }
        got
    }

    fn arrival_index(&self, pred: impl Fn(&UpstreamEvent) -> bool) -> Option<usize> {
        self.arrived.iter().position(pred)
    }
}

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=gateway=debug`).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
}

fn connector(endpoint: UpstreamEndpoint) -> (RumqttcConnector, Events) {
    init_tracing();
    let (tx, rx) = unbounded_channel();
    let connector = RumqttcConnector::new(endpoint, tx).unwrap();
    (connector, Events::new(rx))
}

fn open(link: u64, client_id: &str) -> UpstreamCmd {
    UpstreamCmd::Open {
        link: LinkId(link),
        client_id: client_id.into(),
        clean_session: true,
        keep_alive: Duration::from_secs(30),
        will: None,
        credentials: None,
        identity: None,
    }
}

fn is_link_up(link: u64) -> impl Fn(&UpstreamEvent) -> bool {
    move |e| matches!(e, UpstreamEvent::LinkUp { link: l, .. } if *l == LinkId(link))
}

fn is_closed(link: u64) -> impl Fn(&UpstreamEvent) -> bool {
    move |e| matches!(e, UpstreamEvent::Closed { link: l } if *l == LinkId(link))
}

fn is_suback(token: u64) -> impl Fn(&UpstreamEvent) -> bool {
    move |e| matches!(e, UpstreamEvent::SubAck { token: t, .. } if *t == Token(token))
}

fn is_done(token: u64) -> impl Fn(&UpstreamEvent) -> bool {
    move |e| matches!(e, UpstreamEvent::PublishDone { token: t, .. } if *t == Token(token))
}

fn is_received(token: u64) -> impl Fn(&UpstreamEvent) -> bool {
    move |e| matches!(e, UpstreamEvent::PublishReceived { token: t, .. } if *t == Token(token))
}

fn is_message(link: u64, topic: &'static str) -> impl Fn(&UpstreamEvent) -> bool {
    move |e| {
        matches!(e, UpstreamEvent::Message { link: l, topic: t, .. }
            if *l == LinkId(link) && t == topic)
    }
}

async fn up(connector: &mut RumqttcConnector, events: &mut Events, cmd: UpstreamCmd) -> bool {
    let UpstreamCmd::Open { link, .. } = &cmd else {
        panic!("not an Open");
    };
    let link = link.0;
    connector.execute(cmd);
    match events.expect("LinkUp", is_link_up(link)).await {
        UpstreamEvent::LinkUp {
            session_present,
            lost,
            ..
        } => {
            assert!(lost.is_empty(), "lost on a first connect: {lost:?}");
            session_present
        }
        _ => unreachable!(),
    }
}

async fn subscribe(
    connector: &mut RumqttcConnector,
    events: &mut Events,
    link: u64,
    token: u64,
    filter: &str,
    qos: u8,
) -> Option<u8> {
    connector.execute(UpstreamCmd::Subscribe {
        link: LinkId(link),
        token: Token(token),
        filter: filter.into(),
        qos: MqttQos::from_level(qos).unwrap(),
    });
    match events.expect("SubAck", is_suback(token)).await {
        UpstreamEvent::SubAck { granted, .. } => granted.map(MqttQos::level),
        _ => unreachable!(),
    }
}

fn publish(link: u64, token: u64, topic: &str, payload: &'static [u8], qos: u8) -> UpstreamCmd {
    UpstreamCmd::Publish {
        link: LinkId(link),
        token: Token(token),
        topic: topic.into(),
        payload: Bytes::from_static(payload),
        qos: MqttQos::from_level(qos).unwrap(),
        retain: false,
    }
}

// ---------------------------------------------------------------------------------------------
// tests

#[tokio::test]
async fn open_reports_link_up_and_subscriptions_are_answered() {
    let broker = Mosquitto::start();
    let (mut c, mut ev) = connector(broker.endpoint());

    let session_present = up(&mut c, &mut ev, open(1, "gw-sub-test")).await;
    assert!(!session_present);

    assert_eq!(subscribe(&mut c, &mut ev, 1, 10, "a/+/c", 1).await, Some(1));
    assert_eq!(subscribe(&mut c, &mut ev, 1, 11, "a/#", 2).await, Some(2));
    assert_eq!(subscribe(&mut c, &mut ev, 1, 12, "a/b", 0).await, Some(0));
    // An invalid filter is refused locally, like a broker's 0x80.
    assert_eq!(subscribe(&mut c, &mut ev, 1, 13, "a/#/b", 1).await, None);

    c.execute(UpstreamCmd::Unsubscribe {
        link: LinkId(1),
        token: Token(14),
        filter: "a/#".into(),
    });
    ev.expect(
        "UnsubAck",
        |e| matches!(e, UpstreamEvent::UnsubAck { token, .. } if *token == Token(14)),
    )
    .await;

    c.shutdown(Duration::from_secs(2)).await;
    ev.expect("Closed", is_closed(1)).await;
}

#[tokio::test]
async fn publishes_of_every_qos_are_confirmed_and_delivered_with_their_qos() {
    let broker = Mosquitto::start();
    let (mut c, mut ev) = connector(broker.endpoint());
    up(&mut c, &mut ev, open(1, "gw-publisher")).await;
    up(&mut c, &mut ev, open(2, "gw-subscriber")).await;
    assert_eq!(subscribe(&mut c, &mut ev, 2, 1, "t/#", 2).await, Some(2));

    c.execute(publish(1, 100, "t/0", b"zero", 0));
    c.execute(publish(1, 101, "t/1", b"one", 1));
    c.execute(publish(1, 102, "t/2", b"two", 2));

    ev.expect("PublishDone QoS 1", is_done(101)).await;
    ev.expect("PublishReceived QoS 2", is_received(102)).await;
    ev.expect("PublishDone QoS 2", is_done(102)).await;
    let received = ev.arrival_index(is_received(102)).unwrap();
    let done = ev.arrival_index(is_done(102)).unwrap();
    assert!(received < done, "PUBREC must be reported before PUBCOMP");

    let mut acks = Vec::new();
    for (topic, payload, qos) in [
        ("t/0", &b"zero"[..], 0u8),
        ("t/1", &b"one"[..], 1),
        ("t/2", &b"two"[..], 2),
    ] {
        match ev.expect(topic, is_message(2, topic)).await {
            UpstreamEvent::Message {
                delivery,
                payload: p,
                qos: q,
                retain,
                ..
            } => {
                assert_eq!(&p[..], payload);
                assert_eq!(q.level(), qos, "{topic}");
                assert_eq!(delivery.qos.level(), qos);
                assert!(!retain);
                if qos > 0 {
                    assert_ne!(delivery.pkid, 0);
                    acks.push(delivery);
                }
            }
            _ => unreachable!(),
        }
    }
    // Manual acks, in receive order.
    for delivery in acks {
        c.execute(UpstreamCmd::Ack {
            link: LinkId(2),
            delivery,
        });
    }
    // The link stays healthy after the acks (a broken ack would drop it): one more round trip.
    c.execute(publish(1, 103, "t/3", b"three", 1));
    ev.expect("PublishDone after acks", is_done(103)).await;
    ev.expect("message after acks", is_message(2, "t/3")).await;

    assert!(
        ev.arrival_index(is_done(100)).is_none(),
        "QoS 0 has no PublishDone"
    );
    assert!(
        ev.arrival_index(|e| matches!(e, UpstreamEvent::LinkDown { .. }))
            .is_none(),
        "no link went down: {:#?}",
        ev.arrived
    );
}

#[tokio::test]
async fn a_burst_beyond_the_inflight_window_waits_in_the_outbox_and_loses_none() {
    burst_of_publishes_is_answered_exactly_once().await;
}

/// Same on a multi-threaded runtime: connector and link tasks really run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_inflight_window_loses_nothing_on_a_multi_threaded_runtime() {
    burst_of_publishes_is_answered_exactly_once().await;
}

async fn burst_of_publishes_is_answered_exactly_once() {
    let broker = Mosquitto::start();
    let (mut c, mut ev) = connector(broker.endpoint());
    // Queue far more than the inflight window takes, before the link is even up.
    c.execute(open(1, "gw-burst"));
    const N: u64 = 600;
    for i in 0..N {
        let qos = if i % 2 == 0 { 1 } else { 2 };
        c.execute(publish(1, 1000 + i, "burst/x", b"payload", qos));
    }
    ev.expect("LinkUp", is_link_up(1)).await;
    let mut done = std::collections::BTreeSet::new();
    let mut received = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while done.len() < N as usize {
        let left = deadline.saturating_duration_since(Instant::now());
        match ev
            .expect_within("PublishDone burst", left, |e| {
                matches!(
                    e,
                    UpstreamEvent::PublishDone { .. } | UpstreamEvent::PublishReceived { .. }
                )
            })
            .await
        {
            UpstreamEvent::PublishDone { token, .. } => {
                assert!(done.insert(token.0), "token {} done twice", token.0);
            }
            UpstreamEvent::PublishReceived { token, .. } => {
                assert_eq!(token.0 % 2, 1, "PUBREC for a QoS 1 publish");
                received += 1;
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(done, (1000..1000 + N).collect());
    // Every QoS 2 PUBREC came before its PUBCOMP, so all were counted by now.
    assert_eq!(received, N / 2);
}

#[tokio::test]
async fn graceful_close_publishes_no_will_but_an_abrupt_close_does() {
    let broker = Mosquitto::start();
    let (mut c, mut ev) = connector(broker.endpoint());
    up(&mut c, &mut ev, open(1, "gw-watcher")).await;
    assert_eq!(subscribe(&mut c, &mut ev, 1, 1, "will/#", 1).await, Some(1));

    let with_will = |link: u64, client_id: &str, topic: &str| UpstreamCmd::Open {
        link: LinkId(link),
        client_id: client_id.into(),
        clean_session: true,
        keep_alive: Duration::from_secs(30),
        will: Some(Will {
            topic: topic.into(),
            payload: Bytes::from_static(b"gone"),
            qos: MqttQos::AtLeastOnce,
            retain: false,
        }),
        credentials: None,
        identity: None,
    };

    // Graceful: DISCONNECT, no Will.
    up(&mut c, &mut ev, with_will(2, "gw-polite", "will/polite")).await;
    c.execute(UpstreamCmd::Close {
        link: LinkId(2),
        graceful: true,
    });
    ev.expect("Closed graceful", is_closed(2)).await;
    // An absence cannot be awaited: a short bounded window (mosquitto publishes a Will within
    // ≈ 40 ms of the connection dropping).
    let after = ev.collect_for(Duration::from_millis(700)).await;
    assert!(
        !after.iter().any(is_message(1, "will/polite")),
        "graceful close published the Will: {after:#?}"
    );

    // Abrupt: connection dropped without DISCONNECT, the broker publishes the Will.
    up(&mut c, &mut ev, with_will(3, "gw-crash", "will/crash")).await;
    c.execute(UpstreamCmd::Close {
        link: LinkId(3),
        graceful: false,
    });
    ev.expect("Closed abrupt", is_closed(3)).await;
    match ev.expect("Will message", is_message(1, "will/crash")).await {
        UpstreamEvent::Message { payload, qos, .. } => {
            assert_eq!(&payload[..], b"gone");
            assert_eq!(qos, MqttQos::AtLeastOnce);
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn unacked_qos1_message_is_redelivered_to_the_next_link_of_a_persistent_session() {
    let broker = Mosquitto::start();
    let (mut c, mut ev) = connector(broker.endpoint());
    let persistent = |link: u64| UpstreamCmd::Open {
        link: LinkId(link),
        client_id: "gw-persistent".into(),
        clean_session: false,
        keep_alive: Duration::from_secs(30),
        will: None,
        credentials: None,
        identity: None,
    };
    up(&mut c, &mut ev, persistent(1)).await;
    assert_eq!(subscribe(&mut c, &mut ev, 1, 1, "r/x", 1).await, Some(1));
    up(&mut c, &mut ev, open(9, "gw-pub")).await;
    c.execute(publish(9, 50, "r/x", b"keep me", 1));
    ev.expect("PublishDone", is_done(50)).await;
    ev.expect("first delivery", is_message(1, "r/x")).await;

    // Not acked. Close and immediately reopen with the same ClientId: the new link must wait
    // for the old one to be closed (no takeover).
    c.execute(UpstreamCmd::Close {
        link: LinkId(1),
        graceful: true,
    });
    c.execute(persistent(2));
    let up2 = ev.expect("LinkUp of the new link", is_link_up(2)).await;
    assert!(matches!(
        up2,
        UpstreamEvent::LinkUp {
            session_present: true,
            ..
        }
    ));
    let closed = ev.arrival_index(is_closed(1)).expect("old link Closed");
    let upped = ev.arrival_index(is_link_up(2)).unwrap();
    assert!(
        closed < upped,
        "new link connected before the old one closed"
    );

    let delivery = match ev.expect("redelivery", is_message(2, "r/x")).await {
        UpstreamEvent::Message {
            delivery, payload, ..
        } => {
            assert_eq!(&payload[..], b"keep me");
            delivery
        }
        _ => unreachable!(),
    };
    assert_eq!(delivery.qos, MqttQos::AtLeastOnce);
    c.execute(UpstreamCmd::Ack {
        link: LinkId(2),
        delivery: DeliveryId {
            pkid: delivery.pkid,
            qos: MqttQos::AtLeastOnce,
        },
    });

    // Acked now: a third link of the session gets it no more. Checked by a marker message that
    // must arrive first (mosquitto delivers queued messages in order).
    c.execute(UpstreamCmd::Close {
        link: LinkId(2),
        graceful: true,
    });
    ev.expect("Closed 2", is_closed(2)).await;
    c.execute(publish(9, 51, "r/x", b"marker", 1));
    ev.expect("PublishDone marker", is_done(51)).await;
    c.execute(persistent(3));
    ev.expect("LinkUp 3", is_link_up(3)).await;
    match ev.expect("marker", is_message(3, "r/x")).await {
        UpstreamEvent::Message { payload, .. } => {
            assert_eq!(&payload[..], b"marker", "acked message redelivered");
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn without_a_broker_the_link_backs_off_instead_of_hot_looping() {
    let port = free_tcp_port(); // nothing listens here
    let endpoint = UpstreamEndpoint {
        host: "127.0.0.1".into(),
        port,
        ..UpstreamEndpoint::default()
    };
    assert_eq!(endpoint.backoff_initial, Duration::from_millis(250));
    let (mut c, mut ev) = connector(endpoint);
    c.execute(open(1, "gw-nobroker"));
    let events = ev.collect_for(Duration::from_millis(1500)).await;
    let downs = events
        .iter()
        .filter(|e| matches!(e, UpstreamEvent::LinkDown { .. }))
        .count();
    assert!(
        (2..=6).contains(&downs),
        "{downs} LinkDown events in 1.5 s: {events:#?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, UpstreamEvent::LinkUp { .. })),
        "{events:#?}"
    );

    // A close during the backoff sleep ends the link at once.
    let started = Instant::now();
    c.execute(UpstreamCmd::Close {
        link: LinkId(1),
        graceful: true,
    });
    ev.expect_within("Closed", Duration::from_secs(1), is_closed(1))
        .await;
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn bad_credentials_are_refused_and_good_ones_accepted() {
    let broker = Mosquitto::start_with(
        |dir, _| {
            let passwd = dir.write("passwd", "");
            let status = Command::new("mosquitto_passwd")
                .args(["-b", "-c"])
                .arg(&passwd)
                .args(["gw", "secret"])
                .status()
                .expect("mosquitto_passwd");
            assert!(status.success());
            std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644)).unwrap();
            format!(
                "allow_anonymous false\npassword_file {}\n",
                passwd.display()
            )
        },
        0,
    );
    let (mut c, mut ev) = connector(broker.endpoint());
    let with_credentials = |link: u64, password: &str| UpstreamCmd::Open {
        link: LinkId(link),
        client_id: format!("gw-auth-{link}"),
        clean_session: true,
        keep_alive: Duration::from_secs(30),
        will: None,
        credentials: Some(Credentials {
            username: "gw".into(),
            password: Some(password.into()),
        }),
        identity: None,
    };

    c.execute(with_credentials(1, "wrong"));
    let refused = ev
        .expect(
            "Refused",
            |e| matches!(e, UpstreamEvent::Refused { link, .. } if *link == LinkId(1)),
        )
        .await;
    assert!(
        matches!(
            refused,
            UpstreamEvent::Refused {
                refusal: BrokerRefusal::BadCredentials | BrokerRefusal::NotAuthorized,
                ..
            }
        ),
        "{refused:?}"
    );

    c.execute(open(2, "gw-anonymous"));
    ev.expect(
        "Refused anonymous",
        |e| matches!(e, UpstreamEvent::Refused { link, .. } if *link == LinkId(2)),
    )
    .await;

    up(&mut c, &mut ev, with_credentials(3, "secret")).await;
    c.shutdown(Duration::from_secs(2)).await;
    for link in 1..=3 {
        ev.expect("Closed", is_closed(link)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// TLS

struct TlsFiles {
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for `DNS:localhost, IP:127.0.0.1` and a client certificate.
fn make_tls_files(dir: &TempDir) -> TlsFiles {
    let d = dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
    ]);
    openssl(d, &ca);
    dir.write(
        "server.ext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    dir.write("client.ext", "extendedKeyUsage=clientAuth\n");
    for name in ["server", "client"] {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let ext = format!("{name}.ext");
        let subj = format!("/CN={name}");
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(d, &req);
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
    for f in std::fs::read_dir(d).unwrap() {
        let f = f.unwrap().path();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    TlsFiles {
        ca: d.join("ca.pem"),
        client_cert: d.join("client.pem"),
        client_key: d.join("client.key"),
    }
}

#[tokio::test]
async fn tls_links_check_the_certificate_name_and_present_client_certificates() {
    let tls_dir = TempDir::new("tls");
    let files = make_tls_files(&tls_dir);
    let d = tls_dir.path().to_owned();
    // extra_ports[0]: TLS; extra_ports[1]: TLS requiring a client certificate.
    let broker = Mosquitto::start_with(
        move |_, ports| {
            format!(
                "allow_anonymous true\n\
                 listener {p0} 127.0.0.1\ncafile {ca}\ncertfile {crt}\nkeyfile {key}\n\
                 listener {p1} 127.0.0.1\ncafile {ca}\ncertfile {crt}\nkeyfile {key}\n\
                 require_certificate true\n",
                p0 = ports[0],
                p1 = ports[1],
                ca = d.join("ca.pem").display(),
                crt = d.join("server.pem").display(),
                key = d.join("server.key").display(),
            )
        },
        2,
    );
    let tls_endpoint = |port: u16, server_name: Option<&str>, client_auth: bool| {
        let mut e = UpstreamEndpoint {
            scheme: Scheme::Mqtts,
            host: "127.0.0.1".into(),
            port,
            ..UpstreamEndpoint::default()
        };
        e.tls.ca_file = Some(files.ca.clone());
        e.tls.server_name = server_name.map(str::to_owned);
        if client_auth {
            e.tls.client_cert = Some(files.client_cert.clone());
            e.tls.client_key = Some(files.client_key.clone());
        }
        e
    };
    let (p_tls, p_mtls) = (broker.extra_ports[0], broker.extra_ports[1]);

    // Certificate checked against the host (its IP SAN).
    let (mut c, mut ev) = connector(tls_endpoint(p_tls, None, false));
    up(&mut c, &mut ev, open(1, "gw-tls")).await;

    // Checked against a configured name the certificate has.
    let (mut c2, mut ev2) = connector(tls_endpoint(p_tls, Some("localhost"), false));
    up(&mut c2, &mut ev2, open(1, "gw-tls-name")).await;

    // A name the certificate does not have: the handshake fails, the link retries.
    let (mut c3, mut ev3) = connector(tls_endpoint(p_tls, Some("wrong.example"), false));
    c3.execute(open(1, "gw-tls-wrong"));
    match ev3
        .expect("LinkDown", |e| matches!(e, UpstreamEvent::LinkDown { .. }))
        .await
    {
        UpstreamEvent::LinkDown { reason, .. } => {
            assert!(reason.contains("TLS"), "{reason}");
        }
        _ => unreachable!(),
    }

    // Client certificate required: accepted with one.
    let (mut c4, mut ev4) = connector(tls_endpoint(p_mtls, None, true));
    up(&mut c4, &mut ev4, open(1, "gw-mtls")).await;

    // And traffic flows over TLS.
    assert_eq!(subscribe(&mut c, &mut ev, 1, 1, "tls/#", 1).await, Some(1));
    c4.execute(publish(1, 7, "tls/x", b"secure", 1));
    ev4.expect("PublishDone over mTLS", is_done(7)).await;
    ev.expect("message over TLS", is_message(1, "tls/x")).await;
}

#[tokio::test]
async fn after_a_reload_links_read_their_client_certificate_files_again() {
    let tls_dir = TempDir::new("tls");
    let files = make_tls_files(&tls_dir);
    let d = tls_dir.path().to_owned();
    // extra_ports[0]: TLS requiring a client certificate.
    let broker = Mosquitto::start_with(
        move |_, ports| {
            format!(
                "allow_anonymous true\n\
                 listener {p} 127.0.0.1\ncafile {ca}\ncertfile {crt}\nkeyfile {key}\n\
                 require_certificate true\n",
                p = ports[0],
                ca = d.join("ca.pem").display(),
                crt = d.join("server.pem").display(),
                key = d.join("server.key").display(),
            )
        },
        1,
    );
    let mut endpoint = UpstreamEndpoint {
        scheme: Scheme::Mqtts,
        host: "127.0.0.1".into(),
        port: broker.extra_ports[0],
        ..UpstreamEndpoint::default()
    };
    endpoint.tls.ca_file = Some(files.ca.clone());
    let (mut c, mut ev) = connector(endpoint);
    // The mote's own certificate, as the registry names it.
    let identity = ClientIdentity {
        cert: files.client_cert.clone(),
        key: files.client_key.clone(),
    };
    let open_as = |link: u64, client_id: &str| {
        let mut cmd = open(link, client_id);
        if let UpstreamCmd::Open { identity: id, .. } = &mut cmd {
            *id = Some(identity.clone());
        }
        cmd
    };
    up(&mut c, &mut ev, open_as(1, "mote-1")).await;

    // The certificate file is replaced in place by one that is unusable, and the settings are
    // reloaded: the next link reads the file again and is refused.
    let good = std::fs::read(&files.client_cert).unwrap();
    std::fs::write(&files.client_cert, "not a certificate\n").unwrap();
    c.reload();
    c.execute(open_as(2, "mote-2"));
    match ev
        .expect(
            "Refused",
            |e| matches!(e, UpstreamEvent::Refused { link, .. } if *link == LinkId(2)),
        )
        .await
    {
        UpstreamEvent::Refused { refusal, .. } => {
            assert_eq!(refusal, BrokerRefusal::BadCredentials)
        }
        _ => unreachable!(),
    }

    // Restored and reloaded again: the next link presents it and is admitted.
    std::fs::write(&files.client_cert, good).unwrap();
    c.reload();
    up(&mut c, &mut ev, open_as(3, "mote-3")).await;
}

#[tokio::test]
async fn after_a_broker_restart_every_request_is_either_reported_lost_or_answered() {
    restart_accounts_for_every_request().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_nothing_is_unaccounted_on_a_multi_threaded_runtime() {
    restart_accounts_for_every_request().await;
}

async fn restart_accounts_for_every_request() {
    let mut broker = Mosquitto::start();
    let endpoint = UpstreamEndpoint {
        backoff_initial: Duration::from_millis(100),
        ..broker.endpoint()
    };
    let (mut c, mut ev) = connector(endpoint);
    up(&mut c, &mut ev, open(1, "gw-restart")).await;

    // The broker dies (no persistence: the session is gone) while requests are queued.
    broker.kill();
    const N: u64 = 50;
    for i in 0..N {
        c.execute(publish(
            1,
            100 + i,
            "restart/x",
            b"p",
            if i % 2 == 0 { 1 } else { 2 },
        ));
    }
    c.execute(UpstreamCmd::Subscribe {
        link: LinkId(1),
        token: Token(99),
        filter: "restart/#".into(),
        qos: MqttQos::AtLeastOnce,
    });
    ev.expect("LinkDown", |e| matches!(e, UpstreamEvent::LinkDown { .. }))
        .await;
    // Submitted while the link is down: these wait in rumqttc's channel and are not lost.
    for i in 0..5 {
        c.execute(publish(1, 200 + i, "restart/x", b"late", 1));
    }
    broker.restart();

    let lost = match ev.expect("LinkUp after restart", is_link_up(1)).await {
        UpstreamEvent::LinkUp {
            session_present,
            lost,
            ..
        } => {
            assert!(!session_present);
            lost
        }
        _ => unreachable!(),
    };
    assert!(
        lost.iter().all(|t| t.0 < 200),
        "requests made during the outage reported lost: {lost:?}"
    );
    let all: std::collections::BTreeSet<u64> = (100..100 + N).chain([99]).chain(200..205).collect();
    let mut accounted: std::collections::BTreeSet<u64> = std::collections::BTreeSet::new();
    let mut lost = lost;
    for t in &lost {
        assert!(accounted.insert(t.0), "token {} lost twice", t.0);
    }
    // Whatever was not reported lost must be answered in the new session. Under load rumqttc
    // may drop the new connection once more (e.g. on a broker ack it no longer expects); a
    // further LinkUp then reports more lost requests, each still exactly once.
    while accounted.len() < all.len() {
        let e = ev
            .expect("answer", |e| {
                matches!(
                    e,
                    UpstreamEvent::PublishDone { .. } | UpstreamEvent::SubAck { .. }
                ) || is_link_up(1)(e)
            })
            .await;
        let tokens = match e {
            UpstreamEvent::PublishDone { token, .. } | UpstreamEvent::SubAck { token, .. } => {
                vec![token]
            }
            UpstreamEvent::LinkUp { lost: more, .. } => {
                lost.extend(more.iter().copied());
                more
            }
            _ => unreachable!(),
        };
        for token in tokens {
            assert!(
                accounted.insert(token.0),
                "token {} answered and lost, or answered twice (lost: {lost:?})",
                token.0
            );
        }
    }
    assert_eq!(accounted, all);

    // The core re-submits what was lost; all of it goes through now.
    for t in &lost {
        if t.0 == 99 {
            continue;
        }
        c.execute(publish(1, t.0 + 1000, "restart/x", b"again", 1));
    }
    for t in &lost {
        if t.0 != 99 {
            ev.expect("PublishDone of a re-submission", is_done(t.0 + 1000))
                .await;
        }
    }
}

/// The persistent session `gw-qos2-session` on link 1 of `c` takes a QoS 2 message and
/// acknowledges it (PUBREC), and its link is dropped before any PUBREL: the broker will send
/// PUBREL on the session's next connection.
async fn acknowledge_qos2_then_cut(broker: &Mosquitto, c: &mut RumqttcConnector, ev: &mut Events) {
    up(c, ev, qos2_session(1)).await;
    assert_eq!(subscribe(c, ev, 1, 1, "q2/x", 2).await, Some(2));
    up(c, ev, open(9, "gw-qos2-pub")).await;
    c.execute(publish(9, 50, "q2/x", b"exactly once", 2));
    let delivery = match ev.expect("QoS 2 message", is_message(1, "q2/x")).await {
        UpstreamEvent::Message { delivery, .. } => delivery,
        _ => unreachable!(),
    };
    assert_eq!(delivery.qos, MqttQos::ExactlyOnce);

    // Freeze the broker, acknowledge (PUBREC goes out), drop the link before any PUBREL.
    broker.signal("STOP");
    c.execute(UpstreamCmd::Ack {
        link: LinkId(1),
        delivery,
    });
    for _ in 0..100 {
        tokio::task::yield_now().await; // lets the link task hand the PUBREC to the socket
    }
    c.execute(UpstreamCmd::Close {
        link: LinkId(1),
        graceful: false,
    });
    ev.expect("Closed 1", is_closed(1)).await;
    broker.signal("CONT");
    broker
        .expect_log("Received PUBREC from gw-qos2-session", 1)
        .await;
    broker
        .expect_log("Client gw-qos2-session closed its connection", 1)
        .await;
}

/// The persistent session of [`acknowledge_qos2_then_cut`] on `link`.
fn qos2_session(link: u64) -> UpstreamCmd {
    UpstreamCmd::Open {
        link: LinkId(link),
        client_id: "gw-qos2-session".into(),
        clean_session: false,
        keep_alive: Duration::from_secs(30),
        will: None,
        credentials: None,
        identity: None,
    }
}

/// The next link of the session (link 2 of `c`): the broker re-sends PUBREL, which must get
/// its PUBCOMP, and the link stays up.
async fn next_link_completes_the_pubrel(
    broker: &Mosquitto,
    c: &mut RumqttcConnector,
    ev: &mut Events,
) {
    up(c, ev, qos2_session(2)).await;
    broker
        .expect_log("Received PUBCOMP from gw-qos2-session", 1)
        .await;
    up(c, ev, open(9, "gw-qos2-pub-2")).await;
    c.execute(publish(9, 51, "q2/x", b"next", 2));
    ev.expect("message on the new link", is_message(2, "q2/x"))
        .await;
    assert!(
        ev.arrival_index(
            |e| matches!(e, UpstreamEvent::LinkDown { link, .. } if *link == LinkId(2))
        )
        .is_none(),
        "the new link dropped: {:#?}\n{}",
        ev.arrived,
        broker.log()
    );
}

#[tokio::test]
async fn a_pubrel_owed_by_the_previous_link_of_a_session_is_answered_not_fatal() {
    // rumqttc forgets incoming QoS 2 ids on disconnect and treats the broker's re-sent PUBREL
    // as a protocol error (upstream issue #664): without the workaround the new link would
    // reconnect forever.
    let broker = Mosquitto::start();
    let (mut c, mut ev) = connector(broker.endpoint());
    acknowledge_qos2_then_cut(&broker, &mut c, &mut ev).await;
    next_link_completes_the_pubrel(&broker, &mut c, &mut ev).await;
}

#[tokio::test]
async fn a_pubrel_for_a_message_acknowledged_before_a_restart_is_completed_not_fatal() {
    // A restarted gateway's connector knows nothing of the exchange; the broker's resumed
    // session still sends its PUBREL.
    let broker = Mosquitto::start();
    let (mut c, mut ev) = connector(broker.endpoint());
    acknowledge_qos2_then_cut(&broker, &mut c, &mut ev).await;
    drop(c);
    let (mut c, mut ev) = connector(broker.endpoint());
    next_link_completes_the_pubrel(&broker, &mut c, &mut ev).await;
}

#[tokio::test]
async fn at_most_max_connecting_links_connect_at_once() {
    use gateway::io::upstream::MAX_CONNECTING;
    // A "broker" that accepts TCP connections and never answers CONNECT: every link stays in
    // its connection attempt, holding its permit, until the connect timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let endpoint = UpstreamEndpoint {
        host: "127.0.0.1".into(),
        port,
        connect_timeout: Duration::from_secs(30),
        ..UpstreamEndpoint::default()
    };
    let (mut c, _ev) = connector(endpoint);
    let links = MAX_CONNECTING as u64 + 36;
    for link in 1..=links {
        c.execute(open(link, &format!("gw-storm-{link}")));
    }
    let mut accepted = Vec::new();
    while accepted.len() < MAX_CONNECTING {
        let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the permitted links connect")
            .unwrap();
        accepted.push(stream);
    }
    // The others wait for a permit: nobody else connects (absence asserted over a window).
    let extra = tokio::time::timeout(Duration::from_millis(500), listener.accept()).await;
    assert!(extra.is_err(), "a link connected beyond the limit");
    // A failed attempt frees its permit for a waiting link.
    drop(accepted.pop());
    let next = tokio::time::timeout(WAIT, listener.accept()).await;
    assert!(
        next.is_ok(),
        "a waiting link connects once a permit is free"
    );
    for link in 1..=links {
        c.execute(UpstreamCmd::Close {
            link: LinkId(link),
            graceful: false,
        });
    }
}

/// A held PUBREC: the link reports it with its packet id and sends no PUBREL (so mosquitto,
/// which releases a QoS 2 message on PUBREL, delivers nothing) until `Release`. Then, as after
/// a restart, a new connector resumes the publish on the persistent session by its packet id
/// alone: the message is delivered exactly once.
#[tokio::test]
async fn a_held_pubrec_releases_nothing_until_release_and_resumes_by_packet_id_after_a_restart() {
    let broker = Mosquitto::start();
    let persistent = |link: u64| UpstreamCmd::Open {
        link: LinkId(link),
        client_id: "gw-custody".into(),
        clean_session: false,
        keep_alive: Duration::from_secs(30),
        will: None,
        credentials: None,
        identity: None,
    };
    let (mut watch, mut watch_ev) = connector(broker.endpoint());
    up(&mut watch, &mut watch_ev, open(1, "gw-watch")).await;
    assert_eq!(
        subscribe(&mut watch, &mut watch_ev, 1, 1, "held/#", 2).await,
        Some(2)
    );

    // Held, then released: delivered once.
    let (mut c, mut ev) = connector(broker.endpoint());
    up(&mut c, &mut ev, persistent(1)).await;
    c.execute(UpstreamCmd::HoldRelease {
        link: LinkId(1),
        token: Token(10),
    });
    c.execute(publish(1, 10, "held/a", b"first", 2));
    match ev
        .expect(
            "PubrecHeld",
            |e| matches!(e, UpstreamEvent::PubrecHeld { token, .. } if *token == Token(10)),
        )
        .await
    {
        UpstreamEvent::PubrecHeld { pkid, .. } => assert_ne!(pkid, 0),
        _ => unreachable!(),
    }
    let early = watch_ev.collect_for(Duration::from_millis(300)).await;
    assert!(
        !early.iter().any(is_message(1, "held/a")),
        "delivered before the PUBREL: {early:?}"
    );
    assert!(ev.arrival_index(is_done(10)).is_none());
    c.execute(UpstreamCmd::Release {
        link: LinkId(1),
        token: Token(10),
    });
    ev.expect("PublishDone", is_done(10)).await;
    watch_ev
        .expect("delivery of the released message", is_message(1, "held/a"))
        .await;

    // Held, and the gateway dies before releasing: nothing is delivered; a new connector (a
    // restarted gateway) resumes it by packet id on the resumed session.
    c.execute(UpstreamCmd::HoldRelease {
        link: LinkId(1),
        token: Token(11),
    });
    c.execute(publish(1, 11, "held/b", b"second", 2));
    let pkid = match ev
        .expect(
            "PubrecHeld",
            |e| matches!(e, UpstreamEvent::PubrecHeld { token, .. } if *token == Token(11)),
        )
        .await
    {
        UpstreamEvent::PubrecHeld { pkid, .. } => pkid,
        _ => unreachable!(),
    };
    drop(c);
    let (mut c, mut ev) = connector(broker.endpoint());
    assert!(
        up(&mut c, &mut ev, persistent(1)).await,
        "the broker kept the session"
    );
    let early = watch_ev.collect_for(Duration::from_millis(300)).await;
    assert!(
        !early.iter().any(is_message(1, "held/b")),
        "delivered without a PUBREL: {early:?}"
    );
    c.execute(UpstreamCmd::Resume {
        link: LinkId(1),
        token: Token(1),
        pkid,
    });
    ev.expect("PublishDone of the resumed publish", is_done(1))
        .await;
    match watch_ev
        .expect("delivery after the resume", is_message(1, "held/b"))
        .await
    {
        UpstreamEvent::Message { payload, .. } => assert_eq!(&payload[..], b"second"),
        _ => unreachable!(),
    }
    let later = watch_ev.collect_for(Duration::from_millis(500)).await;
    assert!(
        !later.iter().any(is_message(1, "held/b")),
        "delivered twice: {later:?}"
    );
}

/// A packet id released for a held PUBREC is not given to another publish until the core
/// forgets it (its record is deleted durably): a PUBREL resumed after a crash must never
/// release a different message. With an inflight window of 2, rumqttc hands out ids 1, 2, 1.
#[tokio::test]
async fn a_released_packet_id_is_not_reused_until_it_is_forgotten() {
    let broker = Mosquitto::start();
    let endpoint = UpstreamEndpoint {
        inflight: 2,
        ..broker.endpoint()
    };
    let (mut c, mut ev) = connector(endpoint);
    up(&mut c, &mut ev, open(1, "gw-reserve")).await;
    c.execute(UpstreamCmd::HoldRelease {
        link: LinkId(1),
        token: Token(10),
    });
    c.execute(publish(1, 10, "reserve/a", b"held", 2));
    let pkid = match ev
        .expect("PubrecHeld", |e| {
            matches!(e, UpstreamEvent::PubrecHeld { .. })
        })
        .await
    {
        UpstreamEvent::PubrecHeld { pkid, .. } => pkid,
        _ => unreachable!(),
    };
    assert_eq!(pkid, 1);
    c.execute(UpstreamCmd::Release {
        link: LinkId(1),
        token: Token(10),
    });
    ev.expect("PublishDone 10", is_done(10)).await;
    c.execute(publish(1, 11, "reserve/b", b"two", 1));
    ev.expect("PublishDone 11 (packet id 2)", is_done(11)).await;
    // The next id is 1 again: held back.
    c.execute(publish(1, 12, "reserve/c", b"three", 2));
    let early = ev.collect_for(Duration::from_millis(400)).await;
    assert!(
        !early.iter().any(is_done(12)),
        "published under a reserved packet id: {early:?}"
    );
    c.execute(UpstreamCmd::Forget {
        link: LinkId(1),
        pkid: 1,
    });
    ev.expect("PublishDone 12 once forgotten", is_done(12))
        .await;
}
