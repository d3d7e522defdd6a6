//! Backup storages: where dumps are written, listed, read back and deleted — a local
//! directory ([`local`]) or an S3 bucket ([`s3`]).
//!
//! # Guarantees
//! - A write ([`Storage::begin`] → [`Upload::write`]... → [`Upload::finish`]) is invisible
//!   under its final name until `finish`: a local file is written as `<path>.partial` and
//!   renamed after an fsync; an S3 object is a multipart upload completed only at the end.
//!   A run that dies in between never leaves a finished-looking partial backup, and
//!   [`Storage::abort`] removes what it left behind from its [`Pending`] record.
//! - Memory is bounded: local writes go straight to the file; S3 buffers at most
//!   [`s3::PART_SIZE`] per part with at most [`s3::PARTS_IN_FLIGHT`] parts uploading.
//! - [`Storage::list`] shows finished backups only (no `.partial` files, no incomplete
//!   uploads).
//!
//! # Caveats
//! - `local` storages are written by the berth process itself: the storage's server must be
//!   the machine berth runs on.

pub mod local;
pub mod s3;

use bytes::Bytes;
use futures::stream::BoxStream;

pub use local::Local;
pub use s3::{S3, S3Config};

/// A failed storage operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A path lies outside the storage's directory or prefix.
    #[error("{path:?} is outside the storage root {root:?}")]
    OutsideRoot {
        /// The path.
        path: String,
        /// The storage's root.
        root: String,
    },
    /// The S3 service refused or failed the request (its own message).
    #[error("s3: {0}")]
    S3(String),
}

/// Whatever is left of an unfinished write, enough to remove it after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The final path or object key.
    pub path: String,
    /// The S3 multipart upload id (none for local files).
    pub upload_id: Option<String>,
}

/// A backup storage.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A local directory.
    Local(Local),
    /// An S3 bucket.
    S3(S3),
}

/// A write in progress (see the module docs).
#[derive(Debug)]
pub enum Upload {
    /// To a local file.
    Local(local::Upload),
    /// To an S3 multipart upload.
    S3(s3::Upload),
}

impl Storage {
    /// The full path (or key) of `key` relative to this storage's root.
    pub fn path_of(&self, key: &str) -> String {
        match self {
            Self::Local(l) => l.path_of(key),
            Self::S3(s) => s.path_of(key),
        }
    }

    /// Checks the storage is reachable and writable (writes and removes a probe).
    pub async fn probe(&self) -> Result<(), Error> {
        match self {
            Self::Local(l) => l.probe().await,
            Self::S3(s) => s.probe().await,
        }
    }

    /// Starts writing `key` (relative to the root) under a temporary name.
    pub async fn begin(&self, key: &str) -> Result<Upload, Error> {
        Ok(match self {
            Self::Local(l) => Upload::Local(l.begin(key).await?),
            Self::S3(s) => Upload::S3(s.begin(key).await?),
        })
    }

    /// Removes what an unfinished write left behind; nothing left is fine.
    pub async fn abort(&self, pending: &Pending) -> Result<(), Error> {
        match self {
            Self::Local(l) => l.abort(pending).await,
            Self::S3(s) => s.abort(pending).await,
        }
    }

    /// Reads a finished backup at `path` as a byte stream.
    pub async fn read(&self, path: &str) -> Result<BoxStream<'static, Result<Bytes, Error>>, Error> {
        match self {
            Self::Local(l) => l.read(path).await,
            Self::S3(s) => s.read(path).await,
        }
    }

    /// Deletes the finished backup at `path`; an absent one is fine.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        match self {
            Self::Local(l) => l.delete(path).await,
            Self::S3(s) => s.delete(path).await,
        }
    }

    /// The finished backups under `prefix` (relative to the root): full paths and sizes.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, Error> {
        match self {
            Self::Local(l) => l.list(prefix).await,
            Self::S3(s) => s.list(prefix).await,
        }
    }
}

impl Upload {
    /// What to record so that [`Storage::abort`] can remove this write after a crash.
    pub fn pending(&self) -> Pending {
        match self {
            Self::Local(u) => u.pending(),
            Self::S3(u) => u.pending(),
        }
    }

    /// Appends `data`.
    pub async fn write(&mut self, data: Bytes) -> Result<(), Error> {
        match self {
            Self::Local(u) => u.write(&data).await,
            Self::S3(u) => u.write(data).await,
        }
    }

    /// Commits the write under its final name; returns that path.
    pub async fn finish(self) -> Result<String, Error> {
        match self {
            Self::Local(u) => u.finish().await,
            Self::S3(u) => u.finish().await,
        }
    }

    /// Abandons the write, removing what it wrote (best effort: failures are logged).
    pub async fn abort(self) {
        let pending = self.pending();
        let result = match self {
            Self::Local(u) => u.abort().await,
            Self::S3(u) => u.abort().await,
        };
        if let Err(e) = result {
            tracing::warn!(path = %pending.path, error = %e, "could not remove an unfinished backup write");
        }
    }
}
