//! Rows spread over segments into one Arrow array.

use std::sync::Arc;

use arrow_array::types::{ArrowPrimitiveType, BinaryType, ByteArrayType, Utf8Type};
use arrow_array::{
    ArrayRef, BooleanArray, FixedSizeListArray, GenericByteArray, ListArray, PrimitiveArray,
};
use arrow_buffer::{
    BooleanBuffer, BooleanBufferBuilder, Buffer, MutableBuffer, NullBuffer, OffsetBuffer,
    ScalarBuffer,
};
use arrow_schema::Field;
use murr_format::{ColumnView, DType, ListView, Native, StorageKind};

use crate::{Error, Result, Segment, downcast_dtype};

/// Where a requested row lives: a segment (by position in the slice given to [`gather`]) and a
/// row in it, or nowhere ([`Loc::MISSING`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Position of the segment.
    pub seg: u32,
    /// Row inside the segment.
    pub row: u32,
}

impl Loc {
    /// A key found nowhere: its row is all nulls.
    pub const MISSING: Loc = Loc {
        seg: u32::MAX,
        row: 0,
    };

    /// Whether the key was found.
    #[inline]
    pub fn is_found(self) -> bool {
        self.seg != u32::MAX
    }
}

/// How many narrow rows ahead [`ResolvedRows::warm`] prefetches (see `murr_format`'s batched lookups).
const ROW_PREFETCH_DISTANCE: usize = 16;

/// The rows of a request, resolved once and shared by every column's gather: the bytes of each
/// requested row and the segment it came from. Resolving reads no row; the rows are read (and
/// their cache misses taken, overlapped) by [`ResolvedRows::warm`] or [`gather_columns`].
#[derive(Debug)]
pub struct ResolvedRows<'a> {
    locs: &'a [Loc],
    rows: Vec<&'a [u8]>,
    /// The one segment every found row comes from, if there is one.
    single: Option<u32>,
    missing: bool,
    segments: &'a [Segment],
}

impl<'a> ResolvedRows<'a> {
    /// Resolves `locs` against `segments`.
    ///
    /// # Panics
    /// If a `Loc` names a segment or row out of range.
    pub fn new(segments: &'a [Segment], locs: &'a [Loc]) -> ResolvedRows<'a> {
        let mut single = None;
        let mut mixed = false;
        let mut missing = false;
        let rows = locs
            .iter()
            .map(|loc| {
                if loc.is_found() {
                    match single {
                        None => single = Some(loc.seg),
                        Some(s) if s != loc.seg => mixed = true,
                        Some(_) => {}
                    }
                    segments[loc.seg as usize].view().row(loc.row as usize)
                } else {
                    missing = true;
                    &[][..]
                }
            })
            .collect();
        ResolvedRows {
            locs,
            rows,
            single: if mixed { None } else { single },
            missing,
            segments,
        }
    }

    /// Where each found row starts in its segment's bytes (for the RAM tier's access marks).
    pub fn row_ptrs(&self) -> impl Iterator<Item = *const u8> + '_ {
        self.rows
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| r.as_ptr())
    }

    /// Reads every row once, in order (one load per cache line), each a few rows after its
    /// prefetch: the misses of the rows overlap, and the gathers after it read from cache.
    pub fn warm(&self) {
        // Wide rows span several lines each: prefetch fewer rows ahead.
        let widest = self
            .segments
            .iter()
            .map(|s| s.view().row_width())
            .max()
            .unwrap_or(0);
        let distance = (ROW_PREFETCH_DISTANCE * 64 / widest.max(64)).max(2);
        let prefetch = |n: usize| {
            if let Some(loc) = self.locs.get(n).filter(|l| l.is_found()) {
                self.segments[loc.seg as usize]
                    .view()
                    .prefetch_row(loc.row as usize);
            }
        };
        for n in 0..distance {
            prefetch(n);
        }
        for (n, row) in self.rows.iter().enumerate() {
            prefetch(n + distance);
            touch(std::slice::from_ref(row));
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// The column `column` of `segment`, or `None` when the segment has no such column (it was
/// written before the column existed: its rows read as nulls).
///
/// # Errors
/// [`Error::ColumnType`] when the segment stores the column with another type than `dtype`.
fn column_of<'a>(
    segment: &'a Segment,
    column: &str,
    dtype: DType,
) -> Result<Option<ColumnView<'a>>> {
    let view = segment.view();
    let Some(p) = view.column_position(column) else {
        return Ok(None);
    };
    let col = view.column(p);
    if col.dtype() != dtype {
        return Err(Error::ColumnType {
            path: segment.path().to_string(),
            column: column.to_owned(),
            stored: col.dtype(),
            expected: dtype,
        });
    }
    Ok(Some(col))
}

fn seg_columns<'a>(
    segments: &'a [Segment],
    column: &str,
    dtype: DType,
) -> Result<Vec<Option<ColumnView<'a>>>> {
    segments
        .iter()
        .map(|s| column_of(s, column, dtype))
        .collect()
}

/// Builds the arrays of several columns over the same rows, in the order of `columns`.
///
/// Fixed-width columns that every row holds, with no nulls, in one segment (the common case of a
/// compacted table) are copied out block by block of rows: each block's rows are read (one load
/// per cache line, loads the core overlaps) and every such column copied out of them while they
/// are in L1, instead of one pass over all rows per column (a 100-column row spans seven cache
/// lines, 1000 of them do not stay in L1). Otherwise the rows are read once with
/// [`ResolvedRows::warm`]. The other columns go through [`gather_rows`], from cache.
///
/// # Errors
/// As [`gather`].
pub fn gather_columns(
    segments: &[Segment],
    rows: &ResolvedRows<'_>,
    columns: &[(&str, DType)],
) -> Result<Vec<ArrayRef>> {
    let n = rows.len();
    // (position in `columns`, offset in the row, output values): four-byte columns (float32,
    // int32, uint32: the common case), copied four at a time, and the others.
    let mut dense4: Vec<(usize, usize, Dense)> = Vec::new();
    let mut others: Vec<(usize, usize, Dense)> = Vec::new();
    // Which entries have a row, when some do not (the validity of the dense columns).
    let mut found: Option<NullBuffer> = None;
    match rows.single {
        Some(seg) if !rows.missing => {
            let segment = &segments[seg as usize];
            let view = segment.view();
            // Sparse columns, whose records are prefetched below.
            let mut sparse: Vec<ColumnView<'_>> = Vec::new();
            for (i, &(name, dtype)) in columns.iter().enumerate() {
                let Some(col) = column_of(segment, name, dtype)? else {
                    continue;
                };
                if col.kind() == StorageKind::Sparse {
                    sparse.push(col);
                }
                if dtype == DType::Bool || col.has_nulls() {
                    continue; // bit-packed in Arrow, or not dense
                }
                if let Some(offset) = col.fixed_offset()
                    && let Some(values) = dtype.fixed_width().and_then(|w| Dense::zeroed(w, n))
                {
                    match values {
                        Dense::W4(_) => dense4.push((i, offset, values)),
                        _ => others.push((i, offset, values)),
                    }
                }
            }
            if dense4.is_empty() && others.is_empty() {
                rows.warm();
            } else {
                dense4.sort_by_key(|d| d.1);
                copy_dense(view, rows, &mut dense4, &mut others);
            }
            // Sparse columns: prefetch the records of the rows that have a value among them, in
            // one pass, before the columns are copied out one at a time.
            if let Some(first) = sparse.first() {
                for row in &rows.rows {
                    if sparse.iter().any(|c| c.is_valid(row)) {
                        first.prefetch_sparse_record(row);
                    }
                }
            }
        }
        _ => {
            // Rows of several segments (a table between merges), or keys not found: the
            // columns that every segment holds at a fixed place in its rows, without nulls,
            // are still copied straight out of the rows, each at its own segment's offset; a
            // key not found reads as null. (Through `gather_rows`, each value cost a call into
            // the column's view: 10 columns of 1000 rows took 2.5x a whole fetch's time.)
            rows.warm();
            let mut mixed: Vec<(usize, Vec<usize>, Dense)> = Vec::new();
            for (i, &(name, dtype)) in columns.iter().enumerate() {
                let width = match dtype.fixed_width() {
                    Some(w) if dtype != DType::Bool => w,
                    _ => continue,
                };
                if let Some(offsets) = fixed_offsets(segments, name, dtype)?
                    && let Some(values) = Dense::zeroed(width, n)
                {
                    mixed.push((i, offsets, values));
                }
            }
            if !mixed.is_empty() {
                copy_dense_mixed(rows, &mut mixed);
                if rows.missing {
                    found = Some(NullBuffer::from(
                        rows.locs
                            .iter()
                            .map(|l| l.is_found())
                            .collect::<Vec<bool>>(),
                    ));
                }
                others.extend(mixed.into_iter().map(|(i, _, values)| (i, 0, values)));
            }
        }
    }
    let mut out: Vec<Option<ArrayRef>> = vec![None; columns.len()];
    for (i, _, values) in dense4.into_iter().chain(others) {
        let buffer = match values {
            Dense::W1(v) => Buffer::from_vec(v),
            Dense::W2(v) => Buffer::from_vec(v),
            Dense::W4(v) => Buffer::from_vec(v),
            Dense::W8(v) => Buffer::from_vec(v),
        };
        // Only numeric columns are dense (booleans and strings are never picked above).
        let dtype = columns[i].1;
        let nulls = found.clone();
        out[i] = Some(downcast_dtype!(dtype,
            |T| primitive::<T>(buffer, n, dtype, nulls),
            utf8 => gather_rows(segments, rows, columns[i].0, dtype)?,
            binary => gather_rows(segments, rows, columns[i].0, dtype)?,
            bool => gather_rows(segments, rows, columns[i].0, dtype)?,
            list => gather_rows(segments, rows, columns[i].0, dtype)?,
            other(_d) => gather_rows(segments, rows, columns[i].0, dtype)?,
        ));
    }
    out.into_iter()
        .zip(columns)
        .map(|(array, &(name, dtype))| match array {
            Some(a) => Ok(a),
            None => gather_rows(segments, rows, name, dtype),
        })
        .collect()
}

/// Copies the dense columns out of `rows`, all from `view`, block by block of rows just read,
/// while they are in L1.
fn copy_dense(
    view: &murr_format::SegmentView,
    rows: &ResolvedRows<'_>,
    dense4: &mut [(usize, usize, Dense)],
    others: &mut [(usize, usize, Dense)],
) {
    let n = rows.len();
    let numbers: Vec<u32> = rows.locs.iter().map(|l| l.row).collect();
    for start in (0..n).step_by(BLOCK_ROWS) {
        let end = (start + BLOCK_ROWS).min(n);
        // Load every line of the block's rows first: independent loads that the core overlaps
        // (a column's copy would wait for each line in turn).
        touch(&rows.rows[start..end]);
        let block = &numbers[start..end];
        for quad in dense4.chunks_exact_mut(4) {
            let [
                (_, o0, Dense::W4(a)),
                (_, o1, Dense::W4(b)),
                (_, o2, Dense::W4(c)),
                (_, o3, Dense::W4(d)),
            ] = quad
            else {
                unreachable!("dense4 holds four-byte columns");
            };
            view.copy_fixed4(
                block,
                [*o0, *o1, *o2, *o3],
                [
                    &mut a[start..end],
                    &mut b[start..end],
                    &mut c[start..end],
                    &mut d[start..end],
                ],
            );
        }
        let rest = dense4.len() / 4 * 4;
        for (_, offset, values) in dense4[rest..].iter_mut().chain(others.iter_mut()) {
            match values {
                Dense::W1(v) => view.copy_fixed(block, *offset, &mut v[start..end]),
                Dense::W2(v) => view.copy_fixed(block, *offset, &mut v[start..end]),
                Dense::W4(v) => view.copy_fixed(block, *offset, &mut v[start..end]),
                Dense::W8(v) => view.copy_fixed(block, *offset, &mut v[start..end]),
            }
        }
    }
}

/// Loads one byte of every cache line of `rows` (and each row's last byte: a row may straddle
/// one line more than its width suggests).
#[inline]
fn touch(rows: &[&[u8]]) {
    let mut x = 0u8;
    for row in rows {
        x ^= row.last().copied().unwrap_or(0);
        for b in row.iter().step_by(64) {
            x ^= *b;
        }
    }
    std::hint::black_box(x);
}

/// Rows per block of [`gather_columns`]'s copy: a block's rows, just read, stay in L1 while every
/// column is copied out of them.
const BLOCK_ROWS: usize = 16;

/// The values of a dense column being gathered, by width (Arrow buffers are untyped bytes).
enum Dense {
    W1(Vec<u8>),
    W2(Vec<u16>),
    W4(Vec<u32>),
    W8(Vec<u64>),
}

impl Dense {
    /// `n` zeroes of `width` bytes each, if the width is one a dense column can have.
    fn zeroed(width: usize, n: usize) -> Option<Dense> {
        Some(match width {
            1 => Dense::W1(vec![0; n]),
            2 => Dense::W2(vec![0; n]),
            4 => Dense::W4(vec![0; n]),
            8 => Dense::W8(vec![0; n]),
            _ => return None,
        })
    }
}

/// Where each of `segments` holds column `column` in its rows, if every one of them holds it
/// there without nulls.
fn fixed_offsets(segments: &[Segment], column: &str, dtype: DType) -> Result<Option<Vec<usize>>> {
    let mut offsets = Vec::with_capacity(segments.len());
    for s in segments {
        match column_of(s, column, dtype)? {
            Some(col) if !col.has_nulls() => match col.fixed_offset() {
                Some(o) => offsets.push(o),
                None => return Ok(None),
            },
            _ => return Ok(None),
        }
    }
    Ok(Some(offsets))
}

/// Copies dense columns out of rows that come from several segments: entry `i`'s value is at
/// its segment's offset in its row; entries without a row stay zero.
fn copy_dense_mixed(rows: &ResolvedRows<'_>, columns: &mut [(usize, Vec<usize>, Dense)]) {
    fn fill<const W: usize, T>(
        rows: &ResolvedRows<'_>,
        offsets: &[usize],
        out: &mut [T],
        from: fn([u8; W]) -> T,
    ) {
        for ((loc, row), v) in rows.locs.iter().zip(&rows.rows).zip(out) {
            if loc.is_found() {
                let at = offsets[loc.seg as usize];
                let mut b = [0u8; W];
                b.copy_from_slice(&row[at..at + W]);
                *v = from(b);
            }
        }
    }
    for (_, offsets, values) in columns {
        match values {
            Dense::W1(v) => fill(rows, offsets, v, u8::from_le_bytes),
            Dense::W2(v) => fill(rows, offsets, v, u16::from_le_bytes),
            Dense::W4(v) => fill(rows, offsets, v, u32::from_le_bytes),
            Dense::W8(v) => fill(rows, offsets, v, u64::from_le_bytes),
        }
    }
}

fn primitive<T: ArrowPrimitiveType>(
    buffer: Buffer,
    n: usize,
    dtype: DType,
    nulls: Option<NullBuffer>,
) -> ArrayRef {
    Arc::new(
        PrimitiveArray::<T>::new(ScalarBuffer::new(buffer, 0, n), nulls)
            .with_data_type(dtype.to_arrow()),
    )
}

/// Builds the array of `column` (of type `dtype`) with one value per entry of `locs`, in order.
/// Missing rows, and segments that lack the column, give nulls.
///
/// # Errors
/// [`Error::TooLarge`] when the string data would exceed Arrow's 2 GiB limit of one array;
/// [`Error::ColumnType`] when a segment stores the column with another type.
///
/// # Panics
/// If a `Loc` names a segment or row out of range.
pub fn gather(segments: &[Segment], column: &str, dtype: DType, locs: &[Loc]) -> Result<ArrayRef> {
    let mut arrays = gather_columns(
        segments,
        &ResolvedRows::new(segments, locs),
        &[(column, dtype)],
    )?;
    Ok(arrays.remove(0))
}

/// As [`gather`], over rows resolved once with [`ResolvedRows::new`] for several columns. The rows are
/// read as they come: call [`ResolvedRows::warm`] first (or use [`gather_columns`]) so their misses
/// overlap.
///
/// # Errors
/// As [`gather`].
pub fn gather_rows<'a>(
    segments: &'a [Segment],
    rows: &ResolvedRows<'a>,
    column: &str,
    dtype: DType,
) -> Result<ArrayRef> {
    let cols = seg_columns(segments, column, dtype)?;
    let g = Gather {
        column,
        cols: &cols,
        rows,
    };
    Ok(downcast_dtype!(dtype,
        |T| Arc::new(g.fixed::<T>().with_data_type(dtype.to_arrow())) as ArrayRef,
        utf8 => Arc::new(g.bytes::<Utf8Type>()?),
        binary => Arc::new(g.bytes::<BinaryType>()?),
        bool => Arc::new(g.bool()),
        list => g.list(dtype)?,
        other(d) => return Err(Error::Invalid(format!("dtype {d} cannot be read yet"))),
    ))
}

/// Validity of the rows so far, materialised only once a null shows up.
struct Nulls {
    builder: Option<BooleanBufferBuilder>,
    len: usize,
    cap: usize,
}

impl Nulls {
    fn new(cap: usize) -> Self {
        Nulls {
            builder: None,
            len: 0,
            cap,
        }
    }

    #[inline]
    fn push(&mut self, valid: bool) {
        match &mut self.builder {
            Some(b) => b.append(valid),
            None if valid => {}
            None => {
                let mut b = BooleanBufferBuilder::new(self.cap);
                b.append_n(self.len, true);
                b.append(false);
                self.builder = Some(b);
            }
        }
        self.len += 1;
    }

    /// `n` valid entries.
    #[inline]
    fn push_valid(&mut self, n: usize) {
        if let Some(b) = &mut self.builder {
            b.append_n(n, true);
        }
        self.len += n;
    }

    fn finish(self) -> Option<NullBuffer> {
        self.builder.map(|mut b| NullBuffer::new(b.finish()))
    }
}

struct Gather<'s, 'r> {
    column: &'s str,
    cols: &'s [Option<ColumnView<'r>>],
    rows: &'s ResolvedRows<'r>,
}

impl<'r> Gather<'_, 'r> {
    /// Every row comes from one segment that stores the column in its rows with no nulls: the
    /// column's offset there.
    fn dense_offset(&self) -> Option<usize> {
        if self.rows.missing {
            return None;
        }
        let col = self.cols[self.rows.single? as usize]?;
        if col.has_nulls() {
            return None;
        }
        col.fixed_offset()
    }

    /// The row of entry `i` (its number and bytes) and how its segment stores the column, or
    /// `None` for a null.
    #[inline]
    fn at(&self, i: usize) -> Option<(usize, &'r [u8], ColumnView<'r>)> {
        let loc = self.rows.locs[i];
        if !loc.is_found() {
            return None;
        }
        let col = self.cols[loc.seg as usize]?;
        let row = self.rows.rows[i];
        col.is_valid(row).then_some((loc.row as usize, row, col))
    }

    fn fixed<T>(&self) -> PrimitiveArray<T>
    where
        T: ArrowPrimitiveType,
        T::Native: Native,
    {
        let w = <T::Native as Native>::WIDTH;
        let n = self.rows.len();
        if let Some(offset) = self.dense_offset() {
            let values: Vec<T::Native> = self
                .rows
                .rows
                .iter()
                .map(|row| <T::Native as Native>::read_le(&row[offset..offset + w]))
                .collect();
            return PrimitiveArray::new(ScalarBuffer::from(values), None);
        }
        let tiered = murr_directory::residency::active();
        if let (Some(seg), false) = (self.rows.single, self.rows.missing)
            && let Some(col) = self.cols[seg as usize]
        {
            // Every row from one segment (a compacted table): one column view, the validity
            // bits set straight into a bitmap (a mostly-null or sparse column is mostly this
            // test).
            let mut values = vec![T::Native::default(); n];
            let mut bits = vec![0u8; n.div_ceil(8)];
            let mut valid = 0usize;
            for (i, row) in self.rows.rows.iter().enumerate() {
                if col.is_valid(row) {
                    if tiered && let Some(p) = col.sparse_ptr(row) {
                        murr_directory::residency::touch(p);
                    }
                    values[i] = col.fixed::<T::Native>(row);
                    bits[i / 8] |= 1 << (i % 8);
                    valid += 1;
                }
            }
            let nulls = (valid < n)
                .then(|| NullBuffer::new(BooleanBuffer::new(Buffer::from_vec(bits), 0, n)));
            return PrimitiveArray::new(ScalarBuffer::from(values), nulls);
        }
        let mut values: Vec<T::Native> = Vec::with_capacity(n);
        let mut nulls = Nulls::new(n);
        for i in 0..n {
            match self.at(i) {
                Some((_, row, col)) => {
                    if tiered && let Some(p) = col.sparse_ptr(row) {
                        murr_directory::residency::touch(p);
                    }
                    values.push(col.fixed::<T::Native>(row));
                    nulls.push(true);
                }
                None => {
                    values.push(T::Native::default());
                    nulls.push(false);
                }
            }
        }
        PrimitiveArray::new(ScalarBuffer::from(values), nulls.finish())
    }

    fn bool(&self) -> BooleanArray {
        let n = self.rows.len();
        let mut values = BooleanBufferBuilder::new(n);
        let mut nulls = Nulls::new(n);
        let tiered = murr_directory::residency::active();
        for i in 0..n {
            match self.at(i) {
                Some((_, row, col)) => {
                    if tiered && let Some(p) = col.sparse_ptr(row) {
                        murr_directory::residency::touch(p);
                    }
                    values.append(col.fixed::<u8>(row) != 0);
                    nulls.push(true);
                }
                None => {
                    values.append(false);
                    nulls.push(false);
                }
            }
        }
        BooleanArray::new(values.finish(), nulls.finish())
    }

    fn bytes<T: ByteArrayType<Offset = i32>>(&self) -> Result<GenericByteArray<T>> {
        let n = self.rows.len();
        let mut offsets: Vec<i32> = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut data: Vec<u8> = Vec::with_capacity(n * 16);
        let mut nulls = Nulls::new(n);
        for i in 0..n {
            let value = self.at(i).map(|(r, row, col)| col.bytes(r, row));
            if let Some(v) = value {
                data.extend_from_slice(v);
            }
            nulls.push(value.is_some());
            let end = i32::try_from(data.len()).map_err(|_| Error::TooLarge {
                column: self.column.to_owned(),
            })?;
            offsets.push(end);
        }
        Ok(GenericByteArray::<T>::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(data),
            nulls.finish(),
        )?)
    }

    /// A list or fixed-size list column: each row's items copied out in one run (an embedding
    /// is one contiguous copy), item validity only when some item is null.
    fn list(&self, dtype: DType) -> Result<ArrayRef> {
        self.list_within(dtype, MAX_ARRAY_BYTES)
    }

    /// As [`Gather::list`], refusing answers whose items take more than `limit` bytes (a fetch
    /// of many keys of long lists, or one long list asked for many times, must not take the
    /// server's memory).
    fn list_within(&self, dtype: DType, limit: usize) -> Result<ArrayRef> {
        let (item, fixed) = dtype.list_item().expect("a list dtype");
        let fixed = fixed.map(|n| n as usize);
        let n = self.rows.len();
        let estimate = n
            .saturating_mul(fixed.unwrap_or(4))
            .saturating_mul(item.fixed_width().unwrap_or(8));
        let mut items = ItemsOut::new(item, estimate.min(limit));
        let too_large = || Error::TooLarge {
            column: self.column.to_owned(),
        };
        let tiered = murr_directory::residency::active();
        let mut offsets: Vec<i32> = Vec::with_capacity(if fixed.is_some() { 0 } else { n + 1 });
        offsets.push(0);
        let mut nulls = Nulls::new(n);
        // The misses of a row's offsets and of its items are overlapped with other rows':
        // offsets are prefetched a few rows ahead, items (whose place needs the offsets) fewer.
        let list_of = |i: usize| {
            (i < n)
                .then(|| self.at(i))
                .flatten()
                .and_then(|(r, _, col)| Some((r, col.list()?)))
        };
        for i in 0..n {
            if let Some((r, list)) = list_of(i + OFFSETS_AHEAD) {
                list.prefetch_offsets(r);
            }
            if let Some((r, list)) = list_of(i + ITEMS_AHEAD) {
                list.prefetch_items(r);
            }
            let list = self
                .at(i)
                .and_then(|(r, _, col)| Some((r, col.list()?)))
                .map(|(r, list)| {
                    let (a, b) = list.range(r);
                    (list, a, b)
                })
                // A fixed-size list of the wrong length (a corrupt file) reads as null.
                .filter(|&(_, a, b)| fixed.is_none_or(|len| b - a == len));
            match list {
                Some((list, a, b)) => {
                    if items.values.len() + list.item_range_bytes(a, b).len() > limit {
                        return Err(too_large());
                    }
                    if tiered {
                        // The RAM tier evicts items by page: mark the pages this list reads.
                        let bytes = list.item_range_bytes(a, b);
                        murr_directory::residency::touch_all(
                            bytes
                                .iter()
                                .step_by(4096)
                                .chain(bytes.last())
                                .map(std::ptr::from_ref),
                        );
                    }
                    items.extend(list, a, b);
                    nulls.push(true);
                }
                None => {
                    if let Some(len) = fixed {
                        if items.values.len() + len * item.fixed_width().unwrap_or(0) > limit {
                            return Err(too_large());
                        }
                        items.push_zeros(len);
                    }
                    nulls.push(false);
                }
            }
            if fixed.is_none() {
                offsets.push(i32::try_from(items.len).map_err(|_| Error::TooLarge {
                    column: self.column.to_owned(),
                })?);
            }
        }
        let values = items.finish(self.column)?;
        let field = Arc::new(Field::new_list_field(item.to_arrow(), true));
        Ok(match fixed {
            Some(len) => Arc::new(FixedSizeListArray::try_new(
                field,
                i32::try_from(len).expect("at most MAX_FIXED_LIST_LEN"),
                values,
                nulls.finish(),
            )?),
            None => Arc::new(ListArray::try_new(
                field,
                OffsetBuffer::new(ScalarBuffer::from(offsets)),
                values,
                nulls.finish(),
            )?),
        })
    }
}

/// The most bytes of values one answer column may hold (Arrow's 32-bit offsets bound strings and
/// list items there anyway).
const MAX_ARRAY_BYTES: usize = i32::MAX as usize;

/// How many rows ahead [`Gather::list`] prefetches a row's list offsets, and its items.
const OFFSETS_AHEAD: usize = 16;
const ITEMS_AHEAD: usize = 8;

/// The items of a list column being gathered: fixed-width items' bytes (booleans one byte
/// each), or byte strings' offsets and data; validity made at the first null item.
struct ItemsOut {
    item: DType,
    width: Option<usize>,
    values: MutableBuffer,
    offsets: Vec<i32>,
    too_large: bool,
    nulls: Nulls,
    len: usize,
}

impl ItemsOut {
    fn new(item: DType, items: usize) -> ItemsOut {
        let width = item.fixed_width();
        ItemsOut {
            item,
            width,
            values: MutableBuffer::with_capacity(items * width.unwrap_or(8)),
            offsets: if width.is_some() { Vec::new() } else { vec![0] },
            too_large: false,
            nulls: Nulls::new(items),
            len: 0,
        }
    }

    #[inline]
    fn extend(&mut self, list: ListView<'_>, a: usize, b: usize) {
        match list.fixed_values() {
            Some((values, w)) => self.values.extend_from_slice(&values[a * w..b * w]),
            None => {
                for i in a..b {
                    self.values.extend_from_slice(list.item_bytes(i));
                    match i32::try_from(self.values.len()) {
                        Ok(end) => self.offsets.push(end),
                        Err(_) => {
                            self.too_large = true;
                            self.offsets.push(0);
                        }
                    }
                }
            }
        }
        if list.has_item_nulls() || self.nulls.builder.is_some() {
            for i in a..b {
                self.nulls.push(list.item_valid(i));
            }
        } else {
            self.nulls.push_valid(b - a);
        }
        self.len += b - a;
    }

    fn push_zeros(&mut self, n: usize) {
        match self.width {
            Some(w) => self.values.extend_zeros(n * w),
            None => {
                let end = self.offsets.last().copied().unwrap_or(0);
                self.offsets.extend(std::iter::repeat_n(end, n));
            }
        }
        self.nulls.push_valid(n);
        self.len += n;
    }

    fn finish(self, column: &str) -> Result<ArrayRef> {
        if self.too_large {
            return Err(Error::TooLarge {
                column: column.to_owned(),
            });
        }
        let nulls = self.nulls.finish();
        let len = self.len;
        let values: Buffer = self.values.into();
        let item = self.item;
        let offsets = || OffsetBuffer::new(ScalarBuffer::from(self.offsets.clone()));
        Ok(downcast_dtype!(item,
            |T| Arc::new(
                PrimitiveArray::<T>::new(ScalarBuffer::new(values, 0, len), nulls)
                    .with_data_type(item.to_arrow()),
            ) as ArrayRef,
            utf8 => Arc::new(GenericByteArray::<Utf8Type>::try_new(offsets(), values, nulls)?),
            binary => Arc::new(GenericByteArray::<BinaryType>::try_new(offsets(), values, nulls)?),
            bool => Arc::new(BooleanArray::new(
                BooleanBuffer::collect_bool(len, |i| values[i] != 0),
                nulls,
            )),
            list => unreachable!("lists do not nest"),
            other(d) => return Err(Error::Invalid(format!("item type {d} cannot be read yet"))),
        ))
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::builder::{FixedSizeListBuilder, Int64Builder, ListBuilder};
    use arrow_array::{Array, RecordBatch, StringArray};
    use murr_directory::FilePath;
    use murr_format::{ColumnDef, TableSchema, Verify};

    use super::*;
    use crate::{Input, encode};

    /// A segment of two keys with one list column of `dtype` holding `column`.
    fn segment(dtype: DType, column: ArrayRef) -> Segment {
        let schema = TableSchema::new(
            "id",
            vec![
                ColumnDef::new("id", DType::Utf8, false),
                ColumnDef::new("l", dtype, true),
            ],
        );
        let batch = RecordBatch::try_from_iter(vec![
            (
                "id",
                Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
            ("l", column),
        ])
        .expect("batch");
        encoded(&schema, &batch)
    }

    /// Every row of `batch` as one segment of `schema`.
    fn encoded(schema: &TableSchema, batch: &RecordBatch) -> Segment {
        let row_ids: Vec<u32> = (0..batch.num_rows() as u32).collect();
        let mut bytes = Vec::new();
        encode(
            schema,
            &[Input {
                batch,
                row_ids: &row_ids,
                written: crate::Written::At(0),
            }],
            &mut bytes,
        )
        .expect("encodes");
        Segment::from_bytes(
            bytes.into(),
            FilePath::new("s").expect("name"),
            Verify::Full,
        )
        .expect("opens")
    }

    /// A segment of keys `keys` with a float32 and an int64 column (no nulls) and a utf8
    /// column, from `base` up.
    fn numbers(keys: &[&str], base: i64) -> Segment {
        let schema = TableSchema::new(
            "id",
            vec![
                ColumnDef::new("id", DType::Utf8, false),
                ColumnDef::new("f", DType::Float32, false),
                ColumnDef::new("n", DType::Int64, false),
                ColumnDef::new("t", DType::Utf8, true),
            ],
        );
        let n = keys.len() as i64;
        let batch = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(StringArray::from(keys.to_vec())) as ArrayRef),
            (
                "f",
                Arc::new(arrow_array::Float32Array::from_iter_values(
                    (base..base + n).map(|v| v as f32 + 0.5),
                )) as ArrayRef,
            ),
            (
                "n",
                Arc::new(arrow_array::Int64Array::from_iter_values(base..base + n)) as ArrayRef,
            ),
            (
                "t",
                Arc::new(StringArray::from_iter_values(
                    (base..base + n).map(|v| format!("t{v}")),
                )) as ArrayRef,
            ),
        ])
        .expect("batch");
        encoded(&schema, &batch)
    }

    /// Rows from two segments and keys not found: the dense columns are copied straight out
    /// of the rows, and hold what the per-value path reads, nulls included.
    #[test]
    fn rows_of_several_segments_and_missing_keys_gather_right() {
        let segments = [numbers(&["a", "b", "c"], 0), numbers(&["d", "e"], 100)];
        let locs = [
            Loc { seg: 1, row: 1 },
            Loc::MISSING,
            Loc { seg: 0, row: 2 },
            Loc { seg: 0, row: 0 },
            Loc::MISSING,
            Loc { seg: 1, row: 0 },
        ];
        let rows = ResolvedRows::new(&segments, &locs);
        let columns = [
            ("n", DType::Int64),
            ("t", DType::Utf8),
            ("f", DType::Float32),
        ];
        let got = gather_columns(&segments, &rows, &columns).expect("gathers");
        let n = got[0]
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .expect("int64");
        let f = got[2]
            .as_any()
            .downcast_ref::<arrow_array::Float32Array>()
            .expect("f32");
        let t = got[1].as_any().downcast_ref::<StringArray>().expect("utf8");
        let expect = [Some(101), None, Some(2), Some(0), None, Some(100)];
        assert_eq!(n.iter().collect::<Vec<_>>(), expect);
        assert_eq!(
            f.iter().collect::<Vec<_>>(),
            expect.map(|v| v.map(|v| v as f32 + 0.5))
        );
        assert_eq!(
            t.iter().map(|v| v.map(str::to_owned)).collect::<Vec<_>>(),
            expect.map(|v| v.map(|v| format!("t{v}")))
        );
        // The same as the per-value path, column by column.
        for (i, &(name, dtype)) in columns.iter().enumerate() {
            let slow = gather_rows(&segments, &rows, name, dtype).expect("gathers");
            assert_eq!(&got[i], &slow, "{name}");
        }
        // One segment with a key not found takes the same path.
        let one = [Loc { seg: 0, row: 1 }, Loc::MISSING];
        let rows = ResolvedRows::new(&segments, &one);
        let got = gather_columns(&segments, &rows, &[("n", DType::Int64)]).expect("gathers");
        let n = got[0]
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .expect("int64");
        assert_eq!(n.iter().collect::<Vec<_>>(), [Some(1), None]);
    }

    /// An answer whose items would pass the limit is refused before it is built, for lists and
    /// for fixed-size lists (a key asked for many times counts each time).
    #[test]
    fn answers_past_the_limit_are_refused() {
        let mut lists = ListBuilder::new(Int64Builder::new());
        lists.values().append_slice(&[1, 2, 3]);
        lists.append(true);
        lists.append(false);
        let mut fixed = FixedSizeListBuilder::new(Int64Builder::new(), 3);
        fixed.values().append_slice(&[1, 2, 3]);
        fixed.append(true);
        fixed.values().append_nulls(3);
        fixed.append(false);
        let list_type = DType::list(DType::Int64).expect("type");
        let fixed_type = DType::fixed_size_list(DType::Int64, 3).expect("type");
        for (dtype, column) in [
            (list_type, Arc::new(lists.finish()) as ArrayRef),
            (fixed_type, Arc::new(fixed.finish()) as ArrayRef),
        ] {
            let segments = [segment(dtype, column)];
            // Key a (24 bytes of items) four times, and b (a null list) once.
            let locs = [0, 0, 1, 0, 0].map(|row| Loc { seg: 0, row });
            let rows = ResolvedRows::new(&segments, &locs);
            let cols = seg_columns(&segments, "l", dtype).expect("columns");
            let g = Gather {
                column: "l",
                cols: &cols,
                rows: &rows,
            };
            let within = if dtype == fixed_type { 5 * 24 } else { 4 * 24 };
            let array = g.list_within(dtype, within).expect("fits");
            assert_eq!(array.len(), 5);
            assert!(array.is_null(2));
            let err = g.list_within(dtype, within - 1).expect_err("too large");
            assert!(matches!(err, Error::TooLarge { .. }), "{err}");
            assert!(err.to_string().contains("2 GiB of values"), "{err}");
        }
    }
}
