//! Scenario tests of the core in simulated time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::Duration;

use sn_codec::{Encapsulated, Instant, Packet, encode_encapsulated};

use super::*;

const XBEE_A: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D];
const XBEE_B: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2E];

fn gw() -> SocketAddr {
    "127.0.0.1:10000".parse().unwrap()
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn cfg() -> ForwarderConfig {
    ForwarderConfig {
        ports: vec![WnidScheme::LinkAddress, WnidScheme::Fixed(vec![0x01])],
        gateway: Some(gw()),
        node_idle_timeout: Duration::from_secs(60),
        ..ForwarderConfig::default()
    }
}

fn enc(p: &Packet<'_>) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    let n = p.encode(&mut b).unwrap();
    b.truncate(n);
    b
}

fn wrap(radius: u8, wnid: &[u8], p: &Packet<'_>) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    let n = encode_encapsulated(radius, wnid, p, &mut b).unwrap();
    b.truncate(n);
    b
}

/// Drains every output: (transmit, bytes).
fn drain(f: &mut Forwarder) -> Vec<(Transmit, Vec<u8>)> {
    let mut buf = vec![0u8; 2048];
    let mut out = vec![];
    while let Some(t) = f.poll_transmit(&mut buf) {
        let len = match &t {
            Transmit::ToGateway { len, .. }
            | Transmit::ToDiscoveryGroup { len }
            | Transmit::ToRadio { len, .. } => *len,
        };
        out.push((t, buf[..len].to_vec()));
    }
    out
}

fn events(f: &mut Forwarder) -> Vec<ForwarderEvent> {
    std::iter::from_fn(|| f.poll_event()).collect()
}

fn link(a: [u8; 8]) -> NodeAddr {
    NodeAddr::Link(a.to_vec())
}

#[test]
fn a_node_frame_is_wrapped_with_its_64_bit_address_as_wnid() {
    let mut f = Forwarder::new(cfg(), at(0));
    let connect = enc(&Packet::Pingreq { client_id: None });
    f.handle_radio_frame(at(5), PortId(0), &link(XBEE_A), &connect);
    let out = drain(&mut f);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, Transmit::ToGateway { to: gw(), len: 13 });
    // Hand-built spec layout: Len 0x0B, 0xFE, Ctrl 0, WNID (8), inner PINGREQ 02 16.
    let mut expected = vec![0x0B, 0xFE, 0x00];
    expected.extend_from_slice(&XBEE_A);
    expected.extend_from_slice(&[0x02, 0x16]);
    assert_eq!(out[0].1, expected);
    assert_eq!(
        events(&mut f),
        vec![ForwarderEvent::NodeAdded {
            port: PortId(0),
            wnid: XBEE_A.to_vec()
        }]
    );
}

#[test]
fn a_point_to_point_port_uses_its_configured_wnid() {
    let mut f = Forwarder::new(cfg(), at(0));
    f.handle_radio_frame(at(0), PortId(1), &NodeAddr::PointToPoint, &[0x02, 0x16]);
    let out = drain(&mut f);
    assert_eq!(out[0].1, vec![0x04, 0xFE, 0x00, 0x01, 0x02, 0x16]);
}

#[test]
fn unicast_from_the_gateway_goes_to_the_port_and_address_the_node_was_heard_on() {
    let mut f = Forwarder::new(cfg(), at(0));
    f.handle_radio_frame(at(0), PortId(0), &link(XBEE_A), &[0x02, 0x16]);
    f.handle_radio_frame(at(0), PortId(0), &link(XBEE_B), &[0x02, 0x16]);
    f.handle_radio_frame(at(0), PortId(1), &NodeAddr::PointToPoint, &[0x02, 0x16]);
    drain(&mut f);
    let connack = Packet::Connack {
        return_code: sn_codec::ReturnCode::Accepted,
    };
    f.handle_gateway_datagram(at(10), gw(), &wrap(0, &XBEE_B, &connack));
    f.handle_gateway_datagram(at(10), gw(), &wrap(0, &[0x01], &Packet::Pingresp));
    let out = drain(&mut f);
    assert_eq!(
        out,
        vec![
            (
                Transmit::ToRadio {
                    port: PortId(0),
                    to: RadioDest::Unicast(link(XBEE_B)),
                    len: 3
                },
                enc(&connack)
            ),
            (
                Transmit::ToRadio {
                    port: PortId(1),
                    to: RadioDest::Unicast(NodeAddr::PointToPoint),
                    len: 2
                },
                vec![0x02, 0x17]
            ),
        ]
    );
}

#[test]
fn an_empty_wnid_is_broadcast_on_every_port_with_the_ctrl_radius() {
    let mut f = Forwarder::new(cfg(), at(0));
    // Ctrl = 0xFE: reserved bits ignored, radius 2.
    let mut d = wrap(0, &[], &Packet::Pingresp);
    d[2] = 0xFE;
    f.handle_gateway_datagram(at(0), gw(), &d);
    let out = drain(&mut f);
    let dests: Vec<_> = out.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(
        dests,
        vec![
            Transmit::ToRadio {
                port: PortId(0),
                to: RadioDest::Broadcast { radius: 2 },
                len: 2
            },
            Transmit::ToRadio {
                port: PortId(1),
                to: RadioDest::Broadcast { radius: 2 },
                len: 2
            },
        ]
    );
}

#[test]
fn a_message_for_an_unknown_or_expired_node_is_dropped() {
    let mut f = Forwarder::new(cfg(), at(0));
    f.handle_radio_frame(at(0), PortId(0), &link(XBEE_A), &[0x02, 0x16]);
    drain(&mut f);
    events(&mut f);
    assert_eq!(f.poll_timeout(), Some(at(60_000)));
    f.handle_timeout(at(59_999));
    assert_eq!(f.node_count(), 1);
    f.handle_timeout(at(60_000));
    assert_eq!(f.node_count(), 0);
    assert_eq!(
        events(&mut f),
        vec![ForwarderEvent::NodeExpired {
            wnid: XBEE_A.to_vec()
        }]
    );
    f.handle_gateway_datagram(at(60_001), gw(), &wrap(0, &XBEE_A, &Packet::Pingresp));
    assert!(drain(&mut f).is_empty());
    assert_eq!(
        events(&mut f),
        vec![ForwarderEvent::Dropped {
            reason: DropReason::UnknownNode,
            port: None
        }]
    );
    assert_eq!(f.poll_timeout(), None);
}

#[test]
fn the_node_table_is_bounded_and_evicts_the_least_recently_heard() {
    let mut c = cfg();
    c.max_nodes = 2;
    let mut f = Forwarder::new(c, at(0));
    for (i, a) in [[1u8; 8], [2; 8], [3; 8]].into_iter().enumerate() {
        f.handle_radio_frame(at(i as u64), PortId(0), &link(a), &[0x02, 0x16]);
    }
    assert_eq!(f.node_count(), 2);
    let ev = events(&mut f);
    assert!(ev.contains(&ForwarderEvent::NodeEvicted { wnid: vec![1; 8] }));
    let wnids: Vec<_> = f.nodes().map(|(w, _)| w.to_vec()).collect();
    assert_eq!(wnids, vec![vec![2; 8], vec![3; 8]]);
}

#[test]
fn malformed_datagrams_from_the_gateway_are_dropped_without_output() {
    let mut f = Forwarder::new(cfg(), at(0));
    f.handle_radio_frame(at(0), PortId(0), &link(XBEE_A), &[0x02, 0x16]);
    drain(&mut f);
    events(&mut f);
    let mut nested = vec![0x0B, 0xFE, 0x00];
    nested.extend_from_slice(&XBEE_A);
    nested.extend_from_slice(&[0x04, 0xFE, 0x00, 0x01]);
    let mut bad_inner_len = vec![0x0B, 0xFE, 0x00];
    bad_inner_len.extend_from_slice(&XBEE_A);
    bad_inner_len.extend_from_slice(&[0x05, 0x17]);
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x01],
        vec![0x02, 0xFE],
        vec![0xFF, 0xFE, 0x00, 0x01, 0x02, 0x17],
        vec![0x01, 0xFE, 0x00],
        nested,
        bad_inner_len,
        vec![0x02, 0x17],
    ];
    for d in &cases {
        f.handle_gateway_datagram(at(1), gw(), d);
    }
    assert!(drain(&mut f).is_empty());
    let reasons: Vec<_> = events(&mut f)
        .into_iter()
        .map(|e| match e {
            ForwarderEvent::Dropped { reason, .. } => reason,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(reasons.len(), cases.len());
    assert_eq!(reasons.last(), Some(&DropReason::NotEncapsulated));
}

#[test]
fn encapsulated_datagrams_from_another_address_are_refused() {
    let mut f = Forwarder::new(cfg(), at(0));
    f.handle_radio_frame(at(0), PortId(0), &link(XBEE_A), &[0x02, 0x16]);
    drain(&mut f);
    events(&mut f);
    let other: SocketAddr = "127.0.0.1:10001".parse().unwrap();
    f.handle_gateway_datagram(at(1), other, &wrap(0, &XBEE_A, &Packet::Pingresp));
    assert!(drain(&mut f).is_empty());
    assert_eq!(
        events(&mut f),
        vec![ForwarderEvent::Dropped {
            reason: DropReason::ForeignSource,
            port: None
        }]
    );
}

#[test]
fn garbage_from_a_node_is_dropped_and_does_not_create_a_node() {
    let mut f = Forwarder::new(cfg(), at(0));
    for bytes in [
        &[][..],
        &[0x05, 0x16],
        &[0x01, 0x00, 0x03],
        &[0x03, 0xFE, 0x00],
    ] {
        f.handle_radio_frame(at(0), PortId(0), &link(XBEE_A), bytes);
    }
    f.handle_radio_frame(at(0), PortId(0), &NodeAddr::PointToPoint, &[0x02, 0x16]);
    f.handle_radio_frame(at(0), PortId(7), &link(XBEE_A), &[0x02, 0x16]);
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.node_count(), 0);
    assert_eq!(events(&mut f).len(), 6);
}

#[test]
fn searchgw_from_a_node_is_forwarded_to_the_gateway_encapsulated() {
    let mut f = Forwarder::new(cfg(), at(0));
    let search = enc(&Packet::SearchGw { radius: 1 });
    f.handle_radio_frame(at(0), PortId(0), &link(XBEE_A), &search);
    let out = drain(&mut f);
    let e = Encapsulated::decode(&out[0].1).unwrap();
    assert_eq!((e.wnid, e.inner), (&XBEE_A[..], &search[..]));
    // The gateway's encapsulated GWINFO goes back to that node only.
    let gwinfo = Packet::GwInfo {
        gw_id: 1,
        gw_addr: &[],
    };
    f.handle_gateway_datagram(at(5), gw(), &wrap(0, &XBEE_A, &gwinfo));
    let out = drain(&mut f);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].0,
        Transmit::ToRadio {
            port: PortId(0),
            to: RadioDest::Unicast(link(XBEE_A)),
            len: 3
        }
    );
}

#[test]
fn advertise_and_gwinfo_from_the_gateway_are_relayed_as_broadcasts_once() {
    let mut c = cfg();
    c.relay_radius = 1;
    let mut f = Forwarder::new(c, at(0));
    let adv = enc(&Packet::Advertise {
        gw_id: 1,
        duration: 900,
    });
    f.handle_gateway_datagram(at(0), gw(), &adv);
    // Heard again on the group 10 ms later: not relayed twice.
    f.handle_gateway_datagram(at(10), gw(), &adv);
    let out = drain(&mut f);
    assert_eq!(out.len(), 2, "one broadcast per port");
    assert!(out.iter().all(|(t, b)| matches!(
        t,
        Transmit::ToRadio {
            to: RadioDest::Broadcast { radius: 1 },
            ..
        }
    ) && *b == adv));
    f.handle_gateway_datagram(at(2_000), gw(), &adv);
    assert_eq!(drain(&mut f).len(), 2);
    let info = enc(&Packet::GwInfo {
        gw_id: 1,
        gw_addr: &[],
    });
    f.handle_gateway_datagram(at(2_001), gw(), &info);
    assert_eq!(drain(&mut f).len(), 2);

    let mut c = cfg();
    c.relay_advertise = false;
    let mut quiet = Forwarder::new(c, at(0));
    quiet.handle_gateway_datagram(at(0), gw(), &adv);
    assert!(drain(&mut quiet).is_empty());
}

#[test]
fn without_a_gateway_the_forwarder_searches_with_backoff_and_adopts_the_advertiser() {
    let mut c = cfg();
    c.gateway = None;
    c.relay_advertise = false;
    c.discovery.search_initial = Duration::from_secs(1);
    c.discovery.search_max = Duration::from_secs(4);
    let mut f = Forwarder::new(c, at(0));
    assert_eq!(f.poll_timeout(), Some(at(0)));
    let mut searches = vec![];
    let mut now = at(0);
    for _ in 0..5 {
        f.handle_timeout(now);
        for (t, b) in drain(&mut f) {
            assert_eq!(t, Transmit::ToDiscoveryGroup { len: 3 });
            assert_eq!(b, vec![0x03, 0x01, 0x01]);
            searches.push(now.as_millis());
        }
        now = f.poll_timeout().unwrap();
    }
    assert_eq!(searches, vec![0, 1_000, 3_000, 7_000, 11_000]);

    // A node's frame meanwhile is dropped (no gateway), its SEARCHGW triggers a search now.
    f.handle_radio_frame(at(11_500), PortId(0), &link(XBEE_A), &[0x03, 0x01, 0x00]);
    let out = drain(&mut f);
    assert_eq!(
        out,
        vec![(
            Transmit::ToDiscoveryGroup { len: 3 },
            vec![0x03, 0x01, 0x01]
        )]
    );
    assert!(events(&mut f).contains(&ForwarderEvent::Dropped {
        reason: DropReason::NoGateway,
        port: Some(PortId(0))
    }));

    let adv = enc(&Packet::Advertise {
        gw_id: 1,
        duration: 10,
    });
    f.handle_gateway_datagram(at(12_000), gw(), &adv);
    assert_eq!(f.gateway(), Some(gw()));
    assert!(events(&mut f).contains(&ForwarderEvent::GatewayFound { addr: gw() }));
    f.handle_radio_frame(at(12_001), PortId(0), &link(XBEE_A), &[0x02, 0x16]);
    assert!(matches!(drain(&mut f)[0].0, Transmit::ToGateway { to, .. } if to == gw()));
    // Three silent ADVERTISE periods later the gateway is lost and the search resumes.
    assert_eq!(f.poll_timeout(), Some(at(42_000)));
    f.handle_timeout(at(42_000));
    assert_eq!(f.gateway(), None);
    assert!(events(&mut f).contains(&ForwarderEvent::GatewayLost { addr: gw() }));
    assert_eq!(drain(&mut f).len(), 1, "SEARCHGW again");
}

#[test]
fn a_gwinfo_answer_names_the_gateway_when_discovering() {
    let mut c = cfg();
    c.gateway = None;
    let mut f = Forwarder::new(c, at(0));
    f.handle_timeout(at(0));
    drain(&mut f);
    let info = enc(&Packet::GwInfo {
        gw_id: 3,
        gw_addr: &[],
    });
    f.handle_gateway_datagram(at(100), gw(), &info);
    assert_eq!(f.gateway(), Some(gw()));
    // No lifetime from a GWINFO: no deadline besides node expiry.
    assert_eq!(f.poll_timeout(), None);
}

#[test]
fn a_configured_gateway_is_never_replaced_by_discovery() {
    let mut f = Forwarder::new(cfg(), at(0));
    let other: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let adv = enc(&Packet::Advertise {
        gw_id: 9,
        duration: 1,
    });
    f.handle_gateway_datagram(at(0), other, &adv);
    assert_eq!(f.gateway(), Some(gw()));
    f.handle_timeout(at(100_000));
    assert_eq!(f.gateway(), Some(gw()));
}

#[test]
fn the_queue_is_bounded() {
    let mut c = cfg();
    c.max_queue = 2;
    let mut f = Forwarder::new(c, at(0));
    for _ in 0..3 {
        f.handle_radio_frame(at(0), PortId(1), &NodeAddr::PointToPoint, &[0x02, 0x16]);
    }
    assert_eq!(drain(&mut f).len(), 2);
    assert!(events(&mut f).contains(&ForwarderEvent::Dropped {
        reason: DropReason::QueueFull,
        port: Some(PortId(1))
    }));
}

#[test]
fn long_form_inner_messages_pass_unchanged() {
    let mut f = Forwarder::new(cfg(), at(0));
    let mut long = vec![0x01, 0x01, 0x04, 0x0C];
    long.resize(260, 0x41);
    f.handle_radio_frame(at(0), PortId(1), &NodeAddr::PointToPoint, &long);
    let out = drain(&mut f);
    let e = Encapsulated::decode(&out[0].1).unwrap();
    assert_eq!(e.inner, &long[..]);
    // And a too-small buffer drops instead of truncating.
    f.handle_radio_frame(at(0), PortId(1), &NodeAddr::PointToPoint, &long);
    let mut small = [0u8; 16];
    assert_eq!(f.poll_transmit(&mut small), None);
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_input_never_panics_and_outputs_stay_valid(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..20),
            datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..20),
        ) {
            let mut f = Forwarder::new(cfg(), at(0));
            for (i, b) in frames.iter().enumerate() {
                f.handle_radio_frame(at(i as u64), PortId((i % 3) as u8), &link(XBEE_A), b);
            }
            for (i, d) in datagrams.iter().enumerate() {
                f.handle_gateway_datagram(at(100 + i as u64), gw(), d);
            }
            for (t, b) in drain(&mut f) {
                match t {
                    Transmit::ToGateway { .. } => {
                        let e = Encapsulated::decode(&b).unwrap();
                        prop_assert!(e.wnid == &XBEE_A[..] || e.wnid == &[0x01][..]);
                    }
                    Transmit::ToRadio { .. } => prop_assert!(b.len() >= 2),
                    Transmit::ToDiscoveryGroup { .. } => {}
                }
            }
        }
    }
}
