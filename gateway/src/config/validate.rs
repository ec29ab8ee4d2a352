//! Second pass: `FileConfig` (shape already checked by serde) → [`Settings`].
//!
//! Fills defaults (from `GatewayConfig::default()` / `IoConfig::default()`; the shipped
//! `config/gateway.toml` spells each one out), checks ranges and cross-field rules, resolves and
//! checks TLS file paths, and applies the command-line [`Overrides`]. The first problem found is returned, with the position of the
//! offending value when it is in the file.

mod limits;
mod listeners;
mod predefined;
mod upstream;

use std::net::{IpAddr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sn_config::duration::{self, Dur};
use toml::Spanned;

use super::file::{FileAdmission, FileConfig, FileOverflow, FileStorage, Int};
use super::registry::RegistryStatus;
use super::values::UpstreamUrl;
use super::{ConfigError, Settings};
use crate::core::config::{
    Admission, CustodyConfig, CustodyMode, DiscoveryConfig, ForwarderPolicy, GatewayConfig,
    OverflowPolicy, QosMinus1Config, SleepConfig, Tolerance,
};
use crate::io::config::{IoConfig, MulticastConfig};
use crate::io::store::{StorageConfig, StorageLocation};

/// Command-line values that replace what the file says. Each is already parsed; rules that
/// involve the file (duplicates, TLS for `mqtts`) are checked here and reported as
/// [`ConfigError::Flag`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    /// `--listen`: replaces every `[[listeners.udp]]` (multicast settings included).
    pub(crate) listen: Option<Vec<SocketAddr>>,
    /// `--upstream`: replaces `upstream.url`.
    pub(crate) upstream: Option<UpstreamUrl>,
    /// `--upstream-mode`: replaces `upstream.mode`.
    pub(crate) upstream_mode: Option<crate::core::config::UpstreamMode>,
    /// `--gateway-id`: replaces `gateway.id`.
    pub(crate) gateway_id: Option<u8>,
    /// `--predefined`: global ids added to (or replacing) the file's global ones.
    pub(crate) predefined: Vec<(u16, String)>,
    /// `--advertise`: the discovery group on every listener of its address family; turns
    /// discovery on.
    pub(crate) advertise: Option<SocketAddr>,
    /// `--advertise-interface`: the multicast interface (IPv4 address or IPv6 index).
    pub(crate) advertise_interface: Option<MulticastInterface>,
    /// `--advertise-interval`: T_ADV; turns discovery on.
    pub(crate) advertise_interval: Option<Duration>,
    /// `--registry`: the client registry file, instead of `clients.registry`.
    pub(crate) registry: Option<PathBuf>,
    /// `--http`: replaces `http.listen` (`Some(None)`: `--http off`).
    pub(crate) http: Option<Option<SocketAddr>>,
    /// `--storage`: replaces `storage.path` (a file, or off).
    pub(crate) storage: Option<StorageLocation>,
}

/// A multicast interface named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MulticastInterface {
    /// The IPv4 address of the interface.
    V4(std::net::Ipv4Addr),
    /// The interface index (IPv6).
    Index(u32),
}

/// Where errors point: the text (for line/column), the file name and the directory relative
/// TLS paths are resolved against.
pub(super) struct Ctx<'a> {
    /// The whole file text.
    text: &'a str,
    /// The file name shown in messages.
    path: &'a Path,
    /// Directory of the file.
    base_dir: PathBuf,
}

impl<'a> Ctx<'a> {
    /// A validation error at `span` (or without a position).
    fn err(&self, span: Option<Range<usize>>, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.path, self.text, span, key, reason)
    }

    /// A validation error at the position of `v`.
    fn at<T>(&self, v: &Spanned<T>, key: &str, reason: impl Into<String>) -> ConfigError {
        self.err(Some(v.span()), key, reason)
    }

    /// An integer in `range`, converted to `T`; `default` when absent.
    fn int<T: TryFrom<i64>>(
        &self,
        v: &Option<Spanned<Int>>,
        key: &str,
        range: RangeInclusive<i64>,
        default: T,
    ) -> Result<T, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let n = v.get_ref().0;
        if !range.contains(&n) {
            return Err(self.at(
                v,
                key,
                format!(
                    "{n} is out of range; expected {}..={}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        T::try_from(n).map_err(|_| self.at(v, key, format!("{n} does not fit")))
    }

    /// A duration passing `check`; `default` when absent.
    fn dur(
        &self,
        v: &Option<Spanned<Dur>>,
        key: &str,
        default: Duration,
        check: impl FnOnce(Duration) -> Result<(), String>,
    ) -> Result<Duration, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let d = v.get_ref().0;
        check(d)
            .map_err(|reason| self.at(v, key, format!("\"{}\" {reason}", duration::format(d))))?;
        Ok(d)
    }

    /// A string passing `check`; `None` when absent.
    fn string(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
        check: impl FnOnce(&str) -> Result<(), String>,
    ) -> Result<Option<String>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        check(v.get_ref()).map_err(|reason| self.at(v, key, reason))?;
        Ok(Some(v.get_ref().clone()))
    }

    /// An IP address list (`allow = [...]`).
    fn ips(
        &self,
        v: &Option<Vec<Spanned<String>>>,
        key: &str,
    ) -> Result<Option<Vec<IpAddr>>, ConfigError> {
        let Some(list) = v else { return Ok(None) };
        list.iter()
            .enumerate()
            .map(|(i, s)| {
                s.get_ref().parse::<IpAddr>().map_err(|_| {
                    self.at(
                        s,
                        &format!("{key}[{i}]"),
                        format!("{:?} is not an IP address", s.get_ref()),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A file path: relative paths are taken from the configuration file's directory; the file
    /// must exist and be readable.
    fn readable_file(&self, v: &Spanned<String>, key: &str) -> Result<PathBuf, ConfigError> {
        let raw = v.get_ref();
        if raw.is_empty() {
            return Err(self.at(v, key, "the path is empty"));
        }
        let path = self.base_dir.join(raw);
        let shown = path.display();
        match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => Err(self.at(v, key, format!("{shown} is not a regular file"))),
            Ok(_) => match std::fs::File::open(&path) {
                Ok(_) => Ok(path),
                Err(e) => Err(self.at(v, key, format!("cannot read {shown}: {e}"))),
            },
            Err(e) => Err(self.at(v, key, format!("cannot read {shown}: {e}"))),
        }
    }
}

/// A duration must not be zero.
fn positive(d: Duration) -> Result<(), String> {
    if d.is_zero() {
        Err("must be greater than zero".to_owned())
    } else {
        Ok(())
    }
}

/// A duration carried on the wire as a u16 number of seconds.
fn whole_seconds_u16(d: Duration) -> Result<(), String> {
    if d.subsec_nanos() != 0 {
        Err("must be a whole number of seconds".to_owned())
    } else if d.as_secs() == 0 || d.as_secs() > u64::from(u16::MAX) {
        Err("is out of range; expected 1s..=65535s".to_owned())
    } else {
        Ok(())
    }
}

/// Validates `file` (read from `text` at `path`) and applies `ov`.
pub(crate) fn validate(
    file: FileConfig,
    text: &str,
    path: &Path,
    ov: &Overrides,
) -> Result<Settings, ConfigError> {
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let cx = Ctx {
        text,
        path,
        base_dir,
    };
    let d = GatewayConfig::default();
    let g = &file.gateway;
    // Settings whose safe default depends on the admission policy: with registered-only, a
    // session does not move to a new address unless the operator says so.
    let open = !matches!(file.clients.policy, Some(FileAdmission::RegisteredOnly));

    let file_id: u8 = cx.int(&g.id, "gateway.id", 0..=255, d.gateway_id)?;
    let gateway_id = ov.gateway_id.unwrap_or(file_id);
    let client_id_max_len = cx.int(
        &g.client_id_max_len,
        "gateway.client_id_max_len",
        1..=64,
        d.client_id_max_len,
    )?;
    let mut core = GatewayConfig {
        gateway_id,
        client_id_max_len,
        max_clients: cx.int(
            &g.max_clients,
            "gateway.max_clients",
            1..=1_000_000,
            d.max_clients,
        )?,
        max_topics_per_client: cx.int(
            &g.max_topics_per_client,
            "gateway.max_topics_per_client",
            1..=0xFFFE,
            d.max_topics_per_client,
        )?,
        max_packet_size: cx.int(
            &g.max_packet_size,
            "gateway.max_packet_size",
            16..=65535,
            d.max_packet_size,
        )?,
        max_inflight_from_client: cx.int(
            &g.max_inflight_from_client,
            "gateway.max_inflight_from_client",
            1..=65535,
            d.max_inflight_from_client,
        )?,
        downlink_queue: cx.int(
            &g.downlink_queue,
            "gateway.downlink_queue",
            1..=65535,
            d.downlink_queue,
        )?,
        uplink_buffer: cx.int(
            &g.uplink_buffer,
            "gateway.uplink_buffer",
            1..=65535,
            d.uplink_buffer,
        )?,
        allow_address_change: g.allow_address_change.unwrap_or(open),
        remember_disconnected_for: {
            let d = cx.dur(
                &g.remember_disconnected_for,
                "gateway.remember_disconnected_for",
                d.remember_disconnected_for.unwrap_or_default(),
                |_| Ok(()),
            )?;
            (!d.is_zero()).then_some(d)
        },
        short_topic_suback_id: match &g.short_topic_suback_id {
            None => d.short_topic_suback_id,
            Some(v) => {
                crate::core::config::ShortSubackId::from_name(v.get_ref()).ok_or_else(|| {
                    cx.at(
                        v,
                        "gateway.short_topic_suback_id",
                        format!(
                            "{:?} is not a choice: expected \"name\" or \"zero\"",
                            v.get_ref()
                        ),
                    )
                })?
            }
        },
        ..d
    };
    core.limits = limits::validate(&cx, &file.limits)?;

    timers(&cx, &file, &mut core)?;
    core.sleep = sleep(&cx, &file, open)?;
    core.discovery = discovery(&cx, &file)?;
    core.qos_minus1 = QosMinus1Config {
        enabled: file.qos_minus1.enabled.unwrap_or(core.qos_minus1.enabled),
        long_topic_form: file
            .qos_minus1
            .long_topic_form
            .unwrap_or(core.qos_minus1.long_topic_form),
        allow_retain: file
            .qos_minus1
            .allow_retain
            .unwrap_or(core.qos_minus1.allow_retain),
        allow: cx.ips(&file.qos_minus1.allow, "qos_minus1.allow")?,
    };
    core.forwarders = ForwarderPolicy {
        allow: cx.ips(&file.forwarders.allow, "forwarders.allow")?,
    };

    let mut io = IoConfig {
        listeners: listeners::validate(&cx, &file.listeners, ov.listen.as_deref())?,
        ..IoConfig::default()
    };
    apply_discovery_flags(ov, &mut core, &mut io)?;
    let registry = clients(&cx, &file, &mut core, ov.registry.as_deref())?;
    io.registry_file = Some(registry.path.clone());
    let (session, endpoint) = upstream::validate(&cx, &file.upstream, &core, ov)?;
    core.upstream = session;
    io.upstream = endpoint;
    core.predefined =
        predefined::validate(&cx, &file.predefined, client_id_max_len, &ov.predefined)?;
    io.http = match (&ov.http, &file.http.listen) {
        (Some(flag), _) => *flag,
        (None, Some(v)) => super::values::http_listen(v.get_ref())
            .map_err(|reason| cx.at(v, "http.listen", reason))?,
        (None, None) => io.http,
    };
    io.storage = storage(&cx, &file.storage, ov)?;
    core.custody = custody(&cx, &file.storage, &io.storage, core.upstream.mode)?;
    Ok(Settings { core, io, registry })
}

/// `[storage]` custody keys. Gateway custody needs a state database.
fn custody(
    cx: &Ctx<'_>,
    file: &FileStorage,
    storage: &StorageConfig,
    upstream: crate::core::config::UpstreamMode,
) -> Result<CustodyConfig, ConfigError> {
    let d = CustodyConfig::default();
    let mode = match &file.custody {
        // Gateway custody where the gateway is the broker's only client anyway (aggregating
        // mode) and can store; broker custody where each mote publishes on its own connection.
        None if upstream == crate::core::config::UpstreamMode::Aggregating
            && storage.location != StorageLocation::Off =>
        {
            CustodyMode::Gateway
        }
        None => d.mode,
        Some(v) => CustodyMode::from_name(v.get_ref()).ok_or_else(|| {
            cx.at(
                v,
                "storage.custody",
                format!(
                    "{:?} is not a custody: expected broker or gateway",
                    v.get_ref()
                ),
            )
        })?,
    };
    if mode == CustodyMode::Gateway
        && storage.location == StorageLocation::Off
        && let Some(v) = &file.custody
    {
        return Err(cx.at(
            v,
            "storage.custody",
            "\"gateway\" needs the state database, and storage.path is \"off\"",
        ));
    }
    let max_age = cx.dur(
        &file.custody_max_age,
        "storage.custody_max_age",
        d.max_age.unwrap_or_default(),
        |_| Ok(()),
    )?;
    Ok(CustodyConfig {
        mode,
        max_messages: cx.int(
            &file.custody_max_messages,
            "storage.custody_max_messages",
            1..=10_000_000,
            d.max_messages,
        )?,
        max_age: (!max_age.is_zero()).then_some(max_age),
        queue_qos0: file.queue_qos0.unwrap_or(d.queue_qos0),
    })
}

/// `[storage]`: a path relative to the configuration's directory, `"off"`, or (absent) the
/// default place, which the binary resolves ([`StorageLocation::Default`]).
fn storage(cx: &Ctx<'_>, file: &FileStorage, ov: &Overrides) -> Result<StorageConfig, ConfigError> {
    let d = StorageConfig::default();
    let location = match (&ov.storage, &file.path) {
        (Some(flag), _) => flag.clone(),
        (None, Some(v)) => match v.get_ref().as_str() {
            "off" => StorageLocation::Off,
            "" => return Err(cx.at(v, "storage.path", "is empty: give a file, or \"off\"")),
            p => StorageLocation::Path(cx.base_dir.join(p)),
        },
        (None, None) => StorageLocation::Default,
    };
    Ok(StorageConfig {
        location,
        batch_window: cx.dur(
            &file.batch_window,
            "storage.batch_window",
            d.batch_window,
            |w| {
                if w > Duration::from_secs(1) {
                    Err("is longer than 1s: acknowledged state would wait too long".into())
                } else {
                    Ok(())
                }
            },
        )?,
        batch_max: cx.int(
            &file.batch_max,
            "storage.batch_max",
            1..=100_000,
            d.batch_max,
        )?,
    })
}

/// `[timers]`.
fn timers(cx: &Ctx<'_>, file: &FileConfig, core: &mut GatewayConfig) -> Result<(), ConfigError> {
    let t = &file.timers;
    let dt = Tolerance::default();
    core.t_retry = cx.dur(&t.t_retry, "timers.t_retry", core.t_retry, positive)?;
    core.n_retry = cx.int(&t.n_retry, "timers.n_retry", 1..=20, core.n_retry)?;
    core.tolerance = Tolerance {
        long_percent: cx.int(
            &t.keep_alive_tolerance_long_percent,
            "timers.keep_alive_tolerance_long_percent",
            0..=1000,
            dt.long_percent,
        )?,
        short_percent: cx.int(
            &t.keep_alive_tolerance_short_percent,
            "timers.keep_alive_tolerance_short_percent",
            0..=1000,
            dt.short_percent,
        )?,
        short_cap: cx.dur(
            &t.keep_alive_tolerance_short_cap,
            "timers.keep_alive_tolerance_short_cap",
            dt.short_cap,
            |_| Ok(()),
        )?,
    };
    core.max_keep_alive = match &t.max_keep_alive {
        None => core.max_keep_alive,
        // "0s" turns the clamp off.
        v @ Some(_) => Some(cx.dur(v, "timers.max_keep_alive", Duration::ZERO, |d| {
            if d.is_zero() {
                Ok(())
            } else {
                whole_seconds_u16(d)
            }
        })?)
        .filter(|d| !d.is_zero()),
    };
    Ok(())
}

/// `[sleep]`.
fn sleep(cx: &Ctx<'_>, file: &FileConfig, open: bool) -> Result<SleepConfig, ConfigError> {
    let s = &file.sleep;
    let d = SleepConfig::default();
    Ok(SleepConfig {
        max_buffered: cx.int(
            &s.max_buffered,
            "sleep.max_buffered",
            1..=65535,
            d.max_buffered,
        )?,
        overflow: match s.overflow {
            None => d.overflow,
            Some(FileOverflow::DropOldestQos0ThenReject) => {
                OverflowPolicy::DropOldestQos0ThenReject
            }
            Some(FileOverflow::DropOldest) => OverflowPolicy::DropOldest,
        },
        allow_wake_from_new_address: s.allow_wake_from_new_address.unwrap_or(open),
    })
}

/// `[clients]`: the admission policy, and the registry file (loaded when it exists).
fn clients(
    cx: &Ctx<'_>,
    file: &FileConfig,
    core: &mut GatewayConfig,
    flag: Option<&Path>,
) -> Result<RegistryStatus, ConfigError> {
    core.clients.admission = match file.clients.policy {
        None | Some(FileAdmission::Open) => Admission::Open,
        Some(FileAdmission::RegisteredOnly) => Admission::RegisteredOnly,
    };
    let path = match &file.clients.registry {
        _ if flag.is_some() => flag.map(Path::to_path_buf).unwrap_or_default(),
        Some(v) if v.get_ref().is_empty() => {
            return Err(cx.at(v, "clients.registry", "the path is empty"));
        }
        Some(v) => cx.base_dir.join(v.get_ref()),
        None => cx.base_dir.join("clients.toml"),
    };
    let registry = super::registry::load_registry(&path, core.client_id_max_len)?;
    registry.apply_to(core);
    Ok(registry.status(&path))
}

/// `--advertise`, `--advertise-interface`, `--advertise-interval`.
fn apply_discovery_flags(
    ov: &Overrides,
    core: &mut GatewayConfig,
    io: &mut IoConfig,
) -> Result<(), ConfigError> {
    let flag = |flag: &str, reason: String| ConfigError::Flag {
        flag: flag.into(),
        reason,
    };
    if let Some(interval) = ov.advertise_interval {
        whole_seconds_u16(interval)
            .map_err(|r| flag("--advertise-interval", format!("{interval:?} {r}")))?;
    }
    if ov.advertise.is_some() || ov.advertise_interval.is_some() {
        let d = core.discovery.get_or_insert_with(DiscoveryConfig::default);
        if let Some(interval) = ov.advertise_interval {
            d.advertise_interval = interval;
        }
    }
    if let Some(group) = ov.advertise {
        if !group.ip().is_multicast() {
            return Err(flag(
                "--advertise",
                format!("{} is not a multicast address", group.ip()),
            ));
        }
        let mut used = false;
        for l in io
            .listeners
            .iter_mut()
            .filter(|l| l.bind.is_ipv4() == group.is_ipv4())
        {
            if l.bind.port() == group.port() {
                return Err(flag(
                    "--advertise",
                    format!(
                        "port {} is also the unicast port of listener {}; use another port",
                        group.port(),
                        l.bind
                    ),
                ));
            }
            let previous = l.multicast.take();
            l.multicast = Some(MulticastConfig {
                group,
                interface_v4: previous.as_ref().and_then(|m| m.interface_v4),
                interface_v6: previous.as_ref().map_or(0, |m| m.interface_v6),
                ttl: previous.map_or(1, |m| m.ttl),
            });
            used = true;
        }
        if !used {
            return Err(flag(
                "--advertise",
                format!("no listener has the address family of {group}"),
            ));
        }
    }
    if let Some(iface) = ov.advertise_interface {
        let mut used = false;
        for m in io.listeners.iter_mut().filter_map(|l| l.multicast.as_mut()) {
            match (iface, m.group.is_ipv4()) {
                (MulticastInterface::V4(a), true) => m.interface_v4 = Some(a),
                (MulticastInterface::Index(i), false) => m.interface_v6 = i,
                _ => continue,
            }
            used = true;
        }
        if !used {
            return Err(flag(
                "--advertise-interface",
                "no multicast group of that address family is configured (see --advertise)".into(),
            ));
        }
    }
    Ok(())
}

/// `[discovery]`: checked even when disabled, so a later `enabled = true` does not surprise.
fn discovery(cx: &Ctx<'_>, file: &FileConfig) -> Result<Option<DiscoveryConfig>, ConfigError> {
    let s = &file.discovery;
    let d = DiscoveryConfig::default();
    let config = DiscoveryConfig {
        advertise_interval: cx.dur(
            &s.advertise_interval,
            "discovery.advertise_interval",
            d.advertise_interval,
            whole_seconds_u16,
        )?,
        max_gwinfo_ttl: cx.int(
            &s.max_gwinfo_ttl,
            "discovery.max_gwinfo_ttl",
            1..=255,
            d.max_gwinfo_ttl,
        )?,
        max_gwinfo_delay: cx.dur(
            &s.max_gwinfo_delay,
            "discovery.max_gwinfo_delay",
            d.max_gwinfo_delay,
            |d| {
                if d > Duration::from_secs(60) {
                    Err("is too long; expected at most 60s (spec T_GWINFO: 5s)".to_owned())
                } else {
                    Ok(())
                }
            },
        )?,
    };
    Ok(s.enabled.unwrap_or(false).then_some(config))
}
