//! The Database controller: one engine container with its volume and credentials.
//!
//! # Guarantees
//! - Engine-specific facts come from [`engine`] only.
//!
//! # Caveats
//! - The reconciler itself is not written yet: this module only holds the engine table.

pub mod engine;
