//! murr tables: typed columns under a utf8 key, stored as immutable segments.
//!
//! A [`Store`] is a catalog of tables in one [`Directory`](murr_directory::Directory). A
//! [`Table`] is a schema, an ordered list of segments (its current [`Snapshot`]) and the key
//! index the segments carry. [`Table::write`] turns record batches into one new segment and
//! commits it through the table's manifest; [`Table::fetch`] answers "these columns for these
//! keys" as one Arrow record batch. A background thread merges segments (see `policy`).
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

mod error;
mod manifest;
mod normalize;
mod policy;
mod request;
mod store;
mod table;

pub use error::{Error, ErrorKind, Result};
pub use normalize::widens;
pub use request::FetchRequest;

/// Fetches of at most this many cells (keys x columns) take less time than a hand-off to a
/// blocking thread, so the front-ends run them on their async worker; larger ones move to the
/// blocking pool so that they cannot stall other requests.
pub const INLINE_FETCH_CELLS: usize = 64 * 1024;
pub use store::{Store, StoreOptions, TableStatus};
pub use table::{Snapshot, Table, TableStats, WriteStats};
