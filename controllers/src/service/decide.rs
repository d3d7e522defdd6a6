//! The Service controller's decision: a pure function from [`Observed`] to a [`Plan`]
//! (and, for the finalizer, to a [`Cleanup`]).
//!
//! # Guarantees
//! - Pure: the same facts give the same plan; no I/O, no clock (the time is passed in),
//!   no randomness (missing magic values are asked for as [`Plan::Generate`]).
//! - A compose file that does not expand, a missing `spec.destination`, or a name taken by
//!   an object the Service does not own gives a plan without child writes.
//! - Only objects carrying the Service's ownerReference are patched or deleted.
//! - An unchanged member gets no step; a changed one gets one merge patch of what changed.
//! - A missing member is created only when each of its `depends_on` members is up as asked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use berth_compose::expand::{
    self, Child, Expansion, Input, Member, destination_name, generated_secret_name, network_name,
};
use berth_compose::model::{Dependency, DependencyCondition};
use berth_crds::kinds::service::{ServiceMember, ServiceStatus};
use berth_crds::kinds::{DestinationSpec, SecretSpec, ServiceSpec};
use berth_crds::meta::{ConditionStatus, OwnerReference};
use berth_crds::{API_VERSION, Object, Resource};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub use super::observe::{ChildFacts, ChildSpec, Observed};
use super::plan::{
    ChildKind, Cleanup, GENERATED_SECRET_TYPE, Generate, LOGIN_SECRET_TYPE, MemberReason, Plan,
    SERVICE_LABEL, SERVICE_NAMESPACE_LABEL, ServiceCondition, ServiceReason, Step, condition_word,
};
use crate::status::{merge_diff, set_condition};

/// The next plan for `o`.
pub fn decide(o: &Observed, now: DateTime<Utc>) -> Plan {
    let (ns, name) = (o.id.namespace.as_str(), o.id.name.as_str());
    let secret_name = generated_secret_name(name);
    let needed = match expand::needed(&o.spec) {
        Ok(n) => n,
        Err(e) => return blocked(o, ServiceReason::InvalidCompose, &e.to_string(), now),
    };
    let generated = o.secrets.get(&secret_name);
    if let Some(g) = generated
        && !g.owned
    {
        let message = format!("secret {secret_name:?} exists and is not owned by this Service");
        return blocked(o, ServiceReason::SecretConflict, &message, now);
    }
    let empty = BTreeMap::new();
    let data = generated.map_or(&empty, |g| &g.spec.data);
    let missing: Vec<_> = needed
        .into_iter()
        .filter(|(n, _)| !data.contains_key(n))
        .collect();
    if !missing.is_empty() {
        return Plan::Generate(Generate {
            secret: Box::new(generated_secret(o, BTreeMap::new())),
            values: missing,
        });
    }
    // Keys with a '.' are derived (`<member>.<VAR>`); the others are the generated values.
    let raw: BTreeMap<String, String> = data
        .iter()
        .filter(|(k, _)| !k.contains('.'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let expansion = match expand::expand(Input {
        namespace: ns,
        name,
        spec: &o.spec,
        generated: &raw,
        host_root: o.host_root.as_deref(),
    }) {
        Ok(e) => e,
        Err(e) => return blocked(o, ServiceReason::InvalidCompose, &e.to_string(), now),
    };
    let Some(server) = &o.target_server else {
        let message = format!("spec.destination: destination {:?} not found", o.spec.destination);
        return blocked(o, ServiceReason::DestinationNotFound, &message, now);
    };

    let mut steps = Vec::new();
    let dest = destination_name(ns, name);
    let want_dest = DestinationSpec {
        server: server.clone(),
        network: network_name(ns, name),
    };
    match &o.destination {
        None => steps.push(Step::CreateDestination(Box::new(owned(
            o, None, &dest, want_dest,
        )))),
        Some(d) if !d.owned => {
            let message = format!("destination {dest:?} exists and is not owned by this Service");
            return blocked(o, ServiceReason::DestinationConflict, &message, now);
        }
        Some(d) if d.deleting => {
            let message = format!("destination {dest:?} is being deleted; it is created again once gone");
            return blocked(o, ServiceReason::DestinationDeleting, &message, now);
        }
        Some(d) if d.spec != want_dest => {
            let message = format!(
                "destination {dest:?} is on server {:?}, spec.destination {:?} on {:?}: delete and re-create the Service to move it",
                d.spec.server, o.spec.destination, want_dest.server
            );
            return blocked(o, ServiceReason::DestinationMismatch, &message, now);
        }
        Some(_) => {}
    }

    // The generated Secret: the generated values as they are, plus the derived entries.
    let mut want_data = raw;
    want_data.extend(expansion.secret_env.clone());
    match generated {
        None => steps.push(Step::CreateSecret(Box::new(generated_secret(o, want_data)))),
        Some(g) => {
            if let Some(patch) = data_patch(&g.spec.data, &want_data) {
                steps.push(Step::PatchSecret {
                    name: secret_name.clone(),
                    patch,
                });
            }
        }
    }

    let bind_root = o
        .host_root
        .as_ref()
        .map(|r| r.join("services").join(ns).join(name));
    let mut wanted: BTreeSet<(ChildKind, String)> = BTreeSet::new();
    let mut wanted_secrets = BTreeSet::from([secret_name]);
    let mut services = Vec::new();
    for m in &expansion.members {
        let kind = kind_of(&m.child);
        wanted.insert((kind, m.object.clone()));
        if let Child::Database { login_secret, .. } = &m.child {
            wanted_secrets.insert(login_secret.clone());
        }
        let (ready, reason) = member(o, &expansion, m, bind_root.as_deref(), &mut steps);
        services.push(ServiceMember {
            name: m.service.clone(),
            kind: kind.as_str().to_owned(),
            object: m.object.clone(),
            ready,
            reason,
            excluded: m.excluded,
            urls: m.urls.clone(),
        });
    }

    // Members whose compose service was removed (or whose kind changed: done above).
    for c in o.children.iter().filter(|c| c.found.owned && !c.found.deleting) {
        let other = (other_kind(c.kind), c.name.clone());
        if !wanted.contains(&(c.kind, c.name.clone())) && !wanted.contains(&other) {
            steps.push(Step::DeleteChild {
                kind: c.kind,
                name: c.name.clone(),
            });
        }
    }
    for (secret, s) in &o.secrets {
        if s.owned && !s.deleting && !wanted_secrets.contains(secret) {
            steps.push(Step::DeleteSecret { name: secret.clone() });
        }
    }

    Plan::Converge {
        steps,
        status: Box::new(status(o, &expansion, services, now)),
    }
}

/// The finalizer's plan: delete the children and wait until they are gone, then delete
/// the Destination (whose own finalizer removes the network once nothing is attached).
/// Secrets go with their owner (garbage collection).
pub fn cleanup(o: &Observed) -> Cleanup {
    let children: Vec<&ChildFacts> = o.children.iter().filter(|c| c.found.owned).collect();
    if !children.is_empty() {
        let steps = children
            .iter()
            .filter(|c| !c.found.deleting)
            .map(|c| Step::DeleteChild {
                kind: c.kind,
                name: c.name.clone(),
            })
            .collect();
        return Cleanup::Pending(steps);
    }
    match &o.destination {
        Some(d) if d.owned && !d.deleting => Cleanup::Done(vec![Step::DeleteDestination {
            name: destination_name(&o.id.namespace, &o.id.name),
        }]),
        _ => Cleanup::Done(Vec::new()),
    }
}

/// Decides member `m`: pushes its steps, and says whether it is ready and if not why.
fn member(
    o: &Observed,
    e: &Expansion,
    m: &Member,
    bind_root: Option<&Path>,
    steps: &mut Vec<Step>,
) -> (bool, Option<String>) {
    let kind = kind_of(&m.child);
    let not_ready = |reason: MemberReason, detail: String| (false, Some(format!("{reason}: {detail}")));
    if let Some(c) = o.children.iter().find(|c| c.name == m.object && !c.found.owned) {
        let detail = format!(
            "a {} named {:?} exists and is not owned by this Service",
            c.kind, c.name
        );
        return not_ready(MemberReason::Conflict, detail);
    }
    if let Child::Database {
        login_secret, login, ..
    } = &m.child
    {
        match o.secrets.get(login_secret) {
            Some(s) if !s.owned => {
                let detail = format!("secret {login_secret:?} exists and is not owned by this Service");
                return not_ready(MemberReason::Conflict, detail);
            }
            Some(s) => {
                if let Some(patch) = data_patch(&s.spec.data, login) {
                    steps.push(Step::PatchSecret {
                        name: login_secret.clone(),
                        patch,
                    });
                }
            }
            None => {
                let spec = SecretSpec {
                    type_: Some(LOGIN_SECRET_TYPE.to_owned()),
                    data: login.clone(),
                };
                let ns = Some(o.id.namespace.as_str());
                steps.push(Step::CreateSecret(Box::new(owned(o, ns, login_secret, spec))));
            }
        }
    }
    let other = other_kind(kind);
    if let Some(c) = o.child(other, &m.object) {
        if !c.found.deleting {
            steps.push(Step::DeleteChild {
                kind: other,
                name: m.object.clone(),
            });
        }
        return not_ready(
            MemberReason::Replacing,
            format!("the {other} {:?} is removed first", m.object),
        );
    }
    match o.child(kind, &m.object) {
        Some(c) if c.found.deleting => {
            let detail = format!(
                "{kind} {:?} is being deleted; it is created again once gone",
                m.object
            );
            not_ready(MemberReason::Replacing, detail)
        }
        Some(c) => match spec_patch(&c.found.spec, &m.child) {
            Some(patch) => {
                push_dirs(&m.child, bind_root, steps);
                steps.push(Step::PatchChild {
                    kind,
                    name: m.object.clone(),
                    patch,
                });
                not_ready(
                    MemberReason::Updating,
                    format!("{kind} {:?} was patched", m.object),
                )
            }
            None if c.health.ready => (true, None),
            None => match &c.health.reason {
                Some(reason) => (false, Some(reason.clone())),
                None => not_ready(
                    MemberReason::NotReady,
                    format!("{kind} {:?} is not ready yet", m.object),
                ),
            },
        },
        None => {
            if let Some(d) = m.depends_on.iter().find(|d| !satisfied(o, e, d)) {
                return not_ready(
                    MemberReason::Waiting,
                    format!("{} ({})", d.service, condition_word(d.condition)),
                );
            }
            push_dirs(&m.child, bind_root, steps);
            let ns = Some(o.id.namespace.as_str());
            steps.push(match &m.child {
                Child::Application(spec) => {
                    Step::CreateApplication(Box::new(owned(o, ns, &m.object, (**spec).clone())))
                }
                Child::Database { spec, .. } => {
                    Step::CreateDatabase(Box::new(owned(o, ns, &m.object, (**spec).clone())))
                }
            });
            not_ready(MemberReason::Creating, format!("{kind} {:?}", m.object))
        }
    }
}

/// Whether dependency `d` is up as asked: `service_healthy` when its child is Ready,
/// `service_started` and `service_completed_successfully` when its containers run (or
/// ran: Application status does not record exit codes, see the module's caveats).
fn satisfied(o: &Observed, e: &Expansion, d: &Dependency) -> bool {
    let Some(dep) = e.members.iter().find(|m| m.service == d.service) else {
        // The compose model refuses unknown services; nothing to wait for.
        return true;
    };
    let Some(c) = o.child(kind_of(&dep.child), &dep.object) else {
        return false;
    };
    if !c.found.owned || c.found.deleting || spec_patch(&c.found.spec, &dep.child).is_some() {
        return false;
    }
    match d.condition {
        DependencyCondition::Healthy => c.health.ready,
        DependencyCondition::Started | DependencyCondition::CompletedSuccessfully => c.health.started,
    }
}

/// The status of a Service whose members are `services`.
fn status(o: &Observed, e: &Expansion, services: Vec<ServiceMember>, now: DateTime<Utc>) -> ServiceStatus {
    let counted: Vec<&ServiceMember> = services.iter().filter(|m| !m.excluded).collect();
    let ready = counted.iter().filter(|m| m.ready).count();
    let mut conditions = o.status.conditions.clone();
    let (truth, reason, message) = if ready == counted.len() {
        let message = format!("{ready}/{} members ready", counted.len());
        (ConditionStatus::True, ServiceReason::MembersReady, message)
    } else {
        let waiting: Vec<String> = counted
            .iter()
            .filter(|m| !m.ready)
            .map(|m| format!("{} ({})", m.name, m.reason.as_deref().unwrap_or_default()))
            .collect();
        let message = format!("not ready: {}", waiting.join("; "));
        (ConditionStatus::False, ServiceReason::MembersNotReady, message)
    };
    set_condition(
        &mut conditions,
        ServiceCondition::Ready.as_str(),
        truth,
        reason.as_str(),
        &message,
        o.id.generation,
        now,
    );
    ServiceStatus {
        observed_generation: Some(o.id.generation),
        conditions,
        url: services.iter().flat_map(|m| m.urls.first()).next().cloned(),
        members: Some(format!("{ready}/{}", counted.len())),
        services,
        notices: e
            .notices
            .iter()
            .map(|n| match n.service.as_str() {
                "" => format!("{}: {}", n.key, n.message),
                svc => format!("services.{svc}.{}: {}", n.key, n.message),
            })
            .collect(),
    }
}

/// The stored status with `Ready=False` for `reason`: nothing else changes.
fn blocked(o: &Observed, reason: ServiceReason, message: &str, now: DateTime<Utc>) -> Plan {
    let mut status = o.status.clone();
    status.observed_generation = Some(o.id.generation);
    set_condition(
        &mut status.conditions,
        ServiceCondition::Ready.as_str(),
        ConditionStatus::False,
        reason.as_str(),
        message,
        o.id.generation,
        now,
    );
    Plan::Converge {
        steps: Vec::new(),
        status: Box::new(status),
    }
}

/// The kind of a member's child.
pub fn kind_of(child: &Child) -> ChildKind {
    match child {
        Child::Application(_) => ChildKind::Application,
        Child::Database { .. } => ChildKind::Database,
    }
}

fn other_kind(kind: ChildKind) -> ChildKind {
    match kind {
        ChildKind::Application => ChildKind::Database,
        ChildKind::Database => ChildKind::Application,
    }
}

/// The merge patch turning the live spec into the wanted one, if they differ.
pub fn spec_patch(live: &ChildSpec, want: &Child) -> Option<Value> {
    let (old, new) = match (live, want) {
        (ChildSpec::Application(l), Child::Application(w)) if l != w => {
            (serde_json::to_value(l), serde_json::to_value(w))
        }
        (ChildSpec::Database(l), Child::Database { spec: w, .. }) if l != w => {
            (serde_json::to_value(l), serde_json::to_value(w))
        }
        _ => return None,
    };
    // These specs always serialize; were one not to, the whole wanted spec is sent.
    let diff = merge_diff(&old.unwrap_or(Value::Null), &new.unwrap_or(Value::Null));
    Some(json!({ "spec": diff }))
}

/// The merge patch turning Secret data `live` into `want`, if they differ.
fn data_patch(live: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> Option<Value> {
    let mut data = Map::new();
    for (k, v) in want {
        if live.get(k) != Some(v) {
            data.insert(k.clone(), Value::String(v.clone()));
        }
    }
    for k in live.keys().filter(|k| !want.contains_key(*k)) {
        data.insert(k.clone(), Value::Null);
    }
    (!data.is_empty()).then(|| json!({ "spec": { "data": data } }))
}

/// The directories relative binds of `child` need under `bind_root`: each bind source's
/// parent, and the source itself unless its name has an extension (a file the user puts
/// there: making it a directory would turn a file mount into a directory).
fn push_dirs(child: &Child, bind_root: Option<&Path>, steps: &mut Vec<Step>) {
    let (Child::Application(spec), Some(root)) = (child, bind_root) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    for path in spec
        .volumes
        .iter()
        .filter_map(|v| v.host_path.as_deref())
        .map(Path::new)
    {
        if !path.starts_with(root) {
            continue;
        }
        let dir = match path.extension() {
            Some(_) => path.parent().unwrap_or(root),
            None => path,
        };
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_path_buf());
        }
    }
    if !dirs.is_empty() {
        steps.push(Step::EnsureDirs(dirs));
    }
}

/// The generated-values Secret with `data`.
fn generated_secret(o: &Observed, data: BTreeMap<String, String>) -> Object<SecretSpec> {
    let spec = SecretSpec {
        type_: Some(GENERATED_SECRET_TYPE.to_owned()),
        data,
    };
    let name = generated_secret_name(&o.id.name);
    owned(o, Some(o.id.namespace.as_str()), &name, spec)
}

/// Object `name` with `spec`, owned by the Service (controller) and labelled with it.
pub fn owned<S: Resource>(o: &Observed, namespace: Option<&str>, name: &str, spec: S) -> Object<S> {
    let mut obj = Object::new(namespace, name, spec);
    obj.metadata
        .labels
        .insert(SERVICE_LABEL.to_owned(), o.id.name.clone());
    obj.metadata
        .labels
        .insert(SERVICE_NAMESPACE_LABEL.to_owned(), o.id.namespace.clone());
    obj.metadata.owner_references.push(OwnerReference {
        api_version: API_VERSION.to_owned(),
        kind: ServiceSpec::KIND.to_owned(),
        name: o.id.name.clone(),
        uid: o.id.uid.clone(),
        controller: Some(true),
        block_owner_deletion: None,
    });
    obj
}
