//! One task per serial radio port: opens the device with tokio-serial, runs a
//! `Framed<SerialStream, RadioCodec>`, and when the device fails or disappears (USB unplugged,
//! read error, end of stream, write stuck) reopens it with exponential backoff while the rest of
//! the forwarder keeps running. Frames for the port while it is down are dropped and counted
//! (`port_down`); MQTT-SN's own retransmissions cover them.

use std::io;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_serial::{SerialPortBuilderExt, SerialStream};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::config::{FlowControl, SerialConfig};
use super::driver::Input;
use super::stats::ForwarderHandle;
use crate::core::PortId;
use crate::radio::{RadioCodec, RadioItem, RadioOut};

/// A write that takes longer than this (flow control held off, device wedged) counts as a lost
/// device.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often XBee Transmit Status timeouts are checked.
const STATUS_TICK: Duration = Duration::from_secs(1);

/// Exponential backoff between reopen attempts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: max.max(initial),
            next: initial,
        }
    }

    /// The delay to wait now; the following one doubles up to the maximum.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        d
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Opens the device (must run inside a tokio runtime).
pub(crate) fn open(cfg: &SerialConfig) -> io::Result<SerialStream> {
    let path = cfg.path.to_string_lossy();
    let flow = match cfg.flow {
        FlowControl::None => tokio_serial::FlowControl::None,
        FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
        FlowControl::Software => tokio_serial::FlowControl::Software,
    };
    tokio_serial::new(path, cfg.baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(flow)
        .open_native_async()
        .map_err(io::Error::from)
}

/// Everything one port task needs.
pub(crate) struct SerialPortTask {
    pub(crate) port: PortId,
    pub(crate) cfg: SerialConfig,
    pub(crate) backoff: Backoff,
    pub(crate) outgoing: mpsc::Receiver<RadioOut>,
    pub(crate) inputs: mpsc::Sender<Input>,
    pub(crate) handle: ForwarderHandle,
    pub(crate) cancel: CancellationToken,
}

impl SerialPortTask {
    /// Runs until `cancel` fires.
    pub(crate) async fn run(mut self) {
        let index = usize::from(self.port.0);
        let path = self.cfg.path.display().to_string();
        let mut failures = 0u64;
        loop {
            match open(&self.cfg) {
                Ok(stream) => {
                    failures = 0;
                    self.backoff.reset();
                    info!(port = index, %path, "serial port open");
                    self.handle.update_port(index, |p| {
                        p.up = true;
                        p.opened += 1;
                    });
                    let reason = match self.serve(stream).await {
                        Some(r) => r,
                        None => return,
                    };
                    self.handle.update_port(index, |p| p.up = false);
                    warn!(port = index, %path, %reason, "serial port lost; reopening");
                }
                Err(e) => {
                    failures += 1;
                    // The first failure of a run is worth a warning; the retries are not.
                    if failures == 1 {
                        warn!(port = index, %path, error = %e, "cannot open serial port; retrying with backoff");
                    } else {
                        debug!(port = index, %path, error = %e, failures, "serial port still unavailable");
                    }
                }
            }
            let delay = self.backoff.next_delay();
            if !self.wait(delay).await {
                return;
            }
        }
    }

    /// Waits `delay`, dropping (and counting) frames for the port meanwhile; `false` on
    /// shutdown.
    async fn wait(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return false,
                () = &mut sleep => return true,
                out = self.outgoing.recv() => match out {
                    Some(_) => self.handle.update(|s| s.drop("port_down")),
                    None => return false,
                },
            }
        }
    }

    /// Serves an open device until it fails (`Some(reason)`) or shutdown (`None`).
    async fn serve(&mut self, stream: SerialStream) -> Option<String> {
        let index = usize::from(self.port.0);
        let mut framed = Framed::new(stream, RadioCodec::new(self.cfg.framing));
        let mut tick = tokio::time::interval(STATUS_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return None,
                item = framed.next() => match item {
                    Some(Ok(item)) => {
                        if self.inputs.send(Input::Radio { port: self.port, item }).await.is_err() {
                            return None;
                        }
                    }
                    Some(Err(e)) => return Some(format!("read error: {e}")),
                    None => return Some("end of stream".to_owned()),
                },
                out = self.outgoing.recv() => {
                    let out = out?;
                    match tokio::time::timeout(WRITE_TIMEOUT, framed.send(out)).await {
                        Ok(Ok(())) => self.handle.update_port(index, |p| p.frames_out += 1),
                        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidInput => {
                            debug!(port = index, error = %e, "frame cannot be encoded; dropped");
                            self.handle.update(|s| s.drop("encode"));
                        }
                        Ok(Err(e)) => return Some(format!("write error: {e}")),
                        Err(_) => return Some("write timed out".to_owned()),
                    }
                }
                _ = tick.tick() => {
                    let now = std::time::Instant::now();
                    for outcome in framed.codec_mut().expire(now) {
                        let item = RadioItem::TxStatus(outcome);
                        if self.inputs.send(Input::Radio { port: self.port, item }).await.is_err() {
                            return None;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let d: Vec<_> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, vec![100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
}
