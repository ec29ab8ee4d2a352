//! Starts the real gateway (`gateway::io::start`) in-process on a loopback port against a test
//! broker, and stops it when dropped.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use gateway::core::config::GatewayConfig;
use gateway::io::config::{IoConfig, ListenerConfig, Scheme, UpstreamEndpoint};
use gateway::io::{GatewayHandle, Running, Snapshot, Status};
use tokio_util::sync::CancellationToken;

use crate::mqtt::BrokerUrl;

/// A running gateway; stopped (gracefully) on drop or by [`TestGateway::stop`].
#[derive(Debug)]
pub struct TestGateway {
    /// The UDP address motes send to.
    pub addr: SocketAddr,
    /// The bound address of the HTTP endpoint (when `io.http` was set).
    pub http: Option<SocketAddr>,
    handle: GatewayHandle,
    cancel: CancellationToken,
    running: Option<Running>,
}

/// Settings for a test gateway: everything on loopback, short backoff.
pub fn test_settings(broker_url: &str) -> Result<(GatewayConfig, IoConfig)> {
    let url = BrokerUrl::parse(broker_url)?;
    let core = GatewayConfig::default();
    let io = IoConfig {
        listeners: vec![ListenerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            multicast: None,
        }],
        upstream: UpstreamEndpoint {
            scheme: if url.tls { Scheme::Mqtts } else { Scheme::Mqtt },
            host: url.host.clone(),
            port: url.port,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..UpstreamEndpoint::default()
        },
        registry_file: None,
        http: None,
        // In memory, as a test that wants a state database names its file.
        storage: gateway::io::store::StorageConfig {
            location: gateway::io::store::StorageLocation::Off,
            ..Default::default()
        },
    };
    Ok((core, io))
}

impl TestGateway {
    /// A gateway with [`test_settings`] for `broker_url`.
    pub async fn start(broker_url: &str) -> Result<Self> {
        let (core, io) = test_settings(broker_url)?;
        Self::start_with(core, io).await
    }

    /// A gateway with explicit settings.
    pub async fn start_with(core: GatewayConfig, io: IoConfig) -> Result<Self> {
        let cancel = CancellationToken::new();
        let running = gateway::io::start(core, io, cancel.clone())
            .await
            .context("start the gateway")?;
        let addr = *running
            .addrs
            .first()
            .context("the gateway has no listener")?;
        Ok(TestGateway {
            addr,
            http: running.http,
            handle: running.handle.clone(),
            cancel,
            running: Some(running),
        })
    }

    /// The bound address of the HTTP endpoint; an error when it is off.
    pub fn http_addr(&self) -> Result<SocketAddr> {
        self.http
            .context("the test gateway has no HTTP endpoint (set io.http)")
    }

    /// Waits (bounded) until the gateway's own upstream link is up.
    pub async fn wait_upstream(&self, up: bool, limit: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.status().await?.upstream_up != up {
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("gateway upstream_up did not become {up} within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Waits (bounded) until the gateway lists `client_id` in `state` (`"active"`, `"asleep"`,
    /// ...: [`gateway::core::ClientInfo::state`]).
    pub async fn wait_client_state(
        &self,
        client_id: &str,
        state: &str,
        limit: Duration,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let clients = self.snapshot().await?.clients;
            if clients
                .iter()
                .any(|c| c.client_id == client_id && c.state == state)
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let seen: Vec<(&str, &str)> = clients
                    .iter()
                    .map(|c| (c.client_id.as_str(), c.state))
                    .collect();
                anyhow::bail!("{client_id} was not {state} within {limit:?}; clients: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A fresh status of the gateway: counters, gauges, the upstream state (no client list).
    pub async fn status(&self) -> Result<Status> {
        self.handle
            .status()
            .await
            .context("the gateway has stopped")
    }

    /// A fresh snapshot of the gateway's counters, gauges and clients.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        self.handle
            .snapshot()
            .await
            .context("the gateway has stopped")
    }

    /// Stops the gateway gracefully and waits for it.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(r) = self.running.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), r.wait()).await;
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A gateway on its own thread and runtime that can be killed like a crashed process: its
/// runtime is dropped without any graceful close, so the broker just sees the TCP connections
/// vanish (no DISCONNECT).
#[derive(Debug)]
pub struct CrashableGateway {
    /// The UDP address motes send to.
    pub addr: SocketAddr,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CrashableGateway {
    /// Starts a gateway with explicit settings on a fresh thread.
    pub async fn start_with(core: GatewayConfig, io: IoConfig) -> Result<Self> {
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let started = gateway::io::start(core, io, CancellationToken::new()).await;
                let addr = started.as_ref().ok().and_then(|r| r.addrs.first().copied());
                let _ = addr_tx.send(addr);
                let _ = kill_rx.await;
                // `started` is dropped with the runtime below: no graceful shutdown.
                std::mem::forget(started);
            });
            rt.shutdown_background();
        });
        let addr = tokio::time::timeout(Duration::from_secs(5), addr_rx)
            .await
            .context("gateway thread did not start")?
            .context("gateway thread ended")?
            .context("the gateway did not start")?;
        Ok(CrashableGateway {
            addr,
            kill: Some(kill_tx),
            thread: Some(thread),
        })
    }

    /// Kills the gateway: sockets and upstream connections close without DISCONNECT.
    pub fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CrashableGateway {
    fn drop(&mut self) {
        self.kill_now();
    }
}
