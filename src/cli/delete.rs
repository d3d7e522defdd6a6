//! `berth delete KIND NAME... | -f FILE`: delete objects, optionally waiting until they are
//! gone.
//!
//! # Guarantees
//! - With `-f`, the manifests are validated first and objects are deleted in reverse
//!   dependency order (workloads before the Environments and Projects they live in).
//! - `--wait` returns only once every deleted object is gone (finalizers done), via watch.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use berth_crds::registry::KindInfo;

use super::{
    client::Client,
    error::{Error, Result},
    manifest,
    output::name_of,
    target,
    wait::{WaitFor, until},
};

/// Arguments of `berth delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The kind, or `KIND/NAME` (not with `-f`).
    #[arg(required_unless_present = "files", conflicts_with = "files")]
    pub kind: Option<String>,
    /// Names of the objects.
    pub names: Vec<String>,
    /// Delete the objects of these manifests (file, directory or `-`).
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// Which namespace (`-n`, `-A`).
    #[command(flatten)]
    pub ns: target::NamespaceArgs,
    /// Wait until the objects are gone.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits.
    #[arg(long, default_value = "60s", value_parser = super::parse_duration)]
    pub timeout: Duration,
    /// Treat objects that do not exist as deleted.
    #[arg(long)]
    pub ignore_not_found: bool,
}

/// Runs `berth delete`.
pub async fn run(client: &Client, args: &DeleteArgs, default_ns: Option<&str>) -> Result<ExitCode> {
    let mut targets: Vec<(&'static KindInfo, Option<String>, String)> = Vec::new();
    if args.files.is_empty() {
        let kind = args.kind.as_deref().unwrap_or_default();
        let (info, names) = target::kind_and_names(kind, &args.names)?;
        if names.is_empty() {
            return Err(Error::Usage(
                "delete needs a NAME (or KIND/NAME, or -f FILE)".into(),
            ));
        }
        let ns = target::namespace(info, args.ns.namespace.as_deref(), false, default_ns)?;
        targets.extend(names.into_iter().map(|n| (info, ns.clone(), n)));
    } else {
        let ns = args.ns.namespace.as_deref().or(default_ns);
        let mut docs = manifest::load(&args.files, ns)?;
        docs.reverse();
        targets.extend(
            docs.iter()
                .map(|d| (d.info, d.namespace().map(str::to_owned), d.name().to_owned())),
        );
    }
    let mut deleted = Vec::new();
    for (info, ns, name) in &targets {
        match client.delete(info, ns.as_deref(), name).await {
            Ok(obj) => {
                println!("{} deleted", name_of(info, &obj));
                deleted.push((*info, ns, name));
            }
            Err(e) if args.ignore_not_found && e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    if args.wait {
        for (info, ns, name) in deleted {
            until(client, info, ns.as_deref(), name, &WaitFor::Delete, args.timeout).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
