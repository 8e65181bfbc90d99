//! Connections: the accept loop, with a bound on open connections, TCP_NODELAY, TLS when
//! configured, a deadline for a request's headers (and a TLS handshake), and a graceful shutdown
//! that lets requests in flight finish.
//!
//! axum's own `serve` sets none of these bounds: a client that sends half a header line and
//! waits held its connection (and a file descriptor) forever.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::HttpConfig;

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, closes idle
/// connections and waits for requests in flight to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let service = TowerToHyperService::new(router);
    let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let mut last_full_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        // A slot first: past the bound, new connections wait in the listen backlog.
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if last_full_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(
                        max_connections = config.max_connections,
                        "at the connection limit (server.http.max_connections): new connections wait until one closes"
                    );
                    last_full_warning = Some(Instant::now());
                }
                tokio::select! {
                    p = Arc::clone(&slots).acquire_owned() => p.map_err(std::io::Error::other)?,
                    () = &mut shutdown => break,
                }
            }
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, as axum does, rather
                    // than spin or stop serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let open = config.metrics.connection();
        match &tls {
            None => {
                let conn =
                    graceful.watch(http.serve_connection(TokioIo::new(tcp), service.clone()));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    drop((permit, open));
                });
            }
            Some(acceptor) => {
                // The handshake runs on the connection's task, bounded like a request's headers;
                // a shutdown that comes during it just drops the connection.
                let (acceptor, http, service) = (acceptor.clone(), http.clone(), service.clone());
                let watcher = graceful.watcher();
                let limit = config.header_read_timeout;
                tokio::spawn(async move {
                    match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let conn =
                                watcher.watch(http.serve_connection(TokioIo::new(stream), service));
                            if let Err(e) = conn.await {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                    drop((permit, open));
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
