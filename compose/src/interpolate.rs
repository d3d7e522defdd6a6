//! Compose variable interpolation: `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?err}`, `$VAR`, `$$`.
//!
//! [`apply`] resolves the variables of a YAML tree (from [`crate::yaml::load`]) in place, with
//! docker compose's semantics; [`references`] lists them without resolving anything.
//!
//! | form | value |
//! |---|---|
//! | `$VAR`, `${VAR}` | the value; an unset variable gives the empty string |
//! | `${VAR:-word}` | `word` when `VAR` is unset **or empty** |
//! | `${VAR-word}` | `word` only when `VAR` is unset |
//! | `${VAR:?msg}` | an error naming `VAR` and `msg` when `VAR` is unset or empty |
//! | `${VAR?msg}` | an error when `VAR` is unset |
//! | `${VAR:+word}` | `word` when `VAR` is set and not empty, else empty |
//! | `${VAR+word}` | `word` when `VAR` is set, else empty |
//! | `$$` | a literal `$` |
//!
//! # Guarantees
//! - Names are `[A-Za-z_][A-Za-z0-9_]*`; `$NAME` ends at the first other character (so
//!   `${SERVICE_FQDN_LANGFUSE-WEB_3000}` is `SERVICE_FQDN_LANGFUSE` with default `WEB_3000`,
//!   exactly as compose reads it).
//! - `word` may hold nested forms (`${A:-${B}}`); it is resolved only when it is used, so a
//!   `:?` in an unused default never fires.
//! - `$` followed by a character that cannot start a name (`$1`, `$ `, `$(`) is kept as is.
//! - Every error names its path (`services.web.environment[3]`); [`apply`] reports them all.
//! - [`references`] sees exactly the strings [`apply`] rewrites.
//!
//! # Caveats
//! - What is interpolated: every string value of the file and the keys of a service's
//!   `environment:` mapping, except `x-*` keys (top level and service level; their content
//!   reaches services through anchors, already copied) and the `content:` of a long-syntax
//!   service volume, which Coolify writes verbatim.
//! - Coolify only looks for magic `SERVICE_*` references in `environment:` and `build.args`;
//!   a caller using [`references`] to decide what to generate sees references in `command:` and
//!   `labels:` too (Coolify would leave those empty; generating them is the useful reading).
//! - An unterminated `${`, an empty or invalid name (`${}`, `${A.B}`) is an error, as in
//!   compose.

use serde_yaml::{Mapping, Value};

/// An interpolation problem, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `${VAR:?msg}` or `${VAR?msg}` with `VAR` missing (or empty, for `:?`).
    #[error("{path}: required variable {name} is missing a value{}", colon(message))]
    Required {
        /// Where, e.g. `services.web.environment[3]`.
        path: String,
        /// The variable.
        name: String,
        /// The form's message (interpolated), maybe empty.
        message: String,
    },
    /// A `${` that is not closed, or holds no valid name.
    #[error("{path}: invalid interpolation format in {text:?}: {reason}")]
    Malformed {
        /// Where.
        path: String,
        /// The whole string.
        text: String,
        /// What is wrong.
        reason: &'static str,
    },
}

fn colon(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// How a variable is referenced; the `String` is the raw text after the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// `$VAR` or `${VAR}`.
    Plain,
    /// `${VAR:-word}`.
    DefaultIfUnsetOrEmpty(String),
    /// `${VAR-word}`.
    DefaultIfUnset(String),
    /// `${VAR:?message}`.
    RequiredNonEmpty(String),
    /// `${VAR?message}`.
    Required(String),
    /// `${VAR:+word}`.
    AltIfNonEmpty(String),
    /// `${VAR+word}`.
    AltIfSet(String),
}

/// One variable reference in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The variable's name.
    pub name: String,
    /// How it is referenced.
    pub form: Form,
    /// Where, e.g. `services.web.environment[3]`.
    pub path: String,
}

/// Every variable referenced in the strings [`apply`] would rewrite, in file order, nested
/// ones after the one holding them. Duplicates are kept. Malformed strings are skipped
/// ([`apply`] reports them).
pub fn references(v: &Value) -> Vec<Reference> {
    let mut out = Vec::new();
    walk(v, &mut |s, path| {
        if let Ok(pieces) = parse(s) {
            collect(&pieces, path, &mut out);
        }
    });
    out
}

/// Resolves every variable in `v` with `lookup` (see the module docs for what is touched).
pub fn apply(v: &mut Value, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), Vec<Error>> {
    let mut errors = Vec::new();
    walk_mut(v, &mut |s, path| match resolve_str(s, lookup, path) {
        Ok(r) => *s = r,
        Err(e) => errors.push(e),
    });
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Resolves one string (outside any tree); `path` only names it in errors.
pub fn resolve_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>, path: &str) -> Result<String, Error> {
    let pieces = parse(s).map_err(|reason| Error::Malformed {
        path: path.to_owned(),
        text: s.to_owned(),
        reason,
    })?;
    let mut out = String::new();
    eval(&pieces, lookup, path, &mut out)?;
    Ok(out)
}

/// A parsed string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var {
        name: String,
        op: Op,
        word: Vec<Piece>,
        raw: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Plain,
    Default { if_empty: bool },
    Required { if_empty: bool },
    Alt { if_empty: bool },
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn parse(s: &str) -> Result<Vec<Piece>, &'static str> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let pieces = parse_until(&chars, &mut i, false)?;
    Ok(pieces)
}

/// Parses from `*i`; with `in_word`, stops after an unnested `}`.
fn parse_until(c: &[char], i: &mut usize, in_word: bool) -> Result<Vec<Piece>, &'static str> {
    let mut out = Vec::new();
    let mut text = String::new();
    while *i < c.len() {
        let ch = c[*i];
        if in_word && ch == '}' {
            *i += 1;
            push_text(&mut out, &mut text);
            return Ok(out);
        }
        if ch != '$' {
            text.push(ch);
            *i += 1;
            continue;
        }
        match c.get(*i + 1) {
            Some('$') => {
                text.push('$');
                *i += 2;
            }
            Some('{') => {
                push_text(&mut out, &mut text);
                *i += 2;
                out.push(parse_braced(c, i)?);
            }
            Some(&n) if is_name_start(n) => {
                push_text(&mut out, &mut text);
                let start = *i + 1;
                let mut end = start;
                while end < c.len() && is_name_char(c[end]) {
                    end += 1;
                }
                let name: String = c[start..end].iter().collect();
                out.push(Piece::Var {
                    name,
                    op: Op::Plain,
                    word: Vec::new(),
                    raw: String::new(),
                });
                *i = end;
            }
            _ => {
                text.push('$');
                *i += 1;
            }
        }
    }
    if in_word {
        return Err("unterminated ${");
    }
    push_text(&mut out, &mut text);
    Ok(out)
}

fn push_text(out: &mut Vec<Piece>, text: &mut String) {
    if !text.is_empty() {
        out.push(Piece::Text(std::mem::take(text)));
    }
}

/// Parses after `${` up to and including its `}`.
fn parse_braced(c: &[char], i: &mut usize) -> Result<Piece, &'static str> {
    let start = *i;
    while *i < c.len() && is_name_char(c[*i]) {
        *i += 1;
    }
    let name: String = c[start..*i].iter().collect();
    if *i >= c.len() {
        return Err("unterminated ${");
    }
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err("a variable name must start with a letter or _");
    }
    let colon = c[*i] == ':';
    let op_at = if colon { *i + 1 } else { *i };
    let op = match (c.get(op_at), colon) {
        (Some('}'), false) => {
            *i += 1;
            return Ok(Piece::Var {
                name,
                op: Op::Plain,
                word: Vec::new(),
                raw: String::new(),
            });
        }
        (Some('-'), _) => Op::Default { if_empty: colon },
        (Some('?'), _) => Op::Required { if_empty: colon },
        (Some('+'), _) => Op::Alt { if_empty: colon },
        (None, _) => return Err("unterminated ${"),
        _ => return Err("expected }, :-, -, :?, ?, :+ or + after the variable name"),
    };
    *i = op_at + 1;
    let word_start = *i;
    let word = parse_until(c, i, true)?;
    let raw: String = c[word_start..*i - 1].iter().collect();
    Ok(Piece::Var { name, op, word, raw })
}

fn eval(
    pieces: &[Piece],
    lookup: &dyn Fn(&str) -> Option<String>,
    path: &str,
    out: &mut String,
) -> Result<(), Error> {
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var { name, op, word, .. } => {
                let value = lookup(name);
                let missing = |if_empty: bool| match &value {
                    None => true,
                    Some(v) => if_empty && v.is_empty(),
                };
                match *op {
                    Op::Plain => out.push_str(value.as_deref().unwrap_or_default()),
                    Op::Default { if_empty } => {
                        if missing(if_empty) {
                            eval(word, lookup, path, out)?;
                        } else {
                            out.push_str(value.as_deref().unwrap_or_default());
                        }
                    }
                    Op::Required { if_empty } => {
                        if missing(if_empty) {
                            let mut message = String::new();
                            eval(word, lookup, path, &mut message)?;
                            return Err(Error::Required {
                                path: path.to_owned(),
                                name: name.clone(),
                                message,
                            });
                        }
                        out.push_str(value.as_deref().unwrap_or_default());
                    }
                    Op::Alt { if_empty } => {
                        if !missing(if_empty) {
                            eval(word, lookup, path, out)?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn collect(pieces: &[Piece], path: &str, out: &mut Vec<Reference>) {
    for p in pieces {
        if let Piece::Var { name, op, word, raw } = p {
            let raw = raw.clone();
            let form = match *op {
                Op::Plain => Form::Plain,
                Op::Default { if_empty: true } => Form::DefaultIfUnsetOrEmpty(raw),
                Op::Default { if_empty: false } => Form::DefaultIfUnset(raw),
                Op::Required { if_empty: true } => Form::RequiredNonEmpty(raw),
                Op::Required { if_empty: false } => Form::Required(raw),
                Op::Alt { if_empty: true } => Form::AltIfNonEmpty(raw),
                Op::Alt { if_empty: false } => Form::AltIfSet(raw),
            };
            out.push(Reference {
                name: name.clone(),
                form,
                path: path.to_owned(),
            });
            collect(word, path, out);
        }
    }
}

/// Where a string sits, for deciding what is interpolated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Top,
    Services,
    Service,
    ServiceVolumes,
    ServiceEnvironment,
    Other,
}

fn child_place(place: Place, key: &str) -> Option<Place> {
    let skip_x = matches!(place, Place::Top | Place::Service) && key.starts_with("x-");
    if skip_x {
        return None;
    }
    Some(match (place, key) {
        (Place::Top, "services") => Place::Services,
        (Place::Services, _) => Place::Service,
        (Place::Service, "volumes") => Place::ServiceVolumes,
        (Place::Service, "environment") => Place::ServiceEnvironment,
        _ => Place::Other,
    })
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::from("?"),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(v: &Value, f: &mut dyn FnMut(&str, &str)) {
    fn go(v: &Value, place: Place, path: &str, f: &mut dyn FnMut(&str, &str)) {
        match v {
            Value::String(s) => f(s, path),
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    if place == Place::ServiceVolumes {
                        go_volume(item, &p, f);
                    } else {
                        go(item, Place::Other, &p, f);
                    }
                }
            }
            Value::Mapping(m) => {
                for (k, child) in m {
                    let key = key_text(k);
                    let Some(cp) = child_place(place, &key) else {
                        continue;
                    };
                    let p = join(path, &key);
                    if place == Place::ServiceEnvironment
                        && let Value::String(ks) = k
                    {
                        f(ks, &p);
                    }
                    go(child, cp, &p, f);
                }
            }
            Value::Tagged(t) => go(&t.value, place, path, f),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    fn go_volume(v: &Value, path: &str, f: &mut dyn FnMut(&str, &str)) {
        match v {
            Value::Mapping(m) => {
                for (k, child) in m {
                    let key = key_text(k);
                    if key != "content" {
                        go(child, Place::Other, &join(path, &key), f);
                    }
                }
            }
            other => go(other, Place::Other, path, f),
        }
    }
    go(v, Place::Top, "", f);
}

fn walk_mut(v: &mut Value, f: &mut dyn FnMut(&mut String, &str)) {
    fn go(v: &mut Value, place: Place, path: &str, f: &mut dyn FnMut(&mut String, &str)) {
        match v {
            Value::String(s) => f(s, path),
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let p = format!("{path}[{i}]");
                    if place == Place::ServiceVolumes {
                        go_volume(item, &p, f);
                    } else {
                        go(item, Place::Other, &p, f);
                    }
                }
            }
            Value::Mapping(m) if place == Place::ServiceEnvironment => {
                let old = std::mem::take(m);
                let mut new = Mapping::new();
                for (mut k, mut child) in old {
                    let p = join(path, &key_text(&k));
                    if let Value::String(ks) = &mut k {
                        f(ks, &p);
                    }
                    go(&mut child, Place::Other, &p, f);
                    new.insert(k, child);
                }
                *m = new;
            }
            Value::Mapping(m) => {
                for (k, child) in m.iter_mut() {
                    let key = key_text(k);
                    let Some(cp) = child_place(place, &key) else {
                        continue;
                    };
                    go(child, cp, &join(path, &key), f);
                }
            }
            Value::Tagged(t) => go(&mut t.value, place, path, f),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    fn go_volume(v: &mut Value, path: &str, f: &mut dyn FnMut(&mut String, &str)) {
        match v {
            Value::Mapping(m) => {
                for (k, child) in m.iter_mut() {
                    let key = key_text(k);
                    if key != "content" {
                        go(child, Place::Other, &join(path, &key), f);
                    }
                }
            }
            other => go(other, Place::Other, path, f),
        }
    }
    go(v, Place::Top, "", f);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "SET" => Some("v".into()),
            "EMPTY" => Some(String::new()),
            "B" => Some("b".into()),
            _ => None,
        }
    }

    #[test]
    fn resolves_strings() {
        let cases = [
            ("plain", "plain"),
            ("$SET", "v"),
            ("${SET}", "v"),
            ("$UNSET", ""),
            ("${UNSET}", ""),
            ("a${SET}b$SET.c", "avbv.c"),
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${SET:-d}", "v"),
            ("${UNSET-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${UNSET:-}", ""),
            ("${UNSET:-${B}}", "b"),
            ("${UNSET:-${NOPE:-x}y}", "xy"),
            ("${SET:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("$$", "$"),
            ("$$SET", "$SET"),
            ("$${SET}", "${SET}"),
            ("cost $5 $ (x) $", "cost $5 $ (x) $"),
            ("${SERVICE_FQDN_LANGFUSE-WEB_3000}", "WEB_3000"),
            ("${SET:?boom}", "v"),
            ("${EMPTY?boom}", ""),
            ("${SET:-a}}", "v}"),
            ("${UNSET:-a:b-c}", "a:b-c"),
            ("postgres://$SET:${B}@db", "postgres://v:b@db"),
        ];
        for (input, want) in cases {
            assert_eq!(resolve_str(input, &vars, "p").unwrap(), want, "{input}");
        }
    }

    #[test]
    fn errors() {
        let required = resolve_str("${UNSET:?set it}", &vars, "services.web.environment[3]").unwrap_err();
        assert_eq!(
            required.to_string(),
            "services.web.environment[3]: required variable UNSET is missing a value: set it"
        );
        assert!(matches!(
            resolve_str("${EMPTY:?}", &vars, "p"),
            Err(Error::Required { .. })
        ));
        assert!(matches!(
            resolve_str("${UNSET?}", &vars, "p"),
            Err(Error::Required { .. })
        ));
        // an unused :? in a default never fires
        assert_eq!(resolve_str("${SET:-${UNSET:?x}}", &vars, "p").unwrap(), "v");
        for bad in [
            "${",
            "${SET",
            "${SET:-x",
            "${}",
            "${A.B}",
            "${1A}",
            "${A:x}",
            "x ${UNSET:-${B}",
        ] {
            assert!(
                matches!(resolve_str(bad, &vars, "p"), Err(Error::Malformed { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn references_list_every_form() {
        let tree = crate::yaml::load(
            "services:\n  web:\n    environment:\n      - A=${A:-${B}}\n      - C=${C-x}${D:?m}${E?n}$F${G:+y}${H+z}\n",
        )
        .unwrap();
        let refs: Vec<(String, Form)> = references(&tree).into_iter().map(|r| (r.name, r.form)).collect();
        assert_eq!(
            refs,
            vec![
                ("A".into(), Form::DefaultIfUnsetOrEmpty("${B}".into())),
                ("B".into(), Form::Plain),
                ("C".into(), Form::DefaultIfUnset("x".into())),
                ("D".into(), Form::RequiredNonEmpty("m".into())),
                ("E".into(), Form::Required("n".into())),
                ("F".into(), Form::Plain),
                ("G".into(), Form::AltIfNonEmpty("y".into())),
                ("H".into(), Form::AltIfSet("z".into())),
            ]
        );
        assert_eq!(references(&tree)[0].path, "services.web.environment[0]");
    }

    #[test]
    fn tree_rules() {
        let text = "x-top: {a: $SET}\nservices:\n  web:\n    x-own: $SET\n    image: img:${SET}\n    environment:\n      ${SET}_KEY: ${B}\n    volumes:\n      - type: bind\n        source: ./${SET}\n        target: /t\n        content: keep $SET ${UNSET:?no}\n      - ${SET}:/data\n";
        let mut tree = crate::yaml::load(text).unwrap();
        apply(&mut tree, &vars).unwrap();
        let want = crate::yaml::load(
            "x-top: {a: $SET}\nservices:\n  web:\n    x-own: $SET\n    image: img:v\n    environment:\n      v_KEY: b\n    volumes:\n      - type: bind\n        source: ./v\n        target: /t\n        content: keep $SET ${UNSET:?no}\n      - v:/data\n",
        )
        .unwrap();
        assert_eq!(tree, want);
    }

    #[test]
    fn apply_collects_all_errors_with_paths() {
        let mut tree = crate::yaml::load(
            "services:\n  web:\n    environment:\n      - A=${X:?a}\n      - B=${\n    command: ${Y:?c}\n",
        )
        .unwrap();
        let errs = apply(&mut tree, &vars).unwrap_err();
        let paths: Vec<String> = errs
            .iter()
            .map(|e| match e {
                Error::Required { path, .. } | Error::Malformed { path, .. } => path.clone(),
            })
            .collect();
        assert_eq!(
            paths,
            [
                "services.web.environment[0]",
                "services.web.environment[1]",
                "services.web.command"
            ]
        );
    }
}
