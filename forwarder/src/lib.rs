//! MQTT-SN v1.2 forwarder: relays frames between a radio network (XBee API, SLIP, raw serial,
//! or UDP) and the gateway, wrapping each in an Encapsulated message (MsgType 0xFE).
//!
//! The forwarder itself is built in its own issue; this crate already depends on the codec so the
//! workspace shape is final.
#![forbid(unsafe_code)]

pub use sn_codec;
