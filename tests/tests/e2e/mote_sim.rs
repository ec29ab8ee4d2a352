//! Simulated motes (`firmware_demo::sim`, the library behind `mote-sim`) → the real gateway on
//! loopback UDP → a real mosquitto, with a subscriber that checks every reading; and the same
//! through the forwarder over a serial pseudo-terminal pair. Every wait is bounded.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use firmware_demo::app::{SensorConfig, SleepCycle, TopicMode, parse_reading};
use firmware_demo::client::Timers;
use firmware_demo::sim::{Network, Report, SimConfig, UdpNetwork};
use firmware_demo::sn_codec::QoS;
use gateway::core::config::DiscoveryConfig;
use gateway::io::config::MulticastConfig;
use rumqttc::QoS as MqttQoS;
use sn_tests::{Mosquitto, Received, Subscriber, TestGateway, publish};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

/// A run of `motes` motes against `gateway`, each taking `readings` readings every 150 ms.
fn sim(gateway: SocketAddr, prefix: &str, motes: usize, qos: QoS, readings: u32) -> SimConfig {
    let mut sensor = SensorConfig::new(prefix, Duration::from_millis(150)).unwrap();
    sensor.qos = qos;
    sensor.max_readings = Some(readings);
    sensor.first_reading_within = Duration::from_millis(100);
    SimConfig {
        network: Network::Udp(UdpNetwork {
            gateway: Some(gateway),
            gateway_id: 1,
            search: None,
            bind: Ipv4Addr::LOCALHOST.into(),
            radius: 1,
        }),
        motes,
        client_prefix: format!("{prefix}-"),
        sensor,
        sleep_cycle: None,
        sleepers: 0,
        will: true,
        keep_alive: 30,
        timers: Timers {
            t_retry: Duration::from_millis(500),
            ..Timers::default()
        },
        duration: Some(WAIT),
        ramp: Duration::from_millis(100),
        seed: 7,
        broker: None,
        chatty: false,
        progress: false,
        linger: Duration::from_secs(3),
    }
}

/// Runs the simulation to its end (bounded by its `duration`).
async fn run(cfg: SimConfig) -> Report {
    tokio::time::timeout(
        WAIT * 2,
        firmware_demo::sim::run(cfg, CancellationToken::new()),
    )
    .await
    .expect("the simulation ends")
    .expect("the simulation runs")
}

/// Every (client id, seq) pair received, asserting each arrived exactly once.
fn readings(got: &[Received]) -> BTreeSet<(String, u32)> {
    let mut set = BTreeSet::new();
    for r in got {
        let p = parse_reading(&r.payload).unwrap_or_else(|| panic!("not a reading: {r:?}"));
        assert!(
            set.insert((p.client_id.to_string(), p.seq)),
            "duplicate {r:?}"
        );
    }
    set
}

fn expected(prefix: &str, motes: usize, readings: u32) -> BTreeSet<(String, u32)> {
    (1..=motes)
        .flat_map(|m| (0..readings).map(move |s| (format!("{prefix}-{m}"), s)))
        .collect()
}

#[tokio::test]
async fn every_reading_of_every_mote_reaches_the_broker_once_at_qos_0_1_and_2() {
    let broker = Mosquitto::start().await.unwrap();
    let gw = TestGateway::start(&broker.url()).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    for (qos, prefix) in [(QoS::Zero, "q0"), (QoS::One, "q1"), (QoS::Two, "q2")] {
        let mut sub = Subscriber::connect(
            &broker.url(),
            &format!("watch-{prefix}"),
            &[(&format!("{prefix}/+/reading"), MqttQoS::ExactlyOnce)],
        )
        .await
        .unwrap();
        let report = run(sim(gw.addr, prefix, 3, qos, 5)).await;
        assert_eq!(report.sent, 15, "{}", report.text());
        assert_eq!(report.completed, 15, "{}", report.text());
        assert_eq!(report.failed, 0);
        assert_eq!(report.clean_exits, 3, "every mote disconnected cleanly");
        if qos != QoS::Zero {
            assert_eq!(report.ack_latency.map(|p| p.count), Some(15));
        }
        let got = sub.expect_messages(15, WAIT).await.unwrap();
        assert_eq!(readings(&got), expected(prefix, 3, 5), "QoS {qos}");
        for r in &got {
            assert_eq!(
                r.topic,
                format!("{}/reading", r.topic.rsplit_once('/').unwrap().0)
            );
        }
        sub.expect_no_message(Duration::from_millis(200))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn qos_minus1_motes_publish_to_short_and_predefined_topics_without_connecting() {
    let broker = Mosquitto::start().await.unwrap();
    let (mut core, io) = sn_tests::gateway::test_settings(&broker.url()).unwrap();
    core.predefined.global.insert(7, "site/readings".into());
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    let mut sub = Subscriber::connect(
        &broker.url(),
        "watch-m1",
        &[
            ("site/readings", MqttQoS::AtLeastOnce),
            ("rd", MqttQoS::AtLeastOnce),
        ],
    )
    .await
    .unwrap();
    for (mode, prefix) in [
        (TopicMode::Predefined(7), "pre"),
        (TopicMode::Short(*b"rd"), "sho"),
    ] {
        let mut cfg = sim(gw.addr, prefix, 2, QoS::MinusOne, 4);
        cfg.sensor.topic_mode = mode;
        cfg.sensor.payload_size = 100;
        let report = run(cfg).await;
        assert_eq!((report.sent, report.completed), (8, 8));
        assert_eq!(report.connected_motes, 0, "QoS -1 needs no session");
        let got = sub.expect_messages(8, WAIT).await.unwrap();
        assert_eq!(readings(&got), expected(prefix, 2, 4));
        let topic = if prefix == "pre" {
            "site/readings"
        } else {
            "rd"
        };
        assert!(
            got.iter()
                .all(|r| r.topic == topic && r.payload.len() == 100)
        );
    }
}

#[tokio::test]
async fn motes_find_the_gateway_by_multicast_discovery_on_loopback() {
    let broker = Mosquitto::start().await.unwrap();
    let group = SocketAddrV4::new(
        Ipv4Addr::new(225, 1, 1, 91),
        sn_tests::free_udp_port().unwrap(),
    );
    let (mut core, mut io) = sn_tests::gateway::test_settings(&broker.url()).unwrap();
    core.gateway_id = 42;
    core.discovery = Some(DiscoveryConfig {
        advertise_interval: Duration::from_secs(60),
        max_gwinfo_ttl: 1,
        max_gwinfo_delay: Duration::from_millis(50),
    });
    io.listeners[0].multicast = Some(MulticastConfig {
        group: SocketAddr::V4(group),
        interface_v4: Some(Ipv4Addr::LOCALHOST),
        interface_v6: 0,
        ttl: 1,
    });
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    let mut sub = Subscriber::connect(
        &broker.url(),
        "watch-disc",
        &[("disc/+/reading", MqttQoS::AtLeastOnce)],
    )
    .await
    .unwrap();
    let mut cfg = sim(gw.addr, "disc", 4, QoS::One, 3);
    let Network::Udp(net) = &mut cfg.network else {
        unreachable!()
    };
    net.gateway = None;
    net.search = Some((group, Ipv4Addr::LOCALHOST));
    cfg.timers.t_searchgw = Duration::from_millis(300);
    cfg.timers.search_backoff_initial = Duration::from_millis(500);
    let report = run(cfg).await;
    assert_eq!(report.completed, 12, "{}", report.text());
    assert_eq!(report.connected_motes, 4);
    let got = sub.expect_messages(12, WAIT).await.unwrap();
    assert_eq!(readings(&got), expected("disc", 4, 3));
}

#[tokio::test]
async fn a_sleeping_mote_obeys_a_command_published_while_it_sleeps() {
    let broker = Mosquitto::start().await.unwrap();
    let gw = TestGateway::start(&broker.url()).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    let mut sub = Subscriber::connect(
        &broker.url(),
        "watch-sleep",
        &[("sleepy/+/reading", MqttQoS::AtLeastOnce)],
    )
    .await
    .unwrap();
    let mut cfg = sim(gw.addr, "sleepy", 1, QoS::One, 1000);
    cfg.sensor.interval = Duration::from_millis(1500);
    cfg.sleep_cycle = Some(SleepCycle {
        awake: Duration::ZERO,
        asleep: None,
    });
    cfg.sleepers = 1;
    let cancel = CancellationToken::new();
    let sim_task = tokio::spawn(firmware_demo::sim::run(cfg, cancel.clone()));

    // The first reading arrives; right after it the mote goes to sleep for ~1.5 s. The
    // command is published once the gateway has it asleep.
    let first = sub.expect_messages(1, WAIT).await.unwrap();
    let p = parse_reading(&first[0].payload).unwrap();
    assert!(!p.led);
    gw.wait_client_state("sleepy-1", "asleep", WAIT)
        .await
        .unwrap();
    publish(
        &broker.url(),
        "sleepy/sleepy-1/cmd",
        b"led=on",
        MqttQoS::AtLeastOnce,
        false,
    )
    .await
    .unwrap();
    // The gateway buffers it; at the wake-up PINGREQ the mote takes it, and its next reading
    // reports the LED on.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let r = sub
            .next_message(left)
            .await
            .expect("a reading with the LED on");
        if parse_reading(&r.payload).unwrap().led {
            break;
        }
    }
    cancel.cancel();
    let report = tokio::time::timeout(WAIT, sim_task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mote = &report.per_mote[0];
    assert_eq!(mote.commands, 1);
    assert!(mote.led);
    assert!(mote.wake_ups >= 1, "woke up with PINGREQ(ClientId)");
    assert!(mote.connects >= 2, "resumed the session after waking");
    assert!(mote.clean_exit);
    assert_eq!(report.failed, 0);
}

/// A linked pseudo-terminal pair from socat: two device paths, bytes written to one come out
/// of the other. Killed on drop.
struct PtyPair {
    _child: tokio::process::Child,
    dir: std::path::PathBuf,
}

impl PtyPair {
    async fn open() -> PtyPair {
        let dir =
            std::env::temp_dir().join(format!("pty-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        let child = tokio::process::Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()))
            .kill_on_drop(true)
            .spawn()
            .expect("socat (Debian package socat) is installed");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !(a.exists() && b.exists()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "socat made no pty pair"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        PtyPair { _child: child, dir }
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[tokio::test]
async fn motes_reach_the_broker_through_the_forwarder_over_a_serial_line() {
    use firmware_demo::sim::SerialNetwork;
    use firmware_demo::sim::serial::Framing as SimFraming;
    use forwarder::radio::Framing;

    for (sim_framing, fwd_framing, prefix) in [
        (
            SimFraming::SlipAddressed,
            Framing::Slip { addressed: true },
            "slipfwd",
        ),
        (
            SimFraming::XbeeApi2,
            Framing::Xbee { escaped: true },
            "xbeefwd",
        ),
    ] {
        let broker = Mosquitto::start().await.unwrap();
        let gw = TestGateway::start(&broker.url()).await.unwrap();
        gw.wait_upstream(true, WAIT).await.unwrap();
        let mut sub = Subscriber::connect(
            &broker.url(),
            &format!("watch-{prefix}"),
            &[(&format!("{prefix}/#"), MqttQoS::AtLeastOnce)],
        )
        .await
        .unwrap();
        let pty = PtyPair::open().await;
        let port = sn_tests::forwarder::script::serial_port(pty.dir.join("a"), fwd_framing, None);
        let fwd = sn_tests::forwarder::script::start_forwarder(
            sn_tests::forwarder::script::settings(gw.addr, vec![port]),
        )
        .await;

        let mut cfg = sim(gw.addr, prefix, 3, QoS::One, 4);
        cfg.network = Network::Serial(SerialNetwork {
            path: pty.dir.join("b").display().to_string(),
            baud: 115_200,
            framing: sim_framing,
            discovery: false,
            gateway_id: 1,
        });
        let report = run(cfg).await;
        assert_eq!(report.completed, 12, "{prefix}: {}", report.text());
        assert_eq!(report.failed, 0, "{prefix}");
        let got = sub.expect_messages(12, WAIT).await.unwrap();
        assert_eq!(readings(&got), expected(prefix, 3, 4), "{prefix}");
        // Three distinct nodes on the one serial line.
        assert_eq!(fwd.stats().nodes, 3, "{prefix}");
        fwd.stop().await;
    }
}
