//! Errors of the embedded store, and how they map onto the store contract's errors.

use std::path::PathBuf;

use berth_crds::store;

/// What can go wrong inside the embedded store.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The data directory could not be created.
    #[error("cannot create data directory {}: {source}", path.display())]
    CreateDir {
        /// The data directory.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// Another process (or another store in this process) holds the database's lock.
    #[error("data directory {} is in use by another berth process", .0.display())]
    InUse(PathBuf),
    /// The database file could not be opened (or repaired after a crash).
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// redb's reason.
        source: Box<redb::DatabaseError>,
    },
    /// The database was written in a format this version does not know.
    #[error("database format {found} is not supported (this berth writes format {expected})")]
    Format {
        /// The format recorded in the database.
        found: i64,
        /// The format this version reads and writes.
        expected: i64,
    },
    /// A redb operation (transaction, table, storage, commit) failed.
    #[error("database error: {0}")]
    Database(Box<redb::Error>),
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The writer thread could not be started.
    #[error("cannot start the store writer thread: {0}")]
    SpawnWriter(std::io::Error),
    /// The store has been closed: its writer stopped and its database is released.
    #[error("the store is closed")]
    Closed,
    /// A blocking read task panicked or was cancelled.
    #[error("read task failed: {0}")]
    ReadTask(String),
}

macro_rules! from_redb {
    ($($ty:ty),*) => {
        $(impl From<$ty> for EmbeddedError {
            fn from(e: $ty) -> Self {
                Self::Database(Box::new(e.into()))
            }
        })*
    };
}
from_redb!(
    redb::StorageError,
    redb::TransactionError,
    redb::TableError,
    redb::CommitError
);

impl From<EmbeddedError> for store::Error {
    fn from(e: EmbeddedError) -> Self {
        match e {
            EmbeddedError::InUse(_) | EmbeddedError::Closed => store::Error::Unavailable(e.to_string()),
            _ => store::Error::Backend(e.to_string()),
        }
    }
}
