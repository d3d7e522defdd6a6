//! The embedded store's on-disk layout (redb tables and their records) and its consistent reads.
//!
//! # Guarantees
//! - Every read here runs inside one redb read transaction: a listing, its revision and a
//!   history page are one consistent snapshot.
//!
//! # Caveats
//! - The functions block on disk I/O: call them from the writer thread or `spawn_blocking`.

use berth_crds::store::{self, EventKind, KeyValue, Listing, Revision, WatchEvent};
use redb::{ReadTransaction, ReadableTable, TableDefinition};

use super::EmbeddedError;

/// Live keys: key → (create_revision, mod_revision, value).
pub(super) const KV: TableDefinition<'static, &'static str, (Revision, Revision, &'static [u8])> =
    TableDefinition::new("kv");
/// The change history: revision → (kind, key, value, create_revision); a delete stores the
/// value the key had before it.
pub(super) const HISTORY: TableDefinition<'static, Revision, (u8, &'static str, &'static [u8], Revision)> =
    TableDefinition::new("history");
/// Store-wide counters, see the `META_*` keys.
pub(super) const META: TableDefinition<'static, &'static str, i64> = TableDefinition::new("meta");

/// The revision of the last committed write.
pub(super) const META_REVISION: &str = "revision";
/// The compaction point: history below it is gone.
pub(super) const META_COMPACTED: &str = "compacted";
/// The on-disk format version.
pub(super) const META_FORMAT: &str = "format";
/// The on-disk format this code reads and writes.
pub(super) const FORMAT: i64 = 1;

/// History record kind of a put.
pub(super) const PUT: u8 = 0;
/// History record kind of a delete.
pub(super) const DELETE: u8 = 1;

/// The store-wide counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Meta {
    /// The revision of the last committed write (0 when empty).
    pub(super) revision: Revision,
    /// The compaction point (0 when never compacted).
    pub(super) compacted: Revision,
}

/// Reads the counters from the meta table of a read or write transaction.
pub(super) fn read_meta(meta: &impl ReadableTable<&'static str, i64>) -> Result<Meta, EmbeddedError> {
    let field =
        |name: &str| -> Result<i64, EmbeddedError> { Ok(meta.get(name)?.map(|g| g.value()).unwrap_or(0)) };
    Ok(Meta {
        revision: field(META_REVISION)?,
        compacted: field(META_COMPACTED)?,
    })
}

/// The counters as of a read transaction.
pub(super) fn meta(txn: &ReadTransaction) -> Result<Meta, EmbeddedError> {
    read_meta(&txn.open_table(META)?)
}

/// Reads one key.
pub(super) fn get(txn: &ReadTransaction, key: &str) -> Result<Option<KeyValue>, EmbeddedError> {
    let kv = txn.open_table(KV)?;
    let found = kv.get(key)?.map(|g| {
        let (create_revision, mod_revision, value) = g.value();
        KeyValue {
            key: key.to_owned(),
            value: value.to_vec(),
            create_revision,
            mod_revision,
        }
    });
    Ok(found)
}

/// Reads every key under `prefix`, sorted, with the revision of the snapshot.
pub(super) fn list(txn: &ReadTransaction, prefix: &str) -> Result<Listing, EmbeddedError> {
    let kv = txn.open_table(KV)?;
    let mut items = Vec::new();
    for entry in kv.range(prefix..)? {
        let (key, record) = entry?;
        let key = key.value();
        if !key.starts_with(prefix) {
            break;
        }
        let (create_revision, mod_revision, value) = record.value();
        items.push(KeyValue {
            key: key.to_owned(),
            value: value.to_vec(),
            create_revision,
            mod_revision,
        });
    }
    Ok(Listing {
        items,
        revision: meta(txn)?.revision,
    })
}

/// A slice of the history as one watcher sees it.
#[derive(Debug)]
pub(super) struct HistoryPage {
    /// The changes under the watched prefix, in revision order.
    pub(super) events: Vec<WatchEvent>,
    /// Every revision up to this one has been examined (matching or not).
    pub(super) scanned_to: Revision,
}

/// Reads at most `limit` history records after revision `after` and keeps those under
/// `prefix`. Fails with [`store::Error::Compacted`] (in the inner result) when part of the
/// requested range has been compacted away.
pub(super) fn history_page(
    txn: &ReadTransaction,
    prefix: &str,
    after: Revision,
    limit: usize,
) -> Result<store::Result<HistoryPage>, EmbeddedError> {
    let meta = meta(txn)?;
    if after.saturating_add(1) < meta.compacted {
        return Ok(Err(store::Error::Compacted {
            requested: after,
            compacted: meta.compacted,
            current: meta.revision,
        }));
    }
    let history = txn.open_table(HISTORY)?;
    let mut events = Vec::new();
    let mut scanned = 0;
    let mut scanned_to = after;
    for entry in history.range(after.saturating_add(1)..)?.take(limit) {
        let (rev, record) = entry?;
        let rev = rev.value();
        let (kind, key, value, create_revision) = record.value();
        scanned += 1;
        scanned_to = rev;
        if !key.starts_with(prefix) {
            continue;
        }
        let kind = match kind {
            PUT => EventKind::Put,
            DELETE => EventKind::Delete,
            other => {
                return Err(EmbeddedError::Corrupt(format!(
                    "history record {rev} has kind {other}"
                )));
            }
        };
        events.push(WatchEvent {
            kind,
            kv: KeyValue {
                key: key.to_owned(),
                value: value.to_vec(),
                create_revision,
                mod_revision: rev,
            },
        });
    }
    if scanned < limit {
        // The whole committed history of this snapshot has been read.
        scanned_to = scanned_to.max(meta.revision);
    }
    Ok(Ok(HistoryPage { events, scanned_to }))
}
