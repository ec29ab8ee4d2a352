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
    log_filter: String,
    watchdog: Option<Duration>,
}

/// Starts the binary on the configuration in `dir`, appending to `dir/gateway.log`.
fn spawn(
    dir: &Path,
    log: &str,
    watchdog: Option<Duration>,
) -> Result<(Child, Option<UnixDatagram>)> {
    let mut cmd = Command::new(gateway_binary()?);
    let log_file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join("gateway.log"))?;
    cmd.arg("--config")
        .arg(dir.join("gateway.toml"))
        .args(["--log", log])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        // The state database goes beside the configuration, never to a systemd state
        // directory the test run may have.
        .env_remove("STATE_DIRECTORY")
        .kill_on_drop(true);
    let notify = match watchdog {
        Some(interval) => {
            let path = dir.join("notify.sock");
            let _ = std::fs::remove_file(&path);
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
    Ok((child, notify))
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
        let log = options.log.clone().unwrap_or_else(|| "info".to_owned());
        let (child, notify) = spawn(dir.path(), &log, options.watchdog)?;
        let mut daemon = Daemon {
            child,
            dir,
            udp,
            http,
            notify,
            log_filter: log,
            watchdog: options.watchdog,
        };
        daemon.until_healthy().await?;
        Ok(daemon)
    }

    /// Waits until the HTTP endpoint answers (≤ 10 s); fails at once if the process exits.
    async fn until_healthy(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while gateway::admin_client::request(self.http, "GET", "/healthz")
            .await
            .is_err()
        {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the gateway exited ({status}) before it became healthy; its log:\n{}",
                    self.log()
                );
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the gateway did not become healthy within 10 s; its log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Kills the daemon with SIGKILL (no shutdown of any kind, as a power loss), then starts
    /// it again in the same directory with the same configuration; returns once it is healthy.
    pub async fn kill_and_restart(&mut self) -> Result<()> {
        self.kill_and_restart_with(|| {}).await
    }

    /// [`Daemon::kill_and_restart`], running `meanwhile` while the gateway is down (e.g. to
    /// damage its files).
    pub async fn kill_and_restart_with(&mut self, meanwhile: impl FnOnce()) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        meanwhile();
        let (child, notify) = spawn(self.dir.path(), &self.log_filter, self.watchdog)?;
        self.child = child;
        self.notify = notify;
        self.until_healthy().await
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
