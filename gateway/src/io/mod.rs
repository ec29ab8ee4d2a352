//! The tokio shell around the core: UDP sockets, upstream links, the drive loop.

pub mod config;
pub mod upstream;
