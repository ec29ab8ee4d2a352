//! Session life cycle: CONNECT and Will prompting, the upstream link's answers, DISCONNECT,
//! keep-alive supervision and Lost (`docs/protocol.md`, "Connecting", "Takeover and the session
//! table", "Keep-alive and supervision", "Disconnect, Lost and unknown clients").

use std::time::Duration;

use bytes::Bytes;
use sn_codec::{Connect, Instant, Packet, ReturnCode, WillTopic};

use super::addr::PeerAddr;
use super::event::{DropReason, GatewayEvent, LostReason};
use super::flow::Flow;
use super::policy::AdmissionRefusal;
use super::session::{ConnectPhase, Session, State, WillSpec};
use super::topics;
use super::upstream::MqttQos;
use super::upstream::seam::Opened;
use super::{Gateway, SessionId, downlink, link_events};

impl Gateway {
    pub(super) fn on_connect(&mut self, now: Instant, from: PeerAddr, c: Connect<'_>) {
        let client_id = match std::str::from_utf8(c.client_id) {
            Ok(id)
                if !id.is_empty()
                    && id.len() <= self.cfg.client_id_max_len
                    && !id.contains('\0') =>
            {
                id.to_owned()
            }
            _ => {
                let shown = String::from_utf8_lossy(c.client_id).into_owned();
                return self.refuse_connect_limited(now, &from, shown, ReturnCode::NotSupported);
            }
        };

        let paired = match self.admit(now, &client_id, &from) {
            Ok(paired) => paired,
            Err(why) => {
                let reason = match why {
                    AdmissionRefusal::NotRegistered => DropReason::NotRegistered,
                    AdmissionRefusal::WrongAddress => DropReason::PinnedElsewhere,
                };
                self.drop_from(Some(from.clone()), reason);
                return self.refuse_connect_limited(
                    now,
                    &from,
                    client_id,
                    ReturnCode::NotSupported,
                );
            }
        };

        let existing = self.table.find_client(&client_id);
        if let Some(s) = existing.and_then(|sid| self.table.get(sid)) {
            // A retransmitted CONNECT while the pairing is being written: the answer follows.
            if matches!(s.state, State::Connecting(ConnectPhase::Pairing { .. }))
                && *s.peer() == from
            {
                return;
            }
            // Taking a live session over from another address needs the operator's consent.
            if s.state.is_live() && *s.peer() != from && !self.cfg.allow_address_change {
                self.drop_from(Some(from.clone()), DropReason::AddressChangeRefused);
                return self.refuse_connect_limited(
                    now,
                    &from,
                    client_id,
                    ReturnCode::NotSupported,
                );
            }
        }

        if existing.is_none() {
            let registered = paired || self.is_registered(&client_id);
            if !registered && !self.allow_new_session(now, &from) {
                self.drop_from(Some(from.clone()), DropReason::RateLimited);
                return self.refuse_connect_limited(now, &from, client_id, ReturnCode::Congestion);
            }
            if !self.make_room(registered) {
                return self.refuse_connect_limited(now, &from, client_id, ReturnCode::Congestion);
            }
        }

        // The address belonged to another client: that binding ends (no Will).
        if let Some(other) = self.table.find_peer(&from)
            && Some(other) != existing
        {
            self.end_session(other, true);
        }

        let sid = match existing {
            Some(sid) => sid,
            None => self.table.insert(client_id.clone(), from.clone(), now),
        };

        if paired {
            self.event(GatewayEvent::ClientPaired {
                client_id: client_id.clone(),
                peer: from.clone(),
            });
        }
        let moved = self.table.get(sid).is_some_and(|s| *s.peer() != from);
        self.rebind(sid, from);
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        s.last_rx = now;
        s.rx_count += 1;
        s.silent_until = None;
        s.keep_alive = keep_alive(&self.cfg, c.duration);

        // A CleanSession=0 CONNECT without Will from the address of an active session resumes
        // it as it is (typically the client repeating a CONNECT whose CONNACK was lost):
        // re-opening the upstream link would make the broker redeliver what is in flight under
        // new MsgIds, and QoS 2 would no longer be exactly once.
        if !paired && !c.clean_session && !c.will && s.state == State::Active && !moved {
            self.accept_connect(now, sid);
            return self.reschedule(sid);
        }

        // CONNECT while asleep or awake is a wake signal: the session resumes.
        if !paired && matches!(s.state, State::Asleep | State::Awake) && s.upstream().is_some() {
            s.sleep = None;
            s.state_deadline = None;
            if c.will {
                s.state = State::Connecting(ConnectPhase::WillTopic);
                s.state_deadline = Some(now.saturating_add(connect_window(&self.cfg)));
                self.send_to_session(sid, &Packet::WillTopicReq);
            } else {
                self.accept_connect(now, sid);
            }
            return self.reschedule(sid);
        }

        // A new connection: whatever link the session had is closed without Will.
        if let Some(at) = self.table.detach(sid) {
            self.seam.close(at, true, &mut self.out);
        }
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        s.clean_session = c.clean_session;
        s.reset_exchanges();
        if c.clean_session {
            s.clear_state();
        } else {
            s.topic_ids.unconfirm_all();
        }
        if paired {
            // Admitted once the registry file holds it (`pairing_saved`).
            s.state = State::Connecting(ConnectPhase::Pairing { will: c.will });
            s.state_deadline = Some(now.saturating_add(connect_window(&self.cfg)));
        } else {
            self.continue_connect(now, sid, c.will);
        }
        self.reschedule(sid);
    }

    /// After admission: Will prompting, or straight to the upstream link.
    fn continue_connect(&mut self, now: Instant, sid: SessionId, will: bool) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        if will {
            s.state = State::Connecting(ConnectPhase::WillTopic);
            s.state_deadline = Some(now.saturating_add(connect_window(&self.cfg)));
            self.send_to_session(sid, &Packet::WillTopicReq);
        } else {
            if s.clean_session {
                s.will = WillSpec::default();
            }
            self.open_session_link(now, sid);
        }
    }

    /// The shell has written (or failed to write) the registry entry of a client admitted by
    /// the pairing window: the client's connection goes on, or is refused with CONNACK 0x01
    /// (the failure is the gateway's; the mote may retry once the operator has fixed it).
    pub fn pairing_saved(&mut self, now: Instant, client_id: &str, saved: bool) {
        if saved {
            self.cfg
                .clients
                .registry
                .entry(client_id.to_owned())
                .or_insert_with(super::policy::paired_entry);
        }
        let Some(sid) = self.table.find_client(client_id) else {
            return;
        };
        let Some(s) = self.table.get(sid) else {
            return;
        };
        let State::Connecting(ConnectPhase::Pairing { will }) = s.state else {
            return;
        };
        if saved {
            self.continue_connect(now, sid, will);
            self.reschedule(sid);
        } else {
            let peer = s.peer().clone();
            self.drop_from(Some(peer.clone()), DropReason::PairingNotSaved);
            self.end_session(sid, true);
            self.refuse_connect(&peer, client_id.to_owned(), ReturnCode::Congestion);
        }
        self.persist_changes();
    }

    /// Makes room for a new session when the table is full (`max_clients` counts live and
    /// remembered sessions): forgets the least recently seen Disconnected/Lost session, or, for
    /// a registered client, drops the unregistered client that was quiet longest. False when
    /// there is no room.
    fn make_room(&mut self, registered: bool) -> bool {
        if self.table.len() < self.cfg.max_clients || self.evict_one_dormant() {
            return true;
        }
        registered && self.evict_one_unregistered()
    }

    /// Refuses a CONNECT, answering only as often as [`super::policy::REFUSALS`] allows per
    /// address (every refusal is counted and reported as an event either way).
    fn refuse_connect_limited(
        &mut self,
        now: Instant,
        to: &PeerAddr,
        client_id: String,
        code: ReturnCode,
    ) {
        if self.allow_refusal(now, to) {
            self.refuse_connect(to, client_id, code);
        } else {
            self.event(GatewayEvent::ConnectRefused {
                client_id,
                peer: to.clone(),
                code: code.code(),
            });
        }
    }

    pub(super) fn refuse_connect(&mut self, to: &PeerAddr, client_id: String, code: ReturnCode) {
        self.send(to, &Packet::Connack { return_code: code });
        self.event(GatewayEvent::ConnectRefused {
            client_id,
            peer: to.clone(),
            code: code.code(),
        });
    }

    /// Forgets the least recently seen Disconnected/Lost session to make room.
    fn evict_one_dormant(&mut self) -> bool {
        let victim = self
            .table
            .iter()
            .filter(|(_, s)| !s.state.is_live())
            .min_by_key(|(_, s)| s.last_rx)
            .map(|(sid, _)| sid);
        match victim {
            Some(sid) => self.remove_session(sid).is_some(),
            None => false,
        }
    }

    /// Drops the live unregistered session that was quiet longest (it is told with
    /// DISCONNECT; its Will is published as for a lost client).
    fn evict_one_unregistered(&mut self) -> bool {
        let victim = self
            .table
            .iter()
            .filter(|(_, s)| s.state.is_live() && !self.is_registered(s.client_id()))
            .min_by_key(|(_, s)| s.last_rx)
            .map(|(sid, _)| sid);
        let Some(sid) = victim else {
            return false;
        };
        self.send_to_session(sid, &Packet::Disconnect { duration: None });
        self.lose(sid, LostReason::Evicted);
        // Not remembered either: its place is what was needed.
        self.remove_session(sid);
        true
    }

    /// Moves a session to a new address (takeover, NAT rebinding).
    pub(super) fn rebind(&mut self, sid: SessionId, to: PeerAddr) {
        let Some(from) = self.table.rebind(sid, to.clone()) else {
            return;
        };
        let Some(s) = self.table.get(sid) else {
            return;
        };
        if s.state.is_live() {
            let client_id = s.client_id().to_owned();
            self.event(GatewayEvent::ClientMoved {
                client_id,
                from,
                to,
            });
        }
    }

    /// WILLTOPIC while prompting: WILLMSGREQ next, or (no Will) the link opens; a bad topic
    /// name ends the attempt with CONNACK 0x03.
    pub(super) fn on_will_topic(&mut self, now: Instant, sid: SessionId, t: Option<WillTopic<'_>>) {
        match self.step(sid, now, |s, f| will_topic(s, f, t)) {
            Some(Prompting::Done) => self.will_complete(now, sid),
            Some(Prompting::Refused) => {
                let Some(s) = self.table.get(sid) else {
                    return;
                };
                let (peer, id) = (s.peer().clone(), s.client_id().to_owned());
                self.end_session(sid, true);
                self.refuse_connect(&peer, id, ReturnCode::NotSupported);
            }
            Some(Prompting::Waiting) | None => {}
        }
    }

    /// WILLMSG while prompting: the Will is complete and the link opens.
    pub(super) fn on_will_msg(&mut self, now: Instant, sid: SessionId, msg: &[u8]) {
        if let Some(Prompting::Done) = self.step(sid, now, |s, _| will_msg(s, msg)) {
            self.will_complete(now, sid);
        }
    }

    /// Will prompting done: a resumed sleeper re-opens its link with the new Will; others open
    /// their link now.
    fn will_complete(&mut self, now: Instant, sid: SessionId) {
        self.open_session_link(now, sid);
        self.reschedule(sid);
    }

    /// Opens (or re-opens, keeping the broker session) the client's upstream link; the client
    /// is accepted when the broker answers.
    pub(super) fn open_session_link(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        s.state = State::Connecting(ConnectPhase::Upstream);
        s.state_deadline = Some(now.saturating_add(connect_window(&self.cfg)));
        // A resumed session must not lose its broker-side state.
        let clean_session = s.clean_session && s.upstream().is_none();
        self.attach_upstream(now, sid, clean_session);
    }

    /// Gives the session a new presence at the broker through the seam, closing the one it had
    /// (without Will). An answer that comes at once is handled at once, as the connector's
    /// would be later.
    pub(super) fn attach_upstream(&mut self, now: Instant, sid: SessionId, clean_session: bool) {
        if let Some(old) = self.table.detach(sid) {
            self.seam.close(old, true, &mut self.out);
        }
        let Some(s) = self.table.get(sid) else {
            return;
        };
        let up = self.gateway_link_up;
        let opened = self
            .seam
            .open(sid, s, &self.cfg, clean_session, up, &mut self.out);
        match opened {
            Opened::Later(at) => self.table.attach(sid, at),
            Opened::Now(at) => {
                self.table.attach(sid, at);
                self.step(sid, now, |s, f| link_events::link_up(s, f, false, &[]));
            }
            Opened::Refused(at, refusal) => {
                self.table.attach(sid, at);
                self.on_link_down(sid, Some(refusal));
            }
        }
    }

    /// CONNACK accepted; the session is Active.
    pub(super) fn accept_connect(&mut self, now: Instant, sid: SessionId) {
        self.step(sid, now, accept);
    }

    pub(super) fn on_disconnect(&mut self, now: Instant, sid: SessionId, duration: Option<u16>) {
        match duration {
            Some(d) if d > 0 => self.go_to_sleep(now, sid, d),
            _ => {
                if self.step(sid, now, disconnect).is_some() {
                    self.end_session(sid, true);
                }
            }
        }
    }

    /// PINGREQ without ClientId from a session's address: PINGRESP, a wake-up, or DISCONNECT
    /// when the session is not connected.
    pub(super) fn on_pingreq(&mut self, now: Instant, sid: SessionId) {
        if self.step(sid, now, super::sleep::wake) == Some(false) {
            self.send_to_session(sid, &Packet::Disconnect { duration: None });
        }
    }

    /// Ends a session: the link is closed (gracefully: no Will; otherwise the broker publishes
    /// it). A CleanSession=0 session is remembered as Disconnected for a later reconnect.
    pub(super) fn end_session(&mut self, sid: SessionId, graceful: bool) {
        if let Some(at) = self.table.detach(sid) {
            self.seam.close(at, graceful, &mut self.out);
        }
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        s.end(graceful);
        if s.clean_session {
            self.remove_session(sid);
        } else {
            self.table.unbind_peer(sid);
            self.reschedule(sid);
        }
    }

    /// The client is Lost: its link is dropped without DISCONNECT so the broker publishes the
    /// Will.
    pub(super) fn lose(&mut self, sid: SessionId, reason: LostReason) {
        let Some(s) = self.table.get(sid) else {
            return;
        };
        let (client_id, peer) = (s.client_id().to_owned(), s.peer().clone());
        self.end_session(sid, false);
        self.event(GatewayEvent::ClientLost {
            client_id,
            peer,
            reason,
        });
    }

    /// A deadline of the session passed (it may have moved since it was filed).
    pub(super) fn session_timeout(&mut self, now: Instant, sid: SessionId) {
        match self.step(sid, now, timed_out) {
            Some(Expired::ConnectWindow) => {
                let Some(s) = self.table.get(sid) else {
                    return;
                };
                let (peer, client_id) = (s.peer().clone(), s.client_id().to_owned());
                self.end_session(sid, true);
                self.refuse_connect(&peer, client_id, ReturnCode::Congestion);
            }
            Some(Expired::Lost(reason)) => self.lose(sid, reason),
            Some(Expired::Forgotten) => {
                self.remove_session(sid);
            }
            Some(Expired::Nothing) | None => {}
        }
    }
}

/// The supervised keep-alive period for a CONNECT Duration.
fn keep_alive(cfg: &super::config::GatewayConfig, duration: u16) -> Option<Duration> {
    let d = Duration::from_secs(u64::from(duration));
    match cfg.max_keep_alive {
        Some(max) if d.is_zero() || d > max => Some(max),
        _ if d.is_zero() => None,
        _ => Some(d),
    }
}

/// How long a half-open connect may take: T_RETRY × N_RETRY.
fn connect_window(cfg: &super::config::GatewayConfig) -> Duration {
    cfg.t_retry.saturating_mul(u32::from(cfg.n_retry).max(1))
}

/// CONNACK accepted; the session is Active. A sleeper woken by CONNECT may have a message in
/// flight from before its sleep: it goes again at once (its retry timer ran out while the
/// client slept), else the queue starts.
pub(super) fn accept(s: &mut Session, f: &mut Flow<'_>) {
    s.state = State::Active;
    s.state_deadline = None;
    s.last_rx = f.now;
    // A stranger's session that never says anything after its CONNECT does not keep its place
    // for long.
    s.silent_until = match f.cfg.limits.unregistered_idle_timeout {
        Some(t) if f.cfg.clients.entry(s.client_id()).is_none() => Some(f.now.saturating_add(t)),
        _ => None,
    };
    f.reply(
        s,
        &Packet::Connack {
            return_code: ReturnCode::Accepted,
        },
    );
    f.out.event(GatewayEvent::ClientConnected {
        client_id: s.client_id().to_owned(),
        peer: s.peer().clone(),
    });
    downlink::resend_inflight(s, f);
}

/// Where Will prompting stands after a client's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prompting {
    /// Not a step of the prompting (ignored), or WILLMSGREQ sent.
    Waiting,
    /// The Will is complete: the upstream link opens.
    Done,
    /// The Will topic is unusable: the attempt ends with CONNACK 0x03.
    Refused,
}

/// WILLTOPIC (empty: no Will) while the gateway prompts for it.
fn will_topic(s: &mut Session, f: &mut Flow<'_>, t: Option<WillTopic<'_>>) -> Prompting {
    if s.state != State::Connecting(ConnectPhase::WillTopic) {
        return Prompting::Waiting;
    }
    let Some(t) = t else {
        s.will = WillSpec::default();
        return Prompting::Done;
    };
    match topics::topic_name(t.topic) {
        Ok(name) => {
            let qos = MqttQos::from_sn(t.qos);
            s.will.topic = Some((name.to_owned(), qos, t.retain));
            s.state = State::Connecting(ConnectPhase::WillMsg);
            f.reply(s, &Packet::WillMsgReq);
            Prompting::Waiting
        }
        Err(_) => Prompting::Refused,
    }
}

/// WILLMSG while the gateway prompts for it.
fn will_msg(s: &mut Session, msg: &[u8]) -> Prompting {
    if s.state != State::Connecting(ConnectPhase::WillMsg) {
        return Prompting::Waiting;
    }
    s.will.msg = Bytes::copy_from_slice(msg);
    Prompting::Done
}

/// What a passed deadline means for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// Nothing ends (a retransmission may have gone out, or the deadline moved).
    Nothing,
    /// The connection setup took longer than T_RETRY × N_RETRY: CONNACK congestion.
    ConnectWindow,
    /// The client is lost.
    Lost(LostReason),
    /// A remembered (disconnected or lost) session was silent for `remember_disconnected_for`:
    /// it is forgotten.
    Forgotten,
}

/// Checks the session's deadlines against now ([`Session::deadline`] filed it): the time a
/// remembered session is kept, connection setup, sleep timer, keep-alive supervision, an
/// unregistered client's silence, and the retransmission of the message in flight.
fn timed_out(s: &mut Session, f: &mut Flow<'_>) -> Expired {
    if matches!(s.state, State::Disconnected | State::Lost)
        && f.cfg
            .remember_disconnected_for
            .is_some_and(|d| f.now >= s.last_rx.saturating_add(d))
    {
        return Expired::Forgotten;
    }
    if let Some(deadline) = s.state_deadline
        && f.now >= deadline
    {
        match s.state {
            State::Connecting(_) => return Expired::ConnectWindow,
            State::Asleep | State::Awake => return Expired::Lost(LostReason::SleepExpired),
            _ => s.state_deadline = None,
        }
    }
    if s.state == State::Active {
        if let Some(k) = s.keep_alive
            && f.now >= s.last_rx.saturating_add(f.cfg.tolerance.supervise(k))
        {
            return Expired::Lost(LostReason::KeepAliveExpired);
        }
        if s.silent_until.is_some_and(|at| f.now >= at) {
            return Expired::Lost(LostReason::SilentAfterConnect);
        }
    }
    match downlink::retransmit_due(s, f) {
        Some(reason) => Expired::Lost(reason),
        None => Expired::Nothing,
    }
}

/// DISCONNECT without a duration: answered with DISCONNECT and reported; the gateway then ends
/// the session.
fn disconnect(s: &mut Session, f: &mut Flow<'_>) {
    f.reply(s, &Packet::Disconnect { duration: None });
    f.out.event(GatewayEvent::ClientDisconnected {
        client_id: s.client_id().to_owned(),
        peer: s.peer().clone(),
    });
}
