//! Every request body is guarded: a body that sends nothing for `server.http.body_timeout`
//! fails (the answer is 408 and the connection closes), and a body the server answered without
//! reading (a 413 on its declared length, a 401, a 404) is read to its end and dropped, within
//! bounds, after the answer is sent.
//!
//! Without the second part a client that sends its whole body before it reads the answer, as
//! Python's `http.client` and `urllib` do, sees "Broken pipe" instead of the 413 that says why:
//! the server closed the connection while the body was still coming.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use parking_lot::Mutex;
use tokio::time::{Instant, Sleep};

/// The most of an unread body that is read and dropped after the answer.
const DRAIN_MAX_BYTES: u64 = 2 << 30;
/// The longest that takes.
const DRAIN_MAX_TIME: Duration = Duration::from_secs(30);

/// A request body that sent nothing for too long.
#[derive(Debug)]
pub(crate) struct BodyTimeout {
    after: Duration,
}

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body sent nothing for {} s (server.http.body_timeout)",
            self.after.as_secs_f64()
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// Whether a body error is (or wraps) [`BodyTimeout`].
pub(crate) fn is_timeout(e: &axum::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<BodyTimeout>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A body with an idle deadline that, when dropped before its end, leaves what is left of it
/// for [`guard_body`] to drain.
struct Guarded {
    inner: Option<Body>,
    idle: Duration,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Where an unfinished body goes when this is dropped.
    rest: Arc<Mutex<Option<Body>>>,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.deadline = Instant::now() + this.idle;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => {
                // The end, or a failed body: nothing is left to drain.
                this.inner = None;
                Poll::Ready(other)
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    // Dropped, not drained: the client is the slow one.
                    this.inner = None;
                    return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout {
                        after: this.idle,
                    }))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(body) = self.inner.take()
            && !http_body::Body::is_end_stream(&body)
        {
            *self.rest.lock() = Some(body);
        }
    }
}

/// The middleware: guards the body, and after the answer drains what the handler left unread.
pub(crate) async fn guard_body(
    State(idle): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    if http_body::Body::is_end_stream(request.body()) {
        return next.run(request).await;
    }
    let rest = Arc::new(Mutex::new(None));
    let guarded = {
        let rest = Arc::clone(&rest);
        move |inner: Body| {
            Body::new(Guarded {
                inner: Some(inner),
                idle,
                deadline: Instant::now() + idle,
                sleep: None,
                rest,
            })
        }
    };
    let response = next.run(request.map(guarded)).await;
    if let Some(body) = rest.lock().take() {
        tokio::spawn(drain(body, idle));
    }
    response
}

/// Reads `body` to its end and drops it, for at most [`DRAIN_MAX_BYTES`] and
/// [`DRAIN_MAX_TIME`], and `idle` between pieces; past a bound it is dropped as it is (and the
/// connection closes).
async fn drain(body: Body, idle: Duration) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut read = 0u64;
    let stop = Instant::now() + DRAIN_MAX_TIME;
    loop {
        let next = tokio::time::timeout_at(stop.min(Instant::now() + idle), stream.next()).await;
        match next {
            Ok(Some(Ok(chunk))) => {
                read += chunk.len() as u64;
                if read > DRAIN_MAX_BYTES {
                    break;
                }
            }
            Ok(None) => {
                tracing::debug!(bytes = read, "read the rest of a refused request's body");
                return;
            }
            Ok(Some(Err(_))) | Err(_) => break,
        }
    }
    tracing::debug!(
        bytes = read,
        "a refused request's body goes on past the bounds: the connection closes"
    );
}
