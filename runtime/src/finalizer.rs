//! The finalizer helper: external cleanup that runs before an object may disappear.
//!
//! [`finalizer`] sorts an object into kube-runtime's four cases:
//! 1. finalizer present, not deleting: [`Event::Apply`];
//! 2. finalizer present, deleting: [`Event::Cleanup`], then the finalizer is removed —
//!    unless the cleanup answered [`Action::cleanup_pending`], which keeps it and looks again;
//! 3. finalizer absent, not deleting: the finalizer is added first (before anything external
//!    is created), and the resulting change triggers case 1;
//! 4. finalizer absent, deleting: nothing to do.
//!
//! # Guarantees
//! - The finalizer is removed only after cleanup succeeded; the removal carries the
//!   object's resourceVersion as a precondition, so it never acts on a state it did not see.
//!
//! A reconciler with a finalizer implements [`Finalize`] (apply, cleanup, its finalizer's
//! name) and is run as [`Finalized`]; [`finalizer`] is the same logic as a function.
//!
//! # Caveats
//! - Apply and Cleanup must be idempotent, and Cleanup must cope with Apply never having run.
//! - Deletes hang while the controller is down (that is the point).

use std::{future::Future, sync::Arc};

use berth_crds::{Object, Resource};
use serde_json::{Value, json};

use crate::{
    api::Api,
    client,
    controller::{Action, Reconciler},
};

/// What the reconciler is asked to do.
#[derive(Debug)]
pub enum Event<K: Resource> {
    /// Converge the object (it carries the finalizer and is not being deleted).
    Apply(Arc<Object<K>>),
    /// Remove what the object created outside the API; the finalizer goes afterwards.
    Cleanup(Arc<Object<K>>),
}

/// A failure of [`finalizer`].
#[derive(Debug, thiserror::Error)]
pub enum Error<E: std::error::Error + 'static> {
    /// The reconciler's apply failed.
    #[error("apply failed: {0}")]
    ApplyFailed(#[source] E),
    /// The reconciler's cleanup failed; the finalizer stays.
    #[error("cleanup failed: {0}")]
    CleanupFailed(#[source] E),
    /// The finalizer could not be added.
    #[error("failed to add finalizer: {0}")]
    AddFinalizer(#[source] client::Error),
    /// The finalizer could not be removed after cleanup.
    #[error("failed to remove finalizer: {0}")]
    RemoveFinalizer(#[source] client::Error),
}

/// Runs `reconcile` under the finalizer `name` (see the module docs for the four cases).
pub async fn finalizer<K, E, F, Fut>(
    api: &Api<K>,
    name: &str,
    obj: Arc<Object<K>>,
    reconcile: F,
) -> Result<Action, Error<E>>
where
    K: Resource,
    E: std::error::Error + 'static,
    F: FnOnce(Event<K>) -> Fut,
    Fut: Future<Output = Result<Action, E>>,
{
    let finalizers = obj.metadata.finalizers.clone();
    let has = finalizers.iter().any(|f| f == name);
    let rv = obj.metadata.resource_version.clone().unwrap_or_default();
    let api = api.within(obj.namespace());
    let obj_name = obj.name().to_owned();
    match (has, obj.is_deleting()) {
        (true, false) => reconcile(Event::Apply(obj)).await.map_err(Error::ApplyFailed),
        (true, true) => {
            let action = reconcile(Event::Cleanup(obj))
                .await
                .map_err(Error::CleanupFailed)?;
            if action.is_cleanup_pending() {
                return Ok(action);
            }
            let rest: Vec<String> = finalizers.into_iter().filter(|f| f != name).collect();
            let rest = if rest.is_empty() { Value::Null } else { json!(rest) };
            let patch = json!({"metadata": {"resourceVersion": rv, "finalizers": rest}});
            match api.patch(&obj_name, patch).await {
                Ok(_) | Err(client::Error::NotFound { .. }) => Ok(action),
                Err(e) => Err(Error::RemoveFinalizer(e)),
            }
        }
        (false, false) => {
            let mut all = finalizers;
            all.push(name.to_owned());
            let patch = json!({"metadata": {"resourceVersion": rv, "finalizers": all}});
            api.patch(&obj_name, patch).await.map_err(Error::AddFinalizer)?;
            Ok(Action::await_change())
        }
        (false, true) => Ok(Action::await_change()),
    }
}

/// A reconciler whose objects carry a finalizer: what to do while they live, and what to
/// clean up before they go. Run it as [`Finalized`].
#[async_trait::async_trait]
pub trait Finalize<K: Resource>: Send + Sync + 'static {
    /// The reconciler's error; any error retries the key with backoff.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The finalizer's name, e.g. `berth.dev/destination`.
    const FINALIZER: &'static str;

    /// The API the finalizer is added and removed through.
    fn api(&self) -> &Api<K>;

    /// Converges a live object (it carries the finalizer).
    async fn apply(&self, obj: Arc<Object<K>>) -> Result<Action, Self::Error>;

    /// Removes what the object made outside the API; copes with apply never having run.
    async fn cleanup(&self, obj: Arc<Object<K>>) -> Result<Action, Self::Error>;
}

/// Runs a [`Finalize`] reconciler as a [`Reconciler`].
#[derive(Debug)]
pub struct Finalized<R>(pub R);

#[async_trait::async_trait]
impl<K: Resource, R: Finalize<K>> Reconciler<K> for Finalized<R> {
    type Error = Error<R::Error>;

    async fn reconcile(&self, obj: Arc<Object<K>>) -> Result<Action, Self::Error> {
        let inner = &self.0;
        finalizer(inner.api(), R::FINALIZER, obj, |event| async move {
            match event {
                Event::Apply(obj) => inner.apply(obj).await,
                Event::Cleanup(obj) => inner.cleanup(obj).await,
            }
        })
        .await
    }
}
