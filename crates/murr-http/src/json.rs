//! JSON bodies: `{"columns": {"<col>": [v, ...]}}` in both directions.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanArray, PrimitiveArray, RecordBatch,
    RecordBatchOptions, StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use murr_api::{DType, TableSchema};
use murr_segment::downcast_dtype;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn values_of<T>(
    column: &str,
    dtype: DType,
    values: &[Value],
    convert: impl Fn(&Value) -> Option<T>,
) -> ApiResult<Vec<Option<T>>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if v.is_null() {
                return Ok(None);
            }
            convert(v).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "column {column:?}: value {v} at index {i} is {} that does not fit dtype {dtype}",
                    kind(v)
                ))
            })
        })
        .collect()
}

/// A number type that JSON values convert to, exactly or refused.
trait FromJson: Sized {
    fn from_json(v: &Value) -> Option<Self>;
}

macro_rules! from_json_int {
    ($($t:ty),*) => {$(
        impl FromJson for $t {
            fn from_json(v: &Value) -> Option<Self> {
                match v.as_i64() {
                    Some(i) => <$t>::try_from(i).ok(),
                    None => v.as_u64().and_then(|u| <$t>::try_from(u).ok()),
                }
            }
        }
    )*};
}
from_json_int!(i8, i16, i32, i64, u8, u16, u32, u64);

impl FromJson for f32 {
    fn from_json(v: &Value) -> Option<Self> {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "JSON numbers are parsed as f64; float32 columns take the nearest float32"
        )]
        let f = v.as_f64()? as f32;
        f.is_finite().then_some(f)
    }
}

impl FromJson for f64 {
    fn from_json(v: &Value) -> Option<Self> {
        v.as_f64()
    }
}

fn primitive<T>(column: &str, dtype: DType, values: &[Value]) -> ApiResult<ArrayRef>
where
    T: ArrowPrimitiveType,
    T::Native: FromJson,
{
    let values = values_of(column, dtype, values, T::Native::from_json)?;
    Ok(Arc::new(values.into_iter().collect::<PrimitiveArray<T>>()))
}

fn array(column: &str, dtype: DType, values: &[Value]) -> ApiResult<ArrayRef> {
    downcast_dtype!(dtype,
        |T| primitive::<T>(column, dtype, values),
        utf8 => Ok(Arc::new(StringArray::from(values_of(column, dtype, values, |v| {
            v.as_str().map(str::to_owned)
        })?))),
        bool => Ok(Arc::new(BooleanArray::from(values_of(
            column,
            dtype,
            values,
            Value::as_bool,
        )?))),
        other(d) => Err(ApiError::bad_request(format!(
            "column {column:?}: dtype {d} cannot be written as JSON yet"
        ))),
    )
}

/// Parses a JSON write body into one record batch of the table's types.
pub(crate) fn write_body(table: &str, schema: &TableSchema, body: &[u8]) -> ApiResult<RecordBatch> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(mut top) = value else {
        return Err(ApiError::bad_request(format!(
            "request body is {}, expected an object {{\"columns\": {{\"<column>\": [values...]}}}}",
            kind(&value)
        )));
    };
    if let Some(extra) = top.keys().find(|k| *k != "columns") {
        return Err(ApiError::bad_request(format!(
            "unknown field {extra:?} in the request body (expected only \"columns\")"
        )));
    }
    let Some(columns) = top.remove("columns") else {
        return Err(ApiError::bad_request(
            "request body has no \"columns\" field",
        ));
    };
    let Value::Object(columns) = columns else {
        return Err(ApiError::bad_request(format!(
            "\"columns\" is {}, expected an object of column name to array of values",
            kind(&columns)
        )));
    };
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    let mut rows = None;
    for (name, values) in &columns {
        let Some(def) = schema.column(name) else {
            return Err(ApiError::bad_request(format!(
                "column {name:?} is not in table {table:?}"
            )));
        };
        let Value::Array(values) = values else {
            return Err(ApiError::bad_request(format!(
                "column {name:?} is {}, expected an array of values",
                kind(values)
            )));
        };
        match rows {
            None => rows = Some(values.len()),
            Some(n) if n != values.len() => {
                return Err(ApiError::bad_request(format!(
                    "column {name:?} has {} values, other columns have {n}: all arrays must have the same length",
                    values.len()
                )));
            }
            Some(_) => {}
        }
        arrays.push(array(name, def.dtype, values)?);
        fields.push(Field::new(name, def.dtype.to_arrow(), true));
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows.unwrap_or(0))),
    )
    .map_err(|e| ApiError::bad_request(format!("invalid columns: {e}")))
}

struct JsonColumn<'a>(&'a dyn Array);

impl Serialize for JsonColumn<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut seq = s.serialize_seq(Some(a.len()))?;
        macro_rules! prim {
            ($t:ty) => {{
                let arr = a.as_primitive::<$t>();
                for i in 0..arr.len() {
                    if arr.is_valid(i) {
                        seq.serialize_element(&arr.value(i))?;
                    } else {
                        seq.serialize_element(&())?;
                    }
                }
            }};
        }
        match a.data_type() {
            DataType::Utf8 => {
                for v in a.as_string::<i32>() {
                    seq.serialize_element(&v)?;
                }
            }
            DataType::Boolean => {
                for v in a.as_boolean() {
                    seq.serialize_element(&v)?;
                }
            }
            DataType::Int8 => prim!(Int8Type),
            DataType::Int16 => prim!(Int16Type),
            DataType::Int32 => prim!(Int32Type),
            DataType::Int64 => prim!(Int64Type),
            DataType::UInt8 => prim!(UInt8Type),
            DataType::UInt16 => prim!(UInt16Type),
            DataType::UInt32 => prim!(UInt32Type),
            DataType::UInt64 => prim!(UInt64Type),
            // f32 values serialize as their shortest float32 form (0.95, not 0.949999988079071).
            DataType::Float32 => prim!(Float32Type),
            DataType::Float64 => prim!(Float64Type),
            other => {
                return Err(serde::ser::Error::custom(format!(
                    "no JSON form for {other}"
                )));
            }
        }
        seq.end()
    }
}

struct JsonColumns<'a>(&'a RecordBatch);

impl Serialize for JsonColumns<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.num_columns()))?;
        for (field, array) in self.0.schema().fields().iter().zip(self.0.columns()) {
            map.serialize_entry(field.name(), &JsonColumn(array.as_ref()))?;
        }
        map.end()
    }
}

/// A fetch answer as JSON: `{"columns": {"<col>": [values...]}}`, columns in batch order.
pub(crate) fn fetch_answer(batch: &RecordBatch) -> ApiResult<Vec<u8>> {
    #[derive(Serialize)]
    struct Answer<'a> {
        columns: JsonColumns<'a>,
    }
    let mut out = Vec::with_capacity(64 + batch.get_array_memory_size() * 2);
    serde_json::to_writer(
        &mut out,
        &Answer {
            columns: JsonColumns(batch),
        },
    )
    .map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding JSON: {e}"),
        )
    })?;
    Ok(out)
}
