//! From a Database's spec and credentials to its container and volume.
//!
//! # Guarantees
//! - Pure: the same spec, credentials and destination give the same container spec (hence
//!   the same config hash) on every run, so any change of effective config — image, env,
//!   args, limits, port, credentials — rolls the container, and nothing else does.
//! - The container is named `<ns>-<name>`, answers to `<name>.<ns>` and to its own name on the
//!   destination network, and mounts the volume at the engine's data directory.
//! - `spec.env` cannot override the variables the engine gets from the credentials.
//!
//! # Caveats
//! - Engines read their credential variables when they initialise an empty data directory
//!   only: changing the Secret of an initialised database rolls the container but does not
//!   change the password inside the engine.

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

/// The container the database runs as.
pub fn container(spec: &DatabaseSpec, inputs: &Inputs<'_>) -> Result<ContainerSpec, Error> {
    let engine = inputs.engine;
    let mut env: std::collections::BTreeMap<String, String> =
        engine.container_env(inputs.credentials).into_iter().collect();
    let extra = container_config::env(&spec.env, inputs.secret)?;
    for (index, var) in spec.env.iter().enumerate() {
        if env.contains_key(&var.name) {
            return Err(Error::ReservedEnv {
                index,
                name: var.name.clone(),
            });
        }
    }
    env.extend(extra);
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
            aliases: vec![container_config::alias(ns, name), container],
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
        }],
        cpu_millis,
        memory_bytes,
        // Docker brings a crashed engine back even while berth is down; berth starts a
        // container that is stopped or killed.
        restart_policy: RestartPolicy::UnlessStopped,
        health_check: None,
        stop_timeout_secs: Some(STOP_TIMEOUT_SECS),
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
                read_only: false
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
