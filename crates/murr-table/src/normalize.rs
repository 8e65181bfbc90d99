//! Incoming record batches checked against a table's schema and brought to its exact types.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, new_null_array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use murr_format::{DType, TableSchema};
use murr_segment::arrow_type;

use crate::error::{Error, Result};

/// The Arrow schema of stored batches: the table's columns, in order, with its nullability.
pub(crate) fn storage_schema(schema: &TableSchema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(c.dtype), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

/// Whether values of Arrow type `from` fit losslessly into a column of `to`.
pub fn widens(from: &DataType, to: DType) -> bool {
    use DataType as A;
    if from == &arrow_type(to) {
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
pub(crate) fn normalize(
    table: &str,
    schema: &TableSchema,
    target: &SchemaRef,
    batch: &RecordBatch,
) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let incoming = batch.schema();
    for (i, field) in incoming.fields().iter().enumerate() {
        if schema.column(field.name()).is_none() {
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
        }
        if incoming.fields()[..i]
            .iter()
            .any(|f| f.name() == field.name())
        {
            return Err(Error::invalid(format!(
                "column {:?} appears twice in the batch",
                field.name()
            )));
        }
    }
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.columns.len());
    for column in &schema.columns {
        let Some(array) = batch.column_by_name(&column.name) else {
            if !column.nullable {
                return Err(Error::invalid(format!(
                    "column {:?} is missing from the batch and is not nullable",
                    column.name
                )));
            }
            arrays.push(new_null_array(&arrow_type(column.dtype), rows));
            continue;
        };
        let want = arrow_type(column.dtype);
        let array = if array.data_type() == &want {
            Arc::clone(array)
        } else if array.data_type() == &DataType::Null && column.nullable {
            new_null_array(&want, rows)
        } else if widens(array.data_type(), column.dtype) {
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
    RecordBatch::try_new(Arc::clone(target), arrays)
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
