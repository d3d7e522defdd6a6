//! The BackupSchedule controller: creates a Backup per cron tick (like a CronJob creates
//! Jobs) and applies each storage's retention.
//!
//! # Guarantees
//! - Backups are named `<schedule>-<unix time of the tick>`, labelled
//!   [`SCHEDULE_LABEL`](crate::backup::SCHEDULE_LABEL) and owned by the schedule: the name
//!   makes creation idempotent (a retry or a second berth meets `AlreadyExists`).
//! - Timing ([`timing`]): after downtime only the latest missed tick runs, and only within
//!   `startingDeadlineSeconds`; `concurrencyPolicy: Forbid` skips a tick while a Backup of
//!   the schedule is Pending or Running (it runs when that one ends, deadline permitting);
//!   `suspend` creates nothing. The controller wakes itself at the next tick.
//! - Status: `lastScheduleTime`, `lastSuccessfulTime`, `nextScheduleTime` (none while
//!   suspended), `active`, and `Ready` (`False reason=InvalidSchedule` naming the field).
//! - Retention ([`retention`]), per storage, over the schedule's successful Backups: an
//!   expired copy's file or object is deleted first, then its location is removed from the
//!   Backup; a Backup left with no location is deleted. A crash in between only repeats a
//!   delete of something already gone. Failed Backups beyond the newest [`FAILED_HISTORY`]
//!   are deleted.
//!
//! # Caveats
//! - Deleting a schedule deletes its Backup records (ownerReferences) but keeps their
//!   files and objects.

pub mod retention;
pub mod timing;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use berth_crds::{
    API_VERSION, Object, Resource,
    kinds::{
        BackupScheduleSpec, BackupSpec,
        backup::{BackupPhase, BackupStatus},
        event::EventType,
    },
    meta::{ConditionStatus, OwnerReference},
};
use berth_runtime::Api;
use chrono::{DateTime, Utc};

use crate::{
    backup::{self, SCHEDULE_LABEL, open::Opener},
    client,
    controller::{Action, Controller, ControllerConfig, Reconciler},
    dockers::Dockers,
    events::Recorder,
    informer::Informer,
    manager::Manager,
    status,
};

/// The controller's name (metrics, logs).
pub const NAME: &str = "backupschedule";
/// Failed Backups kept per schedule.
pub const FAILED_HISTORY: usize = 3;

/// A failed BackupSchedule reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API failed.
    #[error(transparent)]
    Api(#[from] client::Error),
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
}

/// Reconciles BackupSchedules.
pub struct ScheduleReconciler {
    api: Api<BackupScheduleSpec>,
    backup_api: Api<BackupSpec>,
    backups: Informer<BackupSpec>,
    opener: Opener,
    recorder: Recorder,
}

/// Adds the BackupSchedule controller to `manager`.
pub fn install(manager: &mut Manager, config: ControllerConfig, dockers: Dockers) {
    let schedules = manager.informer::<BackupScheduleSpec>();
    let backups = manager.informer::<BackupSpec>();
    let (opener, _) = backup::caches(manager, dockers);
    let controller = backup::reading(
        Controller::new(NAME, schedules)
            .with_config(config)
            .owns(&backups),
        &opener,
        None,
    );
    let reconciler = ScheduleReconciler {
        api: manager.api_for(NAME),
        backup_api: manager.api_for(NAME),
        backups,
        opener,
        recorder: Recorder::new(manager.client_for(NAME), "backupschedule-controller"),
    };
    manager.add(controller, reconciler);
}

/// A Backup of the schedule.
struct Run {
    obj: Arc<Object<BackupSpec>>,
    name: String,
    status: BackupStatus,
}

impl Run {
    fn time(&self) -> DateTime<Utc> {
        self.status
            .start_time
            .or(self.obj.metadata.creation_timestamp)
            .unwrap_or_default()
    }
}

fn creation_time<K: Resource>(obj: &Object<K>) -> DateTime<Utc> {
    obj.metadata.creation_timestamp.unwrap_or_else(Utc::now)
}

/// The Backup that `schedule` creates for `tick`: named `<schedule>-<unix time>`, labelled
/// and owned by the schedule.
fn backup_for(schedule: &Object<BackupScheduleSpec>, tick: DateTime<Utc>) -> Object<BackupSpec> {
    let spec = BackupSpec {
        database: schedule.spec.database.clone(),
        schedule: Some(schedule.name().to_owned()),
        storages: schedule.spec.storages.iter().map(|s| s.name.clone()).collect(),
    };
    let name = format!("{}-{}", schedule.name(), tick.timestamp());
    let mut backup = Object::new(schedule.namespace(), &name, spec);
    backup
        .metadata
        .labels
        .insert(SCHEDULE_LABEL.to_owned(), schedule.name().to_owned());
    backup.metadata.owner_references.push(OwnerReference {
        api_version: API_VERSION.to_owned(),
        kind: BackupScheduleSpec::KIND.to_owned(),
        name: schedule.name().to_owned(),
        uid: schedule.uid().to_owned(),
        controller: Some(true),
        block_owner_deletion: None,
    });
    backup
}

impl ScheduleReconciler {
    fn runs(&self, obj: &Object<BackupScheduleSpec>) -> Vec<Run> {
        let mut runs: Vec<Run> = self
            .backups
            .owned_by(obj.uid())
            .into_iter()
            .map(|b| Run {
                name: b.name().to_owned(),
                status: b.status.clone().unwrap_or_default(),
                obj: b,
            })
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.time()));
        runs
    }

    async fn create_backup(
        &self,
        obj: &Object<BackupScheduleSpec>,
        tick: DateTime<Utc>,
    ) -> Result<String, Error> {
        let backup = backup_for(obj, tick);
        let name = backup.name().to_owned();
        match self.backup_api.create(&backup).await {
            Ok(_) => {
                tracing::info!(backup = %name, %tick, "backup created");
                Ok(name)
            }
            Err(client::Error::AlreadyExists { .. }) => Ok(name),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies retention and the failed-run history; returns problems met (already logged).
    async fn retain(&self, spec: &BackupScheduleSpec, runs: &[Run]) -> Vec<String> {
        let now = Utc::now();
        let mut drop: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &spec.storages {
            let candidates: Vec<retention::Candidate> = runs
                .iter()
                .filter(|r| r.status.phase == BackupPhase::Succeeded)
                .filter(|r| r.status.locations.iter().any(|l| l.storage == s.name))
                .map(|r| retention::Candidate {
                    name: r.name.clone(),
                    time: r.time(),
                    size: r.status.size_bytes.unwrap_or(0),
                })
                .collect();
            for name in retention::expired(&candidates, &s.retention, now) {
                drop.entry(name).or_default().push(s.name.clone());
            }
        }
        let mut problems = Vec::new();
        for run in runs {
            if let Some(storages) = drop.get(&run.name)
                && let Err(e) = self.expire(run, storages).await
            {
                tracing::warn!(backup = %run.name, error = %e, "retention failed");
                problems.push(format!("{}: {e}", run.name));
            }
        }
        let failed = runs.iter().filter(|r| r.status.phase == BackupPhase::Failed);
        for run in failed.skip(FAILED_HISTORY) {
            match self
                .backup_api
                .within(run.obj.namespace())
                .delete(&run.name)
                .await
            {
                Ok(()) | Err(client::Error::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(backup = %run.name, error = %e, "could not delete an old failed backup");
                    problems.push(format!("{}: {e}", run.name));
                }
            }
        }
        problems
    }

    /// Deletes `run`'s copies in `storages`, then its locations there (or the whole Backup).
    async fn expire(&self, run: &Run, storages: &[String]) -> Result<(), String> {
        let mut next = run.status.clone();
        let mut first_error = None;
        for location in &run.status.locations {
            if !storages.contains(&location.storage) {
                continue;
            }
            let deleted = match self.opener.open(&location.storage) {
                Ok(s) => s.delete(&location.path).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match deleted {
                Ok(()) => {
                    tracing::info!(backup = %run.name, storage = %location.storage, path = %location.path, "expired backup deleted");
                    next.locations.retain(|l| l != location);
                }
                Err(e) => {
                    first_error.get_or_insert(format!("storage {}: {e}", location.storage));
                }
            }
        }
        if next.locations.is_empty() {
            let api = self.backup_api.within(run.obj.namespace());
            match api.delete(&run.name).await {
                Ok(()) | Err(client::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.to_string()),
            }
        } else if next != run.status {
            status::update(&self.backup_api, &run.obj, &next)
                .await
                .map_err(|e| e.to_string())?;
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn apply(&self, obj: &Object<BackupScheduleSpec>) -> Result<Action, Error> {
        let spec = &obj.spec;
        let generation = obj.generation();
        let mut next = obj.status.clone().unwrap_or_default();
        next.observed_generation = Some(generation);
        let schedule = match timing::Schedule::parse(&spec.schedule, &spec.time_zone) {
            Ok(s) => s,
            Err(e) => {
                next.next_schedule_time = None;
                status::set_now(
                    &mut next.conditions,
                    "Ready",
                    ConditionStatus::False,
                    "InvalidSchedule",
                    &e.to_string(),
                    generation,
                );
                status::update(&self.api, obj, &next).await?;
                return Ok(Action::await_change());
            }
        };
        let runs = self.runs(obj);
        let mut active: Vec<String> = runs
            .iter()
            .filter(|r| matches!(r.status.phase, BackupPhase::Pending | BackupPhase::Running))
            .map(|r| r.name.clone())
            .collect();
        let now = Utc::now();
        let since = next.last_schedule_time.unwrap_or_else(|| creation_time(obj));
        let deadline = spec.starting_deadline_seconds.map(chrono::Duration::seconds);
        let decision = schedule.decide(since, now, deadline);
        if let Some(tick) = decision.run.filter(|_| !spec.suspend) {
            if active.is_empty() {
                active.push(self.create_backup(obj, tick).await?);
                next.last_schedule_time = Some(tick);
            } else {
                tracing::info!(%tick, active = ?active, "tick skipped: a backup is still running (Forbid)");
            }
        } else if decision.skipped_late && !spec.suspend {
            tracing::debug!("missed tick is past startingDeadlineSeconds; waiting for the next one");
        }
        let problems = self.retain(spec, &runs).await;
        if !problems.is_empty() {
            let message = format!("retention: {}", problems.join("; "));
            if let Err(e) = self
                .recorder
                .publish(obj, EventType::Warning, "RetentionFailed", &message)
                .await
            {
                tracing::warn!(error = %e, "could not record the RetentionFailed event");
            }
        }
        next.active = active;
        next.last_successful_time = runs
            .iter()
            .filter(|r| r.status.phase == BackupPhase::Succeeded)
            .filter_map(|r| r.status.completion_time)
            .max()
            .or(next.last_successful_time);
        next.next_schedule_time = if spec.suspend { None } else { decision.next };
        let (reason, message) = if spec.suspend {
            ("Suspended", "scheduling is suspended".to_string())
        } else {
            (
                "Scheduled",
                format!(
                    "next run {}",
                    decision.next.map(|t| t.to_rfc3339()).unwrap_or_default()
                ),
            )
        };
        status::set_now(
            &mut next.conditions,
            "Ready",
            ConditionStatus::True,
            reason,
            &message,
            generation,
        );
        status::update(&self.api, obj, &next).await?;
        match decision.next.filter(|_| !spec.suspend) {
            Some(t) => {
                let wait = (t - Utc::now()).to_std().unwrap_or_default();
                Ok(Action::requeue(wait + Duration::from_millis(500)))
            }
            None => Ok(Action::await_change()),
        }
    }
}

#[async_trait::async_trait]
impl Reconciler<BackupScheduleSpec> for ScheduleReconciler {
    type Error = Error;

    async fn reconcile(&self, obj: Arc<Object<BackupScheduleSpec>>) -> Result<Action, Self::Error> {
        if obj.is_deleting() {
            return Ok(Action::await_change());
        }
        self.apply(&obj).await
    }
}
