//! Write throughput (one write of 1M rows x 10 float32, to local disk) and the time to open a
//! store of 1M rows until it serves. `MURR_BENCH_MAX_ROWS` caps the sizes.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use murr_benches::{batch, load, schema};
use murr_directory::MmapDirectory;
use murr_table::{Store, StoreOptions};

fn rows() -> usize {
    std::env::var("MURR_BENCH_MAX_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX)
        .min(1_000_000)
}

fn write(c: &mut Criterion) {
    let rows = rows();
    let input = batch(0, rows, 10, 3);
    let mut group = c.benchmark_group("write");
    group.throughput(Throughput::Elements(rows as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function(format!("{rows}_rows_10cols"), |b| {
        b.iter_with_setup(
            || {
                let tmp = tempfile::tempdir().expect("temp folder");
                let dir = Arc::new(MmapDirectory::open(tmp.path()).expect("opens"));
                let store = Store::open(dir, StoreOptions::default()).expect("opens");
                store.create_table("bench", schema(10)).expect("creates");
                (tmp, store)
            },
            |(tmp, store)| {
                store
                    .write("bench", std::slice::from_ref(&input))
                    .expect("writes");
                (tmp, store)
            },
        );
    });
    group.finish();
}

fn open(c: &mut Criterion) {
    let rows = rows();
    let tmp = tempfile::tempdir().expect("temp folder");
    drop(load(
        Arc::new(MmapDirectory::open(tmp.path()).expect("opens")),
        rows,
        10,
        rows,
    ));
    let mut group = c.benchmark_group("open");
    group.sample_size(10);
    group.bench_function(format!("{rows}_rows_10cols"), |b| {
        b.iter(|| {
            let dir = Arc::new(MmapDirectory::open(tmp.path()).expect("opens"));
            Store::open(dir, StoreOptions::default()).expect("opens")
        });
    });
    group.finish();
}

criterion_group!(benches, write, open);
criterion_main!(benches);
