//! Watch: store changes turned into Kubernetes watch events, with bookmarks.
//!
//! # Guarantees
//! - Without a resourceVersion the watch starts with the current objects as `ADDED`, then
//!   continues from the revision of that list: nothing is missed in between.
//! - With a resourceVersion every change after it is delivered in order; a compacted one is
//!   [`Error::Gone`], so the client relists.
//! - Each watch reads the store on its own task: a slow client never stalls the store or
//!   other watchers. A client that does not take an event within the slow-watcher timeout is
//!   dropped; after the events already queued it gets a final `Unavailable` error.
//!
//! # Caveats
//! - A label selector is applied to each new state: an object that stops matching is not
//!   reported as `DELETED`.
//! - A bookmark carries the revision of the last event delivered on this watch (or its
//!   starting revision), which is always safe to resume from but does not advance while the
//!   watched collection is quiet. No bookmark is sent before the initial `ADDED` events are
//!   all delivered.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use berth_crds::{
    registry::KindInfo,
    store::{EventKind, WatchEvent as StoreEvent},
};
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{
    error::{Error, Result},
    object,
    objects::Api,
    selector::{FieldSelector, LabelSelector},
};

/// Events queued per watch before the client counts as slow, unless [`WatchParams`] says.
pub const DEFAULT_QUEUE: usize = 1024;

/// A Kubernetes watch event: `{"type": ..., "object": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The object (or a `Status` for `ERROR`).
    pub object: Value,
}

impl Event {
    /// A bookmark at `rv` for `info`'s kind.
    pub fn bookmark(info: &KindInfo, rv: i64) -> Self {
        Self {
            kind: "BOOKMARK",
            object: json!({
                "apiVersion": berth_crds::API_VERSION,
                "kind": info.kind,
                "metadata": {"resourceVersion": rv.to_string()},
            }),
        }
    }

    /// An `ERROR` event carrying the error's `Status`.
    pub fn error(err: &Error) -> Self {
        Self {
            kind: "ERROR",
            object: serde_json::to_value(err.status()).unwrap_or_default(),
        }
    }

    /// The resourceVersion the event carries, if any.
    pub fn revision(&self) -> Option<i64> {
        object::resource_version(&self.object).and_then(|r| r.ok())
    }
}

/// What to watch.
#[derive(Debug, Clone, Default)]
pub struct WatchParams {
    /// Start after this resourceVersion; `None` (or 0) starts with the current state.
    pub resource_version: Option<i64>,
    /// Label filter.
    pub labels: LabelSelector,
    /// Field filter.
    pub fields: FieldSelector,
    /// How long a full queue may wait for the client before the watch is dropped.
    pub slow_timeout: Duration,
    /// Events queued for the client (beyond what the connection buffers) before a send
    /// has to wait; `0` means [`DEFAULT_QUEUE`].
    pub queue: usize,
}

/// A running watch: a stream of events ending with an error when it cannot go on.
pub struct Watch {
    rx: mpsc::Receiver<Result<Event>>,
    dropped: Arc<AtomicBool>,
    done: bool,
    after: i64,
    initial: usize,
}

impl Watch {
    /// The revision the watch continues after: the one asked for, or that of its initial list.
    pub fn start_revision(&self) -> i64 {
        self.after
    }

    /// How many `ADDED` events of the initial list come first. Until they are all delivered,
    /// no revision is safe to resume from: the list is sorted by key, not by revision.
    pub fn initial_events(&self) -> usize {
        self.initial
    }
}

impl Stream for Watch {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(None) => {
                self.done = true;
                if self.dropped.load(Ordering::Acquire) {
                    Poll::Ready(Some(Err(Error::Unavailable(
                        "watch dropped: the client did not keep up; resume from the last resourceVersion"
                            .into(),
                    ))))
                } else {
                    Poll::Ready(None)
                }
            }
            other => other,
        }
    }
}

impl Api {
    /// Starts a watch on a kind in one namespace (or all, with `ns` = `None`).
    pub async fn watch(
        &self,
        info: &'static KindInfo,
        ns: Option<&str>,
        params: WatchParams,
    ) -> Result<Watch> {
        let mut initial = Vec::new();
        let after = match params.resource_version.filter(|rv| *rv > 0) {
            Some(rv) => rv,
            None => {
                let list = self.list(info, ns, &params.labels, &params.fields).await?;
                initial = list.items;
                list.revision
            }
        };
        let mut changes = self
            .store()
            .watch(&object::prefix(info, ns), after)
            .await
            .map_err(|e| Error::from_store(e, info.plural, ""))?;
        let initial_count = initial.len();
        let (tx, rx) = mpsc::channel(if params.queue == 0 {
            DEFAULT_QUEUE
        } else {
            params.queue
        });
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        let slow_timeout = params.slow_timeout;
        tokio::spawn(async move {
            let send = async |ev: Result<Event>| -> bool {
                match tokio::time::timeout(slow_timeout, tx.send(ev)).await {
                    Ok(Ok(())) => true,
                    Ok(Err(_)) => false, // the client went away
                    Err(_) => {
                        flag.store(true, Ordering::Release);
                        tracing::info!(kind = info.kind, "dropping a watch whose client fell behind");
                        false
                    }
                }
            };
            for obj in initial {
                if !send(Ok(Event {
                    kind: "ADDED",
                    object: obj,
                }))
                .await
                {
                    return;
                }
            }
            while let Some(change) = changes.next().await {
                let ev = match change {
                    Ok(change) => match translate(&change, &params) {
                        Ok(Some(ev)) => Ok(ev),
                        Ok(None) => continue,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(Error::from_store(e, info.plural, "")),
                };
                let last = ev.is_err();
                if !send(ev).await || last {
                    return;
                }
            }
        });
        Ok(Watch {
            rx,
            dropped,
            done: false,
            after,
            initial: initial_count,
        })
    }
}

/// Turns a store change into an API event, or `None` when the selectors filter it out.
fn translate(change: &StoreEvent, params: &WatchParams) -> Result<Option<Event>> {
    let obj = object::decode(&change.kv.value, change.kv.mod_revision)
        .map_err(|e| Error::Internal(format!("stored object {} is not valid JSON: {e}", change.kv.key)))?;
    if !params.labels.matches(&object::labels(&obj))
        || !params.fields.matches(object::name(&obj), object::namespace(&obj))
    {
        return Ok(None);
    }
    let kind = match change.kind {
        EventKind::Delete => "DELETED",
        EventKind::Put if change.kv.create_revision == change.kv.mod_revision => "ADDED",
        EventKind::Put => "MODIFIED",
    };
    Ok(Some(Event { kind, object: obj }))
}
