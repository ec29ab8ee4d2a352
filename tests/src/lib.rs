//! Shared harness for the workspace integration tests: a per-test mosquitto broker on a free
//! loopback port, free ports, test TLS material, a small MQTT client on rumqttc, helpers to
//! drive the gateway over real UDP sockets, and a deterministic simulation of a whole site in
//! simulated time ([`sim`]).
//!
//! Every wait in the harness is bounded. Interop with the Python
//! `mqtt-sn-12` client is described in `src/README-interop.md`.
#![forbid(unsafe_code)]

pub mod bench;
pub mod daemon;
pub mod flows;
pub mod forwarder;
pub mod gateway;
pub mod interop;
pub mod mosquitto;
pub mod mqtt;
pub mod namespace;
pub mod ports;
pub mod sim;
pub mod sn_client;
pub mod tls;

pub use gateway::TestGateway;
pub use mosquitto::{Mosquitto, MosquittoOptions};
pub use mqtt::{ClientOptions, ClientTls, Received, Subscriber, publish, publish_with};
pub use ports::{free_tcp_port, free_udp_port};
pub use sn_client::{Reply, SnClient};
pub use tls::TlsMaterial;
