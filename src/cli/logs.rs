//! `berth logs app/NAME [-n NS] [-f] [--tail N] [--since DURATION] [--build]`: an
//! application's container logs — or, with `--build`, its latest build's log (Git sources) —
//! through the API server (so it works against a remote berth).

use std::{io::Write, process::ExitCode, time::Duration};

use futures::StreamExt;

use super::{
    client::Client,
    error::{Error, Result},
    target,
};

/// Arguments of `berth logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// `app/NAME` (or just `NAME`).
    pub target: String,
    /// Which namespace (`-n`, `-A`).
    #[command(flatten)]
    pub ns: target::NamespaceArgs,
    /// Keep streaming new lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines of each container.
    #[arg(long)]
    pub tail: Option<usize>,
    /// Only lines newer than this (`30s`, `5m`, `1h`).
    #[arg(long, value_parser = super::parse_duration)]
    pub since: Option<Duration>,
    /// The latest build's log (an application built from Git) instead of the containers';
    /// with `-f`, until the build ends.
    #[arg(long, conflicts_with = "since")]
    pub build: bool,
}

/// Runs `berth logs`.
pub async fn run(c: &Client, args: &LogsArgs, default_ns: Option<&str>) -> Result<ExitCode> {
    let name = match args.target.split_once('/') {
        Some((kind, name)) => {
            let info = target::kind(kind)?;
            if info.kind != "Application" {
                return Err(Error::Usage(format!(
                    "logs are only for applications, not {}",
                    info.plural
                )));
            }
            name
        }
        None => args.target.as_str(),
    };
    let info = target::kind("Application")?;
    let ns = target::namespace(info, args.ns.namespace.as_deref(), false, default_ns)?.unwrap_or_default();
    let mut stream = c
        .logs(
            &ns,
            name,
            args.follow,
            args.tail,
            args.since.map(|d| d.as_secs()),
            args.build,
        )
        .await?;
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}
