//! The defaults berth keeps in place: the `localhost` Server (for the `--docker` endpoint)
//! and the `default` Destination on it.
//!
//! # Guarantees
//! - Both are created through the API whenever they are missing: checked when either cache
//!   loses an object and every few seconds, so deleting them only brings them back.
//! - An existing object of either name is left as it is, whatever its spec.

use std::time::Duration;

use berth_crds::{
    Object, Resource,
    kinds::{DestinationSpec, ServerSpec, server::LocalDocker},
};
use tokio_util::sync::CancellationToken;

use crate::{client, dockers::DockerOptions, informer::Informer, object::ObjectRef};
use berth_runtime::Api;

/// The Server berth creates for the Docker endpoint it was started with.
pub const LOCALHOST: &str = "localhost";
/// The Destination berth creates on `localhost`.
pub const DEFAULT_DESTINATION: &str = "default";

/// How often the defaults are checked even without a deletion.
const RECHECK: Duration = Duration::from_secs(5);

/// The `localhost` Server for `options`.
pub fn localhost_server(options: &DockerOptions) -> Object<ServerSpec> {
    let spec = ServerSpec {
        localhost: Some(LocalDocker {
            docker_host: options.uri.clone(),
        }),
        ..ServerSpec::default()
    };
    Object::new(None, LOCALHOST, spec)
}

/// The `default` Destination for `options`.
pub fn default_destination(options: &DockerOptions) -> Object<DestinationSpec> {
    let spec = DestinationSpec {
        server: LOCALHOST.to_owned(),
        network: options.default_network.clone(),
    };
    Object::new(None, DEFAULT_DESTINATION, spec)
}

async fn ensure<K: Resource>(api: &Api<K>, informer: &Informer<K>, obj: &Object<K>) {
    let name = obj.name();
    if informer.get(&ObjectRef::cluster(name)).is_some() {
        return;
    }
    match api.create(obj).await {
        Ok(_) => tracing::info!(kind = K::KIND, name, "created default object"),
        Err(client::Error::AlreadyExists { .. }) => {}
        Err(e) => tracing::warn!(kind = K::KIND, name, error = %e, "cannot create default object"),
    }
}

/// Creates the `localhost` Server and the default Destination whenever they are missing,
/// until `stop`.
pub async fn ensure_defaults(
    client: std::sync::Arc<dyn client::Client>,
    servers: Informer<ServerSpec>,
    destinations: Informer<DestinationSpec>,
    options: DockerOptions,
    stop: CancellationToken,
) {
    let changed = std::sync::Arc::new(tokio::sync::Notify::new());
    {
        let changed = changed.clone();
        servers.subscribe(move |c| {
            if c.new.is_none() {
                changed.notify_one();
            }
        });
    }
    {
        let changed = changed.clone();
        destinations.subscribe(move |c| {
            if c.new.is_none() {
                changed.notify_one();
            }
        });
    }
    tokio::select! {
        () = async { servers.wait_ready().await; destinations.wait_ready().await } => {}
        () = stop.cancelled() => return,
    }
    let (server_api, destination_api) = (Api::all(client.clone()), Api::all(client));
    let (server, destination) = (localhost_server(&options), default_destination(&options));
    loop {
        ensure(&server_api, &servers, &server).await;
        ensure(&destination_api, &destinations, &destination).await;
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(RECHECK) => {}
            () = stop.cancelled() => return,
        }
    }
}
