//! The demo sensor against a scripted gateway in simulated time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::time::Duration;
use std::vec::Vec;

use sn_codec::{Connect, Instant, Packet, Publish, QoS, Register, ReturnCode, Subscribe, TopicRef};

use super::*;
use crate::client::{ClientConfig, Destination, Timers};

const GW: u8 = 1;
type TestSensor = Sensor<u8, 8, 4, 128>;

struct World {
    s: TestSensor,
    now: Instant,
    sent: Vec<Vec<u8>>,
    events: Vec<SensorEvent<128>>,
}

fn encode(p: &Packet<'_>) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = p.encode(&mut buf).unwrap();
    buf[..n].to_vec()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl World {
    fn new(tweak: impl FnOnce(&mut SensorConfig)) -> Self {
        let mut ccfg = ClientConfig::new("m1").unwrap();
        ccfg.gateway = Some((GW, 1));
        ccfg.keep_alive = 0;
        ccfg.timers = Timers {
            t_retry: secs(1),
            ..Timers::default()
        };
        let mut cfg = SensorConfig::new("motes", secs(10)).unwrap();
        cfg.first_reading_within = Duration::ZERO;
        tweak(&mut cfg);
        let s = Sensor::new(ccfg, cfg, Instant::ZERO, 7).unwrap();
        let mut w = World {
            s,
            now: Instant::ZERO,
            sent: Vec::new(),
            events: Vec::new(),
        };
        w.drain();
        w
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 512];
        while let Some(t) = self.s.poll_transmit(self.now, &mut buf) {
            assert_eq!(t.to, Destination::Gateway(GW));
            self.sent.push(buf[..t.len].to_vec());
        }
        assert!(
            !self.s.client().has_transmit(),
            "poll_transmit stopped early"
        );
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
    }

    fn deliver(&mut self, p: &Packet<'_>) {
        self.s.handle_datagram(self.now, GW, &encode(p));
        self.drain();
    }

    fn fire(&mut self) {
        let t = self.s.poll_timeout().expect("a deadline");
        assert!(t >= self.now);
        self.now = t;
        self.s.handle_timeout(t);
        self.drain();
    }

    /// The one datagram sent since the last call, decoded and handed to `check`.
    fn sent_one(&mut self, check: impl FnOnce(Packet<'_>)) {
        let sent = std::mem::take(&mut self.sent);
        assert_eq!(
            sent.len(),
            1,
            "{:?}",
            sent.iter()
                .map(|b| Packet::decode(b).map(|p| p.to_string()))
                .collect::<Vec<_>>()
        );
        check(Packet::decode(&sent[0]).unwrap());
    }

    fn expect(&mut self, p: &Packet<'_>) {
        let want = encode(p);
        self.sent_one(|got| assert_eq!(encode(&got), want, "got {got}, want {p}"));
    }

    fn readings(&self) -> Vec<u32> {
        self.events
            .iter()
            .filter_map(|e| {
                if let SensorEvent::Reading { seq, .. } = e {
                    Some(*seq)
                } else {
                    None
                }
            })
            .collect()
    }

    /// Connects, answers REGISTER (id 5) and SUBSCRIBE (id 6).
    fn connect_and_set_up(&mut self) {
        self.expect(&Packet::Connect(Connect {
            will: false,
            clean_session: true,
            duration: 0,
            client_id: b"m1",
        }));
        self.deliver(&Packet::Connack {
            return_code: ReturnCode::Accepted,
        });
        self.expect(&Packet::Register(Register {
            topic_id: 0,
            msg_id: 1,
            topic_name: b"motes/m1/reading",
        }));
        self.deliver(&Packet::Regack {
            topic_id: 5,
            msg_id: 1,
            return_code: ReturnCode::Accepted,
        });
        self.expect(&Packet::Subscribe(Subscribe {
            dup: false,
            qos: QoS::One,
            msg_id: 2,
            topic: TopicRef::Name(b"motes/m1/cmd"),
        }));
        self.deliver(&Packet::Suback {
            qos: QoS::One,
            topic_id: 6,
            msg_id: 2,
            return_code: ReturnCode::Accepted,
        });
    }

    /// Acknowledges the reading just published and returns its payload.
    fn ack_reading(&mut self) -> std::string::String {
        let mut out = (0, 0, std::string::String::new());
        self.sent_one(|p| {
            let Packet::Publish(p) = p else {
                panic!("expected a reading, got {p}")
            };
            assert_eq!(p.topic, TopicRef::Normal(5));
            out = (
                p.msg_id,
                p.topic.id_field(),
                std::string::String::from_utf8(p.data.to_vec()).unwrap(),
            );
        });
        self.deliver(&Packet::Puback {
            topic_id: out.1,
            msg_id: out.0,
            return_code: ReturnCode::Accepted,
        });
        out.2
    }

    fn command(&mut self, msg_id: u16, text: &[u8]) {
        self.deliver(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::One,
            retain: false,
            topic: TopicRef::Normal(6),
            msg_id,
            data: text,
        }));
    }
}

#[test]
fn the_sensor_registers_subscribes_and_reports_a_reading_every_interval() {
    let mut w = World::new(|_| {});
    w.connect_and_set_up();
    let first = w.ack_reading();
    let p = parse_reading(first.as_bytes()).unwrap();
    assert_eq!(
        (p.client_id, p.seq, p.led, p.interval_secs),
        ("m1", 0, false, 10)
    );
    for seq in 1..4u32 {
        let before = w.now;
        w.fire();
        assert_eq!(w.now, before + secs(10));
        let text = w.ack_reading();
        assert_eq!(parse_reading(text.as_bytes()).unwrap().seq, seq);
    }
    assert_eq!(w.readings(), [0, 1, 2, 3]);
    assert_eq!(w.s.readings(), 4);
}

#[test]
fn commands_change_the_interval_and_the_led_and_nonsense_is_rejected() {
    let mut w = World::new(|_| {});
    w.connect_and_set_up();
    w.ack_reading();
    w.events.clear();
    w.command(1, b"led=on");
    w.expect(&Packet::Puback {
        topic_id: 6,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.command(2, b"interval=3");
    w.take_acks();
    w.command(3, b"self-destruct");
    w.take_acks();
    let applied: Vec<&SensorEvent<128>> = w
        .events
        .iter()
        .filter(|e| matches!(e, SensorEvent::Command(_) | SensorEvent::CommandRejected))
        .collect();
    assert_eq!(
        applied,
        [
            &SensorEvent::Command(Command::Led(true)),
            &SensorEvent::Command(Command::Interval(secs(3))),
            &SensorEvent::CommandRejected
        ]
    );
    assert!(w.s.led());
    let before = w.now;
    w.fire();
    assert_eq!(
        w.now,
        before + secs(3),
        "the shorter interval applies at once"
    );
    let text = w.ack_reading();
    let p = parse_reading(text.as_bytes()).unwrap();
    assert!(p.led);
    assert_eq!(p.interval_secs, 3);
}

impl World {
    fn take_acks(&mut self) {
        self.sent.clear();
    }
}

#[test]
fn a_sleeping_sensor_wakes_takes_a_buffered_command_resumes_reports_and_sleeps_again() {
    let mut w = World::new(|c| {
        c.sleep = Some(SleepCycle {
            awake: Duration::ZERO,
            asleep: None,
        })
    });
    w.connect_and_set_up();
    w.ack_reading();
    // Window over, outbox empty: sleep until the next reading (10 s).
    w.expect(&Packet::Disconnect { duration: Some(10) });
    w.deliver(&Packet::Disconnect { duration: None });
    assert_eq!(w.s.client().state(), State::Asleep);
    let slept_at = w.now;
    w.fire();
    assert_eq!(w.now, slept_at + secs(10));
    w.expect(&Packet::Pingreq {
        client_id: Some(b"m1"),
    });
    // The gateway hands over the command buffered during the sleep, then PINGRESP.
    w.command(9, b"led=on");
    w.expect(&Packet::Puback {
        topic_id: 6,
        msg_id: 9,
        return_code: ReturnCode::Accepted,
    });
    w.deliver(&Packet::Pingresp);
    // Resume (no re-registration) and report with the new LED state.
    w.expect(&Packet::Connect(Connect {
        will: false,
        clean_session: false,
        duration: 0,
        client_id: b"m1",
    }));
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    let text = w.ack_reading();
    let p = parse_reading(text.as_bytes()).unwrap();
    assert_eq!((p.seq, p.led), (1, true));
    w.expect(&Packet::Disconnect { duration: Some(10) });
    w.deliver(&Packet::Disconnect { duration: None });
    assert!(w.events.contains(&SensorEvent::Command(Command::Led(true))));
    assert_eq!(w.s.client().state(), State::Asleep);
}

#[test]
fn a_qos_minus1_sensor_never_connects_and_finishes_after_max_readings() {
    let mut w = World::new(|c| {
        c.qos = QoS::MinusOne;
        c.topic_mode = TopicMode::Short(*b"rd");
        c.max_readings = Some(3);
        c.payload_size = 80;
    });
    for seq in 0..3u32 {
        w.fire();
        w.sent_one(|p| {
            let Packet::Publish(p) = p else { panic!("{p}") };
            assert_eq!(
                (p.qos, p.topic, p.msg_id),
                (QoS::MinusOne, TopicRef::Short(*b"rd"), 0)
            );
            assert_eq!(p.data.len(), 80);
            assert_eq!(parse_reading(p.data).unwrap().seq, seq);
        });
    }
    assert!(w.s.is_finished());
    assert_eq!(w.events.last(), Some(&SensorEvent::Finished));
    assert_eq!(w.s.poll_timeout(), None);
    assert_eq!(w.s.client().state(), State::Disconnected);
}

#[test]
fn a_connected_sensor_disconnects_once_its_last_reading_is_acknowledged() {
    let mut w = World::new(|c| c.max_readings = Some(2));
    w.connect_and_set_up();
    w.ack_reading();
    w.fire();
    w.ack_reading();
    w.expect(&Packet::Disconnect { duration: None });
    w.deliver(&Packet::Disconnect { duration: None });
    assert!(w.s.is_finished());
    assert_eq!(w.s.poll_timeout(), None);
}

#[test]
fn bad_sensor_configurations_are_refused() {
    let ccfg = || {
        let mut c = ClientConfig::<u8, 128>::new("m1").unwrap();
        c.gateway = Some((GW, 1));
        c
    };
    let mut cfg = SensorConfig::new("motes", secs(1)).unwrap();
    cfg.qos = QoS::MinusOne;
    assert_eq!(
        TestSensor::new(ccfg(), cfg.clone(), Instant::ZERO, 1).err(),
        Some(ConfigError::InvalidQos)
    );
    let cfg = SensorConfig::new("a/+", secs(1)).unwrap();
    assert_eq!(
        TestSensor::new(ccfg(), cfg, Instant::ZERO, 1).err(),
        Some(ConfigError::InvalidTopic)
    );
    assert_eq!(
        SensorConfig::new(&"x".repeat(MAX_PREFIX_LEN + 1), secs(1)).err(),
        Some(ConfigError::InvalidTopic)
    );
}

#[test]
fn stop_closes_the_session_and_takes_no_more_readings() {
    let mut w = World::new(|_| {});
    w.connect_and_set_up();
    w.ack_reading();
    w.s.stop(w.now);
    w.drain();
    w.expect(&Packet::Disconnect { duration: None });
    w.deliver(&Packet::Disconnect { duration: None });
    assert!(w.s.is_finished());
    assert_eq!(w.events.last(), Some(&SensorEvent::Finished));
    assert_eq!(w.s.poll_timeout(), None);
    // Without a session (QoS -1) there is nothing to close.
    let mut q = World::new(|c| {
        c.qos = QoS::MinusOne;
        c.topic_mode = TopicMode::Predefined(3);
    });
    q.s.stop(q.now);
    q.drain();
    assert!(q.s.is_finished());
    assert!(q.sent.is_empty());
}
