//! What a simulation run measured: counters, latency percentiles, per-mote summaries, and their
//! text and JSON renderings.

use std::fmt::Write as _;
use std::time::Duration;

/// Latency percentiles over a set of samples (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest sample.
    pub max: u64,
}

impl Percentiles {
    /// Percentiles of `samples` (sorted in place); `None` when empty. Nearest-rank method.
    pub fn of(samples: &mut [u64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: usize| {
            let n = samples.len();
            let i = (p * n).div_ceil(100).clamp(1, n) - 1;
            samples.get(i).copied().unwrap_or(0)
        };
        Some(Percentiles {
            count: samples.len(),
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: samples.last().copied().unwrap_or(0),
        })
    }

    fn json(p: Option<&Self>) -> String {
        match p {
            None => "null".into(),
            Some(p) => format!(
                r#"{{"count":{},"p50_ms":{},"p90_ms":{},"p99_ms":{},"max_ms":{}}}"#,
                p.count, p.p50, p.p90, p.p99, p.max
            ),
        }
    }

    fn text(p: Option<&Self>) -> String {
        match p {
            None => "n/a".into(),
            Some(p) => format!(
                "p50 {} ms, p90 {} ms, p99 {} ms, max {} ms ({} samples)",
                p.p50, p.p90, p.p99, p.max, p.count
            ),
        }
    }
}

/// What one mote did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoteSummary {
    /// Its ClientId.
    pub client_id: String,
    /// Readings taken.
    pub sent: u64,
    /// Readings completed: acknowledged (QoS 1/2) or handed to the network (QoS 0/−1).
    pub completed: u64,
    /// Readings that needed at least one retransmission.
    pub retried: u64,
    /// Readings given up (no acknowledgement, rejected, or could not be queued).
    pub failed: u64,
    /// Commands applied.
    pub commands: u64,
    /// LED state at the end.
    pub led: bool,
    /// Reporting interval at the end.
    pub interval: Duration,
    /// Sessions opened (CONNACK accepted, resumes included).
    pub connects: u64,
    /// Wake-ups that ended with PINGRESP.
    pub wake_ups: u64,
    /// Gateways lost.
    pub gateway_losses: u64,
    /// Datagrams retransmitted.
    pub retransmissions: u64,
    /// Datagrams that did not decode.
    pub malformed: u64,
    /// QoS 1/2 latencies from reading to PUBACK/PUBCOMP, in milliseconds.
    pub latencies_ms: Vec<u64>,
    /// The mote ended with DISCONNECT confirmed (or had no session to close).
    pub clean_exit: bool,
}

/// What a subscriber at the broker saw (`--broker`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerReport {
    /// Messages received that parse as readings.
    pub received: u64,
    /// Distinct (ClientId, seq) pairs among them.
    pub distinct: u64,
    /// Messages received again.
    pub duplicates: u64,
    /// Latency from reading to delivery at the subscriber.
    pub latency: Option<Percentiles>,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Motes started.
    pub motes: usize,
    /// QoS of the readings.
    pub qos: i8,
    /// Wall time from start to the end of the graceful stop.
    pub elapsed: Duration,
    /// Readings taken.
    pub sent: u64,
    /// Readings completed (acknowledged at QoS 1/2; handed to the network at QoS 0/−1).
    pub completed: u64,
    /// Readings that needed at least one retransmission.
    pub retried: u64,
    /// Readings given up.
    pub failed: u64,
    /// Datagrams retransmitted (all kinds).
    pub retransmissions: u64,
    /// Motes that connected at least once (QoS −1 motes never do).
    pub connected_motes: usize,
    /// Gateways lost, over all motes.
    pub gateway_losses: u64,
    /// Motes whose session ended cleanly.
    pub clean_exits: usize,
    /// Reading → PUBACK/PUBCOMP latency (QoS 1/2 only).
    pub ack_latency: Option<Percentiles>,
    /// The subscriber's view, with `--broker`.
    pub broker: Option<BrokerReport>,
    /// Per-mote details, in mote order.
    pub per_mote: Vec<MoteSummary>,
}

impl Report {
    /// Builds the totals from the per-mote summaries.
    pub fn from_motes(
        qos: i8,
        elapsed: Duration,
        per_mote: Vec<MoteSummary>,
        broker: Option<BrokerReport>,
    ) -> Self {
        let sum = |f: fn(&MoteSummary) -> u64| per_mote.iter().map(f).sum::<u64>();
        let mut lat: Vec<u64> = per_mote
            .iter()
            .flat_map(|m| m.latencies_ms.iter().copied())
            .collect();
        Report {
            motes: per_mote.len(),
            qos,
            elapsed,
            sent: sum(|m| m.sent),
            completed: sum(|m| m.completed),
            retried: sum(|m| m.retried),
            failed: sum(|m| m.failed),
            retransmissions: sum(|m| m.retransmissions),
            connected_motes: per_mote.iter().filter(|m| m.connects > 0).count(),
            gateway_losses: sum(|m| m.gateway_losses),
            clean_exits: per_mote.iter().filter(|m| m.clean_exit).count(),
            ack_latency: Percentiles::of(&mut lat),
            broker,
            per_mote,
        }
    }

    /// Readings neither completed nor failed when the run ended.
    pub fn pending(&self) -> u64 {
        self.sent
            .saturating_sub(self.completed)
            .saturating_sub(self.failed)
    }

    /// Completed readings per second of wall time.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.completed as f64 / secs
        } else {
            0.0
        }
    }

    /// A human-readable summary.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let acked = if self.qos >= 1 {
            "acknowledged"
        } else {
            "sent on the network"
        };
        let _ = writeln!(
            s,
            "motes            {} ({} connected, {} clean exits)",
            self.motes, self.connected_motes, self.clean_exits
        );
        let _ = writeln!(s, "duration         {:.1} s", self.elapsed.as_secs_f64());
        let _ = writeln!(s, "qos              {}", self.qos);
        let _ = writeln!(s, "readings         {}", self.sent);
        let _ = writeln!(
            s,
            "completed        {} ({acked}), {:.1}/s",
            self.completed,
            self.rate()
        );
        let _ = writeln!(
            s,
            "retried          {} ({} retransmissions)",
            self.retried, self.retransmissions
        );
        let _ = writeln!(s, "failed           {}", self.failed);
        let _ = writeln!(s, "pending at stop  {}", self.pending());
        let _ = writeln!(s, "gateway losses   {}", self.gateway_losses);
        let lat = if self.qos >= 1 {
            Percentiles::text(self.ack_latency.as_ref())
        } else {
            "n/a (no acknowledgement below QoS 1)".into()
        };
        let _ = writeln!(s, "ack latency      {lat}");
        if let Some(b) = &self.broker {
            let _ = writeln!(
                s,
                "broker           {} received, {} distinct, {} duplicates; latency {}",
                b.received,
                b.distinct,
                b.duplicates,
                Percentiles::text(b.latency.as_ref())
            );
        }
        s
    }

    /// The summary as one JSON object (per-mote details left out).
    pub fn json(&self) -> String {
        let broker = match &self.broker {
            None => "null".to_string(),
            Some(b) => format!(
                r#"{{"received":{},"distinct":{},"duplicates":{},"latency":{}}}"#,
                b.received,
                b.distinct,
                b.duplicates,
                Percentiles::json(b.latency.as_ref())
            ),
        };
        format!(
            concat!(
                r#"{{"motes":{},"connected_motes":{},"clean_exits":{},"qos":{},"duration_s":{:.3},"#,
                r#""sent":{},"acknowledged":{},"completed":{},"rate_per_s":{:.1},"retried":{},"#,
                r#""retransmissions":{},"failed":{},"pending":{},"gateway_losses":{},"#,
                r#""ack_latency":{},"broker":{}}}"#
            ),
            self.motes,
            self.connected_motes,
            self.clean_exits,
            self.qos,
            self.elapsed.as_secs_f64(),
            self.sent,
            if self.qos >= 1 {
                self.completed.to_string()
            } else {
                "null".into()
            },
            self.completed,
            self.rate(),
            self.retried,
            self.retransmissions,
            self.failed,
            self.pending(),
            self.gateway_losses,
            Percentiles::json(self.ack_latency.as_ref()),
            broker
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let p = Percentiles::of(&mut v).unwrap();
        assert_eq!(
            (p.count, p.p50, p.p90, p.p99, p.max),
            (100, 50, 90, 99, 100)
        );
        let p = Percentiles::of(&mut [7]).unwrap();
        assert_eq!((p.p50, p.p99, p.max), (7, 7, 7));
        assert_eq!(Percentiles::of(&mut []), None);
    }

    #[test]
    fn the_report_adds_up_and_renders() {
        let m = |id: &str, sent, completed, lat: Vec<u64>| MoteSummary {
            client_id: id.into(),
            sent,
            completed,
            connects: 1,
            latencies_ms: lat,
            ..MoteSummary::default()
        };
        let r = Report::from_motes(
            1,
            Duration::from_secs(2),
            vec![m("a", 3, 2, vec![5, 1]), m("b", 4, 4, vec![3])],
            None,
        );
        assert_eq!(
            (r.sent, r.completed, r.pending(), r.connected_motes),
            (7, 6, 1, 2)
        );
        assert_eq!(r.ack_latency.unwrap().max, 5);
        assert!(
            r.text()
                .contains("completed        6 (acknowledged), 3.0/s")
        );
        let j = r.json();
        assert!(
            j.starts_with(r#"{"motes":2,"#)
                && j.contains(r#""acknowledged":6"#)
                && j.ends_with(r#""broker":null}"#),
            "{j}"
        );
        let r0 = Report::from_motes(0, Duration::ZERO, vec![], None);
        assert!(r0.json().contains(r#""acknowledged":null"#));
        assert!(r0.text().contains("n/a"));
    }
}
