//! Incoming record batches checked against a table's schema and brought to its exact types.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, PrimitiveArray, RecordBatch, new_null_array};
use arrow_schema::{DataType, TimeUnit};
use murr_format::DType;

use super::TableMeta;
use crate::error::{Error, Result};

/// The most bytes one column of one batch may take once its dictionary is expanded: a small
/// dictionary-encoded batch (one long value, many keys) must not make the server allocate
/// gigabytes.
pub(crate) const MAX_EXPANDED_COLUMN_BYTES: usize = 1 << 30;

/// The bytes a dictionary array of strings takes once expanded (an over-estimate for null keys);
/// `None` for other arrays.
fn expanded_bytes(array: &dyn Array) -> Option<usize> {
    let dict = array.as_any_dictionary_opt()?;
    let values = dict.values();
    let lengths: Vec<usize> = match values.data_type() {
        DataType::Utf8 => values
            .as_string::<i32>()
            .offsets()
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .collect(),
        DataType::LargeUtf8 => values
            .as_string::<i64>()
            .offsets()
            .windows(2)
            .map(|w| usize::try_from(w[1] - w[0]).unwrap_or(usize::MAX))
            .collect(),
        DataType::Utf8View => values
            .as_string_view()
            .views()
            .iter()
            .map(|v| (*v as u32) as usize)
            .collect(),
        _ => return None,
    };
    Some(
        dict.normalized_keys()
            .iter()
            .map(|&k| lengths.get(k).copied().unwrap_or(0))
            .fold(0usize, usize::saturating_add),
    )
}

/// Nanoseconds in a unit.
fn nanos(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// Timestamps of unit `from` as `to` (type `want`), when every value converts exactly: no
/// fraction of the coarser unit is dropped, no value overflows. (Parquet has no seconds:
/// pyarrow writes `timestamp[s]` as milliseconds, which then come back as whole seconds.)
fn convert_unit(
    array: &dyn Array,
    from: TimeUnit,
    to: TimeUnit,
    want: &DataType,
) -> std::result::Result<ArrayRef, String> {
    let raw = arrow_cast::cast(array, &DataType::Int64).map_err(|e| e.to_string())?;
    let raw = raw.as_primitive::<Int64Type>();
    let (f, t) = (nanos(from), nanos(to));
    let bad = std::cell::Cell::new(None);
    let converted: PrimitiveArray<Int64Type> = raw.unary_opt(|v| {
        let out = if f >= t {
            v.checked_mul(f / t)
        } else {
            (v % (t / f) == 0).then_some(v / (t / f))
        };
        if out.is_none() && bad.get().is_none() {
            bad.set(Some(v));
        }
        out
    });
    if let Some(v) = bad.get() {
        return Err(format!(
            "the value {v} has no exact equal in the table's unit"
        ));
    }
    arrow_cast::cast(&converted, want).map_err(|e| e.to_string())
}

/// Checks `batch` against the table and returns it with the table's columns, order and types.
///
/// # Errors
/// [`Error::Invalid`] naming the column: one the table does not have (or twice), a type that does
/// not widen losslessly, a missing non-nullable column, or a null in the key or a non-nullable column.
pub(crate) fn normalize(table: &str, meta: &TableMeta, batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = meta.schema();
    let rows = batch.num_rows();
    let incoming = batch.schema();
    // Which incoming column each table column is: one pass, hash lookups (wide tables).
    let mut sources: Vec<Option<&ArrayRef>> = vec![None; schema.columns.len()];
    for (field, array) in incoming.fields().iter().zip(batch.columns()) {
        let Some(p) = meta.position(field.name()) else {
            return Err(Error::invalid(format!(
                "column {:?} is not in table {table:?} (its columns: {})",
                field.name(),
                schema
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if sources[p].replace(array).is_some() {
            return Err(Error::invalid(format!(
                "column {:?} appears twice in the batch",
                field.name()
            )));
        }
    }
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.columns.len());
    for (column, source) in schema.columns.iter().zip(sources) {
        let Some(array) = source else {
            if !column.nullable {
                return Err(Error::invalid(format!(
                    "column {:?} is missing from the batch and is not nullable",
                    column.name
                )));
            }
            arrays.push(new_null_array(&column.dtype.to_arrow(), rows));
            continue;
        };
        let want = column.dtype.to_arrow();
        let array = if array.data_type() == &want {
            Arc::clone(array)
        } else if array.data_type() == &DataType::Null && column.nullable {
            new_null_array(&want, rows)
        } else if let (DataType::Timestamp(from, from_zone), DType::Timestamp(to, to_zone)) =
            (array.data_type(), column.dtype)
            && from_zone.as_deref() == to_zone.map(|z| z.as_str())
        {
            convert_unit(array.as_ref(), *from, to, &want).map_err(|e| {
                Error::invalid(format!(
                    "column {:?}: cannot write {} as {}: {e}",
                    column.name,
                    array.data_type(),
                    column.dtype
                ))
            })?
        } else if !column.strict
            && column.dtype == DType::Float32
            && array.data_type() == &DataType::Float64
        {
            // A column that is not strict takes float64, rounded (beyond float32's range: inf).
            arrow_cast::cast(array, &want).map_err(|e| {
                Error::invalid(format!("column {:?}: float64 to float32: {e}", column.name))
            })?
        } else if column.dtype.widens_from(array.data_type()) {
            if let Some(bytes) = expanded_bytes(array.as_ref())
                && bytes > MAX_EXPANDED_COLUMN_BYTES
            {
                return Err(Error::invalid(format!(
                    "column {:?}: this batch's dictionary expands to {bytes} bytes, more than the limit of {MAX_EXPANDED_COLUMN_BYTES} per column and batch; send smaller batches",
                    column.name
                )));
            }
            // Not `safe`: a value that does not convert is an error, never a null (a list of the
            // wrong length for a fixed-size list, say).
            let options = arrow_cast::CastOptions {
                safe: false,
                ..Default::default()
            };
            arrow_cast::cast_with_options(array, &want, &options).map_err(|e| {
                Error::invalid(format!(
                    "column {:?}: cannot convert {} to {}: {e}",
                    column.name,
                    array.data_type(),
                    column.dtype
                ))
            })?
        } else {
            return Err(Error::invalid(format!(
                "column {:?} has type {}, which does not fit dtype {} without loss",
                column.name,
                array.data_type(),
                column.dtype
            )));
        };
        if array.null_count() > 0 && !column.nullable {
            let row = (0..rows).find(|&r| array.is_null(r)).unwrap_or(0);
            let what = if schema.is_key(&column.name) {
                "key column"
            } else {
                "column"
            };
            return Err(Error::invalid(format!(
                "{what} {:?} is not nullable but has a null at row {row}",
                column.name
            )));
        }
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::clone(meta.arrow_schema()), arrays)
        .map_err(|e| Error::Internal(format!("normalized batch: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widens(from: &DataType, to: DType) -> bool {
        to.widens_from(from)
    }

    #[test]
    fn widening_is_lossless_only() {
        assert!(widens(&DataType::Int32, DType::Int64));
        assert!(widens(&DataType::Float32, DType::Float64));
        assert!(widens(&DataType::LargeUtf8, DType::Utf8));
        assert!(widens(&DataType::Utf8View, DType::Utf8));
        assert!(widens(&DataType::UInt32, DType::Int64));
        assert!(!widens(&DataType::Int64, DType::Int32));
        assert!(!widens(&DataType::Float64, DType::Float32));
        assert!(!widens(&DataType::Int32, DType::Float32));
        assert!(!widens(&DataType::Int64, DType::Float64));
        assert!(!widens(&DataType::UInt64, DType::Int64));
        assert!(!widens(&DataType::Int8, DType::UInt64));
        assert!(!widens(&DataType::Utf8, DType::Int64));
        assert!(!widens(&DataType::Int8, DType::Bool));
        let list =
            |t: DataType| DataType::List(Arc::new(arrow_schema::Field::new("element", t, true)));
        let dtype = |s: &str| s.parse::<DType>().expect("a type");
        assert!(widens(&DataType::LargeBinary, DType::Binary));
        assert!(widens(&DataType::BinaryView, DType::Binary));
        assert!(!widens(&DataType::Utf8, DType::Binary));
        assert!(widens(&list(DataType::Int32), dtype("list<int64>")));
        assert!(widens(
            &list(DataType::Float32),
            dtype("fixed_size_list<float32, 8>")
        ));
        assert!(widens(
            &list(DataType::Float16),
            dtype("fixed_size_list<float32, 8>")
        ));
        assert!(!widens(
            &list(DataType::Float64),
            dtype("fixed_size_list<float32, 8>")
        ));
        assert!(!widens(&DataType::Float32, dtype("list<float32>")));
        let utc = dtype("timestamp[us, UTC]");
        assert!(widens(&utc.to_arrow(), utc));
        assert!(!widens(
            &dtype("timestamp[us, Europe/Paris]").to_arrow(),
            utc
        ));
        assert!(!widens(&dtype("timestamp[us]").to_arrow(), utc));
        assert!(!widens(&dtype("timestamp[ms, UTC]").to_arrow(), utc));
        assert!(!widens(&DataType::Date32, utc));
        assert!(!widens(&DataType::Float32, DType::Float16));
    }

    #[test]
    fn timestamp_units_convert_only_exactly() {
        let ms =
            arrow_array::TimestampMillisecondArray::from(vec![Some(3_000), None, Some(-5_000)]);
        let want = DataType::Timestamp(TimeUnit::Second, None);
        let s = convert_unit(&ms, TimeUnit::Millisecond, TimeUnit::Second, &want).expect("exact");
        assert_eq!(
            s.as_primitive::<arrow_array::types::TimestampSecondType>()
                .iter()
                .collect::<Vec<_>>(),
            [Some(3), None, Some(-5)]
        );
        let err = convert_unit(
            &arrow_array::TimestampMillisecondArray::from(vec![1_500]),
            TimeUnit::Millisecond,
            TimeUnit::Second,
            &want,
        )
        .expect_err("a fraction");
        assert!(err.contains("1500"), "{err}");
        let ns = DataType::Timestamp(TimeUnit::Nanosecond, None);
        assert!(
            convert_unit(
                &arrow_array::TimestampSecondArray::from(vec![i64::MAX / 10]),
                TimeUnit::Second,
                TimeUnit::Nanosecond,
                &ns
            )
            .is_err()
        );
        let us = convert_unit(
            &arrow_array::TimestampSecondArray::from(vec![2]),
            TimeUnit::Second,
            TimeUnit::Microsecond,
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )
        .expect("exact");
        assert_eq!(
            us.as_primitive::<arrow_array::types::TimestampMicrosecondType>()
                .value(0),
            2_000_000
        );
    }
}
