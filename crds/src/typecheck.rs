//! What the registry keeps per kind besides its names: the typed entry points (semantic
//! checks of a spec, the round trip through `Object<S>`) and the compiled schemas' type.
//!
//! Validation ([`crate::admission`]) reads these through [`crate::registry::KindInfo`]; this
//! module knows neither, so the registry can name it without a cycle.

use jsonschema::Validator;
use serde_json::Value;

use crate::resource::{Object, Resource};
use crate::validation::FieldError;

/// The compiled validation schemas of one kind.
pub(crate) struct Compiled {
    /// The schema of `spec`.
    pub(crate) spec: Validator,
    /// The schema of `status`.
    pub(crate) status: Validator,
}

/// Deserializes `spec` as `S` and runs its semantic rules.
pub(crate) fn check_spec<S: Resource>(spec: &Value, errors: &mut Vec<FieldError>) {
    match serde_json::from_value::<S>(spec.clone()) {
        Ok(typed) => typed.validate(errors),
        Err(e) => errors.push(FieldError::invalid("spec", e.to_string())),
    }
}

/// Round-trips a whole object through `Object<S>`, filling in serde defaults.
pub(crate) fn round_trip<S: Resource>(object: Value) -> Result<Value, String> {
    let typed: Object<S> = serde_json::from_value(object).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}
