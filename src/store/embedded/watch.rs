//! One task per watch: replays the history after a revision, then follows new commits.
//!
//! # Guarantees
//! - Events under the prefix arrive in revision order, without gaps or duplicates; records of
//!   other prefixes are skipped (revisions are global).
//! - A watcher only reads committed history from its own read transactions and sends into its
//!   own bounded channel: a slow consumer never stalls the writer or other watchers.
//! - The task ends when the consumer drops the stream, whatever it was doing.
//!
//! # Caveats
//! - A consumer that falls behind the compaction point gets [`store::Error::Compacted`], whose
//!   `requested` is the last revision the stream covered (where a new watch should resume),
//!   and the stream ends.
//! - When the store closes, a caught-up stream yields [`store::Error::Unavailable`] and ends.

use std::sync::{Arc, Weak};

use berth_crds::store::{self, Revision, WatchEvent};
use tokio::sync::{mpsc, watch};

use super::{Shared, read, tables};

/// History records examined per read transaction.
const PAGE: usize = 1024;

/// Counts itself among the live watch tasks while it exists.
pub(super) struct Live(Arc<watch::Sender<usize>>);

impl Live {
    /// Registers one more live watch task.
    pub(super) fn new(count: Arc<watch::Sender<usize>>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The state of one watch task.
pub(super) struct Watcher {
    /// The database (weak: watchers never keep a closed store open).
    pub(super) db: Weak<Shared>,
    /// The watched key prefix.
    pub(super) prefix: Arc<str>,
    /// Every revision up to this one has been delivered or skipped.
    pub(super) last: Revision,
    /// The writer's committed revision.
    pub(super) committed: watch::Receiver<Revision>,
    /// The consumer's side of the stream.
    pub(super) events: mpsc::Sender<store::Result<WatchEvent>>,
    /// Registration among the live watch tasks.
    pub(super) _live: Live,
}

impl Watcher {
    /// Serves the watch until the consumer leaves or an error ends it.
    pub(super) async fn run(mut self) {
        if let Err(e) = self.serve().await {
            tracing::debug!(prefix = %self.prefix, last = self.last, error = %e, "watch ended");
            // A send error means the consumer is gone: nobody is left to tell.
            let _ = self.events.send(Err(e)).await;
        }
    }

    /// Returns `Ok` when the consumer dropped the stream.
    async fn serve(&mut self) -> store::Result<()> {
        loop {
            let committed = *self.committed.borrow_and_update();
            while self.last < committed {
                let (prefix, after) = (self.prefix.clone(), self.last);
                let page = read(&self.db, move |txn| {
                    tables::history_page(txn, &prefix, after, PAGE)
                })
                .await??;
                for event in page.events {
                    let Ok(permit) = self.events.reserve().await else {
                        return Ok(());
                    };
                    permit.send(Ok(event));
                }
                self.last = page.scanned_to;
            }
            tokio::select! {
                changed = self.committed.changed() => {
                    if changed.is_err() {
                        return Err(store::Error::Unavailable("the store was closed".into()));
                    }
                }
                () = self.events.closed() => return Ok(()),
            }
        }
    }
}
