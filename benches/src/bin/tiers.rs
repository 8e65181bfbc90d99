//! `cargo xtask bench` (its object-storage part): murr on a real S3 server (SeaweedFS) against
//! murr on local disk, in one run, with the real `murr` binary.
//!
//! 1. Write throughput: the same table (`--rows`, default 10M, x 10 float32) uploaded over HTTP
//!    (Arrow IPC) to a local-mode node and to a writer on the bucket.
//! 2. Cold start: a replica with an empty cache starts from the bucket; time from spawn to
//!    serving (the "murr listening" line: the store is loaded before the node listens).
//! 3. Fetch latency: reads of 1000 random keys x 10 columns over HTTP from the replica and from
//!    the local-mode node, in alternation.
//! 4. Visibility: `--writes` (default 200) one-row writes on the writer; after each is
//!    acknowledged, the replica is read every 2 ms until it answers the new value. The replica
//!    polls with the default interval (1 s).
//!
//! 5. The RAM tier: the local node's folder served by a node with everything in memory, then by
//!    one with `storage.memory_limit` = 25% of the segment bytes, each answering the same reads
//!    of 1000 keys drawn from a Zipf distribution (exponent 0.99, ranks scattered over the
//!    table). Reported: fetch latency, RSS, and the hit ratio, 1 - page faults of the server per
//!    key read (a miss maps the row's page again, from the page cache or the disk).
//!
//! 6. Loading a Parquet dump: the same `--rows` rows as 10 Parquet files (row groups of 128k
//!    rows) in the bucket, loaded by a local-mode node with `POST /api/v1/table/{name}/load`
//!    (the server reads the bucket), against the same files sent one by one with `PUT …/write`
//!    from this process (Parquet bodies). Rows per second, wall clock, start to commit.
//!
//! Prints a markdown table; writes JSON to `--out`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods,
    reason = "a command-line report; serde_json::json! unwraps internally"
)]

#[path = "../../../tests/src/seaweed.rs"]
#[allow(
    unreachable_pub,
    dead_code,
    reason = "shared with murr-tests, where it is public"
)]
mod seaweed;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use murr_benches::{
    Fetcher, Latency, RawHttp, Res, columns, fetch_body, load_murr, random_keys, rss_of,
};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use seaweed::Seaweed;

struct Args {
    rows: usize,
    requests: usize,
    writes: usize,
    murr: PathBuf,
    out: PathBuf,
    /// Run step 6 alone (the Parquet dump: load, PUT, offline build and publish).
    only_dump: bool,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        rows: 10_000_000,
        requests: 2000,
        writes: 200,
        murr: PathBuf::from("target/release/murr"),
        out: PathBuf::from("target/bench/object_store.json"),
        only_dump: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = value()?.parse()?,
            "--requests" => a.requests = value()?.parse()?,
            "--writes" => a.writes = value()?.parse()?,
            "--murr" => a.murr = PathBuf::from(value()?),
            "--out" => a.out = PathBuf::from(value()?),
            "--only-dump" => a.only_dump = true,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

/// A `murr` process; its log lines are forwarded to a channel.
struct Node {
    child: Child,
    http: String,
    lines: mpsc::Receiver<String>,
}

impl Node {
    /// Starts `murr` with `yaml` and returns it once it listens, with the time that took.
    fn start(bin: &Path, yaml: &str, dir: &Path, env: &[(&str, String)]) -> Res<(Node, Duration)> {
        let config = dir.join(format!("{}.yaml", dir.read_dir()?.count()));
        std::fs::write(&config, yaml)?;
        let started = Instant::now();
        let mut cmd = Command::new(bin);
        cmd.arg("--config")
            .arg(&config)
            .args(["--host", "127.0.0.1", "--port", "0", "--no-grpc"])
            .env("RUST_LOG", "warn,murr_server=info,murr_table=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("WARN")
                    || line.contains("ERROR")
                    || line.contains("table loaded")
                    || line.contains("merged segments")
                    || line.contains("catalog refreshed")
                {
                    eprintln!("murr| {line}");
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(600))
                .map_err(|_| "murr exited or hung before listening")?;
            if line.contains("murr listening") {
                let http = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("http="))
                    .ok_or("no http address")?;
                let node = Node {
                    child,
                    http: format!("http://{http}"),
                    lines,
                };
                return Ok((node, started.elapsed()));
            }
        }
    }

    /// Waits until a merge of all `rows` rows is logged, or none for `quiet`.
    fn settle(&self, rows: usize, quiet: Duration) {
        let full = format!("rows_in={rows} ");
        let deadline = Instant::now() + Duration::from_secs(600);
        while let Ok(line) = self.lines.recv_timeout(quiet) {
            if (line.contains("merged segments") && line.contains(&full))
                || Instant::now() > deadline
            {
                return;
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn fetch_value(http: &reqwest::blocking::Client, base: &str, key: &str) -> Res<Option<f64>> {
    let body = serde_json::json!({"keys": [key], "columns": ["f0"]}).to_string();
    let resp = http
        .post(format!("{base}/api/v1/table/bench/fetch"))
        .header("content-type", "application/json")
        .body(body)
        .send()?;
    let v: serde_json::Value = serde_json::from_str(&resp.text()?)?;
    Ok(v["columns"]["f0"][0].as_f64())
}

/// Page faults (minor and major) of process `pid` so far: a fetch that reads a row whose page
/// is not mapped in the server faults once (minor when the kernel still caches the page, major
/// when it reads the disk).
fn page_faults(pid: u32) -> Res<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').ok_or("bad /proc stat")?.1;
    let field = |i: usize| -> Res<u64> {
        Ok(rest
            .split_whitespace()
            .nth(i)
            .ok_or("bad /proc stat")?
            .parse()?)
    };
    Ok(field(7)? + field(9)?)
}

/// `n` keys drawn from a Zipf-like distribution over `rows` (exponent `s` < 1, by inverting
/// the continuous power law), each rank mapped to a row by a fixed scattering permutation.
fn zipf_keys(rng: &mut SmallRng, rows: usize, n: usize, s: f64) -> Vec<String> {
    use rand::Rng;
    let top = (rows as f64).powf(1.0 - s) - 1.0;
    (0..n)
        .map(|_| {
            let u: f64 = rng.random();
            let rank = ((top * u + 1.0).powf(1.0 / (1.0 - s)) as usize).clamp(1, rows) - 1;
            let row = (rank as u128 * 2_654_435_761u128 % rows as u128) as usize;
            murr_benches::key(row)
        })
        .collect()
}

/// What one node did on the Zipf reads.
#[derive(serde::Serialize)]
struct ZipfRun {
    fetch_us: Latency,
    hit_ratio: f64,
    rss_bytes: u64,
}

fn zipf_run(node: &Node, requests: &[Vec<String>], cols: &[String]) -> Res<ZipfRun> {
    let pid = node.child.id();
    let mut conn = RawHttp::connect(&node.http)?;
    let path = "/api/v1/table/bench/fetch";
    // Warm-up: the tier fills, then keeps to its budget.
    for _ in 0..3 {
        for r in requests {
            conn.post(path, &fetch_body(r, cols))?;
        }
        std::thread::sleep(Duration::from_millis(1200));
    }
    let faults = page_faults(pid)?;
    let lat = murr_benches::time_requests(requests, |r| {
        conn.post(path, &fetch_body(r, cols)).expect("fetch")
    });
    // time_requests reads the first tenth (and one) untimed, then all of them.
    let warm = (requests.len() / 10 + 1).min(requests.len());
    let keys: usize = requests[..warm].iter().chain(requests).map(Vec::len).sum();
    let missed = page_faults(pid)? - faults;
    Ok(ZipfRun {
        fetch_us: lat,
        hit_ratio: 1.0 - missed as f64 / keys as f64,
        rss_bytes: rss_of(pid).unwrap_or(0),
    })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("murr-bench-tiers: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args = parse_args()?;
    let tmp = tempfile::tempdir()?;
    let s3 = Seaweed::start("bench");
    let env = s3.env();
    let remote = |role: &str, cache: &str| {
        format!(
            "server: {{role: {role}}}\nstorage:\n  url: {url}\n  cache_dir: {cache}\n  s3: {{endpoint: \"{endpoint}\", allow_http: true}}\n",
            url = s3.url("bench"),
            cache = tmp.path().join(cache).display(),
            endpoint = s3.endpoint,
        )
    };
    let local_yaml = format!(
        "storage:\n  cache_dir: {}\n",
        tmp.path().join("local").display()
    );
    let http = murr_benches::http_client(Duration::from_secs(3600))?;
    if args.only_dump {
        let dump = dump_load(&args, &s3, &http, tmp.path())?;
        print_dump(&args, &dump);
        return Ok(());
    }

    eprintln!(
        "bench-s3: {} rows x 10 float32, local disk vs SeaweedFS",
        args.rows
    );
    let (local, _) = Node::start(&args.murr, &local_yaml, tmp.path(), &[])?;
    let local_rate = load_murr(&http, &local.http, args.rows)?;
    let (writer, _) = Node::start(&args.murr, &remote("writer", "writer"), tmp.path(), &env)?;
    let remote_rate = load_murr(&http, &writer.http, args.rows)?;
    eprintln!("bench-s3: waiting for both nodes' merges");
    // A merge of the whole table logs nothing until it is done (20 s for 10M rows here).
    local.settle(args.rows, Duration::from_secs(90));
    writer.settle(args.rows, Duration::from_secs(90));

    let (replica, cold) = Node::start(&args.murr, &remote("replica", "replica"), tmp.path(), &env)?;
    eprintln!(
        "bench-s3: a replica with an empty cache served after {:.2} s",
        cold.as_secs_f64()
    );

    let mut rng = SmallRng::seed_from_u64(7);
    let requests: Vec<Vec<String>> = (0..args.requests)
        .map(|_| random_keys(&mut rng, args.rows, 1000.min(args.rows)))
        .collect();
    let cols = columns(10);
    let mut on_local = RawHttp::connect(&local.http)?;
    let mut on_replica = RawHttp::connect(&replica.http)?;
    let path = "/api/v1/table/bench/fetch";
    let mut fetch_local = |keys: &[String], _: bool| {
        on_local
            .post(path, &fetch_body(keys, &cols))
            .expect("local fetch");
    };
    let mut fetch_replica = |keys: &[String], _: bool| {
        on_replica
            .post(path, &fetch_body(keys, &cols))
            .expect("replica fetch");
    };
    let backends: &mut [&mut Fetcher<'_>] = &mut [&mut fetch_local, &mut fetch_replica];
    let timed = murr_benches::time_interleaved(&requests, 20, backends);
    let (local_fetch, replica_fetch): (Latency, Latency) = (timed[0].0.clone(), timed[1].0.clone());

    eprintln!(
        "bench-s3: {} one-row writes, each read back from the replica",
        args.writes
    );
    let mut visible = Vec::with_capacity(args.writes);
    let mut phase = SmallRng::seed_from_u64(3);
    for i in 0..args.writes {
        // A write right after the replica saw the last one would land just after its poll, every
        // time: a random pause spreads the writes over the poll interval, as clients' would be.
        std::thread::sleep(Duration::from_millis(rand::Rng::random_range(
            &mut phase,
            0..1000,
        )));
        let key = format!("visibility-{i}");
        let value = i as f64 + 0.5;
        let mut row = serde_json::Map::new();
        row.insert("id".to_owned(), serde_json::json!([key.clone()]));
        for (c, name) in cols.iter().enumerate() {
            let v = if c == 0 { value } else { 0.0 };
            row.insert(name.clone(), serde_json::json!([v]));
        }
        let body = serde_json::json!({ "columns": row }).to_string();
        let resp = http
            .put(format!("{}/api/v1/table/bench/write", writer.http))
            .header("content-type", "application/json")
            .body(body)
            .send()?;
        if !resp.status().is_success() {
            return Err(format!("write: {}", resp.text()?).into());
        }
        let acked = Instant::now();
        let deadline = acked + Duration::from_secs(60);
        while fetch_value(&http, &replica.http, &key)? != Some(value) {
            if Instant::now() > deadline {
                return Err(format!("write {i} not visible on the replica after 60 s").into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        visible.push(acked.elapsed().as_secs_f64() * 1e3);
    }
    let vis = Latency::of(visible);
    drop((replica, writer));

    // The RAM tier, on the local node's folder.
    drop(local);
    let folder = tmp.path().join("local");
    let segment_bytes: u64 = std::fs::read_dir(folder.join("tables/bench"))?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("seg-"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum();
    let budget = segment_bytes / 4;
    let mut rng = SmallRng::seed_from_u64(11);
    let zipf: Vec<Vec<String>> = (0..args.requests)
        .map(|_| zipf_keys(&mut rng, args.rows, 1000.min(args.rows), 0.99))
        .collect();
    eprintln!("bench-tiers: Zipf reads, all in RAM");
    let (all_in_ram, _) = Node::start(&args.murr, &local_yaml, tmp.path(), &[])?;
    let full = zipf_run(&all_in_ram, &zipf, &cols)?;
    drop(all_in_ram);
    eprintln!("bench-tiers: Zipf reads, memory_limit = {budget} bytes (25% of {segment_bytes})");
    let limited_yaml = format!("{local_yaml}  memory_limit: {budget}\n");
    let (limited, _) = Node::start(&args.murr, &limited_yaml, tmp.path(), &[])?;
    let tier = zipf_run(&limited, &zipf, &cols)?;
    drop(limited);

    // A Parquet dump in the bucket: loaded by the server, and sent through HTTP.
    let dump = dump_load(&args, &s3, &http, tmp.path())?;

    let ratio = replica_fetch.mean / local_fetch.mean;
    println!(
        "\n## murr on object storage (SeaweedFS on loopback), {} rows x 10 float32\n",
        args.rows
    );
    println!("| measure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| write → visible on a replica, p50 | {:.0} ms | |",
        vis.p50
    );
    println!(
        "| write → visible on a replica, p99 | {:.0} ms | ≤ 2000 ms |",
        vis.p99
    );
    println!(
        "| cold start of a replica, empty cache | {:.2} s | ≤ 10 s |",
        cold.as_secs_f64()
    );
    println!(
        "| HTTP fetch, 1000 keys: replica / local (mean {:.0} / {:.0} µs; p99 {:.0} / {:.0}) | {ratio:.3} | ≤ 1.1 |",
        replica_fetch.mean, local_fetch.mean, replica_fetch.p99, local_fetch.p99
    );
    println!(
        "| write throughput: bucket / local ({remote_rate:.0} / {local_rate:.0} rows/s) | {:.2} | |",
        remote_rate / local_rate
    );
    println!(
        "\n### RAM tier: Zipf(0.99) reads of 1000 keys, {} segment bytes\n",
        segment_bytes
    );
    println!("| | all in RAM | memory_limit = 25% |");
    println!("|---|---|---|");
    println!(
        "| fetch mean / p99 | {:.0} / {:.0} µs | {:.0} / {:.0} µs |",
        full.fetch_us.mean, full.fetch_us.p99, tier.fetch_us.mean, tier.fetch_us.p99
    );
    println!(
        "| hit ratio (1 - page faults per key read) | {:.3} | {:.3} |",
        full.hit_ratio, tier.hit_ratio
    );
    println!(
        "| RSS | {:.0} MiB | {:.0} MiB |",
        full.rss_bytes as f64 / 1048576.0,
        tier.rss_bytes as f64 / 1048576.0
    );
    print_dump(&args, &dump);
    let report = serde_json::json!({
        "rows": args.rows,
        "visibility_ms": vis,
        "cold_start_s": cold.as_secs_f64(),
        "fetch_us": {"replica": replica_fetch, "local": local_fetch, "ratio": ratio},
        "write_rows_per_s": {"bucket": remote_rate, "local": local_rate},
        "ram_tier": {"segment_bytes": segment_bytes, "budget": budget, "all_in_ram": full, "limited": tier},
        "parquet_dump": {"load_rows_per_s": dump.load_rows_per_s, "put_rows_per_s": dump.put_rows_per_s, "parquet_bytes": dump.bytes, "build_s": dump.build_s, "publish_s": dump.publish_s, "publish_visible_s": dump.publish_visible_s},
    });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    Ok(())
}

/// Step 6's table.
fn print_dump(args: &Args, dump: &DumpRates) {
    println!(
        "\n### Loading a Parquet dump: {} rows x 10 float32 in 10 files\n",
        args.rows
    );
    println!("| path | rows/s | seconds |");
    println!("|---|---|---|");
    println!(
        "| `POST …/load` from the bucket (the server reads it) | {:.0} | {:.1} |",
        dump.load_rows_per_s,
        args.rows as f64 / dump.load_rows_per_s
    );
    println!(
        "| `PUT …/write`, one Parquet body per file | {:.0} | {:.1} |",
        dump.put_rows_per_s,
        args.rows as f64 / dump.put_rows_per_s
    );
    println!(
        "| load / PUT | {:.2}x | |",
        dump.load_rows_per_s / dump.put_rows_per_s
    );
    println!(
        "| `murr segment build` of the same files from local disk (both cores) | {:.0} | {:.1} |",
        args.rows as f64 / dump.build_s,
        dump.build_s
    );
    println!(
        "| `murr segment publish` into the node's folder, until served | | {:.2} ({:.2} the command) |",
        dump.publish_visible_s, dump.publish_s
    );
    let offline = dump.build_s + dump.publish_visible_s;
    println!(
        "| build + publish, until served | {:.0} | {offline:.1} |",
        args.rows as f64 / offline
    );
    println!(
        "| build / PUT | {:.2}x | |",
        args.rows as f64 / dump.build_s / dump.put_rows_per_s
    );
}

/// Rows per second of a dump loaded from the bucket and sent through HTTP.
struct DumpRates {
    load_rows_per_s: f64,
    put_rows_per_s: f64,
    bytes: u64,
    /// `murr segment build` of the same files from local disk.
    build_s: f64,
    /// `murr segment publish` of the built segments into the node's data folder.
    publish_s: f64,
    /// From the publish's start until the node serves the rows.
    publish_visible_s: f64,
}

/// Step 6: writes the dump into the bucket (and keeps the files here), then times a load of it
/// into one table and its upload into another, on a fresh local-mode node.
fn dump_load(
    args: &Args,
    s3: &Seaweed,
    http: &reqwest::blocking::Client,
    dir: &Path,
) -> Res<DumpRates> {
    use murr_directory::Directory;
    use std::io::Write;
    let options = murr_directory::RemoteOptions {
        endpoint: Some(s3.endpoint.clone()),
        allow_http: true,
        s3_keys: Some((
            seaweed::ACCESS_KEY.to_owned(),
            seaweed::SECRET_KEY.to_owned(),
        )),
        ..murr_directory::RemoteOptions::default()
    };
    let bucket = murr_directory::ObjectStoreDirectory::from_url(&s3.url("dump"), &options)?;
    eprintln!(
        "bench-dump: writing {} rows as 10 Parquet files into the bucket",
        args.rows
    );
    let mut files = Vec::new();
    let per_file = args.rows.div_ceil(10);
    let mut bytes = 0u64;
    for f in 0..10 {
        let (start, end) = (f * per_file, ((f + 1) * per_file).min(args.rows));
        if start >= end {
            break;
        }
        let mut out = Vec::new();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(128 * 1024))
            .build();
        let first = murr_benches::batch(start, start, 10, 42);
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, first.schema(), Some(props))?;
        let mut at = start;
        while at < end {
            let next = (at + 100_000).min(end);
            w.write(&murr_benches::batch(at, next, 10, 42))?;
            at = next;
        }
        w.close()?;
        let mut file = bucket.create(&murr_directory::FilePath::new(format!(
            "part-{f:03}.parquet"
        ))?)?;
        file.write_all(&out)?;
        file.finish()?;
        bytes += out.len() as u64;
        files.push((end - start, out));
    }
    let yaml = format!(
        "storage:\n  cache_dir: {}\n  s3: {{endpoint: \"{}\", allow_http: true}}\n",
        dir.join("dump-node").display(),
        s3.endpoint
    );
    let (node, _) = Node::start(&args.murr, &yaml, dir, &s3.env())?;
    let schema_json = serde_json::to_string(&murr_benches::schema(10))?;
    for table in ["by_load", "by_put"] {
        let resp = http
            .put(format!("{}/api/v1/table/{table}", node.http))
            .body(schema_json.clone())
            .send()?;
        if !resp.status().is_success() {
            return Err(format!("create table: {}", resp.text()?).into());
        }
    }
    eprintln!("bench-dump: loading from the bucket");
    let t = Instant::now();
    let resp = http
        .post(format!("{}/api/v1/table/by_load/load", node.http))
        .header("content-type", "application/json")
        .body(serde_json::json!({"url": s3.url("dump/"), "mode": "replace"}).to_string())
        .send()?;
    let started: serde_json::Value = serde_json::from_str(&resp.text()?)?;
    let id = started["id"].as_str().ok_or("no load id")?.to_owned();
    let load_s = loop {
        std::thread::sleep(Duration::from_millis(50));
        let status: serde_json::Value = serde_json::from_str(
            &http
                .get(format!("{}/api/v1/table/by_load/load/{id}", node.http))
                .send()?
                .text()?,
        )?;
        match status["state"].as_str() {
            Some("running") => {}
            Some("done") => break t.elapsed().as_secs_f64(),
            _ => return Err(format!("the load failed: {status}").into()),
        }
    };
    node.settle(args.rows, Duration::from_secs(30));
    eprintln!("bench-dump: the same files through PUT /write");
    let t = Instant::now();
    for (_, body) in &files {
        let resp = http
            .put(format!("{}/api/v1/table/by_put/write", node.http))
            .header("content-type", "application/vnd.apache.parquet")
            .body(body.clone())
            .send()?;
        if !resp.status().is_success() {
            return Err(format!("write: {}", resp.text()?).into());
        }
    }
    let put_s = t.elapsed().as_secs_f64();
    node.settle(args.rows, Duration::from_secs(30));
    let (build_s, publish_s, publish_visible_s) =
        build_and_publish(args, http, dir, &node.http, &files, &schema_json)?;
    Ok(DumpRates {
        load_rows_per_s: args.rows as f64 / load_s,
        put_rows_per_s: args.rows as f64 / put_s,
        bytes,
        build_s,
        publish_s,
        publish_visible_s,
    })
}

/// The same Parquet files, from local disk, through `murr segment build` (both cores) and
/// `murr segment publish` into the running node's data folder: seconds to build, to publish,
/// and from the publish's start until the node serves every row.
fn build_and_publish(
    args: &Args,
    http: &reqwest::blocking::Client,
    dir: &Path,
    base: &str,
    files: &[(usize, Vec<u8>)],
    schema_json: &str,
) -> Res<(f64, f64, f64)> {
    let parquet = dir.join("dump-files");
    std::fs::create_dir_all(&parquet)?;
    for (i, (_, body)) in files.iter().enumerate() {
        std::fs::write(parquet.join(format!("part-{i:03}.parquet")), body)?;
    }
    let schema = dir.join("dump-schema.json");
    std::fs::write(&schema, schema_json)?;
    let built = dir.join("dump-built");
    let resp = http
        .put(format!("{base}/api/v1/table/by_publish"))
        .body(schema_json.to_owned())
        .send()?;
    if !resp.status().is_success() {
        return Err(format!("create table: {}", resp.text()?).into());
    }
    eprintln!("bench-dump: murr segment build of the same files (local disk, both cores)");
    let t = Instant::now();
    let out = Command::new(&args.murr)
        .arg("segment")
        .arg("build")
        .arg("--schema")
        .arg(&schema)
        .arg(&parquet)
        .arg(&built)
        .stdout(Stdio::null())
        .status()?;
    if !out.success() {
        return Err("murr segment build failed".into());
    }
    let build_s = t.elapsed().as_secs_f64();
    eprintln!("bench-dump: murr segment publish into the node's data folder");
    let t = Instant::now();
    let out = Command::new(&args.murr)
        .arg("segment")
        .arg("publish")
        .arg(&built)
        .arg(dir.join("dump-node"))
        .args(["--table", "by_publish"])
        .stdout(Stdio::null())
        .status()?;
    if !out.success() {
        return Err("murr segment publish failed".into());
    }
    let publish_s = t.elapsed().as_secs_f64();
    // The node applies the commit at its next poll (storage.poll_interval, 1 s by default).
    let last = murr_benches::key(args.rows - 1);
    let body = serde_json::json!({"keys": [last], "columns": ["f0"]}).to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer: serde_json::Value = serde_json::from_str(
            &http
                .post(format!("{base}/api/v1/table/by_publish/fetch"))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()?
                .text()?,
        )?;
        if !answer["columns"]["f0"][0].is_null() {
            break;
        }
        if Instant::now() > deadline {
            return Err("the published rows did not serve within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((build_s, publish_s, t.elapsed().as_secs_f64()))
}
