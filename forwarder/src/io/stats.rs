//! Counters of the running forwarder ([`Stats`]), shared through a [`ForwarderHandle`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Counters of one radio port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortStats {
    /// The port's name (device path or UDP address unless configured).
    pub name: String,
    /// Frames received from nodes (intact, before the core's checks).
    pub frames_in: u64,
    /// Frames written to the radio.
    pub frames_out: u64,
    /// Damaged frames discarded by the framing, by kind (`crc`, `checksum`, `overrun`, …).
    pub frame_errors: BTreeMap<&'static str, u64>,
    /// The device is open (serial) or the socket bound (UDP).
    pub up: bool,
    /// How many times the device was opened (1 + reopens after a loss).
    pub opened: u64,
    /// XBee unicasts the radio could not deliver (failed or missing Transmit Status).
    pub tx_failures: u64,
}

/// Counters of the whole forwarder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Per radio port, in configuration order.
    pub ports: Vec<PortStats>,
    /// Datagrams sent to the gateway (and SEARCHGW to the group).
    pub to_gateway: u64,
    /// Datagrams received on the gateway socket and the discovery group.
    pub from_gateway: u64,
    /// UDP sends that failed (gateway down, no route); the forwarder keeps going.
    pub send_errors: u64,
    /// Everything dropped, by reason: the core's reasons (`unknown_node`,
    /// `malformed_encapsulation`, `no_gateway`, …), framing errors (`crc`, `checksum`,
    /// `overrun`, …), `tx_status_failure`, `port_down` (a frame for a port whose device is
    /// gone), `encode` (a message the port's framing cannot carry).
    pub dropped: BTreeMap<&'static str, u64>,
    /// Nodes in the table.
    pub nodes: usize,
    /// The gateway frames go to.
    pub gateway: Option<SocketAddr>,
}

impl Stats {
    /// The counter of one drop reason.
    pub fn dropped(&self, reason: &str) -> u64 {
        self.dropped.get(reason).copied().unwrap_or(0)
    }

    pub(crate) fn drop(&mut self, reason: &'static str) {
        *self.dropped.entry(reason).or_default() += 1;
    }

    pub(crate) fn port(&mut self, i: usize) -> Option<&mut PortStats> {
        self.ports.get_mut(i)
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "to_gateway={} from_gateway={} send_errors={} nodes={}",
            self.to_gateway, self.from_gateway, self.send_errors, self.nodes
        )?;
        for p in &self.ports {
            write!(
                f,
                " [{} up={} in={} out={} opened={} tx_failures={}]",
                p.name, p.up, p.frames_in, p.frames_out, p.opened, p.tx_failures
            )?;
        }
        for (reason, n) in &self.dropped {
            write!(f, " dropped.{reason}={n}")?;
        }
        Ok(())
    }
}

/// A shared, cloneable view of the running forwarder's counters.
#[derive(Debug, Clone, Default)]
pub struct ForwarderHandle {
    stats: Arc<Mutex<Stats>>,
}

impl ForwarderHandle {
    /// A handle whose ports are named `names`.
    pub(crate) fn new(names: impl IntoIterator<Item = String>) -> Self {
        let stats = Stats {
            ports: names
                .into_iter()
                .map(|name| PortStats {
                    name,
                    ..PortStats::default()
                })
                .collect(),
            ..Stats::default()
        };
        ForwarderHandle {
            stats: Arc::new(Mutex::new(stats)),
        }
    }

    /// A copy of the current counters.
    pub fn stats(&self) -> Stats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Stats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    pub(crate) fn update_port(&self, port: usize, f: impl FnOnce(&mut PortStats)) {
        self.update(|s| {
            if let Some(p) = s.port(port) {
                f(p);
            }
        });
    }
}
