//! IPv6 discovery multicast. Multicast on IPv6 loopback delivers nothing, so the test creates a
//! private network namespace with a veth pair: the outer test re-runs this test binary under
//! `unshare -n`, asking for the inner test alone (by its full name, module path included), and
//! the inner test does the work there. Skipped with a notice only when not running as root.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::process::Command;
use std::time::Duration;

use gateway::core::config::DiscoveryConfig;
use gateway::io::config::{ListenerConfig, MulticastConfig};
use sn_codec::Packet;
use sn_tests::sn_client::encode;
use sn_tests::{Mosquitto, TestGateway};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

const INNER_ENV: &str = "SN_TESTS_INSIDE_NETNS";

#[test]
fn ipv6_discovery_works_over_a_veth_pair_in_a_private_network_namespace() {
    if !sn_tests::namespace::is_root() {
        eprintln!("skipping IPv6 multicast test: creating a network namespace needs root");
        return;
    }
    let inner = sn_tests::namespace::inner_test(
        module_path!(),
        "inside_the_namespace_a_gateway_advertises_and_answers_searchgw_over_ipv6",
    );
    sn_tests::namespace::run_inner(&["-n"], &inner, INNER_ENV).unwrap();
}

fn ip(args: &[&str]) {
    let st = Command::new("ip")
        .args(args)
        .status()
        .expect("run ip (iproute2)");
    assert!(st.success(), "ip {args:?} failed");
}

/// The index of `dev`, from `ip -o link show`.
fn ifindex(dev: &str) -> u32 {
    let out = Command::new("ip")
        .args(["-o", "link", "show", dev])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(':').next().unwrap().trim().parse().unwrap()
}

/// Waits (bounded) until `dev` has a link-local address that finished duplicate detection.
async fn wait_link_local(dev: &str) {
    for _ in 0..100 {
        let out = Command::new("ip")
            .args(["-6", "addr", "show", "dev", dev])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("fe80") && !text.contains("tentative") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no usable link-local address on {dev} after 10 s");
}

#[tokio::test]
#[ignore = "runs inside the network namespace created by ipv6_discovery_works_over_a_veth_pair_in_a_private_network_namespace"]
async fn inside_the_namespace_a_gateway_advertises_and_answers_searchgw_over_ipv6() {
    if std::env::var(INNER_ENV).is_err() {
        return;
    }
    ip(&["link", "set", "lo", "up"]);
    ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"]);
    ip(&["link", "set", "va", "up"]);
    ip(&["link", "set", "vb", "up"]);
    wait_link_local("va").await;
    let index = ifindex("va");

    let broker = Mosquitto::start().await.unwrap();
    let port = sn_tests::free_udp_port().unwrap();
    let group = SocketAddrV6::new("ff02::1:1883".parse().unwrap(), port, 0, 0);

    // A listener on the group, to see ADVERTISE.
    let watch = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    watch.set_only_v6(true).unwrap();
    watch.set_reuse_address(true).unwrap();
    watch
        .bind(&SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0)).into())
        .unwrap();
    watch.join_multicast_v6(group.ip(), index).unwrap();
    watch.set_nonblocking(true).unwrap();
    let watch = UdpSocket::from_std(watch.into()).unwrap();

    let (mut core, mut io) = sn_tests::gateway::test_settings(&broker.url()).unwrap();
    core.gateway_id = 66;
    core.discovery = Some(DiscoveryConfig {
        advertise_interval: Duration::from_secs(1),
        max_gwinfo_ttl: 4,
        max_gwinfo_delay: Duration::from_millis(20),
    });
    io.listeners = vec![ListenerConfig {
        bind: "[::]:0".parse().unwrap(),
        multicast: Some(MulticastConfig {
            group: SocketAddr::V6(group),
            interface_v4: None,
            interface_v6: index,
            ttl: 1,
        }),
    }];
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, Duration::from_secs(5))
        .await
        .unwrap();

    let adv = encode(&Packet::Advertise {
        gw_id: 66,
        duration: 1,
    });
    let mut buf = [0u8; 256];
    let seen = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            let (n, from) = watch.recv_from(&mut buf).await.unwrap();
            if buf[..n] == adv[..] {
                return from;
            }
        }
    })
    .await
    .expect("ADVERTISE on the IPv6 group");
    assert_eq!(
        seen.port(),
        gw.addr.port(),
        "sent from the gateway's unicast port"
    );

    // SEARCHGW to the group from another socket: GWINFO comes back unicast.
    let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.set_only_v6(true).unwrap();
    s.set_multicast_if_v6(index).unwrap();
    s.set_multicast_hops_v6(1).unwrap();
    s.set_multicast_loop_v6(true).unwrap();
    s.bind(&SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0)).into())
        .unwrap();
    s.set_nonblocking(true).unwrap();
    let s = UdpSocket::from_std(s.into()).unwrap();
    let to = SocketAddrV6::new(*group.ip(), port, 0, index);
    s.send_to(&encode(&Packet::SearchGw { radius: 1 }), to)
        .await
        .unwrap();
    let gwinfo = encode(&Packet::GwInfo {
        gw_id: 66,
        gw_addr: &[],
    });
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), s.recv_from(&mut buf))
        .await
        .expect("GWINFO")
        .unwrap();
    assert_eq!(&buf[..n], &gwinfo[..]);
}
