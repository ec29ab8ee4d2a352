//! A client's QoS 2 publish exactly once across a crash (`docs/storage.md`, "QoS 2 across a
//! crash"): the broker's PUBREC is recorded in the session before the broker may deliver the
//! message and before the client hears PUBREC, and a restarted gateway answers the client's
//! retransmission and sends the broker only the PUBREL it still owes.

use std::collections::BTreeMap;
use std::time::Duration;

use sn_codec::{Packet, Publish, QoS, TopicRef};

use super::harness::{Harness, peer};
use crate::core::config::{CustodyConfig, CustodyMode, GatewayConfig, UpstreamMode};
use crate::core::store::SessionRecord;
use crate::core::upstream::{LinkId, Token, UpstreamCmd, UpstreamEvent};

/// A state store, broker custody (transparent mode's default), `site/a` predefined as id 1.
fn stored() -> GatewayConfig {
    let mut cfg = GatewayConfig {
        persist_sessions: true,
        ..GatewayConfig::default()
    };
    cfg.predefined.global.insert(1, "site/a".into());
    cfg
}

fn publish(dup: bool, msg_id: u16) -> Packet<'static> {
    Packet::Publish(Publish {
        dup,
        qos: QoS::Two,
        retain: false,
        topic: TopicRef::Predefined(1),
        msg_id,
        data: b"q2",
    })
}

/// The held-PUBREC commands and publishes on `site/a` since the last call, as short strings.
fn qos2_cmds(h: &mut Harness) -> Vec<String> {
    h.take_cmds()
        .into_iter()
        .filter_map(|c| match c {
            UpstreamCmd::HoldRelease { token, .. } => Some(format!("hold {}", token.0)),
            UpstreamCmd::Release { token, .. } => Some(format!("release {}", token.0)),
            UpstreamCmd::Resume { pkid, .. } => Some(format!("resume {pkid}")),
            UpstreamCmd::Forget { pkid, .. } => Some(format!("forget {pkid}")),
            UpstreamCmd::Publish { token, topic, .. } if topic == "site/a" => {
                Some(format!("publish {}", token.0))
            }
            UpstreamCmd::Publish { topic, .. } => Some(format!("publish {topic}")),
            _ => None,
        })
        .collect()
}

/// The token of the last `Resume` (the commands are kept).
fn resume_token(cmds: &[UpstreamCmd]) -> Token {
    cmds.iter()
        .rev()
        .find_map(|c| match c {
            UpstreamCmd::Resume { token, .. } => Some(*token),
            _ => None,
        })
        .expect("a Resume")
}

/// The stored QoS 2 ids of `id`: (client MsgIds not released, packet ids owed a PUBREL).
fn stored_qos2(h: &Harness, id: &str) -> (Vec<u16>, Vec<u16>) {
    let r = &h.store[id];
    (r.qos2_unreleased.clone(), r.pubrels_owed.clone())
}

/// m1 (CleanSession=0) publishes QoS 2 MsgId 5; the broker's PUBREC (packet id 3) is held.
/// Returns the link and the publish's token.
fn publish_held(h: &mut Harness) -> (LinkId, Token) {
    let a = peer(1);
    let link = h.connect(&a, "m1", false, 60);
    h.recv(&a, publish(false, 5));
    let cmds = qos2_cmds(h);
    let token = cmds
        .iter()
        .find_map(|c| c.strip_prefix("publish "))
        .and_then(|t| t.parse().ok())
        .map(Token)
        .expect("published");
    assert_eq!(
        cmds,
        [format!("hold {}", token.0), format!("publish {}", token.0)]
    );
    h.upstream(UpstreamEvent::PubrecHeld {
        link,
        token,
        pkid: 3,
    });
    (link, token)
}

#[test]
fn a_stored_sessions_qos2_publish_is_released_and_answered_only_once_its_pubrec_is_recorded() {
    let mut h = Harness::new(stored());
    let a = peer(1);
    let (link, token) = publish_held(&mut h);

    // Recorded first: no PUBREL to the broker, no PUBREC to the client yet.
    assert_eq!(qos2_cmds(&mut h), [] as [String; 0]);
    h.expect(&a, &[]);
    assert_eq!(stored_qos2(&h, "m1"), (vec![5], vec![3]));
    h.committed();
    assert_eq!(qos2_cmds(&mut h), [format!("release {}", token.0)]);
    // The link reports the PUBREL out; now the client hears PUBREC.
    h.upstream(UpstreamEvent::PublishReceived { link, token });
    h.expect(&a, &[Packet::Pubrec { msg_id: 5 }]);

    // Both halves complete: nothing QoS 2 is left in the record, and the packet id is given
    // back to the link once that is committed.
    h.recv(&a, Packet::Pubrel { msg_id: 5 });
    h.upstream(UpstreamEvent::PublishDone { link, token });
    h.expect(&a, &[Packet::Pubcomp { msg_id: 5 }]);
    assert_eq!(stored_qos2(&h, "m1"), (vec![], vec![]));
    assert_eq!(qos2_cmds(&mut h), [] as [String; 0]);
    h.committed();
    assert_eq!(qos2_cmds(&mut h), ["forget 3"]);
}

/// A gateway restarted from `store` whose client m1's link comes up with the broker's session
/// present or not; returns it and the link.
fn restart(store: BTreeMap<String, SessionRecord>, session_present: bool) -> (Harness, LinkId) {
    let mut h = Harness::restored(stored(), store, sn_codec::Instant::from_millis(5_000_000));
    let link = h.opened_link();
    h.take_cmds();
    h.upstream(UpstreamEvent::LinkUp {
        link,
        session_present,
        lost: vec![],
    });
    (h, link)
}

#[test]
fn after_a_kill_once_the_pubrec_is_recorded_only_the_pubrel_goes_again_and_the_client_is_answered()
{
    let mut h = Harness::new(stored());
    publish_held(&mut h);
    h.committed();
    let store = h.store.clone();

    let (mut h, link) = restart(store, true);
    let a = peer(1);
    let cmds = h.take_cmds();
    assert!(
        matches!(cmds.first(), Some(UpstreamCmd::Resume { pkid: 3, link: l, .. }) if *l == link),
        "the owed PUBREL goes first: {cmds:?}"
    );
    let resumed = resume_token(&cmds);
    // The client did not hear PUBREC: its retransmission is answered, not published again.
    h.recv(&a, publish(true, 5));
    h.expect(&a, &[Packet::Pubrec { msg_id: 5 }]);
    assert_eq!(qos2_cmds(&mut h), [] as [String; 0]);
    h.recv(&a, Packet::Pubrel { msg_id: 5 });
    h.expect(&a, &[Packet::Pubcomp { msg_id: 5 }]);
    h.upstream(UpstreamEvent::PublishDone {
        link,
        token: resumed,
    });
    assert_eq!(stored_qos2(&h, "m1"), (vec![], vec![]));
    h.committed();
    assert_eq!(qos2_cmds(&mut h), ["forget 3"]);

    // A new message under the same MsgId later is a new message.
    h.recv(&a, publish(false, 5));
    assert!(qos2_cmds(&mut h).iter().any(|c| c.starts_with("publish ")));
}

#[test]
fn after_a_kill_before_the_pubrec_is_recorded_the_retransmission_is_published_afresh() {
    let mut h = Harness::new(stored());
    h.connect(&peer(1), "m1", false, 60);
    let store = h.store.clone();

    let (mut h, _) = restart(store, true);
    h.recv(&peer(1), publish(true, 5));
    let cmds = qos2_cmds(&mut h);
    assert!(
        cmds.len() == 2 && cmds[0].starts_with("hold ") && cmds[1].starts_with("publish "),
        "{cmds:?}"
    );
}

#[test]
fn a_broker_that_lost_the_session_is_owed_no_pubrel_after_a_restart() {
    let mut h = Harness::new(stored());
    publish_held(&mut h);
    h.committed();
    let store = h.store.clone();

    let (mut h, _) = restart(store, false);
    assert!(!qos2_cmds(&mut h).iter().any(|c| c.starts_with("resume")));
    assert_eq!(stored_qos2(&h, "m1"), (vec![5], vec![]));
}

#[test]
fn a_reconnect_of_the_client_resumes_the_owed_pubrel_on_its_new_link() {
    let mut h = Harness::new(stored());
    publish_held(&mut h);
    h.committed();
    h.take_cmds();
    // The client connects again (CleanSession=0, from a new address) before the broker
    // completed: its new link sends the PUBREL the broker still waits for.
    let a = peer(2);
    h.raw(&a, &super::harness::connect("m1", false, false, 60));
    let link = h.opened_link();
    h.upstream(UpstreamEvent::LinkUp {
        link,
        session_present: true,
        lost: vec![],
    });
    let cmds = h.take_cmds();
    assert!(
        cmds.iter()
            .any(|c| matches!(c, UpstreamCmd::Resume { pkid: 3, link: l, .. } if *l == link)),
        "{cmds:?}"
    );
    assert_eq!(stored_qos2(&h, "m1"), (vec![5], vec![3]));
    h.clear_datagrams();
    h.recv(&a, publish(true, 5));
    h.expect(&a, &[Packet::Pubrec { msg_id: 5 }]);
}

#[test]
fn in_gateway_custody_a_released_message_is_still_answered_after_a_restart() {
    let mut cfg = stored();
    cfg.custody = CustodyConfig {
        mode: CustodyMode::Gateway,
        max_messages: 100,
        max_age: Some(Duration::from_secs(3600)),
        queue_qos0: false,
    };
    let mut h = Harness::new(cfg.clone());
    let a = peer(1);
    h.connect(&a, "m1", false, 60);
    h.recv(&a, publish(false, 5));
    h.durable();
    h.expect(&a, &[Packet::Pubrec { msg_id: 5 }]);
    // Forwarded and completed by the broker: the message leaves custody, but the session keeps
    // its MsgId until the client's PUBREL.
    let token = h.published("site/a");
    h.upstream(UpstreamEvent::PublishDone {
        link: LinkId::GATEWAY,
        token,
    });
    assert!(h.held.is_empty());
    assert_eq!(stored_qos2(&h, "m1").0, [5]);
    let store = h.store.clone();

    // Killed before the client's retransmission arrives (it did not hear PUBREC).
    let mut h = Harness::restored(cfg, store, sn_codec::Instant::from_millis(5_000_000));
    h.recv(&a, publish(true, 5));
    h.expect(&a, &[Packet::Pubrec { msg_id: 5 }]);
    assert!(h.held.is_empty(), "not taken a second time");
    h.recv(&a, Packet::Pubrel { msg_id: 5 });
    h.expect(&a, &[Packet::Pubcomp { msg_id: 5 }]);
    assert_eq!(stored_qos2(&h, "m1").0, [] as [u16; 0]);
}

#[test]
fn in_aggregating_mode_the_owed_pubrels_go_out_on_the_shared_link_before_any_new_publish() {
    let mut cfg = stored();
    cfg.upstream.mode = UpstreamMode::Aggregating;
    let mut h = Harness::new(cfg.clone());
    let a = peer(1);
    h.recv(
        &a,
        Packet::Connect(sn_codec::Connect {
            will: false,
            clean_session: false,
            duration: 60,
            client_id: b"m1",
        }),
    );
    h.recv(&a, publish(false, 5));
    let token = h.published("site/a");
    h.upstream(UpstreamEvent::PubrecHeld {
        link: LinkId::GATEWAY,
        token,
        pkid: 3,
    });
    h.committed();
    assert!(
        h.take_cmds()
            .iter()
            .any(|c| matches!(c, UpstreamCmd::Release { .. }))
    );
    let store = h.store.clone();
    assert_eq!(stored_qos2(&h, "m1"), (vec![5], vec![3]));

    let mut h =
        Harness::restored_with_link(cfg, store, sn_codec::Instant::from_millis(5_000_000), true);
    let resumed = resume_token(&h.cmds);
    let cmds = qos2_cmds(&mut h);
    assert_eq!(
        cmds.first().map(String::as_str),
        Some("resume 3"),
        "{cmds:?}"
    );
    assert!(
        cmds.iter()
            .any(|c| c.starts_with("publish ") && c.contains("status")),
        "the status publish comes after: {cmds:?}"
    );
    // Its PUBCOMP: no longer owed, and the link may reuse the packet id once that is stored.
    h.upstream(UpstreamEvent::PublishDone {
        link: LinkId::GATEWAY,
        token: resumed,
    });
    assert_eq!(stored_qos2(&h, "m1"), (vec![5], vec![]));
    h.committed();
    assert_eq!(qos2_cmds(&mut h), ["forget 3"]);
}

// Broker → client: the MsgId a QoS 2 message goes to the client under is recorded before it
// goes, and the client's PUBREC before the PUBREL lets it forget that MsgId.

/// `stored()` in `mode`, with `cmd/x` predefined as id 2.
fn with_commands(mode: UpstreamMode) -> GatewayConfig {
    let mut cfg = stored();
    cfg.upstream.mode = mode;
    cfg.predefined.global.insert(2, "cmd/x".into());
    cfg
}

/// m1 (CleanSession=0) at peer 1, subscribed to predefined id 2 at QoS 2 with the broker's
/// SUBACK in; returns its link (the gateway's in aggregating mode).
fn subscribed(h: &mut Harness, mode: UpstreamMode) -> LinkId {
    let a = peer(1);
    let link = match mode {
        UpstreamMode::Transparent => h.connect(&a, "m1", false, 60),
        UpstreamMode::Aggregating => {
            h.raw(&a, &super::harness::connect("m1", false, false, 60));
            LinkId::GATEWAY
        }
    };
    h.recv(
        &a,
        Packet::Subscribe(sn_codec::Subscribe {
            dup: false,
            qos: QoS::Two,
            msg_id: 1,
            topic: TopicRef::Predefined(2),
        }),
    );
    h.grant_subscribe(link, crate::core::upstream::MqttQos::ExactlyOnce);
    h.clear();
    link
}

fn command(dup: bool, msg_id: u16) -> Packet<'static> {
    Packet::Publish(Publish {
        dup,
        qos: QoS::Two,
        retain: false,
        topic: TopicRef::Predefined(2),
        msg_id,
        data: b"open",
    })
}

/// The MsgId of the message in flight in m1's record.
fn stored_inflight(h: &Harness) -> Option<(u16, bool)> {
    let m = h.store["m1"].buffered.first()?;
    m.msg_id.map(|id| (id, m.released))
}

#[test]
fn a_qos2_command_goes_to_a_stored_client_only_once_its_msg_id_is_recorded_and_its_pubrel_once_its_pubrec_is()
 {
    for mode in [UpstreamMode::Transparent, UpstreamMode::Aggregating] {
        let mut h = Harness::new(with_commands(mode));
        let a = peer(1);
        let link = subscribed(&mut h, mode);
        h.upstream(super::harness::message(link, 7, "cmd/x", b"open", 2));
        h.expect(&a, &[]);
        let (msg_id, released) = stored_inflight(&h).expect("recorded with its MsgId");
        assert!(!released);
        h.committed();
        h.expect(&a, &[command(false, msg_id)]);

        h.recv(&a, Packet::Pubrec { msg_id });
        h.expect(&a, &[]);
        assert_eq!(stored_inflight(&h), Some((msg_id, true)), "{mode:?}");
        h.committed();
        h.expect(&a, &[Packet::Pubrel { msg_id }]);
        h.recv(&a, Packet::Pubcomp { msg_id });
        assert_eq!(stored_inflight(&h), None);
    }
}

#[test]
fn after_a_kill_a_qos2_command_the_client_may_have_goes_again_under_its_msg_id_and_once() {
    for mode in [UpstreamMode::Transparent, UpstreamMode::Aggregating] {
        let mut h = Harness::new(with_commands(mode));
        let link = subscribed(&mut h, mode);
        h.upstream(super::harness::message(link, 7, "cmd/x", b"open", 2));
        h.committed();
        let (msg_id, _) = stored_inflight(&h).expect("recorded");
        let store = h.store.clone();

        let mut h = Harness::restored_with_link(
            with_commands(mode),
            store,
            sn_codec::Instant::from_millis(5_000_000),
            mode == UpstreamMode::Aggregating,
        );
        let a = peer(1);
        if mode == UpstreamMode::Transparent {
            let link = h.opened_link();
            h.upstream(UpstreamEvent::LinkUp {
                link,
                session_present: true,
                lost: vec![],
            });
            // The broker redelivers it on the resumed session: that is the same message.
            h.upstream(super::harness::message(link, 7, "cmd/x", b"open", 2));
        }
        h.committed();
        h.expect(&a, &[command(true, msg_id)]);
        h.recv(&a, Packet::Pubrec { msg_id });
        h.committed();
        h.expect(&a, &[Packet::Pubrel { msg_id }]);
        if mode == UpstreamMode::Transparent {
            assert_eq!(
                super::harness::acks(&h.take_cmds()),
                [7],
                "acknowledged once"
            );
        }
        h.recv(&a, Packet::Pubcomp { msg_id });
        h.advance(Duration::from_secs(60));
        h.expect(&a, &[]);
    }
}

#[test]
fn after_a_kill_once_the_client_answered_pubrec_only_the_pubrel_goes_again() {
    let mut h = Harness::new(with_commands(UpstreamMode::Aggregating));
    let a = peer(1);
    let link = subscribed(&mut h, UpstreamMode::Aggregating);
    h.upstream(super::harness::message(link, 7, "cmd/x", b"open", 2));
    h.committed();
    let (msg_id, _) = stored_inflight(&h).expect("recorded");
    h.recv(&a, Packet::Pubrec { msg_id });
    let store = h.store.clone();

    let mut h = Harness::restored_with_link(
        with_commands(UpstreamMode::Aggregating),
        store,
        sn_codec::Instant::from_millis(5_000_000),
        true,
    );
    h.advance(Duration::from_secs(20));
    let sent: Vec<String> = h
        .sent_to(&a)
        .iter()
        .map(|b| Packet::decode(b).unwrap().to_string())
        .collect();
    assert!(!sent.is_empty(), "the PUBREL is sent again");
    let pubrel = Packet::Pubrel { msg_id }.to_string();
    assert!(sent.iter().all(|p| *p == pubrel), "{sent:?}");
    h.clear_datagrams();
    h.recv(&a, Packet::Pubcomp { msg_id });
    assert_eq!(stored_inflight(&h), None);
}
