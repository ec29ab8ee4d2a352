//! Session records to rows and back.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{Connection, params};

use crate::core::addr::{ListenerId, PeerAddr, Wnid};
use crate::core::store::{
    SessionRecord, StoredDownlink, StoredMessage, StoredState, StoredSubscription, StoredTopicId,
    StoredTopicKind,
};
use crate::core::upstream::MqttQos;

/// Inserts or replaces a session with its subscriptions and topic ids.
pub(crate) fn put(conn: &Connection, r: &SessionRecord, now_unix: i64) -> rusqlite::Result<()> {
    delete(conn, &r.client_id)?;
    let (listener, address, wnid) = match &r.peer {
        PeerAddr::Udp { listener, addr } => (listener.0, addr.to_string(), None),
        PeerAddr::Forwarded {
            listener,
            forwarder,
            wnid,
        } => (listener.0, forwarder.to_string(), Some(&wnid.0[..])),
    };
    let (will_topic, will_qos, will_retain) = match &r.will_topic {
        Some((topic, qos, retain)) => (Some(topic.as_str()), qos.level(), *retain),
        None => (None, 0, false),
    };
    conn.prepare_cached(
        "INSERT INTO sessions (client_id, state, keep_alive_ms, sleep_ms, listener, address, \
         wnid, will_topic, will_qos, will_retain, will_msg, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        r.client_id,
        r.state.name(),
        r.keep_alive.map(millis),
        r.sleep.map(millis),
        listener,
        address,
        wnid,
        will_topic,
        will_qos,
        will_retain,
        &r.will_msg[..],
        now_unix,
    ])?;
    let mut sub = conn.prepare_cached(
        "INSERT INTO subscriptions (client_id, filter, kind, predefined_id, qos) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for s in &r.subscriptions {
        let (kind, id) = match s.kind {
            StoredTopicKind::Name => ("name", None),
            StoredTopicKind::Short => ("short", None),
            StoredTopicKind::Predefined(id) => ("predefined", Some(id)),
        };
        sub.execute(params![r.client_id, s.filter, kind, id, s.qos.level()])?;
    }
    let mut topic = conn.prepare_cached(
        "INSERT INTO topic_ids (client_id, topic_id, name, confirmed) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for t in &r.topic_ids {
        topic.execute(params![r.client_id, t.id, t.name, t.confirmed])?;
    }
    let mut buffered = conn.prepare_cached(
        "INSERT INTO buffered (client_id, position, topic, payload, qos, retain, msg_id, \
         released, broker_pkid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (position, m) in r.buffered.iter().enumerate() {
        buffered.execute(params![
            r.client_id,
            position,
            m.topic,
            &m.payload[..],
            m.qos.level(),
            m.retain,
            m.msg_id,
            m.released,
            m.broker_pkid,
        ])?;
    }
    let mut qos2 =
        conn.prepare_cached("INSERT INTO qos2 (client_id, side, id) VALUES (?1, ?2, ?3)")?;
    for id in &r.qos2_unreleased {
        qos2.execute(params![r.client_id, CLIENT_SIDE, id])?;
    }
    for id in &r.pubrels_owed {
        qos2.execute(params![r.client_id, BROKER_SIDE, id])?;
    }
    Ok(())
}

/// `qos2.side` of a MsgId the client has not released.
const CLIENT_SIDE: &str = "client";
/// `qos2.side` of a packet id owed a PUBREL at the broker.
const BROKER_SIDE: &str = "broker";

/// Forgets a session.
pub(crate) fn delete(conn: &Connection, client_id: &str) -> rusqlite::Result<()> {
    for sql in [
        "DELETE FROM sessions WHERE client_id = ?1",
        "DELETE FROM subscriptions WHERE client_id = ?1",
        "DELETE FROM topic_ids WHERE client_id = ?1",
        "DELETE FROM buffered WHERE client_id = ?1",
        "DELETE FROM qos2 WHERE client_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([client_id])?;
    }
    Ok(())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn duration(ms: Option<i64>) -> Option<Duration> {
    ms.and_then(|ms| u64::try_from(ms).ok())
        .map(Duration::from_millis)
}

/// A stored row that cannot be read back (the record is skipped).
#[derive(Debug)]
pub(crate) struct BadRow {
    /// The ClientId of the row.
    pub(crate) client_id: String,
    /// What is wrong with it.
    pub(crate) problem: String,
}

/// Every stored session, in ClientId order, with the rows that could not be read.
pub(crate) fn load(conn: &Connection) -> rusqlite::Result<(Vec<SessionRecord>, Vec<BadRow>)> {
    let mut records = Vec::new();
    let mut bad = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT client_id, state, keep_alive_ms, sleep_ms, listener, address, wnid, \
         will_topic, will_qos, will_retain, will_msg FROM sessions ORDER BY client_id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let client_id: String = row.get(0)?;
        let state: String = row.get(1)?;
        let listener: i64 = row.get(4)?;
        let address: String = row.get(5)?;
        let wnid: Option<Vec<u8>> = row.get(6)?;
        let will_topic: Option<String> = row.get(7)?;
        let will_qos: u8 = row.get(8)?;
        let will_retain: bool = row.get(9)?;
        let will_msg: Vec<u8> = row.get(10)?;
        let problem = |p: String| BadRow {
            client_id: client_id.clone(),
            problem: p,
        };
        let Some(state) = StoredState::from_name(&state) else {
            bad.push(problem(format!("unknown state {state:?}")));
            continue;
        };
        let (Ok(addr), Ok(listener)) = (address.parse::<SocketAddr>(), u8::try_from(listener))
        else {
            bad.push(problem(format!(
                "bad address {address:?} on listener {listener}"
            )));
            continue;
        };
        let listener = ListenerId(listener);
        let peer = match wnid {
            None => PeerAddr::Udp { listener, addr },
            Some(w) => PeerAddr::Forwarded {
                listener,
                forwarder: addr,
                wnid: Wnid(w.into_boxed_slice()),
            },
        };
        let Some(will_qos) = MqttQos::from_level(will_qos) else {
            bad.push(problem(format!("bad Will QoS {will_qos}")));
            continue;
        };
        let (subscriptions, topic_ids, buffered) = match (
            subscriptions(conn, &client_id),
            topic_ids(conn, &client_id),
            buffered(conn, &client_id),
        ) {
            (Ok(Ok(s)), Ok(t), Ok(Ok(b))) => (s, t, b),
            (Ok(Err(p)), _, _) | (_, _, Ok(Err(p))) => {
                bad.push(problem(p));
                continue;
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Err(e),
        };
        let Qos2Ids {
            unreleased: qos2_unreleased,
            owed: pubrels_owed,
        } = match qos2(conn, &client_id)? {
            Ok(ids) => ids,
            Err(p) => {
                bad.push(problem(p));
                continue;
            }
        };
        records.push(SessionRecord {
            client_id: client_id.clone(),
            state,
            keep_alive: duration(row.get(2)?),
            sleep: duration(row.get(3)?),
            peer,
            will_topic: will_topic.map(|t| (t, will_qos, will_retain)),
            will_msg: Bytes::from(will_msg),
            subscriptions,
            topic_ids,
            buffered,
            qos2_unreleased,
            pubrels_owed,
        });
    }
    Ok((records, bad))
}

/// A session's QoS 2 ids, each ascending.
struct Qos2Ids {
    /// MsgIds the client has not released.
    unreleased: Vec<u16>,
    /// Packet ids owed a PUBREL at the broker.
    owed: Vec<u16>,
}

/// The QoS 2 ids of `client_id`, or what is wrong with a row.
fn qos2(conn: &Connection, client_id: &str) -> rusqlite::Result<Result<Qos2Ids, String>> {
    let mut stmt =
        conn.prepare_cached("SELECT side, id FROM qos2 WHERE client_id = ?1 ORDER BY side, id")?;
    let mut rows = stmt.query([client_id])?;
    let (mut client, mut broker) = (Vec::new(), Vec::new());
    while let Some(row) = rows.next()? {
        let side: String = row.get(0)?;
        let id: i64 = row.get(1)?;
        let id = match u16::try_from(id) {
            Ok(id) if id != 0 => id,
            _ => return Ok(Err(format!("a QoS 2 {side} id {id} out of range"))),
        };
        match side.as_str() {
            CLIENT_SIDE => client.push(id),
            BROKER_SIDE => broker.push(id),
            _ => return Ok(Err(format!("a QoS 2 id of unknown side {side:?}"))),
        }
    }
    Ok(Ok(Qos2Ids {
        unreleased: client,
        owed: broker,
    }))
}

fn buffered(
    conn: &Connection,
    client_id: &str,
) -> rusqlite::Result<Result<Vec<StoredDownlink>, String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT topic, payload, qos, retain, msg_id, released, broker_pkid FROM buffered \
         WHERE client_id = ?1 ORDER BY position",
    )?;
    let mut rows = stmt.query([client_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let qos: u8 = row.get(2)?;
        let Some(qos) = MqttQos::from_level(qos) else {
            return Ok(Err(format!("a buffered message with QoS {qos}")));
        };
        let (Ok(msg_id), Ok(broker_pkid)) =
            (row.get::<_, Option<u16>>(4), row.get::<_, Option<u16>>(6))
        else {
            return Ok(Err(
                "a buffered message with a packet id out of range".into()
            ));
        };
        out.push(StoredDownlink {
            topic: row.get(0)?,
            payload: Bytes::from(row.get::<_, Vec<u8>>(1)?),
            qos,
            retain: row.get(3)?,
            msg_id,
            released: row.get(5)?,
            broker_pkid,
        });
    }
    Ok(Ok(out))
}

fn subscriptions(
    conn: &Connection,
    client_id: &str,
) -> rusqlite::Result<Result<Vec<StoredSubscription>, String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT filter, kind, predefined_id, qos FROM subscriptions WHERE client_id = ?1 \
         ORDER BY filter",
    )?;
    let mut rows = stmt.query([client_id])?;
    let mut subs = Vec::new();
    while let Some(row) = rows.next()? {
        let filter: String = row.get(0)?;
        let kind: String = row.get(1)?;
        let id: Option<u16> = row.get(2)?;
        let qos: u8 = row.get(3)?;
        let kind = match (kind.as_str(), id) {
            ("name", _) => StoredTopicKind::Name,
            ("short", _) => StoredTopicKind::Short,
            ("predefined", Some(id)) => StoredTopicKind::Predefined(id),
            _ => {
                return Ok(Err(format!(
                    "subscription {filter:?} of unknown kind {kind:?}"
                )));
            }
        };
        let Some(qos) = MqttQos::from_level(qos) else {
            return Ok(Err(format!("subscription {filter:?} with QoS {qos}")));
        };
        subs.push(StoredSubscription { filter, kind, qos });
    }
    Ok(Ok(subs))
}

fn topic_ids(conn: &Connection, client_id: &str) -> rusqlite::Result<Vec<StoredTopicId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT topic_id, name, confirmed FROM topic_ids WHERE client_id = ?1 ORDER BY topic_id",
    )?;
    let rows = stmt.query_map([client_id], |row| {
        Ok(StoredTopicId {
            id: row.get(0)?,
            name: row.get(1)?,
            confirmed: row.get(2)?,
        })
    })?;
    rows.collect()
}

/// Keeps a message in custody (`now_ms`: Unix milliseconds, its age's origin).
pub(crate) fn put_message(
    conn: &Connection,
    m: &StoredMessage,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO messages (seq, client_id, topic, payload, qos, retain, \
         received_at, msg_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        i64::try_from(m.seq).unwrap_or(i64::MAX),
        m.client_id,
        m.topic,
        &m.payload[..],
        m.qos.level(),
        m.retain,
        now_ms,
        m.msg_id,
    ])?;
    Ok(())
}

/// The broker accepted a QoS 2 message in custody under `pkid` (PUBREC), or `None`: it must be
/// published again.
pub(crate) fn set_pubrec(conn: &Connection, seq: u64, pkid: Option<u16>) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE messages SET pubrec_pkid = ?2 WHERE seq = ?1")?
        .execute(params![i64::try_from(seq).unwrap_or(i64::MAX), pkid])?;
    Ok(())
}

/// A message left custody.
pub(crate) fn delete_message(conn: &Connection, seq: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM messages WHERE seq = ?1")?
        .execute([i64::try_from(seq).unwrap_or(i64::MAX)])?;
    Ok(())
}

/// Every message in custody, in custody order, with its age at `now_ms`; rows that cannot be
/// read are skipped and named.
pub(crate) fn load_messages(
    conn: &Connection,
    now_ms: i64,
) -> rusqlite::Result<(Vec<StoredMessage>, Vec<BadRow>)> {
    let mut stmt = conn.prepare(
        "SELECT seq, client_id, topic, payload, qos, retain, received_at, pubrec_pkid, msg_id \
         FROM messages ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let (mut messages, mut bad) = (Vec::new(), Vec::new());
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let client_id: String = row.get(1)?;
        let qos: u8 = row.get(4)?;
        let received_at: i64 = row.get(6)?;
        let (Ok(seq), Some(qos)) = (u64::try_from(seq), MqttQos::from_level(qos)) else {
            bad.push(BadRow {
                client_id,
                problem: format!("custody message {seq} with QoS {qos}"),
            });
            continue;
        };
        let age_ms = u64::try_from(now_ms.saturating_sub(received_at)).unwrap_or(0);
        messages.push(StoredMessage {
            seq,
            client_id,
            topic: row.get(2)?,
            payload: Bytes::from(row.get::<_, Vec<u8>>(3)?),
            qos,
            retain: row.get(5)?,
            age: Duration::from_millis(age_ms),
            pubrec: row.get::<_, Option<u16>>(7).ok().flatten(),
            msg_id: row.get::<_, u16>(8).unwrap_or(0),
        });
    }
    Ok((messages, bad))
}
