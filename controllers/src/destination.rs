//! The Destination controller: keeps each Destination's Docker network on its server.
//!
//! # Guarantees
//! - The network exists (created with the `dev.berth.*` owner labels and the scope labels)
//!   while the Destination does; status has `networkId` and `Ready`.
//! - Deletion (finalizer `berth.dev/destination`) removes the network once no container is
//!   attached to it any more; until then it checks again every [`IN_USE_RECHECK`] (a wait,
//!   not a failure: no growing backoff), and whenever an Application on it changes or goes
//!   away (while the Destination is live, Application changes do not trigger it). A network
//!   that never existed, or a server that is gone, does not block deletion.
//!
//! # Caveats
//! - A network that exists under the name but was not created by berth is used as is and
//!   removed on deletion like berth's own.

use std::sync::Arc;

use berth_crds::{
    Object,
    kinds::{ApplicationSpec, DestinationSpec},
    meta::ConditionStatus,
};

use crate::{
    controller::{Action, Controller, ControllerConfig},
    docker::{self, Owner},
    dockers::{self, Dockers},
    finalizer::{Finalize, Finalized},
    manager::Manager,
    object::ObjectRef,
    status,
};
use berth_runtime::Api;

/// The controller's name (metrics, logs).
pub const NAME: &str = "destination";
/// The finalizer that removes the network.
pub const FINALIZER: &str = "berth.dev/destination";
/// How often a Destination being deleted looks again at a network that is still in use.
///
/// Docker may report "active endpoints" for a moment after the last container went away,
/// and containers of other tools may hold the network for a while: neither is an error
/// that should grow the retry delay to minutes.
pub const IN_USE_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// A failed Destination reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be used.
    #[error(transparent)]
    Server(#[from] dockers::Error),
    /// A Docker call failed.
    #[error("docker: {0}")]
    Docker(#[from] docker::Error),
    /// Containers are still attached to the network being removed.
    #[error("network {network:?} still has {count} container(s) attached")]
    InUse {
        /// The network.
        network: String,
        /// How many containers.
        count: usize,
    },
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
}

/// Reconciles Destinations.
pub struct DestinationReconciler {
    api: Api<DestinationSpec>,
    dockers: Dockers,
}

/// Adds the Destination controller to `manager`.
pub fn install(manager: &mut Manager, config: ControllerConfig, dockers: Dockers) {
    let destinations = manager.informer::<DestinationSpec>();
    // An Application going away may free the network of a Destination being deleted. Only
    // such Destinations are re-checked: a live one does not depend on its apps, and
    // re-checking it on every app status write costs one network inspect (listing every
    // attached container) per write, quadratic in the apps converging at once.
    let apps = manager.informer::<ApplicationSpec>();
    let deleting = destinations.clone();
    let controller = Controller::new(NAME, destinations)
        .with_config(config)
        .reads(dockers.servers())
        .watches(&apps, move |app| {
            let d = ObjectRef::cluster(&app.spec.destination);
            match deleting.get(&d) {
                Some(dest) if dest.is_deleting() => vec![d],
                _ => Vec::new(),
            }
        });
    let reconciler = DestinationReconciler {
        api: manager.api_for(NAME),
        dockers,
    };
    manager.add(controller, Finalized(reconciler));
}

#[async_trait::async_trait]
impl Finalize<DestinationSpec> for DestinationReconciler {
    type Error = Error;
    const FINALIZER: &'static str = FINALIZER;

    fn api(&self) -> &Api<DestinationSpec> {
        &self.api
    }

    async fn apply(&self, dest: Arc<Object<DestinationSpec>>) -> Result<Action, Error> {
        let name = dest.name().to_owned();
        let generation = dest.generation();
        let mut next = dest.status.clone().unwrap_or_default();
        next.observed_generation = Some(generation);
        let ensured = match self.dockers.for_server(&dest.spec.server).await {
            Ok(d) => {
                let labels = self.dockers.scoped(
                    Owner {
                        kind: "Destination".into(),
                        namespace: String::new(),
                        name: name.clone(),
                        uid: dest.uid().to_owned(),
                    }
                    .labels(),
                );
                d.ensure_network(&dest.spec.network, &labels)
                    .await
                    .map_err(Error::from)
            }
            Err(e) => Err(e.into()),
        };
        let result = match ensured {
            Ok(net) => {
                next.network_id = Some(net.id);
                status::set_now(
                    &mut next.conditions,
                    "Ready",
                    ConditionStatus::True,
                    "NetworkReady",
                    &format!("network {} exists", dest.spec.network),
                    generation,
                );
                Ok(Action::await_change())
            }
            Err(e) => {
                status::set_now(
                    &mut next.conditions,
                    "Ready",
                    ConditionStatus::False,
                    "NetworkFailed",
                    &e.to_string(),
                    generation,
                );
                Err(e)
            }
        };
        status::update(&self.api, &dest, &next).await?;
        result
    }

    async fn cleanup(&self, dest: Arc<Object<DestinationSpec>>) -> Result<Action, Error> {
        let d = match self.dockers.for_server(&dest.spec.server).await {
            Ok(d) => d,
            Err(dockers::Error::NotFound(s)) => {
                tracing::info!(server = %s, "server gone; nothing to clean up");
                return Ok(Action::await_change());
            }
            Err(e) => return Err(e.into()),
        };
        let network = &dest.spec.network;
        match d.inspect_network(network).await {
            Ok(info) if !info.containers.is_empty() => {
                let busy = Error::InUse {
                    network: network.clone(),
                    count: info.containers.len(),
                };
                tracing::info!(error = %busy, "waiting for the network to be free");
                Ok(Action::cleanup_pending(IN_USE_RECHECK))
            }
            Ok(_) => match d.remove_network(network).await {
                Ok(()) => Ok(Action::await_change()),
                Err(e) if e.is_not_found() => Ok(Action::await_change()),
                Err(e) if e.to_string().contains("active endpoints") => {
                    tracing::info!(error = %e, "network still has endpoints; waiting");
                    Ok(Action::cleanup_pending(IN_USE_RECHECK))
                }
                Err(e) => Err(e.into()),
            },
            Err(e) if e.is_not_found() => Ok(Action::await_change()),
            Err(e) => Err(e.into()),
        }
    }
}
