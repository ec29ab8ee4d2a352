//! The command line of `mote-sim`: [`Cli`] and its translation into a [`SimConfig`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use super::serial::Framing;
use super::{Network, SerialNetwork, SimConfig, UdpNetwork};
use crate::app::{SensorConfig, SleepCycle, TopicMode};
use crate::client::Timers;
use crate::sn_codec::QoS;

/// Simulated MQTT-SN sensor motes on the host: temperature/humidity readings over UDP to an
/// MQTT-SN gateway.
///
/// `demo` runs a handful of motes and logs what each does; `swarm` runs many and reports
/// throughput and latency. Stop with Ctrl-C: every mote disconnects gracefully.
#[derive(Debug, Clone, Parser)]
#[command(name = "mote-sim", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Mode,
}

/// Modes.
#[derive(Debug, Clone, Subcommand)]
pub enum Mode {
    /// A few motes with readable logs: discovery, CONNECT, REGISTER, readings, commands, sleep.
    Demo(DemoArgs),
    /// Many motes at a target message rate; reports sent, acknowledged, retried, failed and
    /// latency percentiles.
    Swarm(SwarmArgs),
}

/// Options of both modes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The gateway's UDP address (no discovery).
    #[arg(long, value_name = "ADDR:PORT", required_unless_present_any = ["search", "serial"])]
    pub gateway: Option<SocketAddr>,
    /// GwId assumed for --gateway.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub gateway_id: u8,
    /// Find the gateway with SEARCHGW on this IPv4 multicast group (ADVERTISE and GWINFO are
    /// heard there too), e.g. 225.1.1.1:1884.
    #[arg(long, value_name = "GROUP:PORT")]
    pub search: Option<SocketAddrV4>,
    /// Interface address for --search (multicast is sent and joined there).
    #[arg(long, default_value = "127.0.0.1", value_name = "IPV4")]
    pub interface: Ipv4Addr,
    /// Reach the gateway through a forwarder listening on this serial line (a pseudo-terminal
    /// such as one end of `socat -d -d pty,raw,echo=0 pty,raw,echo=0`) instead of UDP.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["gateway", "search"])]
    pub serial: Option<String>,
    /// Framing of the serial line (as configured at the forwarder for that port).
    #[arg(long, value_enum, default_value_t = Framing::Slip)]
    pub framing: Framing,
    /// Baud rate of the serial line.
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// With --serial: find the gateway with SEARCHGW through the forwarder instead of
    /// assuming it (GwId --gateway-id).
    #[arg(long, requires = "serial")]
    pub serial_discovery: bool,
    /// SEARCHGW radius (and multicast TTL).
    #[arg(long, default_value_t = 1, value_name = "HOPS")]
    pub radius: u8,
    /// Local address of the motes' sockets.
    #[arg(long, default_value = "0.0.0.0", value_name = "IP")]
    pub bind: IpAddr,
    /// ClientId prefix; the mote number follows (mote-1, mote-2, …).
    #[arg(long, default_value = "mote-", value_name = "TEXT")]
    pub client_prefix: String,
    /// First topic level (PREFIX): readings go to PREFIX/CLIENT_ID/reading, commands come from
    /// PREFIX/CLIENT_ID/cmd.
    #[arg(long, default_value = "motes", value_name = "TEXT")]
    pub topic_prefix: String,
    /// QoS of the readings: -1, 0, 1 or 2 (-1 needs --topic-mode predefined or short).
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i8).range(-1..=2))]
    pub qos: Option<i8>,
    /// Where readings go.
    #[arg(long, value_enum, default_value_t = TopicModeArg::Registered)]
    pub topic_mode: TopicModeArg,
    /// Predefined topic id for --topic-mode predefined (configure it at the gateway).
    #[arg(long, default_value_t = 1, value_name = "ID")]
    pub predefined_id: u16,
    /// Two-character topic name for --topic-mode short.
    #[arg(long, default_value = "rd", value_name = "XX")]
    pub short_topic: String,
    /// Keep-alive in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub keep_alive: u16,
    /// T_RETRY in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub t_retry: f64,
    /// N_RETRY.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub n_retry: u8,
    /// First wait before searching for a gateway again, or reconnecting after the gateway
    /// ended the session twice in a row, in seconds; it doubles up to --backoff-max.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub backoff_initial: f64,
    /// Longest such wait, in seconds.
    #[arg(long, default_value_t = 900.0, value_name = "SECS")]
    pub backoff_max: f64,
    /// Stop each mote after this many readings.
    #[arg(long, value_name = "N")]
    pub readings: Option<u32>,
    /// On stop, how long each mote waits for the gateway to confirm its DISCONNECT.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub linger: f64,
    /// Seed of the first mote (mote i uses seed + i): jitter and fake readings.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Log filter: a level or tracing directives (defaults: info for demo, warn for swarm).
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
}

/// Topic modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopicModeArg {
    /// REGISTER PREFIX/CLIENT_ID/reading.
    Registered,
    /// A predefined topic id (--predefined-id).
    Predefined,
    /// A two-character short topic name (--short-topic).
    Short,
}

/// `demo` options.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: Common,
    /// Number of motes.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub motes: usize,
    /// Reporting interval in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub interval: u64,
    /// How many motes (the last ones) sleep between readings.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub sleepers: usize,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}

/// `swarm` options.
#[derive(Debug, Clone, Args)]
pub struct SwarmArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: Common,
    /// Number of motes.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub motes: usize,
    /// Target rate of readings over all motes, per second.
    #[arg(long, default_value_t = 100.0, value_name = "MSG/S")]
    pub rate: f64,
    /// Payload size of each reading in octets (readings are padded; at least their text).
    #[arg(long, default_value_t = 0, value_name = "BYTES")]
    pub payload: usize,
    /// Sleep this many seconds after each awake window (with --awake).
    #[arg(long, value_name = "SECS")]
    pub sleep: Option<f64>,
    /// Length of each awake window in seconds (with --sleep; default 0: one reading).
    #[arg(long, value_name = "SECS")]
    pub awake: Option<f64>,
    /// Run for this many seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub duration: f64,
    /// Spread mote start-ups over this many seconds.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub ramp: f64,
    /// Subscribe at this broker (mqtt://HOST:PORT) and check every reading end to end
    /// (QoS 0 / -1 latency comes from here).
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
    /// Topic filter for --broker (default: the readings' topics).
    #[arg(long, value_name = "FILTER")]
    pub broker_filter: Option<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn secs(v: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| anyhow::anyhow!("{what}: {v} is not a valid number of seconds"))
}

impl Common {
    fn qos(&self, default: QoS) -> QoS {
        match self.qos {
            Some(-1) => QoS::MinusOne,
            Some(0) => QoS::Zero,
            Some(1) => QoS::One,
            Some(2) => QoS::Two,
            _ => default,
        }
    }

    fn topic_mode(&self) -> Result<TopicMode> {
        Ok(match self.topic_mode {
            TopicModeArg::Registered => TopicMode::Registered,
            TopicModeArg::Predefined => TopicMode::Predefined(self.predefined_id),
            TopicModeArg::Short => match self.short_topic.as_bytes() {
                [a, b] => TopicMode::Short([*a, *b]),
                _ => bail!(
                    "--short-topic must be exactly two octets, got {:?}",
                    self.short_topic
                ),
            },
        })
    }

    /// The default broker filter: what the readings are published to.
    fn reading_filter(&self) -> String {
        match self.topic_mode {
            TopicModeArg::Registered => format!("{}/+/reading", self.topic_prefix),
            TopicModeArg::Short => self.short_topic.clone(),
            // The predefined id's name is configured at the gateway only.
            TopicModeArg::Predefined => "#".into(),
        }
    }

    fn network(&self) -> Network {
        match &self.serial {
            Some(path) => Network::Serial(SerialNetwork {
                path: path.clone(),
                baud: self.baud,
                framing: self.framing,
                discovery: self.serial_discovery,
                gateway_id: self.gateway_id,
            }),
            None => Network::Udp(UdpNetwork {
                gateway: self.gateway,
                gateway_id: self.gateway_id,
                search: if self.gateway.is_some() {
                    None
                } else {
                    self.search.map(|g| (g, self.interface))
                },
                bind: self.bind,
                radius: self.radius,
            }),
        }
    }

    fn base(&self, motes: usize, interval: Duration, default_qos: QoS) -> Result<SimConfig> {
        let qos = self.qos(default_qos);
        let mut sensor = SensorConfig::new(&self.topic_prefix, interval)
            .map_err(|e| anyhow::anyhow!("--topic-prefix: {e}"))?;
        sensor.topic_mode = self.topic_mode()?;
        sensor.qos = qos;
        sensor.max_readings = self.readings;
        if qos == QoS::MinusOne && sensor.topic_mode == TopicMode::Registered {
            bail!("--qos -1 publishes without a connection: use --topic-mode predefined or short");
        }
        let timers = Timers {
            t_retry: secs(self.t_retry, "--t-retry")?,
            n_retry: self.n_retry.max(1),
            search_backoff_initial: secs(self.backoff_initial, "--backoff-initial")?,
            search_backoff_max: secs(self.backoff_max, "--backoff-max")?,
            ..Timers::default()
        };
        if timers.search_backoff_initial.is_zero()
            || timers.search_backoff_max < timers.search_backoff_initial
        {
            bail!("--backoff-initial must be above 0 and at most --backoff-max");
        }
        Ok(SimConfig {
            network: self.network(),
            motes,
            client_prefix: self.client_prefix.clone(),
            sensor,
            sleep_cycle: None,
            sleepers: 0,
            will: false,
            keep_alive: self.keep_alive,
            timers,
            duration: None,
            ramp: Duration::ZERO,
            seed: self.seed,
            broker: None,
            chatty: false,
            progress: false,
            linger: secs(self.linger, "--linger")?,
        })
    }
}

impl DemoArgs {
    /// The simulation this command line asks for.
    pub fn config(&self) -> Result<SimConfig> {
        let interval = Duration::from_secs(self.interval.max(1));
        let mut cfg = self.common.base(self.motes, interval, QoS::One)?;
        cfg.sensor.first_reading_within = Duration::from_secs(1).min(interval);
        cfg.sleep_cycle = Some(SleepCycle {
            awake: Duration::ZERO,
            asleep: None,
        });
        cfg.sleepers = self.sleepers.min(self.motes);
        cfg.will = true;
        cfg.duration = self.duration.map(|d| secs(d, "--duration")).transpose()?;
        cfg.ramp = Duration::from_millis(300)
            .saturating_mul(u32::try_from(self.motes).unwrap_or(u32::MAX));
        cfg.chatty = true;
        Ok(cfg)
    }
}

impl SwarmArgs {
    /// The simulation this command line asks for.
    pub fn config(&self) -> Result<SimConfig> {
        if self.motes == 0 {
            bail!("--motes must be at least 1");
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            bail!("--rate must be positive");
        }
        // Every mote reports every motes/rate seconds, so that all together reach the rate.
        let interval = secs(self.motes as f64 / self.rate, "--rate")?.max(Duration::from_millis(1));
        let mut cfg = self.common.base(self.motes, interval, QoS::One)?;
        cfg.sensor.payload_size = self.payload;
        cfg.sensor.first_reading_within = interval;
        cfg.sensor.commands = false;
        if self.sleep.is_some() || self.awake.is_some() {
            let asleep = secs(self.sleep.unwrap_or(10.0), "--sleep")?;
            let awake = secs(self.awake.unwrap_or(0.0), "--awake")?;
            cfg.sleep_cycle = Some(SleepCycle {
                awake,
                asleep: Some(asleep),
            });
            cfg.sleepers = self.motes;
        }
        cfg.duration = Some(secs(self.duration, "--duration")?);
        cfg.ramp = secs(self.ramp, "--ramp")?;
        cfg.progress = !self.json;
        cfg.broker = self.broker.clone().map(|url| {
            (
                url,
                self.broker_filter
                    .clone()
                    .unwrap_or_else(|| self.common.reading_filter()),
            )
        });
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> Mode {
        Cli::try_parse_from(args).unwrap().command
    }

    #[test]
    fn swarm_flags_become_a_configuration() {
        let Mode::Swarm(s) = parse(&[
            "mote-sim",
            "swarm",
            "--gateway",
            "127.0.0.1:10000",
            "--motes",
            "2000",
            "--rate",
            "1000",
            "--qos",
            "-1",
            "--topic-mode",
            "short",
            "--payload",
            "64",
            "--sleep",
            "5",
            "--awake",
            "2",
            "--json",
        ]) else {
            panic!()
        };
        let c = s.config().unwrap();
        assert_eq!(c.sensor.interval, Duration::from_secs(2));
        assert_eq!(c.sensor.qos, QoS::MinusOne);
        assert_eq!(c.sensor.topic_mode, TopicMode::Short(*b"rd"));
        assert_eq!(
            c.sleep_cycle,
            Some(SleepCycle {
                awake: Duration::from_secs(2),
                asleep: Some(Duration::from_secs(5))
            })
        );
        assert!(!c.progress);
        assert_eq!(c.client_id(41), "mote-0042");
    }

    #[test]
    fn bad_combinations_are_refused() {
        let Mode::Swarm(s) = parse(&["mote-sim", "swarm", "--gateway", "127.0.0.1:1", "--qos=-1"])
        else {
            panic!()
        };
        assert!(
            s.config().is_err(),
            "QoS -1 needs predefined or short topics"
        );
        assert!(
            Cli::try_parse_from(["mote-sim", "demo"]).is_err(),
            "a gateway or --search is required"
        );
        assert!(Cli::try_parse_from(["mote-sim", "demo", "--gateway", "x", "--qos", "3"]).is_err());
        let Mode::Demo(d) = parse(&[
            "mote-sim",
            "demo",
            "--search",
            "225.1.1.1:1884",
            "--short-topic",
            "abc",
            "--topic-mode",
            "short",
        ]) else {
            panic!()
        };
        assert!(d.config().is_err());
    }
}
