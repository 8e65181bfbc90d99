//! murr's wire shapes, generations 1 and 2 (`docs/api.md`): the requests and answers of the HTTP API and
//! of Arrow Flight tickets and actions, their parsers, and the turning of request keys into
//! encoded keys. The front-ends (murr-http, murr-flight) and the clients (murr-client, the
//! Python package) share these definitions, so a wire shape is defined once.
//!
//! The schema's JSON form ([`TableSchema`]'s serde) is also a stored form (the manifest holds
//! it), so it is defined in murr-format and re-exported here; a later API generation whose
//! schema JSON differs gets its own type here, converted to and from [`TableSchema`].

pub mod auth;
mod keyed;
mod request;

use std::borrow::Cow;

pub use keyed::{COLUMNS_METADATA, KeyedFetch, arrow_body, sparse_answer};
pub use murr_format::{
    ColumnDef, DType, Generation, IDX_COLUMN, KeyCodec, MAX_TTL_SECS, TableSchema,
};
use murr_format::{ColumnsJson, TtlJson};
pub use request::FetchRequest;
use serde::{Deserialize, Serialize};

/// What [`decode_ipc`] (and Flight's `do_put`, around its own decoder) says when the Arrow IPC
/// reader panicked.
pub const MALFORMED_IPC: &str = "the Arrow IPC reader failed on malformed input";

/// Runs `decode`, a read of Arrow IPC bytes a client sent; a panic inside it becomes an error.
///
/// arrow-ipc's reader asserts on some malformed input instead of returning an error (a buffer
/// that lies outside its message's body, found by fuzzing murr's fetch and write bodies), and a
/// panic would drop the client's connection or answer 500. Every front-end decodes request
/// IPC through this, so bad bytes get the 400 / `invalid_argument` any other bad input gets.
///
/// # Errors
/// `decode`'s, or [`ArrowError::IpcError`] when it panicked.
pub fn decode_ipc<T>(
    decode: impl FnOnce() -> Result<T, arrow_schema::ArrowError>,
) -> Result<T, arrow_schema::ArrowError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
        .unwrap_or_else(|_| Err(arrow_schema::ArrowError::IpcError(MALFORMED_IPC.to_owned())))
}

/// Content type of Arrow IPC streams.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
/// Content type of Parquet files.
pub const PARQUET: &str = "application/vnd.apache.parquet";
/// Content type of JSON bodies.
pub const JSON: &str = "application/json";

/// Fetches of at most this many cells (keys x columns) take less time than a hand-off to a
/// blocking thread, so the front-ends run them on their async worker; larger ones move to the
/// blocking pool so that they cannot stall other requests.
pub const SMALL_FETCH_CELLS: usize = 64 * 1024;

/// Bounds on one fetch, so that a small request cannot make the server build an answer of
/// gigabytes. A request above them is refused before any work, with a message naming the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Most keys in one fetch (`server.fetch.max_keys`).
    pub max_keys: usize,
    /// Most cells, keys x columns, in one fetch (`server.fetch.max_cells`).
    pub max_cells: usize,
}

impl Default for FetchLimits {
    /// 100,000 keys and 10,000,000 cells (40 MB of float32 values).
    fn default() -> Self {
        FetchLimits {
            max_keys: 100_000,
            max_cells: 10_000_000,
        }
    }
}

impl FetchRequest<'_> {
    /// Checks the request against `limits`.
    ///
    /// # Errors
    /// A message naming the limit passed and its setting.
    pub fn check(&self, limits: &FetchLimits) -> Result<(), String> {
        check_limits(self.keys.len(), self.columns.len(), limits)
    }

    /// Keys x columns: the size of the answer, in values.
    pub fn cells(&self) -> usize {
        self.keys.len().saturating_mul(self.columns.len())
    }
}

fn check_limits(keys: usize, columns: usize, limits: &FetchLimits) -> Result<(), String> {
    if keys > limits.max_keys {
        return Err(format!(
            "the fetch asks for {keys} keys, more than the limit of {} (server.fetch.max_keys)",
            limits.max_keys
        ));
    }
    let cells = keys.saturating_mul(columns);
    if cells > limits.max_cells {
        return Err(format!(
            "the fetch asks for {keys} keys x {columns} columns = {cells} cells, more than the limit of {} (server.fetch.max_cells)",
            limits.max_cells
        ));
    }
    Ok(())
}

/// A change of a table's schema, the body of `PATCH /api/v1/table/{name}` and of the Flight
/// action `alter_table`: `{"columns": {"<new>": {"dtype": .., "nullable": true}}, "ttl": "7d"}`,
/// either part optional; `"ttl": null` removes the time to live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlterRequest {
    /// Columns to add after the existing ones, in order.
    pub columns: Vec<ColumnDef>,
    /// `None`: the time to live stays; `Some(None)`: removed; `Some(Some(s))`: `s` seconds.
    pub ttl: Option<Option<u64>>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct AlterJson {
    /// The table, in a Flight action's body (HTTP names it in the path).
    #[serde(default, alias = "name", skip_serializing_if = "Option::is_none")]
    table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    columns: Option<ColumnsJson>,
    #[serde(
        default,
        deserialize_with = "present_ttl",
        skip_serializing_if = "Option::is_none"
    )]
    ttl: Option<Option<u64>>,
}

/// A ttl that is present (perhaps null).
fn present_ttl<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    TtlJson::deserialize(d).map(|t| Some(t.0))
}

impl AlterRequest {
    /// Parses the JSON body.
    ///
    /// # Errors
    /// A message naming what is wrong: unknown fields, a bad column or dtype, a bad ttl, or a
    /// change of nothing.
    pub fn parse(body: &[u8]) -> Result<AlterRequest, String> {
        match Self::parse_with_table(body)? {
            (None, request) => Ok(request),
            (Some(_), _) => Err(
                "invalid schema change: the table is named in the path, not in the body".to_owned(),
            ),
        }
    }

    /// Parses the body of the Flight actions `add_columns` and `alter_table`: the JSON body
    /// with the table's name in `"table"`.
    ///
    /// # Errors
    /// As [`AlterRequest::parse`], and a body without a table.
    pub fn parse_action(body: &[u8]) -> Result<(String, AlterRequest), String> {
        match Self::parse_with_table(body)? {
            (Some(table), request) => Ok((table, request)),
            (None, _) => Err("invalid schema change: name the table in \"table\"".to_owned()),
        }
    }

    fn parse_with_table(body: &[u8]) -> Result<(Option<String>, AlterRequest), String> {
        let json: AlterJson =
            serde_json::from_slice(body).map_err(|e| format!("invalid schema change: {e}"))?;
        let request = AlterRequest {
            columns: json.columns.map(|c| c.0).unwrap_or_default(),
            ttl: json.ttl,
        };
        if request.columns.is_empty() && request.ttl.is_none() {
            return Err(
                "invalid schema change: give \"columns\" to add, or a \"ttl\" (null removes it)"
                    .to_owned(),
            );
        }
        Ok((json.table, request))
    }

    /// The JSON body; with `table`, a Flight action's.
    pub fn to_json(&self, table: Option<&str>) -> Vec<u8> {
        let json = AlterJson {
            table: table.map(str::to_owned),
            columns: (!self.columns.is_empty()).then(|| ColumnsJson(self.columns.clone())),
            ttl: self.ttl,
        };
        serde_json::to_vec(&json).expect("plain JSON values")
    }
}

/// The answer to a write: `{"rows": .., "stored": .., "bytes": ..}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WriteAnswer {
    /// Rows received.
    pub rows: u64,
    /// Distinct keys stored (rows minus those a later row of the same write replaced).
    pub stored: u64,
    /// Bytes of the new segments.
    pub bytes: u64,
}

/// How a load (`POST /api/v1/table/{name}/load`) changes the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    /// The dump's rows become the table's only rows (one swap when the load is complete).
    Replace,
    /// The dump's rows are one write: they replace the rows of their keys, the others stay.
    #[default]
    Upsert,
}

/// A load request: `{"url": "s3://bucket/prefix/", "mode": "replace" | "upsert"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadRequest {
    /// The Parquet files: one file, a prefix (every file under it whose name does not start
    /// with `_` or `.`), or a glob (`s3://b/dump/part-*.parquet`), in any `object_store`
    /// scheme (`s3://`, `gs://`, `az://`, `file:///`).
    pub url: String,
    /// Default `upsert`.
    #[serde(default)]
    pub mode: LoadMode,
}

/// Where a load is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadState {
    /// Listing or reading the files.
    Running,
    /// Committed: the rows are readable.
    Done,
    /// Nothing was committed; `error` says why.
    Failed,
}

/// A load's progress: the answer of `POST …/load` and `GET …/load/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadStatus {
    /// The load's id (for `GET /api/v1/table/{name}/load/{id}`).
    pub id: String,
    /// The table loaded into.
    pub table: String,
    /// The URL loaded from.
    pub url: String,
    /// Replace or upsert.
    pub mode: LoadMode,
    /// Running, done or failed.
    pub state: LoadState,
    /// Files to read (null until they are listed).
    pub files: Option<u64>,
    /// Files read to the end.
    pub files_done: u64,
    /// Rows read so far.
    pub rows: u64,
    /// Bytes of the files read to the end.
    pub bytes: u64,
    /// Seconds since the load started (until it ended, once it has).
    pub seconds: f64,
    /// Why the load failed (naming the file), when it did.
    pub error: Option<String>,
    /// What the commit wrote, once done.
    pub result: Option<WriteAnswer>,
}

/// The answer to a drop: `{"dropped": "<table>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropAnswer {
    /// The table dropped.
    pub dropped: String,
}

/// Every error answer's body: `{"error": "<message>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// What was wrong, naming the table, column or value.
    pub error: String,
}

/// The body of the Flight action `create_table`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTableAction {
    /// The table (`name` is accepted too).
    #[serde(alias = "name")]
    pub table: String,
    /// Its schema.
    pub schema: TableSchema,
}

/// The body of the Flight action `drop_table`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropTableAction {
    /// The table (`name` is accepted too).
    #[serde(alias = "name")]
    pub table: String,
}

/// The answer to a compaction: `{"compacted": "<table>", "segments": 1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactAnswer {
    /// The table compacted.
    pub compacted: String,
    /// Its segments after the compaction (0 or 1).
    pub segments: usize,
}

/// The encoded keys (see [`KeyCodec`]) of a request's keys, in order. For a utf8 key they
/// borrow the request's strings: no copy per key.
///
/// # Errors
/// When the table's key is not one utf8 column: the message says to send keys by column.
pub fn encode_keys<'a>(
    codec: &KeyCodec,
    keys: &'a [Cow<'a, str>],
) -> Result<Vec<Cow<'a, [u8]>>, String> {
    if !codec.is_text() {
        return Err(codec.not_text().to_string());
    }
    Ok(keys.iter().map(|k| Cow::Borrowed(k.as_bytes())).collect())
}

/// A fetch request of either generation, told apart by the shape of `"keys"`: a list of strings
/// (generation 1, dense answers) or an object of one list per key column (generation 2, sparse
/// answers).
#[derive(Debug, Clone)]
pub enum AnyFetch<'a> {
    /// `{"keys": ["k1", ...], "columns": [...]}`.
    Dense(FetchRequest<'a>),
    /// `{"keys": {"<key column>": [...], ...}, "columns": [...]}`.
    Keyed(KeyedFetch),
}

impl<'a> AnyFetch<'a> {
    /// Parses a JSON fetch request or ticket of either generation.
    ///
    /// # Errors
    /// The parser's message: generation 2's when `"keys"` is an object, generation 1's otherwise.
    pub fn from_json(body: &'a [u8]) -> Result<AnyFetch<'a>, String> {
        match FetchRequest::from_json(body) {
            Ok(req) => Ok(AnyFetch::Dense(req)),
            Err(dense) => match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(v) if v.get("keys").is_some_and(serde_json::Value::is_object) => {
                    KeyedFetch::from_json(v).map(AnyFetch::Keyed)
                }
                _ => Err(dense.to_string()),
            },
        }
    }

    /// The table a Flight ticket names.
    pub fn table(&self) -> Option<&str> {
        match self {
            AnyFetch::Dense(r) => r.table.as_deref(),
            AnyFetch::Keyed(r) => r.table.as_deref(),
        }
    }

    /// Keys x columns.
    pub fn cells(&self) -> usize {
        match self {
            AnyFetch::Dense(r) => r.cells(),
            AnyFetch::Keyed(r) => r.cells(),
        }
    }

    /// Checks the request against `limits`.
    ///
    /// # Errors
    /// A message naming the limit passed and its setting.
    pub fn check(&self, limits: &FetchLimits) -> Result<(), String> {
        match self {
            AnyFetch::Dense(r) => r.check(limits),
            AnyFetch::Keyed(r) => check_limits(r.len(), r.columns.len(), limits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alter_bodies() {
        let r = AlterRequest::parse(br#"{"columns":{"b":{"dtype":"int64"},"a":{"dtype":"utf8","nullable":true}},"ttl":"7d"}"#)
            .expect("valid");
        let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(r.ttl, Some(Some(7 * 86_400)));
        assert_eq!(AlterRequest::parse(&r.to_json(None)), Ok(r.clone()));
        assert_eq!(
            AlterRequest::parse_action(&r.to_json(Some("t"))),
            Ok(("t".to_owned(), r.clone()))
        );
        assert!(AlterRequest::parse(&r.to_json(Some("t"))).is_err());
        assert!(AlterRequest::parse_action(&r.to_json(None)).is_err());
        let removes = AlterRequest::parse(br#"{"ttl":null}"#).expect("valid");
        assert_eq!(removes.ttl, Some(None));
        assert_eq!(AlterRequest::parse(&removes.to_json(None)), Ok(removes));
        assert_eq!(
            AlterRequest::parse(br#"{"ttl":60}"#).map(|r| r.ttl),
            Ok(Some(Some(60)))
        );
        for (bad, says) in [
            (&br#"{}"#[..], "give"),
            (br#"{"columns":{}}"#, "give"),
            (br#"{"colums":{}}"#, "unknown field"),
            (br#"{"columns":{"a":{"dtype":"utf9"}}}"#, "utf9"),
            (
                br#"{"columns":{"a":{"dtype":"utf8"},"a":{"dtype":"utf8"}}}"#,
                "twice",
            ),
            (br#"{"columns":[]}"#, "column name"),
            (br#"{"ttl":"soon"}"#, "soon"),
            (br#"{"ttl":-3}"#, "negative"),
            (br#"[]"#, "invalid"),
            (br#"{"#, "invalid"),
        ] {
            let err = AlterRequest::parse(bad).expect_err("refused");
            assert!(
                err.contains(says),
                "{}: {err}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn answers_and_actions_have_their_wire_form() {
        let w = WriteAnswer {
            rows: 3,
            stored: 2,
            bytes: 640,
        };
        assert_eq!(
            serde_json::to_string(&w).expect("serializes"),
            r#"{"rows":3,"stored":2,"bytes":640}"#
        );
        let a: CreateTableAction = serde_json::from_str(
            r#"{"name": "t", "schema": {"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}}}}"#,
        )
        .expect("name is an alias of table");
        assert_eq!(a.table, "t");
        assert!(serde_json::from_str::<DropTableAction>(r#"{"table": "t", "x": 1}"#).is_err());
    }

    #[test]
    fn limits_name_their_setting() {
        let req = FetchRequest::from_json(br#"{"keys": ["a", "b", "c"], "columns": ["x", "y"]}"#)
            .expect("parses");
        assert_eq!(req.cells(), 6);
        let ok = FetchLimits {
            max_keys: 3,
            max_cells: 6,
        };
        assert_eq!(req.check(&ok), Ok(()));
        let err = req
            .check(&FetchLimits { max_keys: 2, ..ok })
            .expect_err("too many keys");
        assert!(
            err.contains("3 keys") && err.contains("server.fetch.max_keys"),
            "{err}"
        );
        let err = req
            .check(&FetchLimits { max_cells: 5, ..ok })
            .expect_err("too many cells");
        assert!(
            err.contains("6 cells") && err.contains("server.fetch.max_cells"),
            "{err}"
        );
    }

    #[test]
    fn utf8_keys_encode_without_a_copy() {
        let schema = TableSchema::new("id", vec![ColumnDef::new("id", DType::Utf8, false)]);
        let codec = KeyCodec::new(&schema).expect("valid");
        let keys = [Cow::Borrowed("a"), Cow::Owned("b".to_owned())];
        let encoded = encode_keys(&codec, &keys).expect("a utf8 key");
        assert_eq!(encoded, [&b"a"[..], &b"b"[..]]);
        assert!(encoded.iter().all(|k| matches!(k, Cow::Borrowed(_))));
    }
}
