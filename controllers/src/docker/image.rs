//! Images: inspect, list, pull, tag, remove (builds are in [`super::build`]).
//!
//! # Guarantees
//! - A failed pull ends with [`Error::Pull`] (or [`Error::Unreachable`] when the daemon
//!   itself went away).

use std::collections::HashMap;

use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListImagesOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures::stream::{BoxStream, StreamExt};

use super::connect::Docker;
use super::error::{Error, Result};
use super::labels::{self, Labels};

/// A local image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Image ID (`sha256:...`).
    pub id: String,
    /// Tags pointing at it.
    pub repo_tags: Vec<String>,
    /// Registry digests (`repo@sha256:...`); empty for locally built images.
    pub repo_digests: Vec<String>,
    /// Labels from the image config.
    pub labels: Labels,
}

/// One progress message of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// Layer ID, when the message is about a layer.
    pub layer: Option<String>,
    /// Status text, e.g. `Downloading`.
    pub status: String,
    /// Bytes done and total, when known.
    pub progress: Option<(i64, i64)>,
}

impl Docker {
    /// The local image named `reference` (tag or ID).
    pub async fn inspect_image(&self, reference: &str) -> Result<ImageInfo> {
        self.count("image_inspect");
        let image = self.client.inspect_image(reference).await?;
        Ok(ImageInfo {
            id: image.id.unwrap_or_default(),
            repo_tags: image.repo_tags.unwrap_or_default(),
            repo_digests: image.repo_digests.unwrap_or_default(),
            labels: super::labels::from_docker(image.config.and_then(|c| c.labels)),
        })
    }

    /// Pulls `reference` (`repo:tag` or `repo@digest`; `latest` if neither) and streams
    /// the daemon's progress. The stream ends after the last message, or with an error.
    pub fn pull_image(&self, reference: &str) -> BoxStream<'static, Result<PullProgress>> {
        let options = CreateImageOptionsBuilder::default().from_image(reference).build();
        self.count("image_pull");
        let image = reference.to_string();
        self.client
            .create_image(Some(options), None, None)
            .map(move |item| match item {
                Ok(info) => Ok(PullProgress {
                    layer: info.id,
                    status: info.status.unwrap_or_default(),
                    progress: info.progress_detail.and_then(|p| Some((p.current?, p.total?))),
                }),
                Err(e) => Err(match Error::from(e) {
                    e @ Error::Unreachable { .. } => e,
                    Error::NotFound { message }
                    | Error::Conflict { message }
                    | Error::Api { message, .. }
                    | Error::Decode { message } => Error::Pull {
                        image: image.clone(),
                        message,
                    },
                    other => Error::Pull {
                        image: image.clone(),
                        message: other.to_string(),
                    },
                }),
            })
            .boxed()
    }

    /// The local images carrying every label of `labels`.
    pub async fn list_images(&self, labels: &Labels) -> Result<Vec<ImageInfo>> {
        let filters = HashMap::from([("label".to_string(), labels::label_filters(labels))]);
        let options = ListImagesOptionsBuilder::default().filters(&filters).build();
        self.count("image_list");
        let list = self.client.list_images(Some(options)).await?;
        Ok(list
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                repo_tags: i.repo_tags,
                repo_digests: i.repo_digests,
                labels: i.labels.into_iter().collect(),
            })
            .collect())
    }

    /// Removes the image `reference` (tag or ID); with a tag, only that tag goes unless it
    /// was the last one. An image used by a container is a [`Error::Conflict`].
    pub async fn remove_image(&self, reference: &str) -> Result<()> {
        let options = RemoveImageOptionsBuilder::default().build();
        self.count("image_remove");
        self.client.remove_image(reference, Some(options), None).await?;
        Ok(())
    }

    /// Points `repo:tag` at the image `source`.
    pub async fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        let options = TagImageOptionsBuilder::default().repo(repo).tag(tag).build();
        self.count("image_tag");
        Ok(self.client.tag_image(source, Some(options)).await?)
    }
}
