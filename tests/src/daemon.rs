//! The released `mqtt-sn-gateway` binary as an operator runs it: a configuration file in a
//! temporary directory, its log captured to a file (so tests can count its bytes), signals,
//! and the systemd notify socket (so tests can count watchdog pings).

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::ports::{free_tcp_port, free_udp_port};

/// The debug gateway binary that `cargo test --workspace` builds beside the test binaries.
pub fn gateway_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let candidates = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("mqtt-sn-gateway"));
    for path in candidates {
        if path.exists() {
            return Ok(path);
        }
    }
    bail!(
        "mqtt-sn-gateway not found beside {}: run `cargo test --workspace` (or `cargo build -p \
         gateway`) first",
        exe.display()
    )
}

/// Makes `cmd` run as if under systemd with a watchdog: `Some((socket, interval))` passes the
/// notify socket path in `NOTIFY_SOCKET` and the interval in `WATCHDOG_USEC` (the gateway then
/// pets the socket every half interval); `None` removes both variables, so a gateway started
/// from a systemd unit does not pet its parent's watchdog.
pub fn systemd_env(cmd: &mut Command, watchdog: Option<(&Path, Duration)>) {
    match watchdog {
        Some((socket, interval)) => {
            cmd.env("NOTIFY_SOCKET", socket)
                .env("WATCHDOG_USEC", interval.as_micros().to_string());
        }
        None => {
            cmd.env_remove("NOTIFY_SOCKET").env_remove("WATCHDOG_USEC");
        }
    }
}

/// The watchdog pings (`WATCHDOG=1` lines) in one datagram received on the notify socket.
pub fn watchdog_pings_in(datagram: &[u8]) -> usize {
    String::from_utf8_lossy(datagram)
        .lines()
        .filter(|l| *l == "WATCHDOG=1")
        .count()
}

/// What to start the daemon with.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Configuration after the generated `[[listeners.udp]]`, `[upstream] url` and `[http]`
    /// tables (e.g. `[clients]` or `[limits]`); `[upstream]` keys other than `url` go in
    /// `upstream`.
    pub config: String,
    /// Extra lines of the `[upstream]` table.
    pub upstream: String,
    /// `clients.toml` beside the configuration file, if any.
    pub registry: Option<String>,
    /// `--log` filter (default `info`, what operators run with).
    pub log: Option<String>,
    /// Pretend to run under systemd with this watchdog interval: the daemon pets a notify
    /// socket that [`Daemon::watchdog_pings`] reads.
    pub watchdog: Option<Duration>,
    /// Multicast discovery group on loopback (`[discovery] enabled` too).
    pub discovery_group: Option<SocketAddr>,
}

/// A running gateway process, killed on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    dir: TempDir,
    /// Its MQTT-SN UDP address.
    pub udp: SocketAddr,
    /// Its HTTP endpoint.
    pub http: SocketAddr,
    notify: Option<UnixDatagram>,
}

impl Daemon {
    /// Writes the configuration and starts the binary against `broker_url`; returns once the
    /// HTTP endpoint answers (≤ 10 s).
    pub async fn start(broker_url: &str, options: DaemonOptions) -> Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let udp: SocketAddr = ([127, 0, 0, 1], free_udp_port()?).into();
        let http: SocketAddr = ([127, 0, 0, 1], free_tcp_port()?).into();
        let mut config = format!("[[listeners.udp]]\nbind = \"{udp}\"\n", udp = udp);
        if let Some(group) = options.discovery_group {
            config.push_str(&format!(
                "multicast = {{ group = \"{group}\", interface = \"127.0.0.1\" }}\n\
                 [discovery]\nenabled = true\n"
            ));
        }
        config.push_str(&format!(
            "[upstream]\nurl = \"{broker_url}\"\n{}\n[http]\nlisten = \"{http}\"\n{}\n",
            options.upstream, options.config
        ));
        std::fs::write(dir.path().join("gateway.toml"), config)?;
        if let Some(registry) = &options.registry {
            std::fs::write(dir.path().join("clients.toml"), registry)?;
        }
        let mut cmd = Command::new(gateway_binary()?);
        cmd.arg("--config")
            .arg(dir.path().join("gateway.toml"))
            .args(["--log", options.log.as_deref().unwrap_or("info")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("gateway.log"))?)
            .kill_on_drop(true);
        let notify = match options.watchdog {
            Some(interval) => {
                let path = dir.path().join("notify.sock");
                let socket = UnixDatagram::bind(&path)?;
                socket.set_nonblocking(true)?;
                systemd_env(&mut cmd, Some((&path, interval)));
                Some(socket)
            }
            None => {
                systemd_env(&mut cmd, None);
                None
            }
        };
        let child = cmd.spawn().context("start mqtt-sn-gateway")?;
        let daemon = Daemon {
            child,
            dir,
            udp,
            http,
            notify,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while gateway::admin_client::request(http, "GET", "/healthz")
            .await
            .is_err()
        {
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the gateway did not become healthy within 10 s; its log:\n{}",
                    daemon.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(daemon)
    }

    /// The directory holding `gateway.toml`, `clients.toml` and `gateway.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the daemon has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// Bytes the daemon has logged so far.
    pub fn log_bytes(&self) -> u64 {
        std::fs::metadata(self.dir.path().join("gateway.log")).map_or(0, |m| m.len())
    }

    /// Watchdog pings (`WATCHDOG=1`) received since the last call.
    pub fn watchdog_pings(&self) -> usize {
        let Some(socket) = &self.notify else {
            return 0;
        };
        let mut buf = [0u8; 4096];
        let mut pings = 0;
        while let Ok(n) = socket.recv(&mut buf) {
            pings += watchdog_pings_in(buf.get(..n).unwrap_or_default());
        }
        pings
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the daemon and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
