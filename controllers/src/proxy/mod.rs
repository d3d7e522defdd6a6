//! The Proxy controller: runs Traefik for a Server and keeps its routes in step with the
//! Applications' domains.
//!
//! Each reconcile is observe → decide → act. It reads the Applications on the proxy's
//! server (through their Destination), the Traefik container and what Traefik has live
//! ([`observe`]); a pure function ([`decide`]) renders Traefik's dynamic configuration
//! ([`render`]) and plans the steps: make sure the Traefik container runs (static
//! configuration as CLI arguments, ports published, [`container`]), attach it to every
//! destination network with routed apps, upload the configuration into the container's
//! watched directory when Traefik does not have it live yet, and the status to report once
//! Traefik's API ([`traefik`]) shows it live; `act` carries the plan out. A second
//! controller ([`install_autocreate`]) creates a Proxy named after the server when the
//! first Application with a domain lands on a server without one.
//!
//! # Guarantees
//! - Level-triggered, no memory: what Traefik has live is read back from its API (a marker
//!   middleware names the slot and revision), so a restart of berth or of Traefik converges.
//! - Never a half or missing configuration: the watched directory holds two slots,
//!   `a.yml` and `b.yml`; a new revision is written whole into the slot not in use and the
//!   other slot is emptied afterwards, so at every instant each route resolves to its old
//!   or its new definition (Traefik keeps the first definition of a duplicate name).
//! - `status.backends` (`<namespace>/<app>` → containers routed) is written only once the
//!   revision holding them is the only one live in Traefik; `Ready` likewise.
//! - Deletion: the finalizer removes the Traefik container.
//! - Drift: Docker events on the Traefik container (die, stop, destroy...) trigger a
//!   reconcile at once ([`crate::docker_triggers`], scoped by the extra labels), which
//!   restarts or recreates it and uploads the routes again.
//!
//! # Caveats
//! - Basic-auth Secrets are read on each reconcile; a Secret change is picked up at the
//!   next reconcile (at most [`RESYNC`] later), not at once.
//! - ACME certificates live in the container (`/berth/acme.json`): recreating the
//!   container (image or port change) requests them again.
//! - Networks no longer needed are not disconnected.

mod act;
pub mod container;
pub mod decide;
pub mod observe;
pub mod render;
pub mod traefik;

use std::{sync::Arc, time::Duration};

use berth_crds::{kinds::ProxySpec, registry::KindInfo};
use serde_json::{Value, json};

pub use container::{container_name, static_args};
use decide::{Desired, Next, Refusal, decide};

use crate::{
    client::{self, Client},
    controller::{Action, Controller, ControllerConfig, Reconciler},
    docker::{self, Docker, Labels},
    docker_triggers,
    finalizer::{self, Event},
    informer::Informer,
    manager::Manager,
    object::{self, ObjectRef},
    status,
};

/// The controller's name (metrics, logs).
pub const NAME: &str = "proxy";
/// The auto-creating controller's name.
pub const AUTOCREATE_NAME: &str = "proxy-autocreate";
/// The finalizer that removes the Traefik container.
pub const FINALIZER: &str = "berth.dev/proxy-container";
/// The Proxy informer's index of `spec.server`.
pub const SERVER_INDEX: &str = "server";
/// The directory Traefik's file provider watches.
pub const DYNAMIC_DIR: &str = "/berth/dynamic";
/// Port of Traefik's internal entrypoint (API, ping), never published.
pub const API_PORT: u16 = 8080;
/// How often a settled proxy is reconciled anyway (Secrets, drift).
pub const RESYNC: Duration = Duration::from_secs(30);
/// How soon a proxy whose configuration is not live yet is looked at again.
const VERIFY_AGAIN: Duration = Duration::from_millis(100);

/// A failed Proxy reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kind berth needs is not registered.
    #[error("kind {0} is not registered")]
    MissingKind(&'static str),
    /// The cached object does not parse as its kind.
    #[error("{kind} {name:?} is malformed: {source}")]
    Malformed {
        /// The kind.
        kind: &'static str,
        /// The object.
        name: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A Docker call failed.
    #[error("docker: {0}")]
    Docker(#[from] docker::Error),
    /// The configuration could not be serialized.
    #[error("rendering the configuration: {0}")]
    Render(#[from] serde_yaml::Error),
    /// An archive could not be built.
    #[error("building the upload archive: {0}")]
    Archive(#[from] std::io::Error),
    /// The container has no address berth can reach its API on.
    #[error("proxy container {0:?} has no network address")]
    NoAddress(String),
    /// The container vanished right after being created or started.
    #[error("proxy container {0:?} vanished while it was being started")]
    Vanished(String),
    /// An API call failed.
    #[error("api: {0}")]
    Api(#[from] client::Error),
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NoAddress(name) => Self::NoAddress(name),
            Refusal::Vanished(name) => Self::Vanished(name),
        }
    }
}

fn kind(name: &'static str) -> Result<&'static KindInfo, Error> {
    berth_crds::lookup(name).ok_or(Error::MissingKind(name))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The server an Application runs on, through its Destination.
fn app_server(app: &Value, destinations: &Informer) -> Option<String> {
    let dest = str_at(app, "/spec/destination")?;
    let dest = destinations.get(&ObjectRef::cluster(dest))?;
    str_at(&dest, "/spec/server").map(str::to_owned)
}

fn has_domains(app: &Value) -> bool {
    app.pointer("/spec/domains")
        .and_then(Value::as_array)
        .is_some_and(|d| !d.is_empty())
}

/// Adds the Proxy controller to `manager`; it drives containers through `docker`, adding
/// `extra_labels` to each.
pub fn install(
    manager: &mut Manager,
    config: ControllerConfig,
    docker: Docker,
    extra_labels: Labels,
) -> Result<(), Error> {
    let (proxy_kind, app_kind, dest_kind, secret_kind) = (
        kind("Proxy")?,
        kind("Application")?,
        kind("Destination")?,
        kind("Secret")?,
    );
    let proxies = manager.informer(proxy_kind);
    let apps = manager.informer(app_kind);
    let destinations = manager.informer(dest_kind);
    proxies.add_index(SERVER_INDEX, |p| {
        str_at(p, "/spec/server").map(str::to_owned).into_iter().collect()
    });
    let to_proxies = |proxies: Informer, server: Option<String>| -> Vec<ObjectRef> {
        server
            .map(|s| {
                proxies
                    .by_index(SERVER_INDEX, &s)
                    .iter()
                    .map(|p| ObjectRef::of(p))
                    .collect()
            })
            .unwrap_or_default()
    };
    let controller = Controller::new(NAME, proxies.clone())
        .with_config(config)
        .watches(&apps, {
            let (proxies, destinations) = (proxies.clone(), destinations.clone());
            move |app| to_proxies(proxies.clone(), app_server(app, &destinations))
        })
        .watches(&destinations, {
            let proxies = proxies.clone();
            move |dest| to_proxies(proxies.clone(), str_at(dest, "/spec/server").map(str::to_owned))
        })
        .triggers(docker_triggers::owner_triggers(
            Box::new({
                let docker = docker.clone();
                move || {
                    let docker = docker.clone();
                    Box::pin(async move { Ok(docker) })
                }
            }),
            "Proxy",
            extra_labels.clone(),
        ));
    let reconciler = ProxyReconciler {
        client: manager.client_for(NAME),
        kind: proxy_kind,
        secret_kind,
        apps,
        destinations,
        docker,
        extra_labels,
        http: reqwest::Client::new(),
    };
    manager.add(controller, reconciler);
    Ok(())
}

/// Adds the controller that creates a Proxy (named after the server) when an Application
/// with a domain lands on a server that has none.
pub fn install_autocreate(manager: &mut Manager, config: ControllerConfig) -> Result<(), Error> {
    let (proxy_kind, app_kind, dest_kind) = (kind("Proxy")?, kind("Application")?, kind("Destination")?);
    let apps = manager.informer(app_kind);
    let proxies = manager.informer(proxy_kind);
    let destinations = manager.informer(dest_kind);
    let controller = Controller::new(AUTOCREATE_NAME, apps)
        .with_config(config)
        .watches(&destinations, |_| Vec::new());
    let reconciler = AutoCreate {
        client: manager.client_for(AUTOCREATE_NAME),
        proxy_kind,
        proxies,
        destinations,
    };
    manager.add(controller, reconciler);
    Ok(())
}

/// Creates missing Proxies for Applications with domains.
pub struct AutoCreate {
    client: Arc<dyn Client>,
    proxy_kind: &'static KindInfo,
    proxies: Informer,
    destinations: Informer,
}

#[async_trait::async_trait]
impl Reconciler for AutoCreate {
    type Error = Error;

    async fn reconcile(&self, app: Arc<Value>) -> Result<Action, Error> {
        if object::is_deleting(&app) || !has_domains(&app) {
            return Ok(Action::await_change());
        }
        let Some(server) = app_server(&app, &self.destinations) else {
            // The Destination is not there yet: its arrival does not map back, so look again.
            return Ok(Action::requeue(RESYNC));
        };
        if !self.proxies.by_index(SERVER_INDEX, &server).is_empty() {
            return Ok(Action::await_change());
        }
        let proxy = json!({
            "apiVersion": "berth.dev/v1",
            "kind": "Proxy",
            "metadata": {"name": server},
            "spec": {"server": server},
        });
        match self.client.create(self.proxy_kind, None, proxy).await {
            Ok(_) => tracing::info!(server, app = object::name(&app), "created the server's proxy"),
            Err(client::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Action::await_change())
    }
}

/// Reconciles Proxies.
pub struct ProxyReconciler {
    client: Arc<dyn Client>,
    kind: &'static KindInfo,
    secret_kind: &'static KindInfo,
    apps: Informer,
    destinations: Informer,
    docker: Docker,
    extra_labels: Labels,
    http: reqwest::Client,
}

impl ProxyReconciler {
    /// Observe → decide → act, twice when the container had to be created or started.
    async fn apply(&self, obj: &Value) -> Result<Action, Error> {
        let name = object::name(obj);
        let proxy = object::typed::<ProxySpec>(obj).map_err(|source| Error::Malformed {
            kind: "Proxy",
            name: name.to_owned(),
            source,
        })?;
        let spec = proxy.spec;
        let old = proxy.status.unwrap_or_default();
        let generation = object::generation(obj);
        let (apps, networks) = self.gather(&spec.server).await;
        let desired = Desired::new(name, object::uid(obj), &spec, &self.extra_labels, &apps, networks)?;
        for after_container_steps in [false, true] {
            let observed = self
                .observe(&desired.container.name, after_container_steps)
                .await?;
            let plan = decide(&desired, &observed, &old, generation);
            tracing::debug!(proxy = name, ?plan.steps, "planned");
            self.act(name, &spec, &desired, &plan.steps).await?;
            match plan.next {
                Next::ObserveAgain => {}
                Next::Report { report, requeue } => {
                    self.report(obj, *report).await?;
                    return Ok(Action::requeue(requeue.after()));
                }
                Next::Fail(refusal) => return Err(refusal.into()),
            }
        }
        // `decide` takes the container as it is after container steps: not reached.
        tracing::warn!(
            proxy = name,
            "the proxy container did not settle in one reconcile"
        );
        Ok(Action::requeue(VERIFY_AGAIN))
    }

    async fn cleanup(&self, obj: &Value) -> Result<Action, Error> {
        let container = container_name(object::name(obj));
        match self.docker.remove_container(&container).await {
            Ok(()) => tracing::info!(container, "removed the proxy container"),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Action::await_change())
    }
}

#[async_trait::async_trait]
impl Reconciler for ProxyReconciler {
    type Error = Error;

    async fn reconcile(&self, obj: Arc<Value>) -> Result<Action, Error> {
        finalizer::finalizer(
            self.client.as_ref(),
            self.kind,
            FINALIZER,
            obj,
            |event| async move {
                match event {
                    Event::Apply(obj) => self.apply(&obj).await,
                    Event::Cleanup(obj) => self.cleanup(&obj).await,
                }
            },
        )
        .await
        .map_err(|e| Error::Finalizer(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
