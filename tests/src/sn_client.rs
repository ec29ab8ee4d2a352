//! A scripted MQTT-SN client over a real UDP socket, for end-to-end tests: send packets, wait
//! (bounded) for the next one, with the conversation kept readable.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sn_codec::{Connect, Packet, QoS, ReturnCode, WillTopic};
use tokio::net::UdpSocket;

/// The default bound for one expected reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// One MQTT-SN client on its own UDP socket.
#[derive(Debug)]
pub struct SnClient {
    socket: UdpSocket,
    gateway: SocketAddr,
}

/// A received datagram, owned; decode it with [`Reply::packet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply(pub Vec<u8>);

impl Reply {
    /// The decoded packet (borrowing from this reply).
    pub fn packet(&self) -> Result<Packet<'_>> {
        Packet::decode(&self.0)
            .map_err(|e| anyhow::anyhow!("gateway sent a malformed datagram: {e}"))
    }

    /// The one-line description of the packet.
    pub fn text(&self) -> String {
        self.packet()
            .map_or_else(|e| e.to_string(), |p| p.to_string())
    }
}

/// Encodes a packet into a fresh vector.
pub fn encode(p: &Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; p.encoded_len().unwrap_or(0)];
    let n = p.encode(&mut buf).unwrap_or(0);
    buf.truncate(n);
    buf
}

impl SnClient {
    /// A client on a fresh loopback socket talking to `gateway`.
    pub async fn new(gateway: SocketAddr) -> Result<Self> {
        let bind: SocketAddr = if gateway.is_ipv6() {
            "[::1]:0".parse()?
        } else {
            "127.0.0.1:0".parse()?
        };
        let socket = UdpSocket::bind(bind)
            .await
            .context("bind the test client socket")?;
        Ok(SnClient { socket, gateway })
    }

    /// The client's own address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    /// Sends one packet.
    pub async fn send(&self, p: &Packet<'_>) -> Result<()> {
        self.send_raw(&encode(p)).await
    }

    /// Sends raw octets.
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<()> {
        self.socket
            .send_to(bytes, self.gateway)
            .await
            .context("send to the gateway")?;
        Ok(())
    }

    /// The next datagram from the gateway, or `None` after `limit`.
    pub async fn recv_within(&self, limit: Duration) -> Result<Option<Reply>> {
        let mut buf = vec![0u8; 70_000];
        match tokio::time::timeout(limit, self.socket.recv_from(&mut buf)).await {
            Err(_) => Ok(None),
            Ok(r) => {
                let (n, _) = r.context("receive from the gateway")?;
                buf.truncate(n);
                Ok(Some(Reply(buf)))
            }
        }
    }

    /// The next datagram, failing after [`REPLY_TIMEOUT`].
    pub async fn recv(&self) -> Result<Reply> {
        self.recv_within(REPLY_TIMEOUT)
            .await?
            .context("no reply from the gateway within 5 s")
    }

    /// Waits for the next datagram and checks it is exactly `expected`.
    pub async fn expect(&self, expected: &Packet<'_>) -> Result<()> {
        let got = self.recv().await?;
        if got.0 != encode(expected) {
            bail!("expected {expected}, got {}", got.text());
        }
        Ok(())
    }

    /// Asserts that nothing arrives within `window` (use only for a short window).
    pub async fn expect_nothing(&self, window: Duration) -> Result<()> {
        if let Some(r) = self.recv_within(window).await? {
            bail!("expected silence, got {}", r.text());
        }
        Ok(())
    }

    /// CONNECT without Will; returns the CONNACK's return code.
    pub async fn connect(
        &self,
        client_id: &str,
        clean_session: bool,
        keep_alive: u16,
    ) -> Result<ReturnCode> {
        let c = Connect {
            will: false,
            clean_session,
            duration: keep_alive,
            client_id: client_id.as_bytes(),
        };
        self.send(&Packet::Connect(c)).await?;
        let reply = self.recv().await?;
        match reply.packet()? {
            Packet::Connack { return_code } => Ok(return_code),
            other => bail!("expected CONNACK, got {other}"),
        }
    }

    /// CONNECT (clean session) with a Will of `topic` / `msg` at QoS 1, not retained,
    /// answering the gateway's WILLTOPICREQ and WILLMSGREQ; returns the CONNACK's return code.
    pub async fn connect_with_will(
        &self,
        client_id: &str,
        keep_alive: u16,
        topic: &str,
        msg: &[u8],
    ) -> Result<ReturnCode> {
        let c = Connect {
            will: true,
            clean_session: true,
            duration: keep_alive,
            client_id: client_id.as_bytes(),
        };
        self.send(&Packet::Connect(c)).await?;
        self.expect(&Packet::WillTopicReq).await?;
        self.send(&Packet::WillTopic(Some(WillTopic {
            qos: QoS::One,
            retain: false,
            topic: topic.as_bytes(),
        })))
        .await?;
        self.expect(&Packet::WillMsgReq).await?;
        self.send(&Packet::WillMsg { msg }).await?;
        let reply = self.recv().await?;
        match reply.packet()? {
            Packet::Connack { return_code } => Ok(return_code),
            other => bail!("expected CONNACK, got {other}"),
        }
    }
}
