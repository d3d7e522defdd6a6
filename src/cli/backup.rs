//! `berth backup database/NAME [--storage S]...` and `berth restore database/NAME --backup B`:
//! create a Backup or a Restore object and wait (through the watch API) until it finished.
//!
//! # Guarantees
//! - Exit 0 only when the run succeeded; a failed run exits 1 with the run's own error.
//! - Without `--storage`, the storages of the database's only BackupSchedule are used; with
//!   none or several schedules the command asks for `--storage` instead of guessing.
//!
//! # Caveats
//! - `--no-wait` returns once the object exists; follow it with `berth get`.

use std::{ops::ControlFlow, process::ExitCode, time::Duration};

use berth_crds::registry::KindInfo;
use serde_json::{Value, json};

use super::{
    client::{Client, ListParams},
    error::{Error, Result},
    target,
    watch::{Seen, follow},
};

/// Arguments of `berth backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// `database/NAME` (or just `NAME`).
    pub target: String,
    /// Which namespace (`-n`, `-A`).
    #[command(flatten)]
    pub ns: target::NamespaceArgs,
    /// A BackupStorage to write to; repeatable.
    #[arg(long = "storage")]
    pub storages: Vec<String>,
    /// The Backup's name (default `<database>-manual-<unix time>-<random>`).
    #[arg(long)]
    pub name: Option<String>,
    /// Return once the Backup exists instead of waiting for the result.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting after this long.
    #[arg(long, default_value = "1h", value_parser = super::parse_duration)]
    pub timeout: Duration,
}

/// Arguments of `berth restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// `database/NAME` (or just `NAME`).
    pub target: String,
    /// Which namespace (`-n`, `-A`).
    #[command(flatten)]
    pub ns: target::NamespaceArgs,
    /// The Backup to restore.
    #[arg(long)]
    pub backup: String,
    /// The BackupStorage to read from (default: the backup's first copy).
    #[arg(long)]
    pub storage: Option<String>,
    /// The Restore's name (default `<database>-restore-<unix time>-<random>`).
    #[arg(long)]
    pub name: Option<String>,
    /// Return once the Restore exists instead of waiting for the result.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting after this long.
    #[arg(long, default_value = "1h", value_parser = super::parse_duration)]
    pub timeout: Duration,
}

fn database_name(target_arg: &str) -> Result<&str> {
    match target_arg.split_once('/') {
        Some((kind, name)) => {
            if target::kind(kind)?.kind != "Database" {
                return Err(Error::Usage(format!(
                    "{target_arg:?}: backups are of databases: database/NAME"
                )));
            }
            Ok(name)
        }
        None => Ok(target_arg),
    }
}

/// `<unix time>-<5 random hex digits>`: sortable, and unique even for runs started in the
/// same second.
fn unique_suffix() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{secs}-{}", &random[..5])
}

/// The storages of the only schedule of `db`.
async fn schedule_storages(c: &Client, ns: &str, db: &str) -> Result<Vec<String>> {
    let schedules = c
        .list(target::kind("BackupSchedule")?, Some(ns), &ListParams::default())
        .await?;
    let of_db: Vec<&Value> = schedules
        .items
        .iter()
        .filter(|s| s.pointer("/spec/database").and_then(Value::as_str) == Some(db))
        .collect();
    let [one] = of_db.as_slice() else {
        return Err(Error::Usage(format!(
            "--storage is required: database {db:?} has {} backup schedules to take storages from",
            of_db.len()
        )));
    };
    Ok(one
        .pointer("/spec/storages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect())
}

/// Runs `berth backup`.
pub async fn run_backup(c: &Client, args: &BackupArgs, default_ns: Option<&str>) -> Result<ExitCode> {
    let db = database_name(&args.target)?;
    let info = target::kind("Backup")?;
    let ns = target::namespace(info, args.ns.namespace.as_deref(), false, default_ns)?.unwrap_or_default();
    let storages = if args.storages.is_empty() {
        schedule_storages(c, &ns, db).await?
    } else {
        args.storages.clone()
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{db}-manual-{}", unique_suffix()));
    let body = json!({
        "apiVersion": "berth.dev/v1",
        "kind": "Backup",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"database": db, "storages": storages},
    });
    c.create(info, Some(&ns), &body, false).await?;
    println!("backup/{name} created");
    if args.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let done = finished(c, info, &ns, &name, args.timeout).await?;
    let st = &done["status"];
    if st["phase"] == "Succeeded" {
        let locations: Vec<String> = st["locations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                format!(
                    "{}:{}",
                    l["storage"].as_str().unwrap_or(""),
                    l["path"].as_str().unwrap_or("")
                )
            })
            .collect();
        println!(
            "backup/{name} succeeded: {} bytes, sha256 {}, {}",
            st["sizeBytes"],
            st["sha256"].as_str().unwrap_or(""),
            locations.join(", ")
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: backup/{name} failed: {}",
            st["error"].as_str().unwrap_or("unknown error")
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Runs `berth restore`.
pub async fn run_restore(c: &Client, args: &RestoreArgs, default_ns: Option<&str>) -> Result<ExitCode> {
    let db = database_name(&args.target)?;
    let info = target::kind("Restore")?;
    let ns = target::namespace(info, args.ns.namespace.as_deref(), false, default_ns)?.unwrap_or_default();
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{db}-restore-{}", unique_suffix()));
    let mut spec = json!({"database": db, "backup": args.backup});
    if let Some(s) = &args.storage {
        spec["storage"] = json!(s);
    }
    let body = json!({
        "apiVersion": "berth.dev/v1",
        "kind": "Restore",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    });
    c.create(info, Some(&ns), &body, false).await?;
    println!("restore/{name} created");
    if args.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let done = finished(c, info, &ns, &name, args.timeout).await?;
    let st = &done["status"];
    if st["phase"] == "Succeeded" {
        println!(
            "restore/{name} succeeded: {} bytes restored from {}",
            st["restoredBytes"], args.backup
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: restore/{name} failed: {}",
            st["error"].as_str().unwrap_or("unknown error")
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Waits until the object's phase is Succeeded or Failed; returns it then.
async fn finished(
    c: &Client,
    info: &'static KindInfo,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<Value> {
    let params = ListParams {
        labels: None,
        name: Some(name.to_owned()),
    };
    let mut last = Value::Null;
    let is_done = |o: &Value| {
        matches!(
            o.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        )
    };
    let watching = follow(c, info, Some(ns), &params, |seen| {
        let obj = match seen {
            Seen::Listed(items) => items.first(),
            Seen::Event(_, obj) => Some(obj),
        };
        match obj {
            Some(o) if is_done(o) => {
                last = o.clone();
                Ok(ControlFlow::Break(()))
            }
            _ => Ok(ControlFlow::Continue(())),
        }
    });
    match tokio::time::timeout(timeout, watching).await {
        Ok(r) => r.map(|()| last),
        Err(_) => Err(Error::Timeout(format!(
            "{}/{name} to finish ({timeout:?})",
            info.singular
        ))),
    }
}
