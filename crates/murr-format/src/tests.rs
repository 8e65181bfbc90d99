//! Round trips and corruption of whole segments.

use bytes::Bytes;
use proptest::prelude::*;

use crate::{
    ColumnSpec, DType, Native, SegmentEncoder, SegmentView, StorageKind, ValueStats, Verify,
    WriteTimes,
};

fn spec(name: &str, dtype: DType, has_nulls: bool) -> ColumnSpec {
    ColumnSpec {
        name: name.to_owned(),
        dtype,
        nullable: name != "id",
        has_nulls,
        stats: ValueStats::UNKNOWN,
    }
}

/// Stats that tell the encoder the values' true sizes (short strings then go inline).
fn measured(values: impl Iterator<Item = usize>) -> ValueStats {
    let mut stats = ValueStats {
        max_len: 0,
        total_len: 0,
        values: usize::MAX,
    };
    for len in values {
        stats.max_len = stats.max_len.max(len);
        stats.total_len += len;
    }
    stats
}

/// A segment of `keys` with an int64 column (row number, null on every third row when `nulls`),
/// a float32 column and a utf8 column; key and utf8 values in offsets + data sections.
fn encode(keys: &[String], nulls: bool) -> Bytes {
    encode_with(keys, nulls, false)
}

/// As [`encode`]; with `inline`, the key and the utf8 column are stored in the rows.
fn encode_with(keys: &[String], nulls: bool, inline: bool) -> Bytes {
    encode_windowed(keys, nulls, inline, None)
}

/// As [`encode_with`]; with a `window`, a streaming encoder writes the rows that many at a time.
fn encode_windowed(keys: &[String], nulls: bool, inline: bool, window: Option<usize>) -> Bytes {
    // Measured stats let the encoder put the short strings inline; unknown ones keep them in
    // sections.
    let stats = |lens: Vec<usize>| {
        if inline {
            measured(lens.into_iter())
        } else {
            ValueStats::UNKNOWN
        }
    };
    let cols = vec![
        ColumnSpec {
            stats: stats(keys.iter().map(String::len).collect()),
            ..spec("id", DType::Utf8, false)
        },
        spec("n", DType::Int64, nulls),
        spec("f", DType::Float32, false),
        ColumnSpec {
            // Every row's value, nulls counted as present: the stats only need to bound them.
            stats: stats(
                (0..keys.len())
                    .map(|r| format!("value {r}").len())
                    .collect(),
            ),
            ..spec("s", DType::Utf8, nulls)
        },
        spec("b", DType::Bool, false),
    ];
    let mut enc = match window {
        None => SegmentEncoder::new(cols, 0, keys.len(), WriteTimes::at(0)),
        Some(w) => SegmentEncoder::streaming(cols, 0, keys.len(), WriteTimes::at(0), w),
    }
    .expect("valid layout");
    let mut out = Vec::new();
    let width = enc.row_width();
    let (n_off, f_off, b_off) = (
        enc.fixed_offset(1).expect("fixed"),
        enc.fixed_offset(2).expect("fixed"),
        enc.fixed_offset(4).expect("fixed"),
    );
    let mut start = 0;
    for (r, key) in keys.iter().enumerate() {
        let null = nulls && r % 3 == 0;
        if r - start == enc.window() {
            enc.flush_rows(&mut out, r - start).expect("flushes");
            start = r;
        }
        let (r, at) = (r - start, r);
        let row = &mut enc.rows_mut()[r * width..(r + 1) * width];
        if !null {
            (at as i64).write_le(&mut row[n_off..n_off + 8]);
        }
        (at as f32 * 0.5).write_le(&mut row[f_off..f_off + 4]);
        row[b_off] = u8::from(at % 2 == 0);
        if !null {
            enc.set_valid(1, r);
            enc.set_valid(3, r);
        }
        enc.push_var(0, Some(key.as_bytes()));
        let s = format!("value {at}");
        enc.push_var(3, (!null).then_some(s.as_bytes()));
    }
    let written = enc.finish(&mut out).expect("encodes");
    assert_eq!(written, out.len() as u64);
    Bytes::from(out)
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("k{i}")).collect()
}

fn check(view: &SegmentView, keys: &[String], nulls: bool) {
    assert_eq!(view.rows(), keys.len());
    let n_col = view.column(1);
    assert_eq!(n_col.kind(), StorageKind::Fixed);
    let s_col = view.column(3);
    assert_ne!(s_col.kind(), StorageKind::Fixed);
    for (r, key) in keys.iter().enumerate() {
        let found = view.find(key.as_bytes()).expect("every key is found") as usize;
        assert_eq!(found, r);
        assert_eq!(view.key(r), key.as_bytes());
        let row = view.row(r);
        let null = nulls && r % 3 == 0;
        assert_eq!(n_col.is_valid(row), !null);
        assert!(view.column(2).is_valid(row));
        if !null {
            assert_eq!(n_col.fixed::<i64>(row), r as i64);
            assert_eq!(s_col.bytes(r, row), format!("value {r}").as_bytes());
        } else {
            assert!(s_col.bytes(r, row).is_empty());
        }
    }
    assert_eq!(view.find(b"absent"), None);
}

#[test]
fn a_streamed_segment_is_the_segment_built_whole() {
    let keys = keys(300);
    for (nulls, inline) in [(false, false), (true, false), (false, true), (true, true)] {
        let whole = encode_with(&keys, nulls, inline);
        for window in [1, 7, 64, 299, 300, 1000] {
            let streamed = encode_windowed(&keys, nulls, inline, Some(window));
            assert!(
                streamed == whole,
                "window {window}, nulls {nulls}, inline {inline}: the bytes differ"
            );
        }
        let view = SegmentView::open(whole, Verify::Full).expect("opens");
        check(&view, &keys, nulls);
    }
}

#[test]
fn a_streaming_encoder_refuses_more_rows_than_its_window_or_segment() {
    let cols = vec![spec("id", DType::Utf8, false)];
    let mut enc = SegmentEncoder::streaming(cols, 0, 5, WriteTimes::at(0), 2).expect("layout");
    assert_eq!(enc.window(), 2);
    let mut out = Vec::new();
    assert!(enc.flush_rows(&mut out, 3).is_err(), "more than the window");
    for k in ["a", "b"] {
        enc.push_var(0, Some(k.as_bytes()));
    }
    enc.flush_rows(&mut out, 2).expect("a window");
    for k in ["c", "d"] {
        enc.push_var(0, Some(k.as_bytes()));
    }
    enc.flush_rows(&mut out, 2).expect("a window");
    assert!(
        enc.flush_rows(&mut out, 2).is_err(),
        "past the segment's rows"
    );
    enc.push_var(0, Some(b"e"));
    enc.finish(&mut out)
        .expect("the last row is written by finish");
    let view = SegmentView::open(Bytes::from(out), Verify::Full).expect("opens");
    for (r, k) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        assert_eq!(view.find(k.as_bytes()), Some(r as u32));
    }
}

#[test]
fn round_trip_with_and_without_nulls() {
    for n in [0, 1, 7, 1000] {
        for nulls in [false, true] {
            let k = keys(n);
            let bytes = encode(&k, nulls);
            let view = SegmentView::open(bytes, Verify::Full).expect("valid segment");
            check(&view, &k, nulls);
            // Null-free segments carry no validity bytes: 8 + 4 + 1 bytes rounded up to 8.
            if !nulls {
                assert_eq!(view.row_width(), 16);
            }
            let view =
                SegmentView::open(encode_with(&k, nulls, true), Verify::Full).expect("valid");
            check(&view, &k, nulls);
            assert_eq!(view.meta().columns[0].storage.kind(), StorageKind::Inline);
            assert!(matches!(
                view.meta().columns[0].storage,
                crate::Storage::Inline { offset: 13, .. }
            ));
            assert_eq!(view.column(3).kind(), StorageKind::Inline);
        }
    }
}

#[test]
fn inline_values_must_fit_and_the_encoder_chooses_the_storage() {
    // Stats that promise values of at most 2 bytes: the encoder puts the column inline.
    let id = ColumnSpec {
        stats: ValueStats {
            max_len: 2,
            total_len: 4,
            values: usize::MAX,
        },
        ..spec("id", DType::Utf8, false)
    };
    let enc = SegmentEncoder::new(vec![id.clone()], 0, 2, WriteTimes::at(0)).expect("layout");
    assert_eq!(enc.storage_kind(0), StorageKind::Inline);
    let mut enc = SegmentEncoder::new(vec![id.clone()], 0, 2, WriteTimes::at(0)).expect("layout");
    enc.push_var(0, Some(b"ab"));
    enc.push_var(0, Some(b"abc"));
    let err = enc.finish(&mut Vec::new()).expect_err("too long");
    assert!(err.to_string().contains("inline width 2"), "{err}");
    let mut enc = SegmentEncoder::new(vec![id.clone()], 0, 2, WriteTimes::at(0)).expect("layout");
    enc.push_var(0, Some(b"ab"));
    let err = enc.finish(&mut Vec::new()).expect_err("one value short");
    assert!(err.to_string().contains("got 1 values for 2 rows"), "{err}");
    // Values too long for a row go to sections; fixed-width types stay fixed whatever the stats.
    let wide = ColumnSpec {
        stats: ValueStats {
            max_len: 65,
            total_len: 130,
            values: usize::MAX,
        },
        ..id
    };
    let int = ColumnSpec {
        stats: ValueStats {
            max_len: 2,
            total_len: 2,
            values: usize::MAX,
        },
        ..spec("n", DType::Int64, false)
    };
    let enc = SegmentEncoder::new(vec![wide, int], 0, 2, WriteTimes::at(0)).expect("layout");
    assert_eq!(enc.storage_kind(0), StorageKind::Var);
    assert_eq!(enc.storage_kind(1), StorageKind::Fixed);
}

#[test]
fn versions_from_the_future_are_refused() {
    let mut bytes = encode(&keys(10), true).to_vec();
    let n = bytes.len();
    for v in [0u32, 6] {
        bytes[8..12].copy_from_slice(&v.to_le_bytes());
        bytes[n - 12..n - 8].copy_from_slice(&v.to_le_bytes());
        let err = SegmentView::open(Bytes::from(bytes.clone()), Verify::Full).expect_err("unknown");
        assert!(
            matches!(err, crate::Error::UnsupportedVersion { version, .. } if version == v),
            "{err}"
        );
    }
}

#[test]
fn each_segment_hashes_with_its_own_seed() {
    let k = keys(100);
    let seeded = |seed: u64| {
        let cols = vec![spec("id", DType::Utf8, false)];
        let mut enc = SegmentEncoder::new(cols, 0, k.len(), WriteTimes::at(0))
            .expect("layout")
            .with_hash_seed(seed);
        for key in &k {
            enc.push_var(0, Some(key.as_bytes()));
        }
        let mut out = Vec::new();
        enc.finish(&mut out).expect("encodes");
        SegmentView::open(Bytes::from(out), Verify::Full).expect("valid")
    };
    let (a, b) = (seeded(1), seeded(2));
    assert_eq!((a.hash_seed(), b.hash_seed()), (1, 2));
    assert_ne!(a.hash(b"k1"), b.hash(b"k1"));
    for (r, key) in k.iter().enumerate() {
        assert_eq!(a.find(key.as_bytes()), Some(r as u32));
        assert_eq!(b.find(key.as_bytes()), Some(r as u32));
    }
    // A version-3 footer with the seed-0 algorithm code and a non-zero seed is corrupt.
    let meta = a.meta();
    assert_eq!(meta.hash_algo, crate::index::HASH_XXH3_64_SEEDED);
}

#[test]
fn layout_is_aligned_and_widest_first() {
    let view = SegmentView::open(encode(&keys(3), true), Verify::Full).expect("valid");
    let meta = view.meta();
    assert_eq!(meta.rows_section.offset % 64, 0);
    assert_eq!(meta.index_section.offset % 64, 0);
    assert_eq!(view.column(1).fixed_offset(), Some(0));
    assert_eq!(view.column(2).fixed_offset(), Some(8));
    assert_eq!(view.column(4).fixed_offset(), Some(12));
}

#[test]
fn duplicate_keys_and_nulls_in_non_nullable_columns_are_refused() {
    let mut enc = SegmentEncoder::new(
        vec![spec("id", DType::Utf8, false)],
        0,
        2,
        WriteTimes::at(0),
    )
    .expect("layout");
    enc.push_var(0, Some(b"a"));
    enc.push_var(0, Some(b"a"));
    assert!(enc.finish(&mut Vec::new()).is_err());
    let mut bad = spec("x", DType::Int8, true);
    bad.nullable = false;
    assert!(
        SegmentEncoder::new(
            vec![spec("id", DType::Utf8, false), bad],
            0,
            1,
            WriteTimes::at(0)
        )
        .is_err()
    );
    assert!(
        SegmentEncoder::new(
            vec![spec("id", DType::Int8, false)],
            0,
            1,
            WriteTimes::at(0)
        )
        .is_err()
    );
}

#[test]
fn every_truncation_is_an_error() {
    for inline in [false, true] {
        let bytes = encode_with(&keys(20), true, inline);
        for cut in 0..bytes.len() {
            assert!(
                SegmentView::open(bytes.slice(..cut), Verify::Full).is_err(),
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
    let view = SegmentView::open(encode_with(&k, false, inline), Verify::Full).expect("valid");
    let asked: Vec<String> = (0..3000).map(|i| format!("k{}", i * 3)).collect();
    let hashes: Vec<u64> = asked.iter().map(|a| view.hash(a.as_bytes())).collect();
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
        let result = SegmentView::open(Bytes::from(bytes), if verify { Verify::Full } else { Verify::FooterOnly });
        if verify {
            prop_assert!(result.is_err());
        }
        if let Ok(view) = result {
            for key in &k {
                if let Some(r) = view.find(key.as_bytes()) {
                    prop_assert!((r as usize) < view.rows());
                    let row = view.row(r as usize);
                    let _ = view.column(3).bytes(r as usize, row);
                }
            }
        }
    }

    #[test]
    fn any_keys_round_trip(set in proptest::collection::hash_set(".{0,12}", 0..200), inline in any::<bool>()) {
        let k: Vec<String> = set.into_iter().collect();
        let view = SegmentView::open(encode_with(&k, false, inline), Verify::Full).expect("valid");
        check(&view, &k, false);
    }
}

/// Segments written by the released code (`tests/fixtures/data-0.1`): a version-1 segment with
/// its keys in sections, and a version-2 one with its keys inline.
#[test]
fn segments_written_by_release_0_1_read() {
    let v1 = Bytes::from_static(include_bytes!(
        "../../../tests/fixtures/data-0.1/tables/longkeys/seg-18ebc8188eff6fb5-0000000001.murr"
    ));
    let view = SegmentView::open(v1, Verify::Full).expect("version 1 reads");
    assert_eq!(view.rows(), 5);
    assert_eq!(view.column(0).kind(), StorageKind::Var);
    for r in 0..5 {
        let key = format!("{}-{r}", "long key ".repeat(r * 10 + 1));
        assert_eq!(view.key(r), key.as_bytes());
        assert_eq!(view.find(key.as_bytes()), Some(r as u32));
        let x = view.column(1);
        assert_eq!(x.is_valid(view.row(r)), r != 2);
        if r != 2 {
            assert_eq!(x.fixed::<i32>(view.row(r)), r as i32);
        }
    }
    let v2 = Bytes::from_static(include_bytes!(
        "../../../tests/fixtures/data-0.1/tables/items/seg-18ebc8188dc66492-0000000001.murr"
    ));
    let view = SegmentView::open(v2, Verify::Full).expect("version 2 reads");
    assert_eq!(view.rows(), 3);
    assert_eq!(view.column(0).kind(), StorageKind::Inline);
    assert_eq!(view.find(b"k2"), Some(1));
    let tag = view.column(3);
    assert_eq!(tag.kind(), StorageKind::Var);
    assert_eq!(tag.bytes(0, view.row(0)), b"a");
    assert!(!tag.is_valid(view.row(1)));
}

/// Lists: a row's list (`None` = null), each item's bytes (`None` = a null item).
type ListRows = Vec<Option<Vec<Option<Vec<u8>>>>>;

/// A segment of key `id` (`k0`, `k1`, ...) and one list column `l` of `dtype` holding `rows`.
fn encode_lists(dtype: DType, rows: &ListRows) -> Bytes {
    let cols = vec![
        spec("id", DType::Utf8, false),
        spec("l", dtype, rows.iter().any(Option::is_none)),
    ];
    let mut enc = SegmentEncoder::new(cols, 0, rows.len(), WriteTimes::at(0)).expect("layout");
    assert_eq!(enc.storage_kind(1), StorageKind::List);
    for (r, list) in rows.iter().enumerate() {
        enc.push_var(0, Some(format!("k{r}").as_bytes()));
        match list {
            None => enc.end_list(1, false),
            Some(items) => {
                for item in items {
                    enc.push_item(1, item.as_deref());
                }
                enc.end_list(1, true);
            }
        }
    }
    let mut out = Vec::new();
    enc.finish(&mut out).expect("finish");
    Bytes::from(out)
}

/// Every row's list as the view reads it back (null items of fixed width read as zeros).
fn read_lists(view: &SegmentView) -> ListRows {
    let col = view.column(1);
    let list = col.list().expect("a list column");
    (0..view.rows())
        .map(|r| {
            let row = view.row(r);
            col.is_valid(row).then(|| {
                let (a, b) = list.range(r);
                (a..b)
                    .map(|i| {
                        list.item_valid(i).then(|| match list.fixed_values() {
                            Some((values, w)) => values[i * w..(i + 1) * w].to_vec(),
                            None => list.item_bytes(i).to_vec(),
                        })
                    })
                    .collect()
            })
        })
        .collect()
}

fn list_rows(
    item: impl Strategy<Value = Vec<u8>> + Clone,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = ListRows> {
    proptest::collection::vec(
        proptest::option::weighted(
            0.8,
            proptest::collection::vec(proptest::option::weighted(0.9, item), len),
        ),
        0..60,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Lists of fixed-width items, with null lists and null items, read back as written.
    #[test]
    fn lists_of_numbers_round_trip(rows in list_rows(proptest::collection::vec(any::<u8>(), 8), 0..20)) {
        let view = SegmentView::open(encode_lists(DType::list(DType::Int64).expect("type"), &rows), Verify::Full).expect("valid");
        prop_assert_eq!(read_lists(&view), rows);
    }

    /// Lists of strings (byte-string items).
    #[test]
    fn lists_of_strings_round_trip(rows in list_rows(proptest::collection::vec(any::<u8>(), 0..12), 0..8)) {
        let view = SegmentView::open(encode_lists(DType::list(DType::Binary).expect("type"), &rows), Verify::Full).expect("valid");
        prop_assert_eq!(read_lists(&view), rows);
    }

    /// Fixed-size lists: with null lists the segment stores offsets, without none.
    #[test]
    fn fixed_size_lists_round_trip(rows in list_rows(proptest::collection::vec(any::<u8>(), 4), 3..4)) {
        let dtype = DType::fixed_size_list(DType::Float32, 3).expect("type");
        let view = SegmentView::open(encode_lists(dtype, &rows), Verify::Full).expect("valid");
        prop_assert_eq!(&read_lists(&view), &rows);
        let null_lists = rows.iter().any(Option::is_none);
        match view.meta().columns[1].storage {
            crate::Storage::List { offsets, .. } => prop_assert_eq!(offsets.len > 0, null_lists),
            other => prop_assert!(false, "{other:?}"),
        }
    }

    /// Flipping bytes of a list segment gives an error or a view whose reads stay in bounds.
    #[test]
    fn list_corruption_never_panics(
        rows in list_rows(proptest::collection::vec(any::<u8>(), 0..6), 0..6),
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
        fixed in any::<bool>(),
    ) {
        let (dtype, rows) = if fixed {
            let rows: ListRows = rows
                .into_iter()
                .map(|l| l.map(|items| items.into_iter().map(|i| i.map(|mut b| { b.resize(2, 0); b })).collect()))
                .collect();
            (DType::list(DType::Int16).expect("type"), rows)
        } else {
            (DType::list(DType::Utf8).expect("type"), rows)
        };
        let mut bytes = encode_lists(dtype, &rows).to_vec();
        for (at, x) in flips {
            let i = at % bytes.len();
            bytes[i] ^= x;
        }
        if let Ok(view) = SegmentView::open(Bytes::from(bytes), Verify::FooterOnly) {
            let _ = read_lists(&view);
        }
    }
}

#[test]
fn list_truncation_is_an_error() {
    let rows: ListRows = (0..20)
        .map(|r| (r % 3 != 0).then(|| vec![Some(vec![r as u8; 4]), None]))
        .collect();
    let bytes = encode_lists(DType::list(DType::Int32).expect("type"), &rows);
    for len in 0..bytes.len() {
        assert!(SegmentView::open(bytes.slice(..len), Verify::FooterOnly).is_err());
    }
}

#[test]
fn lists_of_the_wrong_length_and_items_of_null_lists_are_refused() {
    let encode = |dtype: DType, items: usize, valid: bool| {
        let cols = vec![spec("id", DType::Utf8, false), spec("l", dtype, !valid)];
        let mut enc = SegmentEncoder::new(cols, 0, 1, WriteTimes::at(0)).expect("layout");
        enc.push_var(0, Some(b"k"));
        for _ in 0..items {
            enc.push_item(1, Some(&[0; 4]));
        }
        enc.end_list(1, valid);
        enc.finish(&mut Vec::new())
    };
    let embedding = DType::fixed_size_list(DType::Float32, 3).expect("type");
    encode(embedding, 3, true).expect("three items");
    let err = encode(embedding, 2, true).expect_err("two items");
    assert!(
        err.to_string()
            .contains("a list of 2 items at row 0, the type has 3"),
        "{err}"
    );
    let err = encode(DType::list(DType::Int32).expect("type"), 1, false).expect_err("null");
    assert!(
        err.to_string().contains("a null list with 1 items"),
        "{err}"
    );
}

#[test]
fn new_scalar_types_sit_in_the_row() {
    let ts = DType::timestamp(arrow_schema::TimeUnit::Nanosecond, Some("UTC")).expect("type");
    let cols = vec![
        spec("id", DType::Utf8, false),
        spec("h", DType::Float16, false),
        spec("d", DType::Date32, false),
        spec("t", ts, false),
        spec("b", DType::Binary, true),
    ];
    let mut enc = SegmentEncoder::new(cols, 0, 2, WriteTimes::at(0)).expect("layout");
    for r in 0..2usize {
        enc.push_var(0, Some(format!("k{r}").as_bytes()));
        let width = enc.row_width();
        let (h, d, t) = (
            enc.fixed_offset(1).expect("fixed"),
            enc.fixed_offset(2).expect("fixed"),
            enc.fixed_offset(3).expect("fixed"),
        );
        let row = &mut enc.rows_mut()[r * width..(r + 1) * width];
        half::f16::from_f32(1.5).write_le(&mut row[h..h + 2]);
        (19_000 + r as i32).write_le(&mut row[d..d + 4]);
        (-5i64 * r as i64).write_le(&mut row[t..t + 8]);
        enc.push_var(4, (r == 1).then_some(&[0u8, 255][..]));
        if r == 1 {
            enc.set_valid(4, r);
        }
    }
    let mut out = Vec::new();
    enc.finish(&mut out).expect("finish");
    let view = SegmentView::open(Bytes::from(out), Verify::Full).expect("valid");
    assert_eq!(view.meta().columns[3].dtype, ts);
    let row = view.row(1);
    assert_eq!(
        view.column(1).fixed::<half::f16>(row),
        half::f16::from_f32(1.5)
    );
    assert_eq!(view.column(2).fixed::<i32>(row), 19_001);
    assert_eq!(view.column(3).fixed::<i64>(row), -5);
    assert_eq!(view.column(4).bytes(1, row), [0, 255]);
    assert!(!view.column(4).is_valid(view.row(0)));
}

/// Sparse columns of every width (8, 4, 2 and 1 bytes) beside a dense one; `rows[r][c]` is
/// column `c`'s value in row `r`. The encoder picks sparse storage from the counts.
fn encode_sparse(rows: &[[Option<u8>; 4]], written: &[i64]) -> Bytes {
    let types = [DType::Int64, DType::Float32, DType::Int16, DType::Bool];
    let n = rows.len();
    let mut cols = vec![
        ColumnSpec {
            stats: measured((0..n).map(|r| format!("k{r}").len())),
            ..spec("id", DType::Utf8, false)
        },
        spec("dense", DType::Int32, false),
    ];
    for (c, dtype) in types.iter().enumerate() {
        let values = rows.iter().filter(|r| r[c].is_some()).count();
        cols.push(ColumnSpec {
            stats: ValueStats {
                values,
                ..ValueStats::UNKNOWN
            },
            ..spec(&format!("s{c}"), *dtype, values < n)
        });
    }
    let times = WriteTimes::between(
        written.iter().copied().min().unwrap_or(0),
        written.iter().copied().max().unwrap_or(0),
    );
    let mut enc = SegmentEncoder::new(cols, 0, n, times).expect("layout");
    for (r, &t) in written.iter().enumerate() {
        enc.push_var(0, Some(format!("k{r}").as_bytes()));
        let at = r * enc.row_width() + enc.fixed_offset(1).expect("dense");
        enc.rows_mut()[at..at + 4].copy_from_slice(&(r as i32).to_le_bytes());
        enc.set_written(r, t);
    }
    for (c, dtype) in types.iter().enumerate() {
        let w = dtype.fixed_width().expect("fixed");
        for (r, row) in rows.iter().enumerate() {
            let Some(v) = row[c] else { continue };
            let bytes = u64::from(v).to_le_bytes();
            if enc.storage_kind(c + 2) == StorageKind::Sparse {
                enc.push_sparse(c + 2, r, &bytes[..w]);
            } else {
                let at = r * enc.row_width() + enc.fixed_offset(c + 2).expect("fixed");
                enc.rows_mut()[at..at + w].copy_from_slice(&bytes[..w]);
                enc.set_valid(c + 2, r);
            }
        }
    }
    let mut out = Vec::new();
    enc.finish(&mut out).expect("finishes");
    Bytes::from(out)
}

/// Reads back what [`encode_sparse`] wrote.
fn read_sparse(view: &SegmentView) -> Vec<[Option<u8>; 4]> {
    (0..view.rows())
        .map(|r| {
            let row = view.row(r);
            let mut out = [None; 4];
            for (c, o) in out.iter_mut().enumerate() {
                let col = view.column(c + 2);
                if col.is_valid(row) {
                    *o = Some(match c {
                        0 => col.fixed::<i64>(row) as u8,
                        1 => col.fixed::<f32>(row).to_bits() as u8,
                        2 => col.fixed::<i16>(row) as u8,
                        _ => col.fixed::<u8>(row),
                    });
                }
            }
            assert_eq!(
                view.column(1).fixed::<i32>(row),
                r as i32,
                "the dense column"
            );
            out
        })
        .collect()
}

fn sparse_rows(n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<[Option<u8>; 4]>> {
    // Mostly null: a value one time in ten.
    let cell = prop_oneof![9 => Just(None), 1 => (0u8..=1).prop_map(Some)];
    proptest::collection::vec([cell.clone(), cell.clone(), cell.clone(), cell], n)
}

#[test]
fn mostly_null_columns_are_stored_sparse_and_cost_their_values() {
    let rows: Vec<[Option<u8>; 4]> = (0..1000)
        .map(|r| {
            let mut row = [None; 4];
            row[r % 4] = (r % 3 == 0).then_some(1);
            row
        })
        .collect();
    let view = SegmentView::open(encode_sparse(&rows, &[7; 1000]), Verify::Full).expect("valid");
    for c in 2..6 {
        assert_eq!(view.column(c).kind(), StorageKind::Sparse, "column {c}");
    }
    assert_eq!(read_sparse(&view), rows);
    let sparse = view.meta().sparse.expect("a sparse section");
    // The values present: 250 rows a column, a third of them valid, of widths 8 + 4 + 2 + 1.
    let present: u64 = (0..4)
        .map(|c| (0..1000).filter(|r| r % 4 == c && r % 3 == 0).count() as u64)
        .sum();
    assert!(
        sparse.records.len <= present * 8,
        "{} bytes",
        sparse.records.len
    );
    assert_eq!(view.write_times(), WriteTimes::at(7));
    assert_eq!(view.written(999), 7);
}

#[test]
fn rows_keep_their_own_write_times() {
    let rows = vec![[None; 4]; 5];
    let written = [100, 5_000_000, 100, 42, 4_000_000_000];
    let view = SegmentView::open(encode_sparse(&rows, &written), Verify::Full).expect("valid");
    let times: Vec<i64> = (0..5).map(|r| view.written(r)).collect();
    assert_eq!(times, written);
    assert_eq!(
        (view.write_times().min, view.write_times().max),
        (42, 4_000_000_000)
    );
    let too_far = WriteTimes::between(0, i64::from(u32::MAX) + 1);
    assert!(SegmentEncoder::new(vec![spec("id", DType::Utf8, false)], 0, 1, too_far).is_err());
    // Runs of one time (a merge's rows come segment by segment): 8 bytes a run. Many distinct
    // times in no order: 1 or 2-byte indexes into the list of times, then the times themselves.
    for (n, width) in [(1000usize, 8u8), (600, 1), (600, 2), (70_000, 4)] {
        let rows = vec![[None; 4]; n];
        let written: Vec<i64> = (0..n as i64)
            .map(|t| match width {
                8 => 1000 + t * 7 / n as i64 * 60,
                1 => 1000 + (t * 7919) % 200,
                _ => 1000 + (t * 7919) % n as i64,
            })
            .collect();
        let view = SegmentView::open(encode_sparse(&rows, &written), Verify::Full).expect("valid");
        let stored = view.meta().written.and_then(|w| w.rows).expect("row times");
        assert_eq!(stored.width, width, "{n} rows");
        if width == 8 {
            assert_eq!(stored.values.len, 7 * 4, "seven runs");
        }
        assert!((0..n).all(|r| view.written(r) == written[r]), "{n} rows");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Sparse values of every width read back as written, whatever rows hold them.
    #[test]
    fn sparse_columns_round_trip(rows in sparse_rows(0..300)) {
        let written = vec![1; rows.len()];
        let view = SegmentView::open(encode_sparse(&rows, &written), Verify::Full).expect("valid");
        prop_assert_eq!(read_sparse(&view), rows);
    }

    /// Flipping bytes of a segment with sparse columns and per-row times: an error or reads in
    /// bounds; never a panic.
    #[test]
    fn sparse_corruption_never_panics(rows in sparse_rows(100..101), flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4), runs in any::<bool>()) {
        // Times in runs of ten rows, or one time a row (indexed).
        let written: Vec<i64> = (0..rows.len() as i64).map(|r| if runs { r / 10 } else { r }).collect();
        let mut bytes = encode_sparse(&rows, &written).to_vec();
        for (at, x) in flips {
            let i = at % bytes.len();
            bytes[i] ^= x;
        }
        if let Ok(view) = SegmentView::open(Bytes::from(bytes), Verify::FooterOnly) {
            for r in 0..view.rows() {
                let row = view.row(r);
                let _ = view.written(r);
                for c in 0..view.meta().columns.len() {
                    let col = view.column(c);
                    let _ = col.is_valid(row);
                    match col.dtype().fixed_width() {
                        Some(8) => { let _ = col.fixed::<u64>(row); }
                        Some(4) => { let _ = col.fixed::<u32>(row); }
                        Some(2) => { let _ = col.fixed::<u16>(row); }
                        Some(1) => { let _ = col.fixed::<u8>(row); }
                        _ => { let _ = col.bytes(r, row); }
                    }
                }
            }
        }
    }
}

/// Write times read back as set: in runs, one a row (indexed, or 4 bytes when there are many),
/// set out of row order, with rows left unset (they read as the earliest), and streamed.
#[test]
fn write_times_round_trip_in_every_form() {
    let n = 70_000usize;
    /// (name, each row's time if set, set in reverse, streaming window)
    type Case = (&'static str, Vec<Option<i64>>, bool, Option<usize>);
    let cases: Vec<Case> = vec![
        (
            "runs",
            (0..n).map(|r| Some(100 + (r / 1000) as i64)).collect(),
            false,
            None,
        ),
        (
            "runs, streamed",
            (0..n).map(|r| Some(100 + (r / 1000) as i64)).collect(),
            false,
            Some(999),
        ),
        (
            "few distinct",
            (0..n).map(|r| Some(100 + (r % 7) as i64)).collect(),
            false,
            None,
        ),
        (
            "many distinct",
            (0..n).map(|r| Some(100 + r as i64)).collect(),
            false,
            None,
        ),
        (
            "reversed",
            (0..n).map(|r| Some(100 + (r % 300) as i64)).collect(),
            true,
            None,
        ),
        (
            "gaps",
            (0..n)
                .map(|r| (r % 3 != 0).then_some(100 + (r / 5000) as i64))
                .collect(),
            false,
            Some(4096),
        ),
    ];
    for (name, times, reversed, window) in cases {
        let keys: Vec<String> = (0..n).map(|r| format!("k{r}")).collect();
        let cols = vec![ColumnSpec {
            stats: measured(keys.iter().map(String::len)),
            ..spec("id", DType::Utf8, false)
        }];
        let min = times.iter().flatten().copied().min().unwrap_or(0).min(100);
        let max = times.iter().flatten().copied().max().unwrap_or(0);
        let written = WriteTimes::between(min, max);
        let mut enc = match window {
            None => SegmentEncoder::new(cols, 0, n, written),
            Some(w) => SegmentEncoder::streaming(cols, 0, n, written, w),
        }
        .expect("layout");
        let mut out = Vec::new();
        let w = enc.window();
        let mut start = 0;
        while start < n {
            let end = (start + w).min(n);
            for key in &keys[start..end] {
                enc.push_var(0, Some(key.as_bytes()));
            }
            let order: Vec<usize> = if reversed {
                (start..end).rev().collect()
            } else {
                (start..end).collect()
            };
            for r in order {
                if let Some(t) = times[r] {
                    enc.set_written(r - start, t);
                }
            }
            if end < n {
                enc.flush_rows(&mut out, end - start).expect("flush");
            }
            start = end;
        }
        enc.finish(&mut out).expect("finish");
        let view = SegmentView::open(Bytes::from(out), Verify::Full).expect("opens");
        for (r, t) in times.iter().enumerate() {
            assert_eq!(view.written(r), t.unwrap_or(min), "{name}: row {r}");
        }
    }
}
