//! `murr-bench-load` (run by `cargo xtask bench`): murr under real load, against Redis.
//!
//! One run, against the release `murr` binary and Debian's `redis-server` on this machine:
//!
//! 1. **Load**: `--rows` rows (10M) x 10 float32 as `--writes` (10) Arrow IPC writes, while one
//!    client reads 1000 random keys at a time; then the merges settle.
//! 2. **Settled**: HTTP, Flight and Redis MGET timed in alternation (Redis loaded with pipelined
//!    SETs of 40-byte blobs, its load rate measured).
//! 3. **Many clients**: keys/s at each of `--clients` (1, 4, 16, 64) concurrent connections, for
//!    HTTP, Flight and Redis MGET.
//! 4. **Refresh**: the same client reads while a second thread rewrites every row (new values) in
//!    `--writes` writes; every answer is checked to hold whole writes, applied in order. Before
//!    it, the same bodies go to a sink (an HTTP server in this process that throws them away):
//!    the reads during that upload show what moving the bytes alone costs on these cores.
//!    `--refreshes N` rewrites the table N times (new values each round, each waiting for its
//!    merges) and pools the reads of all rounds: a steadier p99 than one round's ~100 slowest.
//!
//! The server's RSS is sampled every 100 ms throughout. Prints markdown tables; writes JSON and
//! two SVG plots (latency CDFs; read latency and RSS over time with the writes marked) into
//! `--out` (target/bench).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods,
    clippy::too_many_lines,
    reason = "a command-line report; serde_json::json! unwraps internally"
)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Array, ArrayRef, Float32Array, RecordBatch};
use arrow_flight::Ticket;
use arrow_flight::flight_service_client::FlightServiceClient;
use futures_util::TryStreamExt;
use murr_benches::{
    MurrServer, RawHttp, Redis, Res, Sink, batch, columns, decode_ipc, fetch_body, fetch_ticket,
    key, rss_of, schema,
};
use plotters::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

struct Args {
    rows: usize,
    writes: usize,
    requests: usize,
    clients: Vec<usize>,
    level_secs: f64,
    idle_secs: f64,
    settle_s: u64,
    refreshes: usize,
    murr_bin: PathBuf,
    out: PathBuf,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        rows: 10_000_000,
        writes: 10,
        requests: 2000,
        clients: vec![1, 4, 16, 64],
        level_secs: 4.0,
        idle_secs: 5.0,
        settle_s: 60,
        refreshes: 1,
        murr_bin: PathBuf::from("target/release/murr"),
        out: PathBuf::from("target/bench"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = value()?.parse()?,
            "--writes" => a.writes = value()?.parse()?,
            "--requests" => a.requests = value()?.parse()?,
            "--clients" => {
                a.clients = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--level-secs" => a.level_secs = value()?.parse()?,
            "--idle-secs" => a.idle_secs = value()?.parse()?,
            "--settle" => a.settle_s = value()?.parse()?,
            "--refreshes" => a.refreshes = value()?.parse()?,
            "--murr-bin" => a.murr_bin = value()?.into(),
            "--out" => a.out = value()?.into(),
            other => {
                return Err(format!(
                    "unknown flag {other} (--rows, --writes, --requests, --clients 1,4,16,64, --level-secs, --idle-secs, --settle SECONDS, --refreshes N, --murr-bin, --out DIR)"
                )
                .into());
            }
        }
    }
    if a.writes == 0 || a.rows < a.writes {
        return Err("--rows must be at least --writes, which must be at least 1".into());
    }
    if a.refreshes == 0 {
        return Err("--refreshes must be at least 1".into());
    }
    Ok(a)
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Lat {
    n: usize,
    mean: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Lat {
    fn of(samples: &[f64]) -> Lat {
        let mut t = samples.to_vec();
        t.sort_by(f64::total_cmp);
        let n = t.len();
        if n == 0 {
            return Lat::default();
        }
        let at = |q: f64| t[((n as f64 * q) as usize).min(n - 1)];
        Lat {
            n,
            mean: t.iter().sum::<f64>() / n as f64,
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            max: t[n - 1],
        }
    }
    fn row(&self) -> String {
        format!(
            "{:.0} | {:.0} | {:.0} | {:.0} | {}",
            self.mean, self.p50, self.p99, self.p999, self.n
        )
    }
}

/// What happens over the run, in seconds since its start.
#[derive(Default)]
struct Timeline {
    /// (t, server RSS bytes) every 100 ms.
    rss: Vec<(f64, u64)>,
    /// (t, read latency µs) of the continuous reader.
    reads: Vec<(f64, f64)>,
    /// (start, end, label) of each write.
    writes: Vec<(f64, f64, String)>,
    /// (start, label) of each phase.
    phases: Vec<(f64, String)>,
}

/// Arrow IPC bodies of `writes` writes covering rows `0..rows`; with `version`, column `f0` of
/// every row is `version` + the write's number (values of the load are in 0..1), so a reader
/// can tell which write a row comes from.
fn bodies(rows: usize, writes: usize, seed: u64, version: Option<f32>) -> Res<Vec<Vec<u8>>> {
    let per = rows.div_ceil(writes);
    (0..writes)
        .map(|w| {
            let (start, end) = (w * per, ((w + 1) * per).min(rows));
            let mut b = batch(start, end, 10, seed);
            if let Some(v) = version {
                let mut cols: Vec<ArrayRef> = b.columns().to_vec();
                cols[1] = Arc::new(Float32Array::from_value(v + w as f32, end - start));
                b = RecordBatch::try_new(b.schema(), cols)?;
            }
            let mut ipc = Vec::new();
            let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut ipc, &b.schema())?;
            writer.write(&b)?;
            writer.finish()?;
            drop(writer);
            Ok(ipc)
        })
        .collect()
}

/// What a reader checks its answers against: the refresh rounds' writes.
struct Rounds {
    /// Rows per write.
    per: usize,
    /// Writes per round.
    writes: usize,
    /// The round being written (0 until the second starts).
    current: AtomicUsize,
}

impl Rounds {
    /// Column `f0` of round `r`'s write `w` is `version(r)` + `w`; the load's values are in 0..1.
    fn version(&self, r: usize) -> f32 {
        2.0 + (r * (self.writes + 1)) as f32
    }

    /// Whether an answer holds whole writes of round `r`, applied in order over what the round
    /// before it (or the load) left.
    fn whole(&self, rows: &[usize], f0: &[f32], r: usize) -> bool {
        let old = r.checked_sub(1).map(|p| self.version(p));
        whole_writes(rows, f0, self.per, self.version(r), old)
    }
}

/// Reads 1000 random keys at a time over one connection until `stop`, recording (t, µs); with
/// `check`, checks that every answer holds whole refresh writes, applied in order: returns the
/// number of answers that did not.
fn read_loop(
    base: &str,
    rows: usize,
    t0: Instant,
    stop: &AtomicBool,
    check: Option<&Rounds>,
    seed: u64,
) -> Res<(Vec<(f64, f64)>, usize)> {
    let names = columns(10);
    let mut conn = RawHttp::connect(base)?;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut torn = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let rows_asked: Vec<usize> = (0..1000).map(|_| rng.random_range(0..rows)).collect();
        let keys: Vec<String> = rows_asked.iter().map(|&r| key(r)).collect();
        let body = fetch_body(&keys, &names);
        let round = check.map(|c| c.current.load(Ordering::SeqCst));
        let start = Instant::now();
        let answer = conn.post("/api/v1/table/bench/fetch", &body)?;
        let us = start.elapsed().as_secs_f64() * 1e6;
        out.push(((start - t0).as_secs_f64(), us));
        if let (Some(c), Some(r0)) = (check, round) {
            let batches = decode_ipc(&answer);
            let f0: Vec<f32> = batches
                .iter()
                .flat_map(|b| {
                    let c = b.column(0).as_primitive::<Float32Type>();
                    (0..c.len()).map(|i| if c.is_null(i) { -1.0 } else { c.value(i) })
                })
                .collect();
            // The round is read before the fetch and after: an answer may hold either.
            let r1 = c.current.load(Ordering::SeqCst);
            if !c.whole(&rows_asked, &f0, r0) && !c.whole(&rows_asked, &f0, r1) {
                torn += 1;
            }
        }
    }
    Ok((out, torn))
}

/// Whether rows answered with these `f0` values hold whole refresh writes applied in order: the
/// rows of one write all new (`version` + its number) or all old (`old` + its number, or below
/// 1 for the load's values), and no write new after an old one.
fn whole_writes(rows: &[usize], f0: &[f32], per: usize, version: f32, old: Option<f32>) -> bool {
    // Per write: Some(true) new, Some(false) old.
    let mut state: std::collections::BTreeMap<usize, bool> = std::collections::BTreeMap::new();
    for (&r, &v) in rows.iter().zip(f0) {
        let w = r / per;
        // Column `f0` of write `w` of the round that wrote at `base`.
        let written_at = |base: f32| (v - (base + w as f32)).abs() < 1e-3;
        let new = if written_at(version) {
            true
        } else if old.map_or((0.0..1.0).contains(&v), written_at) {
            false
        } else {
            return false;
        };
        if *state.entry(w).or_insert(new) != new {
            return false;
        }
    }
    // Writes apply in order: once one is old, every later one is old.
    let mut seen_old = false;
    for new in state.values() {
        if *new && seen_old {
            return false;
        }
        seen_old |= !new;
    }
    true
}

/// Runs `clients` threads, each with its own connection made by `connect`, fetching 1000 random
/// keys at a time for `secs`; returns keys/s over all and the latencies. Each thread builds 32
/// requests first (`prepare`) and sends them in turn, so that the clients spend the cores on
/// sending and receiving, not on making keys.
fn many<P, C: FnMut(&P) + Send>(
    clients: usize,
    secs: f64,
    rows: usize,
    prepare: impl Fn(&[String]) -> P + Sync,
    connect: impl Fn() -> Res<C> + Sync,
) -> Res<(f64, Lat)> {
    let stop = AtomicBool::new(false);
    let started = std::sync::Barrier::new(clients + 1);
    let (results, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let (stop, connect, prepare, started) = (&stop, &connect, &prepare, &started);
                s.spawn(move || -> Result<Vec<f64>, String> {
                    let mut rng = SmallRng::seed_from_u64(1000 + i as u64);
                    let requests: Vec<P> = (0..32)
                        .map(|_| {
                            let keys: Vec<String> =
                                (0..1000).map(|_| key(rng.random_range(0..rows))).collect();
                            prepare(&keys)
                        })
                        .collect();
                    let fetch = connect().map_err(|e| e.to_string());
                    started.wait();
                    let mut fetch = fetch?;
                    let mut lat = Vec::new();
                    for request in requests.iter().cycle() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let t = Instant::now();
                        fetch(request);
                        lat.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                    Ok(lat)
                })
            })
            .collect();
        started.wait();
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        let results: Vec<Result<Vec<f64>, String>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a client panicked".to_owned()))
            })
            .collect();
        (results, t.elapsed().as_secs_f64())
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok((all.len() as f64 * 1000.0 / elapsed, Lat::of(&all)))
}

/// A Flight `do_get` fetcher over its own connection and current-thread runtime.
fn flight_client(grpc: &str) -> Res<impl FnMut(&Ticket) + Send> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut client = rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(grpc.to_owned())?
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
    Ok(move |ticket: &Ticket| {
        let data: Vec<arrow_flight::FlightData> = rt.block_on(async {
            client
                .do_get(ticket.clone())
                .await
                .expect("do_get")
                .into_inner()
                .try_collect()
                .await
                .expect("stream")
        });
        std::hint::black_box(data);
    })
}

fn ticket(keys: &[String]) -> Ticket {
    Ticket {
        ticket: fetch_ticket("bench", keys, &columns(10)).into(),
    }
}

fn http_client(base: &str) -> Res<impl FnMut(&Vec<u8>) + Send> {
    let mut conn = RawHttp::connect(base)?;
    Ok(move |body: &Vec<u8>| {
        let answer = conn.post("/api/v1/table/bench/fetch", body).expect("fetch");
        std::hint::black_box(answer);
    })
}

fn http_body(keys: &[String]) -> Vec<u8> {
    fetch_body(keys, &columns(10))
}

fn redis_client(url: &str) -> Res<impl FnMut(&redis::Cmd) + Send> {
    let mut conn = redis::Client::open(url)?.get_connection()?;
    Ok(move |cmd: &redis::Cmd| {
        let v: Vec<Option<Vec<u8>>> = cmd.query(&mut conn).expect("MGET");
        std::hint::black_box(v);
    })
}

fn mget(keys: &[String]) -> redis::Cmd {
    let mut cmd = redis::cmd("MGET");
    cmd.arg(keys);
    cmd
}

/// Loads rows `0..rows` into Redis as 40-byte blobs with pipelined SETs; returns rows/s.
fn load_redis(conn: &mut redis::Connection, rows: usize) -> Res<f64> {
    let started = Instant::now();
    let mut start = 0;
    while start < rows {
        let end = (start + 100_000).min(rows);
        let b = batch(start, end, 10, 42);
        let cols: Vec<&Float32Array> = (1..=10).map(|c| b.column(c).as_primitive()).collect();
        let mut pipe = redis::pipe();
        for r in 0..b.num_rows() {
            let blob: Vec<u8> = cols.iter().flat_map(|c| c.value(r).to_le_bytes()).collect();
            pipe.cmd("SET").arg(key(start + r)).arg(blob).ignore();
        }
        pipe.query::<()>(conn)?;
        start = end;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// PUTs each body to the table's write endpoint in turn, marking each on the timeline; returns
/// rows/s over all of them.
fn write_all(
    http: &reqwest::blocking::Client,
    base: &str,
    bodies: Vec<Vec<u8>>,
    rows: usize,
    t0: Instant,
    timeline: &Mutex<Timeline>,
    label: &str,
) -> Res<f64> {
    let started = Instant::now();
    for (i, body) in bodies.into_iter().enumerate() {
        let s = t0.elapsed().as_secs_f64();
        let resp = http
            .put(format!("{base}/api/v1/table/bench/write"))
            .header("content-type", "application/vnd.apache.arrow.stream")
            .body(body)
            .send()?;
        if !resp.status().is_success() {
            return Err(format!("{label} write {i}: {}", resp.text()?).into());
        }
        let e = t0.elapsed().as_secs_f64();
        timeline
            .lock()
            .expect("timeline")
            .writes
            .push((s, e, format!("{label} {i}")));
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

fn phase(timeline: &Mutex<Timeline>, t0: Instant, label: &str) {
    eprintln!("bench-load: {label}");
    timeline
        .lock()
        .expect("timeline")
        .phases
        .push((t0.elapsed().as_secs_f64(), label.to_owned()));
}

/// The peak of the RSS samples between `from` and `to` seconds.
fn peak(timeline: &Timeline, from: f64, to: f64) -> u64 {
    timeline
        .rss
        .iter()
        .filter(|(t, _)| (from..=to).contains(t))
        .map(|&(_, r)| r)
        .max()
        .unwrap_or(0)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("murr-bench-load: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args = parse_args()?;
    let rows = args.rows;
    let raw = (rows * (11 + 40)) as f64;
    let per = rows.div_ceil(args.writes);
    let mut redis = Redis::start()?;
    let redis_url = redis.url.clone();
    let tmp = tempfile::tempdir()?;
    let server = MurrServer::start(&args.murr_bin, tmp.path())?;
    let pid = server.child.id();
    let http = murr_benches::http_client(Duration::from_secs(600))?;
    let resp = http
        .put(format!("{}/api/v1/table/bench", server.http))
        .body(serde_json::to_string(&schema(10))?)
        .send()?;
    if !resp.status().is_success() {
        return Err(format!("create table: {}", resp.text()?).into());
    }
    eprintln!(
        "bench-load: {rows} rows x 10 float32 in {} writes; preparing the bodies",
        args.writes
    );
    let load_bodies = bodies(rows, args.writes, 42, None)?;
    let rounds = Arc::new(Rounds {
        per,
        writes: args.writes,
        current: AtomicUsize::new(0),
    });
    let refresh_bodies = (0..args.refreshes)
        .map(|r| bodies(rows, args.writes, 43 + r as u64, Some(rounds.version(r))))
        .collect::<Res<Vec<_>>>()?;
    let sink_bodies = refresh_bodies[0].clone();
    let sink = Sink::start()?;

    let t0 = Instant::now();
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (timeline, done) = (Arc::clone(&timeline), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(r) = rss_of(pid) {
                    let t = t0.elapsed().as_secs_f64();
                    timeline.lock().expect("timeline").rss.push((t, r));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    // 1. The load, with a reader, then the merges.
    phase(&timeline, t0, "load");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (base, stop) = (server.http.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            read_loop(&base, rows, t0, &stop, None, 1).map_err(|e| e.to_string())
        })
    };
    let load_start = t0.elapsed().as_secs_f64();
    let murr_load = write_all(
        &http,
        &server.http,
        load_bodies,
        rows,
        t0,
        &timeline,
        "load",
    )?;
    let load_end = t0.elapsed().as_secs_f64();
    phase(&timeline, t0, "merges after the load");
    server.settle_out(rows, Duration::from_secs(args.settle_s));
    let settled_at = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (load_reads, _) = reader.join().map_err(|_| "reader panicked")??;
    let after_load: Vec<f64> = load_reads
        .iter()
        .filter(|(t, _)| (load_end..settled_at).contains(t))
        .map(|&(_, us)| us)
        .collect();
    timeline.lock().expect("timeline").reads.extend(load_reads);

    // 2. Settled: Redis loaded, then HTTP, Flight and Redis in alternation.
    phase(&timeline, t0, "Redis load");
    let redis_load = load_redis(&mut redis.conn, rows)?;
    phase(&timeline, t0, "settled reads");
    let mut rng = SmallRng::seed_from_u64(20_261_127);
    let requests: Vec<Vec<String>> = (0..args.requests)
        .map(|_| (0..1000).map(|_| key(rng.random_range(0..rows))).collect())
        .collect();
    let mut h = {
        let mut c = http_client(&server.http)?;
        move |k: &[String]| c(&http_body(k))
    };
    let mut f = {
        let mut c = flight_client(&server.grpc)?;
        move |k: &[String]| c(&ticket(k))
    };
    let mut r = {
        let mut c = redis_client(&redis_url)?;
        move |k: &[String]| c(&mget(k))
    };
    let mut samples: [Vec<f64>; 3] = Default::default();
    for fetch in [&mut h as &mut dyn FnMut(&[String]), &mut f, &mut r] {
        for k in requests.iter().take(100) {
            fetch(k);
        }
    }
    for part in requests.chunks(requests.len().div_ceil(20)) {
        for (i, fetch) in [&mut h as &mut dyn FnMut(&[String]), &mut f, &mut r]
            .into_iter()
            .enumerate()
        {
            for k in part.iter().take(5) {
                fetch(k);
            }
            for k in part {
                let t = Instant::now();
                fetch(k);
                samples[i].push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    drop((h, f, r));
    let settled: Vec<Lat> = samples.iter().map(|s| Lat::of(s)).collect();
    let settled_rss = rss_of(pid).unwrap_or(0);

    // 3. Many clients.
    phase(&timeline, t0, "many clients");
    let mut levels = Vec::new();
    for &n in &args.clients {
        let (h, hl) = many(n, args.level_secs, rows, http_body, || {
            http_client(&server.http)
        })?;
        let (f, fl) = many(n, args.level_secs, rows, ticket, || {
            flight_client(&server.grpc)
        })?;
        let (r, rl) = many(n, args.level_secs, rows, mget, || redis_client(&redis_url))?;
        eprintln!(
            "bench-load: {n} clients: HTTP {h:.0} keys/s, Flight {f:.0}, Redis {r:.0} ({:.1}x / {:.1}x)",
            h / r,
            f / r
        );
        levels.push((n, (h, hl), (f, fl), (r, rl)));
    }
    redis::cmd("FLUSHALL").query::<()>(&mut redis.conn)?;

    // 4. The refresh, read by one client: idle first, then while a second thread rewrites.
    phase(&timeline, t0, "idle reads");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (base, stop, rounds) = (server.http.clone(), Arc::clone(&stop), Arc::clone(&rounds));
        std::thread::spawn(move || {
            read_loop(&base, rows, t0, &stop, Some(&rounds), 2).map_err(|e| e.to_string())
        })
    };
    std::thread::sleep(Duration::from_secs_f64(args.idle_secs));
    // The refresh's bytes sent to a sink first: what moving them alone costs the reads.
    phase(&timeline, t0, "upload to a sink");
    let sink_start = t0.elapsed().as_secs_f64();
    let sink_rate = write_all(
        &http,
        &sink.url,
        sink_bodies,
        rows,
        t0,
        &Mutex::new(Timeline::default()),
        "sink",
    )?;
    let sink_end = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    // Each round rewrites every row and waits for its merges; the reads of all rounds are pooled.
    let mut rounds_at: Vec<(f64, f64, f64)> = Vec::new();
    let mut write_secs = 0.0;
    for (r, round_bodies) in refresh_bodies.into_iter().enumerate() {
        let label = if args.refreshes == 1 {
            "refresh".to_owned()
        } else {
            format!("refresh {}", r + 1)
        };
        rounds.current.store(r, Ordering::SeqCst);
        phase(&timeline, t0, &label);
        let start = t0.elapsed().as_secs_f64();
        let rate = write_all(
            &http,
            &server.http,
            round_bodies,
            rows,
            t0,
            &timeline,
            &label,
        )?;
        let end = t0.elapsed().as_secs_f64();
        write_secs += rows as f64 / rate;
        phase(&timeline, t0, &format!("merges after the {label}"));
        server.settle_out(rows, Duration::from_secs(args.settle_s));
        rounds_at.push((start, end, t0.elapsed().as_secs_f64()));
    }
    let refresh_rate = (rows * args.refreshes) as f64 / write_secs;
    let (refresh_start, refresh_settled) = (rounds_at[0].0, rounds_at[rounds_at.len() - 1].2);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (refresh_reads, torn) = reader.join().map_err(|_| "reader panicked")??;
    let window = |keep: &dyn Fn(f64) -> bool| -> Vec<f64> {
        refresh_reads
            .iter()
            .filter(|(t, _)| keep(*t))
            .map(|&(_, us)| us)
            .collect()
    };
    let idle = Lat::of(&window(&|t| t < sink_start));
    let sunk = window(&|t| (sink_start..sink_end).contains(&t));
    let during = window(&|t| rounds_at.iter().any(|r| (r.0..r.1).contains(&t)));
    let slow = |reads: &[f64]| reads.iter().filter(|&&us| us > 2.0 * idle.p99).count();
    let (sink_slow, during_slow) = (slow(&sunk), slow(&during));
    let (sunk, during) = (Lat::of(&sunk), Lat::of(&during));
    let merging = Lat::of(&window(&|t| {
        rounds_at.iter().any(|r| (r.1..r.2).contains(&t))
    }));
    timeline
        .lock()
        .expect("timeline")
        .reads
        .extend(refresh_reads);
    done.store(true, Ordering::Relaxed);
    sampler.join().map_err(|_| "sampler panicked")?;
    server.stop()?;

    // Report.
    let tl = timeline.lock().expect("timeline");
    let load_peak = peak(&tl, load_start, settled_at);
    let refresh_peak = peak(&tl, refresh_start, refresh_settled);
    println!(
        "\n## murr under load: {rows} rows x 10 float32, {} writes\n",
        args.writes
    );
    println!("| reads of 1000 keys | mean µs | p50 | p99 | p99.9 | reads |");
    println!("|---|---|---|---|---|---|");
    for (name, l) in [
        ("murr HTTP, settled", &settled[0]),
        ("murr Flight, settled", &settled[1]),
        ("Redis MGET", &settled[2]),
        (
            "murr HTTP, after the load until merges settled",
            &Lat::of(&after_load),
        ),
        ("murr HTTP, idle (before the refresh)", &idle),
        ("murr HTTP, while the refresh's bytes go to a sink", &sunk),
        ("murr HTTP, during the refresh", &during),
        ("murr HTTP, merges after the refresh", &merging),
    ] {
        println!("| {name} | {} |", l.row());
    }
    println!(
        "\n| clients | HTTP keys/s | Flight keys/s | Redis keys/s | HTTP / Redis | Flight / Redis | HTTP p99 / p99.9 µs | Flight p99 / p99.9 µs | Redis p99 / p99.9 µs |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (n, (h, hl), (f, fl), (r, rl)) in &levels {
        println!(
            "| {n} | {h:.0} | {f:.0} | {r:.0} | {:.1} | {:.1} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} |",
            h / r,
            f / r,
            hl.p99,
            hl.p999,
            fl.p99,
            fl.p999,
            rl.p99,
            rl.p999
        );
    }
    let targets = vec![
        (
            "refresh: read p50 / idle p50",
            during.p50 / idle.p50,
            "<= 1.5",
        ),
        (
            "refresh: read p99 / idle p99",
            during.p99 / idle.p99,
            "<= 2",
        ),
        (
            "refresh rows/s / Redis pipelined load",
            refresh_rate / redis_load,
            ">= 4",
        ),
        ("answers with a partial write", torn as f64, "0"),
        (
            "RSS peak during load + merges / raw",
            load_peak as f64 / raw,
            "<= 1.5",
        ),
        (
            "RSS peak during refresh + merges / raw",
            refresh_peak as f64 / raw,
            "<= 1.5",
        ),
        ("RSS settled / raw", settled_rss as f64 / raw, "<= 1.2"),
        (
            "settled HTTP mean / Redis MGET mean",
            settled[0].mean / settled[2].mean,
            "<= 0.12",
        ),
        (
            "settled Flight mean / Redis MGET mean",
            settled[1].mean / settled[2].mean,
            "<= 0.15",
        ),
        (
            "settled HTTP p99 / mean",
            settled[0].p99 / settled[0].mean,
            "<= 2",
        ),
    ];
    println!(
        "\nload {murr_load:.0} rows/s, refresh {refresh_rate:.0} rows/s, Redis pipelined load {redis_load:.0} rows/s; raw data {:.0} MB\n",
        raw / 1e6
    );
    println!("| target | measured | goal |");
    println!("|---|---|---|");
    for (name, v, goal) in &targets {
        println!("| {name} | {v:.3} | {goal} |");
    }
    println!(
        "\nreads over 2x the idle p99 ({:.0} µs): {during_slow} of {} during the refresh; {sink_slow} of {} while the same bytes went to a sink at {sink_rate:.0} rows/s (nothing written: the cost of moving them alone)",
        2.0 * idle.p99,
        during.n,
        sunk.n
    );
    std::fs::create_dir_all(&args.out)?;
    plot_cdf(
        &args.out.join("load-latency-cdf.svg"),
        &[
            ("murr HTTP", &samples[0]),
            ("murr Flight", &samples[1]),
            ("Redis MGET", &samples[2]),
        ],
    )?;
    plot_timeline(&args.out.join("load-timeline.svg"), &tl, raw)?;
    let json = serde_json::json!({
        "rows": rows,
        "writes": args.writes,
        "refreshes": args.refreshes,
        "raw_bytes": raw,
        "load_rows_per_s": murr_load,
        "refresh_rows_per_s": refresh_rate,
        "redis_load_rows_per_s": redis_load,
        "settled": {"http": settled[0], "flight": settled[1], "redis_mget": settled[2]},
        "after_load": Lat::of(&after_load),
        "refresh": {"idle": idle, "during": during, "merges": merging, "torn_answers": torn,
            "sink": sunk, "sink_rows_per_s": sink_rate, "slow_during": during_slow, "slow_sink": sink_slow},
        "rss": {"load_peak": load_peak, "refresh_peak": refresh_peak, "settled": settled_rss},
        "clients": levels.iter().map(|(n, (h, hl), (f, fl), (r, rl))| serde_json::json!({
            "clients": n, "http_keys_per_s": h, "flight_keys_per_s": f, "redis_keys_per_s": r,
            "http": hl, "flight": fl, "redis": rl})).collect::<Vec<_>>(),
        "targets": targets.iter().map(|(n, v, g)| serde_json::json!({"target": n, "measured": v, "goal": g})).collect::<Vec<_>>(),
        "timeline": {
            "rss": tl.rss.iter().map(|&(t, r)| [t, r as f64]).collect::<Vec<_>>(),
            "reads": tl.reads.iter().map(|&(t, us)| [t, us]).collect::<Vec<_>>(),
            "writes": tl.writes.iter().map(|(s, e, l)| serde_json::json!([s, e, l])).collect::<Vec<_>>(),
            "phases": tl.phases.iter().map(|(t, l)| serde_json::json!([t, l])).collect::<Vec<_>>(),
        },
    });
    std::fs::write(
        args.out.join("load.json"),
        serde_json::to_vec_pretty(&json)?,
    )?;
    println!(
        "\nwritten to {}: load.json, load-latency-cdf.svg, load-timeline.svg",
        args.out.display()
    );
    if torn > 0 {
        return Err(format!("{torn} answers held part of a write").into());
    }
    Ok(())
}

const COLORS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
];

/// Latency CDFs, log-scale time axis.
fn plot_cdf(path: &std::path::Path, series: &[(&str, &Vec<f64>)]) -> Res<()> {
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = series
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .fold(100.0f64, f64::max);
    let min = series
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .fold(f64::INFINITY, f64::min)
        .max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Settled reads of 1000 keys x 10 float32: latency CDF",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d((min * 0.9..max * 1.1).log_scale(), 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("latency (µs, log scale)")
        .y_desc("fraction of reads")
        .draw()?;
    for (i, (name, s)) in series.iter().enumerate() {
        let mut t = (*s).clone();
        t.sort_by(f64::total_cmp);
        let n = t.len() as f64;
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                t.iter().enumerate().map(|(k, &v)| (v, (k + 1) as f64 / n)),
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Read latency (points) and server RSS / raw data (line) over the run, writes shaded.
fn plot_timeline(path: &std::path::Path, tl: &Timeline, raw: f64) -> Res<()> {
    let root = SVGBackend::new(path, (1200, 650)).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(325);
    let end = tl.rss.last().map_or(1.0, |&(t, _)| t);
    let mut lat_max = Lat::of(&tl.reads.iter().map(|&(_, us)| us).collect::<Vec<_>>()).p999;
    lat_max = lat_max.max(100.0) * 1.2;
    let mut top = ChartBuilder::on(&upper)
        .caption(
            "One client's reads of 1000 keys, p50 and p99 per half second (µs): the load, then the refresh",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..lat_max)?;
    top.configure_mesh().y_desc("read µs").draw()?;
    for (s, e, _) in &tl.writes {
        top.draw_series(std::iter::once(Rectangle::new(
            [(*s, 0.0), (*e, lat_max)],
            RGBColor(255, 200, 120).mix(0.35).filled(),
        )))?;
    }
    // Per half second: the median and the 99th percentile of the reads that started in it.
    let mut buckets: std::collections::BTreeMap<u64, Vec<f64>> = std::collections::BTreeMap::new();
    for &(t, us) in &tl.reads {
        buckets.entry((t * 2.0) as u64).or_default().push(us);
    }
    let stats: Vec<(f64, Lat)> = buckets
        .iter()
        .map(|(&b, v)| (b as f64 / 2.0 + 0.25, Lat::of(v)))
        .collect();
    for (i, (name, pick)) in [
        ("p50", (|l: &Lat| l.p50) as fn(&Lat) -> f64),
        ("p99", |l: &Lat| l.p99),
    ]
    .into_iter()
    .enumerate()
    {
        let color = COLORS[i];
        top.draw_series(LineSeries::new(
            stats.iter().map(|(t, l)| (*t, pick(l).min(lat_max))),
            color.stroke_width(1),
        ))?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    top.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    let rss_max = tl
        .rss
        .iter()
        .map(|&(_, r)| r as f64 / raw)
        .fold(2.0, f64::max)
        * 1.1;
    let mut bottom = ChartBuilder::on(&lower)
        .caption(
            "murr RSS / raw data (writes shaded; dashed: 1.5x)",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..rss_max)?;
    bottom
        .configure_mesh()
        .x_desc("seconds since the load started")
        .y_desc("RSS / raw")
        .draw()?;
    for (s, e, _) in &tl.writes {
        bottom.draw_series(std::iter::once(Rectangle::new(
            [(*s, 0.0), (*e, rss_max)],
            RGBColor(255, 200, 120).mix(0.35).filled(),
        )))?;
    }
    bottom.draw_series(DashedLineSeries::new(
        [(0.0, 1.5), (end, 1.5)],
        6,
        4,
        BLACK.stroke_width(1),
    ))?;
    bottom.draw_series(LineSeries::new(
        tl.rss.iter().map(|&(t, r)| (t, r as f64 / raw)),
        COLORS[2].stroke_width(2),
    ))?;
    for (t, label) in &tl.phases {
        bottom.draw_series(std::iter::once(Text::new(
            label.clone(),
            (*t, rss_max * 0.95),
            ("sans-serif", 11),
        )))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds() -> Rounds {
        Rounds {
            per: 10,
            writes: 10,
            current: AtomicUsize::new(0),
        }
    }

    #[test]
    fn the_first_round_is_checked_against_the_load() {
        let r = rounds();
        let rows = [1, 2, 11, 12];
        assert!(r.whole(&rows, &[0.1, 0.2, 0.3, 0.4], 0));
        // Write 0 applied, write 1 not yet.
        assert!(r.whole(&rows, &[2.0, 2.0, 0.3, 0.4], 0));
        // Write 1 applied before write 0: out of order.
        assert!(!r.whole(&rows, &[0.1, 0.2, 3.0, 3.0], 0));
        // Half of write 0.
        assert!(!r.whole(&rows, &[2.0, 0.2, 0.3, 0.4], 0));
    }

    #[test]
    fn a_later_round_is_checked_against_the_round_before() {
        let r = rounds();
        let rows = [1, 2, 11, 12];
        let (v0, v1) = (r.version(0), r.version(1));
        assert!(r.whole(&rows, &[v0, v0, v0 + 1.0, v0 + 1.0], 1));
        assert!(r.whole(&rows, &[v1, v1, v0 + 1.0, v0 + 1.0], 1));
        assert!(!r.whole(&rows, &[v1, v1, v0 + 1.0, v0 + 1.0], 0));
        // The load's values are not what round 1 replaces.
        assert!(!r.whole(&rows, &[0.1, 0.2, 0.3, 0.4], 1));
        assert!(!r.whole(&rows, &[v1, v0, v0 + 1.0, v0 + 1.0], 1));
    }
}
