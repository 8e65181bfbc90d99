//! The route handlers.

use std::io::BufReader;
use std::sync::Arc;

use arrow_array::RecordBatch;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use murr_api::{
    ARROW_STREAM, AlterRequest, AnyFetch, CompactAnswer, DropAnswer, FetchLimits, JSON, KeyedFetch,
    LoadRequest, PARQUET, SMALL_FETCH_CELLS, TableSchema, WriteAnswer, encode_keys, sparse_answer,
};

use crate::body::{self, FETCH_PAYLOAD_SETTING, PAYLOAD_SETTING, check_declared_length};
use crate::error::{ApiError, ApiResult};
use crate::{AppState, json};

/// The `{name}` of a table route. A name that does not decode (`%FF`) is a 400 with the JSON
/// error body every error has, not axum's plain-text rejection.
pub(crate) struct TableName(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for TableName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(name)) => Ok(TableName(name)),
            Err(e) => Err(ApiError::bad_request(format!(
                "the table name in the path is not valid: {}",
                e.body_text()
            ))),
        }
    }
}

fn with_type(mut r: Response, content_type: &'static str) -> Response {
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).expect("serializing plain JSON values cannot fail");
    with_type((status, body).into_response(), JSON)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("worker failed: {e}"),
        )
    })?
}

/// `OK` as text, or with `Accept: application/json` the node's role and, for a replica, how
/// fresh its copy of the store is.
pub(crate) async fn health(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let wants_json = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return json_response(StatusCode::OK, &state.node.report());
    }
    with_type(
        (StatusCode::OK, "OK").into_response(),
        "text/plain; charset=utf-8",
    )
}

pub(crate) async fn openapi() -> Response {
    json_response(StatusCode::OK, &crate::openapi::document())
}

pub(crate) async fn list_tables(State(state): State<AppState>) -> Response {
    // Serialized straight from the schemas: a serde_json::Value would sort their columns.
    struct Tables(Vec<(String, TableSchema)>);
    impl serde::Serialize for Tables {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(name, schema)| (name, schema)))
        }
    }
    json_response(StatusCode::OK, &Tables(state.store.schemas()))
}

pub(crate) async fn get_schema(
    State(state): State<AppState>,
    TableName(name): TableName,
) -> ApiResult<Response> {
    let table = state.store.table(&name)?;
    Ok(json_response(StatusCode::OK, &table.schema()))
}

pub(crate) async fn create_table(
    State(state): State<AppState>,
    TableName(name): TableName,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    check_declared_length(&headers, state.config.max_payload_size, PAYLOAD_SETTING)?;
    let bytes = body::read_all(body, state.config.max_payload_size, PAYLOAD_SETTING).await?;
    let schema: TableSchema = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid table schema: {e}")))?;
    let store = Arc::clone(&state.store);
    let table = blocking(move || Ok(store.create_table(&name, schema)?)).await?;
    Ok(json_response(StatusCode::CREATED, &table.schema()))
}

pub(crate) async fn alter_table(
    State(state): State<AppState>,
    TableName(name): TableName,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    check_declared_length(&headers, state.config.max_payload_size, PAYLOAD_SETTING)?;
    let bytes = body::read_all(body, state.config.max_payload_size, PAYLOAD_SETTING).await?;
    let request = AlterRequest::parse(&bytes).map_err(ApiError::bad_request)?;
    let table = state.store.table(&name)?;
    let schema = blocking(move || {
        Ok(table.alter(&murr_table::Alter {
            add_columns: request.columns,
            ttl: request.ttl,
        })?)
    })
    .await?;
    Ok(json_response(StatusCode::OK, &schema))
}

pub(crate) async fn drop_table(
    State(state): State<AppState>,
    TableName(name): TableName,
) -> ApiResult<Response> {
    let store = Arc::clone(&state.store);
    let dropped = name.clone();
    blocking(move || Ok(store.drop_table(&name)?)).await?;
    Ok(json_response(StatusCode::OK, &DropAnswer { dropped }))
}

fn content_type(headers: &HeaderMap) -> ApiResult<&str> {
    let Some(v) = headers.get(header::CONTENT_TYPE) else {
        return Ok(JSON);
    };
    let v = v.to_str().map_err(|_| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type is not readable text",
        )
    })?;
    let base = v.split(';').next().unwrap_or("").trim();
    Ok(base)
}

fn write_answer(stats: murr_table::WriteStats) -> Response {
    json_response(
        StatusCode::OK,
        &WriteAnswer {
            rows: stats.rows,
            stored: stats.stored,
            bytes: stats.bytes,
        },
    )
}

pub(crate) async fn write(
    State(state): State<AppState>,
    TableName(name): TableName,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let limit = state.config.max_payload_size;
    check_declared_length(&headers, limit, PAYLOAD_SETTING)?;
    let table = state.store.table(&name)?;
    match content_type(&headers)?.to_ascii_lowercase().as_str() {
        ARROW_STREAM => {
            let (streamed, pump) = body::stream(body, limit);
            let body::Streamed { reader, fault } = streamed;
            let work = blocking(move || {
                let mut reader = murr_api::decode_ipc(|| {
                    arrow_ipc::reader::StreamReader::try_new(
                        BufReader::with_capacity(1 << 16, reader),
                        None,
                    )
                })
                .map_err(|e| ApiError::bad_request(format!("invalid Arrow IPC stream: {e}")))?;
                let invalid = |e: &dyn std::fmt::Display| {
                    murr_table::Error::Invalid(format!("invalid Arrow IPC stream: {e}"))
                };
                // The batches, then one check that the body ended right after the stream: a
                // body cut short, failed or followed by more bytes aborts the write.
                let mut done = false;
                let batches = std::iter::from_fn(|| {
                    if done {
                        return None;
                    }
                    match murr_api::decode_ipc(|| reader.next().transpose()).transpose() {
                        Some(batch) => Some(batch.map_err(|e| invalid(&e))),
                        None => {
                            done = true;
                            let rest = reader.get_mut();
                            let end = rest
                                .buffer()
                                .is_empty()
                                .then(|| rest.get_mut().expect_end("Arrow stream"));
                            match end {
                                Some(Ok(())) => None,
                                Some(Err(e)) => Some(Err(invalid(&e))),
                                None => Some(Err(invalid(
                                    &"the body has bytes after the end of the Arrow stream",
                                ))),
                            }
                        }
                    }
                });
                Ok(table.write_stream(batches)?)
            });
            let ((), result) = tokio::join!(pump, work);
            if let Some(answer) = fault.answer(limit) {
                return Err(answer);
            }
            Ok(write_answer(result?))
        }
        PARQUET => {
            let file = body::spool(body, limit, &state.config.upload_dir, &name).await?;
            let stats = blocking(move || {
                let f = file.reopen().map_err(|e| {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("upload file: {e}"))
                })?;
                let schema = table.schema();
                let columns: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
                // The parquet reader asserts on some malformed files: a panic there is the
                // file's fault, a 400, never a 500 (the checks in `parquet_upload` catch the
                // known ones before reading).
                let panicked = |_| {
                    ApiError::bad_request("invalid Parquet file: the reader could not decode it")
                };
                let reader = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::parquet_upload::reader(f, table.name(), &columns)
                }))
                .map_err(panicked)??;
                let mut reader = std::panic::AssertUnwindSafe(reader);
                let batches = std::iter::from_fn(move || {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.next()))
                        .unwrap_or_else(|_| {
                            Some(Err(parquet::errors::ParquetError::General(
                                "the reader could not decode it".to_owned(),
                            )
                            .into()))
                        })
                })
                .map(|b| {
                    b.map_err(|e| murr_table::Error::Invalid(format!("invalid Parquet file: {e}")))
                });
                let stats = table.write_stream(batches)?;
                drop(file);
                Ok(stats)
            })
            .await?;
            Ok(write_answer(stats))
        }
        JSON => {
            let bytes = body::read_all(body, limit, PAYLOAD_SETTING).await?;
            let stats = blocking(move || {
                let batch = json::write_body(table.name(), &table.schema(), &bytes)?;
                Ok(table.write(&[batch])?)
            })
            .await?;
            Ok(write_answer(stats))
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {other:?} is not supported for writes: use {ARROW_STREAM}, {PARQUET} or {JSON}"
            ),
        )),
    }
}

fn wants_arrow(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(ARROW_STREAM))
}

fn encode_ipc(batch: &RecordBatch) -> ApiResult<Vec<u8>> {
    let internal = |e: arrow_schema::ArrowError| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding Arrow IPC: {e}"),
        )
    };
    let mut out = Vec::with_capacity(batch.get_array_memory_size() + 1024);
    let mut w =
        arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).map_err(internal)?;
    w.write(batch).map_err(internal)?;
    w.finish().map_err(internal)?;
    drop(w);
    Ok(out)
}

fn parse_fetch<'a>(
    body: &'a [u8],
    arrow_body: bool,
    limits: &FetchLimits,
) -> ApiResult<AnyFetch<'a>> {
    let expected = "(expected {\"keys\": [\"k1\", ...], \"columns\": [\"c1\", ...]}, or keys by \
                    key column: {\"keys\": {\"id\": [...]}, \"columns\": [...]})";
    let req = if arrow_body {
        AnyFetch::Keyed(
            KeyedFetch::from_arrow(body)
                .map_err(|e| ApiError::bad_request(format!("invalid Arrow fetch request: {e}")))?,
        )
    } else {
        AnyFetch::from_json(body)
            .map_err(|e| ApiError::bad_request(format!("invalid fetch request: {e} {expected}")))?
    };
    if req.table().is_some() {
        return Err(ApiError::bad_request(format!(
            "invalid fetch request: unknown field `table` (the table is in the path) {expected}"
        )));
    }
    req.check(limits).map_err(ApiError::bad_request)?;
    Ok(req)
}

fn fetch_now(table: &murr_table::Table, req: &AnyFetch<'_>, arrow: bool) -> ApiResult<Response> {
    let meta = table.meta();
    let batch = match req {
        AnyFetch::Dense(req) => {
            let keys = encode_keys(meta.key_codec(), &req.keys).map_err(ApiError::bad_request)?;
            table.fetch(&keys, &req.columns)?
        }
        AnyFetch::Keyed(req) => {
            let keys = req
                .key_arrays(meta.schema())
                .map_err(ApiError::bad_request)?;
            let (found, batch) = table.fetch_keyed(&keys, &req.columns)?;
            sparse_answer(found, &batch)
        }
    };
    if arrow {
        Ok(with_type(
            (StatusCode::OK, encode_ipc(&batch)?).into_response(),
            ARROW_STREAM,
        ))
    } else {
        Ok(with_type(
            (StatusCode::OK, json::fetch_answer(&batch)?).into_response(),
            JSON,
        ))
    }
}

/// Fetch bodies up to this size are parsed on the async worker (1000 keys are about 15 KB):
/// cheaper than a hand-off; larger ones are parsed on the blocking pool.
const SMALL_FETCH_BODY: usize = 64 * 1024;

pub(crate) async fn fetch(
    State(state): State<AppState>,
    TableName(name): TableName,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let limit = state.config.max_fetch_payload_size;
    check_declared_length(&headers, limit, FETCH_PAYLOAD_SETTING)?;
    let table = state.store.table(&name)?;
    let bytes: Bytes = body::read_all(body, limit, FETCH_PAYLOAD_SETTING).await?;
    let arrow = wants_arrow(&headers);
    let arrow_body = content_type(&headers)? == ARROW_STREAM;
    let limits = state.config.fetch_limits;
    if bytes.len() <= SMALL_FETCH_BODY {
        // The answer's size decides where it is built: small ones here, at once. (A small body
        // asking for a large answer is parsed again on the blocking pool: ~50 µs next to a
        // fetch of more than 64K cells.)
        let req = parse_fetch(&bytes, arrow_body, &limits)?;
        if req.cells() <= SMALL_FETCH_CELLS {
            return fetch_now(&table, &req, arrow);
        }
    }
    blocking(move || fetch_now(&table, &parse_fetch(&bytes, arrow_body, &limits)?, arrow)).await
}

/// Merges all of a table's segments into one; answers when done.
pub(crate) async fn compact(
    State(state): State<AppState>,
    TableName(name): TableName,
) -> ApiResult<Response> {
    let table = state.store.table(&name)?;
    let segments = blocking(move || {
        table.compact()?;
        Ok(table.stats().segments)
    })
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &CompactAnswer {
            compacted: name,
            segments,
        },
    ))
}

/// Starts loading Parquet files from object storage into a table; answers 202 with the load's
/// status at once (`Location` is where to follow it).
pub(crate) async fn load(
    State(state): State<AppState>,
    TableName(name): TableName,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    check_declared_length(
        &headers,
        state.config.max_fetch_payload_size,
        FETCH_PAYLOAD_SETTING,
    )?;
    let bytes = body::read_all(
        body,
        state.config.max_fetch_payload_size,
        FETCH_PAYLOAD_SETTING,
    )
    .await?;
    let request: LoadRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid load request: {e}")))?;
    let store = Arc::clone(&state.store);
    let loads = Arc::clone(&state.loads);
    let status = blocking(move || loads.start(&store, &name, request)).await?;
    let mut response = json_response(StatusCode::ACCEPTED, &status);
    let location = format!(
        "/api/v1/table/{}/load/{}",
        encode_path(&status.table),
        status.id
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// A load's status.
pub(crate) async fn load_status(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> ApiResult<Response> {
    let Path((name, id)) = path
        .map_err(|e| ApiError::bad_request(format!("the path is not valid: {}", e.body_text())))?;
    match state.loads.status(&name, &id) {
        Some(status) => Ok(json_response(StatusCode::OK, &status)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "table {name:?} has no load {id:?} (a server keeps the status of its last loads until it restarts)"
            ),
        )),
    }
}

/// `name` as one path segment.
fn encode_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route (see /openapi.json)")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route (see /openapi.json)",
    )
}
