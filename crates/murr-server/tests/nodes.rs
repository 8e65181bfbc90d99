//! murr on object storage, node by node: real `murr` processes (a writer and replicas) over a
//! real S3 server (SeaweedFS). What a writer acknowledges is in the bucket and reaches every
//! replica; creates and drops propagate; a writer killed with SIGKILL loses nothing it
//! acknowledged and leaves nothing half-written for replicas; two writers racing on one table
//! never commit one version and lose no acknowledged write; a replica rebuilds a wiped cache,
//! keeps serving while the bucket is unreachable and says so; bad storage settings stop the
//! start with a message naming them. Loads: Parquet dumps written by pyarrow into the bucket,
//! loaded with `murr load` (replace and upsert, a prefix and a glob), a corrupt file in the
//! middle, a missing prefix, reads during a load. Segments built offline (`murr segment build`)
//! and published to the bucket or a local server's folder, racing writes; `inspect`.

#![allow(clippy::disallowed_methods, clippy::print_stderr, reason = "tests")]

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

use seaweed::Seaweed;
use serde_json::{Value, json};

struct Node {
    child: Child,
    base: String,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The YAML of a node on `s3` under `prefix`.
fn config(s3: &Seaweed, prefix: &str, role: &str, cache: &Path) -> String {
    format!(
        "server:\n  role: {role}\n  shutdown_timeout: 2\nstorage:\n  url: {url}\n  cache_dir: {cache}\n  poll_interval: 0.2\n  gc_grace: 30\n  s3: {{endpoint: \"{endpoint}\", allow_http: true}}\n",
        url = s3.url(prefix),
        cache = cache.display(),
        endpoint = s3.endpoint,
    )
}

fn murr(config_text: &str, dir: &Path, env: &[(&str, String)]) -> (Command, PathBuf) {
    let file = dir.join(format!(
        "config-{}.yaml",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    ));
    std::fs::write(&file, config_text).expect("config file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_murr"));
    cmd.arg("--config")
        .arg(&file)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--grpc-host",
            "127.0.0.1",
            "--grpc-port",
            "0",
        ])
        .env("RUST_LOG", "info")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd, file)
}

impl Node {
    fn start(s3: &Seaweed, prefix: &str, role: &str, cache: &Path) -> Node {
        Node::start_with(s3, &config(s3, prefix, role, cache), role, cache)
    }

    /// A node started with `yaml` (the keys of `s3` in its environment).
    fn start_with(s3: &Seaweed, yaml: &str, role: &str, cache: &Path) -> Node {
        let dir = cache.parent().expect("cache folder has a parent");
        let (cmd, _) = murr(yaml, dir, &s3.env());
        Node::spawn(cmd, role)
    }

    /// Starts `cmd` and waits for it to listen; its log lines are tagged with `role`.
    fn spawn(mut cmd: Command, role: &str) -> Node {
        let mut child = cmd.spawn().expect("starts murr");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let tag = format!("{role}:{}", child.id());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{tag}| {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut node = Node {
            child,
            base: String::new(),
            lines: rx,
            seen: Vec::new(),
        };
        let line = node.wait_for_line("murr listening", Duration::from_secs(60));
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http="))
            .expect("the listening line names the address");
        node.base = format!("http://{addr}");
        node
    }

    /// Waits for a log line containing `text` (also among the lines already read).
    fn wait_for_line(&mut self, text: &str, within: Duration) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(text)) {
            return l.clone();
        }
        let deadline = Instant::now() + within;
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("murr logs {text:?} within {within:?}"));
            self.seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
    }

    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("waits");
    }

    fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let status = self.child.wait().expect("waits");
        assert!(status.success(), "murr exits cleanly on SIGTERM: {status}");
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        call(&self.base, method, path, body)
    }

    fn health(&self) -> Value {
        let resp = reqwest::blocking::Client::new()
            .get(format!("{}/health", self.base))
            .header("accept", "application/json")
            .send()
            .expect("health");
        assert_eq!(resp.status().as_u16(), 200);
        serde_json::from_str(&resp.text().expect("body")).expect("JSON health")
    }
}

fn call(base: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let req = client
        .request(method.parse().expect("method"), format!("{base}{path}"))
        .header("content-type", "application/json");
    let req = match body {
        Some(b) => req.body(b.to_owned()),
        None => req,
    };
    let resp = req.send().expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

const SCHEMA: &str = r#"{"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}, "v": {"dtype": "int64"}, "w": {"dtype": "int64"}}}"#;

/// Writes version `v` of keys k0..k{n-1}: both columns hold `v`.
fn write_version(base: &str, table: &str, v: i64, n: usize) -> (u16, Value) {
    let ids: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    let body = json!({"columns": {"id": ids, "v": vec![v; n], "w": vec![v; n]}}).to_string();
    call(
        base,
        "PUT",
        &format!("/api/v1/table/{table}/write"),
        Some(&body),
    )
}

/// The (v, w) pairs of keys k0..k{n-1}.
fn read_versions(base: &str, table: &str, n: usize) -> Option<Vec<(Value, Value)>> {
    let ids: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    let body = json!({"keys": ids, "columns": ["v", "w"]}).to_string();
    let (status, v) = call(
        base,
        "POST",
        &format!("/api/v1/table/{table}/fetch"),
        Some(&body),
    );
    if status != 200 {
        return None;
    }
    let col = |c: &str| v["columns"][c].as_array().cloned().expect("column");
    Some(col("v").into_iter().zip(col("w")).collect())
}

/// Waits until `check` holds (polling), or fails with `what`.
fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn all_at(base: &str, table: &str, n: usize, v: i64) -> bool {
    read_versions(base, table, n).is_some_and(|rows| rows.iter().all(|(a, b)| *a == v && *b == v))
}

#[test]
fn a_writer_and_two_replicas() {
    let s3 = Seaweed::start("nodes");
    let tmp = tempfile::tempdir().expect("temp folder");
    let writer = Node::start(&s3, "prod", "writer", &tmp.path().join("w"));
    let r1 = Node::start(&s3, "prod", "replica", &tmp.path().join("r1"));
    let r2 = Node::start(&s3, "prod", "replica", &tmp.path().join("r2"));

    assert_eq!(writer.call("PUT", "/api/v1/table/t", Some(SCHEMA)).0, 201);
    assert_eq!(write_version(&writer.base, "t", 1, 10).0, 200);
    for r in [&r1, &r2] {
        eventually(
            "the replica serves the first write",
            Duration::from_secs(15),
            || all_at(&r.base, "t", 10, 1),
        );
    }
    assert_eq!(write_version(&writer.base, "t", 2, 10).0, 200);
    for r in [&r1, &r2] {
        eventually(
            "the replica serves the second write",
            Duration::from_secs(15),
            || all_at(&r.base, "t", 10, 2),
        );
    }

    // Replicas refuse changes, naming their role.
    let (status, body) = write_version(&r1.base, "t", 3, 1);
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("replica")),
        "{body}"
    );
    let (status, body) = r2.call("PUT", "/api/v1/table/u", Some(SCHEMA));
    assert_eq!(status, 409, "{body}");
    assert_eq!(r1.call("DELETE", "/api/v1/table/t", None).0, 409);

    let health = r1.health();
    assert_eq!(health["role"], "replica", "{health}");
    assert_eq!(health["stale"], false, "{health}");
    assert_eq!(writer.health()["role"], "writer");

    // A drop, then a create of another shape under the name, reach both replicas.
    assert_eq!(writer.call("DELETE", "/api/v1/table/t", None).0, 200);
    for r in [&r1, &r2] {
        eventually(
            "the drop reaches the replica",
            Duration::from_secs(15),
            || r.call("GET", "/api/v1/table/t/schema", None).0 == 404,
        );
    }
    let other = r#"{"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}, "v": {"dtype": "int64"}, "w": {"dtype": "int64"}, "x": {"dtype": "float64"}}}"#;
    assert_eq!(writer.call("PUT", "/api/v1/table/t", Some(other)).0, 201);
    assert_eq!(write_version(&writer.base, "t", 7, 3).0, 200);
    for r in [&r1, &r2] {
        eventually(
            "the new table reaches the replica",
            Duration::from_secs(15),
            || {
                all_at(&r.base, "t", 3, 7)
                    && r.call("GET", "/api/v1/table/t/schema", None).1["columns"]["x"].is_object()
            },
        );
        // Keys of the dropped incarnation are gone.
        let rows = read_versions(&r.base, "t", 10).expect("fetch");
        assert!(rows[3..].iter().all(|(a, _)| a.is_null()), "{rows:?}");
    }
    writer.stop();
    r1.stop();
    r2.stop();
}

/// A small deterministic generator (xorshift), seeded per run and printed, for the kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn a_writer_killed_mid_stream_loses_nothing_it_acknowledged() {
    let s3 = Seaweed::start("crash");
    let tmp = tempfile::tempdir().expect("temp folder");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    eprintln!("kill points seeded with {seed}");
    let mut rng = Rng(seed);
    let cache = tmp.path().join("w");
    let replica = Node::start(&s3, "p", "replica", &tmp.path().join("r"));
    let mut writer = Node::start(&s3, "p", "writer", &cache);
    assert_eq!(writer.call("PUT", "/api/v1/table/t", Some(SCHEMA)).0, 201);
    const KEYS: usize = 20;
    let mut acknowledged = 0i64;
    let mut next = 1i64;
    for cycle in 0..20 {
        // A stream of writes from another thread; the writer is killed at a random moment.
        let base = writer.base.clone();
        let first = next;
        let (tx, rx) = mpsc::channel::<i64>();
        let streamer = std::thread::spawn(move || {
            let mut v = first;
            loop {
                let client = reqwest::blocking::Client::new();
                let ids: Vec<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
                let body = json!({"columns": {"id": ids, "v": vec![v; KEYS], "w": vec![v; KEYS]}})
                    .to_string();
                let Ok(resp) = client
                    .put(format!("{base}/api/v1/table/t/write"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                else {
                    return;
                };
                if resp.status().as_u16() != 200 {
                    return;
                }
                if tx.send(v).is_err() {
                    return;
                }
                v += 1;
            }
        });
        std::thread::sleep(Duration::from_millis(50 + rng.next() % 700));
        writer.kill9();
        streamer.join().expect("streamer");
        let acked: Vec<i64> = rx.try_iter().collect();
        if let Some(&last) = acked.last() {
            acknowledged = last;
        }
        // The writer may have been killed after a commit it never answered: versions up to
        // `in_flight` may be there, none above.
        let in_flight = acked.last().map_or(first, |l| l + 1);
        next = in_flight + 1;
        // Every other cycle restarts with a wiped cache.
        if cycle % 2 == 1 {
            std::fs::remove_dir_all(&cache).expect("wipe the cache");
        }
        writer = Node::start(&s3, "p", "writer", &cache);
        let rows = read_versions(&writer.base, "t", KEYS).expect("the table serves after restart");
        // Every row holds the same version, or none does (nothing committed yet: all null).
        let seen = rows[0].0.clone();
        assert!(
            rows.iter().all(|(a, b)| *a == seen && *b == seen),
            "cycle {cycle}: one write is whole or absent: {rows:?}"
        );
        let v = seen.as_i64().unwrap_or(0);
        assert!(
            v >= acknowledged && v <= in_flight,
            "cycle {cycle}: version {v} after acknowledged {acknowledged} (in flight {in_flight})"
        );
        // The replica reaches the same state, and never shows a half-written one.
        eventually(
            "the replica follows the restarted writer",
            Duration::from_secs(20),
            || {
                let rows = read_versions(&replica.base, "t", KEYS);
                if let Some(rows) = &rows {
                    let w = rows[0].0.clone();
                    assert!(
                        rows.iter().all(|(a, b)| *a == w && *b == w),
                        "cycle {cycle}: the replica shows a half-written state: {rows:?}"
                    );
                }
                rows.is_some_and(|r| r[0].0 == seen)
            },
        );
    }
    assert!(acknowledged > 0, "some writes were acknowledged");
    // The manifest chain: the table's manifests in the bucket read in order, and the newest
    // lists segments that all exist (checked by a fresh replica with an empty cache).
    let fresh = Node::start(&s3, "p", "replica", &tmp.path().join("fresh"));
    let rows = read_versions(&fresh.base, "t", KEYS).expect("serves");
    assert!(
        rows.iter().all(|(a, _)| a.as_i64() >= Some(acknowledged)),
        "{rows:?}"
    );
    writer.stop();
    replica.stop();
    fresh.stop();
}

#[test]
fn two_writers_racing_on_one_table_lose_no_acknowledged_write() {
    let s3 = Seaweed::start("race");
    let tmp = tempfile::tempdir().expect("temp folder");
    let a = Node::start(&s3, "p", "writer", &tmp.path().join("a"));
    let b = Node::start(&s3, "p", "writer", &tmp.path().join("b"));
    assert_eq!(a.call("PUT", "/api/v1/table/t", Some(SCHEMA)).0, 201);
    // b learns of the table only when it restarts; until then it has no such table.
    assert_eq!(write_version(&b.base, "t", 1, 1).0, 404);
    b.stop();
    let b = Node::start(&s3, "p", "writer", &tmp.path().join("b"));
    // Both write in a loop: each write is acknowledged or refused with a clear 409.
    let run = |base: String, tag: i64| {
        std::thread::spawn(move || {
            let mut won = Vec::new();
            for i in 0..15 {
                let v = tag * 1000 + i;
                let ids: Vec<String> = vec![format!("{tag}-{i}"), "shared".to_owned()];
                let body = json!({"columns": {"id": ids, "v": [v, v], "w": [v, v]}}).to_string();
                let (status, answer) = call(&base, "PUT", "/api/v1/table/t/write", Some(&body));
                match status {
                    200 => won.push(i),
                    409 => {
                        let e = answer["error"].as_str().expect("error message").to_owned();
                        assert!(e.contains("another writer"), "{e}");
                    }
                    other => panic!("write answered {other}: {answer}"),
                }
            }
            won
        })
    };
    let ta = run(a.base.clone(), 1);
    let tb = run(b.base.clone(), 2);
    let (won_a, won_b) = (ta.join().expect("a"), tb.join().expect("b"));
    eprintln!("a committed {won_a:?}, b committed {won_b:?}");
    assert!(!won_a.is_empty() || !won_b.is_empty());
    // A replica loads the newest manifest: every acknowledged write of either writer is in it
    // (none was lost by the other's commit), and nothing that was refused.
    let r = Node::start(&s3, "p", "replica", &tmp.path().join("r"));
    for (tag, won) in [(1, &won_a), (2, &won_b)] {
        let ids: Vec<String> = (0..15).map(|i| format!("{tag}-{i}")).collect();
        let body = json!({"keys": ids, "columns": ["v"]}).to_string();
        let (status, got) = r.call("POST", "/api/v1/table/t/fetch", Some(&body));
        assert_eq!(status, 200);
        for i in 0..15 {
            let cell = &got["columns"]["v"][i];
            if won.contains(&(i as i64)) {
                assert_eq!(cell.as_i64(), Some(tag * 1000 + i as i64), "{got}");
            } else {
                assert!(cell.is_null(), "a refused write is not there: {got}");
            }
        }
    }
    a.stop();
    b.stop();
    r.stop();
}

#[test]
fn a_replica_rebuilds_a_wiped_cache_and_rides_out_an_unreachable_store() {
    let mut s3 = Seaweed::start("outage");
    let tmp = tempfile::tempdir().expect("temp folder");
    let mut writer = Node::start(&s3, "p", "writer", &tmp.path().join("w"));
    assert_eq!(writer.call("PUT", "/api/v1/table/t", Some(SCHEMA)).0, 201);
    for v in 1..=3 {
        assert_eq!(write_version(&writer.base, "t", v, 50).0, 200);
    }
    // The idle table is compacted once (2 s after the last write): from then on it stays put.
    writer.wait_for_line("merged segments", Duration::from_secs(30));
    let cache = tmp.path().join("r");
    let downloads = |node: &mut Node| -> u64 {
        let line = node.wait_for_line("local cache ready", Duration::from_secs(5));
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("downloads="))
            .and_then(|v| v.parse().ok())
            .expect("the line counts downloads")
    };
    let mut replica = Node::start(&s3, "p", "replica", &cache);
    assert!(all_at(&replica.base, "t", 50, 3), "loaded at start");
    assert!(downloads(&mut replica) > 0);
    replica.stop();
    // Restarted with its cache intact, it downloads nothing that did not change.
    let mut replica = Node::start(&s3, "p", "replica", &cache);
    assert!(all_at(&replica.base, "t", 50, 3), "served from the cache");
    assert_eq!(downloads(&mut replica), 0);
    replica.stop();
    std::fs::remove_dir_all(&cache).expect("wipe");
    let mut replica = Node::start(&s3, "p", "replica", &cache);
    assert!(all_at(&replica.base, "t", 50, 3), "rebuilt from the bucket");
    assert!(downloads(&mut replica) > 0);

    s3.pause();
    // It keeps serving what it has, and reports that it is stale.
    replica.wait_for_line("cannot read the store", Duration::from_secs(60));
    eventually(
        "/health reports the staleness",
        Duration::from_secs(30),
        || replica.health()["stale"] == true,
    );
    let health = replica.health();
    assert!(health["sync_error"].is_string(), "{health}");
    assert!(
        health["last_sync_age_seconds"].as_f64() > Some(5.0),
        "{health}"
    );
    assert!(
        all_at(&replica.base, "t", 50, 3),
        "serves during the outage"
    );

    s3.resume();
    assert_eq!(write_version(&writer.base, "t", 4, 50).0, 200);
    eventually("the replica catches up", Duration::from_secs(30), || {
        all_at(&replica.base, "t", 50, 4)
    });
    replica.wait_for_line("caught up", Duration::from_secs(5));
    assert_eq!(replica.health()["stale"], false);
    writer.stop();
    replica.stop();
}

/// Runs `murr` with `yaml` and returns its exit code and stderr.
fn start_fails(yaml: &str, env: &[(&str, String)]) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().expect("temp folder");
    let (mut cmd, _) = murr(yaml, tmp.path(), env);
    let out = cmd.stderr(Stdio::piped()).output().expect("runs murr");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_storage_settings_stop_the_start_and_name_the_setting() {
    let s3 = Seaweed::start("present");
    let tmp = tempfile::tempdir().expect("temp folder");
    let cache = tmp.path().join("c");
    let good = config(&s3, "p", "writer", &cache);
    type Case<'a> = (String, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            good.replace("s3://present/p", "ftp://present/p"),
            s3.env(),
            "storage.url",
        ),
        (
            good.replace(&s3.endpoint, "http://127.0.0.1:9"),
            s3.env(),
            "storage.s3.endpoint",
        ),
        (
            good.replace("s3://present/p", "s3://absent/p"),
            s3.env(),
            "does not exist",
        ),
        (good.clone(), Vec::new(), "no credentials"),
        (
            good.clone(),
            vec![
                ("AWS_ACCESS_KEY_ID", "wrong".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "wrong".to_owned()),
            ],
            "refused the credentials",
        ),
        (
            good.replace("  url: s3://present/p\n", ""),
            s3.env(),
            "server.role",
        ),
    ];
    for (i, (yaml, env, expected)) in cases.iter().enumerate() {
        let yaml = if *expected == "server.role" {
            yaml.replace("role: writer", "role: replica")
        } else {
            yaml.clone()
        };
        let (code, err) = start_fails(&yaml, env);
        assert!(
            code.is_some_and(|c| c != 0),
            "case {i}: exits non-zero ({code:?}): {err}"
        );
        assert!(
            err.contains(expected),
            "case {i}: names {expected:?}: {err}"
        );
    }
}

/// Writes a dump with pyarrow straight into the bucket: `files` Parquet files of `rows` rows
/// each (row groups of `group` rows) under `prefix`, keys k{start}.., both columns `v`, and a
/// `_SUCCESS` marker (unless `marker` is false); the file numbered `corrupt`, if any, is
/// garbage instead.
#[allow(clippy::too_many_arguments, reason = "a test helper")]
fn pyarrow_dump(
    s3: &Seaweed,
    prefix: &str,
    files: usize,
    rows: usize,
    group: usize,
    v: i64,
    corrupt: Option<usize>,
    marker: bool,
) {
    let script = r#"
import sys
import pyarrow as pa, pyarrow.fs as fs, pyarrow.parquet as pq
endpoint, bucket, prefix, key, secret = sys.argv[1:6]
files, rows, group, v, corrupt, marker = (int(a) for a in sys.argv[6:12])
s3 = fs.S3FileSystem(access_key=key, secret_key=secret, endpoint_override=endpoint, scheme="http", region="us-east-1")
for f in range(files):
    path = f"{bucket}/{prefix}/part-{f:05}.parquet"
    if f == corrupt:
        with s3.open_output_stream(path) as out:
            out.write(b"PAR1" + b"not a parquet file" * 100 + b"PAR1")
        continue
    ids = pa.array([f"k{f * rows + i}" for i in range(rows)])
    vs = pa.array([v] * rows, pa.int64())
    pq.write_table(pa.table({"id": ids, "v": vs, "w": vs}), path, filesystem=s3, row_group_size=group)
if marker:
    with s3.open_output_stream(f"{bucket}/{prefix}/_SUCCESS") as out:
        pass
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([
            &s3.endpoint,
            &s3.bucket,
            prefix,
            seaweed::ACCESS_KEY,
            seaweed::SECRET_KEY,
        ])
        .args([files, rows, group].map(|n| n.to_string()))
        .arg(v.to_string())
        .arg(corrupt.map_or("-1".to_owned(), |c| c.to_string()))
        .arg(if marker { "1" } else { "0" })
        .output()
        .expect("python3 runs (cargo xtask test puts the venv's first on PATH)");
    assert!(
        out.status.success(),
        "pyarrow writes the dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `murr load TABLE URL --mode MODE --server BASE`: exit code, stdout (JSON), stderr.
fn murr_load(base: &str, table: &str, url: &str, mode: &str) -> (Option<i32>, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_murr"))
        .args(["load", table, url, "--mode", mode, "--server", base])
        .env_remove("MURR_TOKEN")
        .output()
        .expect("murr load runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.code(),
        serde_json::from_str(&stdout).unwrap_or(Value::String(stdout.into_owned())),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `v` of each key, null for a key never written.
fn read_v(base: &str, table: &str, keys: &[&str]) -> Vec<Value> {
    let body = json!({"keys": keys, "columns": ["v"]}).to_string();
    let (status, v) = call(
        base,
        "POST",
        &format!("/api/v1/table/{table}/fetch"),
        Some(&body),
    );
    assert_eq!(status, 200, "{v}");
    v["columns"]["v"].as_array().cloned().expect("column v")
}

#[test]
fn parquet_dumps_load_from_the_bucket_whole_or_not_at_all() {
    let s3 = Seaweed::start("dumps");
    let tmp = tempfile::tempdir().expect("temp folder");
    let cache = tmp.path().join("data");
    // Tables on local disk; the bucket holds only the dumps.
    let yaml = format!(
        "storage:\n  cache_dir: {}\n  s3: {{endpoint: \"{}\", allow_http: true}}\n",
        cache.display(),
        s3.endpoint
    );
    let mut node = Node::start_with(&s3, &yaml, "local", &cache);
    let base = node.base.clone();
    let (status, _) = node.call("PUT", "/api/v1/table/t", Some(SCHEMA));
    assert_eq!(status, 201);
    let body = json!({"columns": {"id": ["k0", "old"], "v": [-1, -1], "w": [-1, -1]}}).to_string();
    assert_eq!(
        node.call("PUT", "/api/v1/table/t/write", Some(&body)).0,
        200
    );

    // Upsert of a prefix: 3 files of 4 row groups; the marker is skipped; the other rows stay.
    pyarrow_dump(&s3, "dumps/a", 3, 2000, 500, 1, None, true);
    let (code, status, stderr) = murr_load(&base, "t", &s3.url("dumps/a/"), "upsert");
    assert_eq!(code, Some(0), "{status}\n{stderr}");
    assert_eq!(status["state"], "done");
    assert_eq!(
        (status["files"].as_u64(), status["rows"].as_u64()),
        (Some(3), Some(6000))
    );
    assert_eq!(status["result"]["stored"], 6000);
    assert_eq!(
        read_v(&base, "t", &["k0", "k5999", "old", "k6000"]),
        [json!(1), json!(1), json!(-1), Value::Null]
    );
    node.wait_for_line("load done", Duration::from_secs(10));

    // Replace from a glob: the table holds exactly the dump's rows afterwards.
    pyarrow_dump(&s3, "dumps/b", 2, 1000, 1000, 2, None, true);
    let (code, status, stderr) =
        murr_load(&base, "t", &s3.url("dumps/b/part-*.parquet"), "replace");
    assert_eq!(code, Some(0), "{status}\n{stderr}");
    assert_eq!(status["rows"], 2000);
    assert_eq!(
        read_v(&base, "t", &["k0", "k1999", "k2000", "old"]),
        [json!(2), json!(2), Value::Null, Value::Null]
    );

    // A corrupt file in the middle: the load fails naming it, and nothing is committed.
    pyarrow_dump(&s3, "dumps/c", 3, 1000, 250, 3, Some(1), true);
    let (code, status, stderr) = murr_load(&base, "t", &s3.url("dumps/c/"), "replace");
    assert_eq!(code, Some(1), "{status}\n{stderr}");
    assert_eq!(status["state"], "failed");
    let error = status["error"].as_str().expect("an error");
    assert!(
        error.contains("s3://dumps/dumps/c/part-00001.parquet"),
        "{error}"
    );
    assert_eq!(
        read_v(&base, "t", &["k0", "k1999", "k2000"]),
        [json!(2), json!(2), Value::Null]
    );

    // A prefix with nothing under it, a file:// URL, an unknown table, an unknown load.
    let (code, status, _) = murr_load(&base, "t", &s3.url("dumps/none/"), "upsert");
    assert_eq!(code, Some(1));
    assert!(
        status["error"]
            .as_str()
            .is_some_and(|e| e.contains("no files at s3://dumps/dumps/none/")),
        "{status}"
    );
    let (code, _, stderr) = murr_load(&base, "t", "file:///etc/", "upsert");
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("400") && stderr.contains("not the server's own disk"),
        "{stderr}"
    );
    let (code, _, stderr) = murr_load(&base, "nope", &s3.url("dumps/a/"), "upsert");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("404"), "{stderr}");
    let (status, body) = node.call("GET", "/api/v1/table/t/load/123-4", None);
    assert_eq!(status, 404, "{body}");
    let (status, body) = node.call(
        "POST",
        "/api/v1/table/t/load",
        Some(r#"{"url": "s3://dumps/x", "mode": "merge"}"#),
    );
    assert_eq!(status, 400, "{body}");

    // Reads during a load see the old rows until it commits, then only the new ones.
    pyarrow_dump(&s3, "dumps/d", 8, 40_000, 10_000, 4, None, true);
    let request = json!({"url": s3.url("dumps/d/"), "mode": "replace"}).to_string();
    let (status, started) = node.call("POST", "/api/v1/table/t/load", Some(&request));
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().expect("an id").to_owned();
    // Every read sees the whole old table or the whole new one; while the load has read rows
    // and not committed, the old one.
    let old = [json!(2), Value::Null, Value::Null];
    let new = [json!(4), json!(4), json!(4)];
    let mut old_while_loading = 0;
    let done = loop {
        let values = read_v(&base, "t", &["k0", "k2000", "k319999"]);
        let (_, now) = node.call("GET", &format!("/api/v1/table/t/load/{id}"), None);
        assert!(
            values == old || values == new,
            "a read sees one table or the other: {values:?}"
        );
        match now["state"].as_str() {
            Some("running") => {
                if values == old && now["rows"].as_u64().is_some_and(|r| r > 0) {
                    old_while_loading += 1;
                }
            }
            Some("done") => break now,
            _ => panic!("the load ends well: {now}"),
        }
    };
    assert!(
        old_while_loading > 0,
        "the old rows were read while the load had read rows"
    );
    assert_eq!(
        (done["files_done"].as_u64(), done["rows"].as_u64()),
        (Some(8), Some(320_000))
    );
    assert_eq!(
        read_v(&base, "t", &["k0", "k2000", "k319999"]),
        [json!(4), json!(4), json!(4)]
    );
    node.stop();
}

#[test]
fn a_watched_prefix_reloads_the_table_when_a_new_dump_is_complete() {
    let s3 = Seaweed::start("watched");
    let tmp = tempfile::tempdir().expect("temp folder");
    let cache = tmp.path().join("data");
    let yaml = format!(
        "storage:\n  cache_dir: {}\n  s3: {{endpoint: \"{}\", allow_http: true}}\nload:\n  watch:\n    - {{table: t, url: \"{}\", interval: 0.2}}\n",
        cache.display(),
        s3.endpoint,
        s3.url("daily/")
    );
    let mut node = Node::start_with(&s3, &yaml, "local", &cache);
    let base = node.base.clone();
    assert_eq!(node.call("PUT", "/api/v1/table/t", Some(SCHEMA)).0, 201);
    // The first day's dump, with its marker: loaded.
    pyarrow_dump(&s3, "daily/2026-11-27", 2, 100, 100, 1, None, true);
    eventually("the first dump is loaded", Duration::from_secs(30), || {
        read_v(&base, "t", &["k0", "k199"]) == [json!(1), json!(1)]
    });
    // The next day's files without their marker yet: nothing changes...
    pyarrow_dump(&s3, "daily/2026-11-28", 1, 50, 50, 2, None, false);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(read_v(&base, "t", &["k0", "k199"]), [json!(1), json!(1)]);
    // ...until the marker is written: then the new day replaces the table.
    pyarrow_dump(&s3, "daily/2026-11-28", 1, 50, 50, 2, None, true);
    eventually(
        "the second dump replaces the first",
        Duration::from_secs(30),
        || read_v(&base, "t", &["k0", "k49", "k199"]) == [json!(2), json!(2), Value::Null],
    );
    // A restart remembers the dump loaded: no load of it again.
    node.wait_for_line(
        "dump remembered table=t url=s3://watched/daily/2026-11-28/",
        Duration::from_secs(10),
    );
    node.stop();
    let mut node = Node::start_with(&s3, &yaml, "local", &cache);
    node.wait_for_line("watching for dumps", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !node
            .seen
            .iter()
            .chain(node.lines.try_iter().collect::<Vec<_>>().iter())
            .any(|l| l.contains("load started")),
        "the dump loaded before the restart is not loaded again"
    );
    assert_eq!(read_v(&node.base, "t", &["k0"]), [json!(2)]);
}

#[test]
fn a_replica_refuses_to_watch_for_dumps() {
    let s3 = Seaweed::start("watch-replica");
    let tmp = tempfile::tempdir().expect("temp folder");
    let yaml = format!(
        "{}load:\n  watch:\n    - {{table: t, url: \"{}\"}}\n",
        config(&s3, "p", "replica", &tmp.path().join("cache")),
        s3.url("daily/")
    );
    let (code, log) = start_fails(&yaml, &s3.env());
    assert_ne!(code, Some(0));
    assert!(
        log.contains("load.watch: a replica takes no writes"),
        "{log}"
    );
}

/// Writes `files` Parquet files with pyarrow into `dir`: file `f` holds keys
/// k{offset + f * step}.. (`rows` of them), both columns `v` = `v` + f.
fn parquet_files(dir: &Path, files: usize, rows: usize, step: usize, offset: usize, v: i64) {
    let script = r#"
import sys
import pyarrow as pa, pyarrow.parquet as pq
folder = sys.argv[1]
files, rows, step, offset, v = (int(a) for a in sys.argv[2:7])
for f in range(files):
    ids = pa.array([f"k{offset + f * step + i}" for i in range(rows)])
    vs = pa.array([v + f] * rows, pa.int32())
    pq.write_table(pa.table({"id": ids, "v": vs, "w": vs}), f"{folder}/part-{f:05}.parquet", row_group_size=max(rows // 3, 1))
"#;
    std::fs::create_dir_all(dir).expect("folder");
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .args([files, rows, step, offset].map(|n| n.to_string()))
        .arg(v.to_string())
        .output()
        .expect("python3 runs (cargo xtask test puts the venv's first on PATH)");
    assert!(
        out.status.success(),
        "pyarrow writes the files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `murr segment ARGS` with `env`: exit code, stdout, stderr.
fn murr_segment(args: &[&str], env: &[(&str, String)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_murr"));
    cmd.arg("segment").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("murr segment runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("murr segment {args:?}: {stderr}");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// `murr segment build` of the Parquet files in `parquet` into `out` (must succeed).
fn build_segments(dir: &Path, parquet: &Path, out: &Path) -> Value {
    let schema = dir.join("schema.json");
    std::fs::write(
        &schema,
        r#"{"columns": {"id": {"dtype": "utf8", "nullable": false}, "v": {"dtype": "int64"}, "w": {"dtype": "int64"}}}"#,
    )
    .expect("schema file");
    let (code, stdout, stderr) = murr_segment(
        &[
            "build",
            "--schema",
            schema.to_str().expect("utf8"),
            "--key",
            "id",
            parquet.to_str().expect("utf8"),
            out.to_str().expect("utf8"),
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{stderr}");
    serde_json::from_str(&stdout).expect("a JSON summary")
}

#[test]
fn segments_built_offline_publish_to_a_bucket_and_serve_on_the_writer_and_a_replica() {
    let s3 = Seaweed::start("publish");
    let tmp = tempfile::tempdir().expect("temp folder");
    let w = Node::start(&s3, "p", "writer", &tmp.path().join("w"));
    let r = Node::start(&s3, "p", "replica", &tmp.path().join("r"));
    assert_eq!(w.call("PUT", "/api/v1/table/t", Some(SCHEMA)).0, 201);
    assert_eq!(write_version(&w.base, "t", 1, 10).0, 200);
    // Three files of 3000 rows; the second overlaps the first by 1000 keys and wins them.
    parquet_files(&tmp.path().join("dump"), 3, 3000, 2000, 0, 10);
    let summary = build_segments(
        tmp.path(),
        &tmp.path().join("dump"),
        &tmp.path().join("built"),
    );
    assert_eq!(
        (summary["files"].as_u64(), summary["rows"].as_u64()),
        (Some(3), Some(9000))
    );
    let mut env = s3.env();
    env.push(("MURR_STORAGE__S3__ENDPOINT", s3.endpoint.clone()));
    env.push(("MURR_STORAGE__S3__ALLOW_HTTP", "true".to_owned()));
    let built = tmp.path().join("built");
    let built = built.to_str().expect("utf8");
    let target = s3.url("p");
    let (code, stdout, stderr) = murr_segment(&["publish", built, &target, "--table", "t"], &env);
    assert_eq!(code, Some(0), "{stderr}");
    let stats: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        (stats["segments"].as_u64(), stats["rows"].as_u64()),
        (Some(3), Some(9000))
    );
    // Both nodes serve the published rows, after the writer's own.
    let keys = ["k0", "k1999", "k2000", "k2999", "k3000", "k6999", "k7000"];
    let want = [
        json!(10),
        json!(10),
        json!(11),
        json!(11),
        json!(11),
        json!(12),
        Value::Null,
    ];
    for node in [&w, &r] {
        eventually("the published rows serve", Duration::from_secs(20), || {
            read_v(&node.base, "t", &keys) == want
        });
    }
    // A damaged segment is refused by name; nothing changes.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).expect("folder");
    let mut bytes = std::fs::read(tmp.path().join("built/00001-0000.murr")).expect("built");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(bad.join("00001-0000.murr"), bytes).expect("writes");
    let (code, _, stderr) = murr_segment(
        &[
            "publish",
            bad.to_str().expect("utf8"),
            &target,
            "--table",
            "t",
            "--replace",
        ],
        &env,
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("00001-0000.murr") && stderr.contains("nothing was committed"),
        "{stderr}"
    );
    // An unknown table, and a store that is not there, are usage errors.
    let (code, _, stderr) = murr_segment(&["publish", built, &target, "--table", "nope"], &env);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
    // Replace, racing the writer's writes: both land, and the replaced rows are gone.
    parquet_files(&tmp.path().join("dump2"), 2, 500, 500, 100_000, 50);
    build_segments(
        tmp.path(),
        &tmp.path().join("dump2"),
        &tmp.path().join("built2"),
    );
    let writes = {
        let base = w.base.clone();
        std::thread::spawn(move || {
            for i in 0..20 {
                let body =
                    json!({"columns": {"id": [format!("w{i}")], "v": [i], "w": [i]}}).to_string();
                let (status, answer) = call(&base, "PUT", "/api/v1/table/t/write", Some(&body));
                assert_eq!(status, 200, "{answer}");
            }
        })
    };
    let built2 = tmp.path().join("built2");
    let (code, _, stderr) = murr_segment(
        &[
            "publish",
            built2.to_str().expect("utf8"),
            &target,
            "--table",
            "t",
            "--replace",
        ],
        &env,
    );
    assert_eq!(code, Some(0), "{stderr}");
    writes.join().expect("writes");
    for node in [&w, &r] {
        eventually("the replace serves", Duration::from_secs(20), || {
            read_v(&node.base, "t", &["k0", "k100000", "k100999"])
                == [Value::Null, json!(50), json!(51)]
        });
    }
    // Every acknowledged write is there, on both nodes: those before the replace's commit were
    // replaced, so the writer sees what the replica sees.
    let ids: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let on_w = read_v(&w.base, "t", &ids);
    eventually("the replica agrees", Duration::from_secs(20), || {
        read_v(&r.base, "t", &ids) == on_w
    });
    assert_eq!(
        on_w.last(),
        Some(&json!(19)),
        "the last write is after the replace: {on_w:?}"
    );
    w.stop();
    r.stop();
}

#[test]
fn segments_published_into_a_running_local_server_s_folder_race_its_writes_and_lose_nothing() {
    let tmp = tempfile::tempdir().expect("temp folder");
    let data = tmp.path().join("data");
    let yaml = format!(
        "storage:\n  cache_dir: {}\n  poll_interval: 0.2\n",
        data.display()
    );
    let node = Node::spawn(murr(&yaml, tmp.path(), &[]).0, "local");
    assert_eq!(node.call("PUT", "/api/v1/table/t", Some(SCHEMA)).0, 201);
    // Ten builds of 200 rows each, published while the server takes ten writes.
    for b in 0..10 {
        parquet_files(
            &tmp.path().join(format!("dump{b}")),
            1,
            200,
            0,
            b * 1000,
            100,
        );
        build_segments(
            tmp.path(),
            &tmp.path().join(format!("dump{b}")),
            &tmp.path().join(format!("built{b}")),
        );
    }
    let writes = {
        let base = node.base.clone();
        std::thread::spawn(move || {
            for i in 0..10 {
                let body =
                    json!({"columns": {"id": [format!("w{i}")], "v": [i], "w": [i]}}).to_string();
                let (status, answer) = call(&base, "PUT", "/api/v1/table/t/write", Some(&body));
                assert_eq!(status, 200, "{answer}");
            }
        })
    };
    let folder = data.to_str().expect("utf8").to_owned();
    for b in 0..10 {
        let built = tmp.path().join(format!("built{b}"));
        let (code, _, stderr) = murr_segment(
            &[
                "publish",
                built.to_str().expect("utf8"),
                &folder,
                "--table",
                "t",
            ],
            &[],
        );
        assert_eq!(code, Some(0), "{stderr}");
    }
    writes.join().expect("writes");
    let mut keys: Vec<String> = (0..10).map(|i| format!("w{i}")).collect();
    keys.extend((0..10).flat_map(|b| [format!("k{}", b * 1000), format!("k{}", b * 1000 + 199)]));
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut want: Vec<Value> = (0..10).map(|i| json!(i)).collect();
    want.extend(std::iter::repeat_n(json!(100), 20));
    eventually(
        "every write and every publish serves",
        Duration::from_secs(20),
        || read_v(&node.base, "t", &keys) == want,
    );
    // And after a restart, from the folder alone.
    node.stop();
    let node = Node::spawn(murr(&yaml, tmp.path(), &[]).0, "local");
    assert_eq!(read_v(&node.base, "t", &keys), want);
    // A folder that is not a murr data folder is refused.
    let (code, _, stderr) = murr_segment(
        &[
            "publish",
            tmp.path().join("built0").to_str().expect("utf8"),
            tmp.path().join("dump0").to_str().expect("utf8"),
            "--table",
            "t",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a murr data folder"), "{stderr}");
    node.stop();
}

#[test]
fn inspect_prints_a_segment_of_release_0_1_and_refuses_a_damaged_one() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/data-0.1/tables/items/seg-18ebc8188dc66492-0000000001.murr");
    let (code, stdout, stderr) = murr_segment(&["inspect", fixture.to_str().expect("utf8")], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    for expected in [
        "segment version 2",
        "checksums   ok",
        "rows        3",
        "column \"id\"",
        "tag ",
        "utf8",
        "id=k1  score=0.5  n=1  tag=a  flag=true",
        "id=k2  score=null  n=2  tag=null  flag=false",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in {stdout}");
    }
    let tmp = tempfile::tempdir().expect("temp folder");
    let mut bytes = std::fs::read(&fixture).expect("fixture");
    bytes[70] ^= 0x01;
    let damaged = tmp.path().join("damaged.murr");
    std::fs::write(&damaged, bytes).expect("writes");
    let (code, stdout, stderr) = murr_segment(&["inspect", damaged.to_str().expect("utf8")], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.contains("checksums   FAILED"), "{stdout}");
    assert!(stderr.contains("damaged.murr"), "{stderr}");
    let (code, _, stderr) = murr_segment(&["inspect", "/nonexistent.murr"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
}
