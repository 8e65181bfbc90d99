//! murr tables: typed columns under a key, stored as immutable segments.
//!
//! A [`Store`] is a catalog of tables in one [`Directory`](murr_directory::Directory), as a
//! writer or read-only (a replica that follows a writer's commits). A [`Table`] is its current
//! [`Snapshot`] (schema and ordered segments, with the key index they carry).
//! [`Table::write`] turns record batches into new segments and commits them in the table's next
//! manifest; [`Table::fetch`] answers "these columns for these keys" as one Arrow record batch.
//! Keys are encoded keys ([`murr_format::KeyCodec`]); the API layer encodes request keys.
//! A background thread merges segments (see `policy`).
//!
//! Errors carry an [`ErrorKind`] that front-ends map to their wire codes.
//!
//! ```
//! # use std::sync::Arc;
//! # use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
//! use murr_directory::RamDirectory;
//! use murr_format::{ColumnDef, DType, TableSchema};
//! use murr_table::{Store, StoreOptions};
//!
//! let store = Store::open(Arc::new(RamDirectory::new()), StoreOptions::default())?;
//! let schema = TableSchema::new("id", vec![
//!     ColumnDef::new("id", DType::Utf8, false),
//!     ColumnDef::new("score", DType::Float32, true),
//! ]);
//! let table = store.create_table("items", schema)?;
//! table.write(&[RecordBatch::try_from_iter(vec![
//!     ("id", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
//!     ("score", Arc::new(Float32Array::from(vec![0.5, 0.25])) as ArrayRef),
//! ])?])?;
//! let batch = table.fetch(&["b", "missing"], &["score"])?;
//! assert_eq!(batch.num_rows(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod clock;
mod error;
mod manifest;
mod merger;
mod policy;
mod publish;
mod store;
mod table;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, ErrorKind, Result};
pub use manifest::Manifest;
pub use publish::{
    Built as PublishSegment, FORMATS, PublishMode, PublishStats, StoreFormats, publish,
};
pub use store::{
    GcStats, RefreshStats, Store, StoreOptions, TableStatus, ThreadStart, is_segment_file,
};
pub use table::{
    Alter, MERGE_BATCH_ROWS, Snapshot, Table, TableCounters, TableMeta, TableStats, WriteStats,
};
