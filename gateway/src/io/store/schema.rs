//! The state database's schema and its forward migrations. `PRAGMA user_version` holds the
//! schema version and `PRAGMA application_id` marks the file as ours; `docs/storage.md` shows
//! the tables.

use rusqlite::Connection;

/// Marks a state database of this gateway ("MSNG").
pub(crate) const APPLICATION_ID: i32 = 0x4D53_4E47;

/// The schema version this build writes.
pub(crate) const CURRENT: i32 = 5;

/// Migration `n` takes a database from version `n` to `n + 1`.
const MIGRATIONS: [&str; CURRENT as usize] = [
    // 0 → 1: sessions, their subscriptions and their topic ids.
    "CREATE TABLE sessions (
        client_id     TEXT PRIMARY KEY,
        state         TEXT NOT NULL,
        keep_alive_ms INTEGER,
        sleep_ms      INTEGER,
        listener      INTEGER NOT NULL,
        address       TEXT NOT NULL,
        wnid          BLOB,
        will_topic    TEXT,
        will_qos      INTEGER NOT NULL DEFAULT 0,
        will_retain   INTEGER NOT NULL DEFAULT 0,
        will_msg      BLOB NOT NULL DEFAULT x'',
        updated_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE subscriptions (
        client_id     TEXT NOT NULL,
        filter        TEXT NOT NULL,
        kind          TEXT NOT NULL,
        predefined_id INTEGER,
        qos           INTEGER NOT NULL,
        PRIMARY KEY (client_id, filter)
    ) WITHOUT ROWID;
    CREATE TABLE topic_ids (
        client_id TEXT NOT NULL,
        topic_id  INTEGER NOT NULL,
        name      TEXT NOT NULL,
        confirmed INTEGER NOT NULL,
        PRIMARY KEY (client_id, topic_id)
    ) WITHOUT ROWID;",
    // 1 → 2: client publishes in the gateway's custody.
    "CREATE TABLE messages (
        seq         INTEGER PRIMARY KEY,
        client_id   TEXT NOT NULL,
        topic       TEXT NOT NULL,
        payload     BLOB NOT NULL,
        qos         INTEGER NOT NULL,
        retain      INTEGER NOT NULL,
        received_at INTEGER NOT NULL
    );",
    // 2 → 3: messages buffered for sleeping clients that only the gateway holds.
    "CREATE TABLE buffered (
        client_id TEXT NOT NULL,
        position  INTEGER NOT NULL,
        topic     TEXT NOT NULL,
        payload   BLOB NOT NULL,
        qos       INTEGER NOT NULL,
        retain    INTEGER NOT NULL,
        PRIMARY KEY (client_id, position)
    ) WITHOUT ROWID;",
    // 3 → 4: for QoS 2 messages in custody, the packet id the broker accepted one under
    // (PUBREC), so only its PUBREL is sent again after a restart, and the client's MsgId, so a
    // retransmission after a restart is not taken twice.
    "ALTER TABLE messages ADD COLUMN pubrec_pkid INTEGER;
     ALTER TABLE messages ADD COLUMN msg_id INTEGER NOT NULL DEFAULT 0;",
    // 4 → 5: a session's QoS 2 exchanges that outlive a crash. Client → broker: the client's
    // MsgIds it has not released (side 'client') and the packet ids owed a PUBREL at the
    // broker (side 'broker'). Broker → client: the MsgId a kept message went out under, whether
    // the client answered PUBREC, and the broker's packet id of the delivery.
    "CREATE TABLE qos2 (
        client_id TEXT NOT NULL,
        side      TEXT NOT NULL,
        id        INTEGER NOT NULL,
        PRIMARY KEY (client_id, side, id)
    ) WITHOUT ROWID;
    ALTER TABLE buffered ADD COLUMN msg_id INTEGER;
    ALTER TABLE buffered ADD COLUMN released INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE buffered ADD COLUMN broker_pkid INTEGER;",
];

/// What a database file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// Ours (or empty), at schema `version`.
    Ours { version: i32 },
    /// Another application's SQLite database.
    Foreign,
}

/// Reads the markers of an open database.
pub(crate) fn inspect(conn: &Connection) -> rusqlite::Result<Found> {
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    Ok(match app {
        APPLICATION_ID => Found::Ours { version },
        0 if tables == 0 && version == 0 => Found::Ours { version: 0 },
        _ => Found::Foreign,
    })
}

/// Brings a database of ours from `from` up to [`CURRENT`], each step in a transaction.
pub(crate) fn migrate(conn: &mut Connection, from: i32) -> rusqlite::Result<()> {
    migrate_to(conn, from, CURRENT)
}

/// Brings a database of ours from `from` up to `to` (at most [`CURRENT`]); tests build the
/// databases of earlier versions with it.
pub(crate) fn migrate_to(conn: &mut Connection, from: i32, to: i32) -> rusqlite::Result<()> {
    for version in from..to.min(CURRENT) {
        let tx = conn.transaction()?;
        if let Some(sql) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
    Ok(())
}
