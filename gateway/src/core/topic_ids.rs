//! Per-client normal topic ids (REGISTER/REGACK, SUBACK): bounded, never 0x0000 or 0xFFFF,
//! never an id configured as predefined.

use std::collections::BTreeMap;

use super::config::PredefinedTopics;

/// One registered topic.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    /// The client is known to have this mapping (it registered it, got it in a SUBACK, or
    /// acknowledged the gateway's REGISTER). Unconfirmed ids are re-registered before use.
    confirmed: bool,
}

/// The table is full (`max_topics_per_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TopicIdsFull;

/// Topic ids of one client.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopicIds {
    by_id: BTreeMap<u16, Entry>,
    by_name: BTreeMap<String, u16>,
    next: u16,
    /// Counts changes, so that whoever persists the table can tell it changed without
    /// comparing it.
    changes: u64,
}

impl TopicIds {
    /// The id of `name`, allocating one when needed. An existing id keeps its confirmation
    /// state unless `confirm` is set.
    pub(crate) fn id_for(
        &mut self,
        name: &str,
        confirm: bool,
        predefined: &PredefinedTopics,
        max: usize,
    ) -> Result<u16, TopicIdsFull> {
        if let Some(&id) = self.by_name.get(name) {
            if confirm {
                self.confirm(id);
            }
            return Ok(id);
        }
        self.changes += 1;
        if self.by_id.len() >= max {
            return Err(TopicIdsFull);
        }
        let id = self.free_id(predefined).ok_or(TopicIdsFull)?;
        self.by_id.insert(
            id,
            Entry {
                name: name.to_owned(),
                confirmed: confirm,
            },
        );
        self.by_name.insert(name.to_owned(), id);
        Ok(id)
    }

    fn free_id(&mut self, predefined: &PredefinedTopics) -> Option<u16> {
        for _ in 0..=u16::MAX {
            self.next = match self.next {
                0 | 0xFFFE.. => 1,
                n => n + 1,
            };
            let id = self.next;
            if !self.by_id.contains_key(&id) && !predefined.is_reserved(id) {
                return Some(id);
            }
        }
        None
    }

    /// The topic name of a registered id.
    pub(crate) fn name(&self, id: u16) -> Option<&str> {
        self.by_id.get(&id).map(|e| e.name.as_str())
    }

    /// The id of a name and whether the client is known to have it.
    pub(crate) fn lookup(&self, name: &str) -> Option<(u16, bool)> {
        let id = *self.by_name.get(name)?;
        self.by_id.get(&id).map(|e| (id, e.confirmed))
    }

    /// Marks an id as known to the client.
    pub(crate) fn confirm(&mut self, id: u16) {
        if let Some(e) = self.by_id.get_mut(&id)
            && !e.confirmed
        {
            e.confirmed = true;
            self.changes += 1;
        }
    }

    /// Marks an id as possibly unknown to the client (PUBACK 0x02 from it).
    pub(crate) fn unconfirm(&mut self, id: u16) {
        if let Some(e) = self.by_id.get_mut(&id) {
            e.confirmed = false;
            self.changes += 1;
        }
    }

    /// After a reconnect with CleanSession=0: keep ids, re-REGISTER before the next use.
    pub(crate) fn unconfirm_all(&mut self) {
        self.changes += 1;
        for e in self.by_id.values_mut() {
            e.confirmed = false;
        }
    }

    /// Frees an id (REGACK rejected it).
    pub(crate) fn remove(&mut self, id: u16) {
        self.changes += 1;
        if let Some(e) = self.by_id.remove(&id) {
            self.by_name.remove(&e.name);
        }
    }

    /// Forgets everything (CleanSession=1).
    pub(crate) fn clear(&mut self) {
        self.changes += 1;
        self.by_id.clear();
        self.by_name.clear();
    }

    /// How many changes the table has seen (grows with every change).
    pub(crate) fn changes(&self) -> u64 {
        self.changes
    }

    /// Every id with its name and whether the client is known to have it, in id order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u16, &str, bool)> {
        self.by_id
            .iter()
            .map(|(id, e)| (*id, e.name.as_str(), e.confirmed))
    }

    /// Puts back an id a restart restored (ignored when the id or the name is taken).
    pub(crate) fn restore(&mut self, id: u16, name: &str, confirmed: bool) {
        if id == 0
            || id == 0xFFFF
            || self.by_id.contains_key(&id)
            || self.by_name.contains_key(name)
        {
            return;
        }
        self.by_id.insert(
            id,
            Entry {
                name: name.to_owned(),
                confirmed,
            },
        );
        self.by_name.insert(name.to_owned(), id);
        self.next = self.next.max(id);
        self.changes += 1;
    }

    /// Number of ids held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn predefined(ids: &[u16]) -> PredefinedTopics {
        let mut p = PredefinedTopics::default();
        for id in ids {
            p.global.insert(*id, format!("pre/{id}"));
        }
        p
    }

    #[test]
    fn registering_the_same_name_twice_returns_the_same_id() {
        let mut r = TopicIds::default();
        let p = predefined(&[]);
        let a = r.id_for("a", true, &p, 10).unwrap();
        assert_eq!(r.id_for("a", true, &p, 10), Ok(a));
        assert_ne!(r.id_for("b", true, &p, 10).unwrap(), a);
        assert_eq!(r.name(a), Some("a"));
    }

    #[test]
    fn predefined_and_reserved_ids_are_never_allocated() {
        let mut r = TopicIds::default();
        let p = predefined(&[1, 2, 4]);
        assert_eq!(r.id_for("a", true, &p, 10), Ok(3));
        assert_eq!(r.id_for("b", true, &p, 10), Ok(5));
        r.next = 0xFFFD;
        assert_eq!(r.id_for("c", true, &p, 10), Ok(0xFFFE));
        assert_eq!(
            r.id_for("d", true, &p, 10),
            Ok(6),
            "wraps past 0xFFFF and 0"
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let mut r = TopicIds::default();
        let p = predefined(&[]);
        assert!(r.id_for("a", true, &p, 2).is_ok());
        assert!(r.id_for("b", true, &p, 2).is_ok());
        assert_eq!(r.id_for("c", true, &p, 2), Err(TopicIdsFull));
        assert!(
            r.id_for("a", true, &p, 2).is_ok(),
            "existing names still resolve"
        );
    }

    #[test]
    fn confirmation_follows_the_protocol_events() {
        let mut r = TopicIds::default();
        let p = predefined(&[]);
        let id = r.id_for("a", false, &p, 4).unwrap();
        assert_eq!(r.lookup("a"), Some((id, false)));
        r.confirm(id);
        assert_eq!(r.lookup("a"), Some((id, true)));
        r.unconfirm_all();
        assert_eq!(r.lookup("a"), Some((id, false)));
        r.remove(id);
        assert_eq!(r.lookup("a"), None);
        assert_eq!(r.len(), 0);
    }
}
