//! The Database controller's writes: runs the [`Step`]s of a plan against the API and
//! Docker, records what each found in [`Observed`], and ends a reconcile as its
//! [`Outcome`] says; also the finalizer's cleanup.
//!
//! # Guarantees
//! - Decides nothing: every step does what it names, in order; the only branch is that a
//!   failed pull or an unusable server ends the steps and is kept as a fact (and its error
//!   returned if the outcome says `fail`). Any other failure ends the reconcile with its
//!   error, as before any status write.
//! - A replaced container is stopped cleanly ([`plan::STOP_TIMEOUT_SECS`]) before it is
//!   removed; the volume is never removed except by [`cleanup`] under
//!   `deletionPolicy: Delete`.
//!
//! # Caveats
//! - Pull progress is written to status while the pull runs; a failed progress write is
//!   logged and the pull goes on.

use berth_crds::{
    Object,
    kinds::{
        DatabaseSpec,
        database::{DatabaseReason, DatabaseStatus, DeletionPolicy},
        event::EventType,
    },
};

use super::{
    DatabaseReconciler, Error, credentials,
    decide::{self, DockerFacts, Observed, Outcome, PullFacts, RollReason, SecretFacts, Step},
    engine, observe, plan,
};
use crate::{
    client,
    controller::Action,
    docker::{self, Docker, Labels, label},
    status, workload,
};

/// Runs the plans of one reconcile of Database `obj`.
pub struct Act<'a> {
    r: &'a DatabaseReconciler,
    obj: &'a Object<DatabaseSpec>,
    docker: Option<Docker>,
    /// The error of the step that ended a list, returned if the outcome says `fail`.
    failed: Option<Error>,
}

impl<'a> Act<'a> {
    /// An actor for one reconcile of `obj`.
    pub fn new(r: &'a DatabaseReconciler, obj: &'a Object<DatabaseSpec>) -> Self {
        Self {
            r,
            obj,
            docker: None,
            failed: None,
        }
    }

    fn docker(&self) -> Result<&Docker, Error> {
        self.docker
            .as_ref()
            .ok_or(Error::Internal("a docker step was planned before connecting"))
    }

    /// Runs `steps` in order, recording what they found in `o`.
    pub async fn run(&mut self, steps: Vec<Step>, o: &mut Observed) -> Result<(), Error> {
        for step in steps {
            match step {
                Step::GenerateCredentials { secret } => o.secret = self.generate(&secret, o).await?,
                Step::Connect { server } => match self.r.dockers.for_server(&server).await {
                    Ok(d) => {
                        self.docker = Some(d);
                        o.docker = DockerFacts::Connected;
                    }
                    Err(e) => {
                        o.docker = DockerFacts::Unavailable(e.to_string());
                        self.failed = Some(e.into());
                        return Ok(());
                    }
                },
                Step::Inspect { container } => {
                    o.docker = observe::container(self.docker()?, &container).await?;
                }
                Step::PullImage { image, progress } => {
                    let generation = o.id.generation;
                    let this = &*self;
                    let report = |message: String| {
                        let next = decide::pulling(&progress, &message, generation, status::now());
                        async move {
                            // Informative: a failed write is logged and the pull goes on.
                            if let Err(e) = this.write(&next).await {
                                tracing::warn!(error = %e, "cannot report pull progress");
                            }
                        }
                    };
                    let docker = this.docker()?;
                    match workload::ensure_image(docker, &this.r.recorder, this.obj, &image, report).await {
                        Ok(_) => o.pull = Some(PullFacts::Pulled),
                        Err(e @ workload::Error::ImagePull { .. }) => {
                            o.pull = Some(PullFacts::Failed(e.to_string()));
                            self.failed = Some(e.into());
                            return Ok(());
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Step::Recreate { container, reason } => {
                    match &reason {
                        RollReason::Image { from, to } => {
                            tracing::info!(%container, %from, %to, "image changed: restarting the database on its volume");
                        }
                        RollReason::Owner | RollReason::Config => {
                            tracing::info!(%container, ?reason, "config changed: restarting the database on its volume");
                        }
                    }
                    self.record(
                        EventType::Normal,
                        DatabaseReason::Restarting,
                        &format!("configuration changed: replacing container {container}"),
                    )
                    .await;
                    stop_and_remove(self.docker()?, &container).await?;
                    o.docker = DockerFacts::Inspected(None);
                }
                Step::Create {
                    volume,
                    volume_labels,
                    container,
                } => {
                    let docker = self.docker()?;
                    docker.ensure_volume(&volume, &volume_labels).await?;
                    workload::create_and_start(docker, &container).await?;
                    self.record(
                        EventType::Normal,
                        DatabaseReason::Started,
                        &format!("started container {} ({})", container.name, container.image),
                    )
                    .await;
                    o.docker = observe::existing(self.docker()?, &container.name).await?;
                    o.converged = true;
                }
                Step::Start { container } => {
                    tracing::info!(%container, "starting the stopped database container");
                    let docker = self.docker()?;
                    docker.start_container(&container).await?;
                    o.docker = observe::existing(docker, &container).await?;
                    o.converged = true;
                }
                Step::Probe { container, exec } => {
                    o.probe = Some(observe::probe(self.docker()?, &container, &exec).await);
                }
                Step::ReadLogs { container } => {
                    o.logs = Some(observe::logs(self.docker()?, &container).await);
                }
            }
        }
        Ok(())
    }

    /// Records the outcome's events, writes its status, and ends the reconcile.
    pub async fn finish(mut self, outcome: Outcome) -> Result<Action, Error> {
        for note in &outcome.events {
            self.record(note.type_, note.reason, &note.message).await;
        }
        self.write(&outcome.status).await?;
        if outcome.fail {
            return Err(self
                .failed
                .take()
                .unwrap_or(Error::Internal("a failed outcome without a failed step")));
        }
        Ok(match outcome.requeue {
            Some(after) => Action::requeue(after),
            None => Action::await_change(),
        })
    }

    /// Generates credentials into the Secret `secret` (or adopts one created meanwhile).
    async fn generate(&self, secret: &str, o: &Observed) -> Result<SecretFacts, Error> {
        let engine = engine::engine(o.spec.engine);
        let password = credentials::generate_password()?;
        let fresh = engine.default_credentials(&o.id.name, password);
        let body = credentials::secret_object(self.obj, &fresh);
        let secrets = self.r.secrets_api.within(Some(o.id.namespace.as_str()));
        match secrets.create(&body).await {
            Ok(_) => {
                tracing::info!(%secret, "generated the credentials secret");
                self.record(
                    EventType::Normal,
                    DatabaseReason::CredentialsGenerated,
                    &format!("generated credentials into secret {secret}"),
                )
                .await;
                Ok(SecretFacts::Generated(fresh))
            }
            Err(client::Error::AlreadyExists { .. }) => {
                let existing = secrets.get(secret).await?;
                Ok(observe::secret_facts(&existing, self.obj, engine))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn record(&self, type_: EventType, reason: DatabaseReason, message: &str) {
        workload::record(&self.r.recorder, self.obj, type_, reason.as_str(), message).await;
    }

    async fn write(&self, next: &DatabaseStatus) -> Result<(), Error> {
        status::update(&self.r.api, self.obj, next).await?;
        Ok(())
    }
}

/// The finalizer's cleanup: stops and removes the Database's containers, and its volume
/// under `deletionPolicy: Delete`.
pub async fn cleanup(r: &DatabaseReconciler, db: &Object<DatabaseSpec>) -> Result<Action, Error> {
    let name = db.name().to_owned();
    let ns = db.namespace().unwrap_or_default().to_owned();
    let docker = r
        .dockers
        .for_cleanup(&r.destinations, &db.spec.destination)
        .await?;
    let selector = r.dockers.scoped(Labels::from([
        (label::MANAGED.to_string(), "true".to_string()),
        (label::KIND.to_string(), "Database".to_string()),
        (label::NAMESPACE.to_string(), ns.clone()),
        (label::NAME.to_string(), name.clone()),
    ]));
    for c in docker.list_containers(&selector).await? {
        tracing::info!(container = %c.name, "stopping and removing the database container");
        stop_and_remove(&docker, &c.id).await?;
    }
    if db.spec.deletion_policy == DeletionPolicy::Delete {
        let volume = plan::volume_name(&db.spec, &ns, &name);
        match docker.remove_volume(&volume).await {
            Ok(()) => tracing::info!(%volume, "removed the data volume (deletionPolicy: Delete)"),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::await_change())
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
