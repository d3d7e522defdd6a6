//! Images: inspect, pull, build from a tar context, tag.
//!
//! # Guarantees
//! - A failed build ends its stream with [`Error::Build`] carrying the builder's
//!   message (e.g. the failing `RUN` step); a failed pull ends with [`Error::Pull`]
//!   (or [`Error::Unreachable`] when the daemon itself went away).
//! - Builds use the classic builder (no BuildKit session), which works offline
//!   for `FROM scratch` images.
//!
//! # Caveats
//! - The build stream is driven by a spawned task: dropping the stream stops
//!   reading the daemon's output but does not cancel a build already running there.

use std::collections::HashMap;

use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder, TagImageOptionsBuilder,
};
use bytes::Bytes;
use futures::Stream;
use futures::stream::{BoxStream, StreamExt};
use tokio_stream::wrappers::ReceiverStream;

use super::connect::Docker;
use super::error::{Error, Result};
use super::labels::Labels;

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

/// One message of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A line of build output, without its newline.
    Log(String),
    /// The build finished; the image ID.
    Built {
        /// Image ID (`sha256:...`).
        image_id: String,
    },
}

/// How to build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Dockerfile path inside the context (default `Dockerfile`).
    pub dockerfile: Option<String>,
    /// Labels to set on the image.
    pub labels: Labels,
    /// Build arguments.
    pub build_args: Labels,
    /// Ignore the build cache.
    pub no_cache: bool,
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

    /// Builds an image from a tar archive of the build context (holding the
    /// Dockerfile) and tags it `tag`. Streams the build output; the last item is
    /// [`BuildEvent::Built`] or an error.
    pub fn build_image(
        &self,
        tag: &str,
        context: impl Stream<Item = Bytes> + Send + 'static,
        options: &BuildOptions,
    ) -> BoxStream<'static, Result<BuildEvent>> {
        let labels: HashMap<String, String> = options.labels.clone().into_iter().collect();
        let build_args: HashMap<String, String> = options.build_args.clone().into_iter().collect();
        let bollard_options = BuildImageOptionsBuilder::default()
            .dockerfile(options.dockerfile.as_deref().unwrap_or("Dockerfile"))
            .t(tag)
            .rm(true)
            .forcerm(true)
            .nocache(options.no_cache)
            .labels(&labels)
            .buildargs(&build_args)
            .build();
        self.count("image_build");
        // bollard's build stream borrows the client: drive it from a task that owns a
        // clone, so callers get a 'static stream.
        let client = self.client.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut stream = client.build_image(bollard_options, None, Some(bollard::body_stream(context)));
            let mut built = None;
            while let Some(item) = stream.next().await {
                let event = match item {
                    Ok(info) => {
                        if let Some(id) = info.aux.and_then(|aux| aux.id) {
                            built = Some(id);
                        }
                        match info.stream.or(info.status) {
                            Some(text) => Ok(text),
                            None => continue,
                        }
                    }
                    Err(bollard::errors::Error::DockerStreamError { error }) => {
                        Err(Error::Build { message: error })
                    }
                    Err(e) => Err(match Error::from(e) {
                        e @ Error::Unreachable { .. } => e,
                        Error::NotFound { message }
                        | Error::Conflict { message }
                        | Error::Api { message, .. }
                        | Error::Decode { message } => Error::Build { message },
                        other => other,
                    }),
                };
                match event {
                    Ok(text) => {
                        for line in text.lines().filter(|l| !l.trim().is_empty()) {
                            if tx.send(Ok(BuildEvent::Log(line.to_string()))).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        if tx.send(Err(e)).await.is_err() {
                            tracing::debug!("build stream dropped before its error was read");
                        }
                        return;
                    }
                }
            }
            let last = match built {
                Some(image_id) => Ok(BuildEvent::Built { image_id }),
                None => Err(Error::Build {
                    message: "build output ended without an image id".to_string(),
                }),
            };
            if tx.send(last).await.is_err() {
                tracing::debug!("build stream dropped before its result was read");
            }
        });
        ReceiverStream::new(rx).boxed()
    }

    /// Points `repo:tag` at the image `source`.
    pub async fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        let options = TagImageOptionsBuilder::default().repo(repo).tag(tag).build();
        self.count("image_tag");
        Ok(self.client.tag_image(source, Some(options)).await?)
    }
}
