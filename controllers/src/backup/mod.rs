//! The Backup controller: runs one backup of a Database — the engine's dump tool through
//! `docker exec`, gzip'd and checksummed on the fly into every listed BackupStorage — and
//! records the outcome in the Backup's status.
//!
//! # Guarantees
//! - Phases move Pending → Running → Succeeded | Failed, once; a finished Backup is never
//!   run again. Status has start and completion times, size and sha256 of the stored file,
//!   one location per storage, and on failure the error (the tool's exit code and stderr,
//!   or the storage's own message) with condition `Failed` naming the reason.
//! - Streamed end to end with bounded memory ([`pipeline`]); uploads are committed only
//!   when the dump tool exited 0, and recorded in `status.pending` while they run.
//! - A Backup found Running when no run is alive (berth was killed or lost leadership
//!   mid-run) is marked Failed with reason `Interrupted`, and the `.partial` files and S3
//!   multipart uploads listed in `status.pending` are removed or aborted (the error names
//!   any that could not be). Workers start only once every cache a run reads has listed.
//! - A failed backup is a Warning event (`BackupFailed`) on the Backup.
//!
//! # Caveats
//! - The run happens inside the reconcile: each running backup holds one of the
//!   controller's [`WORKERS`] workers.
//! - Deleting a Backup by hand leaves its files; retention ([`crate::backup_schedule`])
//!   deletes both.

pub mod open;
pub mod pipeline;
pub mod storage;
pub mod target;

use std::sync::Arc;

use berth_crds::{
    Object, Resource,
    kinds::{
        BackupSpec, BackupStorageSpec, DatabaseSpec, DestinationSpec, SecretSpec, ServerSpec,
        backup::{BackupLocation, BackupPhase, BackupStatus, PendingUpload},
        event::EventType,
    },
    meta::{Condition, ConditionStatus},
};
use berth_runtime::Api;

use crate::{
    client,
    controller::{Action, Controller, ControllerConfig, Reconciler},
    dockers::Dockers,
    events::Recorder,
    manager::Manager,
    status,
};
use open::Opener;
use target::Resolver;

/// The controller's name (metrics, logs).
pub const NAME: &str = "backup";
/// The label naming the BackupSchedule that created a Backup.
pub const SCHEDULE_LABEL: &str = "berth.dev/backup-schedule";
/// Concurrent backups (of different Backups).
pub const WORKERS: usize = 4;

/// A failed Backup reconcile (the run's own failure is recorded in status, not here).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API failed.
    #[error(transparent)]
    Api(#[from] client::Error),
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
}

/// Reconciles Backups.
pub struct BackupReconciler {
    api: Api<BackupSpec>,
    opener: Opener,
    resolver: Resolver,
    recorder: Recorder,
}

/// The caches every backup-related controller reads.
pub(crate) fn caches(manager: &mut Manager, dockers: Dockers) -> (Opener, Resolver) {
    let secrets = manager.informer::<SecretSpec>();
    let opener = Opener {
        storages: manager.informer::<BackupStorageSpec>(),
        secrets: secrets.clone(),
        servers: manager.informer::<ServerSpec>(),
    };
    let resolver = Resolver {
        databases: manager.informer::<DatabaseSpec>(),
        destinations: manager.informer::<DestinationSpec>(),
        secrets,
        dockers,
    };
    (opener, resolver)
}

/// Makes `controller` start only once every cache that `opener` and `resolver` read has
/// listed (changes to them trigger nothing by themselves). Without it a reconcile right
/// after a restart could find a storage's Server or Secret missing from a cache that has
/// not listed yet, and fail a run (or skip an interrupted run's cleanup) for nothing.
pub(crate) fn reading<K: Resource>(
    controller: Controller<K>,
    opener: &Opener,
    resolver: Option<&Resolver>,
) -> Controller<K> {
    let controller = controller
        .reads(&opener.storages)
        .reads(&opener.secrets)
        .reads(&opener.servers);
    match resolver {
        Some(r) => controller.reads(&r.databases).reads(&r.destinations),
        None => controller,
    }
}

/// Adds the Backup controller to `manager`.
pub fn install(manager: &mut Manager, config: ControllerConfig, dockers: Dockers) {
    let backups = manager.informer::<BackupSpec>();
    let (opener, resolver) = caches(manager, dockers);
    let controller = reading(
        Controller::new(NAME, backups)
            .with_config(config)
            .workers(WORKERS),
        &opener,
        Some(&resolver),
    );
    let reconciler = BackupReconciler {
        api: manager.api_for(NAME),
        opener,
        resolver,
        recorder: Recorder::new(manager.client_for(NAME), "backup-controller"),
    };
    manager.add(controller, reconciler);
}

/// Sets the terminal condition of a run: `Complete` on success, else `Failed` with `reason`.
pub(crate) fn set_outcome(
    conditions: &mut Vec<Condition>,
    ok: bool,
    reason: &str,
    message: &str,
    generation: i64,
) {
    let type_ = if ok { "Complete" } else { "Failed" };
    status::set_now(
        conditions,
        type_,
        ConditionStatus::True,
        reason,
        message,
        generation,
    );
}

/// Writes a run's status through `/status` and returns `obj` as it now is (for the next
/// diff of the same run).
pub(crate) async fn write_status<K: Resource>(
    api: &Api<K>,
    obj: &Object<K>,
    next: &K::Status,
) -> Result<Object<K>, status::Error> {
    status::update(api, obj, next).await?;
    let mut now = obj.clone();
    now.status = Some(next.clone());
    Ok(now)
}

/// Logs a failed run and records it as a Warning event `event` (best effort).
pub(crate) async fn report_failure<K: Resource>(
    recorder: &Recorder,
    obj: &Object<K>,
    event: &str,
    reason: &str,
    message: &str,
) {
    tracing::warn!(reason, error = %message, "{event}");
    if let Err(e) = recorder.publish(obj, EventType::Warning, event, message).await {
        tracing::warn!(error = %e, "could not record the {event} event");
    }
}

/// The error of an interrupted run; `left` lists the unfinished uploads that could not be
/// removed (they stay until removed by hand or by the bucket's lifecycle rules).
fn interrupted_message(left: &[String]) -> String {
    let what = "interrupted: the run stopped before it finished (berth was stopped or lost leadership)";
    if left.is_empty() {
        format!("{what}; its unfinished uploads were removed")
    } else {
        format!(
            "{what}; could not remove its unfinished uploads: {}",
            left.join("; ")
        )
    }
}

/// Why a run failed, as a condition reason.
fn reason_of(e: &pipeline::Error) -> &'static str {
    match e {
        pipeline::Error::Tool { .. } | pipeline::Error::NoExitCode(_) => "DumpFailed",
        pipeline::Error::Storage { .. } => "StorageFailed",
        pipeline::Error::Docker(_) => "DockerFailed",
        pipeline::Error::Stream(_) | pipeline::Error::Checksum { .. } => "StreamFailed",
    }
}

impl BackupReconciler {
    async fn write(
        &self,
        obj: &Object<BackupSpec>,
        next: &BackupStatus,
    ) -> Result<Object<BackupSpec>, Error> {
        Ok(write_status(&self.api, obj, next).await?)
    }

    async fn fail(
        &self,
        obj: &Object<BackupSpec>,
        mut next: BackupStatus,
        reason: &str,
        message: String,
    ) -> Result<Action, Error> {
        next.phase = BackupPhase::Failed;
        next.completion_time = Some(status::now());
        next.pending.clear();
        set_outcome(&mut next.conditions, false, reason, &message, obj.generation());
        next.error = Some(message.clone());
        self.write(obj, &next).await?;
        report_failure(&self.recorder, obj, "BackupFailed", reason, &message).await;
        Ok(Action::await_change())
    }

    /// A Backup Running with no live run: clean up its writes and mark it Failed.
    async fn interrupted(&self, obj: &Object<BackupSpec>) -> Result<Action, Error> {
        // The cache may lag behind this process's own final write: read it fresh.
        let fresh = self.api.within(obj.namespace()).get(obj.name()).await?;
        let current = fresh.status.clone().unwrap_or_default();
        if current.phase != BackupPhase::Running {
            return Ok(Action::await_change());
        }
        let mut left = Vec::new();
        for p in &current.pending {
            let pending = storage::Pending {
                path: p.path.clone(),
                upload_id: p.upload_id.clone(),
            };
            let removed = match self.opener.open(&p.storage) {
                Ok(s) => s.abort(&pending).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = removed {
                tracing::warn!(storage = %p.storage, path = %p.path, error = %e, "could not remove an interrupted upload");
                left.push(format!("storage {} {}: {e}", p.storage, p.path));
            }
        }
        let message = interrupted_message(&left);
        self.fail(&fresh, current, "Interrupted", message).await
    }

    async fn run(&self, obj: &Object<BackupSpec>, mut next: BackupStatus) -> Result<Action, Error> {
        let spec = &obj.spec;
        let ns = obj.namespace().unwrap_or_default().to_owned();
        let name = obj.name().to_owned();
        next.observed_generation = Some(obj.generation());
        next.phase = BackupPhase::Running;
        next.start_time = Some(status::now());
        let obj = self.write(obj, &next).await?;
        let target = match self.resolver.resolve(&ns, &spec.database).await {
            Ok(t) => t,
            Err(e) => return self.fail(&obj, next, "DatabaseUnavailable", e.to_string()).await,
        };
        let key = format!("{ns}/{}/{name}.gz", spec.database);
        let mut targets = Vec::new();
        let mut opened = Ok(());
        for s in &spec.storages {
            let begun = match self.opener.open(s) {
                Ok(storage) => storage
                    .begin(&key)
                    .await
                    .map(|upload| pipeline::Target {
                        name: s.clone(),
                        storage,
                        upload,
                    })
                    .map_err(|e| format!("storage {s}: {e}")),
                Err(e) => Err(e.to_string()),
            };
            match begun {
                Ok(t) => targets.push(t),
                Err(e) => {
                    opened = Err(e);
                    break;
                }
            }
        }
        if let Err(message) = opened {
            for t in targets {
                t.upload.abort().await;
            }
            return self.fail(&obj, next, "StorageUnavailable", message).await;
        }
        next.pending = targets
            .iter()
            .map(|t| {
                let p = t.upload.pending();
                PendingUpload {
                    storage: t.name.clone(),
                    path: p.path,
                    upload_id: p.upload_id,
                }
            })
            .collect();
        let obj = match self.write(&obj, &next).await {
            Ok(o) => o,
            Err(e) => {
                for t in targets {
                    t.upload.abort().await;
                }
                return Err(e);
            }
        };
        tracing::info!(database = %spec.database, container = %target.container, "backup started");
        match pipeline::backup(&target.docker, &target.container, &target.dump, targets).await {
            Ok(outcome) => {
                next.phase = BackupPhase::Succeeded;
                next.completion_time = Some(status::now());
                next.size_bytes = Some(outcome.size);
                next.sha256 = Some(outcome.sha256);
                next.locations = outcome
                    .locations
                    .into_iter()
                    .map(|(storage, path)| BackupLocation { storage, path })
                    .collect();
                next.pending.clear();
                next.error = None;
                let message = format!(
                    "{} bytes written to {} storage(s)",
                    outcome.size,
                    next.locations.len()
                );
                set_outcome(
                    &mut next.conditions,
                    true,
                    "Succeeded",
                    &message,
                    obj.generation(),
                );
                self.write(&obj, &next).await?;
                tracing::info!(size = outcome.size, "backup succeeded");
                Ok(Action::await_change())
            }
            Err(e) => self.fail(&obj, next, reason_of(&e), e.to_string()).await,
        }
    }
}

#[async_trait::async_trait]
impl Reconciler<BackupSpec> for BackupReconciler {
    type Error = Error;

    async fn reconcile(&self, obj: Arc<Object<BackupSpec>>) -> Result<Action, Self::Error> {
        if obj.is_deleting() {
            return Ok(Action::await_change());
        }
        let current = obj.status.clone().unwrap_or_default();
        match current.phase {
            BackupPhase::Succeeded | BackupPhase::Failed => Ok(Action::await_change()),
            BackupPhase::Running => self.interrupted(&obj).await,
            BackupPhase::Pending => self.run(&obj, current).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::interrupted_message;

    #[test]
    fn an_interrupted_run_says_whether_its_uploads_were_removed() {
        assert!(interrupted_message(&[]).ends_with("its unfinished uploads were removed"));
        let m = interrupted_message(&["storage local /b/x.gz: backupstorage \"local\" not found".into()]);
        assert!(m.starts_with("interrupted: "), "{m}");
        assert!(!m.contains("were removed"), "{m}");
        assert!(
            m.contains("could not remove its unfinished uploads: storage local /b/x.gz"),
            "{m}"
        );
    }
}
