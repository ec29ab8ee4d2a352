//! `sn-bench`: runs the gateway benchmark scenarios and prints one result line per run (see
//! BENCHMARKS.md). Build in release mode first; `scripts/bench.sh` does both. `--gateway-bin`
//! measures another gateway binary with the same harness.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use sn_codec::QoS;
use sn_tests::bench::flood::{self, FloodParams};
use sn_tests::bench::scenarios::{self, Outcome};

/// Benchmarks of the MQTT-SN gateway against a local mosquitto.
#[derive(Debug, Parser)]
struct Cli {
    /// Repeat each scenario this many times and also print the run with the median rate.
    #[arg(long, default_value_t = 1, global = true)]
    runs: usize,
    /// Seconds of load per run, where a scenario has a duration.
    #[arg(long, default_value_t = 5, global = true)]
    secs: u64,
    /// The gateway's upstream mode: `transparent` (one MQTT connection per mote) or
    /// `aggregating` (one shared connection).
    #[arg(long, default_value = "transparent", global = true)]
    upstream_mode: String,
    /// The gateway binary to benchmark (default: the release `mqtt-sn-gateway` beside
    /// `sn-bench`), e.g. an older build to compare against; it must accept the same
    /// command-line flags and configuration keys.
    #[arg(long, global = true, value_name = "PATH")]
    gateway_bin: Option<PathBuf>,
    /// A further argument for every gateway started (repeatable), e.g. `--gateway-arg=--storage
    /// --gateway-arg=off`.
    #[arg(long, global = true, value_name = "ARG", allow_hyphen_values = true)]
    gateway_arg: Vec<String>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Open-loop publish throughput at QoS -1 or 0 (predefined topic, 32-octet payload).
    Throughput {
        /// -1 or 0.
        #[arg(long, allow_hyphen_values = true)]
        qos: i8,
        /// Simulated motes (one UDP socket each).
        #[arg(long)]
        motes: usize,
        /// Target total rate, messages per second.
        #[arg(long)]
        rate: u64,
    },
    /// QoS 0 rate sweep: the highest rate with no loss.
    Sweep {
        /// Simulated motes.
        #[arg(long)]
        motes: usize,
        /// Rates to try, in order.
        #[arg(long, value_delimiter = ',')]
        rates: Vec<u64>,
    },
    /// Closed-loop QoS 1 or 2, one message in flight per mote.
    Reliable {
        /// 1 or 2.
        #[arg(long)]
        qos: u8,
        /// Simulated motes.
        #[arg(long)]
        motes: usize,
        /// Connect with CleanSession=0, so a gateway with a state database stores the
        /// sessions (and their QoS 2 exchanges).
        #[arg(long)]
        keep_sessions: bool,
    },
    /// Motes CONNECT at once.
    ConnectStorm {
        /// Simulated motes.
        #[arg(long)]
        motes: usize,
    },
    /// Gateway memory: idle, connected, sleeping with buffered messages.
    Memory {
        /// Simulated motes.
        #[arg(long)]
        motes: usize,
        /// Messages buffered per sleeping mote.
        #[arg(long, default_value_t = 10)]
        buffered: usize,
    },
    /// One broker publish delivered to many subscribed motes.
    FanOut {
        /// Simulated motes.
        #[arg(long)]
        motes: usize,
    },
    /// CONNECTs with random ClientIds from one UDP port for `--secs` while paired motes
    /// publish QoS 1: their PUBACKs, `/metrics`, the watchdog, memory, log, session table.
    ConnectFlood {
        /// CONNECTs per second.
        #[arg(long, default_value_t = 50_000)]
        flood_rate: u64,
        /// Paired (registered) motes publishing during the flood.
        #[arg(long, default_value_t = 10)]
        motes: usize,
        /// QoS 1 readings per second of each paired mote.
        #[arg(long, default_value_t = 2.0)]
        publish_rate: f64,
        /// The systemd watchdog interval the gateway is told (`WATCHDOG_USEC`, microseconds);
        /// it pets every half. The default, 2 s, shows stalls of a second or more; systemd's
        /// usual 30 s (30000000) only shows stalls of 15 s or more.
        #[arg(long, default_value_t = 2_000_000)]
        watchdog_usec: u64,
    },
    /// Restart to ready with stored sessions: fills a state database, starts the gateway on it
    /// and times it until `READY=1`.
    Restart {
        /// Stored CleanSession=0 sessions.
        #[arg(long, default_value_t = 10_000)]
        sessions: usize,
        /// Share of them asleep, percent.
        #[arg(long, default_value_t = 50)]
        asleep_percent: usize,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    sn_tests::bench::procs::set_upstream_mode(&cli.upstream_mode);
    if let Some(path) = &cli.gateway_bin {
        sn_tests::bench::procs::set_gateway_binary(path.clone());
    }
    sn_tests::bench::procs::set_extra_args(cli.gateway_arg.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let _ = sn_tests::bench::motes::epoch();
        let mut results = Vec::new();
        for _ in 0..cli.runs {
            let outcomes = run(&cli).await?;
            for o in &outcomes {
                println!("{o}");
            }
            results.extend(outcomes);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if cli.runs > 1 && matches!(cli.scenario, Scenario::ConnectFlood { .. }) {
            let lines: Vec<String> = results.iter().map(ToString::to_string).collect();
            println!("medians: {}", field_medians(&lines));
        }
        if cli.runs > 1 && !matches!(cli.scenario, Scenario::Sweep { .. }) {
            results.sort_by(|a, b| {
                let r = |o: &Outcome| o.delivered as f64 / o.elapsed.as_secs_f64().max(1e-9);
                r(a).total_cmp(&r(b))
            });
            if let Some(median) = results.get(results.len() / 2) {
                println!("median: {median}");
            }
        }
        Ok(())
    })
}

async fn run(cli: &Cli) -> Result<Vec<Outcome>> {
    Ok(match &cli.scenario {
        Scenario::Throughput { qos, motes, rate } => {
            let qos = if *qos < 0 { QoS::MinusOne } else { QoS::Zero };
            vec![scenarios::throughput(qos, *motes, *rate, cli.secs).await?]
        }
        Scenario::Sweep { motes, rates } => scenarios::sweep(*motes, rates, cli.secs).await?,
        Scenario::Reliable {
            qos,
            motes,
            keep_sessions,
        } => {
            let qos = if *qos == 2 { QoS::Two } else { QoS::One };
            vec![scenarios::reliable(qos, *motes, cli.secs, *keep_sessions).await?]
        }
        Scenario::ConnectStorm { motes } => vec![scenarios::connect_storm(*motes).await?],
        Scenario::Memory { motes, buffered } => vec![scenarios::memory(*motes, *buffered).await?],
        Scenario::FanOut { motes } => vec![scenarios::fan_out(*motes).await?],
        Scenario::Restart {
            sessions,
            asleep_percent,
        } => vec![sn_tests::bench::restart::restart(*sessions, *asleep_percent).await?],
        Scenario::ConnectFlood {
            flood_rate,
            motes,
            publish_rate,
            watchdog_usec,
        } => vec![
            flood::connect_flood(FloodParams {
                rate: *flood_rate,
                duration: Duration::from_secs(cli.secs),
                motes: *motes,
                publish_rate: *publish_rate,
                watchdog: Duration::from_micros(*watchdog_usec),
            })
            .await?,
        ],
    })
}

/// One line whose every `key=value` field is the median of that field over `lines` (result
/// lines of the same scenario, fields in the same order): the value of the middle run when
/// the runs are ordered by the field's leading number. Fields that are not numbers, and words
/// without `=`, are taken from the first line.
fn field_medians(lines: &[String]) -> String {
    let split: Vec<Vec<&str>> = lines.iter().map(|l| l.split(' ').collect()).collect();
    let Some(first) = split.first() else {
        return String::new();
    };
    let number = |field: &str| -> Option<f64> {
        let value = field.split_once('=')?.1;
        let end = value
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(value.len());
        value.get(..end)?.parse().ok()
    };
    let mut out = Vec::with_capacity(first.len());
    for (i, field) in first.iter().enumerate() {
        let mut column: Vec<(f64, &str)> = split
            .iter()
            .filter_map(|fields| fields.get(i))
            .filter_map(|f| number(f).map(|n| (n, *f)))
            .collect();
        if column.len() != split.len() {
            out.push(*field);
            continue;
        }
        column.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.push(column.get((column.len() - 1) / 2).map_or(*field, |c| c.1));
    }
    out.join(" ")
}
