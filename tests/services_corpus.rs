//! Sends every compose file of the shared corpus (`../shared/corpus/compose/`, beside the
//! checkout; the same files `compose/tests/corpus.rs` reads) to one real `berth serve` as a
//! Service with `?dryRun=All`, and compares the files refused (with the first cause) against
//! `tests/services-corpus-refusals.txt`.
//!
//! This is the whole admission path: schema validation, then expansion into members and
//! their kinds' validation, then the members' bind mounts against the server's host root (a
//! fresh temporary directory). Each Service is named after its file (as `berth convert
//! compose` names it) and given, like the pure corpus test, `x` for every non-`SERVICE_`
//! variable the file never references with a default (its `.env`), so that `:?` never fires:
//! what is left are refusals of the file itself.
//!
//! After a deliberate change, rewrite the expectation with
//! `BERTH_BLESS=1 cargo test --test services_corpus`, and read the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use berth_compose::interpolate::{self, Form};
use common::{
    http::{Client, collection},
    server::{Backend, BerthServer},
};
use futures::StreamExt;
use serde_json::{Value, json};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/compose");
const EXPECTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/services-corpus-refusals.txt");

/// Requests in flight at once (the machine is shared; the server is one process).
const PARALLEL: usize = 4;

/// No controller acts and no Docker daemon is reached: admission only.
const NO_CONTROLLERS: &str = "server,destination,application,database,proxy,backup,gitrepository,service";

/// The corpus files as `(dir/name, path)`, sorted, the way `compose/tests/corpus.rs` finds them.
fn corpus() -> Vec<(String, PathBuf)> {
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
    files
}

/// `x` for every non-`SERVICE_` variable never referenced with a default (the pure corpus
/// test's lookup, as `spec.variables`). A file that does not load gets none: the server
/// says why.
fn variables(text: &str) -> BTreeMap<String, String> {
    let Ok(tree) = berth_compose::yaml::load(text) else {
        return BTreeMap::new();
    };
    let refs = interpolate::references(&tree);
    let defaulted: BTreeSet<&str> = refs
        .iter()
        .filter(|r| matches!(r.form, Form::DefaultIfUnset(_) | Form::DefaultIfUnsetOrEmpty(_)))
        .map(|r| r.name.as_str())
        .collect();
    refs.iter()
        .filter(|r| !r.name.starts_with("SERVICE_") && !defaulted.contains(r.name.as_str()))
        .map(|r| (r.name.clone(), "x".to_owned()))
        .collect()
}

/// `None` when the server admits the file; otherwise its first cause (or its message), with
/// the server's (temporary) host root written `<host-root>`.
async fn refusal(client: &Client, ns: &str, file: &Path, host_root: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let name = berth::cli::convert::default_name(file);
    let body = json!({
        "apiVersion": "berth.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"destination": "local", "compose": text, "variables": variables(&text)},
    });
    let path = format!("{}?dryRun=All", collection(Some(ns), "services"));
    let (code, status) = client.post(&path, &body).await;
    match code {
        200 | 201 => {
            assert_eq!(
                status["metadata"]["name"], name,
                "a dry run answers with the object: {status}"
            );
            None
        }
        422 => Some(first_cause(&status).replace(host_root, "<host-root>")),
        other => panic!("{}: unexpected answer {other}: {status}", file.display()),
    }
}

fn first_cause(status: &Value) -> String {
    match status.pointer("/details/causes/0") {
        Some(c) => format!(
            "{}: {}",
            c["field"].as_str().unwrap_or_default(),
            c["message"].as_str().unwrap_or_default()
        ),
        None => status["message"].as_str().unwrap_or_default().to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_through_the_server_matches_expectation() {
    let files = corpus();
    let host_root = tempfile::tempdir().unwrap();
    let root = host_root.path().to_str().unwrap().to_owned();
    let server = tokio::task::block_in_place(|| {
        BerthServer::start_with_log(
            Backend::Embedded,
            &[
                "--disable-controllers",
                NO_CONTROLLERS,
                "--docker",
                "unix:///nonexistent/berth-test/docker.sock",
                "--host-root",
                &root,
            ],
            "warn",
        )
    });
    let client = Client::new(&server.url, Some(&server.token));
    client
        .create(
            &collection(None, "projects"),
            &json!({"apiVersion": "berth.dev/v1", "kind": "Project", "metadata": {"name": "corpus"}, "spec": {}}),
        )
        .await;
    let ns = "corpus-production";

    let results: Vec<(String, Option<String>)> = futures::stream::iter(&files)
        .map(|(name, path)| {
            let (client, root) = (client.clone(), root.as_str());
            async move { (name.clone(), refusal(&client, ns, path, root).await) }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let actual: BTreeSet<String> = results
        .into_iter()
        .filter_map(|(name, reason)| reason.map(|r| format!("{name}: {}", r.replace('\n', " "))))
        .collect();

    let expanded = files.len() - actual.len();
    println!(
        "expanded {expanded}/{} ({:.1}%) through the server's dry run",
        files.len(),
        100.0 * expanded as f64 / files.len() as f64
    );
    let (_, stored) = client.get(&collection(Some(ns), "services")).await;
    assert_eq!(
        stored["items"].as_array().map(Vec::len),
        Some(0),
        "a dry run stores nothing: {stored}"
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
            "corpus refusals differ from tests/services-corpus-refusals.txt (- expected, + actual); bless with BERTH_BLESS=1:\n{diff}"
        );
    }
}
