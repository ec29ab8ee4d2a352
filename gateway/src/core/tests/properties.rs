//! Random client and broker histories, in both upstream modes: nothing panics, no deadline is
//! ever in the past, and once every client is gone nothing stays subscribed or open upstream.
//! In aggregating mode also: everything rides the shared link and every broker message is
//! acknowledged exactly once, at once.

use crate::core::upstream::MqttQos;
use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use sn_codec::{Packet, QoS, Subscribe, TopicRef, Unsubscribe};

use super::harness::{Harness, acks, connect, peer};
use crate::core::config::{GatewayConfig, UpstreamMode};
use crate::core::upstream::{DeliveryId, LinkId, UpstreamCmd, UpstreamEvent};

const MOTES: u8 = 4;
const FILTERS: [&[u8]; 4] = [b"a/#", b"a/b", b"+/b", b"c"];
const TOPICS: [&str; 3] = ["a/b", "c", "x/b"];

#[derive(Debug, Clone)]
enum Step {
    Connect(u8),
    Subscribe(u8, usize),
    Unsubscribe(u8, usize),
    Sleep(u8),
    Disconnect(u8),
    Garbage(u8, Vec<u8>),
    Advance(u64),
    /// A broker message on the topic, with QoS and retain; in transparent mode on the link of
    /// the mote it names.
    Message(u8, usize, u8, bool),
    SharedLinkBounce,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..MOTES).prop_map(Step::Connect),
        3 => (0..MOTES, 0..FILTERS.len()).prop_map(|(m, f)| Step::Subscribe(m, f)),
        2 => (0..MOTES, 0..FILTERS.len()).prop_map(|(m, f)| Step::Unsubscribe(m, f)),
        1 => (0..MOTES).prop_map(Step::Sleep),
        1 => (0..MOTES).prop_map(Step::Disconnect),
        1 => (0..MOTES, proptest::collection::vec(any::<u8>(), 0..12))
            .prop_map(|(m, b)| Step::Garbage(m, b)),
        2 => (0..40u64).prop_map(Step::Advance),
        3 => (0..MOTES, 0..TOPICS.len(), 0..3u8, any::<bool>())
            .prop_map(|(m, t, q, r)| Step::Message(m, t, q, r)),
        1 => Just(Step::SharedLinkBounce),
    ]
}

/// The broker as the tests play it: answers every command at once and remembers what is
/// open and subscribed.
#[derive(Default)]
struct Broker {
    mode: UpstreamMode,
    /// Client links that are open, with the mote whose ClientId opened them.
    open: std::collections::BTreeMap<LinkId, String>,
    /// (link, filter) subscribed.
    subscribed: BTreeSet<(LinkId, String)>,
}

impl Broker {
    fn answer(&mut self, h: &mut Harness) {
        loop {
            let cmds = h.take_cmds();
            if cmds.is_empty() {
                return;
            }
            for c in cmds {
                self.execute(h, c);
            }
        }
    }

    fn execute(&mut self, h: &mut Harness, c: UpstreamCmd) {
        let link = match &c {
            UpstreamCmd::Open { link, .. }
            | UpstreamCmd::Subscribe { link, .. }
            | UpstreamCmd::Unsubscribe { link, .. }
            | UpstreamCmd::Publish { link, .. }
            | UpstreamCmd::Ack { link, .. }
            | UpstreamCmd::HoldRelease { link, .. }
            | UpstreamCmd::Release { link, .. }
            | UpstreamCmd::Resume { link, .. }
            | UpstreamCmd::Forget { link, .. }
            | UpstreamCmd::Close { link, .. } => *link,
        };
        if self.mode == UpstreamMode::Aggregating {
            assert_eq!(link, LinkId::GATEWAY, "{c:?}");
        }
        match c {
            UpstreamCmd::Open {
                link, client_id, ..
            } => {
                self.open.insert(link, client_id);
                h.upstream(UpstreamEvent::LinkUp {
                    link,
                    session_present: false,
                    lost: vec![],
                });
            }
            UpstreamCmd::Close { link, .. } => {
                self.open.remove(&link);
                // Clean sessions only: the broker forgets the link's subscriptions.
                self.subscribed.retain(|(l, _)| *l != link);
                h.upstream(UpstreamEvent::Closed { link });
            }
            UpstreamCmd::Subscribe { token, filter, .. } => {
                self.subscribed.insert((link, filter));
                h.upstream(UpstreamEvent::SubAck {
                    link,
                    token,
                    granted: Some(MqttQos::AtLeastOnce),
                });
            }
            UpstreamCmd::Unsubscribe { token, filter, .. } => {
                self.subscribed.remove(&(link, filter));
                h.upstream(UpstreamEvent::UnsubAck { link, token });
            }
            UpstreamCmd::Publish {
                token,
                qos: MqttQos::AtLeastOnce | MqttQos::ExactlyOnce,
                ..
            } => {
                h.upstream(UpstreamEvent::PublishDone { link, token });
            }
            _ => {}
        }
    }
}

fn run(mode: UpstreamMode, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut cfg = GatewayConfig::default();
    cfg.upstream.mode = mode;
    let mut h = Harness::new(cfg);
    let mut broker = Broker {
        mode,
        ..Broker::default()
    };
    let mut pkid = 0u16;
    for s in steps {
        match s {
            Step::Connect(m) => h.raw(&peer(m + 1), &connect(&format!("m{m}"), false, true, 10)),
            Step::Subscribe(m, f) => h.recv(
                &peer(m + 1),
                Packet::Subscribe(Subscribe {
                    dup: false,
                    qos: QoS::One,
                    msg_id: 7,
                    topic: TopicRef::Name(FILTERS[f]),
                }),
            ),
            Step::Unsubscribe(m, f) => h.recv(
                &peer(m + 1),
                Packet::Unsubscribe(Unsubscribe {
                    msg_id: 8,
                    topic: TopicRef::Name(FILTERS[f]),
                }),
            ),
            Step::Sleep(m) => h.recv(&peer(m + 1), Packet::Disconnect { duration: Some(20) }),
            Step::Disconnect(m) => h.recv(&peer(m + 1), Packet::Disconnect { duration: None }),
            Step::Garbage(m, bytes) => h.raw(&peer(m + 1), &bytes),
            Step::Advance(secs) => h.advance(Duration::from_secs(secs)),
            Step::Message(m, t, qos, retain) => {
                let link = match mode {
                    UpstreamMode::Aggregating => Some(LinkId::GATEWAY),
                    UpstreamMode::Transparent => {
                        let id = format!("m{m}");
                        broker.open.iter().find(|(_, c)| **c == id).map(|(l, _)| *l)
                    }
                };
                if let Some(link) = link {
                    pkid = pkid.wrapping_add(1).max(1);
                    let qos = MqttQos::from_level(qos).expect("a QoS level");
                    h.upstream(UpstreamEvent::Message {
                        link,
                        delivery: DeliveryId { pkid, qos },
                        topic: TOPICS[t].into(),
                        payload: Bytes::from_static(b"v"),
                        qos,
                        retain,
                    });
                    if mode == UpstreamMode::Aggregating {
                        let cmds = h.take_cmds();
                        let want = if qos.is_acknowledged() {
                            vec![pkid]
                        } else {
                            vec![]
                        };
                        prop_assert_eq!(acks(&cmds), want, "broker acked once, at once");
                        h.cmds = cmds;
                    }
                }
            }
            Step::SharedLinkBounce => {
                h.upstream(UpstreamEvent::LinkDown {
                    link: LinkId::GATEWAY,
                    reason: "bounce".into(),
                });
                broker.subscribed.retain(|(l, _)| *l != LinkId::GATEWAY);
                h.upstream(UpstreamEvent::LinkUp {
                    link: LinkId::GATEWAY,
                    session_present: false,
                    lost: vec![],
                });
            }
        }
        broker.answer(&mut h);
        h.clear_datagrams();
    }
    // Every client leaves: gracefully, and whatever is left times out.
    for m in 0..MOTES {
        h.recv(&peer(m + 1), Packet::Disconnect { duration: None });
    }
    h.advance(Duration::from_secs(3600));
    broker.answer(&mut h);
    prop_assert!(
        broker.subscribed.is_empty(),
        "left subscribed upstream: {:?}",
        broker.subscribed
    );
    prop_assert!(broker.open.is_empty(), "left open: {:?}", broker.open);
    Ok(())
}

/// Cases per property: `PROPTEST_CASES` when it is set (and a number), else `default`.
/// `ProptestConfig::default()` reads the variable, but `with_cases` would override it.
fn cases_or(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases_or(1_000)))]

    #[test]
    fn aggregating_histories_keep_the_union_exact_and_ack_every_message_once(
        steps in proptest::collection::vec(step(), 1..60)
    ) {
        run(UpstreamMode::Aggregating, steps)?;
    }

    #[test]
    fn transparent_histories_leave_nothing_open_or_subscribed(
        steps in proptest::collection::vec(step(), 1..60)
    ) {
        run(UpstreamMode::Transparent, steps)?;
    }
}
