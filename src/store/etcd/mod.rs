//! The etcd backend of [`Store`]: every operation is one etcd v3 request or transaction.
//!
//! # Guarantees
//! - Revisions are etcd's own: a write's revision is the header revision of its transaction,
//!   and [`Store::list`] returns the header revision of its (linearizable) range read.
//! - Compare-and-swap runs inside one etcd transaction, so the check and the write are atomic
//!   across every client of the cluster.
//! - Every request is bounded by [`EtcdOptions::request_timeout`]; a request that cannot reach
//!   etcd fails with [`Error::Unavailable`] instead of hanging.
//! - A watch survives a broken connection: it reconnects from the last revision it delivered,
//!   so the consumer sees neither a gap nor a duplicate. Only when etcd stays unreachable for
//!   [`EtcdOptions::reconnect_timeout`] does the stream end with [`Error::Unavailable`].
//! - Dropping a watch stream cancels its etcd watch and ends its background task.
//!
//! # Caveats
//! - Keys are used as given: the caller chooses the prefix. Keys that are not UTF-8 (written
//!   by another etcd client) fail reads with [`Error::Backend`].
//! - A fresh etcd cluster starts at revision 1, not 0.
//! - A delete event whose previous value etcd has already compacted carries an empty value
//!   and `create_revision` 0.
//! - A request that times out may still have been applied by etcd: after
//!   [`Error::Unavailable`] the caller re-reads before it retries a compare-and-swap.

mod mapping;
mod watch;

use std::{future::Future, time::Duration};

use berth_crds::store::{Error, KeyValue, Listing, Result, Revision, Store, WatchStream};
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, KvClient, Txn, TxnOp,
    TxnOpResponse, TxnResponse, WatchClient,
};

/// The largest gRPC message accepted from etcd: listings and watch batches of large values
/// easily pass tonic's 4 MiB default (Kubernetes lifts the limit the same way).
const MAX_MESSAGE_BYTES: usize = i32::MAX as usize;

/// A key no berth object can have, read with `count_only` to learn the current revision.
const REVISION_PROBE_KEY: &[u8] = b"\0berth-revision-probe";

/// How [`EtcdStore`] talks to etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    /// How long [`EtcdStore::connect`] waits for a first answer from the cluster.
    pub connect_timeout: Duration,
    /// How long any single request (or the opening of a watch) may take.
    pub request_timeout: Duration,
    /// How long a watch keeps trying to reconnect after losing etcd before it ends with
    /// [`Error::Unavailable`].
    pub reconnect_timeout: Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            reconnect_timeout: Duration::from_secs(60),
        }
    }
}

/// A [`Store`] on an etcd v3 cluster. Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
    options: EtcdOptions,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to the cluster at `endpoints` (`http://host:port`) with default options.
    ///
    /// Fails with [`Error::Unavailable`] when no endpoint answers within the connect timeout.
    pub async fn connect(endpoints: &[String]) -> Result<Self> {
        Self::connect_with(endpoints, EtcdOptions::default()).await
    }

    /// Connects to the cluster at `endpoints` with the given options, and checks that it
    /// answers.
    pub async fn connect_with(endpoints: &[String], options: EtcdOptions) -> Result<Self> {
        let connect = ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10));
        let client = Client::connect(endpoints, Some(connect))
            .await
            .map_err(mapping::error)?;
        let store = Self {
            kv: client.kv_client().max_decoding_message_size(MAX_MESSAGE_BYTES),
            watch: client.watch_client().max_decoding_message_size(MAX_MESSAGE_BYTES),
            options,
        };
        // The client connects lazily: make sure someone answers before handing it out.
        let probe = tokio::time::timeout(store.options.connect_timeout, store.current_revision());
        match probe.await {
            Ok(Ok(_)) => Ok(store),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Unavailable(format!(
                "no etcd endpoint of {endpoints:?} answered within {:?}",
                store.options.connect_timeout
            ))),
        }
    }

    /// Runs one etcd request under the request timeout, mapping its error.
    async fn call<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.options.request_timeout, request).await {
            Ok(result) => result.map_err(mapping::error),
            Err(_) => Err(Error::Unavailable(format!(
                "etcd did not answer {what} within {:?}",
                self.options.request_timeout
            ))),
        }
    }

    /// Runs a transaction, returning it with its header revision.
    async fn txn(&self, what: &str, txn: Txn) -> Result<(TxnResponse, Revision)> {
        let mut kv = self.kv.clone();
        let resp = self.call(what, kv.txn(txn)).await?;
        let revision = mapping::revision(resp.header())?;
        Ok((resp, revision))
    }

    /// After a failed compare: the key's current `mod_revision`, from the txn's `else` get.
    fn actual_revision(resp: &TxnResponse) -> Option<Revision> {
        resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.mod_revision()),
            _ => None,
        })
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut kv = self.kv.clone();
        let resp = self.call("a get", kv.get(key, None)).await?;
        resp.kvs().first().map(mapping::key_value).transpose()
    }

    async fn list(&self, prefix: &str) -> Result<Listing> {
        let mut kv = self.kv.clone();
        let options = GetOptions::new().with_prefix();
        let resp = self.call("a list", kv.get(prefix, Some(options))).await?;
        let items = resp.kvs().iter().map(mapping::key_value).collect::<Result<_>>()?;
        Ok(Listing {
            items,
            revision: mapping::revision(resp.header())?,
        })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, None)]);
        let (resp, revision) = self.txn("a create", txn).await?;
        if resp.succeeded() {
            Ok(revision)
        } else {
            Err(Error::AlreadyExists { key: key.to_owned() })
        }
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision> {
        // `version > 0`: etcd compares a missing key as all zeros, so `mod_revision == 0`
        // alone would let an update create the key.
        let txn = Txn::new()
            .when([
                Compare::version(key, CompareOp::Greater, 0),
                Compare::mod_revision(key, CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(key, value, None)])
            .or_else([TxnOp::get(key, None)]);
        let (resp, revision) = self.txn("an update", txn).await?;
        if resp.succeeded() {
            return Ok(revision);
        }
        match Self::actual_revision(&resp) {
            Some(actual) => Err(Error::Conflict {
                key: key.to_owned(),
                expected,
                actual,
            }),
            None => Err(Error::NotFound { key: key.to_owned() }),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        let compares: Vec<Compare> = expected
            .map(|rev| Compare::mod_revision(key, CompareOp::Equal, rev))
            .into_iter()
            .collect();
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()))])
            .or_else([TxnOp::get(key, None)]);
        let (resp, revision) = self.txn("a delete", txn).await?;
        if !resp.succeeded() {
            return match (Self::actual_revision(&resp), expected) {
                (Some(actual), Some(expected)) => Err(Error::Conflict {
                    key: key.to_owned(),
                    expected,
                    actual,
                }),
                _ => Err(Error::NotFound { key: key.to_owned() }),
            };
        }
        let previous = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Delete(del) => del.prev_kvs().first().map(mapping::key_value),
            _ => None,
        });
        match previous {
            Some(kv) => Ok((revision, kv?)),
            None => Err(Error::NotFound { key: key.to_owned() }),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        watch::start(self.clone(), prefix.to_owned(), after).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        if revision <= 0 {
            return Ok(());
        }
        let mut kv = self.kv.clone();
        match self.call("a compaction", kv.compact(revision, None)).await {
            Ok(_) => Ok(()),
            Err(e) if mapping::is_compacted(&e) => Ok(()),
            Err(e) if mapping::is_future_revision(&e) => Err(Error::FutureRevision {
                requested: revision,
                current: self.current_revision().await?,
            }),
            Err(e) => Err(e),
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        let mut kv = self.kv.clone();
        let options = GetOptions::new().with_count_only();
        let resp = self
            .call("a revision probe", kv.get(REVISION_PROBE_KEY, Some(options)))
            .await?;
        mapping::revision(resp.header())
    }
}
