//! One sync of a GitRepository's manifests: load and check every document, dry-run them
//! all, apply them in dependency order, prune what left the repository.

use std::collections::BTreeSet;

use berth_crds::{
    apply::{self, Document, Planned},
    kinds::EnvironmentSpec,
    kinds::git_repository::{InventoryEntry, MANAGED_BY_NAME_LABEL, MANAGED_BY_NAMESPACE_LABEL},
    registry::{self, KindInfo},
};
use serde_json::{Value, json};

use crate::{
    client::{self, Client},
    git::{self, Repositories},
    object,
};

/// The GitRepository whose manifests are synced: it owns what it applies.
#[derive(Debug, Clone, Copy)]
pub(super) struct Owner<'a> {
    /// Its namespace: the only namespace its namespaced objects may live in.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
}

impl Owner<'_> {
    /// Whether `obj` carries this owner's labels.
    fn owns(&self, obj: &Value) -> bool {
        berth_crds::json::label(obj, MANAGED_BY_NAMESPACE_LABEL) == Some(self.namespace)
            && berth_crds::json::label(obj, MANAGED_BY_NAME_LABEL) == Some(self.name)
    }

    /// The owner named by `obj`'s labels, if any.
    fn of(obj: &Value) -> Option<(&str, &str)> {
        Some((
            berth_crds::json::label(obj, MANAGED_BY_NAMESPACE_LABEL)?,
            berth_crds::json::label(obj, MANAGED_BY_NAME_LABEL)?,
        ))
    }
}

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// Objects created.
    pub created: u32,
    /// Objects patched.
    pub configured: u32,
    /// Objects that already matched.
    pub unchanged: u32,
    /// Objects deleted by prune.
    pub pruned: u32,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} created, {} configured, {} unchanged, {} pruned",
            self.created, self.configured, self.unchanged, self.pruned
        )
    }
}

/// Why a sync failed, as the condition will say it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The repository could not be fetched or read.
    #[error("{0}")]
    Fetch(#[from] git::Error),
    /// A document is invalid or would be refused: nothing of the commit was applied. The
    /// message names each file, document index and field.
    #[error("{0}")]
    Validation(String),
    /// Writing an object failed part-way (another writer between dry run and write).
    #[error("{0}")]
    Apply(String),
    /// Deleting an object that left the repository failed.
    #[error("{0}")]
    Prune(String),
}

/// Reads every `*.yaml`/`*.yml` under `dir` of `commit`, validates all documents and
/// returns them in dependency order, each labelled with `owner`.
pub(super) async fn load(
    repos: &Repositories,
    url: &str,
    commit: &str,
    dir: &str,
    owner: Owner<'_>,
) -> Result<Vec<Document>, Failure> {
    let mut files = repos.files(url, commit, dir).await?;
    files.retain(|f| f.mode != 0o120000 && (f.path.ends_with(".yaml") || f.path.ends_with(".yml")));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let prefix = dir.trim_matches('/');
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for f in &files {
        let source = if prefix.is_empty() || prefix == "." {
            f.path.clone()
        } else {
            format!("{prefix}/{}", f.path)
        };
        match std::str::from_utf8(&f.data) {
            Ok(text) => texts.push((source, text)),
            Err(_) => errors.push(format!("{source}: not UTF-8 text")),
        }
    }
    let parsed = apply::documents(texts.iter().map(|(s, t)| (s.as_str(), *t)), Some(owner.namespace));
    let mut docs = match parsed {
        Ok(docs) => docs,
        Err(apply::manifest::Error::Empty) => Vec::new(),
        Err(apply::manifest::Error::Invalid(mut e)) => {
            errors.append(&mut e);
            Vec::new()
        }
    };
    for d in &mut docs {
        if let Some(ns) = d.namespace()
            && ns != owner.namespace
        {
            errors.push(format!(
                "{}: metadata.namespace: Forbidden: a GitRepository in {:?} may only write to its own namespace",
                d.origin(),
                owner.namespace
            ));
        }
        label(&mut d.object, owner);
    }
    if errors.is_empty() {
        Ok(docs)
    } else {
        Err(Failure::Validation(errors.join("\n")))
    }
}

fn label(obj: &mut Value, owner: Owner<'_>) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert(MANAGED_BY_NAMESPACE_LABEL.into(), json!(owner.namespace));
        labels.insert(MANAGED_BY_NAME_LABEL.into(), json!(owner.name));
    }
}

/// Dry-runs every document through the API (admission included) and checks that none is
/// managed by another GitRepository; nothing is written.
pub(super) async fn dry_run(client: &dyn Client, docs: &[Document], owner: Owner<'_>) -> Result<(), Failure> {
    let planned = Planned::of(docs);
    let mut problems = Vec::new();
    for doc in docs {
        let (info, ns, name) = (doc.info, doc.namespace(), doc.name());
        let result = match client.get(info, ns, name).await {
            Ok(live) => {
                if let Some((other_ns, other)) = Owner::of(&live)
                    && !owner.owns(&live)
                {
                    problems.push(format!(
                        "{}: already managed by gitrepository {other_ns}/{other}",
                        doc.origin()
                    ));
                    continue;
                }
                let patch = apply::patch_for(&doc.object, &live);
                if apply::is_empty(&patch) {
                    continue;
                }
                client.patch_dry_run(info, ns, name, patch).await
            }
            Err(client::Error::NotFound { .. }) => {
                client
                    .create_dry_run(info, ns, apply::with_last_applied(&doc.object))
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => {}
            Err(e) if excused(&planned, doc, &e) => {}
            Err(e @ (client::Error::Rejected(_) | client::Error::NotFound { .. })) => {
                problems.push(format!("{}: {e}", doc.origin()));
            }
            Err(e) => return Err(Failure::Apply(format!("{}: {e}", doc.origin()))),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::Validation(problems.join("\n")))
    }
}

/// Whether a dry-run error of `doc` only says that something the same set creates earlier
/// does not exist yet.
fn excused(planned: &Planned, doc: &Document, err: &client::Error) -> bool {
    match err {
        client::Error::NotFound { kind, name } => {
            kind == "environments"
                && doc.namespace() == Some(name.as_str())
                && planned.environments.contains(name)
        }
        client::Error::Rejected(message) => {
            // The document is an Environment of this same set: read its spec as one.
            let project = (doc.info.kind == "Environment")
                .then(|| doc.object.get("spec").cloned())
                .flatten()
                .and_then(|spec| serde_json::from_value::<EnvironmentSpec>(spec).ok())
                .map(|spec| spec.project);
            message.contains("spec.project") && project.is_some_and(|p| planned.projects.contains(&p))
        }
        _ => false,
    }
}

/// Creates or patches every document in order. Returns what was applied (in order) even
/// when a write fails, so the inventory never loses an object it created.
pub(super) async fn apply_all(
    client: &dyn Client,
    docs: &[Document],
    counts: &mut Counts,
) -> (Vec<InventoryEntry>, Result<(), Failure>) {
    let mut applied = Vec::new();
    for doc in docs {
        let (info, ns, name) = (doc.info, doc.namespace(), doc.name());
        let result = match client.get(info, ns, name).await {
            Ok(live) => {
                let patch = apply::patch_for(&doc.object, &live);
                if apply::is_empty(&patch) {
                    counts.unchanged += 1;
                    Ok(())
                } else {
                    client.patch(info, ns, name, patch).await.map(|patched| {
                        if object::resource_version(&patched) == object::resource_version(&live) {
                            counts.unchanged += 1;
                        } else {
                            counts.configured += 1;
                        }
                    })
                }
            }
            Err(client::Error::NotFound { .. }) => client
                .create(info, ns, apply::with_last_applied(&doc.object))
                .await
                .map(|_| counts.created += 1),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            return (applied, Err(Failure::Apply(format!("{}: {e}", doc.origin()))));
        }
        applied.push(entry(doc));
    }
    (applied, Ok(()))
}

/// The inventory entry of `doc`.
pub(super) fn entry(doc: &Document) -> InventoryEntry {
    InventoryEntry {
        kind: doc.info.kind.to_owned(),
        namespace: doc.namespace().map(str::to_owned),
        name: doc.name().to_owned(),
    }
}

/// Deletes the objects of `previous` that are not in `keep` and still carry `owner`'s
/// labels (anything else is left alone), dependents first. Returns the entries it could not
/// delete (kept in the inventory, to retry).
pub(super) async fn prune(
    client: &dyn Client,
    previous: &[InventoryEntry],
    keep: &BTreeSet<InventoryEntry>,
    owner: Owner<'_>,
    counts: &mut Counts,
) -> (Vec<InventoryEntry>, Result<(), Failure>) {
    let mut gone: Vec<(&'static KindInfo, &InventoryEntry)> = previous
        .iter()
        .filter(|e| !keep.contains(*e))
        .filter_map(|e| {
            let info = registry::kinds().iter().find(|k| k.kind == e.kind);
            if info.is_none() {
                tracing::warn!(kind = %e.kind, name = %e.name, "inventory names an unknown kind; dropped");
            }
            info.map(|i| (i, e))
        })
        .collect();
    gone.sort_by_key(|(info, _)| std::cmp::Reverse(apply::rank(info)));
    let mut failed = Vec::new();
    let mut first_error = None;
    for (info, e) in gone {
        let ns = e.namespace.as_deref();
        let result = match client.get(info, ns, &e.name).await {
            Ok(live) if owner.owns(&live) => match client.delete(info, ns, &e.name).await {
                Ok(()) | Err(client::Error::NotFound { .. }) => {
                    counts.pruned += 1;
                    Ok(())
                }
                Err(err) => Err(err),
            },
            Ok(_) => {
                tracing::info!(kind = %e.kind, name = %e.name, "not pruned: no longer carries our labels");
                Ok(())
            }
            Err(client::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            failed.push(e.clone());
            first_error.get_or_insert_with(|| Failure::Prune(format!("{} {}: {err}", e.kind, e.name)));
        }
    }
    (failed, first_error.map_or(Ok(()), Err))
}
