//! Client policy: registered-only admission, pinned addresses, pairing window, allowed topics,
//! and a reload that keeps sessions.

use std::time::Duration;

use sn_codec::{Packet, Publish, QoS, ReturnCode, Subscribe, TopicRef};

use super::harness::{Harness, connect, peer};
use crate::core::config::{Admission, ClientEntry, ClientIdentity, GatewayConfig, Pin};
use crate::core::event::GatewayEvent;
use crate::core::upstream::{UpstreamCmd, UpstreamEvent};

fn registered_only() -> GatewayConfig {
    let mut cfg = GatewayConfig::default();
    cfg.clients.admission = Admission::RegisteredOnly;
    cfg.clients
        .registry
        .insert("known".into(), ClientEntry::default());
    cfg.clients.registry.insert(
        "pinned".into(),
        ClientEntry {
            pin: Some(Pin::Udp {
                ip: [10, 0, 0, 1].into(),
                port: None,
            }),
            ..Default::default()
        },
    );
    cfg
}

#[test]
fn registered_only_admits_known_clients_and_refuses_unknown_ones() {
    let mut h = Harness::new(registered_only());
    h.connect(&peer(1), "known", true, 60);
    h.raw(&peer(2), &connect("stranger", false, true, 60));
    h.expect(
        &peer(2),
        &[Packet::Connack {
            return_code: ReturnCode::NotSupported,
        }],
    );
    assert!(
        h.take_cmds().is_empty(),
        "no upstream session for a refused client"
    );
    assert!(h.has_event(
        |e| matches!(e, GatewayEvent::ConnectRefused { client_id, .. } if client_id == "stranger")
    ));
}

#[test]
fn a_pinned_client_may_connect_only_from_its_address() {
    let mut h = Harness::new(registered_only());
    h.raw(&peer(2), &connect("pinned", false, true, 60));
    h.expect(
        &peer(2),
        &[Packet::Connack {
            return_code: ReturnCode::NotSupported,
        }],
    );
    h.connect(&peer(1), "pinned", true, 60);
}

#[test]
fn the_pairing_window_admits_unknown_clients_once_and_reports_them() {
    let mut h = Harness::new(registered_only());
    h.gw.open_pairing(h.now, Duration::from_secs(120));
    h.raw(&peer(3), &connect("newcomer", false, true, 60));
    assert!(h.has_event(
        |e| matches!(e, GatewayEvent::ClientPaired { client_id, .. } if client_id == "newcomer")
    ));
    // Admitted only once the shell has written it to the registry file.
    assert!(
        h.take_cmds().is_empty(),
        "no upstream link before the entry is saved"
    );
    h.pairing_saved("newcomer", true);
    let link = h.opened_link();
    h.upstream(UpstreamEvent::LinkUp {
        link,
        session_present: false,
        lost: vec![],
    });
    h.expect(
        &peer(3),
        &[Packet::Connack {
            return_code: ReturnCode::Accepted,
        }],
    );
    h.advance(Duration::from_secs(121));
    assert_eq!(h.gw.pairing_until(h.now), None);
    // Paired clients stay admitted after the window; others are refused again.
    h.recv(&peer(3), Packet::Disconnect { duration: None });
    h.clear();
    h.connect(&peer(3), "newcomer", true, 60);
    h.raw(&peer(4), &connect("late", false, true, 60));
    h.expect(
        &peer(4),
        &[Packet::Connack {
            return_code: ReturnCode::NotSupported,
        }],
    );
}

#[test]
fn publishing_or_subscribing_outside_the_allowed_topics_is_rejected() {
    let mut cfg = GatewayConfig::default();
    cfg.predefined.global.insert(1, "site/other".into());
    cfg.predefined.global.insert(2, "mote/m1/data".into());
    cfg.clients.registry.insert(
        "m1".into(),
        ClientEntry {
            publish: Some(vec!["mote/m1/#".into()]),
            subscribe: Some(vec!["cmd/m1/+".into()]),
            ..Default::default()
        },
    );
    let mut h = Harness::new(cfg);
    let a = peer(1);
    h.connect(&a, "m1", true, 60);
    let publish = |id, msg_id| {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::One,
            retain: false,
            topic: TopicRef::Predefined(id),
            msg_id,
            data: b"x",
        })
    };
    h.recv(&a, publish(1, 1));
    h.expect(
        &a,
        &[Packet::Puback {
            topic_id: 1,
            msg_id: 1,
            return_code: ReturnCode::NotSupported,
        }],
    );
    h.recv(&a, publish(2, 2));
    h.expect_silence();
    assert_eq!(h.take_cmds().len(), 1, "the allowed topic goes upstream");
    let sub = |f: &'static [u8], msg_id| {
        Packet::Subscribe(Subscribe {
            dup: false,
            qos: QoS::Zero,
            msg_id,
            topic: TopicRef::Name(f),
        })
    };
    h.recv(&a, sub(b"cmd/#", 3));
    h.recv(&a, sub(b"cmd/m2/led", 4));
    h.expect(
        &a,
        &[
            Packet::Suback {
                qos: QoS::Zero,
                topic_id: 0,
                msg_id: 3,
                return_code: ReturnCode::NotSupported,
            },
            Packet::Suback {
                qos: QoS::Zero,
                topic_id: 0,
                msg_id: 4,
                return_code: ReturnCode::NotSupported,
            },
        ],
    );
    h.recv(&a, sub(b"cmd/m1/led", 5));
    assert_eq!(
        h.take_cmds().len(),
        1,
        "a filter inside the allowed one is subscribed"
    );
}

#[test]
fn a_reload_replaces_the_registry_without_dropping_sessions() {
    let mut h = Harness::new(GatewayConfig::default());
    let a = peer(1);
    h.connect(&a, "m1", true, 60);
    let mut new = registered_only();
    new.predefined.global.insert(9, "new/topic".into());
    h.gw.reload(&new);
    h.recv(&a, Packet::Pingreq { client_id: None });
    h.expect(&a, &[Packet::Pingresp]);
    h.recv(
        &a,
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::Zero,
            retain: false,
            topic: TopicRef::Predefined(9),
            msg_id: 0,
            data: b"x",
        }),
    );
    h.expect_silence();
    assert_eq!(h.take_cmds().len(), 1, "the reloaded predefined id works");
    h.raw(&peer(2), &connect("stranger", false, true, 60));
    h.expect(
        &peer(2),
        &[Packet::Connack {
            return_code: ReturnCode::NotSupported,
        }],
    );
}

#[test]
fn a_reload_replaces_the_tls_identities_of_links_opened_after_it() {
    let identity = |name: &str| ClientIdentity {
        cert: format!("certs/{name}.pem").into(),
        key: format!("certs/{name}.key").into(),
    };
    // The link and the identity of the one `Open` command among `cmds`.
    let opened = |cmds: Vec<UpstreamCmd>| {
        let opens: Vec<_> = cmds
            .into_iter()
            .filter_map(|c| match c {
                UpstreamCmd::Open { link, identity, .. } => Some((link, identity)),
                _ => None,
            })
            .collect();
        assert_eq!(opens.len(), 1, "one Open command: {opens:?}");
        opens.into_iter().next().unwrap()
    };
    let opened_with = |cmds: Vec<UpstreamCmd>| opened(cmds).1;
    let mut cfg = GatewayConfig::default();
    cfg.upstream
        .per_client_identity
        .insert("m1".into(), identity("m1-old"));
    cfg.upstream
        .per_client_identity
        .insert("m3".into(), identity("m3"));
    let mut h = Harness::new(cfg.clone());
    let a = peer(1);
    h.raw(&a, &connect("m1", false, true, 60));
    let (link, first) = opened(h.take_cmds());
    assert_eq!(first, Some(identity("m1-old")));
    h.upstream(UpstreamEvent::LinkUp {
        link,
        session_present: false,
        lost: vec![],
    });
    h.clear();

    // The registry now gives m1 a new certificate, m2 one of its own, and m3 none.
    let mut new = cfg;
    new.upstream
        .per_client_identity
        .insert("m1".into(), identity("m1-new"));
    new.upstream
        .per_client_identity
        .insert("m2".into(), identity("m2"));
    new.upstream.per_client_identity.remove("m3");
    h.gw.reload(&new);

    // m1's open link is left alone; its next link uses the new identity.
    h.recv(&a, Packet::Pingreq { client_id: None });
    h.expect(&a, &[Packet::Pingresp]);
    assert!(
        h.take_cmds().is_empty(),
        "the reload leaves open links alone"
    );
    h.recv(&a, Packet::Disconnect { duration: None });
    h.expect(&a, &[Packet::Disconnect { duration: None }]);
    h.clear();
    h.raw(&a, &connect("m1", false, true, 60));
    assert_eq!(opened_with(h.take_cmds()), Some(identity("m1-new")));
    h.raw(&peer(2), &connect("m2", false, true, 60));
    assert_eq!(opened_with(h.take_cmds()), Some(identity("m2")));
    h.raw(&peer(3), &connect("m3", false, true, 60));
    assert_eq!(opened_with(h.take_cmds()), None);
}
