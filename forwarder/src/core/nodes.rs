//! [`NodeTable`]: which radio port and link address each WNID was last heard on, bounded, with
//! idle expiry.
//!
//! Entries are refreshed by every frame from the node. An entry idle for longer than the
//! configured time expires (the next downstream message to it is dropped as unknown). When the
//! table is full, a new node evicts the least recently heard one. Iteration and eviction order
//! are deterministic (`BTreeMap` / `BTreeSet`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sn_codec::Instant;

use super::PortId;
use super::wnid::NodeAddr;

/// Where a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// The radio port it was last heard on.
    pub port: PortId,
    /// Its link address on that port.
    pub addr: NodeAddr,
    /// When it was last heard.
    pub last_seen: Instant,
}

/// What [`NodeTable::touch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Touch {
    /// The node was known at the same place; only its time was refreshed.
    Refreshed,
    /// A node not in the table; `evicted` is the entry that made room, if the table was full.
    Added {
        /// The least recently heard node, removed to make room.
        evicted: Option<(Vec<u8>, NodeEntry)>,
    },
    /// A known WNID heard on another port or from another link address.
    Moved,
}

/// The bounded WNID → node map.
#[derive(Debug, Clone)]
pub(crate) struct NodeTable {
    by_wnid: BTreeMap<Vec<u8>, NodeEntry>,
    by_time: BTreeSet<(Instant, Vec<u8>)>,
    max: usize,
    idle: Duration,
}

impl NodeTable {
    /// An empty table holding at most `max` (≥ 1) nodes, each for `idle` after it was last heard.
    pub(crate) fn new(max: usize, idle: Duration) -> Self {
        NodeTable {
            by_wnid: BTreeMap::new(),
            by_time: BTreeSet::new(),
            max: max.max(1),
            idle,
        }
    }

    /// Records that `wnid` was heard at `now` on `port` from `addr`.
    pub(crate) fn touch(
        &mut self,
        now: Instant,
        wnid: &[u8],
        port: PortId,
        addr: &NodeAddr,
    ) -> Touch {
        if let Some(e) = self.by_wnid.get_mut(wnid) {
            self.by_time.remove(&(e.last_seen, wnid.to_vec()));
            let moved = e.port != port || e.addr != *addr;
            e.port = port;
            e.addr = addr.clone();
            e.last_seen = now;
            self.by_time.insert((now, wnid.to_vec()));
            return if moved {
                Touch::Moved
            } else {
                Touch::Refreshed
            };
        }
        let evicted = if self.by_wnid.len() >= self.max {
            self.by_time
                .pop_first()
                .and_then(|(_, old)| self.by_wnid.remove(&old).map(|e| (old, e)))
        } else {
            None
        };
        self.by_wnid.insert(
            wnid.to_vec(),
            NodeEntry {
                port,
                addr: addr.clone(),
                last_seen: now,
            },
        );
        self.by_time.insert((now, wnid.to_vec()));
        Touch::Added { evicted }
    }

    /// The entry of `wnid`, if known.
    pub(crate) fn get(&self, wnid: &[u8]) -> Option<&NodeEntry> {
        self.by_wnid.get(wnid)
    }

    /// Removes and returns every entry idle for at least the idle time at `now`.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(Vec<u8>, NodeEntry)> {
        let mut out = Vec::new();
        while let Some((seen, wnid)) = self.by_time.first().cloned() {
            if seen.saturating_add(self.idle) > now {
                break;
            }
            self.by_time.pop_first();
            if let Some(e) = self.by_wnid.remove(&wnid) {
                out.push((wnid, e));
            }
        }
        out
    }

    /// When the next entry expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.by_time
            .first()
            .map(|(seen, _)| seen.saturating_add(self.idle))
    }

    /// Number of known nodes.
    pub(crate) fn len(&self) -> usize {
        self.by_wnid.len()
    }

    /// Every entry, in WNID order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &NodeEntry)> {
        self.by_wnid.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn entries_expire_after_the_idle_time_unless_refreshed() {
        let mut t = NodeTable::new(8, Duration::from_secs(10));
        let a = NodeAddr::Link(vec![1]);
        assert!(matches!(
            t.touch(at(0), b"a", PortId(0), &a),
            Touch::Added { evicted: None }
        ));
        t.touch(at(0), b"b", PortId(0), &NodeAddr::Link(vec![2]));
        assert_eq!(t.touch(at(5_000), b"a", PortId(0), &a), Touch::Refreshed);
        assert_eq!(t.next_expiry(), Some(at(10_000)));
        assert!(t.expire(at(9_999)).is_empty());
        let gone = t.expire(at(10_000));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, b"b".to_vec());
        assert!(t.get(b"a").is_some());
        assert_eq!(t.next_expiry(), Some(at(15_000)));
        assert_eq!(t.expire(at(15_000)).len(), 1);
        assert_eq!(t.len(), 0);
        assert_eq!(t.next_expiry(), None);
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_heard_node() {
        let mut t = NodeTable::new(2, Duration::from_secs(60));
        t.touch(at(1), b"a", PortId(0), &NodeAddr::PointToPoint);
        t.touch(at(2), b"b", PortId(0), &NodeAddr::PointToPoint);
        t.touch(at(3), b"a", PortId(0), &NodeAddr::PointToPoint);
        match t.touch(at(4), b"c", PortId(0), &NodeAddr::PointToPoint) {
            Touch::Added {
                evicted: Some((wnid, _)),
            } => assert_eq!(wnid, b"b".to_vec()),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.len(), 2);
        assert!(t.get(b"b").is_none());
    }

    #[test]
    fn a_node_heard_elsewhere_moves() {
        let mut t = NodeTable::new(2, Duration::from_secs(60));
        t.touch(at(1), b"a", PortId(0), &NodeAddr::PointToPoint);
        assert_eq!(
            t.touch(at(2), b"a", PortId(1), &NodeAddr::PointToPoint),
            Touch::Moved
        );
        assert_eq!(t.get(b"a").map(|e| e.port), Some(PortId(1)));
        assert_eq!(t.len(), 1);
    }
}
