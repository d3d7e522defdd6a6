//! Opens the [`Storage`] a `BackupStorage` declares, with its S3 keys from their Secret.
//!
//! # Guarantees
//! - Reads only the informers' caches; errors name the object and field at fault.
//!
//! # Caveats
//! - A `local` storage must be on a `localhost` Server (the machine berth runs on).

use berth_crds::kinds::{BackupStorageSpec, SecretSpec, ServerSpec};

use super::storage::{self, Local, S3, S3Config, Storage};
use crate::{informer::Informer, object::ObjectRef};

/// A storage that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The BackupStorage does not exist.
    #[error("backupstorage {0:?} not found")]
    NotFound(String),
    /// The local storage's server is not this machine.
    #[error("backupstorage {storage:?}: spec.local.server {server:?} is not a localhost server")]
    NotLocal {
        /// The storage.
        storage: String,
        /// The server.
        server: String,
    },
    /// The S3 credentials Secret or one of its keys is missing.
    #[error(
        "backupstorage {storage:?}: spec.s3.credentialsSecretRef: secret {secret} has no key {key:?} (or does not exist)"
    )]
    MissingCredentials {
        /// The storage.
        storage: String,
        /// `<namespace>/<name>`.
        secret: String,
        /// The key.
        key: String,
    },
    /// The storage declares neither `local` nor `s3`.
    #[error("backupstorage {0:?} declares neither local nor s3")]
    Empty(String),
    /// The S3 client could not be built.
    #[error("backupstorage {storage:?}: {source}")]
    Client {
        /// The storage.
        storage: String,
        /// Why.
        source: storage::Error,
    },
}

/// The caches a storage is opened from.
#[derive(Debug, Clone)]
pub struct Opener {
    /// BackupStorages.
    pub storages: Informer<BackupStorageSpec>,
    /// Secrets.
    pub secrets: Informer<SecretSpec>,
    /// Servers.
    pub servers: Informer<ServerSpec>,
}

impl Opener {
    /// Opens BackupStorage `name`.
    pub fn open(&self, name: &str) -> Result<Storage, Error> {
        let obj = self
            .storages
            .get(&ObjectRef::cluster(name))
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        self.open_spec(name, &obj.spec)
    }

    /// Opens the storage `spec` (of BackupStorage `name`) declares.
    pub fn open_spec(&self, name: &str, spec: &BackupStorageSpec) -> Result<Storage, Error> {
        if let Some(local) = &spec.local {
            let server = self.servers.get(&ObjectRef::cluster(&local.server));
            if server.is_none_or(|s| s.spec.localhost.is_none()) {
                return Err(Error::NotLocal {
                    storage: name.to_owned(),
                    server: local.server.clone(),
                });
            }
            return Ok(Storage::Local(Local::new(&local.path)));
        }
        let Some(s3) = &spec.s3 else {
            return Err(Error::Empty(name.to_owned()));
        };
        let c = &s3.credentials_secret_ref;
        let secret = self.secrets.get(&ObjectRef::new(Some(&c.namespace), &c.name));
        let key = |k: &str| {
            secret
                .as_ref()
                .and_then(|s| s.spec.data.get(k).cloned())
                .ok_or_else(|| Error::MissingCredentials {
                    storage: name.to_owned(),
                    secret: format!("{}/{}", c.namespace, c.name),
                    key: k.to_owned(),
                })
        };
        let config = S3Config {
            endpoint: s3.endpoint.clone(),
            bucket: s3.bucket.clone(),
            region: s3.region.clone(),
            path_style: s3.path_style,
            prefix: s3.prefix.clone().unwrap_or_default(),
            access_key_id: key(&c.access_key_id_key)?,
            secret_access_key: key(&c.secret_access_key_key)?,
        };
        S3::new(&config).map(Storage::S3).map_err(|source| Error::Client {
            storage: name.to_owned(),
            source,
        })
    }

    /// The BackupStorages whose S3 keys are in Secret `<ns>/<name>`.
    pub fn using_secret(&self, ns: &str, secret: &str) -> Vec<ObjectRef> {
        self.storages
            .list()
            .iter()
            .filter(|s| {
                s.spec.s3.as_ref().is_some_and(|s3| {
                    let r = &s3.credentials_secret_ref;
                    r.namespace == ns && r.name == secret
                })
            })
            .map(|s| ObjectRef::of(s.as_ref()))
            .collect()
    }
}
