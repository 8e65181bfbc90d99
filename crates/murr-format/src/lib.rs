//! murr's byte formats: column types and their stable codes (with their Arrow types), table
//! schemas, encoded keys, the segment file layout with its key index, and the checksummed
//! envelope of small files.
//!
//! **Architecture Invariant:** this crate does no I/O. Encoders write into a caller's
//! [`std::io::Write`]; decoders take [`bytes::Bytes`] and validate them once
//! ([`SegmentView::open`]), after which reads do not fail.
//!
//! The layout is specified in `docs/format.md`.

mod bin_io;
mod dtype;
pub mod envelope;
mod error;
pub mod filter;
pub mod index;
mod key;
mod prefetch;
mod schema;
mod segment;

pub use dtype::{DType, Item, MAX_FIXED_LIST_LEN, UnknownDType, Zone};
pub use error::{Error, Result};
pub use key::{ENCODED_KEY_COLUMN, KeyCodec, KeyPart, put as key_put};
pub use schema::{
    ColumnDef, ColumnsJson, Generation, IDX_COLUMN, MAX_NAME_LEN, MAX_TTL_SECS, TableSchema,
    TtlJson, parse_ttl, validate_name,
};
pub use segment::{
    ColumnMeta, ColumnSpec, ColumnView, FORMAT_VERSION, Items, ListView, MAGIC, MIN_FORMAT_VERSION,
    Native, RowTimes, Section, SegmentEncoder, SegmentMeta, SegmentView, SparseMeta, Storage,
    StorageKind, ValueStats, Verify, WriteTimes, peek_version,
};

#[cfg(test)]
mod tests;
