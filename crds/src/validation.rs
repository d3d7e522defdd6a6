//! Field-level validation errors: what is wrong with an object, and exactly where.
//!
//! Every check in this crate (metadata rules, the JSON schema, per-kind semantic rules,
//! immutability) reports [`FieldError`]s addressed by a dotted path such as
//! `spec.ports[0].containerPort`; callers get them all at once as [`ValidationErrors`].
//!
//! # Guarantees
//! - [`ValidationErrors`] is never empty when returned as an error by this crate.
//! - Paths use `.name` for fields, `[i]` for list items and `[key]` for map keys that are not
//!   plain identifiers (`metadata.labels[app.kubernetes.io/name]`).

use std::fmt;

use serde::Serialize;

/// What kind of problem a [`FieldError`] reports (Kubernetes' `field.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum FieldErrorKind {
    /// A required field is missing or empty.
    Required,
    /// The value is malformed or out of range.
    Invalid,
    /// The value is not one of the supported values.
    NotSupported,
    /// The value duplicates another one that must be unique.
    Duplicate,
    /// The field may not be set (here, or in an update, or at all).
    Forbidden,
    /// The value is longer than allowed.
    TooLong,
    /// Validation itself failed (a bug in berth, not in the object).
    Internal,
}

impl FieldErrorKind {
    /// Kubernetes' `StatusCause` reason for this kind, e.g. `FieldValueRequired`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::Internal => "InternalError",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Invalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Duplicate => "Duplicate value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::Internal => "Internal error",
        }
    }
}

/// One problem with one field of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path of the offending field, e.g. `spec.ports[0].containerPort`.
    pub field: String,
    /// What kind of problem it is.
    pub kind: FieldErrorKind,
    /// A lowercase human explanation, e.g. `must be a DNS-1123 label`.
    pub message: String,
}

impl FieldError {
    /// A new error of `kind` at `field`.
    pub fn new(field: impl Into<String>, kind: FieldErrorKind, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind,
            message: message.into(),
        }
    }

    /// A [`FieldErrorKind::Required`] error.
    pub fn required(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(field, FieldErrorKind::Required, message)
    }

    /// A [`FieldErrorKind::Invalid`] error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(field, FieldErrorKind::Invalid, message)
    }

    /// A [`FieldErrorKind::Forbidden`] error.
    pub fn forbidden(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(field, FieldErrorKind::Forbidden, message)
    }

    /// A [`FieldErrorKind::Duplicate`] error.
    pub fn duplicate(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(field, FieldErrorKind::Duplicate, message)
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.field, self.kind.label(), self.message)
    }
}

/// Every problem found in one object; its `Display` lists them all, separated by `; `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", list(.0))]
pub struct ValidationErrors(pub Vec<FieldError>);

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ValidationErrors {
    /// `Ok(())` when `errors` is empty, otherwise the errors.
    pub fn check(errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Self(errors))
        }
    }

    /// The errors reported for exactly `field`.
    pub fn at<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a FieldError> + 'a {
        self.0.iter().filter(move |e| e.field == field)
    }
}

/// The outcome of a single-value rule (see [`crate::rules`]): the kind and message of the
/// problem, if any.
pub type RuleResult = Result<(), (FieldErrorKind, String)>;

/// Runs a rule's result into `errors` at `field`.
pub fn check(errors: &mut Vec<FieldError>, field: impl Into<String>, result: RuleResult) {
    if let Err((kind, message)) = result {
        errors.push(FieldError::new(field, kind, message));
    }
}

/// Appends one path segment to `base`: `.name` for identifiers, `[key]` otherwise.
pub fn join(base: &str, key: &str) -> String {
    let ident = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    match (base.is_empty(), ident) {
        (true, true) => key.to_string(),
        (false, true) => format!("{base}.{key}"),
        (_, false) => format!("{base}[{key}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_every_error() {
        let errs = ValidationErrors(vec![
            FieldError::required("spec.a", "field is required"),
            FieldError::invalid("spec.b", "must be positive"),
        ]);
        assert_eq!(
            errs.to_string(),
            "spec.a: Required value: field is required; spec.b: Invalid value: must be positive"
        );
    }

    #[test]
    fn join_uses_brackets_for_non_identifiers() {
        assert_eq!(join("spec", "ports"), "spec.ports");
        assert_eq!(join("", "spec"), "spec");
        assert_eq!(
            join("metadata.labels", "app.kubernetes.io/name"),
            "metadata.labels[app.kubernetes.io/name]"
        );
        assert_eq!(join("spec.data", "0key"), "spec.data[0key]");
    }

    #[test]
    fn check_is_ok_only_when_empty() {
        assert!(ValidationErrors::check(vec![]).is_ok());
        assert!(ValidationErrors::check(vec![FieldError::invalid("x", "y")]).is_err());
    }
}
