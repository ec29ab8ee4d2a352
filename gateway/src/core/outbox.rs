//! Datagrams waiting for `poll_transmit`, encoded once into one reusable byte arena (no
//! allocation per datagram once warm).

use std::collections::VecDeque;
use std::ops::Range;

use sn_codec::{MsgType, Packet};

use super::addr::PeerAddr;
use super::event::{Destination, Transmit};

/// Encoded datagrams in send order.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    bytes: Vec<u8>,
    queue: VecDeque<(Destination, Range<usize>, MsgType)>,
}

/// Why a packet was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unencodable;

impl Outbox {
    /// Encodes `packet` for `peer` (inside an Encapsulated message for a forwarded node).
    /// `max_len` bounds the inner message (the client's transport limit).
    pub(crate) fn push(
        &mut self,
        peer: &PeerAddr,
        packet: &Packet<'_>,
        max_len: usize,
    ) -> Result<(), Unencodable> {
        let inner_len = packet.encoded_len().map_err(|_| Unencodable)?;
        if inner_len > max_len {
            return Err(Unencodable);
        }
        let start = self.bytes.len();
        let (to, written) = match peer {
            PeerAddr::Udp { listener, addr } => {
                self.bytes.resize(start + inner_len, 0);
                let n = packet
                    .encode(&mut self.bytes[start..])
                    .map_err(|_| Unencodable);
                (
                    Destination::Unicast {
                        listener: *listener,
                        addr: *addr,
                    },
                    n,
                )
            }
            PeerAddr::Forwarded {
                listener,
                forwarder,
                wnid,
            } => {
                let total = inner_len + wnid.0.len() + 3;
                self.bytes.resize(start + total, 0);
                let n = sn_codec::encode_encapsulated(0, &wnid.0, packet, &mut self.bytes[start..])
                    .map_err(|_| Unencodable);
                (
                    Destination::Unicast {
                        listener: *listener,
                        addr: *forwarder,
                    },
                    n,
                )
            }
        };
        match written {
            Ok(n) => {
                self.bytes.truncate(start + n);
                self.queue
                    .push_back((to, start..start + n, packet.msg_type()));
                Ok(())
            }
            Err(e) => {
                self.bytes.truncate(start);
                Err(e)
            }
        }
    }

    /// Queues an already addressed packet (multicast discovery messages).
    pub(crate) fn push_to(
        &mut self,
        to: Destination,
        packet: &Packet<'_>,
    ) -> Result<(), Unencodable> {
        let len = packet.encoded_len().map_err(|_| Unencodable)?;
        let start = self.bytes.len();
        self.bytes.resize(start + len, 0);
        match packet.encode(&mut self.bytes[start..]) {
            Ok(n) => {
                self.queue
                    .push_back((to, start..start + n, packet.msg_type()));
                Ok(())
            }
            Err(_) => {
                self.bytes.truncate(start);
                Err(Unencodable)
            }
        }
    }

    /// Copies the next datagram into `buf`.
    pub(crate) fn pop(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        loop {
            let (to, range, msg_type) = self.queue.pop_front()?;
            if self.queue.is_empty() {
                // Keep the allocation, drop the contents after this copy.
                let out = copy(&self.bytes, range, buf).map(|len| Transmit { to, len, msg_type });
                self.bytes.clear();
                if out.is_some() {
                    return out;
                }
                return None;
            }
            if let Some(len) = copy(&self.bytes, range, buf) {
                return Some(Transmit { to, len, msg_type });
            }
        }
    }
}

fn copy(bytes: &[u8], range: Range<usize>, buf: &mut [u8]) -> Option<usize> {
    let src = bytes.get(range)?;
    let dst = buf.get_mut(..src.len())?;
    dst.copy_from_slice(src);
    Some(src.len())
}
