//! What a stranger on the same network can and cannot do: take a session over, fill the
//! session table, publish without a session, make the gateway answer floods.

use std::net::SocketAddr;
use std::time::Duration;

use sn_codec::{Packet, Publish, QoS, ReturnCode, TopicRef};

use super::harness::{Harness, connect, encode, node, peer};
use crate::core::addr::{ListenerId, PeerAddr};
use crate::core::config::{Admission, ClientEntry, GatewayConfig, Pin};
use crate::core::event::{DropReason, GatewayEvent, LostReason};
use crate::core::upstream::UpstreamCmd;

/// A UDP peer at `ip`:`port`.
fn udp(ip: [u8; 4], port: u16) -> PeerAddr {
    PeerAddr::Udp {
        listener: ListenerId(0),
        addr: SocketAddr::from((ip, port)),
    }
}

fn pingreq(id: &str) -> Vec<u8> {
    encode(&Packet::Pingreq {
        client_id: Some(id.as_bytes()),
    })
}

fn connack(code: ReturnCode) -> Packet<'static> {
    Packet::Connack { return_code: code }
}

fn dropped(h: &Harness, reason: DropReason) -> usize {
    h.events
        .iter()
        .filter(|e| matches!(e, GatewayEvent::Dropped { reason: r, .. } if *r == reason))
        .count()
}

fn opens(cmds: &[UpstreamCmd]) -> usize {
    cmds.iter()
        .filter(|c| matches!(c, UpstreamCmd::Open { .. }))
        .count()
}

fn registered_only(entries: &[(&str, Option<Pin>)]) -> GatewayConfig {
    let mut cfg = GatewayConfig::default();
    cfg.clients.admission = Admission::RegisteredOnly;
    // What the configuration file's defaults are with this policy.
    cfg.allow_address_change = false;
    cfg.sleep.allow_wake_from_new_address = false;
    for (id, pin) in entries {
        cfg.clients.registry.insert(
            (*id).into(),
            ClientEntry {
                pin: pin.clone(),
                ..Default::default()
            },
        );
    }
    cfg
}

fn pin_to(ip: [u8; 4]) -> Option<Pin> {
    Some(Pin::Udp {
        ip: ip.into(),
        port: None,
    })
}

fn minus1(topic: TopicRef<'_>, retain: bool) -> Vec<u8> {
    encode(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::MinusOne,
        retain,
        topic,
        msg_id: 0,
        data: b"x",
    }))
}

fn publish_topics(cmds: &[UpstreamCmd]) -> Vec<String> {
    cmds.iter()
        .filter_map(|c| match c {
            UpstreamCmd::Publish { topic, .. } => Some(topic.clone()),
            _ => None,
        })
        .collect()
}

// ----- 1. a PINGREQ with a ClientId is no takeover -----

#[test]
fn a_pingreq_from_a_stranger_does_not_touch_an_active_session() {
    let mut h = Harness::default();
    let mote = peer(1);
    let stranger = peer(66);
    h.connect(&mote, "mote-1", true, 60);
    h.raw(&stranger, &pingreq("mote-1"));
    h.expect(&stranger, &[Packet::Disconnect { duration: None }]);
    h.expect_silence();
    assert!(h.take_cmds().is_empty());
    assert_eq!(dropped(&h, DropReason::NotAsleep), 1);
    // The mote still owns its session.
    h.recv(&mote, Packet::Pingreq { client_id: None });
    h.expect(&mote, &[Packet::Pingresp]);
    assert!(!h.has_event(|e| matches!(e, GatewayEvent::ClientMoved { .. })));
}

#[test]
fn a_pingreq_from_a_stranger_does_not_wake_an_asleep_session_when_wake_from_new_addresses_is_off() {
    let mut h = Harness::new(registered_only(&[("mote-1", None)]));
    let mote = peer(1);
    let stranger = peer(66);
    h.connect(&mote, "mote-1", true, 60);
    h.recv(
        &mote,
        Packet::Disconnect {
            duration: Some(600),
        },
    );
    h.clear();
    h.raw(&stranger, &pingreq("mote-1"));
    h.expect(&stranger, &[Packet::Disconnect { duration: None }]);
    assert_eq!(dropped(&h, DropReason::AddressChangeRefused), 1);
    // The mote itself wakes from its own address.
    h.raw(&mote, &pingreq("mote-1"));
    h.expect(&mote, &[Packet::Pingresp]);
}

#[test]
fn a_pin_in_the_registry_holds_against_a_wake_up_even_when_wake_from_new_addresses_is_on() {
    let mut cfg = registered_only(&[("mote-1", pin_to([10, 0, 0, 1]))]);
    cfg.sleep.allow_wake_from_new_address = true;
    let mut h = Harness::new(cfg);
    let mote = peer(1);
    h.connect(&mote, "mote-1", true, 60);
    h.recv(
        &mote,
        Packet::Disconnect {
            duration: Some(600),
        },
    );
    h.clear();
    let stranger = peer(66);
    h.raw(&stranger, &pingreq("mote-1"));
    h.expect(&stranger, &[Packet::Disconnect { duration: None }]);
    assert_eq!(dropped(&h, DropReason::PinnedElsewhere), 1);
    h.raw(&mote, &pingreq("mote-1"));
    h.expect(&mote, &[Packet::Pingresp]);
}

#[test]
fn a_flood_of_pingreqs_with_random_short_client_ids_moves_no_session() {
    let mut h = Harness::default();
    let ids: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        h.connect(&peer(i as u8 + 1), id, true, 600);
    }
    // Every two-character ClientId of the form the motes use, from many addresses.
    let mut x = 1u32;
    for n in 0..2000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let id = format!("m{}", x % 10);
        h.raw(
            &udp([10, 9, (n / 250) as u8, (n % 250) as u8], 4000),
            &pingreq(&id),
        );
    }
    assert!(!h.has_event(|e| matches!(e, GatewayEvent::ClientMoved { .. })));
    h.clear();
    for (i, _) in ids.iter().enumerate() {
        let mote = peer(i as u8 + 1);
        h.recv(&mote, Packet::Pingreq { client_id: None });
        h.expect(&mote, &[Packet::Pingresp]);
    }
}

// ----- 2. allow_address_change = false -----

#[test]
fn a_connect_takeover_from_a_new_address_is_refused_when_address_changes_are_off() {
    let mut h = Harness::new(GatewayConfig {
        allow_address_change: false,
        ..Default::default()
    });
    let mote = peer(1);
    let link = h.connect(&mote, "mote-1", true, 60);
    let stranger = peer(66);
    h.raw(&stranger, &connect("mote-1", false, true, 60));
    h.expect(&stranger, &[connack(ReturnCode::NotSupported)]);
    assert!(h.take_cmds().is_empty(), "the mote's link stays open");
    assert_eq!(dropped(&h, DropReason::AddressChangeRefused), 1);
    h.recv(&mote, Packet::Pingreq { client_id: None });
    h.expect(&mote, &[Packet::Pingresp]);
    // Once the session has ended, the ClientId may connect from elsewhere.
    h.recv(&mote, Packet::Disconnect { duration: None });
    assert_eq!(
        h.take_cmds(),
        vec![UpstreamCmd::Close {
            link,
            graceful: true
        }]
    );
    h.clear();
    h.connect(&stranger, "mote-1", true, 60);
}

// ----- 3. strangers cannot exhaust the session table -----

#[test]
fn new_sessions_of_unregistered_clients_are_rate_limited_per_address_and_refusals_too() {
    let mut h = Harness::default();
    let flooder = peer(66);
    for i in 0..1000 {
        h.raw(&flooder, &connect(&format!("x{i}"), false, true, 0));
    }
    let burst = GatewayConfig::default()
        .limits
        .new_sessions_per_address
        .burst as usize;
    // Each CONNECT from the same address ends the previous stranger's binding there, but only
    // the burst ever reached the upstream.
    assert_eq!(opens(&h.take_cmds()), burst);
    assert_eq!(dropped(&h, DropReason::RateLimited), 1000 - burst);
    let congestion = h
        .sent_to(&flooder)
        .iter()
        .filter(|b| **b == encode(&connack(ReturnCode::Congestion)))
        .count();
    assert!(congestion <= 4, "{congestion} refusals answered");
    // Another address is not affected, and the limit refills with time.
    h.clear();
    h.raw(&peer(2), &connect("mote-2", false, true, 60));
    assert_eq!(opens(&h.take_cmds()), 1);
    h.advance(Duration::from_secs(1));
    h.raw(&flooder, &connect("again", false, true, 60));
    assert_eq!(opens(&h.take_cmds()), 1);
}

#[test]
fn nodes_behind_one_forwarder_share_a_new_session_limit() {
    let mut h = Harness::default();
    for i in 0..500u16 {
        h.raw(
            &node(&i.to_be_bytes()),
            &connect(&format!("n{i}"), false, true, 0),
        );
    }
    let burst = GatewayConfig::default()
        .limits
        .new_sessions_per_forwarder
        .burst as usize;
    assert_eq!(opens(&h.take_cmds()), burst);
}

#[test]
fn a_registered_mote_connects_while_strangers_fill_the_table() {
    let mut cfg = GatewayConfig {
        max_clients: 20,
        ..Default::default()
    };
    cfg.clients
        .registry
        .insert("paired".into(), ClientEntry::default());
    let mut h = Harness::new(cfg);
    // Strangers from many addresses (each within its own limit) fill the table.
    for i in 0..40u8 {
        h.raw(
            &udp([10, 7, 0, i], 4000),
            &connect(&format!("s{i}"), false, true, 0),
        );
        if opens(&h.cmds) == 1 {
            let link = h.opened_link();
            h.cmds.clear();
            h.upstream(crate::core::upstream::UpstreamEvent::LinkUp {
                link,
                session_present: false,
                lost: vec![],
            });
        }
    }
    assert_eq!(h.gw.clients().len(), 20);
    h.clear();
    h.raw(&peer(1), &connect("paired", false, true, 60));
    assert_eq!(opens(&h.cmds), 1);
    assert!(h.has_event(|e| matches!(
        e,
        GatewayEvent::ClientLost {
            reason: LostReason::Evicted,
            ..
        }
    )));
    assert!(h.gw.clients().iter().any(|c| c.client_id == "paired"));
    assert_eq!(h.gw.clients().len(), 20);
}

#[test]
fn an_unregistered_client_silent_since_its_connect_is_dropped_after_the_idle_timeout() {
    let mut cfg = GatewayConfig::default();
    cfg.clients
        .registry
        .insert("paired".into(), ClientEntry::default());
    let mut h = Harness::new(cfg);
    h.connect(&peer(1), "silent", true, 0);
    h.connect(&peer(2), "talker", true, 600);
    h.connect(&peer(3), "paired", true, 600);
    h.advance(Duration::from_secs(30));
    h.recv(&peer(2), Packet::Pingreq { client_id: None });
    h.advance(Duration::from_secs(31));
    let lost: Vec<&str> = h
        .events
        .iter()
        .filter_map(|e| match e {
            GatewayEvent::ClientLost {
                client_id,
                reason: LostReason::SilentAfterConnect,
                ..
            } => Some(client_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(lost, ["silent"]);
    let left: Vec<String> = h.gw.clients().into_iter().map(|c| c.client_id).collect();
    assert_eq!(left, ["paired", "talker"]);
}

#[test]
fn a_keep_alive_of_zero_is_clamped_to_the_default_max_keep_alive() {
    let mut cfg = GatewayConfig::default();
    cfg.clients
        .registry
        .insert("lazy".into(), ClientEntry::default());
    let max = cfg.max_keep_alive.expect("a default clamp");
    let supervised = cfg.tolerance.supervise(max);
    let mut h = Harness::new(cfg);
    h.connect(&peer(1), "lazy", true, 0);
    h.advance(supervised - Duration::from_millis(1));
    assert!(h.gw.clients().iter().any(|c| c.state == "active"));
    h.advance(Duration::from_millis(1));
    assert!(h.has_event(|e| matches!(
        e,
        GatewayEvent::ClientLost {
            reason: LostReason::KeepAliveExpired,
            ..
        }
    )));
}

// ----- 4. sessionless publishes -----

#[test]
fn the_long_topic_form_and_retained_sessionless_publishes_are_off_by_default() {
    let mut cfg = GatewayConfig::default();
    cfg.predefined.global.insert(1, "site/status".into());
    let mut h = Harness::new(cfg);
    let s = peer(42);
    // Long-topic form: TopicIdType 0b00, TopicId = 5, data = "hello" + "x".
    h.raw(
        &s,
        &[
            0x0D, 0x0C, 0x60, 0x00, 0x05, 0x00, 0x00, b'h', b'e', b'l', b'l', b'o', b'x',
        ][..],
    );
    h.raw(&s, &minus1(TopicRef::Predefined(1), true));
    h.raw(&s, &minus1(TopicRef::Predefined(1), false));
    assert_eq!(publish_topics(&h.take_cmds()), ["site/status"]);
    assert_eq!(dropped(&h, DropReason::RetainNotAllowed), 1);
    assert_eq!(dropped(&h, DropReason::QosMinus1Rejected), 1);
}

#[test]
fn with_registered_only_sessionless_publishes_come_only_from_pinned_or_listed_senders() {
    let mut cfg = registered_only(&[("meter", pin_to([10, 0, 0, 5]))]);
    if let Some(e) = cfg.clients.registry.get_mut("meter") {
        e.publish = Some(vec!["meters/#".into()]);
    }
    cfg.qos_minus1.long_topic_form = true;
    cfg.predefined.global.insert(1, "meters/1".into());
    cfg.predefined.global.insert(2, "site/door".into());
    cfg.qos_minus1.allow = None;
    let mut h = Harness::new(cfg.clone());
    let stranger = peer(66);
    h.raw(&stranger, &minus1(TopicRef::Predefined(1), false));
    h.raw(&stranger, &minus1(TopicRef::Short(*b"ab"), false));
    h.raw(
        &stranger,
        &[
            0x0B, 0x0C, 0x60, 0x00, 0x02, 0x00, 0x00, b'a', b'b', b'x', b'y',
        ][..],
    );
    assert!(publish_topics(&h.take_cmds()).is_empty());
    assert_eq!(dropped(&h, DropReason::NotRegistered), 3);
    // The pinned meter publishes within its allowed topics only.
    let meter = peer(5);
    h.raw(&meter, &minus1(TopicRef::Predefined(1), false));
    h.raw(&meter, &minus1(TopicRef::Predefined(2), false));
    assert_eq!(publish_topics(&h.take_cmds()), ["meters/1"]);
    assert_eq!(dropped(&h, DropReason::TopicNotAllowed), 1);
    // An address the operator lists publishes anywhere.
    cfg.qos_minus1.allow = Some(vec![[10, 0, 0, 66].into()]);
    let mut h = Harness::new(cfg);
    h.raw(&stranger, &minus1(TopicRef::Predefined(2), false));
    assert_eq!(publish_topics(&h.take_cmds()), ["site/door"]);
}

// ----- 7. pairing that cannot be saved -----

#[test]
fn a_pairing_whose_registry_write_fails_is_not_admitted() {
    let mut h = Harness::new(registered_only(&[]));
    h.gw.open_pairing(h.now, Duration::from_secs(120));
    let mote = peer(3);
    h.raw(&mote, &connect("newcomer", false, true, 60));
    assert!(h.has_event(|e| matches!(e, GatewayEvent::ClientPaired { .. })));
    // A retransmitted CONNECT while the write is pending is not paired twice.
    h.clear();
    h.raw(&mote, &connect("newcomer", false, true, 60));
    assert!(!h.has_event(|e| matches!(e, GatewayEvent::ClientPaired { .. })));
    h.pairing_saved("newcomer", false);
    h.expect(&mote, &[connack(ReturnCode::Congestion)]);
    assert_eq!(opens(&h.take_cmds()), 0);
    assert_eq!(dropped(&h, DropReason::PairingNotSaved), 1);
    assert!(h.gw.clients().is_empty());
    // Not in the registry: refused once the window has closed.
    h.advance(Duration::from_secs(121));
    h.clear();
    h.raw(&mote, &connect("newcomer", false, true, 60));
    h.expect(&mote, &[connack(ReturnCode::NotSupported)]);
}

// ----- 8. SEARCHGW floods -----

#[test]
fn gwinfo_answers_are_rate_limited_per_source_and_overall() {
    let mut h = Harness::new(GatewayConfig {
        discovery: Some(crate::core::config::DiscoveryConfig {
            max_gwinfo_delay: Duration::ZERO,
            ..Default::default()
        }),
        ..Default::default()
    });
    h.clear();
    // One source, 1 000 searches in one second.
    let flooder = peer(66);
    for _ in 0..1000 {
        h.recv(&flooder, Packet::SearchGw { radius: 0 });
        h.advance(Duration::from_millis(1));
    }
    let unicast = h.sent_to(&flooder).len();
    assert!(unicast <= 5, "{unicast} GWINFO to one source in a second");
    assert!(h.multicast.len() <= 1, "{}", h.multicast.len());
    // 1 000 sources in one second.
    h.clear();
    h.advance(Duration::from_secs(5));
    for n in 0..1000u32 {
        h.recv(
            &udp([10, 8, (n / 250) as u8, (n % 250) as u8], 4000),
            Packet::SearchGw { radius: 0 },
        );
        h.advance(Duration::from_millis(1));
    }
    assert!(h.sent.len() <= 30, "{} GWINFO in a second", h.sent.len());
    assert!(h.multicast.len() <= 1, "{}", h.multicast.len());
    // A lone searcher later is answered.
    h.advance(Duration::from_secs(5));
    h.clear();
    h.recv(&peer(9), Packet::SearchGw { radius: 0 });
    h.advance(Duration::from_millis(1));
    assert_eq!(h.sent_to(&peer(9)).len(), 1);
    assert_eq!(h.multicast.len(), 1);
}

#[test]
fn the_session_table_never_holds_more_than_max_clients() {
    let mut h = Harness::new(GatewayConfig {
        max_clients: 4,
        ..Default::default()
    });
    // Four persistent sessions, two of them then remembered after DISCONNECT.
    for i in 1..=4u8 {
        h.connect(&peer(i), &format!("m{i}"), false, 600);
    }
    for i in 1..=2u8 {
        h.recv(&peer(i), Packet::Disconnect { duration: None });
    }
    // Newcomers take the places of the remembered sessions, then are refused.
    for i in 5..=7u8 {
        h.raw(&peer(i), &connect(&format!("m{i}"), false, false, 600));
        if opens(&h.cmds) == 1 {
            let link = h.opened_link();
            h.cmds.clear();
            h.upstream(crate::core::upstream::UpstreamEvent::LinkUp {
                link,
                session_present: false,
                lost: vec![],
            });
        }
        assert!(
            h.gw.clients().len() <= 4,
            "{} sessions",
            h.gw.clients().len()
        );
    }
    let ids: Vec<String> = h.gw.clients().into_iter().map(|c| c.client_id).collect();
    assert_eq!(ids, ["m3", "m4", "m5", "m6"]);
    assert!(
        h.sent_to(&peer(7))
            .contains(&encode(&connack(ReturnCode::Congestion)))
    );
}
