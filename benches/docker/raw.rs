//! The raw Docker API baseline: the very container berth would create for an Application,
//! created and started by a script with no control plane in between.
//!
//! # Guarantees
//! - [`spec`] is berth's own plan for the manifest (`plan::template`): same image, env,
//!   ports, health check, network; only the owner labels are dropped (so no berth adopts or
//!   sweeps it) and the service alias is given at creation, as a person would.
//! - Each verb is one Engine API request through the adapter (bollard underneath, no
//!   retries, no waits); health is read from the daemon's event stream, not by polling.
//!
//! # Caveats
//! - The adapter counts calls in a closure that is not set here: no extra cost.

use std::time::{Duration, Instant};

use berth_controllers::{
    application::plan,
    docker::{self, Action, ContainerSpec, Docker, Event, Health, Owner, label},
};
use berth_crds::kinds::ApplicationSpec;
use futures::{StreamExt, stream::BoxStream};

use crate::setup::Bench;

/// Label telling the baselines' containers apart from berth's.
pub const ROLE: &str = "dev.berth.bench-role";

/// The container berth would run for the Application `yaml` (one replica), renamed
/// `name` and attached to the baselines' network.
pub fn spec(bench: &Bench, yaml: &str, name: &str) -> ContainerSpec {
    let doc: serde_json::Value = serde_yaml::from_str(yaml).expect("bench manifest parses");
    let app: ApplicationSpec = serde_json::from_value(doc["spec"].clone()).expect("bench spec parses");
    let ns = doc["metadata"]["namespace"].as_str().unwrap_or_default();
    let app_name = doc["metadata"]["name"].as_str().unwrap_or_default();
    let owner = Owner {
        kind: "Application".into(),
        namespace: ns.into(),
        name: app_name.into(),
        uid: "raw".into(),
    };
    let scope = bench.labels();
    let no_secrets = |_: &str, _: &str| None;
    let inputs = plan::Inputs {
        owner: &owner,
        scope: &scope,
        network: &bench.raw_net,
        secret: &no_secrets,
        host_root: None,
        built_image: None,
    };
    let template = plan::template(&app, &inputs).expect("bench spec plans");
    let mut spec = plan::replica(&template, &plan::short_hash(&template), 0);
    spec.name = name.to_string();
    for key in [label::KIND, label::NAMESPACE, label::NAME, label::UID] {
        spec.labels.remove(key);
    }
    spec.labels.insert(ROLE.into(), "raw".into());
    if let Some(net) = &mut spec.network {
        net.aliases = vec![plan::alias(ns, app_name), name.to_string()];
    }
    spec
}

/// Creates and starts `spec`.
pub async fn create_start(docker: &Docker, spec: &ContainerSpec) -> Result<(), docker::Error> {
    docker.create_container(spec).await?;
    docker.start_container(&spec.name).await
}

/// The daemon's events from now on (berth-managed containers, which the baselines' are).
pub fn events(docker: &Docker) -> BoxStream<'static, docker::Result<Event>> {
    docker.events(None)
}

/// Reads `events` until one satisfies `want`; `None` after `timeout`.
pub async fn until(
    events: &mut BoxStream<'static, docker::Result<Event>>,
    timeout: Duration,
    mut want: impl FnMut(&Event) -> bool,
) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(Ok(ev))) if want(&ev) => return Some(Instant::now()),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("docker event stream failed: {e}"),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Whether `ev` says the container named `name` turned healthy.
pub fn healthy(ev: &Event, name: &str) -> bool {
    ev.action == Action::HealthStatus(Health::Healthy) && ev.name.as_deref() == Some(name)
}
