//! Wireless node ids: how a node on a radio port is named inside Encapsulated messages, and the
//! link-level address a downstream message goes to.
//!
//! | Port kind | [`NodeAddr`] from the radio | WNID |
//! |---|---|---|
//! | XBee API | `Link` = the sender's 64-bit address | the same 8 octets |
//! | addressed SLIP | `Link` = the address carried in the frame | the same octets |
//! | plain SLIP, raw | `PointToPoint` (one node per line) | configured per port |
//! | UDP | `Udp(addr)` | IPv4: 4 address octets ‖ 2 port octets; IPv6: 16 ‖ 2 |

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// A node's address on its radio port, as the radio layer reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeAddr {
    /// Link-layer address octets: an XBee 64-bit address, or the address of an addressed SLIP
    /// frame.
    Link(Vec<u8>),
    /// The only node of a point-to-point serial line (plain SLIP, raw framing).
    PointToPoint,
    /// A node that sends plain MQTT-SN datagrams over UDP.
    Udp(SocketAddr),
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeAddr::Link(octets) => f.write_str(&hex(octets)),
            NodeAddr::PointToPoint => f.write_str("point-to-point"),
            NodeAddr::Udp(addr) => write!(f, "{addr}"),
        }
    }
}

/// How a port names its nodes (see the module table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WnidScheme {
    /// The WNID is the link-layer address the radio reports (XBee, addressed SLIP).
    LinkAddress,
    /// Every frame comes from the one node of the line, whose WNID is configured (plain SLIP,
    /// raw). Never empty (an empty WNID means "broadcast").
    Fixed(Vec<u8>),
    /// The WNID encodes the node's UDP address.
    UdpAddress,
}

impl WnidScheme {
    /// The WNID of `node` on a port using this scheme; `None` when the node address does not fit
    /// the scheme (a radio-layer bug or an empty link address, which would mean "broadcast").
    pub fn wnid_of(&self, node: &NodeAddr) -> Option<Vec<u8>> {
        match (self, node) {
            (WnidScheme::LinkAddress, NodeAddr::Link(octets))
                if !octets.is_empty() && octets.len() <= sn_codec::encap::MAX_WNID_LEN =>
            {
                Some(octets.clone())
            }
            (WnidScheme::Fixed(wnid), _) => Some(wnid.clone()),
            (WnidScheme::UdpAddress, NodeAddr::Udp(addr)) => Some(udp_wnid(*addr)),
            _ => None,
        }
    }
}

/// The WNID of a UDP node: its IP address octets followed by the port, big-endian.
pub fn udp_wnid(addr: SocketAddr) -> Vec<u8> {
    let mut out = match addr.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// Lower-case hex of `octets`, for logs.
pub fn hex(octets: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(octets.len().saturating_mul(2));
    for b in octets {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses hex octets (`"0013a200415b6c2d"`, case-insensitive, optional `:` or `-` separators
/// between octets).
///
/// # Errors
/// A message saying what is wrong (odd number of digits, not a hex digit, empty).
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<char> = s.chars().filter(|c| !matches!(c, ':' | '-')).collect();
    if digits.is_empty() {
        return Err("empty: expected hex octets such as \"01\" or \"0013a200415b6c2d\"".into());
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!("{s:?} has an odd number of hex digits"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text: String = pair.iter().collect();
            u8::from_str_radix(&text, 16).map_err(|_| format!("{s:?}: {text:?} is not a hex octet"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn link_addresses_are_their_own_wnid_and_empty_ones_are_refused() {
        let s = WnidScheme::LinkAddress;
        assert_eq!(s.wnid_of(&NodeAddr::Link(vec![1, 2])), Some(vec![1, 2]));
        assert_eq!(s.wnid_of(&NodeAddr::Link(vec![])), None);
        assert_eq!(s.wnid_of(&NodeAddr::PointToPoint), None);
    }

    #[test]
    fn udp_wnids_encode_address_and_port() {
        let a: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        assert_eq!(udp_wnid(a), vec![10, 0, 0, 7, 0x13, 0x88]);
        let b: SocketAddr = "[::1]:1".parse().unwrap();
        assert_eq!(udp_wnid(b).len(), 18);
        assert_eq!(
            WnidScheme::UdpAddress.wnid_of(&NodeAddr::Udp(a)),
            Some(udp_wnid(a))
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        assert_eq!(parse_hex("00:13:A2-00").unwrap(), vec![0, 0x13, 0xA2, 0]);
        assert_eq!(hex(&[0, 0x13, 0xA2]), "0013a2");
        assert!(parse_hex("0").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("").is_err());
        assert!(parse_hex("é1").is_err());
    }
}
