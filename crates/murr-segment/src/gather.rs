//! Rows spread over segments into one Arrow array.

use std::sync::Arc;

use arrow_array::types::{
    ArrowPrimitiveType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{ArrayRef, BooleanArray, PrimitiveArray, StringArray};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use murr_format::{ColumnReader, DType, Native, inline_value};

use crate::{Error, Result, Segment};

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

/// How many narrow rows ahead [`Rows::warm`] prefetches (see `murr_format`'s batched lookups).
const ROW_PREFETCH_DISTANCE: usize = 16;

/// How one segment stores the column.
#[derive(Clone, Copy)]
struct SegColumn {
    reader: Option<ColumnReader>,
    validity: Option<(usize, u8)>,
}

/// The rows of a request, resolved once and shared by every column's gather: the bytes of each
/// requested row and the segment it came from. Resolving reads no row; the rows are read (and
/// their cache misses taken, overlapped) by [`Rows::warm`] or [`gather_columns`].
#[derive(Debug)]
pub struct Rows<'a> {
    locs: &'a [Loc],
    rows: Vec<&'a [u8]>,
    /// The one segment every found row comes from, if there is one.
    single: Option<u32>,
    missing: bool,
    segments: &'a [Segment],
}

impl<'a> Rows<'a> {
    /// Resolves `locs` against `segments`.
    ///
    /// # Panics
    /// If a `Loc` names a segment or row out of range.
    pub fn new(segments: &'a [Segment], locs: &'a [Loc]) -> Rows<'a> {
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
        Rows {
            locs,
            rows,
            single: if mixed { None } else { single },
            missing,
            segments,
        }
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

fn seg_columns(segments: &[Segment], column: &str, dtype: DType) -> Vec<SegColumn> {
    segments
        .iter()
        .map(|s| match s.view().column_position(column) {
            Some(p) if s.view().meta().columns[p].dtype == dtype => SegColumn {
                reader: Some(s.view().reader(p)),
                validity: s.view().validity_mask(p),
            },
            _ => SegColumn {
                reader: None,
                validity: None,
            },
        })
        .collect()
}

/// Builds the arrays of several columns over the same rows, in the order of `columns`.
///
/// Fixed-width columns that every row holds, with no nulls, in one segment (the common case of a
/// compacted table) are copied out block by block of rows: each block's rows are read (one load
/// per cache line, loads the core overlaps) and every such column copied out of them while they
/// are in L1, instead of one pass over all rows per column (a 100-column row spans seven cache
/// lines, 1000 of them do not stay in L1). Otherwise the rows are read once with
/// [`Rows::warm`]. The other columns go through [`gather_rows`], from cache.
///
/// # Errors
/// As [`gather`].
pub fn gather_columns(
    segments: &[Segment],
    rows: &Rows<'_>,
    columns: &[(&str, DType)],
) -> Result<Vec<ArrayRef>> {
    let n = rows.len();
    // (position in `columns`, offset in the row, output values): four-byte columns (float32,
    // int32, uint32: the common case), copied four at a time, and the others.
    let mut dense4: Vec<(usize, usize, Dense)> = Vec::new();
    let mut others: Vec<(usize, usize, Dense)> = Vec::new();
    match rows.single {
        Some(seg) if !rows.missing => {
            let view = segments[seg as usize].view();
            for (i, &(name, dtype)) in columns.iter().enumerate() {
                if dtype == DType::Bool {
                    continue; // bit-packed in Arrow
                }
                let Some(p) = view.column_position(name) else {
                    continue;
                };
                if view.meta().columns[p].dtype != dtype || view.validity_mask(p).is_some() {
                    continue;
                }
                if let ColumnReader::Fixed { offset, width } = view.reader(p) {
                    match width {
                        1 => others.push((i, offset, Dense::W1(vec![0; n]))),
                        2 => others.push((i, offset, Dense::W2(vec![0; n]))),
                        4 => dense4.push((i, offset, Dense::W4(vec![0; n]))),
                        8 => others.push((i, offset, Dense::W8(vec![0; n]))),
                        _ => {}
                    }
                }
            }
            if dense4.is_empty() && others.is_empty() {
                rows.warm();
            } else {
                dense4.sort_by_key(|d| d.1);
                copy_dense(view, rows, &mut dense4, &mut others);
            }
        }
        _ => rows.warm(),
    }
    let mut out: Vec<Option<ArrayRef>> = vec![None; columns.len()];
    for (i, _, values) in dense4.into_iter().chain(others) {
        let buffer = match values {
            Dense::W1(v) => Buffer::from_vec(v),
            Dense::W2(v) => Buffer::from_vec(v),
            Dense::W4(v) => Buffer::from_vec(v),
            Dense::W8(v) => Buffer::from_vec(v),
        };
        out[i] = Some(match columns[i].1 {
            DType::Int8 => primitive::<Int8Type>(buffer, n),
            DType::Int16 => primitive::<Int16Type>(buffer, n),
            DType::Int32 => primitive::<Int32Type>(buffer, n),
            DType::Int64 => primitive::<Int64Type>(buffer, n),
            DType::UInt8 => primitive::<UInt8Type>(buffer, n),
            DType::UInt16 => primitive::<UInt16Type>(buffer, n),
            DType::UInt32 => primitive::<UInt32Type>(buffer, n),
            DType::UInt64 => primitive::<UInt64Type>(buffer, n),
            DType::Float32 => primitive::<Float32Type>(buffer, n),
            DType::Float64 => primitive::<Float64Type>(buffer, n),
            // Not fixed-width in a row: never dense.
            _ => gather_rows(segments, rows, columns[i].0, columns[i].1)?,
        });
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
    rows: &Rows<'_>,
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

fn primitive<T: ArrowPrimitiveType>(buffer: Buffer, n: usize) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::new(
        ScalarBuffer::new(buffer, 0, n),
        None,
    ))
}

/// Builds the array of `column` (of type `dtype`) with one value per entry of `locs`, in order.
/// Missing rows, and segments that lack the column, give nulls.
///
/// # Errors
/// [`Error::Arrow`] when the string data would exceed Arrow's 2 GiB limit of one array.
///
/// # Panics
/// If a `Loc` names a segment or row out of range.
pub fn gather(segments: &[Segment], column: &str, dtype: DType, locs: &[Loc]) -> Result<ArrayRef> {
    let mut arrays = gather_columns(segments, &Rows::new(segments, locs), &[(column, dtype)])?;
    Ok(arrays.remove(0))
}

/// As [`gather`], over rows resolved once with [`Rows::new`] for several columns. The rows are
/// read as they come: call [`Rows::warm`] first (or use [`gather_columns`]) so their misses
/// overlap.
///
/// # Errors
/// As [`gather`].
pub fn gather_rows(
    segments: &[Segment],
    rows: &Rows<'_>,
    column: &str,
    dtype: DType,
) -> Result<ArrayRef> {
    let cols = seg_columns(segments, column, dtype);
    let g = Gather {
        segments,
        cols: &cols,
        rows,
    };
    Ok(match dtype {
        DType::Utf8 => Arc::new(g.utf8()?),
        DType::Bool => Arc::new(g.bool()),
        DType::Int8 => Arc::new(g.fixed::<Int8Type>()),
        DType::Int16 => Arc::new(g.fixed::<Int16Type>()),
        DType::Int32 => Arc::new(g.fixed::<Int32Type>()),
        DType::Int64 => Arc::new(g.fixed::<Int64Type>()),
        DType::UInt8 => Arc::new(g.fixed::<UInt8Type>()),
        DType::UInt16 => Arc::new(g.fixed::<UInt16Type>()),
        DType::UInt32 => Arc::new(g.fixed::<UInt32Type>()),
        DType::UInt64 => Arc::new(g.fixed::<UInt64Type>()),
        DType::Float32 => Arc::new(g.fixed::<Float32Type>()),
        DType::Float64 => Arc::new(g.fixed::<Float64Type>()),
        other => return Err(Error::Invalid(format!("dtype {other} cannot be read yet"))),
    })
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

    fn finish(self) -> Option<NullBuffer> {
        self.builder.map(|mut b| NullBuffer::new(b.finish()))
    }
}

struct Gather<'s, 'r> {
    segments: &'s [Segment],
    cols: &'s [SegColumn],
    rows: &'s Rows<'r>,
}

impl Gather<'_, '_> {
    /// Every row comes from one segment that stores the column at `offset` with no nulls.
    fn dense_offset(&self) -> Option<usize> {
        if self.rows.missing {
            return None;
        }
        match self.rows.single.map(|s| self.cols[s as usize]) {
            Some(SegColumn {
                reader: Some(ColumnReader::Fixed { offset, .. }),
                validity: None,
            }) => Some(offset),
            _ => None,
        }
    }

    /// The row of entry `i` and how its segment stores the column, or `None` for a null.
    #[inline]
    fn at(&self, i: usize) -> Option<(&[u8], ColumnReader)> {
        let loc = self.rows.locs[i];
        if !loc.is_found() {
            return None;
        }
        let col = self.cols[loc.seg as usize];
        let reader = col.reader?;
        let row = self.rows.rows[i];
        match col.validity {
            Some((byte, mask)) if row[byte] & mask == 0 => None,
            _ => Some((row, reader)),
        }
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
        let mut values: Vec<T::Native> = Vec::with_capacity(n);
        let mut nulls = Nulls::new(n);
        for i in 0..n {
            match self.at(i) {
                Some((row, ColumnReader::Fixed { offset, .. })) => {
                    values.push(<T::Native as Native>::read_le(&row[offset..offset + w]));
                    nulls.push(true);
                }
                _ => {
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
        for i in 0..n {
            match self.at(i) {
                Some((row, ColumnReader::Fixed { offset, .. })) => {
                    values.append(row[offset] != 0);
                    nulls.push(true);
                }
                _ => {
                    values.append(false);
                    nulls.push(false);
                }
            }
        }
        BooleanArray::new(values.finish(), nulls.finish())
    }

    fn utf8(&self) -> Result<StringArray> {
        let n = self.rows.len();
        let mut offsets: Vec<i32> = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut data: Vec<u8> = Vec::with_capacity(n * 16);
        let mut nulls = Nulls::new(n);
        for i in 0..n {
            let value = match self.at(i) {
                Some((row, ColumnReader::Inline { offset, width })) => {
                    Some(inline_value(row, offset, width))
                }
                Some((_, reader @ ColumnReader::Var(_))) => {
                    let loc = self.rows.locs[i];
                    Some(
                        self.segments[loc.seg as usize]
                            .view()
                            .str_value(reader, loc.row as usize),
                    )
                }
                _ => None,
            };
            if let Some(v) = value {
                data.extend_from_slice(v);
            }
            nulls.push(value.is_some());
            let end = i32::try_from(data.len()).map_err(|_| {
                Error::Arrow(arrow_schema::ArrowError::OffsetOverflowError(data.len()))
            })?;
            offsets.push(end);
        }
        Ok(StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(data),
            nulls.finish(),
        )?)
    }
}
