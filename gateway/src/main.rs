//! `mqtt-sn-gateway`: the MQTT-SN gateway daemon.

use std::process::ExitCode;

use clap::Parser;
use gateway::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.action() {
        Command::CheckConfig => check_config(&cli),
        Command::Run => {
            eprintln!("gateway run loop not wired yet");
            ExitCode::from(1)
        }
    }
}

/// `check-config`: print the effective configuration (exit 0) or the error (exit 2).
fn check_config(cli: &Cli) -> ExitCode {
    match cli.settings() {
        Ok(settings) => {
            let source = cli.config_file().map_or_else(
                || "built-in config/gateway.toml".to_owned(),
                |p| p.display().to_string(),
            );
            println!("configuration OK: {source}");
            print!("{settings}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
