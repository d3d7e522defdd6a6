//! The `berth` command line: global flags and one subcommand per verb.
//!
//! Each verb lives in its own module; [`run`] maps their errors to exit codes (0 success,
//! 1 a failure reported by the server or a diff, 2 a usage error) and prints them as
//! `error: <message>`.

pub mod apply;
pub mod backup;
pub mod client;
pub mod convert;
pub mod delete;
pub mod describe;
pub mod diff;
pub mod error;
pub mod get;
pub mod logs;
pub mod manifest;
pub mod notify;
pub mod output;
pub mod target;
pub mod templates;
pub mod wait;
pub mod watch;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::{
    api::server::Limits,
    serve::{self, ServeOptions, StoreConfig},
};

/// berth: run applications, databases and services on Docker hosts the Kubernetes way.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, propagate_version = true)]
pub struct Cli {
    /// The API server's URL (default: from the client config file).
    #[arg(long, global = true, env = "BERTH_SERVER")]
    pub server: Option<String>,
    /// The bearer token (default: from the client config file).
    #[arg(long, global = true, env = "BERTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server and the controllers.
    Serve(Box<ServeArgs>),
    /// Create or update objects from manifests (three-way merge, all or nothing).
    Apply(apply::ApplyArgs),
    /// List objects, or show some, as a table, YAML, JSON or names; `-w` follows changes.
    Get(get::GetArgs),
    /// Show one object in detail: spec, status and conditions.
    Describe(describe::DescribeArgs),
    /// Delete objects by name or by manifest.
    Delete(delete::DeleteArgs),
    /// Show what `apply` would change, as a unified diff (exit 1 when there are changes).
    Diff(diff::DiffArgs),
    /// Wait for a condition on an object, or for its deletion.
    Wait(wait::WaitArgs),
    /// Print (or follow) the logs of an application's containers, every replica.
    Logs(logs::LogsArgs),
    /// Back up a database now (creates a Backup) and wait for the result.
    Backup(backup::BackupArgs),
    /// Restore a database from a Backup (creates a Restore) and wait for the result.
    Restore(backup::RestoreArgs),
    /// Notifiers: `berth notify test notifier/NAME` sends a test message now.
    Notify(notify::NotifyArgs),
    /// Print the CustomResourceDefinitions of every kind (or write them into a directory).
    Crds {
        /// Write one `<kind>.yaml` per kind into this directory instead of printing.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Browse the service templates built into berth (works offline).
    Templates(templates::TemplatesArgs),
    /// Convert a docker-compose file into a Service manifest (works offline).
    Convert(convert::ConvertArgs),
    /// Print the client and server versions.
    Version,
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Arguments of `berth serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Directory of the embedded store (the default store).
    #[arg(long, default_value = ".berth", conflicts_with = "etcd")]
    pub data_dir: PathBuf,
    /// Use etcd at these endpoints (comma-separated URLs) instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:7443")]
    pub listen: SocketAddr,
    /// Docker endpoint the controllers drive.
    #[arg(long, default_value = "unix:///var/run/docker.sock")]
    pub docker: String,
    /// A YAML file of extra tokens: `tokens: [{name, token, role: viewer|admin}]`.
    #[arg(long)]
    pub tokens_file: Option<PathBuf>,
    /// Embedded store: events kept for watch replay; older ones are compacted away.
    #[arg(long, default_value_t = 100_000)]
    pub history_limit: u64,
    /// How long a watch may wait for a slow client before the server drops it.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub slow_watcher_timeout: Duration,
    /// Events queued per watch (beyond the connection's buffers; 0 means the default)
    /// before the slow-watcher timeout starts to count.
    #[arg(long, default_value_t = crate::api::watch::DEFAULT_QUEUE)]
    pub watch_queue: usize,
    /// Interval between watch bookmarks.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub bookmark_interval: Duration,
    /// Deadline of a non-watch request.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Workers per controller (concurrent reconciles of different objects).
    #[arg(long, default_value_t = 2)]
    pub controller_workers: usize,
    /// How often controllers reconcile every object even without changes (a safety net).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub resync_period: Duration,
    /// Docker network of the default Destination berth creates on the `localhost` Server.
    #[arg(long, default_value = "berth")]
    pub default_network: String,
    /// `KEY=VALUE` label put on every Docker object berth creates and required on every one
    /// it lists or sweeps (scopes this berth on a shared daemon); repeatable.
    #[arg(long = "docker-label", value_parser = parse_label)]
    pub docker_labels: Vec<(String, String)>,
    /// The only host directory Applications may bind-mount from (none when unset): other
    /// host paths are refused at admission, naming the field.
    #[arg(long)]
    pub host_root: Option<PathBuf>,
    /// Without a health check, how long a container must run to count as ready.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub app_min_ready: Duration,
    /// How long new replicas may take to become ready before a rollout fails.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub app_progress_deadline: Duration,
    /// Controllers not to run (comma-separated: `server`, `destination`, `application`, `database`,
    /// `service`, `proxy`, `backup`, `gitrepository`, `notification`).
    #[arg(long, value_delimiter = ',')]
    pub disable_controllers: Vec<String>,
    /// Where GitRepositories' bare repositories are cached (default: `<data-dir>/git`, or
    /// `<temp dir>/berth-git` with `--etcd`).
    #[arg(long)]
    pub git_cache_dir: Option<PathBuf>,
}

/// Parses `key=value`.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

/// Parses `500ms`, `10s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 10s, 5m or 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{s:?} has an unknown unit (ms, s, m, h)")),
    }
}

/// Runs the parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => {
            let git_cache_dir = match (&args.git_cache_dir, args.etcd.is_empty()) {
                (Some(dir), _) => dir.clone(),
                (None, true) => args.data_dir.join("git"),
                (None, false) => std::env::temp_dir().join("berth-git"),
            };
            // Build logs sit beside the Git cache: `<git cache>/../builds`.
            let build_logs = match (
                args.git_cache_dir.as_deref().and_then(std::path::Path::parent),
                args.etcd.is_empty(),
            ) {
                (Some(parent), _) => parent.join("builds"),
                (None, true) => args.data_dir.join("builds"),
                (None, false) => std::env::temp_dir().join("berth-builds"),
            };
            let store = if args.etcd.is_empty() {
                StoreConfig::Embedded {
                    dir: args.data_dir,
                    history_limit: args.history_limit,
                }
            } else {
                StoreConfig::Etcd(args.etcd)
            };
            let limits = Limits {
                bookmark_interval: args.bookmark_interval,
                request_timeout: args.request_timeout,
                slow_watcher_timeout: args.slow_watcher_timeout,
                watch_queue: args.watch_queue,
                ..Limits::default()
            };
            let docker = match berth_controllers::docker::Docker::connect(&args.docker).await {
                Ok(docker) => Some(docker),
                Err(e) => {
                    tracing::warn!(docker = %args.docker, error = %e, "cannot reach docker; container controllers are off");
                    None
                }
            };
            let opts = ServeOptions {
                store,
                listen: args.listen,
                tokens_file: args.tokens_file,
                limits,
                admission: crate::api::admission::Policy {
                    host_root: args.host_root.clone(),
                },
                controllers: berth_controllers::Options {
                    controller: berth_runtime::ControllerConfig {
                        workers: args.controller_workers.max(1),
                        resync: args.resync_period,
                        ..Default::default()
                    },
                    docker: berth_controllers::dockers::DockerOptions {
                        uri: args.docker,
                        default_network: args.default_network,
                        scope: args.docker_labels.into_iter().collect(),
                    },
                    apps: berth_controllers::application::AppOptions {
                        min_ready: args.app_min_ready,
                        progress_deadline: args.app_progress_deadline,
                        host_root: args.host_root,
                        build_logs: Some(build_logs),
                    },
                    disabled: args.disable_controllers,
                    proxy_docker: docker,
                    git_cache_dir,
                    ..Default::default()
                },
            };
            match serve::run(opts).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "berth serve failed");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Crds { dir } => crds(dir.as_deref()),
        Command::Templates(args) => templates::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Version => version(cli.server.as_deref(), cli.token.as_deref()).await,
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "berth", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        verb => match client_verb(cli.server.as_deref(), cli.token.as_deref(), &verb).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                e.exit_code()
            }
        },
    }
}

/// Runs a verb that talks to the API server.
async fn client_verb(server: Option<&str>, token: Option<&str>, verb: &Command) -> error::Result<ExitCode> {
    let resolved = client::resolve(server, token)?;
    let c = client::Client::new(&resolved)?;
    let ns = resolved.namespace.as_deref();
    match verb {
        Command::Apply(args) => apply::run(&c, args, ns).await,
        Command::Get(args) => get::run(&c, args, ns).await,
        Command::Describe(args) => describe::run(&c, args, ns).await,
        Command::Delete(args) => delete::run(&c, args, ns).await,
        Command::Diff(args) => diff::run(&c, args, ns).await,
        Command::Wait(args) => wait::run(&c, args, ns).await,
        Command::Logs(args) => logs::run(&c, args, ns).await,
        Command::Backup(args) => backup::run_backup(&c, args, ns).await,
        Command::Restore(args) => backup::run_restore(&c, args, ns).await,
        Command::Notify(args) => notify::run(&c, args).await,
        Command::Serve(_)
        | Command::Crds { .. }
        | Command::Templates(_)
        | Command::Convert(_)
        | Command::Version
        | Command::Completion { .. } => Ok(ExitCode::SUCCESS),
    }
}

/// `berth version`: the client's version, and the server's when it answers.
async fn version(server: Option<&str>, token: Option<&str>) -> ExitCode {
    println!("Client Version: {}", env!("CARGO_PKG_VERSION"));
    let server_version = async {
        let resolved = client::resolve(server, token)?;
        client::Client::new(&resolved)?.version().await
    };
    match server_version.await {
        Ok(v) => {
            let git = v
                .get("gitVersion")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("unknown");
            println!("Server Version: {git}");
        }
        Err(e) => eprintln!("server version unavailable: {e}"),
    }
    ExitCode::SUCCESS
}

fn crds(dir: Option<&std::path::Path>) -> ExitCode {
    let docs = match berth_crds::crd::all() {
        Ok(docs) => docs,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match dir {
        None => {
            for (_, yaml) in &docs {
                print!("---\n{yaml}");
            }
            ExitCode::SUCCESS
        }
        Some(dir) => {
            for (file, yaml) in &docs {
                let path = dir.join(file);
                if let Err(e) = std::fs::write(&path, yaml) {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
