//! The observe and act steps of a Server's disk automation: measures the file system of
//! Docker's data root (statvfs), lists berth's containers and built images, runs the plan
//! of [`super::cleanup::decide`] through the Docker adapter, and records what it freed.
//!
//! # Guarantees
//! - Lists only what carries berth's scope labels (`--docker-label`) and
//!   `dev.berth.managed=true`; the unfiltered container listing serves only to learn which
//!   images foreign containers use, so that none of those is ever removed.
//! - Removal never forces an image a container uses and never removes volumes; a container
//!   or image already gone counts as nothing, an image still in use is kept (logged).
//! - One failed removal does not stop the others; it is logged and the cleanup reports
//!   what it did remove.
//!
//! # Caveats
//! - `localhost` only: statvfs reads the file system berth itself runs on. When berth runs
//!   in a container the data root must be mounted at the same path.
//! - Freed bytes are the file system's used bytes before minus after: other writes at the
//!   same time make it smaller (never below 0).
//! - Build cache is not pruned (see [`crate::docker::ImageAge`]'s module).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use berth_crds::{
    Object,
    kinds::{ApplicationSpec, ServerSpec},
};

use super::cleanup::{AppView, ContainerView, ImageView, Observed, Plan};
use crate::{
    docker::{self, Docker, Labels, label},
    dockers::Dockers,
    informer::Informer,
};

/// A disk check or cleanup that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// statvfs of the data root failed.
    #[error("cannot measure the file system of {path}: {source}")]
    Statvfs {
        /// The path measured.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The daemon refused a listing.
    #[error(transparent)]
    Docker(#[from] docker::Error),
}

/// Usage of one file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in use (total minus free).
    pub used_bytes: u64,
    /// Total bytes.
    pub total_bytes: u64,
}

impl Usage {
    /// Used percent, rounded up (so a threshold of 1 % is met by any non-empty disk).
    pub fn percent(&self) -> u8 {
        if self.total_bytes == 0 {
            return 0;
        }
        let p = (u128::from(self.used_bytes) * 100).div_ceil(u128::from(self.total_bytes));
        u8::try_from(p.min(100)).unwrap_or(100)
    }
}

/// statvfs of `root`, or of its nearest existing ancestor (the data root may be unreadable
/// or absent from berth's view, its file system is what counts).
pub fn measure(root: &str) -> Result<Usage, Error> {
    let mut path = PathBuf::from(root);
    loop {
        match rustix::fs::statvfs(&path) {
            Ok(s) => {
                let frsize = if s.f_frsize > 0 { s.f_frsize } else { s.f_bsize };
                let total = s.f_blocks.saturating_mul(frsize);
                let free = s.f_bfree.saturating_mul(frsize);
                return Ok(Usage {
                    used_bytes: total.saturating_sub(free),
                    total_bytes: total,
                });
            }
            Err(e) => match path.parent().map(Path::to_path_buf) {
                Some(parent) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::ACCESS => {
                    path = parent;
                }
                _ => {
                    return Err(Error::Statvfs {
                        path: root.to_string(),
                        source: e.into(),
                    });
                }
            },
        }
    }
}

/// What the Application cache says, as the decision reads it.
pub fn app_views(apps: &Informer<ApplicationSpec>) -> BTreeMap<(String, String), AppView> {
    apps.list()
        .iter()
        .map(|a| {
            let status = a.status.clone().unwrap_or_default();
            let key = (
                a.namespace().unwrap_or_default().to_string(),
                a.name().to_string(),
            );
            let view = AppView {
                uid: a.uid().to_string(),
                settled: status.observed_generation == Some(a.generation()),
                hashes: status.containers.iter().map(|c| c.config_hash.clone()).collect(),
                images: status
                    .image
                    .iter()
                    .chain(status.build.as_ref().and_then(|b| b.latest_image.as_ref()))
                    .cloned()
                    .collect(),
            };
            (key, view)
        })
        .collect()
}

/// Lists what the decision needs from the daemon.
pub async fn observe(
    docker: &Docker,
    dockers: &Dockers,
    apps: &Informer<ApplicationSpec>,
    server: &Object<ServerSpec>,
    used_percent: u8,
) -> Result<Observed, Error> {
    let auto = &server.spec.automation;
    let managed = dockers.scoped(Labels::from([(label::MANAGED.to_string(), "true".to_string())]));
    let containers: Vec<ContainerView> = docker
        .list_containers(&managed)
        .await?
        .into_iter()
        .map(|c| ContainerView {
            id: c.id,
            name: c.name,
            status: c.status,
            labels: c.labels,
            image_id: c.image_id,
        })
        .collect();
    let ours: BTreeSet<&str> = containers.iter().map(|c| c.id.as_str()).collect();
    let foreign_image_ids = docker
        .list_containers(&Labels::new())
        .await?
        .into_iter()
        .filter(|c| !ours.contains(c.id.as_str()))
        .map(|c| c.image_id)
        .collect();
    let built = dockers.scoped(Labels::from([
        (label::MANAGED.to_string(), "true".to_string()),
        (label::KIND.to_string(), "Application".to_string()),
    ]));
    let images = docker
        .list_images_by_age(&built)
        .await?
        .into_iter()
        .map(|i| ImageView {
            id: i.id,
            repo_tags: i.repo_tags,
            labels: i.labels,
            created: i.created,
        })
        .collect();
    Ok(Observed {
        used_percent,
        threshold_percent: auto.docker_cleanup_threshold_percent,
        keep_images: usize::try_from(auto.keep_images).unwrap_or(usize::MAX),
        apps_synced: apps.is_ready(),
        apps: app_views(apps),
        containers,
        foreign_image_ids,
        images,
    })
}

/// What a cleanup removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Containers removed.
    pub containers: u32,
    /// Image references removed.
    pub images: u32,
}

/// Runs a [`Plan::Clean`]; nothing for [`Plan::Below`].
pub async fn act(docker: &Docker, plan: &Plan) -> Removed {
    let mut removed = Removed::default();
    let Plan::Clean { containers, images } = plan else {
        return removed;
    };
    for c in containers {
        match docker.remove_container(&c.id).await {
            Ok(()) => {
                tracing::info!(container = %c.name, "cleanup removed a stopped container of a past revision");
                removed.containers += 1;
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(container = %c.name, error = %e, "cleanup cannot remove a container"),
        }
    }
    for i in images {
        for r in &i.refs {
            match docker.remove_image(r).await {
                Ok(()) => {
                    tracing::info!(image = %r, "cleanup removed an old built image");
                    removed.images += 1;
                }
                Err(e) if e.is_not_found() => {}
                Err(docker::Error::Conflict { message }) => {
                    tracing::info!(image = %r, %message, "old built image still in use; kept");
                }
                Err(e) => tracing::warn!(image = %r, error = %e, "cleanup cannot remove an image"),
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn percent_rounds_up_and_copes_with_empty_file_systems() {
        let u = |used_bytes, total_bytes| Usage {
            used_bytes,
            total_bytes,
        };
        assert_eq!(u(0, 0).percent(), 0);
        assert_eq!(u(0, 100).percent(), 0);
        assert_eq!(u(1, 1000).percent(), 1);
        assert_eq!(u(500, 1000).percent(), 50);
        assert_eq!(u(1000, 1000).percent(), 100);
    }

    #[test]
    fn measures_the_nearest_existing_ancestor() {
        let root = measure("/").unwrap();
        assert!(root.total_bytes > 0);
        let missing = measure("/nonexistent-berth-dir/docker").unwrap();
        assert_eq!(missing.total_bytes, root.total_bytes);
    }
}
