//! `--broker`: a subscriber at the MQTT broker that sees what the motes' readings became, for an
//! end-to-end count (every reading, once) and a latency that includes the gateway and the broker.
//! Readings carry the mote's clock (`ts=`), and all motes of a run share one epoch with this
//! subscriber, so latency = arrival time − `ts`.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS as MqttQoS};
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;
use tokio_util::sync::CancellationToken;

use super::report::{BrokerReport, Percentiles};
use crate::app::parse_reading;

/// A running subscriber; [`BrokerWatch::finish`] stops it and reports.
#[derive(Debug)]
pub(crate) struct BrokerWatch {
    task: JoinHandle<BrokerReport>,
    stop: CancellationToken,
}

/// `mqtt://host[:port]` → (host, port).
fn parse_url(url: &str) -> Result<(String, u16)> {
    let Some(rest) = url.strip_prefix("mqtt://") else {
        bail!("--broker takes mqtt://HOST[:PORT] (TLS is not supported here), got {url:?}");
    };
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Ok((
            host.trim_matches(['[', ']']).to_string(),
            port.parse().context("broker port")?,
        )),
        _ if !rest.is_empty() => Ok((rest.to_string(), 1883)),
        _ => bail!("no host in {url:?}"),
    }
}

impl BrokerWatch {
    /// Connects to `url`, subscribes to `filter` at QoS 1 and waits (at most 5 s) for the
    /// SUBACK before returning, so that no reading is missed.
    pub(crate) async fn start(url: &str, filter: &str, epoch: TokioInstant) -> Result<Self> {
        let (host, port) = parse_url(url)?;
        let id = format!("mote-sim-watch-{}", std::process::id());
        let mut opts = MqttOptions::new(id, host, port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        client
            .try_subscribe(filter, MqttQoS::AtLeastOnce)
            .context("queue SUBSCRIBE")?;
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::SubAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(anyhow::anyhow!("broker {url}: {e}")),
                }
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("no SUBACK from {url} within 5 s"))??;
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut seen = HashSet::new();
            let mut report = BrokerReport::default();
            let mut latencies = Vec::new();
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    ev = eventloop.poll() => match ev {
                        Ok(Event::Incoming(Incoming::Publish(p))) => {
                            let Some(r) = parse_reading(&p.payload) else { continue };
                            report.received += 1;
                            if seen.insert((r.client_id.to_string(), r.seq)) {
                                report.distinct += 1;
                                let now = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
                                latencies.push(now.saturating_sub(r.timestamp_ms));
                            } else {
                                report.duplicates += 1;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!("broker subscriber: {e}");
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    },
                }
            }
            let _ = client.try_disconnect();
            report.latency = Percentiles::of(&mut latencies);
            report
        });
        Ok(BrokerWatch { task, stop })
    }

    /// Waits `grace` for late deliveries, stops, and reports.
    pub(crate) async fn finish(self, grace: Duration) -> BrokerReport {
        tokio::time::sleep(grace).await;
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn broker_urls_parse() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:18830").unwrap(),
            ("127.0.0.1".into(), 18830)
        );
        assert_eq!(parse_url("mqtt://broker").unwrap(), ("broker".into(), 1883));
        assert_eq!(
            parse_url("mqtt://[::1]:1884/").unwrap(),
            ("::1".into(), 1884)
        );
        assert!(parse_url("mqtts://x").is_err());
        assert!(parse_url("mqtt://").is_err());
    }
}
