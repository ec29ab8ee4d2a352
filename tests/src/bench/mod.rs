//! The benchmark harness behind `sn-bench` (issue 8; the CONNECT flood of issue 12): a fresh
//! mosquitto and the release gateway per scenario, simulated motes on their own UDP sockets, an
//! MQTT subscriber measuring delivery and latency, and CPU time and memory of every process
//! from `/proc`.

pub mod collector;
pub mod flood;
pub mod motes;
pub mod procs;
pub mod restart;
pub mod scenarios;
