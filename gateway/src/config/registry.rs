//! The client registry file (`clients.toml`): the paired motes, each with an optional pinned
//! address, upstream credentials, predefined topics and allowed topics.
//!
//! ```toml
//! [[client]]
//! client_id = "mote-1"
//! address = "192.168.4.20"            # pin: UDP source IP (or "IP:PORT")
//! # forwarder = "192.168.4.2"         # or pin: a node behind this forwarder…
//! # wnid = "0013a200415b6c2d"         # …with this wireless node id (hex)
//! username = "mote-1"                 # upstream MQTT credentials of this mote
//! password = "secret"
//! tls_client_cert = "certs/mote-1.pem"   # its own TLS client certificate (mqtts)
//! tls_client_key = "certs/mote-1.key"    # (paths relative to this file)
//! publish = ["sensors/mote-1/#"]      # allowed topics (absent = anything)
//! subscribe = ["cmd/mote-1/#"]
//! predefined = [{ id = 10, topic = "mote-1/config" }]
//! ```
//!
//! Pairing appends entries with [`append_client`], keeping the file's comments and layout and
//! replacing it atomically (write a temporary file, flush it to disk, rename).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Position};
use super::values;
use crate::core::config::{ClientEntry, ClientIdentity, Credentials, GatewayConfig, Pin};
use crate::core::topics;

/// The text a new registry file starts with.
const HEADER: &str = "\
# Paired MQTT-SN clients of mqtt-sn-gateway: one [[client]] table per mote.
# `mqtt-sn-gateway pair --for 2m` appends the motes that connect during the pairing window;
# edit entries freely (comments are kept). Keys of an entry, all optional but client_id:
#   address = \"IP\" or \"IP:PORT\"         only accept the mote from this UDP source
#   forwarder = \"IP\", wnid = \"hex\"       only accept it behind this forwarder and node id
#   username, password                   its own upstream MQTT credentials
#   tls_client_cert, tls_client_key      its own TLS client certificate and key (PEM files)
#   publish = [\"filter\", ...]            topics it may publish to (absent: any)
#   subscribe = [\"filter\", ...]          topics it may subscribe within (absent: any)
#   predefined = [{ id = N, topic = \"t\" }] its own predefined topic ids
# Reload a running gateway after editing: systemctl reload mqtt-sn-gateway (SIGHUP).
";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRegistry {
    /// `[[client]]` tables.
    #[serde(default)]
    client: Vec<FileClient>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileClient {
    client_id: Spanned<String>,
    address: Option<Spanned<String>>,
    forwarder: Option<Spanned<String>>,
    wnid: Option<Spanned<String>>,
    username: Option<String>,
    password: Option<String>,
    tls_client_cert: Option<Spanned<String>>,
    tls_client_key: Option<Spanned<String>>,
    publish: Option<Vec<Spanned<String>>>,
    subscribe: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    predefined: Vec<FileClientPredefined>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileClientPredefined {
    id: Spanned<i64>,
    topic: Spanned<String>,
}

/// A validated registry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    /// Entries by ClientId.
    pub entries: BTreeMap<String, ClientEntry>,
    /// Upstream credentials by ClientId.
    pub credentials: BTreeMap<String, Credentials>,
    /// Predefined topic ids by ClientId.
    pub predefined: BTreeMap<String, BTreeMap<u16, String>>,
    /// TLS client certificates by ClientId.
    pub identities: BTreeMap<String, ClientIdentity>,
}

impl Registry {
    /// Puts the registry into `core`: entries, per-client credentials and predefined ids
    /// (the registry's win over the main file's for the same client and id).
    pub fn apply_to(&self, core: &mut GatewayConfig) {
        core.clients.registry = self.entries.clone();
        for (id, c) in &self.credentials {
            core.upstream
                .per_client_credentials
                .insert(id.clone(), c.clone());
        }
        for (id, map) in &self.predefined {
            core.predefined
                .per_client
                .entry(id.clone())
                .or_default()
                .extend(map.clone());
        }
        core.upstream.per_client_identity = self.identities.clone();
    }
}

/// Reads and validates the registry at `path`; a missing file is an empty registry.
///
/// # Errors
///
/// [`ConfigError::Read`] when the file exists but cannot be read; [`ConfigError::Parse`] /
/// [`ConfigError::Invalid`] with the file, line and column of the problem.
pub fn load_registry(path: &Path, client_id_max_len: usize) -> Result<Registry, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_registry(&text, path, client_id_max_len),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Validates registry `text` read from `path`.
///
/// # Errors
///
/// As [`load_registry`].
pub fn parse_registry(
    text: &str,
    path: &Path,
    client_id_max_len: usize,
) -> Result<Registry, ConfigError> {
    let file: FileRegistry = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        position: e.span().map(|s| Position::of_span(text, &s)),
        message: e.message().trim().to_owned(),
    })?;
    let invalid =
        |span: std::ops::Range<usize>, key: String, reason: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            position: Some(Position::of_span(text, &span)),
            key,
            reason,
        };
    let mut reg = Registry::default();
    for (i, c) in file.client.iter().enumerate() {
        let key = |k: &str| format!("client[{i}].{k}");
        let id = c.client_id.get_ref();
        if id.is_empty() || id.len() > client_id_max_len || id.contains('\0') {
            let reason = format!("must be 1..={client_id_max_len} octets without NUL");
            return Err(invalid(c.client_id.span(), key("client_id"), reason));
        }
        if reg.entries.contains_key(id) {
            return Err(invalid(
                c.client_id.span(),
                key("client_id"),
                format!("{id:?} is listed twice"),
            ));
        }
        let pin = pin(c).map_err(|(span, k, r)| invalid(span, key(k), r))?;
        let filters = |list: &Option<Vec<Spanned<String>>>, k: &str| {
            list.as_ref()
                .map(|l| {
                    l.iter()
                        .map(|f| match topics::topic_filter(f.get_ref().as_bytes()) {
                            Ok(s) => Ok(s.to_owned()),
                            Err(e) => Err(invalid(
                                f.span(),
                                key(k),
                                format!("{:?} is not a topic filter ({e:?})", f.get_ref()),
                            )),
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
        };
        let entry = ClientEntry {
            pin,
            publish: filters(&c.publish, "publish")?,
            subscribe: filters(&c.subscribe, "subscribe")?,
        };
        match (&c.username, &c.password) {
            (Some(u), p) => {
                reg.credentials.insert(
                    id.clone(),
                    Credentials {
                        username: u.clone(),
                        password: p.clone(),
                    },
                );
            }
            (None, Some(_)) => {
                return Err(invalid(
                    c.client_id.span(),
                    key("password"),
                    "a password needs a username".into(),
                ));
            }
            (None, None) => {}
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let file = |v: &Spanned<String>, k: &str| -> Result<PathBuf, ConfigError> {
            let p = base.join(v.get_ref());
            std::fs::File::open(&p).map(|_| p.clone()).map_err(|e| {
                invalid(
                    v.span(),
                    key(k),
                    format!("cannot read {}: {e}", p.display()),
                )
            })
        };
        match (&c.tls_client_cert, &c.tls_client_key) {
            (Some(cert), Some(k)) => {
                let identity = ClientIdentity {
                    cert: file(cert, "tls_client_cert")?,
                    key: file(k, "tls_client_key")?,
                };
                reg.identities.insert(id.clone(), identity);
            }
            (None, None) => {}
            (Some(v), None) | (None, Some(v)) => {
                let reason = "tls_client_cert and tls_client_key go together".to_owned();
                return Err(invalid(v.span(), key("tls_client_cert"), reason));
            }
        }
        let mut ids = BTreeMap::new();
        for (j, p) in c.predefined.iter().enumerate() {
            let pid = values::predefined_id(*p.id.get_ref())
                .map_err(|r| invalid(p.id.span(), key(&format!("predefined[{j}].id")), r))?;
            values::concrete_topic(p.topic.get_ref())
                .map_err(|r| invalid(p.topic.span(), key(&format!("predefined[{j}].topic")), r))?;
            if ids.insert(pid, p.topic.get_ref().clone()).is_some() {
                return Err(invalid(
                    p.id.span(),
                    key(&format!("predefined[{j}].id")),
                    format!("id {pid} is listed twice"),
                ));
            }
        }
        if !ids.is_empty() {
            reg.predefined.insert(id.clone(), ids);
        }
        reg.entries.insert(id.clone(), entry);
    }
    Ok(reg)
}

type PinError = (std::ops::Range<usize>, &'static str, String);

fn pin(c: &FileClient) -> Result<Option<Pin>, PinError> {
    match (&c.address, &c.forwarder, &c.wnid) {
        (None, None, None) => Ok(None),
        (Some(a), None, None) => {
            let s = a.get_ref();
            if let Ok(addr) = s.parse::<SocketAddr>() {
                Ok(Some(Pin::Udp {
                    ip: addr.ip(),
                    port: Some(addr.port()),
                }))
            } else if let Ok(ip) = s.parse::<IpAddr>() {
                Ok(Some(Pin::Udp { ip, port: None }))
            } else {
                Err((
                    a.span(),
                    "address",
                    format!("{s:?} is neither an IP address nor IP:PORT"),
                ))
            }
        }
        (None, Some(f), Some(w)) => {
            let forwarder = f.get_ref().parse::<IpAddr>().map_err(|_| {
                (
                    f.span(),
                    "forwarder",
                    format!("{:?} is not an IP address", f.get_ref()),
                )
            })?;
            let wnid = hex(w.get_ref())
                .filter(|b| !b.is_empty() && b.len() <= sn_codec::encap::MAX_WNID_LEN)
                .ok_or_else(|| {
                    (
                        w.span(),
                        "wnid",
                        format!("{:?} is not 1..=252 octets of hex", w.get_ref()),
                    )
                })?;
            Ok(Some(Pin::Forwarded { forwarder, wnid }))
        }
        (Some(a), _, _) => Err((
            a.span(),
            "address",
            "address cannot be combined with forwarder/wnid".into(),
        )),
        (None, Some(f), None) => Err((f.span(), "forwarder", "forwarder needs wnid".into())),
        (None, None, Some(w)) => Err((w.span(), "wnid", "wnid needs forwarder".into())),
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_start_matches("0x");
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// Appends `[[client]] client_id = …` to the registry at `path` (created when missing), with
/// `note` as a comment above it, keeping every existing comment and layout. The file is
/// replaced atomically; an entry that already exists is left alone.
///
/// # Errors
///
/// I/O errors, or a file that is not valid TOML (it is then left untouched).
pub fn append_client(path: &Path, client_id: &str, note: &str) -> std::io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A new file: the explanatory header, then the entry.
            let id = toml_edit::Value::from(client_id).to_string();
            let text = format!(
                "{HEADER}\n# {note}\n[[client]]\nclient_id = {}\n",
                id.trim()
            );
            return write_atomically(path, text.as_bytes());
        }
        Err(e) => return Err(e),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    let clients = doc
        .entry("client")
        .or_insert_with(|| toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
    let Some(array) = clients.as_array_of_tables_mut() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "`client` is not an array of tables",
        ));
    };
    if array
        .iter()
        .any(|t| t.get("client_id").and_then(|v| v.as_str()) == Some(client_id))
    {
        return Ok(());
    }
    let mut table = toml_edit::Table::new();
    table.insert("client_id", toml_edit::value(client_id));
    table.decor_mut().set_prefix(format!("\n# {note}\n"));
    array.push(table);
    write_atomically(path, doc.to_string().as_bytes())
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and renames it over
/// `path`, so a crash leaves either the old or the new file, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Registry, ConfigError> {
        parse_registry(text, Path::new("clients.toml"), 23)
    }

    #[test]
    fn a_full_entry_is_understood() {
        let r = parse(
            r#"
            [[client]]
            client_id = "m1"
            address = "10.0.0.5:4000"
            username = "u"
            password = "p"
            publish = ["s/m1/#"]
            subscribe = ["c/m1/+"]
            predefined = [{ id = 10, topic = "m1/config" }]
            [[client]]
            client_id = "x1"
            forwarder = "10.0.0.2"
            wnid = "0013a200415b6c2d"
            "#,
        )
        .unwrap();
        let m1 = &r.entries["m1"];
        assert_eq!(
            m1.pin,
            Some(Pin::Udp {
                ip: [10, 0, 0, 5].into(),
                port: Some(4000)
            })
        );
        assert_eq!(m1.publish.as_deref(), Some(&["s/m1/#".to_owned()][..]));
        assert_eq!(r.credentials["m1"].username, "u");
        assert_eq!(r.predefined["m1"][&10], "m1/config");
        assert_eq!(
            r.entries["x1"].pin,
            Some(Pin::Forwarded {
                forwarder: [10, 0, 0, 2].into(),
                wnid: vec![0, 0x13, 0xA2, 0, 0x41, 0x5B, 0x6C, 0x2D]
            })
        );
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        for (text, expect) in [
            (
                "[[client]]\nclient_id = \"m1\"\naddress = \"nowhere\"\n",
                "clients.toml:3:11: invalid value for client[0].address",
            ),
            (
                "[[client]]\nclient_id = \"m1\"\n[[client]]\nclient_id = \"m1\"\n",
                "clients.toml:4:13: invalid value for client[1].client_id",
            ),
            (
                "[[client]]\nclient_id = \"m1\"\npublish = [\"a/#/b\"]\n",
                "clients.toml:3:12: invalid value for client[0].publish",
            ),
            (
                "[[client]]\nclient_id = \"m1\"\ncolour = 1\n",
                "clients.toml:3:1: unknown field `colour`",
            ),
            (
                "[[client]]\nclient_id = \"m1\"\nforwarder = \"10.0.0.1\"\n",
                "clients.toml:3:13: invalid value for client[0].forwarder",
            ),
            (
                "[[client]]\nclient_id = \"m1\"\npredefined = [{ id = 0, topic = \"t\" }]\n",
                "clients.toml:3:22: invalid value for client[0].predefined[0].id",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(expect), "{e}");
        }
    }

    #[test]
    fn appending_keeps_comments_and_existing_entries_and_is_idempotent() {
        let dir = std::env::temp_dir().join(format!("registry-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clients.toml");
        std::fs::write(
            &path,
            "# my motes\n\n[[client]]\n# the shed sensor\nclient_id = \"shed\"  # keep me\n",
        )
        .unwrap();
        append_client(&path, "new-1", "paired 2026-11-21 from 10.0.0.7:5000").unwrap();
        append_client(&path, "new-1", "again").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(
                "# my motes\n\n[[client]]\n# the shed sensor\nclient_id = \"shed\"  # keep me\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "# paired 2026-11-21 from 10.0.0.7:5000\n[[client]]\nclient_id = \"new-1\"\n"
            ),
            "{text}"
        );
        assert_eq!(text.matches("new-1").count(), 1);
        let r = parse(&text).unwrap();
        assert_eq!(r.entries.keys().collect::<Vec<_>>(), ["new-1", "shed"]);
        // A missing file is created with the explanatory header.
        let fresh = dir.join("fresh.toml");
        let _ = std::fs::remove_file(&fresh);
        append_client(&fresh, "m9", "paired").unwrap();
        let text = std::fs::read_to_string(&fresh).unwrap();
        assert!(text.starts_with("# Paired MQTT-SN clients"));
        assert_eq!(parse(&text).unwrap().entries.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
