//! The state database's writer: a thread of its own that takes the core's commands and
//! commits them in batches (group commit: one transaction, so one fsync, per batch, and
//! batches at least `batch_window` apart). Within a
//! batch only the last command per ClientId is written. A batch that fails (disk full,
//! read-only file system) is kept and tried again, merged with what came since, while the
//! gateway runs on (a database SQLite opened read-only is opened again for the retry); the
//! failure is logged and counted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tracing::{error, info, warn};

use super::rows;
use crate::core::store::{SessionRecord, StoreCmd, StoredMessage};

/// How long the writer waits before trying a failed batch again.
const RETRY: Duration = Duration::from_secs(5);

/// What the writer tells the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreReport {
    /// Custody messages up to this sequence number are durable.
    Durable(u64),
    /// The first this many commands the writer received are durable (sent after every
    /// commit; the core counts the commands it issues the same way).
    Committed(u64),
    /// A batch could not be committed (disk full, read-only): custody falls back to the broker.
    Failing,
    /// A batch was committed again after failures.
    Recovered,
}

/// Where the writer sends its [`StoreReport`]s.
pub type Durable = tokio::sync::mpsc::UnboundedSender<StoreReport>;

/// Counters of the writer, for metrics and health.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Transactions committed (each one fsync of the WAL).
    pub commits: AtomicU64,
    /// Records written or deleted.
    pub records: AtomicU64,
    /// Batches that failed to commit.
    pub failures: AtomicU64,
    /// The last batch failed and nothing has been committed since.
    pub failing: AtomicBool,
}

/// The running writer. Dropping it (or [`Writer::close`]) commits what is pending and stops
/// the thread.
#[derive(Debug)]
pub struct Writer {
    tx: Option<Sender<StoreCmd>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<StoreStats>,
    path: PathBuf,
}

impl Writer {
    /// Starts the writer thread on `conn`; commits that make custody messages durable are
    /// reported on `durable`.
    pub(crate) fn start(
        conn: Connection,
        path: PathBuf,
        window: Duration,
        max: usize,
        durable: Option<Durable>,
    ) -> Self {
        let (tx, rx) = channel();
        let stats = Arc::new(StoreStats::default());
        let thread_stats = stats.clone();
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("state-store".into())
            .spawn(move || {
                run(
                    conn,
                    rx,
                    window,
                    max.max(1),
                    &thread_stats,
                    &thread_path,
                    durable,
                )
            })
            .ok();
        Writer {
            tx: Some(tx),
            thread,
            stats,
            path,
        }
    }

    /// Queues a command (never blocks).
    pub fn send(&self, cmd: StoreCmd) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(cmd);
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> Arc<StoreStats> {
        self.stats.clone()
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Commits what is pending and stops the thread (blocking: call it off the async loop).
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A batch: the last command per ClientId and per custody message (`None`: delete), and the
/// highest custody sequence number it makes durable.
#[derive(Debug, Default)]
struct Batch {
    sessions: BTreeMap<String, Option<Box<SessionRecord>>>,
    messages: BTreeMap<u64, Option<Box<StoredMessage>>>,
    durable_upto: Option<u64>,
    /// Packet ids of QoS 2 messages the broker accepted (applied after `messages`).
    pubrecs: BTreeMap<u64, Option<u16>>,
    /// Commands received since start, this batch's included (kept across batches).
    received: u64,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.messages.is_empty()
            && self.pubrecs.is_empty()
            && self.durable_upto.is_none()
    }

    fn len(&self) -> usize {
        self.sessions.len() + self.messages.len() + self.pubrecs.len()
    }

    fn clear(&mut self) {
        *self = Batch {
            received: self.received,
            ..Batch::default()
        };
    }
}

fn add(batch: &mut Batch, cmd: StoreCmd) {
    batch.received += 1;
    match cmd {
        StoreCmd::PutSession(r) => {
            batch.sessions.insert(r.client_id.clone(), Some(r));
        }
        StoreCmd::DeleteSession { client_id } => {
            batch.sessions.insert(client_id, None);
        }
        StoreCmd::PutMessage(m) => {
            batch.durable_upto = batch.durable_upto.max(Some(m.seq));
            batch.messages.insert(m.seq, Some(m));
        }
        StoreCmd::SetPubrec { seq, pkid } => {
            batch.pubrecs.insert(seq, pkid);
        }
        StoreCmd::DeleteMessage { seq } => {
            batch.pubrecs.remove(&seq);
            // Taken and let go within one batch: nothing to write at all.
            if let Some(Some(_)) = batch.messages.get(&seq) {
                batch.messages.remove(&seq);
            } else {
                batch.messages.insert(seq, None);
            }
        }
    }
}

fn run(
    conn: Connection,
    rx: Receiver<StoreCmd>,
    window: Duration,
    max: usize,
    stats: &StoreStats,
    path: &std::path::Path,
    durable: Option<Durable>,
) {
    let mut conn = Some(conn);
    let mut batch = Batch::default();
    let mut open = true;
    // Commits start at least `window` apart: at most one fsync per window however busy, and
    // no wait at all when the last one is older (a lone record is written at once).
    let mut last_commit: Option<Instant> = None;
    while open {
        // Wait for the first command (or, with a failed batch pending, for the retry time).
        let first = if batch.is_empty() {
            rx.recv().ok()
        } else {
            match rx.recv_timeout(RETRY) {
                Ok(cmd) => Some(cmd),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    None
                }
            }
        };
        match first {
            Some(cmd) => add(&mut batch, cmd),
            None if batch.is_empty() => break,
            None => {}
        }
        // Gather what is waiting, and what arrives until a window after the last commit
        // started, up to the batch size.
        let until = last_commit.map_or_else(Instant::now, |at| at + window);
        let mut taken = 1;
        while taken < max {
            let left = until.saturating_duration_since(Instant::now());
            let next = if left.is_zero() {
                rx.try_recv().map_err(|e| match e {
                    std::sync::mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                    std::sync::mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                rx.recv_timeout(left)
            };
            match next {
                Ok(cmd) => {
                    add(&mut batch, cmd);
                    taken += 1;
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        last_commit = Some(Instant::now());
        if stats.failing.load(Ordering::Relaxed) {
            // A database on a read-only mount stays read-only for the connection that opened
            // it (and for any other of this process while that one is open): a retry opens
            // it anew, so a mount made writable again is seen.
            drop(conn.take());
            conn = super::reopen(path).ok();
        }
        commit(conn.as_mut(), &mut batch, stats, path, durable.as_ref());
    }
    // The gateway stops: a last attempt for what is still pending.
    if !batch.is_empty() {
        commit(conn.as_mut(), &mut batch, stats, path, durable.as_ref());
    }
}

/// Commits `batch`; on success reports the custody messages it made durable on `durable`.
fn commit(
    conn: Option<&mut Connection>,
    batch: &mut Batch,
    stats: &StoreStats,
    path: &std::path::Path,
    durable: Option<&Durable>,
) {
    let now_ms = super::unix_ms();
    let now_unix = now_ms / 1000;
    let result = (|| -> rusqlite::Result<()> {
        // No connection: the database could not be opened again for a retry.
        let conn = conn.ok_or(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            None,
        ))?;
        let tx = conn.transaction()?;
        for (client_id, record) in &batch.sessions {
            match record {
                Some(r) => rows::put(&tx, r, now_unix)?,
                None => rows::delete(&tx, client_id)?,
            }
        }
        for (seq, message) in &batch.messages {
            match message {
                Some(m) => rows::put_message(&tx, m, now_ms)?,
                None => rows::delete_message(&tx, *seq)?,
            }
        }
        for (seq, pkid) in &batch.pubrecs {
            rows::set_pubrec(&tx, *seq, *pkid)?;
        }
        tx.commit()
    })();
    match result {
        Ok(()) => {
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats
                .records
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            if let Some(durable) = durable {
                if let Some(upto) = batch.durable_upto {
                    let _ = durable.send(StoreReport::Durable(upto));
                }
                let _ = durable.send(StoreReport::Committed(batch.received));
            }
            batch.clear();
            if stats.failing.swap(false, Ordering::Relaxed) {
                if let Some(durable) = durable {
                    let _ = durable.send(StoreReport::Recovered);
                }
                info!(path = %path.display(), "state database writable again; pending records written");
            }
        }
        Err(e) => {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            if !stats.failing.swap(true, Ordering::Relaxed) {
                if let Some(durable) = durable {
                    let _ = durable.send(StoreReport::Failing);
                }
                error!(
                    path = %path.display(),
                    error = %e,
                    pending = batch.len(),
                    "cannot write the state database (disk full or read-only?); the gateway runs \
                     on with the state in memory and tries again every {}s",
                    RETRY.as_secs()
                );
            } else {
                warn!(path = %path.display(), error = %e, pending = batch.len(), "state database still not writable");
            }
        }
    }
}
