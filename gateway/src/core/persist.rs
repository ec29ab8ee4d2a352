//! Keeping CleanSession=0 sessions in the state store, and resuming them after a restart
//! (`docs/architecture.md`, "State that survives a restart").
//!
//! After every input the gateway looks at the sessions the input touched: a CleanSession=0
//! session whose stored part (state, address, keep-alive or sleep, Will, subscriptions, topic
//! ids) changed is written again as a whole record; a session that ended with CleanSession=1
//! or was forgotten is deleted. What changed is told by a digest of the stored part, so a
//! PUBLISH that changes nothing stored writes nothing.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};

use sn_codec::{Instant, QoS};

use super::Gateway;
use super::downlink;
use super::outputs::AfterStore;
use super::session::{ConnectPhase, Session, State, SubKind};
use super::session::{Downlink, Inflight, InflightStep, OwedPubrel, UplinkStage};
use super::store::{
    SessionRecord, StoreCmd, StoredDownlink, StoredState, StoredSubscription, StoredTopicId,
    StoredTopicKind,
};
use super::upstream::MqttQos;

/// Upstream commands that wait for state-store writes: in aggregating mode the gateway
/// acknowledges a message the broker sent once the sessions that now hold it are durably
/// stored, and custody sends a QoS 2 PUBREL once the broker's PUBREC is, so a kill loses or
/// repeats none of them.
#[derive(Debug, Default)]
pub(super) struct StoreWaits {
    /// Store commands the store reported committed.
    committed: u64,
    /// (store commands that must be committed first, what waits), oldest first.
    waiting: VecDeque<(u64, AfterStore)>,
}

impl Gateway {
    /// After an input: queues what the state store must write or delete.
    pub(super) fn persist_changes(&mut self) {
        if !self.cfg.persist_sessions {
            self.settle_store_waits();
            return;
        }
        for client_id in self.table.drain_forgotten() {
            self.out.store(StoreCmd::DeleteSession { client_id });
        }
        let out = &mut self.out;
        self.table.drain_touched(|s| {
            if s.clean_session {
                if s.stored.take().is_some() {
                    let client_id = s.client_id().to_owned();
                    out.store(StoreCmd::DeleteSession { client_id });
                }
                return;
            }
            let digest = digest(s);
            if s.stored != Some(digest) {
                s.stored = Some(digest);
                out.store(StoreCmd::PutSession(Box::new(record(s))));
            }
        });
        self.settle_store_waits();
    }

    /// Upstream commands of this input that wait for its writes ([`Outputs::after_store`]):
    /// sent now when nothing is kept (no state database, or it cannot be written), else once
    /// every store command issued so far is committed.
    fn settle_store_waits(&mut self) {
        let mut cmds = std::mem::take(&mut self.out.after_store);
        let upto = self.out.store_issued;
        let at_once = !self.cfg.persist_sessions || self.custody.fallback;
        let mut now_due = Vec::new();
        for cmd in cmds.drain(..) {
            if at_once
                || (self.store_waits.committed >= upto && self.store_waits.waiting.is_empty())
            {
                now_due.push(cmd);
            } else {
                self.store_waits.waiting.push_back((upto, cmd));
            }
        }
        self.out.after_store = cmds;
        for due in now_due {
            self.after_store_due(due, None);
        }
    }

    /// Sends what waited for the store (at `now`, or when it was queued if not known).
    fn after_store_due(&mut self, due: AfterStore, now: Option<Instant>) {
        match due {
            AfterStore::Command(cmd) => self.out.command(cmd),
            AfterStore::SendHeld(client_id, held_at) => {
                if let Some(sid) = self.table.find_client(&client_id) {
                    self.step(sid, now.unwrap_or(held_at), downlink::send_held);
                }
            }
        }
    }

    /// The state store committed the first `n` commands the gateway issued: the upstream
    /// commands that waited for them go out.
    pub fn handle_store_committed(&mut self, now: Instant, n: u64) {
        self.store_waits.committed = n;
        self.release_store_waits(now, n);
        // What a held send changed is stored like any other change.
        self.persist_changes();
    }

    /// Sends the held upstream commands whose writes are among the first `upto` commands.
    pub(super) fn release_store_waits(&mut self, now: Instant, upto: u64) {
        while self
            .store_waits
            .waiting
            .front()
            .is_some_and(|(after, _)| *after <= upto)
        {
            if let Some((_, due)) = self.store_waits.waiting.pop_front() {
                self.after_store_due(due, Some(now));
            }
        }
    }

    /// The next command for the state store (drain after every input, like the others).
    pub fn poll_store(&mut self) -> Option<StoreCmd> {
        self.out.next_store()
    }

    /// Resumes the sessions a previous run stored, before the first input. Each gets its state
    /// back: active (keep-alive supervision from `now`), asleep (its sleep timer from `now`),
    /// or remembered as disconnected or lost; active and sleeping ones re-open their upstream
    /// session without clean session, so the broker's queued messages arrive. A record whose
    /// ClientId is already present, whose address another restored session holds, or that
    /// does not fit `max_clients` is not restored as live (the last two are kept as
    /// remembered, or skipped when the table is full). Returns how many were restored.
    pub fn restore(&mut self, now: Instant, records: Vec<SessionRecord>) -> usize {
        let mut restored = 0;
        for r in records {
            if self.table.find_client(&r.client_id).is_some()
                || self.table.len() >= self.cfg.max_clients
            {
                continue;
            }
            let address_taken = self.table.find_peer(&r.peer).is_some();
            let state = match r.state {
                StoredState::Active | StoredState::Asleep if address_taken => StoredState::Lost,
                s => s,
            };
            let sid = if address_taken {
                // Inserted under a placeholder binding would steal the address: insert, then
                // give the address back to the session that holds it.
                let holder = self.table.find_peer(&r.peer);
                let sid = self.table.insert(r.client_id.clone(), r.peer.clone(), now);
                self.table.unbind_peer(sid);
                if let Some(holder) = holder {
                    self.table.rebind(holder, r.peer.clone());
                }
                sid
            } else {
                self.table.insert(r.client_id.clone(), r.peer.clone(), now)
            };
            let Some(s) = self.table.get_mut(sid) else {
                continue;
            };
            apply(s, &r, now);
            match state {
                StoredState::Active => {
                    s.state = State::Active;
                    s.restore_on_up = true;
                    self.attach_upstream(now, sid, false);
                }
                StoredState::Asleep => {
                    let sleep = r.sleep.unwrap_or_default();
                    s.state = State::Asleep;
                    s.sleep = Some(sleep);
                    s.state_deadline =
                        Some(now.saturating_add(self.cfg.tolerance.supervise(sleep)));
                    s.restore_on_up = true;
                    self.attach_upstream(now, sid, false);
                }
                StoredState::Disconnected | StoredState::Lost => {
                    s.state = if state == StoredState::Lost {
                        State::Lost
                    } else {
                        State::Disconnected
                    };
                    self.table.unbind_peer(sid);
                }
            }
            if let Some(s) = self.table.get_mut(sid) {
                // What was read back is what is stored: nothing to write.
                s.stored = Some(digest(s));
            }
            self.reschedule(sid);
            restored += 1;
        }
        self.persist_changes();
        restored
    }
}

/// Puts a stored record's contents into a fresh session (not its state: the caller decides).
fn apply(s: &mut Session, r: &SessionRecord, now: Instant) {
    s.clean_session = false;
    s.keep_alive = r.keep_alive;
    s.sleep = r.sleep;
    s.will.topic = r.will_topic.clone();
    s.will.msg = r.will_msg.clone();
    for sub in &r.subscriptions {
        let kind = match sub.kind {
            StoredTopicKind::Name => SubKind::Name,
            StoredTopicKind::Short => SubKind::Short,
            StoredTopicKind::Predefined(id) => SubKind::Predefined(id),
        };
        s.subscriptions.insert(sub.filter.clone(), (kind, sub.qos));
    }
    for t in &r.topic_ids {
        s.topic_ids.restore(t.id, &t.name, t.confirmed);
    }
    for &msg_id in &r.qos2_unreleased {
        s.keep_unreleased(msg_id);
    }
    for &pkid in &r.pubrels_owed {
        let owed = OwedPubrel {
            token: None,
            link: None,
        };
        s.pubrels_owed.insert(pkid, owed);
    }
    for m in &r.buffered {
        s.last_downlink += 1;
        let msg = Downlink {
            topic: m.topic.clone(),
            payload: m.payload.clone(),
            qos: m.qos.to_sn(),
            retain: m.retain,
            delivery: None,
            n: s.last_downlink,
            msg_id: m.msg_id,
            broker_pkid: m.broker_pkid,
        };
        match m.msg_id {
            // The client has it: only the PUBREL is owed (sent at the first retransmission,
            // or when it wakes).
            Some(msg_id) if m.released && s.inflight.is_none() => {
                s.inflight = Some(Inflight {
                    msg,
                    msg_id,
                    step: InflightStep::Pubcomp,
                    sent_at: now,
                    retries: 0,
                    held: false,
                });
            }
            _ => s.queue.push_back(msg),
        }
    }
}

/// A message kept in a session's record, with what the record says of it.
struct Kept<'a> {
    msg: &'a Downlink,
    /// The MsgId it went to the client under (the message in flight).
    msg_id: Option<u16>,
    /// QoS 2: the client answered PUBREC.
    released: bool,
}

/// The messages kept for a session: those only the gateway holds (no upstream delivery to
/// acknowledge), QoS 0 ones only while the client is not active (an active one gets them at
/// once), and the QoS 2 message in flight with its MsgId and phase (also one the broker still
/// holds, so a restart neither delivers it twice nor leaves its MsgId unreleased). The one in
/// flight comes first.
fn buffered(s: &Session) -> impl Iterator<Item = Kept<'_>> {
    let active = stored_state(s) == StoredState::Active;
    let keep = move |m: &Downlink| m.delivery.is_none() && (m.qos != QoS::Zero || !active);
    let inflight = s.inflight.as_ref().and_then(|i| {
        let (msg_id, released) = match i.step {
            InflightStep::Regack { .. } => (i.msg.msg_id, false),
            InflightStep::Publish { .. } => (Some(i.msg_id), false),
            InflightStep::Pubcomp => (Some(i.msg_id), true),
        };
        let qos2 = i.msg.qos == QoS::Two;
        (qos2 || (keep(&i.msg) && !released)).then_some(Kept {
            msg: &i.msg,
            msg_id: msg_id.filter(|_| qos2),
            released,
        })
    });
    let queued = s.queue.iter().filter(move |m| keep(m)).map(|m| Kept {
        msg: m,
        msg_id: m.msg_id,
        released: false,
    });
    inflight.into_iter().chain(queued)
}

/// The client's QoS 2 MsgIds not released yet that a restart must know: those kept beside the
/// exchanges, and those of exchanges whose PUBREC was recorded, ascending.
fn unreleased(s: &Session) -> Vec<u16> {
    let mut ids: Vec<u16> = s.qos2_unreleased.iter().copied().collect();
    ids.extend(
        s.uplink
            .values()
            .filter(|u| u.durable && u.stage != UplinkStage::Released)
            .map(|u| u.msg_id),
    );
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The packet ids owed a PUBREL at the broker, ascending.
fn owed(s: &Session) -> Vec<u16> {
    let mut ids: Vec<u16> = s.pubrels_owed.keys().copied().collect();
    ids.extend(s.uplink.values().filter_map(|u| u.pkid));
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The state a session is stored in: what it would resume as after a restart.
fn stored_state(s: &Session) -> StoredState {
    match s.state {
        State::Active => StoredState::Active,
        State::Asleep | State::Awake => StoredState::Asleep,
        // A sleeper reconnecting with a Will update, or a new connection under way (its
        // client retries the CONNECT after a restart).
        State::Connecting(ConnectPhase::Upstream) if s.sleep.is_some() => StoredState::Asleep,
        State::Connecting(_) | State::Disconnected => StoredState::Disconnected,
        State::Lost => StoredState::Lost,
    }
}

/// A digest of what [`record`] stores (the topic ids by their change count).
fn digest(s: &Session) -> u64 {
    let mut h = DefaultHasher::new();
    stored_state(s).hash(&mut h);
    s.keep_alive.hash(&mut h);
    s.sleep.hash(&mut h);
    s.peer().hash(&mut h);
    s.will.hash(&mut h);
    s.subscriptions.hash(&mut h);
    s.topic_ids.changes().hash(&mut h);
    for k in buffered(s) {
        (k.msg.n, k.msg_id, k.released).hash(&mut h);
    }
    // What `unreleased` and `owed` are made of, without building them (no allocation on
    // every input of a stored session).
    s.qos2_unreleased.hash(&mut h);
    s.pubrels_owed.len().hash(&mut h);
    for pkid in s.pubrels_owed.keys() {
        pkid.hash(&mut h);
    }
    for u in s.uplink.values().filter(|u| u.durable) {
        (u.msg_id, u.stage == UplinkStage::Released, u.pkid).hash(&mut h);
    }
    h.finish()
}

/// The record of a CleanSession=0 session.
fn record(s: &Session) -> SessionRecord {
    SessionRecord {
        client_id: s.client_id().to_owned(),
        state: stored_state(s),
        keep_alive: s.keep_alive,
        sleep: s.sleep,
        peer: s.peer().clone(),
        will_topic: s.will.topic.clone(),
        will_msg: s.will.msg.clone(),
        subscriptions: s
            .subscriptions
            .iter()
            .map(|(filter, (kind, qos))| StoredSubscription {
                filter: filter.clone(),
                kind: match kind {
                    SubKind::Name => StoredTopicKind::Name,
                    SubKind::Short => StoredTopicKind::Short,
                    SubKind::Predefined(id) => StoredTopicKind::Predefined(*id),
                },
                qos: *qos,
            })
            .collect(),
        topic_ids: s
            .topic_ids
            .entries()
            .map(|(id, name, confirmed)| StoredTopicId {
                id,
                name: name.to_owned(),
                confirmed,
            })
            .collect(),
        buffered: buffered(s)
            .map(|k| StoredDownlink {
                topic: k.msg.topic.clone(),
                payload: k.msg.payload.clone(),
                qos: MqttQos::from_sn(k.msg.qos),
                retain: k.msg.retain,
                msg_id: k.msg_id,
                released: k.released,
                broker_pkid: k.msg.delivery.map(|d| d.pkid).or(k.msg.broker_pkid),
            })
            .collect(),
        qos2_unreleased: unreleased(s),
        pubrels_owed: owed(s),
    }
}
