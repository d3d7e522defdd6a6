//! Copying files into containers as tar archives (e.g. Traefik's dynamic config).
//!
//! # Caveats
//! - The destination directory must exist in the container; the archive's entries
//!   are extracted under it and overwrite files of the same name.

use bytes::Bytes;
use futures::Stream;

use bollard::query_parameters::UploadToContainerOptionsBuilder;

use super::connect::Docker;
use super::error::Result;

impl Docker {
    /// Extracts the tar archive `tar` into directory `path` of the container
    /// (running or stopped).
    pub async fn upload(&self, container: &str, path: &str, tar: Bytes) -> Result<()> {
        let options = UploadToContainerOptionsBuilder::default().path(path).build();
        self.count("container_upload");
        Ok(self
            .client
            .upload_to_container(container, Some(options), bollard::body_full(tar))
            .await?)
    }

    /// Like [`Docker::upload`], with the archive streamed.
    pub async fn upload_stream(
        &self,
        container: &str,
        path: &str,
        tar: impl Stream<Item = Bytes> + Send + 'static,
    ) -> Result<()> {
        let options = UploadToContainerOptionsBuilder::default().path(path).build();
        self.count("container_upload");
        Ok(self
            .client
            .upload_to_container(container, Some(options), bollard::body_stream(tar))
            .await?)
    }
}
