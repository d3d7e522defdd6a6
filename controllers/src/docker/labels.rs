//! The `dev.berth.*` labels berth puts on every Docker object it creates, and the
//! owner they name.
//!
//! # Guarantees
//! - [`Owner::labels`] and [`Owner::from_labels`] round-trip.
//! - Everything labelled through [`Owner::labels`] carries `dev.berth.managed=true`,
//!   the label the event stream and listings filter on.

use std::collections::BTreeMap;

/// Labels of a Docker object; ordered so that hashes and diffs are stable.
pub type Labels = BTreeMap<String, String>;

/// `true` on every object berth manages.
pub const MANAGED: &str = "dev.berth.managed";
/// Kind of the owning berth object, e.g. `Application`.
pub const KIND: &str = "dev.berth.kind";
/// Namespace of the owning berth object.
pub const NAMESPACE: &str = "dev.berth.namespace";
/// Name of the owning berth object.
pub const NAME: &str = "dev.berth.name";
/// UID of the owning berth object: tells a recreated object from its predecessor.
pub const UID: &str = "dev.berth.uid";
/// [`ContainerSpec::config_hash`](super::ContainerSpec::config_hash) of the spec a
/// container was created from; set by container creation.
pub const CONFIG_HASH: &str = "dev.berth.config-hash";
/// Replica index of a container among its owner's replicas.
pub const REPLICA: &str = "dev.berth.replica";
/// Test run id: end-to-end tests label everything they create with it and remove
/// everything carrying it when they finish.
pub const RUN: &str = "dev.berth.run";

/// `label=` filter value selecting every berth-managed object.
pub const MANAGED_FILTER: &str = "dev.berth.managed=true";

/// The berth object a Docker object belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Kind, e.g. `Application`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
}

impl Owner {
    /// The labels naming this owner, plus `dev.berth.managed=true`.
    pub fn labels(&self) -> Labels {
        Labels::from([
            (MANAGED.to_string(), "true".to_string()),
            (KIND.to_string(), self.kind.clone()),
            (NAMESPACE.to_string(), self.namespace.clone()),
            (NAME.to_string(), self.name.clone()),
            (UID.to_string(), self.uid.clone()),
        ])
    }

    /// The owner named by `labels`, if they carry all four owner labels and the
    /// managed label. Extra labels are ignored.
    pub fn from_labels<'a, I>(labels: I) -> Option<Owner>
    where
        I: IntoIterator<Item = (&'a String, &'a String)>,
    {
        let (mut managed, mut kind, mut namespace, mut name, mut uid) = (false, None, None, None, None);
        for (key, value) in labels {
            match key.as_str() {
                MANAGED => managed = value == "true",
                KIND => kind = Some(value.clone()),
                NAMESPACE => namespace = Some(value.clone()),
                NAME => name = Some(value.clone()),
                UID => uid = Some(value.clone()),
                _ => {}
            }
        }
        if !managed {
            return None;
        }
        Some(Owner {
            kind: kind?,
            namespace: namespace?,
            name: name?,
            uid: uid?,
        })
    }
}

/// Turns `labels` into Docker `label=key=value` filter values (all must match).
pub(super) fn label_filters(labels: &Labels) -> Vec<String> {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Converts Docker's label map into ordered [`Labels`].
pub(super) fn from_docker(labels: Option<std::collections::HashMap<String, String>>) -> Labels {
    labels.unwrap_or_default().into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_round_trips_through_labels() {
        let owner = Owner {
            kind: "Application".into(),
            namespace: "default".into(),
            name: "web".into(),
            uid: "1234".into(),
        };
        let mut labels = owner.labels();
        assert_eq!(labels.get(MANAGED).map(String::as_str), Some("true"));
        labels.insert("other".into(), "x".into());
        assert_eq!(Owner::from_labels(&labels), Some(owner));
    }

    #[test]
    fn unmanaged_or_partial_labels_name_no_owner() {
        let mut labels = Labels::from([
            (KIND.to_string(), "Application".to_string()),
            (NAMESPACE.to_string(), "default".to_string()),
            (NAME.to_string(), "web".to_string()),
            (UID.to_string(), "1".to_string()),
        ]);
        assert_eq!(Owner::from_labels(&labels), None);
        labels.insert(MANAGED.into(), "true".into());
        labels.remove(UID);
        assert_eq!(Owner::from_labels(&labels), None);
    }
}
