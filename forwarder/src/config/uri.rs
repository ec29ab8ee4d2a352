//! Radio port URIs (`--radio` and `uri = "…"` in `[[ports]]`) and the value parsers shared with
//! the file's keys, so a value means the same thing whichever way it is given.
//!
//! ```text
//! serial:///dev/ttyUSB0?baud=115200&framing=xbee&api=2&flow=hardware
//! serial:///dev/ttyACM0?framing=slip&wnid=01
//! serial:///dev/ttyACM1?framing=slip&addressed=true
//! serial:///dev/ttyS0?framing=raw&wnid=0a&baud=9600
//! udp://0.0.0.0:10000[?broadcast=ADDR:PORT]
//! ```
//! Serial defaults: baud 115200, framing xbee (API mode 2), flow none. Optional `name=…`.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::core::wnid::parse_hex;
use crate::io::config::{FlowControl, PortConfig, PortKind, SerialConfig, UdpRadioConfig};
use crate::radio::Framing;

/// Default serial baud rate.
pub const DEFAULT_BAUD: u32 = 115_200;

/// `ADDRESS:PORT`, IPv4 or bracketed IPv6.
pub(crate) fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not an ADDRESS:PORT (e.g. \"192.168.4.1:1883\" or \"[::1]:1883\")")
    })
}

/// A framing name of the file: `xbee-api2`, `xbee-api1`, `slip`, `slip-addressed`, `raw`.
pub(crate) fn framing(s: &str) -> Result<Framing, String> {
    match s {
        "xbee-api2" | "xbee" => Ok(Framing::Xbee { escaped: true }),
        "xbee-api1" => Ok(Framing::Xbee { escaped: false }),
        "slip" => Ok(Framing::Slip { addressed: false }),
        "slip-addressed" => Ok(Framing::Slip { addressed: true }),
        "raw" => Ok(Framing::Raw),
        _ => Err(format!(
            "unknown framing {s:?}; expected \"xbee-api2\", \"xbee-api1\", \"slip\", \"slip-addressed\" or \"raw\""
        )),
    }
}

/// `none`, `hardware` (or `rtscts`), `software` (or `xonxoff`).
pub(crate) fn flow(s: &str) -> Result<FlowControl, String> {
    match s {
        "none" => Ok(FlowControl::None),
        "hardware" | "rtscts" => Ok(FlowControl::Hardware),
        "software" | "xonxoff" => Ok(FlowControl::Software),
        _ => Err(format!(
            "unknown flow control {s:?}; expected \"none\", \"hardware\" or \"software\""
        )),
    }
}

/// A baud rate, 1..=4000000.
pub(crate) fn baud(n: i64) -> Result<u32, String> {
    match u32::try_from(n) {
        Ok(b) if (1..=4_000_000).contains(&b) => Ok(b),
        _ => Err(format!("{n} is not a baud rate (1..=4000000)")),
    }
}

/// A WNID: 1..=252 hex octets.
pub(crate) fn wnid(s: &str) -> Result<Vec<u8>, String> {
    let w = parse_hex(s)?;
    if w.len() > sn_codec::encap::MAX_WNID_LEN {
        return Err(format!("{} octets; a WNID has at most 252", w.len()));
    }
    Ok(w)
}

/// Checks that `framing` and `wnid` go together.
pub(crate) fn check_wnid(framing: Framing, wnid: Option<&[u8]>) -> Result<(), String> {
    match (framing, wnid) {
        (Framing::Xbee { .. }, Some(_)) => {
            Err("an XBee port names each node by its 64-bit address; remove wnid".into())
        }
        (Framing::Slip { addressed: true }, Some(_)) => Err(
            "an addressed SLIP port names each node by the address in its frames; remove wnid"
                .into(),
        ),
        (Framing::Slip { addressed: false } | Framing::Raw, None) => Err(
            "a plain slip or raw line carries one node: set its wnid (hex octets, e.g. \"01\")"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// Parses a radio port URI (see the module documentation).
pub fn parse_radio_uri(uri: &str) -> Result<PortConfig, String> {
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
        format!("{uri:?} is not a URI; expected serial:///dev/… or udp://ADDR:PORT")
    })?;
    let (target, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut params = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("{uri:?}: parameter {pair:?} is not key=value"))?;
        if params.iter().any(|(seen, _)| *seen == k) {
            return Err(format!("{uri:?}: parameter {k:?} given twice"));
        }
        params.push((k, v));
    }
    let get = |k: &str| params.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let allowed: &[&str] = match scheme {
        "serial" => &[
            "baud",
            "framing",
            "api",
            "addressed",
            "wnid",
            "flow",
            "name",
        ],
        "udp" => &["broadcast", "name"],
        _ => {
            return Err(format!(
                "{uri:?}: unsupported scheme {scheme:?}; use serial:// or udp://"
            ));
        }
    };
    if let Some((k, _)) = params.iter().find(|(k, _)| !allowed.contains(k)) {
        return Err(format!(
            "{uri:?}: unknown parameter {k:?}; {scheme}:// takes {}",
            allowed.join(", ")
        ));
    }
    let name = get("name").map_or_else(|| target.to_owned(), str::to_owned);
    if scheme == "udp" {
        let bind = socket_addr(target)?;
        let broadcast = get("broadcast").map(socket_addr).transpose()?;
        return Ok(PortConfig {
            name,
            kind: PortKind::Udp(UdpRadioConfig { bind, broadcast }),
        });
    }
    if target.is_empty() {
        return Err(format!(
            "{uri:?} has no device path (serial:///dev/ttyUSB0)"
        ));
    }
    let baud = match get("baud") {
        Some(b) => baud(
            b.parse::<i64>()
                .map_err(|_| format!("{uri:?}: baud {b:?} is not a number"))?,
        )?,
        None => DEFAULT_BAUD,
    };
    let bool_param = |k: &str| match get(k) {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(v) => Err(format!("{uri:?}: {k}={v:?} is not true or false")),
    };
    let framing = match get("framing").unwrap_or("xbee") {
        "xbee" => match get("api").unwrap_or("2") {
            "2" => Framing::Xbee { escaped: true },
            "1" => Framing::Xbee { escaped: false },
            other => return Err(format!("{uri:?}: api={other:?}; expected 1 or 2")),
        },
        "slip" => Framing::Slip {
            addressed: bool_param("addressed")?,
        },
        other => framing(other)?,
    };
    let wnid = get("wnid").map(wnid).transpose()?;
    check_wnid(framing, wnid.as_deref())?;
    let flow = get("flow")
        .map(flow)
        .transpose()?
        .unwrap_or(FlowControl::None);
    Ok(PortConfig {
        name,
        kind: PortKind::Serial(SerialConfig {
            path: PathBuf::from(target),
            baud,
            flow,
            framing,
            wnid,
        }),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn serial_uris_with_every_parameter() {
        let p =
            parse_radio_uri("serial:///dev/ttyUSB0?baud=57600&framing=xbee&api=1&flow=hardware")
                .unwrap();
        assert_eq!(p.name, "/dev/ttyUSB0");
        assert_eq!(
            p.kind,
            PortKind::Serial(SerialConfig {
                path: "/dev/ttyUSB0".into(),
                baud: 57_600,
                flow: FlowControl::Hardware,
                framing: Framing::Xbee { escaped: false },
                wnid: None,
            })
        );
        let p = parse_radio_uri("serial:///dev/ttyACM0?framing=slip&wnid=01&name=dongle").unwrap();
        assert_eq!(p.name, "dongle");
        assert!(
            matches!(p.kind, PortKind::Serial(SerialConfig { baud: 115_200, wnid: Some(ref w), .. }) if w == &[1])
        );
        let p = parse_radio_uri("serial:///dev/ttyACM1?framing=slip&addressed=true").unwrap();
        assert!(matches!(
            p.kind,
            PortKind::Serial(SerialConfig {
                framing: Framing::Slip { addressed: true },
                ..
            })
        ));
        let p = parse_radio_uri("serial:///dev/ttyS0").unwrap();
        assert!(matches!(
            p.kind,
            PortKind::Serial(SerialConfig {
                framing: Framing::Xbee { escaped: true },
                ..
            })
        ));
    }

    #[test]
    fn udp_uris() {
        let p = parse_radio_uri("udp://0.0.0.0:10000?broadcast=239.1.1.1:10001").unwrap();
        assert_eq!(
            p.kind,
            PortKind::Udp(UdpRadioConfig {
                bind: "0.0.0.0:10000".parse().unwrap(),
                broadcast: Some("239.1.1.1:10001".parse().unwrap()),
            })
        );
    }

    #[test]
    fn bad_uris_say_what_is_wrong() {
        for (uri, needle) in [
            ("/dev/ttyUSB0", "not a URI"),
            ("tcp://x:1", "unsupported scheme"),
            ("serial://", "no device path"),
            ("serial:///dev/x?baud=fast", "not a number"),
            ("serial:///dev/x?baud=0", "not a baud rate"),
            ("serial:///dev/x?framing=slip", "set its wnid"),
            ("serial:///dev/x?framing=xbee&wnid=01", "remove wnid"),
            ("serial:///dev/x?framing=morse", "unknown framing"),
            ("serial:///dev/x?api=3", "expected 1 or 2"),
            ("serial:///dev/x?flow=maybe", "unknown flow control"),
            ("serial:///dev/x?colour=red", "unknown parameter"),
            ("serial:///dev/x?baud=1&baud=2", "given twice"),
            ("serial:///dev/x?wnid", "not key=value"),
            ("serial:///dev/x?framing=raw&wnid=0", "odd number"),
            ("udp://nowhere", "not an ADDRESS:PORT"),
            ("udp://0.0.0.0:1?baud=9600", "unknown parameter"),
        ] {
            let e = parse_radio_uri(uri).unwrap_err();
            assert!(e.contains(needle), "{uri}: {e}");
        }
    }
}
