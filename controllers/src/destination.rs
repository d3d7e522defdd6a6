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

use berth_crds::{kinds::DestinationSpec, meta::ConditionStatus, registry::KindInfo};
use serde_json::Value;
use tracing::Instrument;

use crate::{
    client::Client,
    controller::{Action, Controller, ControllerConfig, Reconciler},
    docker::{self, Owner},
    finalizer::{self, Event},
    manager::Manager,
    object::{self, ObjectRef},
    server,
    server::Dockers,
    status,
};

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
    /// The cached object does not parse as a Destination.
    #[error("destination {name:?} is malformed: {source}")]
    Malformed {
        /// The destination.
        name: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The server could not be used.
    #[error(transparent)]
    Server(#[from] server::Error),
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
    client: Arc<dyn Client>,
    kind: &'static KindInfo,
    dockers: Dockers,
}

/// Adds the Destination controller to `manager`.
pub fn install(
    manager: &mut Manager,
    config: ControllerConfig,
    dockers: Dockers,
) -> Result<(), server::Error> {
    let kind = server::kind("Destination")?;
    let destinations = manager.informer(kind);
    // Reads Servers (through `dockers`): wait for their cache too.
    let servers = manager.informer(server::kind("Server")?);
    // An Application going away may free the network of a Destination being deleted. Only
    // such Destinations are re-checked: a live one does not depend on its apps, and
    // re-checking it on every app status write costs one network inspect (listing every
    // attached container) per write, quadratic in the apps converging at once.
    let apps = manager.informer(server::kind("Application")?);
    let deleting = destinations.clone();
    let controller = Controller::new(NAME, destinations)
        .with_config(config)
        .watches(&servers, |_| Vec::new())
        .watches(&apps, move |app| {
            app.pointer("/spec/destination")
                .and_then(Value::as_str)
                .map(ObjectRef::cluster)
                .filter(|d| {
                    deleting
                        .get(d)
                        .is_some_and(|d| d.pointer("/metadata/deletionTimestamp").is_some())
                })
                .into_iter()
                .collect()
        });
    let reconciler = DestinationReconciler {
        client: manager.client_for(NAME),
        kind,
        dockers,
    };
    manager.add(controller, reconciler);
    Ok(())
}

impl DestinationReconciler {
    async fn apply(&self, obj: &Value) -> Result<Action, Error> {
        let name = object::name(obj).to_owned();
        let dest = object::typed::<DestinationSpec>(obj).map_err(|source| Error::Malformed {
            name: name.clone(),
            source,
        })?;
        let generation = object::generation(obj);
        let mut next = dest.status.clone().unwrap_or_default();
        next.observed_generation = Some(generation);
        let ensured = match self.dockers.for_server(&dest.spec.server).await {
            Ok(d) => {
                let labels = self.dockers.scoped(
                    Owner {
                        kind: "Destination".into(),
                        namespace: String::new(),
                        name: name.clone(),
                        uid: object::uid(obj).to_owned(),
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
        status::update::<DestinationSpec>(self.client.as_ref(), self.kind, obj, &next).await?;
        result
    }

    async fn cleanup(&self, obj: &Value) -> Result<Action, Error> {
        let name = object::name(obj).to_owned();
        let dest = object::typed::<DestinationSpec>(obj).map_err(|source| Error::Malformed {
            name: name.clone(),
            source,
        })?;
        let d = match self.dockers.for_server(&dest.spec.server).await {
            Ok(d) => d,
            Err(server::Error::NotFound(s)) => {
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

#[async_trait::async_trait]
impl Reconciler for DestinationReconciler {
    type Error = finalizer::Error<Error>;

    async fn reconcile(&self, obj: Arc<Value>) -> Result<Action, Self::Error> {
        let span = tracing::info_span!("reconcile", kind = "Destination", name = %object::name(&obj));
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
        .instrument(span)
        .await
    }
}
