//! A real mosquitto broker per test (`docs/architecture.md`, "Rules for tests on real
//! networks").
//!
//! [`Mosquitto::start`] writes a config into a fresh temporary directory, starts
//! `mosquitto -c <config>` on a free loopback port (never 1883) and waits until a TCP connect
//! succeeds (≤ 5 s); when the process exits first, the error carries its output, and startup is
//! retried with a new port. The guard kills the broker on drop and removes the directory.
//!
//! Works when run as root: mosquitto then drops privileges to the `mosquitto` user, so the
//! directory is 0755, every file it reads is 0644 and the persistence directory is 0777.
//!
//! The broker logs everything (`log_type all`) to stderr (unbuffered, unlike its stdout), which
//! goes with stdout to a log file per start
//! ([`Mosquitto::log`], [`Mosquitto::wait_for_log`]).

use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};

use crate::ports::free_tcp_port;
use crate::tls::{TlsMaterial, set_mode};

/// How long a started broker may take to accept TCP connections.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// Poll period while waiting for readiness, exit or a log line.
const POLL: Duration = Duration::from_millis(20);
/// Startup attempts with fresh ports in [`Mosquitto::start_with`].
const START_ATTEMPTS: usize = 5;
/// How long [`Mosquitto::restart`] keeps trying to bind the same ports.
const RESTART_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two restart attempts.
const RESTART_RETRY: Duration = Duration::from_millis(100);
/// How long [`Mosquitto::stop`] waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Options for [`Mosquitto::start_with`].
#[derive(Debug, Clone, Default)]
pub struct MosquittoOptions {
    /// Adds a second listener on [`Mosquitto::tls_port`] with this CA, server certificate and
    /// key (copied into the broker's directory). Use
    /// [`TlsMaterial::with_wrong_host_server`] to serve the wrong-host certificate.
    pub tls: Option<TlsMaterial>,
    /// `require_certificate true` on the TLS listener: clients must present a certificate
    /// signed by the CA.
    pub require_certificate: bool,
    /// `persistence true` with a location inside the broker's directory, so sessions and
    /// queued messages survive [`Mosquitto::restart`] after a graceful [`Mosquitto::stop`].
    pub persistence: bool,
    /// Extra lines appended to the global section of the config (before the listeners).
    pub extra_config: Vec<String>,
}

/// Guard owning a running mosquitto process and its temporary directory.
#[derive(Debug)]
pub struct Mosquitto {
    options: MosquittoOptions,
    dir: TempDir,
    port: u16,
    tls_port: Option<u16>,
    child: Option<Child>,
    log_path: PathBuf,
    launches: u32,
}

impl Mosquitto {
    /// Starts a plain broker: one listener on `127.0.0.1`, anonymous access, no persistence.
    pub async fn start() -> Result<Self> {
        Self::start_with(MosquittoOptions::default()).await
    }

    /// Starts a broker with the given options, retrying with new ports if startup fails.
    pub async fn start_with(options: MosquittoOptions) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sn-tests-mosquitto-")
            .tempdir()
            .context("create temp dir for mosquitto")?;
        set_mode(dir.path(), 0o755)?;
        let mut broker = Self {
            options,
            log_path: dir.path().join("mosquitto-0.log"),
            dir,
            port: 0,
            tls_port: None,
            child: None,
            launches: 0,
        };
        if let Some(tls) = broker.options.tls.clone() {
            broker.install_tls(&tls)?;
        }
        if broker.options.persistence {
            let data = broker.data_dir();
            fs::create_dir_all(&data).with_context(|| format!("create {}", data.display()))?;
            set_mode(&data, 0o777)?;
        }

        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            broker.port = free_tcp_port()?;
            broker.tls_port = match broker.options.tls {
                Some(_) => Some(loop {
                    let port = free_tcp_port()?;
                    if port != broker.port {
                        break port;
                    }
                }),
                None => None,
            };
            match broker.launch().await {
                Ok(()) => return Ok(broker),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("no start attempt"))
            .context(format!(
                "mosquitto did not start in {START_ATTEMPTS} attempts"
            )))
    }

    /// The plain listener's port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:PORT` for the plain listener.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The TLS listener's port, when started with [`MosquittoOptions::tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// `mqtts://127.0.0.1:PORT` for the TLS listener, when there is one.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port
            .map(|port| format!("mqtts://127.0.0.1:{port}"))
    }

    /// The broker's temporary directory (config, logs, TLS copies, persistence).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The log file of the current (or last) broker process.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the current (or last) broker process wrote to stdout/stderr so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The OS process id of the running broker.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Whether a broker process is running (started and not yet exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits until the current log contains `needle`; fails with the log after `limit`.
    pub async fn wait_for_log(&self, needle: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if self.log().contains(needle) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "mosquitto log did not contain {needle:?} within {limit:?}:\n{}",
                    self.log()
                );
            }
            sleep(POLL).await;
        }
    }

    /// Stops the broker gracefully (SIGTERM, so a persistent broker saves its database; SIGKILL
    /// after 5 s) and waits for it to exit. Ports are kept for [`Mosquitto::restart`].
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait().context("poll mosquitto")?.is_some() {
            return Ok(());
        }
        if let Some(pid) = child.id() {
            let status = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .context("run kill -TERM")?;
            if status.success() && timeout(STOP_TIMEOUT, child.wait()).await.is_ok() {
                return Ok(());
            }
        }
        child.kill().await.context("kill mosquitto")
    }

    /// Kills the broker abruptly (SIGKILL, like a crash: nothing is saved) and waits for it.
    pub async fn kill(&mut self) -> Result<()> {
        match self.child.take() {
            Some(mut child) => child.kill().await.context("kill mosquitto"),
            None => Ok(()),
        }
    }

    /// Starts a new broker on the same port(s), stopping the current one first if it runs.
    /// Binding is retried for up to 10 s (the port may briefly be unavailable).
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        let deadline = Instant::now() + RESTART_TIMEOUT;
        loop {
            match self.launch().await {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() >= deadline => {
                    return Err(error.context(format!(
                        "mosquitto did not restart on port {} within {RESTART_TIMEOUT:?}",
                        self.port
                    )));
                }
                Err(_) => sleep(RESTART_RETRY).await,
            }
        }
    }

    /// The persistence directory (with the trailing slash mosquitto requires).
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Copies the CA, server certificate and key into `<dir>/tls` readable by everyone, so the
    /// broker can read them after dropping privileges whatever the caller's directory.
    fn install_tls(&mut self, tls: &TlsMaterial) -> Result<()> {
        let tls_dir = self.dir.path().join("tls");
        fs::create_dir_all(&tls_dir).with_context(|| format!("create {}", tls_dir.display()))?;
        set_mode(&tls_dir, 0o755)?;
        let mut copied = tls.clone();
        for (source, name, target) in [
            (&tls.ca_cert, "ca.crt", &mut copied.ca_cert),
            (&tls.server_cert, "server.crt", &mut copied.server_cert),
            (&tls.server_key, "server.key", &mut copied.server_key),
        ] {
            let destination = tls_dir.join(name);
            fs::copy(source, &destination).with_context(|| {
                format!("copy {} to {}", source.display(), destination.display())
            })?;
            set_mode(&destination, 0o644)?;
            *target = destination;
        }
        self.options.tls = Some(copied);
        Ok(())
    }

    /// The config text for the current ports.
    fn config(&self) -> Result<String> {
        let mut config = String::from(
            "# generated by sn-tests\n\
             per_listener_settings false\n\
             allow_anonymous true\n\
             log_dest stderr\n\
             log_type all\n\
             log_timestamp_format %H:%M:%S\n\
             connection_messages true\n",
        );
        if self.options.persistence {
            config.push_str("persistence true\n");
            config.push_str(&format!(
                "persistence_location {}/\n",
                utf8(&self.data_dir())?
            ));
        } else {
            config.push_str("persistence false\n");
        }
        for line in &self.options.extra_config {
            config.push_str(line);
            config.push('\n');
        }
        config.push_str(&format!("\nlistener {} 127.0.0.1\n", self.port));
        if let (Some(tls), Some(port)) = (&self.options.tls, self.tls_port) {
            config.push_str(&format!(
                "\nlistener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
                utf8(&tls.ca_cert)?,
                utf8(&tls.server_cert)?,
                utf8(&tls.server_key)?,
            ));
            if self.options.require_certificate {
                config.push_str("require_certificate true\n");
            }
        }
        Ok(config)
    }

    /// Writes the config, spawns mosquitto and waits until every listener accepts TCP
    /// connections. On failure the process is killed and the error carries its output.
    async fn launch(&mut self) -> Result<()> {
        self.launches += 1;
        let n = self.launches;
        let config_path = self.dir.path().join(format!("mosquitto-{n}.conf"));
        fs::write(&config_path, self.config()?)
            .with_context(|| format!("write {}", config_path.display()))?;
        set_mode(&config_path, 0o644)?;
        self.log_path = self.dir.path().join(format!("mosquitto-{n}.log"));
        let log = File::create(&self.log_path)
            .with_context(|| format!("create {}", self.log_path.display()))?;
        let log_err = log.try_clone().context("clone log file handle")?;

        let binary = mosquitto_binary()?;
        let mut child = Command::new(&binary)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {}", binary.display()))?;

        let ports: Vec<u16> = std::iter::once(self.port).chain(self.tls_port).collect();
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut ready = vec![false; ports.len()];
        loop {
            if let Some(status) = child.try_wait().context("poll mosquitto")? {
                bail!(
                    "mosquitto exited with {status} before accepting connections on {ports:?}:\n{}",
                    self.log()
                );
            }
            for (port, ok) in ports.iter().zip(ready.iter_mut()) {
                if !*ok {
                    *ok = matches!(
                        timeout(POLL, TcpStream::connect((Ipv4Addr::LOCALHOST, *port))).await,
                        Ok(Ok(_))
                    );
                }
            }
            // A bind failure makes mosquitto exit; make sure the listener is ours.
            if ready.iter().all(|ok| *ok) && child.try_wait().context("poll mosquitto")?.is_none() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                // Best effort: the process is killed on drop anyway.
                let _ = child.kill().await;
                bail!(
                    "mosquitto did not accept connections on {ports:?} within {READY_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            sleep(POLL).await;
        }
    }
}

/// The mosquitto executable: `$MOSQUITTO` if set, else `mosquitto` on `PATH`, else the usual
/// sbin locations (Debian installs it in `/usr/sbin`, which is not on every user's `PATH`).
fn mosquitto_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("MOSQUITTO") {
        return Ok(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("mosquitto"))
        .find(|candidate| candidate.is_file())
        .context("mosquitto not found (apt-get install mosquitto, or set MOSQUITTO=/path)")
}

/// A path as UTF-8 for the config file.
fn utf8(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("path is not UTF-8: {}", path.display()))
}
