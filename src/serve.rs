//! `berth serve`: open the store, then run the API server and its background tasks.
//!
//! # Guarantees
//! - The embedded store's data directory is locked: a second server on it fails at start.
//! - Controllers run only while this process leads: always on the embedded store (its lock
//!   admits one process), on etcd only in the process holding the leader lease.
//! - SIGINT/SIGTERM stop accepting, end watches, and give in-flight requests
//!   [`Limits::shutdown_grace`] to finish before the store closes.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use berth_crds::store::Store;
use berth_runtime::{
    Manager, Metrics,
    leader::{self, Elector, Solo},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    api::{
        Api,
        auth::{self, Tokens},
        gc,
        server::{self, Limits, State},
    },
    config::{self, ClientConfig},
    leader::{EtcdElector, LeaseConfig},
    store::{
        embedded::{EmbeddedOptions, EmbeddedStore},
        etcd::EtcdStore,
    },
};

/// Errors that stop `berth serve` from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] berth_crds::store::Error),
    /// Tokens could not be set up.
    #[error(transparent)]
    Auth(#[from] auth::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The client configuration could not be written.
    #[error("cannot write the client configuration: {0}")]
    Config(#[from] config::Error),
    /// Leader election could not be set up.
    #[error("cannot set up leader election: {0}")]
    Leader(#[from] berth_runtime::leader::Error),
}

/// Where the store is.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// The embedded store in a directory, keeping this many events for watch replay.
    Embedded {
        /// The data directory.
        dir: PathBuf,
        /// Events kept for watch replay before compaction.
        history_limit: u64,
    },
    /// An etcd cluster.
    Etcd(Vec<String>),
}

/// Options of `berth serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The store.
    pub store: StoreConfig,
    /// The listen address.
    pub listen: SocketAddr,
    /// An optional file of extra (viewer) tokens.
    pub tokens_file: Option<PathBuf>,
    /// Server limits.
    pub limits: Limits,
    /// What admission allows beyond the schema (e.g. the host root for bind mounts).
    pub admission: crate::api::admission::Policy,
    /// The controllers' settings.
    pub controllers: berth_controllers::Options,
}

/// Opens the configured store.
pub async fn open_store(config: &StoreConfig) -> Result<Arc<dyn Store>, Error> {
    Ok(match config {
        StoreConfig::Embedded { dir, history_limit } => {
            let options = EmbeddedOptions {
                history_limit: *history_limit,
                ..EmbeddedOptions::default()
            };
            let dir = dir.clone();
            // Opening may repair the file after a crash: blocking work.
            let opened = tokio::task::spawn_blocking(move || EmbeddedStore::open_with(dir, options))
                .await
                .map_err(|e| berth_crds::store::Error::Backend(format!("store open task failed: {e}")))??;
            Arc::new(opened)
        }
        StoreConfig::Etcd(endpoints) => Arc::new(EtcdStore::connect(endpoints).await?),
    })
}

/// Runs the server until a shutdown signal.
pub async fn run(opts: ServeOptions) -> Result<(), Error> {
    let store = open_store(&opts.store).await?;
    let (tokens, admin) = Tokens::load(store.as_ref(), opts.tokens_file.as_deref()).await?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: opts.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| Error::Listen {
        addr: opts.listen,
        source,
    })?;
    let config_path = config::path()?;
    // Keep the user's default namespace across restarts; only server and token are ours.
    let namespace = match config::read(&config_path) {
        Ok(existing) => existing.and_then(|c| c.namespace),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the unreadable client configuration; rewriting it");
            None
        }
    };
    let client_config = ClientConfig {
        server: format!("http://{local}"),
        token: admin,
        namespace,
    };
    config::write(&config_path, &client_config)?;

    let shutdown = CancellationToken::new();
    let api = Api::with_policy(store, opts.admission.clone());
    let collector = tokio::spawn(gc::run(api.clone(), shutdown.clone()));
    let metrics = Metrics::new();
    let elector: Arc<dyn Elector> = match &opts.store {
        // The data directory's exclusive lock already makes this process the only one.
        StoreConfig::Embedded { .. } => Arc::new(Solo),
        StoreConfig::Etcd(endpoints) => {
            Arc::new(EtcdElector::connect(endpoints, LeaseConfig::default()).await?)
        }
    };
    let build_logs = opts.controllers.apps.build_logs.clone();
    let controllers = tokio::spawn(run_controllers(
        api.clone(),
        elector,
        metrics.clone(),
        opts.controllers,
        shutdown.clone(),
    ));
    let state = Arc::new(State {
        api,
        tokens,
        limits: opts.limits,
        shutdown: shutdown.clone(),
        metrics,
        build_logs,
    });
    tokio::spawn(signal_shutdown(shutdown.clone()));
    tracing::info!(listen = %local, config = %config_path.display(), "berth API serving");
    server::serve(listener, state).await;
    if let Err(e) = collector.await {
        tracing::warn!(error = %e, "garbage collector task ended abnormally");
    }
    if let Err(e) = controllers.await {
        tracing::warn!(error = %e, "controllers task ended abnormally");
    }
    tracing::info!("berth stopped");
    Ok(())
}

/// Runs the controllers whenever this process leads, until `shutdown`.
async fn run_controllers(
    api: Api,
    elector: Arc<dyn Elector>,
    metrics: Metrics,
    options: berth_controllers::Options,
    shutdown: CancellationToken,
) {
    let client: Arc<dyn berth_runtime::Client> = Arc::new(api);
    leader::run_as_leader(elector, metrics.clone(), shutdown, move |stop| {
        let mut manager = Manager::new(client.clone(), metrics.clone());
        berth_controllers::install(&mut manager, &options);
        Box::pin(manager.run(stop))
    })
    .await;
}

async fn signal_shutdown(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    r = tokio::signal::ctrl_c() => if let Err(e) = r { tracing::warn!(error = %e, "cannot listen for ctrl-c") },
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; ctrl-c only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for ctrl-c");
    }
    tracing::info!("shutdown signal received");
    token.cancel();
}
