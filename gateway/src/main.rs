//! `mqtt-sn-gateway`: the MQTT-SN gateway daemon.

use clap::Parser;

/// MQTT-SN v1.2 gateway for sensor motes.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
