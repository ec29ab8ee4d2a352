//! The scenario harness: drives a [`Gateway`] like the shell does, with time under control.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sn_codec::{Connect, Instant, Packet};

use crate::core::Gateway;
use crate::core::addr::{ListenerId, PeerAddr, Wnid};
use crate::core::config::GatewayConfig;
use crate::core::event::{Destination, GatewayEvent};
use crate::core::store::{SessionRecord, StoreCmd, StoredMessage};
use crate::core::upstream::{DeliveryId, LinkId, MqttQos, UpstreamCmd, UpstreamEvent};

pub(super) struct Harness {
    pub(super) gw: Gateway,
    pub(super) now: Instant,
    /// Datagrams sent, in order: destination and bytes.
    pub(super) sent: Vec<(SocketAddr, Vec<u8>)>,
    pub(super) cmds: Vec<UpstreamCmd>,
    pub(super) events: Vec<GatewayEvent>,
    /// Multicast datagrams: listener, TTL, bytes.
    pub(super) multicast: Vec<(Option<ListenerId>, Option<u8>, Vec<u8>)>,
    /// The in-memory state store: the last record written per ClientId.
    pub(super) store: BTreeMap<String, SessionRecord>,
    /// State-store commands received (writes and deletes).
    pub(super) store_cmds: usize,
    /// The in-memory store's custody messages, by sequence number.
    pub(super) held: BTreeMap<u64, StoredMessage>,
}

pub(super) fn encode(p: &Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; p.encoded_len().unwrap()];
    let n = p.encode(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// A client at 10.0.0.`n`:5000.
pub(super) fn peer(n: u8) -> PeerAddr {
    PeerAddr::Udp {
        listener: ListenerId(0),
        addr: SocketAddr::from(([10, 0, 0, n], 5000)),
    }
}

/// A node behind the forwarder at 10.0.1.1:6000.
pub(super) fn node(wnid: &[u8]) -> PeerAddr {
    PeerAddr::Forwarded {
        listener: ListenerId(0),
        forwarder: SocketAddr::from(([10, 0, 1, 1], 6000)),
        wnid: Wnid(wnid.into()),
    }
}

pub(super) fn connect(id: &str, will: bool, clean: bool, keep_alive: u16) -> Vec<u8> {
    encode(&Packet::Connect(Connect {
        will,
        clean_session: clean,
        duration: keep_alive,
        client_id: id.as_bytes(),
    }))
}

impl Harness {
    pub(super) fn new(cfg: GatewayConfig) -> Self {
        let mut h = Self::restored(cfg, BTreeMap::new(), Instant::from_millis(1_000_000));
        h.clear();
        h
    }

    /// A gateway started at `now` that restores `store` (as after a restart), with its own
    /// link up; the upstream commands so far are kept (the restored sessions' `Open`s).
    pub(super) fn restored(
        cfg: GatewayConfig,
        store: BTreeMap<String, SessionRecord>,
        now: Instant,
    ) -> Self {
        let mut h = Self::restored_with_link(cfg, store, now, false);
        h.clear_datagrams();
        h
    }

    /// [`Harness::restored`], the gateway's link coming up with the broker's session present
    /// or not; what the restored sessions sent on that is kept.
    pub(super) fn restored_with_link(
        cfg: GatewayConfig,
        store: BTreeMap<String, SessionRecord>,
        now: Instant,
        session_present: bool,
    ) -> Self {
        let mut gw = Gateway::new(cfg, now, 7);
        gw.restore(now, store.values().cloned().collect());
        let mut h = Harness {
            gw,
            now,
            sent: vec![],
            cmds: vec![],
            events: vec![],
            multicast: vec![],
            store,
            store_cmds: 0,
            held: BTreeMap::new(),
        };
        h.drain();
        h.upstream(UpstreamEvent::LinkUp {
            link: LinkId::GATEWAY,
            session_present,
            lost: vec![],
        });
        h
    }

    pub(super) fn default() -> Self {
        Self::new(GatewayConfig::default())
    }

    /// Forgets datagrams and events, keeping the upstream commands.
    pub(super) fn clear_datagrams(&mut self) {
        self.multicast.clear();
        self.sent.clear();
        self.events.clear();
    }

    pub(super) fn clear(&mut self) {
        self.multicast.clear();
        self.sent.clear();
        self.cmds.clear();
        self.events.clear();
    }

    fn drain(&mut self) {
        let mut buf = vec![0u8; 70_000];
        while let Some(t) = self.gw.poll_transmit(&mut buf) {
            match t.to {
                Destination::Unicast { addr, .. } => self.sent.push((addr, buf[..t.len].to_vec())),
                Destination::Multicast { listener, ttl } => {
                    self.multicast.push((listener, ttl, buf[..t.len].to_vec()))
                }
            }
        }
        while let Some(c) = self.gw.poll_upstream() {
            self.cmds.push(c);
        }
        while let Some(e) = self.gw.poll_event() {
            self.events.push(e);
        }
        while let Some(c) = self.gw.poll_store() {
            self.store_cmds += 1;
            match c {
                StoreCmd::PutSession(r) => {
                    self.store.insert(r.client_id.clone(), *r);
                }
                StoreCmd::DeleteSession { client_id } => {
                    self.store.remove(&client_id);
                }
                StoreCmd::PutMessage(m) => {
                    self.held.insert(m.seq, *m);
                }
                StoreCmd::SetPubrec { seq, pkid } => {
                    if let Some(m) = self.held.get_mut(&seq) {
                        m.pubrec = pkid;
                    }
                }
                StoreCmd::DeleteMessage { seq } => {
                    self.held.remove(&seq);
                }
            }
        }
        // Every scenario checks the session table after every input.
        if let Err(e) = self.gw.check_invariants() {
            panic!("session table: {e}");
        }
    }

    /// Delivers raw bytes from a peer.
    pub(super) fn raw(&mut self, from: &PeerAddr, bytes: &[u8]) {
        // A forwarded node's datagram arrives encapsulated from the forwarder.
        match from {
            PeerAddr::Udp { .. } => self.gw.handle_datagram(self.now, from.clone(), bytes),
            PeerAddr::Forwarded {
                listener,
                forwarder,
                wnid,
            } => {
                let mut buf = vec![0u8; bytes.len() + wnid.0.len() + 3];
                let e = sn_codec::Encapsulated {
                    radius: 0,
                    wnid: &wnid.0,
                    inner: bytes,
                };
                let n = e.encode(&mut buf).unwrap();
                let udp = PeerAddr::Udp {
                    listener: *listener,
                    addr: *forwarder,
                };
                self.gw.handle_datagram(self.now, udp, &buf[..n]);
            }
        }
        self.drain();
    }

    /// Delivers a packet from a peer.
    pub(super) fn recv(&mut self, from: &PeerAddr, p: Packet<'_>) {
        self.raw(from, &encode(&p));
    }

    /// The shell's answer to a `ClientPaired` event: the registry file was (not) written.
    pub(super) fn pairing_saved(&mut self, client_id: &str, saved: bool) {
        self.gw.pairing_saved(self.now, client_id, saved);
        self.drain();
    }

    /// The store reports that it cannot write (`true`) or can again.
    pub(super) fn store_failing(&mut self, failing: bool) {
        self.gw.handle_store_failing(self.now, failing);
        self.drain();
    }

    /// The store reports messages up to `upto` durable.
    pub(super) fn durable_upto(&mut self, upto: u64) {
        self.gw.handle_durable(self.now, upto);
        self.drain();
    }

    /// The store reports every message written so far durable.
    pub(super) fn durable(&mut self) {
        if let Some(&upto) = self.held.keys().next_back() {
            self.gw.handle_durable(self.now, upto);
            self.drain();
        }
    }

    /// The store reports every command issued so far committed.
    pub(super) fn committed(&mut self) {
        self.gw
            .handle_store_committed(self.now, self.store_cmds as u64);
        self.drain();
    }

    pub(super) fn upstream(&mut self, e: UpstreamEvent) {
        self.gw.handle_upstream(self.now, e);
        self.drain();
    }

    /// Moves the clock forward by `d`, firing every deadline on the way in order.
    pub(super) fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(at) = self.gw.poll_timeout() {
            assert!(at >= self.now, "poll_timeout in the past");
            if at > target {
                break;
            }
            self.now = at;
            self.gw.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    /// Datagrams sent to `to` since the last clear, decoded (inner message for forwarded nodes).
    pub(super) fn sent_to(&self, to: &PeerAddr) -> Vec<Vec<u8>> {
        self.sent
            .iter()
            .filter(|(addr, _)| *addr == to.socket_addr())
            .map(|(_, b)| match to {
                PeerAddr::Forwarded { wnid, .. } => {
                    let e = sn_codec::Encapsulated::decode(b).unwrap();
                    assert_eq!(e.wnid, &wnid.0[..], "reply must echo the WNID");
                    e.inner.to_vec()
                }
                PeerAddr::Udp { .. } => b.clone(),
            })
            .collect()
    }

    /// Asserts that exactly these packets were sent to `to` (since the last clear), then clears.
    pub(super) fn expect(&mut self, to: &PeerAddr, packets: &[Packet<'_>]) {
        let got: Vec<String> = self
            .sent_to(to)
            .iter()
            .map(|b| Packet::decode(b).unwrap().to_string())
            .collect();
        let want: Vec<String> = packets.iter().map(|p| p.to_string()).collect();
        assert_eq!(got, want);
        let got_bytes = self.sent_to(to);
        let want_bytes: Vec<Vec<u8>> = packets.iter().map(encode).collect();
        assert_eq!(got_bytes, want_bytes);
        self.sent.retain(|(a, _)| *a != to.socket_addr());
    }

    /// Asserts that nothing was sent to anybody.
    pub(super) fn expect_silence(&self) {
        let shown: Vec<String> = self
            .sent
            .iter()
            .map(|(a, b)| format!("{a}: {:?}", Packet::decode(b).map(|p| p.to_string())))
            .collect();
        assert!(shown.is_empty(), "unexpected datagrams: {shown:?}");
    }

    /// The upstream commands issued since the last call.
    pub(super) fn take_cmds(&mut self) -> Vec<UpstreamCmd> {
        std::mem::take(&mut self.cmds)
    }

    /// The upstream link opened by the last `Open` command.
    pub(super) fn opened_link(&self) -> LinkId {
        self.cmds
            .iter()
            .rev()
            .find_map(|c| match c {
                UpstreamCmd::Open { link, .. } => Some(*link),
                _ => None,
            })
            .expect("an Open command")
    }

    /// Connects `id` from `from` with the broker accepting; returns its link.
    pub(super) fn connect(
        &mut self,
        from: &PeerAddr,
        id: &str,
        clean: bool,
        keep_alive: u16,
    ) -> LinkId {
        self.raw(from, &connect(id, false, clean, keep_alive));
        let link = self.opened_link();
        self.upstream(UpstreamEvent::LinkUp {
            link,
            session_present: false,
            lost: vec![],
        });
        self.expect(
            from,
            &[Packet::Connack {
                return_code: sn_codec::ReturnCode::Accepted,
            }],
        );
        self.clear();
        link
    }

    /// The broker answers the last `Subscribe` command on `link` with `granted`.
    pub(super) fn grant_subscribe(&mut self, link: LinkId, granted: MqttQos) {
        let token = self
            .take_cmds()
            .iter()
            .rev()
            .find_map(|c| match c {
                UpstreamCmd::Subscribe { token, .. } => Some(*token),
                _ => None,
            })
            .expect("a subscribe");
        self.upstream(UpstreamEvent::SubAck {
            link,
            token,
            granted: Some(granted),
        });
    }

    /// The token of the last `Publish` command on `topic` (the commands are taken).
    pub(super) fn published(&mut self, topic: &str) -> crate::core::upstream::Token {
        self.take_cmds()
            .iter()
            .rev()
            .find_map(|c| match c {
                UpstreamCmd::Publish {
                    token, topic: t, ..
                } if t == topic => Some(*token),
                _ => None,
            })
            .expect("a publish on the topic")
    }

    pub(super) fn has_event(&self, f: impl Fn(&GatewayEvent) -> bool) -> bool {
        self.events.iter().any(f)
    }
}

/// A broker message for `link` with packet id `pkid`.
pub(super) fn message(
    link: LinkId,
    pkid: u16,
    topic: &str,
    payload: &'static [u8],
    qos: u8,
) -> UpstreamEvent {
    let qos = MqttQos::from_level(qos).expect("a QoS level");
    UpstreamEvent::Message {
        link,
        delivery: DeliveryId { pkid, qos },
        topic: topic.into(),
        payload: Bytes::from_static(payload),
        qos,
        retain: false,
    }
}

/// The packet ids of the `Ack` commands among `cmds`, in order.
pub(super) fn acks(cmds: &[UpstreamCmd]) -> Vec<u16> {
    cmds.iter()
        .filter_map(|c| match c {
            UpstreamCmd::Ack { delivery, .. } => Some(delivery.pkid),
            _ => None,
        })
        .collect()
}
