//! Simulated motes for the benchmark: one UDP socket each (the gateway tells clients apart by
//! address), connect, publish open-loop at a rate or closed-loop one message in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sn_codec::{Connect, Packet, Publish, QoS, ReturnCode, Subscribe, TopicRef};
use tokio::net::UdpSocket;

use crate::sn_client::encode;

/// Length of the benchmark payload: sequence number, send time, padding.
pub const PAYLOAD_LEN: usize = 32;

/// How long a mote waits for an answer before it sends a request again (its T_retry).
pub const RETRY_AFTER: Duration = Duration::from_secs(3);

/// How often a mote sends a request before it gives up (N_retry + 1).
pub const TRIES: u32 = 10;

/// The clock all timestamps in payloads are taken from.
pub fn epoch() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`].
pub fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A 32-octet payload carrying `seq` and the send time.
pub fn payload(seq: u64) -> [u8; PAYLOAD_LEN] {
    let mut p = [0u8; PAYLOAD_LEN];
    p[..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(&now_ns().to_be_bytes());
    p
}

/// `(seq, sent_ns)` of a benchmark payload.
pub fn parse_payload(p: &[u8]) -> Option<(u64, u64)> {
    let seq = u64::from_be_bytes(p.get(..8)?.try_into().ok()?);
    let sent = u64::from_be_bytes(p.get(8..16)?.try_into().ok()?);
    Some((seq, sent))
}

/// One simulated mote.
#[derive(Debug)]
pub struct Mote {
    /// Its socket.
    pub socket: UdpSocket,
    gateway: SocketAddr,
}

impl Mote {
    /// A mote on a fresh loopback socket.
    pub async fn new(gateway: SocketAddr) -> Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .context("bind a mote socket")?;
        Ok(Mote { socket, gateway })
    }

    /// Sends a packet.
    pub async fn send(&self, p: &Packet<'_>) -> Result<()> {
        let bytes = encode(p);
        match self.socket.try_send_to(&bytes, self.gateway) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.socket.send_to(&bytes, self.gateway).await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The next datagram (bounded), decoded by `f`.
    pub async fn recv<T>(&self, limit: Duration, f: impl Fn(Packet<'_>) -> Option<T>) -> Result<T> {
        let mut buf = [0u8; 1500];
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let (n, _) = tokio::time::timeout_at(deadline, self.socket.recv_from(&mut buf))
                .await
                .context("no answer from the gateway in time")??;
            if let Some(t) = buf
                .get(..n)
                .and_then(|b| Packet::decode(b).ok())
                .and_then(&f)
            {
                return Ok(t);
            }
        }
    }

    /// Sends `p` and waits for an answer `f` accepts, re-sending every [`RETRY_AFTER`] like a
    /// real mote does (T_retry) up to [`TRIES`] times: a burst of thousands of requests may
    /// overflow the gateway's socket buffer, and UDP drops what does not fit.
    pub async fn request<T>(
        &self,
        p: &Packet<'_>,
        f: impl Fn(Packet<'_>) -> Option<T>,
    ) -> Result<T> {
        let mut last = None;
        for _ in 0..TRIES {
            self.send(p).await?;
            match self.recv(RETRY_AFTER, &f).await {
                Ok(t) => return Ok(t),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no try")))
    }

    /// CONNECT (CleanSession=1) and wait for CONNACK accepted; returns the round-trip time.
    pub async fn connect(&self, client_id: &str, keep_alive: u16) -> Result<Duration> {
        self.connect_session(client_id, keep_alive, true).await
    }

    /// CONNECT with `clean_session` and wait for CONNACK accepted; returns the round-trip time.
    pub async fn connect_session(
        &self,
        client_id: &str,
        keep_alive: u16,
        clean_session: bool,
    ) -> Result<Duration> {
        let start = Instant::now();
        let c = Connect {
            will: false,
            clean_session,
            duration: keep_alive,
            client_id: client_id.as_bytes(),
        };
        let rc = self
            .request(&Packet::Connect(c), |p| match p {
                Packet::Connack { return_code } => Some(return_code),
                _ => None,
            })
            .await?;
        if rc != ReturnCode::Accepted {
            bail!("{client_id}: CONNACK {rc}");
        }
        Ok(start.elapsed())
    }

    /// SUBSCRIBE to a name and wait for the SUBACK.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<()> {
        let s = Subscribe {
            dup: false,
            qos,
            msg_id: 1,
            topic: TopicRef::Name(filter.as_bytes()),
        };
        self.request(&Packet::Subscribe(s), |p| {
            matches!(
                p,
                Packet::Suback {
                    return_code: ReturnCode::Accepted,
                    ..
                }
            )
            .then_some(())
        })
        .await
    }

    /// One QoS 1 or 2 publish, waiting for the end of its handshake; returns the round trip.
    pub async fn publish_reliable(
        &self,
        qos: QoS,
        topic_id: u16,
        msg_id: u16,
        seq: u64,
    ) -> Result<Duration> {
        let start = Instant::now();
        let data = payload(seq);
        let p = Publish {
            dup: false,
            qos,
            retain: false,
            topic: TopicRef::Predefined(topic_id),
            msg_id,
            data: &data,
        };
        self.send(&Packet::Publish(p)).await?;
        let limit = Duration::from_secs(10);
        if qos == QoS::Two {
            self.recv(limit, |p| {
                matches!(p, Packet::Pubrec { msg_id: m } if m == msg_id).then_some(())
            })
            .await?;
            self.send(&Packet::Pubrel { msg_id }).await?;
            self.recv(limit, |p| {
                matches!(p, Packet::Pubcomp { msg_id: m } if m == msg_id).then_some(())
            })
            .await?;
        } else {
            self.recv(limit, |p| match p {
                Packet::Puback {
                    msg_id: m,
                    return_code: ReturnCode::Accepted,
                    ..
                } if m == msg_id => Some(()),
                _ => None,
            })
            .await?;
        }
        Ok(start.elapsed())
    }
}

/// Creates `n` motes.
pub async fn motes(n: usize, gateway: SocketAddr) -> Result<Vec<Arc<Mote>>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Arc::new(Mote::new(gateway).await?));
    }
    Ok(out)
}

/// Connects every mote at once (`<prefix><i>`); returns each CONNACK round trip.
pub async fn connect_all(motes: &[Arc<Mote>], prefix: &str) -> Result<Vec<Duration>> {
    connect_all_sessions(motes, prefix, true).await
}

/// [`connect_all`] with `clean_session` (false: sessions the gateway stores when it has a state
/// database).
pub async fn connect_all_sessions(
    motes: &[Arc<Mote>],
    prefix: &str,
    clean_session: bool,
) -> Result<Vec<Duration>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, m) in motes.iter().enumerate() {
        let (m, id) = (m.clone(), format!("{prefix}{i}"));
        tasks.spawn(async move { m.connect_session(&id, 3600, clean_session).await });
    }
    let mut rtts = Vec::with_capacity(motes.len());
    while let Some(r) = tasks.join_next().await {
        rtts.push(r??);
    }
    Ok(rtts)
}

/// Sends `total` PUBLISHes (predefined id `topic_id`, 32-octet payloads numbered from 0)
/// round-robin over `motes` at `rate` per second; returns the number sent.
///
/// The pacing runs on a thread of its own and sleeps until the next message is due, so the
/// load is as even as the kernel's timer allows (tens of microseconds), not bursts of one
/// runtime tick (≥ 1 ms): a burst queues its own messages behind each other and would be
/// measured as latency of the system under test.
pub async fn publish_open_loop(
    motes: &[Arc<Mote>],
    qos: QoS,
    topic_id: u16,
    rate: u64,
    total: u64,
) -> Result<u64> {
    let motes = motes.to_vec();
    tokio::task::spawn_blocking(move || publish_paced(&motes, qos, topic_id, rate, total)).await?
}

fn publish_paced(
    motes: &[Arc<Mote>],
    qos: QoS,
    topic_id: u16,
    rate: u64,
    total: u64,
) -> Result<u64> {
    if motes.is_empty() {
        return Ok(0);
    }
    pace(
        rate,
        |sent| sent < total,
        |i| {
            let m = &motes[usize::try_from(i % motes.len() as u64).unwrap_or(0)];
            let data = payload(i);
            let p = Publish {
                dup: false,
                qos,
                retain: false,
                topic: TopicRef::Predefined(topic_id),
                msg_id: 0,
                data: &data,
            };
            let bytes = encode(&Packet::Publish(p));
            loop {
                match m.socket.try_send_to(&bytes, m.gateway) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::yield_now()
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        },
    )
}

/// Calls `send` with 0, 1, 2, … at `rate` per second for as long as `more` (given the number
/// sent so far) says; returns the number sent. Blocks the calling thread: it sleeps until the
/// next call is due, and makes every call that came due during a sleep at once.
pub fn pace(
    rate: u64,
    mut more: impl FnMut(u64) -> bool,
    mut send: impl FnMut(u64) -> Result<()>,
) -> Result<u64> {
    if rate == 0 {
        return Ok(0);
    }
    let start = Instant::now();
    let mut sent = 0u64;
    while more(sent) {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64 + 1;
        while sent < due && more(sent) {
            send(sent)?;
            sent += 1;
        }
        let next = start + Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    Ok(sent)
}
