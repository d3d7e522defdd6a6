//! The Service controller's writes: runs the [`Step`]s of a plan through the API (and
//! creates bind directories under `--host-root`), generates missing magic values, and
//! writes the status.
//!
//! # Guarantees
//! - Decides nothing: every step does what it names, in order; a failed write ends the
//!   reconcile with its error, before the status write (the key is retried with backoff).
//! - Creating an object that exists already, or deleting one that is gone, is not an
//!   error (the caches lag the API): the next reconcile sees it as it is.
//! - A generated value is never overwritten: [`Act::generate`] reads the Secret from the
//!   API (not the cache), adds only the keys it lacks, and writes with the read
//!   `resourceVersion` as a precondition, reading again on a conflict.
//!
//! # Caveats
//! - Bind directories are created on berth's own filesystem: they are the server's only
//!   for the `localhost` server, as for `spec.files` of Applications.

use std::collections::BTreeMap;

use berth_compose::magic;
use berth_crds::Object;
use berth_crds::kinds::ServiceSpec;
use berth_crds::kinds::service::ServiceStatus;
use serde_json::json;
use tracing::Instrument;

use super::observe::{Found, Observed, owned_by};
use super::plan::{ChildKind, Generate, Step};
use super::{Error, ServiceReconciler};
use crate::{client, status};

/// How often a generate is tried when the Secret changes under it.
const GENERATE_ATTEMPTS: usize = 5;

/// Runs the plans of one reconcile (or cleanup) of Service `svc`.
pub struct Act<'a> {
    r: &'a ServiceReconciler,
    svc: &'a Object<ServiceSpec>,
}

impl<'a> Act<'a> {
    /// An actor for one reconcile of `svc`.
    pub fn new(r: &'a ServiceReconciler, svc: &'a Object<ServiceSpec>) -> Self {
        Self { r, svc }
    }

    fn ns(&self) -> Option<&str> {
        self.svc.namespace()
    }

    /// Runs `steps` in order.
    pub async fn run(&self, steps: Vec<Step>) -> Result<(), Error> {
        for step in steps {
            let span = tracing::info_span!("step", step = step_name(&step));
            self.step(step).instrument(span).await?;
        }
        Ok(())
    }

    async fn step(&self, step: Step) -> Result<(), Error> {
        let ns = self.ns();
        match step {
            Step::CreateSecret(obj) => created(
                self.r.secrets_api.within(ns).create(&obj).await,
                "Secret",
                obj.name(),
            )?,
            Step::PatchSecret { name, patch } => {
                self.r.secrets_api.within(ns).patch(&name, patch).await?;
                tracing::info!(secret = %name, "patched secret");
            }
            Step::DeleteSecret { name } => {
                deleted(self.r.secrets_api.within(ns).delete(&name).await, "Secret", &name)?
            }
            Step::CreateDestination(obj) => {
                created(
                    self.r.destinations_api.within(None).create(&obj).await,
                    "Destination",
                    obj.name(),
                )?;
            }
            Step::DeleteDestination { name } => {
                deleted(
                    self.r.destinations_api.within(None).delete(&name).await,
                    "Destination",
                    &name,
                )?;
            }
            Step::EnsureDirs(dirs) => {
                for dir in dirs {
                    tokio::fs::create_dir_all(&dir)
                        .await
                        .map_err(|e| Error::HostDir {
                            path: dir.display().to_string(),
                            message: e.to_string(),
                        })?;
                }
            }
            Step::CreateApplication(obj) => {
                created(
                    self.r.apps_api.within(ns).create(&obj).await,
                    "Application",
                    obj.name(),
                )?;
            }
            Step::CreateDatabase(obj) => {
                created(
                    self.r.dbs_api.within(ns).create(&obj).await,
                    "Database",
                    obj.name(),
                )?;
            }
            Step::PatchChild { kind, name, patch } => {
                match kind {
                    ChildKind::Application => drop(self.r.apps_api.within(ns).patch(&name, patch).await?),
                    ChildKind::Database => drop(self.r.dbs_api.within(ns).patch(&name, patch).await?),
                }
                tracing::info!(%kind, %name, "patched member: its spec changed");
            }
            Step::DeleteChild { kind, name } => {
                let result = match kind {
                    ChildKind::Application => self.r.apps_api.within(ns).delete(&name).await,
                    ChildKind::Database => self.r.dbs_api.within(ns).delete(&name).await,
                };
                deleted(result, kind.as_str(), &name)?;
            }
        }
        Ok(())
    }

    /// Generates the missing values of `g` into the Secret, never overwriting one, and
    /// records the Secret as written in `o`.
    pub async fn generate(&self, g: Generate, o: &mut Observed) -> Result<(), Error> {
        let name = g.secret.name().to_owned();
        let api = self.r.secrets_api.within(self.ns());
        for _ in 0..GENERATE_ATTEMPTS {
            let written = match api.get(&name).await {
                Err(client::Error::NotFound { .. }) => {
                    let mut body = (*g.secret).clone();
                    body.spec.data = fresh(&g.values, &BTreeMap::new())?;
                    match api.create(&body).await {
                        Ok(s) => s,
                        Err(client::Error::AlreadyExists { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
                Ok(live) if !owned_by(&live, &o.id.uid) => return Err(Error::SecretConflict(name)),
                Ok(live) => {
                    let data = fresh(&g.values, &live.spec.data)?;
                    if data.is_empty() {
                        live
                    } else {
                        let rv = live.metadata.resource_version.clone().unwrap_or_default();
                        let patch = json!({"metadata": {"resourceVersion": rv}, "spec": {"data": data}});
                        match api.patch(&name, patch).await {
                            Ok(s) => s,
                            Err(client::Error::Conflict(_)) => continue,
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            };
            let keys: Vec<&str> = g.values.iter().map(|(k, _)| k.as_str()).collect();
            tracing::info!(secret = %name, ?keys, "generated magic values");
            o.secrets.insert(
                name,
                Found {
                    owned: true,
                    deleting: written.is_deleting(),
                    spec: written.spec,
                },
            );
            return Ok(());
        }
        Err(Error::Internal(
            "the generated secret kept changing while values were added",
        ))
    }

    /// Writes `next` through the status subresource unless it is unchanged.
    pub async fn write(&self, next: &ServiceStatus) -> Result<(), Error> {
        status::update(&self.r.api, self.svc, next).await?;
        Ok(())
    }
}

/// Fresh values for the variables of `values` that `present` lacks.
fn fresh(
    values: &[(String, magic::Magic)],
    present: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (name, m) in values.iter().filter(|(n, _)| !present.contains_key(n)) {
        let value = magic::generate(m).map_err(|source| Error::Generate {
            name: name.clone(),
            source,
        })?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}

fn created<T>(result: Result<T, client::Error>, kind: &str, name: &str) -> Result<(), Error> {
    match result {
        Ok(_) => {
            tracing::info!(kind, name, "created");
            Ok(())
        }
        Err(client::Error::AlreadyExists { .. }) => {
            tracing::debug!(kind, name, "exists already (the cache lags)");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn deleted(result: Result<(), client::Error>, kind: &str, name: &str) -> Result<(), Error> {
    match result {
        Ok(()) => {
            tracing::info!(kind, name, "deleted");
            Ok(())
        }
        Err(client::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn step_name(step: &Step) -> &'static str {
    match step {
        Step::CreateSecret(_) => "create-secret",
        Step::PatchSecret { .. } => "patch-secret",
        Step::DeleteSecret { .. } => "delete-secret",
        Step::CreateDestination(_) => "create-destination",
        Step::DeleteDestination { .. } => "delete-destination",
        Step::EnsureDirs(_) => "ensure-dirs",
        Step::CreateApplication(_) => "create-application",
        Step::CreateDatabase(_) => "create-database",
        Step::PatchChild { .. } => "patch-child",
        Step::DeleteChild { .. } => "delete-child",
    }
}
