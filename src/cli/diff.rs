//! `berth diff -f FILE`: what `apply` would change, as a unified diff of the live objects
//! against the server's dry-run result of the apply.
//!
//! # Guarantees
//! - Nothing is written: every request is a read or a `dryRun=All` write.
//! - Exit code 0 when nothing would change, 1 when something would (or on an error).
//! - Secret values are masked; a changed value shows as `<hidden> (before)`/`(after)`.

use std::process::ExitCode;

use serde_json::Value;
use similar::TextDiff;

use super::{
    apply::{self, Planned},
    client::Client,
    error::{Error, Result},
    manifest::{self, Document},
    output::{self, MASK},
};
use berth_crds::apply::merge;

/// Arguments of `berth diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// A manifest file, a directory of them, or `-` (repeatable).
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// The Environment of namespaced objects that do not name one.
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
}

/// Runs `berth diff`.
pub async fn run(client: &Client, args: &DiffArgs, default_ns: Option<&str>) -> Result<ExitCode> {
    let ns = args.namespace.as_deref().or(default_ns);
    let docs = manifest::load(&args.files, ns)?;
    let planned = Planned::of(&docs);
    let mut out = String::new();
    for doc in &docs {
        let (live, merged) = preview(client, doc, &planned).await?;
        let (before, after) = masked_pair(doc, live, merged);
        let path = match doc.namespace() {
            Some(ns) => format!("{ns}/{}/{}", doc.info.singular, doc.name()),
            None => format!("{}/{}", doc.info.singular, doc.name()),
        };
        let text = TextDiff::from_lines(&before, &after)
            .unified_diff()
            .context_radius(3)
            .header(&format!("live/{path}"), &format!("merged/{path}"))
            .to_string();
        out.push_str(&text);
    }
    print!("{out}");
    Ok(if out.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The live object (`Null` when absent) and what it would be after apply.
async fn preview(client: &Client, doc: &Document, planned: &Planned) -> Result<(Value, Value)> {
    let (info, ns, name) = (doc.info, doc.namespace(), doc.name());
    match client.get_opt(info, ns, name).await? {
        Some(live) => {
            let patch = apply::patch_for(doc, &live);
            if merge::is_empty(&patch) {
                return Ok((live.clone(), live));
            }
            let merged = client.patch(info, ns, name, &patch, true).await?;
            Ok((live, merged))
        }
        None => match client
            .create(info, ns, &apply::with_last_applied(&doc.object), true)
            .await
        {
            Ok(created) => Ok((Value::Null, created)),
            // Its Environment comes with this same apply: show the object as validated here.
            Err(e) if apply::excused(planned, doc, &e) => {
                let local = info
                    .normalize(&apply::with_last_applied(&doc.object))
                    .map_err(|errs| Error::Manifest(format!("{}: {errs}", doc.origin())))?;
                Ok((Value::Null, local))
            }
            Err(e) => Err(Error::Manifest(format!("{}: {e}", doc.origin()))),
        },
    }
}

/// YAML of both sides, with Secret values masked (differing ones marked before/after).
fn masked_pair(doc: &Document, mut live: Value, mut merged: Value) -> (String, String) {
    if doc.info.kind == "Secret" {
        let before = live.pointer("/spec/data").cloned();
        let after = merged.pointer("/spec/data").cloned();
        mask_against(&mut live, after.as_ref(), "before");
        mask_against(&mut merged, before.as_ref(), "after");
        for v in [&mut live, &mut merged] {
            // The annotation repeats the data; mask_secrets takes care of it.
            if let Some(info) = berth_crds::lookup("secret") {
                let data = v.pointer("/spec/data").cloned();
                output::mask_secrets(info, v);
                if let (Some(d), Some(slot)) = (data, v.pointer_mut("/spec/data")) {
                    *slot = d;
                }
            }
        }
    }
    let text = |v: &Value| {
        if v.is_null() {
            String::new()
        } else {
            output::yaml(v)
        }
    };
    (text(&live), text(&merged))
}

fn mask_against(obj: &mut Value, other: Option<&Value>, side: &str) {
    let Some(data) = obj.pointer_mut("/spec/data").and_then(Value::as_object_mut) else {
        return;
    };
    for (k, v) in data.iter_mut() {
        let same = other.and_then(|o| o.get(k)) == Some(v);
        *v = Value::String(if same {
            MASK.into()
        } else {
            format!("{MASK} ({side})")
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_never_reach_the_diff() {
        let doc = Document {
            source: "-".into(),
            index: 1,
            info: berth_crds::lookup("secret").unwrap(),
            object: json!({}),
        };
        let live = json!({"spec": {"data": {"a": "same", "b": "old"}}});
        let merged = json!({"metadata": {"annotations": {output::LAST_APPLIED: "{\"spec\":{\"data\":{\"b\":\"new\"}}}"}},
                            "spec": {"data": {"a": "same", "b": "new"}}});
        let (before, after) = masked_pair(&doc, live, merged);
        for secret in ["same", "old", "new"] {
            assert!(
                !before.contains(secret) && !after.contains(secret),
                "{before}\n{after}"
            );
        }
        assert!(before.contains("b: <hidden> (before)"), "{before}");
        assert!(after.contains("b: <hidden> (after)"), "{after}");
        assert!(after.contains("a: <hidden>\n"), "{after}");
    }
}
