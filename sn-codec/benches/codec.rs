//! Codec benchmarks: decode and encode of a PUBLISH (32-octet payload), a CONNECT (client id
//! "mote-0001", Will + CleanSession) and an encapsulated PUBLISH (8-octet node id, 32-octet
//! payload). Target: under 50 ns per decode and per encode. Run with `cargo bench -p sn-codec`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sn_codec::{Connect, Packet, Publish, QoS, TopicRef, encode_encapsulated};

const PAYLOAD: [u8; 32] = *b"{\"t\":21.5,\"h\":40.2,\"bat\":3.71}\n\0";
const WNID: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D];

fn publish() -> Packet<'static> {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::One,
        retain: false,
        topic: TopicRef::Normal(5),
        msg_id: 2,
        data: &PAYLOAD,
    })
}

fn connect() -> Packet<'static> {
    Packet::Connect(Connect {
        will: true,
        clean_session: true,
        duration: 60,
        client_id: b"mote-0001",
    })
}

fn encoded(p: &Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; p.encoded_len().unwrap()];
    p.encode(&mut buf).unwrap();
    buf
}

fn bench_publish(c: &mut Criterion) {
    let p = publish();
    let bytes = encoded(&p);
    assert_eq!(bytes.len(), 39);
    c.bench_function("decode/publish_32", |b| {
        b.iter(|| Packet::decode(black_box(&bytes)).unwrap());
    });
    let mut buf = [0u8; 64];
    c.bench_function("encode/publish_32", |b| {
        b.iter(|| black_box(&p).encode(black_box(&mut buf)).unwrap());
    });
}

fn bench_connect(c: &mut Criterion) {
    let p = connect();
    let bytes = encoded(&p);
    assert_eq!(bytes, b"\x0F\x04\x0C\x01\x00\x3Cmote-0001");
    c.bench_function("decode/connect", |b| {
        b.iter(|| Packet::decode(black_box(&bytes)).unwrap());
    });
    let mut buf = [0u8; 64];
    c.bench_function("encode/connect", |b| {
        b.iter(|| black_box(&p).encode(black_box(&mut buf)).unwrap());
    });
}

fn bench_encapsulated(c: &mut Criterion) {
    let inner = publish();
    let mut bytes = [0u8; 64];
    let len = encode_encapsulated(0, &WNID, &inner, &mut bytes).unwrap();
    let bytes = &bytes[..len];
    assert_eq!(len, 11 + 39);
    c.bench_function("decode/encapsulated_publish_32", |b| {
        b.iter(|| match Packet::decode(black_box(bytes)).unwrap() {
            Packet::Encapsulated(e) => e.decode_inner().unwrap(),
            other => other,
        });
    });
    let mut buf = [0u8; 64];
    c.bench_function("encode/encapsulated_publish_32", |b| {
        b.iter(|| {
            encode_encapsulated(0, black_box(&WNID), black_box(&inner), black_box(&mut buf))
                .unwrap()
        });
    });
}

criterion_group!(benches, bench_publish, bench_connect, bench_encapsulated);
criterion_main!(benches);
