//! The Service controller: expands a Service's compose file (or template) into the
//! Applications and Databases it owns, in dependency order, on a network of its own.
//!
//! A reconcile reads as [`observe`] (the caches into plain facts), [`decide`] (a pure
//! function from those facts to a [`plan::Plan`], calling the pure
//! [`berth_compose::expand::expand`]) and [`act`] (runs the plan's steps through the API,
//! then writes the status). Decide runs again only after magic values were generated.
//!
//! # Guarantees
//! - Everything goes through the API layer (`Api<K>`); the controller makes no Docker
//!   call: the children's controllers run the containers and networks.
//! - Generated values: the Secret `<service>-generated` (owned by the Service) holds each
//!   magic value the compose file needs under its variable name, generated once with
//!   [`berth_compose::magic::generate`] and never overwritten (stable across re-apply,
//!   restarts and edits; a value no longer used is kept), plus the derived
//!   `<member>.<VAR>` entries the children's `secretKeyRef`s name, recomputed each time.
//!   It is written before any child.
//! - The Service's own Destination `svc-<ns>-<name>` (network `berth-svc-<ns>-<name>`, on
//!   the server of `spec.destination`'s Destination) is created before the children, and
//!   deleted by the finalizer once they are gone.
//! - Children are named `<service>-<member>`, carry a controller ownerReference to the
//!   Service and the labels `berth.dev/service` / `berth.dev/service-namespace`; a Database
//!   member's login Secret `<object>-login` likewise. Objects without the Service's
//!   ownerReference are never patched or deleted: a taken name is a member `Conflict`.
//! - Start order: a member is created only when each `depends_on` member is up:
//!   `service_healthy` when the child's `Ready` condition is True, `service_started` when
//!   its containers run (an Application with a running replica, a Database whose engine
//!   is being probed, or either one Ready). Until then `status.services[].reason` is
//!   `Waiting: <service> (<condition>)`.
//! - Updates: a child whose wanted spec differs from the live one gets one merge patch of
//!   the difference (only changed members roll); unchanged children get no write. A child
//!   whose compose service is gone is deleted; one whose kind changed is deleted and then
//!   created anew.
//! - A compose file that does not expand gives `Ready=False` (`InvalidCompose`, with the
//!   expansion's message) and changes no child.
//! - Status: members in compose order; `members` is `ready/total` of the members that count
//!   (not `exclude_from_hc` / `restart: no`); `url` the first URL; `notices` as
//!   `services.<svc>.<key>: <message>`; `Ready=True` when every counted member is ready.
//! - Relative compose binds live under `<host-root>/services/<ns>/<name>/`; their
//!   directories are created (on berth's own filesystem) before the child is created or
//!   patched. A source whose name has an extension is taken for a file: only its parent is
//!   created, so a file mount never turns into a directory.
//! - Deletion (finalizer `berth.dev/service`): the children are deleted (Databases keep
//!   their volumes unless `deletionPolicy: Delete`, which their specs carry) and, once
//!   they are gone, the Destination; its own finalizer removes the network once nothing
//!   is attached to it. Secrets go with the Service (garbage collection).
//!
//! # Caveats
//! - `service_completed_successfully` is honoured as `service_started`: Application status
//!   records no exit code, and the Application controller restarts an exited container.
//! - Moving a Service to a Destination on another server is refused
//!   (`DestinationMismatch`): a Destination's fields are immutable.
//! - The caches lag the API: a child created just before the Service's deletion may be
//!   missed by the finalizer; garbage collection removes it once its owner is gone.
//! - The Service can be gone before its Destination's network: the Destination's own
//!   finalizer removes the network once nothing is attached (the Proxy leaves it when no
//!   routed Application needs it); a container berth did not start that someone attached
//!   by hand keeps the Destination terminating.
//! - Bind directories are made only when a child is created or patched: a directory
//!   removed by hand later is not made again until the member changes.

pub mod act;
pub mod decide;
pub mod observe;
pub mod plan;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_crds::Object;
use berth_crds::kinds::{ApplicationSpec, DatabaseSpec, DestinationSpec, SecretSpec, ServiceSpec};
use berth_runtime::Api;
use tracing::Instrument;

use crate::{
    client,
    controller::{Action, Controller, ControllerConfig},
    finalizer::{Finalize, Finalized},
    informer::Informer,
    manager::Manager,
    object::ObjectRef,
    status,
};
use plan::{Cleanup, Plan, SERVICE_LABEL, SERVICE_NAMESPACE_LABEL};

/// The controller's name (metrics, logs, `--disable-controllers`).
pub const NAME: &str = "service";
/// The finalizer that deletes the children and the Service's Destination.
pub const FINALIZER: &str = "berth.dev/service";
/// The Service informer's index of `spec.destination`.
pub const DESTINATION_INDEX: &str = "destination";
/// How often the finalizer looks again while children are going away (their changes
/// trigger it sooner).
const CLEANUP_POLL: Duration = Duration::from_secs(5);
/// How many decisions one reconcile may take (generating values takes one more).
const MAX_ROUNDS: usize = 3;

/// A failed Service reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API read or write failed.
    #[error("api: {0}")]
    Api(#[from] client::Error),
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
    /// A magic value could not be generated.
    #[error("cannot generate {name}: {source}")]
    Generate {
        /// The variable.
        name: String,
        /// Why.
        source: berth_compose::magic::Error,
    },
    /// The generated-values Secret exists and is not the Service's.
    #[error("secret {0:?} exists and is not owned by this service")]
    SecretConflict(String),
    /// A bind directory could not be created under the host root.
    #[error("cannot create directory {path}: {message}")]
    HostDir {
        /// The directory.
        path: String,
        /// The operating system's words.
        message: String,
    },
    /// A plan broke an invariant of the reconciler (a bug).
    #[error("internal: {0}")]
    Internal(&'static str),
}

/// Reconciles Services.
pub struct ServiceReconciler {
    api: Api<ServiceSpec>,
    apps_api: Api<ApplicationSpec>,
    dbs_api: Api<DatabaseSpec>,
    secrets_api: Api<SecretSpec>,
    destinations_api: Api<DestinationSpec>,
    apps: Informer<ApplicationSpec>,
    dbs: Informer<DatabaseSpec>,
    secrets: Informer<SecretSpec>,
    destinations: Informer<DestinationSpec>,
    host_root: Option<PathBuf>,
}

/// Adds the Service controller to `manager`; `host_root` is `--host-root`.
pub fn install(manager: &mut Manager, config: ControllerConfig, host_root: Option<PathBuf>) {
    let services = manager.informer::<ServiceSpec>();
    let apps = manager.informer::<ApplicationSpec>();
    let dbs = manager.informer::<DatabaseSpec>();
    let secrets = manager.informer::<SecretSpec>();
    let destinations = manager.informer::<DestinationSpec>();
    services.add_index(DESTINATION_INDEX, |s| vec![s.spec.destination.clone()]);
    let by_dest = services.clone();
    let controller = Controller::new(NAME, services)
        .with_config(config)
        .owns(&apps)
        .owns(&dbs)
        .owns(&secrets)
        .watches(&destinations, move |d| {
            // The Service's own Destination (cluster-scoped: by its labels), and the
            // Services placed on this Destination.
            let labels = &d.metadata.labels;
            let own = match (labels.get(SERVICE_NAMESPACE_LABEL), labels.get(SERVICE_LABEL)) {
                (Some(ns), Some(name)) => vec![ObjectRef::new(Some(ns), name)],
                _ => Vec::new(),
            };
            let placed = by_dest.by_index(DESTINATION_INDEX, d.name());
            own.into_iter()
                .chain(placed.iter().map(|s| ObjectRef::of(s)))
                .collect()
        });
    let reconciler = ServiceReconciler {
        api: manager.api_for(NAME),
        apps_api: manager.api_for(NAME),
        dbs_api: manager.api_for(NAME),
        secrets_api: manager.api_for(NAME),
        destinations_api: manager.api_for(NAME),
        apps,
        dbs,
        secrets,
        destinations,
        host_root,
    };
    manager.add(controller, Finalized(reconciler));
}

impl ServiceReconciler {
    fn observe(&self, svc: &Object<ServiceSpec>) -> observe::Observed {
        let caches = observe::Caches {
            apps: &self.apps,
            dbs: &self.dbs,
            secrets: &self.secrets,
            destinations: &self.destinations,
        };
        observe::caches(svc, self.host_root.clone(), &caches)
    }

    async fn converge(&self, svc: &Object<ServiceSpec>) -> Result<Action, Error> {
        let mut observed = self.observe(svc);
        let act = act::Act::new(self, svc);
        for _ in 0..MAX_ROUNDS {
            match decide::decide(&observed, status::now()) {
                Plan::Generate(g) => act.generate(g, &mut observed).await?,
                Plan::Converge { steps, status } => {
                    act.run(steps).await?;
                    act.write(&status).await?;
                    return Ok(Action::await_change());
                }
            }
        }
        Err(Error::Internal("the plan did not settle"))
    }

    async fn finalize(&self, svc: &Object<ServiceSpec>) -> Result<Action, Error> {
        let observed = self.observe(svc);
        match decide::cleanup(&observed) {
            Cleanup::Pending(steps) => {
                act::Act::new(self, svc).run(steps).await?;
                Ok(Action::cleanup_pending(CLEANUP_POLL))
            }
            Cleanup::Done(steps) => {
                act::Act::new(self, svc).run(steps).await?;
                Ok(Action::await_change())
            }
        }
    }
}

#[async_trait::async_trait]
impl Finalize<ServiceSpec> for ServiceReconciler {
    type Error = Error;
    const FINALIZER: &'static str = FINALIZER;

    fn api(&self) -> &Api<ServiceSpec> {
        &self.api
    }

    async fn apply(&self, svc: Arc<Object<ServiceSpec>>) -> Result<Action, Error> {
        let span = tracing::info_span!("service.apply", generation = svc.generation());
        self.converge(&svc).instrument(span).await
    }

    async fn cleanup(&self, svc: Arc<Object<ServiceSpec>>) -> Result<Action, Error> {
        let span = tracing::info_span!("service.cleanup");
        self.finalize(&svc).instrument(span).await
    }
}
