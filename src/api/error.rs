//! API errors and their one mapping to Kubernetes-style `Status` objects.
//!
//! Every failure the API layer reports is an [`Error`]; [`Error::status`] is the only place
//! that turns one into an HTTP code and a `Status` body, so handlers, controllers and the
//! CLI all see the same reasons.

use berth_crds::{store, validation::ValidationErrors};
use serde::{Deserialize, Serialize};

/// The result type of API operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed API operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object (or its namespace) does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// Plural resource name, e.g. `applications`.
        kind: String,
        /// The missing object's name.
        name: String,
    },
    /// An object with this name already exists.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// Plural resource name.
        kind: String,
        /// The existing object's name.
        name: String,
    },
    /// The object changed since the caller read it (stale resourceVersion).
    #[error("{0}")]
    Conflict(String),
    /// The object failed validation; every offending field is named.
    #[error("{kind} {name:?} is invalid: {errors}")]
    Invalid {
        /// Kind name, e.g. `Application`.
        kind: String,
        /// The object's name (may be empty when the name itself is missing).
        name: String,
        /// What is wrong, field by field.
        errors: ValidationErrors,
    },
    /// A watch asked for history that has been compacted; relist.
    #[error("too old resource version: {requested} (current {current})")]
    Gone {
        /// The resourceVersion the client asked to start after.
        requested: i64,
        /// The current revision to relist from.
        current: i64,
    },
    /// The request is malformed (bad JSON/YAML, unknown resource, bad query).
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the right to do this, or an operation admission forbids.
    #[error("{0}")]
    Forbidden(String),
    /// The request body exceeds the limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The method is not allowed on this path.
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// The request did not finish in time.
    #[error("request did not complete within {0:?}")]
    Timeout(std::time::Duration),
    /// The store cannot be reached; retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// An unexpected failure inside the server.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A field cause inside `Status.details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusCause {
    /// Machine-readable cause, e.g. `FieldValueRequired`.
    pub reason: String,
    /// Human-readable description.
    pub message: String,
    /// The offending field path, e.g. `spec.ports[0].containerPort`.
    pub field: String,
}

/// `Status.details`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StatusDetails {
    /// The object's name, when one is involved.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The object's kind (or plural resource).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Per-field causes (for `Invalid`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
}

/// A Kubernetes-style `Status` object: the body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Always `v1`.
    pub api_version: String,
    /// Always `Status`.
    pub kind: String,
    /// `Success` or `Failure`.
    pub status: String,
    /// Human-readable description.
    pub message: String,
    /// CamelCase reason, e.g. `NotFound`.
    pub reason: String,
    /// Extra details, such as field causes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    /// The HTTP status code.
    pub code: u16,
}

impl Error {
    /// The HTTP status code and `Status` body for this error: the one mapping.
    pub fn status(&self) -> Status {
        let (code, reason) = match self {
            Error::NotFound { .. } => (404, "NotFound"),
            Error::AlreadyExists { .. } => (409, "AlreadyExists"),
            Error::Conflict(_) => (409, "Conflict"),
            Error::Invalid { .. } => (422, "Invalid"),
            Error::Gone { .. } => (410, "Gone"),
            Error::BadRequest(_) => (400, "BadRequest"),
            Error::Unauthorized(_) => (401, "Unauthorized"),
            Error::Forbidden(_) => (403, "Forbidden"),
            Error::TooLarge { .. } => (413, "RequestEntityTooLarge"),
            Error::MethodNotAllowed(_) => (405, "MethodNotAllowed"),
            Error::Timeout(_) => (504, "Timeout"),
            Error::Unavailable(_) => (503, "ServiceUnavailable"),
            Error::Internal(_) => (500, "InternalError"),
        };
        let details = match self {
            Error::NotFound { kind, name } | Error::AlreadyExists { kind, name } => Some(StatusDetails {
                name: name.clone(),
                kind: kind.clone(),
                causes: vec![],
            }),
            Error::Invalid { kind, name, errors } => Some(StatusDetails {
                name: name.clone(),
                kind: kind.clone(),
                causes: errors
                    .0
                    .iter()
                    .map(|e| StatusCause {
                        reason: e.kind.reason().to_string(),
                        message: e.message.clone(),
                        field: e.field.clone(),
                    })
                    .collect(),
            }),
            _ => None,
        };
        Status {
            api_version: "v1".into(),
            kind: "Status".into(),
            status: "Failure".into(),
            message: self.to_string(),
            reason: reason.into(),
            details,
            code,
        }
    }

    /// Maps a store error on `key` of resource `plural`/`name`.
    pub fn from_store(err: store::Error, plural: &str, name: &str) -> Self {
        match err {
            store::Error::NotFound { .. } => Error::NotFound {
                kind: plural.into(),
                name: name.into(),
            },
            store::Error::AlreadyExists { .. } => Error::AlreadyExists {
                kind: plural.into(),
                name: name.into(),
            },
            store::Error::Conflict { .. } => Error::Conflict(format!(
                "operation cannot be fulfilled on {plural} {name:?}: the object has been modified; \
                 please apply your changes to the latest version and try again"
            )),
            store::Error::Compacted {
                requested, current, ..
            } => Error::Gone { requested, current },
            store::Error::Unavailable(m) | store::Error::WatchLagged(m) => Error::Unavailable(m),
            e @ (store::Error::Backend(_) | store::Error::FutureRevision { .. }) => {
                Error::Internal(e.to_string())
            }
        }
    }
}
