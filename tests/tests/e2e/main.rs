//! The workspace's end-to-end tests, in one test binary (one link instead of one per file;
//! every module links the same gateway, forwarder, rumqttc, rumqttd and axum). One module per
//! area:
//!
//! - `gateway`: every client flow through the real gateway to a real mosquitto;
//! - `aggregating`: many motes over the gateway's one broker connection;
//! - `crash_loop`: kill -9 over and over under load, nothing acknowledged lost;
//! - `embedded_broker`: the zero-setup start with the in-process broker;
//! - `exposure`: what an attacker on the LAN can do to the released binary;
//! - `forwarder`, `forwarder_discovery`, `forwarder_robustness`: the forwarder end to end;
//! - `http`: the local HTTP endpoint (pairing, metrics, health, admin API limits);
//! - `ipv6_multicast`: IPv6 discovery in a private network namespace;
//! - `mote_sim`: simulated motes (`firmware_demo::sim`) through the gateway;
//! - `paho_quirks`: the byte sequences of the most common mote library;
//! - `sleep_discovery`: sleeping motes and gateway discovery over multicast;
//! - `status_page`: the status page in headless Chromium;
//! - `storage`: sessions that survive a kill -9 (the state database);
//! - `storage_faults`: the state database on a full disk and a read-only mount;
//! - `tls_interop`: TLS to the broker and interop with a third-party MQTT-SN client;
//! - `upstream_errors`: why the broker is unreachable, for a wrong password, a wrong CA, a plain
//!   URL at a TLS port and nothing listening;
//! - `harness`: the shared harness (`sn_tests`) itself;
//! - `simulation`: deterministic scenarios of a whole site in simulated time.
//!
//! Run one area with a filter on its module path, e.g. `cargo test -p sn-tests --test e2e
//! http::`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod aggregating;
mod crash_loop;
mod embedded_broker;
mod exposure;
mod forwarder;
mod forwarder_discovery;
mod forwarder_robustness;
mod gateway;
mod harness;
mod http;
mod ipv6_multicast;
mod mote_sim;
mod paho_quirks;
mod simulation;
mod sleep_discovery;
mod status_page;
mod storage;
mod storage_faults;
mod tls_interop;
mod upstream_errors;
