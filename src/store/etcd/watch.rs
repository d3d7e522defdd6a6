//! etcd watches bridged into the store's [`WatchStream`]: one task per watch feeds a bounded
//! channel and reconnects from the last delivered revision when the connection breaks.
//!
//! # Guarantees
//! - [`start`] returns once etcd has confirmed the watch, so an unreachable cluster fails
//!   the call itself with [`Error::Unavailable`].
//! - Events reach the consumer in etcd's order; after a reconnect the watch restarts at the
//!   revision following the last delivered event, so nothing is skipped or repeated.
//! - A watch from a compacted revision yields one [`Error::Compacted`] (from [`start`] or as
//!   the stream's first item) and ends; it is never retried at the same revision.
//! - The task ends, cancelling its etcd watch, as soon as the consumer drops the stream.
//!
//! # Caveats
//! - The channel is bounded: a consumer that stops reading stalls its etcd watch (etcd then
//!   buffers on its side) rather than growing memory here.
//! - When etcd stays unreachable for the reconnect timeout the stream ends with
//!   [`Error::Unavailable`]; the caller resumes from the last revision it saw.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use berth_crds::store::{Error, Result, Revision, Store, WatchEvent, WatchStream};
use etcd_client::{WatchOptions, WatchResponse, WatchStream as EtcdWatchStream};
use tokio::sync::mpsc;

use super::{EtcdStore, mapping};

/// Events buffered between the etcd stream and the consumer.
const BUFFER: usize = 1024;

/// First and longest pause between reconnect attempts.
const RECONNECT_DELAYS: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

/// How long the task waits to hand a cancel request to etcd before just dropping the stream.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(1);

/// Opens a watch on `prefix` for changes after `after` and spawns the task that feeds it.
pub(super) async fn start(store: EtcdStore, prefix: String, after: Revision) -> Result<WatchStream> {
    let (stream, watch_id) = match open(&store, &prefix, after).await? {
        Opened::Live { stream, watch_id } => (stream, watch_id),
        Opened::Compacted(e) => return Err(e),
    };
    let (tx, mut rx) = mpsc::channel(BUFFER);
    let pump = Pump {
        store,
        prefix,
        floor: after,
        last: after,
        tx,
    };
    tokio::spawn(pump.run(stream, watch_id));
    Ok(Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx))))
}

/// The outcome of opening an etcd watch.
enum Opened {
    /// etcd created the watch.
    Live {
        /// The gRPC stream carrying it (boxed: it is large).
        stream: Box<EtcdWatchStream>,
        /// etcd's id for it, to cancel it.
        watch_id: i64,
    },
    /// The start revision is compacted.
    Compacted(Error),
}

/// Asks etcd for a watch of `prefix` from `after + 1` and waits for its confirmation.
async fn open(store: &EtcdStore, prefix: &str, after: Revision) -> Result<Opened> {
    // Start revision 0 means "now" to etcd: never send it.
    let options = WatchOptions::new()
        .with_prefix()
        .with_prev_key()
        .with_start_revision(after.saturating_add(1).max(1));
    let mut client = store.watch.clone();
    let request = async {
        let mut stream = client.watch(prefix, Some(options)).await?;
        let first = stream.message().await?;
        Ok((stream, first))
    };
    let (stream, first) = store.call("a watch request", request).await?;
    match first {
        None => Err(Error::Unavailable(
            "etcd closed the watch before confirming it".into(),
        )),
        Some(resp) if resp.compact_revision() != 0 => {
            Ok(Opened::Compacted(compacted(store, after, &resp).await))
        }
        Some(resp) if resp.canceled() => Err(Error::Backend(format!(
            "etcd refused the watch: {}",
            resp.cancel_reason()
        ))),
        Some(resp) if resp.created() => Ok(Opened::Live {
            stream: Box::new(stream),
            watch_id: resp.watch_id(),
        }),
        Some(_) => Err(Error::Backend(
            "etcd answered a watch request without creating it".into(),
        )),
    }
}

/// The `Compacted` error for a watch that started after `requested`.
async fn compacted(store: &EtcdStore, requested: Revision, resp: &WatchResponse) -> Error {
    let compacted = resp.compact_revision();
    // etcd 3.4 sends the compaction notice with a zero header revision: ask for the current.
    let header = resp.header().map_or(0, |h| h.revision());
    let current = match store.current_revision().await {
        Ok(current) => current.max(header),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the current revision for a compacted watch");
            header.max(compacted)
        }
    };
    Error::Compacted {
        requested,
        compacted,
        current,
    }
}

/// Whether the pump goes on after a response.
enum Flow {
    /// Keep reading the etcd stream.
    Continue,
    /// The watch is over (consumer gone or terminal error sent).
    Stop,
}

/// The task moving one watch's events from etcd to the consumer.
struct Pump {
    /// The store, to reconnect and read revisions.
    store: EtcdStore,
    /// The watched prefix.
    prefix: String,
    /// The revision the current etcd watch started after; nothing at or below it is sent.
    floor: Revision,
    /// The revision of the last event handed to the consumer.
    last: Revision,
    /// The consumer's end of the channel.
    tx: mpsc::Sender<Result<WatchEvent>>,
}

impl Pump {
    /// Forwards responses until the consumer leaves or the watch fails for good.
    async fn run(mut self, mut stream: Box<EtcdWatchStream>, mut watch_id: i64) {
        loop {
            let message = tokio::select! {
                () = self.tx.closed() => return cancel(stream, watch_id).await,
                message = stream.message() => message,
            };
            let failure = match message {
                Ok(Some(resp)) => match self.deliver(resp).await {
                    Flow::Continue => continue,
                    Flow::Stop => return cancel(stream, watch_id).await,
                },
                Ok(None) => "etcd closed the watch stream".to_owned(),
                Err(e) => e.to_string(),
            };
            tracing::warn!(prefix = %self.prefix, last = self.last, %failure, "etcd watch broke, reconnecting");
            match self.reconnect().await {
                Some((next, id)) => (stream, watch_id) = (next, id),
                None => return,
            }
        }
    }

    /// Sends a response's events, or its terminal error.
    async fn deliver(&mut self, resp: WatchResponse) -> Flow {
        if resp.compact_revision() != 0 {
            let e = compacted(&self.store, self.floor, &resp).await;
            return self.fail(e).await;
        }
        if resp.canceled() {
            let e = Error::Backend(format!("etcd cancelled the watch: {}", resp.cancel_reason()));
            return self.fail(e).await;
        }
        for event in resp.events() {
            let event = match mapping::event(event) {
                Ok(event) => event,
                Err(e) => return self.fail(e).await,
            };
            let revision = event.revision();
            if revision <= self.floor {
                continue;
            }
            if self.tx.send(Ok(event)).await.is_err() {
                return Flow::Stop;
            }
            self.last = revision;
        }
        Flow::Continue
    }

    /// Hands the consumer a terminal error.
    async fn fail(&self, e: Error) -> Flow {
        // A consumer already gone needs no error.
        let _ = self.tx.send(Err(e)).await;
        Flow::Stop
    }

    /// Reopens the watch after the last delivered revision, retrying while etcd is
    /// unreachable, for at most the reconnect timeout.
    async fn reconnect(&mut self) -> Option<(Box<EtcdWatchStream>, i64)> {
        let window = self.store.options.reconnect_timeout;
        let mut last_error = None;
        let retry = (|| open(&self.store, &self.prefix, self.last))
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(RECONNECT_DELAYS.0)
                    .with_max_delay(RECONNECT_DELAYS.1)
                    .without_max_times()
                    .with_jitter(),
            )
            .when(|e| matches!(e, Error::Unavailable(_)))
            .notify(|e, _| last_error = Some(e.to_string()));
        let outcome = tokio::select! {
            () = self.tx.closed() => return None,
            outcome = tokio::time::timeout(window, retry) => outcome,
        };
        let e = match outcome {
            Ok(Ok(Opened::Live { stream, watch_id })) => {
                tracing::info!(prefix = %self.prefix, after = self.last, "etcd watch reconnected");
                self.floor = self.last;
                return Some((stream, watch_id));
            }
            Ok(Ok(Opened::Compacted(e))) | Ok(Err(e)) => e,
            Err(_) => Error::Unavailable(format!(
                "etcd unreachable for {window:?} (last error: {}); resume after revision {}",
                last_error.as_deref().unwrap_or("none"),
                self.last
            )),
        };
        self.fail(e).await;
        None
    }
}

/// Cancels an etcd watch on its way out; dropping the stream closes it in any case.
async fn cancel(mut stream: Box<EtcdWatchStream>, watch_id: i64) {
    match tokio::time::timeout(CANCEL_TIMEOUT, stream.cancel(watch_id)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "cancelling an etcd watch failed"),
        Err(_) => tracing::debug!("cancelling an etcd watch timed out"),
    }
}
