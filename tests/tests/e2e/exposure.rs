//! What an attacker on the same LAN can do to the released binary, against a real mosquitto:
//! take a session over with a PINGREQ or a CONNECT, lock motes out with a CONNECT flood,
//! publish without a session, and make the gateway amplify SEARCHGW. Floods are bounded (a few
//! seconds on loopback) and the assertions are on counts: acknowledgements the paired motes
//! got, sessions in the table, bytes of log, datagrams received.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rumqttc::QoS as MqttQoS;
use sn_codec::{Connect, Packet, Publish, QoS, ReturnCode, TopicRef};
use sn_tests::daemon::{Daemon, DaemonOptions};
use sn_tests::sn_client::encode;
use sn_tests::{Mosquitto, SnClient, Subscriber};

const WAIT: Duration = Duration::from_secs(5);

fn connect_packet(id: &str, keep_alive: u16) -> Vec<u8> {
    encode(&Packet::Connect(Connect {
        will: false,
        clean_session: true,
        duration: keep_alive,
        client_id: id.as_bytes(),
    }))
}

/// CONNECTs per second of the flood (the rate the attack was measured with was 50 000 against
/// a release build; the tests run a debug build beside mosquitto on two cores).
const FLOOD_RATE: u64 = 20_000;

/// Sends CONNECTs with random ClientIds and keep-alive 0 from one UDP port at
/// [`FLOOD_RATE`] until `stop`; returns how many were sent.
fn connect_flood(gateway: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut sent = 0;
        let start = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) {
            // Bursts of 100, paced to the rate.
            for _ in 0..100 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let id = format!("{:016x}", x);
                if socket.send_to(&connect_packet(&id, 0), gateway).is_ok() {
                    sent += 1;
                }
            }
            let due = Duration::from_micros(sent * 1_000_000 / FLOOD_RATE);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        sent
    })
}

/// The flood scenarios run one at a time (two floods at once would measure each other).
static FLOODS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A QoS 1 publish with a predefined topic id.
fn qos1(topic_id: u16, msg_id: u16) -> Packet<'static> {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::One,
        retain: false,
        topic: TopicRef::Predefined(topic_id),
        msg_id,
        data: b"reading",
    })
}

/// A paired mote's session: connects, then publishes `n` QoS 1 readings, each retransmitted
/// (as a mote does, up to 10 times) until its PUBACK arrives; returns the PUBACKs received.
async fn paired_mote(gateway: SocketAddr, id: String, n: u16) -> u16 {
    let mote = SnClient::new(gateway).await.unwrap();
    let mut connected = false;
    for _ in 0..10 {
        mote.send_raw(&connect_packet(&id, 60)).await.unwrap();
        if let Ok(Some(r)) = mote.recv_within(Duration::from_secs(2)).await
            && r.packet().ok()
                == Some(Packet::Connack {
                    return_code: ReturnCode::Accepted,
                })
        {
            connected = true;
            break;
        }
    }
    assert!(connected, "{id} could not connect during the flood");
    let mut acked = 0;
    for msg_id in 1..=n {
        for _ in 0..10 {
            mote.send(&qos1(1, msg_id)).await.unwrap();
            let got = mote.recv_within(Duration::from_secs(1)).await.unwrap();
            if let Some(r) = got
                && matches!(r.packet(), Ok(Packet::Puback { msg_id: m, return_code: ReturnCode::Accepted, .. }) if m == msg_id)
            {
                acked += 1;
                break;
            }
        }
    }
    acked
}

/// The number of sessions the gateway lists.
async fn sessions(daemon: &Daemon) -> usize {
    let list = gateway::admin_client::clients(daemon.http).await.unwrap();
    list.clients.len()
}

fn registry(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("[[client]]\nclient_id = \"{id}\"\n"))
        .collect()
}

// ----- 1. session hijack with one PINGREQ -----

#[tokio::test]
async fn a_pingreq_from_a_stranger_neither_moves_nor_disconnects_an_active_mote() {
    let broker = Mosquitto::start().await.unwrap();
    let daemon = Daemon::start(&broker.url(), DaemonOptions::default())
        .await
        .unwrap();
    let mote = SnClient::new(daemon.udp).await.unwrap();
    assert_eq!(
        mote.connect("m1", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    mote.send(&Packet::Subscribe(sn_codec::Subscribe {
        dup: false,
        qos: QoS::Zero,
        msg_id: 1,
        topic: TopicRef::Short(*b"c1"),
    }))
    .await
    .unwrap();
    assert!(matches!(
        mote.recv().await.unwrap().packet().unwrap(),
        Packet::Suback { .. }
    ));
    let stranger = SnClient::new(daemon.udp).await.unwrap();
    stranger
        .send(&Packet::Pingreq {
            client_id: Some(b"m1"),
        })
        .await
        .unwrap();
    stranger
        .expect(&Packet::Disconnect { duration: None })
        .await
        .unwrap();
    // The mote keeps its session: its commands still reach it, and only it.
    sn_tests::publish(
        &broker.url(),
        "c1",
        b"open valve",
        MqttQoS::AtMostOnce,
        false,
    )
    .await
    .unwrap();
    let got = mote.recv().await.unwrap();
    assert!(
        matches!(got.packet().unwrap(), Packet::Publish(p) if p.data == b"open valve"),
        "{}",
        got.text()
    );
    mote.send(&Packet::Pingreq { client_id: None })
        .await
        .unwrap();
    mote.expect(&Packet::Pingresp).await.unwrap();
    stranger
        .expect_nothing(Duration::from_millis(300))
        .await
        .unwrap();
    daemon.stop().await;
}

// ----- 2. allow_address_change = false -----

#[tokio::test]
async fn a_connect_takeover_is_refused_when_address_changes_are_off() {
    let broker = Mosquitto::start().await.unwrap();
    let options = DaemonOptions {
        config: "[gateway]\nallow_address_change = false\n".into(),
        ..Default::default()
    };
    let daemon = Daemon::start(&broker.url(), options).await.unwrap();
    let mote = SnClient::new(daemon.udp).await.unwrap();
    assert_eq!(
        mote.connect("m1", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    let stranger = SnClient::new(daemon.udp).await.unwrap();
    assert_eq!(
        stranger.connect("m1", true, 60).await.unwrap(),
        ReturnCode::NotSupported
    );
    mote.send(&Packet::Pingreq { client_id: None })
        .await
        .unwrap();
    mote.expect(&Packet::Pingresp).await.unwrap();
    daemon.stop().await;
}

// ----- 3 and 5. lock-out and starvation by a CONNECT flood -----

/// Floods CONNECTs for `flood_for` while five paired motes publish; checks what the motes,
/// the HTTP endpoint, the watchdog, the session table and the log went through.
async fn connect_flood_scenario(mode: &str) {
    let _one_at_a_time = FLOODS.lock().await;
    let broker = Mosquitto::start().await.unwrap();
    let motes: Vec<String> = (0..5).map(|i| format!("paired-{i}")).collect();
    let options = DaemonOptions {
        upstream: format!("mode = \"{mode}\"\n"),
        config: "[[predefined]]\nid = 1\ntopic = \"site/readings\"\n".into(),
        registry: Some(registry(&motes)),
        watchdog: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let daemon = Daemon::start(&broker.url(), options).await.unwrap();
    let log_before = daemon.log_bytes();
    daemon.watchdog_pings();

    let stop = Arc::new(AtomicBool::new(false));
    let flood = connect_flood(daemon.udp, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The paired motes publish while the flood goes on.
    let per_mote = 20;
    let publishers: Vec<_> = motes
        .iter()
        .map(|id| tokio::spawn(paired_mote(daemon.udp, id.clone(), per_mote)))
        .collect();
    // The HTTP endpoint answers during the flood.
    let metrics = tokio::time::timeout(
        WAIT,
        gateway::admin_client::request(daemon.http, "GET", "/metrics"),
    )
    .await;
    assert!(
        matches!(metrics, Ok(Ok(_))),
        "/metrics did not answer during the flood"
    );
    let mut acked = 0;
    for p in publishers {
        acked += p.await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let sent = flood.join().unwrap();
    let pings = daemon.watchdog_pings();

    assert!(sent > FLOOD_RATE, "the flood sent only {sent} CONNECTs");
    assert_eq!(
        acked,
        per_mote * motes.len() as u16,
        "paired motes' QoS 1 publishes acknowledged during a flood of {sent} CONNECTs"
    );
    assert!(
        pings >= 1,
        "the watchdog was not petted during the flood ({pings} pings)"
    );
    // One address got at most its burst plus what refilled while the flood lasted.
    let table = sessions(&daemon).await;
    assert!(
        table <= motes.len() + 32 + 4 * 30,
        "{table} sessions after a flood of {sent} CONNECTs"
    );
    let logged = daemon.log_bytes() - log_before;
    assert!(
        logged < 256 * 1024,
        "{logged} bytes of log for {sent} CONNECTs"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_connect_flood_in_transparent_mode_starves_nobody_and_fills_nothing() {
    connect_flood_scenario("transparent").await;
}

#[tokio::test]
async fn a_connect_flood_in_aggregating_mode_starves_nobody_and_fills_nothing() {
    connect_flood_scenario("aggregating").await;
}

#[tokio::test]
async fn a_paired_mote_connects_when_strangers_have_filled_the_table() {
    let broker = Mosquitto::start().await.unwrap();
    let options = DaemonOptions {
        // 30 strangers from one address stay within its burst of new sessions.
        config: "[gateway]\nmax_clients = 20\n".into(),
        registry: Some(registry(&["paired".to_owned()])),
        log: Some("warn".into()),
        ..Default::default()
    };
    let daemon = Daemon::start(&broker.url(), options).await.unwrap();
    // Strangers with keep-alive 0, each from its own port, fill the table.
    let mut strangers = Vec::new();
    for i in 0..30 {
        let s = SnClient::new(daemon.udp).await.unwrap();
        let _ = s.connect(&format!("stranger-{i}"), true, 0).await;
        strangers.push(s);
    }
    assert_eq!(sessions(&daemon).await, 20);
    let late = SnClient::new(daemon.udp).await.unwrap();
    assert_eq!(
        late.connect("late-stranger", true, 0).await.unwrap(),
        ReturnCode::Congestion
    );
    let mote = SnClient::new(daemon.udp).await.unwrap();
    assert_eq!(
        mote.connect("paired", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    daemon.stop().await;
}

// ----- 4. sessionless publishes -----

/// A QoS −1 PUBLISH in the non-standard long-topic form: topic "door" (TopicId = its length 4,
/// TopicIdType 0b00), data "open".
const LONG_FORM_DOOR_OPEN: [u8; 15] = [
    0x0F, 0x0C, 0x60, 0x00, 0x04, 0x00, 0x00, b'd', b'o', b'o', b'r', b'o', b'p', b'e', b'n',
];

/// A QoS −1 PUBLISH.
fn minus1(topic: TopicRef<'_>, retain: bool, data: &[u8]) -> Vec<u8> {
    encode(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::MinusOne,
        retain,
        topic,
        msg_id: 0,
        data,
    }))
}

/// A broker client subscribed to every topic the sessionless tests publish to (not `#`: the
/// gateway's own retained status would come first).
async fn watch_sessionless_topics(broker: &Mosquitto) -> Subscriber {
    Subscriber::connect(
        &broker.url(),
        "watcher",
        &[
            ("meters/#", MqttQoS::AtMostOnce),
            ("site/#", MqttQoS::AtMostOnce),
            ("ab", MqttQoS::AtMostOnce),
            ("door", MqttQoS::AtMostOnce),
        ],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn sessionless_publishes_follow_registered_only_and_need_allowances() {
    let broker = Mosquitto::start().await.unwrap();
    let meter = UdpSocket::bind("127.0.0.1:0").unwrap();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let registry = format!(
        "[[client]]\nclient_id = \"meter\"\naddress = \"{}\"\npublish = [\"meters/#\"]\n",
        meter.local_addr().unwrap()
    );
    let options = DaemonOptions {
        config: "[clients]\npolicy = \"registered-only\"\n\
                 [qos_minus1]\nlong_topic_form = true\n\
                 [[predefined]]\nid = 1\ntopic = \"meters/1\"\n\
                 [[predefined]]\nid = 2\ntopic = \"site/door\"\n"
            .into(),
        registry: Some(registry),
        ..Default::default()
    };
    let daemon = Daemon::start(&broker.url(), options).await.unwrap();
    let mut sub = watch_sessionless_topics(&broker).await;
    // A stranger: predefined, short name, long-topic form, retained — none goes through.
    for bytes in [
        minus1(TopicRef::Predefined(2), false, b"forged"),
        minus1(TopicRef::Short(*b"ab"), false, b"forged"),
        minus1(TopicRef::Predefined(1), true, b"forged"),
        LONG_FORM_DOOR_OPEN.to_vec(),
    ] {
        stranger.send_to(&bytes, daemon.udp).unwrap();
    }
    // The pinned meter: outside its topics dropped, inside published (after the others, on the
    // same link, so whatever the stranger got through would arrive first).
    meter
        .send_to(
            &minus1(TopicRef::Predefined(2), false, b"not mine"),
            daemon.udp,
        )
        .unwrap();
    meter
        .send_to(&minus1(TopicRef::Predefined(1), false, b"42"), daemon.udp)
        .unwrap();
    let m = sub.next_message(WAIT).await.expect("the meter's reading");
    assert_eq!(
        (m.topic.as_str(), m.payload_str().as_str()),
        ("meters/1", "42")
    );
    assert!(sub.next_message(Duration::from_millis(300)).await.is_none());
    daemon.stop().await;
}

#[tokio::test]
async fn by_default_the_long_topic_form_and_retained_sessionless_publishes_are_refused() {
    let broker = Mosquitto::start().await.unwrap();
    let options = DaemonOptions {
        config: "[[predefined]]\nid = 1\ntopic = \"site/status\"\n".into(),
        ..Default::default()
    };
    let daemon = Daemon::start(&broker.url(), options).await.unwrap();
    let mut sub = watch_sessionless_topics(&broker).await;
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(&LONG_FORM_DOOR_OPEN, daemon.udp).unwrap();
    let retained = minus1(TopicRef::Predefined(1), true, b"forged");
    sender.send_to(&retained, daemon.udp).unwrap();
    let plain = minus1(TopicRef::Predefined(1), false, b"ok");
    sender.send_to(&plain, daemon.udp).unwrap();
    let m = sub.next_message(WAIT).await.expect("the plain publish");
    assert_eq!(
        (m.topic.as_str(), m.payload_str().as_str(), m.retain),
        ("site/status", "ok", false)
    );
    assert!(sub.next_message(Duration::from_millis(300)).await.is_none());
    daemon.stop().await;
}

// ----- 8. SEARCHGW amplification -----

#[tokio::test]
async fn a_searchgw_flood_gets_a_few_gwinfo_answers() {
    let broker = Mosquitto::start().await.unwrap();
    let port = sn_tests::free_udp_port().unwrap();
    let group = SocketAddrV4::new(Ipv4Addr::new(225, 1, 1, 91), port);
    let options = DaemonOptions {
        discovery_group: Some(SocketAddr::V4(group)),
        ..Default::default()
    };
    let daemon = Daemon::start(&broker.url(), options).await.unwrap();
    let member = sn_tests::ports::loopback_group_member(group).unwrap();
    // 20 searchers, each repeating its SEARCHGW every 10 ms for 2 s.
    let searchers: Vec<UdpSocket> = (0..20)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let search = encode(&Packet::SearchGw { radius: 0 });
    let mut unicast = 0;
    let mut buf = [0u8; 64];
    let count = |s: &UdpSocket, buf: &mut [u8]| {
        let mut n = 0;
        while let Ok((len, _)) = s.recv_from(buf) {
            n += usize::from(matches!(
                Packet::decode(&buf[..len]),
                Ok(Packet::GwInfo { .. })
            ));
        }
        n
    };
    for _ in 0..200 {
        for s in &searchers {
            s.send_to(&search, daemon.udp).unwrap();
            unicast += count(s, &mut buf);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    for s in &searchers {
        unicast += count(s, &mut buf);
    }
    let multicast = count(&member, &mut buf);
    // Overall at most a burst of 20 and 10 a second; on the group at most one a second.
    assert!(
        (1..=50).contains(&unicast),
        "{unicast} unicast GWINFO for 4000 SEARCHGW from 20 searchers"
    );
    assert!(
        multicast <= 4,
        "{multicast} multicast GWINFO for 4000 SEARCHGW"
    );
    daemon.stop().await;
}
