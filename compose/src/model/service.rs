//! Reading one compose service: every key mapped, refused or noticed.
//!
//! # Guarantees
//! - Every key is handled by name: mapped to a [`ComposeService`] field, refused with a
//!   [`Refusal`], or accepted with a [`Notice`]; an unknown key is refused, naming it.
//! - All refusals of a service are collected, not just the first.
//!
//! # Caveats (the decisions, key by key)
//! - Refused, because berth cannot honour them on a shared host without handing out more
//!   than a container: `network_mode` (any value: berth attaches every member to the
//!   Service's network; `host` and `service:x` share namespaces, `none` would be silently
//!   wrong), `privileged: true`, `pid`, `ipc: host`, `uts: host`, `userns_mode`, `devices`,
//!   `cgroup_parent`, `security_opt` entries that loosen confinement (anything but
//!   `no-new-privileges`, e.g. `seccomp:unconfined`, `apparmor:unconfined`,
//!   `label:disable`), a Docker socket bind.
//! - Refused, because berth has no counterpart: `build` with a local context (only a Git
//!   URL context, `https://`, `http://`, `git@`, `ssh://`, `git://`, optionally `#ref`),
//!   `env_file`, `secrets`, `configs`, `extends`, `volumes_from`, `runtime` (an alternative
//!   OCI runtime), `tmpfs`, `gpus`, `group_add`, `storage_opt`, `isolation`, `scale`,
//!   `mem_reservation`/`memswap_limit` and other resource knobs beyond `mem_limit`/`cpus`.
//! - Noticed (accepted, not acted on): `container_name` (berth names containers),
//!   `platform`, `logging`, `links` (names resolve anyway), `profiles` (berth runs every
//!   compose service), `read_only` (the root filesystem stays writable), `domainname`,
//!   `networks` names (all members share one network; `ipv4_address`/`ipv6_address` are
//!   noticed too), `security_opt: no-new-privileges`, `healthcheck.start_interval`,
//!   `depends_on.<x>.required`/`restart`, `deploy` keys other than
//!   `resources.limits.{cpus,memory}`, `build` keys other than context/dockerfile/args/target,
//!   `init`, `pull_policy`, `extra_hosts`, `dns`, `dns_search`, `mac_address`: see
//!   [`NOTICED`].
//! - `x-*` keys are ignored silently (they are anchors' homes).
//! - `restart`: `no` (also YAML 1.1 `false`), `always`, `unless-stopped`, `on-failure[:N]`
//!   (the count is dropped).

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use super::{
    Build, ComposeService, Dependency, DependencyCondition, HealthTest, Healthcheck, Notice, Refusal,
    Restart, Ulimit, ports, scalar, shell, volumes,
};
use crate::yaml::kind;

/// Keys accepted without effect, with what berth does instead.
pub const NOTICED: &[(&str, &str)] = &[
    ("container_name", "berth names containers itself"),
    ("platform", "the image is pulled for the host's platform"),
    ("logging", "containers log to berth's default driver"),
    (
        "links",
        "compose service names resolve on the Service's network anyway",
    ),
    ("profiles", "berth runs every compose service"),
    ("read_only", "the root filesystem stays writable"),
    ("domainname", "not set"),
    ("pull_policy", "berth pulls images by its own policy"),
    ("extra_hosts", "not added"),
    ("dns", "containers use Docker's resolver"),
    ("dns_search", "containers use Docker's resolver"),
    ("mac_address", "Docker assigns addresses"),
    ("labels_from", "not read"),
    ("oom_score_adj", "not set"),
    ("init", "no init process is injected"),
];

/// Keys refused outright, with the reason.
const REFUSED: &[(&str, &str)] = &[
    (
        "env_file",
        "env files are not read: put the variables in `environment:` or the Service's variables",
    ),
    (
        "secrets",
        "compose secrets are not supported: use environment variables from a Secret",
    ),
    (
        "configs",
        "compose configs are not supported: use a bind with `content:`",
    ),
    (
        "extends",
        "`extends` is not supported: inline the extended service",
    ),
    (
        "volumes_from",
        "sharing another container's volumes is not supported: mount the named volumes",
    ),
    ("devices", "host devices are not given to containers"),
    ("pid", "sharing a PID namespace is not allowed"),
    ("uts", "sharing the UTS namespace is not allowed"),
    ("userns_mode", "user namespace modes are not supported"),
    ("cgroup_parent", "cgroup placement is not supported"),
    ("cgroup", "cgroup namespace modes are not supported"),
    ("runtime", "alternative container runtimes are not supported"),
    ("tmpfs", "tmpfs mounts are not supported"),
    ("gpus", "GPUs are not given to containers"),
    ("group_add", "supplementary groups are not supported"),
    ("storage_opt", "storage options are not supported"),
    ("isolation", "isolation modes are not supported"),
    ("scale", "berth runs one container per compose service"),
    ("mem_reservation", "only `mem_limit` is supported"),
    ("memswap_limit", "only `mem_limit` is supported"),
    ("mem_swappiness", "only `mem_limit` is supported"),
    ("cpu_shares", "only `cpus` is supported"),
    ("cpu_quota", "only `cpus` is supported"),
    ("cpu_period", "only `cpus` is supported"),
    ("cpuset", "only `cpus` is supported"),
    ("pids_limit", "pid limits are not supported"),
    ("blkio_config", "block IO limits are not supported"),
    ("oom_kill_disable", "not supported"),
    ("external_links", "containers outside the Service are not linked"),
    ("credential_spec", "not supported"),
    ("develop", "compose watch is not supported"),
    ("post_start", "lifecycle hooks are not supported"),
    ("pre_stop", "lifecycle hooks are not supported"),
    ("annotations", "not supported"),
    ("attach", "not supported"),
];

/// Collects a service's refusals and notices.
struct Reader<'a> {
    service: &'a str,
    refusals: &'a mut Vec<Refusal>,
    notices: &'a mut Vec<Notice>,
}

impl Reader<'_> {
    fn refuse(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.refusals.push(Refusal {
            service: self.service.to_owned(),
            key: key.into(),
            reason: reason.into(),
        });
    }

    fn notice(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.notices.push(Notice {
            service: self.service.to_owned(),
            key: key.into(),
            message: message.into(),
        });
    }

    /// Runs `f`, refusing `key` with its error.
    fn read<T>(&mut self, key: &str, f: impl FnOnce() -> Result<T, String>) -> Option<T> {
        match f() {
            Ok(v) => Some(v),
            Err(reason) => {
                self.refuse(key, reason);
                None
            }
        }
    }
}

/// Reads compose service `name` from its body.
pub(super) fn service(
    name: &str,
    body: &Mapping,
    refusals: &mut Vec<Refusal>,
    notices: &mut Vec<Notice>,
) -> ComposeService {
    let mut r = Reader {
        service: name,
        refusals,
        notices,
    };
    let mut s = ComposeService {
        name: name.to_owned(),
        ..ComposeService::default()
    };
    for (k, v) in body {
        let Some(key) = k.as_str() else {
            r.refuse(format!("{k:?}"), "a key must be a string");
            continue;
        };
        if key.starts_with("x-") {
            continue;
        }
        if let Some((_, message)) = NOTICED.iter().find(|(n, _)| *n == key) {
            r.notice(key, *message);
            continue;
        }
        if let Some((_, reason)) = REFUSED.iter().find(|(n, _)| *n == key) {
            r.refuse(key, *reason);
            continue;
        }
        field(&mut r, &mut s, key, v);
    }
    s
}

/// The items of a list-valued key; anything but a list (or null) is refused.
fn items<'v>(r: &mut Reader<'_>, key: &str, v: &'v Value) -> &'v [Value] {
    match v {
        Value::Sequence(items) => items,
        Value::Null => &[],
        other => {
            r.refuse(key, format!("expected a list, found {}", kind(other)));
            &[]
        }
    }
}

fn opt_string(r: &mut Reader<'_>, key: &str, v: &Value) -> Option<String> {
    if v.is_null() {
        return None;
    }
    r.read(key, || scalar::string(v))
}

fn flag(r: &mut Reader<'_>, key: &str, v: &Value) -> bool {
    r.read(key, || scalar::boolean(v)).unwrap_or(false)
}

fn field(r: &mut Reader<'_>, s: &mut ComposeService, key: &str, v: &Value) {
    match key {
        "image" => s.image = opt_string(r, key, v),
        "build" => s.build = build(r, v),
        "environment" => s.environment = r.read(key, || scalar::entries(v)).unwrap_or_default(),
        "volumes" => {
            for (i, item) in items(r, key, v).iter().enumerate() {
                let k = format!("volumes[{i}]");
                if let Some((m, notice)) = r.read(&k, || volumes::mount(item)) {
                    s.volumes.push(m);
                    if let Some(n) = notice {
                        r.notice(k, n);
                    }
                }
            }
        }
        "healthcheck" => s.healthcheck = healthcheck(r, v),
        "depends_on" => s.depends_on = depends_on(r, v),
        "entrypoint" => s.entrypoint = r.read(key, || argv(v)).flatten(),
        "command" => s.command = r.read(key, || argv(v)).flatten(),
        "ports" => {
            for (i, item) in items(r, key, v).iter().enumerate() {
                if let Some(p) = r.read(&format!("ports[{i}]"), || ports::port(item)) {
                    s.ports.extend(p);
                }
            }
        }
        "expose" => {
            for (i, item) in items(r, key, v).iter().enumerate() {
                if let Some(p) = r.read(&format!("expose[{i}]"), || ports::expose(item)) {
                    s.expose.extend(p);
                }
            }
        }
        "restart" => s.restart = r.read(key, || restart(v)),
        "labels" => s.labels = r.read(key, || map_of(v)).unwrap_or_default(),
        "sysctls" => s.sysctls = r.read(key, || map_of(v)).unwrap_or_default(),
        "user" => s.user = opt_string(r, key, v),
        "working_dir" => s.working_dir = opt_string(r, key, v),
        "hostname" => s.hostname = opt_string(r, key, v),
        "cap_add" => s.cap_add = r.read(key, || scalar::strings(v)).unwrap_or_default(),
        "cap_drop" => s.cap_drop = r.read(key, || scalar::strings(v)).unwrap_or_default(),
        "ulimits" => s.ulimits = r.read(key, || ulimits(v)).unwrap_or_default(),
        "shm_size" => s.shm_size = r.read(key, || scalar::size_bytes(v)),
        "mem_limit" => s.mem_limit = r.read(key, || scalar::size_bytes(v)),
        "cpus" => s.cpus = opt_string(r, key, v),
        "deploy" => deploy(r, s, v),
        "stop_grace_period" => s.stop_grace_period_secs = r.read(key, || scalar::duration_secs(v)),
        "stop_signal" => s.stop_signal = opt_string(r, key, v),
        "tty" => s.tty = flag(r, key, v),
        "stdin_open" => s.stdin_open = flag(r, key, v),
        "exclude_from_hc" => s.exclude_from_hc = flag(r, key, v),
        "networks" => networks(r, s, v),
        "privileged" => {
            if flag(r, key, v) {
                r.refuse(key, "privileged containers are not allowed");
            }
        }
        "network_mode" => {
            let mode = scalar::string(v).unwrap_or_default();
            r.refuse(
                key,
                format!(
                    "network_mode {mode:?} is not supported: every member joins the Service's own network"
                ),
            );
        }
        "ipc" => {
            let mode = scalar::string(v).unwrap_or_default();
            if mode != "private" && mode != "shareable" {
                r.refuse(key, format!("ipc {mode:?} is not allowed (only private)"));
            }
        }
        "security_opt" => security_opt(r, v),
        other => r.refuse(other, format!("unknown key {other:?}")),
    }
}

/// `command:` / `entrypoint:`: a list as is, a string split like a shell; null is `None`.
fn argv(v: &Value) -> Result<Option<Vec<String>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Sequence(_) => scalar::strings(v).map(Some),
        Value::String(s) => shell::split(s).map(Some),
        other => Err(format!("expected a string or a list, found {}", kind(other))),
    }
}

fn map_of(v: &Value) -> Result<BTreeMap<String, String>, String> {
    Ok(scalar::entries(v)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

fn is_git_url(context: &str) -> bool {
    ["https://", "http://", "git@", "ssh://", "git://"]
        .iter()
        .any(|p| context.starts_with(p))
}

fn build(r: &mut Reader<'_>, v: &Value) -> Option<Build> {
    let mut b = Build::default();
    match v {
        Value::String(s) => b.context = s.clone(),
        Value::Mapping(m) => {
            for (k, val) in m {
                let key = k.as_str().unwrap_or_default();
                let path = format!("build.{key}");
                match key {
                    "context" => b.context = r.read(&path, || scalar::string(val)).unwrap_or_default(),
                    "dockerfile" => b.dockerfile = opt_string(r, &path, val),
                    "target" => b.target = opt_string(r, &path, val),
                    "args" => b.args = r.read(&path, || map_of(val)).unwrap_or_default(),
                    "dockerfile_inline" | "additional_contexts" | "secrets" | "ssh" => {
                        r.refuse(path, format!("build.{key} is not supported"))
                    }
                    _ => r.notice(path, "not used when building"),
                }
            }
            if b.context.is_empty() {
                b.context = ".".to_owned();
            }
        }
        other => {
            r.refuse(
                "build",
                format!("expected a string or a mapping, found {}", kind(other)),
            );
            return None;
        }
    }
    if !is_git_url(&b.context) {
        r.refuse(
            "build",
            format!(
                "the build context {:?} is not a Git URL: berth builds only from Git (or use a prebuilt image)",
                b.context
            ),
        );
        return None;
    }
    Some(b)
}

fn healthcheck(r: &mut Reader<'_>, v: &Value) -> Option<Healthcheck> {
    let Value::Mapping(m) = v else {
        r.refuse("healthcheck", format!("expected a mapping, found {}", kind(v)));
        return None;
    };
    let mut h = Healthcheck::default();
    let mut disabled = false;
    for (k, val) in m {
        let key = k.as_str().unwrap_or_default();
        let path = format!("healthcheck.{key}");
        match key {
            "test" => h.test = r.read(&path, || health_test(val)).flatten(),
            "interval" => h.interval_secs = r.read(&path, || scalar::duration_secs(val)),
            "timeout" => h.timeout_secs = r.read(&path, || scalar::duration_secs(val)),
            "retries" => h.retries = r.read(&path, || scalar::uint32(val)),
            "start_period" => h.start_period_secs = r.read(&path, || scalar::duration_secs(val)),
            "start_interval" => r.notice(path, "the start interval is the interval"),
            "disable" => disabled = r.read(&path, || scalar::boolean(val)).unwrap_or(false),
            other => r.refuse(path, format!("unknown key {other:?}")),
        }
    }
    if disabled {
        h.test = None;
    }
    Some(h)
}

fn health_test(v: &Value) -> Result<Option<HealthTest>, String> {
    match v {
        Value::String(s) => Ok(Some(HealthTest::Shell(s.clone()))),
        Value::Sequence(_) => {
            let items = scalar::strings(v)?;
            match items.split_first() {
                Some((first, rest)) if first == "CMD" => Ok(Some(HealthTest::Exec(rest.to_vec()))),
                Some((first, rest)) if first == "CMD-SHELL" => Ok(Some(HealthTest::Shell(rest.join(" ")))),
                Some((first, _)) if first == "NONE" => Ok(None),
                _ => Err("a test list must start with CMD, CMD-SHELL or NONE".to_owned()),
            }
        }
        other => Err(format!("expected a string or a list, found {}", kind(other))),
    }
}

fn depends_on(r: &mut Reader<'_>, v: &Value) -> Vec<Dependency> {
    let mut out = Vec::new();
    match v {
        Value::Sequence(_) => {
            for name in r.read("depends_on", || scalar::strings(v)).unwrap_or_default() {
                out.push(Dependency {
                    service: name,
                    condition: DependencyCondition::Started,
                });
            }
        }
        Value::Mapping(m) => {
            for (k, body) in m {
                let Some(name) = k.as_str() else { continue };
                let path = format!("depends_on.{name}");
                let mut condition = DependencyCondition::Started;
                if let Value::Mapping(opts) = body {
                    for (ok, ov) in opts {
                        match ok.as_str().unwrap_or_default() {
                            "condition" => match scalar::string(ov).unwrap_or_default().as_str() {
                                "service_started" => condition = DependencyCondition::Started,
                                "service_healthy" => condition = DependencyCondition::Healthy,
                                "service_completed_successfully" => {
                                    condition = DependencyCondition::CompletedSuccessfully
                                }
                                other => r.refuse(
                                    format!("{path}.condition"),
                                    format!("unknown condition {other:?}"),
                                ),
                            },
                            "required" | "restart" => r.notice(
                                format!("{path}.{}", ok.as_str().unwrap_or_default()),
                                "not acted on",
                            ),
                            other => r.refuse(format!("{path}.{other}"), format!("unknown key {other:?}")),
                        }
                    }
                } else if !body.is_null() {
                    r.refuse(path, format!("expected a mapping, found {}", kind(body)));
                    continue;
                }
                out.push(Dependency {
                    service: name.to_owned(),
                    condition,
                });
            }
        }
        Value::Null => {}
        other => r.refuse(
            "depends_on",
            format!("expected a list or a mapping, found {}", kind(other)),
        ),
    }
    out
}

fn restart(v: &Value) -> Result<Restart, String> {
    if v == &Value::Bool(false) {
        return Ok(Restart::No);
    }
    let s = scalar::string(v)?;
    match s.as_str() {
        "no" | "false" => Ok(Restart::No),
        "always" => Ok(Restart::Always),
        "unless-stopped" => Ok(Restart::UnlessStopped),
        "on-failure" => Ok(Restart::OnFailure),
        other => match other.strip_prefix("on-failure:") {
            Some(n) if n.parse::<u32>().is_ok() => Ok(Restart::OnFailure),
            _ => Err(format!("unknown restart policy {other:?}")),
        },
    }
}

fn ulimits(v: &Value) -> Result<BTreeMap<String, Ulimit>, String> {
    let Value::Mapping(m) = v else {
        return Err(format!("expected a mapping, found {}", kind(v)));
    };
    let mut out = BTreeMap::new();
    for (k, val) in m {
        let name = scalar::string(k)?;
        let limit = match val {
            Value::Mapping(lim) => {
                let get = |key: &str| {
                    lim.get(key)
                        .ok_or_else(|| format!("ulimit {name} needs `{key}`"))
                        .and_then(scalar::int)
                };
                Ulimit {
                    soft: get("soft")?,
                    hard: get("hard")?,
                }
            }
            other => {
                let n = scalar::int(other)?;
                Ulimit { soft: n, hard: n }
            }
        };
        out.insert(name, limit);
    }
    Ok(out)
}

fn deploy(r: &mut Reader<'_>, s: &mut ComposeService, v: &Value) {
    let Value::Mapping(m) = v else {
        r.refuse("deploy", format!("expected a mapping, found {}", kind(v)));
        return;
    };
    for (k, val) in m {
        let key = k.as_str().unwrap_or_default();
        if key != "resources" {
            r.notice(format!("deploy.{key}"), "swarm settings are not acted on");
            continue;
        }
        let Value::Mapping(res) = val else { continue };
        for (rk, rv) in res {
            let rkey = rk.as_str().unwrap_or_default();
            if rkey != "limits" {
                r.notice(format!("deploy.resources.{rkey}"), "only limits are applied");
                continue;
            }
            let Value::Mapping(limits) = rv else { continue };
            for (lk, lv) in limits {
                let lkey = lk.as_str().unwrap_or_default();
                let path = format!("deploy.resources.limits.{lkey}");
                match lkey {
                    "memory" => s.mem_limit = r.read(&path, || scalar::size_bytes(lv)),
                    "cpus" => s.cpus = opt_string(r, &path, lv),
                    _ => r.notice(path, "only cpus and memory limits are applied"),
                }
            }
        }
    }
}

fn networks(r: &mut Reader<'_>, s: &mut ComposeService, v: &Value) {
    let message = "all members share the Service's one network";
    match v {
        Value::Sequence(_) => {
            for n in r.read("networks", || scalar::strings(v)).unwrap_or_default() {
                r.notice(format!("networks.{n}"), message);
            }
        }
        Value::Mapping(m) => {
            for (k, body) in m {
                let name = scalar::string(k).unwrap_or_default();
                r.notice(format!("networks.{name}"), message);
                let Value::Mapping(opts) = body else { continue };
                for (ok, ov) in opts {
                    let okey = ok.as_str().unwrap_or_default();
                    let path = format!("networks.{name}.{okey}");
                    match okey {
                        "aliases" => {
                            if let Some(a) = r.read(&path, || scalar::strings(ov)) {
                                s.aliases.extend(a);
                            }
                        }
                        _ => r.notice(path, "not applied: Docker assigns addresses"),
                    }
                }
            }
        }
        Value::Null => {}
        other => r.refuse(
            "networks",
            format!("expected a list or a mapping, found {}", kind(other)),
        ),
    }
}

fn security_opt(r: &mut Reader<'_>, v: &Value) {
    for (i, opt) in r
        .read("security_opt", || scalar::strings(v))
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let normal = opt.replace('=', ":");
        if matches!(normal.as_str(), "no-new-privileges" | "no-new-privileges:true") {
            r.notice(format!("security_opt[{i}]"), "containers keep Docker's defaults");
        } else {
            r.refuse(
                format!("security_opt[{i}]"),
                format!(
                    "security option {opt:?} is not allowed (it loosens confinement or needs a host profile)"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> (ComposeService, Vec<Refusal>, Vec<Notice>) {
        let body: Mapping = serde_yaml::from_str(yaml).unwrap();
        let (mut refusals, mut notices) = (Vec::new(), Vec::new());
        let s = service("web", &body, &mut refusals, &mut notices);
        (s, refusals, notices)
    }

    fn refused_keys(yaml: &str) -> Vec<String> {
        read(yaml).1.into_iter().map(|r| r.key).collect()
    }

    #[test]
    fn refusals_are_all_collected() {
        let keys = refused_keys(
            "network_mode: host\nprivileged: true\npid: host\nipc: host\ndevices: [/dev/kvm]\nenv_file: .env\nsecrets: [a]\nconfigs: [b]\nextends: x\nvolumes_from: [y]\nbogus: 1\nsecurity_opt: [no-new-privileges:true, seccomp:unconfined, apparmor=unconfined]\nvolumes: [/var/run/docker.sock:/var/run/docker.sock, ok:/ok]\nbuild: ./app\n",
        );
        assert_eq!(
            keys,
            [
                "network_mode",
                "privileged",
                "pid",
                "ipc",
                "devices",
                "env_file",
                "secrets",
                "configs",
                "extends",
                "volumes_from",
                "bogus",
                "security_opt[1]",
                "security_opt[2]",
                "volumes[0]",
                "build"
            ]
        );
    }

    #[test]
    fn accepted_forms() {
        let (s, refusals, notices) = read(
            r#"
image: app:1
privileged: false
x-anything: {a: 1}
container_name: fixed
build: {context: "https://github.com/a/b.git#main", dockerfile: Dockerfile, args: [A=1]}
environment: {A: 1, B: null, C: "x"}
command: sh -c "echo hi"
entrypoint: ["/bin/tini", "--"]
healthcheck: {test: "curl -f http://x", interval: 1m30s, timeout: 10s, retries: "3", start_period: 5s}
depends_on: {db: {condition: service_healthy}, cache: {condition: service_started, required: false}}
restart: false
labels: [a=b]
sysctls: {net.core.somaxconn: 1024}
ulimits: {nofile: {soft: 1, hard: 2}, nproc: 65535}
shm_size: 1g
deploy: {resources: {limits: {cpus: "0.5", memory: 512m}}}
stop_grace_period: 1m
networks: {default: {aliases: [a.b]}}
exclude_from_hc: true
security_opt: [no-new-privileges:true]
"#,
        );
        assert_eq!(refusals, vec![]);
        assert_eq!(s.image.as_deref(), Some("app:1"));
        assert_eq!(s.build.unwrap().args["A"], "1");
        assert_eq!(
            s.environment,
            vec![
                ("A".into(), Some("1".into())),
                ("B".into(), None),
                ("C".into(), Some("x".into()))
            ]
        );
        assert_eq!(s.command.unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(s.entrypoint.unwrap(), ["/bin/tini", "--"]);
        let h = s.healthcheck.unwrap();
        assert_eq!(h.test, Some(HealthTest::Shell("curl -f http://x".into())));
        assert_eq!(
            (h.interval_secs, h.timeout_secs, h.retries, h.start_period_secs),
            (Some(90), Some(10), Some(3), Some(5))
        );
        assert_eq!(s.depends_on[0].condition, DependencyCondition::Healthy);
        assert_eq!(s.depends_on[1].condition, DependencyCondition::Started);
        assert_eq!(s.restart, Some(Restart::No));
        assert_eq!(s.labels["a"], "b");
        assert_eq!(s.sysctls["net.core.somaxconn"], "1024");
        assert_eq!(
            s.ulimits["nproc"],
            Ulimit {
                soft: 65535,
                hard: 65535
            }
        );
        assert_eq!(s.ulimits["nofile"], Ulimit { soft: 1, hard: 2 });
        assert_eq!(s.shm_size, Some(1 << 30));
        assert_eq!(s.mem_limit, Some(512 << 20));
        assert_eq!(s.cpus.as_deref(), Some("0.5"));
        assert_eq!(s.stop_grace_period_secs, Some(60));
        assert_eq!(s.aliases, ["a.b"]);
        assert!(s.exclude_from_hc);
        let noticed: Vec<&str> = notices.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(
            noticed,
            [
                "container_name",
                "depends_on.cache.required",
                "networks.default",
                "security_opt[0]"
            ]
        );
    }

    #[test]
    fn health_tests() {
        let y = |s: &str| -> Value { serde_yaml::from_str(s).unwrap() };
        assert_eq!(
            health_test(&y("[CMD, a, b]")).unwrap(),
            Some(HealthTest::Exec(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            health_test(&y("[CMD-SHELL, a || b]")).unwrap(),
            Some(HealthTest::Shell("a || b".into()))
        );
        assert_eq!(health_test(&y("[NONE]")).unwrap(), None);
        assert!(health_test(&y("[curl]")).is_err());
        let (s, _, _) = read("healthcheck: {test: [CMD, x], disable: true}");
        assert_eq!(s.healthcheck.unwrap().test, None);
    }

    #[test]
    fn restarts() {
        let cases = [
            ("no", Some(Restart::No)),
            ("\"no\"", Some(Restart::No)),
            ("false", Some(Restart::No)),
            ("always", Some(Restart::Always)),
            ("unless-stopped", Some(Restart::UnlessStopped)),
            ("on-failure", Some(Restart::OnFailure)),
            ("on-failure:5", Some(Restart::OnFailure)),
            ("on-failure:x", None),
            ("sometimes", None),
        ];
        for (input, want) in cases {
            let v: Value = serde_yaml::from_str(input).unwrap();
            assert_eq!(restart(&v).ok(), want, "{input}");
        }
    }

    #[test]
    fn git_contexts() {
        for ok in [
            "https://github.com/a/b.git",
            "git@github.com:a/b.git#v1",
            "ssh://x/y",
            "git://x/y",
            "http://x/y#ref",
        ] {
            assert!(is_git_url(ok), "{ok}");
        }
        for bad in [".", "./app", "/abs", "backend/"] {
            assert!(!is_git_url(bad), "{bad}");
        }
    }
}
