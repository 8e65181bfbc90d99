//! Parquet uploads: read only what the table can take, and refuse files whose data would decode
//! to far more memory than the file takes (compression and dictionary bombs).

use std::fs::File;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::basic::Encoding;

use crate::error::{ApiError, ApiResult};

/// The most uncompressed bytes one row group (or one of its column chunks) may declare: a
/// row group is decoded at once, so this bounds what a small, highly compressed file can make
/// the server allocate.
pub(crate) const MAX_ROW_GROUP_BYTES: i64 = 2 << 30;

/// Rows per decoded batch.
pub(crate) const BATCH_ROWS: usize = 64 * 1024;

fn invalid(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid Parquet file: {e}"))
}

/// A reader of `file`'s record batches for `table`, after [`checked`] has looked at its footer.
///
/// # Errors
/// 400 naming the column, the row group or what the reader refused.
pub(crate) fn reader(
    file: File,
    table: &str,
    columns: &[&str],
) -> ApiResult<ParquetRecordBatchReader> {
    let meta =
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| invalid(&e))?;
    let file_len = file.metadata().map_or(u64::MAX, |m| m.len());
    let meta = checked(&meta, file_len, table, columns)?;
    ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| invalid(&e))
}

/// How to read a Parquet file of `file_len` bytes whose footer is `meta` into `table`, after
/// checking from the footer alone that every column is one of the table's (`columns`), that
/// every column chunk lies inside the file, and that no row group declares more uncompressed
/// data than [`MAX_ROW_GROUP_BYTES`]. String columns that the file dictionary-encodes are read
/// as dictionaries, so that what they expand to is checked (by the table's input validation)
/// before they are expanded.
///
/// # Errors
/// 400 naming the column, the row group or what the reader refused.
pub(crate) fn checked(
    meta: &ArrowReaderMetadata,
    file_len: u64,
    table: &str,
    columns: &[&str],
) -> ApiResult<ArrowReaderMetadata> {
    let schema = meta.schema();
    if let Some(extra) = schema
        .fields()
        .iter()
        .find(|f| !columns.contains(&f.name().as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "column {:?} of the Parquet file is not in table {table:?} (its columns: {})",
            extra.name(),
            columns.join(", ")
        )));
    }
    let parquet = meta.metadata();
    let file_len = i64::try_from(file_len).unwrap_or(i64::MAX);
    for (i, group) in parquet.row_groups().iter().enumerate() {
        // Where each column chunk lies: the reader asserts (panics) on negative values.
        for (c, chunk) in group.columns().iter().enumerate() {
            let start = chunk
                .dictionary_page_offset()
                .unwrap_or(chunk.data_page_offset());
            let len = chunk.compressed_size();
            if start < 0 || len < 0 || start.checked_add(len).is_none_or(|end| end > file_len) {
                return Err(invalid(&format_args!(
                    "row group {i}, column {c} lies at offset {start}, {len} bytes long, outside the file of {file_len} bytes"
                )));
            }
        }
        let chunks = group.columns().iter().map(|c| c.uncompressed_size());
        let declared = chunks.clone().try_fold(0i64, |sum, size| {
            (size >= 0).then(|| sum.saturating_add(size))
        });
        match declared {
            Some(bytes) if bytes <= MAX_ROW_GROUP_BYTES => {}
            Some(bytes) => {
                return Err(ApiError::bad_request(format!(
                    "Parquet row group {i} holds {bytes} bytes of uncompressed data, more than the limit of {MAX_ROW_GROUP_BYTES} per row group: write the file with smaller row groups"
                )));
            }
            None => {
                return Err(invalid(&format_args!(
                    "row group {i} declares a negative size"
                )));
            }
        }
    }
    // Which top-level columns are dictionary-encoded strings somewhere in the file.
    let leaves = parquet.file_metadata().schema_descr();
    let dictionary = |name: &str| {
        parquet.row_groups().iter().any(|g| {
            g.columns().iter().enumerate().any(|(c, chunk)| {
                leaves.column(c).path().parts().first().map(String::as_str) == Some(name)
                    && chunk
                        .encodings()
                        .any(|e| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY))
            })
        })
    };
    let hinted: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View if dictionary(f.name()) => {
                f.as_ref().clone().with_data_type(DataType::Dictionary(
                    Box::new(DataType::Int32),
                    Box::new(f.data_type().clone()),
                ))
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    let hint = Arc::new(Schema::new_with_metadata(hinted, schema.metadata().clone()));
    ArrowReaderMetadata::try_new(
        Arc::clone(parquet),
        ArrowReaderOptions::new().with_schema(hint),
    )
    .map_err(|e| invalid(&e))
}
