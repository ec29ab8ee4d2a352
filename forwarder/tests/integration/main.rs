//! The forwarder's integration tests, in one test binary (one link instead of one per file):
//!
//! - [`binary`]: the `mqtt-sn-forwarder` binary as a process (`check-config`, SIGTERM);
//! - [`config_files`]: the configuration fixtures in `config/`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod binary;
mod config_files;
