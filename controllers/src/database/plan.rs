//! From a Database's spec and credentials to its container and volume.
//!
//! # Guarantees
//! - Pure: the same spec, credentials and destination give the same container spec (hence
//!   the same config hash) on every run, so any change of effective config — image, env,
//!   args, limits, port, credentials — rolls the container, and nothing else does.
//! - The container is named `<ns>-<name>`, answers to `<name>.<ns>` and to its own name on the
//!   destination network, and mounts the volume at the engine's data directory.
//! - `spec.env` cannot override the variables the engine gets from the credentials; with
//!   `spec.injectCredentials: false` the container gets `spec.env` alone (the credentials
//!   Secret then only serves berth's probes, backups and restores).
//! - `spec.networkAliases` are further names on the network, given at creation like
//!   `<name>.<ns>` (the single container is the only one that could answer to them).
//!
//! # Caveats
//! - Engines read their credential variables when they initialise an empty data directory
//!   only: changing the Secret of an initialised database rolls the container but does not
//!   change the password inside the engine.

use std::collections::BTreeMap;

use berth_crds::kinds::DatabaseSpec;

use super::engine::{Credentials, Engine};
use crate::container_config;
use crate::docker::{
    ContainerSpec, Labels, MountSpec, NetworkAttachment, Owner, PortSpec, Protocol, RestartPolicy,
};

/// Seconds a database gets to shut down cleanly before it is killed.
pub const STOP_TIMEOUT_SECS: u32 = 30;

/// Why a spec cannot be turned into a container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An env var could not be resolved.
    #[error(transparent)]
    Env(#[from] container_config::Error),
    /// An env var would override a credential variable.
    #[error("spec.env[{index}].name: {name:?} is set by berth from the credentials Secret")]
    ReservedEnv {
        /// Index in `spec.env`.
        index: usize,
        /// The variable.
        name: String,
    },
}

/// What a plan needs besides the spec.
pub struct Inputs<'a> {
    /// The engine's facts.
    pub engine: &'static Engine,
    /// The owner of the container and volume.
    pub owner: &'a Owner,
    /// Labels put on everything (the scope).
    pub scope: &'a Labels,
    /// The destination's Docker network.
    pub network: &'a str,
    /// The credentials.
    pub credentials: &'a Credentials,
    /// Resolves `(secret, key)` in the database's namespace.
    pub secret: &'a (dyn Fn(&str, &str) -> Option<String> + Sync),
}

/// The container's name.
pub fn container_name(namespace: &str, name: &str) -> String {
    format!("{namespace}-{name}")
}

/// The data volume's name: `spec.storage.volumeName`, else `<ns>-<name>-data`.
pub fn volume_name(spec: &DatabaseSpec, namespace: &str, name: &str) -> String {
    spec.storage
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_else(|| format!("{namespace}-{name}-data"))
}

/// The labels of everything a database owns: owner plus scope.
pub fn labels(owner: &Owner, scope: &Labels) -> Labels {
    let mut labels = owner.labels();
    labels.extend(scope.clone());
    labels
}

/// The container's environment: the engine's credential variables and `spec.env`, which
/// may not override them; with `spec.injectCredentials: false`, `spec.env` alone, verbatim.
pub fn env(spec: &DatabaseSpec, inputs: &Inputs<'_>) -> Result<BTreeMap<String, String>, Error> {
    let extra = container_config::env(&spec.env, inputs.secret)?;
    if !spec.inject_credentials {
        return Ok(extra);
    }
    let mut env: BTreeMap<String, String> = inputs
        .engine
        .container_env(inputs.credentials)
        .into_iter()
        .collect();
    for (index, var) in spec.env.iter().enumerate() {
        if env.contains_key(&var.name) {
            return Err(Error::ReservedEnv {
                index,
                name: var.name.clone(),
            });
        }
    }
    env.extend(extra);
    Ok(env)
}

/// The container's DNS names on the destination network: `<name>.<ns>`, its own name, then
/// `spec.networkAliases`.
fn aliases(spec: &DatabaseSpec, ns: &str, name: &str, container: &str) -> Vec<String> {
    let mut out = vec![container_config::alias(ns, name), container.to_owned()];
    for a in &spec.network_aliases {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// The container the database runs as.
pub fn container(spec: &DatabaseSpec, inputs: &Inputs<'_>) -> Result<ContainerSpec, Error> {
    let engine = inputs.engine;
    let env = env(spec, inputs)?;
    let (ns, name) = (&inputs.owner.namespace, &inputs.owner.name);
    let container = container_name(ns, name);
    let (cpu_millis, memory_bytes) = container_config::limits(spec.resources.as_ref());
    Ok(ContainerSpec {
        name: container.clone(),
        image: engine.image_for(spec.image.as_deref(), spec.version.as_deref()),
        command: Vec::new(),
        args: if spec.args.is_empty() {
            engine.args.iter().map(|a| a.to_string()).collect()
        } else {
            spec.args.clone()
        },
        env,
        labels: labels(inputs.owner, inputs.scope),
        network: Some(NetworkAttachment {
            name: inputs.network.to_owned(),
            aliases: aliases(spec, ns, name, &container),
            ..Default::default()
        }),
        ports: vec![PortSpec {
            container_port: engine.port,
            protocol: Protocol::Tcp,
            host_port: spec.public_port,
            host_ip: None,
        }],
        mounts: vec![MountSpec::Volume {
            name: volume_name(spec, ns, name),
            target: engine.data_dir.to_owned(),
            read_only: false,
            external: false,
        }],
        cpu_millis,
        memory_bytes,
        // Docker brings a crashed engine back even while berth is down; berth starts a
        // container that is stopped or killed.
        restart_policy: RestartPolicy::UnlessStopped,
        health_check: None,
        stop_timeout_secs: Some(STOP_TIMEOUT_SECS),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::engine::engine;
    use berth_crds::kinds::database::DatabaseEngine;

    fn spec(json: &str) -> DatabaseSpec {
        serde_json::from_str(json).unwrap()
    }

    fn owner() -> Owner {
        Owner {
            kind: "Database".into(),
            namespace: "shop".into(),
            name: "orders".into(),
            uid: "u1".into(),
        }
    }

    fn creds() -> Credentials {
        Credentials {
            username: "postgres".into(),
            password: "pw".into(),
            database: "orders".into(),
        }
    }

    fn plan(s: &DatabaseSpec, c: &Credentials) -> Result<ContainerSpec, Error> {
        let lookup = |s: &str, k: &str| (s == "tuning" && k == "mem").then(|| "64MB".to_string());
        let o = owner();
        let scope = Labels::from([("dev.berth.run".to_string(), "r1".to_string())]);
        plan_with(s, c, &o, &scope, &lookup)
    }

    fn plan_with(
        s: &DatabaseSpec,
        c: &Credentials,
        o: &Owner,
        scope: &Labels,
        lookup: &(dyn Fn(&str, &str) -> Option<String> + Sync),
    ) -> Result<ContainerSpec, Error> {
        let inputs = Inputs {
            engine: engine(s.engine),
            owner: o,
            scope,
            network: "berth",
            credentials: c,
            secret: lookup,
        };
        container(s, &inputs)
    }

    #[test]
    fn a_postgres_container_from_the_engine_table() {
        let s = spec(r#"{"engine":"postgresql","destination":"default","version":"16","publicPort":15432}"#);
        let c = plan(&s, &creds()).unwrap();
        assert_eq!(c.name, "shop-orders");
        assert_eq!(c.image, "postgres:16");
        assert_eq!(c.env.get("POSTGRES_PASSWORD").map(String::as_str), Some("pw"));
        assert_eq!(
            c.network.as_ref().unwrap().aliases,
            ["orders.shop".to_string(), "shop-orders".to_string()]
        );
        assert_eq!(c.ports[0].container_port, 5432);
        assert_eq!(c.ports[0].host_port, Some(15432));
        assert_eq!(
            c.mounts,
            [MountSpec::Volume {
                name: "shop-orders-data".into(),
                target: "/var/lib/postgresql/data".into(),
                read_only: false,
                external: false,
            }]
        );
        assert_eq!(
            c.labels.get("dev.berth.kind").map(String::as_str),
            Some("Database")
        );
        assert_eq!(c.labels.get("dev.berth.run").map(String::as_str), Some("r1"));
        assert_eq!(c.restart_policy, RestartPolicy::UnlessStopped);
    }

    #[test]
    fn config_changes_change_the_hash_and_nothing_else_does() {
        let base = spec(r#"{"engine":"postgresql","destination":"default"}"#);
        let h = |s: &DatabaseSpec, c: &Credentials| plan(s, c).unwrap().config_hash();
        assert_eq!(h(&base, &creds()), h(&base.clone(), &creds()));
        let env =
            spec(r#"{"engine":"postgresql","destination":"default","env":[{"name":"TZ","value":"UTC"}]}"#);
        assert_ne!(h(&base, &creds()), h(&env, &creds()));
        let other_pw = Credentials {
            password: "other".into(),
            ..creds()
        };
        assert_ne!(h(&base, &creds()), h(&base, &other_pw));
        let limits = spec(r#"{"engine":"postgresql","destination":"default","resources":{"memory":"1Gi"}}"#);
        assert_eq!(plan(&limits, &creds()).unwrap().memory_bytes, Some(1 << 30));
    }

    #[test]
    fn env_from_secrets_and_reserved_names() {
        let s = spec(
            r#"{"engine":"postgresql","destination":"default","env":[{"name":"SHM","secretKeyRef":{"name":"tuning","key":"mem"}}]}"#,
        );
        assert_eq!(
            plan(&s, &creds()).unwrap().env.get("SHM").map(String::as_str),
            Some("64MB")
        );
        let missing = spec(
            r#"{"engine":"postgresql","destination":"default","env":[{"name":"X","secretKeyRef":{"name":"nope","key":"k"}}]}"#,
        );
        assert!(matches!(plan(&missing, &creds()), Err(Error::Env(_))));
        let reserved = spec(
            r#"{"engine":"postgresql","destination":"default","env":[{"name":"TZ","value":"UTC"},{"name":"POSTGRES_PASSWORD","value":"x"}]}"#,
        );
        let e = plan(&reserved, &creds()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.env[1].name: \"POSTGRES_PASSWORD\" is set by berth from the credentials Secret"
        );
    }

    #[test]
    fn without_injected_credentials_the_env_is_spec_env_verbatim() {
        let s = spec(
            r#"{"engine":"postgresql","destination":"default","injectCredentials":false,
                "credentialsSecretRef":"login",
                "env":[{"name":"POSTGRES_PASSWORD","value":"from-compose"},{"name":"POSTGRES_DB","value":"app"}]}"#,
        );
        let c = plan(&s, &creds()).unwrap();
        assert_eq!(
            c.env,
            BTreeMap::from([
                ("POSTGRES_DB".to_string(), "app".to_string()),
                ("POSTGRES_PASSWORD".to_string(), "from-compose".to_string()),
            ]),
            "no credential variable injected, none refused"
        );
        let injected =
            spec(r#"{"engine":"postgresql","destination":"default","credentialsSecretRef":"login"}"#);
        assert!(injected.inject_credentials, "the default injects");
        assert!(
            plan(&injected, &creds())
                .unwrap()
                .env
                .contains_key("POSTGRES_PASSWORD")
        );
        let stored = serde_json::to_value(&injected).unwrap();
        assert!(
            stored.get("injectCredentials").is_none(),
            "the default is not stored"
        );
    }

    #[test]
    fn network_aliases_follow_the_service_alias() {
        let base = spec(r#"{"engine":"postgresql","destination":"default"}"#);
        let s =
            spec(r#"{"engine":"postgresql","destination":"default","networkAliases":["db","orders.shop"]}"#);
        let c = plan(&s, &creds()).unwrap();
        assert_eq!(
            c.network.as_ref().unwrap().aliases,
            ["orders.shop", "shop-orders", "db"].map(String::from)
        );
        assert_ne!(c.config_hash(), plan(&base, &creds()).unwrap().config_hash());
    }

    #[test]
    fn image_args_and_volume_overrides() {
        let s = spec(
            r#"{"engine":"redis","destination":"default","image":"my/redis:1","storage":{"volumeName":"cache-vol"},"args":["redis-server","--save","60 1"]}"#,
        );
        let c = plan(&s, &creds()).unwrap();
        assert_eq!(c.image, "my/redis:1");
        assert_eq!(c.args, ["redis-server", "--save", "60 1"]);
        assert!(
            matches!(&c.mounts[0], MountSpec::Volume { name, target, .. } if name == "cache-vol" && target == "/data")
        );
        let d = spec(r#"{"engine":"redis","destination":"default"}"#);
        let c = plan(&d, &creds()).unwrap();
        assert_eq!(c.args, engine(DatabaseEngine::Redis).args);
        assert_eq!(c.image, "redis:7.4");
    }
}
