//! Second pass: `FileConfig` (shape already checked by serde) → [`Settings`]: defaults filled,
//! ranges and cross-field rules checked, command-line [`Overrides`] applied. The first problem
//! found is returned, with the position of the offending value when it is in the file.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use sn_config::duration::{self, Dur};
use toml::Spanned;

use super::ConfigError;
use super::file::{FileConfig, FilePort};
use super::uri::{self, DEFAULT_BAUD};
use crate::core::{DiscoverySettings, ForwarderConfig};
use crate::io::config::{
    FlowControl, GroupConfig, IoConfig, PortConfig, PortKind, SerialConfig, Settings,
    UdpRadioConfig,
};
use crate::radio::Framing;

/// Command-line values that replace what the file says (already parsed).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--radio`: replaces every `[[ports]]` entry.
    pub radios: Vec<PortConfig>,
    /// `--gateway`: replaces `forwarder.gateway`.
    pub gateway: Option<SocketAddr>,
}

/// Where errors point.
struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Ctx<'_> {
    fn at<T>(&self, v: &Spanned<T>, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.path, self.text, Some(v.span()), key, reason)
    }

    fn nowhere(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.path, self.text, None, key, reason)
    }

    fn int<T: TryFrom<i64>>(
        &self,
        v: &Option<Spanned<i64>>,
        key: &str,
        range: RangeInclusive<i64>,
        default: T,
    ) -> Result<T, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let n = *v.get_ref();
        if !range.contains(&n) {
            let (lo, hi) = (range.start(), range.end());
            return Err(self.at(v, key, format!("{n} is out of range; expected {lo}..={hi}")));
        }
        T::try_from(n).map_err(|_| self.at(v, key, format!("{n} does not fit")))
    }

    fn dur(
        &self,
        v: &Option<Spanned<Dur>>,
        key: &str,
        default: Duration,
        allow_zero: bool,
    ) -> Result<Duration, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let d = v.get_ref().0;
        if d.is_zero() && !allow_zero {
            let shown = duration::format(d);
            return Err(self.at(v, key, format!("\"{shown}\" must be greater than zero")));
        }
        Ok(d)
    }

    fn parse<T>(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        f(v.get_ref()).map(Some).map_err(|r| self.at(v, key, r))
    }
}

/// Validates `file` (read from `text` at `path`) and applies `ov`.
pub(crate) fn validate(
    file: FileConfig,
    text: &str,
    path: &Path,
    ov: &Overrides,
) -> Result<Settings, ConfigError> {
    let cx = Ctx { text, path };
    let f = &file.forwarder;
    let d = &file.discovery;
    let defaults = ForwarderConfig::default();
    let io_defaults = IoConfig::default();
    let dd = DiscoverySettings::default();

    let gateway = match ov.gateway {
        Some(g) => Some(g),
        None => cx.parse(&f.gateway, "forwarder.gateway", uri::socket_addr)?,
    };
    let bind = cx
        .parse(&f.bind, "forwarder.bind", uri::socket_addr)?
        .unwrap_or(io_defaults.bind);
    let relay_advertise = f.relay_advertise.unwrap_or(defaults.relay_advertise);
    let stats = cx.dur(
        &f.stats_interval,
        "forwarder.stats_interval",
        Duration::from_secs(300),
        true,
    )?;
    let search_initial = cx.dur(
        &d.search_initial,
        "discovery.search_initial",
        dd.search_initial,
        false,
    )?;
    let search_max = cx.dur(&d.search_max, "discovery.search_max", dd.search_max, false)?;
    if search_max < search_initial
        && let Some(v) = &d.search_max
    {
        return Err(cx.at(
            v,
            "discovery.search_max",
            "must not be shorter than discovery.search_initial",
        ));
    }
    let group_addr = cx.parse(&d.group, "discovery.group", |s| {
        match uri::socket_addr(s)? {
            SocketAddr::V4(g) if g.ip().is_multicast() => Ok(g),
            _ => Err(format!(
                "{s:?} is not an IPv4 multicast group ADDRESS:PORT (e.g. \"225.1.1.1:1884\")"
            )),
        }
    })?;
    let interface = cx.parse(&d.interface, "discovery.interface", |s| {
        s.parse::<Ipv4Addr>()
            .map_err(|_| format!("{s:?} is not an IPv4 interface address"))
    })?;
    let group_default = GroupConfig::default();
    let group = GroupConfig {
        group: group_addr.unwrap_or(group_default.group),
        interface: interface.unwrap_or(group_default.interface),
        ttl: cx.int(&d.ttl, "discovery.ttl", 1..=255, group_default.ttl)?,
    };
    let discovery = DiscoverySettings {
        search_initial,
        search_max,
        radius: cx.int(&d.radius, "discovery.radius", 0..=255, dd.radius)?,
        missed_advertise_limit: cx.int(
            &d.missed_advertise_limit,
            "discovery.missed_advertise_limit",
            1..=100,
            dd.missed_advertise_limit,
        )?,
    };
    let s = &file.serial;
    let reopen_initial = cx.dur(
        &s.reopen_initial,
        "serial.reopen_initial",
        io_defaults.reopen_initial,
        false,
    )?;
    let reopen_max = cx.dur(
        &s.reopen_max,
        "serial.reopen_max",
        io_defaults.reopen_max,
        false,
    )?;
    if reopen_max < reopen_initial
        && let Some(v) = &s.reopen_max
    {
        return Err(cx.at(
            v,
            "serial.reopen_max",
            "must not be shorter than serial.reopen_initial",
        ));
    }

    let ports = if ov.radios.is_empty() {
        file.ports
            .iter()
            .enumerate()
            .map(|(i, p)| port(&cx, i, p))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        ov.radios.clone()
    };
    check_ports(&cx, &file.ports, &ports, !ov.radios.is_empty())?;

    let core = ForwarderConfig {
        ports: ports.iter().map(PortConfig::wnid_scheme).collect(),
        gateway,
        discovery,
        relay_advertise,
        relay_radius: cx.int(
            &f.relay_radius,
            "forwarder.relay_radius",
            0..=3,
            defaults.relay_radius,
        )?,
        max_nodes: cx.int(
            &f.max_nodes,
            "forwarder.max_nodes",
            1..=1_000_000,
            defaults.max_nodes,
        )?,
        node_idle_timeout: cx.dur(
            &f.node_idle_timeout,
            "forwarder.node_idle_timeout",
            defaults.node_idle_timeout,
            false,
        )?,
        max_queue: cx.int(
            &f.max_queue,
            "forwarder.max_queue",
            1..=1_000_000,
            defaults.max_queue,
        )?,
    };
    let io = IoConfig {
        bind,
        group: Some(group),
        ports,
        reopen_initial,
        reopen_max,
        stats_interval: (!stats.is_zero()).then_some(stats),
    };
    Ok(Settings { core, io })
}

/// One `[[ports]]` entry.
fn port(cx: &Ctx<'_>, i: usize, sp: &Spanned<FilePort>) -> Result<PortConfig, ConfigError> {
    let p = sp.get_ref();
    let key = |k: &str| format!("ports[{i}].{k}");
    let kinds = [p.path.is_some(), p.udp.is_some(), p.uri.is_some()];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(cx.at(
            sp,
            &format!("ports[{i}]"),
            "set exactly one of path (serial device), udp (ADDRESS:PORT) or uri",
        ));
    }
    let name = p.name.as_ref().map(|n| n.get_ref().clone());
    let serial_only: [(&str, bool); 4] = [
        ("baud", p.baud.is_some()),
        ("flow_control", p.flow_control.is_some()),
        ("framing", p.framing.is_some()),
        ("wnid", p.wnid.is_some()),
    ];
    if let Some(uri) = &p.uri {
        if let Some((k, _)) = serial_only.iter().find(|(_, set)| *set) {
            return Err(cx.at(sp, &key(k), "give it inside the uri, not next to it"));
        }
        let mut cfg =
            uri::parse_radio_uri(uri.get_ref()).map_err(|r| cx.at(uri, &key("uri"), r))?;
        if let Some(n) = name {
            cfg.name = n;
        }
        return Ok(cfg);
    }
    if let Some(udp) = &p.udp {
        if let Some((k, _)) = serial_only.iter().find(|(_, set)| *set) {
            return Err(cx.at(sp, &key(k), "only serial ports (path = …) take this key"));
        }
        let bind = uri::socket_addr(udp.get_ref()).map_err(|r| cx.at(udp, &key("udp"), r))?;
        let broadcast = cx.parse(&p.broadcast, &key("broadcast"), uri::socket_addr)?;
        return Ok(PortConfig {
            name: name.unwrap_or_else(|| udp.get_ref().clone()),
            kind: PortKind::Udp(UdpRadioConfig { bind, broadcast }),
        });
    }
    let Some(path) = &p.path else {
        return Err(cx.at(sp, &format!("ports[{i}]"), "no path"));
    };
    if path.get_ref().is_empty() {
        return Err(cx.at(path, &key("path"), "the path is empty"));
    }
    if let Some(b) = &p.broadcast {
        return Err(cx.at(
            b,
            &key("broadcast"),
            "only UDP ports (udp = …) take this key",
        ));
    }
    let baud = match &p.baud {
        Some(b) => uri::baud(*b.get_ref()).map_err(|r| cx.at(b, &key("baud"), r))?,
        None => DEFAULT_BAUD,
    };
    let framing = cx
        .parse(&p.framing, &key("framing"), uri::framing)?
        .unwrap_or(Framing::Xbee { escaped: true });
    let flow = cx
        .parse(&p.flow_control, &key("flow_control"), uri::flow)?
        .unwrap_or(FlowControl::None);
    let wnid = cx.parse(&p.wnid, &key("wnid"), uri::wnid)?;
    uri::check_wnid(framing, wnid.as_deref()).map_err(|r| match (&p.wnid, &p.framing) {
        (Some(w), _) => cx.at(w, &key("wnid"), r),
        (None, Some(f)) => cx.at(f, &key("wnid"), r),
        (None, None) => cx.at(sp, &key("wnid"), r),
    })?;
    Ok(PortConfig {
        name: name.unwrap_or_else(|| path.get_ref().clone()),
        kind: PortKind::Serial(SerialConfig {
            path: path.get_ref().into(),
            baud,
            flow,
            framing,
            wnid,
        }),
    })
}

/// Rules across ports: at least one, at most 255, no duplicate device, address or WNID.
fn check_ports(
    cx: &Ctx<'_>,
    file: &[Spanned<FilePort>],
    ports: &[PortConfig],
    from_flags: bool,
) -> Result<(), ConfigError> {
    if ports.is_empty() {
        return Err(cx.nowhere(
            "ports",
            "at least one [[ports]] entry (or --radio) is required",
        ));
    }
    if ports.len() > 255 {
        return Err(cx.nowhere("ports", format!("{} ports; at most 255", ports.len())));
    }
    for (i, p) in ports.iter().enumerate() {
        let clash = ports.iter().take(i).position(|q| match (&p.kind, &q.kind) {
            (PortKind::Serial(a), PortKind::Serial(b)) => {
                a.path == b.path || (a.wnid.is_some() && a.wnid == b.wnid)
            }
            (PortKind::Udp(a), PortKind::Udp(b)) => a.bind == b.bind && a.bind.port() != 0,
            _ => false,
        });
        if let Some(j) = clash {
            let reason = format!("ports[{i}] uses the same device, address or wnid as ports[{j}]");
            return Err(match (from_flags, file.get(i)) {
                (false, Some(sp)) => cx.at(sp, &format!("ports[{i}]"), reason),
                _ => ConfigError::Flag {
                    flag: "--radio".into(),
                    reason,
                },
            });
        }
    }
    Ok(())
}

/// The multicast group as a socket address (for summaries).
pub(crate) fn group_text(g: &GroupConfig) -> String {
    let iface = if g.interface == Ipv4Addr::UNSPECIFIED {
        "any interface".to_owned()
    } else {
        IpAddr::V4(g.interface).to_string()
    };
    format!("{} on {iface}, ttl {}", g.group, g.ttl)
}
