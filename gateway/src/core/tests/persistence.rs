//! State that survives a restart (`docs/architecture.md`, "State that survives a restart"):
//! what the core hands the state store, and how it resumes from what a store gives back. The
//! store here is the harness's in-memory map.

use std::time::Duration;

use sn_codec::{Packet, Publish, QoS, Register, ReturnCode, Subscribe, TopicRef};

use super::harness::{Harness, acks, message, peer};
use crate::core::addr::PeerAddr;
use crate::core::config::{GatewayConfig, UpstreamMode};
use crate::core::store::{StoredState, StoredTopicKind};
use crate::core::upstream::{LinkId, MqttQos, UpstreamCmd, UpstreamEvent};

/// Aggregating mode with a state store.
fn aggregating_persistent() -> GatewayConfig {
    GatewayConfig {
        persist_sessions: true,
        upstream: crate::core::config::UpstreamSessionConfig {
            mode: UpstreamMode::Aggregating,
            ..Default::default()
        },
        ..GatewayConfig::default()
    }
}

/// mote-1 sends CONNECT with CleanSession=0 (accepted at once in aggregating mode).
fn connect_persistent(h: &mut Harness, from: &PeerAddr) {
    h.recv(
        from,
        Packet::Connect(sn_codec::Connect {
            will: false,
            clean_session: false,
            duration: 60,
            client_id: b"mote-1",
        }),
    );
}

fn persistent() -> GatewayConfig {
    GatewayConfig {
        persist_sessions: true,
        ..GatewayConfig::default()
    }
}

fn register(h: &mut Harness, from: &PeerAddr, msg_id: u16, name: &'static [u8]) {
    h.recv(
        from,
        Packet::Register(Register {
            topic_id: 0,
            msg_id,
            topic_name: name,
        }),
    );
}

fn publish(qos: QoS, topic_id: u16, msg_id: u16, data: &'static [u8]) -> Packet<'static> {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicRef::Normal(topic_id),
        msg_id,
        data,
    })
}

/// The client at `from` subscribes to `cmd/#` at QoS 1 (MsgId 2), and the broker grants it on
/// `link`.
fn subscribe_commands(h: &mut Harness, from: &PeerAddr, link: LinkId) {
    h.recv(
        from,
        Packet::Subscribe(Subscribe {
            dup: false,
            qos: QoS::One,
            msg_id: 2,
            topic: TopicRef::Name(b"cmd/#"),
        }),
    );
    h.grant_subscribe(link, MqttQos::AtLeastOnce);
}

/// mote-1 (CleanSession=0) connected, `t/1` registered as id 1, subscribed to `cmd/#` at QoS 1
/// with the broker's SUBACK in.
fn persistent_mote(h: &mut Harness) -> LinkId {
    let a = peer(1);
    let link = h.connect(&a, "mote-1", false, 60);
    register(h, &a, 1, b"t/1");
    subscribe_commands(h, &a, link);
    h.clear();
    link
}

#[test]
fn a_clean_session_off_client_is_stored_with_its_topic_ids_and_subscriptions() {
    let mut h = Harness::new(persistent());
    persistent_mote(&mut h);
    let r = h.store.get("mote-1").expect("mote-1 is stored");
    assert_eq!(r.state, StoredState::Active);
    assert_eq!(r.peer, peer(1));
    assert_eq!(r.keep_alive, Some(Duration::from_secs(60)));
    assert_eq!(
        r.topic_ids
            .iter()
            .map(|t| (t.id, t.name.as_str(), t.confirmed))
            .collect::<Vec<_>>(),
        [(1, "t/1", true)]
    );
    assert_eq!(r.subscriptions.len(), 1);
    assert_eq!(r.subscriptions[0].filter, "cmd/#");
    assert_eq!(r.subscriptions[0].kind, StoredTopicKind::Name);
    assert_eq!(r.subscriptions[0].qos, MqttQos::AtLeastOnce);
}

#[test]
fn publishes_that_change_nothing_stored_write_nothing() {
    let mut h = Harness::new(persistent());
    let link = persistent_mote(&mut h);
    let a = peer(1);
    let before = h.store_cmds;
    for i in 0..50 {
        h.recv(&a, publish(QoS::Zero, 1, 0, b"21.5"));
        h.recv(&a, publish(QoS::One, 1, 100 + i, b"21.5"));
        // On a topic the mote already has an id for: nothing to register.
        h.upstream(message(link, 10 + i, "t/1", b"on", 0));
    }
    h.advance(Duration::from_secs(1));
    assert_eq!(h.store_cmds, before, "no state-store command for traffic");
}

#[test]
fn clean_session_clients_are_never_stored_and_a_clean_reconnect_deletes_the_record() {
    let mut h = Harness::new(persistent());
    h.connect(&peer(2), "mote-2", true, 60);
    assert!(h.store.is_empty());
    assert_eq!(h.store_cmds, 0);

    persistent_mote(&mut h);
    assert!(h.store.contains_key("mote-1"));
    h.connect(&peer(1), "mote-1", true, 60);
    assert!(!h.store.contains_key("mote-1"), "CleanSession=1 forgets it");
}

#[test]
fn sleep_disconnect_and_loss_are_stored() {
    let mut h = Harness::new(persistent());
    persistent_mote(&mut h);
    let a = peer(1);
    h.recv(
        &a,
        Packet::Disconnect {
            duration: Some(600),
        },
    );
    let r = &h.store["mote-1"];
    assert_eq!(
        (r.state, r.sleep),
        (StoredState::Asleep, Some(Duration::from_secs(600)))
    );
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.store["mote-1"].state, StoredState::Lost);

    let mut h = Harness::new(persistent());
    persistent_mote(&mut h);
    h.recv(&a, Packet::Disconnect { duration: None });
    assert_eq!(h.store["mote-1"].state, StoredState::Disconnected);
}

#[test]
fn nothing_is_stored_without_a_store() {
    let mut h = Harness::default();
    persistent_mote(&mut h);
    assert_eq!(h.store_cmds, 0);
}

#[test]
fn after_a_restart_an_active_mote_publishes_with_the_topic_id_it_registered_before() {
    let mut h = Harness::new(persistent());
    persistent_mote(&mut h);
    let stored = h.store.clone();

    let mut h = Harness::restored(persistent(), stored, h.now);
    let a = peer(1);
    // The upstream session is re-opened without clean session, under the mote's ClientId.
    let opened: Vec<_> = h
        .cmds
        .iter()
        .filter_map(|c| match c {
            UpstreamCmd::Open {
                link,
                client_id,
                clean_session,
                ..
            } if *link != LinkId::GATEWAY => Some((*link, client_id.clone(), *clean_session)),
            _ => None,
        })
        .collect();
    let [(link, client_id, false)] = &opened[..] else {
        panic!("one persistent re-open expected, got {opened:?}");
    };
    assert_eq!(client_id, "mote-1");
    h.upstream(UpstreamEvent::LinkUp {
        link: *link,
        session_present: true,
        lost: vec![],
    });
    // Subscriptions are asked again (harmless when the broker kept them).
    assert!(h.take_cmds().iter().any(
        |c| matches!(c, UpstreamCmd::Subscribe { filter, qos: MqttQos::AtLeastOnce, .. } if filter == "cmd/#")
    ));
    h.recv(&a, publish(QoS::One, 1, 7, b"22.0"));
    let cmds = h.take_cmds();
    let published = cmds.iter().find_map(|c| match c {
        UpstreamCmd::Publish { topic, token, .. } => Some((topic.clone(), *token)),
        _ => None,
    });
    let Some((topic, token)) = published else {
        panic!("the publish went upstream: {cmds:?}");
    };
    assert_eq!(topic, "t/1");
    h.upstream(UpstreamEvent::PublishDone { link: *link, token });
    h.expect(
        &a,
        &[Packet::Puback {
            topic_id: 1,
            msg_id: 7,
            return_code: ReturnCode::Accepted,
        }],
    );
    assert!(h.gw.check_invariants().is_ok());
}

#[test]
fn after_a_restart_a_sleeping_mote_wakes_and_gets_what_the_broker_kept_for_it() {
    let mut h = Harness::new(persistent());
    persistent_mote(&mut h);
    let a = peer(1);
    h.recv(
        &a,
        Packet::Disconnect {
            duration: Some(600),
        },
    );
    let stored = h.store.clone();

    let mut h = Harness::restored(persistent(), stored, h.now + Duration::from_secs(5));
    let link = h.opened_link();
    h.upstream(UpstreamEvent::LinkUp {
        link,
        session_present: true,
        lost: vec![],
    });
    // The broker delivers what it queued for the persistent session while the gateway was away.
    h.upstream(message(link, 3, "cmd/x", b"on", 1));
    h.expect_silence();
    h.clear();
    h.recv(&a, Packet::Pingreq { client_id: None });
    h.expect(
        &a,
        &[Packet::Register(Register {
            topic_id: 2,
            msg_id: 1,
            topic_name: b"cmd/x",
        })],
    );
    h.recv(
        &a,
        Packet::Regack {
            topic_id: 2,
            msg_id: 1,
            return_code: ReturnCode::Accepted,
        },
    );
    h.expect(
        &a,
        &[Packet::Publish(Publish {
            dup: false,
            qos: QoS::One,
            retain: false,
            topic: TopicRef::Normal(2),
            msg_id: 2,
            data: b"on",
        })],
    );
}

#[test]
fn a_sleeping_mote_whose_sleep_timer_runs_out_after_a_restart_is_lost() {
    let mut h = Harness::new(persistent());
    persistent_mote(&mut h);
    h.recv(&peer(1), Packet::Disconnect { duration: Some(60) });
    let stored = h.store.clone();
    let mut h = Harness::restored(persistent(), stored, h.now);
    h.advance(Duration::from_secs(600));
    assert_eq!(h.store["mote-1"].state, StoredState::Lost);
}

#[test]
fn a_restart_in_aggregating_mode_restores_the_subscriptions_on_the_shared_link() {
    let cfg = aggregating_persistent();
    let mut h = Harness::new(cfg.clone());
    let a = peer(1);
    connect_persistent(&mut h, &a);
    h.recv(
        &a,
        Packet::Subscribe(Subscribe {
            dup: false,
            qos: QoS::One,
            msg_id: 2,
            topic: TopicRef::Name(b"cmd/#"),
        }),
    );
    let stored = h.store.clone();
    assert_eq!(stored["mote-1"].subscriptions.len(), 1);

    let h = Harness::restored(cfg, stored, h.now);
    assert!(
        h.cmds.iter().any(
            |c| matches!(c, UpstreamCmd::Subscribe { link: LinkId::GATEWAY, filter, .. } if filter == "cmd/#")
        ),
        "the union is subscribed again once the shared link is up: {:?}",
        h.cmds
    );
}

#[test]
fn two_stored_sessions_on_one_address_restore_only_one_as_live() {
    let mut h = Harness::new(persistent());
    persistent_mote(&mut h);
    let mut stored = h.store.clone();
    let mut twin = stored["mote-1"].clone();
    twin.client_id = "mote-9".into();
    stored.insert(twin.client_id.clone(), twin);
    let h = Harness::restored(persistent(), stored, h.now);
    assert!(h.gw.check_invariants().is_ok());
    let live: Vec<_> =
        h.gw.clients()
            .into_iter()
            .filter(|c| c.state != "lost")
            .map(|c| c.client_id)
            .collect();
    assert_eq!(live, ["mote-1"]);
}

#[test]
fn an_aggregating_sleepers_buffered_messages_survive_a_restart_and_go_out_when_it_wakes() {
    let cfg = aggregating_persistent();
    let mut h = Harness::new(cfg.clone());
    let a = peer(1);
    connect_persistent(&mut h, &a);
    subscribe_commands(&mut h, &a, LinkId::GATEWAY);
    h.recv(
        &a,
        Packet::Disconnect {
            duration: Some(600),
        },
    );
    // The broker's messages are acknowledged at custody: only the gateway holds them now.
    h.upstream(message(LinkId::GATEWAY, 5, "cmd/a", b"one", 1));
    h.upstream(message(LinkId::GATEWAY, 6, "cmd/b", b"two", 0));
    let r = &h.store["mote-1"];
    let kept: Vec<&[u8]> = r.buffered.iter().map(|m| &m.payload[..]).collect();
    assert_eq!(kept, [&b"one"[..], b"two"]);
    let stored = h.store.clone();

    let mut h = Harness::restored(cfg, stored, h.now);
    h.clear();
    h.recv(&a, Packet::Pingreq { client_id: None });
    let got: Vec<String> = h
        .sent_to(&a)
        .iter()
        .map(|b| Packet::decode(b).unwrap().to_string())
        .collect();
    assert!(
        got.first().is_some_and(|p| p.starts_with("REGISTER")),
        "the first buffered message goes out on wake-up: {got:?}"
    );
}

#[test]
fn an_active_clients_downlink_traffic_writes_nothing() {
    let cfg = aggregating_persistent();
    let mut h = Harness::new(cfg);
    let a = peer(1);
    connect_persistent(&mut h, &a);
    register(&mut h, &a, 1, b"cmd/a");
    let before = h.store_cmds;
    for i in 0..20 {
        h.upstream(message(LinkId::GATEWAY, 10 + i, "cmd/a", b"x", 0));
    }
    assert_eq!(
        h.store_cmds, before,
        "an active client's queue is not stored"
    );
}

#[test]
fn a_remembered_session_is_forgotten_after_its_silence_and_deleted_from_the_store() {
    let cfg = GatewayConfig {
        remember_disconnected_for: Some(Duration::from_secs(24 * 3600)),
        ..persistent()
    };
    let mut h = Harness::new(cfg);
    persistent_mote(&mut h);
    h.recv(&peer(1), Packet::Disconnect { duration: None });
    assert_eq!(h.store["mote-1"].state, StoredState::Disconnected);
    h.advance(Duration::from_secs(23 * 3600));
    assert!(h.store.contains_key("mote-1"), "remembered for a day");
    assert_eq!(h.gw.clients().len(), 1);
    h.advance(Duration::from_secs(2 * 3600));
    assert!(h.store.is_empty(), "deleted from the store");
    assert!(h.gw.clients().is_empty(), "and forgotten");
}

#[test]
fn in_aggregating_mode_the_broker_is_acknowledged_once_the_motes_holding_its_message_are_stored() {
    let cfg = aggregating_persistent();
    let mut h = Harness::new(cfg.clone());
    let a = peer(1);
    connect_persistent(&mut h, &a);
    subscribe_commands(&mut h, &a, LinkId::GATEWAY);
    h.committed();
    h.clear();

    // A QoS 1 command in flight to the active mote is stored with its session, and the broker
    // hears PUBACK only after that is committed.
    h.upstream(message(LinkId::GATEWAY, 5, "cmd/a", b"one", 1));
    assert_eq!(
        acks(&h.cmds),
        [] as [u16; 0],
        "no broker ack before the commit"
    );
    let kept: Vec<&[u8]> = h.store["mote-1"]
        .buffered
        .iter()
        .map(|m| &m.payload[..])
        .collect();
    assert_eq!(kept, [&b"one"[..]]);
    h.committed();
    assert_eq!(acks(&h.cmds), [5]);

    // Killed before the mote acknowledged it: after the restart it goes out again.
    let mut h2 = Harness::restored(cfg, h.store.clone(), h.now);
    h2.advance(Duration::from_secs(30));
    let sent: Vec<String> = h2
        .sent_to(&a)
        .iter()
        .map(|b| Packet::decode(b).unwrap().to_string())
        .collect();
    assert!(
        sent.iter().any(|p| p.starts_with("REGISTER")),
        "the held command goes out after the restart: {sent:?}"
    );

    // A store that cannot write holds nothing back.
    h.clear();
    h.store_failing(true);
    h.upstream(message(LinkId::GATEWAY, 6, "cmd/a", b"two", 1));
    assert_eq!(acks(&h.cmds), [6]);
}

#[test]
fn a_message_for_clean_session_motes_only_is_acknowledged_at_once() {
    let mut h = Harness::new(aggregating_persistent());
    let a = peer(1);
    h.recv(
        &a,
        Packet::Connect(sn_codec::Connect {
            will: false,
            clean_session: true,
            duration: 60,
            client_id: b"mote-1",
        }),
    );
    subscribe_commands(&mut h, &a, LinkId::GATEWAY);
    h.committed();
    h.clear();
    h.upstream(message(LinkId::GATEWAY, 7, "cmd/a", b"one", 1));
    assert_eq!(acks(&h.cmds), [7]);
}
