//! `cargo xtask bench`: murr against Redis on upstream murr's workload, in one run.
//!
//! A table with a utf8 key and 10 non-null float32 columns (`--rows`, default 10M) is loaded into
//! murr (over HTTP, Arrow IPC, into the real `murr` binary) and into Redis twice: packed blobs of all
//! 10 floats read with one MGET, and Feast-style hashes read with pipelined HMGET. Each backend then
//! answers `--requests` reads of 1000 uniformly random existing keys x all columns (seeded), timed
//! to the last byte and including decoding into Arrow arrays. A 100-column table (`--wide-rows`,
//! default 1M) is read the same way in-process and from Redis blobs. A floor reference (1000 hash
//! probes + 1000 random 40-byte reads) is measured in the same run.
//!
//! Prints a markdown table and the ratios against the targets; writes JSON to `--out`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods,
    reason = "a command-line report; serde_json::json! unwraps internally"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float32Array, RecordBatch};
use arrow_flight::Ticket;
use arrow_flight::flight_service_client::FlightServiceClient;
use futures_util::TryStreamExt;
use murr_benches::{
    Latency as Lat, MurrServer, RawHttp, Redis, batch, columns, decode_ipc, fetch_body,
    fetch_ticket, floor_us, key, load_murr, rss_bytes, rss_of, steady_rss, time_requests as time,
};
use murr_directory::MmapDirectory;
use murr_table::{Store, StoreOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    rows: usize,
    wide_rows: usize,
    requests: usize,
    murr_bin: PathBuf,
    out: PathBuf,
    feast: bool,
    settle_s: u64,
    data: Option<PathBuf>,
    murr_only: bool,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        rows: 10_000_000,
        wide_rows: 1_000_000,
        requests: 1000,
        murr_bin: PathBuf::from("target/release/murr"),
        out: PathBuf::from("target/bench/results.json"),
        feast: true,
        settle_s: 60,
        data: None,
        murr_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = value()?.parse()?,
            "--wide-rows" => a.wide_rows = value()?.parse()?,
            "--requests" => a.requests = value()?.parse()?,
            "--murr-bin" => a.murr_bin = value()?.into(),
            "--out" => a.out = value()?.into(),
            "--no-feast" => a.feast = false,
            "--settle" => a.settle_s = value()?.parse()?,
            "--data" => a.data = Some(value()?.into()),
            "--murr-only" => a.murr_only = true,
            other => return Err(format!("unknown flag {other} (--rows, --wide-rows, --requests, --murr-bin, --out, --no-feast, --settle SECONDS, --data DIR, --murr-only)").into()),
        }
    }
    Ok(a)
}

#[derive(Debug, Default, serde::Serialize)]
struct Backend {
    load_rows_per_s: Option<f64>,
    last_byte: Option<Lat>,
    decoded: Option<Lat>,
    keys_per_s: Option<f64>,
    rss_bytes: Option<u64>,
    reopen_s: Option<f64>,
}

impl Backend {
    /// A backend's read timings; keys/s follows from the mean time to the last byte of a read
    /// of 1000 keys.
    fn timed(last_byte: Lat, decoded: Lat) -> Backend {
        Backend {
            keys_per_s: Some(1000.0 / last_byte.mean * 1e6),
            last_byte: Some(last_byte),
            decoded: Some(decoded),
            ..Backend::default()
        }
    }
}

/// The values of row `i` of a generated batch, as 4-byte little-endian floats.
fn blobs(b: &RecordBatch, cols: usize) -> Vec<Vec<u8>> {
    let arrays: Vec<&Float32Array> = (1..=cols)
        .map(|c| {
            b.column(c)
                .as_any()
                .downcast_ref::<Float32Array>()
                .expect("float32")
        })
        .collect();
    (0..b.num_rows())
        .map(|r| {
            arrays
                .iter()
                .flat_map(|a| a.value(r).to_le_bytes())
                .collect()
        })
        .collect()
}

fn unpack(blobs: &[Option<Vec<u8>>], cols: usize) -> Vec<ArrayRef> {
    (0..cols)
        .map(|c| {
            Arc::new(Float32Array::from_iter(blobs.iter().map(|b| {
                b.as_ref()
                    .map(|b| f32::from_le_bytes(b[c * 4..c * 4 + 4].try_into().expect("4 bytes")))
            }))) as ArrayRef
        })
        .collect()
}

fn load_redis_blobs(r: &mut Redis, rows: usize, cols: usize) -> Res<f64> {
    let started = Instant::now();
    let mut start = 0;
    while start < rows {
        let end = (start + 100_000).min(rows);
        let b = batch(start, end, cols, 42);
        let mut pipe = redis::pipe();
        for (i, blob) in blobs(&b, cols).into_iter().enumerate() {
            pipe.cmd("SET").arg(key(start + i)).arg(blob).ignore();
        }
        pipe.query::<()>(&mut r.conn)?;
        start = end;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

fn mget(r: &mut Redis, keys: &[String]) -> Vec<Option<Vec<u8>>> {
    redis::cmd("MGET")
        .arg(keys)
        .query(&mut r.conn)
        .expect("MGET")
}

fn main() {
    if let Err(e) = run() {
        eprintln!("murr-bench: {e}");
        std::process::exit(1);
    }
}

#[allow(clippy::too_many_lines, reason = "one linear script of measurements")]
fn run() -> Res<()> {
    let args = parse_args()?;
    let rows = args.rows;
    let names = columns(10);
    let mut report: BTreeMap<&str, Backend> = BTreeMap::new();
    let mut rng = SmallRng::seed_from_u64(20_251_125);
    let requests: Vec<Vec<String>> = (0..args.requests)
        .map(|_| (0..1000).map(|_| key(rng.random_range(0..rows))).collect())
        .collect();
    let mut redis = if args.murr_only {
        None
    } else {
        Some(Redis::start()?)
    };
    eprintln!(
        "bench: {rows} rows x 10 float32, {} requests of 1000 keys per backend",
        args.requests
    );

    // murr over HTTP and Flight, against the real binary.
    let tmp = tempfile::tempdir()?;
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let server = MurrServer::start(&args.murr_bin, &data)?;
    let http = murr_benches::http_client(Duration::from_secs(600))?;
    let loaded = http
        .get(format!("{}/api/v1/table", server.http))
        .send()?
        .bytes()?;
    let loaded = serde_json::from_slice::<BTreeMap<String, serde_json::Value>>(&loaded)?
        .contains_key("bench");
    let murr_load = if loaded {
        eprintln!("bench: reusing the table in {}", data.display());
        None
    } else {
        Some(load_murr(&http, &server.http, rows)?)
    };
    if murr_load.is_some() {
        let t = Instant::now();
        server.settle(rows, Duration::from_secs(args.settle_s));
        eprintln!(
            "bench: merges settled after {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    // Redis blobs are loaded now, so that murr and Redis can be timed in alternation.
    let mut redis_blobs = None;
    if let Some(redis) = redis.as_mut() {
        eprintln!("bench: loading Redis blobs");
        let load = load_redis_blobs(redis, rows, 10)?;
        redis_blobs = Some((load, rss_of(redis.child.id())));
    }
    eprintln!("bench: timing murr HTTP, murr Flight and Redis MGET in alternation");
    // A lean keep-alive HTTP/1.1 client on this thread, like the Redis client: the figure is the
    // server's and the network's, not a client library's.
    let mut conn = RawHttp::connect(&server.http)?;
    let mut http_fetch = |keys: &[String], decode: bool| {
        let body = conn
            .post("/api/v1/table/bench/fetch", &fetch_body(keys, &names))
            .expect("fetch");
        if decode {
            std::hint::black_box(decode_ipc(&body));
        }
        std::hint::black_box(body);
    };
    // The Flight client is async, as a Flight client is: each call runs on a current-thread
    // runtime with tonic's connection task, so no call waits for a hand-off between threads.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut flight = rt.block_on(async {
        // HTTP/2 settings as murr-client sets them: small answers cost no WINDOW_UPDATE round,
        // and an answer's message comes in one DATA frame.
        let channel = tonic::transport::Endpoint::from_shared(server.grpc.clone())?
            .tcp_nodelay(true)
            .initial_stream_window_size(Some(8 << 20))
            .initial_connection_window_size(Some(16 << 20))
            .max_frame_size(Some(4 << 20))
            .connect()
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(
            FlightServiceClient::new(channel).max_decoding_message_size(usize::MAX),
        )
    })?;
    let mut flight_fetch = |keys: &[String], decode: bool| {
        let ticket = Ticket {
            ticket: fetch_ticket("bench", keys, &names).into(),
        };
        let data: Vec<arrow_flight::FlightData> = rt.block_on(async {
            flight
                .do_get(ticket)
                .await
                .expect("do_get")
                .into_inner()
                .try_collect()
                .await
                .expect("stream")
        });
        if decode {
            std::hint::black_box(
                arrow_flight::utils::flight_data_to_batches(&data).expect("decodes"),
            );
        }
        std::hint::black_box(data);
    };
    let mut redis_fetch = |keys: &[String], decode: bool| {
        if let Some(redis) = redis.as_mut() {
            let values = mget(redis, keys);
            if decode {
                std::hint::black_box(unpack(&values, 10));
            }
            std::hint::black_box(values);
        }
    };
    let mut backends: Vec<&mut murr_benches::Fetcher<'_>> =
        vec![&mut http_fetch, &mut flight_fetch];
    if redis_blobs.is_some() {
        backends.push(&mut redis_fetch);
    }
    let mut timed = murr_benches::time_interleaved(&requests, 20, &mut backends).into_iter();
    drop(backends);
    let (h_last, h_dec) = timed.next().ok_or("no HTTP timings")?;
    let (f_last, f_dec) = timed.next().ok_or("no Flight timings")?;
    if let (Some((r_last, r_dec)), Some((load, rss))) = (timed.next(), redis_blobs) {
        report.insert(
            "Redis MGET blobs",
            Backend {
                load_rows_per_s: Some(load),
                rss_bytes: rss,
                ..Backend::timed(r_last, r_dec)
            },
        );
    }
    // Memory in steady state: freed buffers of the upload and the merges go back to the system
    // within seconds (jemalloc's decay); wait until the resident size stops falling.
    let murr_rss = steady_rss(
        server.child.id(),
        Duration::from_secs(2),
        Duration::from_secs(30),
    );
    server.stop()?;
    let t = Instant::now();
    let server = MurrServer::start(&args.murr_bin, &data)?;
    let reopen = t.elapsed().as_secs_f64();
    let check = http
        .post(format!("{}/api/v1/table/bench/fetch", server.http))
        .body(fetch_body(&requests[0], &names))
        .send()?;
    if !check.status().is_success() {
        return Err(format!("fetch after reopen: {}", check.text()?).into());
    }
    server.stop()?;
    report.insert(
        "murr HTTP",
        Backend {
            load_rows_per_s: murr_load,
            rss_bytes: murr_rss,
            reopen_s: Some(reopen),
            ..Backend::timed(h_last, h_dec)
        },
    );
    report.insert("murr Flight", Backend::timed(f_last, f_dec));

    eprintln!("bench: timing murr in-process");
    // murr in-process, on the same files.
    let store = Store::open(
        Arc::new(MmapDirectory::open(&data)?),
        StoreOptions {
            background_merges: false,
            ..StoreOptions::default()
        },
    )?;
    let table = store.table("bench")?;
    let stats = table.stats();
    eprintln!(
        "bench: murr stores {} rows in {} segments, {} bytes",
        stats.rows, stats.segments, stats.bytes
    );
    let in_proc = time(&requests, |k| table.fetch(k, &names).expect("fetch"));
    report.insert(
        "murr in-process",
        Backend {
            rss_bytes: rss_bytes(),
            ..Backend::timed(in_proc.clone(), in_proc.clone())
        },
    );
    drop(table);
    drop(store);
    let floor = floor_us(rows, args.requests);

    let redis_load = redis_blobs.map_or(f64::NAN, |(load, _)| load);
    if let Some(redis) = redis.as_mut() {
        redis::cmd("FLUSHALL").query::<()>(&mut redis.conn)?;

        // Redis, Feast-style hashes.
        if args.feast {
            eprintln!("bench: loading Redis hashes (Feast style)");
            let t = Instant::now();
            let mut start = 0;
            while start < rows {
                let end = (start + 50_000).min(rows);
                let b = batch(start, end, 10, 42);
                let mut pipe = redis::pipe();
                for (i, blob) in blobs(&b, 10).into_iter().enumerate() {
                    let mut cmd = redis::cmd("HSET");
                    cmd.arg(key(start + i));
                    for (c, name) in names.iter().enumerate() {
                        cmd.arg(name).arg(&blob[c * 4..c * 4 + 4]);
                    }
                    pipe.add_command(cmd).ignore();
                }
                pipe.query::<()>(&mut redis.conn)?;
                start = end;
            }
            let feast_load = rows as f64 / t.elapsed().as_secs_f64();
            let feast_rss = rss_of(redis.child.id());
            let mut hmget = |keys: &[String]| -> Vec<Vec<Option<Vec<u8>>>> {
                let mut pipe = redis::pipe();
                for k in keys {
                    pipe.cmd("HMGET").arg(k).arg(&names);
                }
                pipe.query(&mut redis.conn).expect("HMGET")
            };
            let fe_last = time(&requests, |k| hmget(k));
            let fe_dec = time(&requests, |k| {
                let rows = hmget(k);
                (0..10)
                    .map(|c| {
                        Arc::new(Float32Array::from_iter(rows.iter().map(|r| {
                            r[c].as_ref()
                                .map(|b| f32::from_le_bytes(b[..4].try_into().expect("4 bytes")))
                        }))) as ArrayRef
                    })
                    .collect::<Vec<_>>()
            });
            report.insert(
                "Redis HMGET hashes",
                Backend {
                    load_rows_per_s: Some(feast_load),
                    rss_bytes: feast_rss,
                    ..Backend::timed(fe_last, fe_dec)
                },
            );
            redis::cmd("FLUSHALL").query::<()>(&mut redis.conn)?;
        }
    }

    // 100 columns: murr in-process and Redis blobs.
    let (mut wide_in_proc, mut narrow_same_rows, mut wide_redis) = (f64::NAN, f64::NAN, f64::NAN);
    if let Some(redis) = redis.as_mut() {
        eprintln!("bench: 100-column table of {} rows", args.wide_rows);
        let wide_names = columns(100);
        let wide_requests: Vec<Vec<String>> = (0..args.requests)
            .map(|_| {
                (0..1000)
                    .map(|_| key(rng.random_range(0..args.wide_rows)))
                    .collect()
            })
            .collect();
        let wide_dir = tempfile::tempdir()?;
        let (wide_store, wide_table) = murr_benches::load(
            Arc::new(MmapDirectory::open(wide_dir.path())?),
            args.wide_rows,
            100,
            100_000,
        );
        wide_in_proc = time(&wide_requests, |k| {
            wide_table.fetch(k, &wide_names).expect("fetch")
        })
        .mean;
        narrow_same_rows = {
            let (_s, t) = murr_benches::load(
                Arc::new(murr_directory::RamDirectory::new()),
                args.wide_rows,
                10,
                1_000_000,
            );
            time(&wide_requests, |k| t.fetch(k, &names).expect("fetch")).mean
        };
        drop(wide_table);
        drop(wide_store);
        load_redis_blobs(redis, args.wide_rows, 100)?;
        wide_redis = time(&wide_requests, |k| unpack(&mget(redis, k), 100)).mean;
    }

    // Report.
    let h = &report["murr HTTP"];
    let f = &report["murr Flight"];
    let no_redis = Backend::default();
    let r = report.get("Redis MGET blobs").unwrap_or(&no_redis);
    let raw = (rows * (11 + 40)) as f64;
    println!(
        "\n## murr vs Redis: {rows} rows x 10 float32, 1000 random keys per read, {} reads\n",
        args.requests
    );
    println!(
        "| backend | load rows/s | last byte mean / p50 / p99 (µs) | decoded to Arrow mean (µs) | keys/s | RSS (MB) | RSS / raw |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, b) in &report {
        let lat = b.last_byte.as_ref().map_or("-".to_owned(), |l| {
            format!("{:.0} / {:.0} / {:.0}", l.mean, l.p50, l.p99)
        });
        println!(
            "| {name} | {} | {lat} | {} | {} | {} | {} |",
            b.load_rows_per_s
                .map_or("-".to_owned(), |v| format!("{v:.0}")),
            b.decoded
                .as_ref()
                .map_or("-".to_owned(), |l| format!("{:.0}", l.mean)),
            b.keys_per_s.map_or("-".to_owned(), |v| format!("{v:.0}")),
            b.rss_bytes
                .map_or("-".to_owned(), |v| format!("{:.0}", v as f64 / 1e6)),
            b.rss_bytes
                .map_or("-".to_owned(), |v| format!("{:.2}", v as f64 / raw)),
        );
    }
    let ratio = |a: f64, b: f64| a / b;
    let hm = h.last_byte.as_ref().map_or(f64::NAN, |l| l.mean);
    let hp99 = h.last_byte.as_ref().map_or(f64::NAN, |l| l.p99);
    let fm = f.last_byte.as_ref().map_or(f64::NAN, |l| l.mean);
    let rm = r.last_byte.as_ref().map_or(f64::NAN, |l| l.mean);
    let targets = vec![
        (
            "HTTP fetch mean / Redis MGET mean",
            ratio(hm, rm),
            "<= 0.15",
        ),
        (
            "Flight fetch mean / Redis MGET mean",
            ratio(fm, rm),
            "<= 0.15",
        ),
        (
            "in-process fetch / floor",
            ratio(in_proc.mean, floor),
            "<= 3",
        ),
        (
            "100 cols / 10 cols, in-process",
            ratio(wide_in_proc, narrow_same_rows),
            "<= 4",
        ),
        (
            "HTTP ingestion / Redis blob load (rows/s)",
            ratio(murr_load.unwrap_or(f64::NAN), redis_load),
            ">= 4",
        ),
        (
            "murr RSS / raw bytes",
            h.rss_bytes.map_or(f64::NAN, |v| v as f64 / raw),
            "<= 1.25",
        ),
        ("reopen until serving (s)", reopen, "<= 1"),
        ("HTTP p99 / mean", ratio(hp99, hm), "<= 1.5"),
    ];
    println!(
        "\nfloor (1000 hash probes + 1000 random 40-byte reads over {rows} rows): {floor:.0} µs"
    );
    println!(
        "100 columns x 1000 keys over {} rows: murr in-process {:.0} µs (10 columns: {:.0} µs), Redis MGET of 400-byte blobs + decode {:.0} µs\n",
        args.wide_rows, wide_in_proc, narrow_same_rows, wide_redis
    );
    println!("| target | measured | goal |");
    println!("|---|---|---|");
    for (name, v, goal) in &targets {
        println!("| {name} | {v:.3} | {goal} |");
    }
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::json!({
        "rows": rows,
        "requests": args.requests,
        "backends": report,
        "floor_us": floor,
        "wide": {"rows": args.wide_rows, "murr_in_process_us": wide_in_proc, "murr_10cols_us": narrow_same_rows, "redis_mget_decoded_us": wide_redis},
        "targets": targets.iter().map(|(n, v, g)| serde_json::json!({"target": n, "measured": v, "goal": g})).collect::<Vec<_>>(),
    });
    std::fs::write(&args.out, serde_json::to_vec_pretty(&json)?)?;
    println!("\nwritten to {}", args.out.display());
    Ok(())
}
