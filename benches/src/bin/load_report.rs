//! Loads the benchmark table into a local store and reports load rate, open time, fetch latency
//! and resident memory, as a markdown table.
//!
//! `cargo run --release -p murr-benches --bin murr-load-report -- --rows 10000000 [--cols 10] [--chunk 1000000] [--dir DIR]`
//!
//! Open time and memory are measured in a fresh process (this binary re-run with `--open DIR`),
//! so that nothing left over from loading counts.

#![allow(clippy::print_stdout, reason = "a report printed to the terminal")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use murr_benches::{columns, floor_us, load, random_keys, rss_bytes, time_requests};
use murr_directory::MmapDirectory;
use murr_table::{Store, StoreOptions};
use rand::SeedableRng;
use rand::rngs::SmallRng;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn fetch_latency(store: &Store, rows: usize, cols: usize) -> (f64, f64, f64) {
    let table = store.table("bench").expect("table");
    let names = columns(cols);
    let mut rng = SmallRng::seed_from_u64(9);
    let requests: Vec<Vec<String>> = (0..2000)
        .map(|_| random_keys(&mut rng, rows, 1000))
        .collect();
    let lat = time_requests(&requests, |r| table.fetch(r, &names).expect("fetches"));
    (lat.mean, lat.p50, lat.p99)
}

fn open_report(dir: &str, rows: usize, cols: usize) {
    let before = rss_bytes().unwrap_or(0);
    let t = Instant::now();
    let store = Store::open(
        Arc::new(MmapDirectory::open(dir).expect("opens")),
        StoreOptions {
            background_merges: false,
            ..StoreOptions::default()
        },
    )
    .expect("opens");
    let open_s = t.elapsed().as_secs_f64();
    // Memory is measured before the benchmark's own request lists are built.
    let rss = rss_bytes().unwrap_or(0);
    let (mean, p50, p99) = fetch_latency(&store, rows, cols);
    println!(
        "open_s={open_s:.3} rss={rss} rss_before={before} fetch_mean_us={mean:.1} fetch_p50_us={p50:.1} fetch_p99_us={p99:.1}"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = arg(&args, "--rows").map_or(1_000_000, |v| v.parse().expect("--rows N"));
    let cols: usize = arg(&args, "--cols").map_or(10, |v| v.parse().expect("--cols N"));
    let chunk: usize = arg(&args, "--chunk").map_or(1_000_000, |v| v.parse().expect("--chunk N"));
    if let Some(dir) = arg(&args, "--open") {
        open_report(&dir, rows, cols);
        return;
    }
    // `--dir DIR` loads into DIR and keeps it (for `--open DIR` runs under a profiler).
    let tmp = tempfile::tempdir().expect("temp folder");
    let path: PathBuf = arg(&args, "--dir").map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let t = Instant::now();
    let (store, table) = load(
        Arc::new(MmapDirectory::open(&path).expect("opens")),
        rows,
        cols,
        chunk,
    );
    let load_s = t.elapsed().as_secs_f64();
    let stats = table.stats();
    let (mean, p50, p99) = fetch_latency(&store, rows, cols);
    drop(table);
    drop(store);
    let out = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args([
            "--open",
            path.to_str().expect("utf-8 path"),
            "--rows",
            &rows.to_string(),
            "--cols",
            &cols.to_string(),
        ])
        .output()
        .expect("runs the open report");
    let line = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let raw = (rows * (11 + 4 * cols)) as f64;
    println!("| figure | value |");
    println!("|---|---|");
    println!("| rows x float32 columns | {rows} x {cols} |");
    println!(
        "| load (writes of {chunk} rows + compaction), rows/s | {:.0} |",
        rows as f64 / load_s
    );
    println!(
        "| segment bytes / raw bytes (keys + values) | {:.3} |",
        stats.bytes as f64 / raw
    );
    println!(
        "| fetch 1000 keys, in-process, mean / p50 / p99 (µs) | {mean:.1} / {p50:.1} / {p99:.1} |"
    );
    let floor = floor_us(rows, 2000);
    println!("| floor: 1000 hash probes + 1000 40-byte reads (µs) | {floor:.1} |");
    println!("| in-process fetch / floor | {:.2} |", mean / floor);
    println!("| reopen until serving (s) | {:.3} |", field("open_s"));
    println!(
        "| fetch after reopen, mean / p50 / p99 (µs) | {:.1} / {:.1} / {:.1} |",
        field("fetch_mean_us"),
        field("fetch_p50_us"),
        field("fetch_p99_us")
    );
    println!("| RSS after reopen (MB) | {:.1} |", field("rss") / 1e6);
    println!("| RSS / raw bytes | {:.3} |", field("rss") / raw);
}
