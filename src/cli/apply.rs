//! `berth apply -f`: create or update every object of a manifest set, all or nothing.
//!
//! # Guarantees
//! - Nothing is written unless every document passes local validation and a server-side
//!   dry run (in dependency order; a missing Environment that this same invocation creates,
//!   directly or as a Project's `<project>-production`, is not an error).
//! - Updates are three-way merge patches against the last-applied configuration kept in
//!   [`LAST_APPLIED`]; fields removed from the manifest are removed from the object, status is
//!   never touched, and an unchanged manifest sends nothing (`unchanged`).
//! - `--prune -l SELECTOR` deletes only objects that match the selector, carry the
//!   annotation, are of a kind in the manifest set, live in an Environment the set writes
//!   to, and are not in the set.
//!
//! # Caveats
//! - Another writer between the dry run and the write can still make a write fail; apply
//!   then stops at that object and reports it (exit 1).

use std::{collections::BTreeSet, fmt, path::PathBuf, process::ExitCode};

use serde_json::Value;

use berth_crds::apply::{self, merge};
pub use berth_crds::apply::{Planned, with_last_applied};

use super::{
    client::{Client, ListParams},
    error::{Error, Result},
    manifest::{self, Document},
    output::{LAST_APPLIED, meta, name_of},
};

/// Arguments of `berth apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// A manifest file, a directory of them, or `-` for standard input (repeatable).
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// The Environment of namespaced objects that do not name one.
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    /// `server`: validate everything on the server and print what would happen, write nothing.
    #[arg(long, value_enum)]
    pub dry_run: Option<DryRun>,
    /// Delete objects that match `-l`, were applied before, and are no longer in the manifests.
    #[arg(long, requires = "selector")]
    pub prune: bool,
    /// Label selector of the objects `--prune` may delete.
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
}

/// `--dry-run` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRun {
    /// Send every object to the server with `dryRun=All`.
    Server,
}

/// What apply did (or would do) to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The object was created.
    Created,
    /// The object was patched.
    Configured,
    /// The object already matched the manifest.
    Unchanged,
    /// The object was deleted by `--prune`.
    Pruned,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
            Outcome::Pruned => "pruned",
        })
    }
}

/// The merge patch that applies `doc` over `live`.
pub fn patch_for(doc: &Document, live: &Value) -> Value {
    apply::patch_for(&doc.object, live)
}

/// Whether a dry-run error of `doc` only says that something `planned` creates earlier does
/// not exist yet.
pub fn excused(planned: &Planned, doc: &Document, err: &Error) -> bool {
    let Some(status) = err.status() else { return false };
    if let Some(ns) = doc.namespace()
        && planned.environments.contains(ns)
        && status.is_missing_namespace(ns)
    {
        return true;
    }
    let project = doc.object.pointer("/spec/project").and_then(Value::as_str);
    doc.info.kind == "Environment"
        && status.code == 422
        && status.fields() == ["spec.project"]
        && project.is_some_and(|p| planned.projects.contains(p))
}

/// Creates or patches one object (dry run or for real) and says what happened.
pub async fn apply_one(client: &Client, doc: &Document, dry_run: bool) -> Result<(Outcome, Value)> {
    let (info, ns, name) = (doc.info, doc.namespace(), doc.name());
    match client.get_opt(info, ns, name).await? {
        None => {
            let created = client
                .create(info, ns, &with_last_applied(&doc.object), dry_run)
                .await?;
            Ok((Outcome::Created, created))
        }
        Some(live) => {
            let patch = patch_for(doc, &live);
            if merge::is_empty(&patch) {
                return Ok((Outcome::Unchanged, live));
            }
            let patched = client.patch(info, ns, name, &patch, dry_run).await?;
            let same = meta(&patched, "resourceVersion") == meta(&live, "resourceVersion");
            let outcome = if dry_run && patched == live || !dry_run && same {
                Outcome::Unchanged
            } else {
                Outcome::Configured
            };
            Ok((outcome, patched))
        }
    }
}

/// Runs `berth apply`.
pub async fn run(client: &Client, args: &ApplyArgs, default_ns: Option<&str>) -> Result<ExitCode> {
    let ns = args.namespace.as_deref().or(default_ns);
    let docs = manifest::load(&args.files, ns).map_err(nothing_applied)?;
    let planned = Planned::of(&docs);
    let mut problems = Vec::new();
    let mut dry_outcomes = Vec::new();
    for doc in &docs {
        match apply_one(client, doc, true).await {
            Ok((outcome, _)) => dry_outcomes.push((doc, outcome)),
            Err(e) if excused(&planned, doc, &e) => dry_outcomes.push((doc, Outcome::Created)),
            Err(e @ (Error::Api(_) | Error::Manifest(_))) => problems.push(format!("{}: {e}", doc.origin())),
            Err(e) => return Err(e),
        }
    }
    if !problems.is_empty() {
        return Err(nothing_applied(Error::Manifest(problems.join("\n"))));
    }
    if args.dry_run == Some(DryRun::Server) {
        for (doc, outcome) in dry_outcomes {
            println!("{} {outcome} (server dry run)", name_of(doc.info, &doc.object));
        }
        return Ok(ExitCode::SUCCESS);
    }
    for doc in &docs {
        let (outcome, _) = apply_one(client, doc, false)
            .await
            .map_err(|e| Error::Manifest(format!("{}: {e}", doc.origin())))?;
        println!("{} {outcome}", name_of(doc.info, &doc.object));
    }
    if args.prune {
        prune(client, &docs, args.selector.as_deref().unwrap_or_default()).await?;
    }
    Ok(ExitCode::SUCCESS)
}

fn nothing_applied(e: Error) -> Error {
    match e {
        Error::Manifest(m) => Error::Manifest(format!("nothing was applied:\n{m}")),
        other => other,
    }
}

/// Deletes applied objects matching `selector` that the manifest set no longer has.
async fn prune(client: &Client, docs: &[Document], selector: &str) -> Result<()> {
    let mut kinds: Vec<_> = docs.iter().map(|d| d.info).collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(manifest::rank(k)));
    kinds.dedup_by_key(|k| k.kind);
    let namespaces: BTreeSet<&str> = docs.iter().filter_map(Document::namespace).collect();
    let keep: BTreeSet<(&str, Option<&str>, &str)> = docs
        .iter()
        .map(|d| (d.info.kind, d.namespace(), d.name()))
        .collect();
    let params = ListParams {
        labels: Some(selector.to_owned()),
        name: None,
    };
    for info in kinds {
        let scopes: Vec<Option<&str>> = if info.namespaced {
            namespaces.iter().map(|n| Some(*n)).collect()
        } else {
            vec![None]
        };
        for ns in scopes {
            for obj in client.list(info, ns, &params).await?.items {
                let applied = obj
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(LAST_APPLIED))
                    .is_some();
                let name = meta(&obj, "name");
                if !applied || keep.contains(&(info.kind, ns, name)) {
                    continue;
                }
                match client.delete(info, ns, name).await {
                    Ok(_) => println!("{} {}", name_of(info, &obj), Outcome::Pruned),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}
