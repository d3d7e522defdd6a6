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

use berth_crds::{kinds::DatabaseSpec, registry::KindInfo};
use serde_json::Value;
use tracing::Instrument;

use crate::{
    client::{self, Client},
    controller::{Action, Controller, ControllerConfig, Reconciler},
    docker, docker_triggers,
    events::Recorder,
    finalizer::{self, Event},
    informer::Informer,
    manager::Manager,
    object::{self, ObjectRef},
    server::{self, Dockers},
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
    /// The cached object does not parse as a Database.
    #[error("database {name:?} is malformed: {source}")]
    Malformed {
        /// The database (or its destination).
        name: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The server could not be used.
    #[error(transparent)]
    Server(#[from] server::Error),
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
    client: Arc<dyn Client>,
    kind: &'static KindInfo,
    secret_kind: &'static KindInfo,
    secrets: Informer,
    destinations: Informer,
    dockers: Dockers,
    recorder: Recorder,
    tunables: decide::Tunables,
}

fn str_at(obj: &Value, pointer: &str) -> Vec<String> {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .into_iter()
        .collect()
}

/// Adds the Database controller to `manager`.
pub fn install(
    manager: &mut Manager,
    config: ControllerConfig,
    dockers: Dockers,
) -> Result<(), server::Error> {
    let kind = server::kind("Database")?;
    let secret_kind = server::kind("Secret")?;
    let dbs = manager.informer(kind);
    let secrets = manager.informer(secret_kind);
    let destinations = manager.informer(server::kind("Destination")?);
    let servers = manager.informer(server::kind("Server")?);
    dbs.add_index(SECRET_INDEX, |db| {
        let ns = object::namespace(db).unwrap_or_default().to_owned();
        str_at(db, "/spec/credentialsSecretRef")
            .into_iter()
            .map(|s| format!("{ns}/{s}"))
            .collect()
    });
    dbs.add_index(DESTINATION_INDEX, |db| str_at(db, "/spec/destination"));
    let (by_secret, by_dest) = (dbs.clone(), dbs.clone());
    let connector = dockers.clone();
    let triggers = docker_triggers::owner_triggers(
        Box::new(move || {
            let d = connector.clone();
            Box::pin(async move { d.local().await })
        }),
        "Database",
        dockers.options.scope.clone(),
    );
    let controller = Controller::new(NAME, dbs)
        .with_config(config)
        .owns(&secrets)
        .watches(&secrets, move |s| {
            let key = format!("{}/{}", object::namespace(s).unwrap_or_default(), object::name(s));
            by_secret
                .by_index(SECRET_INDEX, &key)
                .iter()
                .map(|d| ObjectRef::of(d))
                .collect()
        })
        .watches(&destinations, move |d| {
            by_dest
                .by_index(DESTINATION_INDEX, object::name(d))
                .iter()
                .map(|d| ObjectRef::of(d))
                .collect()
        })
        .watches(&servers, |_| Vec::new())
        .triggers(triggers);
    let reconciler = DatabaseReconciler {
        client: manager.client_for(NAME),
        kind,
        secret_kind,
        secrets,
        destinations,
        dockers,
        recorder: Recorder::new(manager.client_for(NAME), "database-controller"),
        tunables: decide::Tunables::default(),
    };
    manager.add(controller, reconciler);
    Ok(())
}

/// How many decide → act rounds one reconcile may take (a first creation takes five).
const MAX_ROUNDS: usize = 12;

impl DatabaseReconciler {
    /// Observe, then decide and act until a plan is done.
    async fn apply(&self, obj: &Value) -> Result<Action, Error> {
        let db = object::typed::<DatabaseSpec>(obj).map_err(|source| Error::Malformed {
            name: object::name(obj).to_owned(),
            source,
        })?;
        let engine = engine::engine(db.spec.engine);
        let caches = observe::Caches {
            secrets: &self.secrets,
            destinations: &self.destinations,
        };
        let status = db.status.unwrap_or_default();
        let scope = &self.dockers.options.scope;
        let mut observed = observe::caches(obj, db.spec, status, scope, &caches, engine)?;
        let mut act = act::Act::new(self, obj);
        for _ in 0..MAX_ROUNDS {
            match decide::decide(&observed, status::now(), &self.tunables) {
                Plan::Steps(steps) => act.run(steps, &mut observed).await?,
                Plan::Done(outcome) => return act.finish(*outcome).await,
            }
        }
        Err(Error::Internal("the plan did not settle"))
    }
}

#[async_trait::async_trait]
impl Reconciler for DatabaseReconciler {
    type Error = finalizer::Error<Error>;

    async fn reconcile(&self, obj: Arc<Value>) -> Result<Action, Self::Error> {
        let span = tracing::info_span!(
            "reconcile",
            kind = "Database",
            namespace = %object::namespace(&obj).unwrap_or_default(),
            name = %object::name(&obj)
        );
        finalizer::finalizer(
            self.client.as_ref(),
            self.kind,
            FINALIZER,
            obj,
            |event| async move {
                match event {
                    Event::Apply(obj) => self.apply(&obj).await,
                    Event::Cleanup(obj) => act::cleanup(self, &obj).await,
                }
            },
        )
        .instrument(span)
        .await
    }
}
