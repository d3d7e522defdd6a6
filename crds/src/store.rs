//! The storage contract every backend implements: etcd's revisioned key-value semantics.
//!
//! The rest of berth sees nothing but [`Store`]: the embedded on-disk backend and the etcd
//! backend (both in the `berth` crate) implement it, and one conformance suite runs against
//! both.
//!
//! # Guarantees
//! - One global revision, strictly increasing: every successful write (create, update,
//!   delete) gets a revision greater than every earlier one, and that revision becomes the
//!   key's [`KeyValue::mod_revision`] (an object's `resourceVersion`).
//! - Writes are compare-and-swap: [`Store::create`] fails if the key exists, [`Store::update`]
//!   and [`Store::delete`] fail with [`Error::Conflict`] unless the key's current
//!   `mod_revision` equals the expected one.
//! - [`Store::watch`] delivers every change to keys under a prefix with a revision greater
//!   than the one it starts after, in revision order, with no gaps and no duplicates,
//!   deletes included.
//! - A watch that starts before the compaction point fails with [`Error::Compacted`], which
//!   carries the current revision so that the caller can relist and watch again.
//!
//! # Caveats
//! - Revisions are global, not per prefix: a watch on one prefix sees gaps in the revision
//!   numbers that belong to other prefixes. "No gaps" means no missed change under the
//!   watched prefix.
//! - A watch stream ends with an error (and no further items) when the backend can no longer
//!   serve it, for example because the watcher fell behind the compaction point. The caller
//!   resumes from the last revision it saw.

use std::pin::Pin;

use futures::Stream;

/// A store revision: etcd's `mod_revision`, and the `resourceVersion` of berth objects.
pub type Revision = i64;

/// The result type of every store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stream of watch events; it ends after yielding an error.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent>> + Send>>;

/// Errors of store operations, shared by every backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The key does not exist.
    #[error("key {key:?} not found")]
    NotFound {
        /// The missing key.
        key: String,
    },
    /// A create found the key already present.
    #[error("key {key:?} already exists")]
    AlreadyExists {
        /// The existing key.
        key: String,
    },
    /// A compare-and-swap found another revision than the one expected.
    #[error("key {key:?} was modified: expected revision {expected}, found {actual}")]
    Conflict {
        /// The contended key.
        key: String,
        /// The revision the caller expected.
        expected: Revision,
        /// The key's current `mod_revision` (0 when the key no longer exists).
        actual: Revision,
    },
    /// The requested revision is older than the compaction point: relist and watch again.
    #[error("revision {requested} has been compacted (compacted up to {compacted}, current {current})")]
    Compacted {
        /// The revision the watch was asked to start after.
        requested: Revision,
        /// The compaction point: revisions below it are gone.
        compacted: Revision,
        /// The store's current revision, from which a relist can start.
        current: Revision,
    },
    /// A compaction was asked for a revision newer than the current one.
    #[error("cannot compact at revision {requested}: the current revision is {current}")]
    FutureRevision {
        /// The revision the caller asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// A watcher fell too far behind and was dropped; resume from its last revision.
    #[error("watch fell behind and was dropped: {0}")]
    WatchLagged(String),
    /// The backend cannot be reached (etcd down, database closed); the caller may retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Any other backend failure (I/O, corruption, protocol); not retryable as such.
    #[error("store backend error: {0}")]
    Backend(String),
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// A key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key.
    pub key: String,
    /// The value bytes (for a delete event, the value the key had before the delete).
    pub value: Vec<u8>,
    /// The revision that created the key.
    pub create_revision: Revision,
    /// The revision of the key's last write (for a delete event, the delete's revision).
    pub mod_revision: Revision,
}

/// One change observed by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// Put or delete.
    pub kind: EventKind,
    /// The key after a put, or the last value before a delete, stamped with the revision of
    /// this change in `mod_revision`.
    pub kv: KeyValue,
}

impl WatchEvent {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A consistent read of every key under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The keys, sorted by key.
    pub items: Vec<KeyValue>,
    /// The store revision the listing was read at: a watch started after it misses nothing.
    pub revision: Revision,
}

/// The storage contract: etcd v3 semantics over string keys and byte values.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Reads every key starting with `prefix`, sorted by key, and the revision of the read.
    async fn list(&self, prefix: &str) -> Result<Listing>;

    /// Creates `key`; fails with [`Error::AlreadyExists`] when it exists. Returns the write's
    /// revision.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision>;

    /// Replaces `key`'s value if its `mod_revision` equals `expected`; otherwise fails with
    /// [`Error::Conflict`] (or [`Error::NotFound`] when the key is absent). Returns the
    /// write's revision.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision>;

    /// Deletes `key`, if `expected` is given only when its `mod_revision` equals it. Fails
    /// with [`Error::NotFound`] when the key is absent. Returns the delete's revision and the
    /// value the key had.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)>;

    /// Streams every change under `prefix` with a revision greater than `after`, in order.
    ///
    /// Fails (or the stream's first item fails) with [`Error::Compacted`] when `after + 1` is
    /// below the compaction point.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Discards the change history below `revision`: later watches must start at or after
    /// `revision - 1`. Compacting at or below the current compaction point does nothing.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The store's current revision (the revision of the last write, 0 when empty).
    async fn current_revision(&self) -> Result<Revision>;
}
