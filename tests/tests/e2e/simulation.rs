//! Deterministic simulation scenarios (`sn_tests::sim`): `firmware-demo` motes, the forwarder
//! core, the gateway core and a simulated broker on seeded lossy links, in simulated time.
//! Each scenario asserts exact counts at the MQTT side (the backend subscriber) and at the
//! motes. In aggregating mode QoS 2 stays exactly once across bounces of the shared link when
//! that link keeps a persistent session (the gateway has a state store).
//! `SIM_TRANSCRIPT_DIR=<dir>` keeps every scenario's transcript.

use std::collections::BTreeMap;
use std::time::Duration;

use gateway::core::config::UpstreamMode;
use gateway::core::event::GatewayEvent;
use gateway::core::upstream::LinkId;
use sn_codec::QoS;
use sn_tests::sim::{
    Direction, Hop, LinkModel, MotePlan, MoteSpec, SleepPlan, Via, World, WorldConfig,
};

/// Every data message the backend subscriber received: (ClientId, sequence number) → the QoS
/// of each copy. Panics on a payload no mote sent.
fn backend_ledger(w: &World) -> BTreeMap<(String, u32), Vec<u8>> {
    let mut ledger: BTreeMap<(String, u32), Vec<u8>> = BTreeMap::new();
    for d in w.broker().backend_received() {
        let text = String::from_utf8(d.payload.to_vec()).unwrap();
        let (id, seq) = text.rsplit_once('/').expect("a mote payload is <id>/<seq>");
        assert_eq!(
            d.topic,
            format!("motes/{id}/data"),
            "payload {text} on {}",
            d.topic
        );
        let seq: u32 = seq.parse().unwrap();
        let mote = w.motes().iter().find(|m| m.id() == id);
        let queued = mote.is_some_and(|m| m.report().queued.contains(&seq));
        assert!(queued, "the backend got {text}, which no mote published");
        ledger.entry((id.to_owned(), seq)).or_default().push(d.qos);
    }
    ledger
}

/// Writes the transcript to `$SIM_TRANSCRIPT_DIR/<name>.txt` when that variable is set (for
/// looking into a failure).
fn keep_transcript(w: &World, name: &str) {
    if let Some(dir) = std::env::var_os("SIM_TRANSCRIPT_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{name}.txt"));
        std::fs::write(&path, w.transcript().text()).unwrap();
    }
}

/// The broker saw no breach of the connector contract and the world nothing odd.
fn assert_clean(w: &World) {
    assert!(
        w.broker().violations().is_empty(),
        "connector contract breaches: {:#?}",
        w.broker().violations()
    );
    assert!(w.anomalies().is_empty(), "anomalies: {:#?}", w.anomalies());
    for m in w.motes() {
        assert_eq!(m.client().stats().events_dropped, 0, "{}", m.id());
    }
}

/// Loss on `hop` was within `lo..=hi` percent (so the scenario really ran on a lossy link).
fn assert_loss(w: &World, hop: Hop, lo: u64, hi: u64) {
    let s = w.hop_stats().get(&hop).copied().unwrap_or_default();
    assert!(s.sent > 1000, "{hop:?}: only {} datagrams", s.sent);
    let pct = s.lost * 100 / s.sent;
    assert!((lo..=hi).contains(&pct), "{hop:?}: {pct} % lost ({s:?})");
}

fn direct_plan(publishes: u32, qos: Vec<QoS>) -> MotePlan {
    MotePlan {
        publishes,
        qos,
        gap_ms: (500, 3_000),
        start_within_ms: 10_000,
        commands: None,
        sleep: None,
    }
}

#[test]
fn hundred_motes_at_qos2_under_20_percent_loss_deliver_every_message_exactly_once() {
    const MOTES: usize = 100;
    const EACH: u32 = 20;
    let mut cfg = WorldConfig::new(0x5EED_0001);
    cfg.direct = LinkModel::symmetric(Direction::lossy(20));
    cfg.motes = (0..MOTES)
        .map(|i| {
            let plan = direct_plan(EACH, vec![QoS::Two]);
            MoteSpec::new(&format!("mote-{i:03}"), Via::Direct, plan)
        })
        .collect();
    let mut w = World::new(cfg).unwrap();
    w.backend_subscribe("motes/+/data", 2);
    let finished = w.run_while(600_000, |w| !w.motes().iter().all(|m| m.done_publishing()));
    assert!(
        finished,
        "not every publish had an outcome by t={}",
        w.now()
    );
    // Whatever is still on its way settles.
    w.run_until(w.now() + 30_000);
    keep_transcript(&w, "qos2-100-motes");

    assert_clean(&w);
    assert_loss(&w, Hop::DirectUp, 17, 23);
    assert_loss(&w, Hop::DirectDown, 17, 23);
    for m in w.motes() {
        let r = m.report();
        assert_eq!(r.failed, vec![], "{}: failed publishes", m.id());
        let mut acked: Vec<u32> = r.acked.iter().map(|(seq, _)| *seq).collect();
        acked.sort_unstable();
        assert_eq!(
            acked,
            (0..EACH).collect::<Vec<_>>(),
            "{}: acknowledged",
            m.id()
        );
        assert!(r.acked.iter().all(|(_, q)| *q == QoS::Two), "{}", m.id());
    }
    let ledger = backend_ledger(&w);
    assert_eq!(
        ledger.len(),
        MOTES * EACH as usize,
        "distinct messages at the backend"
    );
    for (key, copies) in &ledger {
        assert_eq!(copies, &vec![2], "{key:?} reached the backend {copies:?}");
    }
    assert_eq!(w.broker().backend_received().len(), MOTES * EACH as usize);
}

const SLEEPERS: usize = 50;
const COMMANDS: u32 = 4;
const READINGS: u32 = 8;
const SLEEPERS_SEED: u64 = 0x5EED_0101;
const SLEEPERS_LOSS_ONLY_SEED: u64 = 0x5EED_0104;

/// 50 motes behind a forwarder on a radio with `radio` % loss (and 2 % on the backhaul), each
/// way also duplicating and reordering when `shuffle`, sleeping 30 s at a time, waking to fetch
/// buffered messages, resuming the session to publish a reading at QoS 1, and going back to
/// sleep. Once every mote's command subscription (QoS 2) is at the broker, the backend sends
/// four QoS 2 commands to each mote over 100 s; then three more sleep cycles pass.
fn sleepers_world(seed: u64, shuffle: bool) -> World {
    let mut cfg = WorldConfig::new(seed);
    let link = |loss| {
        let d = Direction::lossy(loss);
        if shuffle {
            d
        } else {
            Direction {
                duplicate_ppm: 0,
                reorder_ppm: 0,
                ..d
            }
        }
    };
    cfg.radio = LinkModel::symmetric(link(10));
    cfg.backhaul = LinkModel::symmetric(link(2));
    // A lossy radio: the gateway retries its deliveries more often than the spec's 3 times.
    cfg.gateway.n_retry = 8;
    cfg.motes = (0..SLEEPERS)
        .map(|i| {
            let plan = MotePlan {
                publishes: READINGS,
                qos: vec![QoS::One],
                gap_ms: (0, 0),
                start_within_ms: 10_000,
                commands: Some(QoS::Two),
                sleep: Some(SleepPlan { asleep_s: 30 }),
            };
            let mut spec = MoteSpec::new(&format!("sleeper-{i:02}"), Via::Forwarder, plan);
            spec.clean_session = false;
            // The gateway allows a 30 s sleep 15 s of grace: enough for several wake-up
            // PINGREQs 2 s apart on a lossy radio.
            spec.timers.t_retry = Duration::from_secs(2);
            spec
        })
        .collect();
    let mut w = World::new(cfg).unwrap();
    w.backend_subscribe("motes/+/data", 2);

    // Commands only make sense once every mote's subscription is at the broker.
    let subscribed = w.run_while(60_000, |w| {
        (0..SLEEPERS).any(|i| w.broker().subscribers(&format!("motes/sleeper-{i:02}/cmd")) == 0)
    });
    assert!(subscribed, "not every mote subscribed by t={}", w.now());
    let start = w.now();
    let mut schedule: Vec<(u64, usize, u32)> = Vec::new();
    for i in 0..SLEEPERS {
        for k in 0..COMMANDS {
            let at = start + u64::from(k) * 25_000 + (i as u64 * 7_919) % 20_000;
            schedule.push((at, i, k));
        }
    }
    schedule.sort_unstable();
    for (at, i, k) in schedule {
        w.run_until(at);
        let id = format!("sleeper-{i:02}");
        let payload = format!("cmd {id} {k}");
        w.backend_publish(&format!("motes/{id}/cmd"), payload.as_bytes(), 2, false);
    }
    w.run_until(start + 200_000);
    keep_transcript(&w, &format!("sleepers-{seed:x}"));
    w
}

/// The commands sent to mote `id`, in order.
fn commands_for(id: &str) -> Vec<String> {
    (0..COMMANDS).map(|k| format!("cmd {id} {k}")).collect()
}

#[test]
fn fifty_sleeping_motes_behind_a_forwarder_get_every_buffered_command() {
    let w = sleepers_world(SLEEPERS_SEED, true);
    assert_clean(&w);
    assert_eq!(w.forwarder().map(|f| f.node_count()), Some(SLEEPERS));
    assert_loss(&w, Hop::RadioUp, 7, 13);
    assert_loss(&w, Hop::RadioDown, 7, 13);
    let mut buffered = 0;
    for m in w.motes() {
        let r = m.report();
        // Every command, in order of first arrival, and nothing else (exactly once on a
        // network without duplicates is the next test).
        let mut first: Vec<&str> = Vec::new();
        for x in &r.received {
            assert_eq!(x.qos, QoS::Two, "{}: {}", m.id(), x.payload);
            if !first.contains(&x.payload.as_str()) {
                first.push(&x.payload);
            }
        }
        assert_eq!(first, commands_for(m.id()), "{}: commands received", m.id());
        buffered += r
            .received
            .iter()
            .filter(|x| x.state == firmware_demo::client::State::Awake)
            .count();
        assert!(r.wakes >= 4, "{}: {} wake-ups", m.id(), r.wakes);
        assert!(r.resumes >= 4, "{}: {} resumed sessions", m.id(), r.resumes);
        assert_eq!(r.failed, vec![], "{}: failed readings", m.id());
        assert!(r.acked.len() >= 4, "{}: {} readings", m.id(), r.acked.len());
    }
    assert!(
        buffered * 2 >= SLEEPERS * COMMANDS as usize,
        "only {buffered} commands were buffered while their mote slept"
    );
    let lost: Vec<_> = w
        .gateway_events()
        .iter()
        .filter(|(_, e)| matches!(e, GatewayEvent::ClientLost { .. }))
        .collect();
    assert_eq!(
        lost,
        Vec::<&(u64, GatewayEvent)>::new(),
        "sleeping motes declared lost"
    );
    // Every acknowledged reading is at the backend (QoS 1: at least once).
    let ledger = backend_ledger(&w);
    for m in w.motes() {
        for (seq, _) in &m.report().acked {
            assert!(
                ledger.contains_key(&(m.id().to_owned(), *seq)),
                "{} reading {seq} acknowledged but not at the backend",
                m.id()
            );
        }
    }
}

#[test]
fn fifty_sleeping_motes_behind_a_forwarder_get_every_qos2_command_exactly_once() {
    // Loss only: a network that duplicates and delays datagrams beyond a whole QoS 2 exchange
    // defeats exactly-once at any MQTT-SN receiver, which forgets a MsgId at PUBREL.
    let w = sleepers_world(SLEEPERS_LOSS_ONLY_SEED, false);
    for m in w.motes() {
        let got: Vec<&str> = m
            .report()
            .received
            .iter()
            .map(|x| x.payload.as_str())
            .collect();
        assert_eq!(got, commands_for(m.id()), "{}: commands received", m.id());
    }
}

const AGG_MOTES: usize = 40;
const AGG_EACH: u32 = 30;
const AGG_SEED: u64 = 0x5EED_0003;

/// Aggregating mode: 40 motes on a 5 %-loss network publish 30 messages each, alternately at
/// QoS 1 and 2, while the gateway's one broker connection (40 ms away) is broken three times
/// (for 3 s, 6 s and 1 s); runs until every publish has an outcome.
fn aggregating_world(seed: u64) -> World {
    aggregating_world_with(seed, false)
}

/// The aggregating site; `persistent`: the gateway has a state store, so its shared link keeps
/// a persistent session.
fn aggregating_world_with(seed: u64, persistent: bool) -> World {
    let mut cfg = WorldConfig::new(seed);
    cfg.gateway.upstream.mode = UpstreamMode::Aggregating;
    cfg.gateway.persist_sessions = persistent;
    // A distant broker: with 40 ms each way, every bounce catches publishes on the wire.
    cfg.broker.latency_ms = 40;
    cfg.direct = LinkModel::symmetric(Direction::lossy(5));
    cfg.motes = (0..AGG_MOTES)
        .map(|i| {
            let plan = MotePlan {
                gap_ms: (200, 1_200),
                start_within_ms: 5_000,
                ..direct_plan(AGG_EACH, vec![QoS::One, QoS::Two])
            };
            MoteSpec::new(&format!("agg-{i:02}"), Via::Direct, plan)
        })
        .collect();
    let mut w = World::new(cfg).unwrap();
    w.backend_subscribe("motes/+/data", 2);
    for (at, down_for) in [(12_000, 3_000), (21_000, 6_000), (31_000, 1_000)] {
        w.run_until(at);
        w.bounce(LinkId::GATEWAY, down_for);
    }
    let finished = w.run_while(600_000, |w| !w.motes().iter().all(|m| m.done_publishing()));
    assert!(
        finished,
        "not every publish had an outcome by t={}",
        w.now()
    );
    w.run_until(w.now() + 30_000);
    keep_transcript(&w, &format!("aggregating-{seed:x}-{persistent}"));
    w
}

#[test]
fn aggregating_shared_link_bounces_under_load_lose_nothing_acknowledged() {
    let w = aggregating_world(AGG_SEED);
    assert_clean(&w);
    let stats = w.broker().stats();
    assert_eq!(stats.bounces, 3);
    assert!(
        stats.lost_tokens >= 3,
        "the bounces caught only {} requests in flight",
        stats.lost_tokens
    );
    let downs = w
        .gateway_events()
        .iter()
        .filter(|(_, e)| matches!(e, GatewayEvent::UpstreamHealth { up: false }))
        .count();
    assert_eq!(downs, 3, "the gateway saw every bounce");
    assert_eq!(
        w.broker().links(),
        1,
        "one broker connection for every mote"
    );
    let ledger = backend_ledger(&w);
    for m in w.motes() {
        let r = m.report();
        assert_eq!(r.failed, vec![], "{}: failed publishes", m.id());
        assert_eq!(r.acked.len(), AGG_EACH as usize, "{}: acknowledged", m.id());
        for (seq, qos) in &r.acked {
            let copies = ledger
                .get(&(m.id().to_owned(), *seq))
                .unwrap_or_else(|| panic!("{} #{seq} acknowledged, not at the backend", m.id()));
            let level = if *qos == QoS::Two { 2 } else { 1 };
            assert!(copies.iter().all(|q| *q == level), "{} #{seq}", m.id());
        }
    }
    assert_eq!(
        ledger.len(),
        AGG_MOTES * AGG_EACH as usize,
        "distinct messages at the backend"
    );
}

#[test]
fn aggregating_shared_link_bounces_keep_qos2_exactly_once_with_a_persistent_shared_session() {
    let w = aggregating_world_with(AGG_SEED, true);
    for ((id, seq), copies) in backend_ledger(&w) {
        if seq % 2 == 1 {
            assert_eq!(copies, vec![2], "{id} #{seq} (QoS 2) at the backend");
        }
    }
}

#[test]
fn transparent_link_bounces_with_persistent_sessions_keep_qos2_exactly_once() {
    const MOTES: usize = 20;
    const EACH: u32 = 20;
    let mut cfg = WorldConfig::new(0x5EED_0004);
    cfg.broker.latency_ms = 40;
    cfg.direct = LinkModel::symmetric(Direction::lossy(5));
    cfg.motes = (0..MOTES)
        .map(|i| {
            let plan = MotePlan {
                gap_ms: (200, 1_000),
                start_within_ms: 3_000,
                ..direct_plan(EACH, vec![QoS::Two])
            };
            let mut spec = MoteSpec::new(&format!("pers-{i:02}"), Via::Direct, plan);
            // A persistent session at the mote is a persistent upstream session.
            spec.clean_session = false;
            spec
        })
        .collect();
    let mut w = World::new(cfg).unwrap();
    w.backend_subscribe("motes/+/data", 2);
    // Every mote's own broker connection breaks twice while it publishes.
    for round in 0..2u64 {
        for i in 0..MOTES {
            w.run_until(6_000 + round * 5_000 + i as u64 * 200);
            let id = format!("pers-{i:02}");
            let link = w.broker().link_of(&id).expect("connected");
            w.bounce(link, 1_500);
        }
    }
    let finished = w.run_while(600_000, |w| !w.motes().iter().all(|m| m.done_publishing()));
    assert!(
        finished,
        "not every publish had an outcome by t={}",
        w.now()
    );
    w.run_until(w.now() + 30_000);
    keep_transcript(&w, "transparent-bounces");

    assert_clean(&w);
    let stats = w.broker().stats();
    assert_eq!(stats.bounces, 2 * MOTES as u64);
    assert_eq!(stats.lost_tokens, 0, "a persistent session loses nothing");
    assert!(
        stats.replayed >= 3,
        "only {} replays: the bounces caught nothing",
        stats.replayed
    );
    let ledger = backend_ledger(&w);
    for m in w.motes() {
        assert_eq!(m.report().failed, vec![], "{}: failed publishes", m.id());
        assert_eq!(m.report().acked.len(), EACH as usize, "{}", m.id());
    }
    assert_eq!(
        ledger.len(),
        MOTES * EACH as usize,
        "distinct messages at the backend"
    );
    for (key, copies) in &ledger {
        assert_eq!(copies, &vec![2], "{key:?} at the backend");
    }
}

/// A small busy world: loss, duplication and reordering both ways, all three QoS levels,
/// commands down, a bounce of one mote's broker connection, and sleeping motes behind a
/// forwarder.
fn busy_world(seed: u64) -> World {
    let mut cfg = WorldConfig::new(seed);
    let shaky = LinkModel::symmetric(Direction {
        duplicate_ppm: 30_000,
        reorder_ppm: 50_000,
        ..Direction::lossy(15)
    });
    cfg.direct = shaky;
    cfg.radio = shaky;
    let direct = (0..12).map(|i| {
        let plan = MotePlan {
            commands: Some(QoS::One),
            ..direct_plan(8, vec![QoS::Zero, QoS::One, QoS::Two])
        };
        MoteSpec::new(&format!("det-{i:02}"), Via::Direct, plan)
    });
    let radio = (12..16).map(|i| {
        let plan = MotePlan {
            gap_ms: (0, 0),
            commands: Some(QoS::Two),
            sleep: Some(SleepPlan { asleep_s: 10 }),
            ..direct_plan(4, vec![QoS::One])
        };
        MoteSpec::new(&format!("det-{i:02}"), Via::Forwarder, plan)
    });
    cfg.motes = direct.chain(radio).collect();
    let mut w = World::new(cfg).unwrap();
    w.backend_subscribe("motes/#", 2);
    let up = |w: &World| {
        w.broker()
            .link_of("det-03")
            .filter(|l| w.broker().is_up(*l))
    };
    assert!(
        w.run_while(30_000, |w| up(w).is_none()),
        "det-03 never connected"
    );
    let link = up(&w).unwrap();
    w.bounce(link, 2_000);
    w.run_until(w.now() + 2_000);
    for i in 0..16 {
        let id = format!("det-{i:02}");
        w.backend_publish(&format!("motes/{id}/cmd"), b"led=on", 1, false);
    }
    w.run_until(60_000);
    w
}

#[test]
fn the_same_seed_gives_the_same_transcript_and_another_seed_another() {
    let a = busy_world(7);
    keep_transcript(&a, "busy-seed-7");
    let b = busy_world(7);
    let c = busy_world(8);
    assert!(
        a.transcript().len() > 1_000,
        "{} lines",
        a.transcript().len()
    );
    assert_eq!(
        a.transcript().first_difference(b.transcript()),
        None,
        "two runs with seed 7 differ"
    );
    assert_eq!(a.transcript().text(), b.transcript().text());
    assert!(
        a.transcript().first_difference(c.transcript()).is_some(),
        "seeds 7 and 8 gave the same transcript"
    );
}
