//! Row-major against column-major storage for the gather murr serves: M float32 columns of
//! 1000 random rows out of 1M, at M = 10 and M = 100. This bench decided the segment layout
//! (see docs/format.md).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const ROWS: usize = 1_000_000;
const KEYS: usize = 1000;

fn layouts(c: &mut Criterion) {
    let mut group = c.benchmark_group("layout_gather_1000_of_1M");
    let mut rng = SmallRng::seed_from_u64(7);
    let picks: Vec<usize> = (0..KEYS).map(|_| rng.random_range(0..ROWS)).collect();
    for cols in [10usize, 100] {
        let row_major: Vec<f32> = (0..ROWS * cols).map(|i| i as f32).collect();
        let col_major: Vec<Vec<f32>> = (0..cols)
            .map(|c| (0..ROWS).map(|r| (r * cols + c) as f32).collect())
            .collect();
        group.bench_function(BenchmarkId::new("row_major", cols), |b| {
            b.iter(|| {
                let mut out: Vec<Vec<f32>> = (0..cols).map(|_| Vec::with_capacity(KEYS)).collect();
                for (c, o) in out.iter_mut().enumerate() {
                    o.extend(picks.iter().map(|&r| row_major[r * cols + c]));
                }
                out
            });
        });
        group.bench_function(BenchmarkId::new("column_major", cols), |b| {
            b.iter(|| {
                let out: Vec<Vec<f32>> = col_major
                    .iter()
                    .map(|col| picks.iter().map(|&r| col[r]).collect())
                    .collect();
                out
            });
        });
    }
    group.finish();
}

criterion_group!(benches, layouts);
criterion_main!(benches);
