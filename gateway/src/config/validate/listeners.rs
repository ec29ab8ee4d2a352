//! `[[listeners.udp]]` → `Vec<ListenerConfig>`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::Ctx;
use crate::config::ConfigError;
use crate::config::file::{FileListeners, FileMulticast};
use crate::config::values;
use crate::io::config::{IoConfig, ListenerConfig, MulticastConfig};

/// Validates the file's listeners; `flag` (from `--listen`) then replaces them.
pub(super) fn validate(
    cx: &Ctx<'_>,
    file: &FileListeners,
    flag: Option<&[SocketAddr]>,
) -> Result<Vec<ListenerConfig>, ConfigError> {
    let mut out = Vec::new();
    match &file.udp {
        None => out = IoConfig::default().listeners,
        Some(list) if list.get_ref().is_empty() => {
            return Err(cx.at(list, "listeners.udp", "at least one UDP listener is needed"));
        }
        Some(list) => {
            for (i, l) in list.get_ref().iter().enumerate() {
                let key = format!("listeners.udp[{i}].bind");
                let bind =
                    values::socket_addr(l.bind.get_ref()).map_err(|r| cx.at(&l.bind, &key, r))?;
                if out.iter().any(|o: &ListenerConfig| o.bind == bind) {
                    return Err(cx.at(&l.bind, &key, format!("{bind} is already a listener")));
                }
                let multicast = match &l.multicast {
                    None => None,
                    Some(m) => Some(multicast(
                        cx,
                        m,
                        bind,
                        &format!("listeners.udp[{i}].multicast"),
                    )?),
                };
                out.push(ListenerConfig { bind, multicast });
            }
        }
    }
    let Some(flag) = flag else { return Ok(out) };
    let mut out: Vec<ListenerConfig> = Vec::new();
    for &bind in flag {
        if out.iter().any(|o| o.bind == bind) {
            return Err(ConfigError::Flag {
                flag: "--listen".into(),
                reason: format!("{bind} is given twice"),
            });
        }
        out.push(ListenerConfig {
            bind,
            multicast: None,
        });
    }
    Ok(out)
}

/// `multicast = { group, interface | interface_index, ttl }` of a listener bound to `bind`.
fn multicast(
    cx: &Ctx<'_>,
    m: &FileMulticast,
    bind: SocketAddr,
    key: &str,
) -> Result<MulticastConfig, ConfigError> {
    let gkey = format!("{key}.group");
    let group = values::socket_addr(m.group.get_ref()).map_err(|r| cx.at(&m.group, &gkey, r))?;
    if !group.ip().is_multicast() {
        return Err(cx.at(
            &m.group,
            &gkey,
            format!("{} is not a multicast address", group.ip()),
        ));
    }
    if group.is_ipv4() != bind.is_ipv4() {
        return Err(cx.at(
            &m.group,
            &gkey,
            format!("group {group} and listener {bind} are not the same IP version"),
        ));
    }
    if group.port() == 0 {
        return Err(cx.at(&m.group, &gkey, "the group needs a port (e.g. 1884)"));
    }
    if group.port() == bind.port() {
        return Err(cx.at(
            &m.group,
            &gkey,
            format!(
                "multicast port {} equals the listener's unicast port; use another port (e.g. {})",
                group.port(),
                if bind.port() == 1884 { 1885 } else { 1884 }
            ),
        ));
    }
    let interface_v4 = match &m.interface {
        None => None,
        Some(_) if group.is_ipv6() => {
            return Err(cx.err(
                m.interface.as_ref().map(|s| s.span()),
                &format!("{key}.interface"),
                "IPv6 groups take interface_index (a number), not interface",
            ));
        }
        Some(s) => Some(s.get_ref().parse::<Ipv4Addr>().map_err(|_| {
            cx.at(
                s,
                &format!("{key}.interface"),
                format!("{:?} is not an IPv4 address", s.get_ref()),
            )
        })?),
    };
    if let (Some(idx), IpAddr::V4(_)) = (&m.interface_index, group.ip()) {
        return Err(cx.at(
            idx,
            &format!("{key}.interface_index"),
            "IPv4 groups take interface (an IPv4 address), not interface_index",
        ));
    }
    Ok(MulticastConfig {
        group,
        interface_v4,
        interface_v6: cx.int(
            &m.interface_index,
            &format!("{key}.interface_index"),
            0..=u32::MAX.into(),
            0,
        )?,
        ttl: cx.int(&m.ttl, &format!("{key}.ttl"), 1..=255, 1)?,
    })
}
