//! JSON bodies: `{"columns": {"<col>": [v, ...]}}` in both directions.
//!
//! Write bodies are read in one pass straight into each column's values (serde visitors), never
//! through a `serde_json::Value` tree, which takes 16 to 32 times the body's size.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, PrimitiveBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema};
use murr_api::{DType, TableSchema};
use murr_segment::downcast_dtype;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::error::{ApiError, ApiResult};

/// One JSON value of a column: what a cell can be.
#[derive(Debug)]
enum Scalar<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'a, str>),
    /// An array or an object: never a cell.
    Nested(&'static str),
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("null"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::I64(i) => write!(f, "{i}"),
            Scalar::U64(u) => write!(f, "{u}"),
            Scalar::F64(x) => write!(f, "{x}"),
            Scalar::Str(s) => write!(f, "{s:?}"),
            Scalar::Nested(k) => write!(f, "<{k}>"),
        }
    }
}

impl Scalar<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::I64(_) | Scalar::U64(_) | Scalar::F64(_) => "a number",
            Scalar::Str(_) => "a string",
            Scalar::Nested(k) => k,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        #[expect(
            clippy::cast_precision_loss,
            reason = "JSON numbers are f64 to every JSON reader; an integer into a float column takes the nearest"
        )]
        match *self {
            Scalar::I64(i) => Some(i as f64),
            Scalar::U64(u) => Some(u as f64),
            Scalar::F64(x) => Some(x),
            _ => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::I64(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::U64(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::F64(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Scalar::Nested("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A number type that JSON values convert to, exactly or refused.
trait FromJson: Sized {
    fn from_json(v: &Scalar<'_>) -> Option<Self>;
}

macro_rules! from_json_int {
    ($($t:ty),*) => {$(
        impl FromJson for $t {
            fn from_json(v: &Scalar<'_>) -> Option<Self> {
                match *v {
                    Scalar::I64(i) => <$t>::try_from(i).ok(),
                    Scalar::U64(u) => <$t>::try_from(u).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
from_json_int!(i8, i16, i32, i64, u8, u16, u32, u64);

impl FromJson for f32 {
    fn from_json(v: &Scalar<'_>) -> Option<Self> {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "JSON numbers are parsed as f64; float32 columns take the nearest float32"
        )]
        let f = v.as_f64()? as f32;
        f.is_finite().then_some(f)
    }
}

impl FromJson for f64 {
    fn from_json(v: &Scalar<'_>) -> Option<Self> {
        v.as_f64()
    }
}

/// Reads one column's array of values, converting each as it comes and handing it to `sink`
/// (an Arrow builder's append): a value costs its final size, not a parsed tree's.
struct ColumnSeed<'s, F, S> {
    column: &'s str,
    dtype: DType,
    convert: F,
    sink: S,
}

impl<'de, T, F, S> DeserializeSeed<'de> for ColumnSeed<'_, F, S>
where
    F: Fn(Scalar<'de>) -> Result<T, Scalar<'de>>,
    S: FnMut(Option<T>),
{
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T, F, S> Visitor<'de> for ColumnSeed<'_, F, S>
where
    F: Fn(Scalar<'de>) -> Result<T, Scalar<'de>>,
    S: FnMut(Option<T>),
{
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {:?} to be an array of values", self.column)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while let Some(v) = seq.next_element::<Scalar<'de>>()? {
            if matches!(v, Scalar::Null) {
                (self.sink)(None);
            } else {
                // A value that does not fit comes back, to be named in the error (and only then
                // formatted).
                match (self.convert)(v) {
                    Ok(value) => (self.sink)(Some(value)),
                    Err(v) => {
                        return Err(de::Error::custom(format!(
                            "column {:?}: value {v} at index {index} is {} that does not fit dtype {}",
                            self.column,
                            v.kind(),
                            self.dtype
                        )));
                    }
                }
            }
            index += 1;
        }
        Ok(())
    }
}

fn column_values<'de, D, T>(
    d: D,
    column: &str,
    dtype: DType,
    convert: impl Fn(Scalar<'de>) -> Result<T, Scalar<'de>>,
    sink: impl FnMut(Option<T>),
) -> Result<(), D::Error>
where
    D: Deserializer<'de>,
{
    ColumnSeed {
        column,
        dtype,
        convert,
        sink,
    }
    .deserialize(d)
}

fn primitive<'de, T, D>(d: D, column: &str, dtype: DType) -> Result<ArrayRef, D::Error>
where
    T: ArrowPrimitiveType,
    T::Native: FromJson,
    D: Deserializer<'de>,
{
    let mut builder = PrimitiveBuilder::<T>::new();
    column_values(
        d,
        column,
        dtype,
        |v| T::Native::from_json(&v).ok_or(v),
        |v| builder.append_option(v),
    )?;
    Ok(Arc::new(builder.finish()))
}

/// One column of the body: its array, read as the column's dtype.
struct ArraySeed<'s> {
    column: &'s str,
    dtype: DType,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = ArrayRef;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ArrayRef, D::Error> {
        let (column, dtype) = (self.column, self.dtype);
        downcast_dtype!(dtype,
            |T| primitive::<T, D>(d, column, dtype),
            utf8 => {
                let mut builder = StringBuilder::new();
                column_values(
                    d,
                    column,
                    dtype,
                    |v| match v {
                        Scalar::Str(s) => Ok(s),
                        other => Err(other),
                    },
                    |v| builder.append_option(v),
                )?;
                Ok(Arc::new(builder.finish()))
            },
            bool => {
                let mut builder = BooleanBuilder::new();
                column_values(
                    d,
                    column,
                    dtype,
                    |v| match v {
                        Scalar::Bool(b) => Ok(b),
                        other => Err(other),
                    },
                    |v| builder.append_option(v),
                )?;
                Ok(Arc::new(builder.finish()))
            },
            other(dt) => Err(de::Error::custom(format!(
                "column {column:?}: dtype {dt} cannot be written as JSON yet"
            ))),
        )
    }
}

/// The `"columns"` object: each column of the table, once.
struct ColumnsSeed<'s> {
    table: &'s str,
    schema: &'s TableSchema,
}

impl<'de> DeserializeSeed<'de> for ColumnsSeed<'_> {
    type Value = Vec<(String, DType, ArrayRef)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ColumnsSeed<'_> {
    type Value = Vec<(String, DType, ArrayRef)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"columns\" to be an object of column name to array of values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<(String, DType, ArrayRef)> = Vec::new();
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            let Some(def) = self.schema.column(&name) else {
                return Err(de::Error::custom(format!(
                    "column {name:?} is not in table {:?}",
                    self.table
                )));
            };
            if out.iter().any(|(n, _, _)| *n == *name) {
                return Err(de::Error::custom(format!("column {name:?} appears twice")));
            }
            let array = map.next_value_seed(ArraySeed {
                column: &name,
                dtype: def.dtype,
            })?;
            out.push((name.into_owned(), def.dtype, array));
        }
        Ok(out)
    }
}

/// The whole body: an object with exactly the field `"columns"`.
struct BodySeed<'s>(ColumnsSeed<'s>);

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = Vec<(String, DType, ArrayRef)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object {\"columns\": {\"<column>\": [values...]}}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut columns = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key != "columns" || columns.is_some() {
                return Err(de::Error::custom(format!(
                    "unknown field {key:?} in the request body (expected only \"columns\" once)"
                )));
            }
            columns = Some(map.next_value_seed(ColumnsSeed {
                table: self.0.table,
                schema: self.0.schema,
            })?);
        }
        columns.ok_or_else(|| de::Error::custom("request body has no \"columns\" field"))
    }
}

/// Parses a JSON write body into one record batch of the table's types.
pub(crate) fn write_body(table: &str, schema: &TableSchema, body: &[u8]) -> ApiResult<RecordBatch> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let bad = |e: serde_json::Error| {
        if e.is_data() {
            ApiError::bad_request(e.to_string())
        } else {
            ApiError::bad_request(format!("request body is not valid JSON: {e}"))
        }
    };
    let columns = de
        .deserialize_map(BodySeed(ColumnsSeed { table, schema }))
        .map_err(bad)?;
    de.end().map_err(bad)?;
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    let mut rows = None;
    for (name, dtype, array) in columns {
        match rows {
            None => rows = Some(array.len()),
            Some(n) if n != array.len() => {
                return Err(ApiError::bad_request(format!(
                    "column {name:?} has {} values, other columns have {n}: all arrays must have the same length",
                    array.len()
                )));
            }
            Some(_) => {}
        }
        fields.push(Field::new(name, dtype.to_arrow(), true));
        arrays.push(array);
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

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use murr_api::ColumnDef;

    use super::*;

    /// Counts this thread's heap bytes: now and at the peak.
    struct Counting;

    thread_local! {
        static NOW: Cell<usize> = const { Cell::new(0) };
        static PEAK: Cell<usize> = const { Cell::new(0) };
    }

    #[expect(unsafe_code, reason = "a global allocator is unsafe to implement")]
    // SAFETY: every call forwards to the system allocator with the same arguments; the counters
    // are plain thread-locals with const initialisers, which allocate nothing.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = NOW.try_with(|n| {
                n.set(n.get() + layout.size());
                let _ = PEAK.try_with(|p| p.set(p.get().max(n.get())));
            });
            // SAFETY: the caller's contract is passed on unchanged.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            let _ = NOW.try_with(|n| n.set(n.get().saturating_sub(layout.size())));
            // SAFETY: the caller's contract is passed on unchanged.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    /// A JSON write body is read straight into the column's array: memory a small multiple of
    /// the body (an int64 takes 8 bytes for its 2 bytes of JSON), not the 16-32x of a parsed
    /// tree.
    #[test]
    fn a_write_body_costs_a_small_multiple_of_its_size() {
        let schema = TableSchema::new(
            "id",
            vec![
                ColumnDef::new("id", DType::Utf8, false),
                ColumnDef::new("n", DType::Int64, true),
            ],
        );
        let rows = 200_000;
        let body = format!("{{\"columns\": {{\"n\": [{}1]}}}}", "1,".repeat(rows - 1));
        let before = NOW.with(Cell::get);
        PEAK.with(|p| p.set(before));
        let batch = write_body("t", &schema, body.as_bytes()).expect("parses");
        let peak = PEAK.with(Cell::get) - before;
        assert_eq!(batch.num_rows(), rows);
        assert!(
            peak <= 10 * body.len(),
            "parsing {} bytes of JSON took {peak} bytes at its peak",
            body.len()
        );
    }
}
