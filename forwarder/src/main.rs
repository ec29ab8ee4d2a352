//! `mqtt-sn-forwarder`: relays a radio network to an MQTT-SN gateway.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use forwarder::cli::{Cli, Command};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.action() {
        Command::CheckConfig => check_config(&cli),
        Command::Run => run(&cli),
    }
}

/// `check-config`: print the effective configuration (exit 0) or the error (exit 2).
fn check_config(cli: &Cli) -> ExitCode {
    sn_config::output::check_config(&cli.settings(), &source(cli))
}

fn source(cli: &Cli) -> String {
    cli.config_file().map_or_else(
        || "built-in config/forwarder.toml".to_owned(),
        |p| p.display().to_string(),
    )
}

/// `run`: start the forwarder; stop gracefully on SIGINT or SIGTERM.
fn run(cli: &Cli) -> ExitCode {
    let settings = match cli.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = sn_config::logging::init(&cli.log, cli.log_format) {
        eprintln!("error: {e}");
        return ExitCode::from(e.exit_code());
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        if let Err(e) = sn_config::shutdown::cancel_on_signal(shutdown.clone(), || {}) {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        tracing::info!(config = %source(cli), version = env!("CARGO_PKG_VERSION"), "starting");
        match forwarder::io::start(settings, shutdown).await {
            Ok(running) => {
                tracing::info!(addr = %running.gateway_socket, "gateway-side socket bound");
                running.wait().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    })
}
