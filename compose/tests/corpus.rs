//! Reads every compose file of the shared corpus (`../shared/corpus/compose/`, beside the
//! checkout) through `yaml::load` → `interpolate::apply` → `ComposeFile::from_value`, and
//! compares the files refused (with the first reason) against `tests/corpus-refusals.txt`.
//!
//! The lookup gives `x` to every `SERVICE_*` variable and to every other variable that is
//! never referenced with a default, and nothing to the rest, so defaults apply and `:?`
//! never fires: what is left are the file's own refusals.
//!
//! After a deliberate change, rewrite the expectation with
//! `BERTH_BLESS=1 cargo test -p berth-compose --test corpus`, and read the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use berth_compose::interpolate::{self, Form};
use berth_compose::model::ComposeFile;
use berth_compose::yaml;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/compose");
const EXPECTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus-refusals.txt");

/// `None` when the file reads; otherwise the first reason it does not.
fn first_refusal(text: &str) -> Option<String> {
    let mut tree = match yaml::load(text) {
        Ok(t) => t,
        Err(e) => return Some(format!("yaml: {e}")),
    };
    let defaulted: BTreeSet<String> = interpolate::references(&tree)
        .into_iter()
        .filter(|r| matches!(r.form, Form::DefaultIfUnset(_) | Form::DefaultIfUnsetOrEmpty(_)))
        .map(|r| r.name)
        .collect();
    let lookup = |name: &str| -> Option<String> {
        if name.starts_with("SERVICE_") || !defaulted.contains(name) {
            Some("x".to_owned())
        } else {
            None
        }
    };
    if let Err(errs) = interpolate::apply(&mut tree, &lookup) {
        return Some(format!("interpolation: {}", errs[0]));
    }
    match ComposeFile::from_value(&tree) {
        Ok(_) => None,
        Err(refusals) => Some(refusals[0].to_string()),
    }
}

#[test]
fn corpus_refusals_match_expectation() {
    let root = Path::new(CORPUS);
    assert!(
        root.is_dir(),
        "the compose corpus is missing: {} does not exist",
        root.display()
    );
    let mut files = Vec::new();
    for dir in ["coolify-templates", "awesome-compose"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".yaml") || name.ends_with(".yml") {
                files.push((format!("{dir}/{name}"), path));
            }
        }
    }
    assert!(
        files.len() >= 400,
        "the compose corpus has only {} files (want at least 400)",
        files.len()
    );
    files.sort();

    let mut actual = BTreeSet::new();
    for (name, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        if let Some(reason) = first_refusal(&text) {
            actual.insert(format!("{name}: {}", reason.replace('\n', " ")));
        }
    }
    let expanded = files.len() - actual.len();
    println!(
        "expanded {expanded}/{} ({:.1}%)",
        files.len(),
        100.0 * expanded as f64 / files.len() as f64
    );

    if std::env::var_os("BERTH_BLESS").is_some() {
        let mut out = String::new();
        for line in &actual {
            out.push_str(line);
            out.push('\n');
        }
        std::fs::write(EXPECTED, out).unwrap();
        return;
    }
    let expected: BTreeSet<String> = std::fs::read_to_string(EXPECTED)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if actual != expected {
        let mut diff = String::new();
        for l in expected.difference(&actual) {
            diff.push_str(&format!("- {l}\n"));
        }
        for l in actual.difference(&expected) {
            diff.push_str(&format!("+ {l}\n"));
        }
        panic!(
            "corpus refusals differ from tests/corpus-refusals.txt (- expected, + actual); bless with BERTH_BLESS=1:\n{diff}"
        );
    }
}
