//! The state database on a real file: round trips, group commit, and what happens to files
//! that are not ours.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::{StorageConfig, StorageLocation, StoreError, open, schema};
use crate::core::addr::{ListenerId, PeerAddr, Wnid};
use crate::core::store::{
    SessionRecord, StoreCmd, StoredState, StoredSubscription, StoredTopicId, StoredTopicKind,
};
use crate::core::upstream::MqttQos;

fn cfg() -> StorageConfig {
    StorageConfig {
        location: StorageLocation::Default,
        batch_window: Duration::from_millis(20),
        batch_max: 512,
    }
}

fn record(id: &str) -> SessionRecord {
    SessionRecord {
        client_id: id.into(),
        state: StoredState::Asleep,
        keep_alive: Some(Duration::from_secs(60)),
        sleep: Some(Duration::from_secs(600)),
        peer: PeerAddr::Forwarded {
            listener: ListenerId(1),
            forwarder: "[fd00::7]:10000".parse().unwrap(),
            wnid: Wnid(vec![0x00, 0x13, 0xa2, 0xff].into_boxed_slice()),
        },
        will_topic: Some(("status/m".into(), MqttQos::AtLeastOnce, true)),
        will_msg: Bytes::from_static(b"gone\0binary"),
        subscriptions: vec![
            StoredSubscription {
                filter: "cmd/#".into(),
                kind: StoredTopicKind::Name,
                qos: MqttQos::ExactlyOnce,
            },
            StoredSubscription {
                filter: "p7".into(),
                kind: StoredTopicKind::Predefined(7),
                qos: MqttQos::AtMostOnce,
            },
        ],
        topic_ids: vec![
            StoredTopicId {
                id: 1,
                name: "t/1".into(),
                confirmed: true,
            },
            StoredTopicId {
                id: 0xFFFE,
                name: "t/é".into(),
                confirmed: false,
            },
        ],
        buffered: vec![
            crate::core::store::StoredDownlink {
                topic: "cmd/m".into(),
                payload: Bytes::from_static(b"open"),
                qos: MqttQos::AtLeastOnce,
                retain: false,
                msg_id: Some(9),
                released: true,
                broker_pkid: Some(4),
            },
            crate::core::store::StoredDownlink {
                topic: "cmd/all".into(),
                payload: Bytes::from_static(b"\0\x01"),
                qos: MqttQos::AtMostOnce,
                retain: true,
                msg_id: None,
                released: false,
                broker_pkid: None,
            },
        ],
        qos2_unreleased: vec![7, 0xFFFF],
        pubrels_owed: vec![1, 3],
    }
}

#[test]
fn records_come_back_as_they_were_written_and_deletes_forget_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let o = open(&path, &cfg(), None).unwrap();
    assert!(o.sessions.is_empty() && o.moved_aside.is_none());
    let mut udp = record("b");
    udp.peer = PeerAddr::Udp {
        listener: ListenerId(0),
        addr: "192.0.2.7:5000".parse().unwrap(),
    };
    udp.state = StoredState::Active;
    udp.will_topic = None;
    udp.will_msg = Bytes::new();
    udp.sleep = None;
    udp.buffered = Vec::new();
    o.writer.send(StoreCmd::PutSession(Box::new(record("a"))));
    o.writer.send(StoreCmd::PutSession(Box::new(udp.clone())));
    o.writer.send(StoreCmd::PutSession(Box::new(record("c"))));
    o.writer.send(StoreCmd::DeleteSession {
        client_id: "c".into(),
    });
    o.writer.close();

    let o = open(&path, &cfg(), None).unwrap();
    assert_eq!(o.sessions, vec![record("a"), udp]);
    assert!(o.unreadable.is_empty());
}

#[test]
fn commands_that_arrive_together_are_committed_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut c = cfg();
    c.batch_window = Duration::from_millis(200);
    let o = open(&path, &c, None).unwrap();
    let stats = o.writer.stats();
    for i in 0..1000 {
        o.writer
            .send(StoreCmd::PutSession(Box::new(record(&format!("m{i:04}")))));
    }
    o.writer.close();
    let commits = stats.commits.load(Ordering::Relaxed);
    assert!(
        (1..=4).contains(&commits),
        "1000 commands sent at once took {commits} transactions (batches of 512)"
    );
    assert_eq!(open(&path, &cfg(), None).unwrap().sessions.len(), 1000);
}

#[test]
fn a_file_that_is_not_a_database_is_moved_aside_and_a_fresh_one_started() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(
        &path,
        b"this is not an SQLite database, it is a text file\n".repeat(200),
    )
    .unwrap();
    let o = open(&path, &cfg(), None).unwrap();
    let (aside, why) = o.moved_aside.clone().expect("moved aside");
    assert!(!why.is_empty());
    assert!(
        aside.to_string_lossy().contains("state.db.bad-"),
        "{aside:?}"
    );
    assert!(
        std::fs::read(&aside).unwrap().starts_with(b"this is not"),
        "the bad file is kept as it was"
    );
    assert!(o.sessions.is_empty());
    o.writer.send(StoreCmd::PutSession(Box::new(record("a"))));
    o.writer.close();
    assert_eq!(open(&path, &cfg(), None).unwrap().sessions.len(), 1);
}

#[test]
fn a_truncated_database_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let o = open(&path, &cfg(), None).unwrap();
    for i in 0..300 {
        o.writer
            .send(StoreCmd::PutSession(Box::new(record(&format!("m{i:04}")))));
    }
    o.writer.close();
    // Fold the WAL into the file, then cut the file in the middle.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let o = open(&path, &cfg(), None).unwrap();
    assert!(o.moved_aside.is_some(), "a truncated file is not used");
    assert!(o.sessions.is_empty());
}

#[test]
fn another_applications_database_is_moved_aside_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT);")
            .unwrap();
    }
    let o = open(&path, &cfg(), None).unwrap();
    let (aside, why) = o.moved_aside.clone().expect("moved aside");
    assert!(why.contains("another application"), "{why}");
    let conn = rusqlite::Connection::open(&aside).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM photos", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0, "the foreign database still has its table");
}

#[test]
fn a_database_of_a_newer_schema_stops_the_gateway_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    open(&path, &cfg(), None).unwrap().writer.close();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", schema::CURRENT + 1)
            .unwrap();
    }
    let e = open(&path, &cfg(), None).unwrap_err();
    assert!(matches!(e, StoreError::NewerSchema { .. }), "{e}");
    let shown = e.to_string();
    assert!(shown.starts_with(&path.display().to_string()), "{shown}");
    assert!(shown.contains("newer"), "{shown}");
    assert!(path.exists());
}

#[test]
fn an_unreadable_row_is_skipped_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let o = open(&path, &cfg(), None).unwrap();
    o.writer.send(StoreCmd::PutSession(Box::new(record("a"))));
    o.writer.send(StoreCmd::PutSession(Box::new(record("b"))));
    o.writer.close();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE sessions SET state = 'dreaming' WHERE client_id = 'a'",
            [],
        )
        .unwrap();
    }
    let o = open(&path, &cfg(), None).unwrap();
    assert_eq!(o.sessions, vec![record("b")]);
    assert_eq!(o.unreadable.len(), 1);
    assert_eq!(o.unreadable[0].0, "a");
    assert!(o.unreadable[0].1.contains("dreaming"));
}

#[test]
fn a_directory_that_cannot_be_written_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("state.db");
    let e = open(&path, &cfg(), None).unwrap_err();
    assert!(matches!(e, StoreError::Sqlite { .. }), "{e}");
    assert!(e.to_string().contains("missing/state.db"), "{e}");
}

#[test]
fn the_default_location_follows_systemd_then_the_configuration_file() {
    let d = StorageLocation::Default;
    let etc = std::path::Path::new("/etc/mqtt-sn-gateway/gateway.toml");
    let state = std::path::Path::new("/var/lib/mqtt-sn-gateway");
    assert_eq!(
        d.resolve(Some(etc), Some(state)),
        Some(state.join("state.db"))
    );
    assert_eq!(
        d.resolve(Some(etc), None),
        Some(std::path::PathBuf::from("/etc/mqtt-sn-gateway/state.db"))
    );
    assert_eq!(
        d.resolve(None, None),
        None,
        "the compiled-in configuration: off"
    );
    assert_eq!(StorageLocation::Off.resolve(Some(etc), Some(state)), None);
}

fn message(seq: u64) -> crate::core::store::StoredMessage {
    crate::core::store::StoredMessage {
        seq,
        client_id: format!("m{}", seq % 2),
        topic: "site/a".into(),
        payload: Bytes::from(vec![seq as u8; 40]),
        qos: MqttQos::AtLeastOnce,
        retain: seq == 3,
        age: Duration::ZERO,
        msg_id: seq as u16,
        pubrec: None,
    }
}

#[test]
fn custody_messages_are_reported_durable_after_their_commit_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let o = open(&path, &cfg(), Some(tx)).unwrap();
    for seq in [1, 2, 3] {
        o.writer.send(StoreCmd::PutMessage(Box::new(message(seq))));
    }
    o.writer.send(StoreCmd::DeleteMessage { seq: 2 });
    o.writer.close();
    let mut reported = Vec::new();
    while let Ok(upto) = rx.try_recv() {
        reported.push(upto);
    }
    let durable = reported
        .iter()
        .rfind(|r| matches!(r, super::StoreReport::Durable(_)));
    assert_eq!(
        durable,
        Some(&super::StoreReport::Durable(3)),
        "durable up to the last put: {reported:?}"
    );
    // Every commit also says how many commands are durable: all four at the end.
    assert_eq!(
        reported.last(),
        Some(&super::StoreReport::Committed(4)),
        "{reported:?}"
    );

    std::thread::sleep(Duration::from_millis(20));
    let o = open(&path, &cfg(), None).unwrap();
    let seqs: Vec<u64> = o.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 3]);
    let mut back = o.messages[1].clone();
    assert!(back.age >= Duration::from_millis(20), "{:?}", back.age);
    back.age = Duration::ZERO;
    assert_eq!(back, message(3));
}

#[test]
fn a_message_taken_and_let_go_within_one_batch_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut c = cfg();
    c.batch_window = Duration::from_millis(200);
    let o = open(&path, &c, None).unwrap();
    let stats = o.writer.stats();
    o.writer.send(StoreCmd::PutMessage(Box::new(message(1))));
    o.writer.send(StoreCmd::DeleteMessage { seq: 1 });
    o.writer.close();
    assert_eq!(stats.records.load(Ordering::Relaxed), 0);
    assert!(open(&path, &cfg(), None).unwrap().messages.is_empty());
}

#[test]
fn a_full_disk_is_reported_and_the_pending_batch_is_written_once_there_is_room_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    // Room taken by something else: a filler table of about 100 pages.
    open(&path, &cfg(), None).unwrap().writer.close();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE filler (b BLOB); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) \
             INSERT INTO filler SELECT zeroblob(4000) FROM n;",
        )
        .unwrap();
        conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .unwrap();
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The "disk" ends a few pages after what the file holds now.
    let o = super::open_with(&path, &cfg(), Some(tx), |conn| {
        let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
        conn.pragma_update(None, "max_page_count", pages + 2)
    })
    .unwrap();
    let stats = o.writer.stats();
    for seq in 1..=20 {
        let mut m = message(seq);
        m.payload = Bytes::from(vec![7; 4000]);
        o.writer.send(StoreCmd::PutMessage(Box::new(m)));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !stats.failing.load(Ordering::Relaxed) {
        assert!(
            std::time::Instant::now() < deadline,
            "the full disk was not noticed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(rx.try_recv(), Ok(super::StoreReport::Failing));
    assert!(
        rx.try_recv().is_err(),
        "nothing is durable while the disk is full"
    );

    // Room again: the next attempt writes the whole pending batch.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("DELETE FROM filler", []).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while stats.failing.load(Ordering::Relaxed) {
        assert!(std::time::Instant::now() < deadline, "no recovery");
        std::thread::sleep(Duration::from_millis(50));
    }
    o.writer.close();
    let reports: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert!(
        reports.contains(&super::StoreReport::Durable(20)),
        "{reports:?}"
    );
    assert!(
        reports.contains(&super::StoreReport::Recovered),
        "{reports:?}"
    );
    assert_eq!(open(&path, &cfg(), None).unwrap().messages.len(), 20);
    assert!(stats.failures.load(Ordering::Relaxed) >= 1);
}

#[test]
fn a_database_of_schema_4_is_migrated_and_read_back_with_nothing_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        schema::migrate_to(&mut conn, 0, 4).unwrap();
        conn.execute_batch(
            "INSERT INTO sessions (client_id, state, keep_alive_ms, sleep_ms, listener, address, \
             updated_at) VALUES ('old', 'asleep', 60000, 600000, 0, '192.0.2.9:4000', 0);
             INSERT INTO buffered (client_id, position, topic, payload, qos, retain) \
             VALUES ('old', 0, 'cmd/old', x'6f6e', 2, 0);
             INSERT INTO messages (seq, client_id, topic, payload, qos, retain, received_at, \
             pubrec_pkid, msg_id) VALUES (4, 'old', 'site/a', x'3231', 2, 0, 0, 7, 12);",
        )
        .unwrap();
    }
    let o = open(&path, &cfg(), None).unwrap();
    assert_eq!(o.sessions.len(), 1);
    let r = &o.sessions[0];
    assert_eq!(
        (r.client_id.as_str(), r.state),
        ("old", StoredState::Asleep)
    );
    assert_eq!(r.buffered.len(), 1);
    let m = &r.buffered[0];
    assert_eq!(
        (m.topic.as_str(), &m.payload[..], m.msg_id, m.released),
        ("cmd/old", &b"on"[..], None, false)
    );
    assert!(r.qos2_unreleased.is_empty() && r.pubrels_owed.is_empty());
    assert_eq!(o.messages.len(), 1);
    assert_eq!((o.messages[0].pubrec, o.messages[0].msg_id), (Some(7), 12));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::CURRENT);
}
