//! UDP sockets with socket2: the gateway-side socket (multicast interface and TTL set so the
//! forwarder's SEARCHGW leaves on the configured interface), the discovery-group receiver
//! (SO_REUSEADDR so several processes can listen to the group, IP_MULTICAST_ALL off so it does
//! not also receive groups other sockets joined), and UDP radio ports.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::config::GroupConfig;

/// Largest datagram received.
pub(crate) const MAX_DATAGRAM: usize = 65_535;

/// A unicast socket bound to `addr`; with `group`, multicast sends leave on its interface with
/// its TTL.
pub(crate) fn unicast(addr: SocketAddr, group: Option<&GroupConfig>) -> io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    if let Some(g) = group.filter(|_| addr.is_ipv4()) {
        sock.set_multicast_if_v4(&g.interface)?;
        sock.set_multicast_ttl_v4(u32::from(g.ttl))?;
        sock.set_multicast_loop_v4(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// A receiver on the discovery group.
pub(crate) fn group_receiver(g: &GroupConfig) -> io::Result<UdpSocket> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    sock.set_multicast_all_v4(false)?;
    sock.bind(&SocketAddr::V4(g.group).into())?;
    sock.join_multicast_v4(g.group.ip(), &g.interface)?;
    sock.set_nonblocking(true)?;
    UdpSocket::from_std(sock.into())
}

/// Spawns a task that forwards every datagram of `socket` as `wrap(from, bytes)` until
/// `cancel` fires or the receiver is gone.
pub(crate) fn spawn_receiver<T: Send + 'static>(
    socket: Arc<UdpSocket>,
    tx: mpsc::Sender<T>,
    cancel: CancellationToken,
    wrap: impl Fn(SocketAddr, Vec<u8>) -> T + Send + 'static,
) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let received = tokio::select! {
                _ = cancel.cancelled() => return,
                r = socket.recv_from(&mut buf) => r,
            };
            match received {
                Ok((n, from)) => {
                    let bytes = buf.get(..n).unwrap_or_default().to_vec();
                    if tx.send(wrap(from, bytes)).await.is_err() {
                        return;
                    }
                }
                // ICMP errors (port unreachable while the gateway restarts) surface here.
                Err(e) => debug!(error = %e, "udp receive error"),
            }
        }
    });
}

/// Sends without waiting when possible.
pub(crate) async fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
    match socket.try_send_to(bytes, to) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            socket.send_to(bytes, to).await.map(|_| ())
        }
        Err(e) => Err(e),
    }
}
