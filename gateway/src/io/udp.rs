//! UDP sockets with socket2: the unicast listener (never shared), and for discovery a
//! multicast receiver on the shared group port (SO_REUSEADDR, IP_MULTICAST_ALL off) plus the
//! multicast interface and TTL on the unicast socket, from which ADVERTISE and GWINFO go out.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::UdpSocket;

use super::config::{ListenerConfig, MulticastConfig};

/// Receive buffer asked of the kernel: bursts of datagrams wait here while the core works.
const RECV_BUFFER: usize = 4 * 1024 * 1024;

/// The sockets of one configured listener.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Receives client datagrams and sends everything.
    pub unicast: Arc<UdpSocket>,
    /// Receives SEARCHGW (and other gateways' traffic) on the discovery group.
    pub multicast: Option<Arc<UdpSocket>>,
    /// The group to send ADVERTISE / GWINFO to, with its default TTL.
    pub group: Option<MulticastConfig>,
}

impl Listener {
    /// The bound unicast address (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.unicast.local_addr()
    }

    /// Sets the multicast TTL / hop limit before a multicast send.
    pub fn set_multicast_ttl(&self, ttl: u8) -> io::Result<()> {
        let sock = SockRef::from(self.unicast.as_ref());
        match self.group.as_ref().map(|g| g.group) {
            Some(SocketAddr::V6(_)) => sock.set_multicast_hops_v6(u32::from(ttl)),
            _ => sock.set_multicast_ttl_v4(u32::from(ttl)),
        }
    }
}

/// A socket of a listener that could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{addr}: {source}")]
pub struct BindError {
    /// The address that failed: the listener's, or its multicast group's.
    pub addr: SocketAddr,
    /// The OS error.
    pub source: io::Error,
}

/// Binds a listener (must run inside a tokio runtime).
pub fn bind(cfg: &ListenerConfig) -> Result<Listener, BindError> {
    let at = |addr: SocketAddr| move |source| BindError { addr, source };
    let unicast = unicast_socket(cfg.bind).map_err(at(cfg.bind))?;
    let mut multicast = None;
    if let Some(m) = &cfg.multicast {
        configure_sender(&unicast, m).map_err(at(m.group))?;
        let receiver = multicast_receiver(m).map_err(at(m.group))?;
        multicast = Some(Arc::new(
            UdpSocket::from_std(receiver.into()).map_err(at(m.group))?,
        ));
    }
    Ok(Listener {
        unicast: Arc::new(UdpSocket::from_std(unicast.into()).map_err(at(cfg.bind))?),
        multicast,
        group: cfg.multicast.clone(),
    })
}

fn unicast_socket(addr: SocketAddr) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // A larger receive buffer is best effort (capped by net.core.rmem_max).
    let _ = sock.set_recv_buffer_size(RECV_BUFFER);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    Ok(sock)
}

fn configure_sender(sock: &Socket, m: &MulticastConfig) -> io::Result<()> {
    match m.group.ip() {
        IpAddr::V4(_) => {
            sock.set_multicast_if_v4(&m.interface_v4.unwrap_or(Ipv4Addr::UNSPECIFIED))?;
            sock.set_multicast_ttl_v4(u32::from(m.ttl))?;
            sock.set_multicast_loop_v4(true)?;
        }
        IpAddr::V6(_) => {
            sock.set_multicast_if_v6(m.interface_v6)?;
            sock.set_multicast_hops_v6(u32::from(m.ttl))?;
            sock.set_multicast_loop_v6(true)?;
        }
    }
    Ok(())
}

fn multicast_receiver(m: &MulticastConfig) -> io::Result<Socket> {
    let sock = Socket::new(
        Domain::for_address(m.group),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    sock.set_reuse_address(true)?;
    match m.group.ip() {
        IpAddr::V4(group) => {
            sock.set_multicast_all_v4(false)?;
            sock.bind(&m.group.into())?;
            sock.join_multicast_v4(&group, &m.interface_v4.unwrap_or(Ipv4Addr::UNSPECIFIED))?;
        }
        IpAddr::V6(group) => {
            sock.set_only_v6(true)?;
            // Binding the group filters out unicast to the port; a link-local group needs the
            // interface as its scope.
            let scoped = std::net::SocketAddrV6::new(group, m.group.port(), 0, m.interface_v6);
            sock.bind(&SocketAddr::V6(scoped).into())?;
            sock.join_multicast_v6(&group, m.interface_v6)?;
        }
    }
    sock.set_nonblocking(true)?;
    Ok(sock)
}
