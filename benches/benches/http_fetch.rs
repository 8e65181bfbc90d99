//! HTTP fetch: 1000 random existing keys x 10 float32 columns over 1M rows, Arrow IPC answer,
//! through a real server on loopback. Measured to the last byte, and with decoding into Arrow.
//! `MURR_BENCH_MAX_ROWS` caps the table size.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use murr_benches::{columns, decode_ipc, fetch_body, load, random_keys, serve_http};
use murr_directory::MmapDirectory;
use rand::SeedableRng;
use rand::rngs::SmallRng;

fn http_fetch(c: &mut Criterion) {
    let rows = std::env::var("MURR_BENCH_MAX_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX)
        .min(1_000_000);
    let tmp = tempfile::tempdir().expect("temp folder");
    let (store, table) = load(
        Arc::new(MmapDirectory::open(tmp.path()).expect("opens")),
        rows,
        10,
        1_000_000,
    );
    drop(table);
    let (base, _server) = serve_http(Arc::new(store));
    let url = format!("{base}/api/v1/table/bench/fetch");
    let names = columns(10);
    let mut rng = SmallRng::seed_from_u64(2);
    let bodies: Vec<Vec<u8>> = (0..64)
        .map(|_| fetch_body(&random_keys(&mut rng, rows, 1000), &names))
        .collect();
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::new();
    let fetch = |body: &Vec<u8>| {
        client_rt.block_on(async {
            let resp = client
                .post(&url)
                .header("accept", "application/vnd.apache.arrow.stream")
                .body(body.clone())
                .send()
                .await
                .expect("request");
            assert!(resp.status().is_success());
            resp.bytes().await.expect("body")
        })
    };
    let mut group = c.benchmark_group("http_fetch_1000_keys_10cols");
    group.throughput(Throughput::Elements(1000));
    let mut i = 0;
    group.bench_function(format!("{rows}_rows_last_byte"), |b| {
        b.iter(|| {
            i = (i + 1) % bodies.len();
            fetch(&bodies[i])
        });
    });
    group.bench_function(format!("{rows}_rows_decoded"), |b| {
        b.iter(|| {
            i = (i + 1) % bodies.len();
            decode_ipc(&fetch(&bodies[i]))
        });
    });
    group.finish();
}

criterion_group!(benches, http_fetch);
criterion_main!(benches);
