//! berth's controllers: the controller runtime and one reconciler per kind.

pub mod docker;
