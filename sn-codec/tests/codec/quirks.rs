//! A known encoder mistake of a widely used mote library, accepted by
//! `Packet::decode_tolerant` and nothing else: a message whose total length is 256 octets,
//! written in the long Length form with Length 0x00FF (two less than the datagram).

use sn_codec::{DecodeError, LengthQuirk, Packet, Publish, QoS, TopicRef};

/// The library's datagram for a QoS 1 PUBLISH on normal topic id 1, MsgId 7, with a
/// `payload_len`-octet payload: `01 00 FF 0C 20 00 01 00 07` + payload (257 octets for 248).
fn paho_long_publish(payload_len: usize) -> Vec<u8> {
    let mut d = vec![0x01, 0x00, 0xFF, 0x0C, 0x20, 0x00, 0x01, 0x00, 0x07];
    d.extend((0..payload_len).map(|i| i as u8));
    d
}

#[test]
fn the_off_by_two_long_form_of_a_248_octet_publish_decodes_whole_when_tolerated() {
    let d = paho_long_publish(248);
    assert_eq!(d.len(), 257);
    assert_eq!(&d[..4], &[0x01, 0x00, 0xFF, 0x0C]);
    assert_eq!(
        Packet::decode(&d),
        Err(DecodeError::TrailingBytes {
            declared: 255,
            actual: 257
        }),
        "the strict decoder keeps refusing it"
    );
    let (p, quirk) = Packet::decode_tolerant(&d).unwrap();
    assert_eq!(quirk, Some(LengthQuirk::LongFormShortByTwo));
    match p {
        Packet::Publish(Publish {
            qos: QoS::One,
            topic: TopicRef::Normal(1),
            msg_id: 7,
            data,
            ..
        }) => {
            assert_eq!(data.len(), 248, "every octet of the payload");
            assert_eq!(data, &d[9..]);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn neighbouring_payload_sizes_encoded_correctly_decode_without_a_quirk() {
    for len in [246usize, 247, 249, 250] {
        let payload = vec![0x5a; len];
        let p = Packet::Publish(Publish {
            dup: false,
            qos: QoS::One,
            retain: false,
            topic: TopicRef::Normal(1),
            msg_id: 7,
            data: &payload,
        });
        let mut buf = vec![0; p.encoded_len().unwrap()];
        let n = p.encode(&mut buf).unwrap();
        let (back, quirk) = Packet::decode_tolerant(&buf[..n]).unwrap();
        assert_eq!(quirk, None, "{len}");
        assert_eq!(back, p, "{len}");
        assert_eq!(Packet::decode(&buf[..n]).unwrap(), p, "{len}");
    }
}

#[test]
fn every_other_length_mismatch_stays_an_error() {
    let d = paho_long_publish(248);
    // Long form, one or three short of the datagram.
    for declared in [0x00FEu16, 0x00FC] {
        let mut bad = d.clone();
        bad[1..3].copy_from_slice(&declared.to_be_bytes());
        assert!(Packet::decode_tolerant(&bad).is_err(), "{declared}");
    }
    // Short form, two short of the datagram.
    let mut short = vec![0x09, 0x0C, 0x20, 0x00, 0x01, 0x00, 0x07, 1, 2];
    short.extend([3, 4]);
    assert!(matches!(
        Packet::decode_tolerant(&short),
        Err(DecodeError::TrailingBytes { .. })
    ));
    // Long form two short, but an Encapsulated message: never.
    let mut encap = vec![0x01, 0x00, 0x05, 0xFE, 0x00, 0x01, 0x02];
    encap.truncate(7);
    assert!(Packet::decode_tolerant(&encap).is_err());
}
