//! Networks: ensure, inspect, connect and disconnect containers, remove.
//!
//! # Guarantees
//! - [`Docker::ensure_network`] is idempotent, and concurrent calls for one name
//!   converge on one network: Engines before API 1.44 allow duplicate names, so
//!   after creating, the caller keeps the oldest network of that name and removes
//!   the one it made if it lost the race.
//!
//! - [`Docker::disconnect_network`] is idempotent: detaching a container that is not
//!   attached (or from a network that is gone) succeeds.
//!
//! # Caveats
//! - An existing network's labels are not changed by `ensure_network`.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    EndpointSettings, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use bollard::query_parameters::{InspectNetworkOptions, ListNetworksOptionsBuilder};

use super::connect::Docker;
use super::error::{Error, Result};
use super::labels::{self, Labels};

/// A network as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// Network ID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Attached containers: container ID → container name.
    pub containers: BTreeMap<String, String>,
}

impl Docker {
    /// Returns the bridge network `name`, creating it with `labels` if missing.
    pub async fn ensure_network(&self, name: &str, labels: &Labels) -> Result<NetworkInfo> {
        match self.inspect_network(name).await {
            Ok(info) if info.name == name => return Ok(info),
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.count("network_create");
        let created = self.client.create_network(request).await?.id;

        // Converge concurrent creators on the oldest network of this name.
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let options = ListNetworksOptionsBuilder::default().filters(&filters).build();
        self.count("network_list");
        let mut same_name: Vec<_> = self
            .client
            .list_networks(Some(options))
            .await?
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .map(|n| {
                (
                    n.created.map(|c| c.to_string()).unwrap_or_default(),
                    n.id.unwrap_or_default(),
                )
            })
            .collect();
        same_name.sort();
        let winner = same_name.first().map(|(_, id)| id.clone());
        match winner {
            Some(winner) if winner != created => {
                tracing::info!(
                    network = name,
                    "lost a network creation race; removing the duplicate"
                );
                self.count("network_remove");
                if let Err(e) = self.client.remove_network(&created).await {
                    tracing::warn!(network = name, error = %e, "could not remove duplicate network");
                }
                self.inspect_network(&winner).await
            }
            _ => self.inspect_network(&created).await,
        }
    }

    /// The network named (or with ID) `name`.
    pub async fn inspect_network(&self, name: &str) -> Result<NetworkInfo> {
        self.count("network_inspect");
        let n = self
            .client
            .inspect_network(name, None::<InspectNetworkOptions>)
            .await?;
        Ok(NetworkInfo {
            id: n.id.unwrap_or_default(),
            name: n.name.unwrap_or_default(),
            labels: labels::from_docker(n.labels),
            containers: n
                .containers
                .unwrap_or_default()
                .into_iter()
                .map(|(id, c)| (id, c.name.unwrap_or_default()))
                .collect(),
        })
    }

    /// Attaches a container to a network with DNS aliases.
    /// [`Error::Api`] (403) if it already is attached.
    pub async fn connect_network(&self, network: &str, container: &str, aliases: &[String]) -> Result<()> {
        let request = NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: Some(EndpointSettings {
                aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
                ..Default::default()
            }),
        };
        self.count("network_connect");
        Ok(self.client.connect_network(network, request).await?)
    }

    /// Detaches a container from a network (not forced). Idempotent: a container that is
    /// not attached, or a network or container that does not exist, is success.
    pub async fn disconnect_network(&self, network: &str, container: &str) -> Result<()> {
        let request = NetworkDisconnectRequest {
            container: container.to_string(),
            force: Some(false),
        };
        self.count("network_disconnect");
        match self.client.disconnect_network(network, request).await {
            Ok(()) => Ok(()),
            Err(e) => match Error::from(e) {
                e if is_not_attached(&e) => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Removes a network; [`Error::NotFound`] if there is none, [`Error::Api`] (403)
    /// while containers are attached.
    pub async fn remove_network(&self, name: &str) -> Result<()> {
        self.count("network_remove");
        Ok(self.client.remove_network(name).await?)
    }

    /// Networks carrying every label in `labels`.
    pub async fn list_networks(&self, labels: &Labels) -> Result<Vec<NetworkInfo>> {
        let filters = HashMap::from([("label".to_string(), labels::label_filters(labels))]);
        let options = ListNetworksOptionsBuilder::default().filters(&filters).build();
        self.count("network_list");
        Ok(self
            .client
            .list_networks(Some(options))
            .await?
            .into_iter()
            .map(|n| NetworkInfo {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                labels: labels::from_docker(n.labels),
                containers: BTreeMap::new(),
            })
            .collect())
    }
}

/// Whether a disconnect failed only because there was nothing to detach: the network or the
/// container is gone (404), or the container is not attached (Docker answers 500, "container
/// … is not connected to [the ]network …").
fn is_not_attached(e: &Error) -> bool {
    match e {
        Error::NotFound { .. } => true,
        Error::Api { message, .. } => message.contains("is not connected to"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disconnect_with_nothing_to_detach_is_success() {
        let api = |status, message: &str| Error::Api {
            status,
            message: message.into(),
        };
        assert!(is_not_attached(&Error::NotFound {
            message: "network berth-x not found".into()
        }));
        assert!(is_not_attached(&api(
            500,
            "container 3f2a is not connected to network berth-x"
        )));
        assert!(is_not_attached(&api(
            500,
            "container 3f2a is not connected to the network berth-x"
        )));
        assert!(!is_not_attached(&api(500, "endpoint in use")));
        assert!(!is_not_attached(&Error::Unreachable {
            message: "connection refused".into()
        }));
    }
}
