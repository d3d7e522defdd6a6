//! How objects are shown: tables with per-kind columns, YAML, JSON and `kind/name`.
//!
//! # Guarantees
//! - Secret values (`spec.data`, also inside the last-applied annotation) are masked unless
//!   the caller asks for them.
//! - Table columns come from the kind's printer columns in the registry, after NAME (and
//!   NAMESPACE across Environments); a kind with a Ready column also gets STATUS (the Ready
//!   condition's reason).

use berth_crds::{registry::KindInfo, resource::PrinterColumn};
use chrono::{DateTime, Utc};
use clap::ValueEnum;
use serde_json::Value;

/// The annotation `berth apply` keeps the last applied manifest in.
pub use berth_crds::meta::LAST_APPLIED;

/// What secret values are replaced with.
pub const MASK: &str = "<hidden>";

/// `-o` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Extra columns: labels and the Ready condition's message.
    Wide,
    /// The objects as YAML.
    Yaml,
    /// The objects as JSON.
    Json,
    /// `kind/name` per object.
    Name,
}

/// `kind/name`, e.g. `application/web`: how every verb names an object it acted on.
pub fn name_of(info: &KindInfo, obj: &Value) -> String {
    format!("{}/{}", info.singular, meta(obj, "name"))
}

/// A string field of `metadata` ("" when absent).
pub fn meta<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Masks secret values in `obj` (in place) when it is a Secret.
pub fn mask_secrets(info: &KindInfo, obj: &mut Value) {
    if info.kind != "Secret" {
        return;
    }
    mask_data(obj);
    if let Some(annotation) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(|a| a.get_mut(LAST_APPLIED))
        && let Some(text) = annotation.as_str()
        && let Ok(mut applied) = serde_json::from_str::<Value>(text)
    {
        mask_data(&mut applied);
        *annotation = Value::String(applied.to_string());
    }
}

fn mask_data(obj: &mut Value) {
    if let Some(data) = obj.pointer_mut("/spec/data").and_then(Value::as_object_mut) {
        for v in data.values_mut() {
            *v = Value::String(MASK.into());
        }
    }
}

/// Objects as YAML: one object, or a `List` of several.
pub fn yaml(value: &Value) -> String {
    serde_yaml::to_string(value).unwrap_or_default()
}

/// Objects as pretty JSON with a trailing newline.
pub fn json(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

/// A `List` wrapping `items`, as `get -o yaml|json` prints several objects.
pub fn list(items: Vec<Value>) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// A table: headers and rows of cells, printed with aligned columns.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    event: bool,
    widths: Vec<usize>,
}

#[derive(Debug, Clone)]
enum Column {
    Namespace,
    Name,
    Printer(PrinterColumn),
    Status,
    Labels,
    Message,
}

impl Table {
    /// The table of `info`'s kind; with a NAMESPACE column when `all_namespaces`.
    pub fn new(info: &KindInfo, all_namespaces: bool, wide: bool) -> Self {
        let mut columns = Vec::new();
        if all_namespaces && info.namespaced {
            columns.push(Column::Namespace);
        }
        columns.push(Column::Name);
        for c in info.printer_columns {
            columns.push(Column::Printer(*c));
            if c.name == "Ready" {
                columns.push(Column::Status);
            }
        }
        if wide {
            columns.push(Column::Message);
            columns.push(Column::Labels);
        }
        let widths = vec![0; columns.len() + 1];
        Self {
            columns,
            event: false,
            widths,
        }
    }

    /// Adds a leading EVENT column (watch output); callers put the event type first in
    /// each row.
    pub fn with_event_column(mut self) -> Self {
        self.event = true;
        self
    }

    /// The header cells.
    pub fn header(&self) -> Vec<String> {
        let event = self.event.then(|| "EVENT".to_owned());
        event
            .into_iter()
            .chain(self.columns.iter().map(|c| match c {
                Column::Namespace => "NAMESPACE".into(),
                Column::Name => "NAME".into(),
                Column::Printer(p) => p.name.to_uppercase(),
                Column::Status => "STATUS".into(),
                Column::Labels => "LABELS".into(),
                Column::Message => "MESSAGE".into(),
            }))
            .collect()
    }

    /// The cells of one object, relative to `now`.
    pub fn row(&self, obj: &Value, now: DateTime<Utc>) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| match c {
                Column::Namespace => meta(obj, "namespace").to_owned(),
                Column::Name => meta(obj, "name").to_owned(),
                Column::Printer(p) => printer_cell(p, obj, now),
                Column::Status => ready_condition(obj, "reason"),
                Column::Labels => labels(obj),
                Column::Message => ready_condition(obj, "message"),
            })
            .map(|s| if s.is_empty() { "<none>".to_owned() } else { s })
            .collect()
    }

    /// Widens the columns to fit `rows` (header included) and renders them.
    pub fn render(&mut self, rows: &[Vec<String>], with_header: bool) -> String {
        let header = self.header();
        for row in std::iter::once(&header).chain(rows) {
            for (w, cell) in self.widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        if with_header {
            out.push_str(&self.line(&header));
        }
        for row in rows {
            out.push_str(&self.line(row));
        }
        out
    }

    fn line(&self, cells: &[String]) -> String {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&self.widths).enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(w.saturating_sub(cell.chars().count()) + 3));
            }
        }
        out.push('\n');
        out
    }
}

fn labels(obj: &Value) -> String {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// A field of the `Ready` condition, "" when there is none.
fn ready_condition(obj: &Value, field: &str) -> String {
    condition(obj, "Ready")
        .and_then(|c| c.get(field))
        .map(scalar)
        .unwrap_or_default()
}

/// The condition of `type_` in `status.conditions`.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn printer_cell(col: &PrinterColumn, obj: &Value, now: DateTime<Utc>) -> String {
    let Some(v) = json_path(obj, col.json_path) else {
        return String::new();
    };
    match (col.type_, v.as_str()) {
        ("date", Some(ts)) => ts
            .parse::<DateTime<Utc>>()
            .map(|t| age(now, t))
            .unwrap_or_else(|_| ts.to_owned()),
        _ => scalar(v),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `[0]` and
/// `[?(@.field=="value")]` (first match).
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Ok(i) = inner.parse::<usize>() {
                cur = cur.get(i)?;
            } else {
                let filter = inner.strip_prefix("?(@.")?.strip_suffix(')')?;
                let (field, want) = filter.split_once("==")?;
                let want = want.trim_matches('"');
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|item| item.get(field).and_then(Value::as_str) == Some(want))?;
            }
        } else {
            return None;
        }
    }
    Some(cur)
}

/// kubectl's short age: `45s`, `12m`, `3h`, `5d`.
pub fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "p-production", "creationTimestamp": "2025-01-01T00:00:00Z",
                         "labels": {"tier": "front"}},
            "spec": {"replicas": 2},
            "status": {"readyReplicas": 1, "urls": ["https://a.example"],
                       "conditions": [{"type": "Progressing", "status": "True"},
                                      {"type": "Ready", "status": "False", "reason": "Starting", "message": "1 of 2"}]},
        })
    }

    #[test]
    fn json_path_handles_fields_indices_and_filters() {
        let a = app();
        assert_eq!(json_path(&a, ".spec.replicas"), Some(&json!(2)));
        assert_eq!(
            json_path(&a, ".status.urls[0]"),
            Some(&json!("https://a.example"))
        );
        assert_eq!(
            json_path(&a, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("False"))
        );
        assert_eq!(json_path(&a, ".status.urls[3]"), None);
        assert_eq!(json_path(&a, ".spec.nothing.here"), None);
    }

    #[test]
    fn application_table_has_ready_status_url_and_age() {
        let info = berth_crds::lookup("app").unwrap();
        let mut t = Table::new(info, true, false);
        let now = "2025-01-01T00:03:00Z".parse().unwrap();
        let row = t.row(&app(), now);
        let text = t.render(&[row], true);
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            [
                "NAMESPACE",
                "NAME",
                "REPLICAS",
                "AVAILABLE",
                "READY",
                "STATUS",
                "URL",
                "AGE"
            ]
        );
        let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            row,
            [
                "p-production",
                "web",
                "2",
                "1",
                "False",
                "Starting",
                "https://a.example",
                "3m"
            ]
        );
    }

    #[test]
    fn wide_adds_message_and_labels() {
        let info = berth_crds::lookup("app").unwrap();
        let t = Table::new(info, false, true);
        let row = t.row(&app(), Utc::now());
        assert_eq!(
            row[row.len() - 2..],
            ["1 of 2".to_string(), "tier=front".to_string()]
        );
    }

    #[test]
    fn secrets_are_masked_also_in_the_last_applied_annotation() {
        let info = berth_crds::lookup("secret").unwrap();
        let applied = json!({"spec": {"data": {"k": "v"}}}).to_string();
        let mut s =
            json!({"metadata": {"annotations": {LAST_APPLIED: applied}}, "spec": {"data": {"k": "v"}}});
        mask_secrets(info, &mut s);
        assert_eq!(s["spec"]["data"]["k"], MASK);
        assert!(!s.to_string().contains("\\\"v\\\""), "{s}");
    }

    #[test]
    fn ages_are_short() {
        let t0: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        let at = |s: i64| age(t0 + chrono::Duration::seconds(s), t0);
        assert_eq!(at(5), "5s");
        assert_eq!(at(600), "10m");
        assert_eq!(at(3 * 3600), "3h");
        assert_eq!(at(3 * 86400), "3d");
    }
}
