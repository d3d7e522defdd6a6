//! Checks of request bodies before they reach the object layer: apiVersion, kind, name,
//! namespace, resourceVersion, and schema validation, each failure a Status naming the field.

use berth_crds::{
    registry::KindInfo,
    validation::{FieldError, FieldErrorKind, ValidationErrors},
};
use serde_json::{Value, json};

use super::{
    error::{Error, Result},
    object,
};

/// Checks apiVersion/kind/namespace of a request body against the request's resource.
pub(super) fn prepare_body(info: &KindInfo, ns: Option<&str>, mut body: Value) -> Result<Value> {
    if !body.is_object() {
        return Err(Error::BadRequest(format!(
            "the body must be a {} object",
            info.kind
        )));
    }
    match body.get("kind").and_then(Value::as_str) {
        Some(k) if k == info.kind => {}
        Some(k) => {
            return Err(Error::BadRequest(format!(
                "the body's kind {k:?} does not match the resource {} ({})",
                info.plural, info.kind
            )));
        }
        None => {
            if let Some(o) = body.as_object_mut() {
                o.insert("kind".into(), json!(info.kind));
            }
        }
    }
    if body.get("apiVersion").is_none()
        && let Some(o) = body.as_object_mut()
    {
        o.insert("apiVersion".into(), json!(berth_crds::API_VERSION));
    }
    if info.namespaced {
        match (object::namespace(&body), ns) {
            (Some(b), Some(u)) if b != u => {
                return Err(Error::BadRequest(format!(
                    "the namespace of the object ({b}) does not match the namespace of the request ({u})"
                )));
            }
            (None, Some(u)) => {
                object::meta_mut(&mut body).insert("namespace".into(), json!(u));
            }
            _ => {}
        }
    }
    Ok(body)
}

/// Schema + semantic validation, then defaults filled in.
pub(super) fn validated(info: &KindInfo, obj: Value) -> Result<Value> {
    info.validate(&obj)
        .map_err(|errors| invalid(info, &obj, errors))?;
    info.normalize(&obj).map_err(|errors| invalid(info, &obj, errors))
}

pub(super) fn check_name(info: &KindInfo, body: &Value, name: &str) -> Result<()> {
    let given = object::name(body);
    if given != name {
        return Err(invalid_field(
            info,
            body,
            "metadata.name",
            FieldErrorKind::Invalid,
            &format!("{given:?} does not match the name in the request path ({name:?})"),
        ));
    }
    Ok(())
}

pub(super) fn required_rv(info: &KindInfo, body: &Value) -> Result<i64> {
    match object::resource_version(body) {
        Some(Ok(rv)) => Ok(rv),
        Some(Err(bad)) => Err(invalid_field(
            info,
            body,
            "metadata.resourceVersion",
            FieldErrorKind::Invalid,
            &format!("{bad:?} is not a resourceVersion this server issued"),
        )),
        None => Err(invalid_field(
            info,
            body,
            "metadata.resourceVersion",
            FieldErrorKind::Required,
            "must be specified for an update",
        )),
    }
}

pub(super) fn invalid(info: &KindInfo, obj: &Value, errors: ValidationErrors) -> Error {
    Error::Invalid {
        kind: info.kind.into(),
        name: object::name(obj).into(),
        errors,
    }
}

pub(super) fn invalid_field(
    info: &KindInfo,
    obj: &Value,
    field: &str,
    kind: FieldErrorKind,
    message: &str,
) -> Error {
    invalid(
        info,
        obj,
        ValidationErrors(vec![FieldError {
            field: field.into(),
            kind,
            message: message.into(),
        }]),
    )
}
