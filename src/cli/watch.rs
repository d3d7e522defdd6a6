//! List-then-watch, as client-go's reflector does it: the shared loop behind `get -w`,
//! `wait` and `delete --wait`.
//!
//! # Guarantees
//! - The callback sees the list first, then every event after the list's resourceVersion,
//!   in order; nothing between the two is missed.
//! - An `ERROR` event with code 410 (history compacted) relists and goes on; a stream the
//!   server closes (timeout, bookmark-only quiet) is resumed from the last resourceVersion.
//!
//! # Caveats
//! - After a relist the callback sees the whole list again, as kubectl's `get -w` shows it.

use std::ops::ControlFlow;

use berth_crds::registry::KindInfo;
use futures::StreamExt;
use serde_json::Value;

use super::{
    client::{Client, ListParams},
    error::{ApiStatus, Error, Result},
};

/// What the watch loop hands to its callback.
#[derive(Debug)]
pub enum Seen<'a> {
    /// A (re)list: every matching object at one revision.
    Listed(&'a [Value]),
    /// A change: `ADDED`, `MODIFIED` or `DELETED`, and the object.
    Event(&'a str, &'a Value),
}

/// Lists, then watches, calling `f` until it breaks (or an error ends the watch).
pub async fn follow<F>(
    client: &Client,
    info: &'static KindInfo,
    ns: Option<&str>,
    params: &ListParams,
    mut f: F,
) -> Result<()>
where
    F: FnMut(Seen<'_>) -> Result<ControlFlow<()>>,
{
    'relist: loop {
        let list = client.list(info, ns, params).await?;
        if f(Seen::Listed(&list.items))?.is_break() {
            return Ok(());
        }
        let mut rv = list.resource_version;
        loop {
            let mut events = client.watch(info, ns, params, &rv).await?;
            while let Some(ev) = events.next().await {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        tracing::debug!(error = %e, "watch stream broke; resuming");
                        break;
                    }
                };
                if let Some(v) = ev
                    .object
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                {
                    rv = v.to_owned();
                }
                match ev.kind.as_str() {
                    "BOOKMARK" => {}
                    "ERROR" => {
                        let status: ApiStatus = serde_json::from_value(ev.object).unwrap_or_default();
                        if status.code == 410 {
                            continue 'relist;
                        }
                        return Err(Error::Api(Box::new(status)));
                    }
                    kind => {
                        if f(Seen::Event(kind, &ev.object))?.is_break() {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}
