//! Generation 2's fetch (keys by column, sparse answers) against generation 1's, in process:
//! 1000 random existing keys x 10 float32 columns of 1M rows (`MURR_BENCH_MAX_ROWS` caps it).
//! - `utf8_dense`: generation 1, keys as strings (`Table::fetch`), the baseline;
//! - `utf8_keyed`: the same table and keys as a utf8 array (`Table::fetch_keyed`);
//! - `compound_keyed`: a (utf8, int64) key over the same values: the user `u<i / 100>`, the
//!   item `i % 100`, so encoded keys are stored in the segment's `:key` column.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use murr_benches::{batch, columns, key, load, max_rows};
use murr_directory::RamDirectory;
use murr_format::{ColumnDef, DType, TableSchema};
use murr_table::{Store, StoreOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn user(i: usize) -> String {
    format!("u{:08}", i / 100)
}

/// Rows `start..end` of the compound table: `batch`'s values under (user, item).
fn compound_batch(start: usize, end: usize) -> RecordBatch {
    let plain = batch(start, end, 10, 42);
    let mut cols: Vec<(String, ArrayRef)> = vec![
        (
            "user".to_owned(),
            Arc::new(StringArray::from_iter_values((start..end).map(user))),
        ),
        (
            "item".to_owned(),
            Arc::new(Int64Array::from_iter_values(
                (start..end).map(|i| (i % 100) as i64),
            )),
        ),
    ];
    for (f, a) in plain.schema().fields().iter().zip(plain.columns()).skip(1) {
        cols.push((f.name().clone(), Arc::clone(a)));
    }
    RecordBatch::try_from_iter(cols).expect("batch")
}

fn keyed(c: &mut Criterion) {
    let rows = 1_000_000usize.min(max_rows());
    let names = columns(10);
    let (_store, plain) = load(Arc::new(RamDirectory::new()), rows, 10, 1_000_000);
    let store = Store::open(
        Arc::new(RamDirectory::new()),
        StoreOptions {
            background_merges: false,
            ..StoreOptions::default()
        },
    )
    .expect("opens");
    let mut defs = vec![
        ColumnDef::new("user", DType::Utf8, false),
        ColumnDef::new("item", DType::Int64, false),
    ];
    defs.extend(
        names
            .iter()
            .map(|n| ColumnDef::new(n, DType::Float32, false)),
    );
    let compound = store
        .create_table("compound", TableSchema::compound(&["user", "item"], defs))
        .expect("creates");
    let mut start = 0;
    while start < rows {
        let end = (start + 1_000_000).min(rows);
        compound
            .write(&[compound_batch(start, end)])
            .expect("writes");
        start = end;
    }
    compound.compact().expect("compacts");

    let mut rng = SmallRng::seed_from_u64(1);
    let picks: Vec<Vec<usize>> = (0..64)
        .map(|_| (0..1000).map(|_| rng.random_range(0..rows)).collect())
        .collect();
    let texts: Vec<Vec<String>> = picks
        .iter()
        .map(|p| p.iter().map(|&i| key(i)).collect())
        .collect();
    let utf8: Vec<Vec<ArrayRef>> = texts
        .iter()
        .map(|t| vec![Arc::new(StringArray::from(t.clone())) as ArrayRef])
        .collect();
    let pairs: Vec<Vec<ArrayRef>> = picks
        .iter()
        .map(|p| {
            vec![
                Arc::new(StringArray::from_iter_values(p.iter().map(|&i| user(i)))) as ArrayRef,
                Arc::new(Int64Array::from_iter_values(
                    p.iter().map(|&i| (i % 100) as i64),
                )),
            ]
        })
        .collect();

    let mut group = c.benchmark_group("fetch_keyed_1000_keys_10cols");
    group.throughput(Throughput::Elements(1000));
    let mut i = 0;
    group.bench_function("utf8_dense", |b| {
        b.iter(|| {
            i = (i + 1) % texts.len();
            plain.fetch(&texts[i], &names).expect("fetches")
        });
    });
    group.bench_function("utf8_keyed", |b| {
        b.iter(|| {
            i = (i + 1) % utf8.len();
            plain.fetch_keyed(&utf8[i], &names).expect("fetches")
        });
    });
    group.bench_function("compound_keyed", |b| {
        b.iter(|| {
            i = (i + 1) % pairs.len();
            let (found, batch) = compound.fetch_keyed(&pairs[i], &names).expect("fetches");
            assert_eq!(found.len(), 1000);
            batch
        });
    });
    group.finish();
}

criterion_group!(benches, keyed);
criterion_main!(benches);
