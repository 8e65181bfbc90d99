//! In-process fetch while a refresh is half done: 1000 random keys x 10 float32 columns from a
//! table of one compacted 10M-row segment and 0 to 10 newer 1M-row segments that rewrote key
//! ranges (as `murr-bench-load`'s refresh leaves the table, its merges held). Each newer segment
//! is one more index a key not in it is looked up in.
//! `MURR_BENCH_MAX_ROWS` caps the table (the newer segments are a tenth of it each).

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use murr_benches::{batch, columns, load, max_rows, random_keys};
use murr_directory::MmapDirectory;
use rand::SeedableRng;
use rand::rngs::SmallRng;

fn segments(c: &mut Criterion) {
    let rows = 10_000_000usize.min(max_rows());
    let chunk = (rows / 10).max(1);
    let tmp = tempfile::tempdir().expect("temp folder");
    let dir = Arc::new(MmapDirectory::open(tmp.path()).expect("opens"));
    let (_store, table) = load(dir, rows, 10, chunk);
    let names = columns(10);
    let mut rng = SmallRng::seed_from_u64(1);
    let requests: Vec<Vec<String>> = (0..64).map(|_| random_keys(&mut rng, rows, 1000)).collect();
    let mut group = c.benchmark_group("fetch_1000_keys_over_segments");
    group.throughput(Throughput::Elements(1000));
    let mut written = 0;
    for newer in [0usize, 1, 2, 5, 10] {
        while written < newer {
            let start = written * chunk;
            table
                .write(&[batch(start, (start + chunk).min(rows), 10, 7)])
                .expect("writes");
            written += 1;
        }
        let mut i = 0;
        group.bench_function(BenchmarkId::new("newer_segments", newer), |b| {
            b.iter(|| {
                i = (i + 1) % requests.len();
                table.fetch(&requests[i], &names).expect("fetches")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, segments);
criterion_main!(benches);
