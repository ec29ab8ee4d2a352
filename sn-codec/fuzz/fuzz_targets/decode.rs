//! Decodes arbitrary bytes: must never panic; whatever decodes must encode again, into exactly
//! `encoded_len` octets and no more octets than the input had.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use libfuzzer_sys::fuzz_target;
use sn_codec::{Encapsulated, Packet};

fuzz_target!(|data: &[u8]| {
    let _ = Encapsulated::decode(data);
    let Ok(packet) = Packet::decode(data) else {
        return;
    };
    let _ = packet.to_string();
    let len = packet.encoded_len().expect("a decoded packet is encodable");
    assert!(
        len <= data.len(),
        "re-encoding grew from {} to {len} octets",
        data.len()
    );
    let mut buf = vec![0u8; len];
    assert_eq!(packet.encode(&mut buf), Ok(len));
    if len > 0 {
        let mut short = vec![0u8; len - 1];
        assert!(packet.encode(&mut short).is_err());
        assert!(
            short.iter().all(|&b| b == 0),
            "a failed encode wrote octets"
        );
    }
    if let Packet::Encapsulated(e) = packet
        && let Ok(inner) = e.decode_inner()
    {
        let _ = inner.to_string();
        assert!(!matches!(inner, Packet::Encapsulated(_)));
    }
});
