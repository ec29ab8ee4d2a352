//! A tiny MQTT 3.1.1 subscriber/publisher on rumqttc for checking what reaches the broker.
//!
//! URLs are `mqtt://HOST:PORT` (plain TCP) or `mqtts://HOST:PORT` (TLS; pass a [`ClientTls`]
//! in [`ClientOptions::tls`]). The TLS client uses rustls with the ring provider explicitly and
//! checks the server certificate against `HOST` (an IP host needs an `IP:` SAN).
//!
//! Every wait is bounded. Errors from the connection keep the [`rumqttc::ConnectionError`] in
//! their chain; [`connection_error`] digs it out for tests that expect a refusal.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, MqttOptions, Outgoing, QoS,
    SubscribeFilter, SubscribeReasonCode, TlsConfiguration, Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

use crate::tls::TlsMaterial;

/// Default bound for connecting (TCP + TLS + CONNECT/CONNACK) and for each acknowledgement.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Maximum MQTT packet size in and out (MQTT-SN allows messages up to 64 KiB).
const MAX_PACKET: usize = 256 * 1024;
/// Pause of the subscriber task after a connection error before polling (reconnecting) again.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// Request channel capacity of the helper clients.
const CHANNEL_CAP: usize = 64;

/// TLS settings of a client: the CA to trust and optionally a client certificate.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// PEM file with the CA certificate(s) to trust.
    pub ca_cert: PathBuf,
    /// PEM files (certificate chain, private key) to present, if any.
    pub client_auth: Option<(PathBuf, PathBuf)>,
}

impl ClientTls {
    /// Trusts the CA in `ca_cert`, no client certificate.
    pub fn new(ca_cert: impl Into<PathBuf>) -> Self {
        Self {
            ca_cert: ca_cert.into(),
            client_auth: None,
        }
    }

    /// Also presents this client certificate and key.
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_auth = Some((cert.into(), key.into()));
        self
    }

    /// Trusts the material's CA, without a client certificate.
    pub fn from_material(material: &TlsMaterial) -> Self {
        Self::new(&material.ca_cert)
    }

    /// Trusts the material's CA and presents its client certificate (`CN=client-1`).
    pub fn from_material_with_client_cert(material: &TlsMaterial) -> Self {
        Self::new(&material.ca_cert).with_client_cert(&material.client_cert, &material.client_key)
    }

    /// Builds the rustls client configuration (ring provider, safe default versions).
    pub fn rustls_config(&self) -> Result<Arc<ClientConfig>> {
        let mut roots = RootCertStore::empty();
        for cert in read_certs(&self.ca_cert)? {
            roots
                .add(cert)
                .context("add CA certificate to root store")?;
        }
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .context("rustls protocol versions")?
                .with_root_certificates(roots);
        let config = match &self.client_auth {
            Some((cert, key)) => {
                let key = PrivateKeyDer::from_pem_file(key)
                    .with_context(|| format!("read private key {}", key.display()))?;
                builder
                    .with_client_auth_cert(read_certs(cert)?, key)
                    .context("client certificate")?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// Connection settings of the helper clients.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// TLS settings; required for `mqtts://` URLs.
    pub tls: Option<ClientTls>,
    /// MQTT clean session flag (default true; false needs a non-empty client id).
    pub clean_session: bool,
    /// MQTT keep-alive (default 30 s; must be 0 or ≥ 1 s).
    pub keep_alive: Duration,
    /// Bound for connecting and for each acknowledgement (default 5 s).
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            tls: None,
            clean_session: true,
            keep_alive: Duration::from_secs(30),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl ClientOptions {
    /// Default options with TLS settings.
    pub fn tls(tls: ClientTls) -> Self {
        Self {
            tls: Some(tls),
            ..Self::default()
        }
    }
}

/// One PUBLISH received by a [`Subscriber`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Topic name.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// QoS of the delivery.
    pub qos: QoS,
    /// Retain flag (set for retained messages delivered on subscribe).
    pub retain: bool,
    /// DUP flag (set by mosquitto on redelivery).
    pub dup: bool,
}

impl Received {
    /// The payload as (lossy) UTF-8.
    pub fn payload_str(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// Host, port and whether TLS is used, parsed from `mqtt://` / `mqtts://` URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or IP address (also the name checked against the server certificate).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `mqtts://` (or `ssl://`).
    pub tls: bool,
}

impl BrokerUrl {
    /// Parses `mqtt://HOST:PORT`, `tcp://HOST:PORT`, `mqtts://HOST:PORT` or `ssl://HOST:PORT`.
    pub fn parse(url: &str) -> Result<Self> {
        let (scheme, rest) = url
            .split_once("://")
            .with_context(|| format!("broker URL without scheme: {url:?}"))?;
        let tls = match scheme {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => bail!("unsupported broker URL scheme {other:?} in {url:?}"),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest
            .rsplit_once(':')
            .with_context(|| format!("broker URL without port: {url:?}"))?;
        let port = port
            .parse()
            .with_context(|| format!("bad port in broker URL {url:?}"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            bail!("broker URL without host: {url:?}");
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

/// rumqttc options for `url` and `client_id` (max packet size raised to 256 KiB).
pub fn mqtt_options(url: &str, client_id: &str, options: &ClientOptions) -> Result<MqttOptions> {
    let parsed = BrokerUrl::parse(url)?;
    if !options.clean_session && client_id.is_empty() {
        bail!("clean_session = false needs a client id");
    }
    if !options.keep_alive.is_zero() && options.keep_alive < Duration::from_secs(1) {
        bail!("keep-alive must be 0 or at least 1 s");
    }
    let mut mqtt = MqttOptions::new(client_id, parsed.host, parsed.port);
    mqtt.set_clean_session(options.clean_session)
        .set_keep_alive(options.keep_alive)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    match (parsed.tls, &options.tls) {
        (true, Some(tls)) => {
            mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                tls.rustls_config()?,
            )));
        }
        (true, None) => bail!("{url} needs ClientOptions::tls"),
        (false, Some(_)) => bail!("TLS options given for the plain URL {url}"),
        (false, None) => {}
    }
    Ok(mqtt)
}

/// A connected client whose event loop the caller polls (see [`connect`]).
pub struct Connection {
    /// Request handle.
    pub client: AsyncClient,
    /// The event loop; nothing happens unless it is polled.
    pub eventloop: EventLoop,
    /// `session_present` of the CONNACK.
    pub session_present: bool,
    /// Bound for each wait of the helper methods.
    timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("client_id", &self.eventloop.mqtt_options.client_id())
            .field("session_present", &self.session_present)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Polls until the next incoming PUBLISH (acknowledged automatically), or `None` after
    /// `limit` or on a connection error.
    pub async fn next_publish(&mut self, limit: Duration) -> Option<Received> {
        timeout(limit, async {
            loop {
                match self.eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::Publish(publish))) => {
                        return Some(received(&publish));
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Sends DISCONNECT (no Will) and polls until it is flushed.
    pub async fn disconnect(mut self) -> Result<()> {
        disconnect(&self.client, &mut self.eventloop, self.timeout).await
    }
}

/// Connects and polls until the CONNACK. Fails on any connection error (refused, TLS, I/O) or
/// after `options.timeout`.
pub async fn connect(url: &str, client_id: &str, options: &ClientOptions) -> Result<Connection> {
    let (client, mut eventloop) =
        AsyncClient::new(mqtt_options(url, client_id, options)?, CHANNEL_CAP);
    let session_present = timeout(options.timeout, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    return Ok::<_, ConnectionError>(ack.session_present);
                }
                Ok(_) => {}
                Err(error) => return Err(error),
            }
        }
    })
    .await
    .map_err(|_| anyhow!("no CONNACK from {url} within {:?}", options.timeout))?
    .map_err(|error| anyhow::Error::new(error).context(format!("connect to {url}")))?;
    Ok(Connection {
        client,
        eventloop,
        session_present,
        timeout: options.timeout,
    })
}

/// The rumqttc connection error in an error's chain, if there is one.
pub fn connection_error(error: &anyhow::Error) -> Option<&ConnectionError> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<ConnectionError>())
}

/// A unique client id `<prefix>-<pid>-<n>` (≤ 23 octets for short prefixes).
pub fn unique_client_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Publishes one message over a fresh connection, waits for its acknowledgement (PUBACK for
/// QoS 1, PUBCOMP for QoS 2, the flushed PUBLISH for QoS 0) and disconnects gracefully.
pub async fn publish(url: &str, topic: &str, payload: &[u8], qos: QoS, retain: bool) -> Result<()> {
    publish_with(url, topic, payload, qos, retain, &ClientOptions::default()).await
}

/// [`publish`] with explicit [`ClientOptions`] (for example TLS).
pub async fn publish_with(
    url: &str,
    topic: &str,
    payload: &[u8],
    qos: QoS,
    retain: bool,
    options: &ClientOptions,
) -> Result<()> {
    let Connection {
        client,
        mut eventloop,
        ..
    } = connect(url, &unique_client_id("sn-pub"), options).await?;
    client
        .publish(topic, qos, retain, payload.to_vec())
        .await
        .context("queue PUBLISH")?;
    timeout(options.timeout, async {
        loop {
            match eventloop.poll().await? {
                Event::Outgoing(Outgoing::Publish(_)) if qos == QoS::AtMostOnce => break,
                Event::Incoming(Incoming::PubAck(_)) if qos == QoS::AtLeastOnce => break,
                Event::Incoming(Incoming::PubComp(_)) if qos == QoS::ExactlyOnce => break,
                _ => {}
            }
        }
        Ok::<_, ConnectionError>(())
    })
    .await
    .map_err(|_| anyhow!("publish to {topic} on {url} not acknowledged"))?
    .map_err(|error| anyhow::Error::new(error).context(format!("publish to {topic} on {url}")))?;
    disconnect(&client, &mut eventloop, options.timeout).await
}

/// Sends DISCONNECT and polls until it is flushed (no Will is published).
async fn disconnect(
    client: &AsyncClient,
    eventloop: &mut EventLoop,
    limit: Duration,
) -> Result<()> {
    client.try_disconnect().context("queue DISCONNECT")?;
    timeout(limit, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .map_err(|_| anyhow!("DISCONNECT not sent within {limit:?}"))
}

/// A connected MQTT client that collects every PUBLISH it receives.
///
/// A background task owns the event loop and only polls it. After a connection error it
/// backs off 100 ms and reconnects; when the new CONNACK says `session_present = false` it
/// subscribes again to the same filters. [`Subscriber::wait_resubscribed`] waits for that.
#[derive(Debug)]
pub struct Subscriber {
    client: AsyncClient,
    messages: mpsc::UnboundedReceiver<Received>,
    subacks: watch::Receiver<u64>,
    subacks_seen: u64,
    task: Option<JoinHandle<()>>,
}

impl Subscriber {
    /// Connects to `url` (plain) as `client_id`, subscribes to `filters` and waits for the
    /// SUBACK (any refused filter is an error).
    pub async fn connect(url: &str, client_id: &str, filters: &[(&str, QoS)]) -> Result<Self> {
        Self::connect_with(url, client_id, filters, &ClientOptions::default()).await
    }

    /// [`Subscriber::connect`] with explicit [`ClientOptions`] (TLS, persistent session).
    pub async fn connect_with(
        url: &str,
        client_id: &str,
        filters: &[(&str, QoS)],
        options: &ClientOptions,
    ) -> Result<Self> {
        if filters.is_empty() {
            bail!("Subscriber needs at least one filter");
        }
        let Connection {
            client,
            mut eventloop,
            ..
        } = connect(url, client_id, options).await?;
        let filters: Vec<SubscribeFilter> = filters
            .iter()
            .map(|(filter, qos)| SubscribeFilter::new((*filter).to_owned(), *qos))
            .collect();
        client
            .try_subscribe_many(filters.clone())
            .context("queue SUBSCRIBE")?;

        let (message_tx, messages) = mpsc::unbounded_channel();
        timeout(options.timeout, async {
            loop {
                match eventloop.poll().await? {
                    Event::Incoming(Incoming::SubAck(ack)) => {
                        if let Some(position) = ack
                            .return_codes
                            .iter()
                            .position(|code| matches!(code, SubscribeReasonCode::Failure))
                        {
                            bail!("broker refused filter {:?}", filters.get(position));
                        }
                        return Ok(());
                    }
                    Event::Incoming(Incoming::Publish(publish)) => {
                        // Retained messages may arrive right after the SUBACK; keep any early one.
                        let _ = message_tx.send(received(&publish));
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no SUBACK from {url} within {:?}", options.timeout))??;

        let (suback_tx, subacks) = watch::channel(1);
        let task = tokio::spawn(run(
            eventloop,
            client.clone(),
            filters,
            message_tx,
            suback_tx,
        ));
        Ok(Self {
            client,
            messages,
            subacks,
            subacks_seen: 1,
            task: Some(task),
        })
    }

    /// The next received message, or `None` after `limit`.
    pub async fn next_message(&mut self, limit: Duration) -> Option<Received> {
        timeout(limit, self.messages.recv()).await.ok().flatten()
    }

    /// Exactly the next `n` messages, all within `limit`; the error lists what did arrive.
    pub async fn expect_messages(&mut self, n: usize, limit: Duration) -> Result<Vec<Received>> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_message(left).await {
                Some(message) => got.push(message),
                None => bail!(
                    "expected {n} messages within {limit:?}, got {}: {got:?}",
                    got.len()
                ),
            }
        }
        Ok(got)
    }

    /// Fails if any message arrives within `window`.
    pub async fn expect_no_message(&mut self, window: Duration) -> Result<()> {
        match self.next_message(window).await {
            Some(message) => bail!("unexpected message: {message:?}"),
            None => Ok(()),
        }
    }

    /// Waits until the subscriber task has subscribed again after a reconnect (a SUBACK newer
    /// than the last one this method or `connect` saw), for example after a broker restart.
    pub async fn wait_resubscribed(&mut self, limit: Duration) -> Result<()> {
        let seen = self.subacks_seen;
        let result = timeout(limit, self.subacks.wait_for(|count| *count > seen)).await;
        match result {
            Ok(Ok(count)) => {
                self.subacks_seen = *count;
                Ok(())
            }
            Ok(Err(_)) => bail!("subscriber task ended"),
            Err(_) => bail!("not resubscribed within {limit:?}"),
        }
    }

    /// The client handle (for example to publish from the same connection; use `try_*`).
    pub fn client(&self) -> &AsyncClient {
        &self.client
    }

    /// Disconnects gracefully (no Will) and waits ≤ 5 s for the task to end.
    pub async fn disconnect(mut self) -> Result<()> {
        self.client.try_disconnect().context("queue DISCONNECT")?;
        if let Some(task) = self.task.take() {
            timeout(DEFAULT_TIMEOUT, task)
                .await
                .map_err(|_| anyhow!("subscriber task did not end after DISCONNECT"))?
                .context("subscriber task")?;
        }
        Ok(())
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The subscriber's polling task. It only polls; commands use `try_*` (a polling task that
/// also awaited a request on a full rumqttc request channel would deadlock).
async fn run(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<SubscribeFilter>,
    messages: mpsc::UnboundedSender<Received>,
    subacks: watch::Sender<u64>,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::Publish(publish))) => {
                let _ = messages.send(received(&publish));
            }
            Ok(Event::Incoming(Incoming::ConnAck(ack))) if !ack.session_present => {
                // Resubscribe after a reconnect that lost the session; best effort, a full
                // channel shows up as a missing SUBACK in `wait_resubscribed`.
                let _ = client.try_subscribe_many(filters.clone());
            }
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                // The broker kept the session and its subscriptions.
                subacks.send_modify(|count| *count += 1);
            }
            Ok(Event::Incoming(Incoming::SubAck(_))) => subacks.send_modify(|count| *count += 1),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(_) => sleep(RECONNECT_BACKOFF).await,
        }
    }
}

/// Converts a rumqttc PUBLISH.
fn received(publish: &rumqttc::Publish) -> Received {
    Received {
        topic: publish.topic.clone(),
        payload: publish.payload.to_vec(),
        qos: publish.qos,
        retain: publish.retain,
        dup: publish.dup,
    }
}

/// Reads every certificate in a PEM file (at least one).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("open {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parse certificates in {}", path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_urls() {
        let plain = BrokerUrl::parse("mqtt://127.0.0.1:1234").unwrap();
        assert_eq!(
            plain,
            BrokerUrl {
                host: "127.0.0.1".into(),
                port: 1234,
                tls: false
            }
        );
        let tls = BrokerUrl::parse("mqtts://localhost:8883/").unwrap();
        assert!(tls.tls);
        assert_eq!(tls.host, "localhost");
        assert!(BrokerUrl::parse("http://x:1").is_err());
        assert!(BrokerUrl::parse("mqtt://x").is_err());
        assert!(BrokerUrl::parse("mqtt://:1").is_err());
    }

    #[test]
    fn tls_url_without_tls_options_is_an_error() {
        assert!(mqtt_options("mqtts://127.0.0.1:1", "c", &ClientOptions::default()).is_err());
    }
}
