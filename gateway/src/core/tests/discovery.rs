//! Discovery: ADVERTISE schedule gated on upstream health; SEARCHGW → GWINFO.

use std::time::Duration;

use sn_codec::Packet;

use super::harness::{Harness, encode, node, peer};
use crate::core::addr::ListenerId;
use crate::core::config::{DiscoveryConfig, GatewayConfig};
use crate::core::upstream::{LinkId, UpstreamEvent};

fn discovery_cfg() -> GatewayConfig {
    GatewayConfig {
        gateway_id: 7,
        discovery: Some(DiscoveryConfig {
            advertise_interval: Duration::from_secs(900),
            max_gwinfo_ttl: 8,
            max_gwinfo_delay: Duration::from_millis(200),
        }),
        ..Default::default()
    }
}

fn advertise() -> Vec<u8> {
    encode(&Packet::Advertise {
        gw_id: 7,
        duration: 900,
    })
}

#[test]
fn the_first_advertise_goes_out_as_soon_as_the_upstream_is_up_then_every_interval() {
    let mut h = Harness::new(discovery_cfg());
    // Harness::new brought the gateway link up and cleared; bring it down and up to observe.
    h.upstream(UpstreamEvent::LinkDown {
        link: LinkId::GATEWAY,
        reason: "x".into(),
    });
    h.clear();
    h.advance(Duration::from_secs(2000));
    assert!(
        h.multicast.is_empty(),
        "no ADVERTISE while the upstream is down"
    );
    h.upstream(UpstreamEvent::LinkUp {
        link: LinkId::GATEWAY,
        session_present: false,
        lost: vec![],
    });
    assert_eq!(
        h.multicast,
        vec![(None, None, advertise())],
        "at once, not one interval later"
    );
    h.clear();
    h.advance(Duration::from_secs(899));
    assert!(h.multicast.is_empty());
    h.advance(Duration::from_secs(1));
    assert_eq!(h.multicast, vec![(None, None, advertise())]);
}

#[test]
fn searchgw_is_answered_unicast_and_on_the_group_with_the_radius_as_ttl() {
    let mut h = Harness::new(discovery_cfg());
    h.clear();
    let a = peer(1);
    h.recv(&a, Packet::SearchGw { radius: 3 });
    h.advance(Duration::from_millis(200));
    h.expect(
        &a,
        &[Packet::GwInfo {
            gw_id: 7,
            gw_addr: &[],
        }],
    );
    assert_eq!(
        h.multicast,
        vec![(
            Some(ListenerId(0)),
            Some(3),
            encode(&Packet::GwInfo {
                gw_id: 7,
                gw_addr: &[]
            })
        )]
    );
    h.clear();
    // (At most one multicast GWINFO a second.)
    h.advance(Duration::from_secs(1));
    // Radius 0 = the whole network: the largest configured TTL.
    h.recv(&a, Packet::SearchGw { radius: 0 });
    h.recv(&a, Packet::SearchGw { radius: 0 });
    h.advance(Duration::from_millis(200));
    assert_eq!(
        h.sent_to(&a).len(),
        1,
        "a repeated SEARCHGW before the answer is answered once"
    );
    assert_eq!(h.multicast[0].1, Some(8));
}

#[test]
fn searchgw_through_a_forwarder_gets_an_encapsulated_unicast_gwinfo_only() {
    let mut h = Harness::new(discovery_cfg());
    h.clear();
    let n = node(&[0xAB]);
    h.recv(&n, Packet::SearchGw { radius: 1 });
    h.advance(Duration::from_millis(200));
    h.expect(
        &n,
        &[Packet::GwInfo {
            gw_id: 7,
            gw_addr: &[],
        }],
    );
    assert!(h.multicast.is_empty());
}

#[test]
fn searchgw_is_not_answered_while_the_upstream_is_down() {
    let mut h = Harness::new(discovery_cfg());
    h.upstream(UpstreamEvent::LinkDown {
        link: LinkId::GATEWAY,
        reason: "x".into(),
    });
    h.clear();
    h.recv(&peer(1), Packet::SearchGw { radius: 1 });
    h.advance(Duration::from_secs(1));
    h.expect_silence();
    assert!(h.multicast.is_empty());
}
