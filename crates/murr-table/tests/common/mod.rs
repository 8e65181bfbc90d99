//! Shared helpers of the table tests.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::disallowed_methods,
    clippy::clone_on_ref_ptr,
    reason = "test helpers"
)]

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray};
use murr_format::{ColumnDef, DType, TableSchema};

/// `id` utf8 key, `score` float32 (nullable), `n` int64 (not nullable), `tag` utf8 (nullable).
pub fn schema() -> TableSchema {
    TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("score", DType::Float32, true),
            ColumnDef::new("n", DType::Int64, false),
            ColumnDef::new("tag", DType::Utf8, true),
        ],
    )
}

/// The keys `k<i>` for `i` in `range`.
pub fn keys(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("k{i}")).collect()
}

/// A batch of rows `(key, score, n, tag)`.
pub fn batch(rows: &[(&str, Option<f32>, i64, Option<&str>)]) -> RecordBatch {
    RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
        ),
        (
            "score",
            Arc::new(Float32Array::from_iter(rows.iter().map(|r| r.1))) as ArrayRef,
        ),
        (
            "n",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))) as ArrayRef,
        ),
        (
            "tag",
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.3))) as ArrayRef,
        ),
    ])
    .expect("valid batch")
}

/// A batch where key `k` has n = `value`, score = value as f32, tag = "t{value}".
pub fn valued(keys: &[String], value: i64) -> RecordBatch {
    let tags: Vec<String> = keys.iter().map(|_| format!("t{value}")).collect();
    let rows: Vec<(&str, Option<f32>, i64, Option<&str>)> = keys
        .iter()
        .zip(&tags)
        .map(|(k, t)| (k.as_str(), Some(value as f32), value, Some(t.as_str())))
        .collect();
    batch(&rows)
}

/// The `n` column of a fetch, as options.
pub fn ns(batch: &RecordBatch, column: usize) -> Vec<Option<i64>> {
    batch
        .column(column)
        .as_primitive::<Int64Type>()
        .iter()
        .collect()
}

/// A float32 column of a fetch, as options.
pub fn floats(batch: &RecordBatch, column: usize) -> Vec<Option<f32>> {
    batch
        .column(column)
        .as_primitive::<Float32Type>()
        .iter()
        .collect()
}

/// A utf8 column of a fetch, as options.
pub fn strings(batch: &RecordBatch, column: usize) -> Vec<Option<String>> {
    batch
        .column(column)
        .as_string::<i32>()
        .iter()
        .map(|s| s.map(str::to_owned))
        .collect()
}

/// Whether every value of the column is null.
pub fn all_null(a: &dyn Array) -> bool {
    a.null_count() == a.len()
}
