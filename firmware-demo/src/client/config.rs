//! [`ClientConfig`]: who the client is, which gateway it talks to, and the protocol timers
//! (spec 7.2; `docs/protocol.md`, "Timers and bounds").

use core::time::Duration;

use heapless::{String, Vec};
use sn_codec::QoS;

/// Longest topic name or filter the client stores (REGISTER, SUBSCRIBE, Will topic), in octets.
pub const MAX_TOPIC_LEN: usize = 64;

/// Longest ClientId, in octets. The spec says 23; gateways (ours included) may accept up to 64.
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// Gateways remembered from ADVERTISE and GWINFO (the spec lets a client keep a list).
pub const MAX_GATEWAYS: usize = 4;

/// Events buffered between two `poll_event` drains; on overflow the oldest is dropped and
/// counted in [`super::Stats::events_dropped`].
pub const EVENT_QUEUE: usize = 8;

/// The protocol timers and counters (spec 7.2), with the spec's recommendations
/// as defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// T_RETRY: time to wait for the reply to a request before sending it again (default 10 s).
    pub t_retry: Duration,
    /// N_RETRY: retransmissions before the request is abandoned and the gateway considered
    /// lost (default 3; at least 1).
    pub n_retry: u8,
    /// T_SEARCHGW: largest random delay before a SEARCHGW (default 5 s).
    pub t_searchgw: Duration,
    /// Wait for GWINFO after the first SEARCHGW; doubles after every unanswered one
    /// (default 5 s).
    pub search_backoff_initial: Duration,
    /// Longest wait between two SEARCHGWs, and longest reconnect delay after losing a fixed
    /// gateway (default 15 min).
    pub search_backoff_max: Duration,
    /// N_ADV: missed ADVERTISEs after which the current gateway is considered lost
    /// (default 3; at least 1).
    pub n_adv: u8,
    /// T_WAIT: pause after a "rejected: congestion" return code (default 5 min).
    pub t_wait: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t_retry: Duration::from_secs(10),
            n_retry: 3,
            t_searchgw: Duration::from_secs(5),
            search_backoff_initial: Duration::from_secs(5),
            search_backoff_max: Duration::from_secs(15 * 60),
            n_adv: 3,
            t_wait: Duration::from_secs(5 * 60),
        }
    }
}

/// The client's Will: published by the broker when the client is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will<const PAYLOAD: usize> {
    /// Will topic (a concrete topic name).
    pub topic: String<MAX_TOPIC_LEN>,
    /// Will message (binary).
    pub message: Vec<u8, PAYLOAD>,
    /// QoS of the Will message (0, 1 or 2).
    pub qos: QoS,
    /// Publish the Will retained.
    pub retain: bool,
}

impl<const PAYLOAD: usize> Will<PAYLOAD> {
    /// A Will, or [`ConfigError::WillTooLong`] when the topic or message exceeds the capacity.
    pub fn new(topic: &str, message: &[u8], qos: QoS, retain: bool) -> Result<Self, ConfigError> {
        Ok(Will {
            topic: String::try_from(topic).map_err(|_| ConfigError::WillTooLong)?,
            message: Vec::from_slice(message).map_err(|_| ConfigError::WillTooLong)?,
            qos,
            retain,
        })
    }
}

/// Everything a [`super::Client`] is configured with; `A` is the radio's address type (a socket
/// address on a host, a node address on a radio).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig<A, const PAYLOAD: usize> {
    /// The ClientId sent in CONNECT and in the wake-up PINGREQ.
    pub client_id: String<MAX_CLIENT_ID_LEN>,
    /// Keep-alive period in seconds (CONNECT Duration). The client sends PINGREQ when it has
    /// sent nothing for this long. 0 = no keep-alive.
    pub keep_alive: u16,
    /// CleanSession of the first CONNECT and of every reconnect after a gateway loss. (A
    /// CONNECT that resumes from sleep always sends CleanSession = 0.)
    pub clean_session: bool,
    /// The Will, sent when the gateway prompts for it.
    pub will: Option<Will<PAYLOAD>>,
    /// A gateway known in advance: `(address, GwId)`. `None` = find one with SEARCHGW.
    pub gateway: Option<(A, u8)>,
    /// Radius of SEARCHGW broadcasts (hops; 0 = whole network).
    pub search_radius: u8,
    /// Largest datagram the radio carries (MTU), in octets. Publishes that would not fit are
    /// refused at [`super::Client::publish`].
    pub max_packet: usize,
    /// Protocol timers.
    pub timers: Timers,
}

impl<A, const PAYLOAD: usize> ClientConfig<A, PAYLOAD> {
    /// Defaults for `client_id`: keep-alive 60 s, clean session, no Will, discovery, radius 1,
    /// 1024-octet datagrams, the spec's timers.
    ///
    /// # Errors
    /// [`ConfigError::InvalidClientId`] for an empty id or one over [`MAX_CLIENT_ID_LEN`]
    /// octets.
    pub fn new(client_id: &str) -> Result<Self, ConfigError> {
        if client_id.is_empty() {
            return Err(ConfigError::InvalidClientId);
        }
        Ok(ClientConfig {
            client_id: String::try_from(client_id).map_err(|_| ConfigError::InvalidClientId)?,
            keep_alive: 60,
            clean_session: true,
            will: None,
            gateway: None,
            search_radius: 1,
            max_packet: 1024,
            timers: Timers::default(),
        })
    }

    /// Checks the values [`super::Client::new`] relies on.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.client_id.is_empty() {
            return Err(ConfigError::InvalidClientId);
        }
        let t = &self.timers;
        if t.n_retry == 0
            || t.n_adv == 0
            || t.t_retry.is_zero()
            || t.search_backoff_initial.is_zero()
        {
            return Err(ConfigError::InvalidTimers);
        }
        if t.search_backoff_max < t.search_backoff_initial {
            return Err(ConfigError::InvalidTimers);
        }
        if let Some(w) = &self.will
            && (w.topic.is_empty() || w.qos == QoS::MinusOne)
        {
            return Err(ConfigError::InvalidWill);
        }
        // The smallest useful datagram: a CONNECT with the ClientId.
        if self.max_packet < self.client_id.len().saturating_add(6) {
            return Err(ConfigError::PacketTooSmall);
        }
        Ok(())
    }
}

/// A configuration the client cannot run with.
///
/// **Fault:** the operator or the firmware author. **Recovery:** fix the value; nothing was
/// started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The ClientId is empty or longer than [`MAX_CLIENT_ID_LEN`] octets.
    InvalidClientId,
    /// A retry count or N_ADV is 0, T_RETRY or the search back-off is zero, or the back-off
    /// maximum is below its start.
    InvalidTimers,
    /// The Will topic is empty or its QoS is −1.
    InvalidWill,
    /// The Will topic or message exceeds the client's capacity.
    WillTooLong,
    /// `max_packet` cannot even carry a CONNECT with this ClientId.
    PacketTooSmall,
    /// A topic name (or a prefix the application builds names from) is empty, too long or
    /// contains wildcards.
    InvalidTopic,
    /// The QoS cannot be used this way (QoS −1 needs a predefined topic id or a short name).
    InvalidQos,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::InvalidClientId => "the client id must be 1 to 64 octets",
            Self::InvalidTimers => "invalid timers: retries and N_ADV must be at least 1, T_RETRY and back-off non-zero",
            Self::InvalidWill => "the Will topic must be non-empty and its QoS 0, 1 or 2",
            Self::WillTooLong => "the Will topic or message exceeds the client's capacity",
            Self::PacketTooSmall => "max_packet cannot carry a CONNECT with this client id",
            Self::InvalidTopic => "a topic name is empty, too long or contains wildcards",
            Self::InvalidQos => "QoS -1 needs a predefined topic id or a short topic name",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}
