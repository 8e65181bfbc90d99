//! Column types: their stable type codes, wire names, widths and Arrow types.
//!
//! Every fact about an unparametrised type lives in the `dtypes!` table below, so a new one is
//! one row there (plus its values in murr-segment's `downcast_dtype!`). Parametrised types
//! (timestamps with a unit and zone, lists, fixed-size lists) are written out below the table:
//! their parameters follow the code in the column directory ([`DType::encode`]).

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use arrow_schema::{DataType, Field, TimeUnit};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bin_io::{Get, Put};
use crate::error::{Error, Result};

/// The longest list a fixed-size list type may have (an embedding of 65536 values).
pub const MAX_FIXED_LIST_LEN: u32 = 65536;

/// The longest time zone name, in bytes.
const MAX_TZ_LEN: usize = 64;

/// At most this many distinct time zone names live in one process (they are interned, so
/// that [`DType`] stays `Copy`).
const MAX_ZONES: usize = 1024;

/// Code of `timestamp[unit]` and `timestamp[unit, zone]`.
const CODE_TIMESTAMP: u8 = 64;
/// Code of `list<T>`.
const CODE_LIST: u8 = 65;
/// Code of `fixed_size_list<T, N>`.
const CODE_FIXED_SIZE_LIST: u8 = 66;

macro_rules! dtypes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $width:expr, $arrow:expr; )*) => {
        /// A column's logical type.
        ///
        /// Each type has a stable one-byte code written into segment files. A code, once
        /// released, is never reused; new types get new codes. Codes 64 and up are parametrised
        /// types (timestamps with a unit, lists), whose parameters follow the code in the column
        /// directory (`DType::encode`, see `docs/format.md`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum DType {
            $( $(#[$doc])* $variant, )*
            /// An instant or a wall-clock time: a signed 64-bit count of `unit` since the Unix
            /// epoch, with an optional time zone name (`timestamp[us, UTC]`).
            Timestamp(TimeUnit, Option<Zone>),
            /// A list of any length of items of an unparametrised type or a timestamp
            /// (`list<int64>`); lists and items may be null.
            List(Item),
            /// A list of exactly `N` numeric items: an embedding (`fixed_size_list<float32, 768>`).
            FixedSizeList(Item, u32),
        }

        impl DType {
            /// Every unparametrised type, in code order.
            pub const ALL: &'static [DType] = &[ $( DType::$variant, )* ];

            /// The stable code written into segment files.
            pub const fn code(self) -> u8 {
                match self {
                    $( DType::$variant => $code, )*
                    DType::Timestamp(..) => CODE_TIMESTAMP,
                    DType::List(_) => CODE_LIST,
                    DType::FixedSizeList(..) => CODE_FIXED_SIZE_LIST,
                }
            }

            /// The name of an unparametrised type (`"float32"`), or of a parametrised type's
            /// family (`"timestamp"`, `"list"`, `"fixed_size_list"`): `Display` spells the
            /// whole type.
            pub const fn name(self) -> &'static str {
                match self {
                    $( DType::$variant => $name, )*
                    DType::Timestamp(..) => "timestamp",
                    DType::List(_) => "list",
                    DType::FixedSizeList(..) => "fixed_size_list",
                }
            }

            /// Bytes a value takes inside a row, or `None` for types stored outside the row's
            /// fixed part (strings, binary, lists). Booleans take one byte each: rows are read
            /// one at a time, so bit packing would save little and cost a shift and mask on every
            /// read.
            pub const fn fixed_width(self) -> Option<usize> {
                match self {
                    $( DType::$variant => $width, )*
                    DType::Timestamp(..) => Some(8),
                    DType::List(_) | DType::FixedSizeList(..) => None,
                }
            }

            /// The Arrow type murr stores and answers for this type.
            pub fn to_arrow(self) -> DataType {
                match self {
                    $( DType::$variant => $arrow, )*
                    DType::Timestamp(unit, zone) => {
                        DataType::Timestamp(unit, zone.map(|z| Arc::from(z.as_str())))
                    }
                    DType::List(item) => DataType::List(Arc::new(item.field())),
                    DType::FixedSizeList(item, n) => DataType::FixedSizeList(
                        Arc::new(item.field()),
                        i32::try_from(n).expect("at most MAX_FIXED_LIST_LEN"),
                    ),
                }
            }

            fn from_code(code: u8) -> Option<DType> {
                match code {
                    $( $code => Some(DType::$variant), )*
                    _ => None,
                }
            }

            fn simple_from_arrow(t: &DataType) -> Option<DType> {
                $( if *t == $arrow { return Some(DType::$variant); } )*
                None
            }

            fn simple_from_name(s: &str) -> Option<DType> {
                match s {
                    $( $name => Some(DType::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

dtypes! {
    /// UTF-8 text of any length.
    Utf8 = 1, "utf8", None, DataType::Utf8;
    /// true or false.
    Bool = 2, "bool", Some(1), DataType::Boolean;
    /// Signed 8-bit integer.
    Int8 = 3, "int8", Some(1), DataType::Int8;
    /// Signed 16-bit integer.
    Int16 = 4, "int16", Some(2), DataType::Int16;
    /// Signed 32-bit integer.
    Int32 = 5, "int32", Some(4), DataType::Int32;
    /// Signed 64-bit integer.
    Int64 = 6, "int64", Some(8), DataType::Int64;
    /// Unsigned 8-bit integer.
    UInt8 = 7, "uint8", Some(1), DataType::UInt8;
    /// Unsigned 16-bit integer.
    UInt16 = 8, "uint16", Some(2), DataType::UInt16;
    /// Unsigned 32-bit integer.
    UInt32 = 9, "uint32", Some(4), DataType::UInt32;
    /// Unsigned 64-bit integer.
    UInt64 = 10, "uint64", Some(8), DataType::UInt64;
    /// IEEE 754 single precision.
    Float32 = 11, "float32", Some(4), DataType::Float32;
    /// IEEE 754 double precision.
    Float64 = 12, "float64", Some(8), DataType::Float64;
    /// IEEE 754 half precision.
    Float16 = 13, "float16", Some(2), DataType::Float16;
    /// Bytes of any length.
    Binary = 14, "binary", None, DataType::Binary;
    /// A calendar date: days since 1970-01-01, signed 32-bit.
    Date32 = 15, "date32", Some(4), DataType::Date32;
}

/// A time zone name of a timestamp type, as Arrow spells it: `UTC`, an offset (`+05:30`) or an
/// IANA name (`Europe/Paris`). murr stores the name and hands it back; it answers instants of
/// zoned columns in UTC.
///
/// Names are interned (so [`DType`] stays `Copy`): a process holds at most 1024 distinct ones.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Zone(&'static str);

static ZONES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

impl Zone {
    /// The zone named `name`.
    ///
    /// # Errors
    /// A message saying why `name` is not a zone name.
    pub fn new(name: &str) -> Result<Zone, String> {
        let valid = !name.is_empty()
            && name.len() <= MAX_TZ_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '/' | ':'));
        if !valid {
            return Err(format!(
                "time zone {name:?} is not a zone name (UTC, +05:30 or an IANA name like Europe/Paris, at most {MAX_TZ_LEN} bytes)"
            ));
        }
        let mut zones = ZONES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(z) = zones.iter().find(|z| **z == name) {
            return Ok(Zone(z));
        }
        if zones.len() >= MAX_ZONES {
            return Err(format!(
                "time zone {name:?}: this process already knows {MAX_ZONES} distinct zone names"
            ));
        }
        let z: &'static str = Box::leak(name.to_owned().into_boxed_str());
        zones.push(z);
        Ok(Zone(z))
    }

    /// The zone's name.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// The item type of a list: an unparametrised type or a timestamp (lists do not nest).
///
/// Interned like [`Zone`], so that [`DType`] stays `Copy`; there are few item types.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Item(&'static DType);

static ITEMS: Mutex<Vec<&'static DType>> = Mutex::new(Vec::new());

impl Item {
    /// `dtype` as a list's item type.
    ///
    /// # Errors
    /// A message when `dtype` is a list (lists do not nest).
    pub fn new(dtype: DType) -> Result<Item, String> {
        if matches!(dtype, DType::List(_) | DType::FixedSizeList(..)) {
            return Err(format!(
                "a list's items cannot be lists ({dtype}): lists do not nest"
            ));
        }
        let mut items = ITEMS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = items.iter().find(|i| ***i == dtype) {
            return Ok(Item(i));
        }
        let i: &'static DType = Box::leak(Box::new(dtype));
        items.push(i);
        Ok(Item(i))
    }

    /// The items' type.
    pub fn dtype(self) -> DType {
        *self.0
    }

    /// The Arrow field of the items: named `item` and nullable, as Arrow and pyarrow make them.
    pub fn field(self) -> Field {
        Field::new_list_field(self.0.to_arrow(), true)
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

fn unit_name(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

fn unit_code(unit: TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

const UNITS: [TimeUnit; 4] = [
    TimeUnit::Second,
    TimeUnit::Millisecond,
    TimeUnit::Microsecond,
    TimeUnit::Nanosecond,
];

impl DType {
    /// Whether values of Arrow type `from` fit losslessly into a column of this type (what
    /// writes and generation-2 fetch keys accept besides the type itself). A list into a
    /// fixed-size list fits when every list has the right length: the cast checks each.
    pub fn widens_from(self, from: &arrow_schema::DataType) -> bool {
        use arrow_schema::DataType as A;
        let to = self;
        if from == &to.to_arrow() {
            return true;
        }
        match to {
            DType::Binary => matches!(from, A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_)),
            DType::List(item) => match from {
                A::List(f) | A::LargeList(f) | A::FixedSizeList(f, _) => {
                    item.dtype().widens_from(f.data_type())
                }
                _ => false,
            },
            DType::FixedSizeList(item, n) => match from {
                A::List(f) | A::LargeList(f) => item.dtype().widens_from(f.data_type()),
                A::FixedSizeList(f, m) => {
                    *m as i64 == i64::from(n) && item.dtype().widens_from(f.data_type())
                }
                _ => false,
            },
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
            DType::Float32 => {
                matches!(from, A::Float16 | A::Int8 | A::Int16 | A::UInt8 | A::UInt16)
            }
            DType::Float16 => false,
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

    /// Whether values of this type are numbers (the items a fixed-size list may hold).
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            DType::Int8
                | DType::Int16
                | DType::Int32
                | DType::Int64
                | DType::UInt8
                | DType::UInt16
                | DType::UInt32
                | DType::UInt64
                | DType::Float16
                | DType::Float32
                | DType::Float64
        )
    }

    /// Whether values are byte strings of any length (`utf8`, `binary`).
    pub fn is_bytes(self) -> bool {
        matches!(self, DType::Utf8 | DType::Binary)
    }

    /// A list's item type and, for a fixed-size list, its length; `None` for other types.
    pub fn list_item(self) -> Option<(DType, Option<u32>)> {
        match self {
            DType::List(item) => Some((item.dtype(), None)),
            DType::FixedSizeList(item, n) => Some((item.dtype(), Some(n))),
            _ => None,
        }
    }

    /// `list<item>`.
    ///
    /// # Errors
    /// When `item` is a list.
    pub fn list(item: DType) -> Result<DType, String> {
        Ok(DType::List(Item::new(item)?))
    }

    /// `fixed_size_list<item, n>`.
    ///
    /// # Errors
    /// When `item` is not numeric or `n` is not in 1..=65536.
    pub fn fixed_size_list(item: DType, n: u32) -> Result<DType, String> {
        if !item.is_numeric() {
            return Err(format!(
                "a fixed-size list holds numbers (int*, uint*, float16/32/64), not {item}"
            ));
        }
        if !(1..=MAX_FIXED_LIST_LEN).contains(&n) {
            return Err(format!(
                "a fixed-size list has 1 to {MAX_FIXED_LIST_LEN} items, not {n}"
            ));
        }
        Ok(DType::FixedSizeList(Item::new(item)?, n))
    }

    /// `timestamp[unit]` or `timestamp[unit, zone]`.
    ///
    /// # Errors
    /// When `zone` is not a zone name.
    pub fn timestamp(unit: TimeUnit, zone: Option<&str>) -> Result<DType, String> {
        Ok(DType::Timestamp(unit, zone.map(Zone::new).transpose()?))
    }

    /// The murr type whose Arrow type is exactly `t`, if there is one. (Writes accept more
    /// Arrow types than this, by lossless widening: that is murr-table's rule.)
    pub fn from_arrow(t: &DataType) -> Option<DType> {
        let exact = |d: DType| (d.to_arrow() == *t).then_some(d);
        match t {
            DataType::Timestamp(unit, zone) => DType::timestamp(*unit, zone.as_deref()).ok(),
            DataType::List(f) => exact(DType::list(DType::from_arrow(f.data_type())?).ok()?),
            DataType::FixedSizeList(f, n) => exact(
                DType::fixed_size_list(DType::from_arrow(f.data_type())?, u32::try_from(*n).ok()?)
                    .ok()?,
            ),
            other => DType::simple_from_arrow(other),
        }
    }

    /// Writes the type as the column directory stores it: the code, then the length of the
    /// type's parameters and the parameters.
    pub(crate) fn encode(self, p: &mut Put) {
        p.u8(self.code());
        let mut params = Put::default();
        match self {
            DType::Timestamp(unit, zone) => {
                params.u8(unit_code(unit));
                let zone = zone.map_or("", Zone::as_str);
                params.u8(u8::try_from(zone.len()).expect("at most MAX_TZ_LEN"));
                params.0.extend_from_slice(zone.as_bytes());
            }
            DType::List(item) => item.dtype().encode(&mut params),
            DType::FixedSizeList(item, n) => {
                params.u32(n);
                item.dtype().encode(&mut params);
            }
            _ => {}
        }
        p.u16(u16::try_from(params.0.len()).expect("type parameters are short"));
        p.0.extend_from_slice(&params.0);
    }

    /// Reads a type written by [`DType::encode`].
    pub(crate) fn decode(g: &mut Get<'_>, column: &str) -> Result<DType> {
        let code = g.u8()?;
        let len = usize::from(g.u16()?);
        let mut params = Get::new(g.take(len)?, "type parameters");
        let bad = |what: String| Error::corrupt(format!("column {column:?}: {what}"));
        let dtype = match code {
            CODE_TIMESTAMP => {
                let unit = *UNITS
                    .get(usize::from(params.u8()?))
                    .ok_or_else(|| bad("unknown timestamp unit".into()))?;
                let zone_len = usize::from(params.u8()?);
                let zone = std::str::from_utf8(params.take(zone_len)?)
                    .map_err(|_| bad("time zone is not UTF-8".into()))?;
                let zone = (zone_len > 0).then_some(zone);
                DType::timestamp(unit, zone).map_err(bad)?
            }
            CODE_LIST => DType::list(DType::decode(&mut params, column)?).map_err(bad)?,
            CODE_FIXED_SIZE_LIST => {
                let n = params.u32()?;
                DType::fixed_size_list(DType::decode(&mut params, column)?, n).map_err(bad)?
            }
            _ => {
                let dtype = DType::from_code(code)
                    .ok_or_else(|| bad(format!("unknown type code {code}")))?;
                if len != 0 {
                    return Err(bad(format!(
                        "type {dtype} takes no parameters, found {len} bytes"
                    )));
                }
                dtype
            }
        };
        if !params.finished() {
            return Err(bad(format!("type {dtype} has trailing parameter bytes")));
        }
        Ok(dtype)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DType::Timestamp(unit, None) => write!(f, "timestamp[{}]", unit_name(unit)),
            DType::Timestamp(unit, Some(zone)) => {
                write!(f, "timestamp[{}, {}]", unit_name(unit), zone.as_str())
            }
            DType::List(item) => write!(f, "list<{}>", item.dtype()),
            DType::FixedSizeList(item, n) => write!(f, "fixed_size_list<{}, {n}>", item.dtype()),
            simple => f.write_str(simple.name()),
        }
    }
}

/// The error of parsing a dtype name: what was given and why it is not a type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dtype {name:?}: {reason}")]
pub struct UnknownDType {
    /// The name given.
    pub name: String,
    /// Why it is not a type.
    pub reason: String,
}

fn known_names() -> String {
    let mut names: Vec<&str> = DType::ALL.iter().map(|t| t.name()).collect();
    names.extend([
        "timestamp[s|ms|us|ns]",
        "timestamp[us, UTC]",
        "list<T>",
        "fixed_size_list<T, N>",
    ]);
    names.join(", ")
}

/// `inner` of `prefix<inner>` or `prefix[inner]`.
fn strip<'a>(s: &'a str, prefix: &str, open: char, close: char) -> Option<&'a str> {
    s.strip_prefix(prefix)?
        .trim_start()
        .strip_prefix(open)?
        .strip_suffix(close)
        .map(str::trim)
}

fn parse(s: &str) -> Result<DType, String> {
    if let Some(simple) = DType::simple_from_name(s) {
        return Ok(simple);
    }
    if let Some(inner) = strip(s, "timestamp", '[', ']') {
        let (unit, zone) = match inner.split_once(',') {
            Some((u, z)) => (u.trim(), Some(z.trim())),
            None => (inner, None),
        };
        let unit = UNITS
            .into_iter()
            .find(|u| unit_name(*u) == unit)
            .ok_or_else(|| format!("timestamp unit {unit:?}: expected s, ms, us or ns"))?;
        return DType::timestamp(unit, zone);
    }
    if let Some(inner) = strip(s, "fixed_size_list", '<', '>') {
        let (item, n) = inner
            .rsplit_once(',')
            .ok_or("expected fixed_size_list<item type, length>")?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("fixed-size list length {:?} is not a number", n.trim()))?;
        return DType::fixed_size_list(parse(item.trim())?, n);
    }
    if let Some(inner) = strip(s, "list", '<', '>') {
        return DType::list(parse(inner)?);
    }
    Err(format!("known: {}", known_names()))
}

impl FromStr for DType {
    type Err = UnknownDType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s.trim()).map_err(|reason| UnknownDType {
            name: s.to_owned(),
            reason,
        })
    }
}

impl Serialize for DType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<DType> {
        let mut all = DType::ALL.to_vec();
        for unit in UNITS {
            all.push(DType::timestamp(unit, None).expect("valid"));
            all.push(DType::timestamp(unit, Some("UTC")).expect("valid"));
        }
        all.push(DType::timestamp(TimeUnit::Nanosecond, Some("Europe/Paris")).expect("valid"));
        all.push(DType::timestamp(TimeUnit::Second, Some("+05:30")).expect("valid"));
        for &t in DType::ALL {
            all.push(DType::list(t).expect("valid"));
            if t.is_numeric() {
                all.push(DType::fixed_size_list(t, 768).expect("valid"));
            }
        }
        all.push(
            DType::list(DType::timestamp(TimeUnit::Millisecond, Some("UTC")).expect("valid"))
                .expect("valid"),
        );
        all.push(DType::fixed_size_list(DType::Float32, 1).expect("valid"));
        all.push(DType::fixed_size_list(DType::Int8, MAX_FIXED_LIST_LEN).expect("valid"));
        all
    }

    #[test]
    fn codes_names_and_arrow_types_round_trip_and_are_unique() {
        let mut codes = std::collections::HashSet::new();
        for &t in DType::ALL {
            assert!(codes.insert(t.code()), "duplicate code for {t}");
            assert_eq!(DType::from_code(t.code()), Some(t));
        }
        for t in every_kind() {
            assert_eq!(t.to_string().parse::<DType>(), Ok(t), "{t}");
            assert_eq!(DType::from_arrow(&t.to_arrow()), Some(t), "{t}");
            let json = serde_json::to_string(&t).expect("serializes");
            assert_eq!(serde_json::from_str::<DType>(&json).expect("parses"), t);
            let mut p = Put::default();
            t.encode(&mut p);
            let mut g = Get::new(&p.0, "test");
            assert_eq!(DType::decode(&mut g, "c").expect("decodes"), t);
            assert!(g.finished());
        }
        assert_eq!(DType::from_code(0), None);
        assert_eq!(DType::from_code(200), None);
        assert_eq!(DType::from_arrow(&DataType::LargeUtf8), None);
        assert!("float16x".parse::<DType>().is_err());
        let err = "utf9".parse::<DType>().expect_err("unknown");
        assert!(err.to_string().contains("float64"), "{err}");
    }

    #[test]
    fn spelling_is_canonical_and_tolerates_spaces() {
        let t: DType = "fixed_size_list< float32 ,768 >".parse().expect("parses");
        assert_eq!(t.to_string(), "fixed_size_list<float32, 768>");
        let t: DType = "timestamp[us,UTC]".parse().expect("parses");
        assert_eq!(t.to_string(), "timestamp[us, UTC]");
        assert_eq!(
            t.to_arrow(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let t: DType = "list<timestamp[ns]>".parse().expect("parses");
        assert_eq!(t.to_string(), "list<timestamp[ns]>");
        assert_eq!(
            DType::from_arrow(&DataType::List(Arc::new(Field::new(
                "element",
                DataType::Int64,
                true
            )))),
            None,
            "only the exact Arrow type; murr-table widens the rest"
        );
    }

    #[test]
    fn bad_parametrised_names_say_why() {
        for (bad, why) in [
            ("list<list<int8>>", "do not nest"),
            ("list<fixed_size_list<float32, 4>>", "do not nest"),
            ("fixed_size_list<utf8, 4>", "holds numbers"),
            ("fixed_size_list<float32, 0>", "1 to 65536"),
            ("fixed_size_list<float32, 65537>", "1 to 65536"),
            ("fixed_size_list<float32, x>", "not a number"),
            ("fixed_size_list<float32>", "length"),
            ("timestamp[m]", "expected s, ms, us or ns"),
            ("timestamp[us, a b]", "not a zone name"),
            ("timestamp", "known"),
            ("list<>", "known"),
        ] {
            let err = bad.parse::<DType>().expect_err(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn codes_are_stable() {
        // These codes are written into files: changing one breaks every stored segment.
        let codes: Vec<u8> = DType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(codes, (1..=15).collect::<Vec<u8>>());
        let ts = DType::timestamp(TimeUnit::Microsecond, Some("UTC")).expect("valid");
        let mut p = Put::default();
        ts.encode(&mut p);
        assert_eq!(p.0, [64, 5, 0, 2, 3, b'U', b'T', b'C']);
        let fsl = DType::fixed_size_list(DType::Float32, 768).expect("valid");
        let mut p = Put::default();
        fsl.encode(&mut p);
        assert_eq!(p.0, [66, 7, 0, 0, 3, 0, 0, 11, 0, 0]);
        let mut p = Put::default();
        DType::list(DType::Int64).expect("valid").encode(&mut p);
        assert_eq!(p.0, [65, 3, 0, 6, 0, 0]);
    }

    #[test]
    fn corrupt_parameters_are_errors() {
        for bytes in [
            vec![DType::Int64.code(), 1, 0, 9],
            vec![64, 2, 0, 9, 0],
            vec![64, 3, 0, 2, 5, b'U'],
            vec![65, 6, 0, 65, 3, 0, 6, 0, 0],
            vec![66, 7, 0, 0, 0, 0, 0, 11, 0, 0],
            vec![66, 7, 0, 4, 0, 0, 0, 1, 0, 0],
            vec![65, 4, 0, 6, 0, 0, 7],
            vec![99, 0, 0],
        ] {
            let err = DType::decode(&mut Get::new(&bytes, "test"), "c").expect_err("corrupt");
            assert!(matches!(err, Error::Corrupt { .. }), "{bytes:?}: {err}");
        }
    }
}
