//! The state store: an SQLite database (WAL mode) that keeps what the core asks it to
//! ([`crate::core::store`]), so that CleanSession=0 sessions survive a restart or a power
//! loss. [`open`] reads it back at start; a [`Writer`] on a thread of its own writes the core's
//! commands in batches, one transaction (and one fsync) per batch. `docs/storage.md` is the
//! operator's guide.
//!
//! A file that is not a state database of ours (corrupt, truncated, another application's) is
//! renamed aside and a fresh one started; one of a newer schema stops the gateway, since
//! writing it with an older layout would lose what the newer one keeps.

mod rows;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

pub use self::writer::{Durable, StoreReport, StoreStats, Writer};
use crate::core::store::{SessionRecord, StoredMessage};

/// Octets the database at `path` takes on disk: the file and its write-ahead log.
pub fn disk_bytes(path: &Path) -> u64 {
    let size = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::fs::metadata(p).map_or(0, |m| m.len())
    };
    size("") + size("-wal")
}

/// Now, in Unix milliseconds (the origin of stored ages).
pub(crate) fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where the state database lives and how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Where it is kept.
    pub location: StorageLocation,
    /// The least time between the starts of two commits (what arrives meanwhile joins the
    /// next batch).
    pub batch_window: Duration,
    /// The most commands in one transaction.
    pub batch_max: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            location: StorageLocation::Default,
            batch_window: Duration::from_millis(5),
            batch_max: 512,
        }
    }
}

/// `[storage] path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// `"off"`: everything in memory, as without a store.
    Off,
    /// This file.
    Path(PathBuf),
    /// Not configured: `$STATE_DIRECTORY/state.db` under systemd (`StateDirectory=`), else
    /// `state.db` beside the configuration file, else (the compiled-in configuration) off.
    Default,
}

impl StorageLocation {
    /// The file to use, if any. `config_file` is the configuration file that was read (None:
    /// the compiled-in one); `state_directory` is `$STATE_DIRECTORY`.
    pub fn resolve(
        &self,
        config_file: Option<&Path>,
        state_directory: Option<&Path>,
    ) -> Option<PathBuf> {
        match self {
            StorageLocation::Off => None,
            StorageLocation::Path(p) => Some(p.clone()),
            StorageLocation::Default => match (state_directory, config_file) {
                (Some(dir), _) => Some(dir.join("state.db")),
                (None, Some(file)) => Some(
                    file.parent()
                        .unwrap_or_else(|| Path::new("."))
                        .join("state.db"),
                ),
                (None, None) => None,
            },
        }
    }
}

/// Why the state database cannot be used.
///
/// **Fault:** the operator or the machine (a directory that does not exist or is not
/// writable, a database written by a newer gateway). **Recovery:** as each variant says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file was written by a newer version of the gateway.
    #[error(
        "{path}: state database of schema version {found}, newer than the {supported} this \
         gateway knows; run the newer gateway, or move the file away to start without its state"
    )]
    NewerSchema {
        /// The database.
        path: PathBuf,
        /// Its schema version.
        found: i32,
        /// The newest this build knows.
        supported: i32,
    },
    /// SQLite refused to open, read or create it.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A fresh database at the path (after moving a bad one aside) is not usable either.
    #[error("{path}: cannot start a fresh state database: {why}")]
    Unusable {
        /// The database.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A corrupt or foreign file could not be moved aside.
    #[error("{path}: not a state database of this gateway, and it cannot be moved aside: {source}")]
    MoveAside {
        /// The database.
        path: PathBuf,
        /// Why the rename failed.
        source: std::io::Error,
    },
}

/// The state read back at start.
#[derive(Debug)]
pub struct Opened {
    /// The writer for this run.
    pub writer: Writer,
    /// The stored sessions, in ClientId order.
    pub sessions: Vec<SessionRecord>,
    /// The messages in the gateway's custody, in custody order.
    pub messages: Vec<StoredMessage>,
    /// Stored sessions that could not be read back (ClientId and why); they are skipped.
    pub unreadable: Vec<(String, String)>,
    /// Where a corrupt or foreign file was moved, and why it was.
    pub moved_aside: Option<(PathBuf, String)>,
}

/// Opens (creating or migrating as needed) the state database at `path`, reads the stored
/// sessions back and starts its writer.
///
/// # Errors
///
/// [`StoreError::NewerSchema`] for a database of a newer gateway; [`StoreError::Sqlite`] when
/// the file cannot be created or read (e.g. the directory is missing or read-only);
/// [`StoreError::MoveAside`] when a bad file cannot be renamed.
pub fn open(
    path: &Path,
    cfg: &StorageConfig,
    durable: Option<Durable>,
) -> Result<Opened, StoreError> {
    open_with(path, cfg, durable, |_| Ok(()))
}

/// [`open`], with `tune` applied to the writer's connection before it starts (tests limit the
/// file's size with it, to see a full disk).
pub(crate) fn open_with(
    path: &Path,
    cfg: &StorageConfig,
    durable: Option<Durable>,
    tune: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> Result<Opened, StoreError> {
    let sqlite = |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let ((mut conn, version), moved_aside) = match connect(path).map_err(sqlite)? {
        Ok(opened) => (opened, None),
        Err(why) => {
            let aside = move_aside(path)?;
            match connect(path).map_err(sqlite)? {
                Ok(opened) => (opened, Some((aside, why))),
                Err(why) => {
                    return Err(StoreError::Unusable {
                        path: path.to_owned(),
                        why,
                    });
                }
            }
        }
    };
    if version > schema::CURRENT {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found: version,
            supported: schema::CURRENT,
        });
    }
    schema::migrate(&mut conn, version).map_err(sqlite)?;
    let (sessions, bad) = rows::load(&conn).map_err(sqlite)?;
    let (messages, bad_messages) = rows::load_messages(&conn, unix_ms()).map_err(sqlite)?;
    let unreadable = bad
        .into_iter()
        .chain(bad_messages)
        .map(|b| (b.client_id, b.problem))
        .collect();
    tune(&conn).map_err(sqlite)?;
    let writer = Writer::start(
        conn,
        path.to_owned(),
        cfg.batch_window,
        cfg.batch_max,
        durable,
    );
    Ok(Opened {
        writer,
        sessions,
        messages,
        unreadable,
        moved_aside,
    })
}

/// Opens the database in WAL mode and checks it is usable, with its schema version:
/// `Ok(Err(why))` when the file is corrupt, truncated or another application's (the caller
/// moves it aside).
fn connect(path: &Path) -> rusqlite::Result<Result<(Connection, i32), String>> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    let checked = (|| -> rusqlite::Result<Result<i32, String>> {
        conn.busy_timeout(Duration::from_secs(5))?;
        let check: String = conn.pragma_query_value(None, "quick_check", |r| r.get(0))?;
        if check != "ok" {
            return Ok(Err(format!("integrity check failed: {check}")));
        }
        let version = match schema::inspect(&conn)? {
            schema::Found::Ours { version } => version,
            schema::Found::Foreign => {
                return Ok(Err("another application's SQLite database".into()));
            }
        };
        durable_commits(&conn)?;
        Ok(Ok(version))
    })();
    match checked {
        Ok(Ok(version)) => Ok(Ok((conn, version))),
        Ok(Err(why)) => Ok(Err(why)),
        Err(rusqlite::Error::SqliteFailure(e, msg))
            if matches!(e.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) =>
        {
            Ok(Err(msg.unwrap_or_else(|| e.to_string())))
        }
        Err(e) => Err(e),
    }
}

/// Durable commits: WAL mode, the WAL synced at every commit (one fsync per batch).
fn durable_commits(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")
}

/// A new connection to the database, for a retry after failed commits (read-only when the
/// file still cannot be written).
pub(crate) fn reopen(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    durable_commits(&conn)?;
    Ok(conn)
}

/// Renames a bad database (and its WAL and shared-memory files) to
/// `<name>.bad-<unix seconds>`, keeping it for inspection; returns the new path.
fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".bad-{stamp}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside).map_err(|source| StoreError::MoveAside {
        path: path.to_owned(),
        source,
    })?;
    for suffix in ["-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let mut to = aside.as_os_str().to_owned();
        to.push(suffix);
        let _ = std::fs::rename(&from, &to);
    }
    Ok(aside)
}

#[cfg(test)]
mod tests;
