//! The tokio shell around the core: UDP sockets, upstream links, the drive loop.
//!
//! [`start`] binds every listener (so a port-0 listener reports the port it got), spawns the
//! drive loop and returns at once; [`run`] is `start` plus waiting. Both stop gracefully when
//! the given [`CancellationToken`] is cancelled: upstream links are closed with DISCONNECT, so no
//! Will is published for clients that were fine.

pub mod config;
pub mod driver;
#[cfg(feature = "embedded-broker")]
pub mod embedded_broker;
pub mod fd_limit;
pub mod http;
mod log_events;
pub mod notify;
pub mod store;
mod throttle;
pub mod udp;
pub mod upstream;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::config::IoConfig;
pub use self::driver::{GatewayHandle, Snapshot, Status, StorageStatus};
use self::upstream::{RumqttcConnector, UpstreamSetupError};
use crate::core::Gateway;
use crate::core::config::GatewayConfig;

/// How long shutdown waits for the upstream links to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A listener (or its multicast group) could not be bound.
    ///
    /// **Fault:** the operator (address in use, not an address of this host, no permission for a
    /// port below 1024, a multicast interface that does not exist). **Recovery:** choose
    /// another address, port or interface.
    #[error("cannot listen on {0}")]
    Bind(#[from] udp::BindError),
    /// The embedded broker could not start.
    #[cfg(feature = "embedded-broker")]
    #[error(transparent)]
    EmbeddedBroker(#[from] embedded_broker::EmbeddedBrokerError),
    /// The upstream connector could not be set up (TLS material).
    ///
    /// **Fault:** the operator. **Recovery:** fix the `[upstream.tls]` settings.
    #[error("upstream: {0}")]
    Upstream(#[from] UpstreamSetupError),
    /// The HTTP endpoint could not be bound.
    ///
    /// **Fault:** the operator (address in use, not an address of this host). **Recovery:**
    /// choose another `[http] listen` address, or `"off"`.
    #[error(transparent)]
    Http(#[from] http::HttpBindError),
    /// The state database was written by a newer gateway.
    ///
    /// **Fault:** the operator (a downgrade). **Recovery:** run the newer gateway, or move
    /// the file away to start without its state.
    #[error(transparent)]
    Store(store::StoreError),
}

/// A gateway running in the background.
#[derive(Debug)]
pub struct Running {
    /// The bound unicast address of every listener, in configuration order.
    pub addrs: Vec<SocketAddr>,
    /// Counters and client list.
    pub handle: GatewayHandle,
    /// The bound address of the HTTP endpoint (`None`: off).
    pub http: Option<SocketAddr>,
    task: JoinHandle<()>,
}

impl Running {
    /// Waits until the gateway has stopped (after its cancellation token fired).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Binds the listeners and starts the gateway; it runs until `shutdown` is cancelled.
pub async fn start(
    mut core: GatewayConfig,
    io: IoConfig,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    let (durable_tx, durable_rx) = tokio::sync::mpsc::unbounded_channel();
    let stored = open_store(&io.storage, durable_tx).await?;
    core.persist_sessions = stored.is_some();
    if stored.is_none() && core.custody.mode == crate::core::config::CustodyMode::Gateway {
        tracing::info!(
            "no state database: client publishes are acknowledged after the broker (custody = \
             \"broker\")"
        );
        core.custody.mode = crate::core::config::CustodyMode::Broker;
    }
    #[cfg(feature = "embedded-broker")]
    if io.upstream.scheme == config::Scheme::Embedded {
        let addr = embedded_addr(&io.upstream)?;
        embedded_broker::start(addr, io.upstream.max_packet_size)?;
    }
    let mut listeners = Vec::with_capacity(io.listeners.len());
    for l in &io.listeners {
        listeners.push(udp::bind(l)?);
    }
    let addrs = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut connector = RumqttcConnector::new(io.upstream.clone(), tx)?;
    let (handle, control) = GatewayHandle::new();
    let registry_file = io.registry_file.clone();
    let http = match io.http {
        Some(addr) => {
            let state = http::AppState {
                handle: handle.clone(),
                registry: registry_file.clone(),
                gateway_id: core.gateway_id,
            };
            Some(http::start(addr, state, shutdown.child_token()).await?)
        }
        None => None,
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut gateway = Gateway::new(core, sn_codec::Instant::ZERO, seed);
    // The stored sessions are back before `start` returns, so "ready" means with them.
    let writer = stored.map(|s| {
        let total = s.sessions.len();
        let restored = gateway.restore(sn_codec::Instant::ZERO, s.sessions);
        let held = s.messages.len();
        gateway.restore_custody(sn_codec::Instant::ZERO, s.messages);
        tracing::info!(
            path = %s.writer.path().display(),
            restored,
            skipped = total - restored,
            custody = held,
            "state database opened; stored sessions resumed"
        );
        s.writer
    });
    let task = tokio::spawn(async move {
        driver::drive(
            gateway,
            listeners,
            &mut connector,
            rx,
            shutdown,
            control,
            driver::Stores {
                registry_file,
                durable: writer.as_ref().map(|_| durable_rx),
                state: writer,
            },
        )
        .await;
        connector.shutdown(SHUTDOWN_GRACE).await;
    });
    Ok(Running {
        addrs,
        handle,
        http,
        task,
    })
}

/// Opens the state database of `cfg` (none when it is off or unresolved). A database of a
/// newer gateway stops the start; one that cannot be opened or created (missing or read-only
/// directory) is reported and the gateway runs with its state in memory only.
async fn open_store(
    cfg: &store::StorageConfig,
    durable: store::Durable,
) -> Result<Option<store::Opened>, StartError> {
    let store::StorageLocation::Path(path) = &cfg.location else {
        return Ok(None);
    };
    let (path, cfg) = (path.clone(), cfg.clone());
    let opened = tokio::task::spawn_blocking(move || store::open(&path, &cfg, Some(durable))).await;
    match opened {
        Ok(Ok(o)) => {
            if let Some((aside, why)) = &o.moved_aside {
                tracing::warn!(
                    path = %o.writer.path().display(),
                    moved_to = %aside.display(),
                    problem = %why,
                    "the state database was not usable: moved aside (kept for inspection) and \
                     started afresh; stored sessions are lost"
                );
            }
            for (client_id, why) in &o.unreadable {
                tracing::warn!(%client_id, problem = %why, "stored session skipped: unreadable");
            }
            Ok(Some(o))
        }
        Ok(Err(e @ store::StoreError::NewerSchema { .. })) => Err(StartError::Store(e)),
        Ok(Err(e)) => {
            tracing::error!(
                error = %e,
                "cannot use the state database: running with the state in memory only (sessions \
                 will not survive a restart)"
            );
            Ok(None)
        }
        Err(e) => {
            tracing::error!(error = %e, "opening the state database failed");
            Ok(None)
        }
    }
}

/// [`start`], then wait until the gateway has stopped.
pub async fn run(
    core: GatewayConfig,
    io: IoConfig,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    start(core, io, shutdown).await?.wait().await;
    Ok(())
}

/// The listen address of `embedded://HOST:PORT` (HOST must be an IP address of this host).
#[cfg(feature = "embedded-broker")]
fn embedded_addr(u: &config::UpstreamEndpoint) -> Result<SocketAddr, StartError> {
    let ip: std::net::IpAddr = u.host.parse().map_err(|_| {
        embedded_broker::EmbeddedBrokerError::Start(format!(
            "embedded://{}:{}: the host must be an IP address to listen on, e.g. 127.0.0.1",
            u.host, u.port
        ))
    })?;
    Ok(SocketAddr::new(ip, u.port))
}
