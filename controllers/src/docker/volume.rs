//! Named volumes: ensure, inspect, list, remove.
//!
//! # Guarantees
//! - [`Docker::ensure_volume`] is idempotent (Docker's volume create is).
//!
//! # Caveats
//! - An existing volume keeps its labels; `ensure_volume` does not update them.

use std::collections::HashMap;

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListVolumesOptionsBuilder, RemoveVolumeOptionsBuilder};

use super::connect::Docker;
use super::error::Result;
use super::labels::{self, Labels};

/// A volume as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Host path of its data (local driver).
    pub mountpoint: String,
}

impl Docker {
    /// Returns the local volume `name`, creating it with `labels` if missing.
    pub async fn ensure_volume(&self, name: &str, labels: &Labels) -> Result<VolumeInfo> {
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.count("volume_create");
        let v = self.client.create_volume(request).await?;
        Ok(VolumeInfo {
            name: v.name,
            labels: v.labels.into_iter().collect(),
            mountpoint: v.mountpoint,
        })
    }

    /// Whether the volume `name` exists (an external one must: nothing creates it).
    pub async fn volume_exists(&self, name: &str) -> Result<bool> {
        self.count("volume_inspect");
        match self.client.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = super::Error::from(e);
                if e.is_not_found() { Ok(false) } else { Err(e) }
            }
        }
    }

    /// Removes a volume; [`Error::NotFound`](super::Error::NotFound) if there is none,
    /// [`Error::Conflict`](super::Error::Conflict) while a container uses it.
    pub async fn remove_volume(&self, name: &str) -> Result<()> {
        let options = RemoveVolumeOptionsBuilder::default().force(false).build();
        self.count("volume_remove");
        Ok(self.client.remove_volume(name, Some(options)).await?)
    }

    /// Volumes carrying every label in `labels`.
    pub async fn list_volumes(&self, labels: &Labels) -> Result<Vec<VolumeInfo>> {
        let filters = HashMap::from([("label".to_string(), labels::label_filters(labels))]);
        let options = ListVolumesOptionsBuilder::default().filters(&filters).build();
        self.count("volume_list");
        let list = self.client.list_volumes(Some(options)).await?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| VolumeInfo {
                name: v.name,
                labels: v.labels.into_iter().collect(),
                mountpoint: v.mountpoint,
            })
            .collect())
    }
}
