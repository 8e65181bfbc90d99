//! The murr server: configuration ([`config`]), start-up, the HTTP and Arrow Flight front-ends, and graceful
//! shutdown on SIGINT/SIGTERM. The binary `murr` is a thin `main` over [`run`].
//!
//! This is the only crate that knows the front-ends, the config file, the tokio runtime and
//! process signals.

mod background;
pub mod config;
pub mod incoming;
pub mod load_cli;
mod metrics;
pub mod segment_cli;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use murr_api::auth::{Auth, AuthHandle};
use murr_directory::{
    Directory, MmapDirectory, ObjectStoreDirectory, RemoteOptions, TieredDirectory,
};
use murr_http::{NodeStatus, Role};
use murr_table::{Store, StoreOptions, TableStatus};

/// `storage.expiry_interval` as a duration.
fn expiry_interval(config: &Config) -> Duration {
    Duration::try_from_secs_f64(config.storage.expiry_interval).unwrap_or(Duration::MAX)
}

pub use config::Config;
use config::NodeRole;

/// Larger segments would not fit one upload (S3 takes at most 5 GiB in one put, and murr
/// uploads a segment with one conditional put).
const MAX_REMOTE_SEGMENT: u64 = 4 << 30;

/// A murr server with its store open and both listeners bound, not serving yet: the one place
/// that wires the store and the front-ends together (the binary, and the tests that run a real
/// server, start it here).
#[derive(Debug)]
pub struct Server {
    config: Config,
    store: Arc<Store>,
    http: tokio::net::TcpListener,
    http_addr: SocketAddr,
    grpc: Option<(tokio::net::TcpListener, SocketAddr)>,
    started: Instant,
    node: Arc<NodeStatus>,
    auth: AuthHandle,
    reload: Option<Reload>,
    tls: Option<config::TlsMaterial>,
    background: background::Background,
}

/// Reads the configuration again (on SIGHUP), as `main` first read it.
#[derive(Clone)]
struct Reload(Arc<dyn Fn() -> Result<Config> + Send + Sync>);

impl std::fmt::Debug for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reload")
    }
}

/// Builds the tokens of `config` and says in the log what they allow.
fn auth_of(config: &Config) -> Result<Auth> {
    let auth = config.server.auth.build()?;
    if auth.is_open() {
        tracing::warn!(
            "no tokens configured (server.auth.tokens): the server is open, anyone who can reach its ports can read, write and drop tables"
        );
    } else {
        let names: Vec<&str> = config
            .server
            .auth
            .tokens
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        tracing::info!(tokens = auth.len(), names = ?names, "bearer tokens required");
    }
    Ok(auth)
}

/// On each SIGHUP until `stop`: reads the configuration again and replaces the tokens (the
/// other settings need a restart). A configuration that does not load keeps the tokens in use.
async fn reload_on_hangup(
    auth: AuthHandle,
    current: Config,
    reload: Option<Reload>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP: tokens are not reloadable");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = hangups.recv() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let loaded = match &reload {
            Some(Reload(f)) => f(),
            None => Ok(current.clone()),
        };
        match loaded.and_then(|c| auth_of(&c)) {
            Ok(new) => {
                tracing::info!(tokens = new.len(), "SIGHUP: tokens reloaded");
                auth.replace(new);
            }
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "SIGHUP: the configuration does not load; the tokens in use stay"
            ),
        }
    }
}

/// The node's role, from the configuration (checked: a replica needs a store to follow).
fn role_of(config: &Config) -> Result<Role> {
    Ok(match (&config.storage.url, config.server.role) {
        (None, NodeRole::Writer) => Role::Local,
        (None, NodeRole::Replica) => bail!(
            "server.role: a replica follows a writer through object storage: set storage.url too"
        ),
        (Some(_), NodeRole::Writer) => Role::Writer,
        (Some(_), NodeRole::Replica) => Role::Replica,
    })
}

/// Explains a failed first request to the store in terms of the setting to fix.
fn store_unreachable(config: &Config, e: &murr_directory::Error) -> anyhow::Error {
    let url = config.storage.url.as_deref().unwrap_or_default();
    let text = format!("{e:#}");
    let source = std::error::Error::source(e).map(ToString::to_string);
    let detail = source.as_deref().unwrap_or(&text);
    let endpoint = config.storage.s3.endpoint.as_deref().unwrap_or(url);
    if [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "Forbidden",
        "403",
        "credential",
    ]
    .iter()
    .any(|w| detail.contains(w))
    {
        anyhow::anyhow!(
            "storage.s3: the store refused the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) for {url}: {detail}"
        )
    } else if detail.contains("NoSuchBucket") {
        anyhow::anyhow!("storage.url: the bucket of {url} does not exist: {detail}")
    } else {
        anyhow::anyhow!(
            "storage.s3.endpoint: cannot reach the store at {endpoint} (storage.url {url}): {detail}"
        )
    }
}

/// How murr reaches S3-compatible stores: `storage.s3` (the durable store and the sources of
/// loads alike).
/// How to reach object storage, from `storage.s3`.
pub fn remote_options(s3: &config::S3Config) -> RemoteOptions {
    RemoteOptions {
        endpoint: s3.endpoint.clone(),
        region: s3.region.clone(),
        allow_http: s3.allow_http,
        ..RemoteOptions::default()
    }
}

/// Opens the store `config` names, without serving it: for a program that embeds the engine
/// (the Python package). [`Server::bind`] does the same before it binds its listeners.
///
/// # Errors
/// As [`Server::bind`]: a bad role, a data folder that cannot be opened (or that another
/// process holds), a store that does not answer.
pub fn open_configured_store(config: &Config) -> Result<Store> {
    open_store(config, role_of(config)?, &background_cpus(config))
}

/// The CPUs `server.background_cpus` keeps for background work.
fn background_cpus(config: &Config) -> Vec<usize> {
    background::choose(config.server.background_cpus, &background::allowed())
}

/// Pins the merge thread to `cpus` (the background ones), if any.
fn merge_thread_start(cpus: &[usize]) -> Option<murr_table::ThreadStart> {
    let cpus = cpus.to_vec();
    (!cpus.is_empty()).then(|| murr_table::ThreadStart(Arc::new(move || background::pin(&cpus))))
}

/// Opens the store the configuration names: the data folder alone, or object storage with the
/// data folder as its local tier; its merge thread runs on `cpus` (all when empty).
fn open_store(config: &Config, role: Role, cpus: &[usize]) -> Result<Store> {
    let folder = &config.storage.cache_dir;
    let populate = config.storage.memory_limit.is_none();
    if let Some(budget) = config.storage.memory_limit {
        murr_directory::residency::Residency::start(budget);
    }
    let Some(url) = &config.storage.url else {
        let directory = MmapDirectory::open(folder)
            .with_context(|| format!("cannot open the data folder {}", folder.display()))?
            .with_populate(populate);
        let store = Store::open(
            Arc::new(directory),
            StoreOptions {
                expiry_interval: expiry_interval(config),
                merge_thread_start: merge_thread_start(cpus),
                ..StoreOptions::default()
            },
        )?;
        // The only process on this folder: whatever no table needs is garbage now.
        store.gc(Duration::ZERO)?;
        return Ok(store);
    };
    let options = remote_options(&config.storage.s3);
    let remote = ObjectStoreDirectory::from_url(url, &options).map_err(anyhow::Error::from)?;
    let started = Instant::now();
    remote.probe().map_err(|e| store_unreachable(config, &e))?;
    tracing::info!(url = %url, ms = started.elapsed().as_secs_f64() * 1e3, "object store answers");
    let directory =
        TieredDirectory::open(remote, folder, url, murr_table::is_segment_file, populate)
            .with_context(|| format!("cannot open the cache folder {}", folder.display()))?;
    let directory = Arc::new(directory);
    let defaults = StoreOptions::default();
    let store = Store::open(
        Arc::clone(&directory) as Arc<dyn Directory>,
        StoreOptions {
            read_only: role == Role::Replica,
            // Replicas may be loading what a commit supersedes: gc deletes it after a grace.
            delete_at_once: false,
            max_merge_bytes: defaults.max_merge_bytes.min(MAX_REMOTE_SEGMENT),
            idle_compaction_max_bytes: defaults.idle_compaction_max_bytes.min(MAX_REMOTE_SEGMENT),
            write_segment_bytes: defaults
                .write_segment_bytes
                .min(MAX_REMOTE_SEGMENT as usize / 2),
            expiry_interval: expiry_interval(config),
            merge_thread_start: merge_thread_start(cpus),
            ..defaults
        },
    )?;
    let tier = directory.stats();
    tracing::info!(
        reused = tier.hits,
        downloads = tier.downloads,
        downloaded_bytes = tier.downloaded_bytes,
        "local cache ready"
    );
    if role == Role::Writer {
        store.gc(gc_grace(config))?;
    }
    Ok(store)
}

fn gc_grace(config: &Config) -> Duration {
    Duration::from_secs_f64(config.storage.gc_grace)
}

/// A replica whose last successful sync is older than this reports itself stale.
fn stale_after(config: &Config) -> Duration {
    Duration::from_secs_f64((config.storage.poll_interval * 5.0).max(10.0))
}

/// A replica's loop: reads the store's state every `storage.poll_interval` and applies what
/// changed; while the store does not answer it keeps serving what it has, and says so.
async fn follow_store(
    store: Arc<Store>,
    node: Arc<NodeStatus>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut failing_since: Option<Instant> = None;
    let mut last_warning: Option<Instant> = None;
    // Ticks every `every` from start, not `every` after each refresh ends: a refresh that
    // downloads takes its time, and the next starts at the next tick (or at once, if late).
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let s = Arc::clone(&store);
        let result = tokio::task::spawn_blocking(move || s.refresh()).await;
        match result {
            Ok(Ok(_)) => {
                node.synced();
                if let Some(since) = failing_since.take() {
                    tracing::info!(
                        seconds = since.elapsed().as_secs_f64(),
                        "the store answers again: caught up"
                    );
                }
                last_warning = None;
            }
            Ok(Err(e)) => {
                let age = node.sync_failed(e.to_string());
                failing_since.get_or_insert_with(Instant::now);
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(
                        error = %e,
                        stale_seconds = age.as_secs_f64(),
                        "cannot read the store; serving what this replica has"
                    );
                    last_warning = Some(Instant::now());
                }
            }
            Err(e) => tracing::error!(error = %e, "the sync task panicked"),
        }
    }
}

/// A writer's loop: applies what other processes committed to its tables (segments published
/// with `murr segment publish`), every `storage.poll_interval`.
async fn follow_publishes(
    store: Arc<Store>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_warning: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let s = Arc::clone(&store);
        match tokio::task::spawn_blocking(move || s.follow_commits()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(error = %e, "cannot look for commits of other writers; trying again");
                    last_warning = Some(Instant::now());
                }
            }
            Err(e) => tracing::error!(error = %e, "the task following other writers panicked"),
        }
    }
}

/// A writer's loop: removes, from the store, files that no manifest has needed for
/// `storage.gc_grace`.
async fn collect_garbage(
    store: Arc<Store>,
    grace: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let every = (grace / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let s = Arc::clone(&store);
        match tokio::task::spawn_blocking(move || s.gc(grace)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "garbage collection failed; it runs again later")
            }
            Err(e) => tracing::error!(error = %e, "garbage collection panicked"),
        }
    }
}

impl Server {
    /// Opens the data folder and its store (as the only writer of a local folder, it removes
    /// what no table needs: files of interrupted writes, merges and drops), then binds HTTP
    /// and, when enabled, Flight.
    ///
    /// # Errors
    /// When the data folder cannot be opened or an address cannot be bound.
    pub async fn bind(config: Config) -> Result<Server> {
        let started = Instant::now();
        let role = role_of(&config)?;
        if config.server.http.max_connections == 0 {
            bail!("server.http.max_connections: 0 would refuse every client; give at least 1");
        }
        if config.server.grpc.max_connections == 0 {
            bail!("server.grpc.max_connections: 0 would refuse every client; give at least 1");
        }
        if role == Role::Replica && !config.load.watch.is_empty() {
            bail!("load.watch: a replica takes no writes; watch for dumps on the writer");
        }
        let auth = AuthHandle::new(auth_of(&config)?);
        let tls = config.server.tls.load()?;
        if tls.is_some() {
            // tonic builds its TLS configuration with the process's default provider.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let cpus = background_cpus(&config);
        let (for_loader, merge_cpus) = (config.clone(), cpus.clone());
        let store = tokio::task::spawn_blocking(move || open_store(&for_loader, role, &merge_cpus))
            .await
            .context("store loader panicked")??;
        let background = background::Background::start(&cpus)
            .context("cannot start the runtime for background work")?;
        if !cpus.is_empty() {
            tracing::info!(cpus = ?cpus, "writes and merges run on these CPUs (server.background_cpus)");
        }
        let node = Arc::new(NodeStatus::new(role, stale_after(&config)));
        let http = murr_http::bind(config.server.http.addr())
            .await
            .with_context(|| format!("cannot listen on {}", config.server.http.addr()))?;
        let http_addr = http.local_addr().context("listener address")?;
        let grpc = if config.server.grpc.enabled {
            let l = tokio::net::TcpListener::bind(config.server.grpc.addr())
                .await
                .with_context(|| {
                    format!("cannot listen on {} (gRPC)", config.server.grpc.addr())
                })?;
            let addr = l.local_addr().context("listener address")?;
            Some((l, addr))
        } else {
            None
        };
        Ok(Server {
            config,
            store: Arc::new(store),
            http,
            http_addr,
            grpc,
            started,
            node,
            auth,
            reload: None,
            tls,
            background,
        })
    }

    /// On SIGHUP, the server calls `reload` for its configuration and takes the tokens from it
    /// (by default it reads the token files of the configuration it started with again).
    #[must_use]
    pub fn with_reload(
        mut self,
        reload: impl Fn() -> Result<Config> + Send + Sync + 'static,
    ) -> Self {
        self.reload = Some(Reload(Arc::new(reload)));
        self
    }

    /// The HTTP address (with the port picked when the configured one was 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The Flight address, when Flight is enabled.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(|(_, a)| *a)
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Serves HTTP and Arrow Flight until `shutdown` completes, then finishes requests in
    /// flight (for at most `server.shutdown_timeout`) and closes the store (waiting for a merge
    /// in progress).
    ///
    /// # Errors
    /// When a listener fails.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let Server {
            config,
            store,
            http: listener,
            http_addr,
            grpc,
            started,
            node,
            auth,
            reload,
            tls,
            background,
        } = self;
        let (ready, failed): (Vec<_>, Vec<_>) = store
            .tables()
            .into_iter()
            .partition(|(_, s)| *s == TableStatus::Ready);
        tracing::info!(
            http = %http_addr,
            grpc = %grpc.as_ref().map_or_else(|| "off".to_owned(), |(_, a)| a.to_string()),
            data = %config.storage.cache_dir.display(),
            role = ?node.role(),
            tls = tls.is_some(),
            store = config.storage.url.as_deref().unwrap_or("local"),
            tables = ready.len(),
            failed_tables = failed.len(),
            max_payload_size = config.server.http.max_payload_size,
            ms = started.elapsed().as_millis() as u64,
            "murr listening"
        );
        // One signal stops both front-ends.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        tokio::spawn(reload_on_hangup(
            auth.clone(),
            config.clone(),
            reload,
            stop_rx.clone(),
        ));
        match node.role() {
            Role::Replica => {
                let every = Duration::from_secs_f64(config.storage.poll_interval.max(0.01));
                tokio::spawn(follow_store(
                    Arc::clone(&store),
                    Arc::clone(&node),
                    every,
                    stop_rx.clone(),
                ));
            }
            Role::Writer => {
                tokio::spawn(collect_garbage(
                    Arc::clone(&store),
                    gc_grace(&config),
                    stop_rx.clone(),
                ));
            }
            Role::Local => {}
        }
        if node.role() != Role::Replica {
            let every = Duration::from_secs_f64(config.storage.poll_interval.max(0.01));
            tokio::spawn(follow_publishes(Arc::clone(&store), every, stop_rx.clone()));
        }
        let mut registry = prometheus_client::registry::Registry::default();
        let http_metrics = murr_http::HttpMetrics::register(&mut registry);
        let flight_metrics = murr_flight::FlightMetrics::register(&mut registry);
        registry.register_collector(Box::new(metrics::StoreCollector {
            store: Arc::clone(&store),
            node: Arc::clone(&node),
            started,
        }));
        let registry = Arc::new(registry);
        let http_config = Arc::new(murr_http::HttpConfig {
            max_payload_size: config.server.http.max_payload_size,
            max_fetch_payload_size: config.server.http.max_fetch_payload_size,
            fetch_limits: config.server.fetch.limits(),
            upload_dir: config.storage.cache_dir.clone(),
            auth: auth.clone(),
            header_read_timeout: Duration::from_secs_f64(config.server.http.header_read_timeout),
            body_timeout: Duration::from_secs_f64(config.server.http.body_timeout),
            max_connections: config.server.http.max_connections,
            metrics: http_metrics,
            open_metrics: config.server.auth.open_metrics,
            tls: tls.as_ref().map(|t| Arc::clone(&t.http)),
            background: background.handle(),
        });
        let loads = Arc::new(murr_http::Loads::new(remote_options(&config.storage.s3)));
        for w in &config.load.watch {
            let folder = config.storage.cache_dir.join("watch");
            std::fs::create_dir_all(&folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
            loads
                .watch(
                    &store,
                    murr_http::Watch {
                        table: w.table.clone(),
                        url: w.url.clone(),
                        mode: w.mode,
                        interval: Duration::from_secs_f64(w.interval),
                        state_file: folder.join(format!("{}.last", w.table)),
                    },
                )
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        }
        let router = murr_http::router(murr_http::AppState {
            node: Arc::clone(&node),
            store: Arc::clone(&store),
            config: Arc::clone(&http_config),
            registry: Some(registry),
            loads: Arc::clone(&loads),
        });
        let http = murr_http::serve(listener, router, &http_config, stopped(stop_rx.clone()));
        let flight = async {
            let Some((listener, _)) = grpc else {
                return Ok(());
            };
            let max = usize::try_from(config.server.grpc.max_message_size).unwrap_or(usize::MAX);
            let service = murr_flight::MurrFlight::new(
                Arc::clone(&store),
                murr_flight::FlightConfig {
                    max_message_size: max,
                    fetch_limits: config.server.fetch.limits(),
                    max_upload_size: config.server.grpc.max_upload_size,
                    auth: auth.clone(),
                    ..murr_flight::FlightConfig::default()
                },
            );
            let mut builder = tonic::transport::Server::builder();
            if let Some(t) = &tls {
                builder = builder
                    .tls_config(tonic::transport::ServerTlsConfig::new().identity(
                        tonic::transport::Identity::from_pem(&t.cert_pem, &t.key_pem),
                    ))
                    .context("server.tls: the Flight listener's TLS")?;
            }
            builder
                .layer(flight_metrics)
                // Peers that vanish without closing are found and their connections dropped.
                .http2_keepalive_interval(Some(Duration::from_secs(60)))
                .http2_keepalive_timeout(Some(Duration::from_secs(20)))
                .tcp_nodelay(true)
                // Uploads (do_put) stream without stalling on window updates every 64 KiB.
                .initial_stream_window_size(Some(8 << 20))
                .initial_connection_window_size(Some(16 << 20))
                .add_service(service.into_server())
                .serve_with_incoming_shutdown(
                    incoming::bounded(
                        listener,
                        config.server.grpc.max_connections,
                        Duration::from_secs_f64(config.server.grpc.handshake_timeout),
                    ),
                    stopped(stop_rx.clone()),
                )
                .await
                .context("Flight server failed")
        };
        let grace = std::time::Duration::from_secs_f64(config.server.shutdown_timeout);
        let mut stop = stop_rx.clone();
        let deadline = async move {
            let _ = stop.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            (http, flight) = async { tokio::join!(http, flight) } => {
                http.context("HTTP server failed")?;
                flight?;
                tracing::info!("stopped accepting; requests in flight are done");
            }
            () = deadline => tracing::warn!(
                seconds = grace.as_secs_f64(),
                "connections still open after the shutdown timeout are closed"
            ),
        }
        // Closing the store joins the merge thread, which may be finishing a merge.
        tokio::task::spawn_blocking(move || drop(store))
            .await
            .context("closing the store")?;
        tracing::info!("murr stopped");
        Ok(())
    }
}

/// Opens the store, serves HTTP and Arrow Flight until `shutdown` completes, then finishes
/// requests in flight and closes the store: [`Server::bind`], [`Server::with_reload`] (on
/// SIGHUP, `reload` gives the configuration whose tokens replace the ones in use), then
/// [`Server::serve`].
///
/// # Errors
/// When the data folder cannot be opened or the address cannot be bound.
pub async fn run(
    config: Config,
    reload: impl Fn() -> Result<Config> + Send + Sync + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    Server::bind(config)
        .await?
        .with_reload(reload)
        .serve(shutdown)
        .await
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}
