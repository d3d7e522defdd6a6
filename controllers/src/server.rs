//! The Server controller: probes each Server's Docker daemon and reports it in status; also
//! ensures the `localhost` Server and the default Destination exist, and hands out Docker
//! connections by server ([`Dockers`]).
//!
//! # Guarantees
//! - Status: `Ready` (reason `Reachable` / `Unreachable` with the daemon's error), the engine
//!   version, `os/arch`, CPUs, memory, Docker's root dir and disk usage, and `lastProbeTime`,
//!   the heartbeat, renewed every [`HEARTBEAT`] (two Docker calls: `/info` and `/system/df`).
//! - The `localhost` daemon going away is noticed at once, not at the next heartbeat: losing
//!   its event stream triggers a probe ([`docker_triggers::reachability_triggers`]). So a
//!   reachable server costs no Docker call and no API write between heartbeats.
//! - An unreachable daemon is retried with the queue's exponential backoff; berth keeps running.
//! - The `localhost` Server (for the `--docker` endpoint) and the default Destination are
//!   created through the API whenever they are missing (checked on every cache change and
//!   every few seconds), so deleting them only brings them back.
//!
//! # Caveats
//! - Remote (SSH) servers are not supported yet: they report `Ready=False reason=Unsupported`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use berth_crds::{
    kinds::{ServerSpec, server::ServerStatus},
    meta::ConditionStatus,
    registry::KindInfo,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    client::{self, Client},
    controller::{Action, Controller, ControllerConfig, Reconciler},
    docker::{self, CallCounter, Docker, Labels},
    docker_triggers,
    informer::Informer,
    manager::Manager,
    object::{self, ObjectRef},
    status,
};

/// The controller's name (metrics, logs).
pub const NAME: &str = "server";
/// The Server berth creates for the Docker endpoint it was started with.
pub const LOCALHOST: &str = "localhost";
/// The Destination berth creates on `localhost`.
pub const DEFAULT_DESTINATION: &str = "default";
/// How often a reachable server is probed (engine facts, disk usage); a lost daemon is
/// noticed sooner, from its event stream.
pub const HEARTBEAT: Duration = Duration::from_secs(600);

/// A failed Server reconcile or set-up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kind berth needs is not registered.
    #[error("kind {0} is not registered")]
    MissingKind(&'static str),
    /// The cached object does not parse as a Server.
    #[error("server {name:?} is malformed: {source}")]
    Malformed {
        /// The server.
        name: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The server's daemon could not be reached (the status says so; this retries).
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
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
}

pub(crate) fn kind(name: &'static str) -> Result<&'static KindInfo, Error> {
    berth_crds::lookup(name).ok_or(Error::MissingKind(name))
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
    servers: Informer,
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
    pub fn new(manager: &mut Manager, options: DockerOptions) -> Result<Self, Error> {
        let servers = manager.informer(kind("Server")?);
        let metrics = manager.metrics().clone();
        let counter: CallCounter = Arc::new(move |op| metrics.docker_call(op));
        Ok(Self {
            servers,
            counter,
            connections: Arc::new(Mutex::new(HashMap::new())),
            options,
        })
    }

    /// The endpoint of server `name`, from its cached spec.
    pub fn uri_of(&self, name: &str) -> Result<String, Error> {
        let obj = self
            .servers
            .get(&ObjectRef::cluster(name))
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        let server = object::typed::<ServerSpec>(&obj).map_err(|source| Error::Malformed {
            name: name.to_owned(),
            source,
        })?;
        match server.spec.localhost {
            Some(local) => Ok(local.docker_host),
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

    /// The connection for cleaning up after `obj` (an object with `spec.destination`): its
    /// destination's server, or `localhost` when the destination or the server is gone.
    pub async fn for_cleanup(&self, destinations: &Informer, obj: &Value) -> Result<Docker, Error> {
        let server = obj
            .pointer("/spec/destination")
            .and_then(Value::as_str)
            .and_then(|d| destinations.get(&ObjectRef::cluster(d)))
            .and_then(|d| {
                d.pointer("/spec/server")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
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

/// Reconciles Servers.
pub struct ServerReconciler {
    client: Arc<dyn Client>,
    kind: &'static KindInfo,
    dockers: Dockers,
    /// When the `localhost` daemon's event stream was last lost: a probe is due if it was
    /// after the last probe (a hint for promptness only; a restart simply probes later).
    lost_at: Arc<std::sync::Mutex<Option<DateTime<Utc>>>>,
}

/// Adds the Server controller and the defaults task to `manager`.
pub fn install(manager: &mut Manager, config: ControllerConfig, dockers: Dockers) -> Result<(), Error> {
    let servers_kind = kind("Server")?;
    let servers = manager.informer(servers_kind);
    let destinations = manager.informer(kind("Destination")?);
    let connector = dockers.clone();
    let lost_at = Arc::new(std::sync::Mutex::new(None));
    let record = lost_at.clone();
    let lost = docker_triggers::reachability_triggers(
        Box::new(move || {
            let d = connector.clone();
            Box::pin(async move { d.local().await })
        }),
        ObjectRef::cluster(LOCALHOST),
    )
    .inspect(move |_| {
        if let Ok(mut at) = record.lock() {
            *at = Some(status::now());
        }
    });
    let controller = Controller::new(NAME, servers.clone())
        .with_config(config)
        .triggers(lost);
    let reconciler = ServerReconciler {
        client: manager.client_for(NAME),
        kind: servers_kind,
        dockers: dockers.clone(),
        lost_at,
    };
    manager.add(controller, reconciler);
    let client = manager.client_for("defaults");
    let options = dockers.options.clone();
    manager.add_task(move |stop| Box::pin(ensure_defaults(client, servers, destinations, options, stop)));
    Ok(())
}

/// Creates the `localhost` Server and the default Destination whenever they are missing.
async fn ensure_defaults(
    client: Arc<dyn Client>,
    servers: Informer,
    destinations: Informer,
    options: DockerOptions,
    stop: CancellationToken,
) {
    let changed = Arc::new(tokio::sync::Notify::new());
    for informer in [&servers, &destinations] {
        let changed = changed.clone();
        informer.subscribe(move |c| {
            if c.new.is_none() {
                changed.notify_one();
            }
        });
    }
    tokio::select! {
        () = async { servers.wait_ready().await; destinations.wait_ready().await } => {}
        () = stop.cancelled() => return,
    }
    loop {
        let wanted = [
            (
                &servers,
                LOCALHOST,
                json!({"apiVersion": "berth.dev/v1", "kind": "Server", "metadata": {"name": LOCALHOST},
                       "spec": {"localhost": {"dockerHost": options.uri}}}),
            ),
            (
                &destinations,
                DEFAULT_DESTINATION,
                json!({"apiVersion": "berth.dev/v1", "kind": "Destination", "metadata": {"name": DEFAULT_DESTINATION},
                       "spec": {"server": LOCALHOST, "network": options.default_network}}),
            ),
        ];
        for (informer, name, obj) in wanted {
            if informer.get(&ObjectRef::cluster(name)).is_some() {
                continue;
            }
            match client.create(informer.kind(), None, obj).await {
                Ok(_) => tracing::info!(kind = informer.kind().kind, name, "created default object"),
                Err(client::Error::AlreadyExists { .. }) => {}
                Err(e) => {
                    tracing::warn!(kind = informer.kind().kind, name, error = %e, "cannot create default object")
                }
            }
        }
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
            () = stop.cancelled() => return,
        }
    }
}

#[async_trait::async_trait]
impl Reconciler for ServerReconciler {
    type Error = Error;

    async fn reconcile(&self, obj: Arc<Value>) -> Result<Action, Error> {
        let span = tracing::info_span!("reconcile", kind = "Server", name = %object::name(&obj));
        self.probe(obj).instrument(span).await
    }
}

impl ServerReconciler {
    async fn probe(&self, obj: Arc<Value>) -> Result<Action, Error> {
        if object::is_deleting(&obj) {
            return Ok(Action::await_change());
        }
        let name = object::name(&obj).to_owned();
        let server = object::typed::<ServerSpec>(&obj).map_err(|source| Error::Malformed {
            name: name.clone(),
            source,
        })?;
        let generation = object::generation(&obj);
        let old = server.status.unwrap_or_default();
        // Our own status write triggers a reconcile too: probe only once a heartbeat is due,
        // or the daemon's event stream was lost since the last probe.
        let ready = old
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True);
        let lost_at = self.lost_at.lock().ok().and_then(|at| *at);
        if ready
            && old.observed_generation == Some(generation)
            && let Some(last) = old.last_probe_time
            && (name != LOCALHOST || lost_at.is_none_or(|lost| lost < last))
        {
            let age = (status::now() - last).to_std().unwrap_or_default();
            if age < HEARTBEAT {
                return Ok(Action::requeue(HEARTBEAT - age));
            }
        }
        let mut next = ServerStatus {
            observed_generation: Some(generation),
            last_probe_time: Some(status::now()),
            ..old.clone()
        };
        let probe = match self.dockers.for_server(&name).await {
            Ok(d) => d.info().await.map_err(|source| Error::Unreachable {
                name: name.clone(),
                source,
            }),
            Err(e) => Err(e),
        };
        match probe {
            Ok(info) => {
                next.docker_version = Some(info.version);
                next.platform = Some(format!("{}/{}", info.os_type, info.architecture));
                next.cpus = Some(info.cpus);
                next.memory_bytes = Some(info.memory_bytes);
                next.docker_root_dir = Some(info.docker_root_dir);
                next.docker_disk_usage_bytes = info.disk_usage_bytes;
                status::set_now(
                    &mut next.conditions,
                    "Ready",
                    ConditionStatus::True,
                    "Reachable",
                    &format!(
                        "docker {} reachable",
                        next.docker_version.as_deref().unwrap_or("")
                    ),
                    generation,
                );
                status::update::<ServerSpec>(self.client.as_ref(), self.kind, &obj, &next).await?;
                Ok(Action::requeue(HEARTBEAT))
            }
            Err(e) => {
                let reason = if matches!(e, Error::Unsupported(_)) {
                    "Unsupported"
                } else {
                    "Unreachable"
                };
                status::set_now(
                    &mut next.conditions,
                    "Ready",
                    ConditionStatus::False,
                    reason,
                    &e.to_string(),
                    generation,
                );
                status::update::<ServerSpec>(self.client.as_ref(), self.kind, &obj, &next).await?;
                if reason == "Unsupported" {
                    return Ok(Action::await_change());
                }
                // Returning the error retries with the queue's per-key backoff.
                Err(e)
            }
        }
    }
}
