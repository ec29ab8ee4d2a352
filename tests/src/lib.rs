//! Shared harness for the workspace integration tests: a per-test mosquitto broker on a free
//! loopback port, free ports, and helpers to drive the gateway over real UDP sockets.
#![forbid(unsafe_code)]
