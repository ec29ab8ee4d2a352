//! Whole-core scenarios with scripted clients, an in-memory upstream and a simulated clock.
//! Test names are sentences; assertions are on datagrams, upstream commands and events.

mod aggregating;
mod custody;
mod discovery;
mod drops;
mod exposure;
mod harness;
mod lifecycle;
mod persistence;
mod policy;
mod properties;
mod publish;
mod qos2_restart;
mod sleeping;
mod subscribe;
