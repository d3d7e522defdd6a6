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

use berth_crds::{kinds::BackupStorageSpec, meta::ConditionStatus, registry::KindInfo};
use serde_json::Value;
use tracing::Instrument;

use crate::{
    backup::{self, open, open::Opener},
    client::Client,
    controller::{Action, Controller, ControllerConfig, Reconciler},
    manager::Manager,
    object,
    server::{self, Dockers},
    status,
};

/// The controller's name (metrics, logs).
pub const NAME: &str = "backupstorage";
/// How often a Ready storage is probed again.
pub const RECHECK: Duration = Duration::from_secs(300);

/// A failed BackupStorage reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cached object does not parse as a BackupStorage.
    #[error("backupstorage {name:?} is malformed: {source}")]
    Malformed {
        /// The storage.
        name: String,
        /// Why.
        source: serde_json::Error,
    },
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
    client: Arc<dyn Client>,
    kind: &'static KindInfo,
    opener: Opener,
}

/// Adds the BackupStorage controller to `manager`.
pub fn install(
    manager: &mut Manager,
    config: ControllerConfig,
    dockers: Dockers,
) -> Result<(), server::Error> {
    let kind = server::kind("BackupStorage")?;
    let (opener, _) = backup::caches(manager, dockers)?;
    let by_secret = opener.clone();
    let controller = Controller::new(NAME, opener.storages.clone())
        .with_config(config)
        .watches(&opener.servers, |_| Vec::new())
        .watches(&opener.secrets, move |s| {
            by_secret.using_secret(object::namespace(s).unwrap_or_default(), object::name(s))
        });
    let reconciler = StorageReconciler {
        client: manager.client_for(NAME),
        kind,
        opener,
    };
    manager.add(controller, reconciler);
    Ok(())
}

impl StorageReconciler {
    async fn apply(&self, obj: &Value) -> Result<Action, Error> {
        let name = object::name(obj).to_owned();
        let bs = object::typed::<BackupStorageSpec>(obj).map_err(|source| Error::Malformed {
            name: name.clone(),
            source,
        })?;
        let generation = object::generation(obj);
        let mut next = bs.status.clone().unwrap_or_default();
        next.observed_generation = Some(generation);
        let checked = match self.opener.open_spec(&name, &bs.spec) {
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
        status::update::<BackupStorageSpec>(self.client.as_ref(), self.kind, obj, &next).await?;
        checked.map(|()| Action::requeue(RECHECK))
    }
}

#[async_trait::async_trait]
impl Reconciler for StorageReconciler {
    type Error = Error;

    async fn reconcile(&self, obj: Arc<Value>) -> Result<Action, Self::Error> {
        let span = tracing::info_span!("reconcile", kind = "BackupStorage", name = %object::name(&obj));
        self.apply(&obj).instrument(span).await
    }
}
