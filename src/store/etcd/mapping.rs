//! Translation of etcd-client's errors, key-values and watch events into the store's types.
//!
//! # Guarantees
//! - Connection failures, timeouts and etcd's "no leader" / "request timed out" answers
//!   become [`Error::Unavailable`] (retryable); everything else becomes [`Error::Backend`],
//!   always with etcd's own message.
//!
//! # Caveats
//! - etcd reports compaction and future-revision failures of a compaction only through its
//!   message text (both are gRPC `OutOfRange`); they are recognised by etcd's fixed wording.

use berth_crds::store::{Error, EventKind, KeyValue, Result, Revision, WatchEvent};
use etcd_client::{Event, ResponseHeader};
use tonic::Code;

/// etcd's message for a revision at or below the compaction point (`ErrCompacted`).
const COMPACTED_MESSAGE: &str = "required revision has been compacted";

/// etcd's message for a revision above the current one (`ErrFutureRev`).
const FUTURE_REVISION_MESSAGE: &str = "required revision is a future revision";

/// Maps an etcd-client error to the store's error.
pub(super) fn error(e: etcd_client::Error) -> Error {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(status) => {
            let message = with_sources(status.message(), &status);
            match status.code() {
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                    Error::Unavailable(format!("etcd: {message}"))
                }
                // tonic reports a connection lost or refused mid-call as `Unknown`
                // "transport error": the transport error in the source chain tells.
                Code::Unknown if is_transport(&status) => Error::Unavailable(format!("etcd: {message}")),
                code => Error::Backend(format!("etcd ({code:?}): {message}")),
            }
        }
        E::TransportError(e) => Error::Unavailable(with_sources(&format!("etcd transport: {e}"), &e)),
        E::IoError(e) => Error::Unavailable(with_sources(&format!("etcd i/o: {e}"), &e)),
        other => Error::Backend(other.to_string()),
    }
}

/// Whether an error was caused by the connection rather than by etcd's answer.
fn is_transport(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = e.source();
    while let Some(cause) = source {
        if cause.is::<tonic::transport::Error>() || cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// `head`, followed by the messages of `e`'s sources: tonic's own say little
/// ("transport error").
fn with_sources(head: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = head.to_owned();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Whether a compaction failed only because the revision is already compacted.
pub(super) fn is_compacted(e: &Error) -> bool {
    matches!(e, Error::Backend(message) if message.contains(COMPACTED_MESSAGE))
}

/// Whether a compaction failed because the revision is newer than the current one.
pub(super) fn is_future_revision(e: &Error) -> bool {
    matches!(e, Error::Backend(message) if message.contains(FUTURE_REVISION_MESSAGE))
}

/// The revision in a response header; etcd always sends one.
pub(super) fn revision(header: Option<&ResponseHeader>) -> Result<Revision> {
    header
        .map(ResponseHeader::revision)
        .ok_or_else(|| Error::Backend("etcd sent a response without a header".into()))
}

/// Converts one of etcd's key-values.
pub(super) fn key_value(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    let key = kv
        .key_str()
        .map_err(|e| Error::Backend(format!("etcd key {:?} is not utf-8: {e}", kv.key())))?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

/// Converts a watch event; a delete carries the previous value, stamped with the delete's
/// revision.
pub(super) fn event(event: &Event) -> Result<WatchEvent> {
    let kv = event
        .kv()
        .ok_or_else(|| Error::Backend("etcd sent a watch event without a key".into()))?;
    let mut converted = key_value(kv)?;
    // etcd itself types an event from its key-value: a tombstone (create_revision 0) is a
    // delete. Reading it the same way avoids `Event::event_type`, which panics on values it
    // does not know.
    if kv.create_revision() != 0 {
        return Ok(WatchEvent {
            kind: EventKind::Put,
            kv: converted,
        });
    }
    if let Some(prev) = event.prev_kv() {
        converted.value = prev.value().to_vec();
        converted.create_revision = prev.create_revision();
    }
    Ok(WatchEvent {
        kind: EventKind::Delete,
        kv: converted,
    })
}
