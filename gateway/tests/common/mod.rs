//! Helpers shared by the tests that run the `mqtt-sn-gateway` binary.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{TcpListener, UdpSocket};

use sn_codec::Packet;

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `p` encoded.
pub(crate) fn encode(p: &Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; p.encoded_len().unwrap()];
    let n = p.encode(&mut buf).unwrap();
    buf.truncate(n);
    buf
}
