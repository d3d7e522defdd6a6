//! The Proxy controller: runs Traefik for a Server and keeps its routes in step with the
//! Applications' domains.
//!
//! Each reconcile reads the Applications on the proxy's server (through their Destination),
//! renders Traefik's dynamic configuration ([`render`]), makes sure the Traefik container
//! runs (static configuration as CLI arguments, ports published, attached to every
//! destination network with routed apps), uploads the configuration into the container's
//! watched directory when Traefik does not have it live yet, and reads Traefik's API
//! ([`traefik`]) to verify it before reporting it. A second controller
//! ([`install_autocreate`]) creates a Proxy named after the server when the first
//! Application with a domain lands on a server without one.
//!
//! # Guarantees
//! - Level-triggered, no memory: what Traefik has live is read back from its API (a marker
//!   middleware names the slot and revision), so a restart of berth or of Traefik converges.
//! - Never a half or missing configuration: the watched directory holds two slots,
//!   `a.yml` and `b.yml`; a new revision is written whole into the slot not in use and the
//!   other slot is emptied afterwards, so at every instant each route resolves to its old
//!   or its new definition (Traefik keeps the first definition of a duplicate name).
//! - `status.backends` (`<namespace>/<app>` → containers routed) is written only once the
//!   revision holding them is the only one live in Traefik; `Ready` likewise.
//! - Deletion: the finalizer removes the Traefik container.
//! - Drift: Docker events on the Traefik container (die, stop, destroy...) trigger a
//!   reconcile at once, which restarts or recreates it and uploads the routes again.
//!
//! # Caveats
//! - Basic-auth Secrets are read on each reconcile; a Secret change is picked up at the
//!   next reconcile (at most [`RESYNC`] later), not at once.
//! - ACME certificates live in the container (`/berth/acme.json`): recreating the
//!   container (image or port change) requests them again.
//! - Networks no longer needed are not disconnected.

pub mod render;
pub mod traefik;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use berth_crds::{
    kinds::{ApplicationSpec, ProxySpec, application::Protocol, proxy::ProxyStatus},
    meta::ConditionStatus,
    registry::KindInfo,
};
use bytes::Bytes;
use futures::{
    StreamExt,
    stream::{self, BoxStream},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    client::{self, Client},
    controller::{Action, Controller, ControllerConfig, Reconciler},
    docker::{self, ContainerSpec, Docker, Labels, Owner, PortSpec, RestartPolicy, label},
    finalizer::{self, Event},
    informer::Informer,
    manager::Manager,
    object::{self, ObjectRef},
    status,
};

/// The controller's name (metrics, logs).
pub const NAME: &str = "proxy";
/// The auto-creating controller's name.
pub const AUTOCREATE_NAME: &str = "proxy-autocreate";
/// The finalizer that removes the Traefik container.
pub const FINALIZER: &str = "berth.dev/proxy-container";
/// The Proxy informer's index of `spec.server`.
pub const SERVER_INDEX: &str = "server";
/// The directory Traefik's file provider watches.
pub const DYNAMIC_DIR: &str = "/berth/dynamic";
/// Port of Traefik's internal entrypoint (API, ping), never published.
pub const API_PORT: u16 = 8080;
/// How often a settled proxy is reconciled anyway (Secrets, drift).
pub const RESYNC: Duration = Duration::from_secs(30);
/// How soon a proxy whose configuration is not live yet is looked at again.
const VERIFY_AGAIN: Duration = Duration::from_millis(100);
/// Pause before resubscribing to Docker events (missed events are caught by [`RESYNC`]).
const EVENTS_RETRY: Duration = Duration::from_secs(1);
/// Label holding the hash of files uploaded at creation (CA certificates).
const FILES_HASH: &str = "dev.berth.proxy-files";

/// A failed Proxy reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kind berth needs is not registered.
    #[error("kind {0} is not registered")]
    MissingKind(&'static str),
    /// The cached object does not parse as its kind.
    #[error("{kind} {name:?} is malformed: {source}")]
    Malformed {
        /// The kind.
        kind: &'static str,
        /// The object.
        name: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A Docker call failed.
    #[error("docker: {0}")]
    Docker(#[from] docker::Error),
    /// The configuration could not be serialized.
    #[error("rendering the configuration: {0}")]
    Render(#[from] serde_yaml::Error),
    /// An archive could not be built.
    #[error("building the upload archive: {0}")]
    Archive(#[from] std::io::Error),
    /// The container has no address berth can reach its API on.
    #[error("proxy container {0:?} has no network address")]
    NoAddress(String),
    /// An API call failed.
    #[error("api: {0}")]
    Api(#[from] client::Error),
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
}

fn kind(name: &'static str) -> Result<&'static KindInfo, Error> {
    berth_crds::lookup(name).ok_or(Error::MissingKind(name))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The server an Application runs on, through its Destination.
fn app_server(app: &Value, destinations: &Informer) -> Option<String> {
    let dest = str_at(app, "/spec/destination")?;
    let dest = destinations.get(&ObjectRef::cluster(dest))?;
    str_at(&dest, "/spec/server").map(str::to_owned)
}

fn has_domains(app: &Value) -> bool {
    app.pointer("/spec/domains")
        .and_then(Value::as_array)
        .is_some_and(|d| !d.is_empty())
}

/// Adds the Proxy controller to `manager`; it drives containers through `docker`, adding
/// `extra_labels` to each.
pub fn install(
    manager: &mut Manager,
    config: ControllerConfig,
    docker: Docker,
    extra_labels: Labels,
) -> Result<(), Error> {
    let (proxy_kind, app_kind, dest_kind, secret_kind) = (
        kind("Proxy")?,
        kind("Application")?,
        kind("Destination")?,
        kind("Secret")?,
    );
    let proxies = manager.informer(proxy_kind);
    let apps = manager.informer(app_kind);
    let destinations = manager.informer(dest_kind);
    proxies.add_index(SERVER_INDEX, |p| {
        str_at(p, "/spec/server").map(str::to_owned).into_iter().collect()
    });
    let to_proxies = |proxies: Informer, server: Option<String>| -> Vec<ObjectRef> {
        server
            .map(|s| {
                proxies
                    .by_index(SERVER_INDEX, &s)
                    .iter()
                    .map(|p| ObjectRef::of(p))
                    .collect()
            })
            .unwrap_or_default()
    };
    let controller = Controller::new(NAME, proxies.clone())
        .with_config(config)
        .watches(&apps, {
            let (proxies, destinations) = (proxies.clone(), destinations.clone());
            move |app| to_proxies(proxies.clone(), app_server(app, &destinations))
        })
        .watches(&destinations, {
            let proxies = proxies.clone();
            move |dest| to_proxies(proxies.clone(), str_at(dest, "/spec/server").map(str::to_owned))
        })
        .triggers(container_events(docker.clone()));
    let reconciler = ProxyReconciler {
        client: manager.client_for(NAME),
        kind: proxy_kind,
        secret_kind,
        apps,
        destinations,
        docker,
        extra_labels,
        http: reqwest::Client::new(),
    };
    manager.add(controller, reconciler);
    Ok(())
}

/// Proxies whose Traefik container changed (died, stopped, removed...), from Docker's
/// event stream, resubscribing after a pause when the stream ends.
fn container_events(docker: Docker) -> BoxStream<'static, ObjectRef> {
    type Events = BoxStream<'static, docker::Result<docker::Event>>;
    stream::unfold((docker, None::<Events>), |(docker, mut events)| async move {
        loop {
            let current = events.get_or_insert_with(|| docker.events(None));
            match current.next().await {
                Some(Ok(event)) => {
                    if let Some(owner) = event.owner().filter(|o| o.kind == "Proxy") {
                        return Some((ObjectRef::cluster(&owner.name), (docker, events)));
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "docker event stream failed; resubscribing");
                    events = None;
                    tokio::time::sleep(EVENTS_RETRY).await;
                }
                None => {
                    events = None;
                    tokio::time::sleep(EVENTS_RETRY).await;
                }
            }
        }
    })
    .boxed()
}

/// Adds the controller that creates a Proxy (named after the server) when an Application
/// with a domain lands on a server that has none.
pub fn install_autocreate(manager: &mut Manager, config: ControllerConfig) -> Result<(), Error> {
    let (proxy_kind, app_kind, dest_kind) = (kind("Proxy")?, kind("Application")?, kind("Destination")?);
    let apps = manager.informer(app_kind);
    let proxies = manager.informer(proxy_kind);
    let destinations = manager.informer(dest_kind);
    let controller = Controller::new(AUTOCREATE_NAME, apps)
        .with_config(config)
        .watches(&destinations, |_| Vec::new());
    let reconciler = AutoCreate {
        client: manager.client_for(AUTOCREATE_NAME),
        proxy_kind,
        proxies,
        destinations,
    };
    manager.add(controller, reconciler);
    Ok(())
}

/// Creates missing Proxies for Applications with domains.
pub struct AutoCreate {
    client: Arc<dyn Client>,
    proxy_kind: &'static KindInfo,
    proxies: Informer,
    destinations: Informer,
}

#[async_trait::async_trait]
impl Reconciler for AutoCreate {
    type Error = Error;

    async fn reconcile(&self, app: Arc<Value>) -> Result<Action, Error> {
        if object::is_deleting(&app) || !has_domains(&app) {
            return Ok(Action::await_change());
        }
        let Some(server) = app_server(&app, &self.destinations) else {
            // The Destination is not there yet: its arrival does not map back, so look again.
            return Ok(Action::requeue(RESYNC));
        };
        if !self.proxies.by_index(SERVER_INDEX, &server).is_empty() {
            return Ok(Action::await_change());
        }
        let proxy = json!({
            "apiVersion": "berth.dev/v1",
            "kind": "Proxy",
            "metadata": {"name": server},
            "spec": {"server": server},
        });
        match self.client.create(self.proxy_kind, None, proxy).await {
            Ok(_) => tracing::info!(server, app = object::name(&app), "created the server's proxy"),
            Err(client::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Action::await_change())
    }
}

/// Reconciles Proxies.
pub struct ProxyReconciler {
    client: Arc<dyn Client>,
    kind: &'static KindInfo,
    secret_kind: &'static KindInfo,
    apps: Informer,
    destinations: Informer,
    docker: Docker,
    extra_labels: Labels,
    http: reqwest::Client,
}

/// The Traefik container's name for proxy `name`.
pub fn container_name(name: &str) -> String {
    format!("berth-proxy-{name}")
}

/// Traefik's static configuration as CLI arguments.
pub fn static_args(spec: &ProxySpec) -> Vec<String> {
    let mut args = vec![
        "--entrypoints.web.address=:80".to_owned(),
        "--entrypoints.websecure.address=:443".to_owned(),
        format!("--entrypoints.traefik.address=:{API_PORT}"),
        // The API is served on the internal `traefik` entrypoint, which is not published.
        "--api.insecure=true".to_owned(),
        format!("--api.dashboard={}", spec.dashboard),
        "--ping=true".to_owned(),
        format!("--providers.file.directory={DYNAMIC_DIR}"),
        "--providers.file.watch=true".to_owned(),
        "--providers.providersThrottleDuration=100ms".to_owned(),
        "--log.format=json".to_owned(),
    ];
    if let Some(acme) = &spec.acme {
        let r = format!("--certificatesresolvers.{}.acme", render::CERT_RESOLVER);
        args.push(format!("{r}.email={}", acme.email));
        args.push(format!("{r}.caserver={}", acme.ca_server));
        args.push(format!("{r}.storage=/berth/acme.json"));
        args.push(format!("{r}.httpchallenge.entrypoint={}", render::WEB));
    }
    args
}

/// One file of an upload archive.
struct File<'a> {
    path: &'a str,
    content: &'a [u8],
}

/// A tar archive of `dirs` (created first) and `files`.
fn archive(dirs: &[&str], files: &[File<'_>]) -> Result<Bytes, std::io::Error> {
    let mut tar = tar::Builder::new(Vec::new());
    for dir in dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        tar.append_data(&mut header, dir, std::io::empty())?;
    }
    for file in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(file.content.len() as u64);
        tar.append_data(&mut header, file.path, file.content)?;
    }
    Ok(Bytes::from(tar.into_inner()?))
}

fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What to do about the routing configuration, given what Traefik has live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// The wanted revision is the only one live: nothing to upload.
    Live,
    /// Write the wanted revision whole into slot `write`, then empty slot `empty`.
    Write {
        /// The slot not in use.
        write: &'static str,
        /// The slot in use (or a stale one).
        empty: &'static str,
    },
    /// The wanted revision is live next to an older one: Traefik has not caught up with
    /// the emptied slot yet, or emptying it was lost. Empty `slot` (again); never rewrite
    /// the slot holding the wanted revision, which would drop its routes for an instant.
    Empty {
        /// The slot holding the older revision.
        slot: &'static str,
    },
}

/// Plans from the live `(slot, revision)` markers. Slot `a` wins over `b` in Traefik when
/// both define a name, so when the state is unclear (none or both live) the new revision
/// goes to `a`.
fn plan(markers: &[(String, String)], revision: &str) -> Plan {
    match markers {
        [(_, live)] if live == revision => Plan::Live,
        [(slot, _)] if slot == "a" => Plan::Write {
            write: "b",
            empty: "a",
        },
        [(a, ra), (b, rb)] if a != b && (ra == revision) != (rb == revision) => {
            let older = if ra == revision { b } else { a };
            Plan::Empty {
                slot: if older == "a" { "a" } else { "b" },
            }
        }
        _ => Plan::Write {
            write: "a",
            empty: "b",
        },
    }
}

/// What a reconcile found and did, for the status.
struct Outcome {
    running: bool,
    container_id: Option<String>,
    live_revision: Option<String>,
    verified: bool,
    errors: Vec<String>,
    message: String,
}

impl ProxyReconciler {
    /// Reads the Applications on `server` as the renderer needs them, and their networks.
    async fn gather(&self, server: &str) -> (Vec<render::App>, BTreeSet<String>) {
        let mut apps = Vec::new();
        let mut networks = BTreeSet::new();
        for obj in self.apps.list() {
            if object::is_deleting(&obj) || !has_domains(&obj) {
                continue;
            }
            let Some(dest) =
                str_at(&obj, "/spec/destination").and_then(|d| self.destinations.get(&ObjectRef::cluster(d)))
            else {
                continue;
            };
            if str_at(&dest, "/spec/server") != Some(server) {
                continue;
            }
            let (ns, name) = (object::namespace(&obj).unwrap_or_default(), object::name(&obj));
            let spec = match object::typed::<ApplicationSpec>(&obj) {
                Ok(app) => app.spec,
                Err(e) => {
                    tracing::warn!(namespace = ns, app = name, error = %e, "skipping a malformed application");
                    continue;
                }
            };
            if let Some(network) = str_at(&dest, "/spec/network") {
                networks.insert(network.to_owned());
            }
            let mut auth = Vec::new();
            for domain in &spec.domains {
                auth.push(match &domain.basic_auth_secret_ref {
                    None => render::Auth::None,
                    Some(r) => match self.client.get(self.secret_kind, Some(ns), &r.name).await {
                        Ok(secret) => match str_at(
                            &secret,
                            &format!("/spec/data/{}", r.key.replace('~', "~0").replace('/', "~1")),
                        ) {
                            Some(v) => render::Auth::Users(v.to_owned()),
                            None => render::Auth::Unavailable(format!(
                                "secret {:?} has no key {:?}",
                                r.name, r.key
                            )),
                        },
                        Err(e) => render::Auth::Unavailable(format!("secret {:?}: {e}", r.name)),
                    },
                });
            }
            let containers = obj
                .pointer("/status/containers")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                        .filter_map(|c| str_at(c, "/name").map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            apps.push(render::App {
                namespace: ns.to_owned(),
                name: name.to_owned(),
                default_port: spec
                    .ports
                    .iter()
                    .find(|p| p.protocol == Protocol::Tcp)
                    .map(|p| p.container_port),
                domains: spec.domains,
                auth,
                containers,
            });
        }
        (apps, networks)
    }

    fn container_spec(&self, obj: &Value, spec: &ProxySpec) -> ContainerSpec {
        let name = object::name(obj);
        let mut labels = Owner {
            kind: "Proxy".to_owned(),
            namespace: String::new(),
            name: name.to_owned(),
            uid: object::uid(obj).to_owned(),
        }
        .labels();
        labels.extend(self.extra_labels.clone());
        let mut env = std::collections::BTreeMap::new();
        if let Some(pem) = spec.acme.as_ref().and_then(|a| a.ca_certificates.as_ref()) {
            env.insert("LEGO_CA_CERTIFICATES".to_owned(), "/berth/ca.pem".to_owned());
            labels.insert(FILES_HASH.to_owned(), short_hash(pem.as_bytes()));
        }
        let publish = |container_port, host_port| PortSpec {
            container_port,
            protocol: docker::Protocol::Tcp,
            host_port: Some(host_port),
            host_ip: spec.listen_address.clone(),
        };
        ContainerSpec {
            name: container_name(name),
            image: spec.image.clone(),
            args: static_args(spec),
            env,
            labels,
            ports: vec![publish(80, spec.http_port), publish(443, spec.https_port)],
            restart_policy: RestartPolicy::UnlessStopped,
            ..ContainerSpec::default()
        }
    }

    /// Makes sure the Traefik container exists with the current spec and runs; returns its
    /// state.
    async fn ensure_container(&self, obj: &Value, spec: &ProxySpec) -> Result<docker::ContainerState, Error> {
        let want = self.container_spec(obj, spec);
        let hash = want.config_hash();
        match self.docker.inspect_container(&want.name).await {
            Ok(state) if state.labels.get(label::CONFIG_HASH) == Some(&hash) && state.running => {
                return Ok(state);
            }
            Ok(state) if state.labels.get(label::CONFIG_HASH) == Some(&hash) => {
                // Its files survive in the container's writable layer: just start it.
                tracing::info!(container = want.name, "starting the stopped proxy container");
                self.docker.start_container(&want.name).await?;
                return Ok(self.docker.inspect_container(&want.name).await?);
            }
            Ok(_) => {
                tracing::info!(
                    container = want.name,
                    "proxy spec changed: recreating its container"
                );
                self.docker.remove_container(&want.name).await?;
                self.docker.create_container(&want).await?;
            }
            Err(e) if e.is_not_found() => {
                self.docker.create_container(&want).await?;
            }
            Err(e) => return Err(e.into()),
        }
        // Traefik must find its watched directory at start: lay it out, with both slots empty.
        let pem = spec.acme.as_ref().and_then(|a| a.ca_certificates.as_deref());
        let mut files = vec![
            File {
                path: "berth/dynamic/a.yml",
                content: b"",
            },
            File {
                path: "berth/dynamic/b.yml",
                content: b"",
            },
        ];
        if let Some(pem) = pem {
            files.push(File {
                path: "berth/ca.pem",
                content: pem.as_bytes(),
            });
        }
        let tar = archive(&["berth", "berth/dynamic"], &files)?;
        self.docker.upload(&want.name, "/", tar).await?;
        self.docker.start_container(&want.name).await?;
        Ok(self.docker.inspect_container(&want.name).await?)
    }

    async fn apply(&self, obj: &Value) -> Result<Action, Error> {
        let name = object::name(obj);
        let proxy = object::typed::<ProxySpec>(obj).map_err(|source| Error::Malformed {
            kind: "Proxy",
            name: name.to_owned(),
            source,
        })?;
        let spec = proxy.spec;
        let old = proxy.status.unwrap_or_default();
        let (apps, networks) = self.gather(&spec.server).await;
        let rendered = render::render(
            &apps,
            &render::Settings {
                acme: spec.acme.is_some(),
                https_port: spec.https_port,
            },
        );
        let revision = render::revision(&rendered.config)?;
        let state = self.ensure_container(obj, &spec).await?;
        for network in &networks {
            if !state.ips.contains_key(network) {
                tracing::info!(
                    proxy = name,
                    network,
                    "attaching the proxy to a destination network"
                );
                self.docker.connect_network(network, &state.name, &[]).await?;
            }
        }
        let address = state
            .ips
            .get("bridge")
            .or_else(|| state.ips.values().next())
            .ok_or_else(|| Error::NoAddress(state.name.clone()))?;
        let base = format!("http://{address}:{API_PORT}");
        let mut outcome = Outcome {
            running: state.running,
            container_id: Some(state.id.clone()),
            live_revision: old.revision.clone(),
            verified: false,
            errors: rendered
                .issues
                .iter()
                .map(|i| format!("{}: {}", i.app, i.message))
                .collect(),
            message: String::new(),
        };
        let action = match traefik::live(&self.http, &base).await {
            Err(e) => {
                tracing::debug!(proxy = name, error = %e, "traefik api not answering yet");
                outcome.message = format!("waiting for traefik's api: {e}");
                Action::requeue(Duration::from_millis(250))
            }
            Ok(live) => {
                outcome.live_revision = match live.markers.as_slice() {
                    [(_, rev)] => Some(rev.clone()),
                    _ => outcome.live_revision,
                };
                let (write, empty) = match plan(&live.markers, &revision) {
                    Plan::Live => (None, None),
                    Plan::Write { write, empty } => (Some(write), Some(empty)),
                    Plan::Empty { slot } => (None, Some(slot)),
                };
                if let Some(empty) = empty {
                    let yaml = match write {
                        Some(slot) => render::to_yaml(&rendered.config, slot, &revision)?,
                        None => String::new(),
                    };
                    let write_path = write.map(|slot| format!("{slot}.yml"));
                    let empty_path = format!("{empty}.yml");
                    let mut files = Vec::new();
                    if let Some(path) = &write_path {
                        files.push(File {
                            path,
                            content: yaml.as_bytes(),
                        });
                    }
                    files.push(File {
                        path: &empty_path,
                        content: b"",
                    });
                    self.docker
                        .upload(&state.name, DYNAMIC_DIR, archive(&[], &files)?)
                        .await?;
                    tracing::info!(
                        proxy = name,
                        revision,
                        slot = write.unwrap_or("-"),
                        emptied = empty,
                        routes = rendered.routes,
                        "uploaded routing configuration"
                    );
                    outcome.message = format!("waiting for traefik to load revision {revision}");
                    Action::requeue(VERIFY_AGAIN)
                } else {
                    outcome.verified = true;
                    outcome.errors.extend(live.errors);
                    outcome.message = format!("{} routes live at revision {revision}", rendered.routes);
                    Action::requeue(RESYNC)
                }
            }
        };
        self.write_status(obj, old, &rendered, outcome).await?;
        Ok(action)
    }

    async fn write_status(
        &self,
        obj: &Value,
        old: ProxyStatus,
        rendered: &render::Rendered,
        outcome: Outcome,
    ) -> Result<(), Error> {
        let generation = object::generation(obj);
        let mut next = ProxyStatus {
            observed_generation: Some(generation),
            conditions: old.conditions.clone(),
            container_id: outcome.container_id,
            routes: old.routes,
            revision: outcome.live_revision,
            errors: old.errors.clone(),
            backends: old.backends.clone(),
        };
        let now = status::now();
        let running = if outcome.running {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        };
        status::set_condition(
            &mut next.conditions,
            "Running",
            running,
            "Container",
            "",
            generation,
            now,
        );
        if outcome.verified {
            next.routes = Some(rendered.routes);
            next.backends = rendered.backends.clone();
            next.errors = outcome.errors;
            let traefik_errors = next.errors.len() - rendered.issues.len();
            let (s, reason) = if traefik_errors > 0 {
                (ConditionStatus::False, "ConfigErrors")
            } else {
                (ConditionStatus::True, "ConfigLive")
            };
            status::set_condition(
                &mut next.conditions,
                "Ready",
                s,
                reason,
                &outcome.message,
                generation,
                now,
            );
        } else {
            status::set_condition(
                &mut next.conditions,
                "Ready",
                ConditionStatus::False,
                "ConfigPending",
                &outcome.message,
                generation,
                now,
            );
        }
        status::update::<ProxySpec>(self.client.as_ref(), self.kind, obj, &next).await?;
        Ok(())
    }

    async fn cleanup(&self, obj: &Value) -> Result<Action, Error> {
        let container = container_name(object::name(obj));
        match self.docker.remove_container(&container).await {
            Ok(()) => tracing::info!(container, "removed the proxy container"),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Action::await_change())
    }
}

#[async_trait::async_trait]
impl Reconciler for ProxyReconciler {
    type Error = Error;

    async fn reconcile(&self, obj: Arc<Value>) -> Result<Action, Error> {
        finalizer::finalizer(
            self.client.as_ref(),
            self.kind,
            FINALIZER,
            obj,
            |event| async move {
                match event {
                    Event::Apply(obj) => self.apply(&obj).await,
                    Event::Cleanup(obj) => self.cleanup(&obj).await,
                }
            },
        )
        .await
        .map_err(|e| Error::Finalizer(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_crds::kinds::proxy::Acme;

    fn spec() -> ProxySpec {
        serde_json::from_value(json!({"server": "localhost"})).unwrap()
    }

    #[test]
    fn static_args_keep_the_api_internal_and_configure_acme() {
        let mut s = spec();
        assert!(
            static_args(&s)
                .iter()
                .all(|a| !a.contains("certificatesresolvers"))
        );
        assert!(static_args(&s).contains(&"--api.dashboard=false".to_owned()));
        s.acme = Some(Acme {
            email: "ops@example.com".into(),
            ca_server: "https://127.0.0.1:14000/dir".into(),
            ca_certificates: None,
        });
        s.dashboard = true;
        let args = static_args(&s);
        assert!(args.contains(&"--certificatesresolvers.acme.acme.email=ops@example.com".to_owned()));
        assert!(
            args.contains(
                &"--certificatesresolvers.acme.acme.caserver=https://127.0.0.1:14000/dir".to_owned()
            )
        );
        assert!(args.contains(&"--certificatesresolvers.acme.acme.httpchallenge.entrypoint=web".to_owned()));
        assert!(args.contains(&"--api.dashboard=true".to_owned()));
    }

    #[test]
    fn the_plan_writes_the_idle_slot_and_stops_once_live() {
        let m = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(s, r)| (s.to_string(), r.to_string())).collect()
        };
        assert_eq!(
            plan(&m(&[]), "r2"),
            Plan::Write {
                write: "a",
                empty: "b"
            }
        );
        assert_eq!(
            plan(&m(&[("a", "r1")]), "r2"),
            Plan::Write {
                write: "b",
                empty: "a"
            }
        );
        assert_eq!(
            plan(&m(&[("b", "r1")]), "r2"),
            Plan::Write {
                write: "a",
                empty: "b"
            }
        );
        assert_eq!(plan(&m(&[("b", "r2")]), "r2"), Plan::Live);
        // Mid-switch (both slots live, one with the wanted revision): only the older slot
        // is emptied (again); the wanted one is never rewritten.
        assert_eq!(
            plan(&m(&[("a", "r2"), ("b", "r1")]), "r2"),
            Plan::Empty { slot: "b" }
        );
        assert_eq!(
            plan(&m(&[("a", "r1"), ("b", "r2")]), "r2"),
            Plan::Empty { slot: "a" }
        );
        // Both live, neither wanted (a crash between uploads): start over in `a`.
        assert_eq!(
            plan(&m(&[("a", "r1"), ("b", "r0")]), "r2"),
            Plan::Write {
                write: "a",
                empty: "b"
            }
        );
    }

    #[test]
    fn archives_hold_directories_then_files() {
        let tar = archive(
            &["berth"],
            &[File {
                path: "berth/a.yml",
                content: b"x: 1\n",
            }],
        )
        .unwrap();
        let mut a = tar::Archive::new(tar.as_ref());
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["berth", "berth/a.yml"]);
    }
}
