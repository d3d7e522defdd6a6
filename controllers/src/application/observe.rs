//! The observe step of an Application reconcile: reads Docker (the app's containers, an
//! inspect of each desired replica that exists) and the Proxy cache into [`Observed`], a
//! plain struct that [`super::decide`] turns into a plan.
//!
//! # Guarantees
//! - Observe decides nothing and changes nothing: it lists, inspects and reads caches.
//! - After act ran the steps of the first round, [`AppReconciler::refresh`] inspects again
//!   exactly the containers act created or started (as the reconcile always did), and reads
//!   the Proxy cache again, so the second round decides on fresh state.
//! - Routes are judged by the Proxy serving the app's server only (the oldest of those
//!   naming it, [`crate::proxy::serving_proxy`]): a second Proxy standing by never holds an
//!   app back.
//!
//! # Caveats
//! - A container removed between the listing and its inspect counts as absent (and is
//!   created again); one removed between act and the refresh fails the reconcile, which
//!   retries with backoff.

use berth_crds::kinds::ApplicationSpec;
use chrono::{DateTime, Utc};

use super::{AppReconciler, Error, plan};
use crate::docker::{ContainerSpec, ContainerState, ContainerSummary, Docker, Health, Labels, label};

/// What Docker says about one container of the app, as the decide step needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaState {
    /// Whether its main process runs.
    pub running: bool,
    /// Whether it was created and never started.
    pub created: bool,
    /// Exit code of its last run, once it exited.
    pub exit_code: Option<i64>,
    /// Health, when it has a health check.
    pub health: Option<Health>,
    /// When it last started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it last exited.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its config-hash label (the full container spec's hash).
    pub config_hash: Option<String>,
    /// Its owner-UID label.
    pub uid: Option<String>,
    /// Its DNS aliases on the destination network.
    pub aliases: Vec<String>,
    /// The image reference it was created from.
    pub image: String,
    /// The local image ID.
    pub image_id: String,
}

impl ReplicaState {
    /// The state of an inspected container; `network` is the destination network.
    pub fn from_docker(s: &ContainerState, network: &str) -> Self {
        Self {
            running: s.running,
            created: s.is_created(),
            exit_code: s.exit_code,
            health: s.health,
            started_at: parse_time(s.started_at.as_deref()),
            finished_at: parse_time(s.finished_at.as_deref()),
            config_hash: s.labels.get(label::CONFIG_HASH).cloned(),
            uid: s.labels.get(label::UID).cloned(),
            aliases: s.aliases.get(network).cloned().unwrap_or_default(),
            image: s.image.clone(),
            image_id: s.image_id.clone(),
        }
    }
}

/// One desired replica: the container it should be, and what Docker says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    /// The container it should be ([`plan::replica`]).
    pub spec: ContainerSpec,
    /// The replica index.
    pub index: u32,
    /// Docker's state of the container of that name; `None` when there is none.
    pub state: Option<ReplicaState>,
}

/// A container of the app that is not a desired replica (another config, or a replica
/// index beyond `spec.replicas`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OldContainer {
    /// Docker's ID.
    pub id: String,
    /// The container name.
    pub name: String,
    /// Its replica label (0 when unreadable).
    pub replica: u32,
    /// Its app-hash label.
    pub config_hash: String,
    /// Whether its main process runs.
    pub running: bool,
}

impl OldContainer {
    fn from_summary(c: &ContainerSummary) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            replica: c
                .labels
                .get(label::REPLICA)
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            config_hash: c.labels.get(plan::APP_HASH).cloned().unwrap_or_default(),
            running: c.is_running(),
        }
    }
}

/// Everything the decide step reads about the app's containers and routes.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The desired replicas, in index order.
    pub replicas: Vec<Replica>,
    /// The app's other containers.
    pub olds: Vec<OldContainer>,
    /// Whether any container of the app (desired or old) runs.
    pub anything_runs: bool,
    /// Whether the server's Proxy routes the app to exactly the desired replicas (or need
    /// not: no domains, or no Proxy on the server).
    pub proxy_serves: bool,
}

/// Where the app's containers live: the Docker endpoint and the names that select them.
pub(super) struct Target<'a> {
    /// The destination's Docker endpoint.
    pub docker: &'a Docker,
    /// The app's namespace.
    pub ns: &'a str,
    /// The app's name.
    pub name: &'a str,
    /// The destination's network.
    pub network: &'a str,
    /// The destination's server.
    pub server: &'a str,
}

fn parse_time(t: Option<&str>) -> Option<DateTime<Utc>> {
    t.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

impl AppReconciler {
    /// The labels that select the app's containers.
    pub(super) fn owner_selector(&self, ns: &str, name: &str) -> Labels {
        self.dockers.scoped(Labels::from([
            (label::MANAGED.to_string(), "true".to_string()),
            (label::KIND.to_string(), "Application".to_string()),
            (label::NAMESPACE.to_string(), ns.to_string()),
            (label::NAME.to_string(), name.to_string()),
        ]))
    }

    /// Lists the app's containers and inspects each of the `count` desired replicas of
    /// `template` that exists.
    pub(super) async fn observe(
        &self,
        at: &Target<'_>,
        spec: &ApplicationSpec,
        template: &ContainerSpec,
        hash: &str,
    ) -> Result<Observed, Error> {
        let listed = at
            .docker
            .list_containers(&self.owner_selector(at.ns, at.name))
            .await?;
        let mut replicas = Vec::new();
        for index in 0..spec.replicas {
            let spec = plan::replica(template, hash, index);
            let state = if listed.iter().any(|c| c.name == spec.name) {
                match at.docker.inspect_container(&spec.name).await {
                    Ok(s) => Some(ReplicaState::from_docker(&s, at.network)),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(e.into()),
                }
            } else {
                None
            };
            replicas.push(Replica { spec, index, state });
        }
        let olds = listed
            .iter()
            .filter(|c| !replicas.iter().any(|r| r.spec.name == c.name))
            .map(OldContainer::from_summary)
            .collect();
        let mut observed = Observed {
            replicas,
            olds,
            anything_runs: listed.iter().any(ContainerSummary::is_running),
            proxy_serves: false,
        };
        observed.proxy_serves = self.proxy_serves(spec, at, &observed);
        Ok(observed)
    }

    /// Inspects again the replicas named in `touched` (created or started by act) and
    /// reads the Proxy cache again.
    pub(super) async fn refresh(
        &self,
        at: &Target<'_>,
        spec: &ApplicationSpec,
        observed: &mut Observed,
        touched: &[String],
    ) -> Result<(), Error> {
        for r in &mut observed.replicas {
            if touched.contains(&r.spec.name) {
                let s = at.docker.inspect_container(&r.spec.name).await?;
                r.state = Some(ReplicaState::from_docker(&s, at.network));
            }
        }
        observed.proxy_serves = self.proxy_serves(spec, at, observed);
        Ok(())
    }

    /// Whether the server's Proxy routes the app to exactly its desired replicas (or need
    /// not). Of several Proxies naming the server, only the one serving it counts
    /// ([`crate::proxy::serving_proxy`]): the others stand by and route nothing.
    fn proxy_serves(&self, spec: &ApplicationSpec, at: &Target<'_>, observed: &Observed) -> bool {
        if spec.domains.is_empty() {
            return true;
        }
        let Some(proxy) = crate::proxy::serving_proxy(&self.proxies.list(), at.server) else {
            return true;
        };
        let key = format!("{}/{}", at.ns, at.name);
        let served: Vec<&str> = proxy
            .status
            .as_ref()
            .and_then(|s| s.backends.get(&key))
            .map(|a| a.iter().map(String::as_str).collect())
            .unwrap_or_default();
        served.len() == observed.replicas.len()
            && observed
                .replicas
                .iter()
                .all(|r| served.contains(&r.spec.name.as_str()))
    }
}
