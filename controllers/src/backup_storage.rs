//! The BackupStorage controller: checks that each storage is reachable and writable.
//!
//! # Guarantees
//! - `Ready=True reason=Writable` once a probe object/file was written and removed;
//!   otherwise `Ready=False` with the reason (`Unreachable` with the storage's or S3's own
//!   message, `InvalidConfig` for a missing Secret key or a non-local server) and a retry
//!   with backoff. A Ready storage is re-checked every [`RECHECK`].
//! - A change of the credentials Secret re-checks the storages using it.
//!
//! # Caveats
//! - Ready is a snapshot: a backup can still fail on a storage that broke since.

use std::{sync::Arc, time::Duration};

use berth_crds::{Object, kinds::BackupStorageSpec, meta::ConditionStatus};
use berth_runtime::Api;

use crate::{
    backup::{self, open, open::Opener},
    controller::{Action, Controller, ControllerConfig, Reconciler},
    dockers::Dockers,
    manager::Manager,
    status,
};

/// The controller's name (metrics, logs).
pub const NAME: &str = "backupstorage";
/// How often a Ready storage is probed again.
pub const RECHECK: Duration = Duration::from_secs(300);

/// A failed BackupStorage reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage could not be opened (the status says why; this retries).
    #[error(transparent)]
    Open(#[from] open::Error),
    /// The probe failed (the status says why; this retries).
    #[error("probe failed: {0}")]
    Probe(#[from] backup::storage::Error),
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
}

/// Reconciles BackupStorages.
pub struct StorageReconciler {
    api: Api<BackupStorageSpec>,
    opener: Opener,
}

/// Adds the BackupStorage controller to `manager`.
pub fn install(manager: &mut Manager, config: ControllerConfig, dockers: Dockers) {
    let (opener, _) = backup::caches(manager, dockers);
    let by_secret = opener.clone();
    let controller = Controller::new(NAME, opener.storages.clone())
        .with_config(config)
        .reads(&opener.servers)
        .watches(&opener.secrets, move |s| {
            by_secret.using_secret(s.namespace().unwrap_or_default(), s.name())
        });
    let reconciler = StorageReconciler {
        api: manager.api_for(NAME),
        opener,
    };
    manager.add(controller, reconciler);
}

#[async_trait::async_trait]
impl Reconciler<BackupStorageSpec> for StorageReconciler {
    type Error = Error;

    async fn reconcile(&self, bs: Arc<Object<BackupStorageSpec>>) -> Result<Action, Self::Error> {
        let generation = bs.generation();
        let mut next = bs.status.clone().unwrap_or_default();
        next.observed_generation = Some(generation);
        let checked = match self.opener.open_spec(bs.name(), &bs.spec) {
            Ok(storage) => storage.probe().await.map_err(Error::from),
            Err(e) => Err(e.into()),
        };
        let (state, reason, message) = match &checked {
            Ok(()) => (
                ConditionStatus::True,
                "Writable",
                "a probe was written and removed".to_string(),
            ),
            Err(e @ Error::Open(_)) => (ConditionStatus::False, "InvalidConfig", e.to_string()),
            Err(e) => (ConditionStatus::False, "Unreachable", e.to_string()),
        };
        status::set_now(&mut next.conditions, "Ready", state, reason, &message, generation);
        status::update(&self.api, &bs, &next).await?;
        checked.map(|()| Action::requeue(RECHECK))
    }
}
