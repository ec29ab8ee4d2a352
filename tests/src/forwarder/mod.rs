//! Helpers for forwarder end-to-end tests: a pseudo-terminal pair whose master side plays the
//! radio ([`PtyRadio`]), a simulated radio speaking XBee API, SLIP or raw framing on it
//! ([`SimRadio`]), and the in-process forwarder ([`TestForwarder`]).
//!
//! The forwarder opens the pty's *slave* by path like a real serial device; the test writes
//! and reads the master. The pair is created in raw mode and the helper keeps its own slave fd
//! open, so the line discipline never mangles binary frames and the pty survives the forwarder
//! closing and reopening it. Every wait is bounded.

pub mod script;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use forwarder::io::config::Settings;
use forwarder::io::{ForwarderHandle, Running, Stats};
use sn_codec::framing::xbee::BROADCAST_64;
use sn_codec::framing::{
    ApiMode, RawDecoder, ReceivePacket, SlipDecoder, TransmitStatus, XbeeDecoder, XbeeFrame, raw,
    slip,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;
use tokio_serial::{SerialPort, SerialStream};
use tokio_util::sync::CancellationToken;

/// Largest frame the simulated radio handles.
const MAX: usize = 2048;

/// The master side of a pseudo-terminal pair (`tokio_serial::SerialStream::pair`).
#[derive(Debug)]
pub struct PtyRadio {
    master: Mutex<SerialStream>,
    /// Kept open so the pty lives while the forwarder closes and reopens it.
    _slave: SerialStream,
    /// The slave device path (e.g. `/dev/pts/7`): what the forwarder opens.
    pub path: PathBuf,
}

impl PtyRadio {
    /// A new pty pair (both sides raw, 8-bit clean).
    pub fn open() -> Result<Self> {
        let (master, slave) = SerialStream::pair().context("open a pty pair")?;
        let path = slave.name().context("the pty slave has no name")?.into();
        Ok(PtyRadio {
            master: Mutex::new(master),
            _slave: slave,
            path,
        })
    }

    /// Writes all of `bytes` (bounded by 5 s).
    pub async fn write(&self, bytes: &[u8]) -> Result<()> {
        let mut m = self.master.lock().await;
        tokio::time::timeout(Duration::from_secs(5), m.write_all(bytes))
            .await
            .context("pty write timed out")?
            .context("pty write")
    }

    /// Some octets, or an empty vector after `limit`.
    pub async fn read_within(&self, limit: Duration) -> Result<Vec<u8>> {
        let mut m = self.master.lock().await;
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(limit, m.read(&mut buf)).await {
            Err(_) => Ok(Vec::new()),
            Ok(r) => {
                let n = r.context("pty read")?;
                Ok(buf[..n].to_vec())
            }
        }
    }
}

/// The framings the simulated radio speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimFraming {
    /// XBee API mode 2: Receive Packet in, Transmit Request out, Transmit Status sent back.
    Xbee,
    /// SLIP + CRC, addressed variant.
    SlipAddressed,
    /// SLIP + CRC, one node.
    Slip,
    /// Raw length-delimited, one node.
    Raw,
}

/// A frame the forwarder wrote to the radio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFrame {
    /// Destination node address (`None` = broadcast, or the single node of a plain line).
    pub dest: Option<Vec<u8>>,
    /// XBee broadcast radius (0 otherwise).
    pub radius: u8,
    /// The MQTT-SN message.
    pub message: Vec<u8>,
}

/// A simulated radio (an XBee coordinator, a SLIP dongle or a raw serial line) on a pty.
#[derive(Debug)]
pub struct SimRadio {
    /// The pty; its `path` is what the forwarder opens.
    pub pty: PtyRadio,
    framing: SimFraming,
    xbee: Box<XbeeDecoder<MAX>>,
    slip: Box<SlipDecoder<MAX>>,
    raw: Box<RawDecoder<MAX>>,
    inbox: VecDeque<SimFrame>,
    /// XBee: the delivery status sent back for every unicast (0 = success).
    pub delivery_status: u8,
}

impl SimRadio {
    /// A radio speaking `framing` on a fresh pty.
    pub fn open(framing: SimFraming) -> Result<Self> {
        Ok(SimRadio {
            pty: PtyRadio::open()?,
            framing,
            xbee: Box::new(XbeeDecoder::new(ApiMode::Escaped)),
            slip: Box::new(SlipDecoder::new()),
            raw: Box::new(RawDecoder::new()),
            inbox: VecDeque::new(),
            delivery_status: 0,
        })
    }

    /// The device path for the forwarder.
    pub fn path(&self) -> &Path {
        &self.pty.path
    }

    /// Frames `message` as coming from node `node` (XBee: 8-octet address; addressed SLIP: the
    /// address; otherwise ignored) and writes it.
    pub async fn send(&self, node: &[u8], message: &[u8]) -> Result<()> {
        self.pty.write(&self.frame(node, message)?).await
    }

    /// The wire octets of [`SimRadio::send`].
    pub fn frame(&self, node: &[u8], message: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; 2 * MAX];
        let n = match self.framing {
            SimFraming::Xbee => {
                let src64: [u8; 8] = node.try_into().context("an XBee node has 8 octets")?;
                XbeeFrame::ReceivePacket(ReceivePacket {
                    src64,
                    src16: u16::from_be_bytes([src64[6], src64[7]]),
                    options: 0,
                    data: message,
                })
                .encode(ApiMode::Escaped, &mut out)
            }
            SimFraming::SlipAddressed => slip::encode_addressed(node, message, &mut out),
            SimFraming::Slip => slip::encode(message, &mut out),
            SimFraming::Raw => raw::encode(message, &mut out),
        }
        .map_err(|e| anyhow::anyhow!("framing: {e}"))?;
        out.truncate(n);
        Ok(out)
    }

    /// The next frame for `node` (`None` = any frame), skipping nothing: frames for other
    /// nodes stay queued. Fails after `limit`.
    pub async fn recv_for(&mut self, node: Option<&[u8]>, limit: Duration) -> Result<SimFrame> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(i) = self
                .inbox
                .iter()
                .position(|f| node.is_none() || f.dest.as_deref() == node)
                && let Some(f) = self.inbox.remove(i)
            {
                return Ok(f);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                bail!(
                    "no radio frame for {:?} within {limit:?} (queued: {:?})",
                    node,
                    self.inbox
                );
            }
            let bytes = self.pty.read_within(deadline - now).await?;
            self.absorb(&bytes).await?;
        }
    }

    /// Collects every frame arriving within `window`, plus what is queued.
    pub async fn collect(&mut self, window: Duration) -> Result<Vec<SimFrame>> {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            let bytes = self.pty.read_within(deadline - now).await?;
            self.absorb(&bytes).await?;
        }
        Ok(self.inbox.drain(..).collect())
    }

    async fn absorb(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let (used, frame, status) = match self.framing {
                SimFraming::Xbee => {
                    let (used, item) = self.xbee.feed(bytes);
                    match item.map(|r| r.map(|f| f.parse())) {
                        Some(Ok(Ok(XbeeFrame::TransmitRequest(t)))) => {
                            let dest = (t.dest64 != BROADCAST_64).then(|| t.dest64.to_vec());
                            let status = (t.frame_id != 0).then_some(t.frame_id);
                            let f = SimFrame {
                                dest,
                                radius: t.radius,
                                message: t.data.to_vec(),
                            };
                            (used, Some(f), status)
                        }
                        Some(other) => bail!("unexpected XBee frame from the forwarder: {other:?}"),
                        None => (used, None, None),
                    }
                }
                SimFraming::SlipAddressed | SimFraming::Slip => {
                    let addressed = self.framing == SimFraming::SlipAddressed;
                    let (used, item) = self.slip.feed(bytes);
                    let f = match item {
                        Some(Ok(content)) if addressed => {
                            let a = slip::parse_addressed(content)
                                .map_err(|e| anyhow::anyhow!("addressed SLIP: {e}"))?;
                            Some(SimFrame {
                                dest: (!a.addr.is_empty()).then(|| a.addr.to_vec()),
                                radius: 0,
                                message: a.message.to_vec(),
                            })
                        }
                        Some(Ok(content)) => Some(SimFrame {
                            dest: None,
                            radius: 0,
                            message: content.to_vec(),
                        }),
                        Some(Err(e)) => bail!("bad SLIP frame from the forwarder: {e}"),
                        None => None,
                    };
                    (used, f, None)
                }
                SimFraming::Raw => {
                    let (used, item) = self.raw.feed(bytes);
                    let f = match item {
                        Some(Ok(m)) => Some(SimFrame {
                            dest: None,
                            radius: 0,
                            message: m.to_vec(),
                        }),
                        Some(Err(e)) => bail!("bad raw frame from the forwarder: {e}"),
                        None => None,
                    };
                    (used, f, None)
                }
            };
            bytes = &bytes[used.min(bytes.len())..];
            if let Some(f) = frame {
                self.inbox.push_back(f);
            }
            if let Some(frame_id) = status {
                let mut out = [0u8; 32];
                let n = XbeeFrame::TransmitStatus(TransmitStatus {
                    frame_id,
                    dest16: 0xFFFE,
                    retry_count: 0,
                    delivery_status: self.delivery_status,
                    discovery_status: 0,
                })
                .encode(ApiMode::Escaped, &mut out)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                self.pty.write(&out[..n]).await?;
            }
        }
        Ok(())
    }
}

/// The forwarder (`forwarder::io::start`) running in-process; stopped on drop.
#[derive(Debug)]
pub struct TestForwarder {
    /// The bound gateway-side socket.
    pub gateway_socket: std::net::SocketAddr,
    /// Bound UDP radio ports (`None` for serial ports).
    pub udp_ports: Vec<Option<std::net::SocketAddr>>,
    handle: ForwarderHandle,
    cancel: CancellationToken,
    running: Option<Running>,
}

impl TestForwarder {
    /// Starts the forwarder with `settings`.
    pub async fn start(settings: Settings) -> Result<Self> {
        let cancel = CancellationToken::new();
        let running = forwarder::io::start(settings, cancel.clone())
            .await
            .context("start the forwarder")?;
        Ok(TestForwarder {
            gateway_socket: running.gateway_socket,
            udp_ports: running.udp_ports.clone(),
            handle: running.handle.clone(),
            cancel,
            running: Some(running),
        })
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// Waits (bounded) until `pred` holds for the counters.
    pub async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&Stats) -> bool,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let s = self.stats();
            if pred(&s) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("forwarder: {what} not reached within {limit:?}; stats: {s}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the forwarder and waits for it (bounded).
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(r) = self.running.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), r.wait()).await;
        }
    }
}

impl Drop for TestForwarder {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
