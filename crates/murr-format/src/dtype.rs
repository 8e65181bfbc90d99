//! Column types: their stable type codes, wire names, widths and Arrow types, in one table.
//!
//! Every fact about a type lives in the `dtypes!` table below, so a new type is one row there
//! (plus its storage in the encoder and its values in murr-segment's `downcast_dtype!`).

use std::fmt;
use std::str::FromStr;

use arrow_schema::DataType;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bin_io::{Get, Put};
use crate::error::{Error, Result};

macro_rules! dtypes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $width:expr, $arrow:expr; )*) => {
        /// A column's logical type.
        ///
        /// Each type has a stable one-byte code written into segment files. A code, once
        /// released, is never reused; new types get new codes. Codes 64 and up are reserved for
        /// parametrised types (fixed-size lists, timestamps with a unit), whose parameters follow
        /// the code in the column directory ([`DType::encode`], see `docs/format.md`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum DType {
            $( $(#[$doc])* $variant, )*
        }

        impl DType {
            /// Every type, in code order.
            pub const ALL: &'static [DType] = &[ $( DType::$variant, )* ];

            /// The stable code written into segment files.
            pub const fn code(self) -> u8 {
                match self { $( DType::$variant => $code, )* }
            }

            /// The lowercase name used in schemas and on the wire (`"float32"`).
            pub const fn name(self) -> &'static str {
                match self { $( DType::$variant => $name, )* }
            }

            /// Bytes a value takes inside a row, or `None` for variable-width types.
            /// Booleans take one byte each: rows are read one at a time, so bit packing would
            /// save little and cost a shift and mask on every read.
            pub const fn fixed_width(self) -> Option<usize> {
                match self { $( DType::$variant => $width, )* }
            }

            /// The Arrow type murr stores and answers for this type.
            pub fn to_arrow(self) -> DataType {
                match self { $( DType::$variant => $arrow, )* }
            }

            /// The murr type whose Arrow type is exactly `t`, if there is one. (Writes accept
            /// more Arrow types than this, by lossless widening: that is murr-table's rule.)
            pub fn from_arrow(t: &DataType) -> Option<DType> {
                $( if *t == $arrow { return Some(DType::$variant); } )*
                None
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
}

impl DType {
    /// The type with this code, if this build knows it.
    pub fn from_code(code: u8) -> Option<DType> {
        DType::ALL.iter().copied().find(|t| t.code() == code)
    }

    /// Writes the type as the column directory stores it: the code, then the length of the
    /// type's parameters and the parameters (none for today's types).
    pub(crate) fn encode(self, p: &mut Put) {
        p.u8(self.code());
        p.u16(0);
    }

    /// Reads a type written by [`DType::encode`].
    pub(crate) fn decode(g: &mut Get<'_>, column: &str) -> Result<DType> {
        let code = g.u8()?;
        let dtype = DType::from_code(code).ok_or_else(|| {
            Error::corrupt(format!("column {column:?} has unknown type code {code}"))
        })?;
        let params = g.u16()?;
        if params != 0 {
            return Err(Error::corrupt(format!(
                "column {column:?}: type {dtype} takes no parameters, found {params} bytes"
            )));
        }
        Ok(dtype)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown dtype name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dtype {0:?} (known: {known})", known = known_names())]
pub struct UnknownDType(pub String);

fn known_names() -> String {
    DType::ALL
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for DType {
    type Err = UnknownDType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DType::ALL
            .iter()
            .copied()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownDType(s.to_owned()))
    }
}

impl Serialize for DType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
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

    #[test]
    fn codes_names_and_arrow_types_round_trip_and_are_unique() {
        let mut codes = std::collections::HashSet::new();
        for &t in DType::ALL {
            assert!(codes.insert(t.code()), "duplicate code for {t}");
            assert_eq!(DType::from_code(t.code()), Some(t));
            assert_eq!(t.name().parse::<DType>(), Ok(t));
            assert_eq!(DType::from_arrow(&t.to_arrow()), Some(t));
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
    fn codes_are_stable() {
        // These codes are written into files: changing one breaks every stored segment.
        let codes: Vec<u8> = DType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(codes, (1..=12).collect::<Vec<u8>>());
    }

    #[test]
    fn parameters_of_scalar_types_are_corrupt() {
        let mut p = Put::default();
        p.u8(DType::Int64.code());
        p.u16(1);
        p.u8(9);
        let err = DType::decode(&mut Get::new(&p.0, "test"), "c").expect_err("params");
        assert!(err.to_string().contains("no parameters"), "{err}");
    }
}
