//! The in-process MQTT broker (rumqttd) for a zero-setup start: with the upstream URL
//! `embedded://ADDR:PORT` the gateway starts it on that address (loopback by default) and
//! connects to it like to any broker, so local applications and `mosquitto_sub` see the motes'
//! traffic at once. Built only with the `embedded-broker` cargo feature.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedBrokerError {
    /// The address is taken (often by another MQTT broker) or not local.
    ///
    /// **Fault:** the operator. **Recovery:** stop the other broker, or point the gateway at it
    /// with `--upstream mqtt://ADDR:PORT`.
    #[error(
        "the embedded broker cannot listen on {addr}: {source} (is another MQTT broker running \
         there? use it with --upstream mqtt://{addr})"
    )]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The broker's configuration was rejected, or it did not come up in time.
    ///
    /// **Fault:** ours. **Recovery:** report it; use an external broker meanwhile.
    #[error("the embedded broker failed to start: {0}")]
    Start(String),
}

/// Starts the broker on `addr` in its own threads and waits (at most 5 s) until it accepts
/// connections. It runs until the process ends.
pub fn start(addr: SocketAddr, max_payload_size: usize) -> Result<(), EmbeddedBrokerError> {
    // Probe the address first, for a clear error instead of a failure deep inside rumqttd.
    drop(TcpListener::bind(addr).map_err(|source| EmbeddedBrokerError::Bind { addr, source })?);
    let config = format!(
        r#"
        id = 0
        [router]
        id = 0
        max_connections = 20010
        max_outgoing_packet_count = 200
        max_segment_size = 104857600
        max_segment_count = 10
        [v4.1]
        name = "embedded"
        listen = "{addr}"
        next_connection_delay_ms = 0
        [v4.1.connections]
        connection_timeout_ms = 60000
        max_payload_size = {max_payload_size}
        max_inflight_count = 100
        dynamic_filters = true
        "#
    );
    let config: rumqttd::Config =
        toml::from_str(&config).map_err(|e| EmbeddedBrokerError::Start(e.to_string()))?;
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(|e| EmbeddedBrokerError::Start(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(EmbeddedBrokerError::Start(format!(
                "not accepting connections on {addr} after 5 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::info!(%addr, "embedded MQTT broker listening");
    Ok(())
}
