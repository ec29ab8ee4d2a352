//! Why the broker cannot be reached, said in words an operator can act on: a wrong password, a
//! CA that did not sign the broker's certificate, a plain `mqtt://` URL pointed at a TLS port,
//! and nothing listening. Each against a real mosquitto configured that way; `/healthz` names
//! the broker, the mode, the reason with a hint and the next try, and `/metrics` counts the
//! failures by reason.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use gateway::admin_client::{self, AdminError};
use gateway::core::config::Credentials;
use gateway::io::config::TlsConfig;
use sn_tests::{Mosquitto, MosquittoOptions, TestGateway, TlsMaterial};

/// How long the gateway may take to fail its first attempts.
const WAIT: Duration = Duration::from_secs(10);

/// Starts a gateway towards `url`, `tune`d, with its HTTP endpoint on a free port, and waits
/// until `/healthz` gives a reason for `reason`; returns the body and `/metrics`.
async fn unreachable_because(
    url: &str,
    tune: impl FnOnce(&mut gateway::core::config::GatewayConfig, &mut gateway::io::config::IoConfig),
    reason: &str,
) -> (String, String) {
    let (mut core, mut io) = sn_tests::gateway::test_settings(url).unwrap();
    io.http = Some("127.0.0.1:0".parse().unwrap());
    tune(&mut core, &mut io);
    let gw = TestGateway::start_with(core, io).await.unwrap();
    let addr = gw.http_addr().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let want = format!("reason=\"{reason}\"}}");
    loop {
        let health = match admin_client::request(addr, "GET", "/healthz").await {
            Ok(body) => panic!("healthy: {}", String::from_utf8_lossy(&body)),
            Err(AdminError::Status { status, body, .. }) => {
                assert_eq!(status, 503);
                body
            }
            Err(e) => panic!("/healthz: {e}"),
        };
        let metrics = String::from_utf8(
            admin_client::request(addr, "GET", "/metrics")
                .await
                .unwrap(),
        )
        .unwrap();
        let counted = metrics
            .lines()
            .any(|l| l.contains(&want) && !l.ends_with(" 0"));
        if counted && health.contains("is unreachable") {
            gw.stop().await;
            return (health, metrics);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {reason} failure within {WAIT:?}: {health}\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn says(health: &str, parts: &[&str]) {
    for p in parts {
        assert!(health.contains(p), "/healthz lacks {p:?}: {health}");
    }
}

#[tokio::test]
async fn a_wrong_password_is_named_with_the_credentials_to_check() {
    // The password file is readable by the user mosquitto drops its privileges to.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, "").unwrap();
    let status = std::process::Command::new("mosquitto_passwd")
        .args(["-b"])
        .arg(&passwd)
        .args(["gw", "secret"])
        .status()
        .expect("mosquitto_passwd");
    assert!(status.success());
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644)).unwrap();
    let broker = Mosquitto::start_with(MosquittoOptions {
        extra_config: vec![
            "allow_anonymous false".into(),
            format!("password_file {}", passwd.display()),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let (health, _) = unreachable_because(
        &broker.url(),
        |core, _| {
            core.upstream.credentials = Some(Credentials {
                username: "gw".into(),
                password: Some("wrong".into()),
            })
        },
        // mosquitto answers a wrong password with "not authorised" (return code 5).
        "not_authorized",
    )
    .await;
    says(
        &health,
        &[
            &broker.url(),
            "(transparent mode)",
            "not authorised",
            "wrong username or password",
            "check upstream.username/password",
            "next try",
        ],
    );
}

#[tokio::test]
async fn a_ca_that_did_not_sign_the_brokers_certificate_is_named() {
    let material = TlsMaterial::generate_temp().unwrap();
    let other = TlsMaterial::generate_temp().unwrap();
    let broker = Mosquitto::start_with(MosquittoOptions {
        tls: Some(material.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let (health, _) = unreachable_because(
        &broker.tls_url().unwrap(),
        |_, io| {
            io.upstream.tls = TlsConfig {
                ca_file: Some(other.ca_cert.clone()),
                ..Default::default()
            }
        },
        "untrusted_certificate",
    )
    .await;
    says(&health, &["not trusted", "check upstream.tls.ca_file"]);
}

#[tokio::test]
async fn a_plain_url_pointed_at_a_tls_port_is_named() {
    let material = TlsMaterial::generate_temp().unwrap();
    let broker = Mosquitto::start_with(MosquittoOptions {
        tls: Some(material),
        ..Default::default()
    })
    .await
    .unwrap();
    let port = broker.tls_port().unwrap();
    let (health, _) = unreachable_because(
        &format!("mqtt://127.0.0.1:{port}"),
        |_, _| {},
        "port_expects_tls",
    )
    .await;
    says(&health, &["expects TLS", "use mqtts://"]);
}

#[tokio::test]
async fn nothing_listening_is_named_and_counted() {
    let port = sn_tests::ports::free_tcp_port().unwrap();
    let (health, metrics) = unreachable_because(
        &format!("mqtt://127.0.0.1:{port}"),
        |_, _| {},
        "connection_refused",
    )
    .await;
    says(
        &health,
        &["connection was refused", "is the broker running?"],
    );
    assert!(
        metrics.contains("# TYPE mqttsn_gateway_upstream_connect_failures_total counter"),
        "{metrics}"
    );
}
