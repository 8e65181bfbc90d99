//! The fuzz targets: every decoder of untrusted bytes, driven the way the server drives it.
//!
//! Each target takes one input and panics when murr mishandles it: a panic anywhere, an HTTP
//! answer of 500 or more, a Flight status `internal` or `unknown`, or an answer that is not a
//! valid JSON document or Arrow stream. Bad input itself is fine: it must only be refused
//! cleanly. `fuzz/` (outside the workspace, built by `cargo fuzz`) wraps each target in a
//! libFuzzer entry point; the workspace test `tests/tests/fuzz.rs` replays the committed seeds
//! and every crash found so far (`fuzz/regressions/`) through the same functions, so CI keeps
//! them fixed. The seeds come from [`seeds`], written by `cargo xtask fuzz --seeds`.
//!
//! The targets:
//! - `segment`: a segment file. The checksums in the trailer are set right before opening (a
//!   fuzzer cannot forge a CRC), so the input explores the structure behind them; the opened
//!   segment's every key is looked up and every column gathered, and each array is validated.
//! - `manifest`: a table's manifest (its JSON, sealed in the checksummed envelope by the
//!   target), beside real segment files under the names it lists; the store opens it, and an
//!   open table is fetched from, compacted and fetched from again.
//! - `fetch_json`, `fetch_arrow`: a fetch body (`POST /api/v1/table/{name}/fetch`) for a
//!   utf8-keyed table and a compound-keyed one (the first byte picks).
//! - `ticket`: a Flight `do_get` ticket.
//! - `write_json`, `write_arrow`, `write_parquet`: a write body (`PUT .../write`), first byte
//!   picks the table.
//! - `admin_json`: the bodies of `PUT /api/v1/table/{name}` (create) and `PATCH` (alter).
//! - `flight_action`: a Flight action body; the first byte picks the action.
//! - `flight_put`: a Flight `do_put` upload: the first byte picks the table, the rest is an
//!   Arrow IPC stream, sent as a client sends it (a Flight data message per IPC message, its
//!   metadata and body; bytes that do not frame as a message go as one more message).

#![allow(
    clippy::missing_panics_doc,
    reason = "a target panics on what it finds"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "serde_json's json! macro calls unwrap inside"
)]

use std::sync::{Arc, LazyLock};

use arrow_array::{Array, RecordBatch};
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{Action, FlightData, FlightDescriptor, Ticket};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use bytes::Bytes;
use futures_util::StreamExt;
use murr_directory::{Directory, DirectoryExt, FilePath, RamDirectory};
use murr_flight::{FlightConfig, MurrFlight};
use murr_format::{DType, Verify, envelope};
use murr_http::{AppState, HttpConfig};
use murr_segment::{Loc, ResolvedRows, Segment, gather_columns};
use murr_table::{Store, StoreOptions};
use tower::ServiceExt;

/// Every target, by name (`fuzz/fuzz_targets/<name>.rs` wraps each).
pub const TARGETS: &[&str] = &[
    "segment",
    "manifest",
    "fetch_json",
    "fetch_arrow",
    "ticket",
    "write_json",
    "write_arrow",
    "write_parquet",
    "admin_json",
    "flight_action",
    "flight_put",
];

/// Runs target `name` on `data`; whether murr accepted the input (a bad one is refused, which
/// is fine: the seeds, which are good, must be accepted).
///
/// # Panics
/// When murr mishandles the input (see the module docs), or `name` is no target.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "segment" => segment(data),
        "manifest" => manifest(data),
        "fetch_json" => fetch(data, murr_api::JSON),
        "fetch_arrow" => fetch(data, murr_api::ARROW_STREAM),
        "ticket" => ticket(data),
        "write_json" => write(data, murr_api::JSON),
        "write_arrow" => write(data, murr_api::ARROW_STREAM),
        "write_parquet" => write(data, murr_api::PARQUET),
        "admin_json" => admin(data),
        "flight_action" => flight_action(data),
        "flight_put" => flight_put(data),
        other => panic!("no fuzz target {other:?} (the targets: {TARGETS:?})"),
    }
}

/// The runtime every target's requests run on: one thread, as libFuzzer runs one input at a
/// time, with the blocking pool the handlers hand their work to.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

/// The utf8-keyed table: one column of every kind of type, and a time to live.
const ITEMS: &str = r#"{"key": "id", "columns": {
  "id": {"dtype": "utf8", "nullable": false},
  "score": {"dtype": "float32"},
  "count": {"dtype": "int64"},
  "name": {"dtype": "utf8"},
  "flag": {"dtype": "bool"},
  "half": {"dtype": "float16"},
  "blob": {"dtype": "binary"},
  "day": {"dtype": "date32"},
  "at": {"dtype": "timestamp[us, UTC]"},
  "counts": {"dtype": "list<int64>"},
  "tags": {"dtype": "list<utf8>"},
  "emb": {"dtype": "fixed_size_list<float32, 4>"}},
  "ttl": "7d"}"#;

/// The compound-keyed table (generation 2): a utf8 and an int64 key column.
const EVENTS: &str = r#"{"columns": {
  "user": {"dtype": "utf8", "nullable": false, "key": true},
  "item": {"dtype": "int64", "nullable": false, "key": true},
  "score": {"dtype": "float32", "strict": false},
  "seen": {"dtype": "timestamp[ms]"},
  "sparse": {"dtype": "int32"}}}"#;

/// Rows of [`ITEMS`]: nulls, empty lists, every accepted spelling of dates and times.
const ITEMS_ROWS: &str = r#"{"columns": {
  "id": ["a", "b", "c", "d"],
  "score": [1.5, null, -2, 3e38],
  "count": [1, null, -9007199254740993, 0],
  "name": ["x", null, "ü", ""],
  "flag": [true, false, null, true],
  "half": [0.5, null, 65504, -0.0],
  "blob": ["aGk=", null, "", "AAEC"],
  "day": ["2024-01-31", null, 19000, "1970-01-01"],
  "at": ["2024-01-31T12:00:00Z", null, 1700000000000000, "2024-01-31T12:00:00.123456+02:00"],
  "counts": [[1, 2], null, [], [null, 5]],
  "tags": [["a", null], [], null, ["", "z"]],
  "emb": [[1, 2, 3, 4], null, [0, 0, 0, 0], [0.5, -1, 1e-3, 7]]}}"#;

/// Rows of [`EVENTS`].
const EVENTS_ROWS: &str = r#"{"columns": {
  "user": ["u1", "u1", "u2", ""],
  "item": [1, 2, 1, -5],
  "score": [0.25, null, 1, 2],
  "seen": [1700000000000, null, "2024-01-31T12:00:00Z", 0],
  "sparse": [null, null, 7, null]}}"#;

/// The keys of [`ITEMS_ROWS`] and [`EVENTS_ROWS`], as keyed fetch requests.
const ALL_KEYS: &[&str] = &[
    r#"{"keys": {"id": ["a", "b", "c", "d"]}, "columns": []}"#,
    r#"{"keys": {"user": ["u1", "u1", "u2", ""], "item": [1, 2, 1, -5]}, "columns": []}"#,
];

/// The tables: name, schema and rows.
const TABLES: &[(&str, &str, &str)] = &[
    ("items", ITEMS, ITEMS_ROWS),
    ("events", EVENTS, EVENTS_ROWS),
];

/// A store in memory that merges only when asked: what a target does to it stays in the
/// input's run.
fn ram_store() -> (Arc<Store>, RamDirectory) {
    let dir = RamDirectory::new();
    let options = StoreOptions {
        background_merges: false,
        ..StoreOptions::default()
    };
    let store = Store::open(Arc::new(dir.clone()), options).expect("a store in memory opens");
    (Arc::new(store), dir)
}

/// The HTTP API over `store`, with default settings; Parquet uploads spool to a folder that
/// lives as long as the process.
fn router(store: Arc<Store>) -> axum::Router {
    static UPLOADS: LazyLock<tempfile::TempDir> =
        LazyLock::new(|| tempfile::tempdir().expect("a folder for uploads"));
    murr_http::router(AppState {
        store,
        config: Arc::new(HttpConfig {
            upload_dir: UPLOADS.path().to_path_buf(),
            ..HttpConfig::default()
        }),
        node: Arc::default(),
        registry: None,
        loads: Arc::default(),
    })
}

/// One request to `app`; its status and body. Panics on a server error.
fn call(
    app: &axum::Router,
    method: Method,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (StatusCode, Bytes) {
    let request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("content-type", content_type)
        .body(Body::from(body.to_vec()))
        .expect("a request");
    let (status, bytes) = RUNTIME.block_on(async {
        let response = app
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the answer's body reads");
        (status, bytes)
    });
    assert!(
        !status.is_server_error(),
        "{method} {path} ({content_type}) answered {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    if status.is_client_error() {
        let error: serde_json::Value =
            serde_json::from_slice(&bytes).expect("an error answer is JSON");
        assert!(
            error.get("error").is_some(),
            "an error answer names the error: {error}"
        );
    }
    (status, bytes)
}

/// A store holding [`TABLES`] with their rows, in two segments each (the rows written twice,
/// the second time over the first), and its HTTP API.
fn filled() -> (Arc<Store>, RamDirectory, axum::Router) {
    let (store, dir) = ram_store();
    let app = router(Arc::clone(&store));
    for (name, schema, rows) in TABLES {
        let (status, _) = call(
            &app,
            Method::PUT,
            &format!("/api/v1/table/{name}"),
            murr_api::JSON,
            schema.as_bytes(),
        );
        assert_eq!(status, StatusCode::CREATED, "table {name} is created");
        for _ in 0..2 {
            let (status, _) = call(
                &app,
                Method::PUT,
                &format!("/api/v1/table/{name}/write"),
                murr_api::JSON,
                rows.as_bytes(),
            );
            assert_eq!(status, StatusCode::OK, "rows of {name} are written");
        }
    }
    (store, dir, app)
}

/// The filled store the read-only targets share.
static FILLED: LazyLock<(Arc<Store>, RamDirectory, axum::Router)> = LazyLock::new(filled);

/// A store of its own holding what [`FILLED`] holds, for a target that changes it: a copy of
/// its files, opened as the server opens its folder.
fn fresh() -> (Arc<Store>, axum::Router) {
    let (_, source, _) = &*FILLED;
    let dir = RamDirectory::new();
    for file in source.list("").expect("a listing") {
        let bytes = source.open(&file.path).expect("a file in memory");
        dir.write_new(&file.path, &bytes).expect("a file in memory");
    }
    let options = StoreOptions {
        background_merges: false,
        ..StoreOptions::default()
    };
    let store = Arc::new(Store::open(Arc::new(dir), options).expect("a copy opens"));
    let app = router(Arc::clone(&store));
    (store, app)
}

/// The table the first byte picks, and the rest.
fn pick(data: &[u8]) -> (&'static str, &[u8]) {
    match data.split_first() {
        Some((b, rest)) => (TABLES[usize::from(*b) % TABLES.len()].0, rest),
        None => (TABLES[0].0, data),
    }
}

/// Checks a successful fetch answer: a JSON document, or an Arrow stream of valid arrays.
fn check_answer(bytes: &[u8]) {
    if bytes.starts_with(b"{") {
        serde_json::from_slice::<serde_json::Value>(bytes).expect("a JSON answer parses");
        return;
    }
    let reader =
        arrow_ipc::reader::StreamReader::try_new(bytes, None).expect("an Arrow answer opens");
    for batch in reader {
        validate(&batch.expect("an Arrow answer's batches read"));
    }
}

fn validate(batch: &RecordBatch) {
    for column in batch.columns() {
        column
            .to_data()
            .validate_full()
            .expect("an answer's arrays are valid");
    }
}

fn fetch(data: &[u8], content_type: &str) -> bool {
    let (table, body) = pick(data);
    let (_, _, app) = &*FILLED;
    let (status, bytes) = call(
        app,
        Method::POST,
        &format!("/api/v1/table/{table}/fetch"),
        content_type,
        body,
    );
    if status == StatusCode::OK {
        check_answer(&bytes);
    }
    status == StatusCode::OK
}

fn write(data: &[u8], content_type: &str) -> bool {
    let (table, body) = pick(data);
    let (store, app) = fresh();
    let (status, _) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/table/{table}/write"),
        content_type,
        body,
    );
    if status.is_success() {
        read_merge_read(&store, table);
    }
    status.is_success()
}

/// After a change that succeeded: `table` reads back whole, merges and reads again.
fn read_merge_read(store: &Store, table: &str) {
    let table = store.table(table).expect("the table is there");
    read_all(&table);
    table.compact().expect("a table merges after a change");
    read_all(&table);
}

/// Fetches every column of every row the table's segments hold, and a missing key.
fn read_all(table: &murr_table::Table) {
    let schema = table.schema();
    let columns: Vec<&str> = schema
        .columns
        .iter()
        .filter(|c| !schema.is_key(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    let snapshot = table.snapshot();
    let mut keys: Vec<Vec<u8>> = snapshot
        .segments()
        .iter()
        .flat_map(|s| (0..s.rows()).map(|r| s.key(r).to_vec()))
        .collect();
    keys.push(b"\xffabsent".to_vec());
    let batch = table.fetch(&keys, &columns).expect("stored keys fetch");
    validate(&batch);
}

fn ticket(data: &[u8]) -> bool {
    let (store, _, _) = &*FILLED;
    let flight = MurrFlight::new(Arc::clone(store), FlightConfig::default());
    RUNTIME.block_on(async {
        let request = tonic::Request::new(Ticket {
            ticket: Bytes::copy_from_slice(data),
        });
        answered(flight.do_get(request).await).await
    })
}

/// Whether a Flight call succeeded, its answer's stream read to the end; checks every error.
async fn answered<T>(
    answer: Result<
        tonic::Response<futures_util::stream::BoxStream<'static, Result<T, tonic::Status>>>,
        tonic::Status,
    >,
) -> bool {
    match answer {
        Ok(answer) => {
            let mut stream = answer.into_inner();
            let mut ok = true;
            while let Some(message) = stream.next().await {
                if let Err(status) = message {
                    check_status(&status);
                    ok = false;
                }
            }
            ok
        }
        Err(status) => {
            check_status(&status);
            false
        }
    }
}

fn check_status(status: &tonic::Status) {
    assert!(
        !matches!(
            status.code(),
            tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::DataLoss
        ),
        "Flight answered {:?}: {}",
        status.code(),
        status.message()
    );
}

fn admin(data: &[u8]) -> bool {
    let (op, body) = data.split_first().map_or((0, data), |(b, rest)| (*b, rest));
    let (store, app) = fresh();
    let (method, table) = match op % 3 {
        0 => (Method::PUT, "new"),
        1 => (Method::PATCH, "items"),
        _ => (Method::PATCH, "events"),
    };
    let (status, _) = call(
        &app,
        method,
        &format!("/api/v1/table/{table}"),
        murr_api::JSON,
        body,
    );
    if status.is_success() {
        read_merge_read(&store, table);
    }
    status.is_success()
}

fn flight_action(data: &[u8]) -> bool {
    const ACTIONS: &[&str] = &[
        "create_table",
        "add_columns",
        "alter_table",
        "drop_table",
        "compact",
    ];
    let (op, body) = data.split_first().map_or((0, data), |(b, rest)| (*b, rest));
    let (store, _) = fresh();
    let flight = MurrFlight::new(store, FlightConfig::default());
    RUNTIME.block_on(async {
        let request = tonic::Request::new(Action {
            r#type: ACTIONS[usize::from(op) % ACTIONS.len()].to_owned(),
            body: Bytes::copy_from_slice(body),
        });
        answered(flight.do_action(request).await).await
    })
}

fn flight_put(data: &[u8]) -> bool {
    use tonic::codec::Codec;
    let (table, stream) = pick(data);
    let mut frames = Vec::new();
    for message in flight_messages(table, stream) {
        let bytes = prost::Message::encode_to_vec(&message);
        frames.push(0u8);
        frames.extend_from_slice(&u32::try_from(bytes.len()).expect("small").to_be_bytes());
        frames.extend_from_slice(&bytes);
    }
    let (store, _) = fresh();
    let flight = MurrFlight::new(Arc::clone(&store), FlightConfig::default());
    let ok = RUNTIME.block_on(async {
        let decoder = tonic_prost::ProstCodec::<FlightData, FlightData>::default().decoder();
        let upload =
            tonic::Streaming::new_request(decoder, Body::from(frames), None, Some(64 << 20));
        answered(flight.do_put(tonic::Request::new(upload)).await).await
    });
    if ok {
        let table = store.table(table).expect("the table is there");
        read_all(&table);
    }
    ok
}

/// The Flight data messages a client sends to upload `stream` (an Arrow IPC stream) to `table`.
fn flight_messages(table: &str, stream: &[u8]) -> Vec<FlightData> {
    let mut messages = Vec::new();
    let mut at = 0;
    while stream.len() >= at + 8 && stream[at..at + 4] == [0xff; 4] {
        let len = i32::from_le_bytes(stream[at + 4..at + 8].try_into().expect("4 bytes"));
        if len == 0 {
            // The end of the stream: the upload's end is the call's.
            at += 8;
            break;
        }
        let Some(meta_end) = usize::try_from(len)
            .ok()
            .filter(|&l| l > 0)
            .map(|l| at + 8 + l)
            .filter(|&end| end <= stream.len())
        else {
            break;
        };
        let meta = &stream[at + 8..meta_end];
        let body_len = arrow_ipc::root_as_message(meta)
            .ok()
            .and_then(|m| usize::try_from(m.bodyLength()).ok())
            .unwrap_or(0);
        let body_end = meta_end.saturating_add(body_len).min(stream.len());
        messages.push(FlightData {
            data_header: Bytes::copy_from_slice(meta),
            data_body: Bytes::copy_from_slice(&stream[meta_end..body_end]),
            ..FlightData::default()
        });
        at = body_end;
    }
    if at < stream.len() || messages.is_empty() {
        messages.push(FlightData {
            data_header: Bytes::copy_from_slice(&stream[at..]),
            ..FlightData::default()
        });
    }
    messages[0].flight_descriptor = Some(FlightDescriptor::new_path(vec![table.to_owned()]));
    messages
}

/// A segment's header and trailer lengths (docs/format.md).
const SEGMENT_HEADER: usize = 64;
const SEGMENT_TRAILER: usize = 32;

/// Sets the footer and body checksums in a segment's trailer to those of its bytes, when the
/// trailer places the footer inside the file.
fn fix_checksums(bytes: &mut [u8]) {
    let len = bytes.len();
    if len < SEGMENT_HEADER + SEGMENT_TRAILER {
        return;
    }
    let t = len - SEGMENT_TRAILER;
    let footer_offset = u64::from_le_bytes(bytes[t..t + 8].try_into().expect("8 bytes"));
    let footer_len = u32::from_le_bytes(bytes[t + 8..t + 12].try_into().expect("4 bytes"));
    let Ok(offset) = usize::try_from(footer_offset) else {
        return;
    };
    if offset < SEGMENT_HEADER || offset.checked_add(footer_len as usize) != Some(t) {
        return;
    }
    let footer_crc = crc32c::crc32c(&bytes[offset..t]);
    let body_crc = crc32c::crc32c(&bytes[SEGMENT_HEADER..offset]);
    bytes[t + 12..t + 16].copy_from_slice(&footer_crc.to_le_bytes());
    bytes[t + 16..t + 20].copy_from_slice(&body_crc.to_le_bytes());
}

fn segment(data: &[u8]) -> bool {
    let mut bytes = data.to_vec();
    fix_checksums(&mut bytes);
    let path = FilePath::new("fuzz.murr").expect("a file name");
    let Ok(segment) = Segment::from_bytes(Bytes::from(bytes), path, Verify::Full) else {
        return false;
    };
    let rows = segment.rows();
    let view = segment.view();
    for row in 0..rows {
        let key = segment.key(row).to_vec();
        let _ = segment.find(&key);
        let _ = view.written(row);
    }
    let _ = segment.find(b"\xffabsent");
    let columns: Vec<(String, DType)> = view
        .meta()
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.dtype))
        .collect();
    let columns: Vec<(&str, DType)> = columns.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let segments = [segment];
    let mut locs: Vec<Loc> = (0..rows)
        .map(|row| Loc {
            seg: 0,
            row: u32::try_from(row).expect("a segment's rows are counted in u32"),
        })
        .collect();
    for only_found in [true, false] {
        if !only_found {
            locs.insert(locs.len() / 2, Loc::MISSING);
        }
        let resolved = ResolvedRows::new(&segments, &locs);
        resolved.warm();
        if let Ok(arrays) = gather_columns(&segments, &resolved, &columns) {
            for array in arrays {
                array
                    .to_data()
                    .validate_full()
                    .expect("a gathered array is valid");
            }
        }
    }
    true
}

/// The incarnation the manifest target's segment files carry (any 16 hex digits).
const INCARNATION: &str = "00000000000f0220";

fn manifest(data: &[u8]) -> bool {
    let (_, filled_dir, _) = &*FILLED;
    let dir = RamDirectory::new();
    // The manifest as given, sealed; its segments from the filled store's segments of the
    // table it names, in turn, under the names it gives them.
    let path = FilePath::new("tables/items/MANIFEST-00000000000000000001").expect("a path");
    dir.write_new(&path, &envelope::seal(*b"MURRMANI", 1, data))
        .expect("a file in memory");
    let sources: Vec<Bytes> = filled_dir
        .list("tables/items")
        .expect("a listing")
        .iter()
        .filter(|f| f.path.file_name().ends_with(".murr"))
        .map(|f| filled_dir.open(&f.path).expect("a segment reads"))
        .collect();
    if let Ok(m) = serde_json::from_slice::<serde_json::Value>(data)
        && let Some(entries) = m.get("segments").and_then(|s| s.as_array())
    {
        for (i, entry) in entries.iter().enumerate().take(16) {
            let Some(name) = entry.get("file").and_then(|f| f.as_str()) else {
                continue;
            };
            let Ok(file) = FilePath::new(format!("tables/items/{name}")) else {
                continue;
            };
            let _ = dir.write_new(&file, &sources[i % sources.len()]);
        }
    }
    let options = StoreOptions {
        background_merges: false,
        ..StoreOptions::default()
    };
    let store = Store::open(Arc::new(dir), options).expect("a store opens over a bad manifest");
    let Ok(table) = store.table("items") else {
        return false;
    };
    read_all(&table);
    match table.compact() {
        Ok(()) => {
            read_all(&table);
            true
        }
        // A merge reads every row: what it finds wrong must be bad data, not a bug.
        Err(e) => {
            check_status(&murr_flight::status(&e));
            false
        }
    }
}

/// The seed inputs of target `name`: what murr writes and takes when used as documented.
///
/// # Panics
/// When `name` is no target.
pub fn seeds(name: &str) -> Vec<(String, Vec<u8>)> {
    let (store, dir, _) = &*FILLED;
    let with_table = |table: &str, body: &[u8]| {
        let b = TABLES.iter().position(|t| t.0 == table).expect("a table");
        let mut seed = vec![u8::try_from(b).expect("a few tables")];
        seed.extend_from_slice(body);
        seed
    };
    let s = |name: &str, bytes: Vec<u8>| (name.to_owned(), bytes);
    match name {
        "segment" => {
            let mut seeds: Vec<(String, Vec<u8>)> = TABLES
                .iter()
                .flat_map(|(table, _, _)| {
                    dir.list(&format!("tables/{table}"))
                        .expect("a listing")
                        .into_iter()
                        .filter(|f| f.path.file_name().ends_with(".murr"))
                        .take(1)
                        .map(|f| s(table, dir.open(&f.path).expect("reads").to_vec()))
                })
                .collect();
            // Segments of murr 0.1's format, which murr still opens.
            let fixtures =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/data-0.1/tables");
            for table in ["items", "longkeys"] {
                let folder = fixtures.join(table);
                let mut files: Vec<_> = std::fs::read_dir(&folder)
                    .expect("the 0.1 fixtures")
                    .map(|e| e.expect("an entry").path())
                    .filter(|p| p.extension().is_some_and(|e| e == "murr"))
                    .collect();
                files.sort();
                if let Some(first) = files.first() {
                    seeds.push(s(
                        &format!("{table}-0.1"),
                        std::fs::read(first).expect("a fixture reads"),
                    ));
                }
            }
            seeds
        }
        "manifest" => {
            let table = store.table("items").expect("items");
            let sizes: Vec<(String, u64, u64)> = dir
                .list("tables/items")
                .expect("a listing")
                .iter()
                .filter(|f| f.path.file_name().ends_with(".murr"))
                .enumerate()
                .map(|(i, f)| (format!("seg-{INCARNATION}-{:010}.murr", i + 1), 4, f.len))
                .collect();
            let manifest = serde_json::json!({
                "table": "items",
                "schema": table.schema(),
                "incarnation": INCARNATION,
                "version": 1,
                "next_segment": sizes.len() + 1,
                "segments": sizes.iter().map(|(file, rows, bytes)| serde_json::json!({
                    "file": file, "rows": rows, "bytes": bytes,
                })).collect::<Vec<_>>(),
            });
            vec![s(
                "items",
                serde_json::to_vec_pretty(&manifest).expect("JSON"),
            )]
        }
        "fetch_json" | "ticket" => {
            let ticket = name == "ticket";
            let body = |table: &str, json: serde_json::Value| {
                let mut json = json;
                if ticket {
                    json["table"] = table.into();
                }
                let bytes = serde_json::to_vec(&json).expect("JSON");
                if ticket {
                    bytes
                } else {
                    with_table(table, &bytes)
                }
            };
            vec![
                s(
                    "dense",
                    body(
                        "items",
                        serde_json::json!({"keys": ["a", "zz", "c"], "columns": ["score", "tags", "emb"]}),
                    ),
                ),
                s(
                    "keyed",
                    body(
                        "events",
                        serde_json::json!({"keys": {"user": ["u1", "u2", "u9"], "item": [1, 1, 3]}, "columns": ["score", "seen"]}),
                    ),
                ),
                s(
                    "keyed-text",
                    body(
                        "items",
                        serde_json::json!({"keys": {"id": ["b", "d"]}, "columns": ["name", "day", "at", "half", "blob", "counts", "flag", "count"]}),
                    ),
                ),
            ]
        }
        "fetch_arrow" => {
            let keys = |table: &str, json: &str, columns: &str| {
                // The key columns as an Arrow stream, the columns in the schema's metadata.
                let batch = key_batch(store, table, json);
                let mut schema = batch.schema().as_ref().clone();
                schema
                    .metadata
                    .insert("columns".to_owned(), columns.to_owned());
                let batch = batch
                    .with_schema(Arc::new(schema))
                    .expect("the same fields");
                with_table(table, &ipc(&batch))
            };
            vec![
                s(
                    "keyed",
                    keys(
                        "events",
                        r#"{"keys": {"user": ["u1", "u2"], "item": [1, 1]}, "columns": ["score"]}"#,
                        r#"["score", "seen"]"#,
                    ),
                ),
                s(
                    "keyed-text",
                    keys(
                        "items",
                        r#"{"keys": {"id": ["a", "q"]}, "columns": ["name"]}"#,
                        r#"["name", "emb", "tags"]"#,
                    ),
                ),
            ]
        }
        "write_json" => TABLES
            .iter()
            .map(|(t, _, rows)| s(t, with_table(t, rows.as_bytes())))
            .collect(),
        "write_arrow" | "write_parquet" | "flight_put" => TABLES
            .iter()
            .enumerate()
            .map(|(i, (t, _, _))| {
                let batch = rows_of(store, t, ALL_KEYS[i]);
                let body = if name == "write_parquet" {
                    parquet(&batch)
                } else {
                    ipc(&batch)
                };
                s(t, with_table(t, &body))
            })
            .collect(),
        "admin_json" => vec![
            s("create", [&[0u8][..], ITEMS.as_bytes()].concat()),
            s("create-events", [&[0u8][..], EVENTS.as_bytes()].concat()),
            s(
                "alter",
                [
                    &[1u8][..],
                    br#"{"columns": {"clicks": {"dtype": "list<float32>"}}, "ttl": "1h"}"#,
                ]
                .concat(),
            ),
            s(
                "alter-events",
                [
                    &[2u8][..],
                    br#"{"columns": {"extra": {"dtype": "utf8", "strict": false}}, "ttl": null}"#,
                ]
                .concat(),
            ),
        ],
        "flight_action" => vec![
            s(
                "create_table",
                [
                    &[0u8][..],
                    format!(r#"{{"table": "new", "schema": {ITEMS}}}"#).as_bytes(),
                ]
                .concat(),
            ),
            s(
                "add_columns",
                [
                    &[1u8][..],
                    br#"{"table": "items", "columns": {"more": {"dtype": "int8"}}}"#,
                ]
                .concat(),
            ),
            s(
                "alter_table",
                [&[2u8][..], br#"{"table": "events", "ttl": "30d"}"#].concat(),
            ),
            s(
                "drop_table",
                [&[3u8][..], br#"{"table": "events"}"#].concat(),
            ),
            s("compact", [&[4u8][..], br#"{"table": "items"}"#].concat()),
        ],
        other => panic!("no fuzz target {other:?}"),
    }
}

/// The rows of `table` whose keys `keys` (a keyed fetch request's JSON) names: key columns,
/// then every other column, as the table's Arrow types.
fn rows_of(store: &Store, table: &str, keys: &str) -> RecordBatch {
    let t = store.table(table).expect("the table");
    let schema = t.schema();
    let key = key_batch(store, table, keys);
    let columns: Vec<&str> = schema
        .columns
        .iter()
        .filter(|c| !schema.is_key(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    let (found, values) = t
        .fetch_keyed(key.columns(), &columns)
        .expect("the rows fetch");
    assert_eq!(found.len(), key.num_rows(), "every seed key is stored");
    let mut fields: Vec<arrow_schema::FieldRef> = key.schema().fields().iter().cloned().collect();
    fields.extend(values.schema().fields().iter().cloned());
    let mut arrays = key.columns().to_vec();
    arrays.extend(values.columns().iter().cloned());
    RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), arrays)
        .expect("keys and values make a batch")
}

/// The key columns of the rows `json` (a keyed fetch request) names.
fn key_batch(store: &Store, table: &str, json: &str) -> RecordBatch {
    let t = store.table(table).expect("the table");
    let request = murr_api::KeyedFetch::from_json(serde_json::from_str(json).expect("JSON"))
        .expect("a keyed request");
    let arrays = request
        .key_arrays(&t.schema())
        .expect("keys of the table's types");
    let fields: Vec<arrow_schema::Field> = t
        .schema()
        .keys
        .iter()
        .zip(&arrays)
        .map(|(k, a)| arrow_schema::Field::new(k, a.data_type().clone(), false))
        .collect();
    RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), arrays)
        .expect("the key columns make a batch")
}

fn ipc(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w =
        arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).expect("a writer");
    w.write(batch).expect("writes");
    w.finish().expect("ends");
    drop(w);
    out
}

fn parquet(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).expect("a writer");
    w.write(batch).expect("writes");
    w.close().expect("ends");
    out
}

/// The panic hook of the fuzz targets, in place of libFuzzer's, which aborts at every panic.
///
/// murr reads Parquet and Arrow IPC uploads under `catch_unwind` and answers a panic there with
/// a 400 (`murr_api::decode_ipc`; those readers assert on some malformed input), so a panic
/// inside the parquet or arrow crates is only reported here: if murr does not catch it, it still
/// ends the run (libFuzzer's entry point aborts on a panic that reaches it, and a handler's
/// panic answers 500, which the targets refuse). A panic anywhere else aborts at once, where
/// the stack shows its cause.
pub fn panic_hook() {
    // libFuzzer's hook goes (it reports, then aborts); the default one, which `take_hook` puts
    // back in its place, reports.
    drop(std::panic::take_hook());
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let caught = info.location().is_some_and(|l| {
            let file = l.file();
            file.contains("/parquet-") || file.contains("/arrow-")
        });
        report(info);
        if !caught {
            std::process::abort();
        }
    }));
}
