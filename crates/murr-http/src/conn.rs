//! Connections: the accept loop, with a bound on open connections, TCP_NODELAY, TLS when
//! configured, a deadline for a request's headers (and a TLS handshake), and a graceful shutdown
//! that lets requests in flight finish.
//!
//! axum's own `serve` sets none of these bounds: a client that sends half a header line and
//! waits held its connection (and a file descriptor) forever.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::HttpConfig;
use crate::listener::BoundedListener;

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
    let graceful = GracefulShutdown::new();
    let service = TowerToHyperService::new(router);
    let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let mut listener = BoundedListener::new(
        listener,
        config.max_connections,
        "at the connection limit (server.http.max_connections): new connections wait until one closes",
    );
    tokio::pin!(shutdown);
    loop {
        let (tcp, slot) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let open = config.metrics.connection();
        let (tls, http, service) = (tls.clone(), http.clone(), service.clone());
        let watcher = graceful.watcher();
        let handshake_limit = config.header_read_timeout;
        tokio::spawn(async move {
            match tls {
                None => serve_one(&http, tcp, service, watcher).await,
                // The handshake runs on the connection's task, bounded like a request's
                // headers; a shutdown that comes during it just drops the connection.
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_limit, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_one(&http, stream, service, watcher).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop((slot, open));
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves one connection (plain or TLS) until it ends or the shutdown closes it.
async fn serve_one<I>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    service: TowerToHyperService<Router>,
    watcher: Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = watcher.watch(http.serve_connection(TokioIo::new(io), service));
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
