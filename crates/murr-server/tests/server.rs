//! The `murr` binary: start-up on an ephemeral port, restart persistence, a corrupt table that
//! answers 503 while others serve, configuration from file and environment, graceful shutdown,
//! and interoperability with pyarrow (a client we did not write).

#![allow(clippy::disallowed_methods, clippy::print_stderr, reason = "tests")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

mod common;
use common::Murr;

#[path = "../../../tests/src/tls.rs"]
#[allow(unreachable_pub, reason = "shared with murr-tests, where it is public")]
mod tls;

const SCHEMA: &str = r#"{"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}, "score": {"dtype": "float32"}, "n": {"dtype": "int64", "nullable": false}}}"#;

fn seed(m: &Murr, table: &str) {
    assert_eq!(
        m.call("PUT", &format!("/api/v1/table/{table}"), Some(SCHEMA))
            .0,
        201
    );
    let body =
        json!({"columns": {"id": ["a", "b"], "score": [0.5, null], "n": [1, 2]}}).to_string();
    assert_eq!(
        m.call("PUT", &format!("/api/v1/table/{table}/write"), Some(&body))
            .0,
        200
    );
}

fn fetch(m: &Murr, table: &str) -> (u16, Value) {
    m.call(
        "POST",
        &format!("/api/v1/table/{table}/fetch"),
        Some(r#"{"keys": ["b", "a", "x"], "columns": ["n", "score"]}"#),
    )
}

#[test]
fn restart_keeps_data_and_shutdown_is_graceful() {
    let data = tempfile::tempdir().expect("temp folder");
    let m = Murr::start(data.path(), &[], &[]);
    assert_eq!(
        m.call("GET", "/health", None),
        (200, Value::String("OK".into()))
    );
    seed(&m, "t");
    let lines = m.stop();
    assert!(
        lines.iter().any(|l| l.contains("murr stopped")),
        "{lines:?}"
    );
    let m = Murr::start(data.path(), &[], &[]);
    assert_eq!(
        fetch(&m, "t"),
        (
            200,
            json!({"columns": {"n": [2, 1, null], "score": [null, 0.5, null]}})
        )
    );
    m.stop();
}

/// Clients that never finish (half a request, an HTTP/2 peer that never answers the server's
/// GOAWAY) cannot hold a shutdown: after `server.shutdown_timeout` their connections are closed.
#[test]
fn stuck_clients_cannot_hold_a_shutdown() {
    use std::io::Write;
    let data = tempfile::tempdir().expect("temp folder");
    let m = Murr::start(data.path(), &[], &[("MURR_SERVER__SHUTDOWN_TIMEOUT", "1")]);
    let mut half =
        std::net::TcpStream::connect(m.base.trim_start_matches("http://")).expect("connects");
    half.write_all(
        b"POST /api/v1/table/t/fetch HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
    )
    .expect("writes");
    let mut h2 = std::net::TcpStream::connect(&m.grpc).expect("connects");
    // The HTTP/2 preface and an empty SETTINGS frame, then silence.
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .expect("writes");
    std::thread::sleep(Duration::from_millis(200));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(m.stop()));
    let lines = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("murr stops within the shutdown timeout");
    assert!(
        lines.iter().any(|l| l.contains("shutdown timeout")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("murr stopped")),
        "{lines:?}"
    );
    drop((half, h2));
}

#[test]
fn a_corrupt_table_answers_503_and_the_others_serve() {
    let data = tempfile::tempdir().expect("temp folder");
    let m = Murr::start(data.path(), &[], &[]);
    seed(&m, "good");
    seed(&m, "bad");
    m.stop();
    let folder = data.path().join("tables/bad");
    let seg = std::fs::read_dir(&folder)
        .expect("table folder")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .expect("name")
                .to_string_lossy()
                .starts_with("seg-")
        })
        .expect("a segment");
    let mut bytes = std::fs::read(&seg).expect("reads");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&seg, bytes).expect("writes");
    let m = Murr::start(data.path(), &[], &[]);
    assert_eq!(fetch(&m, "good").0, 200);
    let (status, body) = fetch(&m, "bad");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().expect("error").contains("checksum"),
        "{body}"
    );
    assert_eq!(m.call("GET", "/api/v1/table/bad/schema", None).0, 503);
    assert_eq!(m.call("GET", "/health", None).0, 200);
    let lines = m.stop();
    drop(lines);
}

#[test]
fn config_file_env_and_bad_config() {
    let tmp = tempfile::tempdir().expect("temp folder");
    let cfg = tmp.path().join("murr.yaml");
    std::fs::write(&cfg, "server:\n  http:\n    max_payload_size: 100\n").expect("writes");
    // The data folder is murr's alone: the config file lives beside it.
    let data = tmp.path().join("data");
    let m = Murr::start(
        &data,
        &["--config", cfg.to_str().expect("utf8")],
        &[("MURR_SERVER__GRPC__PORT", "18081")],
    );
    let (status, body) = m.call("PUT", "/api/v1/table/t", Some(&" ".repeat(200)));
    assert_eq!(status, 413, "{body}");
    m.stop();
    let out = Command::new(env!("CARGO_BIN_EXE_murr"))
        .args(["--data-dir"])
        .arg(&data)
        .env("MURR_SERVER__HTTP__PROT", "1")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("prot"), "{err}");
}

/// Waits for a log line containing `what`.
fn wait_line(m: &Murr, what: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let line = m
            .lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_else(|_| panic!("murr logs {what:?} within 20 s"));
        if line.contains(what) {
            return line;
        }
    }
}

const READER: &str = "reader-0123456789abcdef";
const PIPELINE: &str = "pipeline-0123456789abcdef";
const OPS: &str = "ops-0123456789abcdef";
const OPS_NEW: &str = "ops-rotated-0123456789abcdef";

/// Tokens from the three sources guard every route by scope over HTTP and Flight (pyarrow with
/// headers); errors are JSON, 401 or 403, and never hold a token; SIGHUP reads the token file
/// again, and a configuration that no longer loads keeps the tokens in use; bad token settings
/// stop the start naming the token, not its secret.
#[test]
fn tokens_guard_every_route_by_scope_and_reload_on_sighup() {
    let tmp = tempfile::tempdir().expect("temp folder");
    let secret = tmp.path().join("ops.token");
    std::fs::write(&secret, format!("{OPS}\n")).expect("writes");
    let pipeline_sha = {
        let mut hash = Command::new(env!("CARGO_BIN_EXE_murr"))
            .arg("hash-token")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("runs murr hash-token");
        std::io::Write::write_all(&mut hash.stdin.take().expect("stdin"), PIPELINE.as_bytes())
            .expect("writes the token");
        let out = hash.wait_with_output().expect("hash-token ends");
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned()
    };
    assert_eq!(pipeline_sha.len(), 64, "{pipeline_sha}");
    let cfg = tmp.path().join("murr.yaml");
    let config = format!(
        "server:\n  auth:\n    tokens:\n      - {{name: inference, token: \"{READER}\", scopes: [read]}}\n      - {{name: pipeline, token_sha256: \"{pipeline_sha}\", scopes: [read, write]}}\n      - {{name: ops, token_file: \"{}\", scopes: [read, write, admin]}}\n",
        secret.display()
    );
    std::fs::write(&cfg, &config).expect("writes");
    let m = Murr::start(
        &tmp.path().join("data"),
        &["--config", cfg.to_str().expect("utf8")],
        &[],
    );
    // Open routes; /metrics needs read.
    assert_eq!(m.call("GET", "/health", None).0, 200);
    assert_eq!(m.call("GET", "/openapi.json", None).0, 200);
    assert_eq!(m.call("GET", "/metrics", None).0, 401);
    assert_eq!(m.call_as(Some(READER), "GET", "/metrics", None).0, 200);
    // No token, a bad one, a malformed header: 401 with a JSON error and a challenge.
    let raw = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/table", m.base))
        .send()
        .expect("request");
    assert_eq!(raw.status().as_u16(), 401);
    assert_eq!(
        raw.headers()["www-authenticate"].to_str().expect("ascii"),
        "Bearer realm=\"murr\""
    );
    let (status, body) = m.call_as(Some("not-a-token"), "GET", "/api/v1/table", None);
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| !e.contains("not-a-token")),
        "{body}"
    );
    // Each route needs its scope: admin creates, write writes, read fetches.
    let create = |token| m.call_as(token, "PUT", "/api/v1/table/t", Some(SCHEMA));
    assert_eq!(create(None).0, 401);
    let (status, body) = create(Some(READER));
    assert_eq!(status, 403, "{body}");
    let error = body["error"].as_str().expect("a JSON error");
    assert!(
        error.contains("inference") && error.contains("admin") && !error.contains(READER),
        "{error}"
    );
    assert_eq!(create(Some(PIPELINE)).0, 403);
    assert_eq!(create(Some(OPS)).0, 201);
    let rows =
        json!({"columns": {"id": ["a", "b"], "score": [0.5, null], "n": [1, 2]}}).to_string();
    let write = |token| {
        m.call_as(token, "PUT", "/api/v1/table/t/write", Some(&rows))
            .0
    };
    assert_eq!(write(Some(READER)), 403);
    assert_eq!(write(Some(PIPELINE)), 200);
    let fetch_body = r#"{"keys": ["b", "a"], "columns": ["n"]}"#;
    let fetch = |token| m.call_as(token, "POST", "/api/v1/table/t/fetch", Some(fetch_body));
    assert_eq!(fetch(None).0, 401);
    let (status, body) = fetch(Some(READER));
    assert_eq!((status, body), (200, json!({"columns": {"n": [2, 1]}})));
    for (method, path, body) in [
        ("GET", "/api/v1/table", None),
        ("GET", "/api/v1/table/t/schema", None),
    ] {
        assert_eq!(m.call_as(Some(READER), method, path, body).0, 200, "{path}");
        assert_eq!(m.call_as(None, method, path, body).0, 401, "{path}");
    }
    for (method, path, body) in [
        ("PATCH", "/api/v1/table/t", Some(r#"{"ttl": "7d"}"#)),
        ("POST", "/api/v1/table/t/compact", None),
    ] {
        assert_eq!(
            m.call_as(Some(PIPELINE), method, path, body).0,
            403,
            "{path}"
        );
        assert_eq!(m.call_as(Some(OPS), method, path, body).0, 200, "{path}");
    }
    // Every route asks for the scope `ROUTE_SCOPES` (and so `/openapi.json`) gives it, no more
    // and no less: 401 without a token, 403 with a token that lacks the scope; the others open.
    for (method, path) in murr_http::ROUTES {
        let (method, path) = (method.to_uppercase(), path.replace("{name}", "t"));
        let scope = murr_http::ROUTE_SCOPES
            .iter()
            .find(|(m, p, _)| m.eq_ignore_ascii_case(&method) && p.replace("{name}", "t") == path)
            .map(|(_, _, scope)| *scope);
        let (status, body) = m.call(&method, &path, None);
        let Some(scope) = scope else {
            assert!(
                status != 401 && status != 403,
                "{method} {path} is open: {status} {body}"
            );
            continue;
        };
        assert_eq!(status, 401, "{method} {path} needs a token: {body}");
        // A token without the scope (every token reads), and one that holds it.
        let (lacking, holding) = match scope {
            murr_api::auth::Scope::Read => (None, READER),
            murr_api::auth::Scope::Write => (Some(READER), PIPELINE),
            murr_api::auth::Scope::Admin => (Some(PIPELINE), OPS),
        };
        if let Some(token) = lacking {
            let (status, body) = m.call_as(Some(token), &method, &path, None);
            assert_eq!(status, 403, "{method} {path} needs {scope:?}: {body}");
        }
        // The one that holds it passes (on a table that does not exist: nothing changes).
        let absent = path.replace("/table/t", "/table/absent");
        let (status, body) = m.call_as(Some(holding), &method, &absent, None);
        assert!(
            status != 401 && status != 403,
            "{method} {absent} takes a {scope:?} token: {status} {body}"
        );
    }
    if has_pyarrow("the Flight half") {
        let script = r#"
import json, sys
import pyarrow.flight as fl
grpc, reader, ops = sys.argv[1], sys.argv[2], sys.argv[3]
client = fl.connect(grpc)
def opts(token):
    return fl.FlightCallOptions(headers=[(b"authorization", b"Bearer " + token.encode())])
out = {}
ticket = fl.Ticket(json.dumps({"table": "t", "keys": ["a"], "columns": ["n"]}).encode())
def outcome(call):
    try:
        call()
        return "ok"
    except fl.FlightUnauthenticatedError:
        return "unauthenticated"
    except fl.FlightUnauthorizedError:
        return "denied"
out["get_none"] = outcome(lambda: client.do_get(ticket).read_all())
out["get_reader"] = client.do_get(ticket, options=opts(reader)).read_all().to_pydict()
drop = fl.Action("drop_table", json.dumps({"table": "t"}).encode())
out["drop_reader"] = outcome(lambda: list(client.do_action(drop, options=opts(reader))))
out["list_reader"] = outcome(lambda: list(client.list_flights(options=opts(reader))))
out["list_bad"] = outcome(lambda: list(client.list_flights(options=opts("nope"))))
print(json.dumps(out))
"#;
        let grpc = format!("grpc://{}", m.grpc);
        let got = run_python_with(script, &[&grpc, READER, OPS]);
        assert_eq!(
            got,
            json!({"get_none": "unauthenticated", "get_reader": {"n": [1]}, "drop_reader": "denied", "list_reader": "ok", "list_bad": "unauthenticated"})
        );
    }
    // SIGHUP: the rotated token file is read again; the old token stops working.
    std::fs::write(&secret, OPS_NEW).expect("rotates");
    let pid = m.child.id().to_string();
    let hup = || {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .expect("kill")
                .success()
        );
    };
    hup();
    wait_line(&m, "SIGHUP: tokens reloaded");
    assert_eq!(
        m.call_as(Some(OPS), "POST", "/api/v1/table/t/compact", None)
            .0,
        401
    );
    assert_eq!(
        m.call_as(Some(OPS_NEW), "POST", "/api/v1/table/t/compact", None)
            .0,
        200
    );
    // A configuration that no longer loads: the tokens in use stay.
    std::fs::remove_file(&secret).expect("removes");
    hup();
    let line = wait_line(&m, "SIGHUP: the configuration does not load");
    assert!(line.contains("token_file"), "{line}");
    assert_eq!(
        m.call_as(Some(OPS_NEW), "POST", "/api/v1/table/t/compact", None)
            .0,
        200
    );
    let lines = m.stop();
    for secret in [READER, PIPELINE, OPS, OPS_NEW] {
        assert!(
            !lines.iter().any(|l| l.contains(secret)),
            "a log line holds a token"
        );
    }
    // Bad settings stop the start, naming the token but not its secret.
    for (tokens, want) in [
        (
            "[{name: a, token: short, scopes: [read]}]",
            "shorter than 16",
        ),
        ("[{name: a, scopes: [read]}]", "exactly one of"),
        (
            &format!("[{{name: a, token: \"{READER}\", token_file: /x, scopes: [read]}}]") as &str,
            "exactly one of",
        ),
        (
            &format!("[{{name: a, token: \"{READER}\", scopes: []}}]"),
            "no scopes",
        ),
        (
            &format!("[{{name: a, token: \"{READER}\", scopes: [rread]}}]"),
            "rread",
        ),
        (
            "[{name: a, token_sha256: abc, scopes: [read]}]",
            "64 hex digits",
        ),
        (
            "[{name: a, token_file: /nonexistent/murr.token, scopes: [read]}]",
            "/nonexistent/murr.token",
        ),
    ] {
        std::fs::write(&cfg, format!("server:\n  auth:\n    tokens: {tokens}\n")).expect("writes");
        let out = Command::new(env!("CARGO_BIN_EXE_murr"))
            .args([
                "--config",
                cfg.to_str().expect("utf8"),
                "--port",
                "0",
                "--no-grpc",
                "--data-dir",
            ])
            .arg(tmp.path().join("data"))
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{tokens}: {err}");
        assert!(err.contains(want), "{tokens}: wants {want:?}: {err}");
        assert!(!err.contains(READER), "{err}");
    }
}

/// The value of the sample `line_start` (a metric name with its labels, as rendered) in a
/// Prometheus text scrape.
fn sample(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {line_start} in:\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

/// `GET /metrics` counts HTTP requests by route and status with latency histograms, Flight calls
/// by method and status, keys fetched and found, rows written, table sizes and merges, memory
/// and open connections; with `open_metrics` it needs no token while the API does.
#[test]
fn metrics_count_requests_tables_and_memory() {
    let tmp = tempfile::tempdir().expect("temp folder");
    let cfg = tmp.path().join("murr.yaml");
    std::fs::write(
        &cfg,
        format!("server:\n  auth:\n    open_metrics: true\n    tokens:\n      - {{name: ops, token: \"{OPS}\", scopes: [read, write, admin]}}\n"),
    )
    .expect("writes");
    let m = Murr::start(
        &tmp.path().join("data"),
        &["--config", cfg.to_str().expect("utf8")],
        &[],
    );
    assert_eq!(m.call("GET", "/api/v1/table", None).0, 401);
    let call = |method, path, body| m.call_as(Some(OPS), method, path, body);
    assert_eq!(call("PUT", "/api/v1/table/t", Some(SCHEMA)).0, 201);
    let rows =
        json!({"columns": {"id": ["a", "b"], "score": [0.5, null], "n": [1, 2]}}).to_string();
    assert_eq!(call("PUT", "/api/v1/table/t/write", Some(&rows)).0, 200);
    let fetch = r#"{"keys": ["b", "a", "x"], "columns": ["n"]}"#;
    for _ in 0..5 {
        assert_eq!(call("POST", "/api/v1/table/t/fetch", Some(fetch)).0, 200);
    }
    assert_eq!(call("POST", "/api/v1/table/nope/fetch", Some(fetch)).0, 404);
    assert_eq!(call("POST", "/api/v1/table/t/compact", None).0, 200);
    if has_pyarrow("the Flight half") {
        let script = r#"
import json, sys
import pyarrow.flight as fl
client = fl.connect(sys.argv[1])
opts = fl.FlightCallOptions(headers=[(b"authorization", b"Bearer " + sys.argv[2].encode())])
t = fl.Ticket(json.dumps({"table": "t", "keys": ["a"], "columns": ["n"]}).encode())
client.do_get(t, options=opts).read_all()
try:
    client.do_get(fl.Ticket(b'{"table": "nope", "keys": ["a"], "columns": ["n"]}'), options=opts).read_all()
except Exception:  # NOT_FOUND comes as a KeyError-like ArrowException
    pass
print("{}")
"#;
        run_python_with(script, &[&format!("grpc://{}", m.grpc), OPS]);
    }
    let resp = reqwest::blocking::get(format!("{}/metrics", m.base)).expect("scrape");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().expect("text");
    let fetch_route = r#"route="/api/v1/table/{name}/fetch""#;
    assert_eq!(
        sample(
            &text,
            &format!(r#"murr_http_requests_total{{method="POST",{fetch_route},status="200"}}"#)
        ),
        5.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"murr_http_requests_total{{method="POST",{fetch_route},status="404"}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"murr_http_requests_total{method="GET",route="/api/v1/table",status="401"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("murr_http_request_duration_seconds_count{{{fetch_route}}}")
        ),
        6.0
    );
    let t = r#"{table="t"}"#;
    // Five HTTP fetches of three keys (two found) and, with pyarrow, one Flight fetch of one.
    let flight = f64::from(u8::from(has_pyarrow("the Flight half")));
    assert_eq!(
        sample(&text, &format!("murr_fetches_total{t}")),
        5.0 + flight
    );
    assert_eq!(
        sample(&text, &format!("murr_fetch_keys_total{t}")),
        15.0 + flight
    );
    assert_eq!(
        sample(&text, &format!("murr_fetch_keys_found_total{t}")),
        10.0 + flight
    );
    assert_eq!(sample(&text, &format!("murr_writes_total{t}")), 1.0);
    assert_eq!(sample(&text, &format!("murr_rows_written_total{t}")), 2.0);
    assert_eq!(sample(&text, &format!("murr_table_rows{t}")), 2.0);
    assert_eq!(sample(&text, &format!("murr_table_segments{t}")), 1.0);
    assert!(sample(&text, &format!("murr_table_bytes{t}")) > 0.0);
    assert_eq!(sample(&text, r#"murr_tables{status="ready"}"#), 1.0);
    assert!(sample(&text, "murr_process_resident_memory_bytes") > 1e6);
    assert!(sample(&text, "murr_http_open_connections") >= 1.0);
    if flight > 0.0 {
        assert_eq!(
            sample(
                &text,
                r#"murr_flight_calls_total{method="do_get",code="OK"}"#
            ),
            1.0
        );
        assert_eq!(
            sample(
                &text,
                r#"murr_flight_calls_total{method="do_get",code="NOT_FOUND"}"#
            ),
            1.0
        );
    }
    assert!(!text.contains(OPS), "a scrape holds no token");
    m.stop();
}

/// A tmpfs of `mb` MiB mounted at `at` for as long as it lives (tests run as root in CI).
struct SmallDisk {
    at: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(at: &Path, mb: u32) -> SmallDisk {
        std::fs::create_dir_all(at).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(at)
            .status()
            .expect("runs mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root): {status}"
        );
        SmallDisk { at: at.to_owned() }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// Fills the file system of `dir` with a file; returns its path.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("creates the filler");
    let block = vec![7u8; 64 << 10];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    path
}

/// On a full disk a write fails with 507 naming the cause, while what was written stays readable
/// and the server keeps serving; once space is freed, writes succeed again, and a restart finds
/// every acknowledged write.
#[test]
fn a_full_disk_refuses_writes_with_507_and_recovers() {
    let tmp = tempfile::tempdir().expect("temp folder");
    let disk = SmallDisk::mount(&tmp.path().join("disk"), 16);
    let data = disk.at.join("data");
    let m = Murr::start(&data, &[], &[]);
    seed(&m, "t");
    let filler = fill(&disk.at);
    let rows = |base: i64| {
        let ids: Vec<String> = (0..2000).map(|i| format!("k{i}")).collect();
        let n: Vec<i64> = (0..2000).map(|i| base + i).collect();
        json!({"columns": {"id": ids, "n": n}}).to_string()
    };
    for _ in 0..3 {
        let (status, body) = m.call("PUT", "/api/v1/table/t/write", Some(&rows(100)));
        assert_eq!(status, 507, "{body}");
        let error = body["error"].as_str().expect("a JSON error");
        assert!(error.contains("space"), "{error}");
        assert!(!error.contains(&*tmp.path().to_string_lossy()), "{error}");
    }
    // A Parquet upload is spooled to the same disk first: 507 too.
    let resp = reqwest::blocking::Client::new()
        .put(format!("{}/api/v1/table/t/write", m.base))
        .header("content-type", "application/vnd.apache.parquet")
        .body(vec![0u8; 4 << 20])
        .send()
        .expect("request");
    assert_eq!(resp.status().as_u16(), 507);
    // A table created on a full disk: 507 when its manifest does not fit, and it then does
    // not exist.
    let (status, body) = m.call("PUT", "/api/v1/table/other", Some(SCHEMA));
    assert!(status == 201 || status == 507, "{status}: {body}");
    let listed = m.call("GET", "/api/v1/table", None).1;
    assert_eq!(listed.get("other").is_some(), status == 201, "{listed}");
    // What was written reads as before.
    assert_eq!(
        fetch(&m, "t"),
        (
            200,
            json!({"columns": {"n": [2, 1, null], "score": [null, 0.5, null]}})
        )
    );
    std::fs::remove_file(&filler).expect("frees the space");
    let (status, body) = m.call("PUT", "/api/v1/table/t/write", Some(&rows(100)));
    assert_eq!(status, 200, "{body}");
    let got = m.call(
        "POST",
        "/api/v1/table/t/fetch",
        Some(r#"{"keys": ["k7", "a"], "columns": ["n"]}"#),
    );
    assert_eq!(got, (200, json!({"columns": {"n": [107, 1]}})));
    m.stop();
    let m = Murr::start(&data, &[], &[]);
    let got = m.call(
        "POST",
        "/api/v1/table/t/fetch",
        Some(r#"{"keys": ["k1999", "b"], "columns": ["n"]}"#),
    );
    assert_eq!(got, (200, json!({"columns": {"n": [2099, 2]}})));
    m.stop();
    drop(disk);
}

/// The binary serves HTTPS with `server.tls`, and bad TLS settings stop the start
/// with a message naming the setting.
#[test]
fn tls_settings_are_checked_and_served() {
    let tmp = tempfile::tempdir().expect("temp folder");
    let certs = tls::private_ca(tmp.path());
    let other = tls::private_ca(&{
        let d = tmp.path().join("other");
        std::fs::create_dir_all(&d).expect("folder");
        d
    });
    let (cert, key) = (
        certs.cert.display().to_string(),
        certs.key.display().to_string(),
    );
    let m = Murr::start(
        &tmp.path().join("data"),
        &[],
        &[
            ("MURR_SERVER__TLS__CERT", &cert),
            ("MURR_SERVER__TLS__KEY", &key),
        ],
    );
    let https = m
        .base
        .replacen("http://0.0.0.0", "https://127.0.0.1", 1)
        .replacen("http://127.0.0.1", "https://127.0.0.1", 1);
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&certs.ca_pem).expect("CA"))
        .build()
        .expect("client");
    let resp = client.get(format!("{https}/health")).send().expect("HTTPS");
    assert_eq!(resp.status().as_u16(), 200);
    m.stop();
    for (env, want) in [
        (
            vec![("MURR_SERVER__TLS__CERT", cert.clone())],
            "give both cert and key",
        ),
        (
            vec![
                ("MURR_SERVER__TLS__CERT", "/nonexistent/cert.pem".to_owned()),
                ("MURR_SERVER__TLS__KEY", key.clone()),
            ],
            "server.tls.cert: cannot read /nonexistent/cert.pem",
        ),
        (
            vec![
                ("MURR_SERVER__TLS__CERT", key.clone()),
                ("MURR_SERVER__TLS__KEY", key),
            ],
            "holds no PEM certificate",
        ),
        (
            vec![
                ("MURR_SERVER__TLS__CERT", cert),
                ("MURR_SERVER__TLS__KEY", other.key.display().to_string()),
            ],
            "does not fit the certificate",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_murr"))
            .args(["--port", "0", "--no-grpc", "--data-dir"])
            .arg(tmp.path().join("data"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{want}: {err}");
        assert!(err.contains(want), "wants {want:?}: {err}");
    }
}

/// Flight's listener is bounded too: a connection that sends nothing within
/// `server.grpc.handshake_timeout` is closed, and past `server.grpc.max_connections` a new one
/// waits for a slot (and is then served).
#[test]
fn flight_drops_silent_connections_and_bounds_their_number() {
    let tmp = tempfile::tempdir().expect("temp folder");
    let m = Murr::start(
        &tmp.path().join("data"),
        &[],
        &[
            ("MURR_SERVER__GRPC__HANDSHAKE_TIMEOUT", "3"),
            ("MURR_SERVER__GRPC__MAX_CONNECTIONS", "2"),
        ],
    );
    let connect = || std::net::TcpStream::connect(&m.grpc).expect("connects");
    let mut silent = connect();
    let started = std::time::Instant::now();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(10));
    assert!(closed, "a connection that sends nothing is closed");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    if has_pyarrow("the Flight half") {
        let idle: Vec<_> = (0..2).map(|_| connect()).collect();
        let script = r#"
import json, sys, time
import pyarrow.flight as fl
client = fl.connect(sys.argv[1])
started = time.monotonic()
flights = list(client.list_flights())
print(json.dumps({"seconds": time.monotonic() - started, "flights": len(flights)}))
"#;
        let got = run_python_with(script, &[&format!("grpc://{}", m.grpc)]);
        assert_eq!(got["flights"], 0);
        let waited = got["seconds"].as_f64().expect("seconds");
        assert!(
            waited > 0.3,
            "the third connection waited for a slot: {waited} s"
        );
        drop(idle);
        wait_line(&m, "Flight is at its connection limit");
    }
    m.stop();
}

/// Reads what the server sends on `tcp` until it closes the connection or `within` passes;
/// returns the text and whether it closed.
fn read_until_closed(tcp: &mut std::net::TcpStream, within: Duration) -> (String, bool) {
    use std::io::Read;
    tcp.set_read_timeout(Some(within)).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true);
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// Slow clients are dropped: headers that do not arrive within `header_read_timeout`, a body that
/// stalls for `body_timeout` (408); past `max_connections`, new connections wait for a slot;
/// Python's urllib, which sends its whole body before it reads, reads the 413 of a body over the
/// limit (declared or chunked) instead of a broken pipe.
#[test]
fn slow_clients_are_dropped_and_a_413_can_be_read() {
    use std::io::Write;
    let tmp = tempfile::tempdir().expect("temp folder");
    let m = Murr::start(
        &tmp.path().join("data"),
        &["--max-payload-size", "1000"],
        &[
            ("MURR_SERVER__HTTP__HEADER_READ_TIMEOUT", "1"),
            ("MURR_SERVER__HTTP__BODY_TIMEOUT", "1"),
            ("MURR_SERVER__HTTP__MAX_CONNECTIONS", "4"),
        ],
    );
    seed(&m, "t");
    let addr = m.base.trim_start_matches("http://").to_owned();
    let connect = || std::net::TcpStream::connect(&addr).expect("connects");
    // Half a request's headers, then nothing: dropped after the header timeout.
    let mut slow = connect();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: murr\r\n")
        .expect("writes");
    let started = std::time::Instant::now();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(10));
    assert!(closed, "the server closes a connection whose headers stall");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A body that stalls: 408 naming the setting, then the connection closes.
    let mut stalled = connect();
    stalled
        .write_all(b"PUT /api/v1/table/t/write HTTP/1.1\r\nHost: murr\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"columns\"")
        .expect("writes");
    let (answer, closed) = read_until_closed(&mut stalled, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("server.http.body_timeout"), "{answer}");
    assert!(closed);
    // Four idle connections fill the slots; a fifth request waits until the header timeout
    // frees them, and is then answered.
    let idle: Vec<_> = (0..4).map(|_| connect()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    assert_eq!(m.call("GET", "/health", None).0, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "a fifth connection waits for a slot: {:?}",
        started.elapsed()
    );
    drop(idle);
    wait_line(&m, "at the connection limit");
    // urllib sends the whole body, then reads: it must get the 413 and its JSON.
    let script = r#"
import json, sys, urllib.request, urllib.error, http.client
base = sys.argv[1]
out = {}
body = json.dumps({"columns": {"id": ["x"] * 200000, "n": [1] * 200000}}).encode()
req = urllib.request.Request(base + "/api/v1/table/t/write", data=body, method="PUT", headers={"Content-Type": "application/json"})
try:
    urllib.request.urlopen(req)
    out["declared"] = "accepted"
except urllib.error.HTTPError as e:
    out["declared"] = [e.code, json.loads(e.read())["error"]]
host = base[len("http://"):]
conn = http.client.HTTPConnection(host)
conn.request("PUT", "/api/v1/table/t/write", body=(body[i:i + 65536] for i in range(0, len(body), 65536)), headers={"Content-Type": "application/json"}, encode_chunked=True)
r = conn.getresponse()
out["chunked"] = [r.status, json.loads(r.read())["error"]]
print(json.dumps(out))
"#;
    let got = run_python(script, &m.base);
    for how in ["declared", "chunked"] {
        assert_eq!(got[how][0], 413, "{how}: {got}");
        assert!(
            got[how][1]
                .as_str()
                .is_some_and(|e| e.contains("server.http.max_payload_size")),
            "{how}: {got}"
        );
    }
    // The table is as it was: nothing of the refused writes landed.
    assert_eq!(fetch(&m, "t").1["columns"]["n"], json!([2, 1, null]));
    m.stop();
}

/// pyarrow reads our Arrow answers and writes Arrow IPC and Parquet that we accept; pyarrow.flight
/// reads a do_get answer and lists flights.
#[test]
fn pyarrow_interoperates() {
    if !has_pyarrow("this test") {
        return;
    }
    let data = tempfile::tempdir().expect("temp folder");
    let m = Murr::start(data.path(), &[], &[]);
    seed(&m, "t");
    let script = r#"
import io, json, sys, urllib.request
import pyarrow as pa, pyarrow.ipc as ipc, pyarrow.parquet as pq
base = sys.argv[1]
def call(method, path, body, ctype, accept=None):
    req = urllib.request.Request(base + path, data=body, method=method, headers={"Content-Type": ctype})
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req) as r:
        return r.read()
ARROW = "application/vnd.apache.arrow.stream"
t = pa.table({"id": ["p", "q"], "n": pa.array([10, 20], pa.int32()), "score": pa.array([1.5, None], pa.float32())})
sink = io.BytesIO()
with ipc.new_stream(sink, t.schema) as w:
    for b in t.to_batches(max_chunksize=1):
        w.write_batch(b)
call("PUT", "/api/v1/table/t/write", sink.getvalue(), ARROW)
pbuf = io.BytesIO()
pq.write_table(pa.table({"id": ["r"], "n": [30]}), pbuf)
call("PUT", "/api/v1/table/t/write", pbuf.getvalue(), "application/vnd.apache.parquet")
body = call("POST", "/api/v1/table/t/fetch", json.dumps({"keys": ["a", "q", "r", "zz"], "columns": ["n", "score", "id"]}).encode(), "application/json", ARROW)
table = ipc.open_stream(body).read_all()
print(json.dumps({"columns": table.to_pydict(), "types": [str(f.type) for f in table.schema]}))
"#;
    let got = run_python(script, &m.base);
    assert_eq!(got["types"], json!(["int64", "float", "string"]));
    assert_eq!(
        got["columns"],
        json!({"n": [1, 20, 30, null], "score": [0.5, null, null, null], "id": ["a", "q", "r", null]})
    );
    m.stop();
}

/// The values of `field` in the RAM tier's sweep log lines, oldest first.
fn sweep_values<'a>(lines: &'a [String], field: &'a str) -> impl Iterator<Item = u64> + 'a {
    lines
        .iter()
        .filter(|l| l.contains("RAM tier sweep"))
        .filter_map(move |l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(field)?.strip_prefix('='))
                .and_then(|v| v.parse::<u64>().ok())
        })
}

/// With `storage.memory_limit` below the data's size, the server keeps its resident segment
/// pages under the budget (it evicts) and every answer stays right.
#[test]
fn a_memory_limit_evicts_and_answers_stay_right() {
    let data = tempfile::tempdir().expect("temp folder");
    let m = Murr::start(
        data.path(),
        &[],
        &[
            ("MURR_STORAGE__MEMORY_LIMIT", "256KiB"),
            ("RUST_LOG", "info,murr_directory=debug"),
        ],
    );
    assert_eq!(m.call("PUT", "/api/v1/table/t", Some(SCHEMA)).0, 201);
    const ROWS: usize = 40_000;
    let ids: Vec<String> = (0..ROWS).map(|i| format!("key-{i:08}")).collect();
    let n: Vec<i64> = (0..ROWS as i64).map(|i| i * 3).collect();
    let score: Vec<f64> = (0..ROWS).map(|i| i as f64 / 4.0).collect();
    let body = json!({"columns": {"id": ids, "score": score, "n": n}}).to_string();
    assert_eq!(m.call("PUT", "/api/v1/table/t/write", Some(&body)).0, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    let mut round = 0usize;
    while std::time::Instant::now() < deadline {
        // Read every key, a different order each round: pages come and go.
        let keys: Vec<String> = (0..ROWS)
            .map(|i| format!("key-{:08}", (i * 7919 + round) % ROWS))
            .collect();
        let (status, got) = m.call(
            "POST",
            "/api/v1/table/t/fetch",
            Some(&json!({"keys": keys, "columns": ["n"]}).to_string()),
        );
        assert_eq!(status, 200);
        let col = got["columns"]["n"].as_array().expect("column");
        for (i, v) in col.iter().enumerate() {
            let row = ((i * 7919 + round) % ROWS) as i64;
            assert_eq!(v.as_i64(), Some(row * 3), "round {round}, key {i}");
        }
        round += 1;
    }
    let lines = m.stop();
    let evicted = sweep_values(&lines, "evicted").max().unwrap_or(0);
    assert!(evicted > 0, "pages were evicted: {lines:?}");
}

/// Embeddings live outside the row block, in list sections: under a memory limit their pages
/// are evicted like rows (only the parts every lookup reads stay pinned), and answers stay right.
#[test]
fn a_memory_limit_evicts_embeddings_too() {
    let data = tempfile::tempdir().expect("temp folder");
    let m = Murr::start(
        data.path(),
        &[],
        &[
            ("MURR_STORAGE__MEMORY_LIMIT", "256KiB"),
            ("RUST_LOG", "info,murr_directory=debug"),
        ],
    );
    let schema = r#"{"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}, "v": {"dtype": "fixed_size_list<float32, 64>"}}}"#;
    assert_eq!(m.call("PUT", "/api/v1/table/e", Some(schema)).0, 201);
    // 16000 embeddings of 256 bytes: 4 MB of items, 16 times the budget.
    const ROWS: usize = 16_000;
    let ids: Vec<String> = (0..ROWS).map(|i| format!("key-{i:08}")).collect();
    let v: Vec<Vec<f32>> = (0..ROWS).map(|i| vec![i as f32; 64]).collect();
    let body = json!({"columns": {"id": ids, "v": v}}).to_string();
    assert_eq!(m.call("PUT", "/api/v1/table/e/write", Some(&body)).0, 200);
    for round in 0..3usize {
        let keys: Vec<String> = (0..ROWS)
            .step_by(7)
            .map(|i| format!("key-{:08}", (i * 7919 + round) % ROWS))
            .collect();
        let (status, got) = m.call(
            "POST",
            "/api/v1/table/e/fetch",
            Some(&json!({"keys": keys, "columns": ["v"]}).to_string()),
        );
        assert_eq!(status, 200);
        for (k, v) in keys
            .iter()
            .zip(got["columns"]["v"].as_array().expect("column"))
        {
            let row: f64 = k["key-".len()..].parse().expect("number");
            assert_eq!(v[0].as_f64(), Some(row), "{k}");
            assert_eq!(v.as_array().expect("a list").len(), 64);
        }
    }
    // With no reads, a few sweeps bring the resident pages down to the budget (plus the
    // pinned key index and footer); pinned embeddings would keep 4 MB resident.
    std::thread::sleep(Duration::from_secs(3));
    let lines = m.stop();
    let resident = sweep_values(&lines, "resident").last().expect("sweeps ran");
    assert!(
        resident < 1 << 20,
        "{resident} bytes resident after the reads stopped: {lines:?}"
    );
}

/// Polls `fetch` of `keys` x `columns` until `want`, for at most `secs` seconds.
fn wait_for(m: &Murr, table: &str, body: &str, want: &Value, secs: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let got = m.call("POST", &format!("/api/v1/table/{table}/fetch"), Some(body));
        if got == (200, want.clone()) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{got:?}, waiting for {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn columns_added_and_a_ttl_survive_restarts_and_rows_expire() {
    let data = tempfile::tempdir().expect("temp folder");
    let env = [("MURR_STORAGE__EXPIRY_INTERVAL", "0.2")];
    let m = Murr::start(data.path(), &[], &env);
    seed(&m, "t");
    // Bad changes: 400 or 409 naming the problem, and nothing changes.
    for (body, status, says) in [
        (
            r#"{"columns": {"score": {"dtype": "float32"}}}"#,
            409,
            "\"score\"",
        ),
        (r#"{"columns": {"n": {"dtype": "utf8"}}}"#, 409, "type"),
        (
            r#"{"columns": {"x": {"dtype": "int64", "nullable": false}}}"#,
            400,
            "nullable",
        ),
        (r#"{"columns": {"x": {"dtype": "int65"}}}"#, 400, "int65"),
        (
            r#"{"columns": {"a b": {"dtype": "int64"}}}"#,
            400,
            "\"a b\"",
        ),
        (
            r#"{"columns": {"x": {"dtype": "int64"}}, "nope": 1}"#,
            400,
            "nope",
        ),
        (r#"{"ttl": "soon"}"#, 400, "soon"),
        (r#"{"ttl": 0}"#, 400, "ttl"),
        (r#"{}"#, 400, "ttl"),
        (r#"[1]"#, 400, "invalid"),
        ("not json", 400, "invalid"),
    ] {
        let (got, answer) = m.call("PATCH", "/api/v1/table/t", Some(body));
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| e.contains(says)),
            "{body}: {answer}"
        );
    }
    assert_eq!(
        m.call("PATCH", "/api/v1/table/nope", Some(r#"{"ttl": 5}"#))
            .0,
        404
    );
    assert_eq!(
        m.call("GET", "/api/v1/table/t/schema", None).1["columns"]
            .as_object()
            .map(|c| c.len()),
        Some(3)
    );
    let (status, schema) = m.call(
        "PATCH",
        "/api/v1/table/t",
        Some(r#"{"columns": {"extra": {"dtype": "float64"}}, "ttl": "1h"}"#),
    );
    assert_eq!(status, 200, "{schema}");
    assert_eq!(schema["ttl"], 3600);
    assert_eq!(
        schema["columns"]["extra"],
        json!({"dtype": "float64", "nullable": true})
    );
    let body = json!({"columns": {"id": ["c"], "n": [3], "extra": [2.5]}}).to_string();
    assert_eq!(m.call("PUT", "/api/v1/table/t/write", Some(&body)).0, 200);
    let ask = r#"{"keys": ["a", "c"], "columns": ["n", "extra"]}"#;
    let want = json!({"columns": {"n": [1, 3], "extra": [null, 2.5]}});
    wait_for(&m, "t", ask, &want, 1);
    m.stop();
    let m = Murr::start(data.path(), &[], &env);
    assert_eq!(m.call("GET", "/api/v1/table/t/schema", None).1, schema);
    wait_for(&m, "t", ask, &want, 1);
    // A ttl of 3 s now applies to rows written before it: they go, within 3 s.
    let (status, _) = m.call("PATCH", "/api/v1/table/t", Some(r#"{"ttl": 3}"#));
    assert_eq!(status, 200);
    let gone = json!({"columns": {"n": [null, null], "extra": [null, null]}});
    wait_for(&m, "t", ask, &gone, 5);
    // A row written again lives again, for its own ttl.
    let body = json!({"columns": {"id": ["a"], "n": [7]}}).to_string();
    assert_eq!(m.call("PUT", "/api/v1/table/t/write", Some(&body)).0, 200);
    let (_, live) = m.call("POST", "/api/v1/table/t/fetch", Some(ask));
    assert_eq!(
        live,
        json!({"columns": {"n": [7, null], "extra": [null, null]}})
    );
    wait_for(&m, "t", ask, &gone, 5);
    // The merge thread dropped the expired rows from storage.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let segments = || {
        std::fs::read_dir(data.path().join("tables/t"))
            .expect("table folder")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".murr"))
            })
            .count()
    };
    while segments() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} segments left",
            segments()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = m.stop();
    assert!(
        lines.iter().any(|l| l.contains("dropped expired rows")),
        "{lines:?}"
    );
}

/// Generation-2 schemas and fetches (compound and integer keys, sparse answers, coercion,
/// compaction) beside generation-1 tables on one server, over HTTP with JSON bodies and, with
/// pyarrow as the peer, Arrow bodies; and across a restart.
#[test]
fn both_api_generations_side_by_side() {
    let data = tempfile::tempdir().expect("temp folder");
    let m = Murr::start(data.path(), &[], &[]);
    let ratings = r#"{"columns": {"user": {"dtype": "utf8", "nullable": false, "key": true}, "item": {"dtype": "int64", "nullable": false, "key": true}, "score": {"dtype": "float32", "strict": false}}}"#;
    let (status, schema) = m.call("PUT", "/api/v1/table/r", Some(ratings));
    assert_eq!(status, 201, "{schema}");
    let canonical = json!({"columns": {
        "user": {"dtype": "utf8", "nullable": false, "key": true, "strict": true},
        "item": {"dtype": "int64", "nullable": false, "key": true, "strict": true},
        "score": {"dtype": "float32", "nullable": true, "key": false, "strict": false}}});
    assert_eq!(schema, canonical);
    let ints = r#"{"columns": {"id": {"dtype": "int32", "nullable": false, "key": true}, "flag": {"dtype": "bool"}}}"#;
    assert_eq!(m.call("PUT", "/api/v1/table/i", Some(ints)).0, 201);
    seed(&m, "g1");
    // Bad generation-2 schemas, each a 400 naming the problem.
    for (bad, says) in [
        (r#"{"columns": {"x": {"dtype": "float32"}}}"#, "no key"),
        (
            r#"{"columns": {"k": {"dtype": "utf8", "key": true}}}"#,
            "nullable",
        ),
        (
            r#"{"columns": {"k": {"dtype": "float64", "nullable": false, "key": true}}}"#,
            "utf8 or an integer",
        ),
        (
            r#"{"columns": {"k": {"dtype": "utf8", "nullable": false, "key": true}, "_idx": {"dtype": "uint32"}}}"#,
            "reserved",
        ),
        (
            r#"{"key": "k", "columns": {"k": {"dtype": "utf8", "nullable": false, "key": true}}}"#,
            "generation-2",
        ),
        (
            r#"{"columns": {"k": {"dtype": "utf8", "nullable": false, "key": true, "primary": true}}}"#,
            "unknown field",
        ),
    ] {
        let (status, body) = m.call("PUT", "/api/v1/table/bad", Some(bad));
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains(says)),
            "{bad}: {body}"
        );
    }
    // Writes match columns by name; a float64 goes into the float32 column that is not strict.
    let w = json!({"columns": {"user": ["u1", "u1", "u2"], "item": [1, 2, 1], "score": [0.1, 0.2, 0.3]}});
    assert_eq!(
        m.call("PUT", "/api/v1/table/r/write", Some(&w.to_string()))
            .0,
        200
    );
    let fetch_r = |m: &Murr, keys: Value, columns: Value| {
        m.call(
            "POST",
            "/api/v1/table/r/fetch",
            Some(&json!({"keys": keys, "columns": columns}).to_string()),
        )
    };
    // Sparse: misses have no row, duplicates two, in request order.
    let (status, got) = fetch_r(
        &m,
        json!({"user": ["u2", "u1", "u2", "u1"], "item": [1, 2, 2, 2]}),
        json!(["score"]),
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        got,
        json!({"columns": {"_idx": [0, 1, 3], "score": [0.3, 0.2, 0.2]}})
    );
    let (_, none) = fetch_r(&m, json!({"user": ["zz"], "item": [1]}), json!(["score"]));
    assert_eq!(none, json!({"columns": {"_idx": [], "score": []}}));
    for (keys, columns, says) in [
        (
            json!({"user": ["u1"], "item": [1]}),
            json!(["item"]),
            "key column",
        ),
        (
            json!({"user": ["u1"], "item": [1]}),
            json!(["_idx"]),
            "_idx",
        ),
        (
            json!({"user": ["u1"]}),
            json!(["score"]),
            "lacks key column \"item\"",
        ),
        (
            json!({"user": ["u1"], "item": [1], "shop": [1]}),
            json!(["score"]),
            "\"shop\" is not a key column",
        ),
        (
            json!({"user": ["u1"], "item": ["1"]}),
            json!(["score"]),
            "value 0",
        ),
        (
            json!({"user": ["u1"], "item": [1]}),
            json!(["nope"]),
            "nope",
        ),
    ] {
        let (status, body) = fetch_r(&m, keys.clone(), columns);
        assert_eq!(status, 400, "{keys}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains(says)),
            "{keys}: {body}"
        );
    }
    // A generation-1 request cannot name a compound key.
    let (status, body) = m.call(
        "POST",
        "/api/v1/table/r/fetch",
        Some(r#"{"keys": ["u1"], "columns": ["score"]}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("one list per key column")),
        "{body}"
    );
    // Integer keys: JSON numbers are read as the key's type, and must fit it.
    let w = json!({"columns": {"id": [1, 2, -3], "flag": [true, false, null]}});
    assert_eq!(
        m.call("PUT", "/api/v1/table/i/write", Some(&w.to_string()))
            .0,
        200
    );
    let (_, got) = m.call(
        "POST",
        "/api/v1/table/i/fetch",
        Some(r#"{"keys": {"id": [2, 1, 5, -3]}, "columns": ["flag"]}"#),
    );
    assert_eq!(
        got,
        json!({"columns": {"_idx": [0, 1, 3], "flag": [false, true, null]}})
    );
    let (status, body) = m.call(
        "POST",
        "/api/v1/table/i/fetch",
        Some(r#"{"keys": {"id": [3000000000]}, "columns": ["flag"]}"#),
    );
    assert_eq!(status, 400, "{body}");
    // Across generations: keys by column on a generation-1 table give a sparse answer...
    let (_, got) = m.call(
        "POST",
        "/api/v1/table/g1/fetch",
        Some(r#"{"keys": {"id": ["b", "x", "a"]}, "columns": ["n"]}"#),
    );
    assert_eq!(got, json!({"columns": {"_idx": [0, 2], "n": [2, 1]}}));
    // ...and keys as strings on a generation-2 table with one utf8 key a dense one.
    let single = r#"{"columns": {"id": {"dtype": "utf8", "nullable": false, "key": true}, "v": {"dtype": "int64"}}}"#;
    assert_eq!(m.call("PUT", "/api/v1/table/u", Some(single)).0, 201);
    let w = json!({"columns": {"id": ["a"], "v": [7]}});
    assert_eq!(
        m.call("PUT", "/api/v1/table/u/write", Some(&w.to_string()))
            .0,
        200
    );
    let (_, got) = m.call(
        "POST",
        "/api/v1/table/u/fetch",
        Some(r#"{"keys": ["zz", "a"], "columns": ["v", "id"]}"#),
    );
    assert_eq!(got, json!({"columns": {"v": [null, 7], "id": [null, "a"]}}));
    // Each table lists in its own generation's form.
    let (_, list) = m.call("GET", "/api/v1/table", None);
    assert_eq!(list["r"], canonical);
    assert_eq!(list["g1"]["key"], "id");
    assert!(list["r"].get("key").is_none());
    // Compaction: answers when done; the data reads the same.
    let w = json!({"columns": {"user": ["u3"], "item": [i64::MIN], "score": [1.0]}});
    assert_eq!(
        m.call("PUT", "/api/v1/table/r/write", Some(&w.to_string()))
            .0,
        200
    );
    let (status, body) = m.call("POST", "/api/v1/table/r/compact", None);
    assert_eq!(
        (status, body),
        (200, json!({"compacted": "r", "segments": 1}))
    );
    assert_eq!(m.call("POST", "/api/v1/table/nope/compact", None).0, 404);
    let asked = json!({"user": ["u3", "u1", "u2"], "item": [i64::MIN, 1, 1]});
    let want = json!({"columns": {"_idx": [0, 1, 2], "score": [1.0, 0.1, 0.3]}});
    assert_eq!(fetch_r(&m, asked.clone(), json!(["score"])).1, want);
    // pyarrow as the peer: an Arrow fetch request (key columns, `columns` in the schema
    // metadata; int32 items widen to the int64 key), and the sparse Arrow answer.
    pyarrow_keyed_fetch(&m);
    m.stop();
    // Both generations' tables come back as they were.
    let m = Murr::start(data.path(), &[], &[]);
    let (_, list) = m.call("GET", "/api/v1/table", None);
    assert_eq!(list["r"], canonical);
    assert_eq!(list["g1"]["key"], "id");
    assert_eq!(fetch_r(&m, asked, json!(["score"])).1, want);
    let (_, got) = fetch(&m, "g1");
    assert_eq!(
        got,
        json!({"columns": {"n": [2, 1, null], "score": [null, 0.5, null]}})
    );
    m.stop();
}

/// Runs the Python `script` with `base` as its argument; the JSON it prints.
fn run_python(script: &str, base: &str) -> Value {
    run_python_with(script, &[base])
}

/// Runs the Python `script` with `args`; the JSON it prints.
fn run_python_with(script: &str, args: &[&str]) -> Value {
    let out = Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .expect("runs python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

/// Whether `python3` has pyarrow; CI must (.ci/run installs it), elsewhere `what` is skipped.
fn has_pyarrow(what: &str) -> bool {
    let has = Command::new("python3")
        .args(["-c", "import pyarrow"])
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install pyarrow (.ci/run does)"
        );
        eprintln!("pyarrow is not installed: `pip install pyarrow` to run {what}");
    }
    has
}

fn pyarrow_keyed_fetch(m: &Murr) {
    if !has_pyarrow("the Arrow half") {
        return;
    }
    let script = r#"
import io, json, sys, urllib.request, urllib.error
import pyarrow as pa, pyarrow.ipc as ipc
base = sys.argv[1]
ARROW = "application/vnd.apache.arrow.stream"
def request(table, keys, columns):
    keys = keys.replace_schema_metadata({b"columns": json.dumps(columns).encode()})
    sink = io.BytesIO()
    with ipc.new_stream(sink, keys.schema) as w:
        for b in keys.to_batches(max_chunksize=2):
            w.write_batch(b)
    req = urllib.request.Request(base + f"/api/v1/table/{table}/fetch", data=sink.getvalue(), method="POST",
                                 headers={"Content-Type": ARROW, "Accept": ARROW})
    try:
        with urllib.request.urlopen(req) as r:
            return 200, ipc.open_stream(r.read()).read_all()
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
status, t = request("r", pa.table({"user": ["u2", "zz", "u1"], "item": pa.array([1, 1, 1], pa.int32())}), ["score"])
assert status == 200, t
out = {"names": t.column_names, "types": [str(f.type) for f in t.schema], "rows": t.to_pydict()}
status, err = request("i", pa.table({"id": [1, 2]}), ["flag"])
out["int64_for_int32"] = [status, err["error"]]
print(json.dumps(out))
"#;
    let got = run_python(script, &m.base);
    assert_eq!(got["names"], json!(["_idx", "score"]));
    assert_eq!(got["types"], json!(["uint32", "float"]));
    assert_eq!(got["rows"]["_idx"], json!([0, 2]));
    let scores = got["rows"]["score"].as_array().expect("scores");
    assert!((scores[0].as_f64().expect("f") - 0.3).abs() < 1e-6, "{got}");
    assert_eq!(got["int64_for_int32"][0], 400);
    assert!(
        got["int64_for_int32"][1]
            .as_str()
            .is_some_and(|e| e.contains("never narrowed")),
        "{got}"
    );
}

/// The CPUs of a `Cpus_allowed_list` line in a `/proc/.../status` file (`0-3,8,10-11`).
fn allowed_cpus(status: &str) -> Vec<usize> {
    let list = std::fs::read_to_string(status)
        .expect("reads the status")
        .lines()
        .find_map(|l| {
            l.strip_prefix("Cpus_allowed_list:")
                .map(|v| v.trim().to_owned())
        })
        .expect("the status lists the allowed CPUs");
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().expect("a CPU"), b.parse().expect("a CPU"));
        cpus.extend(a..=b);
    }
    cpus
}

/// `server.background_cpus`: the connections that start with a write (here every `PUT`, each on
/// a connection of its own) are served by threads pinned to the last CPUs, where the write's
/// decode and build run too, and so does the merge thread; the threads that serve fetches may
/// use every CPU. `0` pins nothing. Either way, writes and fetches answer as before.
#[test]
fn writes_and_merges_run_on_the_background_cpus() {
    // The server inherits this process's CPUs.
    let allowed = allowed_cpus("/proc/self/status");
    let half = allowed.len() / 2;
    for (setting, kept) in [
        (None, allowed[allowed.len() - half..].to_vec()),
        (Some("0"), Vec::new()),
    ] {
        let tmp = tempfile::tempdir().expect("temp folder");
        let mut env = vec![("MURR_SERVER__HTTP__HEADER_READ_TIMEOUT", "1")];
        env.extend(setting.map(|s| ("MURR_SERVER__BACKGROUND_CPUS", s)));
        let m = Murr::start(&tmp.path().join("data"), &[], &env);
        seed(&m, "t");
        // A request line sent in pieces is waited for; a connection that sends nothing is
        // closed after the header timeout, as hyper would close it.
        let addr = m.base.trim_start_matches("http://").to_owned();
        let mut pieces = std::net::TcpStream::connect(&addr).expect("connects");
        let put = format!(
            "PUT /api/v1/table/u HTTP/1.1\r\nHost: murr\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{SCHEMA}",
            SCHEMA.len()
        );
        std::io::Write::write_all(&mut pieces, &put.as_bytes()[..7]).expect("writes");
        std::thread::sleep(Duration::from_millis(50));
        std::io::Write::write_all(&mut pieces, &put.as_bytes()[7..]).expect("writes");
        let (answer, closed) = read_until_closed(&mut pieces, Duration::from_secs(10));
        assert!(closed && answer.starts_with("HTTP/1.1 201"), "{answer}");
        let mut silent = std::net::TcpStream::connect(&addr).expect("connects");
        let started = std::time::Instant::now();
        let (answer, closed) = read_until_closed(&mut silent, Duration::from_secs(10));
        assert!(closed && answer.is_empty(), "{answer}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let (status, answer) = fetch(&m, "t");
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["columns"]["n"], json!([2, 1, null]), "{answer}");
        let task = format!("/proc/{}/task", m.child.id());
        let mut threads: Vec<(String, Vec<usize>)> = Vec::new();
        for t in std::fs::read_dir(&task).expect("lists the threads") {
            let dir = t.expect("a thread").path();
            let name = std::fs::read_to_string(dir.join("comm")).expect("thread name");
            let status = dir.join("status");
            threads.push((
                name.trim().to_owned(),
                allowed_cpus(status.to_str().expect("path")),
            ));
        }
        let named = |n: &str| -> Vec<&Vec<usize>> {
            threads
                .iter()
                .filter(|(t, _)| t == n)
                .map(|(_, c)| c)
                .collect()
        };
        let background = named("murr-background");
        let where_merges = if kept.is_empty() { &allowed } else { &kept };
        assert_eq!(named("murr-merge"), vec![where_merges], "{threads:?}");
        assert!(!named("tokio-rt-worker").is_empty(), "{threads:?}");
        assert!(
            named("tokio-rt-worker").iter().all(|c| **c == allowed),
            "fetches' threads may use every CPU: {threads:?}"
        );
        if kept.is_empty() {
            assert!(background.is_empty(), "{threads:?}");
        } else {
            // One worker per kept CPU, and the blocking threads the writes ran on.
            assert!(background.len() > kept.len(), "{threads:?}");
            assert!(background.iter().all(|c| **c == kept), "{threads:?}");
        }
        m.stop();
    }
}
