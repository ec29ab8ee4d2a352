//! The forwarder without a configured gateway: it finds one by SEARCHGW / ADVERTISE on an IPv4
//! multicast group on loopback, relays ADVERTISE to the radio as a broadcast, and forwards a
//! node's SEARCHGW. Plus interop with a scripted gateway: the forwarder's datagrams have the
//! spec's Encapsulated layout byte for byte (hand-built vectors). Every wait is bounded.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use forwarder::io::config::{
    FlowControl, GroupConfig, PortConfig, PortKind, SerialConfig, Settings,
};
use forwarder::radio::Framing;
use gateway::core::config::DiscoveryConfig;
use gateway::io::config::MulticastConfig;
use sn_codec::{Connect, Packet, ReturnCode};
use sn_tests::forwarder::{SimFraming, SimRadio, TestForwarder};
use sn_tests::sn_client::encode;
use sn_tests::{Mosquitto, TestGateway};
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(5);
const NODE: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x40, 0x0A, 0x01, 0x02];

fn xbee_port(radio: &SimRadio) -> PortConfig {
    PortConfig {
        name: "xbee".into(),
        kind: PortKind::Serial(SerialConfig {
            path: radio.path().into(),
            baud: 115_200,
            flow: FlowControl::None,
            framing: Framing::Xbee { escaped: true },
            wnid: None,
        }),
    }
}

#[tokio::test]
async fn without_a_gateway_address_the_forwarder_discovers_one_and_relays_its_advertise() {
    let broker = Mosquitto::start().await.unwrap();
    let group = SocketAddrV4::new(
        Ipv4Addr::new(225, 1, 1, 91),
        sn_tests::free_udp_port().unwrap(),
    );
    let (mut core, mut io) = sn_tests::gateway::test_settings(&broker.url()).unwrap();
    core.gateway_id = 42;
    core.discovery = Some(DiscoveryConfig {
        advertise_interval: Duration::from_secs(1),
        max_gwinfo_ttl: 1,
        max_gwinfo_delay: Duration::from_millis(20),
    });
    io.listeners[0].multicast = Some(MulticastConfig {
        group: SocketAddr::V4(group),
        interface_v4: Some(Ipv4Addr::LOCALHOST),
        interface_v6: 0,
        ttl: 1,
    });
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();

    let mut radio = SimRadio::open(SimFraming::Xbee).unwrap();
    let mut settings = Settings::new(None, vec![xbee_port(&radio)]);
    settings.io.bind = "127.0.0.1:0".parse().unwrap();
    settings.io.group = Some(GroupConfig {
        group,
        interface: Ipv4Addr::LOCALHOST,
        ttl: 1,
    });
    settings.core.relay_advertise = true;
    settings.core.relay_radius = 2;
    let fwd = TestForwarder::start(settings).await.unwrap();
    fwd.wait_for("gateway discovered", WAIT, |s| s.gateway == Some(gw.addr))
        .await
        .unwrap();

    // The gateway's ADVERTISE reaches the radio as a broadcast with the relay radius.
    let advertise = encode(&Packet::Advertise {
        gw_id: 42,
        duration: 1,
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let f = radio
            .recv_for(None, deadline - tokio::time::Instant::now())
            .await
            .unwrap();
        assert_eq!((f.dest.as_ref(), f.radius), (None, 2), "{f:?}");
        if f.message == advertise {
            break;
        }
    }

    // A node's SEARCHGW goes to the gateway encapsulated; the GWINFO comes back to that node.
    radio
        .send(&NODE, &encode(&Packet::SearchGw { radius: 1 }))
        .await
        .unwrap();
    let gwinfo = encode(&Packet::GwInfo {
        gw_id: 42,
        gw_addr: &[],
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let f = radio
            .recv_for(Some(&NODE), deadline - tokio::time::Instant::now())
            .await
            .unwrap();
        if f.message == gwinfo {
            break;
        }
    }
    radio
        .send(
            &NODE,
            &encode(&Packet::Connect(Connect {
                will: false,
                clean_session: true,
                duration: 30,
                client_id: b"found-it",
            })),
        )
        .await
        .unwrap();
    let f = radio.recv_for(Some(&NODE), WAIT).await.unwrap();
    assert_eq!(
        f.message,
        encode(&Packet::Connack {
            return_code: ReturnCode::Accepted
        })
    );
}

#[tokio::test]
async fn encapsulated_datagrams_follow_the_spec_layout_byte_for_byte() {
    // A scripted gateway: a plain UDP socket.
    let gateway = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut radio = SimRadio::open(SimFraming::Xbee).unwrap();
    let mut settings = Settings::new(Some(gateway.local_addr().unwrap()), vec![xbee_port(&radio)]);
    settings.io.bind = "127.0.0.1:0".parse().unwrap();
    settings.io.group = None;
    settings.core.relay_advertise = false;
    let fwd = TestForwarder::start(settings).await.unwrap();
    fwd.wait_for("port open", WAIT, |s| s.ports[0].up)
        .await
        .unwrap();

    // PINGREQ (02 16) from node 0013A200400A0102.
    radio.send(&NODE, &[0x02, 0x16]).await.unwrap();
    let mut buf = [0u8; 512];
    let (n, from) = tokio::time::timeout(WAIT, gateway.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from, fwd.gateway_socket);
    #[rustfmt::skip]
    let expected = [
        0x0B,                                           // Len = 3 + 8
        0xFE,                                           // Encapsulated
        0x00,                                           // Ctrl: radius 0
        0x00, 0x13, 0xA2, 0x00, 0x40, 0x0A, 0x01, 0x02, // WNID = the 64-bit address
        0x02, 0x16,                                     // PINGREQ
    ];
    assert_eq!(&buf[..n], &expected);

    // PINGRESP back to the node, Ctrl reserved bits set (ignored).
    #[rustfmt::skip]
    let reply = [
        0x0B, 0xFE, 0xFC,
        0x00, 0x13, 0xA2, 0x00, 0x40, 0x0A, 0x01, 0x02,
        0x02, 0x17,
    ];
    gateway.send_to(&reply, from).await.unwrap();
    let f = radio.recv_for(Some(&NODE), WAIT).await.unwrap();
    assert_eq!(f.message, vec![0x02, 0x17]);

    // The radio reports a failed delivery (0x8B status 0x24, address not found): counted.
    radio.delivery_status = 0x24;
    gateway.send_to(&reply, from).await.unwrap();
    radio.recv_for(Some(&NODE), WAIT).await.unwrap();
    fwd.wait_for("tx failure counted", WAIT, |s| {
        s.ports[0].tx_failures == 1 && s.dropped("tx_status_failure") == 1
    })
    .await
    .unwrap();
    radio.delivery_status = 0;

    // Empty WNID, radius 3: a broadcast.
    gateway
        .send_to(&[0x03, 0xFE, 0x03, 0x02, 0x17], from)
        .await
        .unwrap();
    let f = radio.recv_for(None, WAIT).await.unwrap();
    assert_eq!((f.dest, f.radius, f.message), (None, 3, vec![0x02, 0x17]));

    // A WNID nobody knows, a nested Encapsulated message and garbage: dropped and counted.
    let mut unknown = reply;
    unknown[10] = 0x99;
    gateway.send_to(&unknown, from).await.unwrap();
    gateway
        .send_to(&[0x03, 0xFE, 0x00, 0x04, 0xFE, 0x00, 0x01], from)
        .await
        .unwrap();
    gateway.send_to(&[0xFF, 0xFE, 0x00], from).await.unwrap();
    fwd.wait_for("drops counted", WAIT, |s| {
        s.dropped("unknown_node") == 1 && s.dropped("malformed_encapsulation") == 2
    })
    .await
    .unwrap();
    assert!(
        radio
            .collect(Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty()
    );
}
