//! The serial hub over an in-process pseudo-terminal pair; the test plays the forwarder (and,
//! for whole runs, a scripted gateway behind it). Every wait is bounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_serial::{SerialPort, SerialStream};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::sn_codec::framing::{AtCommand, RawDecoder, SlipDecoder, TransmitRequest, XbeeDecoder};
use crate::sn_codec::{Packet, QoS, ReturnCode};

const WAIT: Duration = Duration::from_secs(5);

/// One message seen on the forwarder's side of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// From a node: its address, whether broadcast, the message.
    Message(Vec<u8>, bool, Vec<u8>),
    /// An XBee frame the coordinator produced itself (status, AT response).
    Frame(Vec<u8>),
}

/// The forwarder's end of the line.
struct Forwarder {
    framing: Framing,
    port: SerialStream,
    slip: Box<SlipDecoder<2048>>,
    raw: Box<RawDecoder<2048>>,
    xbee: Box<XbeeDecoder<2048>>,
    seen: Vec<Seen>,
}

impl Forwarder {
    fn new(framing: Framing, port: SerialStream) -> Self {
        let mode = if framing == Framing::XbeeApi1 {
            ApiMode::Unescaped
        } else {
            ApiMode::Escaped
        };
        Forwarder {
            framing,
            port,
            slip: Box::new(SlipDecoder::new()),
            raw: Box::new(RawDecoder::new()),
            xbee: Box::new(XbeeDecoder::new(mode)),
            seen: Vec::new(),
        }
    }

    /// Sends `msg` to the node at `addr` (empty: broadcast).
    async fn send(&mut self, addr: &[u8], msg: &[u8]) {
        self.send_frame(addr, msg, 0).await;
    }

    async fn send_frame(&mut self, addr: &[u8], msg: &[u8], frame_id: u8) {
        let mut out = vec![0u8; 4096];
        let n = match self.framing {
            Framing::Slip => framing::slip::encode(msg, &mut out),
            Framing::SlipAddressed => framing::slip::encode_addressed(addr, msg, &mut out),
            Framing::Raw => framing::raw::encode(msg, &mut out),
            Framing::XbeeApi1 | Framing::XbeeApi2 => {
                let t = if addr.is_empty() {
                    TransmitRequest::broadcast(frame_id, 0, msg)
                } else {
                    TransmitRequest::unicast(frame_id, addr.try_into().unwrap(), msg)
                };
                XbeeFrame::TransmitRequest(t).encode(self.framing.api_mode(), &mut out)
            }
        }
        .unwrap();
        self.port.write_all(&out[..n]).await.unwrap();
    }

    /// Reads until at least `n` items were seen in total (bounded).
    async fn read_until(&mut self, n: usize) {
        let mut buf = [0u8; 1024];
        while self.seen.len() < n {
            let got = tokio::time::timeout(WAIT, self.port.read(&mut buf))
                .await
                .expect("data on the line")
                .unwrap();
            let mut input = &buf[..got];
            while !input.is_empty() {
                let used = self.feed(input);
                input = &input[used..];
            }
        }
    }

    fn feed(&mut self, input: &[u8]) -> usize {
        match self.framing {
            Framing::Slip | Framing::SlipAddressed => {
                let (used, item) = self.slip.feed(input);
                if let Some(Ok(content)) = item {
                    let seen = if self.framing == Framing::Slip {
                        Seen::Message(Vec::new(), false, content.to_vec())
                    } else {
                        let f = framing::slip::parse_addressed(content).unwrap();
                        Seen::Message(f.addr.to_vec(), false, f.message.to_vec())
                    };
                    self.seen.push(seen);
                }
                used
            }
            Framing::Raw => {
                let (used, item) = self.raw.feed(input);
                if let Some(Ok(m)) = item {
                    self.seen.push(Seen::Message(Vec::new(), false, m.to_vec()));
                }
                used
            }
            Framing::XbeeApi1 | Framing::XbeeApi2 => {
                let (used, item) = self.xbee.feed(input);
                if let Some(Ok(frame)) = item {
                    match frame.parse().unwrap() {
                        XbeeFrame::ReceivePacket(r) => self.seen.push(Seen::Message(
                            r.src64.to_vec(),
                            r.is_broadcast(),
                            r.data.to_vec(),
                        )),
                        _ => {
                            let mut data = vec![frame.frame_type];
                            data.extend_from_slice(frame.body);
                            self.seen.push(Seen::Frame(data));
                        }
                    }
                }
                used
            }
        }
    }
}

fn encode(p: &Packet<'_>) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = p.encode(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// A hub for `motes` motes over a fresh pty pair; returns the forwarder's end, the motes'
/// outbound sender and their inbound receivers.
fn hub(
    framing: Framing,
    motes: usize,
) -> (
    Forwarder,
    mpsc::Sender<Outbound>,
    Vec<mpsc::Receiver<Vec<u8>>>,
    CancellationToken,
) {
    let (master, slave) = SerialStream::pair().unwrap();
    let (out_tx, out_rx) = mpsc::channel(16);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..motes).map(|_| mpsc::channel(16)).unzip();
    let cancel = CancellationToken::new();
    tokio::spawn(Hub::new(framing, txs).run(slave, out_rx, cancel.clone()));
    (Forwarder::new(framing, master), out_tx, rxs, cancel)
}

async fn recv(rx: &mut mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a message for the mote")
        .unwrap()
}

#[tokio::test]
async fn addressed_framings_route_each_mote_and_broadcasts_reach_all() {
    for framing in [Framing::SlipAddressed, Framing::XbeeApi1, Framing::XbeeApi2] {
        let (mut fwd, out, mut inbound, cancel) = hub(framing, 3);
        let connect = encode(&Packet::Pingreq {
            client_id: Some(b"m2"),
        });
        out.send(Outbound {
            mote: 1,
            broadcast: false,
            message: connect.clone(),
        })
        .await
        .unwrap();
        let search = encode(&Packet::SearchGw { radius: 1 });
        out.send(Outbound {
            mote: 2,
            broadcast: true,
            message: search.clone(),
        })
        .await
        .unwrap();
        fwd.read_until(2).await;
        let xbee = framing != Framing::SlipAddressed;
        assert_eq!(
            fwd.seen,
            [
                Seen::Message(node_address(framing, 1), false, connect),
                Seen::Message(node_address(framing, 2), xbee, search),
            ],
            "{framing:?}"
        );
        let reply = encode(&Packet::Pingresp);
        fwd.send(&node_address(framing, 1), &reply).await;
        assert_eq!(recv(&mut inbound[1]).await, reply);
        let gwinfo = encode(&Packet::GwInfo {
            gw_id: 3,
            gw_addr: &[],
        });
        fwd.send(&[], &gwinfo).await;
        for rx in &mut inbound {
            assert_eq!(
                recv(rx).await,
                gwinfo,
                "{framing:?}: a broadcast reaches every mote"
            );
        }
        // Unknown nodes are not delivered.
        fwd.send(&node_address(framing, 9), &reply).await;
        fwd.send(&node_address(framing, 0), &reply).await;
        assert!(inbound[0].try_recv().is_err());
        cancel.cancel();
    }
}

#[tokio::test]
async fn the_xbee_coordinator_answers_at_commands_and_reports_transmit_status() {
    let (mut fwd, _out, mut inbound, cancel) = hub(Framing::XbeeApi2, 1);
    let mut frame = vec![0u8; 64];
    for (id, cmd) in [(1u8, *b"SH"), (2, *b"SL"), (3, *b"AP"), (4, *b"ZZ")] {
        let at = XbeeFrame::AtCommand(AtCommand {
            frame_id: id,
            command: cmd,
            parameter: &[],
        });
        let n = at.encode(ApiMode::Escaped, &mut frame).unwrap();
        fwd.port.write_all(&frame[..n]).await.unwrap();
    }
    fwd.send_frame(
        &node_address(Framing::XbeeApi2, 0),
        &encode(&Packet::Pingresp),
        7,
    )
    .await;
    fwd.send_frame(
        &node_address(Framing::XbeeApi2, 5),
        &encode(&Packet::Pingresp),
        8,
    )
    .await;
    fwd.read_until(6).await;
    assert_eq!(
        fwd.seen,
        [
            Seen::Frame(vec![0x88, 1, b'S', b'H', 0, 0x00, 0x13, 0xA2, 0x00]),
            Seen::Frame(vec![0x88, 2, b'S', b'L', 0, 0x40, 0x00, 0x00, 0x00]),
            Seen::Frame(vec![0x88, 3, b'A', b'P', 0, 2]),
            Seen::Frame(vec![0x88, 4, b'Z', b'Z', 2]),
            Seen::Frame(vec![0x8B, 7, 0xFF, 0xFE, 0, 0x00, 0]),
            Seen::Frame(vec![0x8B, 8, 0xFF, 0xFE, 0, 0x24, 0]),
        ]
    );
    assert_eq!(recv(&mut inbound[0]).await, encode(&Packet::Pingresp));
    cancel.cancel();
}

/// A whole run over a pty path: the test is the forwarder and a scripted gateway behind it.
async fn run_over_pty(framing: Framing, motes: usize) {
    let (master, mut slave) = SerialStream::pair().unwrap();
    let path = slave.name().unwrap();
    slave.set_exclusive(false).unwrap();
    drop(slave);
    let mut sensor = crate::app::SensorConfig::new("ser", Duration::from_millis(100)).unwrap();
    sensor.max_readings = Some(3);
    sensor.first_reading_within = Duration::from_millis(50);
    sensor.qos = QoS::One;
    let cfg = super::super::SimConfig {
        network: super::super::Network::Serial(super::super::SerialNetwork {
            path,
            baud: 115_200,
            framing,
            discovery: true,
            gateway_id: 1,
        }),
        motes,
        client_prefix: "s-".into(),
        sensor,
        sleep_cycle: None,
        sleepers: 0,
        will: false,
        keep_alive: 30,
        timers: crate::client::Timers {
            t_retry: Duration::from_millis(300),
            t_searchgw: Duration::from_millis(100),
            ..crate::client::Timers::default()
        },
        duration: Some(WAIT),
        ramp: Duration::ZERO,
        seed: 1,
        broker: None,
        chatty: false,
        progress: false,
        linger: Duration::from_secs(2),
    };
    let cancel = CancellationToken::new();
    let run = tokio::spawn(super::super::run(cfg, cancel.clone()));
    let mut fwd = Forwarder::new(framing, master);
    let mut handled = 0;
    let mut disconnected = 0;
    let mut published = std::collections::BTreeSet::new();
    while disconnected < motes {
        fwd.read_until(handled + 1).await;
        let Seen::Message(addr, _, msg) = fwd.seen[handled].clone() else {
            panic!()
        };
        handled += 1;
        let reply = match Packet::decode(&msg).unwrap() {
            Packet::SearchGw { .. } => Some(Packet::GwInfo {
                gw_id: 1,
                gw_addr: &[],
            }),
            Packet::Connect(_) => Some(Packet::Connack {
                return_code: ReturnCode::Accepted,
            }),
            Packet::Register(r) => Some(Packet::Regack {
                topic_id: 1,
                msg_id: r.msg_id,
                return_code: ReturnCode::Accepted,
            }),
            Packet::Subscribe(s) => Some(Packet::Suback {
                qos: QoS::One,
                topic_id: 2,
                msg_id: s.msg_id,
                return_code: ReturnCode::Accepted,
            }),
            Packet::Publish(p) => {
                let r = crate::app::parse_reading(p.data).unwrap();
                published.insert((r.client_id.to_string(), r.seq));
                Some(Packet::Puback {
                    topic_id: 1,
                    msg_id: p.msg_id,
                    return_code: ReturnCode::Accepted,
                })
            }
            Packet::Disconnect { .. } => {
                disconnected += 1;
                Some(Packet::Disconnect { duration: None })
            }
            Packet::Pingreq { .. } => Some(Packet::Pingresp),
            other => panic!("unexpected {other}"),
        };
        if let Some(r) = reply {
            fwd.send(&addr, &encode(&r)).await;
        }
    }
    let report = tokio::time::timeout(WAIT, run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        report.completed,
        3 * motes as u64,
        "{framing:?}: {}",
        report.text()
    );
    assert_eq!(report.clean_exits, motes);
    assert_eq!(published.len(), 3 * motes);
}

#[tokio::test]
async fn motes_discover_connect_and_publish_over_every_framing() {
    run_over_pty(Framing::Slip, 1).await;
    run_over_pty(Framing::Raw, 1).await;
    run_over_pty(Framing::SlipAddressed, 3).await;
    run_over_pty(Framing::XbeeApi2, 3).await;
}
