//! `Display` for [`Settings`]: the effective configuration in a few readable lines, with
//! durations in the file's notation and passwords redacted.

use std::fmt;
use std::net::IpAddr;

use sn_config::duration::format as dur;

use super::Settings;
use crate::core::config::{Credentials, OverflowPolicy};
use crate::io::config::Scheme;

/// `on` / `off`.
fn on(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// `any` or the comma-separated list.
fn allow(list: &Option<Vec<IpAddr>>) -> String {
    match list {
        None => "any".to_owned(),
        Some(l) if l.is_empty() => "nobody".to_owned(),
        Some(l) => l
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `user "name" (password set)` or `anonymous`.
fn creds(c: Option<&Credentials>) -> String {
    match c {
        None => "anonymous".to_owned(),
        Some(c) => format!(
            "user {:?}{}",
            c.username,
            if c.password.is_some() {
                " (password set)"
            } else {
                ""
            }
        ),
    }
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.core;
        let io = &self.io;
        writeln!(
            f,
            "gateway:    id {}, max clients {}, topics/client {}, ClientId <= {} octets, \
             max packet {} B",
            c.gateway_id,
            c.max_clients,
            c.max_topics_per_client,
            c.client_id_max_len,
            c.max_packet_size
        )?;
        writeln!(
            f,
            "            inflight from client {}, downlink queue {}, uplink buffer {}, \
             address change {}",
            c.max_inflight_from_client,
            c.downlink_queue,
            c.uplink_buffer,
            on(c.allow_address_change)
        )?;
        for (i, l) in io.listeners.iter().enumerate() {
            write!(f, "listener {i}: udp {}", l.bind)?;
            if let Some(m) = &l.multicast {
                write!(f, ", multicast {} ttl {}", m.group, m.ttl)?;
                match (m.interface_v4, m.group.is_ipv6()) {
                    (Some(ifa), _) => write!(f, " on {ifa}")?,
                    (None, true) => write!(f, " on interface #{}", m.interface_v6)?,
                    (None, false) => {}
                }
            }
            writeln!(f)?;
        }
        let u = &io.upstream;
        let s = &c.upstream;
        let scheme = match u.scheme {
            Scheme::Mqtt => "mqtt",
            Scheme::Mqtts => "mqtts",
            Scheme::Embedded => "embedded",
        };
        let host = if u.host.contains(':') {
            format!("[{}]", u.host)
        } else {
            u.host.clone()
        };
        writeln!(
            f,
            "upstream:   {scheme}://{host}:{}, keep-alive {}, connect timeout {}, backoff {}..{}, \
             inflight {}, max packet {} B",
            u.port,
            dur(s.keep_alive),
            dur(u.connect_timeout),
            dur(u.backoff_initial),
            dur(u.backoff_max),
            u.inflight,
            u.max_packet_size
        )?;
        writeln!(
            f,
            "            {} mode, ClientId prefix {:?}, topic prefix {:?}, gateway ClientId {:?}, \
             {}, per-client credentials {}",
            s.mode.name(),
            s.client_id_prefix,
            s.topic_prefix,
            s.gateway_client_id,
            creds(s.credentials.as_ref()),
            s.per_client_credentials.len()
        )?;
        if u.scheme == Scheme::Mqtts || u.tls != Default::default() {
            let p = |o: &Option<std::path::PathBuf>| {
                o.as_ref()
                    .map_or_else(|| "-".to_owned(), |p| p.display().to_string())
            };
            writeln!(
                f,
                "tls:        ca {}, client cert {}, client key {}, server name {}",
                p(&u.tls.ca_file),
                p(&u.tls.client_cert),
                p(&u.tls.client_key),
                u.tls.server_name.as_deref().unwrap_or("(from the URL)")
            )?;
        }
        let t = &c.tolerance;
        writeln!(
            f,
            "timers:     t_retry {}, n_retry {}, tolerance +{}%/+{}% (cap {}), max keep-alive {}",
            dur(c.t_retry),
            c.n_retry,
            t.long_percent,
            t.short_percent,
            dur(t.short_cap),
            c.max_keep_alive.map_or_else(|| "none".to_owned(), dur)
        )?;
        writeln!(
            f,
            "sleep:      buffer {}, overflow {}, wake from new address {}",
            c.sleep.max_buffered,
            match c.sleep.overflow {
                OverflowPolicy::DropOldestQos0ThenReject => "drop_oldest_qos0_then_reject",
                OverflowPolicy::DropOldest => "drop_oldest",
            },
            on(c.sleep.allow_wake_from_new_address)
        )?;
        match &c.discovery {
            None => writeln!(f, "discovery:  off")?,
            Some(d) => writeln!(
                f,
                "discovery:  advertise every {}, max GWINFO ttl {}, max GWINFO delay {}",
                dur(d.advertise_interval),
                d.max_gwinfo_ttl,
                dur(d.max_gwinfo_delay)
            )?,
        }
        writeln!(
            f,
            "qos -1:     {}, long-topic form {}, retain {}, allow {}",
            on(c.qos_minus1.enabled),
            on(c.qos_minus1.long_topic_form),
            on(c.qos_minus1.allow_retain),
            allow(&c.qos_minus1.allow)
        )?;
        let l = &c.limits;
        writeln!(
            f,
            "limits:     new unregistered sessions per address {}/s (burst {}), per forwarder \
             {}/s (burst {}), silent unregistered client dropped after {}",
            l.new_sessions_per_address.per_second,
            l.new_sessions_per_address.burst,
            l.new_sessions_per_forwarder.per_second,
            l.new_sessions_per_forwarder.burst,
            l.unregistered_idle_timeout
                .map_or_else(|| "never".to_owned(), dur)
        )?;
        let policy = match c.clients.admission {
            crate::core::config::Admission::Open => "open (any ClientId)",
            crate::core::config::Admission::RegisteredOnly => "registered-only",
        };
        let r = &self.registry;
        let pinned = c
            .clients
            .registry
            .values()
            .filter(|e| e.pin.is_some())
            .count();
        writeln!(
            f,
            "clients:    policy {policy}, registry {} ({})",
            r.path.display(),
            if r.exists {
                format!("{} paired, {pinned} pinned", r.clients)
            } else {
                "not there yet: no client paired".to_owned()
            }
        )?;
        writeln!(f, "forwarders: allow {}", allow(&c.forwarders.allow))?;
        match io.http {
            None => writeln!(f, "http:       off")?,
            Some(a) => writeln!(
                f,
                "http:       {a} (metrics, /healthz, status page; admin API to loopback only)"
            )?,
        }
        let st = &io.storage;
        let batches = format!(
            "commits every {} or {} records",
            dur(st.batch_window),
            st.batch_max
        );
        match &st.location {
            crate::io::store::StorageLocation::Off => writeln!(f, "storage:    off (in memory)")?,
            crate::io::store::StorageLocation::Path(p) => {
                writeln!(f, "storage:    {} ({batches})", p.display())?
            }
            crate::io::store::StorageLocation::Default => writeln!(
                f,
                "storage:    default: $STATE_DIRECTORY/state.db, else state.db beside the \
                 configuration file ({batches})"
            )?,
        }
        let cu = &c.custody;
        match cu.mode {
            crate::core::config::CustodyMode::Broker => writeln!(
                f,
                "custody:    broker (QoS 1/2 acknowledged after the broker's acknowledgement)"
            )?,
            crate::core::config::CustodyMode::Gateway => writeln!(
                f,
                "custody:    gateway (QoS 1/2 acknowledged once stored; at most {} messages, \
                 {}{})",
                cu.max_messages,
                cu.max_age
                    .map_or_else(|| "no age limit".to_owned(), |a| format!("kept {}", dur(a))),
                if cu.queue_qos0 {
                    ", QoS 0 held while the broker is away"
                } else {
                    ""
                }
            )?,
        }
        let p = &c.predefined;
        write!(f, "predefined: {} global", p.global.len())?;
        if !p.per_client.is_empty() {
            let n: usize = p.per_client.values().map(|m| m.len()).sum();
            write!(f, ", {n} for {} client(s)", p.per_client.len())?;
        }
        writeln!(f)?;
        for (id, topic) in &p.global {
            writeln!(f, "            {id} = {topic:?}")?;
        }
        for (client, map) in &p.per_client {
            for (id, topic) in map {
                writeln!(f, "            {id} = {topic:?} (only {client:?})")?;
            }
        }
        Ok(())
    }
}
