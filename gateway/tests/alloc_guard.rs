//! Guard for the hot path, deterministic instead of timed: heap allocations per message through
//! the core. Decoding and routing allocate nothing; a QoS 0 / QoS −1 publish allocates only what
//! it hands to the upstream connector (the topic string and the payload). If this fails, a
//! change added per-message allocations: measure it (BENCHMARKS.md) before raising a bound.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;

use gateway::core::Gateway;
use gateway::core::addr::{ListenerId, PeerAddr};
use gateway::core::config::{GatewayConfig, UpstreamMode};
use gateway::core::upstream::{LinkId, UpstreamCmd, UpstreamEvent};
use sn_codec::{Connect, Instant, Packet, Publish, QoS, TopicRef};

const MESSAGES: u64 = 1000;

fn encode(p: &Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; p.encoded_len().unwrap()];
    let n = p.encode(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn peer(n: u8) -> PeerAddr {
    PeerAddr::Udp {
        listener: ListenerId(0),
        addr: SocketAddr::from(([10, 0, 0, n], 5000)),
    }
}

/// A gateway with predefined topic 1 and client `mote` connected at `peer(1)`, outputs drained.
fn connected_gateway() -> (Gateway, Vec<u8>) {
    connected_gateway_in(UpstreamMode::Transparent)
}

/// The same in the given upstream mode.
fn connected_gateway_in(mode: UpstreamMode) -> (Gateway, Vec<u8>) {
    let mut cfg = GatewayConfig::default();
    cfg.upstream.mode = mode;
    cfg.predefined
        .global
        .insert(1, "site/sensors/temperature".into());
    let now = Instant::from_millis(1000);
    let mut gw = Gateway::new(cfg, now, 1);
    let mut buf = vec![0u8; 70_000];
    gw.handle_upstream(
        now,
        UpstreamEvent::LinkUp {
            link: LinkId::GATEWAY,
            session_present: false,
            lost: vec![],
        },
    );
    let c = Packet::Connect(Connect {
        will: false,
        clean_session: true,
        duration: 60,
        client_id: b"mote",
    });
    gw.handle_datagram(now, peer(1), &encode(&c));
    let mut link = None;
    while let Some(cmd) = gw.poll_upstream() {
        if let UpstreamCmd::Open { link: l, .. } = cmd {
            link = Some(l);
        }
    }
    // Aggregating mode opens no link of the client's own.
    if let Some(link) = link {
        gw.handle_upstream(
            now,
            UpstreamEvent::LinkUp {
                link,
                session_present: false,
                lost: vec![],
            },
        );
    }
    drain(&mut gw, &mut buf);
    (gw, buf)
}

fn drain(gw: &mut Gateway, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while gw.poll_transmit(buf).is_some() {
        n += 1;
    }
    while gw.poll_upstream().is_some() {
        n += 1;
    }
    while gw.poll_event().is_some() {
        n += 1;
    }
    n
}

/// Feeds `datagram` from `from` MESSAGES times (after a warm-up), draining after each input
/// like the shell does; returns allocations per message.
fn allocations_per_message(
    gw: &mut Gateway,
    buf: &mut [u8],
    from: &PeerAddr,
    datagram: &[u8],
) -> f64 {
    let now = Instant::from_millis(2000);
    for _ in 0..10 {
        gw.handle_datagram(now, from.clone(), datagram);
        drain(gw, buf);
    }
    let info = allocation_counter::measure(|| {
        for _ in 0..MESSAGES {
            gw.handle_datagram(now, from.clone(), datagram);
            drain(gw, buf);
        }
    });
    let per_message = info.count_total as f64 / MESSAGES as f64;
    // Shown with --nocapture, to compare the figures across changes.
    eprintln!(
        "{per_message:.2} allocations per message ({} bytes)",
        datagram.len()
    );
    per_message
}

fn publish(qos: QoS) -> Vec<u8> {
    encode(&Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicRef::Predefined(1),
        msg_id: 0,
        data: &[0x42; 32],
    }))
}

#[test]
fn decoding_allocates_nothing() {
    let datagram = publish(QoS::Zero);
    let info = allocation_counter::measure(|| {
        for _ in 0..MESSAGES {
            std::hint::black_box(Packet::decode(std::hint::black_box(&datagram)).unwrap());
        }
    });
    assert_eq!(info.count_total, 0);
}

#[test]
fn a_qos0_publish_allocates_only_the_topic_and_the_payload_it_hands_upstream() {
    let (mut gw, mut buf) = connected_gateway();
    let per_message = allocations_per_message(&mut gw, &mut buf, &peer(1), &publish(QoS::Zero));
    assert!(
        per_message <= 2.0,
        "{per_message} allocations per QoS 0 publish"
    );
}

#[test]
fn a_qos0_publish_in_aggregating_mode_allocates_no_more() {
    let (mut gw, mut buf) = connected_gateway_in(UpstreamMode::Aggregating);
    // The measured path is the real one: the publish goes up on the shared link.
    gw.handle_datagram(Instant::from_millis(1500), peer(1), &publish(QoS::Zero));
    let up = gw.poll_upstream();
    assert!(
        matches!(
            up,
            Some(UpstreamCmd::Publish {
                link: LinkId::GATEWAY,
                ..
            })
        ),
        "{up:?}"
    );
    drain(&mut gw, &mut buf);
    let per_message = allocations_per_message(&mut gw, &mut buf, &peer(1), &publish(QoS::Zero));
    assert!(
        per_message <= 2.0,
        "{per_message} allocations per QoS 0 publish in aggregating mode"
    );
}

#[test]
fn a_qos_minus1_publish_allocates_only_the_topic_and_the_payload_it_hands_upstream() {
    let (mut gw, mut buf) = connected_gateway();
    let per_message = allocations_per_message(&mut gw, &mut buf, &peer(9), &publish(QoS::MinusOne));
    assert!(
        per_message <= 2.0,
        "{per_message} allocations per QoS -1 publish"
    );
}

#[test]
fn malformed_datagrams_and_pings_allocate_nothing() {
    let (mut gw, mut buf) = connected_gateway();
    let ping = encode(&Packet::Pingreq { client_id: None });
    assert_eq!(
        allocations_per_message(&mut gw, &mut buf, &peer(1), &ping),
        0.0
    );
    // Dropped datagrams are counted and reported as events, which carry the peer address.
    let junk = [0x05, 0x0C, 0x00];
    let per_message = allocations_per_message(&mut gw, &mut buf, &peer(1), &junk);
    assert!(
        per_message <= 0.0,
        "{per_message} allocations per malformed datagram"
    );
}
