//! Reading compose scalars: strings, booleans, numbers, durations, sizes, list-or-map keys.
//!
//! Every reader returns the reason as a lowercase `String` on failure; the caller wraps it
//! in a [`super::Refusal`] naming the service and key.
//!
//! # Guarantees
//! - A boolean or number where compose wants a string becomes its string form (`true`,
//!   `8080`); a string holding a number where compose wants a number is read as one
//!   (interpolation leaves `${RETRIES:-3}` as the string `"3"`).
//! - List-or-map values accept the list form (`KEY=VAL`, `KEY`), the map form, and the
//!   integer keys a Symfony list merge leaves (see [`crate::yaml`]).
//!
//! # Caveats
//! - Durations take compose's units `h`, `m`, `s`, `ms`, `us`, `ns` in any combination
//!   (`1m30s`) and round up to whole seconds; a bare number is seconds.
//! - Sizes take `b`, `k`/`kb`, `m`/`mb`, `g`/`gb`, `t`/`tb` in any case, binary multiples
//!   (`1g` = 2^30), decimals allowed (`1.5G`); a bare number is bytes.

use serde_yaml::Value;

use crate::yaml::kind;

/// A scalar as a string (booleans and numbers in their string form).
pub(super) fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("expected a string, found {}", kind(other))),
    }
}

/// A boolean (also the strings `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`).
pub(super) fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(format!("expected a boolean, found {s:?}")),
        },
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        other => Err(format!("expected a boolean, found {}", kind(other))),
    }
}

/// A signed integer (number or string).
pub(super) fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("expected an integer, found {n}")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("expected an integer, found {s:?}")),
        other => Err(format!("expected an integer, found {}", kind(other))),
    }
}

/// A non-negative integer that fits `u32`.
pub(super) fn uint32(v: &Value) -> Result<u32, String> {
    let n = int(v)?;
    u32::try_from(n).map_err(|_| format!("expected a non-negative integer, found {n}"))
}

/// A list of scalars as strings; a single scalar is a one-item list.
pub(super) fn strings(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Sequence(items) => items.iter().map(string).collect(),
        Value::Null => Ok(Vec::new()),
        other => Ok(vec![string(other)?]),
    }
}

/// A list-or-map value (`environment`, `labels`, `sysctls`, `build.args`) as entries in
/// file order; `None` for `KEY`-only list items and null map values.
pub(super) fn entries(v: &Value) -> Result<Vec<(String, Option<String>)>, String> {
    let item = |v: &Value| -> Result<(String, Option<String>), String> {
        let s = string(v)?;
        Ok(match s.split_once('=') {
            Some((k, val)) => (k.trim().to_owned(), Some(val.to_owned())),
            None => (s.trim().to_owned(), None),
        })
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items.iter().map(item).collect(),
        Value::Mapping(m) => m
            .iter()
            .map(|(k, val)| match (k, val) {
                (Value::Number(_), val) => item(val),
                (k, Value::Null) => Ok((string(k)?, None)),
                (k, val) => Ok((string(k)?, Some(string(val)?))),
            })
            .collect(),
        other => Err(format!("expected a list or a mapping, found {}", kind(other))),
    }
}

/// A duration in whole seconds (rounded up).
pub(super) fn duration_secs(v: &Value) -> Result<u32, String> {
    let text = match v {
        Value::Number(_) => return uint32(v),
        Value::String(s) => s.trim(),
        other => return Err(format!("expected a duration, found {}", kind(other))),
    };
    let bad = || format!("invalid duration {text:?}");
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = text.parse::<u32>() {
        return Ok(n);
    }
    let mut nanos: f64 = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        let number: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return Err(bad()),
        };
        nanos += number * scale;
        rest = tail;
    }
    let secs = (nanos / 1e9).ceil();
    if secs > f64::from(u32::MAX) {
        return Err(bad());
    }
    Ok(secs as u32)
}

/// A size in bytes.
pub(super) fn size_bytes(v: &Value) -> Result<u64, String> {
    let text = match v {
        Value::Number(n) => return n.as_u64().ok_or_else(|| format!("invalid size {n}")),
        Value::String(s) => s.trim(),
        other => return Err(format!("expected a size, found {}", kind(other))),
    };
    let bad = || format!("invalid size {text:?}");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let number: f64 = num.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = (number * scale).round();
    if !(0.0..=u64::MAX as f64).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn durations() {
        let cases = [
            ("10s", Some(10)),
            ("5m", Some(300)),
            ("1m30s", Some(90)),
            ("1h", Some(3600)),
            ("1h2m3s", Some(3723)),
            ("500ms", Some(1)),
            ("1.5s", Some(2)),
            ("30", Some(30)),
            ("\"45\"", Some(45)),
            ("0s", Some(0)),
            ("10x", None),
            ("s", None),
            ("\"\"", None),
            ("[1]", None),
        ];
        for (input, want) in cases {
            assert_eq!(duration_secs(&y(input)).ok(), want, "{input}");
        }
    }

    #[test]
    fn sizes() {
        let cases = [
            ("512m", Some(512 << 20)),
            ("1g", Some(1 << 30)),
            ("1gb", Some(1 << 30)),
            ("64M", Some(64 << 20)),
            ("1.5G", Some(3 << 29)),
            ("100k", Some(100 << 10)),
            ("2048", Some(2048)),
            ("\"10b\"", Some(10)),
            ("10q", None),
            ("m", None),
        ];
        for (input, want) in cases {
            assert_eq!(size_bytes(&y(input)).ok(), want, "{input}");
        }
    }

    #[test]
    fn list_or_map() {
        let s = |x: &str| x.to_owned();
        assert_eq!(
            entries(&y("[A=1, B, C==x, 'D= y']")).unwrap(),
            vec![
                (s("A"), Some(s("1"))),
                (s("B"), None),
                (s("C"), Some(s("=x"))),
                (s("D"), Some(s(" y")))
            ]
        );
        assert_eq!(
            entries(&y("{A: 1, B: true, C: null, D: x, 0: E=2}")).unwrap(),
            vec![
                (s("A"), Some(s("1"))),
                (s("B"), Some(s("true"))),
                (s("C"), None),
                (s("D"), Some(s("x"))),
                (s("E"), Some(s("2"))),
            ]
        );
        assert!(entries(&y("x")).is_err());
        assert!(entries(&y("{A: [1]}")).is_err());
    }

    #[test]
    fn scalars() {
        assert_eq!(string(&y("8080")).unwrap(), "8080");
        assert_eq!(string(&y("false")).unwrap(), "false");
        assert!(string(&y("[1]")).is_err());
        assert!(boolean(&y("\"true\"")).unwrap());
        assert!(!boolean(&y("no")).unwrap());
        assert!(boolean(&y("maybe")).is_err());
        assert_eq!(uint32(&y("\"3\"")).unwrap(), 3);
        assert!(uint32(&y("-1")).is_err());
        assert_eq!(strings(&y("NET_ADMIN")).unwrap(), vec!["NET_ADMIN"]);
    }
}
