//! Generation 2's fetch: keys given column by column (one list per key column, so compound and
//! integer keys), and sparse answers.
//!
//! A request is JSON, `{"keys": {"<key column>": [...], ...}, "columns": [...]}` (plus `"table"`
//! in a Flight ticket), with values read by the key column's dtype; or an Arrow IPC stream whose
//! batches hold the key columns and whose schema metadata entry `columns` is a JSON array of the
//! columns to return. The answer has a row for each key found: first [`IDX_COLUMN`] (uint32, the
//! key's position in the request), then the columns asked for.

use std::io::Cursor;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Int64Array, RecordBatch, RecordBatchOptions, StringArray, UInt32Array,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use murr_format::{DType, IDX_COLUMN, TableSchema};
use serde_json::Value;

/// The schema metadata entry of an Arrow fetch request naming the columns to return.
pub const COLUMNS_METADATA: &str = "columns";

/// A generation-2 fetch request or Flight ticket.
#[derive(Debug, Clone)]
pub struct KeyedFetch {
    /// The table (Flight tickets name it; the HTTP route has it in its path).
    pub table: Option<String>,
    /// The columns, in answer order.
    pub columns: Vec<String>,
    keys: Keys,
}

#[derive(Debug, Clone)]
enum Keys {
    /// Key column name to its JSON values, in request order.
    Json(Vec<(String, Vec<Value>)>),
    /// The key columns as sent (all batches of the stream, concatenated).
    Arrow(RecordBatch),
}

impl KeyedFetch {
    /// A request from a parsed JSON object (`"keys"` an object of lists).
    ///
    /// # Errors
    /// A message naming the field that is missing, unknown or of the wrong shape.
    pub fn from_json(value: Value) -> Result<KeyedFetch, String> {
        let Value::Object(mut fields) = value else {
            return Err("a fetch request is a JSON object".to_owned());
        };
        if let Some(unknown) = fields
            .keys()
            .find(|k| !matches!(k.as_str(), "table" | "keys" | "columns"))
        {
            return Err(format!(
                "unknown field {unknown:?} in the fetch request (it has table, keys, columns)"
            ));
        }
        let table = match fields.remove("table") {
            None => None,
            Some(Value::String(t)) => Some(t),
            Some(_) => return Err("\"table\" is not a string".to_owned()),
        };
        let columns = match fields.remove("columns") {
            Some(Value::Array(names)) => names
                .into_iter()
                .map(|n| match n {
                    Value::String(s) => Ok(s),
                    other => Err(format!("\"columns\" holds {other}, not a column name")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err("\"columns\" is not a list of column names".to_owned()),
            None => return Err("the fetch request has no \"columns\"".to_owned()),
        };
        let keys = match fields.remove("keys") {
            Some(Value::Object(keys)) => keys
                .into_iter()
                .map(|(name, values)| match values {
                    Value::Array(values) => Ok((name, values)),
                    _ => Err(format!("\"keys\": {name:?} is not a list of values")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(
                    "\"keys\" is an object of one list per key column: {\"keys\": {\"id\": [...]}}"
                        .to_owned(),
                );
            }
            None => return Err("the fetch request has no \"keys\"".to_owned()),
        };
        let request = KeyedFetch {
            table,
            columns,
            keys: Keys::Json(keys),
        };
        request.rows()?;
        Ok(request)
    }

    /// A request from an Arrow IPC stream: the key columns, and the columns to return in the
    /// schema metadata entry [`COLUMNS_METADATA`].
    ///
    /// # Errors
    /// A message saying what is wrong with the stream or the metadata.
    pub fn from_arrow(body: &[u8]) -> Result<KeyedFetch, String> {
        let reader =
            crate::decode_ipc(|| arrow_ipc::reader::StreamReader::try_new(Cursor::new(body), None))
                .map_err(|e| format!("the body is not an Arrow IPC stream: {e}"))?;
        let schema = reader.schema();
        let Some(columns) = schema.metadata().get(COLUMNS_METADATA) else {
            return Err(format!(
                "the Arrow fetch request has no schema metadata entry {COLUMNS_METADATA:?} \
                 (a JSON list of the columns to return)"
            ));
        };
        let columns: Vec<String> = serde_json::from_str(columns).map_err(|e| {
            format!("schema metadata {COLUMNS_METADATA:?} is not a JSON list of names: {e}")
        })?;
        let batches = crate::decode_ipc(|| reader.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("the Arrow stream is broken: {e}"))?;
        let keys = arrow_select::concat::concat_batches(&schema, &batches)
            .map_err(|e| format!("the Arrow stream's batches do not join: {e}"))?;
        Ok(KeyedFetch {
            table: None,
            columns,
            keys: Keys::Arrow(keys),
        })
    }

    /// A request for the keys in `keys` (one column per key column, as given).
    pub fn from_batch(keys: RecordBatch, columns: Vec<String>) -> KeyedFetch {
        KeyedFetch {
            table: None,
            columns,
            keys: Keys::Arrow(keys),
        }
    }

    /// The number of keys.
    ///
    /// # Errors
    /// When the JSON key lists differ in length.
    pub fn rows(&self) -> Result<usize, String> {
        match &self.keys {
            Keys::Arrow(batch) => Ok(batch.num_rows()),
            Keys::Json(lists) => {
                let n = lists.first().map_or(0, |(_, v)| v.len());
                match lists.iter().find(|(_, v)| v.len() != n) {
                    Some((name, v)) => Err(format!(
                        "\"keys\": {name:?} has {} values, {:?} has {n}: one per key",
                        v.len(),
                        lists[0].0
                    )),
                    None => Ok(n),
                }
            }
        }
    }

    /// The number of keys (0 when the lists differ; [`KeyedFetch::rows`] says so).
    pub fn len(&self) -> usize {
        self.rows().unwrap_or(0)
    }

    /// Whether the request has no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys x columns.
    pub fn cells(&self) -> usize {
        self.len().saturating_mul(self.columns.len().max(1))
    }

    /// The key columns of `schema`'s table, in key order, as arrays of the key columns' types;
    /// and a check of the columns asked for (a key column or [`IDX_COLUMN`] cannot be).
    ///
    /// # Errors
    /// A message naming the key column that is missing, extra, null, of a type that does not widen
    /// to the key's, or a value that does not fit it.
    pub fn key_arrays(&self, schema: &TableSchema) -> Result<Vec<ArrayRef>, String> {
        if let Some(c) = self.columns.iter().find(|c| schema.is_key(c)) {
            return Err(format!(
                "column {c:?} is a key column: a sparse answer's {IDX_COLUMN:?} points at the request's keys instead"
            ));
        }
        if self.columns.iter().any(|c| c == IDX_COLUMN) {
            return Err(format!(
                "{IDX_COLUMN:?} is not a column to ask for: every answer starts with it"
            ));
        }
        let given: Vec<&str> = match &self.keys {
            Keys::Json(lists) => lists.iter().map(|(n, _)| n.as_str()).collect(),
            Keys::Arrow(batch) => batch
                .schema_ref()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect(),
        };
        if let Some(extra) = given.iter().find(|g| !schema.is_key(g)) {
            return Err(format!(
                "{extra:?} is not a key column of the table (its key: {})",
                schema.keys.join(", ")
            ));
        }
        let rows = self.rows()?;
        schema
            .keys
            .iter()
            .map(|name| {
                let dtype = schema.column(name).expect("validated schema").dtype;
                let array = match &self.keys {
                    Keys::Json(lists) => {
                        let values = lists.iter().find(|(n, _)| n == name).map(|(_, v)| v);
                        let Some(values) = values else {
                            return Err(missing(name, schema));
                        };
                        json_keys(name, dtype, values)?
                    }
                    Keys::Arrow(batch) => {
                        let Some(array) = batch.column_by_name(name) else {
                            return Err(missing(name, schema));
                        };
                        arrow_keys(name, dtype, array)?
                    }
                };
                debug_assert_eq!(array.len(), rows);
                Ok(array)
            })
            .collect()
    }

    /// The JSON form of a request for the keys `keys` (column name and JSON values), as a Flight
    /// ticket of `table` or an HTTP body (`table` `None`).
    pub fn json_body(
        table: Option<&str>,
        keys: &[(&str, Vec<Value>)],
        columns: &[&str],
    ) -> Vec<u8> {
        let mut out = serde_json::Map::new();
        if let Some(t) = table {
            out.insert("table".into(), Value::String(t.to_owned()));
        }
        let keys: serde_json::Map<String, Value> = keys
            .iter()
            .map(|(n, v)| ((*n).to_owned(), Value::Array(v.clone())))
            .collect();
        out.insert("keys".into(), Value::Object(keys));
        out.insert(
            "columns".into(),
            Value::Array(
                columns
                    .iter()
                    .map(|c| Value::String((*c).to_owned()))
                    .collect(),
            ),
        );
        serde_json::to_vec(&Value::Object(out)).expect("plain JSON")
    }
}

fn missing(name: &str, schema: &TableSchema) -> String {
    format!(
        "the request lacks key column {name:?} (the table's key: {})",
        schema.keys.join(", ")
    )
}

/// An array of `dtype` from the JSON values of key column `name`.
fn json_keys(name: &str, dtype: DType, values: &[Value]) -> Result<ArrayRef, String> {
    let bad = |i: usize, v: &Value| format!("key column {name:?} ({dtype}): value {i} is {v}");
    let array: ArrayRef = match dtype {
        DType::Utf8 => Arc::new(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| v.as_str().map(Some).ok_or_else(|| bad(i, v)))
                .collect::<Result<StringArray, _>>()?,
        ),
        DType::UInt8 | DType::UInt16 | DType::UInt32 | DType::UInt64 => Arc::new(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| v.as_u64().map(Some).ok_or_else(|| bad(i, v)))
                .collect::<Result<UInt64Array, _>>()?,
        ),
        _ => Arc::new(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| v.as_i64().map(Some).ok_or_else(|| bad(i, v)))
                .collect::<Result<Int64Array, _>>()?,
        ),
    };
    narrow_checked(name, dtype, &array)
}

/// `array` (utf8, int64 or uint64 from JSON) as `dtype`, refusing a value that does not fit.
fn narrow_checked(name: &str, dtype: DType, array: &ArrayRef) -> Result<ArrayRef, String> {
    let want = dtype.to_arrow();
    if array.data_type() == &want {
        return Ok(Arc::clone(array));
    }
    let options = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow_cast::cast_with_options(array, &want, &options)
        .map_err(|e| format!("key column {name:?} ({dtype}): a value does not fit: {e}"))
}

/// Key column `name` given as Arrow: its type must be the key's or widen to it without loss.
fn arrow_keys(name: &str, dtype: DType, array: &ArrayRef) -> Result<ArrayRef, String> {
    if array.null_count() > 0 {
        return Err(format!("key column {name:?} holds a null"));
    }
    let from = array.data_type();
    if from == &dtype.to_arrow() {
        return Ok(Arc::clone(array));
    }
    if !dtype.widens_from(from) {
        return Err(format!(
            "key column {name:?} is {dtype}; the request gives {from}, which does not widen to it \
             (integers are never narrowed: send the key's type, e.g. pa.array(keys, pa.{}()))",
            dtype.to_arrow().to_string().to_lowercase()
        ));
    }
    arrow_cast::cast(array, &dtype.to_arrow())
        .map_err(|e| format!("key column {name:?}: cannot convert {from} to {dtype}: {e}"))
}

/// The sparse answer: [`IDX_COLUMN`] (the positions `found` of the keys in the request) first,
/// then `batch`'s columns (one row per found key).
///
/// # Panics
/// When `found` and `batch` differ in length.
pub fn sparse_answer(found: Vec<u32>, batch: &RecordBatch) -> RecordBatch {
    assert_eq!(found.len(), batch.num_rows(), "a position per row");
    let mut fields = vec![Arc::new(Field::new(IDX_COLUMN, DataType::UInt32, false))];
    fields.extend(batch.schema_ref().fields().iter().cloned());
    let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from(found))];
    columns.extend(batch.columns().iter().cloned());
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .expect("columns of one length")
}

/// The Arrow IPC body of a fetch of `columns` for the keys in `keys` (one column per key column).
///
/// # Errors
/// When Arrow cannot write the batch.
pub fn arrow_body(keys: &RecordBatch, columns: &[&str]) -> Result<Vec<u8>, String> {
    let mut metadata = keys.schema_ref().metadata().clone();
    metadata.insert(
        COLUMNS_METADATA.to_owned(),
        serde_json::to_string(columns).expect("plain JSON"),
    );
    let schema = Arc::new(Schema::new_with_metadata(
        keys.schema_ref().fields().clone(),
        metadata,
    ));
    let batch = keys
        .clone()
        .with_schema(Arc::clone(&schema))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut writer =
        arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    drop(writer);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int8Array, Int32Array};
    use murr_format::ColumnDef;

    fn ratings() -> TableSchema {
        TableSchema::compound(
            &["user", "item"],
            vec![
                ColumnDef::new("user", DType::Utf8, false),
                ColumnDef::new("item", DType::Int32, false),
                ColumnDef::new("score", DType::Float64, true),
            ],
        )
    }

    #[test]
    fn json_keys_are_read_by_the_key_dtype() {
        let body = KeyedFetch::json_body(
            None,
            &[
                ("item", vec![1.into(), 2.into()]),
                ("user", vec!["a".into(), "b".into()]),
            ],
            &["score"],
        );
        let req =
            KeyedFetch::from_json(serde_json::from_slice(&body).expect("json")).expect("parses");
        assert_eq!(req.len(), 2);
        let arrays = req.key_arrays(&ratings()).expect("fits");
        assert_eq!(arrays[0].data_type(), &DataType::Utf8);
        assert_eq!(arrays[1].data_type(), &DataType::Int32);
        for (keys, says) in [
            (r#"{"user":["a"],"item":[3000000000]}"#, "does not fit"),
            (r#"{"user":["a"],"item":["1"]}"#, "value 0"),
            (r#"{"user":["a"]}"#, "lacks key column \"item\""),
            (
                r#"{"user":["a"],"item":[1],"x":[1]}"#,
                "\"x\" is not a key column",
            ),
            (r#"{"user":["a","b"],"item":[1]}"#, "one per key"),
            (r#"{"user":["a"],"item":[null]}"#, "value 0 is null"),
        ] {
            let text = format!(r#"{{"keys":{keys},"columns":["score"]}}"#);
            let err = KeyedFetch::from_json(serde_json::from_str(&text).expect("json"))
                .and_then(|r| r.key_arrays(&ratings()).map(|_| ()))
                .expect_err(keys);
            assert!(err.contains(says), "{keys}: {err}");
        }
        let asks_key = r#"{"keys":{"user":["a"],"item":[1]},"columns":["item"]}"#;
        let err = KeyedFetch::from_json(serde_json::from_str(asks_key).expect("json"))
            .and_then(|r| r.key_arrays(&ratings()).map(|_| ()))
            .expect_err("a key column");
        assert!(err.contains("key column"), "{err}");
    }

    #[test]
    fn arrow_keys_widen_and_never_narrow() {
        let keys = |item: ArrayRef| {
            RecordBatch::try_from_iter([
                ("user", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
                ("item", item),
            ])
            .expect("batch")
        };
        let body = arrow_body(&keys(Arc::new(Int8Array::from(vec![7]))), &["score"]).expect("ipc");
        let req = KeyedFetch::from_arrow(&body).expect("parses");
        assert_eq!(req.columns, ["score"]);
        let arrays = req.key_arrays(&ratings()).expect("int8 widens to int32");
        assert_eq!(arrays[1].data_type(), &DataType::Int32);
        let body = arrow_body(&keys(Arc::new(Int64Array::from(vec![7]))), &["score"]).expect("ipc");
        let err = KeyedFetch::from_arrow(&body)
            .and_then(|r| r.key_arrays(&ratings()).map(|_| ()))
            .expect_err("int64 does not narrow");
        assert!(err.contains("never narrowed"), "{err}");
        let body =
            arrow_body(&keys(Arc::new(Int32Array::from(vec![None]))), &["score"]).expect("ipc");
        let err = KeyedFetch::from_arrow(&body)
            .and_then(|r| r.key_arrays(&ratings()).map(|_| ()))
            .expect_err("null key");
        assert!(err.contains("null"), "{err}");
        assert!(KeyedFetch::from_arrow(b"not arrow").is_err());
    }

    #[test]
    fn sparse_answers_lead_with_positions() {
        let batch = RecordBatch::try_from_iter([(
            "score",
            Arc::new(Int32Array::from(vec![5, 6])) as ArrayRef,
        )])
        .expect("batch");
        let answer = sparse_answer(vec![0, 2], &batch);
        assert_eq!(answer.schema().field(0).name(), IDX_COLUMN);
        assert_eq!(answer.schema().field(0).data_type(), &DataType::UInt32);
        assert_eq!(answer.num_columns(), 2);
    }
}
