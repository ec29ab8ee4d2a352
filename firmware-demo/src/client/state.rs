//! [`State`]: where the client is in its life cycle (`docs/protocol.md`, "The mote client's
//! side").

use core::fmt;

/// The client's state.
///
/// ```text
///              connect()                 GWINFO / ADVERTISE
/// Disconnected ─────────► SearchingGw ─────────────────────► Connecting ──CONNACK──► Registering ──► Active
///      ▲  (no gateway known)    ▲ loss, no other gateway known    ▲  (gateway known)   (REGISTER/SUBSCRIBE due)   │
///      │                        └────────────── Lost ◄────────────┘ (fixed gateway: wait, then reconnect)        │
///      │ DISCONNECT reply                                                                                     │ sleep()
///      └───────────────────────────────────────────── Asleep ◄──PINGRESP── Awake ◄──wake()── Asleep ◄───────────┘
/// ```
///
/// `connect()` from Asleep or Awake resumes the session (Connecting, then straight to Active).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No session. A gateway may be known (QoS −1 publishes still go out).
    Disconnected,
    /// Looking for a gateway: SEARCHGW after a random delay, then with back-off.
    SearchingGw,
    /// CONNECT sent (and Will prompting), waiting for CONNACK.
    Connecting,
    /// Connected; registering topics and subscribing before application publishes go out.
    Registering,
    /// Connected; publishes flow.
    Active,
    /// The gateway confirmed DISCONNECT(Duration); the radio may be off.
    Asleep,
    /// Woken up with PINGREQ(ClientId); receiving buffered messages until PINGRESP.
    Awake,
    /// The configured gateway was lost; waiting before reconnecting.
    Lost,
}

impl State {
    /// Connected to a gateway (Registering or Active).
    pub fn is_connected(self) -> bool {
        matches!(self, State::Registering | State::Active)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Disconnected => "disconnected",
            State::SearchingGw => "searching",
            State::Connecting => "connecting",
            State::Registering => "registering",
            State::Active => "active",
            State::Asleep => "asleep",
            State::Awake => "awake",
            State::Lost => "lost",
        })
    }
}
