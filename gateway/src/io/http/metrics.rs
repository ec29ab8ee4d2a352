//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4), written by hand from a
//! [`Status`]. Every label comes from a bounded set (message types, QoS levels, directions,
//! drop reasons, session states); there is never a per-client label.

use std::fmt::Write as _;

use sn_codec::{MsgType, QoS};

use crate::core::state_names;
use crate::core::stats::Direction;
use crate::io::Status;

/// `Content-Type` of the exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prefix of every metric name.
const PREFIX: &str = "mqttsn_gateway_";

/// Session states, always all reported (a state with no session is 0, not absent).
const STATES: [&str; 6] = state_names::ALL;

/// QoS levels in label order.
const QOS: [QoS; 4] = [QoS::MinusOne, QoS::Zero, QoS::One, QoS::Two];

/// Directions in label order.
const DIRECTIONS: [Direction; 2] = [Direction::Upstream, Direction::Downstream];

/// The `qos` label value: `-1`, `0`, `1`, `2`.
fn qos_label(q: QoS) -> &'static str {
    match q {
        QoS::MinusOne => "-1",
        QoS::Zero => "0",
        QoS::One => "1",
        QoS::Two => "2",
    }
}

/// Escapes a label value (backslash, double quote, line feed).
pub(crate) fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes metric families one after the other.
struct Writer {
    out: String,
}

impl Writer {
    /// The `# HELP` and `# TYPE` lines of a family.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {PREFIX}{name} {help}");
        let _ = writeln!(self.out, "# TYPE {PREFIX}{name} {kind}");
    }

    /// One sample; `labels` are `(name, value)` pairs.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        let _ = write!(self.out, "{PREFIX}{name}");
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with a single unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A counter family labelled by message type: every type, zeros included.
    fn by_type(
        &mut self,
        name: &str,
        help: &str,
        counts: &std::collections::BTreeMap<MsgType, u64>,
    ) {
        self.family(name, "counter", help);
        for t in MsgType::ALL {
            let n = counts.get(t).copied().unwrap_or(0);
            self.sample(name, &[("type", t.name())], n);
        }
    }
}

/// What `/metrics` says about the process itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessInfo {
    /// Resident memory (`VmRSS`), 0 when it cannot be read.
    pub(crate) resident_bytes: u64,
    /// When the gateway started, in Unix seconds.
    pub(crate) start_time_unix: u64,
}

impl ProcessInfo {
    /// This process now; `since_start` is how long the gateway has run.
    fn read(since_start: std::time::Duration) -> Self {
        let resident_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib.saturating_mul(1024))
            })
            .unwrap_or(0);
        let start_time_unix = std::time::SystemTime::now()
            .checked_sub(since_start)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        ProcessInfo {
            resident_bytes,
            start_time_unix,
        }
    }
}

/// The build's version and features, as `build_info` labels them.
fn build_features() -> &'static str {
    if cfg!(feature = "embedded-broker") {
        "tls-rustls-ring,embedded-broker"
    } else {
        "tls-rustls-ring"
    }
}

/// The whole exposition for `s`, with this process's memory and start time.
pub(crate) fn render(s: &Status) -> String {
    let since_start = std::time::Duration::from_millis(s.now.as_millis());
    render_with(s, ProcessInfo::read(since_start))
}

/// The whole exposition for `s` and `process`.
fn render_with(s: &Status, process: ProcessInfo) -> String {
    let mut w = Writer { out: String::new() };
    w.family(
        "build_info",
        "gauge",
        "Always 1; the labels name the gateway's version and the build's features.",
    );
    w.sample(
        "build_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("features", build_features()),
        ],
        1,
    );
    w.single(
        "start_time_seconds",
        "gauge",
        "When the gateway started, in seconds since the Unix epoch.",
        process.start_time_unix,
    );
    w.single(
        "resident_memory_bytes",
        "gauge",
        "The gateway process's resident memory (VmRSS).",
        process.resident_bytes,
    );
    let (c, g) = (&s.core, &s.gauges);

    w.family("clients", "gauge", "Client sessions by state.");
    for state in STATES {
        let n = g.clients.get(state).copied().unwrap_or(0);
        w.sample("clients", &[("state", state)], n);
    }
    // A state the list above does not know is still reported (bounded: the core's state names).
    for (state, n) in g.clients.iter().filter(|(k, _)| !STATES.contains(k)) {
        w.sample("clients", &[("state", state)], *n);
    }
    w.by_type(
        "packets_received_total",
        "MQTT-SN messages received from clients and forwarders, by message type.",
        &c.packets_in,
    );
    w.by_type(
        "packets_sent_total",
        "MQTT-SN messages sent to clients and forwarders, by message type.",
        &c.packets_out,
    );
    w.family(
        "publishes_total",
        "counter",
        "Application messages by QoS and direction (upstream: client to broker).",
    );
    for q in QOS {
        for d in DIRECTIONS {
            let n = c.publishes.get(&(q, d)).copied().unwrap_or(0);
            w.sample(
                "publishes_total",
                &[("qos", qos_label(q)), ("direction", d.label())],
                n,
            );
        }
    }
    w.family(
        "dropped_total",
        "counter",
        "Messages dropped, by reason (only reasons seen so far).",
    );
    for (reason, n) in &c.dropped {
        w.sample("dropped_total", &[("reason", reason)], *n);
    }
    w.family(
        "retransmissions_total",
        "counter",
        "Retransmissions to clients, by message type (only types seen so far).",
    );
    for (t, n) in &c.retransmissions {
        w.sample("retransmissions_total", &[("type", t.name())], *n);
    }
    w.single(
        "sleep_buffered_messages",
        "gauge",
        "Messages waiting in the buffers of sleeping clients.",
        g.sleep_buffered,
    );
    w.single(
        "downlink_queued_messages",
        "gauge",
        "Messages queued towards awake clients (including the one in flight).",
        g.downlink_queued,
    );
    w.single(
        "upstream_up",
        "gauge",
        "1 when the gateway's own connection to the broker is up, else 0.",
        u64::from(s.upstream_up),
    );
    w.family(
        "upstream_links",
        "gauge",
        "Per-client MQTT sessions at the broker, by state (in aggregating mode they all ride the \
         gateway's own connection).",
    );
    w.sample("upstream_links", &[("state", "up")], g.links_up);
    w.sample("upstream_links", &[("state", "down")], g.links_down);
    w.single(
        "upstream_connects_total",
        "counter",
        "Connections to the broker established (all links, reconnects included).",
        c.upstream_connects,
    );
    w.single(
        "upstream_disconnects_total",
        "counter",
        "Connections to the broker lost (all links).",
        c.upstream_disconnects,
    );
    w.single(
        "datagrams_received_total",
        "counter",
        "UDP datagrams received on all sockets.",
        s.datagrams_in,
    );
    w.single(
        "datagrams_sent_total",
        "counter",
        "UDP datagrams sent.",
        s.datagrams_out,
    );
    w.single(
        "send_errors_total",
        "counter",
        "UDP datagrams that could not be sent.",
        s.send_errors,
    );
    w.single(
        "length_quirks_total",
        "counter",
        "Messages accepted despite a long-form Length two octets short of the datagram (a known \
         mote library mistake at 256 octets).",
        c.length_quirks,
    );
    storage(&mut w, s.storage.as_ref());
    w.single(
        "custody_messages",
        "gauge",
        "Client publishes in the gateway's custody, not yet acknowledged by the broker.",
        g.custody_messages,
    );
    w.single(
        "custody_bytes",
        "gauge",
        "Payload octets of the client publishes in the gateway's custody.",
        g.custody_bytes,
    );
    w.family(
        "upstream_connect_failures_total",
        "counter",
        "Failed connection attempts to the broker (every link), and connections lost, by reason.",
    );
    for (failure, n) in &s.upstream.failures {
        w.sample(
            "upstream_connect_failures_total",
            &[("reason", failure.label())],
            *n,
        );
    }
    w.single(
        "custody_oldest_seconds",
        "gauge",
        "How long the oldest client publish in the gateway's custody has waited.",
        g.custody_oldest.as_secs(),
    );
    w.out
}

/// The state database's families (all 0 without one, `storage_enabled` telling which).
fn storage(w: &mut Writer, st: Option<&crate::io::StorageStatus>) {
    let d = crate::io::StorageStatus::default();
    let st_or = st.unwrap_or(&d);
    w.single(
        "storage_enabled",
        "gauge",
        "1 when sessions are kept in a state database, 0 when everything is in memory.",
        u64::from(st.is_some()),
    );
    w.single(
        "storage_commits_total",
        "counter",
        "Transactions committed to the state database (one fsync each).",
        st_or.commits,
    );
    w.single(
        "storage_records_written_total",
        "counter",
        "Session records written to or deleted from the state database.",
        st_or.records,
    );
    w.single(
        "storage_write_failures_total",
        "counter",
        "Batches the state database could not commit (disk full, read-only); they are retried.",
        st_or.failures,
    );
    w.single(
        "storage_failing",
        "gauge",
        "1 while the state database cannot be written.",
        u64::from(st_or.failing),
    );
    w.single(
        "storage_bytes",
        "gauge",
        "Size of the state database and its write-ahead log.",
        st_or.bytes,
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn status() -> Status {
        let mut s = Status {
            datagrams_in: 12,
            datagrams_out: 9,
            send_errors: 1,
            upstream_up: true,
            ..Status::default()
        };
        s.core.packets_in.insert(MsgType::Connect, 2);
        s.core.packets_in.insert(MsgType::Publish, 7);
        s.core.packets_out.insert(MsgType::Connack, 2);
        s.core.publishes.insert((QoS::One, Direction::Upstream), 5);
        s.core
            .publishes
            .insert((QoS::MinusOne, Direction::Upstream), 2);
        s.core.dropped.insert("malformed", 3);
        s.core.retransmissions.insert(MsgType::Publish, 4);
        s.core.upstream_connects = 3;
        s.core.upstream_disconnects = 1;
        s.gauges.clients.insert("active", 2);
        s.gauges.clients.insert("asleep", 1);
        s.gauges.sleep_buffered = 6;
        s.gauges.downlink_queued = 1;
        s.gauges.links_up = 3;
        s.gauges.custody_messages = 3;
        s.gauges.custody_bytes = 96;
        s.gauges.custody_oldest = std::time::Duration::from_secs(42);
        s.storage = Some(crate::io::StorageStatus {
            commits: 4,
            records: 9,
            failures: 0,
            failing: false,
            bytes: 12288,
        });
        s
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn the_exposition_has_the_expected_samples() {
        let process = ProcessInfo {
            resident_bytes: 9_437_184,
            start_time_unix: 1_796_000_000,
        };
        let text = render_with(&status(), process);
        let l = lines(&text);
        let build = format!(
            "mqttsn_gateway_build_info{{version=\"{}\",features=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            build_features()
        );
        for want in [
            build.as_str(),
            "# TYPE mqttsn_gateway_start_time_seconds gauge",
            "mqttsn_gateway_start_time_seconds 1796000000",
            "mqttsn_gateway_resident_memory_bytes 9437184",
            "# HELP mqttsn_gateway_clients Client sessions by state.",
            "# TYPE mqttsn_gateway_clients gauge",
            "mqttsn_gateway_clients{state=\"connecting\"} 0",
            "mqttsn_gateway_clients{state=\"active\"} 2",
            "mqttsn_gateway_clients{state=\"asleep\"} 1",
            "mqttsn_gateway_clients{state=\"lost\"} 0",
            "# TYPE mqttsn_gateway_packets_received_total counter",
            "mqttsn_gateway_packets_received_total{type=\"CONNECT\"} 2",
            "mqttsn_gateway_packets_received_total{type=\"PUBLISH\"} 7",
            "mqttsn_gateway_packets_received_total{type=\"PINGREQ\"} 0",
            "mqttsn_gateway_packets_sent_total{type=\"CONNACK\"} 2",
            "mqttsn_gateway_publishes_total{qos=\"-1\",direction=\"upstream\"} 2",
            "mqttsn_gateway_publishes_total{qos=\"1\",direction=\"upstream\"} 5",
            "mqttsn_gateway_publishes_total{qos=\"2\",direction=\"downstream\"} 0",
            "# TYPE mqttsn_gateway_dropped_total counter",
            "mqttsn_gateway_dropped_total{reason=\"malformed\"} 3",
            "mqttsn_gateway_retransmissions_total{type=\"PUBLISH\"} 4",
            "# TYPE mqttsn_gateway_sleep_buffered_messages gauge",
            "mqttsn_gateway_sleep_buffered_messages 6",
            "mqttsn_gateway_downlink_queued_messages 1",
            "# TYPE mqttsn_gateway_upstream_up gauge",
            "mqttsn_gateway_upstream_up 1",
            "mqttsn_gateway_upstream_links{state=\"up\"} 3",
            "mqttsn_gateway_upstream_links{state=\"down\"} 0",
            "# TYPE mqttsn_gateway_upstream_connects_total counter",
            "mqttsn_gateway_upstream_connects_total 3",
            "mqttsn_gateway_upstream_disconnects_total 1",
            "mqttsn_gateway_datagrams_received_total 12",
            "mqttsn_gateway_datagrams_sent_total 9",
            "mqttsn_gateway_send_errors_total 1",
            "mqttsn_gateway_storage_enabled 1",
            "mqttsn_gateway_storage_commits_total 4",
            "mqttsn_gateway_storage_records_written_total 9",
            "mqttsn_gateway_storage_write_failures_total 0",
            "mqttsn_gateway_storage_failing 0",
            "mqttsn_gateway_storage_bytes 12288",
            "mqttsn_gateway_custody_messages 3",
            "mqttsn_gateway_custody_bytes 96",
            "mqttsn_gateway_custody_oldest_seconds 42",
        ] {
            assert!(l.contains(&want), "missing line {want:?} in:\n{text}");
        }
    }

    #[test]
    fn every_sample_belongs_to_a_declared_family_and_counters_end_in_total() {
        let text = render(&status());
        let mut declared: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(name.starts_with(PREFIX), "{line}");
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{line}");
                }
                declared.push((name.to_owned(), kind.to_owned()));
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(
                    declared.last().map(|d| d.0.as_str()),
                    Some(name),
                    "sample outside its family: {line}"
                );
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<u64>().is_ok(), "{line}");
            }
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn an_empty_snapshot_reports_zeros_not_nothing() {
        let text = render(&Status::default());
        assert!(text.contains("\nmqttsn_gateway_upstream_up 0\n"), "{text}");
        assert!(text.contains("mqttsn_gateway_clients{state=\"active\"} 0\n"));
        assert!(!text.contains("dropped_total{"), "{text}");
    }

    #[test]
    fn this_process_has_memory_and_started_before_now() {
        let p = ProcessInfo::read(std::time::Duration::from_secs(5));
        assert!(p.resident_bytes > 1024 * 1024, "{p:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!((now - 6..=now - 4).contains(&p.start_time_unix), "{p:?}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
