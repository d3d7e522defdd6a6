//! Object keys ([`ObjectRef`]) and field access on JSON objects.
//!
//! # Guarantees
//! - An [`ObjectRef`] names one object of a known kind: namespace (for namespaced kinds) and
//!   name. It is the work queue's key and the cache's key.

use std::fmt;

use berth_crds::{Object, Resource};
use serde_json::Value;

pub use berth_crds::json::{finalizers, generation, is_deleting, meta_str, name, namespace, uid};

/// The namespace and name of an object; the kind is implied by the cache or queue holding it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The Environment, for namespaced kinds.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectRef {
    /// A reference to `name` in `namespace`.
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        Self {
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// A reference to a cluster-scoped object.
    pub fn cluster(name: &str) -> Self {
        Self::new(None, name)
    }

    /// The reference of a JSON object.
    pub fn of(obj: &Value) -> Self {
        Self::new(namespace(obj), name(obj))
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The object's resourceVersion as a revision (0 when absent or not a number).
pub fn resource_version(obj: &Value) -> i64 {
    meta_str(obj, "resourceVersion")
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

/// The `(kind, name, uid)` of every ownerReference.
pub fn owners(obj: &Value) -> Vec<(String, String, String)> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .map(|r| {
                    let s = |f: &str| r.get(f).and_then(Value::as_str).unwrap_or_default().to_owned();
                    (s("kind"), s("name"), s("uid"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A label's value.
pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("labels")?.get(key)?.as_str()
}

/// The object as its typed form `Object<S>`.
pub fn typed<S: Resource>(obj: &Value) -> Result<Object<S>, serde_json::Error> {
    serde_json::from_value(obj.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refs_and_fields() {
        let obj = json!({"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "42",
            "ownerReferences": [{"kind": "Project", "name": "p", "uid": "u1"}],
            "finalizers": ["berth.dev/x"], "labels": {"a": "b"}}});
        assert_eq!(ObjectRef::of(&obj).to_string(), "shop/web");
        assert_eq!(ObjectRef::cluster("p").to_string(), "p");
        assert_eq!(resource_version(&obj), 42);
        assert_eq!(owners(&obj), vec![("Project".into(), "p".into(), "u1".into())]);
        assert_eq!(finalizers(&obj), vec!["berth.dev/x".to_string()]);
        assert_eq!(label(&obj, "a"), Some("b"));
        assert!(!is_deleting(&obj));
    }
}
