//! Rows spread over segments into one Arrow array.

use std::sync::Arc;

use arrow_array::types::{
    ArrowPrimitiveType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{ArrayRef, BooleanArray, PrimitiveArray, StringArray};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use murr_format::{ColumnReader, DType, Native};

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

/// How one segment stores the column.
#[derive(Clone, Copy)]
struct SegColumn {
    reader: Option<ColumnReader>,
    validity: Option<(usize, u8)>,
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
    let cols: Vec<SegColumn> = segments
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
        .collect();
    Ok(match dtype {
        DType::Utf8 => Arc::new(gather_utf8(segments, &cols, locs)?),
        DType::Bool => Arc::new(gather_bool(segments, &cols, locs)),
        DType::Int8 => Arc::new(gather_fixed::<Int8Type>(segments, &cols, locs)),
        DType::Int16 => Arc::new(gather_fixed::<Int16Type>(segments, &cols, locs)),
        DType::Int32 => Arc::new(gather_fixed::<Int32Type>(segments, &cols, locs)),
        DType::Int64 => Arc::new(gather_fixed::<Int64Type>(segments, &cols, locs)),
        DType::UInt8 => Arc::new(gather_fixed::<UInt8Type>(segments, &cols, locs)),
        DType::UInt16 => Arc::new(gather_fixed::<UInt16Type>(segments, &cols, locs)),
        DType::UInt32 => Arc::new(gather_fixed::<UInt32Type>(segments, &cols, locs)),
        DType::UInt64 => Arc::new(gather_fixed::<UInt64Type>(segments, &cols, locs)),
        DType::Float32 => Arc::new(gather_fixed::<Float32Type>(segments, &cols, locs)),
        DType::Float64 => Arc::new(gather_fixed::<Float64Type>(segments, &cols, locs)),
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

#[inline]
fn locate<'a>(
    segments: &'a [Segment],
    cols: &[SegColumn],
    loc: Loc,
) -> Option<(&'a [u8], SegColumn)> {
    if !loc.is_found() {
        return None;
    }
    let col = cols[loc.seg as usize];
    col.reader?;
    let row = segments[loc.seg as usize].view().row(loc.row as usize);
    match col.validity {
        Some((byte, mask)) if row[byte] & mask == 0 => None,
        _ => Some((row, col)),
    }
}

fn gather_fixed<T>(segments: &[Segment], cols: &[SegColumn], locs: &[Loc]) -> PrimitiveArray<T>
where
    T: ArrowPrimitiveType,
    T::Native: Native,
{
    let w = <T::Native as Native>::WIDTH;
    let mut values: Vec<T::Native> = Vec::with_capacity(locs.len());
    let mut nulls = Nulls::new(locs.len());
    for &loc in locs {
        match locate(segments, cols, loc) {
            Some((
                row,
                SegColumn {
                    reader: Some(ColumnReader::Fixed { offset, .. }),
                    ..
                },
            )) => {
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

fn gather_bool(segments: &[Segment], cols: &[SegColumn], locs: &[Loc]) -> BooleanArray {
    let mut values = BooleanBufferBuilder::new(locs.len());
    let mut nulls = Nulls::new(locs.len());
    for &loc in locs {
        match locate(segments, cols, loc) {
            Some((
                row,
                SegColumn {
                    reader: Some(ColumnReader::Fixed { offset, .. }),
                    ..
                },
            )) => {
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

fn gather_utf8(segments: &[Segment], cols: &[SegColumn], locs: &[Loc]) -> Result<StringArray> {
    let mut offsets: Vec<i32> = Vec::with_capacity(locs.len() + 1);
    offsets.push(0);
    let mut data: Vec<u8> = Vec::with_capacity(locs.len() * 16);
    let mut nulls = Nulls::new(locs.len());
    for &loc in locs {
        let value = match locate(segments, cols, loc) {
            Some((
                _,
                SegColumn {
                    reader: Some(ColumnReader::Var(v)),
                    ..
                },
            )) => Some(
                segments[loc.seg as usize]
                    .view()
                    .var_value(v, loc.row as usize),
            ),
            _ => None,
        };
        if let Some(v) = value {
            data.extend_from_slice(v);
        }
        nulls.push(value.is_some());
        let end = i32::try_from(data.len())
            .map_err(|_| Error::Arrow(arrow_schema::ArrowError::OffsetOverflowError(data.len())))?;
        offsets.push(end);
    }
    Ok(StringArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(data),
        nulls.finish(),
    )?)
}
