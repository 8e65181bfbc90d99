//! The segment file: layout, encoder, validated read-only view and key lookups.
//!
//! See `docs/format.md` for the byte layout. In short:
//! a 64-byte header, then 64-byte aligned sections (the row block, each variable-width column's
//! offsets and data, the key index), then the footer (column directory), then a 32-byte trailer.
//! Fixed-width values of a row sit together in the row block, so gathering M columns of one row costs
//! one cache miss, not M.
//!
//! - `footer`: header, trailer, the column directory and the storage kinds;
//! - `layout`: which storage each column gets (chosen from its values) and where it sits in a row;
//! - `encoder`: [`SegmentEncoder`];
//! - `view`: [`SegmentView`], validated once, and [`ColumnView`], which decodes a column's values;
//! - `lookup`: key lookups in the index, one or many at a time.

mod encoder;
mod footer;
mod layout;
mod lookup;
mod view;

pub use encoder::SegmentEncoder;
pub use footer::{
    ColumnMeta, FORMAT_VERSION, Items, MAGIC, MIN_FORMAT_VERSION, RowTimes, Section, SegmentMeta,
    SparseMeta, Storage, StorageKind, WriteTimes, peek_version,
};
pub use layout::{ColumnSpec, ValueStats};
pub use view::{ColumnView, ListView, SegmentView, Verify};

/// A fixed-width value type that rows store little-endian.
pub trait Native: Copy + Default + Send + Sync + 'static {
    /// Bytes per value.
    const WIDTH: usize;
    /// Reads a value from exactly `WIDTH` bytes.
    fn read_le(bytes: &[u8]) -> Self;
    /// Writes the value into exactly `WIDTH` bytes.
    fn write_le(self, out: &mut [u8]);
}

macro_rules! native {
    ($($t:ty),*) => {$(
        impl Native for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn read_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("caller passes WIDTH bytes"))
            }
            #[inline(always)]
            fn write_le(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
native!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, half::f16);
