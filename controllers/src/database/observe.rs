//! The Database controller's reads: the caches (Destination, credentials and env Secrets)
//! and Docker (connection, container, readiness probe, logs) into the plain, typed facts
//! of [`Observed`].
//!
//! # Guarantees
//! - Reads only, and decides nothing: every fact is passed on as found (a failed probe is
//!   `false`, with the cause logged at debug level).
//! - Secret values reach [`Observed`] only as credentials or as the env values the spec
//!   asks for; nothing here logs them.
//!
//! # Caveats
//! - The caches may lag the API by a watch event; the reconcile is re-run on every change.

use std::{collections::BTreeMap, time::Duration};

use berth_crds::{
    Object,
    kinds::{DatabaseSpec, DestinationSpec, SecretSpec, database::DatabaseStatus},
};

use super::{
    credentials,
    engine::{Credentials, Engine, ExecPlan},
};
use crate::{
    docker::{self, Docker, Labels},
    informer::Informer,
    object::ObjectRef,
    workload,
};

/// How long one readiness probe may run.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many log lines an overdue engine's condition quotes.
pub const LOG_LINES: usize = 10;

/// The Database being reconciled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid (containers carry it as a label).
    pub uid: String,
    /// Its `metadata.generation`.
    pub generation: i64,
}

/// The credentials Secret as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretFacts {
    /// No such Secret.
    Missing,
    /// The Secret exists.
    Found {
        /// Whether the Database owns it.
        owned: bool,
        /// The credentials it holds, or why it holds none.
        credentials: Result<Credentials, String>,
    },
    /// This reconcile generated it with these credentials.
    Generated(Credentials),
}

/// Whether a container runs, as Docker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerRun {
    /// The main process runs.
    Running,
    /// Docker is restarting it under its restart policy.
    Restarting,
    /// Created, exited, dead...: not running and not coming back by itself.
    Stopped,
}

/// The container of the Database's name, as inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFacts {
    /// Its labels.
    pub labels: Labels,
    /// Whether it runs.
    pub run: ContainerRun,
    /// The image reference it was created from.
    pub image: String,
    /// The local image ID.
    pub image_id: String,
}

/// What is known of the destination's Docker daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerFacts {
    /// Not connected yet.
    Unknown,
    /// The server cannot be used: why.
    Unavailable(String),
    /// Connected; the container not inspected yet.
    Connected,
    /// The container of the Database's name, if there is one.
    Inspected(Option<ContainerFacts>),
}

/// How pulling the image went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullFacts {
    /// The daemon has the image.
    Pulled,
    /// It could not be pulled: the daemon's words.
    Failed(String),
}

/// Everything the decision reads: what observe found, and what the steps so far did.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The Database.
    pub id: Identity,
    /// Its spec.
    pub spec: DatabaseSpec,
    /// Its status as stored when the reconcile began.
    pub status: DatabaseStatus,
    /// The scope labels of this berth.
    pub scope: Labels,
    /// The Destination `spec.destination` names, if it exists.
    pub destination: Option<DestinationSpec>,
    /// The credentials Secret.
    pub secret: SecretFacts,
    /// The values `spec.env`'s secret references resolve to, by `(secret, key)`.
    pub env_secrets: BTreeMap<(String, String), String>,
    /// The Docker daemon and the container.
    pub docker: DockerFacts,
    /// How pulling the image went, once it was tried.
    pub pull: Option<PullFacts>,
    /// Whether this reconcile created, started or replaced the container.
    pub converged: bool,
    /// Whether the engine answered its readiness probe, once it was run.
    pub probe: Option<bool>,
    /// The container's last log lines, once read.
    pub logs: Option<String>,
}

/// The caches a Database reconcile reads.
pub struct Caches<'a> {
    /// Secrets (credentials and env references).
    pub secrets: &'a Informer<SecretSpec>,
    /// Destinations.
    pub destinations: &'a Informer<DestinationSpec>,
}

/// What the caches say about Database `db`; Docker is not read yet
/// ([`DockerFacts::Unknown`]).
pub fn caches(db: &Object<DatabaseSpec>, scope: &Labels, caches: &Caches<'_>, engine: &Engine) -> Observed {
    let spec = &db.spec;
    let name = db.name().to_owned();
    let ns = db.namespace().unwrap_or_default().to_owned();
    let destination = caches
        .destinations
        .get(&ObjectRef::cluster(&spec.destination))
        .map(|d| d.spec.clone());
    let secret_name = spec
        .credentials_secret_ref
        .clone()
        .unwrap_or_else(|| credentials::secret_name(&name));
    let secret = match caches.secrets.get(&ObjectRef::new(Some(&ns), &secret_name)) {
        Some(s) => secret_facts(&s, db, engine),
        None => SecretFacts::Missing,
    };
    let mut env_secrets = BTreeMap::new();
    for r in spec.env.iter().filter_map(|v| v.secret_key_ref.as_ref()) {
        let value = caches
            .secrets
            .get(&ObjectRef::new(Some(&ns), &r.name))
            .and_then(|s| s.spec.data.get(&r.key).cloned());
        if let Some(value) = value {
            env_secrets.insert((r.name.clone(), r.key.clone()), value);
        }
    }
    Observed {
        id: Identity {
            namespace: ns,
            name,
            uid: db.uid().to_owned(),
            generation: db.generation(),
        },
        spec: spec.clone(),
        status: db.status.clone().unwrap_or_default(),
        scope: scope.clone(),
        destination,
        secret,
        env_secrets,
        docker: DockerFacts::Unknown,
        pull: None,
        converged: false,
        probe: None,
        logs: None,
    }
}

/// The facts of credentials Secret `secret` for Database `db`.
pub fn secret_facts(secret: &Object<SecretSpec>, db: &Object<DatabaseSpec>, engine: &Engine) -> SecretFacts {
    SecretFacts::Found {
        owned: credentials::owned_by(secret, db),
        credentials: credentials::from_secret(secret, engine, db.name()).map_err(|e| e.to_string()),
    }
}

/// The container named `name`, if there is one.
pub async fn container(docker: &Docker, name: &str) -> Result<DockerFacts, docker::Error> {
    match docker.inspect_container(name).await {
        Ok(s) => Ok(DockerFacts::Inspected(Some(facts(s)))),
        Err(e) if e.is_not_found() => Ok(DockerFacts::Inspected(None)),
        Err(e) => Err(e),
    }
}

/// Whether the engine's readiness probe `exec` passes in `container` within
/// [`PROBE_TIMEOUT`].
pub async fn probe(docker: &Docker, container: &str, exec: &ExecPlan) -> bool {
    let argv: Vec<&str> = exec.argv.iter().map(String::as_str).collect();
    let env = exec.env_strings();
    let run = docker.exec_with_env(container, &argv, &env);
    match tokio::time::timeout(PROBE_TIMEOUT, run).await {
        Ok(Ok(out)) if out.exit_code == 0 => true,
        Ok(Ok(out)) => {
            tracing::debug!(container, exit_code = out.exit_code, "not ready yet");
            false
        }
        Ok(Err(e)) => {
            tracing::debug!(container, error = %e, "readiness probe failed to run");
            false
        }
        Err(_) => {
            tracing::debug!(container, "readiness probe timed out");
            false
        }
    }
}

/// The last [`LOG_LINES`] log lines of `container`.
pub async fn logs(docker: &Docker, container: &str) -> String {
    workload::last_logs(docker, container, LOG_LINES).await
}

/// The container named `name`, which must exist (it was just created or started).
pub async fn existing(docker: &Docker, name: &str) -> Result<DockerFacts, docker::Error> {
    let s = docker.inspect_container(name).await?;
    Ok(DockerFacts::Inspected(Some(facts(s))))
}

fn facts(s: docker::ContainerState) -> ContainerFacts {
    ContainerFacts {
        run: if s.running {
            ContainerRun::Running
        } else if s.is_restarting() {
            ContainerRun::Restarting
        } else {
            ContainerRun::Stopped
        },
        labels: s.labels,
        image: s.image,
        image_id: s.image_id,
    }
}
