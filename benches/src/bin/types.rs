//! `cargo xtask bench` (types part): embeddings and lists, in one run.
//!
//! - A table of `--rows` (default 1M) keys with one `fixed_size_list<float32, 768>` column: an
//!   in-process fetch of 1000 random keys against a floor that copies 1000 random 3 KB rows out
//!   of a flat buffer; over HTTP (Arrow IPC, the real `murr` binary) against Redis MGET of the
//!   same 3 KB blobs decoded into the same Arrow array; the server's resident memory against
//!   the raw bytes (keys + values).
//! - A `list<int64>` column with lengths 0..200 (mean 50): its in-process fetch cost per value
//!   against the embedding's.
//!
//! Prints a markdown table and the ratios against the targets; writes JSON to `--out`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods,
    reason = "a command-line report; serde_json::json! unwraps internally"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::{Int64Builder, ListBuilder};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use murr_benches::{
    Latency, MurrServer, RawHttp, Redis, decode_ipc, fetch_body, key, random_keys, steady_rss,
    time_requests,
};
use murr_directory::RamDirectory;
use murr_format::{ColumnDef, DType, TableSchema};
use murr_table::{Store, StoreOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const DIM: usize = 768;
const CHUNK: usize = 20_000;

struct Args {
    rows: usize,
    requests: usize,
    murr_bin: PathBuf,
    out: PathBuf,
    murr_only: bool,
    in_process_only: bool,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        rows: 1_000_000,
        requests: 200,
        murr_bin: PathBuf::from("target/release/murr"),
        out: PathBuf::from("target/bench/types.json"),
        murr_only: false,
        in_process_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = value()?.parse()?,
            "--requests" => a.requests = value()?.parse()?,
            "--murr-bin" => a.murr_bin = value()?.into(),
            "--out" => a.out = value()?.into(),
            "--murr-only" => a.murr_only = true,
            "--in-process-only" => a.in_process_only = true,
            other => {
                return Err(format!(
                    "unknown flag {other} (--rows, --requests, --murr-bin, --out, --murr-only, --in-process-only)"
                )
                .into());
            }
        }
    }
    Ok(a)
}

fn embedding_type() -> DType {
    DType::fixed_size_list(DType::Float32, DIM as u32).expect("a type")
}

fn schema(dtype: DType) -> TableSchema {
    TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("v", dtype, true),
        ],
    )
}

/// The embedding of row `i`: seeded pseudo-random floats.
fn embedding(i: usize) -> Vec<f32> {
    let mut rng = SmallRng::seed_from_u64(i as u64);
    (0..DIM).map(|_| rng.random::<f32>()).collect()
}

/// Keys `start..end` beside the values `v`.
fn keyed(start: usize, end: usize, v: ArrayRef) -> RecordBatch {
    let ids = StringArray::from_iter_values((start..end).map(key));
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", arrow_schema::DataType::Utf8, false),
            Field::new("v", v.data_type().clone(), true),
        ])),
        vec![Arc::new(ids) as ArrayRef, v],
    )
    .expect("batch")
}

fn embeddings(start: usize, end: usize) -> RecordBatch {
    let values: Vec<f32> = (start..end).flat_map(embedding).collect();
    let field = Arc::new(Field::new_list_field(arrow_schema::DataType::Float32, true));
    let v = FixedSizeListArray::new(
        field,
        DIM as i32,
        Arc::new(Float32Array::from(values)),
        None,
    );
    keyed(start, end, Arc::new(v))
}

/// Lists of row `start..end`: lengths 0..200 with mean 50 (200 x the product of two uniforms).
fn lists(start: usize, end: usize) -> RecordBatch {
    let mut b = ListBuilder::new(Int64Builder::new());
    for i in start..end {
        let mut rng = SmallRng::seed_from_u64(i as u64);
        let len = (200.0 * rng.random::<f64>() * rng.random::<f64>()) as usize;
        for j in 0..len {
            b.values().append_value((i * 1000 + j) as i64);
        }
        b.append(true);
    }
    let v = b.finish();
    keyed(start, end, Arc::new(v))
}

/// An in-process table of `rows` rows made by `make`, compacted to one segment; the fetch
/// latency of `requests` and the values each answer held on average.
fn in_process(
    dtype: DType,
    rows: usize,
    requests: &[Vec<String>],
    make: impl Fn(usize, usize) -> RecordBatch,
) -> Res<(Latency, f64)> {
    let store = Store::open(
        Arc::new(RamDirectory::new()),
        StoreOptions {
            background_merges: false,
            ..StoreOptions::default()
        },
    )?;
    let table = store.create_table("t", schema(dtype))?;
    let mut start = 0;
    while start < rows {
        let end = (start + CHUNK).min(rows);
        table.write(&[make(start, end)])?;
        start = end;
    }
    table.compact()?;
    let columns = ["v"];
    let mut values = 0usize;
    let lat = time_requests(requests, |keys| {
        let b = table.fetch(keys, &columns).expect("fetches");
        values += match b.column(0).as_list_opt::<i32>() {
            Some(l) => l.values().len(),
            None => b.column(0).as_fixed_size_list().values().len(),
        };
    });
    Ok((lat, values as f64 / requests.len() as f64))
}

/// Copies 1000 random 3 KB rows of a flat buffer of `rows` embeddings into one output buffer,
/// per request: the least a fetch of 1000 embeddings can do.
fn floor(rows: usize, requests: &[Vec<usize>]) -> Latency {
    let flat: Vec<f32> = (0..rows * DIM).map(|i| i as f32).collect();
    let as_keys: Vec<Vec<String>> = requests
        .iter()
        .map(|r| r.iter().map(|i| i.to_string()).collect())
        .collect();
    let mut n = 0;
    time_requests(&as_keys, |_| {
        let r = &requests[n % requests.len()];
        n += 1;
        let mut out = Vec::with_capacity(r.len() * DIM);
        for &i in r {
            out.extend_from_slice(&flat[i * DIM..(i + 1) * DIM]);
        }
        std::hint::black_box(out);
    })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("murr-bench-types: {e}");
        std::process::exit(1);
    }
}

#[allow(clippy::too_many_lines, reason = "one linear script of measurements")]
fn run() -> Res<()> {
    let args = parse_args()?;
    let rows = args.rows;
    let mut rng = SmallRng::seed_from_u64(11);
    let numbers: Vec<Vec<usize>> = (0..args.requests)
        .map(|_| (0..1000).map(|_| rng.random_range(0..rows)).collect())
        .collect();
    let requests: Vec<Vec<String>> = numbers
        .iter()
        .map(|r| r.iter().copied().map(key).collect())
        .collect();

    eprintln!("bench-types: {rows} embeddings of {DIM} float32 in process");
    let (emb, emb_values) = in_process(embedding_type(), rows, &requests, embeddings)?;
    let floor = floor(rows, &numbers);
    eprintln!("bench-types: {rows} lists of int64 in process");
    let list_keys: Vec<Vec<String>> = {
        let mut rng = SmallRng::seed_from_u64(12);
        (0..args.requests)
            .map(|_| random_keys(&mut rng, rows, 1000))
            .collect()
    };
    let list_type = DType::list(DType::Int64).expect("a type");
    let (list, list_values) = in_process(list_type, rows, &list_keys, lists)?;
    let emb_ns = emb.mean * 1e3 / emb_values;
    let list_ns = list.mean * 1e3 / list_values;
    if args.in_process_only {
        println!(
            "embedding {:.0} µs, floor {:.0} µs ({:.2}x); list<int64> {:.0} µs, {list_ns:.2} ns a value / embedding {emb_ns:.2} ns = {:.2}x",
            emb.mean,
            floor.mean,
            emb.mean / floor.mean,
            list.mean,
            list_ns / emb_ns
        );
        return Ok(());
    }

    eprintln!("bench-types: the murr server over HTTP (Arrow IPC)");
    let data = tempfile::tempdir()?;
    let server = MurrServer::start(&args.murr_bin, data.path())?;
    let http = murr_benches::http_client(Duration::from_secs(600))?;
    let resp = http
        .put(format!("{}/api/v1/table/t", server.http))
        .body(serde_json::to_string(&schema(embedding_type()))?)
        .send()?;
    if !resp.status().is_success() {
        return Err(format!("create table: {}", resp.text()?).into());
    }
    let mut start = 0;
    while start < rows {
        let end = (start + CHUNK * 5).min(rows);
        let b = embeddings(start, end);
        let mut ipc = Vec::new();
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut ipc, &b.schema())?;
        w.write(&b)?;
        w.finish()?;
        drop(w);
        let resp = http
            .put(format!("{}/api/v1/table/t/write", server.http))
            .header("content-type", "application/vnd.apache.arrow.stream")
            .body(ipc)
            .send()?;
        if !resp.status().is_success() {
            return Err(format!("write: {}", resp.text()?).into());
        }
        start = end;
    }
    // A merge of the whole 1M-row table takes some 20 s on these machines: wait for a quiet
    // 45 s (a few seconds for a small table).
    let large = rows >= 200_000;
    server.settle(rows, Duration::from_secs(if large { 45 } else { 3 }));
    // After the merges, jemalloc holds their freed pages for a plateau, then returns them over
    // its 10 s decay: the settled size is the one that has not fallen for 12 s.
    let quiet = Duration::from_secs(if large { 12 } else { 2 });
    let rss = steady_rss(server.child.id(), quiet, Duration::from_secs(120)).unwrap_or(0);
    let raw = rows * (key(0).len() + DIM * 4);
    let mut conn = RawHttp::connect(&server.http)?;
    let columns = vec!["v".to_owned()];
    let murr_http = time_requests(&requests, |keys| {
        let bytes = conn
            .post("/api/v1/table/t/fetch", &fetch_body(keys, &columns))
            .expect("fetch");
        decode_ipc(&bytes)
    });
    // The keep-alive connection closed first: the server then stops at once.
    drop(conn);
    server.stop()?;

    let redis_mget = if args.murr_only {
        None
    } else {
        eprintln!("bench-types: Redis MGET of the same 3 KB blobs");
        let mut redis = Redis::start()?;
        let mut start = 0;
        while start < rows {
            let end = (start + CHUNK).min(rows);
            let mut pipe = redis::pipe();
            for i in start..end {
                let blob: Vec<u8> = embedding(i).iter().flat_map(|f| f.to_le_bytes()).collect();
                pipe.cmd("SET").arg(key(i)).arg(blob).ignore();
            }
            pipe.query::<()>(&mut redis.conn)?;
            start = end;
        }
        let field = Arc::new(Field::new_list_field(arrow_schema::DataType::Float32, true));
        Some(time_requests(&requests, |keys| {
            let blobs: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(keys)
                .query(&mut redis.conn)
                .expect("MGET");
            let mut values = Vec::with_capacity(keys.len() * DIM);
            for b in &blobs {
                match b {
                    Some(b) => values.extend(
                        b.chunks_exact(4)
                            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
                    ),
                    None => values.extend(std::iter::repeat_n(0.0, DIM)),
                }
            }
            FixedSizeListArray::new(
                Arc::clone(&field),
                DIM as i32,
                Arc::new(Float32Array::from(values)),
                None,
            )
        }))
    };

    println!(
        "\n## Embeddings and lists ({rows} rows, 1000 random keys per read, {} reads)\n",
        args.requests
    );
    println!("| measurement | mean µs | p50 µs | p99 µs |");
    println!("|---|---|---|---|");
    let row = |name: &str, l: &Latency| {
        println!("| {name} | {:.0} | {:.0} | {:.0} |", l.mean, l.p50, l.p99)
    };
    row("embedding, in process (Table::fetch)", &emb);
    row("floor: copy 1000 random 3 KB rows", &floor);
    row("embedding, murr HTTP (Arrow IPC, decoded)", &murr_http);
    if let Some(r) = &redis_mget {
        row("embedding, Redis MGET (decoded into Arrow)", r);
    }
    row("list<int64>, in process", &list);
    println!();
    let in_process_ratio = emb.mean / floor.mean;
    println!("- in-process embedding fetch / floor: {in_process_ratio:.2}x (goal <= 1.5x)");
    let http_ratio = redis_mget.as_ref().map(|r| murr_http.mean / r.mean);
    if let Some(h) = http_ratio {
        println!("- murr HTTP / Redis MGET: {h:.2}x (goal <= 0.3x)");
    }
    let mem_ratio = rss as f64 / raw as f64;
    println!(
        "- murr server RSS / raw bytes: {:.0} MB / {:.0} MB = {mem_ratio:.2}x (goal <= 1.1x)",
        rss as f64 / 1e6,
        raw as f64 / 1e6
    );
    println!(
        "- per value: list<int64> {list_ns:.2} ns ({list_values:.0} values a read) / embedding {emb_ns:.2} ns = {:.2}x (goal <= 2x)",
        list_ns / emb_ns
    );
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &args.out,
        serde_json::to_string_pretty(&serde_json::json!({
            "rows": rows,
            "requests": args.requests,
            "embedding_in_process": emb,
            "floor": floor,
            "embedding_http": murr_http,
            "embedding_redis_mget": redis_mget,
            "list_in_process": list,
            "in_process_over_floor": in_process_ratio,
            "http_over_redis": http_ratio,
            "rss_bytes": rss,
            "raw_bytes": raw,
            "rss_over_raw": mem_ratio,
            "list_ns_per_value": list_ns,
            "embedding_ns_per_value": emb_ns,
        }))?,
    )?;
    Ok(())
}
