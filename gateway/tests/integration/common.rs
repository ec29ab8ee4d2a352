//! Helpers shared by the modules: free loopback ports, encoding, scratch directories, child
//! processes killed on drop, and a mosquitto started per test.

use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gateway::io::config::UpstreamEndpoint;
use sn_codec::Packet;

/// How long [`Mosquitto::expect_log`] waits.
const WAIT: Duration = Duration::from_secs(5);

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `p` encoded.
pub(crate) fn encode(p: &Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; p.encoded_len().unwrap()];
    let n = p.encode(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// A fresh directory for one test's files, removed on drop. World-traversable: mosquitto drops
/// to its own user and must still read the files in it.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory whose name starts with `name`.
    pub(crate) fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path =
            std::env::temp_dir().join(format!("gw-{name}-{}-{n}-{nanos}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(path)
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file readable by everyone (test material only).
    pub(crate) fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process, killed on drop.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `sig` (`-HUP`, `-TERM`, ...) to `child` with kill(1).
pub(crate) fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// A running mosquitto on a free loopback port; killed on drop.
pub(crate) struct Mosquitto {
    child: Child,
    conf: PathBuf,
    /// The main listener (anonymous clients, plain TCP).
    pub(crate) port: u16,
    /// Extra listener ports (TLS), in the order the config asked for them.
    pub(crate) extra_ports: Vec<u16>,
    dir: TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mosquitto {
    /// Anonymous broker.
    pub(crate) fn start() -> Self {
        Self::start_with(|_, _| "allow_anonymous true\n".to_owned(), 0)
    }

    /// `settings(dir, extra_ports)` returns the config lines after the main listener;
    /// `extra` more free ports are reserved for it.
    pub(crate) fn start_with(settings: impl Fn(&TempDir, &[u16]) -> String, extra: usize) -> Self {
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let dir = TempDir::new("mosquitto");
            let port = free_tcp_port();
            let extra_ports: Vec<u16> = (0..extra).map(|_| free_tcp_port()).collect();
            // The log file is flushed per line (stdout to a file is not): tests wait on it.
            let log_file = dir.write("mosquitto.log", "");
            std::fs::set_permissions(&log_file, std::fs::Permissions::from_mode(0o666)).unwrap();
            let config = format!(
                "listener {port} 127.0.0.1\npersistence false\nlog_dest file {}\n\
                 log_type all\n{}",
                log_file.display(),
                settings(&dir, &extra_ports)
            );
            let conf = dir.write("mosquitto.conf", &config);
            let log = std::fs::File::create(dir.path().join("mosquitto.out")).unwrap();
            let child = Command::new("mosquitto")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("mosquitto not installed (apt-get install -y mosquitto mosquitto-clients)");
            let mut broker = Mosquitto {
                child,
                conf,
                port,
                extra_ports,
                dir,
            };
            if broker.wait_ready() {
                return broker;
            }
            last_log = broker.log();
        }
        panic!("mosquitto did not start:\n{last_log}");
    }

    /// Kills the broker (no clean shutdown).
    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the broker again with the same config and ports (after [`Mosquitto::kill`]).
    pub(crate) fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("mosquitto.out"))
            .unwrap();
        self.child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        assert!(
            self.wait_ready(),
            "mosquitto did not restart:\n{}",
            self.log()
        );
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let ports: Vec<u16> = std::iter::once(self.port)
            .chain(self.extra_ports.iter().copied())
            .collect();
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if ports
                .iter()
                .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The broker's output and log so far.
    pub(crate) fn log(&self) -> String {
        let mut s = String::new();
        for name in ["mosquitto.out", "mosquitto.log"] {
            if let Ok(mut f) = std::fs::File::open(self.dir.path().join(name)) {
                let _ = f.read_to_string(&mut s);
            }
        }
        s
    }

    /// Waits (at most 5 s) until the broker's log contains `needle` `times` times.
    pub(crate) async fn expect_log(&self, needle: &str, times: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.log().matches(needle).count() < times {
            assert!(
                tokio::time::Instant::now() < deadline,
                "mosquitto never logged {needle:?} x{times}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the broker.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The plain-TCP endpoint of the main listener.
    pub(crate) fn endpoint(&self) -> UpstreamEndpoint {
        UpstreamEndpoint {
            host: "127.0.0.1".into(),
            port: self.port,
            ..UpstreamEndpoint::default()
        }
    }
}
