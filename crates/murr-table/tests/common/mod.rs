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

/// A directory that forwards everything to another and calls the test's hooks: `before_change`
/// with the path of each create and delete (before it happens), `on_warm` at each warm.
pub struct Hooked {
    inner: Arc<dyn murr_directory::Directory>,
    before_change: Box<dyn Fn(&murr_directory::FilePath) + Send + Sync>,
    on_warm: Box<dyn Fn() + Send + Sync>,
}

impl Hooked {
    /// `inner`, with hooks that do nothing.
    pub fn new(inner: Arc<dyn murr_directory::Directory>) -> Hooked {
        Hooked {
            inner,
            before_change: Box::new(|_| {}),
            on_warm: Box::new(|| {}),
        }
    }

    /// Calls `f` with the path of each create and delete, before it happens.
    pub fn before_change(
        mut self,
        f: impl Fn(&murr_directory::FilePath) + Send + Sync + 'static,
    ) -> Hooked {
        self.before_change = Box::new(f);
        self
    }

    /// Calls `f` at each warm, before the inner directory's.
    pub fn on_warm(mut self, f: impl Fn() + Send + Sync + 'static) -> Hooked {
        self.on_warm = Box::new(f);
        self
    }
}

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooked")
            .field("inner", &self.inner)
            .finish()
    }
}

impl murr_directory::Directory for Hooked {
    fn open(&self, path: &murr_directory::FilePath) -> murr_directory::Result<bytes::Bytes> {
        self.inner.open(path)
    }
    fn read_range(
        &self,
        path: &murr_directory::FilePath,
        offset: u64,
        len: usize,
    ) -> murr_directory::Result<bytes::Bytes> {
        self.inner.read_range(path, offset, len)
    }
    fn create(
        &self,
        path: &murr_directory::FilePath,
    ) -> murr_directory::Result<Box<dyn murr_directory::FileWriter>> {
        (self.before_change)(path);
        self.inner.create(path)
    }
    fn list(&self, prefix: &str) -> murr_directory::Result<Vec<murr_directory::FileMeta>> {
        self.inner.list(prefix)
    }
    fn delete(&self, path: &murr_directory::FilePath) -> murr_directory::Result<()> {
        (self.before_change)(path);
        self.inner.delete(path)
    }
    fn exists(&self, path: &murr_directory::FilePath) -> murr_directory::Result<bool> {
        self.inner.exists(path)
    }
    fn retain_local(
        &self,
        keep: &dyn Fn(&murr_directory::FilePath) -> bool,
    ) -> murr_directory::Result<usize> {
        self.inner.retain_local(keep)
    }
    fn warm(&self, bytes: &[u8]) {
        (self.on_warm)();
        self.inner.warm(bytes);
    }
    fn release(&self, bytes: &[u8], range: std::ops::Range<usize>) {
        self.inner.release(bytes, range);
    }
}
