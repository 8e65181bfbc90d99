//! Encoded keys: the bytes the key index of a segment stores and compares for each row.
//!
//! A table's key is made of components, columns in schema order (today exactly one, of type
//! utf8). The encoded key is the components concatenated, each written so that it delimits itself
//! except the last, which runs to the end of the key. A one-column utf8 key therefore encodes to
//! its UTF-8 bytes, as every segment written so far stores it. Below the API layer a key is only
//! these bytes: the table, the segments and the index never look inside them.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::{DType, TableSchema};

/// How a table's keys are encoded: its key columns and their types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCodec {
    column: String,
}

impl KeyCodec {
    /// The codec of `schema`'s key.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key column when it is missing, nullable or of a type keys
    /// cannot have (keys are utf8).
    pub fn new(schema: &TableSchema) -> Result<KeyCodec> {
        let Some(key) = schema.column(&schema.key) else {
            return Err(Error::invalid(format!(
                "key column {:?} is not among the columns",
                schema.key
            )));
        };
        if key.dtype != DType::Utf8 {
            return Err(Error::invalid(format!(
                "key column {:?} has dtype {}, keys must be utf8",
                schema.key, key.dtype
            )));
        }
        if key.nullable {
            return Err(Error::invalid(format!(
                "key column {:?} is nullable, keys must be declared \"nullable\": false",
                schema.key
            )));
        }
        Ok(KeyCodec {
            column: schema.key.clone(),
        })
    }

    /// The key columns, in order.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.column.as_str())
    }

    /// The encoded key of a key given as text (the API's form of a one-column key): for a utf8
    /// key, its bytes, borrowed.
    pub fn encode_text<'a>(&self, key: &'a str) -> Cow<'a, [u8]> {
        Cow::Borrowed(key.as_bytes())
    }

    /// The encoded key of one row whose key column holds `value` (a utf8 key's bytes).
    pub fn encode_value<'a>(&self, value: &'a [u8]) -> &'a [u8] {
        value
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
        assert_eq!(codec.columns().collect::<Vec<_>>(), ["id"]);
        assert_eq!(&*codec.encode_text("héllo"), "héllo".as_bytes());
        assert!(matches!(codec.encode_text("a"), Cow::Borrowed(_)));
    }
}
