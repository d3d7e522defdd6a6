//! Applying manifests, the pure part shared by `berth apply` and the GitRepository
//! controller: documents ([`manifest`]), the three-way merge ([`merge`]) and the
//! last-applied annotation.
//!
//! # Guarantees
//! - [`patch_for`] is the same patch whoever applies: a manifest applied by the CLI and
//!   then by GitOps (or the other way round) converges on one object.

pub mod manifest;
pub mod merge;

use std::collections::BTreeSet;

use serde_json::Value;

pub use manifest::{Document, documents, rank};
pub use merge::{is_empty, three_way};

use crate::meta::LAST_APPLIED;

/// The manifest as apply stores it: the object plus the last-applied annotation holding
/// the object itself (without the annotation).
pub fn with_last_applied(object: &Value) -> Value {
    let mut bare = object.clone();
    if let Some(a) = bare
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
        if a.is_empty()
            && let Some(m) = bare.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.remove("annotations");
        }
    }
    let mut out = bare.clone();
    if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = m
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(LAST_APPLIED.into(), Value::String(bare.to_string()));
        }
    }
    out
}

/// The configuration last applied to `live` (its [`LAST_APPLIED`] annotation), if any.
pub fn last_applied(live: &Value) -> Option<Value> {
    live.pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
}

/// The merge patch that applies `object` (a manifest) over `live`.
pub fn patch_for(object: &Value, live: &Value) -> Value {
    three_way(last_applied(live).as_ref(), &with_last_applied(object), live)
}

/// Environments and Projects a manifest set creates: a namespaced document whose
/// Environment is among them cannot be dry-run before they exist.
#[derive(Debug, Default)]
pub struct Planned {
    /// Environments created, directly or as a Project's `<project>-production`.
    pub environments: BTreeSet<String>,
    /// Projects created.
    pub projects: BTreeSet<String>,
}

impl Planned {
    /// What `docs` will create.
    pub fn of(docs: &[Document]) -> Self {
        let mut p = Self::default();
        for d in docs {
            match d.info.kind {
                "Project" => {
                    p.projects.insert(d.name().to_owned());
                    p.environments.insert(format!("{}-production", d.name()));
                }
                "Environment" => {
                    p.environments.insert(d.name().to_owned());
                }
                _ => {}
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn last_applied_holds_the_manifest_without_itself() {
        let obj = json!({"kind": "Project", "metadata": {"name": "p", "annotations": {LAST_APPLIED: "old"}}, "spec": {}});
        let out = with_last_applied(&obj);
        let stored: Value =
            serde_json::from_str(out["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap()).unwrap();
        assert_eq!(
            stored,
            json!({"kind": "Project", "metadata": {"name": "p"}, "spec": {}})
        );
        assert_eq!(with_last_applied(&stored), out);
        assert_eq!(last_applied(&out), Some(stored));
    }
}
