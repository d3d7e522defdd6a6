//! Reading a service's `volumes:` entries and the top-level `volumes:`.
//!
//! # Guarantees
//! - Short syntax: `name:/path[:mode]` is a named volume, a source starting `/`, `.` or `~`
//!   a bind, a lone absolute `/path` an anonymous volume; `ro` in the mode makes it
//!   read-only (`rw`, `z`, `Z`, `nocopy`, propagation modes are accepted and change nothing).
//! - Long syntax: `type: volume|bind`, `source`, `target`, `read_only`, Coolify's `content`
//!   (verbatim) and `is_directory`/`isDirectory`; `bind`/`volume` option blocks and
//!   `consistency` are read and ignored.
//! - A bind of the Docker socket (any source ending in `docker.sock`) is refused: it hands the
//!   container the host.
//!
//! # Caveats
//! - `tmpfs`, `npipe` and `cluster` mounts are refused (no [`super::MountSource`] for them).
//! - The long-syntax `mode:` Coolify templates write for seeded files (`"0755"`) is not
//!   applied and yields a notice (Coolify makes every seeded file executable anyway).
//! - Top level: `name`, `external` (a boolean, or the old `{name: ...}` form) are read;
//!   `labels` is noticed; a `driver` other than `local` or any `driver_opts` is refused
//!   (berth creates plain local volumes).

use serde_yaml::Value;

use super::scalar;
use super::{MountSource, TopVolume, VolumeMount};
use crate::yaml::kind;

/// One service `volumes:` entry; the second value is a notice message, if any.
pub(super) fn mount(v: &Value) -> Result<(VolumeMount, Option<String>), String> {
    let (m, notice) = match v {
        Value::String(s) => (short(s)?, None),
        Value::Mapping(_) => long(v)?,
        other => return Err(format!("expected a volume, found {}", kind(other))),
    };
    if let MountSource::Bind { path, .. } = &m.source
        && path.trim_end_matches('/').ends_with("docker.sock")
    {
        return Err(format!(
            "binding the Docker socket ({path}) gives the container control of the host"
        ));
    }
    if !m.target.starts_with('/') {
        return Err(format!("the container path {:?} is not absolute", m.target));
    }
    Ok((m, notice))
}

fn is_host_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~')
}

fn source_of(s: &str) -> MountSource {
    if is_host_path(s) {
        MountSource::Bind {
            path: s.to_owned(),
            content: None,
            is_directory: None,
        }
    } else {
        MountSource::Named(s.to_owned())
    }
}

fn short(s: &str) -> Result<VolumeMount, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, ""),
        [source, target] => (Some(*source), *target, ""),
        [source, target, mode] => (Some(*source), *target, *mode),
        _ => return Err(format!("invalid volume {s:?}")),
    };
    let mut read_only = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => read_only = true,
            "rw" | "z" | "Z" | "nocopy" | "cached" | "delegated" | "consistent" | "shared" | "rshared"
            | "slave" | "rslave" | "private" | "rprivate" => {}
            other => return Err(format!("unknown volume mode {other:?} in {s:?}")),
        }
    }
    let source = match source {
        None | Some("") => MountSource::Anonymous,
        Some(src) => source_of(src),
    };
    Ok(VolumeMount {
        source,
        target: target.to_owned(),
        read_only,
    })
}

fn long(v: &Value) -> Result<(VolumeMount, Option<String>), String> {
    let Value::Mapping(map) = v else {
        return Err("expected a mapping".to_owned());
    };
    let mut kind_ = None;
    let mut source = None;
    let mut target = None;
    let mut read_only = false;
    let mut content = None;
    let mut is_directory = None;
    let mut notice = None;
    for (k, val) in map {
        match k.as_str().unwrap_or_default() {
            "type" => kind_ = Some(scalar::string(val)?),
            "source" => source = Some(scalar::string(val)?),
            "target" => target = Some(scalar::string(val)?),
            "read_only" => read_only = scalar::boolean(val)?,
            "content" => {
                content = Some(if val.is_null() {
                    String::new()
                } else {
                    scalar::string(val)?
                })
            }
            "is_directory" | "isDirectory" => is_directory = Some(scalar::boolean(val)?),
            "mode" => {
                notice = Some(format!(
                    "file mode {} is not applied",
                    scalar::string(val).unwrap_or_default()
                ))
            }
            "bind" | "volume" | "consistency" => {}
            "tmpfs" => return Err("tmpfs mounts are not supported".to_owned()),
            other => return Err(format!("unknown key {other:?} in a long-syntax volume")),
        }
    }
    let target = target.ok_or("a long-syntax volume needs `target`")?;
    let source = match (kind_.as_deref(), source) {
        (Some("bind"), Some(path)) => MountSource::Bind {
            path,
            content,
            is_directory,
        },
        (Some("bind"), None) => return Err("a bind needs `source`".to_owned()),
        (Some("volume") | None, Some(s)) if !s.is_empty() => {
            if kind_.is_none() && is_host_path(&s) {
                source_of(&s)
            } else {
                MountSource::Named(s)
            }
        }
        (Some("volume") | None, _) => MountSource::Anonymous,
        (Some(other), _) => return Err(format!("{other} mounts are not supported")),
    };
    Ok((
        VolumeMount {
            source,
            target,
            read_only,
        },
        notice,
    ))
}

/// One top-level `volumes:` entry; the second value lists noticed keys.
pub(super) fn top(v: &Value) -> Result<(TopVolume, Vec<String>), String> {
    let mut out = TopVolume::default();
    let mut noticed = Vec::new();
    let map = match v {
        Value::Null => return Ok((out, noticed)),
        Value::Mapping(m) => m,
        other => return Err(format!("expected a mapping, found {}", kind(other))),
    };
    for (k, val) in map {
        match k.as_str().unwrap_or_default() {
            "name" => out.name = Some(scalar::string(val)?),
            "external" => match val {
                Value::Mapping(m) => {
                    out.external = true;
                    if let Some(n) = m.get("name") {
                        out.name = Some(scalar::string(n)?);
                    }
                }
                other => out.external = scalar::boolean(other)?,
            },
            "driver" => {
                let d = scalar::string(val)?;
                if d != "local" {
                    return Err(format!(
                        "volume driver {d:?} is not supported (berth creates local volumes)"
                    ));
                }
            }
            "driver_opts" => {
                return Err("driver_opts are not supported (berth creates plain local volumes)".to_owned());
            }
            "labels" => noticed.push("labels".to_owned()),
            other => return Err(format!("unknown key {other:?}")),
        }
    }
    Ok((out, noticed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(path: &str) -> MountSource {
        MountSource::Bind {
            path: path.to_owned(),
            content: None,
            is_directory: None,
        }
    }

    fn vm(source: MountSource, target: &str, read_only: bool) -> VolumeMount {
        VolumeMount {
            source,
            target: target.to_owned(),
            read_only,
        }
    }

    #[test]
    fn mounts() {
        let cases = [
            (
                "data:/var/lib/data",
                vm(MountSource::Named("data".into()), "/var/lib/data", false),
            ),
            ("./rel:/app/x", vm(bind("./rel"), "/app/x", false)),
            ("/abs:/path:ro", vm(bind("/abs"), "/path", true)),
            ("~/x:/y:ro,z", vm(bind("~/x"), "/y", true)),
            ("/path", vm(MountSource::Anonymous, "/path", false)),
            (
                "{type: volume, source: db, target: /d, read_only: true}",
                vm(MountSource::Named("db".into()), "/d", true),
            ),
            (
                "{type: volume, target: /d}",
                vm(MountSource::Anonymous, "/d", false),
            ),
            (
                "{type: bind, source: ./f.sh, target: /f.sh, content: \"echo $X\", isDirectory: false}",
                vm(
                    MountSource::Bind {
                        path: "./f.sh".into(),
                        content: Some("echo $X".into()),
                        is_directory: Some(false),
                    },
                    "/f.sh",
                    false,
                ),
            ),
            (
                "{type: bind, source: ./d, target: /d, is_directory: true, bind: {create_host_path: true}}",
                vm(
                    MountSource::Bind {
                        path: "./d".into(),
                        content: None,
                        is_directory: Some(true),
                    },
                    "/d",
                    false,
                ),
            ),
        ];
        for (input, want) in cases {
            let v: Value = serde_yaml::from_str(input).unwrap();
            assert_eq!(mount(&v).unwrap().0, want, "{input}");
        }
        let v: Value = serde_yaml::from_str("{type: bind, source: ./s, target: /s, mode: '0755'}").unwrap();
        assert!(mount(&v).unwrap().1.is_some());
        for bad in [
            "/var/run/docker.sock:/var/run/docker.sock",
            "/run/docker.sock:/x:ro",
            "/home/u/.docker/desktop/docker.sock:/s",
            "{type: bind, source: /var/run/docker.sock, target: /s}",
            "{type: tmpfs, target: /t}",
            "a:b:c:d",
            "data:rel",
            "x:/y:weird",
            "{type: bind, target: /x}",
            "{source: x}",
        ] {
            let v: Value = serde_yaml::from_str(bad).unwrap();
            assert!(mount(&v).is_err(), "{bad}");
        }
    }

    #[test]
    fn tops() {
        let y = |s: &str| -> Value { serde_yaml::from_str(s).unwrap() };
        assert_eq!(top(&Value::Null).unwrap().0, TopVolume::default());
        let (t, _) = top(&y("{name: exact, external: true}")).unwrap();
        assert_eq!(
            t,
            TopVolume {
                name: Some("exact".into()),
                external: true
            }
        );
        let (t, _) = top(&y("{external: {name: old}}")).unwrap();
        assert_eq!(
            t,
            TopVolume {
                name: Some("old".into()),
                external: true
            }
        );
        assert!(top(&y("{driver: local}")).is_ok());
        assert!(top(&y("{driver_opts: {type: nfs}}")).is_err());
        assert!(top(&y("{driver: rexray}")).is_err());
    }
}
