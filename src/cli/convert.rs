//! `berth convert compose FILE [--name N] [-n NS] [--destination D]`: a docker-compose file
//! as a Service manifest, checked locally (no server).
//!
//! # Guarantees
//! - stdout is one Service manifest (`apiVersion: berth.dev/v1`) whose `spec.compose` is the
//!   file's text byte for byte; it is printed even when the file does not expand, so that it
//!   can be saved and edited.
//! - stderr lists what expansion refused (`refused: ...`, each naming the compose service
//!   and key) or, when it expands, the members and what was accepted without effect
//!   (`notice: ...`). The exit code is 1 when anything was refused, 0 otherwise, 2 for a
//!   usage error (unreadable file, bad `--name`).
//! - The default name is the file's stem, or its folder's name for `docker-compose.yml` /
//!   `compose.yaml` (or `service` for stdin), made a DNS-1123 label.
//!
//! # Caveats
//! - The check expands with placeholder magic values and the placeholder host root
//!   [`PLACEHOLDER_HOST_ROOT`]: relative bind sources pass here, and the server refuses them
//!   at apply when it runs without `--host-root`; absolute bind sources are not checked
//!   against a host root here.

use std::{
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
    process::ExitCode,
};

use berth_compose::{
    expand::{self, Input},
    magic,
};
use berth_crds::{Resource, kinds::ServiceSpec};
use clap::Subcommand;
use serde_yaml::{Mapping, Value};

use super::error::{Error, Result};

/// The host root the local check expands with (the server uses its own `--host-root`).
pub const PLACEHOLDER_HOST_ROOT: &str = "/var/lib/berth";

/// The name used when none is given and none can be derived.
const FALLBACK_NAME: &str = "service";

/// Arguments of `berth convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// What to convert.
    #[command(subcommand)]
    pub command: ConvertCommand,
}

/// The `berth convert` verbs.
#[derive(Debug, Subcommand)]
pub enum ConvertCommand {
    /// Print a Service manifest made from a docker-compose file; refusals go to stderr.
    Compose(ComposeArgs),
}

/// Arguments of `berth convert compose`.
#[derive(Debug, clap::Args)]
pub struct ComposeArgs {
    /// The compose file (`-` for standard input).
    pub file: PathBuf,
    /// The Service's name (default: from the file name).
    #[arg(long)]
    pub name: Option<String>,
    /// The Environment (namespace) written into the manifest (default: none, so that
    /// `berth apply -n` decides).
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    /// The Destination whose server runs the members.
    #[arg(long, default_value = "default")]
    pub destination: String,
}

/// Runs `berth convert`.
pub fn run(args: &ConvertArgs) -> ExitCode {
    match &args.command {
        ConvertCommand::Compose(c) => match compose(c) {
            Ok(report) => {
                print!("{}", report.manifest);
                for line in &report.messages {
                    eprintln!("{line}");
                }
                if report.refused {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                e.exit_code()
            }
        },
    }
}

/// What `convert compose` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The manifest (stdout).
    pub manifest: String,
    /// The refusals, or the members and notices (stderr), one per line.
    pub messages: Vec<String>,
    /// Whether anything was refused.
    pub refused: bool,
}

/// Reads the file and converts it.
fn compose(args: &ComposeArgs) -> Result<Report> {
    let text = read(&args.file)?;
    let name = match &args.name {
        Some(n) => {
            berth_crds::rules::dns1123_label(n)
                .map_err(|(_, m)| Error::Usage(format!("--name {n:?}: {m}")))?;
            n.clone()
        }
        None => default_name(&args.file),
    };
    if let Some(ns) = &args.namespace {
        berth_crds::rules::dns1123_label(ns).map_err(|(_, m)| Error::Usage(format!("-n {ns:?}: {m}")))?;
    }
    Ok(convert(
        &text,
        &name,
        args.namespace.as_deref(),
        &args.destination,
    ))
}

fn read(path: &Path) -> Result<String> {
    let io = |e: std::io::Error| Error::Usage(format!("{}: {e}", path.display()));
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(io)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(io)
}

/// The Service manifest for compose `text` and what expanding it says.
pub fn convert(text: &str, name: &str, namespace: Option<&str>, destination: &str) -> Report {
    let spec = ServiceSpec {
        compose: Some(text.to_owned()),
        destination: destination.to_owned(),
        ..ServiceSpec::default()
    };
    let manifest = manifest(name, namespace, &spec);
    let mut errors = Vec::new();
    spec.validate(&mut errors);
    if !errors.is_empty() {
        return Report {
            manifest,
            messages: errors.iter().map(|e| format!("refused: {e}")).collect(),
            refused: true,
        };
    }
    match check(&spec, name, namespace.unwrap_or("default")) {
        Ok(messages) => Report {
            manifest,
            messages,
            refused: false,
        },
        Err(messages) => Report {
            manifest,
            messages,
            refused: true,
        },
    }
}

/// Expands `spec` as the server's admission does; `Ok` holds the members and notices,
/// `Err` the refusals.
fn check(spec: &ServiceSpec, name: &str, namespace: &str) -> std::result::Result<Vec<String>, Vec<String>> {
    let refused = |e: &expand::Error| -> Vec<String> {
        match e {
            expand::Error::Refused(refusals) => refusals
                .iter()
                .map(|r| format!("refused: spec.compose: {r}"))
                .collect(),
            expand::Error::Interpolation(errs) => errs
                .iter()
                .map(|m| format!("refused: spec.compose: {m}"))
                .collect(),
            other => vec![format!("refused: {other}")],
        }
    };
    let needed = expand::needed(spec).map_err(|e| refused(&e))?;
    let mut generated = BTreeMap::new();
    let mut messages = Vec::new();
    for (var, m) in &needed {
        match magic::generate(m) {
            Ok(v) => {
                generated.insert(var.clone(), v);
            }
            Err(e) => return Err(vec![format!("refused: {var}: {e}")]),
        }
    }
    let expansion = expand::expand(Input {
        namespace,
        name,
        spec,
        generated: &generated,
        host_root: Some(Path::new(PLACEHOLDER_HOST_ROOT)),
    })
    .map_err(|e| refused(&e))?;
    for m in &expansion.members {
        let mut line = format!("member: {} -> {} {}", m.service, m.child.kind(), m.object);
        if !m.urls.is_empty() {
            line.push_str(&format!(" ({})", m.urls.join(", ")));
        }
        messages.push(line);
    }
    if !needed.is_empty() {
        let names: Vec<&str> = needed.iter().map(|(n, _)| n.as_str()).collect();
        messages.push(format!("generated at apply: {}", names.join(", ")));
    }
    for n in &expansion.notices {
        let place = match (n.service.is_empty(), n.key.is_empty()) {
            (true, _) => n.key.clone(),
            (false, true) => format!("services.{}", n.service),
            (false, false) => format!("services.{}.{}", n.service, n.key),
        };
        messages.push(format!("notice: {place}: {}", n.message));
    }
    Ok(messages)
}

/// The manifest text: `apiVersion`, `kind`, `metadata`, `spec` in that order.
fn manifest(name: &str, namespace: Option<&str>, spec: &ServiceSpec) -> String {
    let mut metadata = Mapping::new();
    metadata.insert("name".into(), name.into());
    if let Some(ns) = namespace {
        metadata.insert("namespace".into(), ns.into());
    }
    let mut body = Mapping::new();
    body.insert("destination".into(), spec.destination.clone().into());
    body.insert("compose".into(), spec.compose.clone().unwrap_or_default().into());
    let mut doc = Mapping::new();
    doc.insert("apiVersion".into(), berth_crds::API_VERSION.into());
    doc.insert("kind".into(), ServiceSpec::KIND.into());
    doc.insert("metadata".into(), Value::Mapping(metadata));
    doc.insert("spec".into(), Value::Mapping(body));
    serde_yaml::to_string(&Value::Mapping(doc)).unwrap_or_default()
}

/// The default Service name for `path`: the stem, or the folder's name for the
/// conventional compose file names.
pub fn default_name(path: &Path) -> String {
    if path == Path::new("-") {
        return FALLBACK_NAME.to_owned();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let conventional = matches!(
        stem.as_str(),
        "docker-compose" | "compose" | "docker-compose.override" | "compose.override"
    );
    let raw = if conventional {
        folder_name(path).unwrap_or(stem)
    } else {
        stem
    };
    let name = sanitize(&raw);
    if name.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        name
    }
}

fn folder_name(path: &Path) -> Option<String> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::env::current_dir().ok()?,
    };
    let parent = parent.canonicalize().unwrap_or(parent);
    parent.file_name().map(|s| s.to_string_lossy().into_owned())
}

/// `raw` as a DNS-1123 label: lower-case letters, digits and single `-`, at most 63
/// characters, starting and ending with an alphanumeric.
pub fn sanitize(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(63);
    out.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_stem_or_the_folder() {
        assert_eq!(default_name(Path::new("/x/My_App.yaml")), "my-app");
        assert_eq!(
            default_name(Path::new("/srv/Blog.Site/docker-compose.yml")),
            "blog-site"
        );
        assert_eq!(default_name(Path::new("/srv/blog/compose.yaml")), "blog");
        assert_eq!(default_name(Path::new("-")), "service");
        assert_eq!(default_name(Path::new("/x/__.yaml")), "service");
        assert_eq!(sanitize(&"a".repeat(70)).len(), 63);
        assert_eq!(sanitize("--A--b--"), "a-b");
    }

    #[test]
    fn a_manifest_keeps_the_text_and_refusals_are_listed() {
        let text = "services:\n  web:\n    image: nginx\n    privileged: true\n";
        let r = convert(text, "web", Some("p-production"), "default");
        assert!(r.refused);
        assert!(
            r.messages.iter().any(|m| m.contains("services.web.privileged")),
            "{:?}",
            r.messages
        );
        let doc: serde_yaml::Value = serde_yaml::from_str(&r.manifest).unwrap();
        assert_eq!(doc["apiVersion"], "berth.dev/v1");
        assert_eq!(doc["kind"], "Service");
        assert_eq!(doc["metadata"]["namespace"], "p-production");
        assert_eq!(doc["spec"]["compose"].as_str(), Some(text));
        assert!(r.manifest.starts_with("apiVersion: "), "{}", r.manifest);

        let ok = convert("services:\n  web:\n    image: nginx\n", "web", None, "default");
        assert!(!ok.refused, "{:?}", ok.messages);
        assert!(
            ok.messages
                .iter()
                .any(|m| m.starts_with("member: web -> Application web-web"))
        );
    }
}
