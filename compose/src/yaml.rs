//! Reading compose YAML: anchors, aliases and merge keys resolved.
//!
//! [`load`] parses the text with `serde_yaml` (which expands aliases as it reads) and then
//! resolves every merge key `<<` itself, recursively, so the tree a caller gets has neither.
//!
//! # Guarantees
//! - No `<<` key is left anywhere in the returned tree.
//! - A mapping's own keys win over merged ones; with `<<: [*a, *b]` an earlier mapping wins
//!   over a later one (YAML 1.1 merge semantics, which Symfony YAML follows too).
//! - A merge's source is itself resolved before it is merged, so anchors that merge other
//!   anchors work.
//!
//! # Caveats
//! - Symfony's list merge: `<<: *anchor` where the anchor is a **list** (Coolify's
//!   `gramps-web` and `langfuse` templates) is rejected by strict YAML readers. Symfony (and so
//!   Coolify) does a PHP array union: the list items join the mapping under the integer keys
//!   `0..n`. The authors meant "these list entries too", so [`load`] does the same:
//!   - a mapping holding nothing but `<<: *list` becomes that list (`volumes: {<<: *vols}`
//!     is `volumes: *vols`);
//!   - a mapping with other keys keeps them and gains integer keys `0..n` holding the list
//!     items (`environment: {<<: *env-list, KEY: v}`). Readers of list-or-map keys
//!     ([`crate::model`], [`crate::magic`]) take an integer-keyed entry as a list item.
//! - YAML 1.1 scalars come out as `serde_yaml` types them (`yes`/`no`/`on`/`off` stay strings,
//!   `true`/`false` are booleans); the model converts scalars where it wants a string.
//! - Tags (`!reset`, `!override`) are kept as `serde_yaml` tagged values; the model refuses
//!   shapes it does not know.

use serde_yaml::{Mapping, Value};

/// Why a compose text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not YAML (or uses an anchor that is not defined).
    #[error("invalid yaml: {0}")]
    Syntax(#[from] serde_yaml::Error),
    /// A merge key `<<` whose value is neither a mapping nor a list.
    #[error("{path}: a merge key `<<` needs a mapping or a list, found {found}")]
    Merge {
        /// Where the merge key is, e.g. `services.web.environment`.
        path: String,
        /// What kind of value it had.
        found: &'static str,
    },
    /// The document is not a mapping (compose files are one mapping at the top).
    #[error("a compose file must be a mapping at the top, found {0}")]
    NotAMapping(&'static str),
}

/// Parses `text`, resolving aliases and merge keys (see the module docs).
pub fn load(text: &str) -> Result<Value, Error> {
    let mut value: Value = serde_yaml::from_str(text)?;
    resolve(&mut value, "")?;
    match value {
        Value::Mapping(_) => Ok(value),
        // An empty document: no services.
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        other => Err(Error::NotAMapping(kind(&other))),
    }
}

/// A value's kind for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn join(path: &str, key: &Value) -> String {
    let key = match key {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_owned(),
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// Resolves merge keys in `v` and everything under it.
fn resolve(v: &mut Value, path: &str) -> Result<(), Error> {
    match v {
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve(item, &format!("{path}[{i}]"))?;
            }
        }
        Value::Tagged(t) => resolve(&mut t.value, path)?,
        Value::Mapping(map) => {
            let merge = map.shift_remove("<<");
            for (k, child) in map.iter_mut() {
                let p = join(path, k);
                resolve(child, &p)?;
            }
            if let Some(mut source) = merge {
                let p = join(path, &Value::from("<<"));
                resolve(&mut source, &p)?;
                if let Some(replacement) = merge_into(map, source, &p)? {
                    *v = replacement;
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
    Ok(())
}

/// Merges `source` (the value of `<<`) into `map`: the merged entries come first (as `<<`
/// usually opens the mapping), the mapping's own entries after them and over them. Returns a
/// replacement for the whole mapping in the Symfony list case where the mapping had no keys
/// of its own.
fn merge_into(map: &mut Mapping, source: Value, path: &str) -> Result<Option<Value>, Error> {
    let mut merged = Mapping::new();
    match source {
        Value::Mapping(m) => add_missing(&mut merged, m),
        Value::Sequence(items) if items.iter().all(Value::is_mapping) => {
            for item in items {
                if let Value::Mapping(m) = item {
                    add_missing(&mut merged, m);
                }
            }
        }
        Value::Sequence(items) => {
            if map.is_empty() {
                return Ok(Some(Value::Sequence(items)));
            }
            for (i, item) in items.into_iter().enumerate() {
                merged.insert(Value::from(i as u64), item);
            }
        }
        other => {
            return Err(Error::Merge {
                path: path.to_owned(),
                found: kind(&other),
            });
        }
    }
    let own = std::mem::take(map);
    merged.retain(|k, _| !own.contains_key(k));
    merged.extend(own);
    *map = merged;
    Ok(None)
}

/// Inserts the entries of `from` whose keys `map` does not have.
fn add_missing(map: &mut Mapping, from: Mapping) {
    for (k, v) in from {
        if !map.contains_key(&k) {
            map.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn merges() {
        let cases = [
            // plain alias
            ("a: &x {k: 1}\nb: *x", "a: {k: 1}\nb: {k: 1}"),
            // own keys win
            (
                "a: &x {k: 1, j: 2}\nb: {<<: *x, k: 3}",
                "a: {k: 1, j: 2}\nb: {k: 3, j: 2}",
            ),
            // list of mappings: earlier wins
            (
                "a: &x {k: 1}\nc: &y {k: 2, m: 3}\nb: {<<: [*x, *y]}",
                "a: {k: 1}\nc: {k: 2, m: 3}\nb: {k: 1, m: 3}",
            ),
            // nested merge inside an anchor
            (
                "a: &x {k: 1}\nc: &y {<<: *x, m: 2}\nb: {<<: *y, n: 3}",
                "a: {k: 1}\nc: {k: 1, m: 2}\nb: {k: 1, m: 2, n: 3}",
            ),
            // Symfony list merge, alone
            ("a: &v [x, y]\nb: {<<: *v}", "a: [x, y]\nb: [x, y]"),
            // Symfony list merge, with own keys
            (
                "a: &v [x, y]\nb: {<<: *v, K: v}",
                "a: [x, y]\nb: {K: v, 0: x, 1: y}",
            ),
            // deep
            ("s: {w: {e: {<<: {a: 1}}}}", "s: {w: {e: {a: 1}}}"),
        ];
        for (input, want) in cases {
            assert_eq!(load(input).unwrap(), yaml(want), "{input}");
        }
    }

    #[test]
    fn errors() {
        assert!(matches!(
            load("a: &x 1\nb: {<<: *x}"),
            Err(Error::Merge { ref path, found: "a number" }) if path == "b.<<"
        ));
        assert!(matches!(load("a: *nope"), Err(Error::Syntax(_))));
        assert!(matches!(load("- 1"), Err(Error::NotAMapping("a list"))));
        assert_eq!(load("").unwrap(), Value::Mapping(Mapping::new()));
    }
}
