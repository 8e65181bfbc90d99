//! The fixed parts of a segment file: header, trailer and footer (the column directory).

use crate::DType;
use crate::bin_io::{Get, Put};
use crate::error::{Error, Result};

/// The first 8 bytes of every segment file, and its last 8.
pub const MAGIC: [u8; 8] = *b"MURRSEG\0";
/// The segment format version this build writes (5: sparse storage, columns a segment lacks, and
/// rows' write times).
pub const FORMAT_VERSION: u32 = 5;
/// The oldest segment format version this build reads (version 1 has no inline strings).
pub const MIN_FORMAT_VERSION: u32 = 1;
/// The header's length.
pub(crate) const HEADER_LEN: usize = 64;
/// The trailer's length.
pub(crate) const TRAILER_LEN: usize = 32;
/// Every section starts at a multiple of this.
pub(crate) const ALIGN: usize = 64;

/// A byte range of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Section {
    /// Offset from the start of the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// How a segment stores a column's values: the storage kind's stable code in the column
/// directory. A kind, once released, never changes meaning; a new way of storing values (sparse,
/// column-major) is a new kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum StorageKind {
    /// Fixed-width values in the row block.
    Fixed = 0,
    /// Variable-width values in their own offsets and data sections.
    Var = 1,
    /// Short strings in the row block: a length byte and a zero-padded slot.
    Inline = 2,
    /// Lists, column-major: item offsets per row, then the items in their own sections.
    List = 3,
    /// Fixed-width values of a mostly-null column, in each row's record of the sparse section:
    /// only the valid values take bytes.
    Sparse = 4,
}

impl StorageKind {
    /// The kind with this code, if this build knows it.
    pub fn from_code(code: u8) -> Option<StorageKind> {
        [
            StorageKind::Fixed,
            StorageKind::Var,
            StorageKind::Inline,
            StorageKind::List,
            StorageKind::Sparse,
        ]
        .into_iter()
        .find(|k| *k as u8 == code)
    }
}

/// Where a column's values live, with the parameters of its [`StorageKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In the row block, `offset` bytes into each row.
    Fixed {
        /// Offset inside the row.
        offset: u32,
        /// Bytes per value.
        width: u8,
    },
    /// A string in the row block: at `offset` of each row, a length byte then `width` bytes
    /// (the value, zero-padded).
    Inline {
        /// Offset of the length byte inside the row.
        offset: u32,
        /// Longest value.
        width: u8,
    },
    /// In its own sections: `rows + 1` offsets of `offset_width` bytes, then the data.
    Var {
        /// The offsets section.
        offsets: Section,
        /// The data section.
        data: Section,
        /// 4 or 8.
        offset_width: u8,
    },
    /// A list per row, column-major: row `r`'s items are `offsets[r] .. offsets[r + 1]` of the
    /// items. A fixed-size list of `N` with no null list has no offsets (row `r`'s items are
    /// `r * N .. (r + 1) * N`).
    List {
        /// `rows + 1` item offsets of `offset_width` bytes, or empty.
        offsets: Section,
        /// 4 or 8; 0 when there are no offsets.
        offset_width: u8,
        /// One bit per item (bit `i % 8` of byte `i / 8`, 1 = valid), or empty when no item is
        /// null.
        item_validity: Section,
        /// The items.
        items: Items,
    },
    /// In the row's record of the segment's sparse section ([`SparseMeta`]): the record holds
    /// the valid values of the sparse columns, in the order of their validity bits.
    Sparse {
        /// Bytes per value.
        width: u8,
    },
}

/// Where a list column's items live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Items {
    /// Fixed-width items, back to back.
    Fixed {
        /// The values.
        values: Section,
        /// Bytes per item.
        width: u8,
    },
    /// Variable-width items: `items + 1` offsets, then the data.
    Var {
        /// The offsets section.
        offsets: Section,
        /// The data section.
        data: Section,
        /// 4 or 8.
        offset_width: u8,
    },
}

impl Storage {
    /// The storage kind.
    pub fn kind(&self) -> StorageKind {
        match self {
            Storage::Fixed { .. } => StorageKind::Fixed,
            Storage::Inline { .. } => StorageKind::Inline,
            Storage::Var { .. } => StorageKind::Var,
            Storage::List { .. } => StorageKind::List,
            Storage::Sparse { .. } => StorageKind::Sparse,
        }
    }
}

/// A column as a segment stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMeta {
    /// The column's name.
    pub name: String,
    /// Its type.
    pub dtype: DType,
    /// Whether the schema allowed nulls.
    pub nullable: bool,
    /// The validity bit in each row (1 = valid), or `None` when the segment has no nulls in it.
    pub null_bit: Option<u32>,
    /// Where the values live.
    pub storage: Storage,
}

/// When a segment's rows were written, in whole seconds since the Unix epoch (what a table's
/// expiry compares with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteTimes {
    /// The earliest row's.
    pub min: i64,
    /// The latest row's.
    pub max: i64,
    /// Each row's own time, when they differ (a merge of writes made at different times);
    /// `None` when every row was written at `min` (then `max == min`).
    pub rows: Option<RowTimes>,
}

/// Each row's write time, column-major (a fetch reads it only for a table with a time to live).
/// A merge writes the rows of each segment it combines in order, so times come in runs: with
/// `width` 8, `values` holds each run's first row (u32, increasing from 0) and `dict` its time;
/// with many runs, `width` 1 or 2 indexes `dict`, the distinct times, and 4 holds each row's
/// time itself in `values`. Times are u32 seconds after the segment's earliest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowTimes {
    /// 8 for runs; else bytes per row: 1, 2 or 4.
    pub width: u8,
    /// Runs' first rows, or `rows x width` bytes.
    pub values: Section,
    /// Runs' times, or the distinct times for widths 1 and 2; else empty.
    pub dict: Section,
}

impl WriteTimes {
    /// Every row written at `t`.
    pub fn at(t: i64) -> WriteTimes {
        WriteTimes {
            min: t,
            max: t,
            rows: None,
        }
    }

    /// Rows written between `min` and `max`.
    pub fn between(min: i64, max: i64) -> WriteTimes {
        WriteTimes {
            min,
            max,
            rows: None,
        }
    }
}

/// The sparse section of a segment: each row's record of its sparse columns' valid values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseMeta {
    /// Offset inside the row of the record's position in the section.
    pub pointer: u32,
    /// Bytes of that position: 4 or 8.
    pub pointer_width: u8,
    /// The records.
    pub records: Section,
}

/// The footer: everything needed to read the sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    /// Number of rows.
    pub rows: u64,
    /// Bytes per row in the row block.
    pub row_width: u32,
    /// Offset of the validity bytes inside a row.
    pub validity_offset: u32,
    /// The row block.
    pub rows_section: Section,
    /// Position of the key column (the column holding each row's encoded key) in `columns`.
    pub key_column: u32,
    /// The key index's slots.
    pub index_section: Section,
    /// Bytes per index slot (4 or 8).
    pub index_slot_width: u8,
    /// Number of index slots.
    pub index_capacity: u64,
    /// Hash algorithm code of the index.
    pub hash_algo: u8,
    /// The seed of the index's hash (version 3; 0 before).
    pub hash_seed: u64,
    /// When the rows were written (version 5; before it, every row reads as written at 0 and
    /// the table layer gives such segments its own time: see `murr-table`).
    pub written: Option<WriteTimes>,
    /// The sparse section, when a column is stored sparse (version 5).
    pub sparse: Option<SparseMeta>,
    /// The columns, in schema order.
    pub columns: Vec<ColumnMeta>,
}

pub(crate) fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// The trailer: where the footer is, the checksums and the version.
pub(crate) struct Trailer {
    pub(crate) footer_offset: u64,
    pub(crate) footer_len: u64,
    pub(crate) footer_crc: u32,
    pub(crate) body_crc: u32,
    pub(crate) version: u32,
}

impl Trailer {
    pub(crate) fn encode(&self) -> Result<[u8; TRAILER_LEN]> {
        let mut t = Put::default();
        t.u64(self.footer_offset);
        t.u32(u32::try_from(self.footer_len).map_err(|_| Error::invalid("footer too large"))?);
        t.u32(self.footer_crc);
        t.u32(self.body_crc);
        t.u32(self.version);
        t.0.extend_from_slice(&MAGIC);
        Ok(t.0.try_into().expect("the trailer is 32 bytes"))
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Trailer> {
        let mut t = Get::new(bytes, "segment trailer");
        let trailer = Trailer {
            footer_offset: t.u64()?,
            footer_len: u64::from(t.u32()?),
            footer_crc: t.u32()?,
            body_crc: t.u32()?,
            version: t.u32()?,
        };
        if t.take(8)? != MAGIC {
            return Err(Error::corrupt(
                "segment trailer has the wrong magic bytes (truncated file?)",
            ));
        }
        Ok(trailer)
    }
}

fn put_section(p: &mut Put, s: Section) {
    p.u64(s.offset);
    p.u64(s.len);
}

fn get_section(g: &mut Get<'_>) -> Result<Section> {
    Ok(Section {
        offset: g.u64()?,
        len: g.u64()?,
    })
}

pub(crate) fn encode_meta(m: &SegmentMeta) -> Result<Vec<u8>> {
    let mut p = Put::default();
    p.u64(m.rows);
    p.u32(m.row_width);
    p.u32(m.validity_offset);
    put_section(&mut p, m.rows_section);
    p.u32(m.key_column);
    put_section(&mut p, m.index_section);
    p.u8(m.index_slot_width);
    p.u64(m.index_capacity);
    p.u8(m.hash_algo);
    p.u64(m.hash_seed);
    let w = m.written.unwrap_or_default();
    p.u64(w.min as u64);
    p.u64(w.max as u64);
    match w.rows {
        Some(t) => {
            p.u8(t.width);
            put_section(&mut p, t.values);
            put_section(&mut p, t.dict);
        }
        None => p.u8(0),
    }
    match m.sparse {
        Some(s) => {
            p.u8(s.pointer_width);
            p.u32(s.pointer);
            put_section(&mut p, s.records);
        }
        None => p.u8(0),
    }
    p.u32(u32::try_from(m.columns.len()).map_err(|_| Error::invalid("too many columns"))?);
    for c in &m.columns {
        p.str(&c.name)?;
        c.dtype.encode(&mut p);
        p.u8(u8::from(c.nullable));
        p.u32(c.null_bit.unwrap_or(u32::MAX));
        p.u8(c.storage.kind() as u8);
        match c.storage {
            Storage::Fixed { offset, width } | Storage::Inline { offset, width } => {
                p.u32(offset);
                p.u8(width);
            }
            Storage::Sparse { width } => p.u8(width),
            Storage::Var {
                offsets,
                data,
                offset_width,
            } => {
                put_section(&mut p, offsets);
                put_section(&mut p, data);
                p.u8(offset_width);
            }
            Storage::List {
                offsets,
                offset_width,
                item_validity,
                items,
            } => {
                put_section(&mut p, offsets);
                p.u8(offset_width);
                put_section(&mut p, item_validity);
                match items {
                    Items::Fixed { values, width } => {
                        p.u8(0);
                        put_section(&mut p, values);
                        p.u8(width);
                    }
                    Items::Var {
                        offsets,
                        data,
                        offset_width,
                    } => {
                        p.u8(1);
                        put_section(&mut p, offsets);
                        put_section(&mut p, data);
                        p.u8(offset_width);
                    }
                }
            }
        }
    }
    Ok(p.0)
}

/// Reads the footer of a segment of format `version`.
pub(crate) fn decode_meta(bytes: &[u8], version: u32) -> Result<SegmentMeta> {
    let mut g = Get::new(bytes, "segment footer");
    let rows = g.u64()?;
    let row_width = g.u32()?;
    let validity_offset = g.u32()?;
    let rows_section = get_section(&mut g)?;
    let key_column = g.u32()?;
    let index_section = get_section(&mut g)?;
    let index_slot_width = g.u8()?;
    let index_capacity = g.u64()?;
    let hash_algo = g.u8()?;
    let hash_seed = if version >= 3 { g.u64()? } else { 0 };
    let (written, sparse) = if version >= 5 {
        let min = g.u64()? as i64;
        let max = g.u64()? as i64;
        let rows = match g.u8()? {
            0 => None,
            width => Some(RowTimes {
                width,
                values: get_section(&mut g)?,
                dict: get_section(&mut g)?,
            }),
        };
        let written = WriteTimes { min, max, rows };
        let sparse = match g.u8()? {
            0 => None,
            pointer_width => Some(SparseMeta {
                pointer_width,
                pointer: g.u32()?,
                records: get_section(&mut g)?,
            }),
        };
        (Some(written), sparse)
    } else {
        (None, None)
    };
    let n = g.u32()?;
    let mut columns = Vec::with_capacity(n.min(4096) as usize);
    for _ in 0..n {
        let name = g.str()?.to_owned();
        let dtype = DType::decode(&mut g, &name)?;
        let nullable = g.u8()? != 0;
        let bit = g.u32()?;
        let null_bit = (bit != u32::MAX).then_some(bit);
        let code = g.u8()?;
        let storage = match StorageKind::from_code(code) {
            Some(StorageKind::Fixed) => Storage::Fixed {
                offset: g.u32()?,
                width: g.u8()?,
            },
            Some(StorageKind::Var) => Storage::Var {
                offsets: get_section(&mut g)?,
                data: get_section(&mut g)?,
                offset_width: g.u8()?,
            },
            Some(StorageKind::Inline) => Storage::Inline {
                offset: g.u32()?,
                width: g.u8()?,
            },
            Some(StorageKind::Sparse) if version >= 5 => Storage::Sparse { width: g.u8()? },
            Some(StorageKind::List) if version >= 4 => Storage::List {
                offsets: get_section(&mut g)?,
                offset_width: g.u8()?,
                item_validity: get_section(&mut g)?,
                items: match g.u8()? {
                    0 => Items::Fixed {
                        values: get_section(&mut g)?,
                        width: g.u8()?,
                    },
                    1 => Items::Var {
                        offsets: get_section(&mut g)?,
                        data: get_section(&mut g)?,
                        offset_width: g.u8()?,
                    },
                    other => {
                        return Err(Error::corrupt(format!(
                            "column {name:?} has unknown item storage {other}"
                        )));
                    }
                },
            },
            _ => {
                return Err(Error::corrupt(format!(
                    "column {name:?} has unknown storage kind {code}"
                )));
            }
        };
        columns.push(ColumnMeta {
            name,
            dtype,
            nullable,
            null_bit,
            storage,
        });
    }
    if !g.finished() {
        return Err(Error::corrupt("segment footer has trailing bytes"));
    }
    Ok(SegmentMeta {
        rows,
        row_width,
        validity_offset,
        rows_section,
        key_column,
        index_section,
        index_slot_width,
        index_capacity,
        hash_algo,
        hash_seed,
        written,
        sparse,
        columns,
    })
}

/// The format version a segment file's header names, read without validating the file (which
/// [`SegmentView::open`](crate::SegmentView::open) does): what a tool checks first, to tell
/// "written by a newer murr" from "damaged". `None` when `bytes` do not start with a segment
/// header.
///
/// ```
/// let mut file = murr_format::MAGIC.to_vec();
/// file.extend_from_slice(&5u32.to_le_bytes());
/// assert_eq!(murr_format::peek_version(&file), Some(5));
/// assert_eq!(murr_format::peek_version(b"PAR1"), None);
/// ```
pub fn peek_version(bytes: &[u8]) -> Option<u32> {
    let header = bytes.get(..12)?;
    (header[..8] == MAGIC)
        .then(|| u32::from_le_bytes([header[8], header[9], header[10], header[11]]))
}
