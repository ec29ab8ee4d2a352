//! The serial path: motes behind a forwarder, on the serial line (a pseudo-terminal on the host)
//! where the forwarder expects a radio. One hub task owns the line; every mote exchanges
//! messages with it over channels.
//!
//! | Framing | Motes on the line | Node address (the forwarder's WNID) | Broadcast from the forwarder |
//! |---|---|---|---|
//! | `slip` | 1 | configured at the forwarder | every frame goes to the one mote |
//! | `slip-addressed` | many | 2 octets: the mote number, big-endian | empty address → every mote |
//! | `raw` | 1 | configured at the forwarder | every frame goes to the one mote |
//! | `xbee-api1`, `xbee-api2` | many | 64-bit `0013A200` `4000xxxx` (xxxx = mote number) | Transmit Request to `000000000000FFFF` → every mote |
//!
//! With XBee framing the hub plays the coordinator radio: Transmit Requests (0x10) from the
//! forwarder are delivered to the addressed mote and answered with a Transmit Status (0x8B)
//! when they carry a frame id; the motes' messages reach the forwarder as Receive Packets (0x90,
//! with the broadcast option for SEARCHGW); local AT commands (0x08) are answered (SH/SL give
//! the coordinator's own address, AP the API mode, settings are acknowledged).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use clap::ValueEnum;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::sn_codec::framing::{
    self, ApiMode, AtResponse, RawDecoder, ReceivePacket, SlipDecoder, TransmitStatus, XbeeDecoder,
    XbeeFrame,
};

/// The address every message over the serial line appears to come from (the client needs
/// one; there is only one peer, the forwarder).
pub const SERIAL_PEER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

/// Longest message carried over the line.
const MAX_MESSAGE: usize = 1024;

/// The forwarder's serial framings (`sn_codec::framing`; `docs/architecture.md`, "Serial
/// framings").
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Framing {
    /// SLIP + CRC-16, one mote per line.
    Slip,
    /// SLIP + CRC-16 with a node address in each frame: many motes per line.
    SlipAddressed,
    /// The message's own Length field delimits it; one mote per line.
    Raw,
    /// XBee API mode 1 (no escaping): many motes per line.
    XbeeApi1,
    /// XBee API mode 2 (escaped): many motes per line.
    XbeeApi2,
}

impl Framing {
    /// Whether several motes can share the line.
    pub fn is_shared(self) -> bool {
        matches!(
            self,
            Framing::SlipAddressed | Framing::XbeeApi1 | Framing::XbeeApi2
        )
    }

    fn api_mode(self) -> ApiMode {
        if self == Framing::XbeeApi1 {
            ApiMode::Unescaped
        } else {
            ApiMode::Escaped
        }
    }
}

/// The node address of mote `index` (0-based) for `framing` (empty for one-mote framings).
pub fn node_address(framing: Framing, index: usize) -> Vec<u8> {
    let n = u16::try_from(index.saturating_add(1))
        .unwrap_or(u16::MAX)
        .to_be_bytes();
    match framing {
        Framing::Slip | Framing::Raw => Vec::new(),
        Framing::SlipAddressed => n.to_vec(),
        Framing::XbeeApi1 | Framing::XbeeApi2 => {
            vec![0x00, 0x13, 0xA2, 0x00, 0x40, 0x00, n[0], n[1]]
        }
    }
}

/// The mote with node address `addr`, if any.
fn mote_of(framing: Framing, addr: &[u8], motes: usize) -> Option<usize> {
    let n = match (framing, addr) {
        (Framing::SlipAddressed, [hi, lo]) => u16::from_be_bytes([*hi, *lo]),
        (Framing::XbeeApi1 | Framing::XbeeApi2, [0x00, 0x13, 0xA2, 0x00, 0x40, 0x00, hi, lo]) => {
            u16::from_be_bytes([*hi, *lo])
        }
        _ => return None,
    };
    let index = usize::from(n).checked_sub(1)?;
    (index < motes).then_some(index)
}

/// A message from a mote to the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outbound {
    pub(crate) mote: usize,
    pub(crate) broadcast: bool,
    pub(crate) message: Vec<u8>,
}

/// The coordinator's own 64-bit address (answers to SH / SL).
const COORDINATOR: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x40, 0x00, 0x00, 0x00];

/// The per-framing decoder.
enum Decoder {
    Slip(Box<SlipDecoder<{ MAX_MESSAGE + 2 + 1 + 8 }>>),
    Raw(Box<RawDecoder<MAX_MESSAGE>>),
    Xbee(Box<XbeeDecoder<{ MAX_MESSAGE + 14 }>>),
}

/// What the line delivered, owned.
enum Item {
    /// A message for one mote, or for all (`None`).
    Message(Option<usize>, Vec<u8>),
    /// A frame the hub answers itself (XBee): the answer.
    Reply(Vec<u8>),
}

/// The hub: owns the line until cancelled or the line closes.
pub(crate) struct Hub {
    framing: Framing,
    inbound: Vec<mpsc::Sender<Vec<u8>>>,
    errors: u64,
}

impl Hub {
    pub(crate) fn new(framing: Framing, inbound: Vec<mpsc::Sender<Vec<u8>>>) -> Self {
        Hub {
            framing,
            inbound,
            errors: 0,
        }
    }

    /// Runs the hub over `port`.
    pub(crate) async fn run<S: AsyncRead + AsyncWrite>(
        mut self,
        port: S,
        mut outbound: mpsc::Receiver<Outbound>,
        cancel: CancellationToken,
    ) {
        let (mut rd, mut wr) = tokio::io::split(port);
        let mut decoder = match self.framing {
            Framing::Slip | Framing::SlipAddressed => Decoder::Slip(Box::new(SlipDecoder::new())),
            Framing::Raw => Decoder::Raw(Box::new(RawDecoder::new())),
            Framing::XbeeApi1 | Framing::XbeeApi2 => {
                Decoder::Xbee(Box::new(XbeeDecoder::new(self.framing.api_mode())))
            }
        };
        let mut buf = vec![0u8; 4096];
        let mut frame = vec![0u8; framing::slip::max_encoded_len(MAX_MESSAGE + 16)];
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                out = outbound.recv() => {
                    let Some(out) = out else { return };
                    match self.encode(&out, &mut frame) {
                        Some(n) => {
                            if let Err(e) = wr.write_all(frame.get(..n).unwrap_or_default()).await {
                                tracing::warn!("serial write failed: {e}");
                                return;
                            }
                        }
                        None => self.errors += 1,
                    }
                }
                r = rd.read(&mut buf) => {
                    let n = match r {
                        Ok(0) => return tracing::warn!("serial line closed"),
                        Ok(n) => n,
                        Err(e) => return tracing::warn!("serial read failed: {e}"),
                    };
                    let mut input = buf.get(..n).unwrap_or_default();
                    while !input.is_empty() {
                        let (used, item) = self.decode(&mut decoder, input);
                        input = input.get(used..).unwrap_or_default();
                        match item {
                            Some(Item::Message(to, msg)) => self.deliver(to, msg),
                            Some(Item::Reply(bytes)) => {
                                if let Err(e) = wr.write_all(&bytes).await {
                                    return tracing::warn!("serial write failed: {e}");
                                }
                            }
                            None => {}
                        }
                    }
                }
            }
        }
    }

    fn deliver(&mut self, to: Option<usize>, msg: Vec<u8>) {
        match to {
            // A full queue is radio loss: the protocol's retries take care of it.
            Some(i) => {
                if let Some(tx) = self.inbound.get(i) {
                    let _ = tx.try_send(msg);
                }
            }
            None => {
                for tx in &self.inbound {
                    let _ = tx.try_send(msg.clone());
                }
            }
        }
    }

    /// Frames a mote's message for the line.
    fn encode(&self, out: &Outbound, frame: &mut [u8]) -> Option<usize> {
        let addr = node_address(self.framing, out.mote);
        let r = match self.framing {
            Framing::Slip => framing::slip::encode(&out.message, frame),
            Framing::SlipAddressed => framing::slip::encode_addressed(&addr, &out.message, frame),
            Framing::Raw => framing::raw::encode(&out.message, frame),
            Framing::XbeeApi1 | Framing::XbeeApi2 => {
                let mut src64 = [0u8; 8];
                src64.copy_from_slice(addr.get(..8)?);
                let n = u16::try_from(out.mote.saturating_add(1)).unwrap_or(u16::MAX);
                let options = if out.broadcast {
                    framing::xbee::RX_OPTION_BROADCAST
                } else {
                    0x01
                };
                let rx = ReceivePacket {
                    src64,
                    src16: n,
                    options,
                    data: &out.message,
                };
                XbeeFrame::ReceivePacket(rx).encode(self.framing.api_mode(), frame)
            }
        };
        r.ok()
    }

    /// Feeds `input` to the decoder; returns what it consumed and the item it produced.
    fn decode(&mut self, decoder: &mut Decoder, input: &[u8]) -> (usize, Option<Item>) {
        let motes = self.inbound.len();
        let framing = self.framing;
        match decoder {
            Decoder::Slip(d) => {
                let (used, item) = d.feed(input);
                let item = match item {
                    Some(Ok(content)) if framing == Framing::Slip => {
                        Some(Item::Message(Some(0), content.to_vec()))
                    }
                    Some(Ok(content)) => match framing::slip::parse_addressed(content) {
                        Ok(f) if f.addr.is_empty() => Some(Item::Message(None, f.message.to_vec())),
                        Ok(f) => mote_of(framing, f.addr, motes)
                            .map(|i| Item::Message(Some(i), f.message.to_vec())),
                        Err(_) => None,
                    },
                    Some(Err(_)) => {
                        self.errors += 1;
                        None
                    }
                    None => None,
                };
                (used, item)
            }
            Decoder::Raw(d) => {
                let (used, item) = d.feed(input);
                let item = match item {
                    Some(Ok(m)) => Some(Item::Message(Some(0), m.to_vec())),
                    Some(Err(_)) => {
                        self.errors += 1;
                        None
                    }
                    None => None,
                };
                (used, item)
            }
            Decoder::Xbee(d) => {
                let (used, item) = d.feed(input);
                let item = match item.map(|r| r.and_then(|f| f.parse())) {
                    Some(Ok(f)) => self.xbee(f),
                    Some(Err(_)) => {
                        self.errors += 1;
                        None
                    }
                    None => None,
                };
                (used, item)
            }
        }
    }

    /// The coordinator's reaction to a frame from the forwarder.
    fn xbee(&self, f: XbeeFrame<'_>) -> Option<Item> {
        let mode = self.framing.api_mode();
        let motes = self.inbound.len();
        match f {
            XbeeFrame::TransmitRequest(t) => {
                let to = if t.dest64 == framing::xbee::BROADCAST_64 {
                    Some(None)
                } else {
                    mote_of(self.framing, &t.dest64, motes).map(Some)
                };
                if t.frame_id != 0 {
                    // The status goes out first; the message itself is delivered right after by
                    // the caller (so a forwarder sees the same order as with a real radio).
                    let status = TransmitStatus {
                        frame_id: t.frame_id,
                        dest16: t.dest16,
                        retry_count: 0,
                        delivery_status: if to.is_some() {
                            framing::xbee::DELIVERY_SUCCESS
                        } else {
                            0x24
                        },
                        discovery_status: 0,
                    };
                    self.deliver_now(to, t.data);
                    return encode_reply(XbeeFrame::TransmitStatus(status), mode);
                }
                to.map(|to| Item::Message(to, t.data.to_vec()))
            }
            XbeeFrame::AtCommand(c) => {
                let (status, data): (u8, Vec<u8>) = match (&c.command, c.parameter.is_empty()) {
                    (b"SH", true) => (0, COORDINATOR.get(..4).unwrap_or_default().to_vec()),
                    (b"SL", true) => (0, COORDINATOR.get(4..).unwrap_or_default().to_vec()),
                    (b"AP", true) => (0, vec![if mode == ApiMode::Escaped { 2 } else { 1 }]),
                    (_, false) => (0, Vec::new()),
                    (_, true) => (2, Vec::new()),
                };
                if c.frame_id == 0 {
                    return None;
                }
                let r = AtResponse {
                    frame_id: c.frame_id,
                    command: c.command,
                    status,
                    data: &data,
                };
                encode_reply(XbeeFrame::AtResponse(r), mode)
            }
            _ => None,
        }
    }

    fn deliver_now(&self, to: Option<Option<usize>>, data: &[u8]) {
        match to {
            Some(Some(i)) => {
                if let Some(tx) = self.inbound.get(i) {
                    let _ = tx.try_send(data.to_vec());
                }
            }
            Some(None) => {
                for tx in &self.inbound {
                    let _ = tx.try_send(data.to_vec());
                }
            }
            None => {}
        }
    }
}

fn encode_reply(f: XbeeFrame<'_>, mode: ApiMode) -> Option<Item> {
    let mut out = vec![0u8; framing::xbee::max_encoded_len(f.frame_data_len())];
    let n = f.encode(mode, &mut out).ok()?;
    out.truncate(n);
    Some(Item::Reply(out))
}

#[cfg(test)]
mod tests;
