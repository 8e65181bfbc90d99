//! Incoming record batches checked against a table's schema and brought to its exact types.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, new_null_array};
use arrow_schema::DataType;
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

/// Whether values of Arrow type `from` fit losslessly into a column of `to`.
fn widens(from: &DataType, to: DType) -> bool {
    use DataType as A;
    if from == &to.to_arrow() {
        return true;
    }
    match to {
        DType::Utf8 => match from {
            A::LargeUtf8 | A::Utf8View => true,
            A::Dictionary(_, value) => matches!(**value, A::Utf8 | A::LargeUtf8 | A::Utf8View),
            _ => false,
        },
        DType::Int16 => matches!(from, A::Int8 | A::UInt8),
        DType::Int32 => matches!(from, A::Int8 | A::Int16 | A::UInt8 | A::UInt16),
        DType::Int64 => matches!(
            from,
            A::Int8 | A::Int16 | A::Int32 | A::UInt8 | A::UInt16 | A::UInt32
        ),
        DType::UInt16 => matches!(from, A::UInt8),
        DType::UInt32 => matches!(from, A::UInt8 | A::UInt16),
        DType::UInt64 => matches!(from, A::UInt8 | A::UInt16 | A::UInt32),
        DType::Float32 => matches!(from, A::Float16 | A::Int8 | A::Int16 | A::UInt8 | A::UInt16),
        DType::Float64 => matches!(
            from,
            A::Float16
                | A::Float32
                | A::Int8
                | A::Int16
                | A::Int32
                | A::UInt8
                | A::UInt16
                | A::UInt32
        ),
        _ => false,
    }
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
        } else if widens(array.data_type(), column.dtype) {
            if let Some(bytes) = expanded_bytes(array.as_ref())
                && bytes > MAX_EXPANDED_COLUMN_BYTES
            {
                return Err(Error::invalid(format!(
                    "column {:?}: this batch's dictionary expands to {bytes} bytes, more than the limit of {MAX_EXPANDED_COLUMN_BYTES} per column and batch; send smaller batches",
                    column.name
                )));
            }
            arrow_cast::cast(array, &want).map_err(|e| {
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
            let what = if column.name == schema.key {
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
    }
}
