//! A deterministic simulation of a whole site: `firmware-demo` motes, the forwarder core, the
//! gateway core and a simulated MQTT broker, on lossy links, in simulated time.
//!
//! - [`world`]: the event queue, the nodes and how they are driven, the seeded PRNG.
//! - [`network`]: per-direction loss, duplication, delay and reordering.
//! - [`broker`]: the broker and the upstream connector at the `UpstreamCmd` / `UpstreamEvent`
//!   level, with a backend subscriber that records what the MQTT side receives.
//! - [`mote`]: a mote application on the `firmware-demo` client.
//! - [`transcript`]: a line per event, to compare runs byte for byte.
//!
//! The scenarios live in `tests/e2e/simulation.rs`.

pub mod broker;
pub mod mote;
pub mod network;
pub mod transcript;
pub mod world;

pub use broker::{BrokerConfig, Delivery, SimBroker};
pub use mote::{MotePlan, MoteReport, Received, SimMote, SleepPlan};
pub use network::{Direction, LinkModel, LinkStats};
pub use transcript::Transcript;
pub use world::{Hop, MoteSpec, SimRng, Via, World, WorldConfig};
