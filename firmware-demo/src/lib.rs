//! A no_std MQTT-SN mote client (sans-IO: the radio and the clock belong to the caller) and the
//! `mote-sim` host simulator.
//!
//! The client is built in its own issue; this crate already proves that `sn-codec` and
//! `heapless` build without `std`.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

pub use heapless;
pub use sn_codec;
