//! An S3-compatible bucket as backup storage, through `object_store`'s multipart API.
//!
//! # Guarantees
//! - A write is one multipart upload of the final key: parts of [`PART_SIZE`] (the last
//!   one smaller), at most [`PARTS_IN_FLIGHT`] uploading at once, completed in
//!   [`Upload::finish`]. Until then the key does not exist for readers or listings; the
//!   upload id in [`Pending`] lets [`S3::abort`] discard the parts after a crash.
//! - Errors carry the service's own message (e.g. `InvalidAccessKeyId`).
//!
//! # Caveats
//! - An upload whose id was never recorded (a crash right after it was created) stays until
//!   the bucket's lifecycle rules remove incomplete uploads.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    aws::{AmazonS3, AmazonS3Builder},
    multipart::{MultipartStore, PartId},
    path::Path,
};
use tokio::task::JoinSet;

use super::{Error, Pending};

/// Bytes per uploaded part (S3's minimum is 5 MiB for all but the last part).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading concurrently; with the part being filled this bounds memory to
/// `(PARTS_IN_FLIGHT + 1) * PART_SIZE`.
pub const PARTS_IN_FLIGHT: usize = 2;

/// How to reach a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Endpoint URL (`http://` allowed).
    pub endpoint: String,
    /// Bucket.
    pub bucket: String,
    /// Region.
    pub region: String,
    /// Path-style addressing.
    pub path_style: bool,
    /// Key prefix (no leading or trailing `/`), may be empty.
    pub prefix: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

/// An S3 bucket storage.
#[derive(Debug, Clone)]
pub struct S3 {
    store: Arc<AmazonS3>,
    prefix: String,
}

/// A multipart upload in progress.
#[derive(Debug)]
pub struct Upload {
    store: Arc<AmazonS3>,
    path: Path,
    id: String,
    buffer: BytesMut,
    next_part: usize,
    in_flight: JoinSet<(usize, Result<PartId, object_store::Error>)>,
    done: Vec<Option<PartId>>,
}

fn s3(e: object_store::Error) -> Error {
    Error::S3(summarize(&e.to_string()))
}

/// The stable part of an S3 error: HTTP status, the service's `Code` and `Message` when it
/// sent an XML error body; otherwise the text without the request's duration. (Request
/// ids and timings would make every failure a new status, and every status write a new
/// reconcile.)
fn summarize(full: &str) -> String {
    let between = |open: &str, close: &str| {
        let start = full.find(open)? + open.len();
        let len = full[start..].find(close)?;
        Some(full[start..start + len].to_owned())
    };
    let status = between("status code: ", ": ");
    if let (Some(code), Some(message)) = (between("<Code>", "</Code>"), between("<Message>", "</Message>")) {
        return match status {
            Some(st) => format!("{st}: {code}: {message}"),
            None => format!("{code}: {message}"),
        };
    }
    match (full.find(" in "), full.find(" - ")) {
        (Some(a), Some(b)) if a < b && full[a + 4..b].ends_with('s') => {
            format!("{}{}", &full[..a], &full[b..])
        }
        _ => full.to_owned(),
    }
}

impl S3 {
    /// A client for `config` (no request is made yet).
    pub fn new(config: &S3Config) -> Result<Self, Error> {
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(60),
            ..Default::default()
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_allow_http(config.endpoint.starts_with("http://"))
            .with_retry(retry)
            .build()
            .map_err(s3)?;
        Ok(Self {
            store: Arc::new(store),
            prefix: config.prefix.trim_matches('/').to_owned(),
        })
    }

    /// `prefix/key`.
    pub fn path_of(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn checked(&self, path: &str) -> Result<Path, Error> {
        let inside = self.prefix.is_empty() || path.starts_with(&format!("{}/", self.prefix));
        if !inside {
            return Err(Error::OutsideRoot {
                path: path.to_owned(),
                root: self.prefix.clone(),
            });
        }
        Path::parse(path).map_err(|e| Error::S3(e.to_string()))
    }

    /// Writes and deletes a probe object (proves the credentials may write).
    pub async fn probe(&self) -> Result<(), Error> {
        let probe = Path::from(self.path_of(".berth-probe"));
        self.store
            .put(&probe, PutPayload::from_static(b"ok"))
            .await
            .map_err(s3)?;
        self.store.delete(&probe).await.map_err(s3)
    }

    /// Creates the multipart upload of `prefix/key`.
    pub async fn begin(&self, key: &str) -> Result<Upload, Error> {
        let path = self.checked(&self.path_of(key))?;
        let id = self.store.create_multipart(&path).await.map_err(s3)?;
        Ok(Upload {
            store: self.store.clone(),
            path,
            id,
            buffer: BytesMut::with_capacity(PART_SIZE),
            next_part: 0,
            in_flight: JoinSet::new(),
            done: Vec::new(),
        })
    }

    /// Aborts the recorded multipart upload (an unknown one is fine).
    pub async fn abort(&self, pending: &Pending) -> Result<(), Error> {
        let Some(id) = &pending.upload_id else {
            return Ok(());
        };
        let path = self.checked(&pending.path)?;
        match self.store.abort_multipart(&path, id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(s3(e)),
        }
    }

    /// Streams the object at `path`.
    pub async fn read(&self, path: &str) -> Result<BoxStream<'static, Result<Bytes, Error>>, Error> {
        let path = self.checked(path)?;
        let got = self.store.get(&path).await.map_err(s3)?;
        Ok(got.into_stream().map_err(s3).boxed())
    }

    /// Deletes the object at `path` (absent is fine).
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        let path = self.checked(path)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(s3(e)),
        }
    }

    /// Objects under `prefix/key_prefix` with their sizes.
    pub async fn list(&self, key_prefix: &str) -> Result<Vec<(String, u64)>, Error> {
        let prefix = Path::from(self.path_of(key_prefix));
        let mut out: Vec<(String, u64)> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect()
            .await
            .map_err(s3)?;
        out.sort();
        Ok(out)
    }
}

impl Upload {
    /// The record that lets [`S3::abort`] discard this upload.
    pub fn pending(&self) -> Pending {
        Pending {
            path: self.path.to_string(),
            upload_id: Some(self.id.clone()),
        }
    }

    /// Buffers `data`, sending full parts.
    pub async fn write(&mut self, data: Bytes) -> Result<(), Error> {
        self.buffer.extend_from_slice(&data);
        while self.buffer.len() >= PART_SIZE {
            let part = self.buffer.split_to(PART_SIZE).freeze();
            self.send(part).await?;
        }
        Ok(())
    }

    async fn send(&mut self, part: Bytes) -> Result<(), Error> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.reap_one().await?;
        }
        let (store, path, id, idx) = (
            self.store.clone(),
            self.path.clone(),
            self.id.clone(),
            self.next_part,
        );
        self.next_part += 1;
        self.in_flight.spawn(async move {
            let r = store.put_part(&path, &id, idx, PutPayload::from(part)).await;
            (idx, r)
        });
        Ok(())
    }

    async fn reap_one(&mut self) -> Result<(), Error> {
        match self.in_flight.join_next().await {
            Some(Ok((idx, Ok(part)))) => {
                if self.done.len() <= idx {
                    self.done.resize(idx + 1, None);
                }
                self.done[idx] = Some(part);
                Ok(())
            }
            Some(Ok((_, Err(e)))) => Err(s3(e)),
            Some(Err(e)) => Err(Error::S3(format!("part upload task failed: {e}"))),
            None => Ok(()),
        }
    }

    /// Sends the last part and completes the upload.
    pub async fn finish(mut self) -> Result<String, Error> {
        if !self.buffer.is_empty() || self.next_part == 0 {
            let last = std::mem::take(&mut self.buffer).freeze();
            self.send(last).await?;
        }
        while !self.in_flight.is_empty() {
            self.reap_one().await?;
        }
        let parts: Option<Vec<PartId>> = self.done.drain(..).collect();
        let parts = parts.ok_or_else(|| Error::S3("a part of the upload is missing".to_string()))?;
        self.store
            .complete_multipart(&self.path, &self.id, parts)
            .await
            .map_err(s3)?;
        Ok(self.path.to_string())
    }

    /// Stops the part uploads and aborts the multipart upload.
    pub async fn abort(mut self) -> Result<(), Error> {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        self.store.abort_multipart(&self.path, &self.id).await.map_err(s3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_the_services_words_without_request_ids_or_timings() {
        let full = "The operation lacked the necessary privileges to complete for path .berth-probe: \
                    Error performing PUT http://127.0.0.1:38721/b/.berth-probe in 8.434307ms - Server \
                    returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\
                    <Error><Code>SignatureDoesNotMatch</Code><Message>The signature does not match.</Message>\
                    <RequestId>18ED108FB7A58133503F4FCC</RequestId></Error>";
        assert_eq!(
            summarize(full),
            "403 Forbidden: SignatureDoesNotMatch: The signature does not match."
        );
        let plain = "Generic S3 error: Error performing GET http://x/b in 12.5ms - connection refused";
        assert_eq!(
            summarize(plain),
            "Generic S3 error: Error performing GET http://x/b - connection refused"
        );
    }
}
