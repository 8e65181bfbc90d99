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

/// How many rows ahead [`Rows::new`] prefetches (see `murr_format`'s batched lookups).
const ROW_PREFETCH_DISTANCE: usize = 16;

/// How one segment stores the column.
#[derive(Clone, Copy)]
struct SegColumn {
    reader: Option<ColumnReader>,
    validity: Option<(usize, u8)>,
}

/// The rows of a request, resolved once and shared by every column's gather: the bytes of each
/// requested row (this is where a fetch takes its cache misses, in one pass with no dependency
/// between keys) and the segment it came from.
#[derive(Debug)]
pub struct Rows<'a> {
    locs: &'a [Loc],
    rows: Vec<&'a [u8]>,
    /// The one segment every found row comes from, if there is one.
    single: Option<u32>,
    missing: bool,
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
        // Each row is read once here (its first byte), with the rows a few keys ahead prefetched,
        // so that the misses overlap and every column's gather then reads from cache.
        let prefetch_loc = |loc: &Loc| {
            if loc.is_found() {
                segments[loc.seg as usize]
                    .view()
                    .prefetch_row(loc.row as usize);
            }
        };
        for loc in locs.iter().take(ROW_PREFETCH_DISTANCE) {
            prefetch_loc(loc);
        }
        let rows = locs
            .iter()
            .enumerate()
            .map(|(n, loc)| {
                if let Some(ahead) = locs.get(n + ROW_PREFETCH_DISTANCE) {
                    prefetch_loc(ahead);
                }
                if loc.is_found() {
                    match single {
                        None => single = Some(loc.seg),
                        Some(s) if s != loc.seg => mixed = true,
                        Some(_) => {}
                    }
                    let row = segments[loc.seg as usize].view().row(loc.row as usize);
                    std::hint::black_box((row.first().copied(), row.last().copied()));
                    row
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

/// Builds the array of `column` (of type `dtype`) with one value per entry of `locs`, in order.
/// Missing rows, and segments that lack the column, give nulls.
///
/// # Errors
/// [`Error::Arrow`] when the string data would exceed Arrow's 2 GiB limit of one array.
///
/// # Panics
/// If a `Loc` names a segment or row out of range.
pub fn gather(segments: &[Segment], column: &str, dtype: DType, locs: &[Loc]) -> Result<ArrayRef> {
    gather_rows(segments, &Rows::new(segments, locs), column, dtype)
}

/// As [`gather`], over rows resolved once with [`Rows::new`] for several columns.
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
