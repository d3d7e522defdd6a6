//! Observing a Proxy's world: the Applications routed through it (caches and their
//! basic-auth Secrets), the Traefik container (Docker) and what Traefik has live (its API).
//!
//! # Guarantees
//! - Reads only: nothing here changes Docker, Traefik or the API, and nothing is decided
//!   beyond what can be read (Traefik's API is asked whenever the container has an address).
//! - An Application being deleted, or whose Destination is being deleted, is not routed and
//!   does not make its network wanted, so the proxy lets go of a Destination's network
//!   before the Destination's finalizer removes it; the network still counts as berth's
//!   ([`Networks::berth`]) until the Destination is gone.
//!
//! # Caveats
//! - Basic-auth Secrets are read through the API on each observation, not from a cache.

use std::collections::BTreeSet;

use berth_crds::kinds::application::Protocol;

use super::{
    API_PORT, DEFAULT_NETWORK, Error, ProxyReconciler, decide::Networks, has_domains, render, traefik,
};
use crate::{
    docker::{self, label},
    object::ObjectRef,
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
        .get(DEFAULT_NETWORK)
        .or_else(|| state.ips.values().next())
        .map(|ip| format!("http://{ip}:{API_PORT}"))
}

impl ProxyReconciler {
    /// Reads the Applications on `server` as the renderer needs them, their networks and
    /// the networks of every Destination on `server`.
    pub(super) async fn gather(&self, server: &str) -> (Vec<render::App>, Networks) {
        let mut apps = Vec::new();
        let mut networks = Networks {
            wanted: BTreeSet::new(),
            berth: self
                .destinations
                .list()
                .iter()
                .filter(|d| d.spec.server == server)
                .map(|d| d.spec.network.clone())
                .collect(),
        };
        for app in self.apps.list() {
            if app.is_deleting() || !has_domains(&app) {
                continue;
            }
            let Some(dest) = self.destinations.get(&ObjectRef::cluster(&app.spec.destination)) else {
                continue;
            };
            if dest.spec.server != server || dest.is_deleting() {
                continue;
            }
            let (ns, name) = (app.namespace().unwrap_or_default(), app.name());
            let spec = &app.spec;
            networks.wanted.insert(dest.spec.network.clone());
            let mut auth = Vec::new();
            for domain in &spec.domains {
                auth.push(match &domain.basic_auth_secret_ref {
                    None => render::Auth::None,
                    Some(r) => match self.secrets.within(Some(ns)).get(&r.name).await {
                        Ok(secret) => match secret.spec.data.get(&r.key) {
                            Some(v) => render::Auth::Users(v.clone()),
                            None => render::Auth::Unavailable(format!(
                                "secret {:?} has no key {:?}",
                                r.name, r.key
                            )),
                        },
                        Err(e) => render::Auth::Unavailable(format!("secret {:?}: {e}", r.name)),
                    },
                });
            }
            let containers = app
                .status
                .as_ref()
                .map(|status| {
                    status
                        .containers
                        .iter()
                        .filter(|c| c.ready)
                        .map(|c| c.name.clone())
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
                domains: spec.domains.clone(),
                auth,
                containers,
            });
        }
        (apps, networks)
    }

    /// Reads container `name` from Docker, if it exists (a standby Proxy's only look).
    pub(super) async fn observe_container(&self, name: &str) -> Result<Option<ContainerObs>, Error> {
        match self.docker.inspect_container(name).await {
            Ok(state) => Ok(Some(container_obs(&state))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
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
            container: Some(container_obs(&state)),
            traefik,
            after_container_steps,
        })
    }
}

/// The container as the decide step needs it.
fn container_obs(state: &docker::ContainerState) -> ContainerObs {
    ContainerObs {
        name: state.name.clone(),
        id: state.id.clone(),
        image: state.image.clone(),
        config_hash: state.labels.get(label::CONFIG_HASH).cloned(),
        running: state.running,
        networks: state.ips.keys().cloned().collect(),
    }
}
