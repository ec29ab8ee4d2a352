//! The tokio shell around the core: the gateway-side UDP socket (and discovery group), the radio
//! ports (serial devices reopened with backoff, UDP sockets), the drive loop and counters.
//!
//! [`start`] binds every socket (so port-0 addresses report the port they got), spawns the port
//! tasks and the drive loop and returns at once; [`run`] is `start` plus waiting. Both stop when
//! the given [`CancellationToken`] is cancelled. A serial device that cannot be opened at start
//! is not an error: its task keeps retrying with backoff (the radio may be plugged in later).

pub mod config;
pub(crate) mod driver;
pub mod serial;
pub mod stats;
pub(crate) mod udp;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::config::{PortKind, Settings};
use self::driver::{Driver, Input, PortSink};
use self::serial::{Backoff, SerialPortTask};
pub use self::stats::{ForwarderHandle, PortStats, Stats};
use crate::core::{Forwarder, PortId};

/// Frames queued towards one serial port before new ones are dropped.
const PORT_QUEUE: usize = 256;
/// Inputs queued towards the drive loop.
const INPUT_QUEUE: usize = 4096;

/// Why the forwarder could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A UDP socket could not be bound or the discovery group joined.
    ///
    /// **Fault:** the operator (address in use, not an address of this host, no multicast
    /// route). **Recovery:** fix the address in the configuration.
    #[error("cannot bind {what} {addr}: {source}")]
    Bind {
        /// Which socket.
        what: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The settings are inconsistent (more than 255 ports, core and io port lists differ).
    ///
    /// **Fault:** the caller (validated configurations never are). **Recovery:** fix them.
    #[error("invalid settings: {0}")]
    Settings(String),
}

/// A forwarder running in the background.
#[derive(Debug)]
pub struct Running {
    /// The bound address of the gateway-side socket.
    pub gateway_socket: SocketAddr,
    /// The bound address of each UDP radio port (`None` for serial ports), in port order.
    pub udp_ports: Vec<Option<SocketAddr>>,
    /// Counters.
    pub handle: ForwarderHandle,
    tasks: JoinSet<()>,
}

impl Running {
    /// Waits until every task of the forwarder has stopped (after its cancellation token
    /// fired).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Binds the sockets and starts the forwarder; it runs until `shutdown` is cancelled.
///
/// # Errors
/// [`StartError::Bind`] when a socket cannot be bound; [`StartError::Settings`] for
/// inconsistent hand-built settings.
pub async fn start(settings: Settings, shutdown: CancellationToken) -> Result<Running, StartError> {
    let Settings { core, io } = settings;
    if io.ports.len() > usize::from(u8::MAX) || core.ports.len() != io.ports.len() {
        return Err(StartError::Settings(format!(
            "{} radio ports in the core, {} in the shell (at most 255)",
            core.ports.len(),
            io.ports.len()
        )));
    }
    let use_group = io
        .group
        .filter(|_| core.gateway.is_none() || core.relay_advertise);
    let bind_err = |what, addr| move |source| StartError::Bind { what, addr, source };
    let gateway_socket = Arc::new(
        udp::unicast(io.bind, use_group.as_ref())
            .map_err(bind_err("the gateway socket", io.bind))?,
    );
    let group_socket = match &use_group {
        Some(g) => Some(Arc::new(
            udp::group_receiver(g)
                .map_err(bind_err("the discovery group", SocketAddr::V4(g.group)))?,
        )),
        None => None,
    };
    let local = gateway_socket
        .local_addr()
        .map_err(bind_err("the gateway socket", io.bind))?;

    let handle = ForwarderHandle::new(io.ports.iter().map(|p| p.name.clone()));
    let (input_tx, input_rx) = mpsc::channel::<Input>(INPUT_QUEUE);
    let mut tasks = JoinSet::new();
    let mut sinks = Vec::with_capacity(io.ports.len());
    let mut udp_ports = Vec::with_capacity(io.ports.len());
    for (i, p) in io.ports.iter().enumerate() {
        let port = PortId(u8::try_from(i).unwrap_or(u8::MAX));
        match &p.kind {
            PortKind::Udp(u) => {
                let socket = Arc::new(
                    udp::unicast(u.bind, None).map_err(bind_err("the UDP radio port", u.bind))?,
                );
                udp_ports.push(socket.local_addr().ok());
                handle.update_port(i, |s| {
                    s.up = true;
                    s.opened = 1;
                });
                udp::spawn_receiver(
                    socket.clone(),
                    input_tx.clone(),
                    shutdown.clone(),
                    move |from, bytes| Input::Radio {
                        port,
                        item: crate::radio::RadioItem::Frame {
                            node: crate::core::NodeAddr::Udp(from),
                            message: bytes.into(),
                        },
                    },
                );
                sinks.push(PortSink::Udp {
                    socket,
                    broadcast: u.broadcast,
                });
            }
            PortKind::Serial(s) => {
                udp_ports.push(None);
                let (tx, rx) = mpsc::channel(PORT_QUEUE);
                sinks.push(PortSink::Serial(tx));
                let task = SerialPortTask {
                    port,
                    cfg: s.clone(),
                    backoff: Backoff::new(io.reopen_initial, io.reopen_max),
                    outgoing: rx,
                    inputs: input_tx.clone(),
                    handle: handle.clone(),
                    cancel: shutdown.clone(),
                };
                tasks.spawn(task.run());
            }
        }
    }
    let from_gateway = |from, bytes| Input::Gateway { from, bytes };
    udp::spawn_receiver(
        gateway_socket.clone(),
        input_tx.clone(),
        shutdown.clone(),
        from_gateway,
    );
    if let Some(g) = group_socket {
        udp::spawn_receiver(g, input_tx.clone(), shutdown.clone(), from_gateway);
    }
    drop(input_tx);

    let core = Forwarder::new(core, sn_codec::Instant::ZERO);
    let driver = Driver::new(
        core,
        gateway_socket,
        use_group.map(|g| SocketAddr::V4(g.group)),
        sinks,
        handle.clone(),
        io.stats_interval,
    );
    tasks.spawn(driver.run(input_rx, shutdown));
    Ok(Running {
        gateway_socket: local,
        udp_ports,
        handle,
        tasks,
    })
}

/// [`start`], then wait until the forwarder has stopped.
///
/// # Errors
/// As [`start`].
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), StartError> {
    start(settings, shutdown).await?.wait().await;
    Ok(())
}
