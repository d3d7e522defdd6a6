//! The embedded store's single writer thread: compare-and-swap writes with group commit.
//!
//! # Guarantees
//! - Every request waiting in the channel (up to `max_batch`) is applied in ONE redb write
//!   transaction, committed with `Durability::Immediate`, and only then answered: an
//!   acknowledged write is on disk.
//! - Requests of a batch are applied in arrival order, each checked against the state that
//!   includes the earlier requests of the same batch, and each successful write gets its own
//!   revision and history record in the same transaction.
//! - The committed revision is published (for watchers) before any requester is answered.
//! - Auto-compaction runs inside the batch's transaction: the history never holds more than
//!   `history_limit` records once a batch commits.
//!
//! # Caveats
//! - When a batch fails (I/O error, failed commit) every request in it fails with the same
//!   error, including those whose compare-and-swap check had failed on their own.
//! - The thread exits when the store drops its sending side; it owns the only long-lived
//!   handle on the database, so the database closes (and its lock is released) soon after.

use std::sync::{Arc, mpsc};

use berth_crds::store::{self, KeyValue, Revision};
use redb::{Durability, ReadableTable, Table};
use tokio::sync::{oneshot, watch};

use super::{
    EmbeddedError, Shared,
    tables::{DELETE, HISTORY, KV, META, META_COMPACTED, META_REVISION, PUT, read_meta},
};

/// Where a request's answer goes.
pub(super) type Reply<T> = oneshot::Sender<store::Result<T>>;

/// One write asked of the writer thread.
pub(super) enum Request {
    /// Create a key that must not exist.
    Create {
        /// The key.
        key: String,
        /// Its value.
        value: Vec<u8>,
        /// Receives the write's revision.
        reply: Reply<Revision>,
    },
    /// Replace the value of a key whose `mod_revision` must equal `expected`.
    Update {
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
        /// The `mod_revision` the key must have.
        expected: Revision,
        /// Receives the write's revision.
        reply: Reply<Revision>,
    },
    /// Delete a key, optionally only at an expected `mod_revision`.
    Delete {
        /// The key.
        key: String,
        /// The `mod_revision` the key must have, if any.
        expected: Option<Revision>,
        /// Receives the delete's revision and the key's last state.
        reply: Reply<(Revision, KeyValue)>,
    },
    /// Discard history below `revision`.
    Compact {
        /// The new compaction point.
        revision: Revision,
        /// Receives the outcome.
        reply: Reply<()>,
    },
}

impl Request {
    /// Answers the request with a batch-wide failure.
    fn fail(self, error: store::Error) {
        // A send error only means the requester stopped waiting; there is nobody to tell.
        match self {
            Request::Create { reply, .. } | Request::Update { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Request::Delete { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Request::Compact { reply, .. } => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// An answer held back until the batch's commit: called with the batch failure, if any.
type Pending = Box<dyn FnOnce(Option<&store::Error>) + Send>;

fn pending<T: Send + 'static>(reply: Reply<T>, result: store::Result<T>) -> Pending {
    Box::new(move |failure| {
        let result = match failure {
            Some(e) => Err(e.clone()),
            None => result,
        };
        // A send error only means the requester stopped waiting; the write stands.
        let _ = reply.send(result);
    })
}

/// Queues `reply`'s answer, or stops the batch on a storage failure.
fn step<T: Send + 'static>(
    replies: &mut Vec<Pending>,
    reply: Reply<T>,
    result: Result<store::Result<T>, EmbeddedError>,
) -> Result<(), EmbeddedError> {
    match result {
        Ok(r) => {
            replies.push(pending(reply, r));
            Ok(())
        }
        Err(e) => {
            // The batch-wide failure replaces this placeholder when the answer is sent.
            replies.push(pending(
                reply,
                Err(store::Error::Backend("write batch aborted".into())),
            ));
            Err(e)
        }
    }
}

/// Which state a put requires.
#[derive(Clone, Copy)]
enum Expect {
    /// The key must not exist (create).
    Absent,
    /// The key must exist with this `mod_revision` (update).
    Revision(Revision),
}

/// The writer thread's state.
pub(super) struct Writer {
    /// The database; the writer holds the only long-lived strong handle.
    pub(super) db: Arc<Shared>,
    /// Incoming write requests.
    pub(super) requests: mpsc::Receiver<Request>,
    /// Publishes the committed revision to watchers.
    pub(super) committed: watch::Sender<Revision>,
    /// History records kept for watch replay.
    pub(super) history_limit: Revision,
    /// Most requests applied in one transaction.
    pub(super) max_batch: usize,
}

impl Writer {
    /// Serves requests until the store drops its sending side.
    pub(super) fn run(self) {
        while let Ok(first) = self.requests.recv() {
            let mut batch = Vec::with_capacity(64);
            batch.push(first);
            batch.extend(self.requests.try_iter().take(self.max_batch.saturating_sub(1)));
            self.commit(batch);
        }
        tracing::debug!("store writer stopped");
    }

    /// Applies, commits and answers one batch.
    fn commit(&self, batch: Vec<Request>) {
        let mut replies = Vec::with_capacity(batch.len());
        let mut requests = batch.into_iter();
        let failure = match self.apply(&mut requests, &mut replies) {
            Ok(Some(revision)) => {
                self.committed.send_replace(revision);
                None
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "store write batch failed");
                Some(store::Error::from(e))
            }
        };
        for reply in replies {
            reply(failure.as_ref());
        }
        if let Some(failure) = failure {
            for request in requests {
                request.fail(failure.clone());
            }
        }
    }

    /// Applies requests in one transaction and commits it; returns the new revision when
    /// anything changed. On error the transaction is dropped (aborted) uncommitted.
    fn apply(
        &self,
        requests: &mut std::vec::IntoIter<Request>,
        replies: &mut Vec<Pending>,
    ) -> Result<Option<Revision>, EmbeddedError> {
        let mut txn = self.db.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        let revision = {
            let meta = txn.open_table(META)?;
            let counters = read_meta(&meta)?;
            let mut batch = Batch {
                kv: txn.open_table(KV)?,
                history: txn.open_table(HISTORY)?,
                meta,
                revision: counters.revision,
                compacted: counters.compacted,
            };
            for request in requests.by_ref() {
                match request {
                    Request::Create { key, value, reply } => {
                        step(replies, reply, batch.put(&key, &value, Expect::Absent))?
                    }
                    Request::Update {
                        key,
                        value,
                        expected,
                        reply,
                    } => step(
                        replies,
                        reply,
                        batch.put(&key, &value, Expect::Revision(expected)),
                    )?,
                    Request::Delete { key, expected, reply } => {
                        step(replies, reply, batch.delete(&key, expected))?
                    }
                    Request::Compact { revision, reply } => step(replies, reply, batch.compact(revision))?,
                }
            }
            batch.auto_compact(self.history_limit)?;
            if !batch.save(counters)? {
                drop(batch);
                txn.abort()?;
                return Ok(None);
            }
            batch.revision
        };
        txn.commit()?;
        Ok(Some(revision))
    }
}

/// The tables and counters of one write transaction.
struct Batch<'t> {
    kv: Table<'t, &'static str, (Revision, Revision, &'static [u8])>,
    history: Table<'t, Revision, (u8, &'static str, &'static [u8], Revision)>,
    meta: Table<'t, &'static str, i64>,
    revision: Revision,
    compacted: Revision,
}

impl Batch<'_> {
    /// Creates or updates `key` if it is in the `expect`ed state.
    fn put(
        &mut self,
        key: &str,
        value: &[u8],
        expect: Expect,
    ) -> Result<store::Result<Revision>, EmbeddedError> {
        let existing = self.kv.get(key)?.map(|g| {
            let (create, modified, _) = g.value();
            (create, modified)
        });
        match (expect, existing) {
            (Expect::Absent, Some(_)) => return Ok(Err(store::Error::AlreadyExists { key: key.to_owned() })),
            (Expect::Revision(_), None) => return Ok(Err(store::Error::NotFound { key: key.to_owned() })),
            (Expect::Revision(expected), Some((_, actual))) if actual != expected => {
                return Ok(Err(store::Error::Conflict {
                    key: key.to_owned(),
                    expected,
                    actual,
                }));
            }
            _ => {}
        }
        let revision = self.revision + 1;
        let create = existing.map_or(revision, |(create, _)| create);
        self.kv.insert(key, (create, revision, value))?;
        self.history.insert(revision, (PUT, key, value, create))?;
        self.revision = revision;
        Ok(Ok(revision))
    }

    /// Deletes `key`, at the `expected` revision if one is given.
    fn delete(
        &mut self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<store::Result<(Revision, KeyValue)>, EmbeddedError> {
        let existing = self.kv.get(key)?.map(|g| {
            let (create, modified, value) = g.value();
            (create, modified, value.to_vec())
        });
        let Some((create_revision, mod_revision, value)) = existing else {
            return Ok(Err(store::Error::NotFound { key: key.to_owned() }));
        };
        match expected {
            Some(expected) if expected != mod_revision => {
                return Ok(Err(store::Error::Conflict {
                    key: key.to_owned(),
                    expected,
                    actual: mod_revision,
                }));
            }
            _ => {}
        }
        let revision = self.revision + 1;
        self.kv.remove(key)?;
        self.history
            .insert(revision, (DELETE, key, value.as_slice(), create_revision))?;
        self.revision = revision;
        let previous = KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision,
        };
        Ok(Ok((revision, previous)))
    }

    /// Moves the compaction point up to `revision`, discarding older history.
    fn compact(&mut self, revision: Revision) -> Result<store::Result<()>, EmbeddedError> {
        if revision > self.revision {
            return Ok(Err(store::Error::FutureRevision {
                requested: revision,
                current: self.revision,
            }));
        }
        if revision > self.compacted {
            self.history.retain_in(..revision, |_, _| false)?;
            self.compacted = revision;
        }
        Ok(Ok(()))
    }

    /// Compacts so that at most `limit` history records remain.
    fn auto_compact(&mut self, limit: Revision) -> Result<(), EmbeddedError> {
        let held = self.revision - self.compacted.max(1) + 1;
        if held > limit {
            // `limit` is at least 1, so the point never passes the current revision.
            if let Err(e) = self.compact(self.revision - limit + 1)? {
                return Err(EmbeddedError::Corrupt(format!("auto-compaction refused: {e}")));
            }
        }
        Ok(())
    }

    /// Records changed counters; returns whether the batch changed anything.
    fn save(&mut self, before: super::tables::Meta) -> Result<bool, EmbeddedError> {
        let mut changed = false;
        if self.revision != before.revision {
            self.meta.insert(META_REVISION, self.revision)?;
            changed = true;
        }
        if self.compacted != before.compacted {
            self.meta.insert(META_COMPACTED, self.compacted)?;
            changed = true;
        }
        Ok(changed)
    }
}
