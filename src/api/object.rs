//! Field access on untyped objects and the store key layout.
//!
//! The API layer handles every kind alike as JSON; typed views live in `berth-crds` and are
//! used for validation. These helpers keep the JSON plumbing in one place.

use berth_crds::registry::KindInfo;
use serde_json::{Map, Value};

pub use berth_crds::json::{finalizers, generation, is_deleting, meta_str, name, namespace, uid};

/// Root of every berth key in the store.
pub const KEY_ROOT: &str = "/berth/";

/// Store key of one object: `/berth/<plural>/<namespace>/<name>` or `/berth/<plural>/<name>`.
pub fn key(info: &KindInfo, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if info.namespaced => format!("{KEY_ROOT}{}/{ns}/{name}", info.plural),
        _ => format!("{KEY_ROOT}{}/{name}", info.plural),
    }
}

/// Store prefix of a collection: one namespace, or all of them (`namespace` = `None`).
pub fn prefix(info: &KindInfo, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if info.namespaced => format!("{KEY_ROOT}{}/{ns}/", info.plural),
        _ => format!("{KEY_ROOT}{}/", info.plural),
    }
}

/// Splits a store key into (plural, namespace, name).
pub fn parse_key(key: &str) -> Option<(&str, Option<&str>, &str)> {
    let rest = key.strip_prefix(KEY_ROOT)?;
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(plural), Some(name), None, None) => Some((plural, None, name)),
        (Some(plural), Some(ns), Some(name), None) => Some((plural, Some(ns), name)),
        _ => None,
    }
}

/// The object's `metadata` map, created if absent or not an object.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().into_iter().next();
    let Some(map) = map else {
        unreachable!("obj was made an object above")
    };
    let entry = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(m) => m,
        _ => unreachable!("entry was made an object above"),
    }
}

/// The uids named in `metadata.ownerReferences`.
pub fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The object's labels.
pub fn labels(obj: &Value) -> Map<String, Value> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The object's `metadata.resourceVersion` parsed as a store revision.
pub fn resource_version(obj: &Value) -> Option<Result<i64, String>> {
    let rv = meta_str(obj, "resourceVersion")?;
    if rv.is_empty() {
        return None;
    }
    Some(rv.parse().map_err(|_| rv.to_string()))
}

/// Stamps `metadata.resourceVersion` with a store revision.
pub fn set_resource_version(obj: &mut Value, rv: i64) {
    meta_mut(obj).insert("resourceVersion".into(), Value::String(rv.to_string()));
}

/// Decodes a stored object and stamps its revision.
pub fn decode(bytes: &[u8], rv: i64) -> Result<Value, serde_json::Error> {
    let mut obj: Value = serde_json::from_slice(bytes)?;
    set_resource_version(&mut obj, rv);
    Ok(obj)
}

/// Encodes an object for storage, without its resourceVersion (the store's revision is the
/// truth).
pub fn encode(obj: &Value) -> Vec<u8> {
    let mut obj = obj.clone();
    meta_mut(&mut obj).remove("resourceVersion");
    // Serializing a `Value` cannot fail: its map keys are strings.
    serde_json::to_vec(&obj).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_round_trip() {
        assert_eq!(
            parse_key("/berth/applications/ns/web"),
            Some(("applications", Some("ns"), "web"))
        );
        assert_eq!(parse_key("/berth/projects/p"), Some(("projects", None, "p")));
        assert_eq!(parse_key("/other/projects/p"), None);
        assert_eq!(parse_key("/berth/a/b/c/d"), None);
    }

    #[test]
    fn encode_drops_resource_version_and_decode_restores_it() {
        let obj = json!({"metadata": {"name": "x", "resourceVersion": "5"}});
        let bytes = encode(&obj);
        assert!(!String::from_utf8_lossy(&bytes).contains("resourceVersion"));
        assert_eq!(decode(&bytes, 9).unwrap()["metadata"]["resourceVersion"], "9");
    }

    #[test]
    fn meta_mut_repairs_non_objects() {
        let mut v = json!({"metadata": 3});
        meta_mut(&mut v).insert("name".into(), json!("a"));
        assert_eq!(name(&v), "a");
    }
}
