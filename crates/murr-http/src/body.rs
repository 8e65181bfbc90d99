//! Request bodies within the size limit: whole (small JSON), streamed to a blocking reader
//! (Arrow IPC), or spooled to a file (Parquet, which is read from its footer).

use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::body::Body;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};

/// The setting behind the general body limit.
pub(crate) const PAYLOAD_SETTING: &str = "server.http.max_payload_size";
/// The setting behind the fetch body limit.
pub(crate) const FETCH_PAYLOAD_SETTING: &str = "server.http.max_fetch_payload_size";

/// Refuses a body whose declared length is over the limit before reading any of it.
pub(crate) fn check_declared_length(
    headers: &HeaderMap,
    limit: u64,
    setting: &str,
) -> ApiResult<()> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(ApiError::too_large(limit, setting)),
        _ => Ok(()),
    }
}

fn read_error(e: &axum::Error) -> ApiError {
    if crate::guard::is_timeout(e) {
        return ApiError::new(StatusCode::REQUEST_TIMEOUT, e.to_string());
    }
    ApiError::bad_request(format!("could not read the request body: {e}"))
}

/// The whole body, refused with 413 past `limit` bytes (the value of `setting`).
pub(crate) async fn read_all(body: Body, limit: u64, setting: &str) -> ApiResult<Bytes> {
    let mut body = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        let chunk = chunk.map_err(|e| read_error(&e))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::too_large(limit, setting));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// What the pump hands the blocking reader.
enum Piece {
    /// The next bytes of the body.
    Data(Bytes),
    /// The body ended by its protocol's own end (its full length, or the final chunk).
    End,
    /// The body failed (or passed the size limit).
    Failed(io::Error),
}

/// A blocking reader fed by [`stream`]'s pump from the async side.
///
/// It reads as end of file only the body's real end. When the pump stops without it (the client
/// went away, the request was cancelled, the server is shutting down) a read fails, so that an
/// upload cut short is never taken for a complete one.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<Piece>,
    current: Bytes,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Piece::Data(b)) => self.current = b,
                Some(Piece::End) => self.ended = true,
                Some(Piece::Failed(e)) => return Err(e),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upload stopped before the end of its body",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

impl ChannelReader {
    /// Checks that nothing follows what was read but the body's end: no more bytes, no error.
    ///
    /// # Errors
    /// An error naming what followed: bytes, a failed or cut-short body.
    pub(crate) fn expect_end(&mut self, what: &str) -> io::Result<()> {
        let mut probe = [0u8; 1];
        match self.read(&mut probe)? {
            0 => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the body has bytes after the end of the {what}"),
            )),
        }
    }
}

/// A body being streamed: the reader for the blocking side, and what the pump found.
pub(crate) struct Streamed {
    pub(crate) reader: ChannelReader,
    pub(crate) fault: Fault,
}

/// Why a pump stopped before the body's end, when the body was at fault: the answer then says
/// that rather than what the reader made of a cut-short stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fault(Arc<AtomicU8>);

const TOO_LARGE: u8 = 1;
const TIMED_OUT: u8 = 2;

impl Fault {
    fn set(&self, what: u8) {
        self.0.store(what, Ordering::SeqCst);
    }

    /// The answer for the body's fault, if it had one: 413 past `limit`, 408 for a stall.
    pub(crate) fn answer(&self, limit: u64) -> Option<ApiError> {
        match self.0.load(Ordering::SeqCst) {
            TOO_LARGE => Some(ApiError::too_large(limit, PAYLOAD_SETTING)),
            TIMED_OUT => Some(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the request body stopped sending (server.http.body_timeout)",
            )),
            _ => None,
        }
    }
}

/// Starts streaming: returns the reader and the future that forwards the body into it.
/// The future stops early when the reader is dropped (the write failed) or the limit is passed.
pub(crate) fn stream(body: Body, limit: u64) -> (Streamed, impl Future<Output = ()> + Send) {
    let (tx, rx) = mpsc::channel::<Piece>(16);
    let fault = Fault::default();
    let flag = fault.clone();
    let pump = async move {
        let mut body = body.into_data_stream();
        let mut seen = 0u64;
        while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
            let piece = match chunk {
                Ok(c) => {
                    seen += c.len() as u64;
                    if seen > limit {
                        flag.set(TOO_LARGE);
                        let _ = tx
                            .send(Piece::Failed(io::Error::other(
                                "request body over the size limit",
                            )))
                            .await;
                        return;
                    }
                    Piece::Data(c)
                }
                Err(e) => {
                    if crate::guard::is_timeout(&e) {
                        flag.set(TIMED_OUT);
                    }
                    Piece::Failed(io::Error::other(e.to_string()))
                }
            };
            let failed = matches!(piece, Piece::Failed(_));
            if tx.send(piece).await.is_err() || failed {
                return;
            }
            // While the client sends faster than the decoder reads, every chunk is ready at
            // once and the pump could run for tokio's whole budget (up to 128 operations, each
            // read up to ~400 KB) before the fetches waiting on its worker got a turn: reads in
            // the first 60 ms of each write of a refresh took up to 4 ms (docs/performance.md).
            tokio::task::yield_now().await;
        }
        let _ = tx.send(Piece::End).await;
    };
    (
        Streamed {
            reader: ChannelReader {
                rx,
                current: Bytes::new(),
                ended: false,
            },
            fault,
        },
        pump,
    )
}

/// Answers never show where the data folder is: the message says what failed (the error's
/// kind; its text can hold the path), and the log has the whole error.
fn upload_error(dir: &Path, e: &io::Error) -> ApiError {
    tracing::error!(folder = %dir.display(), error = %e, "cannot spool an upload");
    let status = if matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) {
        StatusCode::INSUFFICIENT_STORAGE
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    ApiError::new(
        status,
        format!("cannot spool the upload in the data folder: {}", e.kind()),
    )
}

/// Spools the body into a new temporary file in `dir`, refusing it with 413 past `limit`.
/// Logs progress every 256 MiB.
pub(crate) async fn spool(
    body: Body,
    limit: u64,
    dir: &Path,
    table: &str,
) -> ApiResult<tempfile::NamedTempFile> {
    use tokio::io::AsyncWriteExt;
    let file = tempfile::Builder::new()
        .prefix(murr_directory::UPLOAD_PREFIX)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| upload_error(dir, &e))?;
    let std_file = file.reopen().map_err(|e| upload_error(dir, &e))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(std_file));
    let mut body = body.into_data_stream();
    let mut seen = 0u64;
    let mut next_log = 256u64 << 20;
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        let chunk = chunk.map_err(|e| read_error(&e))?;
        seen += chunk.len() as u64;
        if seen > limit {
            return Err(ApiError::too_large(limit, PAYLOAD_SETTING));
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| upload_error(dir, &e))?;
        if seen >= next_log {
            tracing::info!(table, mb = seen >> 20, "receiving upload");
            next_log += 256 << 20;
        }
    }
    out.flush().await.map_err(|e| upload_error(dir, &e))?;
    Ok(file)
}
