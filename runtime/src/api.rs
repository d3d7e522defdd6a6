//! [`Api<K>`]: the API of one kind (and namespace), typed, over the object-safe [`Client`].
//!
//! # Guarantees
//! - Objects come back as `Object<K>`; an answer that does not parse as `K` is
//!   [`Error::Malformed`], never a panic.
//! - The kind's registry entry comes from the type ([`crate::object::info`]).
//!
//! # Caveats
//! - Patches are JSON merge patches, as the API takes them; a `metadata.resourceVersion` in
//!   a patch is a precondition.

use std::{marker::PhantomData, sync::Arc};

use berth_crds::{Object, Resource, registry::KindInfo};
use serde_json::Value;

use crate::{
    client::{Client, Error},
    object::info,
};

/// The API of kind `K`, bound to a namespace (or to all / cluster scope with `None`).
pub struct Api<K> {
    client: Arc<dyn Client>,
    namespace: Option<String>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Resource> std::fmt::Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("kind", &K::KIND)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

fn decode<K: Resource>(value: Value) -> Result<Object<K>, Error> {
    serde_json::from_value(value).map_err(|e| Error::Malformed(format!("{}: {e}", K::KIND)))
}

fn encode<K: Resource>(obj: &Object<K>) -> Result<Value, Error> {
    serde_json::to_value(obj).map_err(|e| Error::Malformed(format!("{}: {e}", K::KIND)))
}

impl<K: Resource> Api<K> {
    /// Cluster-scoped kinds, or every namespace of a namespaced kind.
    pub fn all(client: Arc<dyn Client>) -> Self {
        Self {
            client,
            namespace: None,
            kind: PhantomData,
        }
    }

    /// The objects of one namespace (`None`: cluster scope).
    pub fn namespaced(client: Arc<dyn Client>, namespace: Option<&str>) -> Self {
        Self {
            client,
            namespace: namespace.map(str::to_owned),
            kind: PhantomData,
        }
    }

    /// The same client bound to `namespace`.
    pub fn within(&self, namespace: Option<&str>) -> Self {
        Self::namespaced(self.client.clone(), namespace)
    }

    /// The namespace this API is bound to.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The kind's registry entry.
    pub fn kind(&self) -> &'static KindInfo {
        info::<K>()
    }

    /// The untyped client underneath.
    pub fn client(&self) -> &Arc<dyn Client> {
        &self.client
    }

    /// Reads one object.
    pub async fn get(&self, name: &str) -> Result<Object<K>, Error> {
        decode(self.client.get(info::<K>(), self.namespace(), name).await?)
    }

    /// Lists by label selector (`""` for all).
    pub async fn list(&self, label_selector: &str) -> Result<Vec<Object<K>>, Error> {
        let list = self
            .client
            .list(info::<K>(), self.namespace(), label_selector)
            .await?;
        list.items.into_iter().map(decode).collect()
    }

    /// Creates `obj` (in its own namespace, or this API's when it names none).
    pub async fn create(&self, obj: &Object<K>) -> Result<Object<K>, Error> {
        let ns = obj.metadata.namespace.as_deref().or(self.namespace());
        decode(self.client.create(info::<K>(), ns, encode(obj)?).await?)
    }

    /// Validates and admits a create without storing anything; the object as it would be stored.
    pub async fn create_dry_run(&self, obj: &Object<K>) -> Result<Object<K>, Error> {
        let ns = obj.metadata.namespace.as_deref().or(self.namespace());
        decode(self.client.create_dry_run(info::<K>(), ns, encode(obj)?).await?)
    }

    /// Applies a JSON merge patch.
    pub async fn patch(&self, name: &str, patch: Value) -> Result<Object<K>, Error> {
        decode(
            self.client
                .patch(info::<K>(), self.namespace(), name, patch)
                .await?,
        )
    }

    /// Validates and admits a merge patch without storing anything.
    pub async fn patch_dry_run(&self, name: &str, patch: Value) -> Result<Object<K>, Error> {
        decode(
            self.client
                .patch_dry_run(info::<K>(), self.namespace(), name, patch)
                .await?,
        )
    }

    /// Applies a JSON merge patch to `/status`.
    pub async fn patch_status(&self, name: &str, patch: Value) -> Result<Object<K>, Error> {
        decode(
            self.client
                .patch_status(info::<K>(), self.namespace(), name, patch)
                .await?,
        )
    }

    /// Deletes (or marks for deletion, with finalizers).
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        self.client.delete(info::<K>(), self.namespace(), name).await
    }
}
