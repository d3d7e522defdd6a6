//! Connecting to a daemon: the one place that knows transports and API versions.
//!
//! # Guarantees
//! - A [`Docker`] returned by [`Docker::connect`] has talked to the daemon once
//!   (`GET /version`) and speaks the lower of bollard's API version and the daemon's.
//! - Every later API call is reported to the call counter, if one is set, under a
//!   stable operation name (`"container_create"`, `"events"`...).
//! - The adapter makes no calls on its own: no background tasks, no polling.
//!
//! # Caveats
//! - Remote hosts over SSH are not supported yet; [`Docker::connect`] is where they go.

use std::sync::Arc;

use super::error::{Error, Result};

/// Receives the operation name of every Docker API call, e.g. to bump a
/// Prometheus counter labelled by operation.
pub type CallCounter = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Labels of a Docker API call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct CallLabels {
    /// The operation, e.g. `container_create`.
    pub operation: String,
}

/// A [`CallCounter`] counting into `berth_docker_api_calls_total{operation}` of `metrics`.
pub fn metered(metrics: &berth_runtime::Metrics) -> CallCounter {
    type Calls =
        prometheus_client::metrics::family::Family<CallLabels, prometheus_client::metrics::counter::Counter>;
    let calls: Calls = metrics.adapter_family("docker_api_calls", "Docker API calls by operation");
    Arc::new(move |op| {
        calls
            .get_or_create(&CallLabels {
                operation: op.to_owned(),
            })
            .inc();
    })
}

/// The default daemon address.
pub const DEFAULT_URI: &str = "unix:///var/run/docker.sock";

/// Per-request timeout for the response headers (streams are not cut by it).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// A handle on one Docker daemon. Cheap to clone; clones share the connection pool
/// and the call counter.
#[derive(Clone)]
pub struct Docker {
    pub(super) client: bollard::Docker,
    counter: Option<CallCounter>,
}

impl std::fmt::Debug for Docker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Docker")
            .field("api_version", &self.api_version())
            .finish_non_exhaustive()
    }
}

impl Docker {
    /// Connects to `unix:///path/to/docker.sock` or `tcp://host:port` and negotiates
    /// the API version down to the daemon's.
    pub async fn connect(uri: &str) -> Result<Docker> {
        let invalid = |reason: &str| Error::InvalidUri {
            uri: uri.to_string(),
            reason: reason.to_string(),
        };
        let version = bollard::API_DEFAULT_VERSION;
        let client = if let Some(path) = uri.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(invalid("empty socket path"));
            }
            bollard::Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, version)?
        } else if let Some(addr) = uri.strip_prefix("tcp://") {
            match addr.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
                _ => return Err(invalid("expected tcp://host:port")),
            }
            bollard::Docker::connect_with_http(uri, REQUEST_TIMEOUT_SECS, version)?
        } else {
            return Err(invalid("scheme must be unix:// or tcp://"));
        };
        let client = client.negotiate_version().await?;
        tracing::debug!(uri, api_version = %client.client_version(), "connected to docker");
        Ok(Docker {
            client,
            counter: None,
        })
    }

    /// Reports every later API call to `counter`.
    pub fn with_call_counter(mut self, counter: CallCounter) -> Docker {
        self.counter = Some(counter);
        self
    }

    /// The negotiated API version, e.g. `"1.41"`.
    pub fn api_version(&self) -> String {
        self.client.client_version().to_string()
    }

    /// Counts one API call; every adapter method calls this once per request it makes.
    pub(super) fn count(&self, operation: &'static str) {
        if let Some(counter) = &self.counter {
            counter(operation);
        }
    }
}
