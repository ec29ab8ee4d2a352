//! MQTT-SN v1.2 gateway: a sans-IO core (sessions, topic registries, timers) and thin tokio
//! shells (UDP sockets, one rumqttc link per mote).
#![forbid(unsafe_code)]

pub mod admin_client;
pub mod cli;
pub mod config;
pub mod core;
pub mod io;

pub use sn_codec;
