//! A compose service as an Application.
//!
//! # Guarantees
//! - `entrypoint` becomes `command` and `command` becomes `args` (Kubernetes' names for
//!   Docker's ENTRYPOINT and CMD); `restart` defaults to `unless-stopped` (Coolify's
//!   dialect), and `restart: no` leaves the member out of the Service's readiness.
//! - Named volumes keep the compose file's intent: a top-level `name:` or `external: true`
//!   volume is used under its own name; others are `<namespace>-<service>_<key>`, as
//!   `docker compose` names them `<project>_<key>`. An anonymous volume becomes a named
//!   one, so a rolling update does not lose it.
//! - A bind with Coolify's `content:` is a file seeded once (`spec.files`); a relative bind
//!   source lives under `<host-root>/services/<namespace>/<service>/`.
//!
//! # Caveats
//! - A published port's host address other than all addresses is refused: the Application
//!   spec cannot bind one address, and widening it silently would expose the port.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use berth_crds::kinds::application::{
    AppSource, EnvVar, FileMount, GitBuild, HealthCheck, Port, Protocol, ResourceLimits, RestartPolicy,
    Ulimit, Volume,
};
use berth_crds::kinds::common::SecretKeyRef;
use berth_crds::kinds::{ApplicationSpec, DeletionPolicy};

use super::{Child, Context, Error, Member, generated_secret_name, unmark};
use crate::model::{self, ComposeService, HealthTest, MountSource, Notice, Restart};

/// The container port a route goes to when nothing in the file names one.
const DEFAULT_HTTP_PORT: u16 = 80;

/// Maps `svc` to an Application member named `object`.
pub(super) fn application(
    ctx: &Context<'_>,
    svc: &ComposeService,
    object: &str,
    secret_env: &mut BTreeMap<String, String>,
    notices: &mut Vec<Notice>,
) -> Result<Member, Error> {
    let fail = |message: String| Error::Member {
        service: svc.name.clone(),
        message,
    };
    let source = match (&svc.image, &svc.build) {
        (_, Some(build)) => AppSource {
            image: None,
            git: Some(git_build(build)),
        },
        (Some(image), None) => AppSource {
            image: Some(unmark(image).0),
            git: None,
        },
        (None, None) => {
            return Err(fail(
                "image: required (berth builds only from a Git URL `build.context`)".into(),
            ));
        }
    };
    let env = environment(ctx, svc, secret_env);
    let mut ports = ports(ctx, svc).map_err(fail)?;
    let first_tcp = ports
        .iter()
        .find(|p| p.protocol == Protocol::Tcp)
        .map(|p| p.container_port);
    let mut domains = ctx.urls.domains(&svc.name, first_tcp);
    if domains.iter().any(|d| d.port.is_none()) {
        // Coolify leaves the port to Traefik's guess (the image's one exposed port); berth
        // does not read the image here, so it routes to port 80 and says so.
        for d in domains.iter_mut().filter(|d| d.port.is_none()) {
            d.port = Some(DEFAULT_HTTP_PORT);
        }
        ports.push(Port {
            container_port: DEFAULT_HTTP_PORT,
            protocol: Protocol::Tcp,
            host_port: None,
        });
        notices.push(Notice {
            service: svc.name.clone(),
            key: "environment".into(),
            message: format!(
                "a SERVICE_URL_/SERVICE_FQDN_ declaration names no port and the service exposes none: routed to port {DEFAULT_HTTP_PORT} (add `_<PORT>` to the name to choose)"
            ),
        });
    }
    let (volumes, files) = mounts(ctx, svc, notices).map_err(fail)?;
    let restart = svc.restart.unwrap_or(Restart::UnlessStopped);
    let mut aliases = vec![svc.name.clone()];
    aliases.extend(svc.aliases.iter().filter(|a| **a != svc.name).cloned());
    let spec = ApplicationSpec {
        source,
        destination: ctx.destination(),
        command: svc.entrypoint.iter().flatten().map(|a| unmark(a).0).collect(),
        args: svc.command.iter().flatten().map(|a| unmark(a).0).collect(),
        env,
        ports,
        domains,
        health_check: svc.healthcheck.as_ref().and_then(health_check),
        volumes,
        resources: resources(svc),
        replicas: 1,
        restart_policy: match restart {
            Restart::No => RestartPolicy::No,
            Restart::Always => RestartPolicy::Always,
            Restart::UnlessStopped => RestartPolicy::UnlessStopped,
            Restart::OnFailure => RestartPolicy::OnFailure,
        },
        delete_volumes: ctx.input.spec.deletion_policy == DeletionPolicy::Delete,
        user: svc.user.clone(),
        working_dir: svc.working_dir.clone(),
        hostname: svc.hostname.clone(),
        cap_add: svc.cap_add.clone(),
        cap_drop: svc.cap_drop.clone(),
        ulimits: svc
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
        sysctls: svc.sysctls.clone(),
        shm_size: svc.shm_size.map(|b| b.to_string()),
        stop_signal: svc.stop_signal.clone(),
        stop_grace_period: svc.stop_grace_period_secs.map(|s| format!("{s}s")),
        tty: svc.tty,
        stdin_open: svc.stdin_open,
        labels: svc.labels.iter().map(|(k, v)| (k.clone(), unmark(v).0)).collect(),
        network_aliases: aliases,
        files,
    };
    if svc.healthcheck.is_some() && spec.health_check.is_none() {
        notices.push(Notice {
            service: svc.name.clone(),
            key: "healthcheck".into(),
            message: "disabled: the member is ready once it runs".into(),
        });
    }
    Ok(Member {
        service: svc.name.clone(),
        object: object.to_owned(),
        child: Child::Application(Box::new(spec)),
        depends_on: svc.depends_on.clone(),
        excluded: svc.exclude_from_hc || restart == Restart::No,
        urls: ctx.urls.urls(&svc.name),
    })
}

/// The environment in file order; a value holding a generated secret becomes a reference to
/// the generated Secret (its value stored under `<member>.<VAR>`).
pub(super) fn environment(
    ctx: &Context<'_>,
    svc: &ComposeService,
    secret_env: &mut BTreeMap<String, String>,
) -> Vec<EnvVar> {
    let mut out: Vec<EnvVar> = Vec::new();
    for (name, value) in &svc.environment {
        let value = match value {
            Some(v) => Some(v.clone()),
            None => ctx.urls.value(name),
        };
        let Some(value) = value else { continue };
        let (plain, secret) = unmark(&value);
        let var = if secret {
            let key = format!("{}.{name}", svc.name);
            secret_env.insert(key.clone(), plain);
            EnvVar {
                name: name.clone(),
                value: None,
                secret_key_ref: Some(SecretKeyRef {
                    name: generated_secret_name(ctx.input.name),
                    key,
                }),
            }
        } else {
            EnvVar {
                name: name.clone(),
                value: Some(plain),
                secret_key_ref: None,
            }
        };
        // A later entry wins, as in compose.
        out.retain(|v| v.name != var.name);
        out.push(var);
    }
    out
}

fn ports(ctx: &Context<'_>, svc: &ComposeService) -> Result<Vec<Port>, String> {
    let mut out: Vec<Port> = Vec::new();
    let mut add = |container_port: u16, protocol: Protocol, host_port: Option<u16>| match out
        .iter_mut()
        .find(|p| p.container_port == container_port && p.protocol == protocol)
    {
        Some(p) if p.host_port.is_none() => p.host_port = host_port,
        Some(_) => {}
        None => out.push(Port {
            container_port,
            protocol,
            host_port,
        }),
    };
    for (i, p) in svc.ports.iter().enumerate() {
        if let Some(ip) = p
            .host_ip
            .as_deref()
            .filter(|ip| !matches!(*ip, "0.0.0.0" | "::" | ""))
        {
            return Err(format!(
                "ports[{i}]: publishing on {ip} only is not supported (berth publishes on all addresses); use a domain, or drop the host part"
            ));
        }
        add(p.container_port, protocol(p.protocol), p.host_port);
    }
    for e in &svc.expose {
        add(e.port, protocol(e.protocol), None);
    }
    for port in ctx.urls.ports(&svc.name) {
        add(port, Protocol::Tcp, None);
    }
    Ok(out)
}

fn protocol(p: model::Protocol) -> Protocol {
    match p {
        model::Protocol::Tcp => Protocol::Tcp,
        model::Protocol::Udp => Protocol::Udp,
    }
}

fn health_check(h: &model::Healthcheck) -> Option<HealthCheck> {
    let (command, shell) = match h.test.as_ref()? {
        HealthTest::Exec(argv) => (argv.iter().map(|a| unmark(a).0).collect(), None),
        HealthTest::Shell(script) => (Vec::new(), Some(unmark(script).0)),
    };
    Some(HealthCheck {
        http: None,
        command,
        shell,
        interval: format!("{}s", h.interval_secs.unwrap_or(30)),
        timeout: format!("{}s", h.timeout_secs.unwrap_or(30)),
        retries: h.retries.unwrap_or(3).max(1),
        start_period: format!("{}s", h.start_period_secs.unwrap_or(0)),
    })
}

fn resources(svc: &ComposeService) -> Option<ResourceLimits> {
    (svc.cpus.is_some() || svc.mem_limit.is_some()).then(|| ResourceLimits {
        cpus: svc.cpus.clone(),
        memory: svc.mem_limit.map(|b| b.to_string()),
    })
}

/// Volumes and seeded files.
fn mounts(
    ctx: &Context<'_>,
    svc: &ComposeService,
    notices: &mut Vec<Notice>,
) -> Result<(Vec<Volume>, Vec<FileMount>), String> {
    let mut volumes = Vec::new();
    let mut files = Vec::new();
    let mut anonymous = 0;
    for (i, m) in svc.volumes.iter().enumerate() {
        match &m.source {
            MountSource::Named(key) => {
                let (name, external) = ctx.volume_name(key);
                notices.extend(ctx.renamed(svc, i, key, &name));
                volumes.push(Volume {
                    name: Some(name),
                    host_path: None,
                    mount_path: m.target.clone(),
                    read_only: m.read_only,
                    external,
                });
            }
            MountSource::Anonymous => {
                anonymous += 1;
                let (name, _) = ctx.volume_name(&format!("{}-anon{anonymous}", svc.name));
                volumes.push(Volume {
                    name: Some(name),
                    host_path: None,
                    mount_path: m.target.clone(),
                    read_only: m.read_only,
                    external: false,
                });
            }
            MountSource::Bind {
                content: Some(content),
                is_directory: None | Some(false),
                ..
            } => files.push(FileMount {
                mount_path: m.target.clone(),
                content: content.clone(),
                read_only: m.read_only,
            }),
            MountSource::Bind { path, .. } => {
                let host = host_path(ctx, path).map_err(|e| format!("volumes[{i}]: {e}"))?;
                volumes.push(Volume {
                    name: None,
                    host_path: Some(host),
                    mount_path: m.target.clone(),
                    read_only: m.read_only,
                    external: false,
                });
            }
        }
    }
    Ok((volumes, files))
}

/// The server path of a bind source: relative ones under the Service's bind root.
fn host_path(ctx: &Context<'_>, path: &str) -> Result<String, String> {
    if path.starts_with('/') {
        return Ok(path.to_owned());
    }
    if path.starts_with('~') {
        return Err(format!(
            "{path:?}: a home-relative bind source has no meaning on a server; use a relative or absolute path"
        ));
    }
    let root = ctx
        .bind_root()
        .ok_or_else(|| format!("{path:?}: relative bind sources need berth's --host-root"))?;
    let mut out = root.clone();
    for c in Path::new(path).components() {
        match c {
            Component::CurDir => {}
            Component::Normal(p) => out.push(p),
            _ => return Err(format!("{path:?} leaves the Service's folder")),
        }
    }
    Ok(out.to_string_lossy().into_owned())
}

/// A Git URL context (`https://host/repo.git#ref:subdir`) as a Git build.
fn git_build(build: &model::Build) -> GitBuild {
    let (url, fragment) = match build.context.split_once('#') {
        Some((u, f)) => (u.to_owned(), Some(f)),
        None => (build.context.clone(), None),
    };
    let (reference, path) = match fragment.map(|f| f.split_once(':').unwrap_or((f, ""))) {
        Some((r, p)) => (
            (!r.is_empty()).then(|| r.to_owned()),
            (!p.is_empty()).then(|| p.to_owned()),
        ),
        None => (None, None),
    };
    GitBuild {
        url,
        ref_: reference,
        path,
        dockerfile: build.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into()),
        build_args: build.args.clone(),
        source_ref: None,
    }
}
