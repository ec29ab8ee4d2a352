//! decode → encode → decode must give the same packet, and re-encoding must be a fixed point.
//! For an Encapsulated message with a valid inner message, re-wrapping it with
//! `encode_encapsulated` must give back the same node id, radius and inner packet.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use libfuzzer_sys::fuzz_target;
use sn_codec::{Packet, encode_encapsulated};

fn encode(packet: &Packet<'_>) -> Vec<u8> {
    let len = packet.encoded_len().expect("a decoded packet is encodable");
    let mut buf = vec![0u8; len];
    assert_eq!(packet.encode(&mut buf), Ok(len));
    buf
}

fuzz_target!(|data: &[u8]| {
    let Ok(first) = Packet::decode(data) else {
        return;
    };
    let bytes = encode(&first);
    let second = Packet::decode(&bytes).expect("our own encoding decodes");
    assert_eq!(first, second);
    assert_eq!(encode(&second), bytes, "re-encoding is not a fixed point");

    if let Packet::Encapsulated(e) = first {
        let Ok(inner) = e.decode_inner() else { return };
        let mut buf = vec![0u8; e.header_len() + inner.encoded_len().unwrap()];
        let n = encode_encapsulated(e.radius, e.wnid, &inner, &mut buf).unwrap();
        assert_eq!(n, buf.len());
        let Ok(Packet::Encapsulated(again)) = Packet::decode(&buf) else {
            panic!("encode_encapsulated output is not an Encapsulated message")
        };
        assert_eq!((again.radius, again.wnid), (e.radius, e.wnid));
        assert_eq!(again.decode_inner(), Ok(inner));
    }
});
