//! The Database controller: runs a Database as one engine container with a persistent named
//! volume on its Destination's network, with credentials in a Secret.
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

pub mod credentials;
pub mod engine;
pub mod plan;

use std::{sync::Arc, time::Duration};

use berth_crds::{
    kinds::{
        DatabaseSpec, DestinationSpec,
        database::{DatabaseStatus, DeletionPolicy},
        event::EventType,
    },
    meta::ConditionStatus,
    registry::KindInfo,
};
use serde_json::Value;
use tracing::Instrument;

use crate::{
    client::{self, Client},
    controller::{Action, Controller, ControllerConfig, Reconciler},
    docker::{self, ContainerState, Docker, Labels, Owner, label},
    docker_triggers,
    events::Recorder,
    finalizer::{self, Event},
    informer::Informer,
    manager::Manager,
    object::{self, ObjectRef},
    server::{self, Dockers},
    status, workload,
};
use engine::{Credentials, Engine};

/// The controller's name (metrics, logs, `--disable-controllers`).
pub const NAME: &str = "database";
/// The finalizer that removes the container (and the volume with `deletionPolicy: Delete`).
pub const FINALIZER: &str = "berth.dev/database";
/// The Database informer's index of `spec.credentialsSecretRef` (`<ns>/<secret>`).
pub const SECRET_INDEX: &str = "credentials";
/// The Database informer's index of `spec.destination`.
pub const DESTINATION_INDEX: &str = "destination";
/// How long one readiness probe may run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an engine may take to first pass its probe before `Progressing=False`.
const PROGRESS_DEADLINE: Duration = Duration::from_secs(300);

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
    };
    manager.add(controller, reconciler);
    Ok(())
}

/// Why a Database cannot run yet: the condition reason and message.
struct Blocked {
    reason: &'static str,
    message: String,
}

impl DatabaseReconciler {
    fn owner_selector(&self, ns: &str, name: &str) -> Labels {
        self.dockers.scoped(Labels::from([
            (label::MANAGED.to_string(), "true".to_string()),
            (label::KIND.to_string(), "Database".to_string()),
            (label::NAMESPACE.to_string(), ns.to_string()),
            (label::NAME.to_string(), name.to_string()),
        ]))
    }

    /// The credentials: from the referenced Secret, or the generated one (created if
    /// missing).
    async fn credentials(
        &self,
        obj: &Value,
        spec: &DatabaseSpec,
        engine: &Engine,
    ) -> Result<Result<(String, Credentials), Blocked>, Error> {
        let name = object::name(obj);
        let ns = object::namespace(obj).unwrap_or_default();
        let read = |secret: &Value, secret_name: &str| match credentials::from_secret(secret, engine, name) {
            Ok(c) => Ok((secret_name.to_owned(), c)),
            Err(e) => Err(Blocked {
                reason: "InvalidCredentials",
                message: format!("spec.credentialsSecretRef: {e}"),
            }),
        };
        if let Some(r) = &spec.credentials_secret_ref {
            return Ok(match self.secrets.get(&ObjectRef::new(Some(ns), r)) {
                Some(s) => read(&s, r),
                None => Err(Blocked {
                    reason: "SecretNotFound",
                    message: format!("spec.credentialsSecretRef: secret {r:?} not found"),
                }),
            });
        }
        let secret_name = credentials::secret_name(name);
        let existing = match self.secrets.get(&ObjectRef::new(Some(ns), &secret_name)) {
            Some(s) => Some(s.as_ref().clone()),
            None => {
                let password = credentials::generate_password()?;
                let fresh = engine.default_credentials(name, password);
                let body = credentials::secret_object(obj, &fresh);
                match self.client.create(self.secret_kind, Some(ns), body).await {
                    Ok(_) => {
                        tracing::info!(secret = %secret_name, "generated the credentials secret");
                        workload::record(
                            &self.recorder,
                            self.kind,
                            obj,
                            EventType::Normal,
                            "CredentialsGenerated",
                            &format!("generated credentials into secret {secret_name}"),
                        )
                        .await;
                        return Ok(Ok((secret_name, fresh)));
                    }
                    Err(client::Error::AlreadyExists { .. }) => {
                        Some(self.client.get(self.secret_kind, Some(ns), &secret_name).await?)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let Some(secret) = existing else {
            return Ok(Err(Blocked {
                reason: "SecretNotFound",
                message: format!("secret {secret_name:?} not found"),
            }));
        };
        if !credentials::owned_by(&secret, obj) {
            return Ok(Err(Blocked {
                reason: "SecretConflict",
                message: format!(
                    "secret {secret_name:?} exists and is not owned by this database; \
                     name it in spec.credentialsSecretRef to use it"
                ),
            }));
        }
        Ok(read(&secret, &secret_name))
    }

    async fn apply(&self, obj: &Value) -> Result<Action, Error> {
        let name = object::name(obj).to_owned();
        let ns = object::namespace(obj).unwrap_or_default().to_owned();
        let db = object::typed::<DatabaseSpec>(obj).map_err(|source| Error::Malformed {
            name: name.clone(),
            source,
        })?;
        let spec = &db.spec;
        let engine = engine::engine(spec.engine);
        let generation = object::generation(obj);
        let old = db.status.clone().unwrap_or_default();
        let host = crate::application::plan::alias(&ns, &name);
        let mut next = DatabaseStatus {
            observed_generation: Some(generation),
            conditions: old.conditions.clone(),
            internal_endpoint: Some(format!("{host}:{}", engine.port)),
            connection_url_template: Some(engine.url_template(&host)),
            container: Some(plan::container_name(&ns, &name)),
            volume: Some(plan::volume_name(spec, &ns, &name)),
            ..DatabaseStatus::default()
        };

        // Where it runs, and as whom.
        let blocked = match self.destinations.get(&ObjectRef::cluster(&spec.destination)) {
            None => Err(Blocked {
                reason: "DestinationNotFound",
                message: format!("spec.destination: destination {:?} not found", spec.destination),
            }),
            Some(d) => Ok(d),
        };
        let (dest_obj, (secret_name, creds)) = match blocked {
            Ok(d) => match self.credentials(obj, spec, engine).await? {
                Ok(c) => (d, c),
                Err(b) => return self.block(obj, &mut next, generation, b).await,
            },
            Err(b) => return self.block(obj, &mut next, generation, b).await,
        };
        next.credentials_secret = Some(secret_name);
        let dest = object::typed::<DestinationSpec>(&dest_obj).map_err(|source| Error::Malformed {
            name: spec.destination.clone(),
            source,
        })?;
        let docker = match self.dockers.for_server(&dest.spec.server).await {
            Ok(d) => d,
            Err(e) => {
                let b = Blocked {
                    reason: "ServerUnavailable",
                    message: e.to_string(),
                };
                self.block(obj, &mut next, generation, b).await?;
                return Err(e.into());
            }
        };

        // What should run.
        let owner = Owner {
            kind: "Database".into(),
            namespace: ns.clone(),
            name: name.clone(),
            uid: object::uid(obj).to_owned(),
        };
        let secrets = self.secrets.clone();
        let secret_ns = ns.clone();
        let lookup = move |secret: &str, key: &str| {
            secrets
                .get(&ObjectRef::new(Some(&secret_ns), secret))
                .and_then(|s| {
                    s.pointer(&format!("/spec/data/{key}"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
        };
        let inputs = plan::Inputs {
            engine,
            owner: &owner,
            scope: &self.dockers.options.scope,
            network: &dest.spec.network,
            credentials: &creds,
            secret: &lookup,
        };
        let want = match plan::container(spec, &inputs) {
            Ok(c) => c,
            Err(e) => {
                let reason = match e {
                    plan::Error::Env(_) => "SecretNotFound",
                    plan::Error::ReservedEnv { .. } => "InvalidSpec",
                };
                let b = Blocked {
                    reason,
                    message: e.to_string(),
                };
                return self.block(obj, &mut next, generation, b).await;
            }
        };
        next.public_endpoint = spec.public_port.map(|p| format!("{}:{p}", dest.spec.server));

        // Converge: one container, this config, running.
        let hash = want.config_hash();
        let mut state = match docker.inspect_container(&want.name).await {
            Ok(s) => Some(s),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(s) = &state
            && !self.manages(s)
        {
            let b = Blocked {
                reason: "ContainerConflict",
                message: format!(
                    "a container named {} exists and is not a berth Database container; \
                     remove or rename it",
                    want.name
                ),
            };
            return self.block(obj, &mut next, generation, b).await;
        }
        let replace = state.as_ref().is_some_and(|s| {
            s.labels.get(label::CONFIG_HASH) != Some(&hash) || s.labels.get(label::UID) != Some(&owner.uid)
        });
        // The image first: one that cannot be pulled never takes the running engine down.
        let pulled = if state.is_none() || replace {
            let progress = |message: String| {
                let mut progress = next.clone();
                set(
                    &mut progress,
                    "Progressing",
                    ConditionStatus::True,
                    "PullingImage",
                    &message,
                    generation,
                );
                async move {
                    // Informative: a failed write is logged and the pull goes on.
                    if let Err(e) = self.write(obj, &progress).await {
                        tracing::warn!(error = %e, "cannot report pull progress");
                    }
                }
            };
            workload::ensure_image(&docker, &self.recorder, self.kind, obj, &want.image, progress)
                .await
                .map(|_| ())
        } else {
            Ok(())
        };
        if let Err(e) = pulled {
            if let workload::Error::ImagePull { .. } = e {
                let message = e.to_string();
                if replace {
                    let kept = format!("{message}; the running container is kept");
                    set(
                        &mut next,
                        "Progressing",
                        ConditionStatus::False,
                        "ImagePullFailed",
                        &kept,
                        generation,
                    );
                    self.write(obj, &next).await?;
                } else {
                    let b = Blocked {
                        reason: "ImagePullFailed",
                        message,
                    };
                    self.block(obj, &mut next, generation, b).await?;
                }
            }
            return Err(e.into());
        }
        if replace {
            tracing::info!(container = %want.name, "config changed: restarting the database on its volume");
            workload::record(
                &self.recorder,
                self.kind,
                obj,
                EventType::Normal,
                "Restarting",
                &format!("configuration changed: replacing container {}", want.name),
            )
            .await;
            stop_and_remove(&docker, &want.name).await?;
            state = None;
        }
        let state = match state {
            None => {
                docker
                    .ensure_volume(
                        &plan::volume_name(spec, &ns, &name),
                        &plan::labels(&owner, &self.dockers.options.scope),
                    )
                    .await?;
                workload::create_and_start(&docker, &want).await?;
                workload::record(
                    &self.recorder,
                    self.kind,
                    obj,
                    EventType::Normal,
                    "Started",
                    &format!("started container {} ({})", want.name, want.image),
                )
                .await;
                docker.inspect_container(&want.name).await?
            }
            Some(s) if !s.running && s.status != "restarting" => {
                tracing::info!(container = %want.name, status = %s.status, "starting the stopped database container");
                docker.start_container(&want.name).await?;
                docker.inspect_container(&want.name).await?
            }
            Some(s) => s,
        };
        next.image = Some(format!("{}@{}", state.image, state.image_id));

        // Ready: the engine's own probe.
        let ready = state.running && self.probe(&docker, &want.name, engine, &creds).await;
        let since = old
            .conditions
            .iter()
            .find(|c| c.type_ == "Progressing" && c.status == ConditionStatus::True)
            .map(|c| c.last_transition_time);
        if ready {
            set(
                &mut next,
                "Ready",
                ConditionStatus::True,
                "EngineReady",
                "the engine answers its readiness probe",
                generation,
            );
            set(
                &mut next,
                "Progressing",
                ConditionStatus::False,
                "Available",
                &format!("running config {}", &hash[..12]),
                generation,
            );
            self.write(obj, &next).await?;
            return Ok(Action::await_change());
        }
        set(
            &mut next,
            "Ready",
            ConditionStatus::False,
            "Starting",
            "waiting for the engine's readiness probe",
            generation,
        );
        let overdue =
            since.is_some_and(|t| (status::now() - t).to_std().unwrap_or_default() >= PROGRESS_DEADLINE);
        if overdue {
            let logs = workload::last_logs(&docker, &want.name, 10).await;
            let message = format!(
                "not ready within {}s; last log lines:\n{logs}",
                PROGRESS_DEADLINE.as_secs()
            );
            if old
                .conditions
                .iter()
                .any(|c| c.type_ == "Progressing" && c.status == ConditionStatus::True)
            {
                workload::record(
                    &self.recorder,
                    self.kind,
                    obj,
                    EventType::Warning,
                    "ProbeFailed",
                    "the engine did not become ready",
                )
                .await;
            }
            set(
                &mut next,
                "Progressing",
                ConditionStatus::False,
                "ProbeFailed",
                &message,
                generation,
            );
            self.write(obj, &next).await?;
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        set(
            &mut next,
            "Progressing",
            ConditionStatus::True,
            "Starting",
            &format!("starting config {}", &hash[..12]),
            generation,
        );
        self.write(obj, &next).await?;
        Ok(Action::requeue(Duration::from_millis(500)))
    }

    /// Whether `c` is a Database container of this berth (managed, kind, scope): only those
    /// are ever replaced.
    fn manages(&self, c: &ContainerState) -> bool {
        let is = |k: &str, v: &str| c.labels.get(k).map(String::as_str) == Some(v);
        is(label::MANAGED, "true")
            && is(label::KIND, "Database")
            && self.dockers.options.scope.iter().all(|(k, v)| is(k, v))
    }

    /// Runs the engine's readiness probe in `container`.
    async fn probe(&self, docker: &Docker, container: &str, engine: &Engine, creds: &Credentials) -> bool {
        let plan = engine.ready(creds);
        let argv: Vec<&str> = plan.argv.iter().map(String::as_str).collect();
        match tokio::time::timeout(
            PROBE_TIMEOUT,
            docker.exec_with_env(container, &argv, &plan.env_strings()),
        )
        .await
        {
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

    /// Records `b` as Ready/Progressing=False and waits for a change.
    async fn block(
        &self,
        obj: &Value,
        next: &mut DatabaseStatus,
        generation: i64,
        b: Blocked,
    ) -> Result<Action, Error> {
        set(
            next,
            "Ready",
            ConditionStatus::False,
            b.reason,
            &b.message,
            generation,
        );
        set(
            next,
            "Progressing",
            ConditionStatus::False,
            b.reason,
            &b.message,
            generation,
        );
        self.write(obj, next).await?;
        Ok(Action::await_change())
    }

    async fn cleanup(&self, obj: &Value) -> Result<Action, Error> {
        let name = object::name(obj).to_owned();
        let ns = object::namespace(obj).unwrap_or_default().to_owned();
        let docker = self.dockers.for_cleanup(&self.destinations, obj).await?;
        for c in docker.list_containers(&self.owner_selector(&ns, &name)).await? {
            tracing::info!(container = %c.name, "stopping and removing the database container");
            stop_and_remove(&docker, &c.id).await?;
        }
        // Cleanup copes with a spec that no longer parses: the volume is then kept.
        match object::typed::<DatabaseSpec>(obj) {
            Ok(db) if db.spec.deletion_policy == DeletionPolicy::Delete => {
                let volume = plan::volume_name(&db.spec, &ns, &name);
                match docker.remove_volume(&volume).await {
                    Ok(()) => tracing::info!(%volume, "removed the data volume (deletionPolicy: Delete)"),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "malformed database: keeping its volume"),
        }
        Ok(Action::await_change())
    }

    async fn write(&self, obj: &Value, next: &DatabaseStatus) -> Result<(), Error> {
        status::update::<DatabaseSpec>(self.client.as_ref(), self.kind, obj, next).await?;
        Ok(())
    }
}

/// Stops a container cleanly (the engine flushes) and removes it; one already gone is fine.
async fn stop_and_remove(docker: &Docker, container: &str) -> Result<(), docker::Error> {
    match docker
        .stop_container(container, Some(plan::STOP_TIMEOUT_SECS))
        .await
    {
        Ok(()) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => tracing::warn!(container, error = %e, "cannot stop cleanly; removing anyway"),
    }
    workload::remove(docker, container).await
}

fn set(
    next: &mut DatabaseStatus,
    type_: &str,
    s: ConditionStatus,
    reason: &str,
    message: &str,
    generation: i64,
) {
    status::set_now(&mut next.conditions, type_, s, reason, message, generation);
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
                    Event::Cleanup(obj) => self.cleanup(&obj).await,
                }
            },
        )
        .instrument(span)
        .await
    }
}
