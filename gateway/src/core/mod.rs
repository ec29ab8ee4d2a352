//! The sans-IO gateway core. No sockets, no tokio, no clock: time comes in as an argument.

pub mod addr;
pub mod config;
pub mod event;
pub mod upstream;
