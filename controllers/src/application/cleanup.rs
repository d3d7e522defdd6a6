//! Deletion of an Application's containers (and, for Git sources, its built images and
//! build logs; its named volumes with `spec.deleteVolumes`, never external ones), and the
//! sweep of orphans: berth containers of Applications that no longer exist.
//!
//! # Guarantees
//! - [`AppReconciler::tear_down`] copes with apply never having run, and with the destination
//!   or server being gone ([`Dockers::for_cleanup`]).
//! - The sweep runs at start and at every resync, on the `localhost` endpoint; a container
//!   is an orphan when no Application of its namespace, name and UID is cached.
//!
//! # Caveats
//! - Orphans on other servers than `localhost` are not swept.

use std::time::Duration;

use berth_crds::{Object, kinds::ApplicationSpec};
use tokio_util::sync::CancellationToken;

use super::{AppReconciler, Error, build_log};
use crate::{
    controller::Action,
    docker::{self, Labels, Owner, label},
    dockers::Dockers,
    informer::Informer,
    object::ObjectRef,
    workload,
};

/// Removes berth containers of Applications that no longer exist, at start and every `every`.
pub(super) async fn sweep_orphans(
    apps: Informer<ApplicationSpec>,
    dockers: Dockers,
    every: Duration,
    stop: CancellationToken,
) {
    tokio::select! {
        () = apps.wait_ready() => {}
        () = stop.cancelled() => return,
    }
    loop {
        match sweep_once(&apps, &dockers).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed orphaned application containers"),
            Err(e) => tracing::warn!(error = %e, "orphan sweep failed; retrying at the next resync"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
    }
}

async fn sweep_once(apps: &Informer<ApplicationSpec>, dockers: &Dockers) -> Result<usize, docker::Error> {
    let docker = dockers.local().await?;
    let selector = dockers.scoped(Labels::from([
        (label::MANAGED.to_string(), "true".to_string()),
        (label::KIND.to_string(), "Application".to_string()),
    ]));
    let mut removed = 0;
    for c in docker.list_containers(&selector).await? {
        let Some(owner) = Owner::from_labels(&c.labels) else {
            continue;
        };
        let alive = apps
            .get(&ObjectRef::new(Some(&owner.namespace), &owner.name))
            .is_some_and(|a| a.uid() == owner.uid);
        if !alive {
            tracing::info!(container = %c.name, app = %owner.name, namespace = %owner.namespace, "removing orphan");
            match docker.remove_container(&c.id).await {
                Ok(()) => removed += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) => tracing::warn!(container = %c.name, error = %e, "cannot remove orphan"),
            }
        }
    }
    Ok(removed)
}

impl AppReconciler {
    /// Removes the app's containers, built images, build logs and (with
    /// `spec.deleteVolumes`) named volumes.
    pub(super) async fn tear_down(&self, obj: &Object<ApplicationSpec>) -> Result<Action, Error> {
        let name = obj.name().to_owned();
        let ns = obj.namespace().unwrap_or_default().to_owned();
        let docker = self
            .dockers
            .for_cleanup(&self.destinations, &obj.spec.destination)
            .await?;
        let selector = self.owner_selector(&ns, &name);
        for c in docker.list_containers(&selector).await? {
            tracing::info!(container = %c.name, "removing container");
            workload::remove(&docker, &c.id).await?;
        }
        if let Some(builder) = &self.builder {
            builder.forget(&ObjectRef::of(obj));
            if let Err(e) = build_log::remove_all(builder.logs_dir(), &ns, &name).await {
                tracing::warn!(error = %e, "cannot remove the build logs");
            }
            let owner = Owner {
                kind: "Application".into(),
                namespace: ns.clone(),
                name: name.clone(),
                uid: obj.uid().to_owned(),
            };
            self.prune_images(&docker, &owner, &[]).await?;
        }
        if obj.spec.delete_volumes {
            let external = |name: &str| {
                obj.spec
                    .volumes
                    .iter()
                    .any(|v| v.external && v.name.as_deref() == Some(name))
            };
            for v in docker.list_volumes(&selector).await? {
                if external(&v.name) {
                    tracing::info!(volume = %v.name, "keeping external volume");
                    continue;
                }
                match docker.remove_volume(&v.name).await {
                    Ok(()) => tracing::info!(volume = %v.name, "removed volume"),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(Action::await_change())
    }
}
