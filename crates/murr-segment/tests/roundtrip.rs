//! Every type, with and without nulls, through a segment file and back into Arrow.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, FixedSizeListArray, Float16Array,
    Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, ListArray,
    RecordBatch, StringArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{Field, Schema};
use murr_directory::{Directory, DirectoryExt, FilePath, RamDirectory};
use murr_format::{ColumnDef, DType, TableSchema, Verify};
use murr_segment::{
    Input, Loc, ResolvedRows, Segment, encode, gather, gather_columns, gather_rows,
};
use proptest::prelude::*;

/// Every type: the unparametrised ones and a sample of the parametrised ones.
fn every_type() -> Vec<DType> {
    let mut all = DType::ALL.to_vec();
    all.extend(
        [
            "timestamp[s]",
            "timestamp[ns, UTC]",
            "timestamp[ms, Europe/Paris]",
            "list<int64>",
            "list<utf8>",
            "list<bool>",
            "list<float16>",
            "list<timestamp[us, UTC]>",
            "fixed_size_list<float32, 4>",
            "fixed_size_list<uint8, 3>",
        ]
        .iter()
        .map(|t| t.parse::<DType>().expect("a type")),
    );
    all
}

fn schema() -> TableSchema {
    let mut cols = vec![ColumnDef::new("id", DType::Utf8, false)];
    for t in every_type() {
        cols.push(ColumnDef::new(format!("{t}_n"), t, true));
        cols.push(ColumnDef::new(format!("{t}_r"), t, false));
    }
    TableSchema::new("id", cols)
}

#[derive(Debug, Clone)]
struct Row {
    ints: Vec<i64>,
    f: f64,
    s: String,
    null_mask: u64,
}

fn row() -> impl Strategy<Value = Row> {
    (
        proptest::collection::vec(any::<i64>(), 10),
        -1e30f64..1e30,
        ".{0,10}",
        any::<u64>(),
    )
        .prop_map(|(ints, f, s, null_mask)| Row {
            ints,
            f,
            s,
            null_mask,
        })
}

fn column(dtype: DType, rows: &[Row], nullable: bool, salt: usize) -> ArrayRef {
    let null = |i: usize| nullable && rows[i].null_mask >> (salt % 64) & 1 == 1;
    let n = rows.len();
    macro_rules! ints {
        ($arr:ty, $t:ty) => {
            Arc::new(<$arr>::from_iter(
                (0..n).map(|i| (!null(i)).then(|| rows[i].ints[salt % 10] as $t)),
            ))
        };
    }
    match dtype {
        DType::Utf8 => Arc::new(StringArray::from_iter(
            (0..n).map(|i| (!null(i)).then(|| rows[i].s.clone())),
        )),
        DType::Bool => Arc::new(BooleanArray::from_iter(
            (0..n).map(|i| (!null(i)).then_some(rows[i].ints[0] % 2 == 0)),
        )),
        DType::Int8 => ints!(Int8Array, i8),
        DType::Int16 => ints!(Int16Array, i16),
        DType::Int32 => ints!(Int32Array, i32),
        DType::Int64 => ints!(Int64Array, i64),
        DType::UInt8 => ints!(UInt8Array, u8),
        DType::UInt16 => ints!(UInt16Array, u16),
        DType::UInt32 => ints!(UInt32Array, u32),
        DType::UInt64 => ints!(UInt64Array, u64),
        DType::Float32 => Arc::new(Float32Array::from_iter(
            (0..n).map(|i| (!null(i)).then(|| rows[i].f as f32)),
        )),
        DType::Float64 => Arc::new(Float64Array::from_iter(
            (0..n).map(|i| (!null(i)).then_some(rows[i].f)),
        )),
        DType::Float16 => {
            Arc::new(Float16Array::from_iter((0..n).map(|i| {
                (!null(i)).then(|| half::f16::from_f64(rows[i].f / 1e26))
            })))
        }
        DType::Date32 => ints!(Date32Array, i32),
        DType::Binary => Arc::new(BinaryArray::from_iter((0..n).map(|i| {
            (!null(i)).then(|| {
                rows[i].ints[salt % 10].to_le_bytes()[..(rows[i].ints[0] as usize % 9)].to_vec()
            })
        }))),
        DType::Timestamp(..) => {
            let values = Int64Array::from_iter(
                (0..n).map(|i| (!null(i)).then_some(rows[i].ints[salt % 10])),
            );
            arrow_cast::cast(&values, &dtype.to_arrow()).expect("int64 to timestamp")
        }
        DType::List(_) | DType::FixedSizeList(..) => {
            let (item, fixed) = dtype.list_item().expect("list");
            // Each row's list: a length from its numbers (or the fixed one), items from its
            // numbers, every third item null when the row's mask says so.
            let mut lens = Vec::with_capacity(n);
            let mut item_rows = Vec::new();
            for row in rows {
                let len = fixed.map_or((row.ints[salt % 10] as u64 % 7) as usize, |f| f as usize);
                lens.push(len);
                for j in 0..len {
                    let mut r = row.clone();
                    r.ints.rotate_left(j % 10);
                    r.null_mask = if row.null_mask & 2 == 2 && j % 3 == 1 {
                        u64::MAX
                    } else {
                        0
                    };
                    item_rows.push(r);
                }
            }
            let items = column(item, &item_rows, true, salt);
            let field = Arc::new(Field::new_list_field(item.to_arrow(), true));
            let list_nulls = NullBuffer::from_iter((0..n).map(|i| !null(i)));
            match fixed {
                Some(f) => Arc::new(FixedSizeListArray::new(
                    field,
                    f as i32,
                    items,
                    Some(list_nulls),
                )),
                None => Arc::new(ListArray::new(
                    field,
                    OffsetBuffer::from_lengths(lens),
                    items,
                    Some(list_nulls),
                )),
            }
        }
        _ => unreachable!(),
    }
}

fn batch(schema: &TableSchema, keys: &[String], rows: &[Row]) -> RecordBatch {
    let fields: Vec<Field> = schema
        .columns
        .iter()
        .map(|c| Field::new(&c.name, c.dtype.to_arrow(), c.nullable))
        .collect();
    let arrays: Vec<ArrayRef> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if c.name == "id" {
                Arc::new(StringArray::from_iter_values(keys)) as ArrayRef
            } else {
                column(c.dtype, rows, c.nullable, i)
            }
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("valid batch")
}

fn write(dir: &dyn Directory, schema: &TableSchema, batch: &RecordBatch, name: &str) -> Segment {
    let rows: Vec<u32> = (0..batch.num_rows() as u32).collect();
    let mut bytes = Vec::new();
    encode(
        schema,
        &[Input {
            batch,
            row_ids: &rows,
            written: murr_segment::Written::At(0),
        }],
        &mut bytes,
    )
    .expect("encodes");
    let path = FilePath::new(name).expect("valid");
    dir.write_new(&path, &bytes).expect("writes");
    Segment::open(dir, &path, Verify::Full).expect("opens")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_type_round_trips(keys in proptest::collection::hash_set("[a-z0-9]{1,8}", 0..60), seed in proptest::collection::vec(row(), 60)) {
        let keys: Vec<String> = keys.into_iter().collect();
        let rows = &seed[..keys.len()];
        let schema = schema();
        let input = batch(&schema, &keys, rows);
        let dir = RamDirectory::new();
        let seg = write(&dir, &schema, &input, "s1");
        // Ask for every key in reverse order plus a missing one.
        let mut locs: Vec<Loc> = keys.iter().rev().map(|k| Loc { seg: 0, row: seg.find(k.as_bytes()).expect("present") }).collect();
        locs.push(Loc::MISSING);
        let segments = [seg];
        for c in &schema.columns {
            let got = gather(&segments, &c.name, c.dtype, &locs).expect("gathers");
            let want = input.column_by_name(&c.name).expect("column");
            for (i, k) in keys.iter().rev().enumerate() {
                let src = keys.iter().position(|x| x == k).expect("present");
                prop_assert_eq!(got.slice(i, 1).to_data(), want.slice(src, 1).to_data(), "column {} key {}", c.name, k);
            }
            prop_assert!(got.is_null(keys.len()), "missing key gives null in {}", c.name);
        }
        // Every key found in one segment: the copy that gathers many columns in one pass (four
        // at a time for four-byte values) agrees with one column at a time, for all columns
        // asked twice, in two orders.
        locs.pop();
        let rows = ResolvedRows::new(&segments, &locs);
        let mut wanted: Vec<(&str, DType)> = schema.columns.iter().map(|c| (c.name.as_str(), c.dtype)).collect();
        wanted.extend(schema.columns.iter().rev().map(|c| (c.name.as_str(), c.dtype)));
        let all = gather_columns(&segments, &rows, &wanted).expect("gathers");
        prop_assert_eq!(all.len(), wanted.len());
        for (array, &(name, dtype)) in all.iter().zip(&wanted) {
            let one = gather_rows(&segments, &rows, name, dtype).expect("gathers");
            prop_assert_eq!(array.to_data(), one.to_data(), "column {}", name);
        }
    }
}

#[test]
fn gather_spans_segments_and_skips_columns_a_segment_lacks() {
    let schema = TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("x", DType::Float32, true),
        ],
    );
    let dir = RamDirectory::new();
    let a = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
        ),
        (
            "x",
            Arc::new(Float32Array::from(vec![1.0, 2.0])) as ArrayRef,
        ),
    ])
    .expect("batch");
    // A batch without "x": the segment stores x as all-null.
    let b = RecordBatch::try_from_iter(vec![(
        "id",
        Arc::new(StringArray::from(vec!["c"])) as ArrayRef,
    )])
    .expect("batch");
    let segs = [write(&dir, &schema, &a, "a"), write(&dir, &schema, &b, "b")];
    let locs = [
        Loc { seg: 1, row: 0 },
        Loc { seg: 0, row: 1 },
        Loc::MISSING,
        Loc { seg: 0, row: 0 },
    ];
    let x = gather(&segs, "x", DType::Float32, &locs).expect("gathers");
    let x = x.as_any().downcast_ref::<Float32Array>().expect("f32");
    assert_eq!(
        x.iter().collect::<Vec<_>>(),
        vec![None, Some(2.0), None, Some(1.0)]
    );
    let ids = gather(&segs, "id", DType::Utf8, &locs).expect("gathers");
    let ids = ids.as_any().downcast_ref::<StringArray>().expect("utf8");
    assert_eq!(
        ids.iter().collect::<Vec<_>>(),
        vec![Some("c"), Some("b"), None, Some("a")]
    );
}

/// Short keys and strings are stored in the rows, long or uneven ones in sections; a gather over
/// segments of both kinds reads them alike.
/// A segment that stores a column with another type than the one asked for is an error naming
/// the file, the column and both types, never a column of silent nulls.
#[test]
fn a_column_stored_with_another_type_is_an_error() {
    let schema = TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("x", DType::Float32, true),
        ],
    );
    let dir = RamDirectory::new();
    let a = RecordBatch::try_from_iter(vec![
        ("id", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ("x", Arc::new(Float32Array::from(vec![1.0])) as ArrayRef),
    ])
    .expect("batch");
    let segs = [write(&dir, &schema, &a, "a")];
    let locs = [Loc { seg: 0, row: 0 }];
    for asked in [DType::Int32, DType::Utf8] {
        let err = gather(&segs, "x", asked, &locs).expect_err("wrong type");
        assert!(
            matches!(&err, murr_segment::Error::ColumnType { column, stored: DType::Float32, .. } if column == "x"),
            "{err}"
        );
        assert!(err.to_string().starts_with("segment a stores"), "{err}");
    }
}

#[test]
fn inline_and_section_strings_gather_alike() {
    use murr_format::StorageKind;
    let schema = TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("s", DType::Utf8, true),
        ],
    );
    let dir = RamDirectory::new();
    let batch = |ids: Vec<String>, s: Vec<Option<String>>| {
        RecordBatch::try_from_iter(vec![
            ("id", Arc::new(StringArray::from(ids)) as ArrayRef),
            ("s", Arc::new(StringArray::from(s)) as ArrayRef),
        ])
        .expect("batch")
    };
    let short = batch(
        vec!["k01".into(), "k02".into()],
        vec![Some("x".into()), None],
    );
    let long_key = "k".repeat(100);
    let long = batch(
        vec![long_key.clone(), "k03".into()],
        vec![None, Some("y".repeat(70))],
    );
    let segs = [
        write(&dir, &schema, &short, "short"),
        write(&dir, &schema, &long, "long"),
    ];
    assert!(matches!(
        segs[0].view().meta().columns[0].storage,
        murr_format::Storage::Inline { width: 3, .. }
    ));
    assert_eq!(segs[0].view().column(1).kind(), StorageKind::Inline);
    assert_eq!(segs[1].view().column(0).kind(), StorageKind::Var);
    assert_eq!(segs[1].view().column(1).kind(), StorageKind::Var);
    assert_eq!(segs[1].view().find(long_key.as_bytes()), Some(0));
    assert_eq!(segs[0].view().find(b"k02"), Some(1));
    assert_eq!(segs[0].view().find(b"k0"), None);
    let locs = [
        Loc { seg: 1, row: 0 },
        Loc { seg: 0, row: 1 },
        Loc::MISSING,
        Loc { seg: 0, row: 0 },
        Loc { seg: 1, row: 1 },
    ];
    let ids = gather(&segs, "id", DType::Utf8, &locs).expect("gathers");
    let ids = ids.as_any().downcast_ref::<StringArray>().expect("utf8");
    assert_eq!(
        ids.iter().collect::<Vec<_>>(),
        vec![
            Some(long_key.as_str()),
            Some("k02"),
            None,
            Some("k01"),
            Some("k03")
        ]
    );
    let s = gather(&segs, "s", DType::Utf8, &locs).expect("gathers");
    let s = s.as_any().downcast_ref::<StringArray>().expect("utf8");
    let y = "y".repeat(70);
    assert_eq!(
        s.iter().collect::<Vec<_>>(),
        vec![None, None, None, Some("x"), Some(y.as_str())]
    );
}

#[test]
fn corrupt_file_is_an_error_naming_the_file() {
    let dir = RamDirectory::new();
    let p = FilePath::new("t/bad.seg").expect("valid");
    dir.write_new(
        &p,
        b"not a segment at all, just some bytes that are long enough to have a trailer....",
    )
    .expect("writes");
    let err = Segment::open(&dir, &p, Verify::Full).expect_err("corrupt");
    assert!(err.to_string().contains("t/bad.seg"), "{err}");
}

#[test]
fn wrong_arrow_type_and_null_in_required_column_are_refused() {
    let schema = TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("x", DType::Int64, false),
        ],
    );
    let wrong = RecordBatch::try_from_iter(vec![
        ("id", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ("x", Arc::new(Int32Array::from(vec![1])) as ArrayRef),
    ])
    .expect("batch");
    assert!(
        encode(
            &schema,
            &[Input {
                batch: &wrong,
                row_ids: &[0],
                written: murr_segment::Written::At(0),
            }],
            &mut Vec::new()
        )
        .is_err()
    );
    let null = RecordBatch::try_from_iter(vec![
        ("id", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ("x", Arc::new(Int64Array::from(vec![None])) as ArrayRef),
    ])
    .expect("batch");
    let err = encode(
        &schema,
        &[Input {
            batch: &null,
            row_ids: &[0],
            written: murr_segment::Written::At(0),
        }],
        &mut Vec::new(),
    )
    .expect_err("null");
    assert!(err.to_string().contains("\"x\""), "{err}");
}

#[test]
fn inputs_with_and_without_nulls_share_a_segment() {
    let schema = TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("x", DType::Float32, true),
            ColumnDef::new("b", DType::Bool, true),
            ColumnDef::new("s", DType::Utf8, true),
        ],
    );
    let full = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
        ),
        (
            "x",
            Arc::new(Float32Array::from(vec![1.0, 2.0])) as ArrayRef,
        ),
        (
            "b",
            Arc::new(BooleanArray::from(vec![true, false])) as ArrayRef,
        ),
        ("s", Arc::new(StringArray::from(vec!["p", "q"])) as ArrayRef),
    ])
    .expect("batch");
    let holes = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(StringArray::from(vec!["c", "d"])) as ArrayRef,
        ),
        (
            "x",
            Arc::new(Float32Array::from(vec![None, Some(4.0)])) as ArrayRef,
        ),
        (
            "b",
            Arc::new(BooleanArray::from(vec![None, Some(true)])) as ArrayRef,
        ),
        (
            "s",
            Arc::new(StringArray::from(vec![None, Some("r")])) as ArrayRef,
        ),
    ])
    .expect("batch");
    let mut bytes = Vec::new();
    encode(
        &schema,
        &[
            Input {
                batch: &full,
                row_ids: &[1, 0],
                written: murr_segment::Written::At(0),
            },
            Input {
                batch: &holes,
                row_ids: &[0, 1],
                written: murr_segment::Written::At(0),
            },
        ],
        &mut bytes,
    )
    .expect("encodes");
    let seg = Segment::from_bytes(
        bytes.into(),
        FilePath::new("s").expect("valid"),
        Verify::Full,
    )
    .expect("opens");
    let locs: Vec<Loc> = ["a", "b", "c", "d"]
        .iter()
        .map(|k| Loc {
            seg: 0,
            row: seg.find(k.as_bytes()).expect("present"),
        })
        .collect();
    let segs = [seg];
    let x = gather(&segs, "x", DType::Float32, &locs).expect("gathers");
    let x = x.as_any().downcast_ref::<Float32Array>().expect("f32");
    assert_eq!(
        x.iter().collect::<Vec<_>>(),
        vec![Some(1.0), Some(2.0), None, Some(4.0)]
    );
    let b = gather(&segs, "b", DType::Bool, &locs).expect("gathers");
    let b = b.as_any().downcast_ref::<BooleanArray>().expect("bool");
    assert_eq!(
        b.iter().collect::<Vec<_>>(),
        vec![Some(true), Some(false), None, Some(true)]
    );
    let s = gather(&segs, "s", DType::Utf8, &locs).expect("gathers");
    let s = s.as_any().downcast_ref::<StringArray>().expect("utf8");
    assert_eq!(
        s.iter().collect::<Vec<_>>(),
        vec![Some("p"), Some("q"), None, Some("r")]
    );
}

/// Rows for [`many_windows`]: deterministic, varied, with nulls.
fn plain_rows(n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let x = (i as i64).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as i64);
            Row {
                ints: (0..10).map(|j| x.rotate_left(j * 7) ^ j as i64).collect(),
                f: (i as f64) * 1.5 - 1e5,
                // Mostly short strings, now and then one too long to sit in the row.
                s: if i % 97 == 0 {
                    format!("a longer string, too long for a row's slot, number {i}")
                } else {
                    format!("s{}", i % 1000)
                },
                null_mask: x as u64,
            }
        })
        .collect()
}

/// A segment of more rows than the encoder holds at once (it writes them out a window at a
/// time): inputs that end mid-window, rows skipped, every storage kind; each key's values come
/// back as they went in.
#[test]
fn rows_over_many_windows_round_trip() {
    let types = [
        DType::Int64,
        DType::Float32,
        DType::Bool,
        DType::Utf8,
        DType::Binary,
        "list<int32>".parse::<DType>().expect("a type"),
        "fixed_size_list<float32, 3>"
            .parse::<DType>()
            .expect("a type"),
    ];
    let mut cols = vec![ColumnDef::new("id", DType::Utf8, false)];
    for t in types {
        cols.push(ColumnDef::new(format!("{t}_n"), t, true));
        cols.push(ColumnDef::new(format!("{t}_r"), t, false));
    }
    let schema = TableSchema::new("id", cols);
    let n = 2 * murr_segment::MAX_CHUNK_ROWS + 12_345;
    let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    let rows = plain_rows(n);
    // Three batches, of a third of the rows each; every seventh row is left out.
    let third = n / 3 + 1;
    let batches: Vec<RecordBatch> = (0..3)
        .map(|b| {
            let range = b * third..((b + 1) * third).min(n);
            batch(&schema, &keys[range.clone()], &rows[range])
        })
        .collect();
    let ids: Vec<Vec<u32>> = batches
        .iter()
        .enumerate()
        .map(|(b, batch)| {
            (0..batch.num_rows() as u32)
                .filter(|r| !(b * third + *r as usize).is_multiple_of(7))
                .collect()
        })
        .collect();
    let inputs: Vec<Input<'_>> = batches
        .iter()
        .zip(&ids)
        .map(|(batch, row_ids)| Input {
            batch,
            row_ids,
            written: murr_segment::Written::At(0),
        })
        .collect();
    let mut bytes = Vec::new();
    encode(&schema, &inputs, &mut bytes).expect("encodes");
    let dir = RamDirectory::new();
    let path = FilePath::new("many").expect("valid");
    dir.write_new(&path, &bytes).expect("writes");
    let seg = Segment::open(&dir, &path, Verify::Full).expect("opens");
    assert_eq!(seg.rows(), ids.iter().map(Vec::len).sum::<usize>());
    for k in (0..n).filter(|k| k.is_multiple_of(7)) {
        assert_eq!(seg.find(keys[k].as_bytes()), None, "key {k} was left out");
    }
    let kept: Vec<usize> = (0..n).filter(|k| !k.is_multiple_of(7)).collect();
    let locs: Vec<Loc> = kept
        .iter()
        .map(|&k| Loc {
            seg: 0,
            row: seg.find(keys[k].as_bytes()).expect("present"),
        })
        .collect();
    let segments = [seg];
    for c in &schema.columns {
        let got = gather(&segments, &c.name, c.dtype, &locs).expect("gathers");
        for (i, &k) in kept.iter().enumerate() {
            let (b, r) = (k / third, k % third);
            let want = batches[b].column_by_name(&c.name).expect("column");
            assert_eq!(
                got.slice(i, 1).to_data(),
                want.slice(r, 1).to_data(),
                "column {} key {k}",
                c.name
            );
        }
    }
}

/// A key that repeats one written out in an earlier window is refused, as one within a window
/// is: short keys live in the rows, which the encoder no longer holds, so it asks for them.
#[test]
fn a_key_repeated_windows_apart_is_refused() {
    let n = murr_segment::MAX_CHUNK_ROWS + 10;
    // A utf8 key, and a compound one (stored encoded), both short enough to sit in the rows.
    let text = TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("v", DType::Int32, true),
        ],
    );
    let compound = TableSchema::compound(
        &["a", "b"],
        vec![
            ColumnDef::new("a", DType::Int32, false),
            ColumnDef::new("b", DType::Utf8, false),
            ColumnDef::new("v", DType::Int32, true),
        ],
    );
    for schema in [text, compound] {
        // Key 3 again as the last row: in the second window.
        let k = |i: usize| if i == n - 1 { 3 } else { i };
        let arrays: Vec<(&str, ArrayRef)> = if schema.keys.len() == 1 {
            vec![
                (
                    "id",
                    Arc::new(StringArray::from_iter_values(
                        (0..n).map(|i| format!("{}", k(i))),
                    )),
                ),
                ("v", Arc::new(Int32Array::from_iter_values(0..n as i32))),
            ]
        } else {
            vec![
                (
                    "a",
                    Arc::new(Int32Array::from_iter_values((0..n).map(|i| k(i) as i32))),
                ),
                (
                    "b",
                    Arc::new(StringArray::from_iter_values(
                        (0..n).map(|i| format!("{}", k(i) % 3)),
                    )),
                ),
                ("v", Arc::new(Int32Array::from_iter_values(0..n as i32))),
            ]
        };
        let batch = RecordBatch::try_from_iter(arrays).expect("batch");
        let rows: Vec<u32> = (0..n as u32).collect();
        let err = encode(
            &schema,
            &[Input {
                batch: &batch,
                row_ids: &rows,
                written: murr_segment::Written::At(0),
            }],
            &mut Vec::new(),
        )
        .expect_err("a repeated key");
        assert!(
            err.to_string().contains("appears twice"),
            "{:?}: {err}",
            schema.keys
        );
    }
}
