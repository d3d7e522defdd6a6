//! The database a backup or restore runs against: its Docker connection, its running
//! container and the engine's dump and restore commands with its credentials.
//!
//! # Guarantees
//! - The container is found by berth's owner labels (`dev.berth.kind=Database`, namespace,
//!   name) within the scope labels, and must be running.
//! - Credentials come from the Database's Secret (`status.credentialsSecret`, else
//!   `spec.credentialsSecretRef`, keys `username`, `password`, `database`) and reach the
//!   tools through the exec's environment or argv as the engine table says — never logs.
//!
//! # Caveats
//! - Only Databases on a Destination whose Server berth can reach.

use std::collections::BTreeMap;

use berth_crds::kinds::{DatabaseSpec, DestinationSpec, SecretSpec, database::DatabaseEngine};

use crate::{
    database::engine::{self, Credentials},
    docker::{self, Docker, ExecRequest, label},
    dockers::{self, Dockers},
    informer::Informer,
    object::ObjectRef,
};

/// A database that cannot be backed up or restored right now.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Database does not exist.
    #[error("database {0:?} not found")]
    NotFound(String),
    /// The Database's Destination does not exist.
    #[error("destination {0:?} not found")]
    NoDestination(String),
    /// The server could not be used.
    #[error(transparent)]
    Server(#[from] dockers::Error),
    /// A Docker call failed.
    #[error("docker: {0}")]
    Docker(#[from] docker::Error),
    /// No running container of the Database.
    #[error("database {0:?} has no running container")]
    NotRunning(String),
    /// The credentials Secret is missing or lacks a key.
    #[error("database {database:?}: secret {secret:?} has no key {key:?} (or does not exist)")]
    Credentials {
        /// The database.
        database: String,
        /// The Secret.
        secret: String,
        /// The key.
        key: String,
    },
}

/// A resolved database.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its server's Docker.
    pub docker: Docker,
    /// Its running container's name.
    pub container: String,
    /// Its engine.
    pub engine: DatabaseEngine,
    /// The dump command (writes a complete dump to stdout).
    pub dump: ExecRequest,
    /// The restore command (reads a dump on stdin).
    pub restore: ExecRequest,
}

/// The caches a database is resolved from.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// Databases.
    pub databases: Informer<DatabaseSpec>,
    /// Destinations.
    pub destinations: Informer<DestinationSpec>,
    /// Secrets.
    pub secrets: Informer<SecretSpec>,
    /// Docker connections.
    pub dockers: Dockers,
}

fn request(plan: engine::ExecPlan) -> ExecRequest {
    ExecRequest {
        cmd: plan.argv,
        env: plan.env,
        stdin: false,
    }
}

impl Resolver {
    /// Resolves Database `ns/name`.
    pub async fn resolve(&self, ns: &str, name: &str) -> Result<Target, Error> {
        let db = self
            .databases
            .get(&ObjectRef::new(Some(ns), name))
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        let dest = self
            .destinations
            .get(&ObjectRef::cluster(&db.spec.destination))
            .ok_or_else(|| Error::NoDestination(db.spec.destination.clone()))?;
        let docker = self.dockers.for_server(&dest.spec.server).await?;
        let secret_name = db
            .status
            .as_ref()
            .and_then(|s| s.credentials_secret.clone())
            .or(db.spec.credentials_secret_ref.clone())
            .unwrap_or_default();
        let data: BTreeMap<String, String> = self
            .secrets
            .get(&ObjectRef::new(Some(ns), &secret_name))
            .map(|s| s.spec.data.clone())
            .unwrap_or_default();
        let key = |k: &str| {
            data.get(k).cloned().ok_or_else(|| Error::Credentials {
                database: name.to_owned(),
                secret: secret_name.clone(),
                key: k.to_owned(),
            })
        };
        let creds = Credentials {
            username: key("username")?,
            password: key("password")?,
            database: key("database")?,
        };
        let labels = self.dockers.scoped(docker::Labels::from([
            (label::KIND.to_string(), "Database".to_string()),
            (label::NAMESPACE.to_string(), ns.to_string()),
            (label::NAME.to_string(), name.to_string()),
        ]));
        let container = docker
            .list_containers(&labels)
            .await?
            .into_iter()
            .find(docker::ContainerSummary::is_running)
            .ok_or_else(|| Error::NotRunning(name.to_owned()))?;
        let table = engine::engine(db.spec.engine);
        Ok(Target {
            docker,
            container: container.name,
            engine: db.spec.engine,
            dump: request(table.dump(&creds)),
            restore: request(table.restore(&creds)),
        })
    }
}
