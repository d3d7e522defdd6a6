//! Events: the [`Recorder`] controllers report with, and the sweeper that ages events out.
//!
//! # Guarantees
//! - An event's name is derived from its involved object's uid, type, reason and message, so
//!   the same report again (from any process, after any restart) increments `count` and
//!   moves `lastTimestamp` on the existing event instead of adding one.
//! - Events carry the `berth.dev/involved-*` labels and an ownerReference to the involved
//!   object: `labelSelector=berth.dev/involved-uid=<uid>` lists an object's events, and they
//!   are garbage-collected with it.
//! - [`sweep`] deletes events whose `lastTimestamp` is older than the TTL.
//!
//! # Caveats
//! - Recording is best-effort: callers log a failure and carry on; it never fails a reconcile.

use std::{sync::Arc, time::Duration};

use berth_crds::{
    Object, Resource,
    kinds::{
        EventSpec,
        event::{
            EventType, INVOLVED_KIND_LABEL, INVOLVED_NAME_LABEL, INVOLVED_NAMESPACE_LABEL, INVOLVED_UID_LABEL,
        },
    },
    registry::KindInfo,
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    client::{self, Client},
    object::info,
    status,
};

/// How long events are kept after they last happened (Kubernetes' default).
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// How many read-modify-write rounds a recording tries on conflicts.
const ATTEMPTS: usize = 5;

/// A failed recording or sweep.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API failed.
    #[error("event write failed: {0}")]
    Api(#[from] client::Error),
    /// Other writers kept changing the event.
    #[error("event {0:?} kept changing; gave up")]
    Contended(String),
}

/// The object an event is about.
#[derive(Debug, Clone)]
pub struct Involved {
    /// Its kind's registry entry.
    pub kind: &'static KindInfo,
    /// Its namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
}

impl Involved {
    /// The object `obj` as an event's subject.
    pub fn of<K: Resource>(obj: &Object<K>) -> Self {
        Self {
            kind: info::<K>(),
            namespace: obj.namespace().map(str::to_owned),
            name: obj.name().to_owned(),
            uid: obj.uid().to_owned(),
        }
    }
}

/// Publishes events about objects as one component.
#[derive(Clone)]
pub struct Recorder {
    client: Arc<dyn Client>,
    source: String,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder writing through `client` as `source` (e.g. `project-controller`).
    pub fn new(client: Arc<dyn Client>, source: &str) -> Self {
        Self {
            client,
            source: source.to_owned(),
        }
    }

    /// Records that `reason` happened to `obj`, deduplicated (see module docs).
    pub async fn publish<K: Resource>(
        &self,
        obj: &Object<K>,
        type_: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), Error> {
        self.publish_about(&Involved::of(obj), type_, reason, message)
            .await
    }

    /// Records that `reason` happened to `involved`, deduplicated (see module docs).
    pub async fn publish_about(
        &self,
        involved: &Involved,
        type_: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), Error> {
        let events = info::<EventSpec>();
        let name = event_name(involved, type_, reason, message);
        for _ in 0..ATTEMPTS {
            let now = status::now();
            match self.client.get(events, None, &name).await {
                Ok(existing) => {
                    let count = existing
                        .pointer("/spec/count")
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                        + 1;
                    let patch = json!({
                        "metadata": {"resourceVersion": berth_crds::json::meta_str(&existing, "resourceVersion")},
                        "spec": {"count": count, "lastTimestamp": now},
                    });
                    match self.client.patch(events, None, &name, patch).await {
                        Ok(_) => return Ok(()),
                        Err(client::Error::Conflict(_) | client::Error::NotFound { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(client::Error::NotFound { .. }) => {
                    let body = self.new_event(involved, &name, type_, reason, message, now);
                    match self.client.create(events, None, body).await {
                        Ok(_) => return Ok(()),
                        Err(client::Error::AlreadyExists { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Contended(name))
    }

    fn new_event(
        &self,
        obj: &Involved,
        name: &str,
        type_: EventType,
        reason: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Value {
        let (kind, ns, involved, uid) = (obj.kind, obj.namespace.as_deref(), &obj.name, &obj.uid);
        let mut labels = json!({
            INVOLVED_UID_LABEL: uid,
            INVOLVED_KIND_LABEL: kind.singular,
            INVOLVED_NAME_LABEL: involved,
        });
        if let Some(ns) = ns {
            labels[INVOLVED_NAMESPACE_LABEL] = json!(ns);
        }
        let mut involved_object = json!({"kind": kind.kind, "name": involved, "uid": uid});
        if let Some(ns) = ns {
            involved_object["namespace"] = json!(ns);
        }
        json!({
            "apiVersion": berth_crds::API_VERSION,
            "kind": "Event",
            "metadata": {
                "name": name,
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": berth_crds::API_VERSION,
                    "kind": kind.kind,
                    "name": involved,
                    "uid": uid,
                }],
            },
            "spec": {
                "involvedObject": involved_object,
                "type": type_,
                "reason": reason,
                "message": message,
                "source": self.source,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
            },
        })
    }
}

/// The deterministic name of an event: `<object name, cut>-<16 hex digits of FNV-1a>`.
pub fn event_name(obj: &Involved, type_: EventType, reason: &str, message: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let type_name = match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    };
    for part in [obj.uid.as_str(), type_name, reason, message] {
        for b in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    let base: String = obj.name.chars().take(63 - 17).collect();
    let base = base.trim_end_matches('-');
    format!("{base}-{hash:016x}")
}

/// Deletes events whose `lastTimestamp` is more than `ttl` before `now`; returns how many.
pub async fn sweep(client: &dyn Client, ttl: Duration, now: DateTime<Utc>) -> Result<usize, Error> {
    let events = info::<EventSpec>();
    let cutoff = now - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let list = client.list(events, None, "").await?;
    let mut deleted = 0;
    for ev in &list.items {
        let last = ev
            .pointer("/spec/lastTimestamp")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        if last.is_some_and(|t| t < cutoff) {
            match client.delete(events, None, berth_crds::json::name(ev)).await {
                Ok(()) => deleted += 1,
                Err(client::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(deleted)
}

/// Sweeps every `every` until `shutdown`, logging failures.
pub async fn run_sweeper(
    client: Arc<dyn Client>,
    ttl: Duration,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => match sweep(client.as_ref(), ttl, Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "aged out events"),
                Err(e) => tracing::warn!(error = %e, "event sweep failed"),
            },
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_labels_and_differ_by_reason() {
        let obj = Involved {
            kind: info::<EventSpec>(),
            namespace: None,
            name: "a".repeat(63),
            uid: "u".into(),
        };
        let a = event_name(&obj, EventType::Normal, "Created", "m");
        assert_eq!(a, event_name(&obj, EventType::Normal, "Created", "m"));
        assert_ne!(a, event_name(&obj, EventType::Normal, "Deleted", "m"));
        assert_ne!(a, event_name(&obj, EventType::Warning, "Created", "m"));
        assert!(a.len() <= 63, "{a}");
        assert!(berth_crds::rules::dns1123_label(&a).is_ok());
    }
}
