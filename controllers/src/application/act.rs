//! The act step of an Application reconcile: runs a plan's [`Step`]s against Docker, in
//! order, and writes the status they carry.
//!
//! # Guarantees
//! - Act decides nothing: each step is one Docker change (or a status write, or an event);
//!   it only records what Docker answers that the plan could not know: the containers it
//!   created or started (for [`AppReconciler::refresh`]), the image digest of a create, and
//!   the last log lines a [`LogsInto`] asks for.
//! - The first failing step ends the run with its error; the steps before it stay done,
//!   and the next reconcile observes them.
//!
//! # Caveats
//! - A create pulls a missing image inside the reconcile, reporting progress in status
//!   (`Progressing=True reason=PullingImage`).

use std::time::Duration;

use berth_crds::{
    Object,
    kinds::{
        ApplicationSpec,
        application::{AppCondition, AppReason, ApplicationStatus},
        event::EventType,
    },
    meta::ConditionStatus,
};

use super::{
    AppReconciler, Error,
    decide::{LOG_LINES, LogsInto, Step},
    plan, set,
};
use crate::{
    docker::{self, ContainerSpec, Docker, label},
    host_files,
    object::ObjectRef,
    status, workload,
};

/// How long a file that could not be seeded waits before the next attempt.
const SEED_RETRY: Duration = Duration::from_secs(30);

impl AppReconciler {
    /// Runs `steps` in order on `docker`; records the digest of created images in
    /// `next.image_digest` (and reports pull progress from `next`). Returns the containers
    /// created or started.
    pub(super) async fn act(
        &self,
        docker: &Docker,
        obj: &Object<ApplicationSpec>,
        steps: &[Step],
        next: &mut ApplicationStatus,
    ) -> Result<Vec<String>, Error> {
        let mut touched = Vec::new();
        for step in steps {
            match step {
                Step::Replace { spec } => {
                    tracing::info!(container = %spec.name, "container differs from its spec; replacing");
                    workload::remove(docker, &spec.name).await?;
                    next.image_digest = self.create(docker, obj, spec, next).await?;
                    touched.push(spec.name.clone());
                }
                Step::Create { spec } => {
                    next.image_digest = self.create(docker, obj, spec, next).await?;
                    touched.push(spec.name.clone());
                }
                Step::Start {
                    container,
                    restarts,
                    exit_code,
                } => {
                    tracing::info!(%container, restarts, ?exit_code, "starting exited container");
                    docker.start_container(container).await?;
                    touched.push(container.clone());
                }
                Step::WaitBackoff { container, delay } => {
                    tracing::debug!(%container, delay_ms = delay.as_millis() as u64, "crash-loop backoff");
                }
                Step::AddAlias {
                    container,
                    network,
                    aliases,
                } => {
                    tracing::info!(%container, ?aliases, "ready: adding the service alias");
                    if let Err(e) = docker.disconnect_network(network, container).await {
                        tracing::debug!(%container, error = %e, "disconnect before re-attaching");
                    }
                    docker.connect_network(network, container, aliases).await?;
                }
                Step::WriteStatus { status, logs: None } => self.write(obj, status).await?,
                Step::WriteStatus {
                    status,
                    logs: Some(logs),
                } => {
                    let mut status = (**status).clone();
                    quote_logs(docker, &mut status, logs).await;
                    self.write(obj, &status).await?;
                }
                Step::AwaitProxy => {
                    tracing::debug!("waiting for the proxy to route to the new containers");
                }
                Step::RemoveOld { id, name } => {
                    tracing::info!(container = %name, "removing old container");
                    workload::remove(docker, id).await?;
                }
                Step::Warn { reason, message } => self.warn(obj, *reason, message).await,
            }
        }
        Ok(touched)
    }

    /// Creates and starts one container, pulling its image first when it is absent.
    /// Returns the image's registry digest (`repo@sha256:...`), if it has one.
    async fn create(
        &self,
        docker: &Docker,
        obj: &Object<ApplicationSpec>,
        spec: &ContainerSpec,
        next: &ApplicationStatus,
    ) -> Result<Option<String>, Error> {
        let generation = obj.generation();
        let progress = move |message: String| async move {
            let mut progress = next.clone();
            set(
                &mut progress,
                AppCondition::Progressing.as_str(),
                ConditionStatus::True,
                AppReason::PullingImage.as_str(),
                &message,
                generation,
            );
            // Progress is informative: a failed write is logged and the pull goes on.
            if let Err(e) = self.write(obj, &progress).await {
                tracing::warn!(error = %e, "cannot report pull progress");
            }
        };
        let image = workload::ensure_image(docker, &self.recorder, obj, &spec.image, progress).await?;
        for m in &spec.mounts {
            let docker::MountSpec::Volume { name, external, .. } = m else {
                continue;
            };
            if *external {
                // Docker would create a missing one with the container: refuse instead.
                if !docker.volume_exists(name).await? {
                    return Err(Error::ExternalVolumeMissing { name: name.clone() });
                }
                continue;
            }
            let mut labels = spec.labels.clone();
            labels.remove(label::REPLICA);
            labels.remove(plan::APP_HASH);
            docker.ensure_volume(name, &labels).await?;
        }
        workload::create_and_start(docker, spec).await?;
        Ok(image.repo_digests.into_iter().next())
    }

    /// Seeds `spec.files` on the server, once each ([`host_files::seed`]). On failure: the
    /// reason and message for status, and when to try again (`None`: on the next change).
    pub(super) async fn seed_files(
        &self,
        obj: &Object<ApplicationSpec>,
        server: &str,
    ) -> Result<(), (AppReason, String, Option<Duration>)> {
        let Some(root) = self.options.host_root.as_deref() else {
            let message = plan::Error::FilesNeedHostRoot.to_string();
            return Err((AppReason::HostFilesDisabled, message, None));
        };
        let local = self
            .dockers
            .servers()
            .get(&ObjectRef::cluster(server))
            .is_some_and(|s| s.spec.localhost.is_some());
        if !local {
            let message = format!(
                "spec.files: files are seeded on berth's own filesystem, so only on a localhost server, not on {server:?}"
            );
            return Err((AppReason::HostFilesDisabled, message, None));
        }
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name());
        for (i, f) in obj.spec.files.iter().enumerate() {
            let path = host_files::path_of(root, ns, name, &f.mount_path);
            if let Err(e) = host_files::seed(&format!("spec.files[{i}]"), &path, &f.content).await {
                tracing::warn!(error = %e, "cannot seed a file");
                return Err((AppReason::HostFileFailed, e.to_string(), Some(SEED_RETRY)));
            }
        }
        Ok(())
    }

    /// Writes the status.
    pub(super) async fn write(
        &self,
        obj: &Object<ApplicationSpec>,
        next: &ApplicationStatus,
    ) -> Result<(), Error> {
        status::update(&self.api, obj, next).await?;
        Ok(())
    }

    /// Records a Warning event (a failure to record is logged).
    async fn warn(&self, obj: &Object<ApplicationSpec>, reason: AppReason, message: &str) {
        workload::record(&self.recorder, obj, EventType::Warning, reason.as_str(), message).await;
    }
}

/// Appends the container's last log lines to the messages of the conditions named.
async fn quote_logs(docker: &Docker, status: &mut ApplicationStatus, logs: &LogsInto) {
    let lines = workload::last_logs(docker, &logs.container, LOG_LINES).await;
    for c in status
        .conditions
        .iter_mut()
        .filter(|c| logs.into.iter().any(|t| c.type_ == *t))
    {
        c.message.push_str(&lines);
    }
}
