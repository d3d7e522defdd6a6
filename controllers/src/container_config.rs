//! The container settings every container-running kind (Application, Database) builds alike:
//! the network alias, `spec.env` with secret references resolved, and `spec.resources` as
//! Docker limits.
//!
//! # Guarantees
//! - Pure functions: the same inputs give the same alias, environment and limits on every
//!   run and in every process (they feed the config hashes).
//! - [`env`] never formats a secret's value: its error names the field, Secret and key only.
//!
//! # Caveats
//! - An unparsable quantity (`cpus`, `memory`) yields no limit; admission rejects those.

use std::collections::BTreeMap;

use berth_crds::kinds::application::{EnvVar, ResourceLimits};

/// Why an environment could not be resolved.
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
}

/// The stable DNS alias of an object's container on its destination network:
/// `<name>.<namespace>`.
pub fn alias(namespace: &str, name: &str) -> String {
    format!("{name}.{namespace}")
}

/// `spec.env` with secret references resolved through `secret`.
pub fn env(
    vars: &[EnvVar],
    secret: &(dyn Fn(&str, &str) -> Option<String> + Sync),
) -> Result<BTreeMap<String, String>, Error> {
    let mut env = BTreeMap::new();
    for (i, var) in vars.iter().enumerate() {
        let value = match (&var.value, &var.secret_key_ref) {
            (Some(v), _) => v.clone(),
            (None, Some(r)) => secret(&r.name, &r.key).ok_or_else(|| Error::MissingSecret {
                field: format!("spec.env[{i}].secretKeyRef"),
                secret: r.name.clone(),
                key: r.key.clone(),
            })?,
            (None, None) => String::new(),
        };
        env.insert(var.name.clone(), value);
    }
    Ok(env)
}

/// `spec.resources` as Docker limits: (CPU in thousandths, memory in bytes).
pub fn limits(resources: Option<&ResourceLimits>) -> (Option<u64>, Option<u64>) {
    (
        resources.and_then(|r| r.cpus.as_deref()).and_then(cpu_millis),
        resources.and_then(|r| r.memory.as_deref()).and_then(bytes),
    )
}

fn cpu_millis(text: &str) -> Option<u64> {
    match text.strip_suffix('m') {
        Some(m) => m.parse().ok(),
        None => text.parse::<f64>().ok().map(|c| (c * 1000.0).round() as u64),
    }
}

fn bytes(text: &str) -> Option<u64> {
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("K", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, mult) in units {
        if let Some(n) = text.strip_suffix(suffix) {
            return n.parse::<u64>().ok().map(|n| n * mult);
        }
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_crds::kinds::common::SecretKeyRef;

    #[test]
    fn alias_is_name_dot_namespace() {
        assert_eq!(alias("shop", "orders"), "orders.shop");
    }

    #[test]
    fn env_resolves_secrets_and_names_the_missing_one() {
        let lookup = |s: &str, k: &str| (s == "s" && k == "k").then(|| "v".to_string());
        let var = |name: &str, value: Option<&str>, r: Option<(&str, &str)>| EnvVar {
            name: name.into(),
            value: value.map(str::to_owned),
            secret_key_ref: r.map(|(n, k)| SecretKeyRef {
                name: n.into(),
                key: k.into(),
            }),
        };
        let env_ok = env(
            &[var("A", Some("1"), None), var("B", None, Some(("s", "k")))],
            &lookup,
        )
        .unwrap();
        assert_eq!(env_ok.get("A").map(String::as_str), Some("1"));
        assert_eq!(env_ok.get("B").map(String::as_str), Some("v"));
        let e = env(&[var("A", None, None), var("C", None, Some(("s", "x")))], &lookup).unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.env[1].secretKeyRef: secret \"s\" has no key \"x\" (or does not exist)"
        );
    }

    #[test]
    fn limits_parse_cpus_and_memory() {
        let r = ResourceLimits {
            cpus: Some("500m".into()),
            memory: Some("512Mi".into()),
        };
        assert_eq!(limits(Some(&r)), (Some(500), Some(512 << 20)));
        let r = ResourceLimits {
            cpus: Some("1.5".into()),
            memory: Some("2G".into()),
        };
        assert_eq!(limits(Some(&r)), (Some(1500), Some(2_000_000_000)));
        assert_eq!(limits(None), (None, None));
    }
}
