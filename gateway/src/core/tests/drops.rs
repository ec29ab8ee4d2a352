//! Every drop is counted once, under the reason that is true, and a dropped broker message is
//! still acknowledged upstream (so the broker does not redeliver it forever).

use crate::core::upstream::MqttQos;
use sn_codec::{Packet, QoS, ReturnCode, Subscribe, TopicRef};

use super::harness::{Harness, acks, message, peer};
use crate::core::config::GatewayConfig;
use crate::core::upstream::{LinkId, UpstreamEvent};

/// Connects mote-1 and subscribes it to `#` at QoS 1 (SUBACK from the broker included).
fn subscribed_to_everything(h: &mut Harness) -> LinkId {
    let a = peer(1);
    let link = h.connect(&a, "mote-1", true, 60);
    h.recv(
        &a,
        Packet::Subscribe(Subscribe {
            dup: false,
            qos: QoS::One,
            msg_id: 1,
            topic: TopicRef::Name(b"#"),
        }),
    );
    let token = h
        .take_cmds()
        .iter()
        .find_map(|c| match c {
            crate::core::upstream::UpstreamCmd::Subscribe { token, .. } => Some(*token),
            _ => None,
        })
        .expect("a SUBSCRIBE upstream");
    h.upstream(UpstreamEvent::SubAck {
        link,
        token,
        granted: Some(MqttQos::AtLeastOnce),
    });
    h.clear();
    link
}

fn dropped(h: &Harness, label: &str) -> u64 {
    h.gw.stats().dropped.get(label).copied().unwrap_or(0)
}

#[test]
fn a_broker_message_outside_the_topic_prefix_is_a_foreign_topic() {
    let mut cfg = GatewayConfig::default();
    cfg.upstream.topic_prefix = "site-a/".into();
    let mut h = Harness::new(cfg);
    let link = subscribed_to_everything(&mut h);
    h.upstream(message(link, 7, "site-b/x", b"1", 1));
    assert_eq!(dropped(&h, "foreign_topic"), 1);
    assert_eq!(h.gw.stats().dropped.values().sum::<u64>(), 1);
    assert_eq!(acks(&h.take_cmds()), [7]);
}

#[test]
fn a_message_too_large_for_the_client_is_counted_once() {
    let cfg = GatewayConfig {
        max_packet_size: 64,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    let link = subscribed_to_everything(&mut h);
    // The REGISTER for this topic name alone does not fit.
    let long = "t/".repeat(40);
    h.upstream(message(link, 8, &long, b"1", 1));
    assert_eq!(dropped(&h, "too_large_for_client"), 1);
    assert_eq!(h.gw.stats().dropped.values().sum::<u64>(), 1);
    assert_eq!(acks(&h.take_cmds()), [8]);
}

#[test]
fn a_message_the_client_refuses_is_client_rejected_not_a_full_queue() {
    let mut h = Harness::default();
    let link = subscribed_to_everything(&mut h);
    let a = peer(1);
    h.upstream(message(link, 9, "cmd/x", b"1", 1));
    let sent = h.sent_to(&a);
    let Ok(Packet::Register(r)) = Packet::decode(&sent[0]) else {
        panic!("expected a REGISTER")
    };
    let (topic_id, msg_id) = (r.topic_id, r.msg_id);
    h.clear_datagrams();
    h.recv(
        &a,
        Packet::Regack {
            topic_id,
            msg_id,
            return_code: ReturnCode::Accepted,
        },
    );
    let sent = h.sent_to(&a);
    let Ok(Packet::Publish(p)) = Packet::decode(&sent[0]) else {
        panic!("expected a PUBLISH")
    };
    let msg_id = p.msg_id;
    h.recv(
        &a,
        Packet::Puback {
            topic_id,
            msg_id,
            return_code: ReturnCode::Congestion,
        },
    );
    assert_eq!(dropped(&h, "client_rejected"), 1);
    assert_eq!(dropped(&h, "queue_full"), 0);
    assert_eq!(acks(&h.take_cmds()), [9]);
}
