//! Whole-object validation and normalization: what the API server runs on every write.
//!
//! [`KindInfo::validate`] checks an object in four layers and reports every problem found,
//! not just the first: the envelope (`apiVersion`, `kind`, unknown top-level fields), the
//! metadata (schema, then name/namespace/label rules), `spec` and `status` against the
//! kind's generated schema (the one published in its CRD), and finally the kind's semantic
//! rules on the typed spec.
//!
//! # Guarantees
//! - An object accepted by [`KindInfo::validate`] deserializes into `Object<S>` of its kind.
//! - [`KindInfo::normalize`] only returns objects that pass [`KindInfo::validate`], with
//!   every serde default filled in and `null` members removed.
//!
//! # Caveats
//! - Semantic rules run only when the schema layer found nothing wrong with `spec`: rules
//!   need a typed spec, and a second wave of errors about a malformed spec would only add
//!   noise.
//! - Cross-object rules (does the referenced Destination exist?) are the API server's job.

use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

use crate::meta::{Condition, ObjectMeta, validate_conditions};
use crate::registry::KindInfo;
use crate::schema::{compile, schema_for, strip_nulls, violations};
use crate::typecheck::Compiled;
use crate::validation::{FieldError, FieldErrorKind, ValidationErrors};

/// The top-level fields of every object.
const ENVELOPE: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

fn metadata_validator() -> Result<&'static Validator, String> {
    static META: OnceLock<Result<Validator, String>> = OnceLock::new();
    META.get_or_init(|| compile(&schema_for::<ObjectMeta>()))
        .as_ref()
        .map_err(Clone::clone)
}

fn internal(field: &str, message: &str) -> ValidationErrors {
    ValidationErrors(vec![FieldError::new(field, FieldErrorKind::Internal, message)])
}

fn get_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

impl KindInfo {
    fn compiled(&self) -> Result<&Compiled, ValidationErrors> {
        let compiled = self.compiled.get_or_init(|| {
            Ok(Compiled {
                spec: compile(&self.spec_schema())?,
                status: compile(&self.status_schema())?,
            })
        });
        compiled
            .as_ref()
            .map_err(|e| internal("spec", &format!("schema of {} does not compile: {e}", self.kind)))
    }

    /// Validates a whole object of this kind (as JSON), reporting every problem found.
    pub fn validate(&self, object: &Value) -> Result<(), ValidationErrors> {
        let compiled = self.compiled()?;
        let Some(map) = object.as_object() else {
            return Err(ValidationErrors(vec![FieldError::invalid(
                "object",
                "must be a JSON object",
            )]));
        };
        let mut errors = Vec::new();
        for key in map.keys().filter(|k| !ENVELOPE.contains(&k.as_str())) {
            errors.push(FieldError::forbidden(key.clone(), "field not declared in schema"));
        }
        self.check_type_fields(map, &mut errors);
        match map.get("metadata").filter(|m| !m.is_null()) {
            None => errors.push(FieldError::required(
                "metadata",
                "metadata with a name is required",
            )),
            Some(meta) => self.check_metadata(meta, &mut errors)?,
        }
        match map.get("spec").filter(|s| !s.is_null()) {
            None => errors.push(FieldError::required("spec", "spec is required")),
            Some(spec) => {
                let mut spec = spec.clone();
                strip_nulls(&mut spec);
                let found = violations(&compiled.spec, &spec, "spec");
                if found.is_empty() {
                    (self.check_spec_fn)(&spec, &mut errors);
                } else {
                    errors.extend(found);
                }
            }
        }
        if let Some(status) = map.get("status").filter(|s| !s.is_null()) {
            let mut status = status.clone();
            strip_nulls(&mut status);
            let found = violations(&compiled.status, &status, "status");
            if found.is_empty() {
                let conditions: Vec<Condition> = status
                    .get("conditions")
                    .and_then(|c| serde_json::from_value(c.clone()).ok())
                    .unwrap_or_default();
                validate_conditions(&conditions, "status.conditions", &mut errors);
            }
            errors.extend(found);
        }
        ValidationErrors::check(errors)
    }

    fn check_type_fields(&self, map: &serde_json::Map<String, Value>, errors: &mut Vec<FieldError>) {
        match map.get("apiVersion").and_then(Value::as_str) {
            None => errors.push(FieldError::required(
                "apiVersion",
                format!("must be {:?}", crate::API_VERSION),
            )),
            Some(v) if v != crate::API_VERSION => errors.push(FieldError::invalid(
                "apiVersion",
                format!("{v:?} is not served; use {:?}", crate::API_VERSION),
            )),
            Some(_) => {}
        }
        match map.get("kind").and_then(Value::as_str) {
            None => errors.push(FieldError::required("kind", format!("must be {:?}", self.kind))),
            Some(k) if k != self.kind => errors.push(FieldError::invalid(
                "kind",
                format!("{k:?} does not match the expected kind {:?}", self.kind),
            )),
            Some(_) => {}
        }
    }

    fn check_metadata(&self, meta: &Value, errors: &mut Vec<FieldError>) -> Result<(), ValidationErrors> {
        let validator = metadata_validator().map_err(|e| internal("metadata", &e))?;
        let mut meta = meta.clone();
        strip_nulls(&mut meta);
        let found = violations(validator, &meta, "metadata");
        if !found.is_empty() {
            errors.extend(found);
            return Ok(());
        }
        match serde_json::from_value::<ObjectMeta>(meta) {
            Ok(meta) => meta.validate(self.namespaced, errors),
            Err(e) => errors.push(FieldError::invalid("metadata", e.to_string())),
        }
        Ok(())
    }

    /// Validates `new` as a replacement of `old`: everything [`KindInfo::validate`] checks,
    /// plus that immutable fields (and the name, namespace and uid) are unchanged.
    pub fn validate_update(&self, old: &Value, new: &Value) -> Result<(), ValidationErrors> {
        let mut errors = match self.validate(new) {
            Ok(()) => Vec::new(),
            Err(ValidationErrors(e)) => e,
        };
        let old_n = self.normalize(old).unwrap_or_else(|_| stripped(old));
        let new_n = self.normalize(new).unwrap_or_else(|_| stripped(new));
        let meta_paths = ["metadata.name", "metadata.namespace"];
        for path in meta_paths.iter().chain(self.immutable_fields) {
            if get_path(&old_n, path) != get_path(&new_n, path) {
                errors.push(FieldError::forbidden(*path, "field is immutable"));
            }
        }
        let (old_uid, new_uid) = (get_path(&old_n, "metadata.uid"), get_path(&new_n, "metadata.uid"));
        if old_uid.is_some() && new_uid.is_some() && old_uid != new_uid {
            errors.push(FieldError::forbidden("metadata.uid", "field is immutable"));
        }
        ValidationErrors::check(errors)
    }

    /// Validates `object` and returns it with every default filled in and `null`s removed:
    /// the form the API server stores.
    pub fn normalize(&self, object: &Value) -> Result<Value, ValidationErrors> {
        self.validate(object)?;
        (self.normalize_fn)(stripped(object)).map_err(|e| internal("spec", &e))
    }
}

fn stripped(v: &Value) -> Value {
    let mut v = v.clone();
    strip_nulls(&mut v);
    v
}
