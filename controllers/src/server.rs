//! The Server controller: probes each Server's Docker daemon and reports it in status.
//!
//! # Guarantees
//! - Status: `Ready` (reason `Reachable` / `Unreachable` with the daemon's error), the engine
//!   version, `os/arch`, CPUs, memory, Docker's root dir and disk usage, and `lastProbeTime`,
//!   the heartbeat, renewed every [`HEARTBEAT`] (two Docker calls: `/info` and `/system/df`).
//! - The `localhost` daemon going away is noticed at once, not at the next heartbeat: losing
//!   its event stream triggers a probe ([`docker_triggers::reachability_triggers`]). So a
//!   reachable server costs no Docker call and no API write between heartbeats.
//! - An unreachable daemon is retried with the queue's exponential backoff; berth keeps running.
//! - The same install runs [`bootstrap::ensure_defaults`]: the `localhost` Server and the
//!   default Destination exist while berth runs.
//!
//! - Disk automation (a `localhost` server on a `unix://` socket only), every `spec.automation.diskCheckIntervalSeconds`
//!   and whenever the spec changes: statvfs of Docker's root dir into
//!   `status.diskUsagePercent`; at `dockerCleanupThresholdPercent` a cleanup of what berth
//!   owns and no longer needs ([`cleanup::decide`]), recorded in `status.lastCleanup` and
//!   a `DockerCleanupDone` event naming the freed bytes; at `diskUsageWarningPercent` a
//!   `DiskPressure=True` condition and one `DiskUsageHigh` Warning per crossing
//!   (`DiskUsageNormal` once back below), judged after the cleanup.
//!
//! # Caveats
//! - Remote (SSH) servers are not supported yet: they report `Ready=False reason=Unsupported`.
//! - A cleanup that removes nothing records nothing (no event, `lastCleanup` unchanged).

mod cleanup;
mod disk;

use std::{sync::Arc, time::Duration};

use berth_crds::{
    Object,
    kinds::{
        ApplicationSpec, DestinationSpec, ServerSpec,
        event::EventType,
        server::{CleanupRecord, ServerEventReason, ServerReason, ServerStatus},
    },
    meta::ConditionStatus,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::{
    bootstrap::{self, LOCALHOST},
    controller::{Action, Controller, ControllerConfig, Reconciler},
    docker::Docker,
    docker_triggers,
    dockers::{self, Dockers},
    events::Recorder,
    informer::Informer,
    manager::Manager,
    object::ObjectRef,
    status, workload,
};
use berth_runtime::Api;

/// The controller's name (metrics, logs).
pub const NAME: &str = "server";
/// How often a reachable server is probed (engine facts, disk usage); a lost daemon is
/// noticed sooner, from its event stream.
pub const HEARTBEAT: Duration = Duration::from_secs(600);
/// The condition raised at `diskUsageWarningPercent`.
pub const DISK_PRESSURE: &str = "DiskPressure";

/// A failed Server reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server's daemon could not be had (the status says so; this retries).
    #[error(transparent)]
    Docker(#[from] dockers::Error),
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
}

/// Reconciles Servers.
pub struct ServerReconciler {
    api: Api<ServerSpec>,
    dockers: Dockers,
    /// The Applications (which of their containers and images are still needed).
    apps: Informer<ApplicationSpec>,
    recorder: Recorder,
    /// When the `localhost` daemon's event stream was last lost: a probe is due if it was
    /// after the last probe (a hint for promptness only; a restart simply probes later).
    lost_at: Arc<std::sync::Mutex<Option<DateTime<Utc>>>>,
}

/// Adds the Server controller and the defaults task to `manager`.
pub fn install(manager: &mut Manager, config: ControllerConfig, dockers: Dockers) {
    let servers = manager.informer::<ServerSpec>();
    let destinations = manager.informer::<DestinationSpec>();
    let connector = dockers.clone();
    let lost_at = Arc::new(std::sync::Mutex::new(None));
    let record = lost_at.clone();
    let lost = docker_triggers::reachability_triggers(
        Box::new(move || {
            let d = connector.clone();
            Box::pin(async move { d.local().await })
        }),
        ObjectRef::cluster(LOCALHOST),
    )
    .inspect(move |_| {
        if let Ok(mut at) = record.lock() {
            *at = Some(status::now());
        }
    });
    let controller = Controller::new(NAME, servers.clone())
        .with_config(config)
        .triggers(lost);
    let reconciler = ServerReconciler {
        api: manager.api_for(NAME),
        dockers: dockers.clone(),
        apps: manager.informer::<ApplicationSpec>(),
        recorder: Recorder::new(manager.client_for(NAME), "server-controller"),
        lost_at,
    };
    manager.add(controller, reconciler);
    let client = manager.client_for("defaults");
    let options = dockers.options.clone();
    manager.add_task(move |stop| {
        Box::pin(bootstrap::ensure_defaults(
            client,
            servers,
            destinations,
            options,
            stop,
        ))
    });
}

#[async_trait::async_trait]
impl Reconciler<ServerSpec> for ServerReconciler {
    type Error = Error;

    async fn reconcile(&self, obj: Arc<Object<ServerSpec>>) -> Result<Action, Error> {
        if obj.is_deleting() {
            return Ok(Action::await_change());
        }
        let name = obj.name().to_owned();
        let generation = obj.generation();
        let old = obj.status.clone().unwrap_or_default();
        // Our own status write triggers a reconcile too: probe only once a heartbeat is due,
        // or the daemon's event stream was lost since the last probe.
        let ready = berth_crds::meta::is_true(&old.conditions, berth_crds::meta::ConditionType::Ready);
        let lost_at = self.lost_at.lock().ok().and_then(|at| *at);
        // statvfs measures this machine: only a daemon reached over a local socket is on it.
        let local = obj
            .spec
            .localhost
            .as_ref()
            .is_some_and(|l| l.docker_host.starts_with("unix://"));
        let interval =
            Duration::from_secs(u64::from(obj.spec.automation.disk_check_interval_seconds.max(10)));
        let since = |t: DateTime<Utc>| (status::now() - t).to_std().unwrap_or_default();
        let disk_wait = match old.disk_checked_at {
            _ if !local => Duration::MAX,
            Some(t) if old.observed_generation == Some(generation) => interval.saturating_sub(since(t)),
            _ => Duration::ZERO,
        };
        if ready
            && old.observed_generation == Some(generation)
            && let Some(last) = old.last_probe_time
            && (name != LOCALHOST || lost_at.is_none_or(|lost| lost < last))
        {
            let age = since(last);
            if age < HEARTBEAT && !disk_wait.is_zero() {
                return Ok(Action::requeue((HEARTBEAT - age).min(disk_wait)));
            }
        }
        let disk_due = disk_wait.is_zero();
        let mut next = ServerStatus {
            observed_generation: Some(generation),
            last_probe_time: Some(status::now()),
            ..old.clone()
        };
        let probe = match self.dockers.for_server(&name).await {
            Ok(d) => d
                .info()
                .await
                .map(|info| (d, info))
                .map_err(|source| dockers::Error::Unreachable {
                    name: name.clone(),
                    source,
                }),
            Err(e) => Err(e),
        };
        match probe {
            Ok((docker, info)) => {
                if disk_due {
                    self.check_disk(&obj, &docker, &info.docker_root_dir, &mut next)
                        .await;
                }
                next.docker_version = Some(info.version);
                next.platform = Some(format!("{}/{}", info.os_type, info.architecture));
                next.cpus = Some(info.cpus);
                next.memory_bytes = Some(info.memory_bytes);
                next.docker_root_dir = Some(info.docker_root_dir);
                next.docker_disk_usage_bytes = info.disk_usage_bytes;
                status::set_now(
                    &mut next.conditions,
                    "Ready",
                    ConditionStatus::True,
                    ServerReason::Reachable.as_str(),
                    &format!(
                        "docker {} reachable",
                        next.docker_version.as_deref().unwrap_or("")
                    ),
                    generation,
                );
                status::update(&self.api, &obj, &next).await?;
                Ok(Action::requeue(if local {
                    HEARTBEAT.min(interval)
                } else {
                    HEARTBEAT
                }))
            }
            Err(e) => {
                let reason = if matches!(e, dockers::Error::Unsupported(_)) {
                    ServerReason::Unsupported
                } else {
                    ServerReason::Unreachable
                };
                status::set_now(
                    &mut next.conditions,
                    "Ready",
                    ConditionStatus::False,
                    reason.as_str(),
                    &e.to_string(),
                    generation,
                );
                status::update(&self.api, &obj, &next).await?;
                if reason == ServerReason::Unsupported {
                    return Ok(Action::await_change());
                }
                // Returning the error retries with the queue's per-key backoff.
                Err(e.into())
            }
        }
    }
}

impl ServerReconciler {
    /// Measures the data root, cleans up when over the threshold, and raises or clears the
    /// disk warning; writes into `next` and records events. Failures are logged (and the
    /// cleanup's recorded as a `DockerCleanupFailed` Warning): the probe still succeeds.
    async fn check_disk(
        &self,
        obj: &Object<ServerSpec>,
        docker: &Docker,
        root: &str,
        next: &mut ServerStatus,
    ) {
        let auto = &obj.spec.automation;
        let before = match disk::measure(root) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(server = %obj.name(), error = %e, "cannot measure docker's data root");
                return;
            }
        };
        let mut used = before.percent();
        next.disk_checked_at = Some(status::now());
        match disk::observe(docker, &self.dockers, &self.apps, obj, used).await {
            Err(e) => {
                tracing::warn!(server = %obj.name(), error = %e, "docker cleanup failed");
                let reason = ServerEventReason::DockerCleanupFailed.as_str();
                workload::record(&self.recorder, obj, EventType::Warning, reason, &e.to_string()).await;
            }
            Ok(observed) => {
                let plan = cleanup::decide(&observed);
                let removed = disk::act(docker, &plan).await;
                if removed.containers + removed.images > 0 {
                    let after = disk::measure(root).unwrap_or(before);
                    used = after.percent();
                    let freed = before.used_bytes.saturating_sub(after.used_bytes);
                    next.last_cleanup = Some(CleanupRecord {
                        at: status::now(),
                        freed_bytes: freed,
                        containers: removed.containers,
                        images: removed.images,
                        used_percent_before: before.percent(),
                        used_percent_after: used,
                    });
                    let message = format!(
                        "freed {freed} bytes: removed {} containers and {} images; disk {}% -> {used}% (threshold {}%)",
                        removed.containers,
                        removed.images,
                        before.percent(),
                        auto.docker_cleanup_threshold_percent
                    );
                    tracing::info!(server = %obj.name(), %message, "docker cleanup done");
                    let reason = ServerEventReason::DockerCleanupDone.as_str();
                    workload::record(&self.recorder, obj, EventType::Normal, reason, &message).await;
                }
            }
        }
        next.disk_usage_percent = Some(used);
        let was_high = next
            .conditions
            .iter()
            .find(|c| c.type_ == DISK_PRESSURE)
            .map(|c| c.status == ConditionStatus::True);
        let warning = auto.disk_usage_warning_percent;
        let (state, reason) = if used >= warning {
            (ConditionStatus::True, ServerEventReason::DiskUsageHigh)
        } else {
            (ConditionStatus::False, ServerEventReason::DiskUsageNormal)
        };
        let message = format!("disk {used}% used (warning at {warning}%)");
        status::set_now(
            &mut next.conditions,
            DISK_PRESSURE,
            state,
            reason.as_str(),
            &message,
            obj.generation(),
        );
        match cleanup::disk_event(was_high, used, warning) {
            Some(cleanup::DiskEvent::High) => {
                workload::record(&self.recorder, obj, EventType::Warning, reason.as_str(), &message).await;
            }
            Some(cleanup::DiskEvent::Normal) => {
                workload::record(&self.recorder, obj, EventType::Normal, reason.as_str(), &message).await;
            }
            None => {}
        }
    }
}
