//! berth's docker-compose reader.
//!
//! A compose file (docker-compose's format, including Coolify's template dialect) goes
//! through three steps, one module each:
//! - [`yaml`] reads the text into a YAML tree, resolving anchors and merge keys (also the
//!   Symfony-style merge of a list anchor that two Coolify templates use);
//! - [`model`] turns the tree into typed compose services, refusing what berth cannot honour
//!   with an error naming the compose service and key; [`interpolate`] resolves `${VAR}`
//!   forms and [`magic`] recognises and generates Coolify's `SERVICE_*` variables;
//! - [`expand`] turns the typed file into the child objects a Service owns.
//!
//! [`catalogue`] holds berth's own templates (`manifests/templates/`).

pub mod catalogue;
pub mod expand;
pub mod interpolate;
pub mod magic;
pub mod model;
pub mod yaml;
