//! Runs the Python interop driver `tests/interop/mqttsn_client.py` (PyPI `mqtt-sn-12`), an
//! independent MQTT-SN v1.2 client, against a gateway on a loopback UDP port.
//! See `src/README-interop.md` for its flags, output format and the library's quirks.
//!
//! The interpreter is `$SN_PYTHON` (default `python3`). Tests should call [`require`] first: it
//! returns `false` (skip) when the library is not importable, unless
//! `SN_REQUIRE_PY_INTEROP=1` is set (CI), where a missing library is an error.

use std::path::PathBuf;
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::timeout;

/// Extra time granted over the driver's own `--timeout` before it is killed.
const GRACE: Duration = Duration::from_secs(3);

/// The Python interpreter: `$SN_PYTHON` or `python3`.
pub fn python() -> String {
    std::env::var("SN_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Absolute path of `tests/interop/mqttsn_client.py`.
pub fn driver_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("interop")
        .join("mqttsn_client.py")
}

/// Whether the interpreter can import `mqttsn12` (bounded to 10 s).
pub async fn available() -> bool {
    let probe = Command::new(python())
        .args(["-c", "import mqttsn12.client.MqttSnClient"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    matches!(
        timeout(Duration::from_secs(10), probe).await,
        Ok(Ok(status)) if status.success()
    )
}

/// `Ok(true)` when interop tests can run; `Ok(false)` (with a notice on stderr) when the
/// library is missing; an error when it is missing and `SN_REQUIRE_PY_INTEROP=1`.
pub async fn require() -> Result<bool> {
    if available().await {
        return Ok(true);
    }
    let hint = format!(
        "python module mqttsn12 not importable by {}; install with: \
         {} -m pip install mqtt-sn-12==1.0.9",
        python(),
        python()
    );
    if std::env::var("SN_REQUIRE_PY_INTEROP").is_ok_and(|v| v == "1") {
        bail!("{hint}");
    }
    eprintln!("skipping Python interop test: {hint}");
    Ok(false)
}

/// Runs the driver with `args` to completion, killing it after `limit`; returns its output
/// (check `status`, stdout lines are received messages for `sub`).
pub async fn run(args: &[&str], limit: Duration) -> Result<Output> {
    let child = command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn the Python interop driver")?;
    timeout(limit, child.wait_with_output())
        .await
        .with_context(|| format!("interop driver {args:?} still running after {limit:?}"))?
        .context("wait for the interop driver")
}

/// Runs `pub` against `127.0.0.1:port` (QoS −1 needs `topic_id` or a 2-character topic);
/// fails with the driver's stderr unless it exits 0.
pub async fn publish(port: u16, topic: TopicArg<'_>, qos: i8, message: &str) -> Result<()> {
    let port = port.to_string();
    let qos = qos.to_string();
    let (flag, value) = topic.flag();
    let args = [
        "pub",
        "--port",
        &port,
        flag,
        &value,
        "--qos",
        &qos,
        "--message",
        message,
        "--timeout",
        "10",
    ];
    let output = run(&args, Duration::from_secs(10) + GRACE).await?;
    if !output.status.success() {
        bail!(
            "interop pub {args:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// How the driver names a topic.
#[derive(Debug, Clone, Copy)]
pub enum TopicArg<'a> {
    /// `--topic NAME` (2 characters are sent as a short topic id by the library).
    Name(&'a str),
    /// `--topic-id ID`: a predefined topic id.
    Predefined(u16),
}

impl TopicArg<'_> {
    fn flag(&self) -> (&'static str, String) {
        match self {
            TopicArg::Name(name) => ("--topic", (*name).to_owned()),
            TopicArg::Predefined(id) => ("--topic-id", id.to_string()),
        }
    }
}

/// A running `sub` driver (`--ready-line`, tab-separated output) whose stdout is read line
/// by line. Killed on drop.
#[derive(Debug)]
pub struct InteropSubscriber {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl InteropSubscriber {
    /// Starts `sub` against `127.0.0.1:port` for `topics` at `qos` (0–2), expecting `count`
    /// messages within `limit_secs` seconds; `extra` is appended to the arguments.
    pub fn spawn(
        port: u16,
        topics: &[TopicArg<'_>],
        qos: u8,
        count: usize,
        limit_secs: u32,
        extra: &[&str],
    ) -> Result<Self> {
        let mut args: Vec<String> = [
            "sub",
            "--port",
            &port.to_string(),
            "--qos",
            &qos.to_string(),
            "--count",
            &count.to_string(),
            "--timeout",
            &limit_secs.to_string(),
            "--ready-line",
            "--format",
            "tsv",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for topic in topics {
            let (flag, value) = topic.flag();
            args.push(flag.to_owned());
            args.push(value);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = command(&arg_refs)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn the Python interop subscriber")?;
        let stdout = child.stdout.take().context("subscriber stdout")?;
        Ok(Self {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// Waits for the `READY` line (subscriptions acknowledged by the gateway).
    pub async fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        match self.next_line(limit).await? {
            Some(line) if line == "READY" => Ok(()),
            Some(line) => bail!("expected READY from the interop subscriber, got {line:?}"),
            None => bail!("interop subscriber ended before READY"),
        }
    }

    /// The next output line (`topic\tqos\tretain\tpayload`), `None` at end of output.
    pub async fn next_line(&mut self, limit: Duration) -> Result<Option<String>> {
        timeout(limit, self.lines.next_line())
            .await
            .with_context(|| format!("no line from the interop subscriber within {limit:?}"))?
            .context("read interop subscriber output")
    }

    /// Reads the remaining lines and waits for the exit status (bounded by `limit`).
    pub async fn finish(mut self, limit: Duration) -> Result<(ExitStatus, Vec<String>)> {
        let mut lines = Vec::new();
        timeout(limit, async {
            while let Some(line) = self.lines.next_line().await? {
                lines.push(line);
            }
            let status = self.child.wait().await?;
            Ok::<_, std::io::Error>(status)
        })
        .await
        .with_context(|| format!("interop subscriber did not exit within {limit:?}"))?
        .context("interop subscriber")
        .map(|status| (status, lines))
    }
}

/// The driver command with `args`, killed on drop.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(python());
    command
        .arg(driver_path())
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}
