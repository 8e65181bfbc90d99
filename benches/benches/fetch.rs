//! In-process fetch: 1000 random existing keys x all columns, through `Table::fetch`.
//! Tables: 10 float32 columns over 1M and 10M rows, 100 columns over 1M rows.
//! `MURR_BENCH_MAX_ROWS` caps the table sizes (e.g. 100000 for a quick run).

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use murr_benches::{columns, load, max_rows, random_keys};
use murr_directory::RamDirectory;
use rand::SeedableRng;
use rand::rngs::SmallRng;

fn fetch(c: &mut Criterion) {
    let mut group = c.benchmark_group("fetch_1000_keys");
    group.throughput(Throughput::Elements(1000));
    for (rows, cols) in [
        (1_000_000usize, 10usize),
        (10_000_000, 10),
        (1_000_000, 100),
    ] {
        let rows = rows.min(max_rows());
        let (_store, table) = load(Arc::new(RamDirectory::new()), rows, cols, 1_000_000);
        let names = columns(cols);
        let mut rng = SmallRng::seed_from_u64(1);
        let requests: Vec<Vec<String>> =
            (0..64).map(|_| random_keys(&mut rng, rows, 1000)).collect();
        let mut i = 0;
        group.bench_function(BenchmarkId::new(format!("{cols}cols"), rows), |b| {
            b.iter(|| {
                i = (i + 1) % requests.len();
                table.fetch(&requests[i], &names).expect("fetches")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, fetch);
criterion_main!(benches);
