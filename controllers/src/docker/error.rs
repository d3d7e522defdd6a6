//! The adapter's one error type, mapped once from bollard's errors.

/// What can go wrong talking to a Docker daemon.
///
/// Every variant carries the daemon's own words where there are any, so a
/// reconciler can put them into a condition message unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The object (container, image, network, volume, exec) does not exist (HTTP 404).
    #[error("not found: {message}")]
    NotFound {
        /// The daemon's message.
        message: String,
    },
    /// The request conflicts with the object's state, e.g. a name already in use (HTTP 409).
    #[error("conflict: {message}")]
    Conflict {
        /// The daemon's message.
        message: String,
    },
    /// The object is already in the requested state (HTTP 304).
    #[error("not modified")]
    NotModified,
    /// The daemon could not be reached, or the connection broke mid-request or mid-stream.
    #[error("docker daemon unreachable: {message}")]
    Unreachable {
        /// What the transport reported.
        message: String,
    },
    /// The daemon answered with an error status not covered by another variant.
    #[error("docker api error {status}: {message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// An image build failed; the message is the builder's own (e.g. the failing step).
    #[error("image build failed: {message}")]
    Build {
        /// The builder's error message.
        message: String,
    },
    /// An image pull failed (unknown image, no registry reachable, denied...).
    #[error("pull of {image} failed: {message}")]
    Pull {
        /// The image reference that was pulled.
        image: String,
        /// The daemon's message.
        message: String,
    },
    /// The connection URI is not one the adapter can use.
    #[error("invalid docker uri {uri:?}: {reason}")]
    InvalidUri {
        /// The URI as given.
        uri: String,
        /// Why it was refused.
        reason: String,
    },
    /// A spec handed to the adapter cannot be expressed to Docker.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The offending field, e.g. `ports[0].hostIp`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The daemon's answer could not be understood.
    #[error("unexpected docker response: {message}")]
    Decode {
        /// What failed to parse.
        message: String,
    },
}

/// Shorthand for results of adapter calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the error says the object is absent: handy for cleanup that must cope
    /// with apply never having run.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

impl From<bollard::errors::Error> for Error {
    fn from(err: bollard::errors::Error) -> Self {
        use bollard::errors::Error as B;
        match err {
            B::DockerResponseServerError { status_code, message } => match status_code {
                304 => Error::NotModified,
                404 => Error::NotFound { message },
                409 => Error::Conflict { message },
                status => Error::Api { status, message },
            },
            B::HyperResponseError { err } => Error::Unreachable {
                message: error_chain(&err),
            },
            B::IOError { err } => Error::Unreachable {
                message: err.to_string(),
            },
            B::RequestTimeoutError => Error::Unreachable {
                message: "request timed out".to_string(),
            },
            B::DockerStreamError { error } => Error::Api {
                status: 500,
                message: error,
            },
            B::JsonDataError { message, .. } => Error::Decode { message },
            B::JsonSerdeError { err } => Error::Decode {
                message: err.to_string(),
            },
            B::APIVersionParseError {} => Error::Decode {
                message: "unparseable api version".to_string(),
            },
            B::HyperLegacyError { err } => Error::Unreachable {
                message: error_chain(&err),
            },
            B::SocketNotFoundError(path) => Error::Unreachable {
                message: format!("socket not found: {path}"),
            },
            other => Error::Api {
                status: 0,
                message: other.to_string(),
            },
        }
    }
}

/// The error and its sources on one line: hyper's top-level messages alone
/// ("client error (Connect)") hide the cause.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_variants() {
        let server = |status_code| bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: "m".to_string(),
        };
        assert_eq!(Error::from(server(304)), Error::NotModified);
        assert!(Error::from(server(404)).is_not_found());
        assert!(matches!(Error::from(server(409)), Error::Conflict { .. }));
        assert_eq!(
            Error::from(server(500)),
            Error::Api {
                status: 500,
                message: "m".to_string()
            }
        );
        assert!(matches!(
            Error::from(bollard::errors::Error::RequestTimeoutError),
            Error::Unreachable { .. }
        ));
    }
}
