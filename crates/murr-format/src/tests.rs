//! Round trips and corruption of whole segments.

use bytes::Bytes;
use proptest::prelude::*;

use crate::{ColumnReader, ColumnSpec, DType, Native, SegmentEncoder, SegmentView};

fn spec(name: &str, dtype: DType, has_nulls: bool) -> ColumnSpec {
    ColumnSpec {
        name: name.to_owned(),
        dtype,
        nullable: name != "id",
        has_nulls,
        inline_width: None,
    }
}

/// A segment of `keys` with an int64 column (row number, null on every third row when `nulls`),
/// a float32 column and a utf8 column; key and utf8 values in offsets + data sections.
fn encode(keys: &[String], nulls: bool) -> Bytes {
    encode_with(keys, nulls, false)
}

/// As [`encode`]; with `inline`, the key and the utf8 column are stored in the rows.
fn encode_with(keys: &[String], nulls: bool, inline: bool) -> Bytes {
    let width = |max: usize| inline.then(|| u8::try_from(max).expect("short values"));
    let key_width = width(keys.iter().map(String::len).max().unwrap_or(0));
    let s_width = width(format!("value {}", keys.len()).len());
    let cols = vec![
        ColumnSpec {
            inline_width: key_width,
            ..spec("id", DType::Utf8, false)
        },
        spec("n", DType::Int64, nulls),
        spec("f", DType::Float32, false),
        ColumnSpec {
            inline_width: s_width,
            ..spec("s", DType::Utf8, nulls)
        },
        spec("b", DType::Bool, false),
    ];
    let mut enc = SegmentEncoder::new(cols, 0, keys.len()).expect("valid layout");
    let width = enc.row_width();
    let (n_off, f_off, b_off) = (
        enc.fixed_offset(1).expect("fixed"),
        enc.fixed_offset(2).expect("fixed"),
        enc.fixed_offset(4).expect("fixed"),
    );
    for (r, key) in keys.iter().enumerate() {
        let null = nulls && r % 3 == 0;
        let row = &mut enc.rows_mut()[r * width..(r + 1) * width];
        if !null {
            (r as i64).write_le(&mut row[n_off..n_off + 8]);
        }
        (r as f32 * 0.5).write_le(&mut row[f_off..f_off + 4]);
        row[b_off] = u8::from(r % 2 == 0);
        if !null {
            enc.set_valid(1, r);
            enc.set_valid(3, r);
        }
        enc.push_var(0, Some(key.as_bytes()));
        let s = format!("value {r}");
        enc.push_var(3, (!null).then_some(s.as_bytes()));
    }
    let mut out = Vec::new();
    let written = enc.finish(&mut out).expect("encodes");
    assert_eq!(written, out.len() as u64);
    Bytes::from(out)
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("k{i}")).collect()
}

fn check(view: &SegmentView, keys: &[String], nulls: bool) {
    assert_eq!(view.rows(), keys.len());
    let ColumnReader::Fixed { offset: n_off, .. } = view.reader(1) else {
        panic!("n is fixed")
    };
    let s_reader = view.reader(3);
    assert!(matches!(
        s_reader,
        ColumnReader::Var(_) | ColumnReader::Inline { .. }
    ));
    for (r, key) in keys.iter().enumerate() {
        let found = view.find(key.as_bytes()).expect("every key is found") as usize;
        assert_eq!(found, r);
        assert_eq!(view.key(r), key.as_bytes());
        let row = view.row(r);
        let null = nulls && r % 3 == 0;
        assert_eq!(view.is_valid_in(1, row), !null);
        assert!(view.is_valid_in(2, row));
        if !null {
            assert_eq!(i64::read_le(&row[n_off..n_off + 8]), r as i64);
            assert_eq!(view.str_value(s_reader, r), format!("value {r}").as_bytes());
        } else {
            assert!(view.str_value(s_reader, r).is_empty());
        }
    }
    assert_eq!(view.find(b"absent"), None);
}

#[test]
fn round_trip_with_and_without_nulls() {
    for n in [0, 1, 7, 1000] {
        for nulls in [false, true] {
            let k = keys(n);
            let bytes = encode(&k, nulls);
            let view = SegmentView::open(bytes, true).expect("valid segment");
            check(&view, &k, nulls);
            // Null-free segments carry no validity bytes: 8 + 4 + 1 bytes rounded up to 8.
            if !nulls {
                assert_eq!(view.row_width(), 16);
            }
            let view = SegmentView::open(encode_with(&k, nulls, true), true).expect("valid");
            check(&view, &k, nulls);
            assert!(matches!(
                view.reader(0),
                ColumnReader::Inline { offset: 13, .. }
            ));
            assert!(matches!(view.reader(3), ColumnReader::Inline { .. }));
        }
    }
}

#[test]
fn inline_values_must_fit_and_only_utf8_goes_inline() {
    let id = ColumnSpec {
        inline_width: Some(2),
        ..spec("id", DType::Utf8, false)
    };
    let mut enc = SegmentEncoder::new(vec![id.clone()], 0, 2).expect("layout");
    enc.push_var(0, Some(b"ab"));
    enc.push_var(0, Some(b"abc"));
    let err = enc.finish(&mut Vec::new()).expect_err("too long");
    assert!(err.to_string().contains("inline width 2"), "{err}");
    let mut enc = SegmentEncoder::new(vec![id.clone()], 0, 2).expect("layout");
    enc.push_var(0, Some(b"ab"));
    let err = enc.finish(&mut Vec::new()).expect_err("one value short");
    assert!(err.to_string().contains("got 1 values for 2 rows"), "{err}");
    let int = ColumnSpec {
        inline_width: Some(2),
        ..spec("n", DType::Int64, false)
    };
    assert!(SegmentEncoder::new(vec![id.clone(), int], 0, 1).is_err());
    let wide = ColumnSpec {
        inline_width: Some(65),
        ..id
    };
    assert!(SegmentEncoder::new(vec![wide], 0, 1).is_err());
}

#[test]
fn inline_width_rule() {
    // One length for every key: inline.
    assert_eq!(crate::inline_width_for(1000, 11, 11_000), Some(11));
    // Empty strings fit in a length byte.
    assert_eq!(crate::inline_width_for(10, 0, 0), Some(0));
    // Too long for a row.
    assert_eq!(crate::inline_width_for(10, 65, 650), None);
    // One long value among short ones would pad every row: sections instead.
    assert_eq!(crate::inline_width_for(1000, 60, 1000 * 5 + 55), None);
}

#[test]
fn version_1_segments_still_read() {
    let mut bytes = encode(&keys(10), true).to_vec();
    let n = bytes.len();
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    bytes[n - 12..n - 8].copy_from_slice(&1u32.to_le_bytes());
    let view = SegmentView::open(Bytes::from(bytes.clone()), true).expect("version 1 reads");
    check(&view, &keys(10), true);
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    bytes[n - 12..n - 8].copy_from_slice(&3u32.to_le_bytes());
    let err = SegmentView::open(Bytes::from(bytes), true).expect_err("from the future");
    assert!(
        matches!(err, crate::Error::UnsupportedVersion { version: 3, .. }),
        "{err}"
    );
}

#[test]
fn layout_is_aligned_and_widest_first() {
    let view = SegmentView::open(encode(&keys(3), true), true).expect("valid");
    let meta = view.meta();
    assert_eq!(meta.rows_section.offset % 64, 0);
    assert_eq!(meta.index_section.offset % 64, 0);
    assert!(matches!(
        view.reader(1),
        ColumnReader::Fixed {
            offset: 0,
            width: 8
        }
    ));
    assert!(matches!(
        view.reader(2),
        ColumnReader::Fixed {
            offset: 8,
            width: 4
        }
    ));
    assert!(matches!(
        view.reader(4),
        ColumnReader::Fixed {
            offset: 12,
            width: 1
        }
    ));
}

#[test]
fn duplicate_keys_and_nulls_in_non_nullable_columns_are_refused() {
    let mut enc = SegmentEncoder::new(vec![spec("id", DType::Utf8, false)], 0, 2).expect("layout");
    enc.push_var(0, Some(b"a"));
    enc.push_var(0, Some(b"a"));
    assert!(enc.finish(&mut Vec::new()).is_err());
    let mut bad = spec("x", DType::Int8, true);
    bad.nullable = false;
    assert!(SegmentEncoder::new(vec![spec("id", DType::Utf8, false), bad], 0, 1).is_err());
    assert!(SegmentEncoder::new(vec![spec("id", DType::Int8, false)], 0, 1).is_err());
}

#[test]
fn every_truncation_is_an_error() {
    for inline in [false, true] {
        let bytes = encode_with(&keys(20), true, inline);
        for cut in 0..bytes.len() {
            assert!(
                SegmentView::open(bytes.slice(..cut), true).is_err(),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn find_many_agrees_with_find() {
    for inline in [false, true] {
        find_many_agrees_with_find_in(inline);
    }
}

fn find_many_agrees_with_find_in(inline: bool) {
    let k = keys(5000);
    let view = SegmentView::open(encode_with(&k, false, inline), true).expect("valid");
    let asked: Vec<String> = (0..3000).map(|i| format!("k{}", i * 3)).collect();
    let hashes: Vec<u64> = asked
        .iter()
        .map(|a| crate::hash_key(a.as_bytes()))
        .collect();
    let mut todo: Vec<u32> = (0..asked.len() as u32).collect();
    let mut got = vec![None; asked.len()];
    view.find_many(&asked, &hashes, &mut todo, |i, row| {
        got[i as usize] = Some(row)
    });
    for (i, a) in asked.iter().enumerate() {
        assert_eq!(got[i], view.find(a.as_bytes()), "{a}");
        assert_eq!(todo.contains(&(i as u32)), got[i].is_none(), "{a}");
    }
    assert!(todo.len() > 1000 && todo.len() < 2000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Flipping any bytes gives an error or a view whose reads stay in bounds; never a panic.
    #[test]
    fn corruption_never_panics(flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4), verify in any::<bool>(), inline in any::<bool>()) {
        let k = keys(50);
        let mut bytes = encode_with(&k, true, inline).to_vec();
        for (at, x) in flips {
            let i = at % bytes.len();
            bytes[i] ^= x;
        }
        let result = SegmentView::open(Bytes::from(bytes), verify);
        if verify {
            prop_assert!(result.is_err());
        }
        if let Ok(view) = result {
            for key in &k {
                if let Some(r) = view.find(key.as_bytes()) {
                    prop_assert!((r as usize) < view.rows());
                    let _ = view.row(r as usize);
                    let _ = view.str_value(view.reader(3), r as usize);
                }
            }
        }
    }

    #[test]
    fn any_keys_round_trip(set in proptest::collection::hash_set(".{0,12}", 0..200), inline in any::<bool>()) {
        let k: Vec<String> = set.into_iter().collect();
        let view = SegmentView::open(encode_with(&k, false, inline), true).expect("valid");
        check(&view, &k, false);
    }
}
