//! The murr server: configuration ([`config`]), start-up, the HTTP and Arrow Flight front-ends, and graceful
//! shutdown on SIGINT/SIGTERM. The binary `murr` is a thin `main` over [`run`].
//!
//! This is the only crate that knows the front-ends, the config file, the tokio runtime and
//! process signals.

pub mod config;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use murr_directory::MmapDirectory;
use murr_table::{Store, StoreOptions, TableStatus};

pub use config::Config;

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
        let dir = config.storage.cache_dir.clone();
        let store = tokio::task::spawn_blocking(move || -> Result<Store> {
            let directory = MmapDirectory::open(&dir)
                .with_context(|| format!("cannot open the data folder {}", dir.display()))?;
            let store = Store::open(Arc::new(directory), StoreOptions::default())?;
            store.gc(std::time::Duration::ZERO)?;
            Ok(store)
        })
        .await
        .context("store loader panicked")??;
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
        })
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
        } = self;
        let (ready, failed): (Vec<_>, Vec<_>) = store
            .tables()
            .into_iter()
            .partition(|(_, s)| *s == TableStatus::Ready);
        tracing::info!(
            http = %http_addr,
            grpc = %grpc.as_ref().map_or_else(|| "off".to_owned(), |(_, a)| a.to_string()),
            data = %config.storage.cache_dir.display(),
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
        let router = murr_http::router(murr_http::AppState {
            store: Arc::clone(&store),
            config: Arc::new(murr_http::HttpConfig {
                max_payload_size: config.server.http.max_payload_size,
                max_fetch_payload_size: config.server.http.max_fetch_payload_size,
                fetch_limits: config.server.fetch.limits(),
                upload_dir: config.storage.cache_dir.clone(),
            }),
        });
        let http = murr_http::serve(listener, router, stopped(stop_rx.clone()));
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
                    ..murr_flight::FlightConfig::default()
                },
            );
            tonic::transport::Server::builder()
                .tcp_nodelay(true)
                // Uploads (do_put) stream without stalling on window updates every 64 KiB.
                .initial_stream_window_size(Some(8 << 20))
                .initial_connection_window_size(Some(16 << 20))
                .add_service(service.into_server())
                .serve_with_incoming_shutdown(nodelay(listener), stopped(stop_rx.clone()))
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
/// requests in flight and closes the store: [`Server::bind`] then [`Server::serve`].
///
/// # Errors
/// When the data folder cannot be opened or the address cannot be bound.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    Server::bind(config).await?.serve(shutdown).await
}

/// The connections of `listener`, with TCP_NODELAY set: tonic applies its own `tcp_nodelay` only
/// to listeners it binds itself, and Nagle's algorithm against delayed ACKs stalls small answers
/// by 40 ms.
pub fn nodelay(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        if let Err(e) = conn.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        Ok(conn)
    })
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
