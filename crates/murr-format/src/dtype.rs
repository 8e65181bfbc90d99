//! Column types and their stable type codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A column's logical type.
///
/// Each type has a stable one-byte code written into segment files.
/// A code, once released, is never reused; new types get new codes.
/// Codes 64 and up are reserved for parametrised types (fixed-size lists, timestamps with a unit),
/// whose parameters follow the code in the column directory (see `docs/format.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// UTF-8 text of any length.
    Utf8,
    /// true or false.
    Bool,
    /// Signed 8-bit integer.
    Int8,
    /// Signed 16-bit integer.
    Int16,
    /// Signed 32-bit integer.
    Int32,
    /// Signed 64-bit integer.
    Int64,
    /// Unsigned 8-bit integer.
    UInt8,
    /// Unsigned 16-bit integer.
    UInt16,
    /// Unsigned 32-bit integer.
    UInt32,
    /// Unsigned 64-bit integer.
    UInt64,
    /// IEEE 754 single precision.
    Float32,
    /// IEEE 754 double precision.
    Float64,
}

impl DType {
    /// Every type, in code order.
    pub const ALL: [DType; 12] = [
        DType::Utf8,
        DType::Bool,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Float32,
        DType::Float64,
    ];

    /// The stable code written into segment files.
    pub const fn code(self) -> u8 {
        match self {
            DType::Utf8 => 1,
            DType::Bool => 2,
            DType::Int8 => 3,
            DType::Int16 => 4,
            DType::Int32 => 5,
            DType::Int64 => 6,
            DType::UInt8 => 7,
            DType::UInt16 => 8,
            DType::UInt32 => 9,
            DType::UInt64 => 10,
            DType::Float32 => 11,
            DType::Float64 => 12,
        }
    }

    /// The type with this code, if this build knows it.
    pub fn from_code(code: u8) -> Option<DType> {
        DType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The lowercase name used in schemas and on the wire (`"float32"`).
    pub const fn name(self) -> &'static str {
        match self {
            DType::Utf8 => "utf8",
            DType::Bool => "bool",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
        }
    }

    /// Bytes a value takes inside a row, or `None` for variable-width types.
    /// Booleans take one byte each: rows are read one at a time, so bit packing would save little
    /// and cost a shift and mask on every read.
    pub const fn fixed_width(self) -> Option<usize> {
        match self {
            DType::Utf8 => None,
            DType::Bool | DType::Int8 | DType::UInt8 => Some(1),
            DType::Int16 | DType::UInt16 => Some(2),
            DType::Int32 | DType::UInt32 | DType::Float32 => Some(4),
            DType::Int64 | DType::UInt64 | DType::Float64 => Some(8),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown dtype name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown dtype {0:?} (known: utf8, bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64)"
)]
pub struct UnknownDType(pub String);

impl FromStr for DType {
    type Err = UnknownDType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DType::ALL
            .into_iter()
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
    fn codes_and_names_round_trip_and_are_unique() {
        let mut codes = std::collections::HashSet::new();
        for t in DType::ALL {
            assert!(codes.insert(t.code()), "duplicate code for {t}");
            assert_eq!(DType::from_code(t.code()), Some(t));
            assert_eq!(t.name().parse::<DType>(), Ok(t));
        }
        assert_eq!(DType::from_code(0), None);
        assert_eq!(DType::from_code(200), None);
        assert!("float16x".parse::<DType>().is_err());
    }

    #[test]
    fn codes_are_stable() {
        // These codes are written into files: changing one breaks every stored segment.
        let codes: Vec<u8> = DType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(codes, (1..=12).collect::<Vec<u8>>());
    }
}
