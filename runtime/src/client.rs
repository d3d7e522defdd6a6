//! The client controllers use to reach the API layer: a small object-safe trait over JSON objects.
//!
//! The root crate implements [`Client`] for its in-process `Api`, so controllers go through
//! admission, validation and the status rules exactly as users do, without HTTP and without
//! naming the root crate (which depends on this one).
//!
//! # Guarantees
//! - [`Error`] keeps apart what a controller must react to differently: [`Error::NotFound`],
//!   [`Error::Conflict`], [`Error::AlreadyExists`] and [`Error::Gone`] (relist).
//!
//! # Caveats
//! - Objects are `serde_json::Value`s in their stored form (with `metadata.resourceVersion`);
//!   controllers use the typed [`crate::Api`] over it, which parses them into `Object<K>`.

use std::pin::Pin;

use berth_crds::registry::KindInfo;
use futures::Stream;
use serde_json::Value;

use crate::metrics::{Metrics, WriteLabels};

/// A failed client call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The object does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// The kind, e.g. `Project`.
        kind: String,
        /// The missing object's name.
        name: String,
    },
    /// An object with this name already exists.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// The kind.
        kind: String,
        /// The existing object's name.
        name: String,
    },
    /// The object changed since it was read (a resourceVersion precondition failed).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A watch asked for history that is compacted away: relist.
    #[error("resource version too old, relist (current {current})")]
    Gone {
        /// The current revision.
        current: i64,
    },
    /// The object was refused by validation or admission.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The API layer or its store is unavailable, or a watch was dropped; retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The API answered with an object that does not fit its kind's type.
    #[error("malformed object: {0}")]
    Malformed(String),
    /// Any other failure.
    #[error("api error: {0}")]
    Other(String),
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// The object was created.
    Added(Value),
    /// The object was changed.
    Modified(Value),
    /// The object was deleted; its last state.
    Deleted(Value),
    /// Nothing changed up to this resourceVersion.
    Bookmark(i64),
}

/// A stream of watch events; it ends (usually after an error) when the watch cannot go on.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, Error>> + Send>>;

/// A list result.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectList {
    /// The objects.
    pub items: Vec<Value>,
    /// The revision the list was read at: a watch after it misses nothing.
    pub resource_version: i64,
}

/// The operations controllers need, on JSON objects of any kind.
#[async_trait::async_trait]
pub trait Client: Send + Sync + 'static {
    /// Reads one object.
    async fn get(&self, kind: &'static KindInfo, ns: Option<&str>, name: &str) -> Result<Value, Error>;

    /// Lists a kind in one namespace (or all with `None`), filtered by a label selector
    /// (`""` for all).
    async fn list(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        label_selector: &str,
    ) -> Result<ObjectList, Error>;

    /// Watches a kind (all namespaces) for changes after `resource_version`.
    async fn watch(&self, kind: &'static KindInfo, resource_version: i64) -> Result<WatchStream, Error>;

    /// Creates an object.
    async fn create(&self, kind: &'static KindInfo, ns: Option<&str>, obj: Value) -> Result<Value, Error>;

    /// Applies a JSON merge patch to an object (a `metadata.resourceVersion` in it is a
    /// precondition).
    async fn patch(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, Error>;

    /// Applies a JSON merge patch to an object's `/status`.
    async fn patch_status(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, Error>;

    /// Deletes an object (or marks it for deletion when it has finalizers).
    async fn delete(&self, kind: &'static KindInfo, ns: Option<&str>, name: &str) -> Result<(), Error>;

    /// Validates and admits a create without storing anything (`dryRun=All`); returns the
    /// object as it would be stored. Clients that cannot dry-run say so with
    /// [`Error::Other`].
    async fn create_dry_run(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        obj: Value,
    ) -> Result<Value, Error> {
        let _ = (kind, ns, obj);
        Err(Error::Other("this client cannot dry-run".into()))
    }

    /// Validates and admits a merge patch without storing anything; returns the object as it
    /// would be stored.
    async fn patch_dry_run(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, Error> {
        let _ = (kind, ns, name, patch);
        Err(Error::Other("this client cannot dry-run".into()))
    }
}

/// A [`Client`] that counts the writes of one controller in [`Metrics::api_writes`].
pub struct Metered {
    inner: std::sync::Arc<dyn Client>,
    metrics: Metrics,
    controller: String,
}

impl Metered {
    /// Wraps `inner`, counting writes as `controller`'s.
    pub fn new(inner: std::sync::Arc<dyn Client>, metrics: Metrics, controller: &str) -> Self {
        Self {
            inner,
            metrics,
            controller: controller.to_owned(),
        }
    }

    fn count(&self, verb: &str) {
        self.metrics
            .api_writes
            .get_or_create(&WriteLabels {
                controller: self.controller.clone(),
                verb: verb.to_owned(),
            })
            .inc();
    }
}

#[async_trait::async_trait]
impl Client for Metered {
    async fn get(&self, kind: &'static KindInfo, ns: Option<&str>, name: &str) -> Result<Value, Error> {
        self.inner.get(kind, ns, name).await
    }

    async fn list(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        label_selector: &str,
    ) -> Result<ObjectList, Error> {
        self.inner.list(kind, ns, label_selector).await
    }

    async fn watch(&self, kind: &'static KindInfo, resource_version: i64) -> Result<WatchStream, Error> {
        self.inner.watch(kind, resource_version).await
    }

    async fn create(&self, kind: &'static KindInfo, ns: Option<&str>, obj: Value) -> Result<Value, Error> {
        self.count("create");
        self.inner.create(kind, ns, obj).await
    }

    async fn patch(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, Error> {
        self.count("patch");
        self.inner.patch(kind, ns, name, patch).await
    }

    async fn patch_status(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, Error> {
        self.count("patch_status");
        self.inner.patch_status(kind, ns, name, patch).await
    }

    async fn delete(&self, kind: &'static KindInfo, ns: Option<&str>, name: &str) -> Result<(), Error> {
        self.count("delete");
        self.inner.delete(kind, ns, name).await
    }

    // Dry runs write nothing, so they are not counted.
    async fn create_dry_run(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        obj: Value,
    ) -> Result<Value, Error> {
        self.inner.create_dry_run(kind, ns, obj).await
    }

    async fn patch_dry_run(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, Error> {
        self.inner.patch_dry_run(kind, ns, name, patch).await
    }
}
