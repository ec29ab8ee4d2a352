//! MQTT-SN v1.2 forwarder: relays frames between a radio network (XBee API, SLIP, raw serial,
//! or UDP) and the gateway, wrapping each in an Encapsulated message (MsgType 0xFE).
//!
//! - [`core`]: the sans-IO state machine (node table, encapsulation, broadcast relay, gateway
//!   discovery); deterministic, time passed in.
//! - [`radio`]: `tokio_util::codec` adapters over the serial framings of `sn_codec::framing`.
//! - [`io`]: the tokio shell — gateway UDP socket, serial ports reopened with backoff, UDP
//!   radio ports, the drive loop and counters.
//! - [`config`]: TOML file → validated settings, with positioned errors.
//!
//! The forwarder never interprets the inner MQTT-SN messages beyond their Length field, and bad
//! input from either side never stops it.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod core;
pub mod io;
pub mod radio;

pub use sn_codec;
