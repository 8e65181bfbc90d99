//! Connections: the accept loop, with a bound on open connections, TCP_NODELAY, TLS when
//! configured, a deadline for a request's headers (and a TLS handshake), and a graceful shutdown
//! that lets requests in flight finish. With a background runtime, a plain connection whose
//! first request writes is served there (`first_request_is_read`; ARCHITECTURE.md, "Background
//! CPUs").
//!
//! axum's own `serve` sets none of these bounds: a client that sends half a header line and
//! waits held its connection (and a file descriptor) forever.

use std::time::Duration;

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
        let background = config.background.clone();
        tokio::spawn(async move {
            match (tls, background) {
                (None, None) => serve_one(&http, tcp, service, watcher).await,
                (None, Some(background)) => {
                    match first_request_is_read(&tcp, handshake_limit).await {
                        Some(true) => serve_one(&http, tcp, service, watcher).await,
                        Some(false) => {
                            // Joined, so that the slot and the gauge last as long as the
                            // connection; a panic there is logged by the runtime.
                            let served = background.spawn(async move {
                                serve_one(&http, tcp, service, watcher).await
                            });
                            let _ = served.await;
                        }
                        None => tracing::debug!("no request line within the header timeout"),
                    }
                }
                // The handshake runs on the connection's task, bounded like a request's
                // headers; a shutdown that comes during it just drops the connection.
                (Some(acceptor), _) => {
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

/// Whether the connection's first request reads (`GET`, `HEAD`, `OPTIONS`, a fetch) rather than
/// writes, from its request line, peeked (left for hyper to read). `None` when no request line
/// came within `limit` or the connection failed: the caller drops it, as hyper would.
///
/// A client sends a request line in one piece but for a byte-at-a-time client: while what
/// arrived has no line end, this looks again every millisecond.
async fn first_request_is_read(tcp: &tokio::net::TcpStream, limit: Duration) -> Option<bool> {
    let mut buf = [0u8; 256];
    let look = async {
        loop {
            let n = tcp.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if n == buf.len() || buf[..n].contains(&b'\n') {
                return Some(n);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let n = tokio::time::timeout(limit, look).await.ok()??;
    Some(is_read(&buf[..n]))
}

/// Whether a request line (or its start) is a read: see [`first_request_is_read`].
fn is_read(line: &[u8]) -> bool {
    // A server should ignore empty lines before a request line (RFC 9112, 2.2).
    let mut words = line.trim_ascii_start().split(|b| *b == b' ');
    let method = words.next().unwrap_or_default();
    let path = words.next().unwrap_or_default();
    let path = path.split(|b| *b == b'?').next().unwrap_or_default();
    matches!(method, b"GET" | b"HEAD" | b"OPTIONS") || path.ends_with(b"/fetch")
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

#[cfg(test)]
mod tests {
    use super::is_read;

    #[test]
    fn reads_and_writes_are_told_apart_by_the_request_line() {
        let cases: [(&[u8], bool); 13] = [
            (b"GET /health HTTP/1.1\r\n", true),
            (b"\r\nGET /health HTTP/1.1\r\n", true),
            (b"HEAD /metrics HTTP/1.1", true),
            (b"OPTIONS * HTTP/1.1", true),
            (b"POST /api/v1/table/t/fetch HTTP/1.1\r\nHost: x", true),
            (b"POST /api/v1/table/t/fetch?format=arrow HTTP/1.1", true),
            (b"PUT /api/v1/table/t/write HTTP/1.1\r\n", false),
            (b"PUT /api/v1/table/t HTTP/1.1", false),
            (b"PATCH /api/v1/table/t HTTP/1.1", false),
            (b"DELETE /api/v1/table/t HTTP/1.1", false),
            (b"POST /api/v1/table/t/load HTTP/1.1", false),
            (b"POST /api/v1/table/fetch/compact HTTP/1.1", false),
            (b"", false),
        ];
        for (line, read) in cases {
            assert_eq!(is_read(line), read, "{}", String::from_utf8_lossy(line));
        }
    }
}
