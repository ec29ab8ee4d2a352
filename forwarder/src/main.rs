//! `mqtt-sn-forwarder`: relays a radio network to an MQTT-SN gateway.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use forwarder::cli::{Cli, Command, LogFormat};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.action() {
        Command::CheckConfig => check_config(&cli),
        Command::Run => run(&cli),
    }
}

/// `check-config`: print the effective configuration (exit 0) or the error (exit 2).
fn check_config(cli: &Cli) -> ExitCode {
    match cli.settings() {
        Ok(settings) => {
            println!("configuration OK: {}", source(cli));
            print!("{settings}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
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
    if let Err(e) = init_logging(cli) {
        eprintln!("error: --log {:?}: {e}", cli.log);
        return ExitCode::from(2);
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
        if let Err(e) = stop_on_signal(shutdown.clone()) {
            eprintln!("error: cannot install the signal handlers: {e}");
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

fn init_logging(cli: &Cli) -> Result<(), tracing_subscriber::filter::ParseError> {
    let filter = EnvFilter::try_new(&cli.log)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.compact().init(),
    }
    Ok(())
}

/// Cancels `shutdown` on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed before this
/// returns, so a signal that arrives right after start-up is not lost (nor fatal).
fn stop_on_signal(shutdown: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    Ok(())
}
