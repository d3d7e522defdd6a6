//! Leader election on etcd: a lease-backed key decides which `berth serve` runs controllers.
//!
//! # Guarantees
//! - At most one process holds the leader key: it is created in a transaction only when
//!   absent, attached to this process's lease ([`LeaseConfig::ttl`], 15 s by default).
//! - The leader renews its lease every [`LeaseConfig::renew_every`] (5 s). When no renewal
//!   has succeeded for `ttl - renew_every`, it reports leadership lost, before the lease can
//!   expire and another process can take the key.
//! - A leader that dies stops renewing; its key goes with its lease within the TTL and a
//!   follower (polling every [`LeaseConfig::retry_every`]) takes over.
//! - A leader that shuts down revokes its lease, so a follower takes over at once.
//!
//! # Caveats
//! - Controller writes are not fenced by the lease: a leader paused for longer than the TTL
//!   (e.g. SIGSTOP) could write once more after resuming, before it notices the loss.

use std::time::Duration;

use berth_runtime::leader::{Elector, Error, Leadership};
use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::{sync::oneshot, time::Instant};
use tokio_util::sync::CancellationToken;

/// The key the leader holds.
pub const LEADER_KEY: &str = "/berth-system/leader/controllers";

/// Timing of the lease.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Lease time-to-live.
    pub ttl: Duration,
    /// Interval between renewals.
    pub renew_every: Duration,
    /// Interval between a follower's attempts.
    pub retry_every: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(1),
        }
    }
}

/// An [`Elector`] on etcd leases.
pub struct EtcdElector {
    client: Client,
    identity: String,
    config: LeaseConfig,
}

impl std::fmt::Debug for EtcdElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdElector")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn backend(e: etcd_client::Error) -> Error {
    Error::Backend(e.to_string())
}

/// Bounds one etcd call.
async fn bounded<T>(d: Duration, f: impl Future<Output = Result<T, etcd_client::Error>>) -> Result<T, Error> {
    match tokio::time::timeout(d, f).await {
        Ok(r) => r.map_err(backend),
        Err(_) => Err(Error::Backend(format!("etcd did not answer within {d:?}"))),
    }
}

impl EtcdElector {
    /// Connects to etcd at `endpoints`.
    pub async fn connect(endpoints: &[String], config: LeaseConfig) -> Result<Self, Error> {
        let client = bounded(config.renew_every, Client::connect(endpoints, None)).await?;
        let identity = format!("pid-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Ok(Self {
            client,
            identity,
            config,
        })
    }

    /// This process's identity, as written to the leader key.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One attempt: `Some` when this process now holds the key.
    async fn try_acquire(&self) -> Result<Option<Leadership>, Error> {
        let mut client = self.client.clone();
        let call = self.config.renew_every;
        let held = bounded(call, client.get(LEADER_KEY, None)).await?;
        if !held.kvs().is_empty() {
            return Ok(None);
        }
        let granted_at = Instant::now();
        let ttl = i64::try_from(self.config.ttl.as_secs()).unwrap_or(15).max(2);
        let lease = bounded(call, client.lease_grant(ttl, None)).await?.id();
        let txn = Txn::new()
            .when([Compare::create_revision(LEADER_KEY, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                LEADER_KEY,
                self.identity.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let won = match bounded(call, client.txn(txn)).await {
            Ok(r) => r.succeeded(),
            Err(e) => {
                revoke(&mut client, lease, call).await;
                return Err(e);
            }
        };
        if !won {
            revoke(&mut client, lease, call).await;
            return Ok(None);
        }
        tracing::info!(identity = %self.identity, lease, "acquired the controllers' leader lease");
        let lost = CancellationToken::new();
        let (resign_tx, resign_rx) = oneshot::channel();
        tokio::spawn(keep_alive(
            client,
            lease,
            self.config.clone(),
            granted_at,
            lost.clone(),
            resign_rx,
        ));
        Ok(Some(Leadership::new(lost, Some(resign_tx))))
    }
}

async fn revoke(client: &mut Client, lease: i64, d: Duration) {
    if let Err(e) = bounded(d, client.lease_revoke(lease)).await {
        tracing::warn!(lease, error = %e, "could not revoke the lease (it expires by itself)");
    }
}

/// Renews `lease` until resigned or lost; cancels `lost` when renewals stop succeeding.
async fn keep_alive(
    mut client: Client,
    lease: i64,
    config: LeaseConfig,
    mut last_ok: Instant,
    lost: CancellationToken,
    mut resign: oneshot::Receiver<()>,
) {
    let deadline = config.ttl.saturating_sub(config.renew_every);
    let mut keeper = None;
    loop {
        let wait = config.renew_every.min(deadline.saturating_sub(last_ok.elapsed()));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = &mut resign => {
                tracing::info!(lease, "resigning leadership");
                revoke(&mut client, lease, config.renew_every).await;
                return;
            }
        }
        let sent = Instant::now();
        let renewed = async {
            if keeper.is_none() {
                keeper = Some(client.lease_keep_alive(lease).await?);
            }
            let Some((k, stream)) = keeper.as_mut() else {
                return Ok(None);
            };
            k.keep_alive().await?;
            stream.message().await
        };
        match tokio::time::timeout(config.renew_every, renewed).await {
            Ok(Ok(Some(resp))) if resp.ttl() > 0 => last_ok = sent,
            Ok(Ok(Some(_))) => {
                tracing::warn!(lease, "leader lease expired");
                break;
            }
            Ok(Ok(None)) => {
                tracing::warn!(lease, "lease keep-alive stream closed; reopening");
                keeper = None;
            }
            Ok(Err(e)) => {
                tracing::warn!(lease, error = %e, "lease renewal failed");
                keeper = None;
            }
            Err(_) => {
                tracing::warn!(lease, "lease renewal timed out");
                keeper = None;
            }
        }
        if last_ok.elapsed() >= deadline {
            tracing::warn!(lease, "no lease renewal for {deadline:?}");
            break;
        }
    }
    lost.cancel();
    // Best effort: if etcd is back, let a follower take over now rather than at expiry.
    revoke(&mut client, lease, config.renew_every).await;
}

#[async_trait::async_trait]
impl Elector for EtcdElector {
    async fn acquire(&self, shutdown: &CancellationToken) -> Result<Option<Leadership>, Error> {
        loop {
            if shutdown.is_cancelled() {
                return Ok(None);
            }
            match self.try_acquire().await {
                Ok(Some(l)) => return Ok(Some(l)),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.retry_every) => {}
                () = shutdown.cancelled() => return Ok(None),
            }
        }
    }
}
