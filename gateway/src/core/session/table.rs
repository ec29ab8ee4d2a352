//! [`SessionTable`]: the sessions and every index over them — by ClientId, by peer address, by
//! upstream link — and the timer set. It is the only code that inserts a session, binds it to
//! an address, attaches it to the broker or detaches it, files it under a deadline and removes
//! it, so the indexes cannot disagree with the sessions ([`SessionTable::check`] proves it in
//! tests).

use std::collections::{BTreeMap, BTreeSet};

use sn_codec::Instant;

use super::Session;
use crate::core::addr::PeerAddr;
use crate::core::config::GatewayConfig;
use crate::core::upstream::LinkId;
use crate::core::upstream::seam::Attachment;

/// Index of a session in the table.
pub(crate) type SessionId = u64;

/// The sessions, their indexes and their timers.
#[derive(Debug, Default)]
pub(crate) struct SessionTable {
    sessions: BTreeMap<SessionId, Session>,
    by_client: BTreeMap<String, SessionId>,
    /// Live sessions by the address they are bound to.
    by_peer: BTreeMap<PeerAddr, SessionId>,
    by_link: BTreeMap<LinkId, SessionId>,
    /// Sessions by their earliest deadline.
    timers: BTreeSet<(Instant, SessionId)>,
    next_id: SessionId,
    /// Remember which sessions an input touched and which stored ones it removed, for the
    /// state store (off without one: nothing is recorded).
    track: bool,
    /// Sessions changed (or possibly changed) since the last [`SessionTable::drain_touched`].
    touched: Vec<SessionId>,
    /// ClientIds of removed sessions that had a stored record.
    forgotten: Vec<String>,
}

impl SessionTable {
    /// The session `sid`.
    pub(crate) fn get(&self, sid: SessionId) -> Option<&Session> {
        self.sessions.get(&sid)
    }

    /// The session `sid`, to change what the table does not index.
    pub(crate) fn get_mut(&mut self, sid: SessionId) -> Option<&mut Session> {
        let s = self.sessions.get_mut(&sid)?;
        if self.track {
            self.touched.push(sid);
        }
        Some(s)
    }

    /// Starts remembering touched and removed sessions for the state store.
    pub(crate) fn track_changes(&mut self) {
        self.track = true;
    }

    /// Calls `f` once on every session touched since the last call (in id order), and
    /// forgets them.
    pub(crate) fn drain_touched(&mut self, mut f: impl FnMut(&mut Session)) {
        self.touched.sort_unstable();
        self.touched.dedup();
        for sid in self.touched.drain(..) {
            if let Some(s) = self.sessions.get_mut(&sid) {
                f(s);
            }
        }
    }

    /// The ClientIds of stored sessions removed since the last call.
    pub(crate) fn drain_forgotten(&mut self) -> std::vec::Drain<'_, String> {
        self.forgotten.drain(..)
    }

    /// Sessions in the table (live or remembered).
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Every session with its id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SessionId, &Session)> {
        self.sessions.iter().map(|(sid, s)| (*sid, s))
    }

    /// Every session, in ClientId order.
    pub(crate) fn in_client_order(&self) -> impl Iterator<Item = &Session> {
        self.by_client
            .values()
            .filter_map(|sid| self.sessions.get(sid))
    }

    /// The session of `client_id`.
    pub(crate) fn find_client(&self, client_id: &str) -> Option<SessionId> {
        self.by_client.get(client_id).copied()
    }

    /// The live session bound to `peer`.
    pub(crate) fn find_peer(&self, peer: &PeerAddr) -> Option<SessionId> {
        self.by_peer.get(peer).copied()
    }

    /// The session whose upstream link is `link`.
    pub(crate) fn find_link(&self, link: LinkId) -> Option<SessionId> {
        self.by_link.get(&link).copied()
    }

    /// A new session of `client_id`, bound to `peer` (the caller has made sure the ClientId
    /// has no session and the address no other binding).
    pub(crate) fn insert(&mut self, client_id: String, peer: PeerAddr, now: Instant) -> SessionId {
        self.next_id += 1;
        let sid = self.next_id;
        self.by_client.insert(client_id.clone(), sid);
        self.by_peer.insert(peer.clone(), sid);
        self.sessions
            .insert(sid, Session::new(client_id, peer, now));
        if self.track {
            self.touched.push(sid);
        }
        sid
    }

    /// Binds the session to `to` (CONNECT, takeover, NAT rebinding); returns the address it
    /// was at when that differs.
    pub(crate) fn rebind(&mut self, sid: SessionId, to: PeerAddr) -> Option<PeerAddr> {
        let s = self.sessions.get_mut(&sid)?;
        if s.peer == to {
            self.by_peer.insert(to, sid);
            return None;
        }
        if self.track {
            self.touched.push(sid);
        }
        let from = std::mem::replace(&mut s.peer, to.clone());
        if self.by_peer.get(&from) == Some(&sid) {
            self.by_peer.remove(&from);
        }
        self.by_peer.insert(to, sid);
        Some(from)
    }

    /// The session no longer owns its address (it ended but is remembered).
    pub(crate) fn unbind_peer(&mut self, sid: SessionId) {
        if let Some(s) = self.sessions.get(&sid)
            && self.by_peer.get(&s.peer) == Some(&sid)
        {
            self.by_peer.remove(&s.peer);
        }
    }

    /// Gives the session its presence at the broker (the caller has closed the one it had).
    pub(crate) fn attach(&mut self, sid: SessionId, at: Attachment) {
        debug_assert!(self.get(sid).is_some_and(|s| s.upstream.is_none()));
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.upstream = Some(at);
            s.link_up = false;
            if let Attachment::Link(link) = at {
                self.by_link.insert(link, sid);
            }
        }
    }

    /// Takes the session's presence at the broker away; the caller closes it.
    pub(crate) fn detach(&mut self, sid: SessionId) -> Option<Attachment> {
        let s = self.sessions.get_mut(&sid)?;
        s.link_up = false;
        let at = s.upstream.take()?;
        if let Attachment::Link(link) = at {
            self.by_link.remove(&link);
        }
        Some(at)
    }

    /// Removes the session and every index entry pointing at it.
    pub(crate) fn remove(&mut self, sid: SessionId) -> Option<Session> {
        let s = self.sessions.remove(&sid)?;
        if let Some(at) = s.timer_key {
            self.timers.remove(&(at, sid));
        }
        if self.by_client.get(&s.client_id) == Some(&sid) {
            self.by_client.remove(&s.client_id);
        }
        if self.by_peer.get(&s.peer) == Some(&sid) {
            self.by_peer.remove(&s.peer);
        }
        if let Some(Attachment::Link(link)) = s.upstream {
            self.by_link.remove(&link);
        }
        if self.track && s.stored.is_some() {
            self.forgotten.push(s.client_id.clone());
        }
        Some(s)
    }

    /// Files the session under its earliest deadline ([`Session::deadline`]).
    pub(crate) fn reschedule(&mut self, sid: SessionId, cfg: &GatewayConfig) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let next = s.deadline(cfg);
        if s.timer_key == next {
            return;
        }
        if let Some(old) = s.timer_key.take() {
            self.timers.remove(&(old, sid));
        }
        if let Some(at) = next {
            self.timers.insert((at, sid));
            s.timer_key = Some(at);
        }
    }

    /// Takes the next session whose deadline is at or before `now` off the timer set (the
    /// caller handles it and reschedules it).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<SessionId> {
        let &(at, sid) = self.timers.first()?;
        if at > now {
            return None;
        }
        self.timers.pop_first();
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.timer_key = None;
        }
        Some(sid)
    }

    /// The earliest deadline of any session.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Shutdown: detaches every session from the broker (the attachments are returned, for the
    /// caller to close) and forgets every deadline.
    pub(crate) fn shut_down(&mut self) -> Vec<Attachment> {
        let sids: Vec<SessionId> = self.sessions.keys().copied().collect();
        let links = sids
            .into_iter()
            .filter_map(|sid| self.detach(sid))
            .collect();
        for (_, s) in self.sessions.iter_mut() {
            s.timer_key = None;
        }
        self.timers.clear();
        links
    }

    /// Checks that every index agrees with the sessions, and every session is filed under its
    /// deadline; the first disagreement, described.
    #[cfg(test)]
    pub(crate) fn check(&self, cfg: &GatewayConfig) -> Result<(), String> {
        if self.by_client.len() != self.sessions.len() {
            return Err(format!(
                "{} sessions but {} ClientIds",
                self.sessions.len(),
                self.by_client.len()
            ));
        }
        for (id, sid) in &self.by_client {
            match self.sessions.get(sid) {
                Some(s) if &s.client_id == id => {}
                _ => {
                    return Err(format!(
                        "ClientId {id:?} points to session {sid} of another"
                    ));
                }
            }
        }
        for (peer, sid) in &self.by_peer {
            match self.sessions.get(sid) {
                Some(s) if &s.peer == peer => {}
                _ => return Err(format!("address {peer} points to session {sid} elsewhere")),
            }
        }
        for (link, sid) in &self.by_link {
            match self.sessions.get(sid) {
                Some(s) if s.upstream == Some(Attachment::Link(*link)) => {}
                _ => return Err(format!("{link} points to session {sid} without it")),
            }
        }
        let mut filed = 0;
        for (sid, s) in &self.sessions {
            if s.state.is_live() && self.by_peer.get(&s.peer) != Some(sid) {
                return Err(format!(
                    "live session {sid} ({}) is not bound to its address {}",
                    s.client_id, s.peer
                ));
            }
            match s.upstream {
                Some(Attachment::Link(link)) if self.by_link.get(&link) != Some(sid) => {
                    return Err(format!("session {sid} has {link}, not indexed"));
                }
                Some(Attachment::Shared(other)) if other != *sid => {
                    return Err(format!(
                        "session {sid} has the shared link of session {other}"
                    ));
                }
                _ => {}
            }
            if let Some(at) = s.timer_key {
                filed += 1;
                if !self.timers.contains(&(at, *sid)) {
                    return Err(format!(
                        "session {sid} filed at {at:?} but not in the timers"
                    ));
                }
            }
            // Filed early is fine (a spurious timeout reschedules it; traffic moves the
            // keep-alive deadline without refiling); filed late or not at all misses it.
            let late = match (s.timer_key, s.deadline(cfg)) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(filed_at), Some(due)) => filed_at > due,
            };
            if late {
                return Err(format!(
                    "session {sid} ({}, {}) filed at {:?}, its deadline is {:?}",
                    s.client_id,
                    s.state.name(),
                    s.timer_key,
                    s.deadline(cfg)
                ));
            }
        }
        if filed != self.timers.len() {
            return Err(format!(
                "{} timers for {filed} filed sessions",
                self.timers.len()
            ));
        }
        Ok(())
    }
}
