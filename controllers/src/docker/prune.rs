//! What a disk cleanup needs to know of images: their age, which listings do not give
//! [`ImageInfo`](super::ImageInfo).
//!
//! # Guarantees
//! - Read only: removal goes through [`Docker::remove_image`] and
//!   [`Docker::remove_container`], which never force an image a container uses, nor touch
//!   volumes.
//!
//! # Caveats
//! - There is no build-cache prune here: the classic builder berth uses keeps its cache as
//!   untagged intermediate images that carry no berth label, and `/build/prune` cannot
//!   filter by label, so berth cannot tell its cache from anyone else's.

use std::collections::HashMap;

use bollard::query_parameters::ListImagesOptionsBuilder;

use super::connect::Docker;
use super::error::Result;
use super::labels::{self, Labels};

/// A local image with its creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageAge {
    /// Image ID (`sha256:...`).
    pub id: String,
    /// Tags pointing at it.
    pub repo_tags: Vec<String>,
    /// Labels from the image config.
    pub labels: Labels,
    /// When it was created, in seconds since the Unix epoch.
    pub created: i64,
    /// Its size in bytes, shared layers included.
    pub size: i64,
}

impl Docker {
    /// The local images carrying every label of `labels`, with their creation times.
    pub async fn list_images_by_age(&self, labels: &Labels) -> Result<Vec<ImageAge>> {
        let filters = HashMap::from([("label".to_string(), labels::label_filters(labels))]);
        let options = ListImagesOptionsBuilder::default().filters(&filters).build();
        self.count("image_list");
        let list = self.client.list_images(Some(options)).await?;
        Ok(list
            .into_iter()
            .map(|i| ImageAge {
                id: i.id,
                repo_tags: i.repo_tags.into_iter().filter(|t| t != "<none>:<none>").collect(),
                labels: i.labels.into_iter().collect(),
                created: i.created,
                size: i.size,
            })
            .collect())
    }
}
