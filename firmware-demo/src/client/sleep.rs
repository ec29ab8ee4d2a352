//! The client side of sleeping (`docs/protocol.md`, "Sleeping clients"): entering Asleep, and
//! what is known about the sleep cycle. The commands themselves are [`Client::sleep`],
//! [`Client::wake`] and [`Client::connect`].
//!
//! | From | Event | To |
//! |---|---|---|
//! | Active | `sleep(d)`, outbox drained → DISCONNECT(d) … gateway's DISCONNECT | Asleep |
//! | Asleep | `wake()` → PINGREQ(ClientId) | Awake |
//! | Awake | buffered PUBLISH / REGISTER | Awake (T_RETRY of the PINGREQ restarts) |
//! | Awake | PINGRESP | Asleep |
//! | Awake | DISCONNECT (the gateway lost the session) | Connecting (new session) |
//! | Awake | N_RETRY exhausted | gateway lost |
//! | Asleep / Awake | `connect()` → CONNECT (CleanSession 0) … CONNACK | Active (resumed) |
//! | Asleep / Awake | `sleep(d′)` → DISCONNECT(d′) | Asleep (new duration) |
//! | Asleep / Awake | `disconnect()` → DISCONNECT | Disconnected |
//!
//! While asleep the radio is assumed off: ADVERTISE supervision pauses, keep-alive stops, and
//! publishes queue up until the next `connect()` (QoS −1 still goes out).

use sn_codec::Instant;

use super::{Client, State};

impl<A, const TOPICS: usize, const OUTBOX: usize, const PAYLOAD: usize>
    Client<A, TOPICS, OUTBOX, PAYLOAD>
where
    A: Copy + PartialEq + core::fmt::Debug,
{
    /// The sleep duration the gateway last confirmed, in seconds (0 before the first sleep).
    pub fn sleep_duration(&self) -> u16 {
        self.sleep_duration
    }

    /// Enters Asleep (DISCONNECT(d) answered, or PINGRESP after a wake-up).
    pub(super) fn fall_asleep(&mut self, _now: Instant) {
        self.set_state(State::Asleep);
        self.discovery.pause_supervision();
        self.outbox.release_hold();
    }
}
