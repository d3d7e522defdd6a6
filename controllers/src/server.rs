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
//! # Caveats
//! - Remote (SSH) servers are not supported yet: they report `Ready=False reason=Unsupported`.

use std::{sync::Arc, time::Duration};

use berth_crds::{
    Object,
    kinds::{
        DestinationSpec, ServerSpec,
        server::{ServerReason, ServerStatus},
    },
    meta::ConditionStatus,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::{
    bootstrap::{self, LOCALHOST},
    controller::{Action, Controller, ControllerConfig, Reconciler},
    docker_triggers,
    dockers::{self, Dockers},
    manager::Manager,
    object::ObjectRef,
    status,
};
use berth_runtime::Api;

/// The controller's name (metrics, logs).
pub const NAME: &str = "server";
/// How often a reachable server is probed (engine facts, disk usage); a lost daemon is
/// noticed sooner, from its event stream.
pub const HEARTBEAT: Duration = Duration::from_secs(600);

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
        if ready
            && old.observed_generation == Some(generation)
            && let Some(last) = old.last_probe_time
            && (name != LOCALHOST || lost_at.is_none_or(|lost| lost < last))
        {
            let age = (status::now() - last).to_std().unwrap_or_default();
            if age < HEARTBEAT {
                return Ok(Action::requeue(HEARTBEAT - age));
            }
        }
        let mut next = ServerStatus {
            observed_generation: Some(generation),
            last_probe_time: Some(status::now()),
            ..old.clone()
        };
        let probe = match self.dockers.for_server(&name).await {
            Ok(d) => d.info().await.map_err(|source| dockers::Error::Unreachable {
                name: name.clone(),
                source,
            }),
            Err(e) => Err(e),
        };
        match probe {
            Ok(info) => {
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
                Ok(Action::requeue(HEARTBEAT))
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
