//! OpenAPI v3 schemas generated from the Rust types, and validation of JSON against them.
//!
//! One schema per type serves both as the CRD's `openAPIV3Schema` and as the validation
//! schema the API server applies, so the published API and the enforced API cannot drift.
//!
//! # Guarantees
//! - Generated schemas are structural: every subschema is inlined (no `$ref`, no
//!   definitions), and enums of documented variants are flattened to a plain `enum`.
//! - Every schema violation becomes a [`FieldError`] with a dotted path under the given
//!   prefix; unknown fields are named (`spec.foo`), missing ones are `Required` at their own
//!   path.
//!
//! # Caveats
//! - OpenAPI's `nullable` is not JSON Schema: callers run [`strip_nulls`] first, so that an
//!   explicit `null` means "absent" (as it does for optional fields when deserializing).

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{ValidationError, Validator};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::validation::{FieldError, FieldErrorKind, join};

/// The structural OpenAPI v3 schema of `T`, as it appears in the CRD.
pub fn schema_for<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut value = generator.into_root_schema_for::<T>().to_value();
    clean(&mut value);
    value
}

/// Keywords removed from every schema node: noise in a CRD, or not structural.
const DROPPED: &[&str] = &["$schema", "title", "$defs", "definitions", "examples", "example"];

fn clean(schema: &mut Value) {
    let Some(node) = schema.as_object_mut() else {
        return;
    };
    for key in DROPPED {
        node.remove(*key);
    }
    flatten_one_of_enum(node);
    flatten_nullable_any_of(node);
    if let Some(Value::Object(props)) = node.get_mut("properties") {
        props.values_mut().for_each(clean);
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = node.get_mut(key) {
            clean(sub);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(subs)) = node.get_mut(key) {
            subs.iter_mut().for_each(clean);
        }
    }
}

/// `oneOf: [{type: string, enum: [a], description}, ...]` (what schemars emits for enums
/// with documented variants) becomes `type: string, enum: [a, ...]`.
fn flatten_one_of_enum(node: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = node.get("oneOf") else {
        return;
    };
    let mut values = Vec::new();
    let mut ty = None;
    for branch in branches {
        let Some(b) = branch.as_object() else { return };
        if b.keys()
            .any(|k| !matches!(k.as_str(), "type" | "enum" | "const" | "description"))
        {
            return;
        }
        match (b.get("enum"), b.get("const")) {
            (Some(Value::Array(e)), _) => values.extend(e.iter().cloned()),
            (None, Some(c)) => values.push(c.clone()),
            _ => return,
        }
        if let Some(t) = b.get("type") {
            if ty.as_ref().is_some_and(|x| x != t) {
                return;
            }
            ty = Some(t.clone());
        }
    }
    node.remove("oneOf");
    if let Some(t) = ty {
        node.insert("type".into(), t);
    }
    node.insert("enum".into(), Value::Array(values));
}

/// `anyOf: [X, {nullable: true, const: null}]` (an `Option` of a non-simple schema) becomes
/// `X` with `nullable: true`.
fn flatten_nullable_any_of(node: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = node.get("anyOf") else {
        return;
    };
    if branches.len() != 2 {
        return;
    }
    let is_null =
        |v: &Value| v.get("const").is_some_and(Value::is_null) || v.get("type") == Some(&Value::from("null"));
    let (Some(null_at), Some(other_at)) = (
        branches.iter().position(is_null),
        branches.iter().position(|b| !is_null(b)),
    ) else {
        return;
    };
    let _ = null_at;
    let Some(Value::Object(other)) = branches.get(other_at).cloned() else {
        return;
    };
    node.remove("anyOf");
    for (k, v) in other {
        node.entry(k).or_insert(v);
    }
    node.insert("nullable".into(), Value::Bool(true));
    flatten_one_of_enum(node);
}

/// Removes every object member whose value is `null`, recursively.
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Compiles `schema` for validation (OpenAPI v3 schemas are JSON Schema draft 4 at heart).
pub(crate) fn compile(schema: &Value) -> Result<Validator, String> {
    jsonschema::draft4::new(schema).map_err(|e| e.to_string().to_lowercase())
}

/// Every violation of `validator` by `instance`, with paths under `prefix`.
pub(crate) fn violations(validator: &Validator, instance: &Value, prefix: &str) -> Vec<FieldError> {
    let mut out: Vec<FieldError> = Vec::new();
    for error in validator.iter_errors(instance) {
        for fe in convert(&error, prefix) {
            if !out.contains(&fe) {
                out.push(fe);
            }
        }
    }
    out
}

fn path(prefix: &str, error: &ValidationError<'_>) -> String {
    let mut path = prefix.to_string();
    for segment in error.instance_path().iter() {
        match segment {
            LocationSegment::Property(p) => path = join(&path, &p),
            LocationSegment::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

fn type_name(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or "),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn convert(error: &ValidationError<'_>, prefix: &str) -> Vec<FieldError> {
    let at = path(prefix, error);
    let one = |kind, message: String| vec![FieldError::new(at.clone(), kind, message)];
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|field| FieldError::forbidden(join(&at, field), "field not declared in schema"))
            .collect(),
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_string);
            vec![FieldError::required(
                join(&at, &name),
                "required field is missing",
            )]
        }
        ValidationErrorKind::Type { kind } => one(
            FieldErrorKind::Invalid,
            format!(
                "must be of type {}, got {}",
                type_name(kind),
                json_type(error.instance())
            ),
        ),
        ValidationErrorKind::Enum { options } => {
            let supported = options
                .as_array()
                .map(|o| o.iter().map(Value::to_string).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            one(
                FieldErrorKind::NotSupported,
                format!(
                    "unsupported value {}; supported values: {supported}",
                    error.instance()
                ),
            )
        }
        ValidationErrorKind::MaxLength { limit } => one(
            FieldErrorKind::TooLong,
            format!("must be no more than {limit} characters"),
        ),
        ValidationErrorKind::Minimum { limit } => one(
            FieldErrorKind::Invalid,
            format!("must be greater than or equal to {limit}"),
        ),
        ValidationErrorKind::Maximum { limit } => one(
            FieldErrorKind::Invalid,
            format!("must be less than or equal to {limit}"),
        ),
        ValidationErrorKind::MinItems { limit } => one(
            FieldErrorKind::Required,
            format!("must have at least {limit} item(s)"),
        ),
        ValidationErrorKind::MinLength { limit } => one(
            FieldErrorKind::Required,
            format!("must be at least {limit} character(s)"),
        ),
        ValidationErrorKind::UniqueItems => one(FieldErrorKind::Duplicate, "items must be unique".into()),
        _ => one(FieldErrorKind::Invalid, error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains_key(v: &Value, key: &str) -> bool {
        match v {
            Value::Object(m) => m.contains_key(key) || m.values().any(|x| contains_key(x, key)),
            Value::Array(a) => a.iter().any(|x| contains_key(x, key)),
            _ => false,
        }
    }

    #[test]
    fn schemas_are_inlined_and_enums_flat() {
        let s = schema_for::<crate::meta::Condition>();
        assert!(!contains_key(&s, "$ref"), "{s:#}");
        assert!(!contains_key(&s, "oneOf"), "{s:#}");
        assert_eq!(
            s["properties"]["status"]["enum"],
            serde_json::json!(["True", "False", "Unknown"]),
            "{s:#}"
        );
        assert_eq!(s["additionalProperties"], Value::Bool(false));
    }

    #[test]
    fn strip_nulls_is_recursive() {
        let mut v = serde_json::json!({"a": null, "b": [{"c": null, "d": 1}]});
        strip_nulls(&mut v);
        assert_eq!(v, serde_json::json!({"b": [{"d": 1}]}));
    }
}
