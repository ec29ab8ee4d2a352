//! [`Outputs`]: everything an input produces for the shell — datagrams, upstream commands,
//! events — and the counters kept as they are produced. Every drop and every retransmission
//! goes through [`Outputs::event`], so each is counted exactly once, under its reason.

use std::collections::VecDeque;

use sn_codec::{Instant, Packet};

use super::addr::PeerAddr;
use super::event::{Destination, DropReason, GatewayEvent, Transmit};
use super::outbox::{Outbox, Unencodable};
use super::stats::Stats;
use super::store::StoreCmd;
use super::upstream::{DeliveryId, LinkId, Token, UpstreamCmd};

/// The core's outputs, drained by the shell after every input.
#[derive(Debug)]
pub(crate) struct Outputs {
    /// Encoded datagrams.
    datagrams: Outbox,
    /// Commands for the upstream connector.
    cmds: VecDeque<UpstreamCmd>,
    /// Events for logs, metrics and tests.
    events: VecDeque<GatewayEvent>,
    /// Commands for the state store.
    store: VecDeque<StoreCmd>,
    /// Counters since start.
    pub(crate) stats: Stats,
    /// Largest datagram a client's transport takes (`max_packet_size`).
    max_packet_size: usize,
    /// The last token handed out ([`Outputs::token`]).
    last_token: u64,
    /// State-store commands queued since start (the store reports how many it committed).
    pub(crate) store_issued: u64,
    /// What this input sends only once its state-store writes are durable.
    pub(crate) after_store: Vec<AfterStore>,
}

/// Something sent only once the state-store writes before it are durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterStore {
    /// An upstream command.
    Command(UpstreamCmd),
    /// The held QoS 2 PUBLISH or PUBREL in flight to the client with this ClientId (its MsgId
    /// and phase are recorded first, so a restart repeats neither delivery nor release); held
    /// since the instant given.
    SendHeld(String, Instant),
}

impl Outputs {
    /// Empty outputs for clients whose datagrams are at most `max_packet_size` octets.
    pub(crate) fn new(max_packet_size: usize) -> Self {
        Outputs {
            datagrams: Outbox::default(),
            cmds: VecDeque::new(),
            events: VecDeque::new(),
            store: VecDeque::new(),
            stats: Stats::default(),
            max_packet_size,
            last_token: 0,
            store_issued: 0,
            after_store: Vec::new(),
        }
    }

    /// Queues `packet` to `to`; a packet too large for the client's transport is dropped and
    /// counted instead (false).
    pub(crate) fn send(&mut self, to: &PeerAddr, packet: &Packet<'_>) -> bool {
        match self.datagrams.push(to, packet, self.max_packet_size) {
            Ok(()) => true,
            Err(Unencodable) => {
                self.drop(Some(to.clone()), DropReason::TooLargeForClient);
                false
            }
        }
    }

    /// Queues `packet` to a multicast destination (discovery).
    pub(crate) fn send_to(&mut self, to: Destination, packet: &Packet<'_>) {
        let _ = self.datagrams.push_to(to, packet);
    }

    /// A datagram or message from (or for) `peer` is dropped for `reason`.
    pub(crate) fn drop(&mut self, peer: Option<PeerAddr>, reason: DropReason) {
        self.event(GatewayEvent::Dropped { peer, reason });
    }

    /// Reports `e`, counting drops and retransmissions.
    pub(crate) fn event(&mut self, e: GatewayEvent) {
        match &e {
            GatewayEvent::Dropped { reason, .. } => self.stats.count_drop(reason.label()),
            GatewayEvent::Retransmitted { msg_type, .. } => {
                self.stats.count_retransmission(*msg_type)
            }
            _ => {}
        }
        self.events.push_back(e);
    }

    /// A fresh token to correlate an upstream request with its answer.
    pub(crate) fn token(&mut self) -> Token {
        self.last_token += 1;
        Token(self.last_token)
    }

    /// Queues a command for the upstream connector.
    pub(crate) fn command(&mut self, c: UpstreamCmd) {
        self.cmds.push_back(c);
    }

    /// The next upstream command, in order.
    pub(crate) fn next_command(&mut self) -> Option<UpstreamCmd> {
        self.cmds.pop_front()
    }

    /// The next datagram, written into `buf`, counted by message type.
    pub(crate) fn next_datagram(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let t = self.datagrams.pop(buf)?;
        self.stats.count_out(t.msg_type);
        Some(t)
    }

    /// The next event.
    pub(crate) fn next_event(&mut self) -> Option<GatewayEvent> {
        self.events.pop_front()
    }

    /// Queues a command for the state store.
    pub(crate) fn store(&mut self, c: StoreCmd) {
        self.store_issued += 1;
        self.store.push_back(c);
    }

    /// Acknowledges a broker message once what this input stores is durable (the gateway
    /// holds the message for its clients; see [`super::Gateway::handle_store_committed`]).
    pub(crate) fn ack_after_store(&mut self, link: LinkId, delivery: DeliveryId) {
        self.after_store
            .push(AfterStore::Command(UpstreamCmd::Ack { link, delivery }));
    }

    /// Sends `cmd` once what this input stores is durable.
    pub(crate) fn after_store(&mut self, cmd: UpstreamCmd) {
        self.after_store.push(AfterStore::Command(cmd));
    }

    /// Sends the held message in flight to `client_id` once what this input stores is
    /// durable.
    pub(crate) fn send_held_after_store(&mut self, client_id: &str, now: Instant) {
        self.after_store
            .push(AfterStore::SendHeld(client_id.to_owned(), now));
    }

    /// The next state-store command, in order.
    pub(crate) fn next_store(&mut self) -> Option<StoreCmd> {
        self.store.pop_front()
    }
}
