//! The JSON fetch request both front-ends read: `{"keys": [...], "columns": [...]}` as the HTTP
//! fetch body, plus `"table"` in a Flight ticket.
//!
//! Parsing it is on the hot path of every fetch (1000 keys are about 15 KB of JSON), so the
//! common shape (strings without escapes) is read by a small scanner that borrows every string
//! from the body: no allocation per key. Anything else (escapes, other whitespace, a wrong shape)
//! goes to `serde_json`, which reads what JSON allows and words the errors; the scanner only
//! accepts bodies that `serde_json` reads to the same values (a property test checks this).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// A fetch request (HTTP body) or ticket (Flight, with the table); parsed, its strings borrow
/// from the body where they hold no escapes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FetchRequest<'a> {
    /// The table (Flight tickets name it; the HTTP route has it in its path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(borrow, deserialize_with = "text_opt")]
    pub table: Option<Cow<'a, str>>,
    /// The keys, in the order the answer keeps.
    #[serde(borrow, deserialize_with = "texts")]
    pub keys: Vec<Cow<'a, str>>,
    /// The columns, in answer order.
    #[serde(borrow, deserialize_with = "texts")]
    pub columns: Vec<Cow<'a, str>>,
}

impl<'a> FetchRequest<'a> {
    /// Parses a fetch request.
    ///
    /// # Errors
    /// `serde_json`'s error for a body that is not a JSON object of these fields.
    pub fn from_json(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        match std::str::from_utf8(body).ok().and_then(scan) {
            Some(req) => Ok(req),
            None => serde_json::from_slice(body),
        }
    }
}

/// A string that borrows from the input when it can.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

fn texts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Cow<'de, str>>, D::Error> {
    Ok(Vec::<Text<'de>>::deserialize(d)?
        .into_iter()
        .map(|t| t.0)
        .collect())
}

fn text_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<Text<'de>>::deserialize(d)?.map(|t| t.0))
}

/// The fast path: `None` for anything but the plain shape, which `serde_json` then reads.
fn scan(body: &str) -> Option<FetchRequest<'_>> {
    let mut s = Scanner {
        b: body.as_bytes(),
        at: 0,
    };
    let (mut table, mut keys, mut columns) = (None, None, None);
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if s.peek() != Some(b'}') {
        loop {
            let field = s.string(body)?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let slot = match field {
                "keys" => &mut keys,
                "columns" => &mut columns,
                "table" if table.is_none() => {
                    table = Some(Cow::Borrowed(s.string(body)?));
                    s.ws();
                    if s.eat(b',').is_some() {
                        s.ws();
                        continue;
                    }
                    break;
                }
                _ => return None,
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(s.strings(body)?);
            s.ws();
            if s.eat(b',').is_none() {
                break;
            }
            s.ws();
        }
    }
    s.eat(b'}')?;
    s.ws();
    if s.at != s.b.len() {
        return None;
    }
    Some(FetchRequest {
        table,
        keys: keys?,
        columns: columns?,
    })
}

struct Scanner<'b> {
    b: &'b [u8],
    at: usize,
}

impl Scanner<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek() == Some(c)).then(|| self.at += 1)
    }

    #[inline]
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// A string without escapes or control characters; `body` is the same bytes as `self.b`,
    /// already known to be UTF-8, so a slice between two ASCII quotes is a `str`.
    #[inline]
    fn string<'s>(&mut self, body: &'s str) -> Option<&'s str> {
        self.eat(b'"')?;
        let start = self.at;
        let rest = &self.b[start..];
        let len = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        body.get(start..start + len)
    }

    fn strings<'s>(&mut self, body: &'s str) -> Option<Vec<Cow<'s, str>>> {
        self.eat(b'[')?;
        self.ws();
        // A rough guess from the body's size keeps the vector from regrowing.
        let mut out = Vec::with_capacity((self.b.len() - self.at) / 16);
        if self.eat(b']').is_some() {
            return Some(out);
        }
        loop {
            out.push(Cow::Borrowed(self.string(body)?));
            self.ws();
            if self.eat(b',').is_none() {
                break;
            }
            self.ws();
        }
        self.eat(b']')?;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn fast(body: &str) -> Option<FetchRequest<'_>> {
        scan(body)
    }

    #[test]
    fn plain_bodies_borrow_every_string() {
        let body = r#" { "keys" : ["a", "b c", ""], "columns": ["x"] } "#;
        let req = fast(body).expect("plain shape");
        assert_eq!(req.keys, ["a", "b c", ""]);
        assert_eq!(req.columns, ["x"]);
        assert!(req.table.is_none());
        assert!(req.keys.iter().all(|k| matches!(k, Cow::Borrowed(_))));
        let ticket = fast(r#"{"table":"t","keys":[],"columns":[]}"#).expect("ticket");
        assert_eq!(ticket.table.as_deref(), Some("t"));
    }

    #[test]
    fn escapes_and_odd_shapes_go_to_serde() {
        for body in [
            r#"{"keys": ["a\"b"], "columns": []}"#,
            r#"{"keys": ["\u00e9"], "columns": []}"#,
            r#"{"keys": ["a"], "columns": [], "keys": ["b"]}"#,
            r#"{"keys": ["a"]}"#,
            r#"{"keys": [1], "columns": []}"#,
            r#"{"keys": ["a"], "columns": [], "x": 1}"#,
            r#"{"keys": ["a",], "columns": []}"#,
            r#"{"keys": ["a"], "columns": []} x"#,
            r#"{"keys": ["a"] "columns": []}"#,
            "{\"keys\": [\"a\tb\"], \"columns\": []}",
        ] {
            assert!(fast(body).is_none(), "{body}");
        }
        let req = FetchRequest::from_json(br#"{"keys": ["a\"b", "\u00e9"], "columns": []}"#)
            .expect("valid JSON");
        assert_eq!(req.keys, ["a\"b", "é"]);
        let err = FetchRequest::from_json(br#"{"keys": ["a"]}"#).expect_err("no columns");
        assert!(err.to_string().contains("missing field `columns`"), "{err}");
        let err = FetchRequest::from_json(br#"{"keys": ["a"], "columns": [], "x": 1}"#)
            .expect_err("unknown field");
        assert!(err.to_string().contains("unknown field `x`"), "{err}");
        let err = FetchRequest::from_json(br#"{"keys": [1], "columns": []}"#).expect_err("number");
        assert!(err.to_string().contains("expected a string"), "{err}");
        assert!(FetchRequest::from_json(b"{\"keys\": [\"\xff\"], \"columns\": []}").is_err());
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just(",".to_owned()),
            Just(":".to_owned()),
            Just(" ".to_owned()),
            Just("\"keys\"".to_owned()),
            Just("\"columns\"".to_owned()),
            Just("\"table\"".to_owned()),
            Just("1".to_owned()),
            Just("null".to_owned()),
            "\"[a-z\\\\\"\u{e9}\t ]{0,4}\"".prop_map(|s| s),
        ]
    }

    proptest! {
        /// Whatever the scanner accepts, serde_json reads to the same request.
        #[test]
        fn scanner_agrees_with_serde(pieces in proptest::collection::vec(piece(), 0..24)) {
            let body = pieces.concat();
            if let Some(req) = fast(&body) {
                let slow: FetchRequest<'_> = serde_json::from_str(&body).expect("serde reads what the scanner read");
                prop_assert_eq!(req, slow);
            }
        }

        /// Requests of any keys round-trip through serde_json's writer and the parser.
        #[test]
        fn any_keys_round_trip(keys in proptest::collection::vec(".{0,8}", 0..20), table in proptest::option::of("[a-z]{1,5}")) {
            #[derive(serde::Serialize)]
            struct Out<'x> { #[serde(skip_serializing_if = "Option::is_none")] table: Option<&'x str>, keys: &'x [String], columns: [&'x str; 1] }
            let body = serde_json::to_vec(&Out { table: table.as_deref(), keys: &keys, columns: ["c"] }).expect("serializes");
            let req = FetchRequest::from_json(&body).expect("parses");
            prop_assert_eq!(req.keys, keys);
            prop_assert_eq!(req.table.as_deref(), table.as_deref());
            prop_assert_eq!(req.columns, ["c"]);
        }
    }
}
