//! Free loopback ports chosen by the OS, never 1883 (`docs/architecture.md`, "Rules for tests
//! on real networks").
//!
//! The port is found by binding `127.0.0.1:0`, reading the assigned port and closing the socket,
//! so another process can in principle grab it before the caller binds it; callers that start a
//! server on it (see [`crate::mosquitto`]) retry with a new port when the bind fails.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use anyhow::{Context, Result, bail};

/// The port developers often run their own broker on; never handed out.
const MQTT_DEFAULT_PORT: u16 = 1883;
/// Bound on attempts to get a port other than 1883 (the OS practically never returns it).
const ATTEMPTS: usize = 16;

/// A currently free UDP port on `127.0.0.1` (never 1883).
pub fn free_udp_port() -> Result<u16> {
    for _ in 0..ATTEMPTS {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).context("bind UDP 127.0.0.1:0")?;
        let port = socket.local_addr().context("UDP local_addr")?.port();
        if port != MQTT_DEFAULT_PORT {
            return Ok(port);
        }
    }
    bail!("no free UDP port other than {MQTT_DEFAULT_PORT} after {ATTEMPTS} attempts")
}

/// A currently free TCP port on `127.0.0.1` (never 1883).
pub fn free_tcp_port() -> Result<u16> {
    for _ in 0..ATTEMPTS {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("bind TCP 127.0.0.1:0")?;
        let port = listener.local_addr().context("TCP local_addr")?.port();
        if port != MQTT_DEFAULT_PORT {
            return Ok(port);
        }
    }
    bail!("no free TCP port other than {MQTT_DEFAULT_PORT} after {ATTEMPTS} attempts")
}

/// `127.0.0.1:port` as a socket address.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A non-blocking socket bound to `group` that joined it on loopback: it receives what the
/// gateway sends to its discovery group (ADVERTISE, multicast GWINFO).
pub fn loopback_group_member(group: std::net::SocketAddrV4) -> Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_multicast_all_v4(false)?;
    s.bind(&SocketAddr::V4(group).into())?;
    s.join_multicast_v4(group.ip(), &std::net::Ipv4Addr::LOCALHOST)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_bindable_and_never_1883() {
        let udp = free_udp_port().unwrap();
        let tcp = free_tcp_port().unwrap();
        assert_ne!(udp, MQTT_DEFAULT_PORT);
        assert_ne!(tcp, MQTT_DEFAULT_PORT);
        UdpSocket::bind(loopback(udp)).unwrap();
        TcpListener::bind(loopback(tcp)).unwrap();
    }
}
