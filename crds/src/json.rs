//! Metadata access on objects held as JSON, shared by the API server and the controllers.
//!
//! The API server and the controllers handle every kind alike as `serde_json::Value`; these
//! accessors read the metadata fields both need, tolerating absent fields.

use serde_json::Value;

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// The object's name ("" when absent).
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or_default()
}

/// The object's namespace, if any.
pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace")
}

/// The object's uid ("" when absent).
pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid").unwrap_or_default()
}

/// The object's `metadata.generation` (0 when absent).
pub fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// A label's value.
pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("labels")?.get(key)?.as_str()
}

/// The object's finalizers.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_metadata_and_tolerates_absence() {
        let obj = json!({"metadata": {"name": "a", "namespace": "n", "uid": "u", "generation": 3,
            "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["x", 1, "y"]}});
        assert_eq!(
            (name(&obj), namespace(&obj), uid(&obj), generation(&obj)),
            ("a", Some("n"), "u", 3)
        );
        assert!(is_deleting(&obj));
        assert_eq!(finalizers(&obj), ["x", "y"]);
        let empty = json!({});
        assert_eq!(
            (name(&empty), namespace(&empty), uid(&empty), generation(&empty)),
            ("", None, "", 0)
        );
        assert!(!is_deleting(&json!({"metadata": {"deletionTimestamp": null}})));
        assert!(finalizers(&empty).is_empty());
    }
}
