//! What a CLI command can fail with, and the exit code each failure maps to.
//!
//! # Guarantees
//! - Usage mistakes (unknown kind, missing `-n`, malformed flags) exit with 2, as clap's own
//!   parse errors do; everything else that fails exits with 1.
//! - Messages are the server's `Status.message` (plus the fields of its causes when the
//!   message does not already name them), never a debug dump.

use std::process::ExitCode;

use serde::Deserialize;

/// The part of a Kubernetes-style `Status` error body the CLI reports.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiStatus {
    /// The human-readable message.
    pub message: String,
    /// The CamelCase reason, e.g. `NotFound`.
    pub reason: String,
    /// The HTTP code.
    pub code: u16,
    /// Name, kind and field causes.
    pub details: Option<ApiStatusDetails>,
}

/// `Status.details`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiStatusDetails {
    /// The object's name.
    pub name: String,
    /// The object's kind or plural resource.
    pub kind: String,
    /// Per-field causes.
    pub causes: Vec<ApiStatusCause>,
}

/// One field cause of a `Status`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiStatusCause {
    /// The offending field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ApiStatus {
    /// Whether this says that Environment `ns` does not exist.
    pub fn is_missing_namespace(&self, ns: &str) -> bool {
        self.code == 404
            && self
                .details
                .as_ref()
                .is_some_and(|d| d.kind == "environments" && d.name == ns)
    }

    /// The fields named by the causes.
    pub fn fields(&self) -> Vec<&str> {
        self.details
            .iter()
            .flat_map(|d| d.causes.iter().map(|c| c.field.as_str()))
            .collect()
    }
}

impl std::fmt::Display for ApiStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        let missing: Vec<&str> = self
            .fields()
            .into_iter()
            .filter(|field| !field.is_empty() && !self.message.contains(field))
            .collect();
        if !missing.is_empty() {
            write!(f, " (fields: {})", missing.join(", "))?;
        }
        Ok(())
    }
}

/// A failed CLI command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something that cannot be (unknown kind, missing `-n`...).
    #[error("{0}")]
    Usage(String),
    /// The server answered with a `Status` error.
    #[error("{0}")]
    Api(Box<ApiStatus>),
    /// The server could not be reached or answered something that is not the API.
    #[error("{0}")]
    Transport(String),
    /// The client configuration is missing or unreadable.
    #[error("{0}")]
    Config(String),
    /// A manifest is unreadable or invalid; the message names file, document and field.
    #[error("{0}")]
    Manifest(String),
    /// A wait ran out of time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }

    /// The `Status` when the server reported this error.
    pub fn status(&self) -> Option<&ApiStatus> {
        match self {
            Error::Api(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the server said "not found" (404).
    pub fn is_not_found(&self) -> bool {
        self.status().is_some_and(|s| s.code == 404)
    }
}

/// The result type of CLI commands.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_adds_cause_fields_missing_from_the_message() {
        let s = ApiStatus {
            message: "Application \"web\" is invalid".into(),
            reason: "Invalid".into(),
            code: 422,
            details: Some(ApiStatusDetails {
                causes: vec![ApiStatusCause {
                    field: "spec.replicas".into(),
                    message: "bad".into(),
                }],
                ..ApiStatusDetails::default()
            }),
        };
        assert_eq!(
            s.to_string(),
            "Application \"web\" is invalid (fields: spec.replicas)"
        );
        let named = ApiStatus {
            message: "x is invalid: spec.replicas: bad".into(),
            ..s
        };
        assert_eq!(named.to_string(), "x is invalid: spec.replicas: bad");
    }

    #[test]
    fn usage_errors_exit_with_2() {
        assert_eq!(Error::Usage("x".into()).exit_code(), ExitCode::from(2));
        assert_eq!(Error::Transport("x".into()).exit_code(), ExitCode::FAILURE);
    }
}
