//! A table's life: sparse columns, columns added to a live table, and rows that expire.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int16Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float32Array, Int16Array, Int64Array, RecordBatch, StringArray,
};
use common::*;
use murr_directory::{Directory, MmapDirectory, RamDirectory};
use murr_format::{ColumnDef, DType, StorageKind, TableSchema};
use murr_table::{Alter, ErrorKind, ManualClock, Store, StoreOptions, Table};
use rand::rngs::SmallRng as StdRng;
use rand::{Rng, SeedableRng};

fn quiet(clock: &Arc<ManualClock>) -> StoreOptions {
    StoreOptions {
        background_merges: false,
        clock: clock.clone(),
        ..StoreOptions::default()
    }
}

/// A wide table: `id`, then `f0..f{n}` float32, `i` int64, `s` int16, `b` bool (all nullable).
fn wide_schema(n: usize) -> TableSchema {
    let mut columns = vec![ColumnDef::new("id", DType::Utf8, false)];
    columns.extend((0..n).map(|i| ColumnDef::new(format!("f{i}"), DType::Float32, true)));
    columns.push(ColumnDef::new("i", DType::Int64, true));
    columns.push(ColumnDef::new("s", DType::Int16, true));
    columns.push(ColumnDef::new("b", DType::Bool, true));
    TableSchema::new("id", columns)
}

/// What a row holds: column name -> value as f64 (booleans 0/1).
type Model = HashMap<String, HashMap<String, f64>>;

/// A batch of `keys` where each row has a value in a random few of `columns` (the batch holds
/// only these columns: the others are absent from the whole write).
fn sparse_batch(
    rng: &mut StdRng,
    keys: &[String],
    columns: &[&str],
    per_row: usize,
    model: &mut Model,
) -> RecordBatch {
    let mut values: HashMap<&str, Vec<Option<f64>>> = columns
        .iter()
        .map(|c| (*c, vec![None; keys.len()]))
        .collect();
    for (r, key) in keys.iter().enumerate() {
        let row = model.entry(key.clone()).or_default();
        row.clear();
        for _ in 0..per_row {
            let c = columns[rng.random_range(0..columns.len())];
            let v = match c {
                "b" => f64::from(u8::from(rng.random_bool(0.5))),
                "s" => f64::from(rng.random_range(-300i16..300)),
                _ => f64::from(rng.random_range(-1000i32..1000)),
            };
            values.get_mut(c).expect("column")[r] = Some(v);
            row.insert(c.to_owned(), v);
        }
    }
    let mut fields: Vec<(&str, ArrayRef)> = vec![(
        "id",
        Arc::new(StringArray::from_iter_values(keys.iter())) as ArrayRef,
    )];
    for c in columns {
        let v = &values[c];
        let array: ArrayRef = match *c {
            "i" => Arc::new(Int64Array::from_iter(v.iter().map(|x| x.map(|x| x as i64)))),
            "s" => Arc::new(Int16Array::from_iter(v.iter().map(|x| x.map(|x| x as i16)))),
            "b" => Arc::new(BooleanArray::from_iter(
                v.iter().map(|x| x.map(|x| x != 0.0)),
            )),
            _ => Arc::new(Float32Array::from_iter(
                v.iter().map(|x| x.map(|x| x as f32)),
            )),
        };
        fields.push((c, array));
    }
    RecordBatch::try_from_iter(fields).expect("batch")
}

/// Fetches every column of `keys` and compares with the model.
fn check_model(table: &Table, model: &Model, keys: &[String]) {
    let schema = table.schema();
    let names: Vec<&str> = schema.columns[1..]
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let got = table.fetch(keys, &names).expect("fetches");
    for (c, name) in names.iter().enumerate() {
        let column = got.column(c);
        for (r, key) in keys.iter().enumerate() {
            let want = model.get(key).and_then(|row| row.get(*name)).copied();
            let have = if column.is_null(r) {
                None
            } else {
                Some(match *name {
                    "i" => column.as_primitive::<Int64Type>().value(r) as f64,
                    "s" => f64::from(column.as_primitive::<Int16Type>().value(r)),
                    "b" => f64::from(u8::from(column.as_boolean().value(r))),
                    _ => f64::from(column.as_primitive::<Float32Type>().value(r)),
                })
            };
            assert_eq!(have, want, "key {key} column {name}");
        }
    }
}

fn kinds(table: &Table) -> Vec<HashMap<String, StorageKind>> {
    table
        .snapshot()
        .segments()
        .iter()
        .map(|s| {
            s.view()
                .meta()
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.storage.kind()))
                .collect()
        })
        .collect()
}

#[test]
fn sparse_columns_round_trip_through_writes_merges_and_restarts() {
    let tmp = tempfile::tempdir().expect("temp folder");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let mut rng = StdRng::seed_from_u64(7);
    let mut model = Model::new();
    let all: Vec<String> = (0..60).map(|i| format!("f{i}")).collect();
    let all: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .chain(["i", "s", "b"])
        .collect();
    let keys_a = keys(0..3000);
    let keys_b = keys(2000..4000);
    let keys_c = keys(3500..4500);
    {
        let dir = Arc::new(MmapDirectory::open(tmp.path()).expect("opens"));
        let store = Store::open(dir, quiet(&clock)).expect("store");
        let t = store
            .create_table("wide", wide_schema(60))
            .expect("creates");
        // Mostly null: 4 values per row over 63 columns.
        t.write(&[sparse_batch(&mut rng, &keys_a, &all, 4, &mut model)])
            .expect("writes");
        // Columns absent from the whole write: only f0..f9 and `b`.
        let few = [
            "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "b",
        ];
        t.write(&[sparse_batch(&mut rng, &keys_b, &few, 2, &mut model)])
            .expect("writes");
        // Dense in three columns, every other column absent (all null).
        t.write(&[sparse_batch(
            &mut rng,
            &keys_c,
            &["f0", "i", "s"],
            30,
            &mut model,
        )])
        .expect("writes");
        let k = kinds(&t);
        assert_eq!(k.len(), 3);
        assert_eq!(k[0].get("f7"), Some(&StorageKind::Sparse), "{:?}", k[0]);
        assert_eq!(k[0].get("b"), Some(&StorageKind::Sparse));
        // Absent and all-null columns take no place in the segment.
        assert!(
            !k[1].contains_key("f30") && !k[1].contains_key("i"),
            "{:?}",
            k[1]
        );
        assert_eq!(k[2].len(), 4, "{:?}", k[2]);
        assert_eq!(k[2].get("f0"), Some(&StorageKind::Fixed));
        let every = keys(0..4600);
        check_model(&t, &model, &every);
        t.compact()
            .expect("merges segments of different column sets");
        assert_eq!(t.stats().segments, 1);
        check_model(&t, &model, &every);
    }
    let dir = Arc::new(MmapDirectory::open(tmp.path()).expect("reopens"));
    let store = Store::open(dir, quiet(&clock)).expect("store");
    let t = store.table("wide").expect("loaded");
    check_model(&t, &model, &keys(0..4600));
}

#[test]
fn a_sparse_table_costs_about_its_keys_and_values() {
    // 200 float32 columns, 10 values per row: each row's key and values are 7 + 40 bytes; a
    // dense row layout takes 825 bytes of values and validity per row.
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = Store::open(Arc::new(RamDirectory::new()), quiet(&clock)).expect("store");
    let mut columns = vec![ColumnDef::new("id", DType::Utf8, false)];
    columns.extend((0..200).map(|i| ColumnDef::new(format!("f{i}"), DType::Float32, true)));
    let t = store
        .create_table("wide", TableSchema::new("id", columns))
        .expect("creates");
    let names: Vec<String> = (0..200).map(|i| format!("f{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut rng = StdRng::seed_from_u64(1);
    let mut model = Model::new();
    let keys: Vec<String> = (0..50_000).map(|i| format!("u{i:06}")).collect();
    // Sampling with replacement may land twice on a column: count what the model holds.
    t.write(&[sparse_batch(&mut rng, &keys, &names, 10, &mut model)])
        .expect("writes");
    let values: usize = model.values().map(HashMap::len).sum();
    let raw = keys.iter().map(String::len).sum::<usize>() + values * 4;
    let bytes = t.stats().bytes as usize;
    let ratio = bytes as f64 / raw as f64;
    assert!(
        ratio <= 2.0,
        "{bytes} bytes for {raw} of keys and values: {ratio:.2}x"
    );
    check_model(&t, &model, &keys[..2000]);
}

fn small() -> TableSchema {
    TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("n", DType::Int64, true),
        ],
    )
}

fn rows(keys: &[String], n: i64) -> RecordBatch {
    RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(StringArray::from_iter_values(keys.iter())) as ArrayRef,
        ),
        (
            "n",
            Arc::new(Int64Array::from_iter_values(keys.iter().map(|_| n))) as ArrayRef,
        ),
    ])
    .expect("batch")
}

fn with_extra(keys: &[String], n: i64, extra: f32) -> RecordBatch {
    let b = rows(keys, n);
    let mut fields: Vec<(&str, ArrayRef)> =
        vec![("id", b.column(0).clone()), ("n", b.column(1).clone())];
    fields.push((
        "extra",
        Arc::new(Float32Array::from_iter_values(keys.iter().map(|_| extra))) as ArrayRef,
    ));
    RecordBatch::try_from_iter(fields).expect("batch")
}

fn add(name: &str, dtype: DType, nullable: bool) -> Alter {
    Alter {
        add_columns: vec![ColumnDef::new(name, dtype, nullable)],
        ttl: None,
    }
}

#[test]
fn added_columns_read_null_for_old_rows_and_survive_merges_and_restarts() {
    let tmp = tempfile::tempdir().expect("temp folder");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let old = keys(0..100);
    let new = keys(50..150);
    {
        let dir = Arc::new(MmapDirectory::open(tmp.path()).expect("opens"));
        let store = Store::open(dir, quiet(&clock)).expect("store");
        let t = store.create_table("t", small()).expect("creates");
        t.write(&[rows(&old, 1)]).expect("writes");
        // A write of the new column before it exists is refused.
        let err = t
            .write(&[with_extra(&new, 2, 0.5)])
            .expect_err("no such column");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        let schema = t
            .alter(&add("extra", DType::Float32, true))
            .expect("adds a column");
        assert_eq!(schema.columns.len(), 3);
        let got = t.fetch(&old, &["extra", "n"]).expect("fetches");
        assert_eq!(got.column(0).null_count(), 100, "old rows read null");
        t.write(&[with_extra(&new, 2, 0.5)])
            .expect("writes the new column");
        let got = t.fetch(&keys(0..150), &["extra", "n"]).expect("fetches");
        let extra = floats(&got, 0);
        assert_eq!(extra[..50], vec![None; 50][..]);
        assert_eq!(extra[50..], vec![Some(0.5); 100][..]);
        t.compact().expect("merges");
        let again = t.fetch(&keys(0..150), &["extra", "n"]).expect("fetches");
        assert_eq!(floats(&again, 0), extra);
    }
    let dir = Arc::new(MmapDirectory::open(tmp.path()).expect("reopens"));
    let store = Store::open(dir, quiet(&clock)).expect("store");
    let t = store.table("t").expect("loaded");
    assert_eq!(t.schema().columns[2].name, "extra");
    let got = t.fetch(&keys(0..150), &["extra"]).expect("fetches");
    assert_eq!(got.column(0).null_count(), 50);
}

#[test]
fn bad_schema_changes_are_refused_and_change_nothing() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = Store::open(Arc::new(RamDirectory::new()), quiet(&clock)).expect("store");
    let t = store.create_table("t", small()).expect("creates");
    let before = t.version();
    let cases = [
        (
            add("n", DType::Int64, true),
            ErrorKind::AlreadyExists,
            "\"n\"",
        ),
        (
            add("n", DType::Utf8, true),
            ErrorKind::AlreadyExists,
            "type",
        ),
        (
            add("id", DType::Utf8, true),
            ErrorKind::AlreadyExists,
            "\"id\"",
        ),
        (
            add("x", DType::Int64, false),
            ErrorKind::InvalidArgument,
            "nullable",
        ),
        (
            add("a b", DType::Int64, true),
            ErrorKind::InvalidArgument,
            "\"a b\"",
        ),
        (Alter::default(), ErrorKind::InvalidArgument, "empty"),
        (
            Alter {
                add_columns: vec![],
                ttl: Some(Some(0)),
            },
            ErrorKind::InvalidArgument,
            "ttl",
        ),
    ];
    for (alter, kind, says) in cases {
        let err = t.alter(&alter).expect_err("refused");
        assert_eq!(err.kind(), kind, "{alter:?}: {err}");
        assert!(err.to_string().contains(says), "{alter:?}: {err}");
    }
    assert_eq!(t.version(), before, "nothing committed");
    assert_eq!(t.schema(), small());
}

#[test]
fn writes_racing_a_schema_change_see_one_schema_or_the_other() {
    let store = Arc::new(
        Store::open(Arc::new(RamDirectory::new()), StoreOptions::default()).expect("store"),
    );
    let t = store.create_table("t", small()).expect("creates");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for w in 0..2 {
            let (t, stop, written) = (t.clone(), stop.clone(), written.clone());
            s.spawn(move || {
                let mut round = 0;
                while !stop.load(Ordering::SeqCst) || round < 5 {
                    let k: Vec<String> = (0..50).map(|i| format!("w{w}-{round}-{i}")).collect();
                    t.write(&[rows(&k, round)])
                        .expect("writes of the old columns");
                    written.fetch_add(1, Ordering::SeqCst);
                    round += 1;
                }
            });
        }
        let reader = t.clone();
        let stop_r = stop.clone();
        s.spawn(move || {
            while !stop_r.load(Ordering::SeqCst) {
                // Before the change the column is unknown; after it, old rows read null.
                match reader.fetch(&["w0-0-0"], &["n", "extra"]) {
                    Ok(b) => assert_eq!(b.num_columns(), 2),
                    Err(e) => assert!(e.to_string().contains("extra"), "{e}"),
                }
            }
        });
        while written.load(Ordering::SeqCst) < 4 {
            std::thread::yield_now();
        }
        t.alter(&add("extra", DType::Float32, true)).expect("adds");
        stop.store(true, Ordering::SeqCst);
    });
    // Every write landed, under whichever schema it committed.
    let n = written.load(Ordering::SeqCst);
    assert!(n >= 10);
    let got = t
        .fetch(&["w0-0-0", "w1-4-49"], &["n", "extra"])
        .expect("fetches");
    assert_eq!(got.column(0).null_count(), 0);
    assert_eq!(got.column(1).null_count(), 2);
    assert_eq!(t.stats().rows as usize, n * 50);
}

#[test]
fn rows_expire_to_the_second_and_a_rewrite_renews_them() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = Store::open(Arc::new(RamDirectory::new()), quiet(&clock)).expect("store");
    let t = store
        .create_table("t", small().with_ttl(Some(100)))
        .expect("creates");
    t.write(&[rows(&keys(0..10), 1)]).expect("writes");
    clock.advance(99);
    let got = t.fetch(&keys(0..10), &["n"]).expect("fetches");
    assert_eq!(got.column(0).null_count(), 0, "alive for ttl - 1 s");
    // k0 written again at 1_000_050.
    clock.set(1_000_050);
    t.write(&[rows(&keys(0..1), 2)]).expect("writes");
    clock.set(1_000_100);
    assert_eq!(
        ns(&t.fetch(&keys(0..3), &["n"]).expect("fetches"), 0),
        [Some(2), None, None],
        "expired at write time + ttl, but the rewritten key lives on"
    );
    clock.set(1_000_149);
    assert_eq!(ns(&t.fetch(&keys(0..1), &["n"]).expect("f"), 0), [Some(2)]);
    clock.set(1_000_150);
    assert_eq!(ns(&t.fetch(&keys(0..1), &["n"]).expect("f"), 0), [None]);
}

#[test]
fn expiry_drops_expired_rows_from_storage() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = Store::open(Arc::new(RamDirectory::new()), quiet(&clock)).expect("store");
    let t = store
        .create_table("t", small().with_ttl(Some(60)))
        .expect("creates");
    t.write(&[rows(&keys(0..1000), 1)]).expect("writes");
    clock.advance(30);
    t.write(&[rows(&keys(1000..1500), 2)]).expect("writes");
    t.compact()
        .expect("merges: the rows keep their own write times");
    assert_eq!(t.stats().rows, 1500);
    assert_eq!(t.next_expiry(), Some(1_000_060));
    clock.advance(29);
    assert_eq!(t.expire().expect("nothing expired yet"), 0);
    clock.advance(1);
    assert_eq!(t.expire().expect("expires"), 1);
    assert_eq!(t.stats().rows, 500, "the first write's rows are gone");
    assert_eq!(
        ns(&t.fetch(&["k0", "k1000"], &["n"]).expect("fetches"), 0),
        [None, Some(2)]
    );
    assert_eq!(t.next_expiry(), Some(1_000_090));
    clock.advance(30);
    t.expire().expect("expires");
    assert_eq!(
        t.stats().segments,
        0,
        "a segment whose rows all expired is dropped"
    );
    // A merge drops expired rows too.
    t.write(&[rows(&keys(0..10), 3)]).expect("writes");
    clock.advance(60);
    t.write(&[rows(&keys(10..20), 4)]).expect("writes");
    t.compact().expect("merges");
    assert_eq!(t.stats().rows, 10);
}

#[test]
fn ttl_survives_restarts_and_a_change_applies_to_rows_already_written() {
    let tmp = tempfile::tempdir().expect("temp folder");
    let clock = Arc::new(ManualClock::new(1_000_000));
    {
        let dir = Arc::new(MmapDirectory::open(tmp.path()).expect("opens"));
        let store = Store::open(dir, quiet(&clock)).expect("store");
        let t = store.create_table("t", small()).expect("creates");
        t.write(&[rows(&keys(0..10), 1)]).expect("writes");
        clock.advance(10);
        t.write(&[rows(&keys(10..20), 2)]).expect("writes");
        clock.advance(10);
        // No ttl: nothing expires. A ttl of 15 s now: the first write's rows are 20 s old.
        let schema = t
            .alter(&Alter {
                add_columns: vec![],
                ttl: Some(Some(15)),
            })
            .expect("sets a ttl");
        assert_eq!(schema.ttl, Some(15));
        let got = t.fetch(&["k0", "k10"], &["n"]).expect("fetches");
        assert_eq!(ns(&got, 0), [None, Some(2)]);
    }
    let dir: Arc<dyn Directory> = Arc::new(MmapDirectory::open(tmp.path()).expect("reopens"));
    let store = Store::open(dir, quiet(&clock)).expect("store");
    let t = store.table("t").expect("loaded");
    assert_eq!(t.schema().ttl, Some(15));
    assert_eq!(
        ns(&t.fetch(&["k0", "k10"], &["n"]).expect("f"), 0),
        [None, Some(2)]
    );
    clock.advance(5);
    assert_eq!(ns(&t.fetch(&["k10"], &["n"]).expect("f"), 0), [None]);
    // Removing the ttl brings back rows that no merge dropped yet.
    t.alter(&Alter {
        add_columns: vec![],
        ttl: Some(None),
    })
    .expect("removes the ttl");
    assert_eq!(
        ns(&t.fetch(&["k0", "k10"], &["n"]).expect("f"), 0),
        [Some(1), Some(2)]
    );
}

#[test]
fn the_merge_thread_drops_expired_rows_on_its_own() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = Store::open(
        Arc::new(RamDirectory::new()),
        StoreOptions {
            clock: clock.clone(),
            expiry_interval: std::time::Duration::ZERO,
            ..StoreOptions::default()
        },
    )
    .expect("store");
    let t = store
        .create_table("t", small().with_ttl(Some(5)))
        .expect("creates");
    t.write(&[rows(&keys(0..100), 1)]).expect("writes");
    clock.advance(5);
    // The thread schedules by the table's clock: due now. A write wakes it.
    t.write(&[rows(&keys(100..101), 1)]).expect("writes");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while t.stats().rows > 1 {
        assert!(std::time::Instant::now() < deadline, "{:?}", t.stats());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
