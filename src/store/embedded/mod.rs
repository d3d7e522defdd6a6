//! The embedded on-disk store: etcd's revisioned key-value semantics in one redb file.
//!
//! [`EmbeddedStore`] is berth's default backend. It implements [`Store`] with the same
//! semantics as the etcd backend: one global revision, compare-and-swap writes, watches
//! from any revision still in the history, compaction.
//!
//! # Guarantees
//! - A write is acknowledged only after the redb transaction holding it is durably
//!   committed (`Durability::Immediate`): a crash loses no acknowledged write.
//! - Writes go through one writer thread that applies every waiting request in one
//!   transaction (group commit): one fsync serves many writers.
//! - Reads (`get`, `list`, watch replay) run on `spawn_blocking` threads, each in one read
//!   transaction: a listing is a consistent snapshot at the revision it reports.
//! - Every write appends a history record in the same transaction; the history is bounded
//!   by [`EmbeddedOptions::history_limit`] (auto-compaction) and by [`Store::compact`].
//! - The data directory is locked: a second open, from any process, fails with
//!   [`store::Error::Unavailable`]. This lock is what makes the embedded store single-leader.
//!
//! # Caveats
//! - [`EmbeddedStore::open`] blocks (it may repair the database after a crash): call it at
//!   start-up or from `spawn_blocking`.
//! - A write whose caller stops waiting (its future dropped) still happens once sent.
//! - Dropping the store releases the database lock shortly after, once in-flight reads end;
//!   [`EmbeddedStore::close`] waits for that.

mod error;
mod tables;
#[cfg(test)]
mod tests;
mod watch;
mod writer;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Weak, mpsc},
};

use berth_crds::store::{self, KeyValue, Listing, Revision, Store, WatchStream};
use redb::{Database, ReadTransaction, ReadableTable};
use tokio::sync::{mpsc as async_mpsc, oneshot, watch as revision};

pub use error::EmbeddedError;
use tables::{FORMAT, HISTORY, KV, META, META_FORMAT};
use writer::{Request, Writer};

/// The database file inside the data directory.
const DB_FILE: &str = "berth.redb";
/// Events buffered per watch stream before its task waits for the consumer.
const WATCH_BUFFER: usize = 1024;

/// Tuning of an [`EmbeddedStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// History records kept for watch replay (at least 1); older ones are compacted away
    /// after each commit.
    pub history_limit: u64,
    /// Most write requests applied in one transaction (at least 1).
    pub max_batch: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            history_limit: 100_000,
            max_batch: 4_096,
        }
    }
}

/// The open database; dropping it closes the file and releases the directory lock.
struct Shared {
    /// The redb database (declared first: it drops before `_released` signals).
    db: Database,
    /// Dropped right after the database: wakes [`EmbeddedStore::close`].
    _released: oneshot::Sender<()>,
}

/// The embedded on-disk [`Store`]: one redb database in a data directory.
pub struct EmbeddedStore {
    /// The data directory.
    dir: PathBuf,
    /// The database; the writer thread owns the strong handle, reads upgrade this one.
    db: Weak<Shared>,
    /// Write requests to the writer thread.
    requests: mpsc::Sender<Request>,
    /// The last committed revision, as published by the writer.
    committed: revision::Receiver<Revision>,
    /// Resolves when the database has been closed.
    released: oneshot::Receiver<()>,
    /// The number of live watch tasks.
    watchers: Arc<revision::Sender<usize>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> store::Result<Self> {
        Self::open_with(dir, EmbeddedOptions::default())
    }

    /// Opens (creating if needed) the store in `dir`.
    ///
    /// Fails with [`store::Error::Unavailable`] when another store holds the directory.
    pub fn open_with(dir: impl AsRef<Path>, options: EmbeddedOptions) -> store::Result<Self> {
        Ok(Self::open_inner(dir.as_ref(), options)?)
    }

    fn open_inner(dir: &Path, options: EmbeddedOptions) -> Result<Self, EmbeddedError> {
        std::fs::create_dir_all(dir).map_err(|source| EmbeddedError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let db = Database::builder().create(&path).map_err(|source| match source {
            redb::DatabaseError::DatabaseAlreadyOpen => EmbeddedError::InUse(dir.to_owned()),
            source => EmbeddedError::Open {
                path: path.clone(),
                source: Box::new(source),
            },
        })?;
        let counters = init(&db)?;
        let (released_tx, released) = oneshot::channel();
        let shared = Arc::new(Shared {
            db,
            _released: released_tx,
        });
        let (requests, incoming) = mpsc::channel();
        let (published, committed) = revision::channel(counters.revision);
        let writer = Writer {
            db: shared.clone(),
            requests: incoming,
            committed: published,
            history_limit: i64::try_from(options.history_limit.max(1)).unwrap_or(i64::MAX),
            max_batch: options.max_batch.max(1),
        };
        let db = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("berth-store-writer".into())
            .spawn(move || writer.run())
            .map_err(EmbeddedError::SpawnWriter)?;
        drop(shared);
        tracing::info!(dir = %dir.display(), revision = counters.revision, "embedded store open");
        Ok(Self {
            dir: dir.to_owned(),
            db,
            requests,
            committed,
            released,
            watchers: Arc::new(revision::Sender::new(0)),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the writer (after it has answered every request already sent) and waits until
    /// the database is closed and its directory lock released.
    ///
    /// Watch streams of this store end with [`store::Error::Unavailable`].
    pub async fn close(self) {
        let Self {
            requests, released, ..
        } = self;
        drop(requests);
        // The sender is never used: its drop, right after the database's, is the signal.
        let _closed = released.await;
    }

    /// Sends one request to the writer and waits for its answer.
    async fn write<T>(&self, request: impl FnOnce(writer::Reply<T>) -> Request) -> store::Result<T> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .map_err(|_| EmbeddedError::Closed)?;
        answer
            .await
            .map_err(|_| store::Error::Unavailable("the store writer stopped".into()))?
    }
}

/// Creates the tables of a new database and checks the format of an existing one.
fn init(db: &Database) -> Result<tables::Meta, EmbeddedError> {
    let txn = db.begin_write()?;
    let counters = {
        let mut meta = txn.open_table(META)?;
        let format = meta.get(META_FORMAT)?.map(|g| g.value());
        match format {
            None => {
                meta.insert(META_FORMAT, FORMAT)?;
            }
            Some(FORMAT) => {}
            Some(found) => {
                return Err(EmbeddedError::Format {
                    found,
                    expected: FORMAT,
                });
            }
        }
        txn.open_table(KV)?;
        txn.open_table(HISTORY)?;
        tables::read_meta(&meta)?
    };
    txn.commit()?;
    Ok(counters)
}

/// Runs `f` in a read transaction on a blocking thread.
async fn read<T: Send + 'static>(
    db: &Weak<Shared>,
    f: impl FnOnce(&ReadTransaction) -> Result<T, EmbeddedError> + Send + 'static,
) -> store::Result<T> {
    let db = db.clone();
    let task = tokio::task::spawn_blocking(move || {
        let shared = db.upgrade().ok_or(EmbeddedError::Closed)?;
        let txn = shared.db.begin_read()?;
        f(&txn)
    });
    let result = task.await.map_err(|e| EmbeddedError::ReadTask(e.to_string()))?;
    Ok(result?)
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> store::Result<Option<KeyValue>> {
        let key = key.to_owned();
        read(&self.db, move |txn| tables::get(txn, &key)).await
    }

    async fn list(&self, prefix: &str) -> store::Result<Listing> {
        let prefix = prefix.to_owned();
        read(&self.db, move |txn| tables::list(txn, &prefix)).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> store::Result<Revision> {
        self.write(|reply| Request::Create {
            key: key.to_owned(),
            value,
            reply,
        })
        .await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> store::Result<Revision> {
        self.write(|reply| Request::Update {
            key: key.to_owned(),
            value,
            expected,
            reply,
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> store::Result<(Revision, KeyValue)> {
        self.write(|reply| Request::Delete {
            key: key.to_owned(),
            expected,
            reply,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> store::Result<WatchStream> {
        let counters = read(&self.db, tables::meta).await?;
        if after.saturating_add(1) < counters.compacted {
            return Err(store::Error::Compacted {
                requested: after,
                compacted: counters.compacted,
                current: counters.revision,
            });
        }
        let (events, mut stream) = async_mpsc::channel(WATCH_BUFFER);
        let watcher = watch::Watcher {
            db: self.db.clone(),
            prefix: prefix.into(),
            last: after,
            committed: self.committed.clone(),
            events,
            _live: watch::Live::new(self.watchers.clone()),
        };
        tokio::spawn(watcher.run());
        Ok(Box::pin(futures::stream::poll_fn(move |cx| stream.poll_recv(cx))))
    }

    async fn compact(&self, revision: Revision) -> store::Result<()> {
        self.write(|reply| Request::Compact { revision, reply }).await
    }

    async fn current_revision(&self) -> store::Result<Revision> {
        Ok(*self.committed.borrow())
    }
}
