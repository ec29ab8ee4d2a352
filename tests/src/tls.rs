//! Test TLS material generated per run with the `openssl` CLI (`docs/architecture.md`, "Rules
//! for tests on real networks").
//!
//! One CA signs a server certificate (SANs from the caller, by default `DNS:localhost` and
//! `IP:127.0.0.1`: rustls checks the host name against the SANs, so connecting to 127.0.0.1
//! needs the IP SAN), a client certificate (`CN=client-1`) for client-certificate tests, and a
//! "wrong host" server certificate whose only SAN is `DNS:wrong.example`, so a test can check
//! that the host name check refuses it.
//!
//! Keys are P-256 EC keys (fast to generate, supported by rustls/ring and mosquitto). Every file
//! is mode 0644 and the directory 0755: mosquitto started as root drops privileges to the
//! `mosquitto` user and must still read them. This is test-only material.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

/// The SAN of the "wrong host" server certificate.
pub const WRONG_HOST: &str = "wrong.example";

/// Days of validity of the generated certificates.
const DAYS: &str = "2";

/// Paths of a generated CA, server, client and wrong-host certificate set (PEM files).
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// CA certificate: the trust anchor for clients and for mosquitto's `cafile`.
    pub ca_cert: PathBuf,
    /// CA private key.
    pub ca_key: PathBuf,
    /// Server certificate signed by the CA, SANs as requested.
    pub server_cert: PathBuf,
    /// Server private key.
    pub server_key: PathBuf,
    /// Client certificate signed by the CA, `CN=client-1`, extended key usage `clientAuth`.
    pub client_cert: PathBuf,
    /// Client private key.
    pub client_key: PathBuf,
    /// Server certificate signed by the CA whose only SAN is `DNS:wrong.example`.
    pub wrong_host_cert: PathBuf,
    /// Private key of [`TlsMaterial::wrong_host_cert`].
    pub wrong_host_key: PathBuf,
    /// Keeps a self-created directory alive as long as any clone of the material.
    owned_dir: Option<Arc<TempDir>>,
}

impl TlsMaterial {
    /// Generates the material into `dir` (created if missing) with the given server names;
    /// each entry that parses as an IP address becomes an `IP:` SAN, every other a `DNS:` SAN.
    pub fn generate(dir: &Path, server_names: &[&str]) -> Result<Self> {
        if server_names.is_empty() {
            bail!("TlsMaterial::generate needs at least one server name");
        }
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        set_mode(dir, 0o755)?;
        let material = Self {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
            wrong_host_cert: dir.join("wrong-host.crt"),
            wrong_host_key: dir.join("wrong-host.key"),
            owned_dir: None,
        };

        // CA: self-signed, CA:TRUE.
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            path_str(&material.ca_key)?,
            "-out",
            path_str(&material.ca_cert)?,
            "-days",
            DAYS,
            "-subj",
            "/CN=sn-tests CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])?;

        let sans = server_names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(_) => format!("IP:{name}"),
                Err(_) => format!("DNS:{name}"),
            })
            .collect::<Vec<_>>()
            .join(",");
        let first = server_names.first().copied().unwrap_or("localhost");
        material.issue(
            dir,
            "server",
            &format!("/CN={first}"),
            &format!("subjectAltName={sans}\nextendedKeyUsage=serverAuth\n"),
            &material.server_key,
            &material.server_cert,
        )?;
        material.issue(
            dir,
            "client",
            "/CN=client-1",
            "extendedKeyUsage=clientAuth\n",
            &material.client_key,
            &material.client_cert,
        )?;
        material.issue(
            dir,
            "wrong-host",
            &format!("/CN={WRONG_HOST}"),
            &format!("subjectAltName=DNS:{WRONG_HOST}\nextendedKeyUsage=serverAuth\n"),
            &material.wrong_host_key,
            &material.wrong_host_cert,
        )?;

        for entry in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
            let path = entry?.path();
            if path.is_file() {
                set_mode(&path, 0o644)?;
            }
        }
        Ok(material)
    }

    /// Generates the material for `localhost` and `127.0.0.1` into a fresh temporary directory
    /// (0755) that lives as long as the returned value or any clone of it.
    pub fn generate_temp() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sn-tests-tls-")
            .tempdir()
            .context("create temp dir for TLS material")?;
        let mut material = Self::generate(dir.path(), &["localhost", "127.0.0.1"])?;
        material.owned_dir = Some(Arc::new(dir));
        Ok(material)
    }

    /// A copy whose server certificate and key are the wrong-host pair (SAN `DNS:wrong.example`
    /// only): a broker started with it must be refused by a client checking `127.0.0.1`.
    pub fn with_wrong_host_server(&self) -> Self {
        let mut copy = self.clone();
        copy.server_cert = self.wrong_host_cert.clone();
        copy.server_key = self.wrong_host_key.clone();
        copy
    }

    /// Creates a key and a certificate signed by the CA with the given v3 extensions.
    fn issue(
        &self,
        dir: &Path,
        name: &str,
        subject: &str,
        extensions: &str,
        key: &Path,
        cert: &Path,
    ) -> Result<()> {
        let csr = dir.join(format!("{name}.csr"));
        let ext = dir.join(format!("{name}.ext"));
        fs::write(
            &ext,
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                 {extensions}"
            ),
        )
        .with_context(|| format!("write {}", ext.display()))?;
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            path_str(key)?,
            "-out",
            path_str(&csr)?,
            "-subj",
            subject,
        ])?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            path_str(&csr)?,
            "-CA",
            path_str(&self.ca_cert)?,
            "-CAkey",
            path_str(&self.ca_key)?,
            "-CAcreateserial",
            "-out",
            path_str(cert)?,
            "-days",
            DAYS,
            "-extfile",
            path_str(&ext)?,
        ])?;
        Ok(())
    }
}

/// Runs `openssl` with the arguments; fails with its output when it does not succeed.
fn openssl(args: &[&str]) -> Result<()> {
    let output = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("run the openssl CLI (is openssl installed?)")?;
    if !output.status.success() {
        bail!(
            "openssl {} failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A path as UTF-8 for a command line.
fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("path is not UTF-8: {}", path.display()))
}

/// Sets the Unix permission bits of a path.
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}
