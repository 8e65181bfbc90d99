//! Encoded keys: the bytes the key index of a segment stores and compares for each row.
//!
//! A table's key is made of components, its key columns in key order (one utf8 column in a
//! generation-1 schema; one or more utf8 or integer columns in generation 2). The encoded key is
//! the components concatenated, each written so that it delimits itself, except a utf8 component
//! that comes last, which runs to the end of the key:
//! - a signed integer is its zigzag LEB128 varint (`0 → 00`, `-1 → 01`, `1 → 02`, ...);
//! - an unsigned integer is its LEB128 varint;
//! - a utf8 value is its length as a LEB128 varint and then its bytes, or, last, just its bytes.
//!
//! Every integer type encodes the value, not its width: `7i32` and `7i64` encode alike, so a key
//! given in a wider type than the column finds the same row. A one-column utf8 key encodes to its
//! UTF-8 bytes, as every segment written so far stores it, and segments use that column as their
//! key column. Any other key is stored in an extra binary column of the segment,
//! [`ENCODED_KEY_COLUMN`]. Below the API layer a key is only these bytes: the table, the
//! segments and the index never look inside them.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::schema::Generation;
use crate::{DType, TableSchema};

/// The segment column holding encoded keys when the key is not one utf8 column. Its name cannot
/// be a table column's (`:` is not allowed in names).
pub const ENCODED_KEY_COLUMN: &str = ":key";

/// How one key component is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPart {
    /// utf8 bytes.
    Utf8,
    /// A signed integer (int8 to int64): zigzag varint.
    Signed,
    /// An unsigned integer (uint8 to uint64): varint.
    Unsigned,
}

impl KeyPart {
    fn of(dtype: DType) -> Option<KeyPart> {
        match dtype {
            DType::Utf8 => Some(KeyPart::Utf8),
            DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64 => Some(KeyPart::Signed),
            DType::UInt8 | DType::UInt16 | DType::UInt32 | DType::UInt64 => Some(KeyPart::Unsigned),
            _ => None,
        }
    }
}

/// How a table's keys are encoded: its key columns and their types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCodec {
    columns: Vec<(String, DType)>,
}

impl KeyCodec {
    /// The codec of `schema`'s key.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key column when it is missing, nullable or of a type keys
    /// cannot have (utf8 in generation 1; utf8 or an integer type in generation 2), or when a
    /// generation-1 schema has more than one key column.
    pub fn new(schema: &TableSchema) -> Result<KeyCodec> {
        if schema.keys.is_empty() {
            return Err(Error::invalid(
                "schema has no key: mark the key column(s) with \"key\": true",
            ));
        }
        if schema.generation == Generation::V1 && schema.keys.len() > 1 {
            return Err(Error::invalid(
                "a generation-1 schema has one key column; mark several with \"key\": true",
            ));
        }
        let mut columns = Vec::with_capacity(schema.keys.len());
        for name in &schema.keys {
            let Some(key) = schema.column(name) else {
                return Err(Error::invalid(format!(
                    "key column {name:?} is not among the columns"
                )));
            };
            let fits = match schema.generation {
                Generation::V1 => key.dtype == DType::Utf8,
                Generation::V2 => KeyPart::of(key.dtype).is_some(),
            };
            if !fits {
                let allowed = match schema.generation {
                    Generation::V1 => "keys must be utf8",
                    Generation::V2 => "keys must be utf8 or an integer type",
                };
                return Err(Error::invalid(format!(
                    "key column {name:?} has dtype {}, {allowed}",
                    key.dtype
                )));
            }
            if key.nullable {
                return Err(Error::invalid(format!(
                    "key column {name:?} is nullable, keys must be declared \"nullable\": false"
                )));
            }
            if columns.iter().any(|(n, _)| n == name) {
                return Err(Error::invalid(format!("key column {name:?} appears twice")));
            }
            columns.push((name.clone(), key.dtype));
        }
        Ok(KeyCodec { columns })
    }

    /// The key columns and their types, in key order.
    pub fn columns(&self) -> impl ExactSizeIterator<Item = (&str, DType)> {
        self.columns.iter().map(|(n, d)| (n.as_str(), *d))
    }

    /// How component `i` is encoded.
    pub fn part(&self, i: usize) -> KeyPart {
        KeyPart::of(self.columns[i].1).expect("checked in new")
    }

    /// Whether the key is one utf8 column, whose values are the encoded keys (and the segment's
    /// key column); otherwise segments store [`ENCODED_KEY_COLUMN`].
    pub fn is_text(&self) -> bool {
        self.columns.len() == 1 && self.columns[0].1 == DType::Utf8
    }

    /// The column a segment stores the keys in: the key column itself for a key of one utf8
    /// column ([`KeyCodec::is_text`]), [`ENCODED_KEY_COLUMN`] otherwise.
    pub fn stored_column(&self) -> &str {
        if self.is_text() {
            &self.columns[0].0
        } else {
            ENCODED_KEY_COLUMN
        }
    }

    /// The encoded key of a key given as text (the generation-1 API's form of a key), borrowed.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the key is not one utf8 column.
    pub fn encode_text<'a>(&self, key: &'a str) -> Result<Cow<'a, [u8]>> {
        if self.is_text() {
            Ok(Cow::Borrowed(key.as_bytes()))
        } else {
            Err(self.not_text())
        }
    }

    /// The error a key given as one string gets when the table's key is not one utf8 column.
    pub fn not_text(&self) -> Error {
        let names: Vec<String> = self
            .columns
            .iter()
            .map(|(n, d)| format!("{n:?} ({d})"))
            .collect();
        Error::invalid(format!(
            "the table's key is {}: send keys as {{\"keys\": {{\"<column>\": [...]}}}}, \
             one list per key column",
            names.join(", ")
        ))
    }
}

/// Appends component values to an encoded key.
pub mod put {
    /// Appends a LEB128 varint.
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// Appends a signed integer component (zigzag varint).
    pub fn signed(out: &mut Vec<u8>, v: i64) {
        varint(out, ((v << 1) ^ (v >> 63)) as u64);
    }

    /// Appends an unsigned integer component.
    pub fn unsigned(out: &mut Vec<u8>, v: u64) {
        varint(out, v);
    }

    /// Appends a utf8 component; `last` when no component follows (its bytes alone).
    pub fn utf8(out: &mut Vec<u8>, v: &[u8], last: bool) {
        if !last {
            varint(out, v.len() as u64);
        }
        out.extend_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ColumnDef;

    #[test]
    fn a_utf8_key_encodes_to_its_bytes() {
        let schema = TableSchema::new(
            "id",
            vec![
                ColumnDef::new("x", DType::Int8, true),
                ColumnDef::new("id", DType::Utf8, false),
            ],
        );
        let codec = KeyCodec::new(&schema).expect("valid key");
        assert!(codec.is_text());
        assert_eq!(codec.columns().collect::<Vec<_>>(), [("id", DType::Utf8)]);
        assert_eq!(
            &*codec.encode_text("héllo").expect("text"),
            "héllo".as_bytes()
        );
        assert!(matches!(codec.encode_text("a"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn compound_keys_take_utf8_and_integers_in_schema_order() {
        let schema = TableSchema::compound(
            &["item", "user"],
            vec![
                ColumnDef::new("user", DType::Utf8, false),
                ColumnDef::new("score", DType::Float32, true),
                ColumnDef::new("item", DType::Int64, false),
            ],
        );
        assert_eq!(schema.keys, ["user", "item"]);
        let codec = KeyCodec::new(&schema).expect("valid key");
        assert!(!codec.is_text());
        assert_eq!(codec.part(0), KeyPart::Utf8);
        assert_eq!(codec.part(1), KeyPart::Signed);
        let err = codec.encode_text("a").expect_err("not text");
        assert!(
            err.to_string()
                .contains("\"user\" (utf8), \"item\" (int64)"),
            "{err}"
        );
        for bad in [DType::Float64, DType::Binary, DType::Bool] {
            let schema = TableSchema::compound(&["k"], vec![ColumnDef::new("k", bad, false)]);
            assert!(KeyCodec::new(&schema).is_err(), "{bad}");
        }
        let nullable = TableSchema::compound(&["k"], vec![ColumnDef::new("k", DType::Int32, true)]);
        assert!(KeyCodec::new(&nullable).is_err());
        let unknown = TableSchema::compound(
            &["k", "nope"],
            vec![ColumnDef::new("k", DType::Int32, false)],
        );
        let err = KeyCodec::new(&unknown).expect_err("no such column");
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }

    #[test]
    fn components_delimit_themselves() {
        let mut out = Vec::new();
        put::signed(&mut out, 0);
        put::signed(&mut out, -1);
        put::signed(&mut out, 1);
        put::signed(&mut out, 64);
        assert_eq!(out, [0, 1, 2, 0x80, 0x01]);
        out.clear();
        put::signed(&mut out, i64::MIN);
        assert_eq!(out.len(), 10);
        out.clear();
        put::unsigned(&mut out, u64::MAX);
        assert_eq!(out.len(), 10);
        // ("ab", 1) and ("a", ...) never share bytes by accident: the length comes first.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        put::utf8(&mut a, b"ab", false);
        put::signed(&mut a, 1);
        put::utf8(&mut b, b"a", false);
        put::signed(&mut b, 98);
        assert_ne!(a, b);
        out.clear();
        put::utf8(&mut out, b"xyz", true);
        assert_eq!(out, b"xyz");
    }
}
