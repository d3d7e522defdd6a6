//! The decide step of a Server's disk automation: from the disk usage and the berth-labelled
//! containers and images observed, whether to clean up and exactly what to remove, and
//! whether a `DiskUsageHigh` / `DiskUsageNormal` event is due. Pure: table-tested below.
//!
//! # Guarantees
//! - Only objects labelled `dev.berth.managed=true` and `dev.berth.kind=Application` with a
//!   full owner are candidates; anything else (foreign objects, Databases, Proxies,
//!   Services) is never in a plan, whatever its state.
//! - A container is removed only when it is stopped (`exited` or `dead`: never `created`,
//!   `running`, `restarting` or `paused`) and of a past revision: its Application is gone
//!   (or was recreated under another UID), or its Application's status is settled
//!   (`observedGeneration` is the generation) and lists no container of its app hash. While
//!   the Application cache is not synced, no container is removed.
//! - Of each Application's built images, the newest `keep_images` are kept, and so are
//!   images a remaining container uses and the ones the Application's status names.
//! - Nothing is removed below the threshold; volumes are never in a plan.

use std::collections::{BTreeMap, BTreeSet};

use crate::docker::{Labels, Owner};

/// A container as the cleanup sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerView {
    /// Docker's ID.
    pub id: String,
    /// The container name.
    pub name: String,
    /// Docker's status word (`running`, `exited`...).
    pub status: String,
    /// Labels.
    pub labels: Labels,
    /// The local image ID it runs.
    pub image_id: String,
}

/// A built image as the cleanup sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageView {
    /// Image ID.
    pub id: String,
    /// Tags pointing at it.
    pub repo_tags: Vec<String>,
    /// Labels.
    pub labels: Labels,
    /// Creation time, seconds since the epoch.
    pub created: i64,
}

/// What the Application cache says of one Application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppView {
    /// Its UID.
    pub uid: String,
    /// Whether its status reflects its current spec (`observedGeneration == generation`).
    pub settled: bool,
    /// The app hashes of the containers its status lists (current and still-known old ones).
    pub hashes: BTreeSet<String>,
    /// Image references its status names (`status.image`, `status.build.latestImage`).
    pub images: BTreeSet<String>,
}

/// Everything the decision reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Disk usage of the data root, percent.
    pub used_percent: u8,
    /// `spec.automation.dockerCleanupThresholdPercent`.
    pub threshold_percent: u8,
    /// `spec.automation.keepImages`.
    pub keep_images: usize,
    /// Whether the Application cache is synced (`apps` is complete).
    pub apps_synced: bool,
    /// Applications by namespace and name.
    pub apps: BTreeMap<(String, String), AppView>,
    /// Every container of the daemon in berth's scope (berth's and, for image use, others).
    pub containers: Vec<ContainerView>,
    /// Image IDs used by containers outside berth's listing (foreign containers).
    pub foreign_image_ids: BTreeSet<String>,
    /// Berth's built Application images.
    pub images: Vec<ImageView>,
}

/// A container to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveContainer {
    /// Docker's ID.
    pub id: String,
    /// Its name (for logs).
    pub name: String,
}

/// An image to remove: each of its tags, or its ID when untagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveImage {
    /// Image ID.
    pub id: String,
    /// References to remove, in order.
    pub refs: Vec<String>,
}

/// What to do about the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Usage is below the threshold: nothing to remove.
    Below,
    /// Over the threshold: remove these (possibly nothing, if berth owns nothing unneeded).
    Clean {
        /// Stopped containers of past revisions.
        containers: Vec<RemoveContainer>,
        /// Old built images beyond the rollback window.
        images: Vec<RemoveImage>,
    },
}

/// A disk warning transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskEvent {
    /// Usage crossed `diskUsageWarningPercent` upwards.
    High,
    /// Usage went back below it.
    Normal,
}

/// The event due when usage is `used_percent` and the warning was `was_high` (`None`: never
/// judged yet).
pub fn disk_event(was_high: Option<bool>, used_percent: u8, warning_percent: u8) -> Option<DiskEvent> {
    let high = used_percent >= warning_percent;
    match (was_high, high) {
        (Some(true), true) | (Some(false) | None, false) => None,
        (Some(false) | None, true) => Some(DiskEvent::High),
        (Some(true), false) => Some(DiskEvent::Normal),
    }
}

fn app_owner(labels: &Labels) -> Option<Owner> {
    Owner::from_labels(labels).filter(|o| o.kind == "Application")
}

/// Whether `c` is a stopped container of a past revision of its Application.
fn past_revision(o: &Observed, c: &ContainerView) -> bool {
    if !o.apps_synced || !matches!(c.status.as_str(), "exited" | "dead") {
        return false;
    }
    let Some(owner) = app_owner(&c.labels) else {
        return false;
    };
    let Some(hash) = c
        .labels
        .get(crate::application::plan::APP_HASH)
        .filter(|h| !h.is_empty())
    else {
        return false;
    };
    match o.apps.get(&(owner.namespace, owner.name)) {
        None => true,
        Some(app) if app.uid != owner.uid => true,
        Some(app) => app.settled && !app.hashes.contains(hash),
    }
}

/// Decides the cleanup.
pub fn decide(o: &Observed) -> Plan {
    if o.used_percent < o.threshold_percent {
        return Plan::Below;
    }
    let containers: Vec<RemoveContainer> = o
        .containers
        .iter()
        .filter(|c| past_revision(o, c))
        .map(|c| RemoveContainer {
            id: c.id.clone(),
            name: c.name.clone(),
        })
        .collect();
    let mut in_use: BTreeSet<&str> = o.foreign_image_ids.iter().map(String::as_str).collect();
    in_use.extend(
        o.containers
            .iter()
            .filter(|c| !containers.iter().any(|r| r.id == c.id))
            .map(|c| c.image_id.as_str()),
    );
    let mut by_owner: BTreeMap<(String, String, String), Vec<&ImageView>> = BTreeMap::new();
    for i in &o.images {
        if let Some(owner) = app_owner(&i.labels) {
            by_owner
                .entry((owner.namespace, owner.name, owner.uid))
                .or_default()
                .push(i);
        }
    }
    let mut images = Vec::new();
    for ((namespace, name, uid), mut list) in by_owner {
        list.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        let named = o
            .apps
            .get(&(namespace, name))
            .filter(|a| a.uid == uid)
            .map(|a| &a.images);
        for i in list.into_iter().skip(o.keep_images) {
            let protected = named.is_some_and(|n| {
                i.repo_tags.iter().any(|t| n.contains(t)) || n.iter().any(|r| r.ends_with(&i.id))
            });
            if protected || in_use.contains(i.id.as_str()) {
                continue;
            }
            let refs = if i.repo_tags.is_empty() {
                vec![i.id.clone()]
            } else {
                i.repo_tags.clone()
            };
            images.push(RemoveImage {
                id: i.id.clone(),
                refs,
            });
        }
    }
    Plan::Clean { containers, images }
}

#[cfg(test)]
mod tests;
