//! The Docker connection pool: one [`Docker`] per endpoint, found by Server name.
//!
//! # Guarantees
//! - A connection is made on first use and kept once it succeeded; every call it makes is
//!   counted in `berth_docker_api_calls_total{operation}` ([`docker::metered`]).
//! - A Server's endpoint is read from the Server informer's cache, never from the API.
//!
//! # Caveats
//! - Remote (SSH) servers are not supported yet: [`Error::Unsupported`].

use std::{collections::HashMap, sync::Arc};

use berth_crds::kinds::{DestinationSpec, ServerSpec};
use tokio::sync::Mutex;

use crate::{
    docker::{self, CallCounter, Docker, Labels},
    informer::Informer,
    manager::Manager,
    object::ObjectRef,
};

/// A server whose daemon cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server's daemon could not be reached.
    #[error("server {name:?} unreachable: {source}")]
    Unreachable {
        /// The server.
        name: String,
        /// The daemon's error.
        source: docker::Error,
    },
    /// The named Server does not exist.
    #[error("server {0:?} not found")]
    NotFound(String),
    /// The Server is of a type berth cannot drive yet.
    #[error("server {0:?}: remote servers are not supported yet")]
    Unsupported(String),
}

/// Docker settings shared by the Docker-driving controllers.
#[derive(Debug, Clone)]
pub struct DockerOptions {
    /// The endpoint of the `localhost` Server (`--docker`).
    pub uri: String,
    /// The default Destination's network name.
    pub default_network: String,
    /// Labels put on every Docker object berth creates, and required on every one it lists,
    /// sweeps or reacts to: scopes one berth to its own objects on a shared daemon.
    pub scope: Labels,
}

impl Default for DockerOptions {
    fn default() -> Self {
        Self {
            uri: docker::DEFAULT_URI.to_string(),
            default_network: "berth".to_string(),
            scope: Labels::new(),
        }
    }
}

/// Docker connections by endpoint, made on first use and counted into the metrics.
#[derive(Clone)]
pub struct Dockers {
    servers: Informer<ServerSpec>,
    counter: CallCounter,
    connections: Arc<Mutex<HashMap<String, Docker>>>,
    /// The shared Docker settings.
    pub options: DockerOptions,
}

impl std::fmt::Debug for Dockers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dockers")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Dockers {
    /// Connections for the servers of `manager`'s Server informer.
    pub fn new(manager: &mut Manager, options: DockerOptions) -> Self {
        Self {
            servers: manager.informer::<ServerSpec>(),
            counter: docker::metered(manager.metrics()),
            connections: Arc::new(Mutex::new(HashMap::new())),
            options,
        }
    }

    /// The Server informer the pool reads.
    pub fn servers(&self) -> &Informer<ServerSpec> {
        &self.servers
    }

    /// The endpoint of server `name`, from its cached spec.
    pub fn uri_of(&self, name: &str) -> Result<String, Error> {
        let server = self
            .servers
            .get(&ObjectRef::cluster(name))
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        match &server.spec.localhost {
            Some(local) => Ok(local.docker_host.clone()),
            None => Err(Error::Unsupported(name.to_owned())),
        }
    }

    /// A connection to `uri` (cached once it succeeded).
    pub async fn connect(&self, uri: &str) -> Result<Docker, docker::Error> {
        let mut connections = self.connections.lock().await;
        if let Some(d) = connections.get(uri) {
            return Ok(d.clone());
        }
        let d = Docker::connect(uri)
            .await?
            .with_call_counter(self.counter.clone());
        connections.insert(uri.to_owned(), d.clone());
        Ok(d)
    }

    /// A connection to server `name`.
    pub async fn for_server(&self, name: &str) -> Result<Docker, Error> {
        let uri = self.uri_of(name)?;
        self.connect(&uri).await.map_err(|source| Error::Unreachable {
            name: name.to_owned(),
            source,
        })
    }

    /// A connection to the `localhost` endpoint (`--docker`), whether or not the Server exists.
    pub async fn local(&self) -> Result<Docker, docker::Error> {
        let uri = self.options.uri.clone();
        self.connect(&uri).await
    }

    /// The connection for cleaning up after an object on `destination`: its server, or
    /// `localhost` when the destination or the server is gone.
    pub async fn for_cleanup(
        &self,
        destinations: &Informer<DestinationSpec>,
        destination: &str,
    ) -> Result<Docker, Error> {
        let server = destinations
            .get(&ObjectRef::cluster(destination))
            .map(|d| d.spec.server.clone());
        if let Some(s) = server {
            match self.for_server(&s).await {
                Err(Error::NotFound(_)) => {}
                other => return other,
            }
        }
        self.local().await.map_err(|source| Error::Unreachable {
            name: "localhost".to_owned(),
            source,
        })
    }

    /// The scope labels plus `labels`.
    pub fn scoped(&self, mut labels: Labels) -> Labels {
        labels.extend(self.options.scope.clone());
        labels
    }
}
