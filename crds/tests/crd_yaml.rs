//! The checked-in `crds/*.yaml` files must be exactly what `berth_crds::crd::all()` generates.
//!
//! Run with `BERTH_UPDATE_CRDS=1` (what `make crds` does) to rewrite them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn crd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn checked_in() -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let entries = std::fs::read_dir(crd_dir()).unwrap_or_else(|e| panic!("cannot read crds/: {e}"));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("cannot read crds/: {e}")).path();
        if path.extension().is_some_and(|x| x == "yaml") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
            files.insert(name, text);
        }
    }
    files
}

#[test]
fn checked_in_crds_match_the_code() {
    let generated: BTreeMap<String, String> = berth_crds::crd::all()
        .unwrap_or_else(|e| panic!("cannot generate crds: {e}"))
        .into_iter()
        .collect();
    assert_eq!(generated.len(), berth_crds::all_kinds().len());

    if std::env::var("BERTH_UPDATE_CRDS").is_ok_and(|v| v == "1") {
        for name in checked_in().keys().filter(|n| !generated.contains_key(*n)) {
            std::fs::remove_file(crd_dir().join(name))
                .unwrap_or_else(|e| panic!("cannot remove {name}: {e}"));
        }
        for (name, text) in &generated {
            std::fs::write(crd_dir().join(name), text).unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
        }
    }

    let on_disk = checked_in();
    let mut problems = Vec::new();
    for (name, text) in &generated {
        match on_disk.get(name) {
            None => problems.push(format!("crds/{name} is missing")),
            Some(disk) if disk != text => problems.push(format!("crds/{name} is out of date")),
            Some(_) => {}
        }
    }
    for name in on_disk.keys().filter(|n| !generated.contains_key(*n)) {
        problems.push(format!("crds/{name} does not belong to any kind"));
    }
    assert!(
        problems.is_empty(),
        "the checked-in CRDs differ from the code: {}.\nRun `make crds` (or `BERTH_UPDATE_CRDS=1 cargo test -p berth-crds --test crd_yaml`) and commit the result.",
        problems.join("; ")
    );
}
