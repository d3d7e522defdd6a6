//! The `berth` binary's library: store backends, API server, CLI and GitOps.

pub mod store;
