//! berth's API crate: resource types, object metadata, validation and the store trait.
//!
//! Everything a client, a controller or a store backend needs to agree on lives here; the
//! crate does no I/O of its own. A kind is a spec type implementing
//! [`resource::Resource`] (in [`kinds`]); [`registry`] lists them all and validates objects
//! of any kind given as JSON; [`crd`] renders their CustomResourceDefinitions.

pub mod admission;
pub mod apply;
pub mod crd;
pub mod json;
pub mod kinds;
pub mod meta;
pub mod registry;
pub mod resource;
pub mod rules;
pub mod schema;
pub mod store;
pub mod typecheck;
pub mod validation;
pub mod words;

pub use registry::{KindInfo, kinds as all_kinds, lookup};
pub use resource::{Object, Resource};
pub use validation::{FieldError, FieldErrorKind, ValidationErrors};

/// The API group of every berth kind.
pub const GROUP: &str = "berth.dev";
/// The only served version.
pub const VERSION: &str = "v1";
/// `apiVersion` of every berth object.
pub const API_VERSION: &str = "berth.dev/v1";
