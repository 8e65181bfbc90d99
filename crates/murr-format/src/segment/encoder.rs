//! Builds a segment and writes it out: whole, or its rows a window at a time.

use std::io::Write;

use crate::error::{Error, Result};
use crate::index;
use crate::segment::footer::{
    ALIGN, ColumnMeta, FORMAT_VERSION, HEADER_LEN, Items, RowTimes, Section, SegmentMeta,
    SparseMeta, Storage, StorageKind, TRAILER_LEN, Trailer, WriteTimes, encode_meta, header,
};
use crate::segment::layout::{ColumnSpec, RowLayout};
use crate::segment::view::{SegmentView, inline_value};

#[derive(Debug, Default)]
struct VarBuilder {
    offsets: Vec<u64>,
    data: Vec<u8>,
}

/// A list column being filled: item offsets per row, the items, and their validity.
#[derive(Debug)]
struct ListBuilder {
    /// Item offsets: a leading 0, then one per list.
    offsets: Vec<u64>,
    /// Every list's length (fixed-size lists).
    fixed_len: Option<u64>,
    /// Bytes per item (fixed-width items), `None` for byte-string items.
    item_width: Option<usize>,
    /// Fixed-width items' bytes, or byte-string items' data.
    values: Vec<u8>,
    /// Byte-string items' offsets (a leading 0, then one per item).
    item_offsets: Vec<u64>,
    items: u64,
    /// One bit per item, 1 = valid; made at the first null item.
    item_validity: Option<Vec<u8>>,
    null_lists: bool,
}

impl ListBuilder {
    fn mark_item(&mut self, valid: bool) {
        let i = usize::try_from(self.items).expect("in memory");
        self.items += 1;
        match &mut self.item_validity {
            Some(bits) => {
                if i / 8 >= bits.len() {
                    bits.push(0);
                }
                if valid {
                    bits[i / 8] |= 1 << (i % 8);
                }
            }
            None if valid => {}
            None => {
                let mut bits = vec![0xFF; (i + 1).div_ceil(8)];
                // Items from `i` on are not valid yet: clear their bits.
                bits[i / 8] &= (1u8 << (i % 8)) - 1;
                self.item_validity = Some(bits);
            }
        }
    }
}

/// An inline string column being filled: where its slot is and how many rows got a value.
#[derive(Debug, Clone, Copy)]
struct InlineBuilder {
    offset: u32,
    width: u8,
    pushed: usize,
}

/// Builds one segment, then writes it out with [`SegmentEncoder::finish`].
///
/// The encoder chooses each column's storage from its [`ColumnSpec::stats`]. Fixed-width values
/// and validity bits are written straight into the row block ([`SegmentEncoder::rows_mut`]);
/// variable-width values are appended in row order ([`SegmentEncoder::push_var`]), wherever the
/// encoder keeps them. Rows start all-null; set valid bits for the values present.
///
/// The row block is the bulk of a segment. [`SegmentEncoder::new`] holds all of it;
/// [`SegmentEncoder::streaming`] holds a window of rows, which
/// [`SegmentEncoder::flush_rows`] writes out (rows come first in the file) before the next
/// window is filled, so that encoding a large segment (a merge) takes memory for one window,
/// the key index and the sections that follow the rows (variable-width values, lists, sparse
/// records), not for the whole table. Row numbers given to the encoder count from the start of
/// the current window.
#[derive(Debug)]
pub struct SegmentEncoder {
    columns: Vec<ColumnSpec>,
    key: usize,
    rows: usize,
    row_width: usize,
    validity_offset: usize,
    fixed_offsets: Vec<Option<u32>>,
    null_bits: Vec<Option<u32>>,
    /// The current window's rows: `window * row_width` bytes.
    block: Vec<u8>,
    /// Rows the block holds.
    window: usize,
    /// The segment row of the block's first row.
    window_start: usize,
    /// The key index, made at the first flush (once the seed is known) and filled as rows are
    /// written out (taken while rows go into it).
    index: Option<index::Builder>,
    /// Sparse records of the rows written out so far.
    records: Vec<u8>,
    /// Bytes written so far, and the crc32c of those after the header.
    out_pos: u64,
    out_crc: u32,
    var: Vec<Option<VarBuilder>>,
    inline: Vec<Option<InlineBuilder>>,
    lists: Vec<Option<ListBuilder>>,
    /// Per sparse column: its valid values in the current window, in row order.
    sparse: Vec<Option<Vec<u8>>>,
    /// The sparse columns' validity bits, and where each row's record position goes.
    sparse_bits: (u32, u32),
    pointer: Option<(u32, u8)>,
    written: WriteTimes,
    /// Each row's write time, seconds after the earliest (when they differ).
    times: Times,
    /// The first value too long for its inline slot (reported by `finish`).
    overflow: Option<String>,
    hash_seed: u64,
}

impl SegmentEncoder {
    /// An encoder for `rows` rows of these columns; `key` is the position of the key column,
    /// which holds each row's encoded key (see [`crate::KeyCodec`]). The rows were written
    /// between `written.min` and `written.max` (seconds since the Unix epoch): when those
    /// differ, give each row its time with [`SegmentEncoder::set_written`].
    ///
    /// # Errors
    /// [`Error::Invalid`] when the key column does not hold byte strings, a non-nullable column is
    /// said to hold nulls, the row count is too large, or the write times are out of order or
    /// more than 136 years apart.
    pub fn new(
        columns: Vec<ColumnSpec>,
        key: usize,
        rows: usize,
        written: WriteTimes,
    ) -> Result<Self> {
        Self::with_window(columns, key, rows, written, rows)
    }

    /// As [`SegmentEncoder::new`], holding a window of at most `window` rows: fill the window's
    /// rows (numbered from 0), write them with [`SegmentEncoder::flush_rows`], fill the next.
    /// The encoder cannot check that the keys of rows in different windows differ: give it
    /// distinct keys (a merge's are).
    ///
    /// # Errors
    /// As [`SegmentEncoder::new`].
    pub fn streaming(
        columns: Vec<ColumnSpec>,
        key: usize,
        rows: usize,
        written: WriteTimes,
        window: usize,
    ) -> Result<Self> {
        Self::with_window(columns, key, rows, written, window.clamp(1, rows.max(1)))
    }

    fn with_window(
        columns: Vec<ColumnSpec>,
        key: usize,
        rows: usize,
        written: WriteTimes,
        window: usize,
    ) -> Result<Self> {
        let span = written.max.checked_sub(written.min);
        if !span.is_some_and(|s| (0..i64::from(u32::MAX)).contains(&s)) {
            return Err(Error::invalid(format!(
                "write times {} to {} are out of order or too far apart",
                written.min, written.max
            )));
        }
        let Some(k) = columns.get(key) else {
            return Err(Error::invalid("key column position out of range"));
        };
        if !k.dtype.is_bytes() {
            return Err(Error::invalid(format!(
                "key column {:?} is {}: the key column holds encoded keys, byte strings",
                k.name, k.dtype
            )));
        }
        if rows as u64 >= u64::from(u32::MAX) {
            return Err(Error::invalid(format!(
                "a segment holds at most {} rows",
                u32::MAX - 1
            )));
        }
        let layout = RowLayout::compute(&columns, key, rows)?;
        let row_width = layout.row_width as usize;
        let block_len = window
            .min(rows)
            .checked_mul(row_width)
            .ok_or_else(|| Error::invalid("row block too large"))?;
        let mut fixed_offsets = vec![None; columns.len()];
        let mut inline = vec![None; columns.len()];
        let mut var = Vec::with_capacity(columns.len());
        let mut lists = Vec::with_capacity(columns.len());
        let mut sparse = vec![None; columns.len()];
        for (i, kind) in layout.kinds.iter().enumerate() {
            var.push(None);
            lists.push(None);
            match kind {
                StorageKind::Sparse => {
                    let w = columns[i]
                        .dtype
                        .fixed_width()
                        .expect("sparse is fixed-width");
                    sparse[i] = Some(Vec::with_capacity(
                        columns[i].stats.values.min(rows).min(window) * w,
                    ));
                }
                StorageKind::List => {
                    let (item, fixed_len) = columns[i]
                        .dtype
                        .list_item()
                        .expect("list storage is for lists");
                    let mut offsets = Vec::with_capacity(rows + 1);
                    offsets.push(0);
                    let item_width = item.fixed_width();
                    lists[i] = Some(ListBuilder {
                        offsets,
                        fixed_len: fixed_len.map(u64::from),
                        item_width,
                        values: Vec::new(),
                        item_offsets: if item_width.is_none() {
                            vec![0]
                        } else {
                            Vec::new()
                        },
                        items: 0,
                        item_validity: None,
                        null_lists: false,
                    });
                }
                StorageKind::Fixed => fixed_offsets[i] = layout.offsets[i],
                StorageKind::Inline => {
                    inline[i] = Some(InlineBuilder {
                        offset: layout.offsets[i].expect("inline columns have an offset"),
                        width: layout.inline_widths[i],
                        pushed: 0,
                    });
                }
                StorageKind::Var => {
                    let mut offsets = Vec::with_capacity(rows + 1);
                    offsets.push(0);
                    var[i] = Some(VarBuilder {
                        offsets,
                        data: Vec::new(),
                    });
                }
            }
        }
        Ok(SegmentEncoder {
            key,
            rows,
            row_width,
            validity_offset: layout.validity_offset as usize,
            fixed_offsets,
            null_bits: layout.null_bits,
            block: vec![0; block_len],
            window: window.min(rows),
            window_start: 0,
            index: None,
            records: Vec::new(),
            out_pos: 0,
            out_crc: 0,
            var,
            inline,
            lists,
            sparse,
            sparse_bits: layout.sparse_bits,
            pointer: layout.pointer,
            written: WriteTimes::between(written.min, written.max),
            times: if written.min == written.max {
                Times::Same
            } else {
                Times::Runs {
                    runs: Vec::new(),
                    next: 0,
                }
            },
            overflow: None,
            hash_seed: 0,
            columns,
        })
    }

    /// Seeds the key index's hash. Give every segment a random seed: with a known one, keys can
    /// be chosen that all collide in the index. Default 0.
    #[must_use]
    pub fn with_hash_seed(mut self, seed: u64) -> Self {
        assert_eq!(
            self.window_start, 0,
            "the seed is set before any row is written"
        );
        self.hash_seed = seed;
        self
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

    /// The storage the encoder chose for `column`.
    pub fn storage_kind(&self, column: usize) -> StorageKind {
        if self.fixed_offsets[column].is_some() {
            StorageKind::Fixed
        } else if self.inline[column].is_some() {
            StorageKind::Inline
        } else if self.lists[column].is_some() {
            StorageKind::List
        } else if self.sparse[column].is_some() {
            StorageKind::Sparse
        } else {
            StorageKind::Var
        }
    }

    /// The rows the current window holds: all of them unless streaming.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The current window's row block, `window * row_width` bytes.
    pub fn rows_mut(&mut self) -> &mut [u8] {
        &mut self.block
    }

    /// Whether the rows of `view` mean, byte for byte, what this encoder's rows would: the same
    /// columns stored the same way at the same places (fixed-width or inline only, no sparse
    /// records), the same validity bits and row width. Such rows can be copied as they are
    /// ([`SegmentEncoder::copy_rows`]), as a merge of segments written alike does.
    pub fn same_rows(&self, view: &SegmentView) -> bool {
        let meta = view.meta();
        if meta.row_width as usize != self.row_width
            || meta.validity_offset as usize != self.validity_offset
            || meta.sparse.is_some()
            || self.pointer.is_some()
            || meta.key_column as usize != self.key
            || meta.columns.len() != self.columns.len()
        {
            return false;
        }
        self.columns
            .iter()
            .zip(&meta.columns)
            .enumerate()
            .all(|(i, (c, m))| {
                let storage = if let Some(offset) = self.fixed_offsets[i] {
                    c.dtype
                        .fixed_width()
                        .and_then(|w| u8::try_from(w).ok())
                        .map(|width| Storage::Fixed { offset, width })
                } else {
                    self.inline[i].map(|inl| Storage::Inline {
                        offset: inl.offset,
                        width: inl.width,
                    })
                };
                c.name == m.name
                    && c.dtype == m.dtype
                    && self.null_bits[i] == m.null_bit
                    && storage.is_some_and(|s| s == m.storage)
            })
    }

    /// Copies rows `rows` of `view` into the current window's first rows, as they are: call
    /// only when [`SegmentEncoder::same_rows`] holds for `view`. Inline values count as pushed;
    /// set the rows' write times with [`SegmentEncoder::set_written`].
    ///
    /// # Panics
    /// When the rows are more than the window, or a row is out of `view`'s range.
    pub fn copy_rows(&mut self, view: &SegmentView, rows: &[u32]) {
        assert!(rows.len() <= self.window, "rows fit the window");
        let w = self.row_width;
        for (at, &r) in rows.iter().enumerate() {
            self.block[at * w..(at + 1) * w].copy_from_slice(view.row(r as usize));
        }
        for i in self.inline.iter_mut().flatten() {
            i.pushed += rows.len();
        }
    }

    /// Marks a value valid (`row` of the current window). Columns without a validity bit are always valid; this is then a no-op.
    #[inline]
    pub fn set_valid(&mut self, column: usize, row: usize) {
        if let Some(bit) = self.null_bits[column] {
            let at = row * self.row_width + self.validity_offset + (bit / 8) as usize;
            self.block[at] |= 1 << (bit % 8);
        }
    }

    /// Sets the valid value of `row` of a column the encoder stores sparse
    /// ([`SegmentEncoder::storage_kind`]): its little-endian bytes. Call in row order.
    ///
    /// # Panics
    /// If the column is not sparse, or `value` is not one value.
    #[inline]
    pub fn push_sparse(&mut self, column: usize, row: usize, value: &[u8]) {
        let values = self.sparse[column]
            .as_mut()
            .expect("push_sparse on a sparse column");
        assert_eq!(
            Some(value.len()),
            self.columns[column].dtype.fixed_width(),
            "one value"
        );
        values.extend_from_slice(value);
        self.set_valid(column, row);
    }

    /// Sets when `row` (of the current window) was written (seconds since the Unix epoch),
    /// between the times given to [`SegmentEncoder::new`]; without a call, a row reads as
    /// written at the earliest.
    #[inline]
    pub fn set_written(&mut self, row: usize, t: i64) {
        if matches!(self.times, Times::Same) {
            return;
        }
        let row = self.window_start + row;
        if !(self.written.min..=self.written.max).contains(&t) {
            if self.overflow.is_none() {
                self.overflow = Some(format!(
                    "row {row} written at {t}, outside {}..={}",
                    self.written.min, self.written.max
                ));
            }
            return;
        }
        let t = u32::try_from(t - self.written.min).expect("checked in new");
        let row32 = u32::try_from(row).expect("rows fit u32");
        match &mut self.times {
            Times::Same => {}
            Times::Runs { runs, next } if row >= *next => {
                if row > *next {
                    // Rows skipped read as written at the earliest.
                    push_run(runs, u32::try_from(*next).expect("rows fit u32"), 0);
                }
                push_run(runs, row32, t);
                *next = row + 1;
            }
            Times::Runs { runs, next } => {
                // Out of row order: keep a time a row from here on.
                let mut each = Vec::with_capacity(self.rows);
                for_each_time(&closed_runs(runs, *next, self.rows), self.rows, |t| {
                    each.push(t);
                });
                each[row] = t;
                self.times = Times::Rows(each);
            }
            Times::Rows(each) => each[row] = t,
        }
    }

    /// The rows' times as sections store them: `(width, values, dict)`. A merge writes the
    /// rows of each segment it combines in order, so their times come in runs: a run's first
    /// row and time each (width 8, 8 bytes a run, nothing a row), unless the runs are many;
    /// then the distinct times listed once and indexed by 1 or 2 bytes a row, or the time in 4.
    fn time_bytes(&self) -> (u8, Vec<u8>, Vec<u8>) {
        let runs: Vec<(u32, u32)> = match &self.times {
            Times::Same => Vec::new(),
            Times::Runs { runs, next } => closed_runs(runs, *next, self.rows),
            Times::Rows(each) => each
                .iter()
                .enumerate()
                .filter(|&(r, t)| r == 0 || each[r - 1] != *t)
                .map(|(r, &t)| (u32::try_from(r).expect("rows fit u32"), t))
                .collect(),
        };
        let mut distinct: Vec<u32> = runs.iter().map(|&(_, t)| t).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let width: u8 = match distinct.len() {
            0..=256 => 1,
            257..=65_536 => 2,
            _ => 4,
        };
        if runs.len() * 8 <= self.rows * usize::from(width) {
            let mut firsts = Vec::with_capacity(runs.len() * 4);
            let mut times = Vec::with_capacity(runs.len() * 4);
            for (r, t) in runs {
                firsts.extend_from_slice(&r.to_le_bytes());
                times.extend_from_slice(&t.to_le_bytes());
            }
            return (8, firsts, times);
        }
        let mut values = Vec::with_capacity(self.rows * usize::from(width));
        let mut dict = Vec::new();
        if width == 4 {
            for_each_time(&runs, self.rows, |t| {
                values.extend_from_slice(&t.to_le_bytes())
            });
        } else {
            for t in &distinct {
                dict.extend_from_slice(&t.to_le_bytes());
            }
            for_each_time(&runs, self.rows, |t| {
                let i = distinct.binary_search(&t).expect("a distinct time");
                if width == 1 {
                    values.push(u8::try_from(i).expect("<= 256 times"));
                } else {
                    values.extend_from_slice(&u16::try_from(i).expect("<= 65536").to_le_bytes());
                }
            });
        }
        (width, values, dict)
    }

    /// Builds the record of each of the window's first `rows` rows from its sparse values (in
    /// the order of the sparse columns' validity bits), appends it to the records, and writes
    /// its position into the row. Consumes the window's sparse values.
    fn build_records(&mut self, rows: usize) -> Result<()> {
        let Some((pointer, pointer_width)) = self.pointer else {
            return Ok(());
        };
        let (start, end) = self.sparse_bits;
        let by_bit: Vec<usize> = (start..end)
            .map(|b| {
                self.null_bits
                    .iter()
                    .position(|&n| n == Some(b))
                    .expect("every sparse bit has its column")
            })
            .collect();
        let widths: Vec<usize> = by_bit
            .iter()
            .map(|&c| self.columns[c].dtype.fixed_width().expect("fixed"))
            .collect();
        let total: usize = by_bit
            .iter()
            .map(|&c| self.sparse[c].as_ref().map_or(0, Vec::len))
            .sum();
        let mut records = std::mem::take(&mut self.records);
        records.reserve(total);
        let mut cursors = vec![0usize; by_bit.len()];
        for row in 0..rows {
            let at = row * self.row_width;
            let pos = records.len() as u64;
            let ptr = &mut self.block[at + pointer as usize..][..usize::from(pointer_width)];
            if pointer_width == 4 {
                let pos =
                    u32::try_from(pos).map_err(|_| Error::invalid("sparse section too large"))?;
                ptr.copy_from_slice(&pos.to_le_bytes());
            } else {
                ptr.copy_from_slice(&pos.to_le_bytes());
            }
            let validity = at + self.validity_offset;
            // The set bits of the sparse run, byte by byte (most are zero).
            let (first, last) = (start as usize, end as usize);
            for byte in first / 8..last.div_ceil(8) {
                let mut bits = self.block[validity + byte];
                while bits != 0 {
                    let bit = byte * 8 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    if bit < first || bit >= last {
                        continue;
                    }
                    let k = bit - first;
                    let c = by_bit[k];
                    let values = self.sparse[c].as_ref().expect("sparse column");
                    let w = widths[k];
                    let Some(v) = values.get(cursors[k]..cursors[k] + w) else {
                        return Err(Error::invalid(format!(
                            "column {:?} is valid in more rows than it got values",
                            self.columns[c].name
                        )));
                    };
                    records.extend_from_slice(v);
                    cursors[k] += w;
                }
            }
        }
        for (k, &c) in by_bit.iter().enumerate() {
            let values = self.sparse[c].as_mut().expect("sparse column");
            if cursors[k] != values.len() {
                return Err(Error::invalid(format!(
                    "column {:?} got more values than valid rows",
                    self.columns[c].name
                )));
            }
            values.clear();
        }
        self.records = records;
        Ok(())
    }

    /// Writes the window's first `rows` rows out (the header first, before the first rows),
    /// puts their keys into the index, and starts the next window, all-null, after them.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the rows are more than the window or than the segment has left,
    /// a value did not fit, or a key repeats; [`Error::Io`] when the writer fails.
    pub fn flush_rows(&mut self, out: &mut impl Write, rows: usize) -> Result<()> {
        self.flush_rows_resolving(out, rows, |_| None)
    }

    /// As [`SegmentEncoder::flush_rows`], given the keys of the rows of earlier windows:
    /// `earlier(row)` is the key of row `row` (numbered from the segment's first). A key stored
    /// in the rows is gone once its window is written out, so without it a key that repeats
    /// one of an earlier window goes unnoticed; with it, it is refused as any repeat is.
    ///
    /// # Errors
    /// As [`SegmentEncoder::flush_rows`].
    pub fn flush_rows_resolving<'k>(
        &mut self,
        out: &mut impl Write,
        rows: usize,
        earlier: impl Fn(u64) -> Option<&'k [u8]>,
    ) -> Result<()> {
        if let Some(overflow) = self.overflow.take() {
            return Err(Error::invalid(overflow));
        }
        if rows > self.window || self.window_start + rows > self.rows {
            return Err(Error::invalid(format!(
                "{rows} rows flushed from a window of {} at row {} of {}",
                self.window, self.window_start, self.rows
            )));
        }
        self.build_records(rows)?;
        let mut index = match self.index.take() {
            Some(index) => index,
            None => index::Builder::new(self.rows as u64, self.hash_seed)?,
        };
        let inserted = self.index_rows(&mut index, rows, earlier);
        self.index = Some(index);
        inserted?;
        let mut w = SectionWriter::new(out, &mut self.out_pos, &mut self.out_crc);
        if w.pos() == 0 {
            w.write(&header())?;
        }
        w.write(&self.block[..rows * self.row_width])?;
        self.window_start += rows;
        self.block[..rows * self.row_width].fill(0);
        Ok(())
    }

    /// Puts the keys of the window's first `rows` rows into `index`.
    fn index_rows<'k>(
        &self,
        index: &mut index::Builder,
        rows: usize,
        earlier: impl Fn(u64) -> Option<&'k [u8]>,
    ) -> Result<()> {
        // The keys' home slots are prefetched a fixed distance ahead, so that the misses of
        // different keys overlap (a large segment's index is far larger than the cache).
        const AHEAD: usize = 16;
        let hashes: Vec<u64> = (0..rows).map(|r| index.hash(self.key_bytes(r))).collect();
        for h in hashes.iter().take(AHEAD) {
            index.prefetch(*h);
        }
        let (block_start, width) = (self.window_start as u64, self.row_width);
        let (inline, var) = (self.inline[self.key], self.var[self.key].as_ref());
        let block = &self.block;
        for r in 0..rows {
            if let Some(&h) = hashes.get(r + AHEAD) {
                index.prefetch(h);
            }
            let at = block_start + r as u64;
            index.insert_hashed(at, self.key_bytes(r), hashes[r], |at_row| {
                if let Some(keys) = var {
                    return Some(var_value(keys, usize::try_from(at_row).ok()?));
                }
                let i = inline.expect("the key is inline or variable");
                // Rows of earlier windows were written out: only the caller has their keys.
                let Some(r) = at_row.checked_sub(block_start) else {
                    return earlier(at_row);
                };
                let r = usize::try_from(r).ok()?;
                (r < rows).then(|| {
                    inline_value(
                        &block[r * width..(r + 1) * width],
                        i.offset as usize,
                        usize::from(i.width),
                    )
                })
            })?;
        }
        Ok(())
    }

    /// The key of row `r` of the current window.
    fn key_bytes(&self, r: usize) -> &[u8] {
        match (&self.var[self.key], self.inline[self.key]) {
            (Some(keys), _) => var_value(keys, self.window_start + r),
            (None, Some(i)) => inline_value(
                &self.block[r * self.row_width..(r + 1) * self.row_width],
                i.offset as usize,
                usize::from(i.width),
            ),
            (None, None) => unreachable!("the key column holds byte strings, checked in new"),
        }
    }

    /// Appends the next row's value of a variable-width column (`None` = null).
    ///
    /// # Panics
    /// If `column` is fixed-width.
    #[inline]
    pub fn push_var(&mut self, column: usize, value: Option<&[u8]>) {
        if let Some(i) = self.inline[column].as_mut() {
            let row = i.pushed.wrapping_sub(self.window_start);
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
            if row < self.window {
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

    /// Reserves room for `bytes` more bytes of a variable-width column's data (or a list
    /// column's items).
    pub fn reserve_var(&mut self, column: usize, bytes: usize) {
        if let Some(b) = self.var[column].as_mut() {
            b.data.reserve(bytes);
        }
        if let Some(l) = self.lists[column].as_mut() {
            l.values.reserve(bytes);
        }
    }

    fn list(&mut self, column: usize) -> &mut ListBuilder {
        self.lists[column]
            .as_mut()
            .expect("a list call on a list column")
    }

    /// Appends valid fixed-width items to the current row's list of a list column: `bytes`
    /// holds whole little-endian items, back to back.
    ///
    /// # Panics
    /// If `column` is not a list of fixed-width items, or `bytes` is not whole items.
    #[inline]
    pub fn push_items(&mut self, column: usize, bytes: &[u8]) {
        let l = self.list(column);
        let width = l.item_width.expect("push_items on fixed-width items");
        assert!(bytes.len().is_multiple_of(width), "whole items");
        l.values.extend_from_slice(bytes);
        let n = (bytes.len() / width) as u64;
        if l.item_validity.is_some() {
            for _ in 0..n {
                l.mark_item(true);
            }
        } else {
            l.items += n;
        }
    }

    /// Appends one item to the current row's list of a list column (`None` = a null item): a
    /// fixed-width item's little-endian bytes, or a byte string.
    ///
    /// # Panics
    /// If `column` is not a list column, or a fixed-width item has another width.
    #[inline]
    pub fn push_item(&mut self, column: usize, item: Option<&[u8]>) {
        let l = self.list(column);
        match l.item_width {
            Some(width) => match item {
                Some(v) => {
                    assert_eq!(v.len(), width, "one item");
                    l.values.extend_from_slice(v);
                }
                None => l.values.resize(l.values.len() + width, 0),
            },
            None => {
                if let Some(v) = item {
                    l.values.extend_from_slice(v);
                }
                l.item_offsets.push(l.values.len() as u64);
            }
        }
        l.mark_item(item.is_some());
    }

    /// Ends the current row's list of a list column: a valid list of the items pushed since the
    /// last one, or a null list (push no items for it).
    ///
    /// # Panics
    /// If `column` is not a list column.
    #[inline]
    pub fn end_list(&mut self, column: usize, valid: bool) {
        let l = self.list(column);
        let row = l.offsets.len() - 1;
        let start = *l.offsets.last().expect("a leading 0");
        let len = l.items - start;
        let bad = if !valid && len > 0 {
            Some(format!("a null list with {len} items at row {row}"))
        } else if valid && l.fixed_len.is_some_and(|n| n != len) {
            Some(format!(
                "a list of {len} items at row {row}, the type has {}",
                l.fixed_len.unwrap_or(0)
            ))
        } else {
            None
        };
        l.null_lists |= !valid;
        l.offsets.push(l.items);
        if valid {
            self.set_valid(column, row.wrapping_sub(self.window_start));
        }
        if let Some(bad) = bad
            && self.overflow.is_none()
        {
            self.overflow = Some(format!("column {:?}: {bad}", self.columns[column].name));
        }
    }

    /// Builds the key index and writes the whole segment; returns the bytes written.
    ///
    /// # Errors
    /// [`Error::Invalid`] when a variable-width column did not get one value per row, or two rows
    /// share a key; [`Error::Io`] when the writer fails.
    pub fn finish(mut self, out: &mut impl Write) -> Result<u64> {
        if let Some(overflow) = self.overflow.take() {
            return Err(Error::invalid(overflow));
        }
        for (i, (v, inl)) in self.var.iter().zip(&self.inline).enumerate() {
            let got = match (v, inl, &self.lists[i]) {
                (Some(b), _, _) => b.offsets.len() - 1,
                (None, Some(i), _) => i.pushed,
                (None, None, Some(l)) => l.offsets.len() - 1,
                (None, None, None) => continue,
            };
            if got != self.rows {
                return Err(Error::invalid(format!(
                    "column {:?} got {got} values for {} rows",
                    self.columns[i].name, self.rows
                )));
            }
        }
        // The rows not written out yet (all of them, unless streaming).
        let left = self.rows - self.window_start;
        self.flush_rows(out, left)?;
        self.block = Vec::new();
        let index = self.index.take().expect("not taken outside a flush");
        let (slot_width, capacity, index_bytes) = index.finish();
        let records = std::mem::take(&mut self.records);

        let (mut pos, mut crc) = (self.out_pos, self.out_crc);
        let mut w = SectionWriter::new(out, &mut pos, &mut crc);
        let rows_section = Section {
            offset: HEADER_LEN as u64,
            len: (self.rows * self.row_width) as u64,
        };
        let sparse = match self.pointer {
            Some((pointer, pointer_width)) => Some(SparseMeta {
                pointer,
                pointer_width,
                records: w.section(&records)?,
            }),
            None => None,
        };
        drop(records);
        let mut written = self.written;
        if !matches!(self.times, Times::Same) {
            let (width, values, dict) = self.time_bytes();
            written.rows = Some(RowTimes {
                width,
                values: w.section(&values)?,
                dict: w.section(&dict)?,
            });
        }
        let mut metas = Vec::with_capacity(self.columns.len());
        for (i, c) in self.columns.iter().enumerate() {
            let storage = match (&self.var[i], self.inline[i]) {
                (None, None) if self.sparse[i].is_some() => Storage::Sparse {
                    width: u8::try_from(c.dtype.fixed_width().expect("fixed")).expect("small"),
                },
                (None, None) if self.lists[i].is_some() => {
                    let l = self.lists[i].as_ref().expect("checked");
                    // A fixed-size list with no null list needs no offsets: row r's items are
                    // r * N .. (r + 1) * N.
                    let (offsets, offset_width) = if l.fixed_len.is_some() && !l.null_lists {
                        (Section::default(), 0)
                    } else {
                        let (bytes, width) = offset_bytes(&l.offsets, l.items);
                        (w.section(&bytes)?, width)
                    };
                    let item_validity = match &l.item_validity {
                        Some(bits) => w.section(bits)?,
                        None => Section::default(),
                    };
                    let items = match l.item_width {
                        Some(width) => Items::Fixed {
                            values: w.section(&l.values)?,
                            width: u8::try_from(width).expect("small"),
                        },
                        None => {
                            let (bytes, offset_width) =
                                offset_bytes(&l.item_offsets, l.values.len() as u64);
                            Items::Var {
                                offsets: w.section(&bytes)?,
                                data: w.section(&l.values)?,
                                offset_width,
                            }
                        }
                    };
                    Storage::List {
                        offsets,
                        offset_width,
                        item_validity,
                        items,
                    }
                }
                (None, Some(inl)) => Storage::Inline {
                    offset: inl.offset,
                    width: inl.width,
                },
                (None, None) => Storage::Fixed {
                    offset: self.fixed_offsets[i].expect("fixed column has an offset"),
                    width: u8::try_from(c.dtype.fixed_width().expect("fixed")).expect("small"),
                },
                (Some(b), _) => {
                    let (bytes, offset_width) = offset_bytes(&b.offsets, b.data.len() as u64);
                    let offsets = w.section(&bytes)?;
                    let data = w.section(&b.data)?;
                    Storage::Var {
                        offsets,
                        data,
                        offset_width,
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
            hash_algo: index::HASH_XXH3_64_SEEDED,
            hash_seed: self.hash_seed,
            written: Some(written),
            sparse,
            columns: metas,
        };
        let footer = encode_meta(&meta)?;
        let footer_offset = *w.pos;
        let body_crc = *w.crc;
        w.write(&footer)?;
        let trailer = Trailer {
            footer_offset,
            footer_len: footer.len() as u64,
            footer_crc: crc32c::crc32c(&footer),
            body_crc,
            version: FORMAT_VERSION,
        }
        .encode()?;
        debug_assert_eq!(trailer.len(), TRAILER_LEN);
        w.write(&trailer)?;
        Ok(*w.pos)
    }
}

/// Offsets as a section stores them: 4 bytes each when `end` (the last) fits, else 8; and that
/// width.
fn offset_bytes(offsets: &[u64], end: u64) -> (Vec<u8>, u8) {
    let wide = end > u64::from(u32::MAX);
    let mut bytes = Vec::with_capacity(offsets.len() * if wide { 8 } else { 4 });
    for &o in offsets {
        if wide {
            bytes.extend_from_slice(&o.to_le_bytes());
        } else {
            bytes.extend_from_slice(&u32::try_from(o).expect("checked narrow").to_le_bytes());
        }
    }
    (bytes, if wide { 8 } else { 4 })
}

/// Rows' write times as an encoder collects them.
#[derive(Debug)]
enum Times {
    /// Every row at the earliest (no per-row times).
    Same,
    /// Runs of rows of one time, `(first row, time)`, set in row order up to `next` (a merge
    /// writes each input's rows in order: a few runs, nothing a row).
    Runs { runs: Vec<(u32, u32)>, next: usize },
    /// A time a row (set out of row order).
    Rows(Vec<u32>),
}

/// Appends a run starting at `row` unless the last run has the same time.
fn push_run(runs: &mut Vec<(u32, u32)>, row: u32, t: u32) {
    if runs.last().is_none_or(|&(_, last)| last != t) {
        runs.push((row, t));
    }
}

/// Runs covering all `rows` rows, from runs covering rows `0..next` (the rows after read as
/// written at the earliest, 0).
fn closed_runs(runs: &[(u32, u32)], next: usize, rows: usize) -> Vec<(u32, u32)> {
    let mut runs = runs.to_vec();
    if next < rows {
        push_run(&mut runs, u32::try_from(next).expect("rows fit u32"), 0);
    }
    runs
}

/// Calls `f` with each of `rows` rows' time, from runs that cover them all.
fn for_each_time(runs: &[(u32, u32)], rows: usize, mut f: impl FnMut(u32)) {
    for (i, &(first, t)) in runs.iter().enumerate() {
        let end = runs.get(i + 1).map_or(rows, |&(r, _)| r as usize);
        for _ in first as usize..end {
            f(t);
        }
    }
}

/// Value `r` of a variable-width column being built.
fn var_value(b: &VarBuilder, r: usize) -> &[u8] {
    &b.data[usize::try_from(b.offsets[r]).expect("in memory")
        ..usize::try_from(b.offsets[r + 1]).expect("in memory")]
}

/// Writes sections to `out`, keeping the position and the body's crc32c in the encoder.
struct SectionWriter<'a, W: Write> {
    out: &'a mut W,
    pos: &'a mut u64,
    crc: &'a mut u32,
}

impl<'a, W: Write> SectionWriter<'a, W> {
    fn new(out: &'a mut W, pos: &'a mut u64, crc: &'a mut u32) -> Self {
        SectionWriter { out, pos, crc }
    }
    fn pos(&self) -> u64 {
        *self.pos
    }
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes)?;
        if *self.pos >= HEADER_LEN as u64 {
            *self.crc = crc32c::crc32c_append(*self.crc, bytes);
        }
        *self.pos += bytes.len() as u64;
        Ok(())
    }
    fn section(&mut self, bytes: &[u8]) -> Result<Section> {
        let pad =
            usize::try_from(self.pos.next_multiple_of(ALIGN as u64) - *self.pos).expect("< 64");
        self.write(&[0u8; ALIGN][..pad])?;
        let s = Section {
            offset: *self.pos,
            len: bytes.len() as u64,
        };
        self.write(bytes)?;
        Ok(s)
    }
}
