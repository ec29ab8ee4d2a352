//! Value checks shared by the file validation and the command-line overrides, so a value means
//! the same thing whichever way it is given. Each returns the reason as a `String`; the caller
//! turns it into a `ConfigError` with the key or flag.

use std::net::SocketAddr;

use crate::io::config::Scheme;

/// Default port of `mqtt://`.
pub(crate) const MQTT_PORT: u16 = 1883;
/// Default port of `mqtts://`.
pub(crate) const MQTTS_PORT: u16 = 8883;

/// A parsed upstream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpstreamUrl {
    /// Plain or TLS.
    pub(crate) scheme: Scheme,
    /// Host name or address, without IPv6 brackets.
    pub(crate) host: String,
    /// TCP port (the scheme's default when the URL has none).
    pub(crate) port: u16,
}

/// `ADDRESS:PORT`, IPv4 (`0.0.0.0:1883`) or bracketed IPv6 (`[::1]:10000`).
pub(crate) fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not an ADDRESS:PORT (e.g. \"0.0.0.0:1883\" or \"[::1]:1883\")")
    })
}

/// The HTTP endpoint: `ADDRESS:PORT`, or `off` (no endpoint).
pub(crate) fn http_listen(s: &str) -> Result<Option<SocketAddr>, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| {
        format!("{s:?} is neither an ADDRESS:PORT (e.g. \"127.0.0.1:8087\") nor \"off\"")
    })
}

/// `mqtt://host[:port]` or `mqtts://host[:port]`, optionally with one trailing `/`.
pub(crate) fn upstream_url(s: &str) -> Result<UpstreamUrl, String> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(format!(
            "{s:?} is not a URL; expected mqtt://host[:port] or mqtts://host[:port]"
        ));
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "mqtt" => Scheme::Mqtt,
        "mqtts" => Scheme::Mqtts,
        "embedded" if cfg!(feature = "embedded-broker") => Scheme::Embedded,
        "embedded" => {
            return Err(format!(
                "{s:?}: this build has no embedded broker (cargo feature embedded-broker); use \
                 mqtt:// or mqtts://"
            ));
        }
        _ => {
            return Err(format!(
                "unsupported scheme {scheme:?} in {s:?}; use mqtt:// (plain TCP), mqtts:// (TLS) or \
                 embedded:// (the in-process broker)"
            ));
        }
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if let Some(c) = rest.chars().find(|c| matches!(c, '/' | '?' | '#' | '@')) {
        return Err(format!(
            "{s:?} contains {c:?}: only scheme://host[:port] is allowed (credentials go in \
             upstream.username / upstream.password)"
        ));
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err(format!("{s:?}: missing ']' after the IPv6 address"));
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{s:?}: {host:?} is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("{s:?}: expected ':' after ']'"))?,
            ),
        };
        (host, port)
    } else {
        match rest.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                return Err(format!(
                    "{s:?}: IPv6 addresses need brackets, e.g. mqtt://[::1]:1883"
                ));
            }
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{s:?} has no host"));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
    {
        return Err(format!(
            "{s:?}: {host:?} is not a valid host name or address"
        ));
    }
    let port = match port {
        None => match scheme {
            Scheme::Mqtt | Scheme::Embedded => MQTT_PORT,
            Scheme::Mqtts => MQTTS_PORT,
        },
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(format!("{s:?}: port {p:?} is not in 1..=65535")),
        },
    };
    Ok(UpstreamUrl {
        scheme,
        host: host.to_owned(),
        port,
    })
}

/// A predefined topic id: 1..=65534 (0x0000 and 0xFFFF are reserved).
pub(crate) fn predefined_id(id: i64) -> Result<u16, String> {
    match u16::try_from(id) {
        Ok(0) => Err("0x0000 is reserved and cannot be a predefined topic id".to_owned()),
        Ok(0xFFFF) => {
            Err("0xFFFF (65535) is reserved and cannot be a predefined topic id".to_owned())
        }
        Ok(id) => Ok(id),
        Err(_) => Err(format!("{id} is not a topic id (1..=65534)")),
    }
}

/// A predefined topic name: non-empty, no wildcards, no U+0000, at most 65535 octets.
pub(crate) fn concrete_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        Err("the topic name is empty".to_owned())
    } else if topic.contains(['+', '#']) {
        Err(format!(
            "{topic:?} contains a wildcard (+ or #); predefined topics must be concrete"
        ))
    } else if topic.contains('\0') {
        Err(format!("{topic:?} contains U+0000"))
    } else if topic.len() > usize::from(u16::MAX) {
        Err("the topic name is longer than 65535 octets".to_owned())
    } else {
        Ok(())
    }
}

/// A topic prefix (mountpoint): may be empty, no wildcards, no U+0000.
pub(crate) fn topic_prefix(prefix: &str) -> Result<(), String> {
    if prefix.contains(['+', '#']) {
        Err(format!("{prefix:?} contains a wildcard (+ or #)"))
    } else if prefix.contains('\0') {
        Err(format!("{prefix:?} contains U+0000"))
    } else {
        Ok(())
    }
}

/// `ID=TOPIC` from `--predefined`; the id is decimal or `0x` hex.
pub(crate) fn predefined_flag(s: &str) -> Result<(u16, String), String> {
    let Some((id, topic)) = s.split_once('=') else {
        return Err(format!("{s:?} is not ID=TOPIC (e.g. 1=site/status)"));
    };
    let id = id.trim();
    let parsed = match id.strip_prefix("0x").or_else(|| id.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16),
        None => id.parse::<i64>(),
    };
    let id = parsed.map_err(|_| format!("{s:?}: {id:?} is not a number"))?;
    let id = predefined_id(id).map_err(|e| format!("{s:?}: {e}"))?;
    concrete_topic(topic).map_err(|e| format!("{s:?}: {e}"))?;
    Ok((id, topic.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_default_their_port_by_scheme() {
        let u = upstream_url("mqtt://broker.local").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (Scheme::Mqtt, "broker.local", 1883)
        );
        let u = upstream_url("mqtts://broker.local/").unwrap();
        assert_eq!((u.scheme, u.port), (Scheme::Mqtts, 8883));
        let u = upstream_url("MQTT://10.0.0.1:1884").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("10.0.0.1", 1884));
        let u = upstream_url("mqtts://[::1]:8884").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8884));
        let u = upstream_url("mqtt://[fe80::1]").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("fe80::1", 1883));
    }

    #[test]
    fn upstream_urls_with_other_parts_are_rejected() {
        for bad in [
            "broker:1883",
            "http://broker",
            "tcp://broker:1883",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://broker:0",
            "mqtt://broker:70000",
            "mqtt://broker:x",
            "mqtt://user:pw@broker",
            "mqtt://broker/path",
            "mqtt://broker?x=1",
            "mqtt://::1",
            "mqtt://[::1",
            "mqtt://[nope]:1883",
            "mqtt://bro ker",
        ] {
            assert!(upstream_url(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(
            upstream_url("http://x")
                .unwrap_err()
                .contains("unsupported scheme")
        );
    }

    #[test]
    fn predefined_ids_and_topics_follow_the_spec() {
        assert_eq!(predefined_id(1), Ok(1));
        assert_eq!(predefined_id(0xFFFE), Ok(0xFFFE));
        assert!(predefined_id(0).is_err());
        assert!(predefined_id(0xFFFF).is_err());
        assert!(predefined_id(-1).is_err());
        assert!(predefined_id(70_000).is_err());
        assert!(concrete_topic("a/b").is_ok());
        assert!(concrete_topic("/").is_ok());
        for bad in ["", "a/+", "#", "a/#/b", "a\0b"] {
            assert!(concrete_topic(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn predefined_flags_take_decimal_or_hex_ids() {
        assert_eq!(
            predefined_flag("1=site/status"),
            Ok((1, "site/status".to_owned()))
        );
        assert_eq!(predefined_flag("0x10=a=b"), Ok((16, "a=b".to_owned())));
        for bad in ["1", "x=a", "0=a", "65535=a", "1=a/#", "1=", "=a"] {
            assert!(predefined_flag(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
