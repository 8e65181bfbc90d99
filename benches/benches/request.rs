//! Parsing a fetch request of 1000 keys (the JSON body of every HTTP fetch and Flight ticket):
//! murr's parser against `serde_json` into owned strings, the obvious alternative.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use murr_api::FetchRequest;
use murr_benches::{columns, fetch_body, random_keys};
use rand::SeedableRng;
use rand::rngs::SmallRng;

#[derive(serde::Deserialize)]
#[allow(dead_code, reason = "only parsed")]
struct Owned {
    keys: Vec<String>,
    columns: Vec<String>,
}

fn request(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(1);
    let body = fetch_body(&random_keys(&mut rng, 10_000_000, 1000), &columns(10));
    let mut group = c.benchmark_group("parse_fetch_request_1000_keys");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("murr", |b| {
        b.iter(|| FetchRequest::from_json(&body).expect("parses"));
    });
    group.bench_function("serde_json_owned", |b| {
        b.iter(|| serde_json::from_slice::<Owned>(&body).expect("parses"));
    });
    group.finish();
}

criterion_group!(benches, request);
criterion_main!(benches);
