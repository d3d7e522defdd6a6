//! The container settings of an Application beyond image, command and ports (user,
//! capabilities, ulimits, sysctls, labels, extra DNS names, seeded files), and the checks of
//! its mounts (`spec.volumes`, `spec.files`).
//!
//! # Caveats
//! - `shmSize` accepts both API quantities (`64Mi`, `1G`) and Docker's lower-case sizes
//!   (`64m`, `1g`, powers of 1024), as docker-compose files write them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::application::ApplicationSpec;
use super::common::{exactly_one, non_empty};
use crate::rules;
use crate::validation::{FieldError, check, join};

/// The label prefix reserved for berth's own container labels.
pub const RESERVED_LABEL_PREFIX: &str = "dev.berth.";

/// A soft and a hard limit of one resource (`ulimit`); `-1` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ulimit {
    /// The soft limit, at most `hard`.
    #[schemars(range(min = -1))]
    pub soft: i64,
    /// The hard limit.
    #[schemars(range(min = -1))]
    pub hard: i64,
}

/// A file seeded once on the server, then bind-mounted into the container as a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileMount {
    /// The file's path inside the container.
    pub mount_path: String,
    /// The file's content when it is first written; later edits of the file on the server
    /// win (it is never written again).
    #[serde(default)]
    pub content: String,
    /// Whether the mount is read-only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
}

/// Whether a flag is off (for `skip_serializing_if`: absent flags stay absent in storage).
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// Bytes of a `shmSize`: an API quantity (`64Mi`, `1G`) or a Docker size (`64m`, `1g`,
/// `512k`, `100b`: powers of 1024).
pub fn shm_size_bytes(s: &str) -> Option<u64> {
    if let Some(bytes) = rules::parse_quantity(s) {
        return Some(bytes);
    }
    let (number, factor) = match s.char_indices().last()? {
        (i, 'b') => (&s[..i], 1),
        (i, 'k') => (&s[..i], 1 << 10),
        (i, 'm') => (&s[..i], 1 << 20),
        (i, 'g') => (&s[..i], 1 << 30),
        _ => return None,
    };
    if number.is_empty() || !number.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    number.parse::<u64>().ok()?.checked_mul(factor)
}

fn invalid(field: String, message: String) -> FieldError {
    FieldError::invalid(field, message)
}

/// A Linux capability: `NET_ADMIN`, `CAP_NET_ADMIN` or `ALL`.
fn capability(s: &str) -> bool {
    let name = s.strip_prefix("CAP_").unwrap_or(s);
    !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
}

/// A stop signal: `SIGTERM`, `TERM`, `SIGRTMIN+3` or a number.
fn signal(s: &str) -> bool {
    let name = s.strip_prefix("SIG").unwrap_or(s);
    !name.is_empty()
        && (name.bytes().all(|c| c.is_ascii_digit())
            || name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '+' | '-')))
}

/// A word without whitespace, control characters or `=`.
fn plain(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '=')
}

impl ApplicationSpec {
    /// Checks the container settings (user, working directory, capabilities, ulimits,
    /// sysctls, shm size, stop signal and grace period, labels, network aliases).
    pub(super) fn validate_container(&self, errors: &mut Vec<FieldError>) {
        if let Some(user) = &self.user
            && !plain(user)
        {
            errors.push(invalid(
                "spec.user".into(),
                format!("{user:?} must be a user name or UID, optionally ':group', without spaces"),
            ));
        }
        if let Some(dir) = &self.working_dir {
            check(errors, "spec.workingDir", rules::absolute_path(dir));
        }
        if let Some(h) = &self.hostname {
            check(errors, "spec.hostname", rules::dns1123_subdomain(h));
        }
        for (field, caps) in [("capAdd", &self.cap_add), ("capDrop", &self.cap_drop)] {
            for (i, cap) in caps.iter().enumerate() {
                if !capability(cap) {
                    errors.push(invalid(
                        format!("spec.{field}[{i}]"),
                        format!(
                            "{cap:?} is not a capability: upper-case letters and '_', optionally \
                             prefixed by 'CAP_' (e.g. 'NET_ADMIN')"
                        ),
                    ));
                }
            }
        }
        for (name, limit) in &self.ulimits {
            let base = join("spec.ulimits", name);
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase()) {
                errors.push(invalid(
                    base.clone(),
                    format!("{name:?} is not a ulimit name: lower-case letters (e.g. 'nofile')"),
                ));
            }
            let unlimited = |v: i64| if v < 0 { i64::MAX } else { v };
            if unlimited(limit.soft) > unlimited(limit.hard) {
                errors.push(invalid(
                    format!("{base}.soft"),
                    format!("soft limit {} exceeds hard limit {}", limit.soft, limit.hard),
                ));
            }
        }
        for (key, value) in &self.sysctls {
            let ok = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
            if !ok {
                errors.push(invalid(
                    join("spec.sysctls", key),
                    format!("{key:?} is not a sysctl name (e.g. 'net.core.somaxconn')"),
                ));
            }
            non_empty(&join("spec.sysctls", key), value, errors);
        }
        if let Some(size) = &self.shm_size
            && shm_size_bytes(size).is_none()
        {
            errors.push(invalid(
                "spec.shmSize".into(),
                format!("{size:?} is not a size (e.g. '64Mi', '1G', '64m', '1g')"),
            ));
        }
        if let Some(sig) = &self.stop_signal
            && !signal(sig)
        {
            errors.push(invalid(
                "spec.stopSignal".into(),
                format!("{sig:?} is not a signal (e.g. 'SIGTERM', 'SIGQUIT', '9')"),
            ));
        }
        if let Some(grace) = &self.stop_grace_period {
            check(errors, "spec.stopGracePeriod", rules::duration(grace));
        }
        for key in self.labels.keys() {
            let field = join("spec.labels", key);
            if key.starts_with(RESERVED_LABEL_PREFIX) {
                errors.push(FieldError::forbidden(
                    field,
                    format!("labels under {RESERVED_LABEL_PREFIX:?} are berth's own"),
                ));
            } else if !plain(key) {
                errors.push(invalid(
                    field,
                    format!("{key:?} is not a label key: no spaces, control characters or '='"),
                ));
            }
        }
        for (i, alias) in self.network_aliases.iter().enumerate() {
            let field = format!("spec.networkAliases[{i}]");
            check(errors, &field, rules::docker_name(alias));
            if self.network_aliases[..i].contains(alias) {
                errors.push(FieldError::duplicate(field, format!("{alias:?} is listed twice")));
            }
        }
    }

    /// Checks `spec.volumes` and `spec.files`: sources, mount paths, no path mounted twice.
    pub(super) fn validate_mounts(&self, errors: &mut Vec<FieldError>) {
        for (i, v) in self.volumes.iter().enumerate() {
            let base = format!("spec.volumes[{i}]");
            exactly_one(
                &base,
                &[("name", v.name.is_some()), ("hostPath", v.host_path.is_some())],
                errors,
            );
            if let Some(n) = &v.name {
                check(errors, format!("{base}.name"), rules::docker_name(n));
            }
            if let Some(h) = &v.host_path {
                check(errors, format!("{base}.hostPath"), rules::absolute_path(h));
                if v.external {
                    errors.push(FieldError::forbidden(
                        format!("{base}.external"),
                        "only a named volume can be external",
                    ));
                }
            }
            check(
                errors,
                format!("{base}.mountPath"),
                rules::absolute_path(&v.mount_path),
            );
            if self.volumes[..i].iter().any(|o| o.mount_path == v.mount_path) {
                errors.push(FieldError::duplicate(
                    format!("{base}.mountPath"),
                    "mounted twice",
                ));
            }
        }
        for (i, f) in self.files.iter().enumerate() {
            let field = format!("spec.files[{i}].mountPath");
            let path = &f.mount_path;
            if let Err((kind, message)) = rules::absolute_path(path) {
                errors.push(FieldError { field, kind, message });
                continue;
            }
            if path.ends_with('/') || path.split('/').skip(1).any(|s| s.is_empty() || s == ".") {
                errors.push(invalid(
                    field,
                    format!("{path:?} must name a file: no trailing '/', empty or '.' segments"),
                ));
            } else if self.files[..i].iter().any(|o| &o.mount_path == path)
                || self.volumes.iter().any(|v| &v.mount_path == path)
            {
                errors.push(FieldError::duplicate(field, "mounted twice"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_sizes_accept_quantities_and_docker_units() {
        assert_eq!(shm_size_bytes("64Mi"), Some(64 << 20));
        assert_eq!(shm_size_bytes("64m"), Some(64 << 20));
        assert_eq!(shm_size_bytes("1g"), Some(1 << 30));
        assert_eq!(shm_size_bytes("1G"), Some(1_000_000_000));
        assert_eq!(shm_size_bytes("100b"), Some(100));
        for bad in ["", "m", "1.5g", "-1m", "1x"] {
            assert_eq!(shm_size_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn capabilities_and_signals() {
        for ok in ["NET_ADMIN", "CAP_SYS_PTRACE", "ALL"] {
            assert!(capability(ok), "{ok}");
        }
        for bad in ["net_admin", "CAP_", "", "NET ADMIN", "_X"] {
            assert!(!capability(bad), "{bad}");
        }
        for ok in ["SIGTERM", "QUIT", "9", "SIGRTMIN+3"] {
            assert!(signal(ok), "{ok}");
        }
        for bad in ["", "SIG", "sigterm", "TERM;rm"] {
            assert!(!signal(bad), "{bad}");
        }
    }
}
