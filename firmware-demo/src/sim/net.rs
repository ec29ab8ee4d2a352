//! UDP sockets for simulated motes (socket2 + tokio): one unicast socket per mote (a unicast
//! port is never shared: unicast to a shared port reaches only one socket), and one shared
//! multicast listener that plays the radio broadcast medium.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::broadcast;

/// A datagram heard on the multicast group: sender and octets.
pub(crate) type Heard = Arc<(SocketAddr, Vec<u8>)>;

/// A mote's socket: bound to `bind:0`; with `multicast_if`, multicast (SEARCHGW) leaves through
/// that interface with TTL `ttl`.
pub(crate) fn mote_socket(
    bind: IpAddr,
    multicast_if: Option<Ipv4Addr>,
    ttl: u32,
) -> io::Result<UdpSocket> {
    let domain = if bind.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if let Some(iface) = multicast_if {
        s.set_multicast_if_v4(&iface)?;
        s.set_multicast_ttl_v4(ttl)?;
        s.set_multicast_loop_v4(true)?;
    }
    s.bind(&SocketAddr::new(bind, 0).into())?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// The shared listener on the discovery group (ADVERTISE, GWINFO, other motes' SEARCHGW).
pub(crate) fn group_listener(group: SocketAddrV4, iface: Ipv4Addr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_multicast_all_v4(false)?;
    s.bind(&SocketAddr::V4(group).into())?;
    s.join_multicast_v4(group.ip(), &iface)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// Relays everything heard on the group to every mote until the channel has no receivers.
pub(crate) async fn fan_out(sock: UdpSocket, tx: broadcast::Sender<Heard>) {
    let mut buf = vec![0u8; 2048];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let heard = Arc::new((from, buf.get(..n).unwrap_or_default().to_vec()));
                if tx.send(heard).is_err() {
                    return; // every mote is gone
                }
            }
            Err(e) => tracing::debug!("multicast receive error: {e}"),
        }
    }
}
