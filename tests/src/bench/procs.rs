//! The processes of a benchmark run: the gateway as a child process (the release build beside
//! `sn-bench`, or another binary), and CPU time and peak memory of any process read from
//! `/proc`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

/// CPU time and memory of one process, from `/proc/<pid>/stat` and `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcUsage {
    /// User + system CPU time in seconds.
    pub cpu_s: f64,
    /// Peak resident set size in KiB (VmHWM).
    pub peak_rss_kib: u64,
    /// Current resident set size in KiB (VmRSS).
    pub rss_kib: u64,
    /// Octets the process caused to be written to storage (`write_bytes` of
    /// `/proc/<pid>/io`; 0 where it cannot be read).
    pub write_bytes: u64,
    /// Write system calls (`syscw` of `/proc/<pid>/io`).
    pub syscw: u64,
}

/// Reads the usage of `pid` (`None` for this process).
pub fn usage(pid: Option<u32>) -> Result<ProcUsage> {
    let dir = pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}"));
    let stat = std::fs::read_to_string(format!("{dir}/stat"))
        .with_context(|| format!("read {dir}/stat"))?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, a)| a)
        .context("malformed stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; index 11 and 12 after the ')'.
    let cpu_s = (ticks(11) + ticks(12)) / clock_ticks_per_second();
    let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let io = std::fs::read_to_string(format!("{dir}/io")).unwrap_or_default();
    let io_field = |key: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcUsage {
        cpu_s,
        peak_rss_kib: kib("VmHWM:"),
        rss_kib: kib("VmRSS:"),
        write_bytes: io_field("write_bytes:"),
        syscw: io_field("syscw:"),
    })
}

/// USER_HZ; 100 on every Linux this runs on (getconf CLK_TCK), asked once.
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The gateway binary every run of this process starts, when not the one beside it.
static GATEWAY_BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Runs every gateway of this process from `path` instead of the release binary beside
/// `sn-bench` (first call wins), e.g. an older build to compare against.
pub fn set_gateway_binary(path: PathBuf) {
    let _ = GATEWAY_BINARY.set(path);
}

/// The gateway binary to start: the one [`set_gateway_binary`] chose, else the release binary
/// built beside this one (`cargo build --release` builds both).
pub fn gateway_binary() -> Result<PathBuf> {
    let path = match GATEWAY_BINARY.get() {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("mqtt-sn-gateway"),
    };
    if !path.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p gateway` (or pass \
             --gateway-bin PATH)",
            path.display()
        );
    }
    Ok(path)
}

/// Further arguments every gateway of this process is started with (`--gateway-arg`).
static EXTRA_ARGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Adds `args` to every gateway this process starts (first call wins), e.g. `--storage off`.
pub fn set_extra_args(args: Vec<String>) {
    let _ = EXTRA_ARGS.set(args);
}

/// The gateway's `--upstream-mode` for every run of this process (`transparent` until set).
static UPSTREAM_MODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the upstream mode every gateway of this process is started with (first call wins).
pub fn set_upstream_mode(mode: &str) {
    let _ = UPSTREAM_MODE.set(mode.to_owned());
}

/// The upstream mode the gateways run in.
pub fn upstream_mode() -> &'static str {
    UPSTREAM_MODE.get().map_or("transparent", String::as_str)
}

/// How a [`GatewayProcess`] is started beyond its listener, broker and upstream mode.
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    /// Further command-line arguments.
    pub args: Vec<String>,
    /// `--log` filter (`warn` when `None`).
    pub log: Option<String>,
    /// File the gateway's stderr, its log, is written to (inherited when `None`).
    pub log_file: Option<PathBuf>,
    /// Run as if under systemd: the notify socket's path and the watchdog interval
    /// (`WATCHDOG_USEC`); the gateway pets the socket every half interval.
    pub watchdog: Option<(PathBuf, Duration)>,
}

/// A gateway child process, killed on drop.
#[derive(Debug)]
pub struct GatewayProcess {
    child: Child,
    /// Its process id.
    pub pid: u32,
}

impl GatewayProcess {
    /// Starts the gateway on `127.0.0.1:udp_port` against `broker_url`.
    pub async fn start(udp_port: u16, broker_url: &str, options: &GatewayOptions) -> Result<Self> {
        let binary = gateway_binary()?;
        let mut cmd = Command::new(&binary);
        cmd.args([
            "--listen",
            &format!("127.0.0.1:{udp_port}"),
            "--upstream",
            broker_url,
            "--upstream-mode",
            upstream_mode(),
            "--log",
            options.log.as_deref().unwrap_or("warn"),
        ])
        .args(&options.args)
        .args(EXTRA_ARGS.get().into_iter().flatten())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
        match &options.log_file {
            Some(path) => cmd.stderr(
                std::fs::File::create(path)
                    .with_context(|| format!("create {}", path.display()))?,
            ),
            None => cmd.stderr(Stdio::inherit()),
        };
        crate::daemon::systemd_env(
            &mut cmd,
            options
                .watchdog
                .as_ref()
                .map(|(path, interval)| (path.as_path(), *interval)),
        );
        let child = cmd
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let pid = child.id().context("gateway pid")?;
        Ok(GatewayProcess { child, pid })
    }

    /// Stops the gateway (SIGKILL) and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
