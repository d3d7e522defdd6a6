//! Every document in `manifests/examples/*.yaml` validates, normalizes idempotently and
//! round-trips through its typed `Object<S>`; together the examples cover every kind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use berth_crds::Object;
use berth_crds::kinds::*;
use serde::Deserialize;
use serde_json::Value;

fn examples() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples");
    let mut docs = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no examples in {dir:?}");
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{path:?} document {i}: {e}"));
            docs.push((format!("{} document {i}", path.display()), value));
        }
    }
    docs
}

fn typed<S: berth_crds::Resource>(v: &Value) -> Value {
    let object: Object<S> = serde_json::from_value(v.clone()).unwrap();
    serde_json::to_value(object).unwrap()
}

fn typed_round_trip(kind: &str, v: &Value) -> Value {
    match kind {
        "Project" => typed::<ProjectSpec>(v),
        "Environment" => typed::<EnvironmentSpec>(v),
        "Server" => typed::<ServerSpec>(v),
        "Destination" => typed::<DestinationSpec>(v),
        "Proxy" => typed::<ProxySpec>(v),
        "Source" => typed::<SourceSpec>(v),
        "Secret" => typed::<SecretSpec>(v),
        "Application" => typed::<ApplicationSpec>(v),
        "Database" => typed::<DatabaseSpec>(v),
        "BackupStorage" => typed::<BackupStorageSpec>(v),
        "BackupSchedule" => typed::<BackupScheduleSpec>(v),
        "Backup" => typed::<BackupSpec>(v),
        "Restore" => typed::<RestoreSpec>(v),
        "Service" => typed::<ServiceSpec>(v),
        "Notifier" => typed::<NotifierSpec>(v),
        "GitRepository" => typed::<GitRepositorySpec>(v),
        "Event" => typed::<EventSpec>(v),
        other => panic!("no typed round trip for {other}"),
    }
}

#[test]
fn every_example_validates_and_round_trips() {
    let mut covered = BTreeSet::new();
    for (name, doc) in examples() {
        let kind_name = doc["kind"].as_str().unwrap_or_else(|| panic!("{name}: no kind"));
        let kind =
            berth_crds::lookup(kind_name).unwrap_or_else(|| panic!("{name}: unknown kind {kind_name}"));
        if let Err(e) = kind.validate(&doc) {
            panic!("{name} ({kind_name}) is invalid: {e}");
        }
        let normalized = kind.normalize(&doc).unwrap();
        assert_eq!(
            kind.normalize(&normalized).unwrap(),
            normalized,
            "{name}: normalize is not idempotent"
        );
        assert_eq!(
            typed_round_trip(kind.kind, &normalized),
            normalized,
            "{name}: typed round trip changed it"
        );
        // Every field the author wrote survives normalization unchanged.
        assert_subset(&doc, &normalized, &name);
        covered.insert(kind.kind);
    }
    let all: BTreeSet<_> = berth_crds::all_kinds().iter().map(|k| k.kind).collect();
    assert_eq!(covered, all, "every kind needs an example in manifests/examples");
}

fn assert_subset(written: &Value, normalized: &Value, name: &str) {
    match (written, normalized) {
        (Value::Object(w), Value::Object(n)) => {
            for (k, v) in w {
                let Some(nv) = n.get(k) else {
                    panic!("{name}: {k} was dropped")
                };
                assert_subset(v, nv, name);
            }
        }
        (Value::Array(w), Value::Array(n)) => {
            assert_eq!(w.len(), n.len(), "{name}: list length changed");
            w.iter().zip(n).for_each(|(w, n)| assert_subset(w, n, name));
        }
        (w, n) => assert_eq!(w, n, "{name}: value changed"),
    }
}
