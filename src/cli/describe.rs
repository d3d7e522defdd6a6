//! `berth describe KIND NAME`: one object for people — identity, spec, status, conditions
//! and the events recorded about it.
//!
//! # Guarantees
//! - Secret values are never shown; their keys and sizes are.
//! - Events are found by their `berth.dev/involved-uid` label: only this object's, even
//!   when an earlier object of the same name had some.

use std::{fmt::Write as _, process::ExitCode};

use berth_crds::{
    kinds::event::INVOLVED_UID_LABEL,
    registry::{self, KindInfo},
};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    client::{Client, ListParams},
    error::{Error, Result},
    output::{self, LAST_APPLIED, meta},
    target,
};

/// Arguments of `berth describe`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// The kind, or `KIND/NAME`.
    pub kind: String,
    /// The object's name.
    pub names: Vec<String>,
    /// Which namespace (`-n`, `-A`).
    #[command(flatten)]
    pub ns: target::NamespaceArgs,
}

/// Runs `berth describe`.
pub async fn run(client: &Client, args: &DescribeArgs, default_ns: Option<&str>) -> Result<ExitCode> {
    let (info, names) = target::kind_and_names(&args.kind, &args.names)?;
    if names.is_empty() {
        return Err(Error::Usage("describe needs a NAME (or KIND/NAME)".into()));
    }
    let ns = target::namespace(info, args.ns.namespace.as_deref(), false, default_ns)?;
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        let obj = client.get(info, ns.as_deref(), name).await?;
        if i > 0 {
            out.push_str("\n\n");
        }
        out.push_str(&describe(info, &obj, Utc::now()));
        out.push_str(&events(client, &obj).await?);
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// The description of `obj` (everything but events).
pub fn describe(info: &KindInfo, obj: &Value, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let field = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(
            out,
            "{:<18}{}",
            format!("{k}:"),
            if v.is_empty() { "<none>" } else { v }
        );
    };
    field(&mut out, "Name", meta(obj, "name"));
    if info.namespaced {
        field(&mut out, "Environment", meta(obj, "namespace"));
    }
    field(&mut out, "Kind", info.kind);
    field(&mut out, "Labels", &pairs(obj.pointer("/metadata/labels")));
    let mut annotations = obj.pointer("/metadata/annotations").cloned();
    if let Some(a) = annotations.as_mut().and_then(Value::as_object_mut) {
        a.remove(LAST_APPLIED);
    }
    field(&mut out, "Annotations", &pairs(annotations.as_ref()));
    let created = meta(obj, "creationTimestamp");
    let age = created
        .parse::<DateTime<Utc>>()
        .map(|t| format!("{created} ({} ago)", output::age(now, t)))
        .unwrap_or_default();
    field(&mut out, "Created", &age);
    if !meta(obj, "deletionTimestamp").is_empty() {
        field(&mut out, "Deleting since", meta(obj, "deletionTimestamp"));
    }
    let generation = obj
        .pointer("/metadata/generation")
        .map(Value::to_string)
        .unwrap_or_default();
    field(&mut out, "Generation", &generation);
    field(&mut out, "Resource Version", meta(obj, "resourceVersion"));
    if let Some(owners) = obj.pointer("/metadata/ownerReferences").and_then(Value::as_array) {
        let list: Vec<String> = owners
            .iter()
            .map(|o| format!("{}/{}", str_of(o, "kind").to_lowercase(), str_of(o, "name")))
            .collect();
        field(&mut out, "Owners", &list.join(", "));
    }
    let mut spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    if info.kind == "Secret" {
        describe_secret_data(&mut out, &spec);
        if let Some(m) = spec.as_object_mut() {
            m.remove("data");
        }
    }
    section(&mut out, "Spec", &spec);
    let mut status = obj.get("status").cloned().unwrap_or(Value::Null);
    let conditions = status
        .as_object_mut()
        .and_then(|s| s.remove("conditions"))
        .and_then(|c| c.as_array().cloned())
        .unwrap_or_default();
    let members = if info.kind == "Service" {
        status.as_object_mut().map(|s| {
            (
                s.remove("services")
                    .and_then(|m| m.as_array().cloned())
                    .unwrap_or_default(),
                s.remove("notices")
                    .and_then(|n| n.as_array().cloned())
                    .unwrap_or_default(),
            )
        })
    } else {
        None
    };
    section(&mut out, "Status", &status);
    if let Some((members, notices)) = members {
        describe_service_members(&mut out, &members, &notices);
    }
    out.push_str("Conditions:\n");
    if conditions.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let rows: Vec<Vec<String>> = std::iter::once(
            ["Type", "Status", "Reason", "Message", "Age"]
                .map(String::from)
                .to_vec(),
        )
        .chain(conditions.iter().map(|c| {
            let age = str_of(c, "lastTransitionTime")
                .parse::<DateTime<Utc>>()
                .map(|t| output::age(now, t))
                .unwrap_or_default();
            vec![
                str_of(c, "type").into(),
                str_of(c, "status").into(),
                str_of(c, "reason").into(),
                str_of(c, "message").into(),
                age,
            ]
        }))
        .collect();
        out.push_str(&aligned(&rows, "  "));
    }
    out
}

/// The Events section: the events recorded about `obj`, oldest first.
///
/// Events are cluster-scoped and labelled with their subject's uid, so one labelled list
/// finds them whatever the subject's namespace.
async fn events(client: &Client, obj: &Value) -> Result<String> {
    let Some(event_kind) = registry::lookup("Event") else {
        return Ok(String::new());
    };
    let params = ListParams {
        labels: Some(format!("{INVOLVED_UID_LABEL}={}", meta(obj, "uid"))),
        ..ListParams::default()
    };
    let mut list = client.list(event_kind, None, &params).await?.items;
    let last_seen = |e: &Value| {
        e.pointer("/spec/lastTimestamp")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    list.sort_by_key(last_seen);
    let now = Utc::now();
    let header = ["Type", "Reason", "Count", "Last Seen", "Message"]
        .map(String::from)
        .to_vec();
    let rows: Vec<Vec<String>> = std::iter::once(header)
        .chain(list.iter().map(|e| {
            let field = |f: &str| e.pointer(&format!("/spec/{f}")).map(scalar).unwrap_or_default();
            let seen = DateTime::parse_from_rfc3339(&last_seen(e))
                .map(|t| output::age(now, t.with_timezone(&Utc)))
                .unwrap_or_default();
            vec![
                field("type"),
                field("reason"),
                field("count"),
                seen,
                field("message"),
            ]
        }))
        .collect();
    let mut out = String::from("Events:\n");
    if rows.len() == 1 {
        out.push_str("  <none>\n");
    } else {
        out.push_str(&aligned(&rows, "  "));
    }
    Ok(out)
}

/// A Service's members as a table, and its notices one per line.
fn describe_service_members(out: &mut String, members: &[Value], notices: &[Value]) {
    out.push_str("Members:\n");
    if members.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let header = ["Name", "Kind", "Object", "Ready", "Reason", "URLs"]
            .map(String::from)
            .to_vec();
        let rows: Vec<Vec<String>> = std::iter::once(header)
            .chain(members.iter().map(|m| {
                let ready = match m.get("ready").and_then(Value::as_bool) {
                    Some(true) => "True",
                    Some(false) => "False",
                    None => "Unknown",
                };
                let excluded = m.get("excluded").and_then(Value::as_bool).unwrap_or(false);
                let urls: Vec<String> = m
                    .get("urls")
                    .and_then(Value::as_array)
                    .map(|u| u.iter().map(scalar).collect())
                    .unwrap_or_default();
                vec![
                    str_of(m, "name").into(),
                    str_of(m, "kind").into(),
                    str_of(m, "object").into(),
                    if excluded {
                        format!("{ready} (excluded)")
                    } else {
                        ready.into()
                    },
                    str_of(m, "reason").into(),
                    urls.join(", "),
                ]
            }))
            .collect();
        out.push_str(&aligned(&rows, "  "));
    }
    out.push_str("Notices:\n");
    if notices.is_empty() {
        out.push_str("  <none>\n");
    }
    for n in notices {
        let _ = writeln!(out, "  {}", scalar(n));
    }
}

fn describe_secret_data(out: &mut String, spec: &Value) {
    out.push_str("Data:\n");
    match spec.get("data").and_then(Value::as_object) {
        Some(data) if !data.is_empty() => {
            for (k, v) in data {
                let _ = writeln!(out, "  {k}: {} bytes", v.as_str().map(str::len).unwrap_or(0));
            }
        }
        _ => out.push_str("  <none>\n"),
    }
}

fn section(out: &mut String, title: &str, value: &Value) {
    let empty = value.is_null() || value.as_object().is_some_and(|m| m.is_empty());
    let _ = writeln!(out, "{title}:");
    if empty {
        out.push_str("  <none>\n");
        return;
    }
    for line in output::yaml(value).lines() {
        let _ = writeln!(out, "  {line}");
    }
}

fn pairs(v: Option<&Value>) -> String {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", scalar(v)))
                .collect::<Vec<_>>()
                .join("\n                  ")
        })
        .unwrap_or_default()
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn aligned(rows: &[Vec<String>], indent: &str) -> String {
    let mut widths = Vec::new();
    for r in rows {
        widths.resize(widths.len().max(r.len()), 0);
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{indent}{}", cells.join("   ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describe_shows_spec_conditions_and_hides_secret_values() {
        let info = registry::lookup("secret").unwrap();
        let obj = json!({
            "metadata": {"name": "s", "namespace": "p-production", "creationTimestamp": "2025-01-01T00:00:00Z",
                         "annotations": {LAST_APPLIED: "{\"spec\":{\"data\":{\"k\":\"topsecret\"}}}"}},
            "spec": {"type": "opaque", "data": {"k": "topsecret"}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Synced", "message": "ok",
                                       "lastTransitionTime": "2025-01-01T00:00:30Z"}]},
        });
        let text = describe(info, &obj, "2025-01-01T00:01:00Z".parse().unwrap());
        assert!(!text.contains("topsecret"), "{text}");
        assert!(text.contains("k: 9 bytes"), "{text}");
        assert!(text.contains("Environment:      p-production"), "{text}");
        let cond = text
            .lines()
            .find(|l| l.trim_start().starts_with("Ready"))
            .unwrap();
        let cells: Vec<&str> = cond.split_whitespace().collect();
        assert_eq!(cells, ["Ready", "True", "Synced", "ok", "30s"]);
        assert!(!text.contains("Events"), "{text}");
    }

    #[test]
    fn describe_service_shows_members_and_notices() {
        let info = registry::lookup("svc").unwrap();
        let obj = json!({
            "metadata": {"name": "blog", "namespace": "p-production", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"destination": "default", "compose": "services:\n  wordpress:\n    image: wordpress\n"},
            "status": {
                "members": "1/2",
                "url": "https://blog.example.com",
                "services": [
                    {"name": "wordpress", "kind": "Application", "object": "blog-wordpress", "ready": true,
                     "urls": ["https://blog.example.com", "https://www.example.com"]},
                    {"name": "mariadb", "kind": "Database", "object": "blog-mariadb", "ready": false,
                     "reason": "Starting"},
                    {"name": "init", "kind": "Application", "object": "blog-init", "ready": false, "excluded": true},
                ],
                "notices": ["services.wordpress.container_name: ignored: berth names containers"],
            },
        });
        let text = describe(info, &obj, "2025-01-01T00:01:00Z".parse().unwrap());
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| *l == "Members:").unwrap();
        let header: Vec<&str> = lines[at + 1].split_whitespace().collect();
        assert_eq!(header, ["Name", "Kind", "Object", "Ready", "Reason", "URLs"]);
        let row = |i: usize| lines[at + i].split_whitespace().collect::<Vec<_>>();
        assert_eq!(
            row(2),
            [
                "wordpress",
                "Application",
                "blog-wordpress",
                "True",
                "https://blog.example.com,",
                "https://www.example.com"
            ]
        );
        assert_eq!(
            row(3),
            ["mariadb", "Database", "blog-mariadb", "False", "Starting"]
        );
        assert_eq!(
            row(4),
            ["init", "Application", "blog-init", "False", "(excluded)"]
        );
        let notices = lines.iter().position(|l| *l == "Notices:").unwrap();
        assert_eq!(
            lines[notices + 1],
            "  services.wordpress.container_name: ignored: berth names containers"
        );
        assert!(text.contains("members: 1/2"), "{text}");
        assert!(
            !text.contains("object: blog-mariadb"),
            "members are not repeated as YAML: {text}"
        );
        assert!(
            text.find("Members:").unwrap() < text.find("Conditions:").unwrap(),
            "{text}"
        );
    }
}
