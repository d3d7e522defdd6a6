//! Garbage collector: background cascade over ownerReferences and environments.
//!
//! # Guarantees
//! - An object all of whose owners (by uid) are gone is deleted, through the API layer (so
//!   its own finalizers and dependents are honoured in turn).
//! - A namespaced object whose Environment is gone is deleted.
//! - Every Project has its production Environment.
//! - Level-triggered: each pass starts from a full list, so cascades interrupted by a crash
//!   or restart complete on the next start; then it follows the store's changes.
//!
//! # Caveats
//! Every `berth serve` process runs a collector; deletes are idempotent, so several
//! collectors on one store only repeat each other's work.

use std::collections::{HashMap, HashSet};

use backon::{BackoffBuilder, ExponentialBuilder};
use berth_crds::store::{EventKind, KeyValue};
use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    error::{Error, Result},
    object::{self, KEY_ROOT},
    objects::{Api, DeleteOptions, resolve},
};

/// How often orphans whose delete failed are tried again without a relist.
const RESWEEP: std::time::Duration = std::time::Duration::from_secs(30);

/// What the collector remembers of one object.
#[derive(Debug, Clone)]
struct Entry {
    uid: String,
    owners: Vec<String>,
    namespace: Option<String>,
}

/// The collector's view of the store.
#[derive(Debug, Default)]
struct Index {
    objects: HashMap<String, Entry>,
    uids: HashSet<String>,
    by_owner: HashMap<String, HashSet<String>>,
    by_namespace: HashMap<String, HashSet<String>>,
    environments: HashSet<String>,
}

impl Index {
    fn put(&mut self, key: &str, obj: &Value) {
        self.remove(key);
        let entry = Entry {
            uid: object::uid(obj).to_string(),
            owners: object::owner_uids(obj),
            namespace: object::namespace(obj).map(str::to_owned),
        };
        for owner in &entry.owners {
            self.by_owner
                .entry(owner.clone())
                .or_default()
                .insert(key.to_string());
        }
        if let Some(ns) = &entry.namespace {
            self.by_namespace
                .entry(ns.clone())
                .or_default()
                .insert(key.to_string());
        }
        if let Some(("environments", None, name)) = object::parse_key(key) {
            self.environments.insert(name.to_string());
        }
        self.uids.insert(entry.uid.clone());
        self.objects.insert(key.to_string(), entry);
    }

    /// Forgets `key`; returns the keys that may have lost an owner or their namespace.
    fn remove(&mut self, key: &str) -> Vec<String> {
        let Some(entry) = self.objects.remove(key) else {
            return Vec::new();
        };
        self.uids.remove(&entry.uid);
        for owner in &entry.owners {
            if let Some(set) = self.by_owner.get_mut(owner) {
                set.remove(key);
            }
        }
        if let Some(ns) = &entry.namespace
            && let Some(set) = self.by_namespace.get_mut(ns)
        {
            set.remove(key);
        }
        let mut affected: Vec<String> = self
            .by_owner
            .get(&entry.uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if let Some(("environments", None, name)) = object::parse_key(key) {
            self.environments.remove(name);
            affected.extend(self.by_namespace.get(name).into_iter().flatten().cloned());
        }
        affected
    }

    fn is_orphan(&self, key: &str) -> bool {
        let Some(e) = self.objects.get(key) else {
            return false;
        };
        let owners_gone = !e.owners.is_empty() && e.owners.iter().all(|o| !self.uids.contains(o));
        let namespace_gone = e
            .namespace
            .as_ref()
            .is_some_and(|ns| !self.environments.contains(ns));
        owners_gone || namespace_gone
    }
}

/// Runs the collector until `shutdown`, restarting passes with backoff after errors.
pub async fn run(api: Api, shutdown: CancellationToken) {
    let mut backoff = restart_backoff();
    loop {
        let result = tokio::select! {
            r = pass(&api) => r,
            () = shutdown.cancelled() => return,
        };
        let delay = match result {
            Ok(()) => {
                backoff = restart_backoff();
                continue;
            }
            Err(Error::Gone { .. }) => {
                tracing::info!("garbage collector relisting after compaction");
                continue;
            }
            Err(e) => {
                let d = backoff.next().unwrap_or(std::time::Duration::from_secs(5));
                tracing::warn!(error = %e, retry_in = ?d, "garbage collector pass failed");
                d
            }
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

fn restart_backoff() -> impl Iterator<Item = std::time::Duration> {
    ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(100))
        .with_max_delay(std::time::Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}

/// One pass: list everything, sweep, then follow changes until the watch ends.
async fn pass(api: &Api) -> Result<()> {
    let listing = api
        .store()
        .list(KEY_ROOT)
        .await
        .map_err(|e| Error::from_store(e, "objects", ""))?;
    let mut index = Index::default();
    let mut projects = Vec::new();
    for kv in &listing.items {
        let obj = decode(kv)?;
        index.put(&kv.key, &obj);
        if let Some(("projects", None, _)) = object::parse_key(&kv.key) {
            projects.push(obj);
        }
    }
    for project in &projects {
        if let Err(e) = api.ensure_production_environment(project).await {
            tracing::warn!(project = object::name(project), error = %e, "could not ensure the production environment");
        }
    }
    let orphans: Vec<String> = index
        .objects
        .keys()
        .filter(|k| index.is_orphan(k))
        .cloned()
        .collect();
    collect(api, &orphans).await;

    let mut changes = api
        .store()
        .watch(KEY_ROOT, listing.revision)
        .await
        .map_err(|e| Error::from_store(e, "objects", ""))?;
    let mut resweep = tokio::time::interval(RESWEEP);
    resweep.tick().await;
    loop {
        let change = tokio::select! {
            change = changes.next() => change,
            _ = resweep.tick() => {
                // Deletes that failed earlier are retried from the in-memory index.
                let orphans: Vec<String> = index.objects.keys().filter(|k| index.is_orphan(k)).cloned().collect();
                collect(api, &orphans).await;
                continue;
            }
        };
        let Some(change) = change else { break };
        let change = change.map_err(|e| Error::from_store(e, "objects", ""))?;
        let affected = match change.kind {
            EventKind::Put => {
                index.put(&change.kv.key, &decode(&change.kv)?);
                vec![change.kv.key.clone()]
            }
            EventKind::Delete => index.remove(&change.kv.key),
        };
        let orphans: Vec<String> = affected.into_iter().filter(|k| index.is_orphan(k)).collect();
        collect(api, &orphans).await;
    }
    Ok(())
}

/// Deletes orphans through the API layer; failures are logged and retried on the next pass.
async fn collect(api: &Api, keys: &[String]) {
    for key in keys {
        let Some((plural, ns, name)) = object::parse_key(key) else {
            continue;
        };
        let Ok(info) = resolve(plural) else {
            tracing::warn!(key, "garbage collector found a key of an unknown kind");
            continue;
        };
        match api.delete(info, ns, name, &DeleteOptions::default()).await {
            Ok(_) => tracing::info!(kind = info.kind, namespace = ?ns, name, "garbage-collected"),
            Err(Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(kind = info.kind, namespace = ?ns, name, error = %e, "garbage collection failed")
            }
        }
    }
}

fn decode(kv: &KeyValue) -> Result<Value> {
    object::decode(&kv.value, kv.mod_revision)
        .map_err(|e| Error::Internal(format!("stored object {} is not valid JSON: {e}", kv.key)))
}
