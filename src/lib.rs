//! The `berth` binary's library: store backends, API server, CLI and GitOps.

pub mod api;
pub mod cli;
pub mod config;
pub mod leader;
pub mod serve;
pub mod store;
