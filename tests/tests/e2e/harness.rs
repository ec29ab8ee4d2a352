//! Exercises the shared harness for real: mosquitto per test, the MQTT helper, stop/restart on
//! the same port, TLS listeners with the generated material.

use std::time::Duration;

use rumqttc::{ConnectionError, QoS};
use sn_tests::interop::{self, InteropSubscriber, TopicArg};
use sn_tests::mqtt::{self, connection_error};
use sn_tests::{
    ClientOptions, ClientTls, Mosquitto, MosquittoOptions, Subscriber, TlsMaterial, publish,
    publish_with,
};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_receives_qos1_message_published_by_helper() {
    let broker = Mosquitto::start().await.unwrap();
    assert_ne!(broker.port(), 1883);
    assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{}", broker.port()));

    let mut sub = Subscriber::connect(&broker.url(), "h-sub-1", &[("sn/test/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    publish(
        &broker.url(),
        "sn/test/a",
        b"hello",
        QoS::AtLeastOnce,
        false,
    )
    .await
    .unwrap();

    let got = sub.expect_messages(1, WAIT).await.unwrap();
    assert_eq!(got[0].topic, "sn/test/a");
    assert_eq!(got[0].payload_str(), "hello");
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
    assert!(!got[0].retain);
    assert!(!got[0].dup);
    sub.expect_no_message(Duration::from_millis(100))
        .await
        .unwrap();

    broker
        .wait_for_log("Received PUBLISH from", WAIT)
        .await
        .unwrap();
    sub.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_and_retained_messages_round_trip() {
    let broker = Mosquitto::start().await.unwrap();
    publish(
        &broker.url(),
        "sn/retained",
        b"kept",
        QoS::AtLeastOnce,
        true,
    )
    .await
    .unwrap();

    let mut sub = Subscriber::connect(
        &broker.url(),
        "h-sub-2",
        &[
            ("sn/retained", QoS::AtLeastOnce),
            ("sn/q2", QoS::ExactlyOnce),
        ],
    )
    .await
    .unwrap();
    let retained = sub.expect_messages(1, WAIT).await.unwrap();
    assert_eq!(retained[0].payload_str(), "kept");
    assert!(retained[0].retain);

    publish(&broker.url(), "sn/q2", b"exactly", QoS::ExactlyOnce, false)
        .await
        .unwrap();
    let got = sub.expect_messages(1, WAIT).await.unwrap();
    assert_eq!(got[0].topic, "sn/q2");
    assert_eq!(got[0].qos, QoS::ExactlyOnce);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_restart_keep_the_port() {
    let mut broker = Mosquitto::start().await.unwrap();
    let port = broker.port();
    let mut sub = Subscriber::connect(&broker.url(), "h-sub-3", &[("sn/r", QoS::AtLeastOnce)])
        .await
        .unwrap();

    broker.stop().await.unwrap();
    assert!(!broker.is_running());
    let err = publish(&broker.url(), "sn/r", b"x", QoS::AtLeastOnce, false)
        .await
        .unwrap_err();
    assert!(
        matches!(connection_error(&err), Some(ConnectionError::Io(_))),
        "{err:#}"
    );

    broker.restart().await.unwrap();
    assert!(broker.is_running());
    assert_eq!(broker.port(), port);
    // The subscriber reconnects by itself and subscribes again (no persistence: new session).
    sub.wait_resubscribed(Duration::from_secs(10))
        .await
        .unwrap();
    publish(&broker.url(), "sn/r", b"after", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let got = sub.expect_messages(1, WAIT).await.unwrap();
    assert_eq!(got[0].payload_str(), "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_broker_keeps_sessions_across_restart() {
    let mut broker = Mosquitto::start_with(MosquittoOptions {
        persistence: true,
        ..MosquittoOptions::default()
    })
    .await
    .unwrap();
    let persistent = ClientOptions {
        clean_session: false,
        ..ClientOptions::default()
    };
    let sub = Subscriber::connect_with(
        &broker.url(),
        "h-persist",
        &[("sn/p", QoS::AtLeastOnce)],
        &persistent,
    )
    .await
    .unwrap();
    sub.disconnect().await.unwrap();

    broker.stop().await.unwrap();
    broker.restart().await.unwrap();
    publish(&broker.url(), "sn/p", b"queued", QoS::AtLeastOnce, false)
        .await
        .unwrap();

    let mut conn = mqtt::connect(&broker.url(), "h-persist", &persistent)
        .await
        .unwrap();
    assert!(conn.session_present, "session lost across restart");
    let queued = conn.next_publish(WAIT).await.expect("queued message");
    assert_eq!(queued.payload_str(), "queued");
    conn.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_exchanges_messages_with_generated_ca() {
    let material = TlsMaterial::generate_temp().unwrap();
    let broker = Mosquitto::start_with(MosquittoOptions {
        tls: Some(material.clone()),
        ..MosquittoOptions::default()
    })
    .await
    .unwrap();
    let tls_url = broker.tls_url().unwrap();
    assert_eq!(
        tls_url,
        format!("mqtts://127.0.0.1:{}", broker.tls_port().unwrap())
    );
    let options = ClientOptions::tls(ClientTls::from_material(&material));

    let mut sub = Subscriber::connect_with(
        &tls_url,
        "h-tls-sub",
        &[("sn/tls", QoS::AtLeastOnce)],
        &options,
    )
    .await
    .unwrap();
    publish_with(
        &tls_url,
        "sn/tls",
        b"secret",
        QoS::AtLeastOnce,
        false,
        &options,
    )
    .await
    .unwrap();
    let got = sub.expect_messages(1, WAIT).await.unwrap();
    assert_eq!(got[0].payload_str(), "secret");

    // The plain listener still works next to the TLS one.
    publish(&broker.url(), "sn/tls", b"plain", QoS::AtMostOnce, false)
        .await
        .unwrap();
    let got = sub.expect_messages(1, WAIT).await.unwrap();
    assert_eq!(got[0].payload_str(), "plain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_refuses_certificate_for_another_host() {
    let material = TlsMaterial::generate_temp().unwrap();
    let broker = Mosquitto::start_with(MosquittoOptions {
        tls: Some(material.with_wrong_host_server()),
        ..MosquittoOptions::default()
    })
    .await
    .unwrap();
    let options = ClientOptions::tls(ClientTls::from_material(&material));

    let err = mqtt::connect(&broker.tls_url().unwrap(), "h-wrong-host", &options)
        .await
        .unwrap_err();
    let cause = connection_error(&err).expect("a connection error");
    assert!(matches!(cause, ConnectionError::Tls(_)), "{err:#}");
    let text = format!("{err:#}");
    assert!(text.contains("not valid for name"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificate_admits_only_clients_with_one() {
    let material = TlsMaterial::generate_temp().unwrap();
    let broker = Mosquitto::start_with(MosquittoOptions {
        tls: Some(material.clone()),
        require_certificate: true,
        ..MosquittoOptions::default()
    })
    .await
    .unwrap();
    let tls_url = broker.tls_url().unwrap();

    let with_cert = ClientOptions::tls(ClientTls::from_material_with_client_cert(&material));
    let mut sub = Subscriber::connect_with(
        &tls_url,
        "h-cert-sub",
        &[("sn/cert", QoS::AtLeastOnce)],
        &with_cert,
    )
    .await
    .unwrap();
    publish_with(
        &tls_url,
        "sn/cert",
        b"ok",
        QoS::AtLeastOnce,
        false,
        &with_cert,
    )
    .await
    .unwrap();
    assert_eq!(
        sub.expect_messages(1, WAIT).await.unwrap()[0].payload_str(),
        "ok"
    );

    // Without a certificate the server aborts the handshake; with TLS 1.3 the client may only
    // notice when reading the CONNACK, so any connection error counts as refused.
    let without_cert = ClientOptions::tls(ClientTls::from_material(&material));
    let err = mqtt::connect(&tls_url, "h-no-cert", &without_cert)
        .await
        .unwrap_err();
    assert!(connection_error(&err).is_some(), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_start_reports_mosquitto_output() {
    let err = Mosquitto::start_with(MosquittoOptions {
        extra_config: vec!["bogus_option 1".into()],
        ..MosquittoOptions::default()
    })
    .await
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("bogus_option"), "{text}");
}

/// Receives one datagram on the scripted gateway socket (bounded).
async fn recv(sock: &tokio::net::UdpSocket) -> (Vec<u8>, std::net::SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (n, from) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
        .await
        .expect("datagram from the interop driver")
        .unwrap();
    buf.truncate(n);
    (buf, from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_driver_publishes_qos1_to_a_scripted_gateway() {
    if !interop::require().await.unwrap() {
        return;
    }
    let help = interop::run(&["--help"], WAIT).await.unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("pub"));

    let gw = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = gw.local_addr().unwrap().port();
    let driver =
        tokio::spawn(async move { interop::publish(port, TopicArg::Name("ab"), 1, "hi").await });

    let (connect, client) = recv(&gw).await;
    assert_eq!(connect[1], 0x04, "CONNECT: {connect:02x?}");
    gw.send_to(&[3, 0x05, 0], client).await.unwrap(); // CONNACK accepted
    let (publish, _) = recv(&gw).await;
    // len, PUBLISH, flags QoS 1 + short topic, topic "ab", msg id, payload
    assert_eq!(&publish[..4], &[9, 0x0c, 0x22, b'a'], "{publish:02x?}");
    assert_eq!(publish[4], b'b');
    assert_eq!(&publish[7..], b"hi");
    let ack = [7, 0x0d, b'a', b'b', publish[5], publish[6], 0];
    gw.send_to(&ack, client).await.unwrap(); // PUBACK accepted
    let (disconnect, _) = recv(&gw).await;
    assert_eq!(disconnect, [2, 0x18]);
    gw.send_to(&[2, 0x18], client).await.unwrap();

    driver.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_subscriber_acks_qos1_from_a_scripted_gateway() {
    if !interop::require().await.unwrap() {
        return;
    }
    let gw = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = gw.local_addr().unwrap().port();
    let mut sub =
        InteropSubscriber::spawn(port, &[TopicArg::Predefined(7)], 1, 1, 10, &[]).unwrap();

    let (connect, client) = recv(&gw).await;
    assert_eq!(connect[1], 0x04);
    gw.send_to(&[3, 0x05, 0], client).await.unwrap();
    let (subscribe, _) = recv(&gw).await;
    // len 7, SUBSCRIBE, flags QoS 1 + predefined, msg id, topic id 7
    assert_eq!(subscribe[..3], [7, 0x12, 0x21], "{subscribe:02x?}");
    assert_eq!(subscribe[5..], [0, 7]);
    let suback = [8, 0x13, 0x20, 0, 7, subscribe[3], subscribe[4], 0];
    gw.send_to(&suback, client).await.unwrap();
    sub.wait_ready(WAIT).await.unwrap();

    // PUBLISH QoS 1, predefined topic 7, msg id 0x0102, payload "x"
    gw.send_to(&[8, 0x0c, 0x21, 0, 7, 1, 2, b'x'], client)
        .await
        .unwrap();
    let (puback, _) = recv(&gw).await;
    assert_eq!(puback, [7, 0x0d, 0, 7, 1, 2, 0]);
    assert_eq!(
        sub.next_line(WAIT).await.unwrap().as_deref(),
        Some("predefined:7\t1\t0\tx")
    );
    let (disconnect, _) = recv(&gw).await;
    assert_eq!(disconnect, [2, 0x18]);
    gw.send_to(&[2, 0x18], client).await.unwrap();
    let (status, rest) = sub.finish(WAIT).await.unwrap();
    assert!(status.success(), "{status}");
    assert!(rest.is_empty(), "{rest:?}");
}
