//! Client state-machine scenarios against a scripted gateway in simulated time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod connect;
mod discovery;
mod harness;
mod publish;
mod robustness;
mod sleep;
