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
    }
}

/// A segment of `keys` with an int64 column (row number, null on every third row when `nulls`),
/// a float32 column and a utf8 column.
fn encode(keys: &[String], nulls: bool) -> Bytes {
    let cols = vec![
        spec("id", DType::Utf8, false),
        spec("n", DType::Int64, nulls),
        spec("f", DType::Float32, false),
        spec("s", DType::Utf8, nulls),
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
    let ColumnReader::Var(s_var) = view.reader(3) else {
        panic!("s is var")
    };
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
            assert_eq!(view.var_value(s_var, r), format!("value {r}").as_bytes());
        } else {
            assert!(view.var_value(s_var, r).is_empty());
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
        }
    }
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
    let bytes = encode(&keys(20), true);
    for cut in 0..bytes.len() {
        assert!(
            SegmentView::open(bytes.slice(..cut), true).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn find_many_agrees_with_find() {
    let k = keys(5000);
    let view = SegmentView::open(encode(&k, false), true).expect("valid");
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
    fn corruption_never_panics(flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4), verify in any::<bool>()) {
        let k = keys(50);
        let mut bytes = encode(&k, true).to_vec();
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
                }
            }
        }
    }

    #[test]
    fn any_keys_round_trip(set in proptest::collection::hash_set(".{0,12}", 0..200)) {
        let k: Vec<String> = set.into_iter().collect();
        let view = SegmentView::open(encode(&k, false), true).expect("valid");
        check(&view, &k, false);
    }
}
