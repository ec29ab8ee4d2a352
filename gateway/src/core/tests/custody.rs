//! Gateway custody (`docs/storage.md`, "Custody"): a client's QoS 1/2 publish is acknowledged
//! once durable and forwarded on the gateway's link when the broker can be reached. The store
//! is the harness's in-memory map; `Harness::durable` plays its commit report.

use std::time::Duration;

use sn_codec::{Packet, Publish, QoS, ReturnCode, TopicRef};

use super::harness::{Harness, peer};
use crate::core::config::{CustodyConfig, CustodyMode, GatewayConfig};
use crate::core::event::GatewayEvent;
use crate::core::store::StoredMessage;
use crate::core::upstream::{LinkId, MqttQos, Token, UpstreamCmd, UpstreamEvent};

fn custody(max_messages: usize, queue_qos0: bool) -> GatewayConfig {
    let mut cfg = GatewayConfig {
        persist_sessions: true,
        custody: CustodyConfig {
            mode: CustodyMode::Gateway,
            max_messages,
            max_age: Some(Duration::from_secs(3600)),
            queue_qos0,
        },
        ..GatewayConfig::default()
    };
    cfg.predefined.global.insert(1, "site/a".into());
    cfg
}

fn publish(qos: QoS, msg_id: u16, data: &'static [u8]) -> Packet<'static> {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicRef::Predefined(1),
        msg_id,
        data,
    })
}

fn puback(msg_id: u16, return_code: ReturnCode) -> Packet<'static> {
    Packet::Puback {
        topic_id: 1,
        msg_id,
        return_code,
    }
}

fn broker_down(h: &mut Harness) {
    h.upstream(UpstreamEvent::LinkDown {
        link: LinkId::GATEWAY,
        reason: "test".into(),
    });
}

fn broker_up(h: &mut Harness, lost: Vec<Token>) {
    h.upstream(UpstreamEvent::LinkUp {
        link: LinkId::GATEWAY,
        session_present: true,
        lost,
    });
}

/// The publishes forwarded on the gateway's link since the last call: token and payload.
fn forwarded(h: &mut Harness) -> Vec<(Token, Vec<u8>)> {
    h.take_cmds()
        .into_iter()
        .filter_map(|c| match c {
            UpstreamCmd::Publish {
                link: LinkId::GATEWAY,
                token,
                topic,
                payload,
                ..
            } if topic == "site/a" => Some((token, payload.to_vec())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_qos1_publish_is_acknowledged_once_durable_and_forwarded_when_the_broker_returns() {
    let mut h = Harness::new(custody(100, false));
    let a = peer(1);
    h.connect(&a, "m1", true, 60);
    broker_down(&mut h);
    h.recv(&a, publish(QoS::One, 7, b"r1"));
    h.expect(&a, &[]);
    assert_eq!(h.held.len(), 1, "stored before it is acknowledged");
    h.durable();
    h.expect(&a, &[puback(7, ReturnCode::Accepted)]);
    assert!(
        forwarded(&mut h).is_empty(),
        "nothing goes while the broker is away"
    );

    broker_up(&mut h, vec![]);
    let sent = forwarded(&mut h);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, b"r1");
    h.upstream(UpstreamEvent::PublishDone {
        link: LinkId::GATEWAY,
        token: sent[0].0,
    });
    assert!(h.held.is_empty(), "deleted once the broker has it");
    let g = h.gw.gauges(h.now);
    assert_eq!(g.custody_messages, 0);
}

#[test]
fn held_messages_go_in_order_and_lost_ones_go_again() {
    let mut h = Harness::new(custody(100, false));
    let (a, b) = (peer(1), peer(2));
    h.connect(&a, "m1", true, 60);
    h.connect(&b, "m2", true, 60);
    broker_down(&mut h);
    for (i, data) in [&b"a1"[..], b"a2", b"a3"].iter().enumerate() {
        h.recv(&a, publish(QoS::One, 10 + i as u16, data));
        h.recv(&b, publish(QoS::One, 20 + i as u16, b"b"));
    }
    h.durable();
    broker_up(&mut h, vec![]);
    let sent = forwarded(&mut h);
    let from_a: Vec<&[u8]> = sent
        .iter()
        .map(|(_, p)| &p[..])
        .filter(|p| p.starts_with(b"a"))
        .collect();
    assert_eq!(from_a, [&b"a1"[..], b"a2", b"a3"]);
    assert_eq!(sent.len(), 6);
    // The link drops; the broker lost the second one: it goes again, the others do not.
    broker_down(&mut h);
    broker_up(&mut h, vec![sent[1].0]);
    let again = forwarded(&mut h);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1, sent[1].1);
}

#[test]
fn qos2_is_answered_once_durable_and_a_retransmission_is_not_taken_twice() {
    let mut h = Harness::new(custody(100, false));
    let a = peer(1);
    h.connect(&a, "m1", true, 60);
    h.recv(&a, publish(QoS::Two, 5, b"q2"));
    // Retransmitted before the store answered: waits, and is not stored again.
    h.recv(&a, publish(QoS::Two, 5, b"q2"));
    assert_eq!(h.held.len(), 1);
    h.expect(&a, &[]);
    h.durable();
    h.expect(&a, &[Packet::Pubrec { msg_id: 5 }]);
    // Retransmitted after the PUBREC: the same answer, nothing stored.
    h.recv(&a, publish(QoS::Two, 5, b"q2"));
    h.expect(&a, &[Packet::Pubrec { msg_id: 5 }]);
    assert_eq!(h.held.len(), 1);
    h.recv(&a, Packet::Pubrel { msg_id: 5 });
    h.expect(&a, &[Packet::Pubcomp { msg_id: 5 }]);
    assert_eq!(
        forwarded(&mut h).len(),
        1,
        "forwarded once, the broker being up"
    );
}

#[test]
fn a_full_custody_refuses_with_congestion_and_counts_it() {
    let mut h = Harness::new(custody(2, false));
    let a = peer(1);
    h.connect(&a, "m1", true, 60);
    broker_down(&mut h);
    h.recv(&a, publish(QoS::One, 1, b"1"));
    h.recv(&a, publish(QoS::One, 2, b"2"));
    h.recv(&a, publish(QoS::One, 3, b"3"));
    h.expect(&a, &[puback(3, ReturnCode::Congestion)]);
    assert_eq!(h.gw.stats().dropped.get("custody_full"), Some(&1));
    assert_eq!(h.held.len(), 2);
}

#[test]
fn a_message_older_than_the_age_limit_is_dropped_and_deleted() {
    let mut h = Harness::new(custody(100, false));
    let a = peer(1);
    h.connect(&a, "m1", true, 0);
    broker_down(&mut h);
    h.recv(&a, publish(QoS::One, 1, b"old"));
    h.durable();
    h.advance(Duration::from_secs(3601));
    assert!(h.held.is_empty());
    assert_eq!(h.gw.stats().dropped.get("custody_expired"), Some(&1));
    assert!(h.has_event(
        |e| matches!(e, GatewayEvent::CustodyExpired { client_id, .. } if client_id == "m1")
    ));
}

#[test]
fn messages_read_back_after_a_restart_are_forwarded_when_the_broker_is_up() {
    let cfg = custody(100, false);
    let mut h = Harness::new(cfg);
    h.gw.restore_custody(
        h.now,
        vec![StoredMessage {
            seq: 41,
            client_id: "m9".into(),
            topic: "site/a".into(),
            payload: bytes::Bytes::from_static(b"kept"),
            qos: MqttQos::AtLeastOnce,
            retain: false,
            age: Duration::from_secs(30),
            msg_id: 7,
            pubrec: None,
        }],
    );
    let sent: Vec<_> =
        h.gw.poll_upstream()
            .into_iter()
            .filter(|c| matches!(c, UpstreamCmd::Publish { .. }))
            .collect();
    assert_eq!(sent.len(), 1, "the gateway's link is up: forwarded at once");
    let g = h.gw.gauges(h.now);
    assert_eq!(g.custody_messages, 1);
    assert_eq!(g.custody_oldest, Duration::from_secs(30));
}

#[test]
fn qos0_is_held_only_with_queue_qos0_and_only_while_the_broker_is_away() {
    let mut h = Harness::new(custody(100, true));
    let a = peer(1);
    h.connect(&a, "m1", true, 60);
    h.recv(&a, publish(QoS::Zero, 0, b"live"));
    assert!(h.held.is_empty(), "nothing written while the broker is up");
    broker_down(&mut h);
    h.recv(&a, publish(QoS::Zero, 0, b"held"));
    assert_eq!(h.held.len(), 1);
    h.durable();
    h.take_cmds();
    broker_up(&mut h, vec![]);
    let sent = forwarded(&mut h);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, b"held");

    let mut h = Harness::new(custody(100, false));
    h.connect(&a, "m1", true, 60);
    broker_down(&mut h);
    h.recv(&a, publish(QoS::Zero, 0, b"gone"));
    assert!(h.held.is_empty(), "without queue_qos0 QoS 0 is not held");
}

#[test]
fn when_the_store_fails_custody_falls_back_to_the_broker_and_nothing_acknowledged_is_lost() {
    let mut h = Harness::new(custody(100, false));
    let a = peer(1);
    let link = h.connect(&a, "m1", true, 60);
    // Taken, not durable yet, when the store fails: forwarded at once, answered after the
    // broker.
    h.recv(&a, publish(QoS::One, 1, b"taken"));
    h.take_cmds();
    h.store_failing(true);
    let sent = forwarded(&mut h);
    assert_eq!(sent.len(), 1);
    h.expect(&a, &[]);
    h.upstream(UpstreamEvent::PublishDone {
        link: LinkId::GATEWAY,
        token: sent[0].0,
    });
    h.expect(&a, &[puback(1, ReturnCode::Accepted)]);
    assert!(h.has_event(|e| matches!(e, GatewayEvent::CustodyFallback { active: true })));

    // While it fails, a new publish takes the broker path: on the mote's own link, answered
    // after the broker, not stored.
    let held_before = h.held.len();
    h.recv(&a, publish(QoS::One, 2, b"direct"));
    let cmds = h.take_cmds();
    let token = cmds
        .iter()
        .find_map(|c| match c {
            UpstreamCmd::Publish { link: l, token, .. } if *l == link => Some(*token),
            _ => None,
        })
        .expect("published on the mote's link");
    assert_eq!(h.held.len(), held_before);
    h.upstream(UpstreamEvent::PublishDone { link, token });
    h.expect(&a, &[puback(2, ReturnCode::Accepted)]);

    // A late commit of the first message changes nothing for the mote.
    h.durable_upto(1);
    h.expect(&a, &[]);

    // Writable again: custody resumes.
    h.store_failing(false);
    h.recv(&a, publish(QoS::One, 3, b"custody"));
    h.expect(&a, &[]);
    h.durable();
    h.expect(&a, &[puback(3, ReturnCode::Accepted)]);
}

#[test]
fn qos_minus1_is_held_with_queue_qos0_while_the_broker_is_away() {
    let mut h = Harness::new(custody(100, true));
    let sender = peer(9);
    broker_down(&mut h);
    h.take_cmds();
    h.recv(&sender, publish(QoS::MinusOne, 0, b"m1"));
    assert_eq!(h.held.len(), 1, "held instead of lost");
    assert!(forwarded(&mut h).is_empty());
    h.durable();
    broker_up(&mut h, vec![]);
    let sent = forwarded(&mut h);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, b"m1");
    // While the broker is up and nothing of the sender waits: straight through, not written.
    h.upstream(UpstreamEvent::PublishDone {
        link: LinkId::GATEWAY,
        token: sent[0].0,
    });
    h.recv(&sender, publish(QoS::MinusOne, 0, b"m2"));
    assert!(h.held.is_empty());
    assert_eq!(forwarded(&mut h).len(), 1);
}

/// The commands on the gateway's link about held PUBRECs since the last call.
fn pubrec_cmds(h: &mut Harness) -> Vec<String> {
    h.take_cmds()
        .into_iter()
        .filter_map(|c| match c {
            UpstreamCmd::HoldRelease { token, .. } => Some(format!("hold {}", token.0)),
            UpstreamCmd::Release { token, .. } => Some(format!("release {}", token.0)),
            UpstreamCmd::Resume { token, pkid, .. } => Some(format!("resume {} {pkid}", token.0)),
            UpstreamCmd::Publish { token, topic, .. } if topic == "site/a" => {
                Some(format!("publish {}", token.0))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_qos2_message_is_released_to_the_broker_only_once_its_pubrec_is_stored() {
    let mut h = Harness::new(custody(100, false));
    let a = peer(1);
    h.connect(&a, "m1", true, 60);
    h.recv(&a, publish(QoS::Two, 5, b"q2"));
    h.durable();
    let cmds = pubrec_cmds(&mut h);
    let token = cmds
        .iter()
        .find_map(|c| c.strip_prefix("publish "))
        .and_then(|t| t.parse::<u64>().ok())
        .map(Token)
        .expect("forwarded");
    assert_eq!(
        cmds,
        [format!("hold {}", token.0), format!("publish {}", token.0)]
    );

    // The broker's PUBREC is held by the link: its packet id is stored, and only once that is
    // committed does the PUBREL go out.
    h.upstream(UpstreamEvent::PubrecHeld {
        link: LinkId::GATEWAY,
        token,
        pkid: 9,
    });
    let seq = *h.held.keys().next().unwrap();
    assert_eq!(h.held[&seq].pubrec, Some(9));
    assert_eq!(pubrec_cmds(&mut h), [] as [String; 0]);
    h.committed();
    assert_eq!(pubrec_cmds(&mut h), [format!("release {}", token.0)]);

    let stored: Vec<StoredMessage> = h.held.values().cloned().collect();

    // PUBCOMP: the message leaves custody, and once that is committed the link may give the
    // packet id to another publish.
    h.upstream(UpstreamEvent::PublishDone {
        link: LinkId::GATEWAY,
        token,
    });
    assert!(h.held.is_empty());
    let forgets = |h: &mut Harness| {
        h.take_cmds()
            .into_iter()
            .filter(|c| matches!(c, UpstreamCmd::Forget { pkid: 9, .. }))
            .count()
    };
    assert_eq!(forgets(&mut h), 0, "not before the deletion is committed");
    h.committed();
    assert_eq!(forgets(&mut h), 1);

    // Killed before the PUBCOMP: after the restart only the PUBREL is sent again, on the
    // resumed session; the client's retransmission (DUP) is answered, not taken again.
    let mut h = Harness::new(custody(100, false));
    broker_down(&mut h);
    h.gw.restore_custody(h.now, stored.clone());
    broker_up(&mut h, vec![]);
    let cmds = pubrec_cmds(&mut h);
    assert!(
        cmds.len() == 1 && cmds[0].starts_with("resume ") && cmds[0].ends_with(" 9"),
        "{cmds:?}"
    );
    h.connect(&a, "m1", true, 60);
    h.recv(
        &a,
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::Two,
            retain: false,
            topic: TopicRef::Predefined(1),
            msg_id: 5,
            data: b"q2",
        }),
    );
    h.expect(&a, &[Packet::Pubrec { msg_id: 5 }]);
    assert!(h.held.is_empty(), "not taken (stored) a second time");

    // Had the broker lost the gateway's session, the packet id would mean nothing: the
    // message is published afresh.
    let mut h = Harness::new(custody(100, false));
    broker_down(&mut h);
    h.gw.restore_custody(h.now, stored);
    h.upstream(UpstreamEvent::LinkUp {
        link: LinkId::GATEWAY,
        session_present: false,
        lost: vec![],
    });
    let cmds = pubrec_cmds(&mut h);
    assert!(
        cmds.len() == 2 && cmds[0].starts_with("hold ") && cmds[1].starts_with("publish "),
        "{cmds:?}"
    );
}
