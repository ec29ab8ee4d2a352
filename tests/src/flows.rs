//! End-to-end flows that more than one test file checks the same way (e.g. in both upstream
//! modes): each drives real motes against a running gateway and a real broker, every wait
//! bounded, and fails with the reason.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rumqttc::QoS as MqttQoS;
use sn_codec::{Packet, ReturnCode};

use crate::{SnClient, Subscriber};

/// Two motes connect with a Will on `will/<id>` and a 1 s keep-alive; `mote-w2` disconnects
/// cleanly, `mote-w1` falls silent. Exactly one Will must reach the broker: the silent
/// mote's, once it is Lost (1.5 × its keep-alive), and no other within 1.5 s after it.
pub async fn will_only_for_the_lost_mote(broker_url: &str, gateway: SocketAddr) -> Result<()> {
    let wait = Duration::from_secs(5);
    let mut sub = Subscriber::connect(
        broker_url,
        "will-watch",
        &[("will/#", MqttQoS::AtLeastOnce)],
    )
    .await?;
    for (id, graceful) in [("mote-w1", false), ("mote-w2", true)] {
        let m = SnClient::new(gateway).await?;
        let rc = m
            .connect_with_will(id, 1, &format!("will/{id}"), b"gone")
            .await?;
        ensure!(rc == ReturnCode::Accepted, "{id}: CONNACK {rc}");
        if graceful {
            m.send(&Packet::Disconnect { duration: None }).await?;
            m.expect(&Packet::Disconnect { duration: None }).await?;
        }
    }
    let r = sub
        .next_message(wait)
        .await
        .context("no Will of the silent mote")?;
    ensure!(
        (r.topic.as_str(), r.payload_str().as_str()) == ("will/mote-w1", "gone"),
        "unexpected message {} {:?}",
        r.topic,
        r.payload_str()
    );
    sub.expect_no_message(Duration::from_millis(1500)).await
}
