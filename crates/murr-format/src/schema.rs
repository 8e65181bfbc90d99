//! Table schemas: the typed columns, in order, and which of them make the key.
//!
//! The JSON form comes in two generations, told apart by the top-level `key`:
//! - generation 1 names one utf8 key column at the top:
//!   `{"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}, "score": {"dtype": "float32"}}}`;
//! - generation 2 marks key columns (utf8 or integers; several make a compound key, in schema
//!   order) and may let a column take lossy writes:
//!   `{"columns": {"id": {"dtype": "int64", "nullable": false, "key": true}, "score": {"dtype": "float32", "strict": false}}}`.
//!
//! Column order is the order of the JSON object, and every output keeps it. A schema comes back
//! in the generation it was given in.

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

/// The name generation-2 answers give their first column (each row's key position in the
/// request); no generation-2 table may have a column of this name.
pub const IDX_COLUMN: &str = "_idx";

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// The column's name.
    pub name: String,
    /// The column's type.
    pub dtype: DType,
    /// Whether the column may hold nulls.
    pub nullable: bool,
    /// Whether writes must fit without loss (`false`: a float64 may be rounded into a float32
    /// column). Generation-2 schemas only; always `true` in generation 1.
    pub strict: bool,
}

impl ColumnDef {
    /// A column definition (strict).
    pub fn new(name: impl Into<String>, dtype: DType, nullable: bool) -> Self {
        ColumnDef {
            name: name.into(),
            dtype,
            nullable,
            strict: true,
        }
    }

    /// The column taking lossy writes when `strict` is false.
    #[must_use]
    pub fn with_strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }
}

/// Which generation of the API a schema was written in: it decides the schema's JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Generation {
    /// A top-level `"key"` naming one utf8 column (murr 0.1/0.2).
    #[default]
    V1,
    /// `"key": true` on each key column: compound, integer and utf8 keys (murr 0.3).
    V2,
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

/// A table's schema: its columns in order, which make the key, and how long rows live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// The key columns, in the order their values make the key (schema order in generation 2;
    /// exactly one in generation 1).
    pub keys: Vec<String>,
    /// The columns, in order.
    pub columns: Vec<ColumnDef>,
    /// Rows read as missing this many seconds after they were written; `None`: never.
    pub ttl: Option<u64>,
    /// The API generation the schema was written in.
    pub generation: Generation,
}

impl TableSchema {
    /// A generation-1 schema with the key column `key`; call [`TableSchema::validate`] before
    /// trusting it.
    pub fn new(key: impl Into<String>, columns: Vec<ColumnDef>) -> Self {
        TableSchema {
            keys: vec![key.into()],
            columns,
            ttl: None,
            generation: Generation::V1,
        }
    }

    /// A generation-2 schema whose key is the columns named `keys`, which are put in schema
    /// order (a name that is no column stays, last, for [`TableSchema::validate`] to report);
    /// call [`TableSchema::validate`] before trusting it.
    pub fn compound<S: AsRef<str>>(keys: &[S], columns: Vec<ColumnDef>) -> Self {
        let mut ordered: Vec<String> = columns
            .iter()
            .filter(|c| keys.iter().any(|k| k.as_ref() == c.name))
            .map(|c| c.name.clone())
            .collect();
        ordered.extend(
            keys.iter()
                .map(AsRef::as_ref)
                .filter(|k| !columns.iter().any(|c| c.name == *k))
                .map(str::to_owned),
        );
        let keys = ordered;
        TableSchema {
            keys,
            columns,
            ttl: None,
            generation: Generation::V2,
        }
    }

    /// Whether `name` is one of the key columns.
    pub fn is_key(&self, name: &str) -> bool {
        self.keys.iter().any(|k| k == name)
    }

    /// The schema with rows living `ttl` seconds (`None`: forever).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Option<u64>) -> Self {
        self.ttl = ttl;
        self
    }

    /// Checks the rules every table schema keeps: valid unique column names, at least one column,
    /// and a key that [`crate::KeyCodec`] can encode (generation 1: one `utf8` column;
    /// generation 2: one or more utf8 or integer columns; never nullable). Generation 2 reserves
    /// the column name [`IDX_COLUMN`]; generation 1 has no `strict: false`.
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
            match self.generation {
                Generation::V1 if !column.strict => {
                    return Err(Error::invalid(format!(
                        "column {:?}: \"strict\" belongs to generation-2 schemas (no top-level \"key\")",
                        column.name
                    )));
                }
                Generation::V2 if column.name == IDX_COLUMN => {
                    return Err(Error::invalid(format!(
                        "column name {IDX_COLUMN:?} is reserved: answers use it for each row's key position"
                    )));
                }
                _ => {}
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

    /// The positions of the key columns, in key order.
    ///
    /// # Panics
    /// If the schema was not validated and lacks a key column.
    pub fn key_positions(&self) -> Vec<usize> {
        self.keys
            .iter()
            .map(|k| {
                self.position(k)
                    .expect("a validated schema has its key columns")
            })
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnJson {
    dtype: DType,
    #[serde(default = "default_nullable")]
    nullable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

fn default_nullable() -> bool {
    true
}

/// Columns in JSON, with the key flags generation 2 writes (`keys` is `None` for generation 1).
struct OrderedColumns {
    columns: Vec<ColumnDef>,
    keys: Option<Vec<String>>,
}

impl Serialize for OrderedColumns {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.columns.len()))?;
        for c in &self.columns {
            let v2 = self.keys.as_ref();
            map.serialize_entry(
                &c.name,
                &ColumnJson {
                    dtype: c.dtype,
                    nullable: c.nullable,
                    key: v2.map(|keys| keys.contains(&c.name)),
                    strict: v2.map(|_| c.strict),
                },
            )?;
        }
        map.end()
    }
}

/// Columns as read: each with its `"key"` flag, if it had one.
struct ParsedColumns(Vec<(ColumnDef, Option<bool>)>);

impl ParsedColumns {
    /// The columns of a generation-1 schema, which has no `"key"` or `"strict"` in columns.
    fn v1(self) -> std::result::Result<Vec<ColumnDef>, String> {
        self.0
            .into_iter()
            .map(|(c, key)| {
                if key.is_some() || !c.strict {
                    let field = if key.is_some() { "key" } else { "strict" };
                    return Err(format!(
                        "column {:?}: {field:?} in a column belongs to generation-2 schemas, \
                         which have no top-level \"key\"",
                        c.name
                    ));
                }
                Ok(c)
            })
            .collect()
    }
}

impl<'de> Deserialize<'de> for ParsedColumns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ColumnsVisitor;
        impl<'de> Visitor<'de> for ColumnsVisitor {
            type Value = ParsedColumns;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of column name to {\"dtype\": ..., \"nullable\": ...}")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut columns: Vec<(ColumnDef, Option<bool>)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if columns.iter().any(|(c, _)| c.name == name) {
                        return Err(de::Error::custom(format!("column {name:?} appears twice")));
                    }
                    let spec: ColumnJson = map
                        .next_value()
                        .map_err(|e| de::Error::custom(format!("column {name:?}: {e}")))?;
                    columns.push((
                        ColumnDef {
                            name,
                            dtype: spec.dtype,
                            nullable: spec.nullable,
                            strict: spec.strict.unwrap_or(true),
                        },
                        spec.key,
                    ));
                }
                Ok(ParsedColumns(columns))
            }
        }
        deserializer.deserialize_map(ColumnsVisitor)
    }
}

#[derive(Serialize)]
struct SchemaJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    columns: OrderedColumns,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaIn {
    #[serde(default)]
    key: Option<String>,
    columns: ParsedColumns,
    #[serde(default, deserialize_with = "ttl_json")]
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
        let (key, keys) = match self.generation {
            Generation::V1 => (self.keys.first().cloned(), None),
            Generation::V2 => (None, Some(self.keys.clone())),
        };
        SchemaJson {
            key,
            columns: OrderedColumns {
                columns: self.columns.clone(),
                keys,
            },
            ttl: self.ttl,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TableSchema {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = SchemaIn::deserialize(deserializer)?;
        Ok(match json.key {
            Some(key) => TableSchema {
                keys: vec![key],
                columns: json.columns.v1().map_err(de::Error::custom)?,
                ttl: json.ttl,
                generation: Generation::V1,
            },
            None => {
                let keys = json
                    .columns
                    .0
                    .iter()
                    .filter(|(_, key)| *key == Some(true))
                    .map(|(c, _)| c.name.clone())
                    .collect::<Vec<_>>();
                if keys.is_empty() {
                    return Err(de::Error::custom(
                        "schema has no key: mark the key column(s) with \"key\": true \
                         (or name one utf8 column in a top-level \"key\")",
                    ));
                }
                TableSchema {
                    keys,
                    columns: json.columns.0.into_iter().map(|(c, _)| c).collect(),
                    ttl: json.ttl,
                    generation: Generation::V2,
                }
            }
        })
    }
}

/// The columns of a JSON object of column name to `{"dtype": ..., "nullable": ...}`, in order
/// (a PATCH's new columns; they may say `"strict"`, and `"key": false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnsJson(pub Vec<ColumnDef>);

impl<'de> Deserialize<'de> for ColumnsJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parsed = ParsedColumns::deserialize(deserializer)?;
        parsed
            .0
            .into_iter()
            .map(|(c, key)| {
                if key == Some(true) {
                    return Err(de::Error::custom(format!(
                        "column {:?}: a key column cannot be added to a table",
                        c.name
                    )));
                }
                Ok(c)
            })
            .collect::<Result<_, _>>()
            .map(ColumnsJson)
    }
}

impl Serialize for ColumnsJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v2 = self.0.iter().any(|c| !c.strict);
        OrderedColumns {
            columns: self.0.clone(),
            keys: v2.then(Vec::new),
        }
        .serialize(serializer)
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
