//! berth's API crate: resource types, object metadata, validation and the store trait.
//!
//! Everything a client, a controller or a store backend needs to agree on lives here; the
//! crate does no I/O of its own.

pub mod meta;
pub mod resource;
pub mod rules;
pub mod schema;
pub mod store;
pub mod validation;

/// The API group of every berth kind.
pub const GROUP: &str = "berth.dev";
/// The only served version.
pub const VERSION: &str = "v1";
/// `apiVersion` of every berth object.
pub const API_VERSION: &str = "berth.dev/v1";
