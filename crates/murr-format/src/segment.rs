//! The segment file: layout, encoder and validated read-only view.
//!
//! See `docs/format.md` for the byte layout. In short:
//! a 64-byte header, then 64-byte aligned sections (the row block, each variable-width column's
//! offsets and data, the key index), then the footer (column directory), then a 32-byte trailer.
//! Fixed-width values of a row sit together in the row block, so gathering M columns of one row costs
//! one cache miss, not M.

use std::io::Write;

use bytes::Bytes;

use crate::DType;
use crate::bin_io::{Get, Put};
use crate::error::{Error, Result};
use crate::index::{self, IndexView};

/// The first 8 bytes of every segment file, and its last 8.
pub const MAGIC: [u8; 8] = *b"MURRSEG\0";
/// The segment format version this build writes.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest segment format version this build reads (version 1 has no inline strings).
pub const MIN_FORMAT_VERSION: u32 = 1;
/// The longest string a row can hold inline (its length is one byte in the row).
pub const MAX_INLINE: usize = 64;

/// How wide an inline slot a utf8 column of `rows` values gets, given its longest value and its
/// total bytes; `None` keeps it in offsets + data sections.
///
/// A string is inline when the longest fits [`MAX_INLINE`] and padding every value to the longest
/// wastes at most 12 bytes per row over what offsets and data would take (keys of an ID scheme
/// mostly have one length, and are then always inline). An inline key costs no extra cache miss
/// to compare: it is in the row that the fetch reads anyway.
pub fn inline_width_for(rows: usize, max_len: usize, total_len: usize) -> Option<u8> {
    let fits = max_len <= MAX_INLINE
        && (max_len + 1).saturating_mul(rows) <= total_len.saturating_add(rows.saturating_mul(12));
    fits.then(|| u8::try_from(max_len).expect("<= MAX_INLINE"))
}

/// The value of an inline string whose slot starts at `offset` of `row`: a length byte, then the
/// bytes. A length above the slot's `width` (a corrupt file) reads as `width`: never out of the row.
#[inline]
pub fn inline_value(row: &[u8], offset: usize, width: usize) -> &[u8] {
    let len = usize::from(row[offset]).min(width);
    &row[offset + 1..offset + 1 + len]
}
/// The header's length.
pub const HEADER_LEN: usize = 64;
/// The trailer's length.
pub const TRAILER_LEN: usize = 32;
/// Every section starts at a multiple of this.
pub const ALIGN: usize = 64;

/// How many keys ahead a batched lookup prefetches: enough to keep the memory system busy
/// (a dozen or two misses in flight per core), few enough that prefetched lines are still cached
/// when they are read. Prefetching a whole stage at once was slower: the prefetches beyond what
/// the core can track stall or are dropped.
const PREFETCH_DISTANCE: usize = 16;

/// Hints the CPU to load the cache line holding `bytes[at]`; a no-op when `at` is out of range
/// or the target has no prefetch instruction. Batched lookups prefetch `PREFETCH_DISTANCE` (16)
/// keys ahead so that the cache misses of a request's keys overlap (see docs/performance.md).
#[inline(always)]
pub fn prefetch(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(tail) = bytes.get(at..) {
        let ptr = tail.as_ptr().cast::<i8>();
        #[expect(unsafe_code, reason = "the prefetch intrinsic is unsafe to call")]
        // SAFETY: a prefetch is only a hint: it reads no value into the program and never faults,
        // whatever the address; `ptr` points into `bytes` anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

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
native!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

/// A column as the encoder is asked to lay it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The column's name.
    pub name: String,
    /// Its type.
    pub dtype: DType,
    /// Whether the schema allows nulls.
    pub nullable: bool,
    /// Whether this segment holds a null in it; only such columns get a validity bit.
    pub has_nulls: bool,
    /// For a utf8 column: store its values in the row, in slots of this many bytes (see
    /// [`inline_width_for`]); `None` stores them in offsets + data sections.
    pub inline_width: Option<u8>,
}

/// A byte range of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Section {
    /// Offset from the start of the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// Where a column's values live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In the row block, `offset` bytes into each row.
    Fixed {
        /// Offset inside the row.
        offset: u32,
        /// Bytes per value.
        width: u8,
    },
    /// A utf8 column in the row block: at `offset` of each row, a length byte then `width`
    /// bytes (the value, zero-padded).
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
    /// Position of the key column in `columns`.
    pub key_column: u32,
    /// The key index's slots.
    pub index_section: Section,
    /// Bytes per index slot (4 or 8).
    pub index_slot_width: u8,
    /// Number of index slots.
    pub index_capacity: u64,
    /// Hash algorithm code of the index.
    pub hash_algo: u8,
    /// The columns, in schema order.
    pub columns: Vec<ColumnMeta>,
}

struct RowLayout {
    offsets: Vec<Option<u32>>,
    inline: Vec<Option<(u32, u8)>>,
    null_bits: Vec<Option<u32>>,
    validity_offset: u32,
    row_width: u32,
}

impl RowLayout {
    fn compute(columns: &[ColumnSpec], key: usize) -> Result<RowLayout> {
        // Widest values first, so each value is naturally aligned inside the row.
        let mut order: Vec<usize> = (0..columns.len())
            .filter(|&i| columns[i].dtype.fixed_width().is_some())
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse(columns[i].dtype.fixed_width()));
        let mut offsets = vec![None; columns.len()];
        let mut at = 0usize;
        let mut max_align = 1usize;
        for i in order {
            let w = columns[i]
                .dtype
                .fixed_width()
                .expect("filtered to fixed-width");
            offsets[i] = Some(u32::try_from(at).map_err(|_| Error::invalid("row too wide"))?);
            at += w;
            max_align = max_align.max(w);
        }
        // Then inline strings: a length byte and the value, byte-aligned.
        let mut inline = vec![None; columns.len()];
        for (i, c) in columns.iter().enumerate() {
            if let Some(w) = c.inline_width {
                if c.dtype != DType::Utf8 {
                    return Err(Error::invalid(format!(
                        "column {:?} is {}: only utf8 is stored inline",
                        c.name, c.dtype
                    )));
                }
                if usize::from(w) > MAX_INLINE {
                    return Err(Error::invalid(format!(
                        "column {:?}: inline width {w} is above {MAX_INLINE}",
                        c.name
                    )));
                }
                inline[i] = Some((
                    u32::try_from(at).map_err(|_| Error::invalid("row too wide"))?,
                    w,
                ));
                at += 1 + usize::from(w);
            }
        }
        let validity_offset = at;
        let mut null_bits = vec![None; columns.len()];
        let mut bits = 0u32;
        for (i, c) in columns.iter().enumerate() {
            if c.has_nulls {
                if i == key || !c.nullable {
                    return Err(Error::invalid(format!(
                        "column {:?} holds nulls but is not nullable",
                        c.name
                    )));
                }
                null_bits[i] = Some(bits);
                bits += 1;
            }
        }
        at += (bits as usize).div_ceil(8);
        let row_width = at.next_multiple_of(max_align);
        Ok(RowLayout {
            offsets,
            inline,
            null_bits,
            validity_offset: u32::try_from(validity_offset)
                .map_err(|_| Error::invalid("row too wide"))?,
            row_width: u32::try_from(row_width).map_err(|_| Error::invalid("row too wide"))?,
        })
    }
}

#[derive(Debug, Default)]
struct VarBuilder {
    offsets: Vec<u64>,
    data: Vec<u8>,
}

/// An inline string column being filled: where its slot is and how many rows got a value.
#[derive(Debug, Clone, Copy)]
struct InlineBuilder {
    offset: u32,
    width: u8,
    pushed: usize,
}

/// Builds one segment in memory, then writes it out with [`SegmentEncoder::finish`].
///
/// Fixed-width values and validity bits are written straight into the row block
/// ([`SegmentEncoder::rows_mut`]); variable-width values are appended in row order
/// ([`SegmentEncoder::push_var`]). Rows start all-null; set valid bits for the values present.
#[derive(Debug)]
pub struct SegmentEncoder {
    columns: Vec<ColumnSpec>,
    key: usize,
    rows: usize,
    row_width: usize,
    validity_offset: usize,
    fixed_offsets: Vec<Option<u32>>,
    null_bits: Vec<Option<u32>>,
    block: Vec<u8>,
    var: Vec<Option<VarBuilder>>,
    inline: Vec<Option<InlineBuilder>>,
    /// The first value too long for its inline slot (reported by `finish`).
    overflow: Option<String>,
}

impl SegmentEncoder {
    /// An encoder for `rows` rows of these columns; `key` is the key column's position.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the key column is not utf8, a non-nullable column is said to hold
    /// nulls, or the row count is too large.
    pub fn new(columns: Vec<ColumnSpec>, key: usize, rows: usize) -> Result<Self> {
        let Some(k) = columns.get(key) else {
            return Err(Error::invalid("key column position out of range"));
        };
        if k.dtype != DType::Utf8 {
            return Err(Error::invalid(format!(
                "key column {:?} is not utf8",
                k.name
            )));
        }
        if rows as u64 >= u64::from(u32::MAX) {
            return Err(Error::invalid(format!(
                "a segment holds at most {} rows",
                u32::MAX - 1
            )));
        }
        let layout = RowLayout::compute(&columns, key)?;
        let row_width = layout.row_width as usize;
        let block_len = rows
            .checked_mul(row_width)
            .ok_or_else(|| Error::invalid("row block too large"))?;
        let inline: Vec<Option<InlineBuilder>> = layout
            .inline
            .iter()
            .map(|i| {
                i.map(|(offset, width)| InlineBuilder {
                    offset,
                    width,
                    pushed: 0,
                })
            })
            .collect();
        let var = columns
            .iter()
            .zip(&inline)
            .map(|(c, i)| {
                (c.dtype.fixed_width().is_none() && i.is_none()).then(|| VarBuilder {
                    offsets: {
                        let mut o = Vec::with_capacity(rows + 1);
                        o.push(0);
                        o
                    },
                    data: Vec::new(),
                })
            })
            .collect();
        Ok(SegmentEncoder {
            key,
            rows,
            row_width,
            validity_offset: layout.validity_offset as usize,
            fixed_offsets: layout.offsets,
            null_bits: layout.null_bits,
            block: vec![0; block_len],
            var,
            inline,
            overflow: None,
            columns,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes per row.
    pub fn row_width(&self) -> usize {
        self.row_width
    }

    /// The offset of a fixed-width column inside each row, `None` for variable-width columns.
    pub fn fixed_offset(&self, column: usize) -> Option<usize> {
        self.fixed_offsets[column].map(|o| o as usize)
    }

    /// The row block, `rows * row_width` bytes.
    pub fn rows_mut(&mut self) -> &mut [u8] {
        &mut self.block
    }

    /// Marks a value valid. Columns without a validity bit are always valid; this is then a no-op.
    #[inline]
    pub fn set_valid(&mut self, column: usize, row: usize) {
        if let Some(bit) = self.null_bits[column] {
            let at = row * self.row_width + self.validity_offset + (bit / 8) as usize;
            self.block[at] |= 1 << (bit % 8);
        }
    }

    /// Appends the next row's value of a variable-width column (`None` = null).
    ///
    /// # Panics
    /// If `column` is fixed-width.
    #[inline]
    pub fn push_var(&mut self, column: usize, value: Option<&[u8]>) {
        if let Some(i) = self.inline[column].as_mut() {
            let row = i.pushed;
            i.pushed += 1;
            let Some(v) = value else { return };
            if v.len() > usize::from(i.width) {
                if self.overflow.is_none() {
                    self.overflow = Some(format!(
                        "column {:?}: a value of {} bytes does not fit its inline width {}",
                        self.columns[column].name,
                        v.len(),
                        i.width
                    ));
                }
                return;
            }
            if row < self.rows {
                let at = row * self.row_width + i.offset as usize;
                self.block[at] = u8::try_from(v.len()).expect("<= width");
                self.block[at + 1..at + 1 + v.len()].copy_from_slice(v);
            }
            return;
        }
        let b = self.var[column]
            .as_mut()
            .expect("push_var on a variable-width column");
        if let Some(v) = value {
            b.data.extend_from_slice(v);
        }
        b.offsets.push(b.data.len() as u64);
    }

    /// Reserves room for `bytes` more bytes of a variable-width column's data.
    pub fn reserve_var(&mut self, column: usize, bytes: usize) {
        if let Some(b) = self.var[column].as_mut() {
            b.data.reserve(bytes);
        }
    }

    /// Builds the key index and writes the whole segment; returns the bytes written.
    ///
    /// # Errors
    /// [`Error::Invalid`] when a variable-width column did not get one value per row, or two rows
    /// share a key; [`Error::Io`] when the writer fails.
    pub fn finish(self, out: &mut impl Write) -> Result<u64> {
        if let Some(overflow) = self.overflow {
            return Err(Error::invalid(overflow));
        }
        for (i, (v, inl)) in self.var.iter().zip(&self.inline).enumerate() {
            let got = match (v, inl) {
                (Some(b), _) => b.offsets.len() - 1,
                (None, Some(i)) => i.pushed,
                (None, None) => continue,
            };
            if got != self.rows {
                return Err(Error::invalid(format!(
                    "column {:?} got {got} values for {} rows",
                    self.columns[i].name, self.rows
                )));
            }
        }
        let keys = KeyIter { enc: &self, row: 0 };
        let mut index_bytes = Vec::new();
        let (slot_width, capacity) = index::build(
            keys,
            |r| keys.at(usize::try_from(r).expect("row fits usize")),
            &mut index_bytes,
        )?;

        let mut w = SectionWriter::new(out);
        w.write(&header())?;
        let rows_section = w.section(&self.block)?;
        let mut metas = Vec::with_capacity(self.columns.len());
        for (i, c) in self.columns.iter().enumerate() {
            let storage = match (&self.var[i], self.inline[i]) {
                (None, Some(inl)) => Storage::Inline {
                    offset: inl.offset,
                    width: inl.width,
                },
                (None, None) => Storage::Fixed {
                    offset: self.fixed_offsets[i].expect("fixed column has an offset"),
                    width: u8::try_from(c.dtype.fixed_width().expect("fixed")).expect("small"),
                },
                (Some(b), _) => {
                    let wide = b.data.len() > u32::MAX as usize;
                    let mut bytes = Vec::with_capacity(b.offsets.len() * if wide { 8 } else { 4 });
                    for &o in &b.offsets {
                        if wide {
                            bytes.extend_from_slice(&o.to_le_bytes());
                        } else {
                            bytes.extend_from_slice(
                                &u32::try_from(o).expect("checked narrow").to_le_bytes(),
                            );
                        }
                    }
                    let offsets = w.section(&bytes)?;
                    let data = w.section(&b.data)?;
                    Storage::Var {
                        offsets,
                        data,
                        offset_width: if wide { 8 } else { 4 },
                    }
                }
            };
            metas.push(ColumnMeta {
                name: c.name.clone(),
                dtype: c.dtype,
                nullable: c.nullable,
                null_bit: self.null_bits[i],
                storage,
            });
        }
        let index_section = w.section(&index_bytes)?;
        let meta = SegmentMeta {
            rows: self.rows as u64,
            row_width: u32::try_from(self.row_width).expect("checked at layout"),
            validity_offset: u32::try_from(self.validity_offset).expect("checked at layout"),
            rows_section,
            key_column: u32::try_from(self.key).expect("few columns"),
            index_section,
            index_slot_width: slot_width,
            index_capacity: capacity,
            hash_algo: index::HASH_XXH3_64,
            columns: metas,
        };
        let footer = encode_meta(&meta)?;
        let footer_offset = w.pos;
        let body_crc = w.crc;
        w.write(&footer)?;
        let mut trailer = Put::default();
        trailer.u64(footer_offset);
        trailer.u32(u32::try_from(footer.len()).map_err(|_| Error::invalid("footer too large"))?);
        trailer.u32(crc32c::crc32c(&footer));
        trailer.u32(body_crc);
        trailer.u32(FORMAT_VERSION);
        trailer.0.extend_from_slice(&MAGIC);
        debug_assert_eq!(trailer.0.len(), TRAILER_LEN);
        w.write(&trailer.0)?;
        Ok(w.pos)
    }
}

/// The keys of a finished encoder, in row order.
#[derive(Clone, Copy)]
struct KeyIter<'a> {
    enc: &'a SegmentEncoder,
    row: usize,
}

impl<'a> KeyIter<'a> {
    fn at(&self, r: usize) -> &'a [u8] {
        let enc = self.enc;
        match (&enc.var[enc.key], enc.inline[enc.key]) {
            (Some(keys), _) => {
                &keys.data[usize::try_from(keys.offsets[r]).expect("in memory")
                    ..usize::try_from(keys.offsets[r + 1]).expect("in memory")]
            }
            (None, Some(i)) => inline_value(
                &enc.block[r * enc.row_width..(r + 1) * enc.row_width],
                i.offset as usize,
                usize::from(i.width),
            ),
            (None, None) => unreachable!("the key column is utf8"),
        }
    }
}

impl<'a> Iterator for KeyIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.row == self.enc.rows {
            return None;
        }
        self.row += 1;
        Some(self.at(self.row - 1))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.enc.rows - self.row;
        (left, Some(left))
    }
}
impl ExactSizeIterator for KeyIter<'_> {}

fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

struct SectionWriter<'a, W: Write> {
    out: &'a mut W,
    pos: u64,
    crc: u32,
}

impl<'a, W: Write> SectionWriter<'a, W> {
    fn new(out: &'a mut W) -> Self {
        SectionWriter {
            out,
            pos: 0,
            crc: 0,
        }
    }
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes)?;
        if self.pos >= HEADER_LEN as u64 {
            self.crc = crc32c::crc32c_append(self.crc, bytes);
        }
        self.pos += bytes.len() as u64;
        Ok(())
    }
    fn section(&mut self, bytes: &[u8]) -> Result<Section> {
        let pad =
            usize::try_from(self.pos.next_multiple_of(ALIGN as u64) - self.pos).expect("< 64");
        self.write(&[0u8; ALIGN][..pad])?;
        let s = Section {
            offset: self.pos,
            len: bytes.len() as u64,
        };
        self.write(bytes)?;
        Ok(s)
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

fn encode_meta(m: &SegmentMeta) -> Result<Vec<u8>> {
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
    p.u32(u32::try_from(m.columns.len()).map_err(|_| Error::invalid("too many columns"))?);
    for c in &m.columns {
        p.str(&c.name)?;
        p.u8(c.dtype.code());
        p.u16(0); // length of the type parameters: none of today's types has any
        p.u8(u8::from(c.nullable));
        p.u32(c.null_bit.unwrap_or(u32::MAX));
        match c.storage {
            Storage::Fixed { offset, width } => {
                p.u8(0);
                p.u32(offset);
                p.u8(width);
            }
            Storage::Inline { offset, width } => {
                p.u8(2);
                p.u32(offset);
                p.u8(width);
            }
            Storage::Var {
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
    Ok(p.0)
}

fn decode_meta(bytes: &[u8]) -> Result<SegmentMeta> {
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
    let n = g.u32()?;
    let mut columns = Vec::with_capacity(n.min(4096) as usize);
    for _ in 0..n {
        let name = g.str()?.to_owned();
        let code = g.u8()?;
        let dtype = DType::from_code(code).ok_or_else(|| {
            Error::corrupt(format!("column {name:?} has unknown type code {code}"))
        })?;
        let params = usize::from(g.u16()?);
        g.take(params)?;
        let nullable = g.u8()? != 0;
        let bit = g.u32()?;
        let null_bit = (bit != u32::MAX).then_some(bit);
        let storage = match g.u8()? {
            0 => Storage::Fixed {
                offset: g.u32()?,
                width: g.u8()?,
            },
            1 => Storage::Var {
                offsets: get_section(&mut g)?,
                data: get_section(&mut g)?,
                offset_width: g.u8()?,
            },
            2 => Storage::Inline {
                offset: g.u32()?,
                width: g.u8()?,
            },
            other => {
                return Err(Error::corrupt(format!(
                    "column {name:?} has unknown storage kind {other}"
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
        columns,
    })
}

/// How a column of an open segment is read; resolved once at open.
#[derive(Debug, Clone, Copy)]
pub enum ColumnReader {
    /// A fixed-width column: byte offset inside each row, and its width.
    Fixed {
        /// Offset inside the row.
        offset: usize,
        /// Bytes per value.
        width: usize,
    },
    /// A string in the row (see [`inline_value`]): offset of its length byte, slot width.
    Inline {
        /// Offset inside the row.
        offset: usize,
        /// Longest value.
        width: usize,
    },
    /// A variable-width column, by its position among the segment's variable-width columns.
    Var(usize),
}

#[derive(Debug, Clone)]
struct VarColumn {
    offsets: Bytes,
    data: Bytes,
    wide: bool,
}

impl VarColumn {
    #[inline]
    fn bounds(&self, row: usize) -> (usize, usize) {
        if self.wide {
            let a = u64::read_le(&self.offsets[row * 8..row * 8 + 8]);
            let b = u64::read_le(&self.offsets[row * 8 + 8..row * 8 + 16]);
            (
                usize::try_from(a).expect("validated"),
                usize::try_from(b).expect("validated"),
            )
        } else {
            let a = u32::read_le(&self.offsets[row * 4..row * 4 + 4]);
            let b = u32::read_le(&self.offsets[row * 4 + 4..row * 4 + 8]);
            (a as usize, b as usize)
        }
    }

    #[inline]
    fn value(&self, row: usize) -> &[u8] {
        let (a, b) = self.bounds(row);
        &self.data[a..b]
    }
}

/// A validated, read-only view of a segment's bytes.
///
/// Everything is checked once, in [`SegmentView::open`]; the readers after that do not fail.
/// Reads past the row count panic, as slice indexing does.
#[derive(Debug, Clone)]
pub struct SegmentView {
    bytes: Bytes,
    meta: SegmentMeta,
    rows: usize,
    row_width: usize,
    validity_offset: usize,
    row_block: Bytes,
    readers: Vec<ColumnReader>,
    var: Vec<VarColumn>,
    key_reader: ColumnReader,
    /// Column positions by name (a fetch of 100 columns looks up 100 names).
    positions: std::collections::HashMap<String, usize>,
}

fn sub(bytes: &Bytes, s: Section, footer_offset: u64, what: &str) -> Result<Bytes> {
    let end = s.offset.checked_add(s.len).filter(|&e| e <= footer_offset);
    let Some(end) = end else {
        return Err(Error::corrupt(format!(
            "{what} at offset={} len={} runs past the body (footer at {footer_offset})",
            s.offset, s.len
        )));
    };
    if s.offset < HEADER_LEN as u64 || !s.offset.is_multiple_of(ALIGN as u64) {
        return Err(Error::corrupt(format!(
            "{what} at offset={} is not {ALIGN}-byte aligned inside the body",
            s.offset
        )));
    }
    Ok(bytes.slice(
        usize::try_from(s.offset).expect("within bytes")
            ..usize::try_from(end).expect("within bytes"),
    ))
}

impl SegmentView {
    /// Validates `bytes` as a segment: magic, version, checksums (the body's only when
    /// `verify_body` is set), section bounds and alignment, offsets, and the index's shape.
    ///
    /// # Errors
    /// [`Error::Corrupt`] or [`Error::UnsupportedVersion`], saying what is wrong.
    pub fn open(bytes: Bytes, verify_body: bool) -> Result<SegmentView> {
        let len = bytes.len();
        if len < HEADER_LEN + TRAILER_LEN {
            return Err(Error::corrupt(format!(
                "segment is {len} bytes, too short to be one"
            )));
        }
        if bytes[..8] != MAGIC {
            return Err(Error::corrupt("segment header has the wrong magic bytes"));
        }
        let mut t = Get::new(&bytes[len - TRAILER_LEN..], "segment trailer");
        let footer_offset = t.u64()?;
        let footer_len = u64::from(t.u32()?);
        let footer_crc = t.u32()?;
        let body_crc = t.u32()?;
        let version = t.u32()?;
        if t.take(8)? != MAGIC {
            return Err(Error::corrupt(
                "segment trailer has the wrong magic bytes (truncated file?)",
            ));
        }
        let header_version = u32::read_le(&bytes[8..12]);
        if bytes[12..HEADER_LEN].iter().any(|&b| b != 0) {
            return Err(Error::corrupt("segment header has non-zero reserved bytes"));
        }
        if version != header_version || !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                version: version.max(header_version),
                supported: FORMAT_VERSION,
            });
        }
        if footer_offset < HEADER_LEN as u64
            || footer_offset.checked_add(footer_len) != Some((len - TRAILER_LEN) as u64)
        {
            return Err(Error::corrupt(format!(
                "segment footer at offset={footer_offset} len={footer_len} does not end at the trailer"
            )));
        }
        let fo = usize::try_from(footer_offset).expect("below len");
        let footer = &bytes[fo..len - TRAILER_LEN];
        if crc32c::crc32c(footer) != footer_crc {
            return Err(Error::corrupt("segment footer checksum mismatch"));
        }
        if verify_body && crc32c::crc32c(&bytes[HEADER_LEN..fo]) != body_crc {
            return Err(Error::corrupt("segment body checksum mismatch"));
        }
        let meta = decode_meta(footer)?;
        Self::from_meta(bytes, meta, footer_offset)
    }

    fn from_meta(bytes: Bytes, meta: SegmentMeta, footer_offset: u64) -> Result<SegmentView> {
        let rows = usize::try_from(meta.rows).map_err(|_| Error::corrupt("row count too large"))?;
        if meta.rows >= u64::from(u32::MAX) {
            return Err(Error::corrupt(format!("row count {} too large", meta.rows)));
        }
        let row_width = meta.row_width as usize;
        let validity_offset = meta.validity_offset as usize;
        let validity_bits = meta.columns.iter().filter(|c| c.null_bit.is_some()).count();
        if validity_offset + validity_bits.div_ceil(8) > row_width && validity_bits > 0 {
            return Err(Error::corrupt("validity bytes run past the row"));
        }
        let row_block = sub(&bytes, meta.rows_section, footer_offset, "row block")?;
        if Some(row_block.len()) != rows.checked_mul(row_width) {
            return Err(Error::corrupt(format!(
                "row block is {} bytes, expected rows={rows} x width={row_width}",
                row_block.len()
            )));
        }
        let mut readers = Vec::with_capacity(meta.columns.len());
        let mut var = Vec::new();
        for c in &meta.columns {
            if let Some(bit) = c.null_bit
                && (bit as usize >= validity_bits || !c.nullable)
            {
                return Err(Error::corrupt(format!(
                    "column {:?} has a bad validity bit",
                    c.name
                )));
            }
            match (c.storage, c.dtype.fixed_width()) {
                (Storage::Fixed { offset, width }, Some(w)) if usize::from(width) == w => {
                    let offset = offset as usize;
                    if offset + w > validity_offset || !offset.is_multiple_of(w) {
                        return Err(Error::corrupt(format!(
                            "column {:?} at row offset={offset} is misaligned or overlaps",
                            c.name
                        )));
                    }
                    readers.push(ColumnReader::Fixed { offset, width: w });
                }
                (Storage::Inline { offset, width }, None) if c.dtype == DType::Utf8 => {
                    let (offset, width) = (offset as usize, usize::from(width));
                    if width > MAX_INLINE || offset + 1 + width > validity_offset {
                        return Err(Error::corrupt(format!(
                            "column {:?} inline at row offset={offset} width={width} overlaps",
                            c.name
                        )));
                    }
                    readers.push(ColumnReader::Inline { offset, width });
                }
                (
                    Storage::Var {
                        offsets,
                        data,
                        offset_width,
                    },
                    None,
                ) => {
                    let what = format!("column {:?}", c.name);
                    let off = sub(&bytes, offsets, footer_offset, &what)?;
                    let data = sub(&bytes, data, footer_offset, &what)?;
                    let wide = match offset_width {
                        4 => false,
                        8 => true,
                        other => {
                            return Err(Error::corrupt(format!("{what} has offset width {other}")));
                        }
                    };
                    let ow = usize::from(offset_width);
                    if Some(off.len()) != (rows + 1).checked_mul(ow) {
                        return Err(Error::corrupt(format!(
                            "{what} has {} offset bytes for {rows} rows",
                            off.len()
                        )));
                    }
                    let mut prev = 0u64;
                    for i in 0..=rows {
                        let o = if wide {
                            u64::read_le(&off[i * 8..i * 8 + 8])
                        } else {
                            u64::from(u32::read_le(&off[i * 4..i * 4 + 4]))
                        };
                        if (i == 0 && o != 0) || o < prev {
                            return Err(Error::corrupt(format!(
                                "{what} offsets are not increasing at row {i}"
                            )));
                        }
                        prev = o;
                    }
                    if prev != data.len() as u64 {
                        return Err(Error::corrupt(format!(
                            "{what} offsets end at {prev}, data is {} bytes",
                            data.len()
                        )));
                    }
                    readers.push(ColumnReader::Var(var.len()));
                    var.push(VarColumn {
                        offsets: off,
                        data,
                        wide,
                    });
                }
                _ => {
                    return Err(Error::corrupt(format!(
                        "column {:?} storage does not fit its dtype {}",
                        c.name, c.dtype
                    )));
                }
            }
        }
        let key = meta.key_column as usize;
        let key_reader = match (meta.columns.get(key), readers.get(key)) {
            (Some(c), Some(r)) if c.dtype == DType::Utf8 && c.null_bit.is_none() => *r,
            _ => {
                return Err(Error::corrupt(
                    "key column is missing, not utf8 or has nulls",
                ));
            }
        };
        if meta.hash_algo != index::HASH_XXH3_64 {
            return Err(Error::corrupt(format!(
                "unknown hash algorithm code {}",
                meta.hash_algo
            )));
        }
        let index_bytes = sub(&bytes, meta.index_section, footer_offset, "key index")?;
        IndexView::new(
            &index_bytes,
            meta.index_slot_width,
            meta.index_capacity,
            meta.rows,
        )?;
        Ok(SegmentView {
            bytes,
            rows,
            row_width,
            validity_offset,
            row_block,
            readers,
            var,
            key_reader,
            positions: meta
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), i))
                .collect(),
            meta,
        })
    }

    /// The footer.
    pub fn meta(&self) -> &SegmentMeta {
        &self.meta
    }

    /// The whole file.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes per row.
    pub fn row_width(&self) -> usize {
        self.row_width
    }

    /// Offset of the validity bytes inside a row.
    pub fn validity_offset(&self) -> usize {
        self.validity_offset
    }

    /// The row block.
    pub fn row_block(&self) -> &[u8] {
        &self.row_block
    }

    /// The position of the column with this name.
    pub fn column_position(&self, name: &str) -> Option<usize> {
        self.positions.get(name).copied()
    }

    /// How column `column` is read.
    pub fn reader(&self, column: usize) -> ColumnReader {
        self.readers[column]
    }

    /// Hints the CPU to load row `row` (see [`prefetch`]).
    #[inline]
    pub fn prefetch_row(&self, row: usize) {
        let at = row * self.row_width;
        let end = at + self.row_width;
        for line in (at..end).step_by(64) {
            prefetch(&self.row_block, line);
        }
        // The last line, when the row straddles one more than its width suggests.
        prefetch(&self.row_block, end.saturating_sub(1));
    }

    /// Copies the `T` values at four `offsets` of each of `rows` into the four `outs`, in order
    /// (as many as all hold): one row address per four values.
    ///
    /// # Panics
    /// If a value does not fit the row or a row is out of range.
    #[inline]
    pub fn copy_fixed4<T: Native>(&self, rows: &[u32], offsets: [usize; 4], outs: [&mut [T]; 4]) {
        let w = T::WIDTH;
        assert!(
            offsets.iter().all(|&o| o + w <= self.row_width),
            "value past the row"
        );
        let [o0, o1, o2, o3] = offsets;
        let [a, b, c, d] = outs;
        let n = rows
            .len()
            .min(a.len())
            .min(b.len())
            .min(c.len())
            .min(d.len());
        let block: &[u8] = &self.row_block;
        for (i, &r) in rows[..n].iter().enumerate() {
            let start = r as usize * self.row_width;
            let row = &block[start..start + self.row_width];
            a[i] = T::read_le(&row[o0..o0 + w]);
            b[i] = T::read_le(&row[o1..o1 + w]);
            c[i] = T::read_le(&row[o2..o2 + w]);
            d[i] = T::read_le(&row[o3..o3 + w]);
        }
    }

    /// Copies the `T` value at `offset` of each of `rows` into `out`, in order (as many as
    /// both hold).
    ///
    /// # Panics
    /// If the value does not fit the row or a row is out of range.
    #[inline]
    pub fn copy_fixed<T: Native>(&self, rows: &[u32], offset: usize, out: &mut [T]) {
        assert!(offset + T::WIDTH <= self.row_width, "value past the row");
        let block: &[u8] = &self.row_block;
        for (o, &r) in out.iter_mut().zip(rows) {
            let at = r as usize * self.row_width + offset;
            *o = T::read_le(&block[at..at + T::WIDTH]);
        }
    }

    /// The bytes of row `row`.
    #[inline]
    pub fn row(&self, row: usize) -> &[u8] {
        &self.row_block[row * self.row_width..(row + 1) * self.row_width]
    }

    /// Whether column `column`'s value in `row_bytes` (a row from [`SegmentView::row`]) is valid.
    #[inline]
    pub fn is_valid_in(&self, column: usize, row_bytes: &[u8]) -> bool {
        match self.meta.columns[column].null_bit {
            None => true,
            Some(bit) => {
                row_bytes[self.validity_offset + (bit / 8) as usize] & (1 << (bit % 8)) != 0
            }
        }
    }

    /// Where column `column`'s validity bit sits in a row: byte offset and mask;
    /// `None` when the segment holds no null in that column.
    pub fn validity_mask(&self, column: usize) -> Option<(usize, u8)> {
        self.meta.columns[column]
            .null_bit
            .map(|bit| (self.validity_offset + (bit / 8) as usize, 1u8 << (bit % 8)))
    }

    /// The value of a string column (`reader` is [`ColumnReader::Var`] or
    /// [`ColumnReader::Inline`]) at `row`; empty for other readers.
    #[inline]
    pub fn str_value(&self, reader: ColumnReader, row: usize) -> &[u8] {
        match reader {
            ColumnReader::Var(v) => self.var[v].value(row),
            ColumnReader::Inline { offset, width } => inline_value(self.row(row), offset, width),
            ColumnReader::Fixed { .. } => &[],
        }
    }

    /// The key of `row`.
    #[inline]
    pub fn key(&self, row: usize) -> &[u8] {
        self.str_value(self.key_reader, row)
    }

    fn index(&self) -> IndexView<'_> {
        let s = self.meta.index_section;
        let slots = &self.bytes[s.offset as usize..(s.offset + s.len) as usize];
        IndexView::new_unchecked(slots, self.meta.index_slot_width, self.meta.index_capacity)
    }

    #[inline]
    fn key_checked(&self, row: u32) -> Option<&[u8]> {
        ((row as usize) < self.rows).then(|| self.key(row as usize))
    }

    /// The row holding `key`, given its [`crate::hash_key`].
    #[inline]
    pub fn find_hashed(&self, key: &[u8], hash: u64) -> Option<u32> {
        self.index().find(key, hash, |r| self.key_checked(r))
    }

    /// Looks up many keys at once: for each position `i` in `todo`, `keys[i]` (with hash
    /// `hashes[i]`). Calls `found(i, row)` for each key present and keeps in `todo` the positions
    /// of the keys that are not.
    ///
    /// The work goes in two stages (probe every key's slot, then compare every candidate's key),
    /// each one loop that prefetches the key 16 places ahead, so the cache
    /// misses of different keys overlap instead of queuing one behind the other.
    pub fn find_many<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        hashes: &[u64],
        todo: &mut Vec<u32>,
        mut found: impl FnMut(u32, u32),
    ) {
        let index = self.index();
        let width = usize::from(self.meta.index_slot_width);
        let prefetch_slot = |i: u32| {
            prefetch(
                index.slots(),
                index.home(hashes[i as usize]) as usize * width,
            )
        };
        for &i in todo.iter().take(PREFETCH_DISTANCE) {
            prefetch_slot(i);
        }
        // Stage 1: the first slot whose tag matches, for every key.
        let mut cands: Vec<(u32, u64, u32)> = Vec::with_capacity(todo.len());
        let mut missing = Vec::new();
        for (n, &i) in todo.iter().enumerate() {
            if let Some(&ahead) = todo.get(n + PREFETCH_DISTANCE) {
                prefetch_slot(ahead);
            }
            let h = hashes[i as usize];
            let mut budget = index.capacity();
            match index.candidate(h, index.home(h), &mut budget) {
                Some((pos, row)) if (row as usize) < self.rows => cands.push((i, pos, row)),
                Some((pos, _)) => match index.find_from(
                    keys[i as usize].as_ref(),
                    h,
                    index.next(pos),
                    &mut budget,
                    |r| self.key_checked(r),
                ) {
                    Some(row) => found(i, row),
                    None => missing.push(i),
                },
                None => missing.push(i),
            }
        }
        // Stage 2: compare the candidates' keys; a tag collision continues its probe (rare: 1 in
        // 256 occupied slots).
        let mut check = |i: u32, pos: u64, row: u32, stored: &[u8]| {
            let key = keys[i as usize].as_ref();
            if stored == key {
                found(i, row);
            } else {
                let mut budget = index.capacity();
                let h = hashes[i as usize];
                match index.find_from(key, h, index.next(pos), &mut budget, |r| {
                    self.key_checked(r)
                }) {
                    Some(row) => found(i, row),
                    None => missing.push(i),
                }
            }
        };
        match self.key_reader {
            // The key is in the row, which the fetch reads next anyway: one miss for both.
            ColumnReader::Inline { offset, width } => {
                // The row's first line and the line(s) of the key: all of a narrow row; a wide
                // row's other lines are read by the gather.
                let prefetch_row = |row: u32| {
                    let at = row as usize * self.row_width;
                    prefetch(&self.row_block, at);
                    prefetch(&self.row_block, at + offset);
                    prefetch(&self.row_block, at + offset + width);
                };
                for &(_, _, row) in cands.iter().take(PREFETCH_DISTANCE) {
                    prefetch_row(row);
                }
                for (n, &(i, pos, row)) in cands.iter().enumerate() {
                    if let Some(&(_, _, ahead)) = cands.get(n + PREFETCH_DISTANCE) {
                        prefetch_row(ahead);
                    }
                    check(
                        i,
                        pos,
                        row,
                        inline_value(self.row(row as usize), offset, width),
                    );
                }
            }
            ColumnReader::Var(v) => {
                // Three steps in one pipeline: the offsets of the candidate 2 x DISTANCE ahead
                // are prefetched, the key bytes of the one DISTANCE ahead, and this one compared.
                let keys_col = &self.var[v];
                let ow = if keys_col.wide { 8 } else { 4 };
                let d = PREFETCH_DISTANCE;
                let mut bounds: Vec<(usize, usize)> = Vec::with_capacity(cands.len());
                let bound = |n: usize, bounds: &mut Vec<(usize, usize)>| {
                    if let Some(&(_, _, row)) = cands.get(n) {
                        let (a, b) = keys_col.bounds(row as usize);
                        prefetch(&keys_col.data, a);
                        bounds.push((a, b));
                    }
                };
                for &(_, _, row) in cands.iter().take(2 * d) {
                    prefetch(&keys_col.offsets, row as usize * ow);
                }
                for n in 0..d {
                    bound(n, &mut bounds);
                }
                for (n, &(i, pos, row)) in cands.iter().enumerate() {
                    if let Some(&(_, _, ahead)) = cands.get(n + 2 * d) {
                        prefetch(&keys_col.offsets, ahead as usize * ow);
                    }
                    bound(n + d, &mut bounds);
                    let (a, b) = bounds[n];
                    check(i, pos, row, &keys_col.data[a..b]);
                }
            }
            ColumnReader::Fixed { .. } => unreachable!("the key column is utf8, checked at open"),
        }
        missing.sort_unstable();
        *todo = missing;
    }

    /// The row holding `key`.
    pub fn find(&self, key: &[u8]) -> Option<u32> {
        self.find_hashed(key, index::hash_key(key))
    }
}
