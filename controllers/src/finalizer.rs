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
//! # Caveats
//! - Apply and Cleanup must be idempotent, and Cleanup must cope with Apply never having run.
//! - Deletes hang while the controller is down (that is the point).

use std::{future::Future, sync::Arc};

use berth_crds::registry::KindInfo;
use serde_json::{Value, json};

use crate::{
    client::{self, Client},
    controller::Action,
    object,
};

/// What the reconciler is asked to do.
#[derive(Debug, Clone)]
pub enum Event {
    /// Converge the object (it carries the finalizer and is not being deleted).
    Apply(Arc<Value>),
    /// Remove what the object created outside the API; the finalizer goes afterwards.
    Cleanup(Arc<Value>),
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
pub async fn finalizer<E, F, Fut>(
    client: &dyn Client,
    kind: &'static KindInfo,
    name: &str,
    obj: Arc<Value>,
    reconcile: F,
) -> Result<Action, Error<E>>
where
    E: std::error::Error + 'static,
    F: FnOnce(Event) -> Fut,
    Fut: Future<Output = Result<Action, E>>,
{
    let finalizers = object::finalizers(&obj);
    let has = finalizers.iter().any(|f| f == name);
    let rv = object::meta_str(&obj, "resourceVersion")
        .unwrap_or_default()
        .to_owned();
    let (ns, obj_name) = (
        object::namespace(&obj).map(str::to_owned),
        object::name(&obj).to_owned(),
    );
    match (has, object::is_deleting(&obj)) {
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
            match client.patch(kind, ns.as_deref(), &obj_name, patch).await {
                Ok(_) | Err(client::Error::NotFound { .. }) => Ok(action),
                Err(e) => Err(Error::RemoveFinalizer(e)),
            }
        }
        (false, false) => {
            let mut all = finalizers;
            all.push(name.to_owned());
            let patch = json!({"metadata": {"resourceVersion": rv, "finalizers": all}});
            client
                .patch(kind, ns.as_deref(), &obj_name, patch)
                .await
                .map_err(Error::AddFinalizer)?;
            Ok(Action::await_change())
        }
        (false, true) => Ok(Action::await_change()),
    }
}
