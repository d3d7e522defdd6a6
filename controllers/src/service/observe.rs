//! The Service controller's reads: the informer caches into the plain facts of
//! [`Observed`].
//!
//! # Guarantees
//! - Reads only, and decides nothing. Children are every Application and Database the
//!   Service owns (by uid) and every one whose name starts with `<service>-` (so that a
//!   name taken by someone else is seen as a conflict); the same for Secrets.
//! - A child's health is read from its status only as far as it describes the child's
//!   current generation (`status.observedGeneration`); an older status counts as not ready.
//!
//! # Caveats
//! - The caches may lag the API by a watch event; every change re-runs the reconcile.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_crds::kinds::application::{AppCondition, ApplicationPhase};
use berth_crds::kinds::database::{DatabaseCondition, DatabaseReason};
use berth_crds::kinds::service::ServiceStatus;
use berth_crds::kinds::{ApplicationSpec, DatabaseSpec, DestinationSpec, SecretSpec, ServiceSpec};
use berth_crds::meta::{Condition, ConditionStatus};
use berth_crds::{Object, Resource};

use super::plan::ChildKind;
use crate::informer::Informer;
use crate::object::ObjectRef;

/// The Service being reconciled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid (children's ownerReferences carry it).
    pub uid: String,
    /// Its `metadata.generation`.
    pub generation: i64,
}

/// An object as found: whether the Service owns it, whether it is going away, its spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<S> {
    /// Whether it carries the Service's ownerReference.
    pub owned: bool,
    /// Whether its deletion was requested.
    pub deleting: bool,
    /// Its spec.
    pub spec: S,
}

/// A child's spec as found.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildSpec {
    /// An Application's.
    Application(Box<ApplicationSpec>),
    /// A Database's.
    Database(Box<DatabaseSpec>),
}

/// What a child's status says, as far as it describes its current generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Its `Ready` condition is True.
    pub ready: bool,
    /// Its containers run (ready or not): an Application with a running replica, a
    /// Database whose engine runs and is being probed.
    pub started: bool,
    /// The reason of its `Ready` condition when not True.
    pub reason: Option<String>,
}

/// An Application or Database of the Service's namespace that concerns the Service.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildFacts {
    /// Its kind.
    pub kind: ChildKind,
    /// Its name.
    pub name: String,
    /// Owned, deleting, spec.
    pub found: Found<ChildSpec>,
    /// Its health.
    pub health: Health,
}

/// Everything the decision reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// The Service.
    pub id: Identity,
    /// Its spec.
    pub spec: ServiceSpec,
    /// Its status as stored when the reconcile began.
    pub status: ServiceStatus,
    /// `--host-root`: where relative binds live.
    pub host_root: Option<PathBuf>,
    /// The server of `spec.destination`'s Destination, if it exists.
    pub target_server: Option<String>,
    /// The Service's own Destination (`svc-<ns>-<name>`), if it exists.
    pub destination: Option<Found<DestinationSpec>>,
    /// Secrets named `<service>-…` or owned by the Service, by name.
    pub secrets: BTreeMap<String, Found<SecretSpec>>,
    /// Applications and Databases named `<service>-…` or owned by the Service.
    pub children: Vec<ChildFacts>,
}

impl Observed {
    /// The child `name` of `kind`, if found.
    pub fn child(&self, kind: ChildKind, name: &str) -> Option<&ChildFacts> {
        self.children.iter().find(|c| c.kind == kind && c.name == name)
    }
}

/// The caches a Service reconcile reads.
pub struct Caches<'a> {
    /// Applications.
    pub apps: &'a Informer<ApplicationSpec>,
    /// Databases.
    pub dbs: &'a Informer<DatabaseSpec>,
    /// Secrets.
    pub secrets: &'a Informer<SecretSpec>,
    /// Destinations.
    pub destinations: &'a Informer<DestinationSpec>,
}

/// Whether `obj` carries an ownerReference to the Service of uid `uid`.
pub fn owned_by<S: Resource>(obj: &Object<S>, uid: &str) -> bool {
    !uid.is_empty()
        && obj
            .metadata
            .owner_references
            .iter()
            .any(|o| o.kind == ServiceSpec::KIND && o.uid == uid)
}

/// What the caches say about Service `svc`.
pub fn caches(svc: &Object<ServiceSpec>, host_root: Option<PathBuf>, c: &Caches<'_>) -> Observed {
    let id = Identity {
        namespace: svc.namespace().unwrap_or_default().to_owned(),
        name: svc.name().to_owned(),
        uid: svc.uid().to_owned(),
        generation: svc.generation(),
    };
    let prefix = format!("{}-", id.name);
    let concerns = |ns: Option<&str>, name: &str, owned: bool| {
        owned || (ns == Some(id.namespace.as_str()) && name.starts_with(&prefix))
    };

    let mut children = Vec::new();
    for a in c.apps.list() {
        let owned = owned_by(&a, &id.uid);
        if concerns(a.namespace(), a.name(), owned) {
            children.push(ChildFacts {
                kind: ChildKind::Application,
                name: a.name().to_owned(),
                found: Found {
                    owned,
                    deleting: a.is_deleting(),
                    spec: ChildSpec::Application(Box::new(a.spec.clone())),
                },
                health: app_health(&a),
            });
        }
    }
    for d in c.dbs.list() {
        let owned = owned_by(&d, &id.uid);
        if concerns(d.namespace(), d.name(), owned) {
            children.push(ChildFacts {
                kind: ChildKind::Database,
                name: d.name().to_owned(),
                found: Found {
                    owned,
                    deleting: d.is_deleting(),
                    spec: ChildSpec::Database(Box::new(d.spec.clone())),
                },
                health: db_health(&d),
            });
        }
    }
    children.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));

    let secrets = c
        .secrets
        .list()
        .into_iter()
        .filter_map(|s| {
            let owned = owned_by(&s, &id.uid);
            concerns(s.namespace(), s.name(), owned).then(|| {
                let f = Found {
                    owned,
                    deleting: s.is_deleting(),
                    spec: s.spec.clone(),
                };
                (s.name().to_owned(), f)
            })
        })
        .collect();

    let own = berth_compose::expand::destination_name(&id.namespace, &id.name);
    let destination = c.destinations.get(&ObjectRef::cluster(&own)).map(|d| Found {
        owned: owned_by(&d, &id.uid),
        deleting: d.is_deleting(),
        spec: d.spec.clone(),
    });
    let target_server = c
        .destinations
        .get(&ObjectRef::cluster(&svc.spec.destination))
        .map(|d| d.spec.server.clone());

    Observed {
        id,
        spec: svc.spec.clone(),
        status: svc.status.clone().unwrap_or_default(),
        host_root,
        target_server,
        destination,
        secrets,
        children,
    }
}

/// The `Ready` condition, if it describes `generation`.
fn ready_condition(conditions: &[Condition], type_: &str, generation: i64) -> Option<Condition> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .filter(|c| c.observed_generation.is_none_or(|g| g >= generation))
        .cloned()
}

fn health_of(ready: Option<Condition>, started: bool) -> Health {
    let is_ready = ready.as_ref().is_some_and(|c| c.status == ConditionStatus::True);
    Health {
        ready: is_ready,
        started: started || is_ready,
        reason: ready
            .filter(|_| !is_ready)
            .map(|c| c.reason)
            .filter(|r| !r.is_empty()),
    }
}

/// An Application's health: Ready is its `Ready` condition; started means a replica runs.
pub fn app_health(a: &Object<ApplicationSpec>) -> Health {
    let Some(status) = a.status.as_ref() else {
        return Health::default();
    };
    let current = status.observed_generation.is_some_and(|g| g >= a.generation());
    if !current {
        return Health::default();
    }
    let ready = ready_condition(&status.conditions, AppCondition::Ready.as_str(), a.generation());
    let started = status.replicas > 0
        && !matches!(
            status.phase,
            Some(ApplicationPhase::Failed | ApplicationPhase::Pending)
        );
    health_of(ready, started)
}

/// A Database's health: Ready is its `Ready` condition (the engine's probe); started means
/// the engine runs and is being probed (`Progressing` reason `Starting`).
pub fn db_health(d: &Object<DatabaseSpec>) -> Health {
    let Some(status) = d.status.as_ref() else {
        return Health::default();
    };
    let current = status.observed_generation.is_some_and(|g| g >= d.generation());
    if !current {
        return Health::default();
    }
    let generation = d.generation();
    let ready = ready_condition(&status.conditions, DatabaseCondition::Ready.as_str(), generation);
    let started = status
        .conditions
        .iter()
        .any(|c| c.type_ == DatabaseCondition::Progressing && c.reason == DatabaseReason::Starting);
    health_of(ready, started)
}
