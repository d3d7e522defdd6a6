//! The table of every berth kind, and name resolution (`app`, `apps`, `Application`...).
//!
//! # Guarantees
//! - [`kinds`] lists every kind exactly once, in a fixed order (the order CRDs are written).
//! - [`lookup`] is case-insensitive and accepts the kind, plural, singular or a short name;
//!   no two kinds share any of these names (a unit test checks it).

use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::kinds::{
    ApplicationSpec, BackupScheduleSpec, BackupSpec, BackupStorageSpec, DatabaseSpec, DestinationSpec,
    EnvironmentSpec, EventSpec, GitRepositorySpec, NotifierSpec, ProjectSpec, ProxySpec, RestoreSpec,
    SecretSpec, ServerSpec, ServiceSpec, SourceSpec,
};
use crate::resource::{PrinterColumn, Resource};
use crate::validation::FieldError;

/// Everything berth knows about one kind, with its validation entry points (see
/// [`KindInfo::validate`]).
pub struct KindInfo {
    /// The kind, e.g. `Application`.
    pub kind: &'static str,
    /// The lowercase plural, e.g. `applications`.
    pub plural: &'static str,
    /// The lowercase singular, e.g. `application`.
    pub singular: &'static str,
    /// Short names, e.g. `["app", "apps"]`.
    pub short_names: &'static [&'static str],
    /// Whether objects live in an Environment.
    pub namespaced: bool,
    /// Dotted paths that may not change after creation.
    pub immutable_fields: &'static [&'static str],
    /// Columns for `berth get` and the CRD.
    pub printer_columns: &'static [PrinterColumn],
    pub(crate) spec_schema_fn: fn() -> Value,
    pub(crate) status_schema_fn: fn() -> Value,
    pub(crate) check_spec_fn: fn(&Value, &mut Vec<FieldError>),
    pub(crate) normalize_fn: fn(Value) -> Result<Value, String>,
    pub(crate) compiled: OnceLock<Result<crate::typecheck::Compiled, String>>,
}

impl std::fmt::Debug for KindInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindInfo")
            .field("kind", &self.kind)
            .field("plural", &self.plural)
            .field("namespaced", &self.namespaced)
            .finish_non_exhaustive()
    }
}

impl KindInfo {
    const fn of<S: Resource>() -> Self {
        Self {
            kind: S::KIND,
            plural: S::PLURAL,
            singular: S::SINGULAR,
            short_names: S::SHORT_NAMES,
            namespaced: S::NAMESPACED,
            immutable_fields: S::IMMUTABLE_FIELDS,
            printer_columns: S::PRINTER_COLUMNS,
            spec_schema_fn: crate::schema::schema_for::<S>,
            status_schema_fn: crate::schema::schema_for::<S::Status>,
            check_spec_fn: crate::typecheck::check_spec::<S>,
            normalize_fn: crate::typecheck::round_trip::<S>,
            compiled: OnceLock::new(),
        }
    }

    /// The list kind, e.g. `ApplicationList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The structural OpenAPI schema of `spec`.
    pub fn spec_schema(&self) -> Value {
        (self.spec_schema_fn)()
    }

    /// The structural OpenAPI schema of `status`.
    pub fn status_schema(&self) -> Value {
        (self.status_schema_fn)()
    }

    /// Whether `name` (any case) is this kind's kind, plural, singular or a short name.
    pub fn matches(&self, name: &str) -> bool {
        [self.kind, self.plural, self.singular]
            .iter()
            .chain(self.short_names)
            .any(|n| n.eq_ignore_ascii_case(name))
    }
}

static KINDS: [KindInfo; 17] = [
    KindInfo::of::<ProjectSpec>(),
    KindInfo::of::<EnvironmentSpec>(),
    KindInfo::of::<ServerSpec>(),
    KindInfo::of::<DestinationSpec>(),
    KindInfo::of::<ProxySpec>(),
    KindInfo::of::<SourceSpec>(),
    KindInfo::of::<SecretSpec>(),
    KindInfo::of::<ApplicationSpec>(),
    KindInfo::of::<DatabaseSpec>(),
    KindInfo::of::<BackupStorageSpec>(),
    KindInfo::of::<BackupScheduleSpec>(),
    KindInfo::of::<BackupSpec>(),
    KindInfo::of::<RestoreSpec>(),
    KindInfo::of::<ServiceSpec>(),
    KindInfo::of::<NotifierSpec>(),
    KindInfo::of::<GitRepositorySpec>(),
    KindInfo::of::<EventSpec>(),
];

/// Every berth kind.
pub fn kinds() -> &'static [KindInfo] {
    &KINDS
}

/// The entry of kind `K`: found in the table for every berth kind; a type outside it (a
/// test's own kind) gets an entry made on first use and kept for the process.
pub fn info<K: Resource>() -> &'static KindInfo {
    if let Some(k) = KINDS.iter().find(|k| k.kind == K::KIND) {
        return k;
    }
    static EXTRA: Mutex<Vec<&'static KindInfo>> = Mutex::new(Vec::new());
    let mut extra = EXTRA.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = extra.iter().find(|k| k.kind == K::KIND) {
        return k;
    }
    let k: &'static KindInfo = Box::leak(Box::new(KindInfo::of::<K>()));
    extra.push(k);
    k
}

/// The kind called `name`: its kind, plural, singular or a short name, in any case.
pub fn lookup(name: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.matches(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_resolves_every_spelling() {
        for (name, kind) in [
            ("app", "Application"),
            ("apps", "Application"),
            ("application", "Application"),
            ("Application", "Application"),
            ("APPLICATIONS", "Application"),
            ("db", "Database"),
            ("gitrepo", "GitRepository"),
            ("gitrepositories", "GitRepository"),
            ("env", "Environment"),
            ("proxies", "Proxy"),
            ("backupstorage", "BackupStorage"),
            ("svc", "Service"),
        ] {
            assert_eq!(lookup(name).map(|k| k.kind), Some(kind), "{name}");
        }
        assert!(lookup("pod").is_none());
        assert!(lookup("").is_none());
        assert!(std::ptr::eq(
            info::<ApplicationSpec>(),
            lookup("app").unwrap_or_else(|| unreachable!())
        ));
    }

    #[test]
    fn names_are_unique_across_kinds() {
        let mut seen = std::collections::BTreeMap::new();
        for k in kinds() {
            for n in [k.kind, k.plural, k.singular].iter().chain(k.short_names) {
                let lower = n.to_ascii_lowercase();
                if let Some(other) = seen.insert(lower.clone(), k.kind) {
                    assert_eq!(other, k.kind, "{lower} names both {other} and {}", k.kind);
                }
            }
            assert_eq!(k.singular, k.kind.to_ascii_lowercase());
        }
        assert_eq!(kinds().len(), 17);
    }
}
