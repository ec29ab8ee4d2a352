//! The broker-side end of a benchmark: an MQTT subscriber on its own thread and runtime that
//! counts deliveries, duplicates and end-to-end latency (from the timestamp in each payload).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};

use super::motes::{now_ns, parse_payload};

/// What the subscriber saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Messages delivered (duplicates included).
    pub delivered: u64,
    /// Messages whose sequence number was seen before.
    pub duplicates: u64,
    /// Latency of each first delivery, microseconds.
    pub latencies_us: Vec<u32>,
    seen: Vec<u64>,
}

impl Seen {
    fn record(&mut self, seq: u64, sent_ns: u64) {
        self.delivered += 1;
        let (word, bit) = (usize::try_from(seq / 64).unwrap_or(usize::MAX), seq % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if let Some(w) = self.seen.get_mut(word) {
            if *w & (1 << bit) != 0 {
                self.duplicates += 1;
                return;
            }
            *w |= 1 << bit;
        }
        let us = now_ns().saturating_sub(sent_ns) / 1000;
        self.latencies_us
            .push(u32::try_from(us).unwrap_or(u32::MAX));
    }

    /// Distinct messages delivered.
    pub fn unique(&self) -> u64 {
        self.delivered - self.duplicates
    }
}

/// A running subscriber.
#[derive(Debug)]
pub struct Collector {
    seen: Arc<Mutex<Seen>>,
}

impl Collector {
    /// Subscribes to `filter` at `url` (host:port of a plain broker) and returns once the SUBACK
    /// arrived.
    pub fn start(host: &str, port: u16, filter: &str) -> Result<Self> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (host, filter, seen2) = (host.to_owned(), filter.to_owned(), seen.clone());
        std::thread::Builder::new()
            .name("collector".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let mut opts = MqttOptions::new(
                        format!("bench-collector-{}", std::process::id()),
                        host,
                        port,
                    );
                    opts.set_max_packet_size(1 << 20, 1 << 20);
                    opts.set_keep_alive(Duration::from_secs(60));
                    let (client, mut eventloop) = AsyncClient::new(opts, 64);
                    let _ = client.subscribe(filter, QoS::AtMostOnce).await;
                    loop {
                        match eventloop.poll().await {
                            Ok(Event::Incoming(Incoming::SubAck(_))) => {
                                let _ = ready_tx.send(());
                            }
                            Ok(Event::Incoming(Incoming::Publish(p))) => {
                                if let Some((seq, sent)) = parse_payload(&p.payload)
                                    && let Ok(mut s) = seen2.lock()
                                {
                                    s.record(seq, sent);
                                }
                            }
                            Ok(_) => {}
                            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                        }
                    }
                });
            })?;
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .context("the collector did not subscribe")?;
        Ok(Collector { seen })
    }

    /// Waits until `n` distinct messages arrived, or nothing new arrived for `quiet`.
    pub async fn wait_for(&self, n: u64, quiet: Duration) {
        let mut last = 0;
        let mut last_change = tokio::time::Instant::now();
        loop {
            let unique = self.snapshot().unique();
            if unique >= n {
                return;
            }
            if unique != last {
                last = unique;
                last_change = tokio::time::Instant::now();
            } else if last_change.elapsed() > quiet {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What was seen so far.
    pub fn snapshot(&self) -> Seen {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Forgets everything seen so far (between the phases of a sweep).
    pub fn reset(&self) {
        if let Ok(mut s) = self.seen.lock() {
            *s = Seen::default();
        }
    }
}

/// The `q`-quantile of `values` (sorted in place), 0 when empty.
pub fn quantile(values: &mut [u32], q: f64) -> u32 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let i = ((values.len() - 1) as f64 * q).round() as usize;
    values.get(i).copied().unwrap_or(0)
}
