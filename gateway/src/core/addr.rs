//! Where a client is on the network: a UDP address, or a wireless node behind a forwarder.

use std::fmt;
use std::net::SocketAddr;

/// Index of a listening socket, as the shell numbered them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ListenerId(pub u8);

/// A wireless node id from a forwarder's Encapsulated message (opaque octets, at most 252).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Wnid(pub Box<[u8]>);

impl fmt::Debug for Wnid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Wnid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The network address of a client.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerAddr {
    /// A client speaking UDP directly.
    Udp {
        /// The socket it reached.
        listener: ListenerId,
        /// Its address.
        addr: SocketAddr,
    },
    /// A node behind a forwarder.
    Forwarded {
        /// The socket the forwarder reached.
        listener: ListenerId,
        /// The forwarder's address.
        forwarder: SocketAddr,
        /// The node's id at that forwarder.
        wnid: Wnid,
    },
}

impl PeerAddr {
    /// The UDP address datagrams for this peer go to (the forwarder's for a forwarded node).
    pub fn socket_addr(&self) -> SocketAddr {
        match self {
            PeerAddr::Udp { addr, .. } => *addr,
            PeerAddr::Forwarded { forwarder, .. } => *forwarder,
        }
    }

    /// The listener the peer talks to.
    pub fn listener(&self) -> ListenerId {
        match self {
            PeerAddr::Udp { listener, .. } | PeerAddr::Forwarded { listener, .. } => *listener,
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Udp { addr, .. } => write!(f, "{addr}"),
            PeerAddr::Forwarded {
                forwarder, wnid, ..
            } => write!(f, "{forwarder}/{wnid}"),
        }
    }
}
