//! The codec's integration tests, in one test binary (one link instead of one per file):
//!
//! - [`vectors`]: hand-checked byte vectors for every message;
//! - [`malformed`]: one test per decode and encode error;
//! - [`exhaustive`]: every MsgType octet with every short body, against an independent oracle;
//! - [`roundtrip`]: property tests (round trip, no panics, stable re-encoding);
//! - [`display`]: the one-line `Display` of packets;
//! - [`quirks`]: the one encoder mistake the tolerant decoder accepts.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod display;
mod exhaustive;
mod malformed;
mod quirks;
mod roundtrip;
mod vectors;
