//! The Proxy controller: runs Traefik for a Server and keeps its routes in step with the
//! Applications' domains.
//!
//! Each reconcile is observe → decide → act. It reads the Applications on the proxy's
//! server (through their Destination), the Traefik container and what Traefik has live
//! ([`observe`]); a pure function ([`decide`]) renders Traefik's dynamic configuration
//! ([`render`]) and plans the steps: make sure the Traefik container runs (static
//! configuration as CLI arguments, ports published, [`container`]), attach it to every
//! destination network with routed apps and detach it from the other destination networks,
//! upload the configuration into the container's watched directory when Traefik does not
//! have it live yet, and the status to report once Traefik's API ([`traefik`]) shows it
//! live; `act` carries the plan out. A second controller ([`install_autocreate`]) creates
//! a Proxy named after the server when the first Application with a domain lands on a
//! server without one.
//!
//! A server has one Proxy: when several name it (a race of the auto-creation, a second
//! manifest), the oldest serves it ([`serving_proxy`]) and the others stand by
//! ([`decide::standby`]).
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
//! - Networks: the container is on exactly the Destination networks of its server that have
//!   routed Applications, besides its own ([`DEFAULT_NETWORK`]): a network no longer needed
//!   (its Applications lost their domains, moved or went away, or its Destination is being
//!   deleted) is disconnected, so a Destination's finalizer can remove its network. Networks
//!   no Destination names (another tool's) are never touched.
//! - Drift: Docker events on the Traefik container (die, stop, destroy...) trigger a
//!   reconcile at once ([`crate::docker_triggers`], scoped by the extra labels), which
//!   restarts or recreates it and uploads the routes again.
//! - Two Proxies for one server never fight over its ports: the oldest (creation time, then
//!   name) serves it, every other one has no container and reports `Running=False`,
//!   `Ready=False` with reason `ServerHasProxy` naming the serving one. A Proxy change
//!   triggers every Proxy of its server, so when the serving one is gone (its finalizer
//!   removed its container) the next oldest takes over at once. The Application controller
//!   judges routes by the serving Proxy only ([`serving_proxy`]).
//! - No self-triggered loop: an unchanged world gives an unchanged status, and the status
//!   helper writes nothing then; a failing reconcile writes no status at all, so it is
//!   retried on its backoff. (Any Application change on the server still triggers its
//!   Proxies at once, backoff or not, as in client-go: a watch event is new information.)
//!
//! # Caveats
//! - Basic-auth Secrets are read on each reconcile; a Secret change is picked up at the
//!   next reconcile (at most [`RESYNC`] later), not at once.
//! - ACME certificates live in the container (`/berth/acme.json`): recreating the
//!   container (image or port change) requests them again.
//! - A network counts as berth's only while a Destination names it: one left behind by a
//!   Destination that is gone (its finalizer found the server gone) stays attached.
//! - Nothing refuses a second Proxy for a server at admission: it is accepted and stands
//!   by. A serving Proxy stuck in deletion (its server unreachable) keeps the others
//!   standing by until it is gone.

mod act;
pub mod container;
pub mod decide;
pub mod observe;
pub mod render;
pub mod traefik;

use std::{sync::Arc, time::Duration};

use berth_crds::{
    Object,
    kinds::{ApplicationSpec, DestinationSpec, ProxySpec, SecretSpec},
};

pub use container::{container_name, static_args};
use decide::{Candidate, Desired, Networks, Next, Refusal, decide};

use crate::{
    client,
    controller::{Action, Controller, ControllerConfig, Reconciler},
    docker::{self, Docker, Labels},
    docker_triggers,
    finalizer::{Finalize, Finalized},
    informer::Informer,
    manager::Manager,
    object::ObjectRef,
    status,
};
use berth_runtime::Api;

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
/// The network the Traefik container is created on (Docker's default): never detached,
/// and its address is the one berth reaches Traefik's API on.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Port of Traefik's internal entrypoint (API, ping), never published.
pub const API_PORT: u16 = 8080;
/// How often a settled proxy is reconciled anyway (Secrets, drift).
pub const RESYNC: Duration = Duration::from_secs(30);
/// How soon a proxy whose configuration is not live yet is looked at again.
const VERIFY_AGAIN: Duration = Duration::from_millis(100);

/// A failed Proxy reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NoAddress(name) => Self::NoAddress(name),
            Refusal::Vanished(name) => Self::Vanished(name),
        }
    }
}

/// The server an Application runs on, through its Destination.
fn app_server(app: &Object<ApplicationSpec>, destinations: &Informer<DestinationSpec>) -> Option<String> {
    let dest = destinations.get(&ObjectRef::cluster(&app.spec.destination))?;
    Some(dest.spec.server.clone())
}

fn has_domains(app: &Object<ApplicationSpec>) -> bool {
    !app.spec.domains.is_empty()
}

/// The Proxies on `server`.
fn proxies_on(proxies: &Informer<ProxySpec>, server: Option<&str>) -> Vec<ObjectRef> {
    server
        .map(|s| {
            proxies
                .by_index(SERVER_INDEX, s)
                .iter()
                .map(|p| ObjectRef::of(p))
                .collect()
        })
        .unwrap_or_default()
}

/// The Proxy that serves `server` among `proxies` (any others are ignored): the oldest of
/// those naming it ([`decide::serving`]), one being deleted included.
pub fn serving_proxy(proxies: &[Arc<Object<ProxySpec>>], server: &str) -> Option<Arc<Object<ProxySpec>>> {
    let on: Vec<&Arc<Object<ProxySpec>>> = proxies.iter().filter(|p| p.spec.server == server).collect();
    let name = decide::serving(on.iter().map(|p| Candidate {
        name: p.name(),
        created: p.metadata.creation_timestamp,
    }))?;
    on.into_iter().find(|p| p.name() == name).cloned()
}

/// Adds the Proxy controller to `manager`; it drives containers through `docker`, adding
/// `extra_labels` to each.
pub fn install(manager: &mut Manager, config: ControllerConfig, docker: Docker, extra_labels: Labels) {
    let proxies = manager.informer::<ProxySpec>();
    let apps = manager.informer::<ApplicationSpec>();
    let destinations = manager.informer::<DestinationSpec>();
    proxies.add_index(SERVER_INDEX, |p| vec![p.spec.server.clone()]);
    let controller = Controller::new(NAME, proxies.clone())
        .with_config(config)
        // Which Proxy serves a server depends on all of its Proxies.
        .watches(&proxies, {
            let proxies = proxies.clone();
            move |p| proxies_on(&proxies, Some(&p.spec.server))
        })
        .watches(&apps, {
            let (proxies, destinations) = (proxies.clone(), destinations.clone());
            move |app| proxies_on(&proxies, app_server(app, &destinations).as_deref())
        })
        .watches(&destinations, {
            let proxies = proxies.clone();
            move |dest| proxies_on(&proxies, Some(&dest.spec.server))
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
    let client = manager.client_for(NAME);
    let reconciler = ProxyReconciler {
        api: Api::all(client.clone()),
        secrets: Api::all(client),
        proxies,
        apps,
        destinations,
        docker,
        extra_labels,
        http: reqwest::Client::new(),
    };
    manager.add(controller, Finalized(reconciler));
}

/// Adds the controller that creates a Proxy (named after the server) when an Application
/// with a domain lands on a server that has none.
pub fn install_autocreate(manager: &mut Manager, config: ControllerConfig) {
    let apps = manager.informer::<ApplicationSpec>();
    let proxies = manager.informer::<ProxySpec>();
    let destinations = manager.informer::<DestinationSpec>();
    // Reading the Proxies before the first reconcile matters: an empty cache would look
    // like a server without a Proxy, and a restart would create a second one.
    let controller = Controller::new(AUTOCREATE_NAME, apps)
        .with_config(config)
        .reads(&destinations)
        .reads(&proxies);
    let reconciler = AutoCreate {
        api: manager.api_for(AUTOCREATE_NAME),
        proxies,
        destinations,
    };
    manager.add(controller, reconciler);
}

/// The Proxy auto-created for `server`: named after it, every other field at its default
/// (as a Proxy created with only `spec.server` is stored).
fn default_proxy(server: &str) -> Object<ProxySpec> {
    Object::new(None, server, ProxySpec::for_server(server))
}

/// Creates missing Proxies for Applications with domains.
pub struct AutoCreate {
    api: Api<ProxySpec>,
    proxies: Informer<ProxySpec>,
    destinations: Informer<DestinationSpec>,
}

#[async_trait::async_trait]
impl Reconciler<ApplicationSpec> for AutoCreate {
    type Error = Error;

    async fn reconcile(&self, app: Arc<Object<ApplicationSpec>>) -> Result<Action, Error> {
        if app.is_deleting() || !has_domains(&app) {
            return Ok(Action::await_change());
        }
        let Some(server) = app_server(&app, &self.destinations) else {
            // The Destination is not there yet: its arrival does not map back, so look again.
            return Ok(Action::requeue(RESYNC));
        };
        if !self.proxies.by_index(SERVER_INDEX, &server).is_empty() {
            return Ok(Action::await_change());
        }
        match self.api.create(&default_proxy(&server)).await {
            Ok(_) => tracing::info!(server, app = app.name(), "created the server's proxy"),
            Err(client::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Action::await_change())
    }
}

/// Reconciles Proxies.
pub struct ProxyReconciler {
    api: Api<ProxySpec>,
    secrets: Api<SecretSpec>,
    proxies: Informer<ProxySpec>,
    apps: Informer<ApplicationSpec>,
    destinations: Informer<DestinationSpec>,
    docker: Docker,
    extra_labels: Labels,
    http: reqwest::Client,
}

#[async_trait::async_trait]
impl Finalize<ProxySpec> for ProxyReconciler {
    type Error = Error;
    const FINALIZER: &'static str = FINALIZER;

    fn api(&self) -> &Api<ProxySpec> {
        &self.api
    }

    /// Observe → decide → act, twice when the container had to be created or started;
    /// once, standing by, when another Proxy serves the server.
    async fn apply(&self, proxy: Arc<Object<ProxySpec>>) -> Result<Action, Error> {
        let name = proxy.name();
        let spec = &proxy.spec;
        let on_server = self.proxies.by_index(SERVER_INDEX, &spec.server);
        if let Some(serving) = serving_proxy(&on_server, &spec.server).filter(|p| p.name() != name) {
            return self.stand_by(&proxy, serving.name()).await;
        }
        let old = proxy.status.clone().unwrap_or_default();
        let generation = proxy.generation();
        let (apps, networks) = self.gather(&spec.server).await;
        let desired = Desired::new(name, proxy.uid(), spec, &self.extra_labels, &apps, networks)?;
        for after_container_steps in [false, true] {
            let observed = self
                .observe(&desired.container.name, after_container_steps)
                .await?;
            let plan = decide(&desired, &observed, &old, generation);
            tracing::debug!(proxy = name, ?plan.steps, "planned");
            self.act(name, spec, &desired, &plan.steps).await?;
            match plan.next {
                Next::ObserveAgain => {}
                Next::Report { report, requeue } => {
                    self.report(&proxy, *report).await?;
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

    async fn cleanup(&self, proxy: Arc<Object<ProxySpec>>) -> Result<Action, Error> {
        let container = container_name(proxy.name());
        match self.docker.remove_container(&container).await {
            Ok(()) => tracing::info!(container, "removed the proxy container"),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Action::await_change())
    }
}

impl ProxyReconciler {
    /// Stands by while Proxy `serving` serves the server: no container, the status says so.
    async fn stand_by(&self, proxy: &Object<ProxySpec>, serving: &str) -> Result<Action, Error> {
        let (name, spec) = (proxy.name(), &proxy.spec);
        let old = proxy.status.clone().unwrap_or_default();
        // Only the container's name is used: no Application is read.
        let desired = Desired::new(
            name,
            proxy.uid(),
            spec,
            &self.extra_labels,
            &[],
            Networks::default(),
        )?;
        let container = self.observe_container(&desired.container.name).await?;
        let plan = decide::standby(
            serving,
            &spec.server,
            container.as_ref(),
            &old,
            proxy.generation(),
        );
        tracing::debug!(proxy = name, serving, ?plan.steps, "standing by");
        self.act(name, spec, &desired, &plan.steps).await?;
        match plan.next {
            Next::Report { report, requeue } => {
                self.report(proxy, *report).await?;
                Ok(Action::requeue(requeue.after()))
            }
            Next::ObserveAgain => Ok(Action::requeue(VERIFY_AGAIN)),
            Next::Fail(refusal) => Err(refusal.into()),
        }
    }
}

#[cfg(test)]
mod tests;
