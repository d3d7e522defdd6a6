//! The API layer: create, read, update, patch, delete and watch with Kubernetes semantics.
//!
//! HTTP handlers and in-process controllers both go through [`Api`], so admission,
//! validation, generation and finalizer rules hold for every writer.
//!
//! # Guarantees
//! - `uid`, `creationTimestamp` and `generation` are set by the server; `generation` moves
//!   only when `spec` changes (or when deletion starts, as for Kubernetes custom resources).
//! - Writes to an object never change its `status`; writes to `/status` change nothing else.
//! - A write that changes nothing is not stored: the resourceVersion stays.
//! - An object with finalizers is only marked for deletion; it disappears with the write that
//!   removes its last finalizer.
//! - A delete without preconditions does not fail with a conflict because a controller
//!   wrote the object meanwhile: it reads again (up to 8 times).
//!
//! # Caveats
//! Owner and namespace cascades run in the background ([`super::gc`]), as Kubernetes'
//! background propagation does.

use std::sync::Arc;

use berth_crds::{
    registry::{self, KindInfo},
    store::{self, Store},
    validation::FieldErrorKind,
};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{
    admission::{self, Lookup},
    body::{check_name, invalid, invalid_field, prepare_body, required_rv, validated},
    error::{Error, Result},
    object::{self, key},
    production,
    selector::{FieldSelector, LabelSelector},
};

/// How many times an internal read-modify-write (patch) retries on a conflict.
const PATCH_RETRIES: usize = 8;
/// How often a delete without preconditions reads again after losing a race with a write.
const DELETE_CONFLICT_RETRIES: usize = 8;

/// Options of a write.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Validate and admit, but store nothing (`?dryRun=All`).
    pub dry_run: bool,
}

/// Preconditions and options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Validate and admit, but store nothing.
    pub dry_run: bool,
    /// Delete only if the object still has this resourceVersion.
    pub resource_version: Option<i64>,
    /// Delete only if the object still has this uid.
    pub uid: Option<String>,
}

/// A list result: the items and the revision they were read at.
#[derive(Debug, Clone)]
pub struct List {
    /// The matching objects.
    pub items: Vec<Value>,
    /// The list's resourceVersion: watch after it to miss nothing.
    pub revision: i64,
}

/// The API layer over a store.
#[derive(Clone)]
pub struct Api {
    store: Arc<dyn Store>,
    policy: Arc<admission::Policy>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

/// A stored object and its revision.
struct Current {
    obj: Value,
    rv: i64,
}

impl Api {
    /// An API layer over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_policy(store, admission::Policy::default())
    }

    /// An API layer over `store` that admits what `policy` allows.
    pub fn with_policy(store: Arc<dyn Store>, policy: admission::Policy) -> Self {
        Self {
            store,
            policy: Arc::new(policy),
        }
    }

    /// The underlying store (for watch and health checks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Reads one object.
    pub async fn get(&self, info: &KindInfo, ns: Option<&str>, name: &str) -> Result<Value> {
        Ok(self.current(info, ns, name).await?.obj)
    }

    /// Lists objects of a kind in one namespace (or all, with `ns` = `None`), filtered.
    pub async fn list(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Result<List> {
        let listing = self
            .store
            .list(&object::prefix(info, ns))
            .await
            .map_err(|e| Error::from_store(e, info.plural, ""))?;
        let mut items = Vec::with_capacity(listing.items.len());
        for kv in listing.items {
            let obj = object::decode(&kv.value, kv.mod_revision).map_err(|e| corrupt(&kv.key, e))?;
            if labels.matches(&object::labels(&obj))
                && fields.matches(object::name(&obj), object::namespace(&obj))
            {
                items.push(obj);
            }
        }
        Ok(List {
            items,
            revision: listing.revision,
        })
    }

    /// Creates an object (POST). The body's status is ignored.
    pub async fn create(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        body: Value,
        opts: WriteOptions,
    ) -> Result<Value> {
        let mut obj = prepare_body(info, ns, body)?;
        if object::resource_version(&obj).is_some() {
            return Err(invalid_field(
                info,
                &obj,
                "metadata.resourceVersion",
                FieldErrorKind::Invalid,
                "must not be set on create",
            ));
        }
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
        {
            let meta = object::meta_mut(&mut obj);
            for server_set in ["uid", "creationTimestamp", "deletionTimestamp", "generation"] {
                meta.remove(server_set);
            }
        }
        let mut obj = validated(info, obj)?;
        admission::admit_spec(&self.policy, info, None, &obj)?;
        admission::admit_create(self, info, &obj).await?;
        let meta = object::meta_mut(&mut obj);
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now()));
        meta.insert("generation".into(), json!(1));
        let name = object::name(&obj).to_string();
        if opts.dry_run {
            return Ok(obj);
        }
        let k = key(info, object::namespace(&obj), &name);
        let rv = self
            .store
            .create(&k, object::encode(&obj))
            .await
            .map_err(|e| Error::from_store(e, info.plural, &name))?;
        object::set_resource_version(&mut obj, rv);
        tracing::debug!(kind = info.kind, namespace = ?ns, name, rv, "created");
        if info.kind == "Project"
            && let Err(e) = Box::pin(self.ensure_production_environment(&obj)).await
        {
            // The Project exists; the garbage collector's housekeeping ensures it again.
            tracing::warn!(project = %name, error = %e, "could not create the production environment");
        }
        Ok(obj)
    }

    /// Replaces an object (PUT). Requires the body's resourceVersion to match.
    pub async fn replace(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        name: &str,
        body: Value,
        opts: WriteOptions,
    ) -> Result<Value> {
        let (body, current) = self.replace_target(info, ns, name, body).await?;
        self.write_spec(info, current, body, opts).await
    }

    /// Applies a JSON merge patch (RFC 7386) to an object. A `metadata.resourceVersion` in the
    /// patch is a precondition; without it the patch retries internal conflicts.
    pub async fn patch(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: Value,
        opts: WriteOptions,
    ) -> Result<Value> {
        self.patch_with(info, ns, name, &patch, opts, false).await
    }

    /// Replaces an object's status (PUT `/status`). Requires a matching resourceVersion.
    pub async fn replace_status(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        name: &str,
        body: Value,
        opts: WriteOptions,
    ) -> Result<Value> {
        let (body, current) = self.replace_target(info, ns, name, body).await?;
        self.write_status(info, current, body.get("status").cloned(), opts)
            .await
    }

    /// The checks every PUT shares: body matches the path, the object exists (PUT never
    /// creates, so a missing object is NotFound whatever the body says), and the body's
    /// resourceVersion is the stored one.
    async fn replace_target(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        name: &str,
        body: Value,
    ) -> Result<(Value, Current)> {
        let body = prepare_body(info, ns, body)?;
        check_name(info, &body, name)?;
        let current = self.current(info, ns, name).await?;
        if current.rv != required_rv(info, &body)? {
            return Err(conflict(info, name));
        }
        Ok((body, current))
    }

    /// Merge-patches an object's status (PATCH `/status`).
    pub async fn patch_status(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: Value,
        opts: WriteOptions,
    ) -> Result<Value> {
        self.patch_with(info, ns, name, &patch, opts, true).await
    }

    /// Deletes an object: at once when it has no finalizers, else by setting its
    /// deletionTimestamp. Returns the object as it last was.
    pub async fn delete(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value> {
        // As Kubernetes' GuaranteedUpdate: a delete without preconditions does not fail
        // because a controller wrote the object (its status, a finalizer) between our read
        // and our write; it reads again. With preconditions the conflict is the answer.
        let preconditions = opts.resource_version.is_some() || opts.uid.is_some();
        let mut attempt = 0;
        loop {
            match self.delete_once(info, ns, name, opts).await {
                Err(Error::Conflict(message)) if !preconditions && attempt < DELETE_CONFLICT_RETRIES => {
                    attempt += 1;
                    tracing::debug!(kind = info.kind, namespace = ?ns, name, attempt, message, "delete raced a write; reading again");
                }
                other => return other,
            }
        }
    }

    /// One read-check-write of [`Self::delete`].
    async fn delete_once(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value> {
        let current = self.current(info, ns, name).await?;
        if opts.resource_version.is_some_and(|rv| rv != current.rv)
            || opts
                .uid
                .as_deref()
                .is_some_and(|u| u != object::uid(&current.obj))
        {
            return Err(Error::Conflict(format!(
                "precondition failed for {} {name:?}: resourceVersion or uid does not match",
                info.plural
            )));
        }
        admission::admit_delete(self, info, &current.obj).await?;
        if object::finalizers(&current.obj).is_empty() {
            if opts.dry_run {
                return Ok(current.obj);
            }
            let k = key(info, ns, name);
            let (rv, _) = self
                .store
                .delete(&k, Some(current.rv))
                .await
                .map_err(|e| Error::from_store(e, info.plural, name))?;
            let mut gone = current.obj;
            object::set_resource_version(&mut gone, rv);
            tracing::debug!(kind = info.kind, namespace = ?ns, name, rv, "deleted");
            return Ok(gone);
        }
        if object::is_deleting(&current.obj) {
            return Ok(current.obj);
        }
        let mut obj = current.obj.clone();
        let meta = object::meta_mut(&mut obj);
        meta.insert("deletionTimestamp".into(), json!(now()));
        meta.insert("generation".into(), json!(object::generation(&current.obj) + 1));
        if opts.dry_run {
            return Ok(obj);
        }
        self.store_update(info, &current, obj).await
    }

    /// Reads an object with its revision.
    async fn current(&self, info: &KindInfo, ns: Option<&str>, name: &str) -> Result<Current> {
        let k = key(info, ns, name);
        let kv = self
            .store
            .get(&k)
            .await
            .map_err(|e| Error::from_store(e, info.plural, name))?
            .ok_or_else(|| Error::NotFound {
                kind: info.plural.into(),
                name: name.into(),
            })?;
        let obj = object::decode(&kv.value, kv.mod_revision).map_err(|e| corrupt(&k, e))?;
        Ok(Current {
            obj,
            rv: kv.mod_revision,
        })
    }

    async fn patch_with(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
        opts: WriteOptions,
        status: bool,
    ) -> Result<Value> {
        if !patch.is_object() {
            return Err(Error::BadRequest("a merge patch must be a JSON object".into()));
        }
        let precondition = object::resource_version(patch)
            .transpose()
            .map_err(|rv| Error::BadRequest(format!("metadata.resourceVersion {rv:?} is not a revision")))?;
        for _ in 0..PATCH_RETRIES {
            let current = self.current(info, ns, name).await?;
            if precondition.is_some_and(|rv| rv != current.rv) {
                return Err(conflict(info, name));
            }
            let mut merged = current.obj.clone();
            json_patch::merge(&mut merged, patch);
            object::set_resource_version(&mut merged, current.rv);
            let result = if status {
                self.write_status(info, current, merged.get("status").cloned(), opts)
                    .await
            } else {
                self.write_spec(info, current, merged, opts).await
            };
            match result {
                Err(Error::Conflict(_)) if precondition.is_none() => continue,
                other => return other,
            }
        }
        Err(conflict(info, name))
    }

    /// Writes a new spec/metadata over `current`, keeping server-owned fields and status.
    async fn write_spec(
        &self,
        info: &KindInfo,
        current: Current,
        body: Value,
        opts: WriteOptions,
    ) -> Result<Value> {
        let old = &current.obj;
        let mut obj = body;
        if let Some(u) = object::meta_str(&obj, "uid")
            && u != object::uid(old)
        {
            return Err(Error::Conflict(format!(
                "precondition failed for {} {:?}: uid {u:?} does not match the stored object",
                info.plural,
                object::name(old)
            )));
        }
        {
            let old_meta = old.get("metadata").cloned().unwrap_or_default();
            let meta = object::meta_mut(&mut obj);
            for server_set in ["uid", "creationTimestamp", "deletionTimestamp", "generation"] {
                match old_meta.get(server_set) {
                    Some(v) => meta.insert(server_set.into(), v.clone()),
                    None => meta.remove(server_set),
                };
            }
        }
        match (obj.as_object_mut(), old.get("status")) {
            (Some(o), Some(s)) => {
                o.insert("status".into(), s.clone());
            }
            (Some(o), None) => {
                o.remove("status");
            }
            _ => {}
        }
        let mut obj = validated(info, obj)?;
        info.validate_update(old, &obj)
            .map_err(|errors| invalid(info, &obj, errors))?;
        admission::admit_spec(&self.policy, info, Some(old), &obj)?;
        if object::is_deleting(old) {
            let before = object::finalizers(old);
            if let Some(added) = object::finalizers(&obj).into_iter().find(|f| !before.contains(f)) {
                return Err(Error::Forbidden(format!(
                    "no new finalizers can be added while the object is being deleted: {added:?}"
                )));
            }
        }
        if obj.get("spec") != old.get("spec") {
            object::meta_mut(&mut obj).insert("generation".into(), json!(object::generation(old) + 1));
        }
        object::set_resource_version(&mut obj, current.rv);
        if object::is_deleting(&obj) && object::finalizers(&obj).is_empty() {
            if opts.dry_run {
                return Ok(obj);
            }
            let k = key(info, object::namespace(&obj), object::name(&obj));
            let (rv, _) = self
                .store
                .delete(&k, Some(current.rv))
                .await
                .map_err(|e| Error::from_store(e, info.plural, object::name(&obj)))?;
            object::set_resource_version(&mut obj, rv);
            return Ok(obj);
        }
        if obj == current.obj || opts.dry_run {
            return Ok(obj);
        }
        self.store_update(info, &current, obj).await
    }

    /// Writes a new status over `current`, keeping everything else.
    async fn write_status(
        &self,
        info: &KindInfo,
        current: Current,
        status: Option<Value>,
        opts: WriteOptions,
    ) -> Result<Value> {
        let mut obj = current.obj.clone();
        if let Some(o) = obj.as_object_mut() {
            match status {
                Some(s) if !s.is_null() => o.insert("status".into(), s),
                _ => o.remove("status"),
            };
        }
        let obj = validated(info, obj)?;
        if obj == current.obj || opts.dry_run {
            return Ok(obj);
        }
        self.store_update(info, &current, obj).await
    }

    async fn store_update(&self, info: &KindInfo, current: &Current, mut obj: Value) -> Result<Value> {
        let name = object::name(&obj).to_string();
        let k = key(info, object::namespace(&obj), &name);
        let rv = self
            .store
            .update(&k, object::encode(&obj), current.rv)
            .await
            .map_err(|e| Error::from_store(e, info.plural, &name))?;
        object::set_resource_version(&mut obj, rv);
        Ok(obj)
    }
}

impl Api {
    /// Creates a project's production Environment unless it exists ([`production`]).
    pub async fn ensure_production_environment(&self, project: &Value) -> Result<()> {
        let Some(env) = production::environment_for(project) else {
            return Ok(());
        };
        let info = resolve("Environment")?;
        match self.create(info, None, env, WriteOptions::default()).await {
            Ok(_) | Err(Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl Lookup for Api {
    async fn lookup(&self, kind: &'static KindInfo, ns: Option<&str>, name: &str) -> Result<Value> {
        self.get(kind, ns, name).await
    }
}

fn conflict(info: &KindInfo, name: &str) -> Error {
    Error::from_store(
        store::Error::Conflict {
            key: String::new(),
            expected: 0,
            actual: 0,
        },
        info.plural,
        name,
    )
}

fn corrupt(key: &str, e: serde_json::Error) -> Error {
    Error::Internal(format!("stored object {key} is not valid JSON: {e}"))
}

/// The current time as Kubernetes writes it (RFC 3339, seconds, `Z`).
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Resolves a resource name from a URL or the CLI (`apps`, `application`, `app`...).
pub fn resolve(resource: &str) -> Result<&'static KindInfo> {
    registry::lookup(resource).ok_or_else(|| Error::NotFound {
        kind: "resources".into(),
        name: resource.into(),
    })
}
