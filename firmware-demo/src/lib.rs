//! A no_std MQTT-SN v1.2 mote client, a demo sensor application built on it, and (with the
//! `std` feature) the `mote-sim` host simulator.
//!
//! # Contract
//!
//! - [`client::Client`] is sans-IO: the radio and the clock belong to the caller. Bytes go in
//!   with `now`, datagrams come out into the caller's buffer, and [`client::Client::poll_timeout`]
//!   says when to call back. The same code runs under an embedded executor and on a host.
//! - No allocator, no `unsafe`, fixed capacities (const generics, `heapless`). Without `std` the
//!   only dependencies are `sn-codec` and `heapless`.
//! - Deterministic: the same inputs, times and seed give the same outputs. Randomness (discovery
//!   jitter, the demo's fake readings) comes from a PRNG seeded by the caller.
//! - Nothing a peer sends can make it panic: bad datagrams are counted and dropped.
//!
//! Modules: [`client`] (the protocol), [`app`] (the demo sensor: periodic readings, a sleep
//! cycle, a command topic), [`rng`]; with `std`, `sim` (the tokio shell of `mote-sim`).
//!
//! ```
//! use firmware_demo::client::{Client, ClientConfig, Destination, PubTopic};
//! use firmware_demo::sn_codec::{Instant, Packet, QoS};
//!
//! let mut cfg = ClientConfig::<u16, 64>::new("mote-1").unwrap();
//! cfg.gateway = Some((0x0001, 1)); // radio address 1, GwId 1
//! let mut client: Client<u16> = Client::new(cfg, Instant::ZERO, 42).unwrap();
//! client.publish(Instant::ZERO, PubTopic::Short(*b"ab"), b"x", QoS::MinusOne, false).unwrap();
//! let mut buf = [0u8; 64];
//! let t = client.poll_transmit(Instant::ZERO, &mut buf).unwrap();
//! assert_eq!(t.to, Destination::Gateway(0x0001));
//! assert_eq!(&buf[..t.len], &[0x08, 0x0C, 0x62, b'a', b'b', 0x00, 0x00, b'x']);
//! assert!(matches!(Packet::decode(&buf[..t.len]), Ok(Packet::Publish(_))));
//! ```
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

pub use heapless;
pub use sn_codec;

mod log;

pub mod app;
pub mod client;
pub mod rng;
#[cfg(feature = "std")]
pub mod sim;
