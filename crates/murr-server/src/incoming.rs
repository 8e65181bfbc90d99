//! The Flight listener's connections, bounded: at most `max` open at once (more wait in the
//! listen backlog), TCP_NODELAY, and a connection that sends nothing within the handshake
//! timeout is closed (tonic and hyper wait for an HTTP/2 preface forever).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use murr_http::BoundedListener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

/// A TCP connection that holds a slot while it lives, and must send its first bytes before a
/// deadline.
#[derive(Debug)]
pub struct Bounded {
    tcp: TcpStream,
    first_bytes: Option<Pin<Box<Sleep>>>,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Bounded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.first_bytes = None;
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let late = this
                    .first_bytes
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if late {
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client sent nothing within server.grpc.handshake_timeout",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl AsyncWrite for Bounded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Bounded {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.tcp.connect_info()
    }
}

/// The connections of `listener`, at most `max` open at once (more wait in the backlog), each
/// of which must send its first bytes within `handshake`.
pub fn bounded(
    listener: TcpListener,
    max: usize,
    handshake: Duration,
) -> impl tokio_stream::Stream<Item = std::io::Result<Bounded>> {
    let listener = BoundedListener::new(
        listener,
        max,
        "Flight is at its connection limit (server.grpc.max_connections): new connections wait until one closes",
    );
    futures_util::stream::unfold(listener, move |mut listener| async move {
        let (tcp, slot) = listener.accept().await;
        let connection = Bounded {
            tcp,
            first_bytes: Some(Box::pin(tokio::time::sleep(handshake))),
            _slot: slot,
        };
        Some((Ok(connection), listener))
    })
}
