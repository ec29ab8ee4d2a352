//! `mqtt-sn-forwarder` (the command line follows with the io shell).

fn main() {}
