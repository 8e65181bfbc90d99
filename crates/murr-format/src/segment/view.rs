//! A validated, read-only view of a segment's bytes, and the decoding of its values.

use std::collections::HashMap;

use bytes::Bytes;

use crate::DType;
use crate::error::{Error, Result};
use crate::index::{self, IndexView};
use crate::segment::Native;
use crate::segment::footer::{
    ALIGN, ColumnMeta, FORMAT_VERSION, HEADER_LEN, Items, MAGIC, MIN_FORMAT_VERSION, Section,
    SegmentMeta, Storage, StorageKind, TRAILER_LEN, Trailer, WriteTimes, decode_meta,
};
use crate::segment::layout::MAX_INLINE;

/// The value of an inline string whose slot starts at `offset` of `row`: a length byte, then the
/// bytes. A length above the slot's `width` (a corrupt file) reads as `width`: never out of the row.
#[inline]
pub(crate) fn inline_value(row: &[u8], offset: usize, width: usize) -> &[u8] {
    let len = usize::from(row[offset]).min(width);
    &row[offset + 1..offset + 1 + len]
}

/// Whether [`SegmentView::open`] checks the checksum of the whole body (one pass over its bytes)
/// or only the footer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Footer and body.
    Full,
    /// The footer only: for bytes just written by this process.
    FooterOnly,
}

/// Where an open segment keeps a column's values; resolved once at open.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Layout {
    Fixed {
        offset: usize,
        width: usize,
    },
    Inline {
        offset: usize,
        width: usize,
    },
    Var(usize),
    List(usize),
    /// A value in the row's sparse record; `bit` is the column's validity bit.
    Sparse {
        bit: usize,
        width: usize,
    },
}

/// The number of set bits `from .. to` of `bits` (bit `i` is bit `i % 8` of byte `i / 8`).
#[inline]
pub(crate) fn count_ones(bits: &[u8], from: usize, to: usize) -> usize {
    let mut n = 0usize;
    let mut i = from;
    while i < to {
        let byte = i / 8;
        let shift = i % 8;
        let mut buf = [0u8; 8];
        let avail = bits.len().saturating_sub(byte).min(8);
        buf[..avail].copy_from_slice(&bits[byte..byte + avail]);
        let take = (to - i).min(64 - shift);
        let mut word = u64::from_le_bytes(buf) >> shift;
        if take < 64 {
            word &= (1u64 << take) - 1;
        }
        n += word.count_ones() as usize;
        i += take;
    }
    n
}

/// The rows' write times of an open segment: `width` bytes a row, an index into `dict` (widths
/// 1 and 2) or the time itself (4); or runs (8): each run's first row in `values`, its time in
/// `dict`.
#[derive(Debug, Clone)]
struct TimeColumn {
    width: usize,
    values: Bytes,
    dict: Bytes,
}

/// The sparse section of an open segment: where each row's record is, and how its values are
/// ordered (the sparse columns' validity bits, widest first: runs of one width).
#[derive(Debug, Clone)]
pub(crate) struct SparseRecords {
    records: Bytes,
    pointer: usize,
    wide: bool,
    /// Runs of validity bits of one width: `(first bit, end bit, width)`, widest first.
    runs: Vec<(usize, usize, usize)>,
}

impl SparseRecords {
    /// Where the record of the row `row_bytes` starts in the section.
    #[inline]
    fn start(&self, row_bytes: &[u8]) -> usize {
        let p = &row_bytes[self.pointer..];
        if self.wide {
            usize::try_from(u64::read_le(&p[..8])).unwrap_or(usize::MAX)
        } else {
            u32::read_le(&p[..4]) as usize
        }
    }

    /// The bytes of the row's record before the value of validity bit `bit`.
    #[inline]
    fn before(&self, validity: &[u8], bit: usize) -> usize {
        let mut at = 0;
        for &(from, to, width) in &self.runs {
            if from >= bit {
                break;
            }
            at += width * count_ones(validity, from, to.min(bit));
        }
        at
    }
}

#[derive(Debug, Clone)]
pub(crate) struct VarColumn {
    pub(crate) offsets: Bytes,
    pub(crate) data: Bytes,
    pub(crate) wide: bool,
}

impl VarColumn {
    #[inline]
    pub(crate) fn bounds(&self, row: usize) -> (usize, usize) {
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

    /// Checks `count + 1` offsets of `width` bytes: they start at 0, never decrease and end at
    /// `end`; also returns the last.
    fn check(what: &str, off: &[u8], width: u8, count: usize, end: Option<u64>) -> Result<u64> {
        let wide = match width {
            4 => false,
            8 => true,
            other => return Err(Error::corrupt(format!("{what} has offset width {other}"))),
        };
        let ow = usize::from(width);
        if Some(off.len()) != (count + 1).checked_mul(ow) {
            return Err(Error::corrupt(format!(
                "{what} has {} offset bytes for {count} values",
                off.len()
            )));
        }
        let mut prev = 0u64;
        for i in 0..=count {
            let o = if wide {
                u64::read_le(&off[i * 8..i * 8 + 8])
            } else {
                u64::from(u32::read_le(&off[i * 4..i * 4 + 4]))
            };
            if (i == 0 && o != 0) || o < prev {
                return Err(Error::corrupt(format!(
                    "{what} offsets are not increasing at {i}"
                )));
            }
            prev = o;
        }
        if let Some(end) = end
            && prev != end
        {
            return Err(Error::corrupt(format!(
                "{what} offsets end at {prev}, expected {end}"
            )));
        }
        Ok(prev)
    }
}

/// A list column of an open segment (see [`Storage::List`]).
#[derive(Debug, Clone)]
pub(crate) struct ListColumn {
    /// Item offsets per row, or `None` for a fixed-size list without null lists.
    offsets: Option<VarOffsets>,
    /// Every list's length (fixed-size lists).
    fixed_len: Option<usize>,
    item_validity: Option<Bytes>,
    items: ItemValues,
}

#[derive(Debug, Clone)]
struct VarOffsets {
    offsets: Bytes,
    wide: bool,
}

impl VarOffsets {
    #[inline]
    fn get(&self, i: usize) -> usize {
        if self.wide {
            usize::try_from(u64::read_le(&self.offsets[i * 8..i * 8 + 8])).expect("validated")
        } else {
            u32::read_le(&self.offsets[i * 4..i * 4 + 4]) as usize
        }
    }
}

#[derive(Debug, Clone)]
enum ItemValues {
    Fixed { values: Bytes, width: usize },
    Var(VarColumn),
}

/// The items of one list column of a segment ([`ColumnView::list`]).
#[derive(Debug, Clone, Copy)]
pub struct ListView<'a> {
    list: &'a ListColumn,
}

impl<'a> ListView<'a> {
    /// The items of row `row`'s list: positions `start .. end` of the items. Empty for a null
    /// list (check [`ColumnView::is_valid`]); a fixed-size list is always `N` long or empty.
    #[inline]
    pub fn range(&self, row: usize) -> (usize, usize) {
        match (&self.list.offsets, self.list.fixed_len) {
            (Some(o), Some(n)) => {
                let (a, b) = (o.get(row), o.get(row + 1));
                // Validated: b - a is 0 or n.
                if b - a == n { (a, b) } else { (a, a) }
            }
            (Some(o), None) => (o.get(row), o.get(row + 1)),
            (None, Some(n)) => (row * n, row * n + n),
            (None, None) => unreachable!("lists without offsets have a fixed length, validated"),
        }
    }

    /// Hints the CPU to load row `row`'s list offsets: call it several rows ahead of
    /// [`ListView::prefetch_items`] for the same row.
    #[inline]
    pub fn prefetch_offsets(&self, row: usize) {
        if let Some(o) = &self.list.offsets {
            crate::segment::lookup::prefetch(&o.offsets, row * if o.wide { 8 } else { 4 });
        }
    }

    /// Hints the CPU to load the first line of row `row`'s items (reading its offsets, which
    /// [`ListView::prefetch_offsets`] brought in): call it a few rows ahead of reading them.
    #[inline]
    pub fn prefetch_items(&self, row: usize) {
        let (a, b) = self.range(row);
        if a < b {
            match &self.list.items {
                ItemValues::Fixed { values, width } => {
                    crate::segment::lookup::prefetch(values, a * width);
                }
                ItemValues::Var(v) => {
                    crate::segment::lookup::prefetch(&v.offsets, a * if v.wide { 8 } else { 4 });
                }
            }
        }
    }

    /// The bytes of items `a .. b`: fixed-width values, or byte strings' data.
    #[inline]
    pub fn item_range_bytes(&self, a: usize, b: usize) -> &'a [u8] {
        match &self.list.items {
            _ if a >= b => &[],
            ItemValues::Fixed { values, width } => &values[a * width..b * width],
            ItemValues::Var(v) => &v.data[v.bounds(a).0..v.bounds(b - 1).1],
        }
    }

    /// Every list's length, for a fixed-size list.
    pub fn fixed_len(&self) -> Option<usize> {
        self.list.fixed_len
    }

    /// Fixed-width items' bytes, all items back to back, and the bytes per item; `None` for
    /// byte-string items.
    pub fn fixed_values(&self) -> Option<(&'a [u8], usize)> {
        match &self.list.items {
            ItemValues::Fixed { values, width } => Some((values, *width)),
            ItemValues::Var(_) => None,
        }
    }

    /// The bytes of byte-string item `i` (empty for fixed-width items).
    #[inline]
    pub fn item_bytes(&self, i: usize) -> &'a [u8] {
        match &self.list.items {
            ItemValues::Var(v) => v.value(i),
            ItemValues::Fixed { .. } => &[],
        }
    }

    /// Whether some item of the column is null in this segment.
    pub fn has_item_nulls(&self) -> bool {
        self.list.item_validity.is_some()
    }

    /// Whether item `i` is valid.
    #[inline]
    pub fn item_valid(&self, i: usize) -> bool {
        match &self.list.item_validity {
            None => true,
            Some(bits) => bits[i / 8] & (1 << (i % 8)) != 0,
        }
    }
}

/// Resolves and checks a list column's sections.
fn open_list(
    bytes: &Bytes,
    c: &ColumnMeta,
    rows: usize,
    footer_offset: u64,
    storage: Storage,
) -> Result<ListColumn> {
    let what = format!("column {:?}", c.name);
    let Storage::List {
        offsets,
        offset_width,
        item_validity,
        items,
    } = storage
    else {
        unreachable!("called for list storage");
    };
    let Some((item, fixed_len)) = c.dtype.list_item() else {
        return Err(Error::corrupt(format!(
            "{what} has list storage for dtype {}",
            c.dtype
        )));
    };
    let fixed_len = fixed_len.map(|n| n as usize);
    let items = match (items, item.fixed_width()) {
        (Items::Fixed { values, width }, Some(w)) if usize::from(width) == w => ItemValues::Fixed {
            values: sub(bytes, values, footer_offset, &what)?,
            width: w,
        },
        (
            Items::Var {
                offsets,
                data,
                offset_width,
            },
            None,
        ) => {
            let off = sub(bytes, offsets, footer_offset, &what)?;
            let data = sub(bytes, data, footer_offset, &what)?;
            let count = (off.len() / usize::from(offset_width.max(1))).saturating_sub(1);
            VarColumn::check(
                &format!("{what} items"),
                &off,
                offset_width,
                count,
                Some(data.len() as u64),
            )?;
            ItemValues::Var(VarColumn {
                offsets: off,
                data,
                wide: offset_width == 8,
            })
        }
        _ => {
            return Err(Error::corrupt(format!(
                "{what}: item storage does not fit the items' dtype {item}"
            )));
        }
    };
    let item_count = match &items {
        ItemValues::Fixed { values, width } => {
            if !values.len().is_multiple_of(*width) {
                return Err(Error::corrupt(format!("{what} items are not whole")));
            }
            values.len() / width
        }
        ItemValues::Var(v) => v.offsets.len() / if v.wide { 8 } else { 4 } - 1,
    };
    let offsets = if offset_width == 0 && offsets.len == 0 {
        match fixed_len {
            Some(n) if rows.checked_mul(n) == Some(item_count) => None,
            _ => {
                return Err(Error::corrupt(format!(
                    "{what} has no list offsets and {item_count} items for {rows} rows"
                )));
            }
        }
    } else {
        let off = sub(bytes, offsets, footer_offset, &what)?;
        VarColumn::check(
            &format!("{what} lists"),
            &off,
            offset_width,
            rows,
            Some(item_count as u64),
        )?;
        let o = VarOffsets {
            offsets: off,
            wide: offset_width == 8,
        };
        if let Some(n) = fixed_len
            && let Some(r) = (0..rows).find(|&r| {
                let len = o.get(r + 1) - o.get(r);
                len != 0 && len != n
            })
        {
            return Err(Error::corrupt(format!(
                "{what}: the list of row {r} does not have {n} items"
            )));
        }
        Some(o)
    };
    let item_validity = if item_validity.len == 0 {
        None
    } else {
        let bits = sub(bytes, item_validity, footer_offset, &what)?;
        if bits.len() != item_count.div_ceil(8) {
            return Err(Error::corrupt(format!(
                "{what} has {} item validity bytes for {item_count} items",
                bits.len()
            )));
        }
        Some(bits)
    };
    Ok(ListColumn {
        offsets,
        fixed_len,
        item_validity,
        items,
    })
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
    pub(crate) row_width: usize,
    validity_offset: usize,
    pub(crate) row_block: Bytes,
    layouts: Vec<Layout>,
    pub(crate) var: Vec<VarColumn>,
    lists: Vec<ListColumn>,
    sparse: Option<SparseRecords>,
    written: WriteTimes,
    /// Each row's write time (see [`crate::RowTimes`]).
    times: Option<TimeColumn>,
    pub(crate) key_layout: Layout,
    /// Column positions by name (a fetch of 100 columns looks up 100 names).
    positions: HashMap<String, usize>,
}

/// One column of an open segment: reads its values out of rows ([`SegmentView::row`]).
/// Cheap to copy; every read is valid for any row of the segment.
#[derive(Debug, Clone, Copy)]
pub struct ColumnView<'a> {
    view: &'a SegmentView,
    layout: Layout,
    validity: Option<(usize, u8)>,
    dtype: DType,
}

impl<'a> ColumnView<'a> {
    /// The column's type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// How the segment stores the column.
    pub fn kind(&self) -> StorageKind {
        match self.layout {
            Layout::Fixed { .. } => StorageKind::Fixed,
            Layout::Inline { .. } => StorageKind::Inline,
            Layout::Var(_) => StorageKind::Var,
            Layout::List(_) => StorageKind::List,
            Layout::Sparse { .. } => StorageKind::Sparse,
        }
    }

    /// Bytes the value of row `row` (whose bytes are `row_bytes`) takes outside the row's fixed
    /// part: a string's or bytes' length, a list's items; 0 for fixed-width values.
    #[inline]
    pub fn outside_len(&self, row: usize, row_bytes: &[u8]) -> usize {
        match self.layout {
            Layout::List(l) => {
                let list = ListView {
                    list: &self.view.lists[l],
                };
                let (a, b) = list.range(row);
                // Byte-string items also take an offset each.
                let offsets = if list.fixed_values().is_some() {
                    0
                } else {
                    (b - a) * 4
                };
                list.item_range_bytes(a, b).len() + offsets
            }
            _ => self.bytes(row, row_bytes).len(),
        }
    }

    /// The items of a list column; `None` for other columns.
    pub fn list(&self) -> Option<ListView<'a>> {
        match self.layout {
            Layout::List(l) => Some(ListView {
                list: &self.view.lists[l],
            }),
            _ => None,
        }
    }

    /// Whether the segment holds a null in this column (else every value is valid).
    pub fn has_nulls(&self) -> bool {
        self.validity.is_some()
    }

    /// For a fixed-width column, where its value sits in each row (for block copies with
    /// [`SegmentView::copy_fixed`]).
    pub fn fixed_offset(&self) -> Option<usize> {
        match self.layout {
            Layout::Fixed { offset, .. } => Some(offset),
            _ => None,
        }
    }

    /// Whether the value in `row_bytes` (a row of this segment) is valid.
    #[inline]
    pub fn is_valid(&self, row_bytes: &[u8]) -> bool {
        match self.validity {
            None => true,
            Some((byte, mask)) => row_bytes[byte] & mask != 0,
        }
    }

    /// The fixed-width value in `row_bytes`, read as `T` (its width must be the column's).
    ///
    /// # Panics
    /// If the column is not fixed-width of `T`'s width.
    #[inline]
    pub fn fixed<T: Native>(&self, row_bytes: &[u8]) -> T {
        match self.layout {
            Layout::Fixed { offset, width } if width == T::WIDTH => {
                T::read_le(&row_bytes[offset..offset + T::WIDTH])
            }
            Layout::Sparse { bit, width } if width == T::WIDTH => {
                if !self.is_valid(row_bytes) {
                    return T::default();
                }
                let sparse = self.view.sparse.as_ref().expect("checked at open");
                let at = sparse.start(row_bytes)
                    + sparse.before(&row_bytes[self.view.validity_offset..], bit);
                T::read_le(&sparse.records[at..at + T::WIDTH])
            }
            _ => panic!("column is not fixed-width of {} bytes", T::WIDTH),
        }
    }

    /// Prefetches the sparse record of the row `row_bytes` (nothing when the segment has no
    /// sparse column): a fetch does it for all its rows before it reads their values, so the
    /// records' misses overlap.
    #[inline]
    pub fn prefetch_sparse_record(&self, row_bytes: &[u8]) {
        if let Some(sparse) = self.view.sparse.as_ref() {
            crate::segment::lookup::prefetch(&sparse.records, sparse.start(row_bytes));
        }
    }

    /// Where the value of a sparse column in the row `row_bytes` starts (to prefetch it, or
    /// mark its page read); `None` for other columns.
    #[inline]
    pub fn sparse_ptr(&self, row_bytes: &[u8]) -> Option<*const u8> {
        let sparse = self.view.sparse.as_ref()?;
        matches!(self.layout, Layout::Sparse { .. }).then(|| {
            let at = sparse.start(row_bytes).min(sparse.records.len());
            sparse.records[at..].as_ptr()
        })
    }

    /// The bytes of a variable-width value: of row `row`, whose bytes are `row_bytes`.
    /// Empty for a null, and for a fixed-width column.
    #[inline]
    pub fn bytes(&self, row: usize, row_bytes: &'a [u8]) -> &'a [u8] {
        match self.layout {
            Layout::Inline { offset, width } => inline_value(row_bytes, offset, width),
            Layout::Var(v) => self.view.var[v].value(row),
            Layout::Fixed { .. } | Layout::List(_) | Layout::Sparse { .. } => &[],
        }
    }
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
    /// Validates `bytes` as a segment: magic, version, checksums (the body's only with
    /// [`Verify::Full`]), section bounds and alignment, offsets, and the index's shape.
    ///
    /// # Errors
    /// [`Error::Corrupt`] or [`Error::UnsupportedVersion`], saying what is wrong.
    pub fn open(bytes: Bytes, verify: Verify) -> Result<SegmentView> {
        let len = bytes.len();
        if len < HEADER_LEN + TRAILER_LEN {
            return Err(Error::corrupt(format!(
                "segment is {len} bytes, too short to be one"
            )));
        }
        if bytes[..8] != MAGIC {
            return Err(Error::corrupt("segment header has the wrong magic bytes"));
        }
        let t = Trailer::decode(&bytes[len - TRAILER_LEN..])?;
        let header_version = u32::read_le(&bytes[8..12]);
        if bytes[12..HEADER_LEN].iter().any(|&b| b != 0) {
            return Err(Error::corrupt("segment header has non-zero reserved bytes"));
        }
        if t.version != header_version
            || !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&t.version)
        {
            return Err(Error::UnsupportedVersion {
                version: t.version.max(header_version),
                supported: FORMAT_VERSION,
            });
        }
        let footer_offset = t.footer_offset;
        if footer_offset < HEADER_LEN as u64
            || footer_offset.checked_add(t.footer_len) != Some((len - TRAILER_LEN) as u64)
        {
            return Err(Error::corrupt(format!(
                "segment footer at offset={footer_offset} len={} does not end at the trailer",
                t.footer_len
            )));
        }
        let fo = usize::try_from(footer_offset).expect("below len");
        let footer = &bytes[fo..len - TRAILER_LEN];
        if crc32c::crc32c(footer) != t.footer_crc {
            return Err(Error::corrupt("segment footer checksum mismatch"));
        }
        if verify == Verify::Full && crc32c::crc32c(&bytes[HEADER_LEN..fo]) != t.body_crc {
            return Err(Error::corrupt("segment body checksum mismatch"));
        }
        let meta = decode_meta(footer, t.version)?;
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
        let (written, times) = Self::check_written(&bytes, &meta, footer_offset)?;
        let mut layouts = Vec::with_capacity(meta.columns.len());
        let mut var = Vec::new();
        let mut lists = Vec::new();
        let mut sparse_bits: Vec<(usize, usize)> = Vec::new();
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
                (storage @ Storage::List { .. }, _) => {
                    lists.push(open_list(&bytes, c, rows, footer_offset, storage)?);
                    layouts.push(Layout::List(lists.len() - 1));
                }
                (Storage::Sparse { width }, Some(w))
                    if usize::from(width) == w && c.null_bit.is_some() =>
                {
                    let bit = c.null_bit.expect("matched") as usize;
                    sparse_bits.push((bit, w));
                    layouts.push(Layout::Sparse { bit, width: w });
                }
                (Storage::Fixed { offset, width }, Some(w)) if usize::from(width) == w => {
                    let offset = offset as usize;
                    if offset + w > validity_offset || !offset.is_multiple_of(w) {
                        return Err(Error::corrupt(format!(
                            "column {:?} at row offset={offset} is misaligned or overlaps",
                            c.name
                        )));
                    }
                    layouts.push(Layout::Fixed { offset, width: w });
                }
                (Storage::Inline { offset, width }, None) if c.dtype.is_bytes() => {
                    let (offset, width) = (offset as usize, usize::from(width));
                    if width > MAX_INLINE || offset + 1 + width > validity_offset {
                        return Err(Error::corrupt(format!(
                            "column {:?} inline at row offset={offset} width={width} overlaps",
                            c.name
                        )));
                    }
                    layouts.push(Layout::Inline { offset, width });
                }
                (
                    Storage::Var {
                        offsets,
                        data,
                        offset_width,
                    },
                    None,
                ) if c.dtype.is_bytes() => {
                    let what = format!("column {:?}", c.name);
                    let off = sub(&bytes, offsets, footer_offset, &what)?;
                    let data = sub(&bytes, data, footer_offset, &what)?;
                    VarColumn::check(&what, &off, offset_width, rows, Some(data.len() as u64))?;
                    let wide = offset_width == 8;
                    layouts.push(Layout::Var(var.len()));
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
        let sparse = Self::open_sparse(
            &bytes,
            &meta,
            footer_offset,
            &row_block,
            (row_width, validity_offset),
            sparse_bits,
        )?;
        let key = meta.key_column as usize;
        let key_layout = match (meta.columns.get(key), layouts.get(key)) {
            (Some(c), Some(l))
                if matches!(l, Layout::Inline { .. } | Layout::Var(_)) && c.null_bit.is_none() =>
            {
                *l
            }
            _ => {
                return Err(Error::corrupt(
                    "key column is missing, not a byte string or has nulls",
                ));
            }
        };
        // Version 3 seeds its index; versions 1 and 2 hashed with seed 0.
        let algo_fits = match meta.hash_algo {
            index::HASH_XXH3_64 => meta.hash_seed == 0,
            index::HASH_XXH3_64_SEEDED => true,
            _ => false,
        };
        if !algo_fits {
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
            layouts,
            var,
            lists,
            sparse,
            written,
            times,
            key_layout,
            positions: meta
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), i))
                .collect(),
            meta,
        })
    }

    /// Checks the rows' write times: each within the segment's earliest and latest.
    fn check_written(
        bytes: &Bytes,
        meta: &SegmentMeta,
        footer_offset: u64,
    ) -> Result<(WriteTimes, Option<TimeColumn>)> {
        let Some(w) = meta.written else {
            return Ok((WriteTimes::default(), None));
        };
        let bad = |why: &str| Err(Error::corrupt(format!("write times: {why}")));
        let Some(span) = w.max.checked_sub(w.min).filter(|s| *s >= 0) else {
            return bad("the earliest is after the latest");
        };
        let Some(t) = w.rows else {
            if span != 0 {
                return bad("rows of different times without their times");
            }
            return Ok((w, None));
        };
        let width = usize::from(t.width);
        let values = sub(bytes, t.values, footer_offset, "write times")?;
        let dict = sub(bytes, t.dict, footer_offset, "write times")?;
        let rows = meta.rows as usize;
        if width == 8 {
            // Runs: first rows (from 0, increasing, below the row count) and their times.
            let firsts: Vec<u32> = values.chunks_exact(4).map(u32::read_le).collect();
            let ok = values.len() % 4 == 0
                && dict.len() == values.len()
                && firsts.first() == Some(&0)
                && firsts.windows(2).all(|p| p[0] < p[1])
                && firsts.last().is_some_and(|&l| (l as usize) < rows)
                && dict
                    .chunks_exact(4)
                    .all(|c| u64::from(u32::read_le(c)) <= span as u64);
            if !ok {
                return bad("the runs do not fit the rows");
            }
            return Ok((
                w,
                Some(TimeColumn {
                    width,
                    values,
                    dict,
                }),
            ));
        }
        if !matches!(width, 1 | 2 | 4) || values.len() != rows * width {
            return bad("the values do not fit the rows");
        }
        let deltas: Vec<u64> = dict
            .chunks_exact(4)
            .map(|c| u64::from(u32::read_le(c)))
            .collect();
        if (width == 4) != dict.is_empty() || dict.len() % 4 != 0 {
            return bad("the list of times does not fit");
        }
        let fits = |d: u64| d <= span as u64;
        let ok = match width {
            1 => {
                deltas.iter().all(|&d| fits(d))
                    && values.iter().all(|&i| (i as usize) < deltas.len())
            }
            2 => {
                deltas.iter().all(|&d| fits(d))
                    && values
                        .chunks_exact(2)
                        .all(|c| (u16::read_le(c) as usize) < deltas.len())
            }
            _ => values
                .chunks_exact(4)
                .all(|c| fits(u64::from(u32::read_le(c)))),
        };
        if !ok {
            return bad("a row's time is outside the segment's");
        }
        Ok((
            w,
            Some(TimeColumn {
                width,
                values,
                dict,
            }),
        ))
    }

    /// Checks the sparse section: the sparse columns' validity bits are one run, widths never
    /// grow along it, and every row's record lies inside the section.
    fn open_sparse(
        bytes: &Bytes,
        meta: &SegmentMeta,
        footer_offset: u64,
        row_block: &Bytes,
        (row_width, validity_offset): (usize, usize),
        mut bits: Vec<(usize, usize)>,
    ) -> Result<Option<SparseRecords>> {
        let Some(s) = meta.sparse else {
            if bits.is_empty() {
                return Ok(None);
            }
            return Err(Error::corrupt("sparse columns without a sparse section"));
        };
        bits.sort_unstable();
        let contiguous = bits
            .windows(2)
            .all(|p| p[1].0 == p[0].0 + 1 && p[1].1 <= p[0].1);
        let pointer = s.pointer as usize;
        let pw = usize::from(s.pointer_width);
        if bits.is_empty()
            || !contiguous
            || !matches!(pw, 4 | 8)
            || pointer + pw > validity_offset
            || !pointer.is_multiple_of(pw)
        {
            return Err(Error::corrupt(
                "sparse section: columns or record positions do not fit",
            ));
        }
        let records = sub(bytes, s.records, footer_offset, "sparse section")?;
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for &(bit, width) in &bits {
            match runs.last_mut() {
                Some(run) if run.2 == width => run.1 = bit + 1,
                _ => runs.push((bit, bit + 1, width)),
            }
        }
        let sparse = SparseRecords {
            records,
            pointer,
            wide: pw == 8,
            runs,
        };
        let end_bit = bits.last().map_or(0, |b| b.0 + 1);
        for r in 0..meta.rows as usize {
            let row = &row_block[r * row_width..(r + 1) * row_width];
            let validity = &row[validity_offset..];
            let len = sparse.before(validity, end_bit);
            if sparse
                .start(row)
                .checked_add(len)
                .is_none_or(|e| e > sparse.records.len())
            {
                return Err(Error::corrupt(format!(
                    "sparse section: the record of row {r} runs past the section"
                )));
            }
        }
        Ok(Some(sparse))
    }

    /// When row `row` was written, in seconds since the Unix epoch (0 for segments of versions
    /// before 5, which did not record it).
    #[inline]
    pub fn written(&self, row: usize) -> i64 {
        let Some(TimeColumn {
            width,
            values,
            dict,
        }) = &self.times
        else {
            return self.written.min;
        };
        let delta = match width {
            8 => {
                // The last run starting at or before `row`.
                let (mut lo, mut hi) = (0usize, values.len() / 4);
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2;
                    if u32::read_le(&values[mid * 4..mid * 4 + 4]) as usize <= row {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                u32::read_le(&dict[lo * 4..lo * 4 + 4])
            }
            1 => {
                let i = usize::from(values[row]) * 4;
                u32::read_le(&dict[i..i + 4])
            }
            2 => {
                let i = usize::from(u16::read_le(&values[row * 2..row * 2 + 2])) * 4;
                u32::read_le(&dict[i..i + 4])
            }
            _ => u32::read_le(&values[row * 4..row * 4 + 4]),
        };
        self.written.min + i64::from(delta)
    }

    /// When the segment's rows were written: the earliest and the latest.
    pub fn write_times(&self) -> WriteTimes {
        self.written
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

    /// The position of the column with this name.
    pub fn column_position(&self, name: &str) -> Option<usize> {
        self.positions.get(name).copied()
    }

    /// Column `column` (a position in [`SegmentMeta::columns`]).
    ///
    /// # Panics
    /// If `column` is out of range.
    pub fn column(&self, column: usize) -> ColumnView<'_> {
        let meta = &self.meta.columns[column];
        ColumnView {
            view: self,
            layout: self.layouts[column],
            validity: meta
                .null_bit
                .map(|bit| (self.validity_offset + (bit / 8) as usize, 1u8 << (bit % 8))),
            dtype: meta.dtype,
        }
    }

    /// The bytes of row `row`.
    #[inline]
    pub fn row(&self, row: usize) -> &[u8] {
        &self.row_block[row * self.row_width..(row + 1) * self.row_width]
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

    /// The file's bytes that any lookup may read, which the RAM tier keeps resident: header,
    /// key index, offsets sections and footer. Not the row block and not lists' items: a fetch
    /// reads only its rows' parts of those (see [`SegmentView::value_parts`]).
    pub fn lookup_parts(&self) -> Vec<&[u8]> {
        let all = &self.bytes[..];
        let base = all.as_ptr() as usize;
        let mut cold: Vec<(usize, usize)> = self
            .value_parts()
            .map(|p| {
                let start = (p.as_ptr() as usize).saturating_sub(base).min(all.len());
                (start, (start + p.len()).min(all.len()))
            })
            .collect();
        cold.sort_unstable();
        let mut parts = Vec::with_capacity(cold.len() + 1);
        let mut at = 0;
        for (start, end) in cold {
            if start > at {
                parts.push(&all[at..start]);
            }
            at = at.max(end);
        }
        parts.push(&all[at..]);
        parts
    }

    /// The sections a fetch reads only in part, its rows' bytes: the row block and each list
    /// column's items (values, or byte-string data).
    pub fn value_parts(&self) -> impl Iterator<Item = &[u8]> + '_ {
        std::iter::once(&self.row_block[..])
            .chain(self.sparse.iter().map(|s| &s.records[..]))
            .chain(self.lists.iter().map(|l| match &l.items {
                ItemValues::Fixed { values, .. } => &values[..],
                ItemValues::Var(v) => &v.data[..],
            }))
    }

    /// The hash of an encoded key in this segment's index (each segment has its own seed:
    /// hash a key once per segment, or once per seed).
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        index::hash_key(key, self.meta.hash_seed)
    }

    /// The seed of this segment's index hash.
    pub fn hash_seed(&self) -> u64 {
        self.meta.hash_seed
    }

    /// The encoded key of `row`.
    #[inline]
    pub fn key(&self, row: usize) -> &[u8] {
        match self.key_layout {
            Layout::Var(v) => self.var[v].value(row),
            Layout::Inline { offset, width } => inline_value(self.row(row), offset, width),
            Layout::Fixed { .. } | Layout::List(_) | Layout::Sparse { .. } => {
                unreachable!("the key column holds byte strings, checked at open")
            }
        }
    }

    pub(crate) fn index(&self) -> IndexView<'_> {
        let s = self.meta.index_section;
        let slots = &self.bytes[s.offset as usize..(s.offset + s.len) as usize];
        IndexView::new_unchecked(slots, self.meta.index_slot_width, self.meta.index_capacity)
    }
}
