//! Finding a gateway, losing it (N_RETRY, N_ADV) and finding another.

use sn_codec::{Packet, QoS, ReturnCode};

use super::harness::*;
use crate::client::{ClientEvent, Destination, LossReason, PubTopic, PublishError, State};

const SEARCH: Destination<u8> = Destination::Broadcast { radius: 1 };

#[test]
fn searchgw_goes_out_after_a_seeded_random_delay_and_backs_off_until_answered() {
    let mut delays = std::vec::Vec::new();
    for seed in 0..20 {
        let mut w = World::with_seed(discovery_config(), seed);
        w.with(|c, now| c.connect(now)).unwrap();
        assert_eq!(w.c.state(), State::SearchingGw);
        w.expect_events(&[ClientEvent::SearchingGateway]);
        w.expect_silence();
        let first = w.fire();
        assert!(
            first <= sn_codec::Instant::from_millis(2000),
            "within T_SEARCHGW"
        );
        delays.push(first);
        w.expect_sent_to(SEARCH, &[Packet::SearchGw { radius: 1 }]);
        // Unanswered: again after 2–4 s, then 4–8 s, then 8–16 s.
        let mut prev = first;
        for full in [4000u64, 8000, 16000] {
            let t = w.fire();
            let gap = t.as_millis() - prev.as_millis();
            assert!((full / 2..=full).contains(&gap), "gap {gap} for {full}");
            w.expect_sent_to(SEARCH, &[Packet::SearchGw { radius: 1 }]);
            prev = t;
        }
        assert_eq!(w.c.stats().searches, 4);
    }
    delays.sort();
    delays.dedup();
    assert!(
        delays.len() > 10,
        "different seeds spread the first SEARCHGW: {delays:?}"
    );
    // The same seed gives the same schedule.
    let run = |seed| {
        let mut w = World::with_seed(discovery_config(), seed);
        w.with(|c, now| c.connect(now)).unwrap();
        (w.fire(), w.fire())
    };
    assert_eq!(run(5), run(5));
}

#[test]
fn a_searchgw_from_another_mote_replaces_ours_and_an_advertise_ends_the_search() {
    let mut w = World::with_seed(discovery_config(), 3);
    w.with(|c, now| c.connect(now)).unwrap();
    w.deliver_from(40, &Packet::SearchGw { radius: 1 });
    w.expect_silence();
    // No SEARCHGW of ours: the next deadline is the end of the wait for an answer (2–4 s).
    assert!(w.c.poll_timeout().unwrap() >= w.now + secs(2));
    assert_eq!(w.c.stats().searches, 0);
    w.deliver_from(
        GW2,
        &Packet::Advertise {
            gw_id: 9,
            duration: 60,
        },
    );
    w.expect_events(&[
        ClientEvent::SearchingGateway,
        ClientEvent::GatewayFound { gw_id: 9 },
    ]);
    w.expect_sent_to(Destination::Gateway(GW2), &[connect_packet(true)]);
    // Messages from anyone else than the chosen gateway are ignored.
    w.deliver_from(
        GW,
        &Packet::Connack {
            return_code: ReturnCode::Accepted,
        },
    );
    assert_eq!(w.c.state(), State::Connecting);
    assert_eq!(w.c.stats().unexpected, 1);
    w.deliver_from(
        GW2,
        &Packet::Connack {
            return_code: ReturnCode::Accepted,
        },
    );
    assert_eq!(w.c.state(), State::Active);
}

/// Connects through discovery to `GW` (GwId 7), which also told us its ADVERTISE period.
fn discovered() -> World {
    let mut w = World::with_seed(discovery_config(), 11);
    w.with(|c, now| c.connect(now)).unwrap();
    w.fire();
    w.take_sent();
    w.deliver(&Packet::GwInfo {
        gw_id: 7,
        gw_addr: &[],
    });
    w.expect_sent(&[connect_packet(true)]);
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    w.take_events();
    w
}

#[test]
fn retries_exhausted_lose_the_gateway_fail_the_publish_and_search_again_keeping_the_queue() {
    let mut w = discovered();
    let lost = w
        .with(|c, now| c.publish(now, PubTopic::Predefined(1), b"a", QoS::One, false))
        .unwrap();
    let kept = w
        .with(|c, now| c.publish(now, PubTopic::Predefined(1), b"b", QoS::One, false))
        .unwrap();
    assert_eq!(w.take_sent().len(), 1);
    w.fire();
    w.fire();
    assert_eq!(w.take_sent().len(), 2, "N_RETRY = 2 retransmissions");
    w.fire();
    w.expect_events(&[
        ClientEvent::PublishFailed {
            token: lost,
            reason: PublishError::RetriesExhausted,
        },
        ClientEvent::GatewayLost {
            gw_id: 7,
            reason: LossReason::RetriesExhausted,
        },
        ClientEvent::SearchingGateway,
    ]);
    assert_eq!(w.c.state(), State::SearchingGw);
    assert_eq!(w.c.gateway(), None);
    w.fire();
    w.expect_sent_to(SEARCH, &[Packet::SearchGw { radius: 1 }]);
    w.deliver_from(
        GW2,
        &Packet::GwInfo {
            gw_id: 8,
            gw_addr: &[],
        },
    );
    w.expect_sent_to(Destination::Gateway(GW2), &[connect_packet(true)]);
    w.deliver_from(
        GW2,
        &Packet::Connack {
            return_code: ReturnCode::Accepted,
        },
    );
    let sent = w.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Destination::Gateway(GW2));
    let Ok(Packet::Publish(p)) = Packet::decode(&sent[0].1) else {
        panic!()
    };
    assert_eq!(p.data, b"b", "the queued publish survives the loss");
    w.deliver_from(
        GW2,
        &Packet::Puback {
            topic_id: 1,
            msg_id: p.msg_id,
            return_code: ReturnCode::Accepted,
        },
    );
    assert!(w.take_events().contains(&ClientEvent::Published {
        token: kept,
        qos: QoS::One,
        retries: 0
    }));
}

#[test]
fn missing_n_adv_advertisements_lose_the_gateway_and_a_known_one_is_used_next() {
    let mut w = discovered();
    w.deliver(&Packet::Advertise {
        gw_id: 7,
        duration: 10,
    });
    w.deliver_from(
        GW2,
        &Packet::Advertise {
            gw_id: 8,
            duration: 100,
        },
    );
    w.run_for(secs(15));
    w.deliver(&Packet::Advertise {
        gw_id: 7,
        duration: 10,
    });
    w.take_sent();
    // 2 × 10 s + 2.5 s after the last ADVERTISE: lost.
    let t1 = w.now;
    for _ in 0..10 {
        w.fire();
        if w.c.state() != State::Active {
            break;
        }
        w.deliver(&Packet::Pingresp);
    }
    assert_eq!(
        w.now,
        t1 + secs(22) + core::time::Duration::from_millis(500)
    );
    let events = w.take_events();
    assert!(
        events.contains(&ClientEvent::GatewayLost {
            gw_id: 7,
            reason: LossReason::AdvertiseMissed
        }),
        "{events:?}"
    );
    assert!(
        events.contains(&ClientEvent::GatewayFound { gw_id: 8 }),
        "{events:?}"
    );
    assert_eq!(w.c.gateway(), Some((GW2, 8)));
    let sent = w.take_sent();
    assert_eq!(sent.last().map(|s| s.0), Some(Destination::Gateway(GW2)));
}

#[test]
fn a_configured_gateway_that_stops_answering_is_retried_with_back_off_and_an_advertise_cuts_it_short()
 {
    let mut w = World::connected(fixed_config());
    w.fire(); // keep-alive PINGREQ, unanswered
    w.fire();
    w.fire();
    assert_eq!(w.take_sent().len(), 3);
    w.fire();
    w.expect_events(&[ClientEvent::GatewayLost {
        gw_id: 7,
        reason: LossReason::RetriesExhausted,
    }]);
    assert_eq!(w.c.state(), State::Lost);
    assert_eq!(w.c.gateway(), Some((GW, 7)), "the configured gateway stays");
    let lost_at = w.now;
    let t = w.fire();
    let wait = t.as_millis() - lost_at.as_millis();
    assert!(
        (2000..=4000).contains(&wait),
        "first reconnect after 2–4 s, got {wait} ms"
    );
    w.expect_sent(&[connect_packet(true)]);
    w.fire();
    w.fire();
    w.take_sent();
    w.fire();
    assert_eq!(w.c.state(), State::Lost);
    let lost_at = w.now;
    // The gateway advertises: reconnect at once.
    w.deliver(&Packet::Advertise {
        gw_id: 7,
        duration: 900,
    });
    assert_eq!(w.now, lost_at);
    w.expect_sent(&[connect_packet(true)]);
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    assert_eq!(w.c.state(), State::Active);
}
