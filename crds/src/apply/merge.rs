//! The three-way JSON merge patch of `berth apply` and GitOps, as classic `kubectl apply`
//! computes it.
//!
//! From the last-applied configuration (`original`), the new manifest (`modified`) and the
//! live object (`current`): set every field of `modified` that differs from `current`, and
//! null every field that `original` had, `modified` dropped and `current` still has.
//!
//! # Guarantees
//! - Applying the patch to `current` (RFC 7386) yields an object that agrees with
//!   `modified` on every field `modified` sets, and lacks every field removed since
//!   `original`; fields set by others (defaults, status, other tools) are left alone.
//! - When nothing needs to change, the patch is the empty object.
//!
//! # Caveats
//! - Lists are atomic, as in any merge patch: a changed list is sent whole.

use serde_json::{Map, Value};

/// The merge patch taking `current` to `modified`, deleting what `original` had.
pub fn three_way(original: Option<&Value>, modified: &Value, current: &Value) -> Value {
    let empty = Map::new();
    let modified = modified.as_object().unwrap_or(&empty);
    let current = current.as_object().unwrap_or(&empty);
    let mut patch = changes(modified, current);
    if let Some(original) = original.and_then(Value::as_object) {
        let deletions = deletions(original, modified, current);
        merge_into(&mut patch, deletions);
    }
    Value::Object(patch)
}

/// Fields of `modified` that `current` lacks or has differently.
fn changes(modified: &Map<String, Value>, current: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, m) in modified {
        match (m, current.get(k)) {
            (Value::Null, None) => {}
            (m, Some(c)) if m == c => {}
            (Value::Object(m), Some(Value::Object(c))) => {
                let sub = changes(m, c);
                if !sub.is_empty() {
                    out.insert(k.clone(), Value::Object(sub));
                }
            }
            (m, _) => {
                out.insert(k.clone(), m.clone());
            }
        }
    }
    out
}

/// Nulls for fields `original` had, `modified` dropped, and `current` still has.
fn deletions(
    original: &Map<String, Value>,
    modified: &Map<String, Value>,
    current: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, o) in original {
        let Some(c) = current.get(k) else { continue };
        match (o, modified.get(k), c) {
            (_, None | Some(Value::Null), _) => {
                out.insert(k.clone(), Value::Null);
            }
            (Value::Object(o), Some(Value::Object(m)), Value::Object(c)) => {
                let sub = deletions(o, m, c);
                if !sub.is_empty() {
                    out.insert(k.clone(), Value::Object(sub));
                }
            }
            _ => {}
        }
    }
    out
}

/// Adds `extra` to `patch`; where both hold objects they are merged.
fn merge_into(patch: &mut Map<String, Value>, extra: Map<String, Value>) {
    for (k, v) in extra {
        match (patch.get_mut(&k), v) {
            (Some(Value::Object(p)), Value::Object(e)) => merge_into(p, e),
            (Some(_), _) => {}
            (None, v) => {
                patch.insert(k, v);
            }
        }
    }
}

/// Whether a patch changes nothing.
pub fn is_empty(patch: &Value) -> bool {
    patch.as_object().is_none_or(Map::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(current: &Value, patch: &Value) -> Value {
        let mut v = current.clone();
        json_patch::merge(&mut v, patch);
        v
    }

    #[test]
    fn unchanged_manifest_gives_an_empty_patch() {
        let m = json!({"spec": {"image": "a", "env": [{"name": "X"}]}});
        let live =
            json!({"spec": {"image": "a", "env": [{"name": "X"}], "replicas": 1}, "status": {"ready": true}});
        assert!(is_empty(&three_way(Some(&m), &m, &live)));
    }

    #[test]
    fn removed_fields_are_nulled_and_changed_ones_set() {
        let original =
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"image": "a", "command": ["x"]}});
        let modified = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"image": "b"}});
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2", "other": "3"}},
                          "spec": {"image": "a", "command": ["x"], "replicas": 1}});
        let patch = three_way(Some(&original), &modified, &live);
        assert_eq!(
            patch,
            json!({"metadata": {"labels": {"b": null}}, "spec": {"image": "b", "command": null}})
        );
        let after = apply(&live, &patch);
        assert_eq!(
            after,
            json!({"metadata": {"labels": {"a": "1", "other": "3"}}, "spec": {"image": "b", "replicas": 1}})
        );
    }

    #[test]
    fn fields_set_by_others_survive_without_last_applied() {
        let modified = json!({"spec": {"image": "b"}});
        let live = json!({"spec": {"image": "a", "command": ["x"]}});
        assert_eq!(three_way(None, &modified, &live), json!({"spec": {"image": "b"}}));
    }

    #[test]
    fn already_removed_fields_are_not_nulled_again() {
        let original = json!({"spec": {"command": ["x"]}});
        let modified = json!({"spec": {}});
        let live = json!({"spec": {}});
        assert!(is_empty(&three_way(Some(&original), &modified, &live)));
    }

    #[test]
    fn lists_are_replaced_whole() {
        let original = json!({"spec": {"ports": [1, 2]}});
        let modified = json!({"spec": {"ports": [1]}});
        let live = json!({"spec": {"ports": [1, 2]}});
        assert_eq!(
            three_way(Some(&original), &modified, &live),
            json!({"spec": {"ports": [1]}})
        );
    }
}
