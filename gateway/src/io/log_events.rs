//! The core's events as log lines, rate-limited per kind of event: a flood of CONNECTs (or any
//! per-datagram event) costs at most a few lines a second, plus one line saying how many were
//! left out, never megabytes of journal.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::core::event::GatewayEvent;

/// Lines of one kind written per window; more are counted and summarised.
const LINES_PER_WINDOW: u32 = 20;

/// The rate-limiting window.
const WINDOW: Duration = Duration::from_secs(1);

/// Lines written and left out in the current window of one kind of event.
#[derive(Debug)]
struct Window {
    started: Instant,
    written: u32,
    suppressed: u64,
}

/// Writes [`GatewayEvent`]s to the log, at most [`LINES_PER_WINDOW`] per kind per
/// [`WINDOW`].
#[derive(Debug, Default)]
pub(crate) struct LogLimiter {
    windows: BTreeMap<&'static str, Window>,
}

impl LogLimiter {
    /// Logs `e` unless its kind has had its share of lines in this window. Events below the
    /// log filter cost nothing more (no clock read): a flood of drops at debug level is the
    /// common case.
    pub(crate) fn log(&mut self, e: &GatewayEvent) {
        let enabled = match e {
            GatewayEvent::Dropped { .. }
            | GatewayEvent::Retransmitted { .. }
            | GatewayEvent::LengthQuirk { .. } => {
                tracing::enabled!(tracing::Level::DEBUG)
            }
            _ => tracing::enabled!(tracing::Level::INFO),
        };
        if !enabled {
            return;
        }
        let kind = kind(e);
        let now = Instant::now();
        let w = self.windows.entry(kind).or_insert(Window {
            started: now,
            written: 0,
            suppressed: 0,
        });
        if now.duration_since(w.started) >= WINDOW {
            if w.suppressed > 0 {
                warn!(
                    event = kind,
                    suppressed = w.suppressed,
                    seconds = now.duration_since(w.started).as_secs(),
                    "similar log lines left out (rate limit)"
                );
            }
            *w = Window {
                started: now,
                written: 0,
                suppressed: 0,
            };
        }
        if w.written >= LINES_PER_WINDOW {
            w.suppressed += 1;
            return;
        }
        w.written += 1;
        write(e);
    }
}

/// The kind of an event, as named in the summary line.
fn kind(e: &GatewayEvent) -> &'static str {
    match e {
        GatewayEvent::ClientConnected { .. } => "client connected",
        GatewayEvent::ConnectRefused { .. } => "connect refused",
        GatewayEvent::ClientPaired { .. } => "client paired",
        GatewayEvent::ClientAsleep { .. } => "client asleep",
        GatewayEvent::ClientAwake { .. } => "client awake",
        GatewayEvent::ClientDisconnected { .. } => "client disconnected",
        GatewayEvent::ClientLost { .. } => "client lost",
        GatewayEvent::ClientMoved { .. } => "client moved",
        GatewayEvent::Dropped { .. } => "dropped",
        GatewayEvent::Retransmitted { .. } => "retransmitted",
        GatewayEvent::UpstreamHealth { .. } => "upstream health",
        GatewayEvent::CustodyExpired { .. } => "custody expired",
        GatewayEvent::CustodyFallback { .. } => "custody fallback",
        GatewayEvent::LengthQuirk { .. } => "length quirk",
    }
}

/// One log line for `e`.
fn write(e: &GatewayEvent) {
    match e {
        GatewayEvent::ClientConnected { client_id, peer } => {
            info!(client_id, addr = %peer, "client connected")
        }
        GatewayEvent::ConnectRefused {
            client_id,
            peer,
            code,
        } => {
            warn!(client_id, addr = %peer, code, "connect refused")
        }
        GatewayEvent::ClientPaired { client_id, peer } => {
            info!(client_id, addr = %peer, "client paired")
        }
        GatewayEvent::ClientAsleep {
            client_id,
            peer,
            duration,
        } => {
            info!(client_id, addr = %peer, duration, "client asleep")
        }
        GatewayEvent::ClientAwake {
            client_id,
            peer,
            buffered,
        } => {
            info!(client_id, addr = %peer, buffered, "client awake")
        }
        GatewayEvent::ClientDisconnected { client_id, peer } => {
            info!(client_id, addr = %peer, "client disconnected")
        }
        GatewayEvent::ClientLost {
            client_id,
            peer,
            reason,
        } => {
            warn!(client_id, addr = %peer, ?reason, "client lost")
        }
        GatewayEvent::ClientMoved {
            client_id,
            from,
            to,
        } => info!(client_id, %from, %to, "client moved"),
        // Peer misbehaviour is logged at debug level only: it must not flood the journal.
        GatewayEvent::Dropped { peer, reason } => {
            debug!(addr = ?peer.as_ref().map(ToString::to_string), %reason, "dropped")
        }
        GatewayEvent::Retransmitted {
            client_id,
            peer,
            msg_type,
        } => {
            debug!(client_id, addr = %peer, %msg_type, "retransmitted")
        }
        GatewayEvent::UpstreamHealth { up } => info!(up, "upstream health"),
        GatewayEvent::LengthQuirk { peer } => debug!(
            addr = %peer,
            "accepted a message whose long-form Length is two short of the datagram (a known \
             mote library mistake at 256 octets)"
        ),
        GatewayEvent::CustodyFallback { active: true } => warn!(
            "the state database cannot be written: client publishes are acknowledged after the \
             broker until it can"
        ),
        GatewayEvent::CustodyFallback { active: false } => {
            info!("the state database is writable again: gateway custody resumes")
        }
        GatewayEvent::CustodyExpired { client_id, topic } => warn!(
            client_id,
            topic,
            "a message in the gateway's custody expired before the broker could be reached; dropped"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::addr::{ListenerId, PeerAddr};

    #[test]
    fn a_flood_of_one_kind_writes_a_bounded_number_of_lines() {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let mut l = LogLimiter::default();
            let e = GatewayEvent::ConnectRefused {
                client_id: "x".into(),
                peer: PeerAddr::Udp {
                    listener: ListenerId(0),
                    addr: ([10, 0, 0, 1], 1).into(),
                },
                code: 3,
            };
            for _ in 0..10_000 {
                l.log(&e);
            }
            let w = &l.windows["connect refused"];
            assert_eq!(w.written, LINES_PER_WINDOW);
            assert_eq!(w.suppressed, 10_000 - u64::from(LINES_PER_WINDOW));
            // Another kind has its own share.
            l.log(&GatewayEvent::UpstreamHealth { up: true });
            assert_eq!(l.windows["upstream health"].written, 1);
        });
    }

    #[test]
    fn events_below_the_log_filter_are_not_even_counted() {
        // No subscriber: nothing is enabled.
        let mut l = LogLimiter::default();
        l.log(&GatewayEvent::UpstreamHealth { up: true });
        assert!(l.windows.is_empty());
    }
}
