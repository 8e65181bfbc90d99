//! Generation-2 keys: compound (utf8, int64) and integer keys, written, merged, reopened and
//! read sparse; lossy float64 writes only into columns that are not strict.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use murr_directory::{Directory, MmapDirectory};
use murr_format::{ColumnDef, DType, Generation, TableSchema};
use murr_table::{ErrorKind, Store, StoreOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn quiet() -> StoreOptions {
    StoreOptions {
        background_merges: false,
        ..StoreOptions::default()
    }
}

/// `user` utf8 + `item` int64 key, `score` float64.
fn ratings() -> TableSchema {
    TableSchema::compound(
        &["user", "item"],
        vec![
            ColumnDef::new("user", DType::Utf8, false),
            ColumnDef::new("item", DType::Int64, false),
            ColumnDef::new("score", DType::Float64, true),
        ],
    )
}

fn rows(users: &[&str], items: &[i64], scores: &[f64]) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "user",
            Arc::new(StringArray::from(users.to_vec())) as ArrayRef,
        ),
        (
            "item",
            Arc::new(Int64Array::from(items.to_vec())) as ArrayRef,
        ),
        (
            "score",
            Arc::new(Float64Array::from(scores.to_vec())) as ArrayRef,
        ),
    ])
    .expect("batch")
}

fn key_arrays(users: &[&str], items: &[i64]) -> Vec<ArrayRef> {
    vec![
        Arc::new(StringArray::from(users.to_vec())),
        Arc::new(Int64Array::from(items.to_vec())),
    ]
}

#[test]
fn compound_keys_are_written_merged_reopened_and_read_sparse() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir: Arc<dyn Directory> = Arc::new(MmapDirectory::open(tmp.path()).expect("dir"));
    let mut rng = SmallRng::seed_from_u64(7);
    // A model of what each (user, item) holds, over several writes (and so segments).
    let mut model = std::collections::HashMap::new();
    {
        let store = Store::open(Arc::clone(&dir), quiet()).expect("store");
        store.create_table("r", ratings()).expect("created");
        for _ in 0..4 {
            let n = 300;
            let users: Vec<String> = (0..n)
                .map(|_| format!("u{}", rng.random_range(0..20)))
                .collect();
            // Items that collide across users, negative and huge ones too.
            let items: Vec<i64> = (0..n)
                .map(|_| match rng.random_range(0..3) {
                    0 => rng.random_range(-5..5),
                    1 => rng.random_range(0..40),
                    _ => i64::MAX - rng.random_range(0..3),
                })
                .collect();
            let scores: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..1.0)).collect();
            for ((u, i), s) in users.iter().zip(&items).zip(&scores) {
                model.insert((u.clone(), *i), *s);
            }
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            store
                .write("r", &[rows(&users, &items, &scores)])
                .expect("written");
        }
        let table = store.table("r").expect("table");
        assert!(table.stats().segments > 1);
        check(&table, &model);
        table.compact().expect("compacted");
        assert_eq!(table.stats().segments, 1);
        check(&table, &model);
    }
    let store = Store::open(dir, quiet()).expect("reopened");
    let table = store.table("r").expect("table");
    assert_eq!(table.schema().generation, Generation::V2);
    assert_eq!(table.schema().keys, ["user", "item"]);
    check(&table, &model);
    // A utf8 key given as text does not fit a compound key: a clear error, not a miss.
    let err = table
        .meta()
        .key_codec()
        .encode_text("u1")
        .expect_err("compound");
    assert!(err.to_string().contains("\"user\" (utf8)"), "{err}");
}

fn check(table: &murr_table::Table, model: &std::collections::HashMap<(String, i64), f64>) {
    let mut asked: Vec<(String, i64)> = model.keys().take(50).cloned().collect();
    asked.push(("nobody".to_owned(), 1));
    asked.insert(3, asked[0].clone()); // a duplicate
    asked.push(("u1".to_owned(), -99));
    let users: Vec<&str> = asked.iter().map(|(u, _)| u.as_str()).collect();
    let items: Vec<i64> = asked.iter().map(|(_, i)| *i).collect();
    let (found, batch) = table
        .fetch_keyed(&key_arrays(&users, &items), &["score"])
        .expect("fetched");
    let want: Vec<u32> = (0..asked.len() as u32)
        .filter(|&k| model.contains_key(&asked[k as usize]))
        .collect();
    assert_eq!(found, want, "a row per key found, in request order");
    let scores = batch.column(0).as_primitive::<Float64Type>();
    for (row, &k) in found.iter().enumerate() {
        assert_eq!(scores.value(row), model[&asked[k as usize]]);
    }
}

#[test]
fn integer_keys_and_strictness() {
    let store = Store::open(Arc::new(murr_directory::RamDirectory::new()), quiet()).expect("store");
    let schema = TableSchema::compound(
        &["id"],
        vec![
            ColumnDef::new("id", DType::Int32, false),
            ColumnDef::new("loose", DType::Float32, true).with_strict(false),
            ColumnDef::new("tight", DType::Float32, true),
        ],
    );
    store.create_table("t", schema).expect("created");
    let batch = |tight: Option<ArrayRef>| {
        let mut cols: Vec<(&str, ArrayRef)> = vec![
            ("id", Arc::new(Int32Array::from(vec![1, -2, 3]))),
            (
                "loose",
                Arc::new(Float64Array::from(vec![0.1, 1e300, -1e300])),
            ),
        ];
        if let Some(t) = tight {
            cols.push(("tight", t));
        }
        RecordBatch::try_from_iter(cols).expect("batch")
    };
    store
        .write("t", &[batch(None)])
        .expect("a loose column takes float64");
    let err = store
        .write(
            "t",
            &[batch(Some(Arc::new(Float64Array::from(vec![
                0.5, 0.5, 0.5,
            ]))))],
        )
        .expect_err("a strict column refuses float64");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("tight"), "{err}");
    let table = store.table("t").expect("table");
    let (found, got) = table
        .fetch_keyed(
            &[Arc::new(Int32Array::from(vec![3, 1, 9, -2])) as ArrayRef],
            &["loose"],
        )
        .expect("fetched");
    assert_eq!(found, [0, 1, 3]);
    let loose = got.column(0).as_primitive::<Float32Type>();
    assert_eq!(loose.value(0), f32::NEG_INFINITY);
    assert_eq!(loose.value(1), 0.1f32);
    assert_eq!(loose.value(2), f32::INFINITY);
    // Keys of another type than the key column's are refused at this layer (the API widens).
    let err = table
        .fetch_keyed(
            &[Arc::new(Int64Array::from(vec![1])) as ArrayRef],
            &["loose"],
        )
        .expect_err("int64 keys for an int32 key");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    // A null key is refused on write.
    let nulls = RecordBatch::try_from_iter([(
        "id",
        Arc::new(Int32Array::from(vec![Some(1), None])) as ArrayRef,
    )])
    .expect("batch");
    assert!(store.write("t", &[nulls]).is_err());
}
