//! The MQTT-SN v1.2 wire format, for gateways (with `std`) and mote firmware (`no_std`, no
//! allocator).
//!
//! # Contract
//! - [`Packet::decode`] never panics on any input, allocates nothing, borrows variable-length
//!   fields from the input, accepts both Length forms, and requires the declared Length to equal
//!   the datagram size exactly (an Encapsulated message's Length covers its header only).
//!   Malformed input is a [`DecodeError`] that says what was wrong.
//! - [`Packet::encode`] writes exactly [`Packet::encoded_len`] octets into a caller-owned
//!   buffer, choosing the 1-octet Length form whenever the total is ≤ 255, or returns an
//!   [`EncodeError`] without writing anything.
//! - Text fields (ClientId, topic names) are raw octets: UTF-8 is checked by the receiver, which
//!   owes the sender a specific return code.
//! - Every packet has a one-line [`core::fmt::Display`] for logs and transcripts.
//!
//! Features: `std` adds `std::error::Error` impls; nothing else changes.
//!
//! ```
//! use sn_codec::{Packet, Publish, QoS, TopicRef};
//!
//! let publish = Packet::Publish(Publish {
//!     dup: false,
//!     qos: QoS::One,
//!     retain: false,
//!     topic: TopicRef::Normal(5),
//!     msg_id: 2,
//!     data: b"21.5",
//! });
//! let mut buf = [0u8; 64];
//! let len = publish.encode(&mut buf).unwrap();
//! assert_eq!(&buf[..len], &[0x0B, 0x0C, 0x20, 0x00, 0x05, 0x00, 0x02, b'2', b'1', b'.', b'5']);
//! assert_eq!(Packet::decode(&buf[..len]), Ok(publish));
//! assert_eq!(publish.to_string(), "PUBLISH qos=1 tid=5(normal) mid=2 retain=0 len=4");
//! ```
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod cursor;
mod display;
pub mod encap;
mod error;
mod flags;
pub mod framing;
mod header;
mod packet;
mod packets;
pub mod time;
mod types;

pub use encap::{Encapsulated, encode_encapsulated};
pub use error::{DecodeError, EncodeError};
pub use flags::Flags;
pub use header::MAX_MESSAGE_LEN;
pub use packet::{LengthQuirk, Packet, decode};
pub use packets::{Connect, Publish, Register, Subscribe, Unsubscribe, WillTopic};
pub use time::Instant;
pub use types::{MsgType, QoS, ReturnCode, TopicIdType, TopicRef};
