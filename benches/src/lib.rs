//! Data generators and set-up shared by murr's criterion benches and the load report.
//!
//! The workload is upstream murr's: a utf8 key and `cols` non-null float32 columns, read back
//! 1000 uniformly random existing keys at a time.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use murr_directory::Directory;
use murr_format::{ColumnDef, DType, TableSchema};
use murr_table::{Store, StoreOptions, Table};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The key of row `i`: 11 bytes, like upstream's benchmark keys.
pub fn key(i: usize) -> String {
    format!("k{i:010}")
}

/// Names of the value columns: `f0`, `f1`, ...
pub fn columns(cols: usize) -> Vec<String> {
    (0..cols).map(|c| format!("f{c}")).collect()
}

/// The table schema: key `id`, then `cols` non-null float32 columns.
pub fn schema(cols: usize) -> TableSchema {
    let mut c = vec![ColumnDef::new("id", DType::Utf8, false)];
    c.extend(
        columns(cols)
            .into_iter()
            .map(|n| ColumnDef::new(n, DType::Float32, false)),
    );
    TableSchema::new("id", c)
}

/// Rows `start..end` as one record batch; values are seeded pseudo-random floats.
pub fn batch(start: usize, end: usize, cols: usize, seed: u64) -> RecordBatch {
    let mut rng = SmallRng::seed_from_u64(seed ^ start as u64);
    let mut fields = vec![Field::new("id", DataType::Utf8, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        (start..end).map(key),
    ))];
    for name in columns(cols) {
        fields.push(Field::new(name, DataType::Float32, false));
        arrays.push(Arc::new(Float32Array::from_iter_values(
            (start..end).map(|_| rng.random::<f32>()),
        )));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("valid batch")
}

/// A store over `dir` holding table `bench` with `rows` rows of `cols` columns, written in
/// writes of `chunk` rows and then compacted into one segment.
///
/// # Panics
/// On any storage error: this is bench set-up.
pub fn load(
    dir: Arc<dyn Directory>,
    rows: usize,
    cols: usize,
    chunk: usize,
) -> (Store, Arc<Table>) {
    let store = Store::open(
        dir,
        StoreOptions {
            background_merges: false,
            ..StoreOptions::default()
        },
    )
    .expect("opens");
    let table = store.create_table("bench", schema(cols)).expect("creates");
    let mut start = 0;
    while start < rows {
        let end = (start + chunk).min(rows);
        table.write(&[batch(start, end, cols, 42)]).expect("writes");
        start = end;
    }
    table.compact().expect("compacts");
    (store, table)
}

/// The cap on a criterion bench's table sizes: `MURR_BENCH_MAX_ROWS` (e.g. 100000 for a quick
/// run), or none.
pub fn max_rows() -> usize {
    std::env::var("MURR_BENCH_MAX_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX)
}

/// `n` uniformly random existing keys of a table of `rows` rows.
pub fn random_keys(rng: &mut SmallRng, rows: usize, n: usize) -> Vec<String> {
    (0..n).map(|_| key(rng.random_range(0..rows))).collect()
}

/// The resident set size of this process, in bytes, from `/proc/self/status` (Linux).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The memory system's floor for one request, in microseconds (mean over `requests`): 1000 random
/// probes into a hash table of `rows` keys plus 1000 random 40-byte reads from a flat buffer of
/// `rows` rows. A fetch cannot do less work than this; murr's target is a small multiple of it.
pub fn floor_us(rows: usize, requests: usize) -> f64 {
    use std::hash::BuildHasher;
    let hasher = hashbrown::DefaultHashBuilder::default();
    let mut table: hashbrown::HashMap<u64, u32> = hashbrown::HashMap::with_capacity(rows);
    for i in 0..rows as u64 {
        table.insert(hasher.hash_one(i), i as u32);
    }
    let flat: Vec<u8> = (0..rows * 40).map(|i| i as u8).collect();
    let mut rng = SmallRng::seed_from_u64(5);
    let reqs: Vec<Vec<u64>> = (0..requests)
        .map(|_| {
            (0..1000)
                .map(|_| rng.random_range(0..rows as u64))
                .collect()
        })
        .collect();
    let start = std::time::Instant::now();
    let mut sum = 0u64;
    for r in &reqs {
        let mut out = vec![0u8; 40 * r.len()];
        for (o, &k) in out.chunks_exact_mut(40).zip(r) {
            let row = table[&hasher.hash_one(k)] as usize;
            o.copy_from_slice(&flat[row * 40..row * 40 + 40]);
        }
        sum = sum.wrapping_add(u64::from(out[7]));
    }
    std::hint::black_box(sum);
    start.elapsed().as_secs_f64() * 1e6 / requests as f64
}

/// A murr HTTP server over `store` on 127.0.0.1 (an ephemeral port), on its own two-worker
/// runtime; returns its base URL and the runtime (dropping it stops the server).
///
/// # Panics
/// When the server cannot start: this is bench set-up.
pub fn serve_http(store: Arc<Store>) -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(murr_http::bind("127.0.0.1:0".parse().expect("address")))
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    let router = murr_http::router(murr_http::AppState {
        node: std::sync::Arc::default(),
        store,
        config: Arc::new(murr_http::HttpConfig::default()),
        registry: None,
        loads: Arc::default(),
    });
    rt.spawn(async move {
        murr_http::serve(
            listener,
            router,
            &murr_http::HttpConfig::default(),
            std::future::pending(),
        )
        .await
    });
    (format!("http://{addr}"), rt)
}

/// A fetch request body for `keys` and `columns`.
pub fn fetch_body(keys: &[String], columns: &[String]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Fetch<'a> {
        keys: &'a [String],
        columns: &'a [String],
    }
    serde_json::to_vec(&Fetch { keys, columns }).expect("strings serialize")
}

/// A Flight `do_get` ticket for `keys` and `columns` of `table`.
pub fn fetch_ticket(table: &str, keys: &[String], columns: &[String]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Ticket<'a> {
        table: &'a str,
        keys: &'a [String],
        columns: &'a [String],
    }
    serde_json::to_vec(&Ticket {
        table,
        keys,
        columns,
    })
    .expect("strings serialize")
}

/// Decodes an Arrow IPC stream answer into its record batches.
///
/// # Panics
/// When the bytes are not an Arrow IPC stream.
pub fn decode_ipc(bytes: &[u8]) -> Vec<RecordBatch> {
    arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .expect("IPC stream")
        .map(|b| b.expect("batch"))
        .collect()
}

/// Request latencies in microseconds: mean, median and 99th percentile.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Latency {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Times `f` once per request, after a warm-up over a tenth of them.
pub fn time_requests<T>(requests: &[Vec<String>], mut f: impl FnMut(&[String]) -> T) -> Latency {
    for r in requests.iter().take(requests.len() / 10 + 1) {
        std::hint::black_box(f(r));
    }
    Latency::of(
        requests
            .iter()
            .map(|r| {
                let start = std::time::Instant::now();
                std::hint::black_box(f(r));
                start.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    )
}

/// One backend's fetch of some keys; the flag asks for the answer decoded into Arrow arrays.
pub type Fetcher<'a> = dyn FnMut(&[String], bool) + 'a;

/// Times several backends on the same requests, in alternation: the requests are cut into
/// `rounds` parts and each part goes through every backend in turn, to the last byte
/// (`decode = false`) and then decoded (`decode = true`). On a noisy machine the backends then
/// share the same conditions, so their ratios hold even when the absolute times drift. Each part
/// starts with a few untimed requests per backend, which has been idle meanwhile.
/// Returns (last byte, decoded) per backend, after a warm-up over a tenth of the requests.
pub fn time_interleaved(
    requests: &[Vec<String>],
    rounds: usize,
    backends: &mut [&mut Fetcher<'_>],
) -> Vec<(Latency, Latency)> {
    for backend in backends.iter_mut() {
        for r in requests.iter().take(requests.len() / 10 + 1) {
            backend(r, false);
        }
    }
    let mut samples: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); backends.len()];
    for part in requests.chunks(requests.len().div_ceil(rounds.max(1)).max(1)) {
        for (backend, (last, decoded)) in backends.iter_mut().zip(&mut samples) {
            // Untimed first: a backend that sat idle while the others ran starts cold.
            for r in part.iter().take(5) {
                backend(r, false);
            }
            for decode in [false, true] {
                for r in part {
                    let start = std::time::Instant::now();
                    backend(r, decode);
                    let us = start.elapsed().as_secs_f64() * 1e6;
                    if decode {
                        decoded.push(us)
                    } else {
                        last.push(us)
                    }
                }
            }
        }
    }
    samples
        .into_iter()
        .map(|(last, decoded)| (Latency::of(last), Latency::of(decoded)))
        .collect()
}

impl Latency {
    /// Mean, median and 99th percentile of samples in microseconds.
    pub fn of(mut t: Vec<f64>) -> Latency {
        t.sort_by(f64::total_cmp);
        let n = t.len();
        if n == 0 {
            return Latency::default();
        }
        Latency {
            mean: t.iter().sum::<f64>() / n as f64,
            p50: t[n / 2],
            p99: t[(n * 99 / 100).min(n - 1)],
        }
    }
}

/// The error type of the bench binaries.
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A minimal HTTP/1.1 client over one keep-alive connection: POST with a JSON body, answer read
/// to its Content-Length.
#[derive(Debug)]
pub struct RawHttp {
    host: String,
    reader: BufReader<std::net::TcpStream>,
}

impl RawHttp {
    /// Connects to `base` (`http://host:port`).
    ///
    /// # Errors
    /// When it cannot connect.
    pub fn connect(base: &str) -> Res<RawHttp> {
        let host = base.trim_start_matches("http://").to_owned();
        let stream = std::net::TcpStream::connect(&host)?;
        stream.set_nodelay(true)?;
        Ok(RawHttp {
            host,
            reader: BufReader::new(stream),
        })
    }

    /// POSTs `body` to `path` and returns the answer's body (Arrow IPC).
    ///
    /// # Errors
    /// A transport error or a status other than 200.
    pub fn post(&mut self, path: &str, body: &[u8]) -> Res<Vec<u8>> {
        use std::io::{Read, Write};
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.apache.arrow.stream\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.reader.get_mut().write_all(&req)?;
        let mut status = String::new();
        self.reader.read_line(&mut status)?;
        if !status.starts_with("HTTP/1.1 200") {
            return Err(format!("answer: {status}").into());
        }
        let len = content_length(&mut self.reader)?;
        let mut out = vec![0; len.ok_or("answer without Content-Length")?];
        self.reader.read_exact(&mut out)?;
        Ok(out)
    }
}

/// Reads an HTTP/1.1 message's header lines up to the blank line that ends them; returns its
/// Content-Length, if it has one.
///
/// # Errors
/// A transport error, a connection closed before the blank line, or a Content-Length that is
/// not a number.
fn content_length(reader: &mut impl BufRead) -> Res<Option<usize>> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err("the connection closed inside the headers".into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(len);
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = Some(v.trim().parse::<usize>()?);
        }
    }
}

/// An HTTP/1.1 server that reads each request's body (to its Content-Length) into a reused
/// buffer, throws it away and answers 200: the bytes of an upload cross the loopback as they
/// would to murr, and nothing is done with them. The load bench sends the refresh's bodies to it
/// to measure what moving the bytes alone does to murr's reads on the same cores.
#[derive(Debug)]
pub struct Sink {
    /// `http://127.0.0.1:port`.
    pub url: String,
}

impl Sink {
    /// Starts the sink on a free port; its threads live as long as the process.
    ///
    /// # Errors
    /// When it cannot bind.
    pub fn start() -> Res<Sink> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        std::thread::Builder::new()
            .name("sink".to_owned())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    std::thread::spawn(move || Sink::serve(conn));
                }
            })?;
        Ok(Sink { url })
    }

    /// Serves one keep-alive connection until the client closes it or sends what it cannot read.
    fn serve(conn: std::net::TcpStream) {
        use std::io::{Read, Write};
        let Ok(mut out) = conn.try_clone() else {
            return;
        };
        let mut reader = BufReader::with_capacity(1 << 20, conn);
        let mut sink = vec![0u8; 1 << 20];
        loop {
            // The request line (blank lines before it are skipped), then the headers.
            let mut request = String::new();
            while request.trim_end().is_empty() {
                request.clear();
                match reader.read_line(&mut request) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            let Ok(len) = content_length(&mut reader) else {
                return;
            };
            let mut len = len.unwrap_or(0);
            while len > 0 {
                let want = len.min(sink.len());
                match reader.read(&mut sink[..want]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => len -= n,
                }
            }
            if out
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .is_err()
            {
                return;
            }
        }
    }
}

/// A blocking HTTP client for the benches. Its pool drops a connection idle for 20 s, before the
/// server closes it (`server.http.header_read_timeout`, 30 s): a request sent on a connection the
/// server is closing at that moment fails with "error sending request".
/// # Errors
/// When the TLS backend cannot be set up.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(20))
        .build()
}

/// Loads `rows` rows into murr's `bench` table with one Arrow IPC upload; returns rows/s.
/// # Errors
/// When the table cannot be created or the upload fails.
#[allow(clippy::print_stderr, reason = "progress of a command-line bench")]
pub fn load_murr(http: &reqwest::blocking::Client, base: &str, rows: usize) -> Res<f64> {
    eprintln!("bench: loading murr over HTTP (Arrow IPC)");
    let mut ipc = Vec::new();
    {
        let first = batch(0, 0, 10, 42);
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut ipc, &first.schema())?;
        let mut start = 0;
        while start < rows {
            let end = (start + 100_000).min(rows);
            w.write(&batch(start, end, 10, 42))?;
            start = end;
        }
        w.finish()?;
    }
    let schema_json = serde_json::to_string(&schema(10))?;
    let resp = http
        .put(format!("{base}/api/v1/table/bench"))
        .body(schema_json)
        .send()?;
    if !resp.status().is_success() {
        return Err(format!("create table: {}", resp.text()?).into());
    }
    let t = Instant::now();
    let resp = http
        .put(format!("{base}/api/v1/table/bench/write"))
        .header("content-type", "application/vnd.apache.arrow.stream")
        .body(ipc)
        .send()?;
    if !resp.status().is_success() {
        return Err(format!("write: {}", resp.text()?).into());
    }
    let murr_load = rows as f64 / t.elapsed().as_secs_f64();
    eprintln!("bench: murr loaded at {murr_load:.0} rows/s; waiting for its background merges");
    Ok(murr_load)
}

/// The resident set size of process `pid`, from `/proc`.
pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The resident size of `pid` once it has not fallen for `quiet` (waiting at most `max`):
/// jemalloc returns freed pages over its decay time (10 s), after a plateau.
pub fn steady_rss(pid: u32, quiet: Duration, max: Duration) -> Option<u64> {
    let mut low = rss_of(pid)?;
    let mut since = Instant::now();
    let start = Instant::now();
    while since.elapsed() < quiet && start.elapsed() < max {
        std::thread::sleep(Duration::from_millis(250));
        let now = rss_of(pid)?;
        if now + (1 << 20) < low {
            since = Instant::now();
        }
        low = low.min(now);
    }
    Some(low)
}

/// A free TCP port on 127.0.0.1.
///
/// # Errors
/// When no socket can be bound.
pub fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A `murr` server binary started for a bench, and its merge log lines.
#[derive(Debug)]
pub struct MurrServer {
    /// The server process.
    pub child: Child,
    /// Its HTTP base URL.
    pub http: String,
    /// Its Flight URL.
    pub grpc: String,
    merges: std::sync::mpsc::Receiver<String>,
}

impl MurrServer {
    /// Starts `bin` over `data` on free ports.
    ///
    /// # Errors
    /// When it cannot start or exits before listening.
    #[allow(
        clippy::print_stderr,
        reason = "the server's merges show in a bench's progress"
    )]
    pub fn start(bin: &Path, data: &Path) -> Res<MurrServer> {
        let mut child = Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--grpc-host",
                "127.0.0.1",
                "--grpc-port",
                "0",
                "--data-dir",
            ])
            .arg(data)
            .env("RUST_LOG", "warn,murr_server=info,murr_table=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {}: {e} (cargo xtask bench builds it)",
                    bin.display()
                )
            })?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref() {
            let line = line?;
            if line.contains("murr listening") {
                let field = |name: &str| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(name))
                        .map(str::to_owned)
                };
                let http = field("http=").ok_or("no http address")?;
                let grpc = field("grpc=").ok_or("no grpc address")?;
                // The server's merges, warnings and errors show in the bench's progress.
                let (tx, merges) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    for line in lines.map_while(Result::ok) {
                        if line.contains("merged")
                            || line.contains("WARN")
                            || line.contains("ERROR")
                        {
                            eprintln!("murr| {line}");
                        }
                        if line.contains("merged segments") {
                            let _ = tx.send(line);
                        }
                    }
                });
                return Ok(MurrServer {
                    child,
                    http: format!("http://{http}"),
                    grpc: format!("http://{grpc}"),
                    merges,
                });
            }
        }
        Err("murr exited before listening".into())
    }

    /// Waits for the merges that follow a load of `rows` rows: until one merges them all, or
    /// none has started within `quiet`.
    pub fn settle(&self, rows: usize, quiet: Duration) {
        let full = format!("rows_in={rows} ");
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            match self.merges.recv_timeout(quiet) {
                Ok(line) if line.contains(&full) => return,
                Ok(_) if Instant::now() < deadline => {}
                _ => return,
            }
        }
    }

    /// Waits for the merge that leaves `rows` rows in one segment (`rows_out`: a refresh's
    /// merge reads more rows than it keeps), then until no merge has started for 3 s; at most
    /// `quiet` for each merge.
    pub fn settle_out(&self, rows: usize, quiet: Duration) {
        let full = format!("rows_out={rows} ");
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            match self.merges.recv_timeout(quiet) {
                Ok(line) if line.contains(&full) => break,
                Ok(_) if Instant::now() < deadline => {}
                _ => return,
            }
        }
        while self.merges.recv_timeout(Duration::from_secs(3)).is_ok() {}
    }

    /// Stops the server with SIGTERM and waits for it.
    ///
    /// # Errors
    /// When it cannot be signalled or waited for.
    pub fn stop(mut self) -> Res<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for MurrServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis server started for a bench.
#[allow(
    missing_debug_implementations,
    reason = "redis::Connection has no Debug"
)]
pub struct Redis {
    /// The server process.
    pub child: Child,
    /// A connection to it.
    pub conn: redis::Connection,
    /// Its URL, for more connections.
    pub url: String,
}

impl Redis {
    /// Starts Debian's `redis-server` on a free port, without persistence.
    ///
    /// # Errors
    /// When it is not installed or does not answer.
    pub fn start() -> Res<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            return Err("redis-server is not installed: run `apt-get install redis-server` (Debian's package), then `cargo xtask bench` again".into());
        }
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .spawn()?;
        let url = format!("redis://127.0.0.1:{port}/");
        let client = redis::Client::open(url.as_str())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match client.get_connection() {
                Ok(conn) => return Ok(Redis { child, conn, url }),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
