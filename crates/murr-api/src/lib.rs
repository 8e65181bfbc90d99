//! murr's wire shapes, generation 1 (`docs/api.md`): the requests and answers of the HTTP API and
//! of Arrow Flight tickets and actions, their parsers, and the turning of request keys into
//! encoded keys. The front-ends (murr-http, murr-flight) and the clients (murr-client, the
//! Python package) share these definitions, so a wire shape is defined once.
//!
//! The schema's JSON form ([`TableSchema`]'s serde) is also a stored form (the manifest holds
//! it), so it is defined in murr-format and re-exported here; a later API generation whose
//! schema JSON differs gets its own type here, converted to and from [`TableSchema`].

mod request;

use std::borrow::Cow;

pub use murr_format::{ColumnDef, DType, KeyCodec, TableSchema};
pub use request::FetchRequest;
use serde::{Deserialize, Serialize};

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
        let keys = self.keys.len();
        if keys > limits.max_keys {
            return Err(format!(
                "the fetch asks for {keys} keys, more than the limit of {} (server.fetch.max_keys)",
                limits.max_keys
            ));
        }
        let cells = keys.saturating_mul(self.columns.len());
        if cells > limits.max_cells {
            return Err(format!(
                "the fetch asks for {keys} keys x {} columns = {cells} cells, more than the limit of {} (server.fetch.max_cells)",
                self.columns.len(),
                limits.max_cells
            ));
        }
        Ok(())
    }

    /// Keys x columns: the size of the answer, in values.
    pub fn cells(&self) -> usize {
        self.keys.len().saturating_mul(self.columns.len())
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

/// The encoded keys (see [`KeyCodec`]) of a request's keys, in order. For a utf8 key they
/// borrow the request's strings: no copy per key.
pub fn encode_keys<'a>(codec: &KeyCodec, keys: &'a [Cow<'a, str>]) -> Vec<Cow<'a, [u8]>> {
    keys.iter().map(|k| codec.encode_text(k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let encoded = encode_keys(&codec, &keys);
        assert_eq!(encoded, [&b"a"[..], &b"b"[..]]);
        assert!(encoded.iter().all(|k| matches!(k, Cow::Borrowed(_))));
    }
}
