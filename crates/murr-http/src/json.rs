//! JSON bodies: `{"columns": {"<col>": [v, ...]}}` in both directions.
//!
//! Write bodies are read in one pass straight into each column's values (serde visitors), never
//! through a `serde_json::Value` tree, which takes 16 to 32 times the body's size.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, BooleanBuilder, PrimitiveBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, FixedSizeListArray, ListArray, RecordBatch,
    RecordBatchOptions,
};
use arrow_buffer::{BooleanBufferBuilder, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use murr_api::{DType, TableSchema};

use crate::json_text;
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

/// Takes a column's (or a list column's items') JSON values one at a time into an Arrow
/// builder: a value costs its final size, not a parsed tree's.
trait Sink<'de> {
    /// Appends a value, or gives it back when it does not fit the type (to be named in the
    /// error, and only then formatted).
    fn push(&mut self, v: Scalar<'de>) -> Result<(), Scalar<'de>>;
    fn push_null(&mut self);
    fn finish(&mut self) -> ArrayRef;
}

struct Typed<B, F> {
    builder: B,
    convert: F,
}

macro_rules! sink {
    ($builder:ty, |$b:ident| $finish:expr) => {
        impl<'de, T, F> Sink<'de> for Typed<$builder, F>
        where
            F: Fn(Scalar<'de>) -> Result<T, Scalar<'de>>,
            $builder: Extend<Option<T>>,
        {
            fn push(&mut self, v: Scalar<'de>) -> Result<(), Scalar<'de>> {
                let value = (self.convert)(v)?;
                self.builder.extend(std::iter::once(Some(value)));
                Ok(())
            }
            fn push_null(&mut self) {
                self.builder.extend(std::iter::once(None));
            }
            fn finish(&mut self) -> ArrayRef {
                let $b = &mut self.builder;
                Arc::new($finish)
            }
        }
    };
}

impl<'de, P, F> Sink<'de> for Typed<PrimitiveBuilder<P>, F>
where
    P: ArrowPrimitiveType,
    F: Fn(Scalar<'de>) -> Result<P::Native, Scalar<'de>>,
{
    fn push(&mut self, v: Scalar<'de>) -> Result<(), Scalar<'de>> {
        self.builder.append_value((self.convert)(v)?);
        Ok(())
    }
    fn push_null(&mut self) {
        self.builder.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        Arc::new(self.builder.finish())
    }
}

sink!(StringBuilder, |b| b.finish());
sink!(BinaryBuilder, |b| b.finish());
sink!(BooleanBuilder, |b| b.finish());

fn typed<'de, B, T, F>(builder: B, convert: F) -> Box<dyn Sink<'de> + 'de>
where
    B: 'de,
    F: Fn(Scalar<'de>) -> Result<T, Scalar<'de>> + 'de,
    Typed<B, F>: Sink<'de>,
{
    Box::new(Typed { builder, convert })
}

fn text<'de>(v: Scalar<'de>, parse: impl Fn(&str) -> Option<i64>) -> Result<i64, Scalar<'de>> {
    match &v {
        Scalar::Str(s) => parse(s).ok_or(v),
        Scalar::I64(i) => Ok(*i),
        Scalar::U64(u) => i64::try_from(*u).map_err(|_| v),
        _ => Err(v),
    }
}

/// The sink of a scalar type's values (a column's, or a list's items).
fn scalar_sink<'de>(dtype: DType) -> Box<dyn Sink<'de> + 'de> {
    let arrow = dtype.to_arrow();
    match dtype {
        DType::Utf8 => typed(StringBuilder::new(), |v| match v {
            Scalar::Str(s) => Ok(s),
            other => Err(other),
        }),
        DType::Binary => typed(BinaryBuilder::new(), |v| match &v {
            Scalar::Str(s) => json_text::parse_base64(s).ok_or(v),
            _ => Err(v),
        }),
        DType::Bool => typed(BooleanBuilder::new(), |v| match v {
            Scalar::Bool(b) => Ok(b),
            other => Err(other),
        }),
        DType::Date32 => typed(PrimitiveBuilder::<Date32Type>::new(), |v| {
            let days = text(v, |s| json_text::parse_date(s).map(i64::from))?;
            i32::try_from(days).map_err(|_| Scalar::I64(days))
        }),
        DType::Timestamp(unit, _) => {
            let parse = move |v| text(v, |s| json_text::parse_timestamp(s, unit));
            match unit {
                TimeUnit::Second => typed(
                    PrimitiveBuilder::<TimestampSecondType>::new().with_data_type(arrow),
                    parse,
                ),
                TimeUnit::Millisecond => typed(
                    PrimitiveBuilder::<TimestampMillisecondType>::new().with_data_type(arrow),
                    parse,
                ),
                TimeUnit::Microsecond => typed(
                    PrimitiveBuilder::<TimestampMicrosecondType>::new().with_data_type(arrow),
                    parse,
                ),
                TimeUnit::Nanosecond => typed(
                    PrimitiveBuilder::<TimestampNanosecondType>::new().with_data_type(arrow),
                    parse,
                ),
            }
        }
        DType::Float16 => typed(PrimitiveBuilder::<Float16Type>::new(), |v| {
            // JSON numbers are parsed as f64; float16 columns take the nearest float16.
            let f = v.as_f64().map(half::f16::from_f64);
            f.filter(|f| f.is_finite()).ok_or(v)
        }),
        DType::Int8 => typed(PrimitiveBuilder::<Int8Type>::new(), |v| {
            i8::from_json(&v).ok_or(v)
        }),
        DType::Int16 => typed(PrimitiveBuilder::<Int16Type>::new(), |v| {
            i16::from_json(&v).ok_or(v)
        }),
        DType::Int32 => typed(PrimitiveBuilder::<Int32Type>::new(), |v| {
            i32::from_json(&v).ok_or(v)
        }),
        DType::Int64 => typed(PrimitiveBuilder::<Int64Type>::new(), |v| {
            i64::from_json(&v).ok_or(v)
        }),
        DType::UInt8 => typed(PrimitiveBuilder::<UInt8Type>::new(), |v| {
            u8::from_json(&v).ok_or(v)
        }),
        DType::UInt16 => typed(PrimitiveBuilder::<UInt16Type>::new(), |v| {
            u16::from_json(&v).ok_or(v)
        }),
        DType::UInt32 => typed(PrimitiveBuilder::<UInt32Type>::new(), |v| {
            u32::from_json(&v).ok_or(v)
        }),
        DType::UInt64 => typed(PrimitiveBuilder::<UInt64Type>::new(), |v| {
            u64::from_json(&v).ok_or(v)
        }),
        DType::Float32 => typed(PrimitiveBuilder::<Float32Type>::new(), |v| {
            f32::from_json(&v).ok_or(v)
        }),
        DType::Float64 => typed(PrimitiveBuilder::<Float64Type>::new(), |v| {
            f64::from_json(&v).ok_or(v)
        }),
        // Lists are read by `ListSeed`; no other type reaches here.
        _ => typed(BooleanBuilder::new(), Err::<bool, _>),
    }
}

fn misfit<E: de::Error>(column: &str, dtype: DType, index: usize, v: &Scalar<'_>) -> E {
    E::custom(format!(
        "column {column:?}: value {v} at index {index} is {} that does not fit dtype {dtype}",
        v.kind()
    ))
}

/// One scalar column's array of values.
struct ColumnSeed<'s, 'de> {
    column: &'s str,
    dtype: DType,
    sink: Box<dyn Sink<'de> + 'de>,
}

impl<'de> DeserializeSeed<'de> for ColumnSeed<'_, 'de> {
    type Value = ArrayRef;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ArrayRef, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ColumnSeed<'_, 'de> {
    type Value = ArrayRef;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {:?} to be an array of values", self.column)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<ArrayRef, A::Error> {
        let mut index = 0usize;
        while let Some(v) = seq.next_element::<Scalar<'de>>()? {
            if matches!(v, Scalar::Null) {
                self.sink.push_null();
            } else if let Err(v) = self.sink.push(v) {
                return Err(misfit(self.column, self.dtype, index, &v));
            }
            index += 1;
        }
        Ok(self.sink.finish())
    }
}

/// A list column's array of lists: each a JSON array of items, or null.
struct ListSeed<'s, 'de> {
    column: &'s str,
    dtype: DType,
    fixed: Option<usize>,
    items: Box<dyn Sink<'de> + 'de>,
    offsets: Vec<i32>,
    nulls: BooleanBufferBuilder,
}

/// One list of a list column: its items into the column's item sink.
struct OneList<'a, 's, 'de> {
    list: &'a mut ListSeed<'s, 'de>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for OneList<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> OneList<'_, '_, 'de> {
    fn not_a_list<E: de::Error>(&self, what: &str) -> E {
        E::custom(format!(
            "column {:?}: value at index {} is {what}, dtype {} takes a JSON array of items or null",
            self.list.column, self.index, self.list.dtype
        ))
    }
}

impl<'de> Visitor<'de> for OneList<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of items or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if let Some(n) = self.list.fixed {
            for _ in 0..n {
                self.list.items.push_null();
            }
        }
        self.list.nulls.append(false);
        let end = *self.list.offsets.last().expect("a leading 0");
        self.list.offsets.push(end);
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.not_a_list("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.not_a_list("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.not_a_list("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.not_a_list("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.not_a_list("a string"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.not_a_list("an object"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let list = self.list;
        let mut len = 0usize;
        while let Some(v) = seq.next_element::<Scalar<'de>>()? {
            if matches!(v, Scalar::Null) {
                list.items.push_null();
            } else if let Err(v) = list.items.push(v) {
                let (item, _) = list.dtype.list_item().expect("a list");
                return Err(de::Error::custom(format!(
                    "column {:?}: item {v} at index {} of the list at index {} is {} that does not fit the item dtype {item}",
                    list.column,
                    len,
                    self.index,
                    v.kind()
                )));
            }
            len += 1;
        }
        if let Some(n) = list.fixed
            && n != len
        {
            return Err(de::Error::custom(format!(
                "column {:?}: the list at index {} has {len} items, dtype {} takes {n}",
                list.column, self.index, list.dtype
            )));
        }
        list.nulls.append(true);
        let end = *list.offsets.last().expect("a leading 0");
        let end = i32::try_from(len)
            .ok()
            .and_then(|len| end.checked_add(len))
            .ok_or_else(|| {
                de::Error::custom(format!("column {:?}: too many items", list.column))
            })?;
        list.offsets.push(end);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, 'de> {
    type Value = ArrayRef;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ArrayRef, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, 'de> {
    type Value = ArrayRef;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {:?} to be an array of lists", self.column)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<ArrayRef, A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(OneList {
                list: &mut self,
                index,
            })?
            .is_some()
        {
            index += 1;
        }
        let (item, _) = self.dtype.list_item().expect("a list");
        let field = Arc::new(Field::new_list_field(item.to_arrow(), true));
        let values = self.items.finish();
        let nulls = Some(NullBuffer::new(self.nulls.finish())).filter(|n| n.null_count() > 0);
        let array: ArrayRef = match self.fixed {
            Some(n) => Arc::new(
                FixedSizeListArray::try_new(field, i32::try_from(n).expect("small"), values, nulls)
                    .map_err(|e| de::Error::custom(format!("column {:?}: {e}", self.column)))?,
            ),
            None => Arc::new(
                ListArray::try_new(
                    field,
                    OffsetBuffer::new(ScalarBuffer::from(self.offsets)),
                    values,
                    nulls,
                )
                .map_err(|e| de::Error::custom(format!("column {:?}: {e}", self.column)))?,
            ),
        };
        Ok(array)
    }
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
        match dtype.list_item() {
            Some((item, fixed)) => ListSeed {
                column,
                dtype,
                fixed: fixed.map(|n| n as usize),
                items: scalar_sink(item),
                offsets: vec![0],
                nulls: BooleanBufferBuilder::new(0),
            }
            .deserialize(d),
            None => ColumnSeed {
                column,
                dtype,
                sink: scalar_sink(dtype),
            }
            .deserialize(d),
        }
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
            _ => {
                for i in 0..a.len() {
                    seq.serialize_element(&Cell(a, i))?;
                }
            }
        }
        seq.end()
    }
}

/// Value `i` of an array, of any type murr stores (see `json_text` for the text of dates,
/// timestamps and bytes).
struct Cell<'a>(&'a dyn Array, usize);

impl Serialize for Cell<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Cell(a, i) = *self;
        if a.is_null(i) {
            return s.serialize_unit();
        }
        let int_or = |text: Option<String>, v: i64, s: S| match text {
            Some(t) => s.serialize_str(&t),
            None => s.serialize_i64(v),
        };
        match a.data_type() {
            DataType::Utf8 => s.serialize_str(a.as_string::<i32>().value(i)),
            DataType::Binary => {
                s.serialize_str(&json_text::format_base64(a.as_binary::<i32>().value(i)))
            }
            DataType::Boolean => s.serialize_bool(a.as_boolean().value(i)),
            DataType::Int8 => s.serialize_i8(a.as_primitive::<Int8Type>().value(i)),
            DataType::Int16 => s.serialize_i16(a.as_primitive::<Int16Type>().value(i)),
            DataType::Int32 => s.serialize_i32(a.as_primitive::<Int32Type>().value(i)),
            DataType::Int64 => s.serialize_i64(a.as_primitive::<Int64Type>().value(i)),
            DataType::UInt8 => s.serialize_u8(a.as_primitive::<UInt8Type>().value(i)),
            DataType::UInt16 => s.serialize_u16(a.as_primitive::<UInt16Type>().value(i)),
            DataType::UInt32 => s.serialize_u32(a.as_primitive::<UInt32Type>().value(i)),
            DataType::UInt64 => s.serialize_u64(a.as_primitive::<UInt64Type>().value(i)),
            // A float16 as the shortest float32 text of its value: it reads back as the same
            // float16.
            DataType::Float16 => {
                s.serialize_f32(f32::from(a.as_primitive::<Float16Type>().value(i)))
            }
            DataType::Float32 => s.serialize_f32(a.as_primitive::<Float32Type>().value(i)),
            DataType::Float64 => s.serialize_f64(a.as_primitive::<Float64Type>().value(i)),
            DataType::Date32 => {
                let days = a.as_primitive::<Date32Type>().value(i);
                int_or(json_text::format_date(days), i64::from(days), s)
            }
            DataType::Timestamp(unit, zone) => {
                let v = match unit {
                    TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i),
                    TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i),
                    TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i),
                    TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i),
                };
                int_or(json_text::format_timestamp(v, *unit, zone.is_some()), v, s)
            }
            DataType::List(_) => {
                let list = a.as_list::<i32>();
                let o = list.value_offsets();
                Items(list.values().as_ref(), o[i] as usize, o[i + 1] as usize).serialize(s)
            }
            DataType::FixedSizeList(_, n) => {
                let list = a.as_fixed_size_list();
                let n = *n as usize;
                Items(list.values().as_ref(), i * n, i * n + n).serialize(s)
            }
            other => Err(serde::ser::Error::custom(format!(
                "no JSON form for {other}"
            ))),
        }
    }
}

/// Items `start .. end` of a list's values, as a JSON array.
struct Items<'a>(&'a dyn Array, usize, usize);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Items(values, start, end) = *self;
        let mut seq = s.serialize_seq(Some(end - start))?;
        for i in start..end {
            seq.serialize_element(&Cell(values, i))?;
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
