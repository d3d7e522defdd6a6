//! Leader election: only the leader runs controllers; every process serves the API.
//!
//! # Guarantees
//! - [`run_as_leader`] runs one controller term per leadership: it starts the term once
//!   [`Elector::acquire`] succeeds, stops it as soon as [`Leadership::lost`] fires, sets the
//!   `berth_leader` gauge while leading, and competes again afterwards.
//! - [`Solo`] is the elector of the embedded store: its exclusive lock on the data directory
//!   already makes the one process that opened it the leader.
//!
//! # Caveats
//! - An elector must report loss *before* another process can acquire (the etcd elector
//!   declares loss when a renewal has not succeeded for TTL minus one renewal interval).
//!   Reconciles already running when leadership is lost are given the controllers' grace.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// A failed election round.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The coordination backend (etcd) failed; the round is retried.
    #[error("leader election backend failed: {0}")]
    Backend(String),
}

/// Held while this process leads.
#[derive(Debug)]
pub struct Leadership {
    /// Cancelled when leadership is lost (lease expired, backend unreachable).
    pub lost: CancellationToken,
    resign: Option<oneshot::Sender<()>>,
}

impl Leadership {
    /// Leadership that ends when `lost` fires; `resign` is told when the holder gives up.
    pub fn new(lost: CancellationToken, resign: Option<oneshot::Sender<()>>) -> Self {
        Self { lost, resign }
    }

    /// Gives leadership up (so another process takes over at once, not after the TTL).
    pub fn resign(mut self) {
        if let Some(tx) = self.resign.take() {
            // The elector's task may be gone already: then there is nothing to give up.
            let _ = tx.send(());
        }
    }
}

/// Decides which process runs the controllers.
#[async_trait::async_trait]
pub trait Elector: Send + Sync + 'static {
    /// Waits until this process leads; `None` when `shutdown` came first.
    async fn acquire(&self, shutdown: &CancellationToken) -> Result<Option<Leadership>, Error>;
}

/// The single-process elector: always the leader.
#[derive(Debug, Default, Clone, Copy)]
pub struct Solo;

#[async_trait::async_trait]
impl Elector for Solo {
    async fn acquire(&self, shutdown: &CancellationToken) -> Result<Option<Leadership>, Error> {
        if shutdown.is_cancelled() {
            return Ok(None);
        }
        Ok(Some(Leadership::new(CancellationToken::new(), None)))
    }
}

/// Runs `term` (the controllers) whenever this process leads, until `shutdown`.
pub async fn run_as_leader<F>(
    elector: Arc<dyn Elector>,
    metrics: Metrics,
    shutdown: CancellationToken,
    mut term: F,
) where
    F: FnMut(CancellationToken) -> BoxFuture<'static, ()>,
{
    loop {
        let leadership = match elector.acquire(&shutdown).await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "leader election failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = shutdown.cancelled() => return,
                }
            }
        };
        tracing::info!("leadership acquired; starting controllers");
        metrics.leader.set(1);
        let stop = shutdown.child_token();
        let watcher = {
            let (stop, lost) = (stop.clone(), leadership.lost.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = lost.cancelled() => {
                        tracing::warn!("leadership lost; stopping controllers");
                        stop.cancel();
                    }
                    () = stop.cancelled() => {}
                }
            })
        };
        term(stop.clone()).await;
        metrics.leader.set(0);
        stop.cancel();
        if let Err(e) = watcher.await {
            tracing::error!(error = %e, "leadership watcher ended abnormally");
        }
        leadership.resign();
        if shutdown.is_cancelled() {
            tracing::info!("controllers stopped; leadership released");
            return;
        }
    }
}
