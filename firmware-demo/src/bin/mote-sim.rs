//! `mote-sim`: simulated MQTT-SN motes on the host. See `mote-sim --help` and
//! `firmware_demo::sim` for what it does; this file only parses the command line, sets up
//! logging and the runtime, handles Ctrl-C and prints the report.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use firmware_demo::sim::cli::{Cli, Mode};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (common, default_log) = match &cli.command {
        Mode::Demo(d) => (&d.common, "info"),
        Mode::Swarm(s) => (&s.common, "warn"),
    };
    let filter = common.log.as_deref().unwrap_or(default_log);
    let filter = match EnvFilter::try_new(filter) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("mote-sim: --log {filter:?}: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let (config, json) = match &cli.command {
        Mode::Demo(d) => (d.config(), false),
        Mode::Swarm(s) => (s.config(), s.json),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mote-sim: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mote-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let chatty = config.chatty;
    let result = runtime.block_on(async move {
        let cancel = CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("mote-sim: stopping (motes disconnect; Ctrl-C again to abort)");
                on_signal.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        if chatty {
            announce(&config);
        }
        firmware_demo::sim::run(config, cancel).await
    });
    match result {
        Ok(report) => {
            if json {
                println!("{}", report.json());
            } else {
                print!("{}", report.text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mote-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The demo's first log line: where readings go and how to send a command.
fn announce(c: &firmware_demo::sim::SimConfig) {
    use firmware_demo::app::TopicMode;
    let prefix = &c.sensor.topic_prefix;
    let to = match c.sensor.topic_mode {
        TopicMode::Registered => format!("{prefix}/<id>/reading"),
        TopicMode::Predefined(id) => format!("predefined topic id {id}"),
        TopicMode::Short(s) => format!("short topic {:?}", String::from_utf8_lossy(&s)),
    };
    let qos = c.sensor.qos;
    if c.sensor.commands && qos != firmware_demo::sn_codec::QoS::MinusOne {
        tracing::info!(
            "{} motes, QoS {qos}, readings on {to}; try: mosquitto_pub -t {prefix}/{}/cmd -m led=on (or interval=2)",
            c.motes,
            c.client_id(0)
        );
    } else {
        tracing::info!("{} motes, QoS {qos}, readings on {to}", c.motes);
    }
}
