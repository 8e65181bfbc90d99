//! Table schemas: the key column and the typed columns, in order.
//!
//! The JSON form is the wire contract's `TableSchema`:
//! `{"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}, "score": {"dtype": "float32"}}}`.
//! Column order is the order of the JSON object, and every output keeps it.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DType;
use crate::error::{Error, Result};

/// The longest table or column name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Checks a table or column name: 1 to [`MAX_NAME_LEN`] bytes of `[A-Za-z0-9_.-]`, and not `.` or `..`.
///
/// # Errors
/// [`Error::Invalid`] naming what is wrong.
pub fn validate_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!("{what} name is empty")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "{what} name {:?}... is {} bytes long, the limit is {MAX_NAME_LEN}",
            &name[..name.floor_char_boundary(32)],
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(Error::invalid(format!(
            "{what} name {name:?} has the character {c:?}; names use only A-Z a-z 0-9 _ . -"
        )));
    }
    if name == "." || name == ".." {
        return Err(Error::invalid(format!("{what} name {name:?} is reserved")));
    }
    Ok(())
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// The column's name.
    pub name: String,
    /// The column's type.
    pub dtype: DType,
    /// Whether the column may hold nulls.
    pub nullable: bool,
}

impl ColumnDef {
    /// A column definition.
    pub fn new(name: impl Into<String>, dtype: DType, nullable: bool) -> Self {
        ColumnDef {
            name: name.into(),
            dtype,
            nullable,
        }
    }
}

/// The longest time to live: 100 years, in seconds.
pub const MAX_TTL_SECS: u64 = 100 * 365 * 86_400;

/// Parses a time to live: whole seconds as a number, or a string of a number and a unit,
/// `s`, `m`, `h` or `d` (`"90s"`, `"15m"`, `"12h"`, `"7d"`), or several (`"1d12h"`).
///
/// # Errors
/// [`Error::Invalid`] naming what is wrong: not a duration, zero, or above [`MAX_TTL_SECS`].
pub fn parse_ttl(text: &str) -> Result<u64> {
    let bad = || {
        Error::invalid(format!(
            "ttl {text:?} is not a duration: use seconds, or a number with a unit s, m, h or d \
             (\"7d\", \"12h\", \"1d12h\")"
        ))
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = t.parse::<u64>() {
        return check_ttl(n);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for ch in t.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    check_ttl(total)
}

fn check_ttl(secs: u64) -> Result<u64> {
    if secs == 0 {
        return Err(Error::invalid(
            "ttl is 0: a row would expire as it is written (leave ttl out, or null, to keep rows)",
        ));
    }
    if secs > MAX_TTL_SECS {
        return Err(Error::invalid(format!(
            "ttl of {secs} s is above the limit of {MAX_TTL_SECS} s (100 years)"
        )));
    }
    Ok(secs)
}

/// A table's schema: its columns in order, which one is the key, and how long rows live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// The name of the key column.
    pub key: String,
    /// The columns, in order.
    pub columns: Vec<ColumnDef>,
    /// Rows read as missing this many seconds after they were written; `None`: never.
    pub ttl: Option<u64>,
}

impl TableSchema {
    /// A schema; call [`TableSchema::validate`] before trusting it.
    pub fn new(key: impl Into<String>, columns: Vec<ColumnDef>) -> Self {
        TableSchema {
            key: key.into(),
            columns,
            ttl: None,
        }
    }

    /// The schema with rows living `ttl` seconds (`None`: forever).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Option<u64>) -> Self {
        self.ttl = ttl;
        self
    }

    /// Checks the rules every table schema keeps: valid unique column names, at least one column,
    /// and a key that [`crate::KeyCodec`] can encode (one column, `utf8`, not nullable).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the column and what is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.columns.is_empty() {
            return Err(Error::invalid("schema has no columns"));
        }
        let mut seen = std::collections::HashSet::with_capacity(self.columns.len());
        for column in &self.columns {
            validate_name("column", &column.name)?;
            if !seen.insert(column.name.as_str()) {
                return Err(Error::invalid(format!(
                    "column {:?} appears twice",
                    column.name
                )));
            }
        }
        crate::KeyCodec::new(self)?;
        if let Some(ttl) = self.ttl {
            check_ttl(ttl)?;
        }
        Ok(())
    }

    /// The column with this name.
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The position of the column with this name (a linear search: callers that look up many
    /// names build a map once).
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The position of the key column.
    ///
    /// # Panics
    /// If the schema was not validated and has no key column.
    pub fn key_position(&self) -> usize {
        self.position(&self.key)
            .expect("a validated schema has its key column")
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnJson {
    dtype: DType,
    #[serde(default = "default_nullable")]
    nullable: bool,
}

fn default_nullable() -> bool {
    true
}

struct OrderedColumns(Vec<ColumnDef>);

impl Serialize for OrderedColumns {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for c in &self.0 {
            map.serialize_entry(
                &c.name,
                &ColumnJson {
                    dtype: c.dtype,
                    nullable: c.nullable,
                },
            )?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for OrderedColumns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ColumnsVisitor;
        impl<'de> Visitor<'de> for ColumnsVisitor {
            type Value = OrderedColumns;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of column name to {\"dtype\": ..., \"nullable\": ...}")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut columns: Vec<ColumnDef> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if columns.iter().any(|c| c.name == name) {
                        return Err(de::Error::custom(format!("column {name:?} appears twice")));
                    }
                    let spec: ColumnJson = map
                        .next_value()
                        .map_err(|e| de::Error::custom(format!("column {name:?}: {e}")))?;
                    columns.push(ColumnDef {
                        name,
                        dtype: spec.dtype,
                        nullable: spec.nullable,
                    });
                }
                Ok(OrderedColumns(columns))
            }
        }
        deserializer.deserialize_map(ColumnsVisitor)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaJson {
    key: String,
    columns: OrderedColumns,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "ttl_json"
    )]
    ttl: Option<u64>,
}

/// A time to live in JSON: seconds, or a string [`parse_ttl`] reads, or null for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TtlJson(pub Option<u64>);

impl<'de> Deserialize<'de> for TtlJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TtlVisitor;
        impl Visitor<'_> for TtlVisitor {
            type Value = TtlJson;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a ttl: seconds, a duration such as \"7d\", or null")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TtlJson, E> {
                check_ttl(v).map(|s| TtlJson(Some(s))).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TtlJson, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("ttl {v} is negative"))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<TtlJson, E> {
                Err(E::custom(format!(
                    "ttl {v} is not a whole number of seconds"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TtlJson, E> {
                parse_ttl(v).map(|s| TtlJson(Some(s))).map_err(E::custom)
            }
            fn visit_unit<E: de::Error>(self) -> Result<TtlJson, E> {
                Ok(TtlJson(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<TtlJson, E> {
                Ok(TtlJson(None))
            }
        }
        deserializer.deserialize_any(TtlVisitor)
    }
}

fn ttl_json<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    TtlJson::deserialize(d).map(|t| t.0)
}

impl Serialize for TableSchema {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SchemaJson {
            key: self.key.clone(),
            columns: OrderedColumns(self.columns.clone()),
            ttl: self.ttl,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TableSchema {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = SchemaJson::deserialize(deserializer)?;
        Ok(TableSchema {
            key: json.key,
            columns: json.columns.0,
            ttl: json.ttl,
        })
    }
}

/// The columns of a JSON object of column name to `{"dtype": ..., "nullable": ...}`, in order
/// (a PATCH's new columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnsJson(pub Vec<ColumnDef>);

impl<'de> Deserialize<'de> for ColumnsJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        OrderedColumns::deserialize(deserializer).map(|c| ColumnsJson(c.0))
    }
}

impl Serialize for ColumnsJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        OrderedColumns(self.0.clone()).serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_column_order_and_defaults_nullable() {
        let text = r#"{"key":"id","columns":{"z":{"dtype":"float32"},"id":{"dtype":"utf8","nullable":false},"a":{"dtype":"int64","nullable":true}}}"#;
        let schema: TableSchema = serde_json::from_str(text).expect("valid schema");
        let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["z", "id", "a"]);
        assert!(schema.columns[0].nullable);
        schema.validate().expect("valid");
        let back = serde_json::to_string(&schema).expect("serializes");
        assert_eq!(
            back,
            r#"{"key":"id","columns":{"z":{"dtype":"float32","nullable":true},"id":{"dtype":"utf8","nullable":false},"a":{"dtype":"int64","nullable":true}}}"#
        );
    }

    #[test]
    fn json_rejects_unknown_fields_dtypes_and_duplicates() {
        for bad in [
            r#"{"key":"id","columns":{"id":{"dtype":"utf8","nullable":false}},"extra":1}"#,
            r#"{"key":"id","columns":{"id":{"dtype":"utf9","nullable":false}}}"#,
            r#"{"key":"id","columns":{"id":{"dtype":"utf8","nullable":false,"x":1}}}"#,
            r#"{"key":"id","columns":{"id":{"dtype":"utf8"},"id":{"dtype":"utf8"}}}"#,
            r#"{"columns":{"id":{"dtype":"utf8"}}}"#,
        ] {
            assert!(serde_json::from_str::<TableSchema>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ttl_spellings() {
        assert_eq!(parse_ttl("7d").ok(), Some(7 * 86_400));
        assert_eq!(parse_ttl("1d12h").ok(), Some(36 * 3600));
        assert_eq!(parse_ttl("90").ok(), Some(90));
        assert_eq!(parse_ttl("15m").ok(), Some(900));
        for bad in ["", "0", "0s", "7w", "d", "7d1", "-5", "1.5h", "36500000d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
        let text = r#"{"key":"id","columns":{"id":{"dtype":"utf8","nullable":false}},"ttl":"1h"}"#;
        let schema: TableSchema = serde_json::from_str(text).expect("ttl as a string");
        assert_eq!(schema.ttl, Some(3600));
        let back = serde_json::to_string(&schema).expect("serializes");
        assert!(back.ends_with(r#""ttl":3600}"#), "{back}");
        for bad in [
            r#""ttl":0"#,
            r#""ttl":-1"#,
            r#""ttl":1.5"#,
            r#""ttl":"soon""#,
            r#""ttl":[]"#,
        ] {
            let text = format!(r#"{{"key":"id","columns":{{"id":{{"dtype":"utf8"}}}},{bad}}}"#);
            assert!(serde_json::from_str::<TableSchema>(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn validate_names_the_problem() {
        let ok = |cols: Vec<ColumnDef>, key: &str| TableSchema::new(key, cols).validate();
        let id = ColumnDef::new("id", DType::Utf8, false);
        let err = ok(vec![id.clone()], "nope").expect_err("missing key");
        assert!(err.to_string().contains("\"nope\""), "{err}");
        let err = ok(vec![ColumnDef::new("id", DType::Int64, false)], "id").expect_err("int key");
        assert!(err.to_string().contains("utf8"), "{err}");
        let err =
            ok(vec![ColumnDef::new("id", DType::Utf8, true)], "id").expect_err("nullable key");
        assert!(err.to_string().contains("nullable"), "{err}");
        let err = ok(
            vec![id.clone(), ColumnDef::new("a b", DType::Bool, true)],
            "id",
        )
        .expect_err("bad name");
        assert!(err.to_string().contains("\"a b\""), "{err}");
        let err = ok(
            vec![id.clone(), ColumnDef::new("", DType::Bool, true)],
            "id",
        )
        .expect_err("empty");
        assert!(err.to_string().contains("empty"), "{err}");
        let long = "x".repeat(129);
        let err = ok(
            vec![id.clone(), ColumnDef::new(long, DType::Bool, true)],
            "id",
        )
        .expect_err("long");
        assert!(err.to_string().contains("128"), "{err}");
        ok(vec![id, ColumnDef::new("a.B-c_9", DType::Bool, true)], "id").expect("valid");
        assert!(validate_name("table", "..").is_err());
        assert!(validate_name("table", "a/b").is_err());
    }
}
