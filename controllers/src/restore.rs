//! The Restore controller: replays one Backup into a Database — storage → gunzip → the
//! engine's restore tool on stdin through `docker exec` — and records the outcome.
//!
//! # Guarantees
//! - Phases move Pending → Running → Succeeded | Failed, once. The Backup must have
//!   succeeded; its sha256 is recomputed while streaming and a mismatch fails the restore.
//! - Streamed with bounded memory ([`crate::backup::pipeline::restore`]).
//! - A Restore found Running when no run is alive is marked Failed with reason
//!   `Interrupted` (the database may hold part of the backup: restore again).
//! - A failed restore is a Warning event (`RestoreFailed`).
//!
//! # Caveats
//! - The run happens inside the reconcile and holds one worker.

use std::sync::Arc;

use berth_crds::{
    Object,
    kinds::{
        BackupSpec, RestoreSpec,
        backup::BackupPhase,
        restore::{RestorePhase, RestoreStatus},
    },
};
use berth_runtime::Api;

use crate::{
    backup::{self, open::Opener, pipeline, target::Resolver},
    client,
    controller::{Action, Controller, ControllerConfig, Reconciler},
    dockers::Dockers,
    events::Recorder,
    informer::Informer,
    manager::Manager,
    object::ObjectRef,
    status,
};

/// The controller's name (metrics, logs).
pub const NAME: &str = "restore";

/// A failed Restore reconcile (the run's own failure is recorded in status, not here).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API failed.
    #[error(transparent)]
    Api(#[from] client::Error),
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
}

/// Reconciles Restores.
pub struct RestoreReconciler {
    api: Api<RestoreSpec>,
    backups: Informer<BackupSpec>,
    opener: Opener,
    resolver: Resolver,
    recorder: Recorder,
}

/// Adds the Restore controller to `manager`.
pub fn install(manager: &mut Manager, config: ControllerConfig, dockers: Dockers) {
    let restores = manager.informer::<RestoreSpec>();
    let backups = manager.informer::<BackupSpec>();
    let (opener, resolver) = backup::caches(manager, dockers);
    let controller = backup::reading(
        Controller::new(NAME, restores)
            .with_config(config)
            .reads(&backups),
        &opener,
        Some(&resolver),
    );
    let reconciler = RestoreReconciler {
        api: manager.api_for(NAME),
        backups,
        opener,
        resolver,
        recorder: Recorder::new(manager.client_for(NAME), "restore-controller"),
    };
    manager.add(controller, reconciler);
}

impl RestoreReconciler {
    async fn write(
        &self,
        obj: &Object<RestoreSpec>,
        next: &RestoreStatus,
    ) -> Result<Object<RestoreSpec>, Error> {
        Ok(backup::write_status(&self.api, obj, next).await?)
    }

    async fn fail(
        &self,
        obj: &Object<RestoreSpec>,
        mut next: RestoreStatus,
        reason: &str,
        message: String,
    ) -> Result<Action, Error> {
        next.phase = RestorePhase::Failed;
        next.completion_time = Some(status::now());
        backup::set_outcome(&mut next.conditions, false, reason, &message, obj.generation());
        next.error = Some(message.clone());
        self.write(obj, &next).await?;
        backup::report_failure(&self.recorder, obj, "RestoreFailed", reason, &message).await;
        Ok(Action::await_change())
    }

    /// The storage name and path to read `spec.backup` from.
    fn source(&self, ns: &str, spec: &RestoreSpec) -> Result<(String, String, Option<String>), String> {
        let bk = self
            .backups
            .get(&ObjectRef::new(Some(ns), &spec.backup))
            .ok_or_else(|| format!("spec.backup: backup {:?} not found", spec.backup))?;
        let st = bk.status.clone().unwrap_or_default();
        if st.phase != BackupPhase::Succeeded {
            return Err(format!(
                "spec.backup: backup {:?} has not succeeded (phase {:?})",
                spec.backup, st.phase
            ));
        }
        let location = st
            .locations
            .iter()
            .find(|l| spec.storage.as_ref().is_none_or(|s| *s == l.storage))
            .ok_or_else(|| {
                format!(
                    "spec.storage: backup {:?} has no copy in storage {:?}",
                    spec.backup,
                    spec.storage.clone().unwrap_or_default()
                )
            })?;
        Ok((location.storage.clone(), location.path.clone(), st.sha256))
    }

    async fn run(&self, obj: &Object<RestoreSpec>, mut next: RestoreStatus) -> Result<Action, Error> {
        let spec = &obj.spec;
        let ns = obj.namespace().unwrap_or_default().to_owned();
        next.observed_generation = Some(obj.generation());
        next.phase = RestorePhase::Running;
        next.start_time = Some(status::now());
        let (storage_name, path, sha256) = match self.source(&ns, spec) {
            Ok(s) => s,
            Err(message) => return self.fail(obj, next, "BackupUnavailable", message).await,
        };
        next.source = Some(format!("{storage_name}:{path}"));
        let obj = self.write(obj, &next).await?;
        let target = match self.resolver.resolve(&ns, &spec.database).await {
            Ok(t) => t,
            Err(e) => return self.fail(&obj, next, "DatabaseUnavailable", e.to_string()).await,
        };
        let stream = match self.opener.open(&storage_name) {
            Ok(s) => s
                .read(&path)
                .await
                .map_err(|e| format!("storage {storage_name}: {e}")),
            Err(e) => Err(e.to_string()),
        };
        let stream = match stream {
            Ok(s) => s,
            Err(message) => return self.fail(&obj, next, "StorageUnavailable", message).await,
        };
        tracing::info!(database = %spec.database, backup = %spec.backup, "restore started");
        let restored = pipeline::restore(
            &target.docker,
            &target.container,
            &target.restore,
            stream,
            sha256.as_deref(),
        )
        .await;
        match restored {
            Ok(bytes) => {
                next.phase = RestorePhase::Succeeded;
                next.completion_time = Some(status::now());
                next.restored_bytes = Some(bytes);
                next.error = None;
                let message = format!("{bytes} bytes restored from backup {}", spec.backup);
                backup::set_outcome(
                    &mut next.conditions,
                    true,
                    "Succeeded",
                    &message,
                    obj.generation(),
                );
                self.write(&obj, &next).await?;
                tracing::info!(bytes, "restore succeeded");
                Ok(Action::await_change())
            }
            Err(e) => self.fail(&obj, next, "RestoreFailed", e.to_string()).await,
        }
    }

    async fn interrupted(&self, obj: &Object<RestoreSpec>) -> Result<Action, Error> {
        // The cache may lag behind this process's own final write: read it fresh.
        let fresh = self.api.within(obj.namespace()).get(obj.name()).await?;
        let current = fresh.status.clone().unwrap_or_default();
        if current.phase != RestorePhase::Running {
            return Ok(Action::await_change());
        }
        let message =
            "interrupted: the run stopped before it finished; the database may hold part of the backup"
                .to_string();
        self.fail(&fresh, current, "Interrupted", message).await
    }
}

#[async_trait::async_trait]
impl Reconciler<RestoreSpec> for RestoreReconciler {
    type Error = Error;

    async fn reconcile(&self, obj: Arc<Object<RestoreSpec>>) -> Result<Action, Self::Error> {
        if obj.is_deleting() {
            return Ok(Action::await_change());
        }
        let current = obj.status.clone().unwrap_or_default();
        match current.phase {
            RestorePhase::Succeeded | RestorePhase::Failed => Ok(Action::await_change()),
            RestorePhase::Running => self.interrupted(&obj).await,
            RestorePhase::Pending => self.run(&obj, current).await,
        }
    }
}
