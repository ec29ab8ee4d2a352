//! `mote-sim`: simulated MQTT-SN motes on the host (work in progress).
fn main() {}
