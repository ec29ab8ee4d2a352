//! The topic table: names the application registered or subscribed to, names the gateway
//! registered, and the normal topic ids the gateway assigned to them. Fixed capacity `N`.
//!
//! A slot's index is its [`TopicHandle`]. Slots the application asked for are never evicted;
//! slots learnt from the gateway's REGISTER are, oldest first, when the table is full.

use heapless::{String, Vec};
use sn_codec::QoS;

use super::config::MAX_TOPIC_LEN;
use super::event::{CommandError, TopicHandle};

/// What a slot names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A topic name or filter (`Slot::name`).
    Name,
    /// A predefined topic id.
    Predefined(u16),
    /// A short topic name.
    Short([u8; 2]),
}

/// Registration wanted by the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reg {
    /// Not wanted (a subscription, or a name the gateway registered).
    None,
    /// A REGISTER is due.
    Wanted,
    /// REGACK accepted.
    Done,
    /// REGACK rejected it; publishes to it fail.
    Failed,
}

/// Subscription wanted by the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sub {
    /// No subscription.
    None,
    /// A SUBSCRIBE at this QoS is due.
    Wanted(QoS),
    /// SUBACK granted this QoS.
    Done(QoS),
    /// An UNSUBSCRIBE is due.
    Unwanted,
    /// SUBACK rejected it.
    Failed,
}

/// One topic table entry.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) name: String<MAX_TOPIC_LEN>,
    pub(crate) kind: Kind,
    /// The normal topic id, when known for this session.
    pub(crate) id: Option<u16>,
    pub(crate) reg: Reg,
    pub(crate) sub: Sub,
    /// Insertion order, for evicting the oldest gateway-registered name.
    age: u32,
}

impl Slot {
    /// Whether the application holds on to this slot.
    fn pinned(&self) -> bool {
        self.reg != Reg::None || self.sub != Sub::None
    }
}

/// Work the topic table wants done before the outbox may send publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    Register(TopicHandle),
    Subscribe(TopicHandle, QoS),
    Unsubscribe(TopicHandle),
}

/// The table; see the module doc.
#[derive(Debug, Clone)]
pub(crate) struct TopicTable<const N: usize> {
    slots: Vec<Option<Slot>, N>,
    next_age: u32,
}

/// Checks a topic name for REGISTER (or a filter for SUBSCRIBE when `filter`).
pub(crate) fn valid_name(name: &str, filter: bool) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOPIC_LEN
        && !name.contains('\0')
        && (filter || !name.contains(['+', '#']))
}

impl<const N: usize> TopicTable<N> {
    pub(crate) const fn new() -> Self {
        TopicTable {
            slots: Vec::new(),
            next_age: 0,
        }
    }

    pub(crate) fn get(&self, h: TopicHandle) -> Option<&Slot> {
        self.slots.get(h.index()).and_then(Option::as_ref)
    }

    pub(crate) fn get_mut(&mut self, h: TopicHandle) -> Option<&mut Slot> {
        self.slots.get_mut(h.index()).and_then(Option::as_mut)
    }

    fn handles(&self) -> impl Iterator<Item = (TopicHandle, &Slot)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let slot = s.as_ref()?;
            Some((TopicHandle(u8::try_from(i).ok()?), slot))
        })
    }

    /// The slot holding this name (kind [`Kind::Name`]).
    pub(crate) fn find_name(&self, name: &[u8]) -> Option<TopicHandle> {
        self.handles()
            .find(|(_, s)| s.kind == Kind::Name && s.name.as_bytes() == name)
            .map(|(h, _)| h)
    }

    /// The slot with this predefined id or short name.
    pub(crate) fn find_kind(&self, kind: Kind) -> Option<TopicHandle> {
        self.handles().find(|(_, s)| s.kind == kind).map(|(h, _)| h)
    }

    /// The name slot that holds normal topic id `id` in this session.
    pub(crate) fn find_id(&self, id: u16) -> Option<TopicHandle> {
        self.handles()
            .find(|(_, s)| s.kind == Kind::Name && s.id == Some(id))
            .map(|(h, _)| h)
    }

    /// Adds a slot; evicts the oldest unpinned slot when full.
    pub(crate) fn insert(&mut self, name: &str, kind: Kind) -> Result<TopicHandle, CommandError> {
        let name = String::try_from(name).map_err(|_| CommandError::InvalidTopic)?;
        let slot = Slot {
            name,
            kind,
            id: None,
            reg: Reg::None,
            sub: Sub::None,
            age: self.next_age,
        };
        self.next_age = self.next_age.wrapping_add(1);
        let free = self.slots.iter().position(Option::is_none);
        let index = match free {
            Some(i) => i,
            None if !self.slots.is_full() => {
                let i = self.slots.len();
                self.slots
                    .push(None)
                    .map_err(|_| CommandError::TopicTableFull)?;
                i
            }
            None => self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().filter(|s| !s.pinned()).map(|s| (i, s.age)))
                .min_by_key(|&(_, age)| age)
                .map(|(i, _)| i)
                .ok_or(CommandError::TopicTableFull)?,
        };
        let handle = TopicHandle(u8::try_from(index).map_err(|_| CommandError::TopicTableFull)?);
        let target = self
            .slots
            .get_mut(index)
            .ok_or(CommandError::TopicTableFull)?;
        *target = Some(slot);
        Ok(handle)
    }

    /// The slot for `name` (kind [`Kind::Name`]), created if needed.
    pub(crate) fn name_slot(&mut self, name: &str) -> Result<TopicHandle, CommandError> {
        match self.find_name(name.as_bytes()) {
            Some(h) => Ok(h),
            None => self.insert(name, Kind::Name),
        }
    }

    /// Records that normal id `id` means the name in slot `h`; no other slot keeps that id (an
    /// application topic that loses its id is registered again).
    pub(crate) fn set_id(&mut self, h: TopicHandle, id: u16) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(s) = slot
                && s.id == Some(id)
                && i != h.index()
            {
                s.id = None;
                if s.reg == Reg::Done {
                    s.reg = Reg::Wanted;
                }
            }
        }
        if let Some(s) = self.get_mut(h) {
            s.id = Some(id);
        }
    }

    /// A REGISTER from the gateway: remember `name` ↔ `id`. `None` when the table is full of
    /// pinned slots or the name is unusable.
    pub(crate) fn learn(&mut self, name: &[u8], id: u16) -> Option<TopicHandle> {
        let name = core::str::from_utf8(name)
            .ok()
            .filter(|n| valid_name(n, false))?;
        let h = self.name_slot(name).ok()?;
        self.set_id(h, id);
        Some(h)
    }

    /// The first piece of registration or subscription work due.
    pub(crate) fn next_work(&self) -> Option<Work> {
        let reg = self
            .handles()
            .find(|(_, s)| s.reg == Reg::Wanted)
            .map(|(h, _)| Work::Register(h));
        reg.or_else(|| {
            self.handles().find_map(|(h, s)| match s.sub {
                Sub::Wanted(q) => Some(Work::Subscribe(h, q)),
                Sub::Unwanted => Some(Work::Unsubscribe(h)),
                _ => None,
            })
        })
    }

    /// Whether a REGISTER, SUBSCRIBE or UNSUBSCRIBE is still due.
    pub(crate) fn has_work(&self) -> bool {
        self.next_work().is_some()
    }

    /// A new session at the gateway (not a resume): every normal id is forgotten, every
    /// registration and subscription is due again, names the gateway registered are dropped.
    pub(crate) fn new_session(&mut self) {
        for slot in self.slots.iter_mut() {
            let Some(s) = slot else { continue };
            s.id = None;
            s.reg = match s.reg {
                Reg::Done | Reg::Wanted | Reg::Failed => Reg::Wanted,
                Reg::None => Reg::None,
            };
            s.sub = match s.sub {
                Sub::Done(q) | Sub::Wanted(q) => Sub::Wanted(q),
                // A rejected filter stays rejected (congestion is retried after T_WAIT instead).
                Sub::Failed => Sub::Failed,
                Sub::Unwanted | Sub::None => Sub::None,
            };
            if !s.pinned() {
                *slot = None;
            }
        }
    }

    /// Frees slot `h` if nothing holds on to it any more.
    pub(crate) fn release(&mut self, h: TopicHandle) {
        if let Some(slot) = self.slots.get_mut(h.index())
            && slot.as_ref().is_some_and(|s| !s.pinned() && s.id.is_none())
        {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_names_are_evicted_oldest_first_but_application_topics_never() {
        let mut t = TopicTable::<3>::new();
        let app = t.insert("app/t", Kind::Name).unwrap();
        t.get_mut(app).unwrap().reg = Reg::Wanted;
        let g1 = t.learn(b"gw/1", 10).unwrap();
        let g2 = t.learn(b"gw/2", 11).unwrap();
        let g3 = t.learn(b"gw/3", 12).unwrap();
        assert_eq!(g3, g1, "the oldest gateway name made room");
        assert_eq!(t.find_id(10), None);
        assert_eq!(t.find_id(11), Some(g2));
        assert_eq!(t.find_name(b"app/t"), Some(app));
        // Now pin both remaining gateway slots: the table is full.
        t.get_mut(g2).unwrap().sub = Sub::Wanted(QoS::One);
        t.get_mut(g3).unwrap().sub = Sub::Wanted(QoS::One);
        assert_eq!(t.learn(b"gw/4", 13), None);
        assert_eq!(t.insert("x", Kind::Name), Err(CommandError::TopicTableFull));
    }

    #[test]
    fn an_id_belongs_to_one_name_and_a_new_session_requeues_the_work() {
        let mut t = TopicTable::<4>::new();
        let a = t.insert("a", Kind::Name).unwrap();
        t.get_mut(a).unwrap().reg = Reg::Done;
        t.set_id(a, 5);
        let b = t.learn(b"b", 5).unwrap();
        assert_eq!(t.find_id(5), Some(b));
        assert_eq!(t.get(a).unwrap().id, None);
        let s = t.insert("cmd/#", Kind::Name).unwrap();
        t.get_mut(s).unwrap().sub = Sub::Done(QoS::One);
        t.new_session();
        assert!(t.get(b).is_none(), "gateway names are forgotten");
        assert_eq!(t.next_work(), Some(Work::Register(a)));
        t.get_mut(a).unwrap().reg = Reg::Done;
        assert_eq!(t.next_work(), Some(Work::Subscribe(s, QoS::One)));
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("a/b", false));
        assert!(!valid_name("a/+", false));
        assert!(valid_name("a/#", true));
        assert!(!valid_name("", true));
        let long = [b'x'; MAX_TOPIC_LEN + 1];
        assert!(!valid_name(core::str::from_utf8(&long).unwrap(), true));
        let mut t = TopicTable::<2>::new();
        assert_eq!(t.learn(b"\xFF", 3), None);
        assert_eq!(t.learn(b"a/#", 3), None);
    }
}
