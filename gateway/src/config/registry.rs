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
//! Pairing appends entries with [`append_client`] and `mqtt-sn-gateway unpair` removes them
//! with [`remove_client`], keeping the file's comments and layout and replacing it atomically
//! (write a temporary file, flush it to disk, rename) with the old file's mode and owner.
//! [`check_writable`] tells beforehand whether that can work.
//!
//! A registry file that lists no client, or a missing one, is fine at start-up, but a reload
//! refuses it while the running registry has clients ([`RegistryStatus::check_reload`]), unless
//! the file says it is empty on purpose with the top-level key `allow_empty = true`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
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
#   short_topic_suback_id = \"zero\"       SUBACK TopicId for its short names (\"name\"/\"zero\")
# `mqtt-sn-gateway unpair CLIENT_ID` removes an entry. A reload that would leave no client
# (every entry gone, an empty or a deleted file) is refused while the gateway has clients,
# unless the top-level key `allow_empty = true` (above the first [[client]]) says the file is
# empty on purpose; unpair sets it when it removes the last entry.
# Reload a running gateway after editing: systemctl reload mqtt-sn-gateway (SIGHUP).
";

/// The comment [`remove_client`] puts above the `allow_empty = true` it writes.
const ALLOW_EMPTY_NOTE: &str = "\
# Emptied on purpose by `mqtt-sn-gateway unpair`: a reload may leave the gateway without
# registered clients.
";

/// Bytes [`check_writable`] writes to its test file, at least (a rewrite of the registry needs
/// about the file's size; the probe writes that much more).
const PROBE_BYTES: usize = 4096;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRegistry {
    /// `allow_empty = true`: the file lists no client on purpose (a reload may empty the
    /// running registry).
    #[serde(default)]
    allow_empty: bool,
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
    short_topic_suback_id: Option<Spanned<String>>,
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
    /// Whether the file existed (`false`: a missing file, read as an empty registry).
    pub exists: bool,
    /// The file's `allow_empty = true`: it is empty on purpose.
    pub allow_empty: bool,
}

/// What a reload needs to know about the registry file it read: see
/// [`RegistryStatus::check_reload`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryStatus {
    /// The registry file.
    pub path: PathBuf,
    /// Whether it existed.
    pub exists: bool,
    /// Its `[[client]]` entries.
    pub clients: usize,
    /// Its `allow_empty = true`.
    pub allow_empty: bool,
}

impl RegistryStatus {
    /// Whether a reload may replace a running registry of `running` clients with this file:
    /// not when the file is missing or lists no client while `running` is not zero, unless
    /// the file has `allow_empty = true`. A deleted, truncated or emptied file is far more
    /// often an accident (a full disk, a cleanup script, an editor) than a wish to lock out
    /// every mote.
    ///
    /// # Errors
    ///
    /// [`ReloadRefused`], naming the file and how to empty the registry on purpose.
    pub fn check_reload(&self, running: usize) -> Result<(), ReloadRefused> {
        if running == 0 || self.clients > 0 || (self.exists && self.allow_empty) {
            return Ok(());
        }
        Err(ReloadRefused {
            path: self.path.clone(),
            exists: self.exists,
            running,
        })
    }
}

/// A reload would have emptied a registry that has clients (see
/// [`RegistryStatus::check_reload`]).
///
/// **Fault:** the operator or the host (the registry file was deleted, truncated or emptied).
/// **Recovery:** the running settings stay; restore the file, or mark it empty on purpose with
/// `allow_empty = true` and reload again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ReloadRefused {
    /// The registry file.
    pub path: PathBuf,
    /// Whether it existed (`false`: missing).
    pub exists: bool,
    /// Clients of the running registry.
    pub running: usize,
}

impl fmt::Display for ReloadRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        let running = self.running;
        if self.exists {
            write!(
                f,
                "{path}: reload refused: the client registry file lists no [[client]] while the \
                 running gateway has {running} registered client(s), so every mote would be \
                 locked out; the running settings stay. To empty the registry on purpose, put \
                 `allow_empty = true` at the top of the file (`mqtt-sn-gateway unpair CLIENT_ID` \
                 does this when it removes the last client) and reload again"
            )
        } else {
            write!(
                f,
                "{path}: reload refused: the client registry file is missing while the running \
                 gateway has {running} registered client(s), so every mote would be locked out; \
                 the running settings stay. Restore the file; to empty the registry on purpose, \
                 create it with the single line `allow_empty = true` and reload again"
            )
        }
    }
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

    /// What a reload needs to know about this registry, read from `path`.
    pub fn status(&self, path: &Path) -> RegistryStatus {
        RegistryStatus {
            path: path.to_path_buf(),
            exists: self.exists,
            clients: self.entries.len(),
            allow_empty: self.allow_empty,
        }
    }
}

/// Reads and validates the registry at `path`; a missing file is an empty registry (with
/// [`Registry::exists`] false).
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
    let file: FileRegistry = sn_config::from_toml(text, path)?;
    let invalid = |span: std::ops::Range<usize>, key: String, reason: String| {
        ConfigError::invalid(path, text, Some(span), &key, reason)
    };
    let mut reg = Registry {
        exists: true,
        allow_empty: file.allow_empty,
        ..Registry::default()
    };
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
        let short_topic_suback_id = c
            .short_topic_suback_id
            .as_ref()
            .map(|v| {
                crate::core::config::ShortSubackId::from_name(v.get_ref()).ok_or_else(|| {
                    invalid(
                        v.span(),
                        key("short_topic_suback_id"),
                        format!(
                            "{:?} is not a choice: expected \"name\" or \"zero\"",
                            v.get_ref()
                        ),
                    )
                })
            })
            .transpose()?;
        let entry = ClientEntry {
            pin,
            publish: filters(&c.publish, "publish")?,
            subscribe: filters(&c.subscribe, "subscribe")?,
            short_topic_suback_id,
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

/// Why [`remove_client`] changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnpairError {
    /// The ClientId is not in the file.
    ///
    /// **Fault:** the operator (a typing error, or the mote was removed already).
    /// **Recovery:** exit 1; the message lists the ClientIds the file has.
    #[error(
        "{}: {client_id:?} is not in the client registry file (it lists {}); nothing was changed",
        path.display(),
        list(listed)
    )]
    NotListed {
        /// The registry file.
        path: PathBuf,
        /// The ClientId asked for.
        client_id: String,
        /// The ClientIds the file lists.
        listed: Vec<String>,
    },
    /// The file does not exist.
    ///
    /// **Fault:** the operator (another registry than the gateway's: `--registry` or
    /// `[clients] registry` differ from the daemon's). **Recovery:** exit 1.
    #[error(
        "{}: the client registry file does not exist, so there is no client to remove; is it \
         the gateway's registry (the --registry of the service, or [clients] registry of its \
         configuration)?",
        path.display()
    )]
    Missing {
        /// The registry file.
        path: PathBuf,
    },
    /// The file cannot be read, is not TOML, or its `client` entries are not `[[client]]`
    /// tables; the message names the file (and the line and column).
    ///
    /// **Fault:** the operator (path, permissions, or a hand edit). **Recovery:** exit 1.
    #[error(transparent)]
    File(#[from] ConfigError),
    /// The new file could not be written; the old one is untouched.
    ///
    /// **Fault:** the host (read-only or full file system, permissions). **Recovery:** exit 1.
    #[error("{}: cannot rewrite the client registry file: {source}; nothing was changed", path.display())]
    Write {
        /// The registry file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// ClientIds listed in a message at most.
const LISTED: usize = 10;

/// `"a", "b"`, `"a", …, "j" and 5 more`, or `no client`.
fn list(ids: &[String]) -> String {
    if ids.is_empty() {
        return "no client".to_owned();
    }
    let shown: Vec<String> = ids
        .iter()
        .take(LISTED)
        .map(|id| format!("{id:?}"))
        .collect();
    match ids.len().saturating_sub(LISTED) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// What [`remove_client`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpaired {
    /// Clients left in the file; when none is left the file got `allow_empty = true`.
    pub remaining: usize,
}

/// Removes the `[[client]]` entry of `client_id` from the registry at `path`, with the comment
/// lines right above it (down to the previous blank line); every other comment and the layout
/// are kept, and the file is replaced atomically with its mode and owner. When no entry is left
/// the file gets `allow_empty = true`, so that a reload empties the running registry instead
/// of refusing the file (see [`RegistryStatus::check_reload`]).
///
/// # Errors
///
/// [`UnpairError::NotListed`] when the file has no such entry, [`UnpairError::Missing`] when
/// there is no file; [`UnpairError::File`] when it cannot be read or parsed;
/// [`UnpairError::Write`] when it cannot be replaced. The file is unchanged in every case.
pub fn remove_client(path: &Path, client_id: &str) -> Result<Unpaired, UnpairError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(UnpairError::Missing {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(UnpairError::File(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }));
        }
    };
    let parsed = toml_edit::Document::parse(text.as_str())
        .map_err(|e| ConfigError::parse(path, &text, e.span(), e.message()))?;
    // Spans are there before the document is made editable.
    let client_span = parsed
        .as_table()
        .key("client")
        .and_then(toml_edit::Key::span);
    let mut doc = parsed.into_mut();
    let not_tables = || {
        ConfigError::invalid(
            path,
            &text,
            client_span.clone(),
            "client",
            "unpair edits [[client]] tables only; remove the entry by hand",
        )
    };
    let id_of = |t: &toml_edit::Table| {
        t.get("client_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let ids: Vec<Option<String>> = match doc.get("client") {
        None => Vec::new(),
        Some(item) => {
            let array = item.as_array_of_tables().ok_or_else(not_tables)?;
            array.iter().map(id_of).collect()
        }
    };
    let Some(index) = ids.iter().position(|id| id.as_deref() == Some(client_id)) else {
        return Err(UnpairError::NotListed {
            path: path.to_path_buf(),
            client_id: client_id.to_owned(),
            listed: ids.into_iter().flatten().collect(),
        });
    };
    let remaining = ids.len().saturating_sub(1);
    // The comment lines right above the entry go with it; what is above the last blank line
    // before them (a file header, a section comment) moves to the next entry, or to the end.
    let mut kept = String::new();
    if let Some(array) = doc
        .get_mut("client")
        .and_then(toml_edit::Item::as_array_of_tables_mut)
    {
        let removed = array.remove(index);
        let prefix = removed
            .decor()
            .prefix()
            .and_then(toml_edit::RawString::as_str)
            .unwrap_or_default();
        kept = split_entry_comment(prefix).0.to_owned();
        if let Some(next) = array.get_mut(index) {
            let next_prefix = next
                .decor()
                .prefix()
                .and_then(toml_edit::RawString::as_str)
                .unwrap_or_default()
                .to_owned();
            // `kept` ends with a blank line already.
            let next_prefix = if kept.is_empty() {
                next_prefix.as_str()
            } else {
                skip_blank_lines(&next_prefix)
            };
            next.decor_mut().set_prefix(format!("{kept}{next_prefix}"));
            kept.clear();
        }
    }
    if remaining == 0 {
        doc.remove("client");
        doc.insert("allow_empty", toml_edit::value(true));
        if let Some(mut key) = doc.as_table_mut().key_mut("allow_empty") {
            let old = key
                .leaf_decor()
                .prefix()
                .and_then(toml_edit::RawString::as_str)
                .unwrap_or_default()
                .to_owned();
            key.leaf_decor_mut()
                .set_prefix(format!("{old}{kept}{ALLOW_EMPTY_NOTE}"));
        }
    } else if kept.lines().any(|l| !l.trim().is_empty()) {
        let trailing = doc.trailing().as_str().unwrap_or_default().to_owned();
        doc.set_trailing(format!("{kept}{trailing}"));
    }
    write_atomically(path, doc.to_string().as_bytes()).map_err(|source| UnpairError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Unpaired { remaining })
}

/// Splits the text above a `[[client]]` header into what belongs to the file (up to and
/// including the last blank line) and the entry's own comment lines (after it).
fn split_entry_comment(prefix: &str) -> (&str, &str) {
    let mut split = 0;
    let mut at = 0;
    for line in prefix.split_inclusive('\n') {
        at += line.len();
        if line.trim().is_empty() {
            split = at;
        }
    }
    prefix.split_at(split)
}

/// `text` without its leading blank lines.
fn skip_blank_lines(text: &str) -> &str {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if !line.trim().is_empty() || !line.ends_with('\n') {
            break;
        }
        at += line.len();
    }
    text.get(at..).unwrap_or_default()
}

/// Why the registry file cannot be written (see [`check_writable`]).
///
/// **Fault:** the host or the operator: a read-only or full file system, a missing directory,
/// permissions, or the service's sandbox (systemd `ReadWritePaths`). **Recovery:** fix it and
/// try again; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[error("{}: the client registry file cannot be written: {action}: {source}", path.display())]
pub struct RegistryWriteError {
    /// The registry file.
    pub path: PathBuf,
    /// What failed, e.g. "cannot create a file in /var/lib/mqtt-sn-gateway".
    pub action: String,
    /// What the operating system said.
    #[source]
    pub source: std::io::Error,
}

/// Checks that the registry at `path` can be rewritten the way [`append_client`] does it, by
/// doing it: creates a test file in the registry's directory, writes the registry's size plus
/// 4 KiB to it and flushes that to disk, removes it, and opens the registry file itself (if it
/// exists) for writing, without changing it. A read-only or missing directory, a read-only
/// file system, a full one and a read-only registry file are all caught. It blocks on disk
/// I/O: call it from a blocking thread in async code.
///
/// # Errors
///
/// [`RegistryWriteError`], saying which step failed and naming the file.
pub fn check_writable(path: &Path) -> Result<(), RegistryWriteError> {
    use std::os::unix::fs::OpenOptionsExt;
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let fail = |action: String| {
        let path = path.to_path_buf();
        move |source| RegistryWriteError {
            path,
            action,
            source,
        }
    };
    let dir = parent_dir(path);
    let probe = dir.join(format!(
        ".{}.probe-{}-{}",
        file_name(path),
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    ));
    let size = match std::fs::metadata(path) {
        Ok(m) => usize::try_from(m.len()).unwrap_or(usize::MAX),
        Err(_) => 0,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&probe)
        .map_err(fail(format!("cannot create a file in {}", dir.display())))?;
    let bytes = size.saturating_add(PROBE_BYTES);
    let written = fill_and_sync(&mut file, bytes);
    drop(file);
    let removed = std::fs::remove_file(&probe);
    written.map_err(fail(format!(
        "cannot write {bytes} bytes to a file in {} and flush them to disk",
        dir.display()
    )))?;
    removed.map_err(fail(format!("cannot remove {}", probe.display())))?;
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fail("cannot open it for writing".to_owned())(e)),
    }
}

/// Writes `bytes` zero bytes to `file` and flushes them to disk (where a full file system
/// shows itself on file systems that allocate late).
fn fill_and_sync(file: &mut std::fs::File, bytes: usize) -> std::io::Result<()> {
    let chunk = [0u8; PROBE_BYTES];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        file.write_all(chunk.get(..n).unwrap_or_default())?;
        left -= n;
    }
    file.sync_all()
}

/// The directory of `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The file name of `path`, for temporary files beside it.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and renames it over
/// `path`, so a crash leaves either the old or the new file, never half of one. The new file
/// gets the old one's permission bits and, as far as the process may set them, its owner and
/// group; a new registry is created private (0600: it may hold passwords).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = parent_dir(path);
    let tmp: PathBuf = dir.join(format!(".{}.tmp-{}", file_name(path), std::process::id()));
    let original = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        take_mode_and_owner(&f, original.as_ref())?;
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

/// Gives `file` the owner, group and permission bits of `original` (0600 without one). An
/// owner or group the process may not give away (EPERM) is left as it is.
fn take_mode_and_owner(
    file: &std::fs::File,
    original: Option<&std::fs::Metadata>,
) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(m) = original else {
        return file.set_permissions(std::fs::Permissions::from_mode(0o600));
    };
    let denied = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(false),
        other => other.map(|()| true),
    };
    // Owner and group; failing that (not root), at least the group, which the owner may set
    // to one of its own groups.
    if !denied(std::os::unix::fs::fchown(
        file,
        Some(m.uid()),
        Some(m.gid()),
    ))? {
        denied(std::os::unix::fs::fchown(file, None, Some(m.gid())))?;
    }
    // After chown, which may clear set-id bits.
    file.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))
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

    /// A fresh directory under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("registry-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn rewriting_keeps_the_file_mode_and_a_new_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        for original in [0o600, 0o640] {
            let path = dir.join(format!("clients-{original:o}.toml"));
            std::fs::write(&path, "[[client]]\nclient_id = \"a\"\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(original)).unwrap();
            append_client(&path, "b", "paired").unwrap();
            assert!(std::fs::read_to_string(&path).unwrap().contains("\"b\""));
            assert_eq!(mode(&path), original, "{original:o}");
        }
        let fresh = dir.join("fresh.toml");
        append_client(&fresh, "m1", "paired").unwrap();
        assert_eq!(mode(&fresh), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rewriting_keeps_the_owner_when_the_process_may_set_it() {
        use std::os::unix::fs::MetadataExt;
        let dir = scratch("owner");
        let path = dir.join("clients.toml");
        std::fs::write(&path, "[[client]]\nclient_id = \"a\"\n").unwrap();
        let me = std::fs::metadata(&path).unwrap();
        // Only a privileged process may give a file away; as anyone else the owner stays ours.
        let other = (65_534, 65_534);
        let given_away = std::os::unix::fs::chown(&path, Some(other.0), Some(other.1)).is_ok();
        append_client(&path, "b", "paired").unwrap();
        let after = std::fs::metadata(&path).unwrap();
        if given_away {
            assert_eq!((after.uid(), after.gid()), other);
        } else {
            assert_eq!((after.uid(), after.gid()), (me.uid(), me.gid()));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn allow_empty_is_read_and_tells_a_reload_the_file_is_empty_on_purpose() {
        let r = parse("allow_empty = true\n").unwrap();
        assert!(r.exists && r.allow_empty && r.entries.is_empty());
        let r = parse("# nothing yet\n").unwrap();
        assert!(r.exists && !r.allow_empty);
        let r = parse("allow_empty = false\n[[client]]\nclient_id = \"a\"\n").unwrap();
        assert!(!r.allow_empty && r.entries.len() == 1);
        // Top-level only, and a boolean.
        let e = parse("allow_empty = \"yes\"\n").unwrap_err().to_string();
        assert!(e.starts_with("clients.toml:1:15: "), "{e}");
        let e = parse("[[client]]\nclient_id = \"a\"\nallow_empty = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("clients.toml:3:1: unknown field `allow_empty`"),
            "{e}"
        );
        // A missing file is an empty registry that did not exist.
        let missing = load_registry(Path::new("/nonexistent/registry/clients.toml"), 23).unwrap();
        assert!(!missing.exists && missing.entries.is_empty());
        // The header of a new file documents the key.
        assert!(HEADER.contains("allow_empty = true"));
        assert!(HEADER.contains("unpair"));
    }

    #[test]
    fn a_reload_refuses_an_empty_or_missing_file_only_while_clients_are_running() {
        let status = |text: Option<&str>| match text {
            Some(t) => parse(t).unwrap().status(Path::new("/etc/gw/clients.toml")),
            None => Registry::default().status(Path::new("/etc/gw/clients.toml")),
        };
        let empty = status(Some("# all gone\n"));
        let e = empty.check_reload(3).unwrap_err();
        assert!(e.exists);
        let msg = e.to_string();
        assert!(
            msg.starts_with("/etc/gw/clients.toml: reload refused: "),
            "{msg}"
        );
        assert!(msg.contains("3 registered client(s)"), "{msg}");
        assert!(msg.contains("allow_empty = true"), "{msg}");
        assert!(msg.contains("mqtt-sn-gateway unpair"), "{msg}");
        let missing = status(None).check_reload(1).unwrap_err().to_string();
        assert!(missing.contains("is missing"), "{missing}");
        assert!(missing.contains("allow_empty = true"), "{missing}");
        // Nothing running (a first start, pairing fills it), on purpose, or clients in the file.
        assert!(empty.check_reload(0).is_ok());
        assert!(status(None).check_reload(0).is_ok());
        assert!(status(Some("allow_empty = true\n")).check_reload(5).is_ok());
        assert!(
            status(Some("[[client]]\nclient_id = \"a\"\n"))
                .check_reload(5)
                .is_ok()
        );
    }

    #[test]
    fn unpair_removes_the_entry_and_its_comment_and_keeps_the_rest() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("unpair");
        let path = dir.join("clients.toml");
        std::fs::write(
            &path,
            "# my motes\n\n# the shed\n[[client]]\nclient_id = \"shed\"  # keep me\n\n\
             # --- north field ---\n\n# the mast\n[[client]]\nclient_id = \"mast\"\n\
             publish = [\"s/mast/#\"]\n\n[[client]]\nclient_id = \"gate\"\n# the end\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        // A middle entry: the section comment above the blank line stays.
        assert_eq!(
            remove_client(&path, "mast").unwrap(),
            Unpaired { remaining: 2 }
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# my motes\n\n# the shed\n[[client]]\nclient_id = \"shed\"  # keep me\n\n\
             # --- north field ---\n\n[[client]]\nclient_id = \"gate\"\n# the end\n"
        );
        assert_eq!(mode(&path), 0o640);
        // The first entry: the file's header moves to the next one.
        assert_eq!(
            remove_client(&path, "shed").unwrap(),
            Unpaired { remaining: 1 }
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# my motes\n\n# --- north field ---\n\n[[client]]\nclient_id = \"gate\"\n# the end\n"
        );
        // Not there: an error naming the file and what it lists; the file is unchanged.
        let before = std::fs::read_to_string(&path).unwrap();
        let e = remove_client(&path, "shed").unwrap_err();
        assert!(matches!(e, UnpairError::NotListed { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{}: \"shed\" is not in", path.display())),
            "{msg}"
        );
        assert!(msg.contains("it lists \"gate\""), "{msg}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        // The last one: the file says it is empty on purpose, and still loads.
        assert_eq!(
            remove_client(&path, "gate").unwrap(),
            Unpaired { remaining: 0 }
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# my motes\n\n"), "{text}");
        assert!(text.contains("# --- north field ---\n"), "{text}");
        assert!(text.contains("\nallow_empty = true\n"), "{text}");
        assert!(text.contains("# the end\n"), "{text}");
        let r = load_registry(&path, 23).unwrap();
        assert!(r.allow_empty && r.entries.is_empty());
        assert!(r.status(&path).check_reload(3).is_ok());
        assert_eq!(mode(&path), 0o640);
        // Pairing into it again works; allow_empty stays above the entries.
        append_client(&path, "new-1", "paired").unwrap();
        let r = load_registry(&path, 23).unwrap();
        assert!(r.entries.contains_key("new-1"));
        let e = remove_client(&dir.join("none.toml"), "x").unwrap_err();
        assert!(matches!(e, UnpairError::Missing { .. }), "{e:?}");
        assert!(e.to_string().contains("none.toml: "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unpair_of_the_only_entry_of_a_new_file_keeps_its_header() {
        let dir = scratch("unpair-new");
        let path = dir.join("clients.toml");
        append_client(&path, "m1", "paired from 10.0.0.7:5000").unwrap();
        remove_client(&path, "m1").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(HEADER), "{text}");
        assert!(!text.contains("paired from"), "{text}");
        assert!(
            text.ends_with(&format!("{ALLOW_EMPTY_NOTE}allow_empty = true\n")),
            "{text}"
        );
        assert_eq!(mode(&path), 0o600);
        // An inline array is not edited.
        std::fs::write(&path, "client = [{ client_id = \"a\" }]\n").unwrap();
        let e = remove_client(&path, "a").unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:1:1: invalid value for client", path.display())),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn check_writable_passes_where_pairing_can_write_and_leaves_nothing_behind() {
        let dir = scratch("writable");
        let path = dir.join("clients.toml");
        check_writable(&path).unwrap();
        std::fs::write(&path, "[[client]]\nclient_id = \"a\"\n").unwrap();
        check_writable(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["clients.toml"]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[[client]]\nclient_id = \"a\"\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn check_writable_names_the_file_and_the_step_that_failed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("unwritable");
        // The directory is a regular file: fails for root as well.
        let file = dir.join("plain-file");
        std::fs::write(&file, "").unwrap();
        let path = file.join("clients.toml");
        let e = check_writable(&path).unwrap_err();
        assert_eq!(e.source.raw_os_error(), Some(20), "ENOTDIR: {e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "{}: the client registry file cannot be written: cannot create a file in {}: ",
                path.display(),
                file.display()
            )),
            "{msg}"
        );
        // A missing directory.
        let e = check_writable(&dir.join("gone").join("clients.toml")).unwrap_err();
        assert_eq!(e.source.kind(), std::io::ErrorKind::NotFound, "{e}");
        // The registry itself is a directory: it cannot be opened for writing.
        let path = dir.join("clients.d");
        std::fs::create_dir(&path).unwrap();
        let e = check_writable(&path).unwrap_err();
        assert!(e.action.contains("open it for writing"), "{e}");
        // A read-only file and directory stop everyone but root (root ignores permission
        // bits; a read-only or full file system stops root too, see the end-to-end test).
        let ro = dir.join("ro");
        std::fs::create_dir(&ro).unwrap();
        let path = ro.join("clients.toml");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let root = std::fs::OpenOptions::new().write(true).open(&path).is_ok();
        if !root {
            assert!(check_writable(&path).is_err());
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_probe_data_reports_a_full_device() {
        // /dev/full answers every write with ENOSPC, as a full file system does.
        let mut full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let e = fill_and_sync(&mut full, 3 * PROBE_BYTES).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28), "ENOSPC: {e}");
    }

    #[test]
    fn long_lists_of_client_ids_are_cut_short() {
        assert_eq!(list(&[]), "no client");
        assert_eq!(list(&["a".into(), "b".into()]), "\"a\", \"b\"");
        let many: Vec<String> = (0..13).map(|i| format!("m{i}")).collect();
        let l = list(&many);
        assert!(l.starts_with("\"m0\", \"m1\""), "{l}");
        assert!(l.ends_with("\"m9\" and 3 more"), "{l}");
    }

    #[test]
    fn entry_comments_are_the_lines_after_the_last_blank_one() {
        assert_eq!(split_entry_comment(""), ("", ""));
        assert_eq!(split_entry_comment("# a\n"), ("", "# a\n"));
        assert_eq!(split_entry_comment("# h\n\n# a\n"), ("# h\n\n", "# a\n"));
        assert_eq!(split_entry_comment("\n"), ("\n", ""));
        assert_eq!(
            split_entry_comment("# h\n  \n# a\n# b\n"),
            ("# h\n  \n", "# a\n# b\n")
        );
        assert_eq!(skip_blank_lines("\n \n# a\n\n"), "# a\n\n");
        assert_eq!(skip_blank_lines("\n"), "");
        assert_eq!(skip_blank_lines("  "), "  ");
    }
}
