//! The status helper: write `/status` only when it changed, with condition transitions.
//!
//! # Guarantees
//! - [`update`] compares the new status with the object's (typed, so formatting cannot
//!   cause a write) and writes nothing when they are equal: a controller at rest makes no
//!   API writes.
//! - The write is a merge patch of the difference through the status subresource, so it
//!   never touches spec or metadata.
//! - [`set_condition`] moves `lastTransitionTime` only when the condition's status flips.

use berth_crds::{Object, Resource, meta::Condition, meta::ConditionStatus};
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value};

use crate::{api::Api, client};

/// A failed status update.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object's current status or the new one does not fit the kind's status type.
    #[error("status of {name:?} does not serialize: {source}")]
    Serde {
        /// The object's name.
        name: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The API refused or failed the write.
    #[error("status write failed: {0}")]
    Write(#[from] client::Error),
}

/// The current time as conditions record it (whole seconds, as Kubernetes does).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// [`set_condition`] at [`now`].
pub fn set_now(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    observed_generation: i64,
) -> bool {
    set_condition(
        conditions,
        type_,
        status,
        reason,
        message,
        observed_generation,
        now(),
    )
}

/// Sets condition `type_` in `conditions`; `lastTransitionTime` becomes `now` only when the
/// status differs from before (or the condition is new). Returns whether anything changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    observed_generation: i64,
    now: DateTime<Utc>,
) -> bool {
    let new = |last_transition_time| Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time,
        observed_generation: Some(observed_generation),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            let time = if c.status == status {
                c.last_transition_time
            } else {
                now
            };
            let next = new(time);
            let changed = *c != next;
            *c = next;
            changed
        }
        None => {
            conditions.push(new(now));
            true
        }
    }
}

/// Writes `status` to `obj` through `/status` unless it equals the current one; returns
/// whether it wrote.
pub async fn update<K: Resource>(api: &Api<K>, obj: &Object<K>, status: &K::Status) -> Result<bool, Error> {
    if obj.status.as_ref() == Some(status) {
        return Ok(false);
    }
    let name = obj.name();
    let serde = |source| Error::Serde {
        name: name.to_owned(),
        source,
    };
    let old_value = match &obj.status {
        Some(s) => serde_json::to_value(s).map_err(serde)?,
        None => Value::Null,
    };
    let new_value = serde_json::to_value(status).map_err(serde)?;
    let diff = merge_diff(&old_value, &new_value);
    let mut patch = Map::new();
    patch.insert("status".into(), diff);
    api.within(obj.namespace())
        .patch_status(name, Value::Object(patch))
        .await?;
    Ok(true)
}

/// The RFC 7386 merge patch that turns `old` into `new`.
pub fn merge_diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, v) in n {
                match o.get(k) {
                    Some(ov) if ov == v => {}
                    Some(ov) => {
                        patch.insert(k.clone(), merge_diff(ov, v));
                    }
                    None => {
                        patch.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                patch.insert(k.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let t0 = Utc.timestamp_opt(1_000, 0).single().unwrap_or_default();
        let t1 = Utc.timestamp_opt(2_000, 0).single().unwrap_or_default();
        let mut cs = Vec::new();
        assert!(set_condition(
            &mut cs,
            "Ready",
            ConditionStatus::False,
            "Waiting",
            "",
            1,
            t0
        ));
        assert!(!set_condition(
            &mut cs,
            "Ready",
            ConditionStatus::False,
            "Waiting",
            "",
            1,
            t1
        ));
        assert_eq!(cs[0].last_transition_time, t0);
        // Same status, new message: changed, but no transition.
        assert!(set_condition(
            &mut cs,
            "Ready",
            ConditionStatus::False,
            "Waiting",
            "still",
            2,
            t1
        ));
        assert_eq!(cs[0].last_transition_time, t0);
        assert!(set_condition(
            &mut cs,
            "Ready",
            ConditionStatus::True,
            "Up",
            "",
            2,
            t1
        ));
        assert_eq!(cs[0].last_transition_time, t1);
        assert_eq!(cs.len(), 1);
    }

    #[test]
    fn merge_diff_sets_changes_and_nulls_removals() {
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        let new = json!({"a": 1, "b": {"c": 5}, "e": [1, 2], "f": "x"});
        let patch = merge_diff(&old, &new);
        assert_eq!(patch, json!({"b": {"c": 5, "d": null}, "e": [1, 2], "f": "x"}));
        let mut applied = old.clone();
        json_merge(&mut applied, &patch);
        assert_eq!(applied, new);
    }

    fn json_merge(target: &mut Value, patch: &Value) {
        if let (Value::Object(t), Value::Object(p)) = (&mut *target, patch) {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    json_merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        } else {
            *target = patch.clone();
        }
    }
}
