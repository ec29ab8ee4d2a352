//! The gateway's integration tests, in one test binary (one link instead of one per file):
//!
//! - [`binary_check_config`], [`binary_fd_limit`], [`binary_reload`]: the `mqtt-sn-gateway`
//!   binary as a process (piped `check-config`, open-file limits, SIGHUP and SIGTERM, pairing
//!   and unpairing);
//! - [`config_files`]: the configuration fixtures in `config/`;
//! - [`upstream_rumqttc`]: the upstream connector against a real mosquitto;
//! - [`common`]: what they share.
//!
//! `alloc_guard` stays a binary of its own: it installs a counting global allocator.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod binary_check_config;
mod binary_fd_limit;
mod binary_reload;
mod common;
mod config_files;
mod upstream_rumqttc;
