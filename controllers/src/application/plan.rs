//! From an Application's spec to the containers it should have: the effective container
//! config, deterministic names, and the crash-loop backoff.
//!
//! # Guarantees
//! - Pure functions: the same spec, secrets and destination give the same template, hash and
//!   names on every run and in every process.
//! - The template hash covers everything that reaches the container (image, command, env
//!   with resolved secrets, ports, mounts, limits, health check, network and its aliases,
//!   the container settings), so any change of effective config yields new container names:
//!   a rolling update. The content of `spec.files` is not part of it: the files are seeded
//!   once ([`crate::host_files`]), and the server's copy is what the container sees.
//!
//! # Caveats
//! - Renaming a [`ContainerSpec`] field changes every hash and rolls every application once.

use std::{path::Path, time::Duration};

use berth_crds::kinds::{
    ApplicationSpec,
    application::{HealthCheck as AppHealthCheck, Protocol as AppProtocol, shm_size_bytes},
};

pub use crate::container_config::{alias, env, limits};
use crate::{
    container_config,
    docker::{
        ContainerSpec, HealthCheck, Labels, MountSpec, NetworkAttachment, Owner, PortSpec, Probe, Protocol,
        RestartPolicy, Ulimit, label,
    },
    host_files,
};

/// Characters of the config hash in container names.
pub const HASH_LEN: usize = 12;
/// Longest crash-loop delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a spec cannot be turned into containers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An env var names a Secret or key that does not exist.
    #[error("{field}: secret {secret:?} has no key {key:?} (or does not exist)")]
    MissingSecret {
        /// The field, e.g. `spec.env[0].secretKeyRef`.
        field: String,
        /// The Secret.
        secret: String,
        /// The key.
        key: String,
    },
    /// A bind mount outside the configured host root.
    #[error("{field}: host path {path:?} is outside the allowed host root {root}")]
    HostPathForbidden {
        /// The field.
        field: String,
        /// The path.
        path: String,
        /// The allowed root (`none` when bind mounts are disabled).
        root: String,
    },
    /// `spec.files` without a host root to seed them under.
    #[error(
        "spec.files: files are seeded under the server's host root, and berth was started without --host-root"
    )]
    FilesNeedHostRoot,
    /// A Git source with no image built yet.
    #[error("spec.source.git: no image built yet")]
    NoImage,
}

impl From<container_config::Error> for Error {
    fn from(e: container_config::Error) -> Self {
        match e {
            container_config::Error::MissingSecret { field, secret, key } => {
                Self::MissingSecret { field, secret, key }
            }
        }
    }
}

/// What a plan needs besides the spec.
pub struct Inputs<'a> {
    /// The owner of the containers.
    pub owner: &'a Owner,
    /// Labels put on everything (the scope).
    pub scope: &'a Labels,
    /// The destination's Docker network.
    pub network: &'a str,
    /// Resolves `(secret, key)` in the app's namespace.
    pub secret: &'a (dyn Fn(&str, &str) -> Option<String> + Sync),
    /// Where bind mounts may come from; `None` forbids them.
    pub host_root: Option<&'a Path>,
    /// For a Git source, the image built from it.
    pub built_image: Option<&'a str>,
}

/// The container every replica is made from: no name, no replica label.
pub fn template(spec: &ApplicationSpec, inputs: &Inputs<'_>) -> Result<ContainerSpec, Error> {
    let image = match (&spec.source.image, inputs.built_image) {
        (Some(image), _) => image.clone(),
        (None, Some(built)) => built.to_string(),
        (None, None) => return Err(Error::NoImage),
    };
    let env = env(&spec.env, inputs.secret)?;
    let mut mounts = Vec::new();
    for (i, v) in spec.volumes.iter().enumerate() {
        if let Some(name) = &v.name {
            mounts.push(MountSpec::Volume {
                name: name.clone(),
                target: v.mount_path.clone(),
                read_only: v.read_only,
                external: v.external,
            });
        } else if let Some(path) = &v.host_path {
            if berth_crds::rules::host_path_under(path, inputs.host_root).is_err() {
                return Err(Error::HostPathForbidden {
                    field: format!("spec.volumes[{i}].hostPath"),
                    path: path.clone(),
                    root: inputs
                        .host_root
                        .map_or("none".to_string(), |r| r.display().to_string()),
                });
            }
            mounts.push(MountSpec::Bind {
                source: path.clone(),
                target: v.mount_path.clone(),
                read_only: v.read_only,
            });
        }
    }
    for f in &spec.files {
        let root = inputs.host_root.ok_or(Error::FilesNeedHostRoot)?;
        let (ns, name) = (&inputs.owner.namespace, &inputs.owner.name);
        mounts.push(MountSpec::Bind {
            source: host_files::path_of(root, ns, name, &f.mount_path)
                .display()
                .to_string(),
            target: f.mount_path.clone(),
            read_only: f.read_only,
        });
    }
    // berth's own labels win (admission refuses `dev.berth.` keys in spec.labels anyway).
    let mut labels = Labels::from_iter(spec.labels.clone());
    labels.extend(inputs.owner.labels());
    labels.extend(inputs.scope.clone());
    let stop_timeout_secs = spec
        .stop_grace_period
        .as_deref()
        .and_then(berth_crds::rules::parse_duration)
        .map_or(10, |d| {
            u32::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u32::MAX)
        });
    Ok(ContainerSpec {
        name: String::new(),
        image,
        command: spec.command.clone(),
        args: spec.args.clone(),
        env,
        labels,
        // The service alias is added once a container is ready (see the controller), so
        // that `<name>.<ns>` only resolves to containers that serve.
        // So are `spec.networkAliases`.
        network: Some(NetworkAttachment {
            name: inputs.network.to_owned(),
            aliases: Vec::new(),
            ready_aliases: spec.network_aliases.clone(),
            ..Default::default()
        }),
        ports: spec
            .ports
            .iter()
            .map(|p| PortSpec {
                container_port: p.container_port,
                protocol: match p.protocol {
                    AppProtocol::Tcp => Protocol::Tcp,
                    AppProtocol::Udp => Protocol::Udp,
                },
                host_port: p.host_port,
                host_ip: None,
            })
            .collect(),
        mounts,
        cpu_millis: limits(spec.resources.as_ref()).0,
        memory_bytes: limits(spec.resources.as_ref()).1,
        // berth restarts exited containers itself, with a crash-loop backoff.
        restart_policy: RestartPolicy::No,
        health_check: spec.health_check.as_ref().map(health_check),
        stop_timeout_secs: Some(stop_timeout_secs),
        user: spec.user.clone(),
        working_dir: spec.working_dir.clone(),
        hostname: spec.hostname.clone(),
        cap_add: spec.cap_add.clone(),
        cap_drop: spec.cap_drop.clone(),
        ulimits: spec
            .ulimits
            .iter()
            .map(|(k, u)| {
                (
                    k.clone(),
                    Ulimit {
                        soft: u.soft,
                        hard: u.hard,
                    },
                )
            })
            .collect(),
        sysctls: spec.sysctls.clone(),
        shm_size_bytes: spec.shm_size.as_deref().and_then(shm_size_bytes),
        stop_signal: spec.stop_signal.clone(),
        tty: spec.tty,
        open_stdin: spec.stdin_open,
    })
}

/// The aliases ready containers answer to besides their own name: the service alias
/// `<name>.<ns>` ([`alias`]), then `spec.networkAliases` (kept in the template).
pub fn service_aliases(namespace: &str, name: &str, template: &ContainerSpec) -> Vec<String> {
    let mut out = vec![alias(namespace, name)];
    for a in template.network.iter().flat_map(|n| &n.ready_aliases) {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// The short config hash of a template (the one in container names).
pub fn short_hash(template: &ContainerSpec) -> String {
    template.config_hash()[..HASH_LEN].to_string()
}

/// The container of replica `replica` of `template`: named, labelled, aliased.
pub fn replica(template: &ContainerSpec, hash: &str, replica: u32) -> ContainerSpec {
    let mut spec = template.clone();
    let owner_ns = spec.labels.get(label::NAMESPACE).cloned().unwrap_or_default();
    let owner_name = spec.labels.get(label::NAME).cloned().unwrap_or_default();
    spec.name = container_name(&owner_ns, &owner_name, hash, replica);
    spec.labels.insert(label::REPLICA.into(), replica.to_string());
    spec.labels.insert(APP_HASH.into(), hash.to_owned());
    if let Some(net) = &mut spec.network {
        net.aliases.push(spec.name.clone());
    }
    spec
}

/// Label holding the template hash (the adapter's config-hash label holds the full spec's).
pub const APP_HASH: &str = "dev.berth.app-hash";

/// `<namespace>-<name>-<hash>-<replica>`.
pub fn container_name(namespace: &str, name: &str, hash: &str, replica: u32) -> String {
    format!("{namespace}-{name}-{hash}-{replica}")
}

/// How long to wait before restarting a container that exited after `restarts` quick
/// restarts: none for the first, then 1 s doubling to [`MAX_BACKOFF`].
pub fn backoff(restarts: u32) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    let exp = (restarts - 1).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

fn health_check(hc: &AppHealthCheck) -> HealthCheck {
    let probe = match (&hc.http, &hc.shell) {
        (Some(http), _) => Probe::Http {
            port: http.port,
            path: http.path.clone(),
        },
        (None, Some(line)) => Probe::Shell(line.clone()),
        (None, None) => Probe::Command(hc.command.clone()),
    };
    HealthCheck {
        probe,
        interval_secs: secs(&hc.interval).unwrap_or(10).max(1),
        timeout_secs: secs(&hc.timeout).unwrap_or(5).max(1),
        retries: hc.retries,
        start_period_secs: secs(&hc.start_period).unwrap_or(0),
    }
}

/// Whole seconds of a duration like `500ms`, `10s`, `1m30s`, `2h` (rounded up).
pub fn secs(text: &str) -> Option<u32> {
    let mut total_ms: u64 = 0;
    let mut num = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit_ms = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1000,
            'm' => 60_000,
            'h' => 3_600_000,
            _ => return None,
        };
        total_ms += n * unit_ms;
    }
    if !num.is_empty() {
        return None;
    }
    u32::try_from(total_ms.div_ceil(1000)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ApplicationSpec {
        serde_json::from_value(serde_json::from_str(yaml).unwrap()).unwrap()
    }

    fn owner() -> Owner {
        Owner {
            kind: "Application".into(),
            namespace: "ns".into(),
            name: "web".into(),
            uid: "u1".into(),
        }
    }

    #[test]
    fn template_resolves_secrets_and_changes_hash_with_them() {
        let s = spec(
            r#"{"source":{"image":"img:1"},"destination":"default",
                "env":[{"name":"A","value":"1"},{"name":"P","secretKeyRef":{"name":"s","key":"k"}}]}"#,
        );
        let o = owner();
        let scope = Labels::new();
        let make = |v: &'static str| {
            let secret = move |n: &str, k: &str| (n == "s" && k == "k").then(|| v.to_string());
            let inputs = Inputs {
                owner: &o,
                scope: &scope,
                network: "net",
                secret: &secret,
                host_root: None,
                built_image: None,
            };
            template(&s, &inputs).unwrap()
        };
        let (a, b) = (make("x"), make("y"));
        assert_eq!(a.env["P"], "x");
        assert_ne!(short_hash(&a), short_hash(&b));
        assert_eq!(short_hash(&a), short_hash(&make("x")));
        let r = replica(&a, &short_hash(&a), 1);
        assert_eq!(alias("ns", "web"), "web.ns");
        assert_eq!(r.name, format!("ns-web-{}-1", short_hash(&a)));
        assert_eq!(r.network.unwrap().aliases, vec![r.name.clone()]);
    }

    #[test]
    fn missing_secret_and_bind_outside_root_are_named() {
        let s = spec(
            r#"{"source":{"image":"img:1"},"destination":"d",
                "env":[{"name":"P","secretKeyRef":{"name":"s","key":"k"}}]}"#,
        );
        let o = owner();
        let scope = Labels::new();
        let none = |_: &str, _: &str| None;
        let inputs = Inputs {
            owner: &o,
            scope: &scope,
            network: "n",
            secret: &none,
            host_root: None,
            built_image: None,
        };
        let err = template(&s, &inputs).unwrap_err();
        assert!(err.to_string().starts_with("spec.env[0].secretKeyRef"));
        let s = spec(
            r#"{"source":{"image":"img:1"},"destination":"d",
                "volumes":[{"hostPath":"/etc","mountPath":"/x"}]}"#,
        );
        let root = Path::new("/srv/berth");
        let inputs = Inputs {
            host_root: Some(root),
            ..inputs
        };
        assert!(matches!(
            template(&s, &inputs),
            Err(Error::HostPathForbidden { .. })
        ));
    }

    #[test]
    fn a_git_source_runs_its_built_image_and_a_new_build_rolls() {
        let s = spec(r#"{"source":{"git":{"url":"https://h/r.git"}},"destination":"d"}"#);
        let o = owner();
        let scope = Labels::new();
        let none = |_: &str, _: &str| None;
        let inputs = |built_image| Inputs {
            owner: &o,
            scope: &scope,
            network: "n",
            secret: &none,
            host_root: None,
            built_image,
        };
        assert_eq!(template(&s, &inputs(None)), Err(Error::NoImage));
        let a = template(&s, &inputs(Some("berth.local/ns-web:aaaa-1"))).unwrap();
        let b = template(&s, &inputs(Some("berth.local/ns-web:bbbb-1"))).unwrap();
        assert_eq!(a.image, "berth.local/ns-web:aaaa-1");
        assert_ne!(short_hash(&a), short_hash(&b), "a new build is a rollout");
    }

    #[test]
    fn container_settings_files_and_aliases_reach_the_template() {
        let s = spec(
            r#"{"source":{"image":"img:1"},"destination":"d",
                "user":"1000:1000","workingDir":"/srv","hostname":"web","capAdd":["NET_ADMIN"],
                "capDrop":["ALL"],"ulimits":{"nofile":{"soft":1024,"hard":2048}},
                "sysctls":{"net.core.somaxconn":"1024"},"shmSize":"64m","stopSignal":"SIGQUIT",
                "stopGracePeriod":"1m30s","tty":true,"stdinOpen":true,"labels":{"com.example":"x"},
                "networkAliases":["db"],"healthCheck":{"shell":"test -f /ok"},
                "volumes":[{"name":"shared","mountPath":"/shared","external":true}],
                "files":[{"mountPath":"/etc/app.conf","content":"a=1","readOnly":true}]}"#,
        );
        let o = owner();
        let scope = Labels::new();
        let none = |_: &str, _: &str| None;
        let root = Path::new("/srv/berth");
        let inputs = Inputs {
            owner: &o,
            scope: &scope,
            network: "n",
            secret: &none,
            host_root: Some(root),
            built_image: None,
        };
        let t = template(&s, &inputs).unwrap();
        assert_eq!(t.user.as_deref(), Some("1000:1000"));
        assert_eq!(t.working_dir.as_deref(), Some("/srv"));
        assert_eq!(t.hostname.as_deref(), Some("web"));
        assert_eq!(
            (t.cap_add.clone(), t.cap_drop.clone()),
            (vec!["NET_ADMIN".into()], vec!["ALL".into()])
        );
        assert_eq!(
            t.ulimits["nofile"],
            Ulimit {
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(t.sysctls["net.core.somaxconn"], "1024");
        assert_eq!(t.shm_size_bytes, Some(64 << 20));
        assert_eq!(t.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(t.stop_timeout_secs, Some(90));
        assert!(t.tty && t.open_stdin);
        assert_eq!(t.labels.get("com.example").map(String::as_str), Some("x"));
        assert_eq!(t.labels.get(label::NAME).map(String::as_str), Some("web"));
        assert_eq!(
            t.health_check.as_ref().unwrap().probe,
            Probe::Shell("test -f /ok".into())
        );
        assert_eq!(
            t.mounts,
            [
                MountSpec::Volume {
                    name: "shared".into(),
                    target: "/shared".into(),
                    read_only: false,
                    external: true,
                },
                MountSpec::Bind {
                    source: "/srv/berth/files/ns/web/etc/app.conf".into(),
                    target: "/etc/app.conf".into(),
                    read_only: true,
                },
            ]
        );
        // The network aliases are not given at creation, but are the template's (and hash's).
        let net = t.network.as_ref().unwrap();
        assert!(net.aliases.is_empty() && net.unhashed_aliases.is_empty());
        assert_eq!(service_aliases("ns", "web", &t), ["web.ns", "db"]);
        let mut fewer = s.clone();
        fewer.network_aliases.clear();
        assert_ne!(short_hash(&t), short_hash(&template(&fewer, &inputs).unwrap()));
        // The content of a file is seeded once, not part of the config.
        let mut edited = s.clone();
        edited.files[0].content = "a=2".into();
        assert_eq!(short_hash(&t), short_hash(&template(&edited, &inputs).unwrap()));
        // Without a host root, files cannot be seeded.
        let inputs = Inputs {
            host_root: None,
            ..inputs
        };
        let mut no_external = s.clone();
        no_external.volumes.clear();
        let err = template(&no_external, &inputs).unwrap_err();
        assert_eq!(err, Error::FilesNeedHostRoot);
        assert!(err.to_string().starts_with("spec.files: "), "{err}");
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn durations_and_quantities_parse() {
        assert_eq!(secs("10s"), Some(10));
        assert_eq!(secs("1m30s"), Some(90));
        assert_eq!(secs("500ms"), Some(1));
        assert_eq!(secs("x"), None);
        let limits_of = |cpus: &str, memory: &str| {
            limits(Some(&berth_crds::kinds::application::ResourceLimits {
                cpus: Some(cpus.into()),
                memory: Some(memory.into()),
            }))
        };
        assert_eq!(limits_of("500m", "512Mi"), (Some(500), Some(512 << 20)));
        assert_eq!(limits_of("1.5", "512Mi").0, Some(1500));
    }
}
