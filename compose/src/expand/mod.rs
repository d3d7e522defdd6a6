//! Expansion: a compose file into the child objects of a Service.
//!
//! [`expand`] is pure: given the Service, its compose text, the values of its generated
//! magic variables and the host root, it returns one [`Member`] per compose service (an
//! Application or a Database spec), the derived Secret entries and the notices. The
//! Service controller creates what it returns; the API server runs it as admission (a
//! compose file that does not expand is refused at apply, naming the compose service and
//! key); `berth convert compose` prints it.
//!
//! # Guarantees
//! - The same inputs give the same members, byte for byte (maps are ordered): re-applying
//!   an unchanged Service changes no child, so nothing restarts.
//! - No generated secret value is written into a child's spec: an environment value that
//!   uses one becomes a `secretKeyRef` to the Service's generated Secret
//!   ([`generated_secret_name`]), under the key `<member>.<VAR>`.
//! - Every child spec passes its kind's validation, or expansion fails naming the member.
//! - Each member answers to its compose service name (and its compose aliases) on the
//!   Service's own network.
//!
//! # Caveats
//! - A magic variable berth cannot generate (Coolify's Supabase JWTs, unknown types) must
//!   be given in `spec.variables`; until then it is empty, as in Coolify.
//! - `depends_on` is returned per member; the controller honours it as start order.

mod application;
mod database;
mod urls;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use berth_crds::kinds::{ApplicationSpec, DatabaseSpec, ServiceSpec};
use berth_crds::{FieldError, Resource};
use serde_yaml::Value;

use crate::magic::{self, Magic};
use crate::model::{ComposeFile, ComposeService, Dependency, Notice, Refusal, TemplateMeta};
use crate::{catalogue, interpolate, yaml};

pub use urls::DEFAULT_WILDCARD;

/// Why a Service does not expand.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `spec.template.name` is not in the catalogue.
    #[error("spec.template.name: no template {0:?} (see `berth templates list`)")]
    UnknownTemplate(String),
    /// The compose text is not YAML berth can read.
    #[error("spec.compose: {0}")]
    Yaml(String),
    /// Interpolation failed (`${VAR:?message}` unset, malformed `${`).
    #[error("spec.compose: {}", join(.0))]
    Interpolation(Vec<String>),
    /// Keys berth will not run.
    #[error("spec.compose: {}", join(.0))]
    Refused(Vec<Refusal>),
    /// A member could not be mapped (the field is in the message).
    #[error("spec.compose: services.{service}: {message}")]
    Member {
        /// The compose service.
        service: String,
        /// What is wrong.
        message: String,
    },
    /// A child spec failed its kind's validation.
    #[error("spec.compose: services.{service} does not make a valid {kind}: {}", join(.errors))]
    Invalid {
        /// The compose service.
        service: String,
        /// The child's kind.
        kind: &'static str,
        /// The child's field errors.
        errors: Vec<FieldError>,
    },
    /// `spec.domains[i]` names no compose service.
    #[error("spec.domains[{index}].service: no compose service {service:?}")]
    UnknownDomainService {
        /// The index in `spec.domains`.
        index: usize,
        /// The name given.
        service: String,
    },
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What one expansion needs besides the Service.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The Service's namespace.
    pub namespace: &'a str,
    /// The Service's name.
    pub name: &'a str,
    /// The Service's spec.
    pub spec: &'a ServiceSpec,
    /// Generated magic values by variable name (the generated Secret's data).
    pub generated: &'a BTreeMap<String, String>,
    /// Where relative bind sources go (`--host-root`); `None` refuses them.
    pub host_root: Option<&'a Path>,
}

/// The compose text and variables of a Service: its own, or its template's.
pub fn source(spec: &ServiceSpec) -> Result<(String, BTreeMap<String, String>), Error> {
    if let Some(t) = &spec.template {
        let template = catalogue::get(&t.name).ok_or_else(|| Error::UnknownTemplate(t.name.clone()))?;
        let mut vars = spec.variables.clone();
        vars.extend(t.parameters.clone());
        return Ok((template.text.to_owned(), vars));
    }
    Ok((spec.compose.clone().unwrap_or_default(), spec.variables.clone()))
}

/// The magic variables of `spec`'s compose file that need a generated value, with what to
/// generate. Variables given in `spec.variables` are not listed.
pub fn needed(spec: &ServiceSpec) -> Result<Vec<(String, Magic)>, Error> {
    let (text, vars) = source(spec)?;
    let tree = yaml::load(&text).map_err(|e| Error::Yaml(e.to_string()))?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in interpolate::references(&tree) {
        let name = r.name;
        if vars.contains_key(&name) || !seen.insert(name.clone()) {
            continue;
        }
        if let Some(m) = magic::classify(&name)
            && generates(&m)
        {
            out.push((name, m));
        }
    }
    Ok(out)
}

/// Whether `m` is a value berth generates and stores (not a URL, not unknown).
fn generates(m: &Magic) -> bool {
    !matches!(m, Magic::Fqdn { .. } | Magic::Url { .. } | Magic::Unknown)
}

/// The Secret a Service's generated values live in.
pub fn generated_secret_name(service: &str) -> String {
    format!("{service}-generated")
}

/// The Service's own Destination (cluster-scoped): `svc-<namespace>-<name>`.
pub fn destination_name(namespace: &str, name: &str) -> String {
    format!("svc-{namespace}-{name}")
}

/// The Docker network of the Service's own Destination.
pub fn network_name(namespace: &str, name: &str) -> String {
    format!("berth-svc-{namespace}-{name}")
}

/// A Service expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct Expansion {
    /// One per compose service, in file order.
    pub members: Vec<Member>,
    /// Derived entries of the generated Secret (`<member>.<VAR>`), by key.
    pub secret_env: BTreeMap<String, String>,
    /// What was accepted without effect.
    pub notices: Vec<Notice>,
    /// The template header (catalogue templates and Coolify files).
    pub meta: TemplateMeta,
}

/// One compose service as a child object.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The compose service's name.
    pub service: String,
    /// The child object's name (`<service>-<member>`).
    pub object: String,
    /// The child.
    pub child: Child,
    /// What must be up before the child is created.
    pub depends_on: Vec<Dependency>,
    /// Left out of the Service's readiness.
    pub excluded: bool,
    /// The URLs it is served at.
    pub urls: Vec<String>,
}

/// The child object of a member.
#[derive(Debug, Clone, PartialEq)]
pub enum Child {
    /// An Application.
    Application(Box<ApplicationSpec>),
    /// A Database, with the login Secret berth uses for probes and backups.
    Database {
        /// The spec.
        spec: Box<DatabaseSpec>,
        /// The login Secret's name.
        login_secret: String,
        /// Its data (`username`, `password`, `database`).
        login: BTreeMap<String, String>,
    },
}

impl Child {
    /// The child's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Child::Application(_) => ApplicationSpec::KIND,
            Child::Database { .. } => DatabaseSpec::KIND,
        }
    }
}

/// Marks a secret value during interpolation so the mapping can tell which strings hold
/// one. U+0001 does not occur in compose files (YAML forbids it in plain text).
const MARK: char = '\u{1}';

/// Expands `input`.
pub fn expand(input: Input<'_>) -> Result<Expansion, Error> {
    let (text, vars) = source(input.spec)?;
    let mut tree = yaml::load(&text).map_err(|e| Error::Yaml(e.to_string()))?;
    let meta = TemplateMeta::from_header(&text);
    let declarations = magic::declarations(&tree);
    let names: Vec<String> = compose_service_names(&tree);
    let urls = urls::Urls::new(&input, &declarations, &names, meta.port)?;

    let lookup = |name: &str| -> Option<String> {
        if let Some(v) = vars.get(name) {
            return Some(v.clone());
        }
        if let Some(v) = urls.value(name) {
            return Some(v);
        }
        if let Some(svc) = name.strip_prefix("SERVICE_NAME_") {
            return names
                .iter()
                .find(|n| magic::service_name_var(n) == format!("SERVICE_NAME_{svc}"))
                .cloned();
        }
        match magic::classify(name) {
            Some(m) if generates(&m) => input
                .generated
                .get(name)
                .map(|v| format!("{MARK}{name}{MARK}{v}{MARK}")),
            Some(_) => Some(String::new()),
            None => None,
        }
    };
    interpolate::apply(&mut tree, &lookup)
        .map_err(|errs| Error::Interpolation(errs.iter().map(ToString::to_string).collect()))?;
    let mut file = ComposeFile::from_value(&tree).map_err(Error::Refused)?;
    file.meta = meta;

    let ctx = Context {
        input,
        file: &file,
        urls: &urls,
    };
    let mut members = Vec::new();
    let mut secret_env = BTreeMap::new();
    let mut notices = file.notices.clone();
    let mut objects = BTreeSet::new();
    for svc in &file.services {
        let object = object_name(input.name, &svc.name).ok_or_else(|| Error::Member {
            service: svc.name.clone(),
            message: format!(
                "the child name {:?} is not a DNS-1123 label of at most 63 characters: shorten the Service or compose service name",
                format!("{}-{}", input.name, svc.name)
            ),
        })?;
        if !objects.insert(object.clone()) {
            return Err(Error::Member {
                service: svc.name.clone(),
                message: format!("its child name {object:?} is taken by another compose service"),
            });
        }
        let member = match database::try_database(&ctx, svc, &object, &mut secret_env, &mut notices)? {
            Some(m) => m,
            None => application::application(&ctx, svc, &object, &mut secret_env, &mut notices)?,
        };
        validate(&member)?;
        members.push(member);
    }
    Ok(Expansion {
        members,
        secret_env,
        notices,
        meta: file.meta.clone(),
    })
}

/// What the per-kind mappings share.
pub(crate) struct Context<'a> {
    pub(crate) input: Input<'a>,
    pub(crate) file: &'a ComposeFile,
    pub(crate) urls: &'a urls::Urls,
}

impl Context<'_> {
    /// The Service's own Destination.
    pub(crate) fn destination(&self) -> String {
        destination_name(self.input.namespace, self.input.name)
    }

    /// The Docker name of compose volume `key`: its top-level `name:`, else
    /// `<namespace>-<service>_<key>` (docker compose's `<project>_<key>`).
    pub(crate) fn volume_name(&self, key: &str) -> (String, bool) {
        match self.file.volumes.get(key) {
            Some(top) if top.name.is_some() => (top.name.clone().unwrap_or_default(), top.external),
            Some(top) if top.external => (key.to_owned(), true),
            _ => (
                format!("{}-{}_{}", self.input.namespace, self.input.name, volume_key(key)),
                false,
            ),
        }
    }

    /// A notice when the volume `key` of `svc` (its `volumes[index]`) had to be renamed to
    /// make a Docker name (`memos/`, `data/config`).
    pub(crate) fn renamed(
        &self,
        svc: &ComposeService,
        index: usize,
        key: &str,
        name: &str,
    ) -> Option<Notice> {
        (volume_key(key) != key).then(|| Notice {
            service: svc.name.clone(),
            key: format!("volumes[{index}]"),
            message: format!(
                "the volume {key:?} is named {name:?}: Docker volume names hold only letters, digits, '_', '.' and '-'"
            ),
        })
    }

    /// Where a relative bind source of this Service lives on the server.
    pub(crate) fn bind_root(&self) -> Option<PathBuf> {
        self.input.host_root.map(|r| {
            r.join("services")
                .join(self.input.namespace)
                .join(self.input.name)
        })
    }
}

/// A compose volume key made a Docker name: a trailing `/` dropped, other characters
/// Docker does not allow (a `/` of a sub-path) made `-`.
fn volume_key(key: &str) -> String {
    key.trim_end_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Splits `value` into plain text and the secret variables it holds (by [`MARK`]), and
/// gives the value with the secrets put back.
pub(crate) fn unmark(value: &str) -> (String, bool) {
    if !value.contains(MARK) {
        return (value.to_owned(), false);
    }
    let mut out = String::with_capacity(value.len());
    let mut parts = value.split(MARK);
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    // After the first part the pieces come in threes: name, value, following text.
    let rest: Vec<&str> = parts.collect();
    for chunk in rest.chunks(3) {
        match chunk {
            [_name, secret, text] => {
                out.push_str(secret);
                out.push_str(text);
            }
            other => out.extend(other.iter().copied()),
        }
    }
    (out, true)
}

/// `<service>-<member>` made a DNS-1123 label, if it fits.
pub fn object_name(service: &str, member: &str) -> Option<String> {
    let mut s: String = member
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let name = format!("{service}-{}", s.trim_matches('-'));
    berth_crds::rules::dns1123_label(&name).is_ok().then_some(name)
}

fn compose_service_names(tree: &Value) -> Vec<String> {
    tree.get("services")
        .and_then(Value::as_mapping)
        .map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn validate(member: &Member) -> Result<(), Error> {
    let mut errors = Vec::new();
    match &member.child {
        Child::Application(spec) => spec.validate(&mut errors),
        Child::Database { spec, .. } => spec.validate(&mut errors),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid {
            service: member.service.clone(),
            kind: member.child.kind(),
            errors,
        })
    }
}
