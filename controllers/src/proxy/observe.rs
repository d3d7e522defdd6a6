//! Observing a Proxy's world: the Applications routed through it (caches and their
//! basic-auth Secrets), the Traefik container (Docker) and what Traefik has live (its API).
//!
//! # Guarantees
//! - Reads only: nothing here changes Docker, Traefik or the API, and nothing is decided
//!   beyond what can be read (Traefik's API is asked whenever the container has an address).
//!
//! # Caveats
//! - Basic-auth Secrets are read through the API on each observation, not from a cache.

use std::collections::BTreeSet;

use berth_crds::kinds::{ApplicationSpec, application::Protocol};
use serde_json::Value;

use super::{API_PORT, Error, ProxyReconciler, has_domains, render, str_at, traefik};
use crate::{
    docker::{self, label},
    object::{self, ObjectRef},
};

/// The Traefik container as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerObs {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// The image it was created from.
    pub image: String,
    /// The config hash it was created with, if labelled.
    pub config_hash: Option<String>,
    /// Whether it runs.
    pub running: bool,
    /// Networks it is attached to.
    pub networks: BTreeSet<String>,
}

/// What Traefik's API said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraefikObs {
    /// Not asked: the container has no network address (or does not exist).
    NoAddress,
    /// The API did not answer (Traefik starting, timeout...).
    Unreachable(String),
    /// What Traefik has live.
    Live(traefik::Live),
}

/// One observation of a Proxy's container and Traefik.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The Traefik container, if it exists.
    pub container: Option<ContainerObs>,
    /// What Traefik has live.
    pub traefik: TraefikObs,
    /// Whether this observation follows container steps of the same reconcile: the
    /// container is then taken as it is.
    pub after_container_steps: bool,
}

/// The address Traefik's API is reached on: the bridge network's, else any.
fn api_address(state: &docker::ContainerState) -> Option<String> {
    state
        .ips
        .get("bridge")
        .or_else(|| state.ips.values().next())
        .map(|ip| format!("http://{ip}:{API_PORT}"))
}

impl ProxyReconciler {
    /// Reads the Applications on `server` as the renderer needs them, and their networks.
    pub(super) async fn gather(&self, server: &str) -> (Vec<render::App>, BTreeSet<String>) {
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

    /// Reads container `name` from Docker and, when it has an address, what Traefik has
    /// live from its API.
    pub(super) async fn observe(&self, name: &str, after_container_steps: bool) -> Result<Observed, Error> {
        let state = match self.docker.inspect_container(name).await {
            Ok(state) => state,
            Err(e) if e.is_not_found() => {
                return Ok(Observed {
                    container: None,
                    traefik: TraefikObs::NoAddress,
                    after_container_steps,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let traefik = match api_address(&state) {
            None => TraefikObs::NoAddress,
            Some(base) => match traefik::live(&self.http, &base).await {
                Ok(live) => TraefikObs::Live(live),
                Err(e) => {
                    tracing::debug!(container = name, error = %e, "traefik api not answering yet");
                    TraefikObs::Unreachable(e.to_string())
                }
            },
        };
        Ok(Observed {
            container: Some(ContainerObs {
                name: state.name.clone(),
                id: state.id.clone(),
                image: state.image.clone(),
                config_hash: state.labels.get(label::CONFIG_HASH).cloned(),
                running: state.running,
                networks: state.ips.keys().cloned().collect(),
            }),
            traefik,
            after_container_steps,
        })
    }
}
