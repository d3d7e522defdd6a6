//! One [`Message`] for one queued group: what happened, to which objects, and how to look
//! closer.
//!
//! # Guarantees
//! - The message id is the group's, kept across retries and restarts (receivers dedupe on it).
//! - Every alert's line names its object (kind, namespace, name), the reason, the message
//!   and its `berth describe` command; at most [`MAX_LINES`] lines, then a count of the rest.
//!
//! # Caveats
//! - The message's own `object` is the group's first alert's; the others are in the body.

use berth_crds::kinds::notifier::{PendingAlert, PendingGroup};

use crate::notify::{Message, ObjectRef, Severity};

/// The most alerts listed one per line in a message.
pub const MAX_LINES: usize = 20;

fn object(a: &PendingAlert) -> ObjectRef {
    ObjectRef {
        kind: a.kind.clone(),
        namespace: a.namespace.clone(),
        name: a.name.clone(),
    }
}

fn severity(s: &str) -> Severity {
    match s {
        "success" => Severity::Success,
        "warning" => Severity::Warning,
        "critical" => Severity::Critical,
        _ => Severity::Info,
    }
}

fn line(a: &PendingAlert) -> String {
    let o = object(a);
    let times = if a.count > 1 {
        format!(" (×{})", a.count)
    } else {
        String::new()
    };
    let what = if a.resolved {
        format!("resolved: {}", a.message)
    } else {
        a.message.clone()
    };
    format!(
        "{}: {} {what}{times} — {}",
        o.display(),
        a.reason,
        o.describe_command()
    )
}

/// The message for `group`.
pub fn build(group: &PendingGroup) -> Message {
    let first = group.alerts.first().cloned().unwrap_or_default();
    let first_object = object(&first);
    let total = group.alerts.len() as u64 + group.dropped;
    let resolved = group.alerts.iter().all(|a| a.resolved) && !group.alerts.is_empty();
    let title = if total == 1 {
        format!("{}: {}", first.reason, first_object.display())
    } else {
        format!("{}: {total} objects", first.reason)
    };
    let mut lines: Vec<String> = group.alerts.iter().take(MAX_LINES).map(line).collect();
    let rest = total.saturating_sub(lines.len() as u64);
    if rest > 0 {
        lines.push(format!("… and {rest} more (berth get events)"));
    }
    let describe = if total == 1 {
        first_object.describe_command()
    } else {
        "berth get events".to_owned()
    };
    Message {
        id: group.id.clone(),
        title,
        body: lines.join("\n"),
        severity: severity(&group.severity),
        object: first_object,
        reason: first.reason,
        describe,
        resolved,
    }
}
