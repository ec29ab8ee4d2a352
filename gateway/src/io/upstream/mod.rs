//! Upstream connectors: execute [`UpstreamCmd`]s and report [`UpstreamEvent`]s.
//!
//! [`UpstreamConnector`] is the seam between the drive loop and the upstream broker: the real
//! [`RumqttcConnector`] runs one rumqttc event loop per link, tests plug in fakes, and an
//! aggregating mode can wrap either. The contract a connector fulfils is in
//! [`crate::core::upstream`].
//!
//! # How [`RumqttcConnector`] works
//!
//! (`docs/architecture.md`, "The rumqttc connector", explains why.)
//!
//! - `Open` spawns one tokio task per [`LinkId`] owning a rumqttc `EventLoop` for the link's
//!   whole life (a new event loop would lose rumqttc's pending state). rumqttc makes each
//!   connection; the task then drives it with rumqttc's protocol state and framing, one flush
//!   per turn (see `link`). After every error it reports `LinkDown` (or `Refused`) and sleeps
//!   an exponential backoff with jitter before connecting again.
//! - Every other command goes into the link's outbox, in order, and wakes the task, which
//!   sends it when the connection's inflight window has room; [`UpstreamConnector::execute`]
//!   never waits.
//! - Packet ids are mapped back to tokens by a per-link `Correlator` (request-order FIFOs:
//!   rumqttc reports a publish's packet id only later, in request order); incoming QoS 2
//!   duplicates, which rumqttc hands over every time, are dropped until PUBREL.
//! - Incoming messages are acknowledged only by `Ack` (rumqttc's manual acks).
//! - rumqttc 0.25.1 forgets incoming QoS 2 ids on every disconnect and drops the connection on
//!   the PUBREL a broker re-sends after a session resumes (upstream issue #664: an endless
//!   reconnect loop). The link task re-registers the ids whose PUBREC it sent in rumqttc's state
//!   on every CONNACK with `session_present`, and a new link of the same ClientId takes them
//!   over from the previous one. Ids owed by another process (a gateway restart) cannot be
//!   known, so that case still loops until the broker session expires.
//! - `Close { graceful: true }` sends DISCONNECT (no Will) and waits for it to go out, at
//!   most `connect_timeout`; `graceful: false` drops the connection so the broker publishes
//!   the Will. Both end with `Closed`. An `Open` for a ClientId whose previous link is still
//!   closing connects only after that link has ended.
//!
//! Dropping the connector without [`RumqttcConnector::shutdown`] drops every connection
//! without DISCONNECT (like a crash: the broker publishes the Wills).

mod backoff;
mod correlator;
pub mod diagnosis;
mod link;
mod tls;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::{EventLoop, LastWill, MqttOptions, NetworkOptions, QoS, TlsConfiguration, Transport};
use tokio::sync::{Notify, mpsc::UnboundedSender, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::backoff::{Backoff, XorShift64};
use self::link::{Control, LinkCtl, LinkShared, LinkTask, OutCmd, lock};
use crate::core::config::{ClientIdentity, Credentials};
use crate::core::upstream::{BrokerRefusal, LinkId, MqttQos, UpstreamCmd, UpstreamEvent, Will};
use crate::io::config::UpstreamEndpoint;

/// Capacity of rumqttc's request channel, which the link task does not use (commands go
/// through the link's outbox).
const REQUEST_CHANNEL_CAPACITY: usize = 1;

/// Executes upstream commands. Implementations never block: they start the work and report
/// its outcome later as [`UpstreamEvent`]s on a channel they were given at construction.
pub trait UpstreamConnector {
    /// Starts executing `cmd` (contract: [`crate::core::upstream`]).
    fn execute(&mut self, cmd: UpstreamCmd);

    /// The operator reloaded the settings (SIGHUP): what was read from per-client certificate
    /// and key files is forgotten, so that links opened from now on read the files again (a
    /// certificate replaced in place takes effect). Open links keep theirs. The default does
    /// nothing.
    fn reload(&mut self) {}

    /// Why the broker cannot be reached, as far as the connector knows (the default knows
    /// nothing).
    fn report(&self) -> diagnosis::UpstreamReport {
        diagnosis::UpstreamReport::default()
    }
}

/// The broker's URL as the operator configured it (`mqtt://host:port`).
fn broker_url(endpoint: &UpstreamEndpoint) -> String {
    let scheme = match endpoint.scheme {
        crate::io::config::Scheme::Mqtts => "mqtts",
        crate::io::config::Scheme::Mqtt => "mqtt",
        crate::io::config::Scheme::Embedded => "embedded",
    };
    format!("{scheme}://{}:{}", endpoint.host, endpoint.port)
}

/// Why the connector could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamSetupError {
    /// `mqtts` without a CA file.
    ///
    /// **Fault:** `upstream.tls.ca_file` is missing; there is no system trust store to fall
    /// back on.
    /// **Recovery:** configure the CA certificate(s) that signed the broker's certificate.
    #[error("mqtts needs upstream.tls.ca_file (no system trust store is used)")]
    MissingCaFile,
    /// A TLS file could not be read or parsed.
    ///
    /// **Fault:** the file is missing, unreadable, or not PEM.
    /// **Recovery:** fix the path or the file's permissions or contents.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O or PEM error.
        source: std::io::Error,
    },
    /// A certificate file holds no usable certificate.
    ///
    /// **Fault:** the CA file or client certificate file contains no (valid) `CERTIFICATE`
    /// block.
    /// **Recovery:** point the setting at a PEM certificate file.
    #[error("no usable certificate in {path}")]
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
    /// The client key file holds no private key.
    ///
    /// **Fault:** no PKCS#8, PKCS#1 or SEC1 key block in the file.
    /// **Recovery:** point `upstream.tls.client_key` at the PEM private key.
    #[error("no private key in {path}")]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// Only one of client certificate and client key is configured.
    ///
    /// **Fault:** client authentication needs both.
    /// **Recovery:** set both `client_cert` and `client_key`, or neither.
    #[error("client_cert and client_key must be set together")]
    IncompleteClientAuth,
    /// The name to check the server certificate against is not a valid DNS name or IP address.
    ///
    /// **Fault:** `upstream.tls.server_name` (or the host) is malformed.
    /// **Recovery:** use the name the broker's certificate was issued for.
    #[error("invalid TLS server name {name:?}")]
    InvalidServerName {
        /// The rejected name.
        name: String,
    },
    /// rustls rejected the configuration (e.g. a key that does not match the certificate).
    ///
    /// **Fault:** inconsistent TLS material.
    /// **Recovery:** regenerate or re-pair the certificate and key.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The certificate verifier could not be built from the CA certificates.
    ///
    /// **Fault:** the CA file's certificates are unusable as trust anchors.
    /// **Recovery:** use a proper CA certificate.
    #[error("TLS verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// Per-link handles the connector keeps.
struct LinkHandle {
    client_id: String,
    shared: Arc<Mutex<LinkShared>>,
    /// Wakes the link task when commands are queued.
    wake: Arc<Notify>,
    ctl: watch::Sender<LinkCtl>,
    done: watch::Receiver<Vec<u16>>,
    task: JoinHandle<()>,
}

/// Links that may be connecting (TCP + TLS + MQTT CONNECT) at the same time. More would, after
/// a restart or a connect storm of thousands of motes in transparent mode, overflow the
/// broker's listen backlog: its kernel drops the SYNs, and the clients retry only a second
/// later (mosquitto's backlog is 100; cloud brokers also limit the connection rate).
pub const MAX_CONNECTING: usize = 64;

/// The real connector: one rumqttc (MQTT 3.1.1) connection per link, plain TCP or TLS.
///
/// [`UpstreamConnector::execute`] must be called from within a tokio runtime (it spawns the
/// link tasks).
pub struct RumqttcConnector {
    endpoint: UpstreamEndpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// TLS configurations of per-client certificates, built on first use (and again after a
    /// [`UpstreamConnector::reload`]).
    identity_tls: BTreeMap<ClientIdentity, Arc<rustls::ClientConfig>>,
    events: UnboundedSender<UpstreamEvent>,
    links: BTreeMap<LinkId, LinkHandle>,
    /// Tasks of closed links, until they have ended (awaited by `shutdown`).
    closing: Vec<JoinHandle<()>>,
    /// Per upstream ClientId, the end signal of its last closed link: the next `Open` waits
    /// for it and takes over its incoming QoS 2 ids awaiting PUBREL.
    previous: BTreeMap<String, watch::Receiver<Vec<u16>>>,
    seed: u64,
    opened: u64,
    /// Permits to connect, [`MAX_CONNECTING`] in all, held by a link from the start of a
    /// connection attempt until its CONNACK or failure.
    connecting: Arc<tokio::sync::Semaphore>,
    /// Failed connection attempts by kind, and the gateway link's last one.
    diagnosis: Arc<diagnosis::Diagnosis>,
    /// The broker's URL as the operator configured it (`mqtt://host:port`), for reports and
    /// log lines (one copy, shared by the link tasks).
    broker: Arc<str>,
}

impl RumqttcConnector {
    /// A connector to `endpoint` reporting on `events`. Loads the TLS material (for `mqtts`)
    /// once, here.
    pub fn new(
        endpoint: UpstreamEndpoint,
        events: UnboundedSender<UpstreamEvent>,
    ) -> Result<Self, UpstreamSetupError> {
        let tls = tls::client_config(&endpoint)?;
        // Jitter needs no cryptographic quality: the clock and the pid make links of different
        // gateways (and restarts) spread out.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = backoff::splitmix64(nanos ^ u64::from(std::process::id()));
        Ok(RumqttcConnector {
            tls,
            identity_tls: BTreeMap::new(),
            events,
            links: BTreeMap::new(),
            closing: Vec::new(),
            previous: BTreeMap::new(),
            seed,
            opened: 0,
            connecting: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTING)),
            diagnosis: Arc::default(),
            broker: broker_url(&endpoint).into(),
            endpoint,
        })
    }

    /// Closes every link gracefully (DISCONNECT, so no Will is published) and waits for the
    /// link tasks, at most `timeout`; tasks still running then are aborted.
    pub async fn shutdown(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            self.close(link, true, deadline);
        }
        let mut closing = std::mem::take(&mut self.closing);
        let joined = tokio::time::timeout_at(deadline + Duration::from_millis(50), async {
            for task in &mut closing {
                let _ = task.await;
            }
        })
        .await;
        if joined.is_err() {
            tracing::warn!("upstream links still closing at the shutdown limit; aborting them");
            for task in &closing {
                task.abort();
            }
        }
    }

    /// Starts a link for an `Open` command.
    fn open(&mut self, open: UpstreamCmd) {
        let UpstreamCmd::Open {
            link,
            client_id,
            clean_session,
            keep_alive,
            will,
            credentials,
            identity,
        } = open
        else {
            return;
        };
        // A per-client TLS certificate: its own rustls configuration, cached until a reload.
        let tls = match (&identity, &self.tls) {
            (Some(id), Some(_)) => match self.identity_tls(id) {
                Ok(tls) => Some(tls),
                Err(e) => {
                    tracing::error!(%link, %client_id, cert = %id.cert.display(), error = %e, "unusable client certificate");
                    let _ = self.events.send(UpstreamEvent::Refused {
                        link,
                        refusal: BrokerRefusal::BadCredentials,
                    });
                    return;
                }
            },
            _ => self.tls.clone(),
        };
        if self.links.contains_key(&link) {
            tracing::warn!(%link, "Open for a link that is already open; closing the old one");
            self.close(link, true, Instant::now() + self.endpoint.connect_timeout);
        }
        self.closing.retain(|task| !task.is_finished());
        // Forget ended links that left nothing to take over.
        self.previous
            .retain(|_, done| done.has_changed().is_ok() || !done.borrow().is_empty());
        if self.links.values().any(|h| h.client_id == client_id) {
            tracing::warn!(%link, %client_id, "another open link uses this upstream ClientId");
        }
        let wait_for = self.previous.remove(&client_id);

        let options = self.mqtt_options(
            &client_id,
            clean_session,
            keep_alive,
            will,
            credentials,
            tls,
        );
        let mut eventloop = EventLoop::new(options, REQUEST_CHANNEL_CAPACITY);
        let mut network = NetworkOptions::new();
        network.set_connection_timeout(whole_seconds(self.endpoint.connect_timeout));
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);

        self.opened = self.opened.wrapping_add(1);
        let rng = XorShift64::new(self.seed ^ backoff::splitmix64(link.0 ^ (self.opened << 32)));
        let backoff = Backoff::new(
            self.endpoint.backoff_initial,
            self.endpoint.backoff_max,
            rng,
        );
        let shared = Arc::new(Mutex::new(LinkShared::default()));
        let wake = Arc::new(Notify::new());
        let (ctl_tx, ctl_rx) = watch::channel(LinkCtl::Run);
        let (done_tx, done_rx) = watch::channel(Vec::new());
        let task = LinkTask {
            link,
            eventloop,
            shared: shared.clone(),
            wake: wake.clone(),
            events: self.events.clone(),
            ctl: ctl_rx,
            backoff,
            wait_for,
            done: done_tx,
            connecting: self.connecting.clone(),
            reserved: Default::default(),
            deferred: None,
            diagnosis: self.diagnosis.clone(),
            broker: self.broker.clone(),
            tls: self.endpoint.scheme == crate::io::config::Scheme::Mqtts,
            client_id: client_id.clone(),
        };
        tracing::debug!(%link, %client_id, "opening upstream link");
        let task = tokio::spawn(task.run());
        self.links.insert(
            link,
            LinkHandle {
                client_id,
                shared,
                wake,
                ctl: ctl_tx,
                done: done_rx,
                task,
            },
        );
    }

    /// The TLS configuration for a per-client certificate (cached).
    fn identity_tls(
        &mut self,
        id: &ClientIdentity,
    ) -> Result<Arc<rustls::ClientConfig>, UpstreamSetupError> {
        if let Some(tls) = self.identity_tls.get(id) {
            return Ok(tls.clone());
        }
        let tls =
            tls::client_config_for(&self.endpoint, id)?.ok_or(UpstreamSetupError::MissingCaFile)?;
        self.identity_tls.insert(id.clone(), tls.clone());
        Ok(tls)
    }

    fn mqtt_options(
        &self,
        client_id: &str,
        clean_session: bool,
        keep_alive: Duration,
        will: Option<Will>,
        credentials: Option<Credentials>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> MqttOptions {
        let endpoint = &self.endpoint;
        let mut options = MqttOptions::new(client_id, endpoint.host.clone(), endpoint.port);
        options.set_keep_alive(keep_alive_for_rumqttc(keep_alive));
        // rumqttc panics on clean_session = false with an empty ClientId.
        if client_id.is_empty() && !clean_session {
            tracing::warn!("empty upstream ClientId needs clean_session; forcing it");
            options.set_clean_session(true);
        } else {
            options.set_clean_session(clean_session);
        }
        if let Some(will) = will {
            options.set_last_will(LastWill::new(
                will.topic,
                will.payload.to_vec(),
                to_rumqttc(will.qos),
                will.retain,
            ));
        }
        if let Some(credentials) = credentials {
            // rumqttc sends no password field when it is empty.
            options.set_credentials(
                credentials.username,
                credentials.password.unwrap_or_default(),
            );
        }
        options.set_manual_acks(true);
        options.set_max_packet_size(endpoint.max_packet_size, endpoint.max_packet_size);
        options.set_inflight(endpoint.inflight.max(1));
        if let Some(tls) = tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
        }
        options
    }

    fn close(&mut self, link: LinkId, graceful: bool, deadline: Instant) {
        let Some(handle) = self.links.remove(&link) else {
            tracing::warn!(%link, "Close for an unknown link");
            return;
        };
        if graceful {
            lock(&handle.shared).outbox.push_back(OutCmd::Disconnect);
            handle.wake.notify_one();
        }
        // The task may have ended already; then there is nobody to tell.
        let _ = handle.ctl.send(LinkCtl::Close { graceful, deadline });
        self.previous.insert(handle.client_id, handle.done);
        self.closing.push(handle.task);
    }

    /// Queues a control command (held PUBRECs) for the link; it does not wait for the window.
    fn control(&mut self, link: LinkId, cmd: Control) {
        match self.links.get(&link) {
            Some(handle) => {
                lock(&handle.shared).control.push_back(cmd);
                handle.wake.notify_one();
            }
            None => tracing::warn!(%link, ?cmd, "command for an unknown link dropped"),
        }
    }

    fn submit(&mut self, link: LinkId, cmd: OutCmd) {
        match self.links.get(&link) {
            Some(handle) if handle.task.is_finished() => {
                // Only a panic ends a link task before `Close`; nothing would ever send this.
                tracing::error!(%link, ?cmd, "link task has ended; command dropped");
            }
            Some(handle) => {
                lock(&handle.shared).outbox.push_back(cmd);
                handle.wake.notify_one();
            }
            None => tracing::warn!(%link, ?cmd, "command for an unknown link dropped"),
        }
    }
}

impl UpstreamConnector for RumqttcConnector {
    fn reload(&mut self) {
        self.identity_tls.clear();
    }

    fn report(&self) -> diagnosis::UpstreamReport {
        self.diagnosis.report(self.broker.to_string())
    }

    fn execute(&mut self, cmd: UpstreamCmd) {
        match cmd {
            open @ UpstreamCmd::Open { .. } => self.open(open),
            UpstreamCmd::Subscribe {
                link,
                token,
                filter,
                qos,
            } => {
                if rumqttc::valid_filter(&filter) {
                    let qos = to_rumqttc(qos);
                    self.submit(link, OutCmd::Subscribe { token, filter, qos });
                } else {
                    // rumqttc would refuse it; answer as a broker refusing the filter would.
                    tracing::warn!(%link, %filter, %qos, "invalid subscription refused locally");
                    let _ = self.events.send(UpstreamEvent::SubAck {
                        link,
                        token,
                        granted: None,
                    });
                }
            }
            UpstreamCmd::Unsubscribe {
                link,
                token,
                filter,
            } => self.submit(link, OutCmd::Unsubscribe { token, filter }),
            UpstreamCmd::Publish {
                link,
                token,
                topic,
                payload,
                qos,
                retain,
            } => {
                if !topic.is_empty() && rumqttc::valid_topic(&topic) {
                    let publish = OutCmd::Publish {
                        token,
                        topic,
                        payload,
                        qos: to_rumqttc(qos),
                        retain,
                    };
                    self.submit(link, publish);
                } else {
                    tracing::error!(%link, ?token, %topic, %qos, "invalid publish dropped");
                }
            }
            UpstreamCmd::Ack { link, delivery } => {
                if delivery.qos.is_acknowledged() {
                    let ack = OutCmd::Ack {
                        pkid: delivery.pkid,
                        qos: to_rumqttc(delivery.qos),
                    };
                    self.submit(link, ack);
                }
            }
            UpstreamCmd::HoldRelease { link, token } => {
                self.control(link, Control::Hold { token });
            }
            UpstreamCmd::Release { link, token } => self.control(link, Control::Release { token }),
            UpstreamCmd::Resume { link, token, pkid } => {
                self.control(link, Control::Resume { token, pkid });
            }
            UpstreamCmd::Forget { link, pkid } => self.control(link, Control::Forget { pkid }),
            UpstreamCmd::Close { link, graceful } => {
                let deadline = Instant::now() + self.endpoint.connect_timeout;
                self.close(link, graceful, deadline);
            }
        }
    }
}

/// The rumqttc name of a QoS level.
fn to_rumqttc(qos: MqttQos) -> QoS {
    match qos {
        MqttQos::AtMostOnce => QoS::AtMostOnce,
        MqttQos::AtLeastOnce => QoS::AtLeastOnce,
        MqttQos::ExactlyOnce => QoS::ExactlyOnce,
    }
}

/// The core's name of a rumqttc QoS level.
pub(crate) fn from_rumqttc(qos: QoS) -> MqttQos {
    match qos {
        QoS::AtMostOnce => MqttQos::AtMostOnce,
        QoS::AtLeastOnce => MqttQos::AtLeastOnce,
        QoS::ExactlyOnce => MqttQos::ExactlyOnce,
    }
}

/// rumqttc panics on a keep-alive between 0 and 1 s and sends whole seconds in a u16.
fn keep_alive_for_rumqttc(keep_alive: Duration) -> Duration {
    if keep_alive.is_zero() {
        return Duration::ZERO;
    }
    Duration::from_secs(keep_alive.as_secs().clamp(1, u64::from(u16::MAX)))
}

/// rumqttc's connection timeout is in whole seconds; round up, at least 1.
fn whole_seconds(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_is_made_acceptable_to_rumqttc() {
        assert_eq!(keep_alive_for_rumqttc(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            keep_alive_for_rumqttc(Duration::from_millis(300)),
            Duration::from_secs(1)
        );
        assert_eq!(
            keep_alive_for_rumqttc(Duration::from_millis(1500)),
            Duration::from_secs(1)
        );
        assert_eq!(
            keep_alive_for_rumqttc(Duration::from_secs(100_000)),
            Duration::from_secs(65_535)
        );
    }

    #[test]
    fn connection_timeout_rounds_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(200)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(5)), 5);
        assert_eq!(whole_seconds(Duration::from_millis(5001)), 6);
    }

    #[test]
    fn mqtts_without_ca_file_is_refused() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let endpoint = UpstreamEndpoint {
            scheme: crate::io::config::Scheme::Mqtts,
            ..UpstreamEndpoint::default()
        };
        assert!(matches!(
            RumqttcConnector::new(endpoint, tx),
            Err(UpstreamSetupError::MissingCaFile)
        ));
    }

    #[test]
    fn unreadable_ca_file_is_reported_with_its_path() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut endpoint = UpstreamEndpoint {
            scheme: crate::io::config::Scheme::Mqtts,
            ..UpstreamEndpoint::default()
        };
        endpoint.tls.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
        match RumqttcConnector::new(endpoint, tx) {
            Err(UpstreamSetupError::Read { path, .. }) => {
                assert_eq!(path, PathBuf::from("/nonexistent/ca.pem"));
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("accepted a missing CA file"),
        }
    }
}
