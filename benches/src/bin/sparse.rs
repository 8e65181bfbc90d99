//! `cargo xtask bench` (sparse part): a wide, mostly-null feature table.
//!
//! A table of `--rows` (default 1M) keys and 200 float32 columns where each row has a value in
//! 10 columns chosen at random (sparse), beside a dense table of the same keys and 20 float32
//! columns, every value present:
//!
//! - bytes of the sparse table's segment, and the `murr` server's resident memory once it holds
//!   it (over the same server's before the load), against the raw bytes: keys + non-null values;
//! - an in-process fetch of 20 columns for 1000 random keys from each table (the sparse one
//!   against the dense one), and the same over HTTP (Arrow IPC, the real binary).
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

use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use murr_benches::{
    Latency, MurrServer, RawHttp, decode_ipc, fetch_body, key, random_keys, rss_of, steady_rss,
    time_interleaved,
};
use murr_directory::RamDirectory;
use murr_format::{ColumnDef, DType, TableSchema};
use murr_table::{Store, StoreOptions, Table};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Columns of the sparse table, values per row, and columns a fetch asks for.
const WIDE: usize = 200;
const PER_ROW: usize = 10;
const ASKED: usize = 20;
const CHUNK: usize = 50_000;

struct Args {
    rows: usize,
    requests: usize,
    murr_bin: PathBuf,
    out: PathBuf,
    in_process_only: bool,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        rows: 1_000_000,
        requests: 300,
        murr_bin: PathBuf::from("target/release/murr"),
        out: PathBuf::from("target/bench/sparse.json"),
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
            "--in-process-only" => a.in_process_only = true,
            other => {
                return Err(format!(
                    "unknown flag {other} (--rows, --requests, --murr-bin, --out, --in-process-only)"
                )
                .into());
            }
        }
    }
    Ok(a)
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|c| format!("f{c}")).collect()
}

/// Key `id`, then `n` nullable float32 columns.
fn schema(n: usize) -> TableSchema {
    let mut c = vec![ColumnDef::new("id", DType::Utf8, false)];
    c.extend(
        names(n)
            .into_iter()
            .map(|n| ColumnDef::new(n, DType::Float32, true)),
    );
    TableSchema::new("id", c)
}

/// Rows `start..end` of the sparse table: each has a value in `PER_ROW` distinct random columns.
fn sparse(start: usize, end: usize) -> RecordBatch {
    let n = end - start;
    let mut values: Vec<Vec<Option<f32>>> = vec![vec![None; n]; WIDE];
    for (r, i) in (start..end).enumerate() {
        let mut rng = SmallRng::seed_from_u64(i as u64);
        let mut taken = 0;
        while taken < PER_ROW {
            let c = rng.random_range(0..WIDE);
            if values[c][r].is_none() {
                values[c][r] = Some(rng.random::<f32>());
                taken += 1;
            }
        }
    }
    let mut fields = vec![Field::new("id", DataType::Utf8, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        (start..end).map(key),
    ))];
    for (name, v) in names(WIDE).into_iter().zip(values) {
        fields.push(Field::new(name, DataType::Float32, true));
        arrays.push(Arc::new(Float32Array::from(v)));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("batch")
}

/// Rows `start..end` of the dense table: every one of `ASKED` columns has a value.
fn dense(start: usize, end: usize) -> RecordBatch {
    let mut rng = SmallRng::seed_from_u64(start as u64);
    let mut fields = vec![Field::new("id", DataType::Utf8, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        (start..end).map(key),
    ))];
    for name in names(ASKED) {
        fields.push(Field::new(name, DataType::Float32, true));
        arrays.push(Arc::new(Float32Array::from_iter_values(
            (start..end).map(|_| rng.random::<f32>()),
        )));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("batch")
}

/// An in-process table of `rows` rows made by `make`, compacted to one segment.
fn in_process(
    store: &Store,
    name: &str,
    columns: usize,
    rows: usize,
    make: impl Fn(usize, usize) -> RecordBatch,
) -> Res<Arc<Table>> {
    let table = store.create_table(name, schema(columns))?;
    let mut start = 0;
    while start < rows {
        let end = (start + CHUNK).min(rows);
        table.write(&[make(start, end)])?;
        start = end;
    }
    table.compact()?;
    Ok(table)
}

fn ipc(b: &RecordBatch) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &b.schema())?;
    w.write(b)?;
    w.finish()?;
    drop(w);
    Ok(out)
}

/// Creates and loads table `name` on the server.
fn load_server(
    http: &reqwest::blocking::Client,
    base: &str,
    name: &str,
    columns: usize,
    rows: usize,
    make: impl Fn(usize, usize) -> RecordBatch,
) -> Res<()> {
    let resp = http
        .put(format!("{base}/api/v1/table/{name}"))
        .body(serde_json::to_string(&schema(columns))?)
        .send()?;
    if !resp.status().is_success() {
        return Err(format!("create table: {}", resp.text()?).into());
    }
    let mut start = 0;
    while start < rows {
        let end = (start + CHUNK * 4).min(rows);
        let resp = http
            .put(format!("{base}/api/v1/table/{name}/write"))
            .header("content-type", "application/vnd.apache.arrow.stream")
            .body(ipc(&make(start, end))?)
            .send()?;
        if !resp.status().is_success() {
            return Err(format!("write: {}", resp.text()?).into());
        }
        start = end;
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("murr-bench-sparse: {e}");
        std::process::exit(1);
    }
}

#[allow(clippy::too_many_lines, reason = "one linear script of measurements")]
fn run() -> Res<()> {
    let args = parse_args()?;
    let rows = args.rows;
    let mut rng = SmallRng::seed_from_u64(21);
    let requests: Vec<Vec<String>> = (0..args.requests)
        .map(|_| random_keys(&mut rng, rows, 1000))
        .collect();
    // The sparse fetch asks for 20 of the 200 columns, spread over them; the dense for its 20.
    let sparse_cols: Vec<String> = (0..ASKED)
        .map(|i| format!("f{}", i * (WIDE / ASKED)))
        .collect();
    let dense_cols = names(ASKED);
    let raw = rows * (key(0).len() + PER_ROW * 4);

    eprintln!("bench-sparse: {rows} rows x {WIDE} columns, {PER_ROW} values a row, in process");
    let store = Store::open(
        Arc::new(RamDirectory::new()),
        StoreOptions {
            background_merges: false,
            ..StoreOptions::default()
        },
    )?;
    let wide = in_process(&store, "wide", WIDE, rows, sparse)?;
    let narrow = in_process(&store, "narrow", ASKED, rows, dense)?;
    let segment_bytes = wide.stats().bytes as usize;
    let dense_bytes = narrow.stats().bytes as usize;
    // Interleaved, so that drift on a noisy machine hits both alike.
    let timed = time_interleaved(
        &requests,
        10,
        &mut [
            &mut |keys: &[String], _| {
                std::hint::black_box(wide.fetch(keys, &sparse_cols).expect("fetches"));
            },
            &mut |keys: &[String], _| {
                std::hint::black_box(narrow.fetch(keys, &dense_cols).expect("fetches"));
            },
        ],
    );
    let sparse_in = timed[0].1.clone();
    let dense_in = timed[1].1.clone();
    drop((wide, narrow, store));
    let disk_ratio = segment_bytes as f64 / raw as f64;
    let in_ratio = sparse_in.mean / dense_in.mean;
    if args.in_process_only {
        println!(
            "sparse segment {:.1} MB / raw {:.1} MB = {disk_ratio:.2}x; fetch sparse {:.0} µs / dense {:.0} µs = {in_ratio:.2}x",
            segment_bytes as f64 / 1e6,
            raw as f64 / 1e6,
            sparse_in.mean,
            dense_in.mean
        );
        return Ok(());
    }

    eprintln!("bench-sparse: the murr server over HTTP (Arrow IPC)");
    let data = tempfile::tempdir()?;
    let server = MurrServer::start(&args.murr_bin, data.path())?;
    let pid = server.child.id();
    let before = steady_rss(pid, Duration::from_secs(1), Duration::from_secs(10))
        .or_else(|| rss_of(pid))
        .unwrap_or(0);
    let http = murr_benches::http_client(Duration::from_secs(600))?;
    load_server(&http, &server.http, "wide", WIDE, rows, sparse)?;
    let large = rows >= 200_000;
    server.settle(rows, Duration::from_secs(if large { 30 } else { 3 }));
    let quiet = Duration::from_secs(if large { 12 } else { 2 });
    let after = steady_rss(pid, quiet, Duration::from_secs(120)).unwrap_or(0);
    let rss = after.saturating_sub(before);
    load_server(&http, &server.http, "narrow", ASKED, rows, dense)?;
    server.settle(rows, Duration::from_secs(if large { 30 } else { 3 }));
    let conn = std::cell::RefCell::new(RawHttp::connect(&server.http)?);
    let get = |path: &str, keys: &[String], columns: &[String], decode: bool| {
        let bytes = conn
            .borrow_mut()
            .post(path, &fetch_body(keys, columns))
            .expect("fetch");
        if decode {
            std::hint::black_box(decode_ipc(&bytes));
        }
    };
    let timed = time_interleaved(
        &requests,
        10,
        &mut [
            &mut |keys: &[String], decode| {
                get("/api/v1/table/wide/fetch", keys, &sparse_cols, decode)
            },
            &mut |keys: &[String], decode| {
                get("/api/v1/table/narrow/fetch", keys, &dense_cols, decode)
            },
        ],
    );
    let sparse_http = timed[0].1.clone();
    let dense_http = timed[1].1.clone();
    drop(conn);
    server.stop()?;

    println!(
        "\n## Sparse columns ({rows} rows x {WIDE} float32 columns, {PER_ROW} values a row; 20 columns for 1000 random keys, {} reads)\n",
        args.requests
    );
    println!("| measurement | mean µs | p50 µs | p99 µs |");
    println!("|---|---|---|---|");
    let row = |name: &str, l: &Latency| {
        println!("| {name} | {:.0} | {:.0} | {:.0} |", l.mean, l.p50, l.p99)
    };
    row("sparse table, in process", &sparse_in);
    row("dense 20-column table, in process", &dense_in);
    row("sparse table, murr HTTP (Arrow IPC, decoded)", &sparse_http);
    row("dense 20-column table, murr HTTP", &dense_http);
    println!();
    let http_ratio = sparse_http.mean / dense_http.mean;
    let rss_ratio = rss as f64 / raw as f64;
    let mb = |b: usize| b as f64 / 1e6;
    println!(
        "- raw bytes (keys + non-null values): {:.1} MB; a dense row layout of the 200 columns would take {:.0} MB",
        mb(raw),
        mb(rows * (key(0).len() + 1 + WIDE * 4 + WIDE / 8))
    );
    println!(
        "- sparse segment / raw: {:.1} MB / {:.1} MB = {disk_ratio:.2}x (goal <= 2x); the dense 20-column table's segment: {:.1} MB",
        mb(segment_bytes),
        mb(raw),
        mb(dense_bytes)
    );
    println!(
        "- murr server RSS for the sparse table / raw: {:.1} MB / {:.1} MB = {rss_ratio:.2}x (goal <= 2x; {:.1} MB before the load)",
        mb(rss as usize),
        mb(raw),
        mb(before as usize)
    );
    println!(
        "- fetch, sparse / dense: in process {in_ratio:.2}x, HTTP {http_ratio:.2}x (goal <= 2x)"
    );
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &args.out,
        serde_json::to_string_pretty(&serde_json::json!({
            "rows": rows,
            "requests": args.requests,
            "raw_bytes": raw,
            "segment_bytes": segment_bytes,
            "dense_segment_bytes": dense_bytes,
            "segment_over_raw": disk_ratio,
            "rss_bytes": rss,
            "rss_before_bytes": before,
            "rss_over_raw": rss_ratio,
            "sparse_in_process": sparse_in,
            "dense_in_process": dense_in,
            "sparse_over_dense_in_process": in_ratio,
            "sparse_http": sparse_http,
            "dense_http": dense_http,
            "sparse_over_dense_http": http_ratio,
        }))?,
    )?;
    Ok(())
}
