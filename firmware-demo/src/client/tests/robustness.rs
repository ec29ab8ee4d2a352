//! Whatever arrives, the client neither panics nor misbehaves: malformed datagrams, strangers,
//! replies that match nothing, random byte soup at random times.

use sn_codec::{Packet, QoS, ReturnCode};

use super::harness::*;
use crate::client::{PubTopic, State, SubTopic};
use crate::rng::Rng;

#[test]
fn malformed_datagrams_and_strangers_are_counted_and_dropped() {
    let mut w = World::connected(fixed_config());
    w.deliver_raw(GW, &[]);
    w.deliver_raw(GW, &[0x00]);
    w.deliver_raw(GW, &[0x05, 0x05, 0x00]); // Length says 5, 3 octets present
    w.deliver_raw(GW, &[0x03, 0x30, 0x00]); // unknown type
    w.deliver_raw(GW, &[0x04, 0x18, 0x00]); // DISCONNECT of length 4 with 3 octets
    assert_eq!(w.c.stats().malformed, 5);
    w.deliver_from(99, &Packet::Disconnect { duration: None });
    w.deliver(&Packet::Regack {
        topic_id: 1,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.deliver(&Packet::Suback {
        qos: QoS::One,
        topic_id: 1,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.deliver(&Packet::Unsuback { msg_id: 1 });
    w.deliver(&Packet::Pubcomp { msg_id: 1 });
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    w.deliver(&Packet::WillMsgReq);
    w.deliver(&Packet::GwInfo {
        gw_id: 3,
        gw_addr: &[1, 2],
    });
    assert_eq!(w.c.stats().unexpected, 8);
    assert_eq!(w.c.state(), State::Active);
    w.expect_silence();
}

#[test]
fn random_datagrams_at_random_times_never_panic_and_deadlines_never_lie_in_the_past() {
    let templates: [&[u8]; 12] = [
        &[0x03, 0x05, 0x00],
        &[0x07, 0x0B, 0x00, 0x05, 0x00, 0x01, 0x00],
        &[0x07, 0x0D, 0x00, 0x05, 0x00, 0x02, 0x02],
        &[0x04, 0x0F, 0x00, 0x02],
        &[0x04, 0x0E, 0x00, 0x02],
        &[0x04, 0x10, 0x00, 0x03],
        &[0x02, 0x18],
        &[0x02, 0x17],
        &[0x02, 0x06],
        &[0x08, 0x13, 0x20, 0x00, 0x09, 0x00, 0x01, 0x00],
        &[
            0x0C, 0x0A, 0x00, 0x07, 0x00, 0x05, b'a', b'/', b'b', b'/', b'c', b'd',
        ],
        &[0x09, 0x0C, 0x40, 0x00, 0x07, 0x00, 0x03, b'h', b'i'],
    ];
    for seed in 0..200u64 {
        let mut rng = Rng::new(seed);
        let mut cfg = if seed % 2 == 0 {
            fixed_config()
        } else {
            discovery_config()
        };
        cfg.keep_alive = 5;
        let mut w = World::with_seed(cfg, seed);
        let t = w.c.register(w.now, "a/b").unwrap();
        w.c.subscribe(w.now, SubTopic::Name("c/#"), QoS::Two)
            .unwrap();
        w.with(|c, now| c.connect(now)).unwrap();
        for step in 0..300 {
            let from = if rng.up_to(9) == 0 { GW2 } else { GW };
            match rng.up_to(9) {
                0..=3 => {
                    let mut bytes = templates[rng.up_to(11) as usize].to_vec();
                    if rng.up_to(3) == 0 {
                        let i = rng.up_to(bytes.len() as u64 - 1) as usize;
                        bytes[i] = rng.next_u64() as u8;
                    }
                    if rng.up_to(5) == 0 {
                        bytes.truncate(rng.up_to(bytes.len() as u64) as usize);
                    }
                    w.deliver_raw(from, &bytes);
                }
                4 => w.deliver_from(
                    from,
                    &Packet::GwInfo {
                        gw_id: 1,
                        gw_addr: &[],
                    },
                ),
                5 => {
                    let qos = [QoS::MinusOne, QoS::Zero, QoS::One, QoS::Two][rng.up_to(3) as usize];
                    let topic = if qos == QoS::MinusOne {
                        PubTopic::Short(*b"ab")
                    } else {
                        PubTopic::Registered(t)
                    };
                    let _ = w.with(|c, now| c.publish(now, topic, b"p", qos, false));
                }
                6 => {
                    let _ = w.with(|c, now| match step % 4 {
                        0 => c.sleep(now, 30),
                        1 => c.wake(now),
                        2 => c.connect(now),
                        _ => c.disconnect(now),
                    });
                }
                _ => {
                    if w.c.poll_timeout().is_some() {
                        w.fire();
                    } else {
                        w.run_for(secs(1));
                    }
                }
            }
            let _ = w.take_sent();
            let _ = w.take_events();
        }
    }
}

#[test]
fn the_default_client_and_sensor_fit_in_a_few_kilobytes_of_ram() {
    // Everything is inline (no allocator): this is the whole RAM budget of the protocol state
    // with 8 topics, 4 queued publishes and 64-octet payloads (smaller still on 32-bit MCUs).
    assert!(core::mem::size_of::<crate::client::Client<u16, 8, 4, 64>>() <= 3 * 1024);
    assert!(core::mem::size_of::<crate::app::Sensor<u16, 8, 4, 64>>() <= 5 * 1024);
}
