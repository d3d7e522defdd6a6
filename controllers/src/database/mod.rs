//! The Database controller: runs a Database as one engine container with a persistent named
//! volume on its Destination's network, with credentials in a Secret.
//!
//! A reconcile reads as [`observe`] (the caches and Docker into plain facts), [`decide`] (a
//! pure function from those facts to a [`decide::Plan`]) and [`act`] (runs the plan's steps
//! and writes the status); where a step's result matters (a pull, a probe), act records it
//! and decide runs again. The container itself is [`plan`]; engine facts are [`engine`].
//!
//! # Guarantees
//! - Engine-specific facts come from [`engine`] only; the reconciler never branches on the
//!   engine.
//! - Credentials: `spec.credentialsSecretRef` is honoured; without it a strong random
//!   password is generated on first reconcile into `<name>-credentials`, owned by the
//!   Database. Passwords are never logged, put in status, events or container labels.
//! - The container `<ns>-<name>` answers to `<name>.<ns>` on the destination network; status
//!   carries `internalEndpoint` (`<name>.<ns>:<port>`), a `connectionUrlTemplate` naming the
//!   Secret's keys, the image, and Ready/Progressing conditions. Ready means the engine's
//!   own probe (`pg_isready`, `mariadb-admin ping`, `redis-cli ping`, ...) passed through
//!   `docker exec`.
//! - Any change of effective config ([`plan`]) stops the container cleanly (30 s), removes
//!   it and starts a new one on the same volume: data survives. The new image is pulled
//!   before the old container stops: an image that cannot be pulled leaves it running
//!   (`Progressing=False reason=ImagePullFailed`).
//! - Drift: Docker events of the container trigger a reconcile; a stopped or killed
//!   container is started, a removed one recreated, one replaced by hand replaced. A
//!   container of that name that is not a berth Database container is never touched: the
//!   Database reports `ContainerConflict`.
//! - Deletion (finalizer `berth.dev/database`) stops and removes the container and keeps the
//!   volume unless `deletionPolicy: Delete`; the generated Secret goes with its owner.
//!
//! # Caveats
//! - A config change is a restart, not a zero-downtime rollout: two engines cannot share a
//!   data directory.
//! - Docker events are followed on the `localhost` endpoint only; databases on other
//!   servers are repaired at resync.
//! - Containers of Databases deleted while their finalizer was forced away are not swept.
//! - Deleting the generated Secret of an initialised database generates a new password the
//!   engine does not know (engines read credentials only when initialising their data
//!   directory); keep the Secret, or restore its old value.
//! - A Ready database is probed again only on a change, a Docker event or the resync: an
//!   engine that hangs without exiting shows as Ready until then.

pub mod act;
pub mod credentials;
pub mod decide;
pub mod engine;
pub mod observe;
pub mod plan;

use std::sync::Arc;

use berth_crds::{
    Object, Resource,
    kinds::{DatabaseSpec, DestinationSpec, SecretSpec},
};
use berth_runtime::Api;

use crate::{
    client,
    controller::{Action, Controller, ControllerConfig},
    docker, docker_triggers,
    dockers::{self, Dockers},
    events::Recorder,
    finalizer::{Finalize, Finalized},
    informer::Informer,
    manager::Manager,
    object::ObjectRef,
    status, workload,
};
use decide::Plan;

/// The controller's name (metrics, logs, `--disable-controllers`).
pub const NAME: &str = "database";
/// The finalizer that removes the container (and the volume with `deletionPolicy: Delete`).
pub const FINALIZER: &str = "berth.dev/database";
/// The Database informer's index of `spec.credentialsSecretRef` (`<ns>/<secret>`).
pub const SECRET_INDEX: &str = "credentials";
/// The Database informer's index of `spec.destination`.
pub const DESTINATION_INDEX: &str = "destination";

/// A failed Database reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be used.
    #[error(transparent)]
    Server(#[from] dockers::Error),
    /// A Docker call failed.
    #[error("docker: {0}")]
    Docker(#[from] docker::Error),
    /// The image could not be pulled or the container not started.
    #[error(transparent)]
    Workload(#[from] workload::Error),
    /// The credentials Secret could not be read or written.
    #[error("credentials secret: {0}")]
    Secret(#[from] client::Error),
    /// No password could be generated.
    #[error(transparent)]
    Credentials(#[from] credentials::Error),
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
    /// A plan broke an invariant of the reconciler (a bug).
    #[error("internal: {0}")]
    Internal(&'static str),
}

/// Reconciles Databases.
pub struct DatabaseReconciler {
    api: Api<DatabaseSpec>,
    secrets_api: Api<SecretSpec>,
    secrets: Informer<SecretSpec>,
    destinations: Informer<DestinationSpec>,
    dockers: Dockers,
    recorder: Recorder,
    tunables: decide::Tunables,
}

/// Adds the Database controller to `manager`.
pub fn install(manager: &mut Manager, config: ControllerConfig, dockers: Dockers) {
    let dbs = manager.informer::<DatabaseSpec>();
    let secrets = manager.informer::<SecretSpec>();
    let destinations = manager.informer::<DestinationSpec>();
    dbs.add_index(SECRET_INDEX, |db| {
        let ns = db.namespace().unwrap_or_default();
        db.spec
            .credentials_secret_ref
            .iter()
            .map(|s| format!("{ns}/{s}"))
            .collect()
    });
    dbs.add_index(DESTINATION_INDEX, |db| vec![db.spec.destination.clone()]);
    let (by_secret, by_dest) = (dbs.clone(), dbs.clone());
    let connector = dockers.clone();
    let triggers = docker_triggers::owner_triggers(
        Box::new(move || {
            let d = connector.clone();
            Box::pin(async move { d.local().await })
        }),
        DatabaseSpec::KIND,
        dockers.options.scope.clone(),
    );
    let controller = Controller::new(NAME, dbs)
        .with_config(config)
        .owns(&secrets)
        .watches(&secrets, move |s| {
            let key = format!("{}/{}", s.namespace().unwrap_or_default(), s.name());
            by_secret
                .by_index(SECRET_INDEX, &key)
                .iter()
                .map(|d| ObjectRef::of(d))
                .collect()
        })
        .watches(&destinations, move |d| {
            by_dest
                .by_index(DESTINATION_INDEX, d.name())
                .iter()
                .map(|d| ObjectRef::of(d))
                .collect()
        })
        .reads(dockers.servers())
        .triggers(triggers);
    let reconciler = DatabaseReconciler {
        api: manager.api_for(NAME),
        secrets_api: manager.api_for(NAME),
        secrets,
        destinations,
        dockers,
        recorder: Recorder::new(manager.client_for(NAME), "database-controller"),
        tunables: decide::Tunables::default(),
    };
    manager.add(controller, Finalized(reconciler));
}

/// How many decide → act rounds one reconcile may take (a first creation takes five).
const MAX_ROUNDS: usize = 12;

#[async_trait::async_trait]
impl Finalize<DatabaseSpec> for DatabaseReconciler {
    type Error = Error;
    const FINALIZER: &'static str = FINALIZER;

    fn api(&self) -> &Api<DatabaseSpec> {
        &self.api
    }

    /// Observe, then decide and act until a plan is done.
    async fn apply(&self, db: Arc<Object<DatabaseSpec>>) -> Result<Action, Error> {
        let engine = engine::engine(db.spec.engine);
        let caches = observe::Caches {
            secrets: &self.secrets,
            destinations: &self.destinations,
        };
        let scope = &self.dockers.options.scope;
        let mut observed = observe::caches(&db, scope, &caches, engine);
        let mut act = act::Act::new(self, &db);
        for _ in 0..MAX_ROUNDS {
            match decide::decide(&observed, status::now(), &self.tunables) {
                Plan::Steps(steps) => act.run(steps, &mut observed).await?,
                Plan::Done(outcome) => return act.finish(*outcome).await,
            }
        }
        Err(Error::Internal("the plan did not settle"))
    }

    async fn cleanup(&self, db: Arc<Object<DatabaseSpec>>) -> Result<Action, Error> {
        act::cleanup(self, &db).await
    }
}
