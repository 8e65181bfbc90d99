//! The HTTP API end to end: a real server on 127.0.0.1:0, every route and error path of the contract.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type};
use arrow_array::{
    ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use murr_http::{ARROW_STREAM, PARQUET};
use murr_tests::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Server {
    base: String,
    client: reqwest::Client,
    server: TestServer,
}

/// A server whose body limits, for writes and for fetches, are both `max_payload_size`.
async fn start_with(max_payload_size: u64) -> Server {
    start_configured(|c| {
        c.server.http.max_payload_size = max_payload_size;
        c.server.http.max_fetch_payload_size = max_payload_size;
    })
    .await
}

async fn start_configured(configure: impl FnOnce(&mut murr_server::Config)) -> Server {
    let server = TestServer::start_with(configure).await;
    Server {
        base: server.http_url.clone(),
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("client"),
        server,
    }
}

async fn start() -> Server {
    start_with(1 << 30).await
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, String, Vec<u8>) {
        let mut req = self.client.request(method, self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default();
        (status, ct, resp.bytes().await.expect("body").to_vec())
    }

    /// Sends a request that must fail with `status` and a JSON error naming `needle`.
    async fn expect_error(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        status: StatusCode,
        needle: &str,
    ) {
        let (got, _, answer) = self.send(method, path, content_type, body).await;
        let answer: Value = serde_json::from_slice(&answer).expect("every error answer is JSON");
        assert_error(got, status, &answer, needle);
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, ct, bytes) = self
            .send(
                method,
                path,
                Some("application/json"),
                body.to_string().into_bytes(),
            )
            .await;
        assert!(
            ct.starts_with("application/json"),
            "{path}: content type {ct}"
        );
        (status, serde_json::from_slice(&bytes).expect("JSON body"))
    }

    async fn create(&self, name: &str) {
        let (status, _, body) = self
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/table/{name}"),
                Some("application/json"),
                SCHEMA.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }

    async fn fetch_json(&self, table: &str, keys: Value, columns: Value) -> (StatusCode, Value) {
        self.json(
            reqwest::Method::POST,
            &format!("/api/v1/table/{table}/fetch"),
            json!({"keys": keys, "columns": columns}),
        )
        .await
    }

    async fn fetch_arrow(&self, table: &str, keys: &[&str], columns: &[&str]) -> RecordBatch {
        let resp = self
            .client
            .post(self.url(&format!("/api/v1/table/{table}/fetch")))
            .header("accept", ARROW_STREAM)
            .body(json!({"keys": keys, "columns": columns}).to_string())
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], ARROW_STREAM);
        let bytes = resp.bytes().await.expect("body");
        let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .expect("IPC stream");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
        assert_eq!(batches.len(), 1);
        batches.into_iter().next().expect("one batch")
    }
}

/// The schema as text: `json!` would sort the columns, and their order is part of the contract.
const SCHEMA: &str = r#"{"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}, "score": {"dtype": "float32"}, "n": {"dtype": "int64", "nullable": false}, "tag": {"dtype": "utf8", "nullable": true}}}"#;

fn schema_json() -> Value {
    json!({"key": "id", "columns": {
        "id": {"dtype": "utf8", "nullable": false},
        "score": {"dtype": "float32"},
        "n": {"dtype": "int64", "nullable": false},
        "tag": {"dtype": "utf8", "nullable": true}
    }})
}

fn batch(ids: &[&str], n: &[i64]) -> RecordBatch {
    RecordBatch::try_from_iter(vec![
        ("id", Arc::new(StringArray::from(ids.to_vec())) as ArrayRef),
        ("n", Arc::new(Int64Array::from(n.to_vec())) as ArrayRef),
        (
            "score",
            Arc::new(Float32Array::from(
                n.iter().map(|v| *v as f32 / 4.0).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
    ])
    .expect("batch")
}

fn ipc(batches: &[RecordBatch]) -> Vec<u8> {
    let mut out = Vec::new();
    let schema = batches[0].schema();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).expect("writer");
    for b in batches {
        w.write(b).expect("write");
    }
    w.finish().expect("finish");
    drop(w);
    out
}

fn assert_error(status: StatusCode, want: StatusCode, body: &Value, needle: &str) {
    assert_eq!(status, want, "{body}");
    let msg = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("error body {body}"));
    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
}

use reqwest::Method as M;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_openapi_and_unknown_routes() {
    let s = start().await;
    let (status, ct, body) = s.send(M::GET, "/health", None, vec![]).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"OK"[..]));
    assert!(ct.starts_with("text/plain"));
    let (status, ct, body) = s.send(M::GET, "/openapi.json", None, vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("application/json"));
    let doc: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let (status, body) = s.json(M::GET, "/nope", Value::Null).await;
    assert_error(status, StatusCode::NOT_FOUND, &body, "no such route");
    let (status, body) = s.json(M::POST, "/api/v1/table", Value::Null).await;
    assert_error(
        status,
        StatusCode::METHOD_NOT_ALLOWED,
        &body,
        "method not allowed",
    );
    let (status, body) = s.json(M::GET, "/api/v1/table/t/fetch", Value::Null).await;
    assert_error(
        status,
        StatusCode::METHOD_NOT_ALLOWED,
        &body,
        "method not allowed",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_schema_drop() {
    let s = start().await;
    let (status, body) = s.json(M::GET, "/api/v1/table", Value::Null).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, _, raw) = s
        .send(
            M::PUT,
            "/api/v1/table/items",
            Some("application/json"),
            SCHEMA.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let body: Value = serde_json::from_slice(&raw).expect("JSON");
    assert_eq!(
        body,
        json!({"key": "id", "columns": {
            "id": {"dtype": "utf8", "nullable": false},
            "score": {"dtype": "float32", "nullable": true},
            "n": {"dtype": "int64", "nullable": false},
            "tag": {"dtype": "utf8", "nullable": true}
        }})
    );
    // Column order is kept in every answer.
    let (_, _, raw) = s
        .send(M::GET, "/api/v1/table/items/schema", None, vec![])
        .await;
    let text = String::from_utf8(raw).expect("utf8");
    assert!(
        text.find("\"score\"") < text.find("\"n\"") && text.find("\"n\"") < text.find("\"tag\""),
        "{text}"
    );
    let (status, _, raw) = s.send(M::GET, "/api/v1/table", None, vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(raw).expect("utf8");
    assert!(
        text.find("\"score\"") < text.find("\"n\"") && text.find("\"n\"") < text.find("\"tag\""),
        "{text}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&text).expect("JSON")["items"]["key"],
        "id"
    );
    let (status, body) = s.json(M::PUT, "/api/v1/table/items", schema_json()).await;
    assert_error(status, StatusCode::CONFLICT, &body, "already exists");
    let (status, body) = s
        .json(M::GET, "/api/v1/table/other/schema", Value::Null)
        .await;
    assert_error(status, StatusCode::NOT_FOUND, &body, "\"other\"");
    let (status, body) = s.json(M::DELETE, "/api/v1/table/items", Value::Null).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"dropped": "items"}))
    );
    let (status, body) = s.json(M::DELETE, "/api/v1/table/items", Value::Null).await;
    assert_error(status, StatusCode::NOT_FOUND, &body, "\"items\"");
    s.create("items").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_schemas_and_names_are_400() {
    let s = start().await;
    let cases = [
        (
            json!({"key": "k", "columns": {"id": {"dtype": "utf8", "nullable": false}}}),
            "\"k\"",
        ),
        (
            json!({"key": "id", "columns": {"id": {"dtype": "int64", "nullable": false}}}),
            "utf8",
        ),
        (
            json!({"key": "id", "columns": {"id": {"dtype": "utf8"}}}),
            "nullable",
        ),
        (
            json!({"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}, "x": {"dtype": "float99"}}}),
            "float99",
        ),
        (
            json!({"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}}, "extra": true}),
            "extra",
        ),
        (
            json!({"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}, "bad name": {"dtype": "bool"}}}),
            "bad name",
        ),
        (json!(["not", "an", "object"]), "schema"),
    ];
    for (schema, needle) in cases {
        let (status, body) = s.json(M::PUT, "/api/v1/table/t", schema).await;
        assert_error(status, StatusCode::BAD_REQUEST, &body, needle);
    }
    let (status, _, body) = s
        .send(
            M::PUT,
            "/api/v1/table/t",
            Some("application/json"),
            b"{not json".to_vec(),
        )
        .await;
    let body: Value = serde_json::from_slice(&body).expect("JSON error body for malformed JSON");
    assert_error(
        status,
        StatusCode::BAD_REQUEST,
        &body,
        "invalid table schema",
    );
    let long = "x".repeat(129);
    let (status, body) = s
        .json(M::PUT, &format!("/api/v1/table/{long}"), schema_json())
        .await;
    assert_error(status, StatusCode::BAD_REQUEST, &body, "128");
    let (status, body) = s.json(M::PUT, "/api/v1/table/a%20b", schema_json()).await;
    assert_error(status, StatusCode::BAD_REQUEST, &body, "\"a b\"");
    let (status, body) = s.json(M::GET, "/api/v1/table", Value::Null).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_write_and_fetch() {
    let s = start().await;
    s.create("t").await;
    let (status, body) = s.fetch_json("t", json!(["a"]), json!(["score"])).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"columns": {"score": [null]}})),
        "no data yet"
    );
    let (status, body) = s
        .json(M::PUT, "/api/v1/table/t/write", json!({"columns": {
            "id": ["a", "b", "c"], "score": [0.95, null, 3], "n": [1, 2, 3], "tag": ["x", null, "z"]
        }}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rows"], 3);
    let (status, body) = s
        .fetch_json(
            "t",
            json!(["c", "missing", "a", "c"]),
            json!(["score", "id", "n", "tag"]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"columns": {
            "score": [3.0, null, 0.95, 3.0],
            "id": ["c", null, "a", "c"],
            "n": [3, null, 1, 3],
            "tag": ["z", null, "x", "z"]
        }})
    );
    // float32 values print in their shortest float32 form.
    let (_, _, raw) = s
        .send(
            M::POST,
            "/api/v1/table/t/fetch",
            None,
            json!({"keys": ["a"], "columns": ["score"]})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(
        String::from_utf8(raw).expect("utf8"),
        r#"{"columns":{"score":[0.95]}}"#
    );
    // A write with no Content-Type is JSON; last write wins.
    let (status, _, _) = s
        .send(
            M::PUT,
            "/api/v1/table/t/write",
            None,
            json!({"columns": {"id": ["a"], "n": [7]}})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = s.fetch_json("t", json!(["a"]), json!(["n", "score"])).await;
    assert_eq!(body, json!({"columns": {"n": [7], "score": [null]}}));
    // Zero rows.
    let (status, body) = s
        .json(
            M::PUT,
            "/api/v1/table/t/write",
            json!({"columns": {"id": [], "n": []}}),
        )
        .await;
    assert_eq!((status, body["rows"].clone()), (StatusCode::OK, json!(0)));

    // Keys that need escapes in JSON (quotes, backslashes, \u escapes, spaces and newlines between
    // tokens) take the slow path of the request parser and find the same rows.
    let (status, _) = s
        .json(
            M::PUT,
            "/api/v1/table/t/write",
            json!({"columns": {
                "id": ["q\"uote", "back\\slash", "caf\u{e9}"], "n": [10, 11, 12]
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, raw) = s
        .send(
            M::POST,
            "/api/v1/table/t/fetch",
            None,
            b"{\n \"keys\" : [\"caf\\u00e9\", \"q\\\"uote\", \"back\\\\slash\", \"a\"],\n \"columns\": [\"n\"]}"
                .to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&raw).expect("JSON");
    assert_eq!(body, json!({"columns": {"n": [12, 10, 11, 7]}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_writes_and_fetches_are_4xx_naming_the_problem() {
    let s = start().await;
    s.create("t").await;
    let write = |body: Value| {
        let s = &s;
        async move { s.json(M::PUT, "/api/v1/table/t/write", body).await }
    };
    let cases = [
        (json!({"columns": {"id": [null], "n": [1]}}), "\"id\""),
        (json!({"columns": {"id": ["a"], "n": [null]}}), "\"n\""),
        (json!({"columns": {"id": ["a"]}}), "\"n\""),
        (
            json!({"columns": {"id": ["a"], "n": [1], "zzz": [1]}}),
            "\"zzz\"",
        ),
        (json!({"columns": {"id": ["a"], "n": ["one"]}}), "\"n\""),
        (json!({"columns": {"id": ["a"], "n": [1.5]}}), "\"n\""),
        (json!({"columns": {"id": [1], "n": [1]}}), "\"id\""),
        (
            json!({"columns": {"id": ["a", "b"], "n": [1]}}),
            "same length",
        ),
        (json!({"columns": {"id": "a"}}), "\"id\""),
        (json!({"columns": []}), "columns"),
        (json!({"rows": []}), "rows"),
        (json!([1, 2]), "object"),
    ];
    for (body, needle) in cases {
        let (status, answer) = write(body.clone()).await;
        assert_error(status, StatusCode::BAD_REQUEST, &answer, needle);
    }
    s.expect_error(
        M::PUT,
        "/api/v1/table/t/write",
        Some("application/json"),
        b"{\"columns\": {".to_vec(),
        StatusCode::BAD_REQUEST,
        "not valid JSON",
    )
    .await;
    s.expect_error(
        M::PUT,
        "/api/v1/table/t/write",
        Some("text/csv"),
        b"id,n\na,1".to_vec(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "text/csv",
    )
    .await;
    s.expect_error(
        M::PUT,
        "/api/v1/table/t/write",
        Some(ARROW_STREAM),
        b"garbage".to_vec(),
        StatusCode::BAD_REQUEST,
        "Arrow IPC",
    )
    .await;
    s.expect_error(
        M::PUT,
        "/api/v1/table/t/write",
        Some(PARQUET),
        b"garbage".to_vec(),
        StatusCode::BAD_REQUEST,
        "Parquet",
    )
    .await;
    let (status, body) = s
        .json(M::PUT, "/api/v1/table/nope/write", json!({"columns": {}}))
        .await;
    assert_error(status, StatusCode::NOT_FOUND, &body, "\"nope\"");
    // Arrow with a type that does not widen, and with a null key.
    let narrowing = RecordBatch::try_from_iter(vec![
        ("id", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ("n", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ("score", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef),
    ])
    .expect("batch");
    s.expect_error(
        M::PUT,
        "/api/v1/table/t/write",
        Some(ARROW_STREAM),
        ipc(&[narrowing]),
        StatusCode::BAD_REQUEST,
        "\"score\"",
    )
    .await;
    let null_key = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef,
        ),
        ("n", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
    ])
    .expect("batch");
    s.expect_error(
        M::PUT,
        "/api/v1/table/t/write",
        Some(ARROW_STREAM),
        ipc(&[null_key]),
        StatusCode::BAD_REQUEST,
        "\"id\"",
    )
    .await;
    // Nothing was written by any of these.
    let (_, body) = s.fetch_json("t", json!(["a"]), json!(["n"])).await;
    assert_eq!(body, json!({"columns": {"n": [null]}}));
    // Fetch errors.
    let (status, body) = s.fetch_json("t", json!(["a"]), json!(["n", "nope"])).await;
    assert_error(status, StatusCode::BAD_REQUEST, &body, "\"nope\"");
    let (status, body) = s.fetch_json("nope", json!(["a"]), json!(["n"])).await;
    assert_error(status, StatusCode::NOT_FOUND, &body, "\"nope\"");
    let (status, body) = s
        .json(
            M::POST,
            "/api/v1/table/t/fetch",
            json!({"keys": "a", "columns": ["n"]}),
        )
        .await;
    assert_error(
        status,
        StatusCode::BAD_REQUEST,
        &body,
        "invalid fetch request",
    );
    let (status, body) = s
        .json(
            M::POST,
            "/api/v1/table/t/fetch",
            json!({"keys": [1], "columns": ["n"]}),
        )
        .await;
    assert_error(
        status,
        StatusCode::BAD_REQUEST,
        &body,
        "invalid fetch request",
    );
    let (status, body) = s
        .json(M::POST, "/api/v1/table/t/fetch", json!({"columns": ["n"]}))
        .await;
    assert_error(status, StatusCode::BAD_REQUEST, &body, "keys");
    let (status, body) = s
        .json(
            M::POST,
            "/api/v1/table/t/fetch",
            json!({"table": "t", "keys": ["a"], "columns": ["n"]}),
        )
        .await;
    assert_error(status, StatusCode::BAD_REQUEST, &body, "`table`");
    s.expect_error(
        M::POST,
        "/api/v1/table/t/fetch",
        None,
        b"[".to_vec(),
        StatusCode::BAD_REQUEST,
        "invalid fetch request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_ipc_write_of_several_batches_and_arrow_fetch() {
    let s = start().await;
    s.create("t").await;
    // Lossless widening: int32 into the int64 column.
    let int32 = |ids: Vec<&str>, n: Vec<i32>, score: Vec<Option<f32>>| {
        RecordBatch::try_from_iter_with_nullable(vec![
            ("id", Arc::new(StringArray::from(ids)) as ArrayRef, false),
            ("n", Arc::new(Int32Array::from(n)) as ArrayRef, false),
            (
                "score",
                Arc::new(Float32Array::from(score)) as ArrayRef,
                true,
            ),
        ])
        .expect("batch")
    };
    let b1 = int32(vec!["a", "b"], vec![1, 2], vec![Some(0.25), Some(0.5)]);
    let b2 = int32(vec!["c", "a"], vec![3, 4], vec![None, None]);
    let (status, _, body) = s
        .send(
            M::PUT,
            "/api/v1/table/t/write",
            Some(ARROW_STREAM),
            ipc(&[b1, b2]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(answer["rows"], 4);
    let out = s
        .fetch_arrow("t", &["a", "b", "c", "zz"], &["n", "score", "id"])
        .await;
    assert_eq!(out.num_rows(), 4);
    assert_eq!(
        out.column(0)
            .as_primitive::<Int64Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(4), Some(2), Some(3), None]
    );
    assert_eq!(
        out.column(1)
            .as_primitive::<Float32Type>()
            .iter()
            .collect::<Vec<_>>(),
        [None, Some(0.5), None, None],
        "a was rewritten without a score"
    );
    assert!(out.schema().fields().iter().all(|f| f.is_nullable()));
    assert_eq!(out.schema().field(2).name(), "id");
    // An IPC stream with a schema and no batches writes nothing.
    let mut empty = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut empty, &batch(&[], &[]).schema())
        .expect("writer");
    w.finish().expect("finish");
    drop(w);
    let (status, _, body) = s
        .send(M::PUT, "/api/v1/table/t/write", Some(ARROW_STREAM), empty)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("JSON")["rows"],
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_with_several_row_groups() {
    let s = start().await;
    s.create("t").await;
    let ids: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let n: Vec<i64> = (0..1000).collect();
    let b = batch(&refs, &n);
    let mut file = Vec::new();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(100))
        .build();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut file, b.schema(), Some(props)).expect("writer");
    w.write(&b).expect("write");
    let meta = w.close().expect("close");
    assert_eq!(meta.num_row_groups(), 10);
    let (status, _, body) = s
        .send(M::PUT, "/api/v1/table/t/write", Some(PARQUET), file)
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("JSON")["rows"],
        1000
    );
    let out = s.fetch_arrow("t", &["k0", "k555", "k999"], &["n"]).await;
    assert_eq!(
        out.column(0)
            .as_primitive::<Int64Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(0), Some(555), Some(999)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_are_413() {
    let s = start_with(1000).await;
    let big = vec![b' '; 2000];
    for (method, path, ct) in [
        (M::PUT, "/api/v1/table/t", Some("application/json")),
        (M::PUT, "/api/v1/table/t/write", Some("application/json")),
        (M::PUT, "/api/v1/table/t/write", Some(ARROW_STREAM)),
        (M::PUT, "/api/v1/table/t/write", Some(PARQUET)),
        (M::POST, "/api/v1/table/t/fetch", None),
    ] {
        if path.ends_with("/t") {
            s.expect_error(
                method,
                path,
                ct,
                big.clone(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "limit",
            )
            .await;
            s.create("t").await;
            continue;
        }
        s.expect_error(
            method,
            path,
            ct,
            big.clone(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit",
        )
        .await;
    }
    // A valid Arrow stream without a declared length is cut off at the limit too.
    let ids: Vec<String> = (0..200).map(|i| format!("key-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let stream = ipc(&[batch(&refs, &vec![1; 200])]);
    assert!(stream.len() > 3000);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        stream.chunks(300).map(|c| Ok(c.to_vec())).collect();
    let resp = s
        .client
        .put(s.url("/api/v1/table/t/write"))
        .header("content-type", ARROW_STREAM)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A refused body writes nothing, not even the batches that arrived before the limit.
    let (status, answer) = s
        .fetch_json("t", json!(["key-0", "key-199"]), json!(["n"]))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"columns": {"n": [null, null]}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_while_writes_run() {
    let s = Arc::new(start().await);
    s.create("t").await;
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    s.send(
        M::PUT,
        "/api/v1/table/t/write",
        Some(ARROW_STREAM),
        ipc(&[batch(&refs, &vec![0; 200])]),
    )
    .await;
    let writer = {
        let s = Arc::clone(&s);
        let keys = keys.clone();
        tokio::spawn(async move {
            for v in 1..=30i64 {
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                let (status, _, _) = s
                    .send(
                        M::PUT,
                        "/api/v1/table/t/write",
                        Some(ARROW_STREAM),
                        ipc(&[batch(&refs, &vec![v; 200])]),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK);
            }
        })
    };
    let mut last = 0;
    let mut reads = 0;
    while !writer.is_finished() || reads < 5 {
        let out = s.fetch_arrow("t", &refs, &["n"]).await;
        let n: Vec<Option<i64>> = out.column(0).as_primitive::<Int64Type>().iter().collect();
        let v = n[0].expect("present");
        assert!(
            n.iter().all(|x| *x == Some(v)),
            "a fetch saw part of a write"
        );
        assert!(v >= last);
        last = v;
        reads += 1;
    }
    writer.await.expect("writer");
}

/// Sends raw bytes on a new connection and closes it (a client that goes away mid-upload), or
/// reads the answer when `wait` is set.
async fn raw(s: &Server, request: &[u8], wait: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    tcp.write_all(request).await.expect("sends");
    if !wait {
        // Let the server read and decode what was sent, then vanish.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        drop(tcp);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        return String::new();
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn put_head(framing: &str) -> Vec<u8> {
    format!(
        "PUT /api/v1/table/t/write HTTP/1.1\r\nhost: x\r\ncontent-type: {ARROW_STREAM}\r\n{framing}\r\nconnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// A write is atomic: an upload whose body never reached its end, or that goes on past the end
/// of its Arrow stream, commits nothing, even though the Arrow stream inside it was complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_short_or_with_trailing_bytes_commits_nothing() {
    let s = start_with(4096).await;
    s.create("t").await;
    let stream = ipc(&[batch(&["a", "b"], &[1, 2])]);
    let nothing = || async { s.fetch_json("t", json!(["a", "b"]), json!(["n"])).await.1 };
    let none = json!({"columns": {"n": [null, null]}});

    // Chunked: the whole Arrow stream in one chunk, then the client leaves without the last chunk.
    let mut req = put_head("transfer-encoding: chunked");
    req.extend_from_slice(format!("{:x}\r\n", stream.len()).as_bytes());
    req.extend_from_slice(&stream);
    req.extend_from_slice(b"\r\n");
    raw(&s, &req, false).await;
    assert_eq!(
        nothing().await,
        none,
        "a chunked upload cut short committed"
    );

    // A declared length one byte longer than what arrives.
    let mut req = put_head(&format!("content-length: {}", stream.len() + 1));
    req.extend_from_slice(&stream);
    raw(&s, &req, false).await;
    assert_eq!(
        nothing().await,
        none,
        "an upload shorter than its length committed"
    );

    // Bytes after the end of the stream: a 400 naming them, nothing written.
    let mut body = stream.clone();
    body.extend_from_slice(b"junk");
    s.expect_error(
        M::PUT,
        "/api/v1/table/t/write",
        Some(ARROW_STREAM),
        body,
        StatusCode::BAD_REQUEST,
        "after the end",
    )
    .await;
    assert_eq!(nothing().await, none);

    // A complete stream, then more chunks past the size limit: 413, nothing written.
    let mut req = put_head("transfer-encoding: chunked");
    req.extend_from_slice(format!("{:x}\r\n", stream.len()).as_bytes());
    req.extend_from_slice(&stream);
    req.extend_from_slice(b"\r\n");
    let pad = vec![b'x'; 5000];
    req.extend_from_slice(format!("{:x}\r\n", pad.len()).as_bytes());
    req.extend_from_slice(&pad);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    let answer = raw(&s, &req, true).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(nothing().await, none);

    // The same stream, sent whole, is written.
    let (status, _, _) = s
        .send(M::PUT, "/api/v1/table/t/write", Some(ARROW_STREAM), stream)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(nothing().await, json!({"columns": {"n": [1, 2]}}));
}

/// A fetch is bounded in keys, cells and body size, each limit named in the refusal; a column is
/// asked for once. (Before: 20,000 keys x 2,000 copies of one column in a 199 KB body made the
/// server build a 40M-cell answer.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_are_bounded_and_ask_for_each_column_once() {
    let s = start_configured(|c| {
        c.server.fetch.max_keys = 10;
        c.server.fetch.max_cells = 25;
        c.server.http.max_fetch_payload_size = 2000;
    })
    .await;
    s.create("t").await;
    let keys = |n: usize| -> Value { (0..n).map(|i| format!("k{i}")).collect() };
    let fetch = |keys: Value, columns: Value| {
        json!({"keys": keys, "columns": columns})
            .to_string()
            .into_bytes()
    };
    let path = "/api/v1/table/t/fetch";
    s.expect_error(
        M::POST,
        path,
        None,
        fetch(keys(11), json!(["n"])),
        StatusCode::BAD_REQUEST,
        "server.fetch.max_keys",
    )
    .await;
    s.expect_error(
        M::POST,
        path,
        None,
        fetch(keys(10), json!(["n", "score", "tag"])),
        StatusCode::BAD_REQUEST,
        "server.fetch.max_cells",
    )
    .await;
    s.expect_error(
        M::POST,
        path,
        None,
        fetch(keys(2), json!(["n", "score", "n"])),
        StatusCode::BAD_REQUEST,
        "\"n\" is asked for twice",
    )
    .await;
    let long: Value = (0..5).map(|i| format!("{i}{}", "x".repeat(500))).collect();
    s.expect_error(
        M::POST,
        path,
        None,
        fetch(long, json!(["n"])),
        StatusCode::PAYLOAD_TOO_LARGE,
        "server.http.max_fetch_payload_size",
    )
    .await;
    // Within the limits, as before; writes keep their own, larger limit.
    let (status, answer) = s.fetch_json("t", keys(10), json!(["n", "score"])).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let ids: Vec<String> = (0..100).map(|i| format!("{i}{}", "y".repeat(40))).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (status, _, _) = s
        .send(
            M::PUT,
            "/api/v1/table/t/write",
            Some(ARROW_STREAM),
            ipc(&[batch(&refs, &[7; 100])]),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a write larger than the fetch limit"
    );
}

/// `batch` as a Parquet file (dictionary pages up to 8 MiB, so a long value stays in the
/// dictionary).
fn parquet_of(batch: &RecordBatch) -> Vec<u8> {
    let mut file = Vec::new();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_dictionary_page_size_limit(8 << 20)
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut file, batch.schema(), Some(props))
        .expect("writer");
    w.write(batch).expect("write");
    w.close().expect("close");
    file
}

/// A batch whose `tag` is a dictionary of one 1 MiB string that 1100 rows point at: 1 MB on
/// the wire, 1.1 GiB once expanded.
fn dictionary_bomb() -> RecordBatch {
    let rows = 1100;
    let ids: Vec<String> = (0..rows).map(|i| format!("k{i}")).collect();
    let values = StringArray::from(vec!["x".repeat(1 << 20)]);
    let keys = arrow_array::Int32Array::from(vec![0; rows]);
    let tag = arrow_array::DictionaryArray::<arrow_array::types::Int32Type>::try_new(
        keys,
        Arc::new(values),
    )
    .expect("dictionary");
    RecordBatch::try_from_iter(vec![
        ("id", Arc::new(StringArray::from(ids)) as ArrayRef),
        (
            "n",
            Arc::new(Int64Array::from(vec![1i64; rows])) as ArrayRef,
        ),
        ("tag", Arc::new(tag) as ArrayRef),
    ])
    .expect("batch")
}

/// Small bodies that would decode to gigabytes are refused before they are expanded, over Arrow
/// IPC and Parquet; a Parquet file's columns are checked from its footer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dictionary_bombs_and_foreign_parquet_columns_are_400() {
    let s = start().await;
    s.create("t").await;
    let bomb = dictionary_bomb();
    let body = ipc(std::slice::from_ref(&bomb));
    assert!(body.len() < 2 << 20, "{}", body.len());
    s.expect_error(
        M::PUT,
        "/api/v1/table/t/write",
        Some(ARROW_STREAM),
        body,
        StatusCode::BAD_REQUEST,
        "column \"tag\": this batch's dictionary expands",
    )
    .await;

    let file = parquet_of(&bomb);
    assert!(file.len() < 2 << 20, "{}", file.len());
    s.expect_error(
        M::PUT,
        "/api/v1/table/t/write",
        Some(PARQUET),
        file,
        StatusCode::BAD_REQUEST,
        "column \"tag\": this batch's dictionary expands",
    )
    .await;

    let extra = RecordBatch::try_from_iter(vec![
        ("id", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ("n", Arc::new(Int64Array::from(vec![1i64])) as ArrayRef),
        ("nope", Arc::new(Int64Array::from(vec![1i64])) as ArrayRef),
    ])
    .expect("batch");
    s.expect_error(
        M::PUT,
        "/api/v1/table/t/write",
        Some(PARQUET),
        parquet_of(&extra),
        StatusCode::BAD_REQUEST,
        "column \"nope\" of the Parquet file is not in table",
    )
    .await;
    let (_, answer) = s.fetch_json("t", json!(["k0", "a"]), json!(["n"])).await;
    assert_eq!(
        answer,
        json!({"columns": {"n": [null, null]}}),
        "nothing was written"
    );

    // A dictionary-encoded Parquet column of ordinary size still loads.
    let small = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
        ),
        (
            "n",
            Arc::new(Int64Array::from(vec![1i64, 2, 3])) as ArrayRef,
        ),
        (
            "tag",
            Arc::new(StringArray::from(vec!["x", "x", "y"])) as ArrayRef,
        ),
    ])
    .expect("batch");
    let (status, _, body) = s
        .send(
            M::PUT,
            "/api/v1/table/t/write",
            Some(PARQUET),
            parquet_of(&small),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (_, answer) = s
        .fetch_json("t", json!(["c", "a"]), json!(["tag", "n"]))
        .await;
    assert_eq!(answer, json!({"columns": {"tag": ["y", "x"], "n": [3, 1]}}));
}

/// Every error is a JSON body, a path that does not decode too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_name_that_does_not_decode_is_a_json_400() {
    let s = start().await;
    for (method, path) in [
        (M::GET, "/api/v1/table/%FF/schema"),
        (M::DELETE, "/api/v1/table/%FF"),
        (M::POST, "/api/v1/table/%FF/fetch"),
    ] {
        s.expect_error(
            method,
            path,
            None,
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "table name in the path",
        )
        .await;
    }
}

/// Answers never show where the data folder is, storage failures included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_errors_do_not_reveal_the_data_folder() {
    let s = start().await;
    s.create("t").await;
    let folder = s.server.data_dir().to_path_buf();
    std::fs::remove_dir_all(&folder).expect("removes the data folder");
    let file = parquet_of(&batch(&["a"], &[1]));
    // The Parquet body cannot be spooled: 503, naming what failed but not where.
    let (status, _, answer) = s
        .send(M::PUT, "/api/v1/table/t/write", Some(PARQUET), file)
        .await;
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(answer.contains("cannot spool the upload"), "{answer}");
    assert!(
        !answer.contains(folder.to_str().expect("utf-8")),
        "{answer}"
    );
}

/// `file` (a Parquet file) with every column chunk's metadata changed by `edit`.
fn with_footer(
    file: &[u8],
    edit: impl Fn(
        parquet::file::metadata::ColumnChunkMetaDataBuilder,
    ) -> parquet::file::metadata::ColumnChunkMetaDataBuilder,
) -> Vec<u8> {
    use parquet::file::metadata::{ParquetMetaDataReader, ParquetMetaDataWriter};
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::from(file.to_vec()))
        .expect("reads its footer");
    let groups = meta
        .row_groups()
        .iter()
        .map(|g| {
            let columns = g
                .columns()
                .iter()
                .map(|c| {
                    edit(c.clone().into_builder())
                        .build()
                        .expect("column chunk")
                })
                .collect();
            g.clone()
                .into_builder()
                .set_column_metadata(columns)
                .build()
                .expect("row group")
        })
        .collect();
    let edited = meta.into_builder().set_row_groups(groups).build();
    let len = file.len();
    let footer = u32::from_le_bytes(file[len - 8..len - 4].try_into().expect("4 bytes")) as usize;
    let mut out = file[..len - 8 - footer].to_vec();
    ParquetMetaDataWriter::new(&mut out, &edited)
        .finish()
        .expect("writes a footer");
    out
}

/// A Parquet footer whose column chunks lie at negative offsets or sizes (the parquet reader
/// asserts on them: a panic answered 500), or that declares more uncompressed data in a row
/// group than the limit, is a 400 read from the footer alone; the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_footers_that_lie_are_400() {
    let s = start().await;
    s.create("t").await;
    let file = parquet_of(&batch(&["a", "b"], &[1, 2]));
    let write = "/api/v1/table/t/write";
    let negative = with_footer(&file, |c| {
        c.set_data_page_offset(-1000)
            .set_dictionary_page_offset(Some(-1000))
    });
    s.expect_error(
        M::PUT,
        write,
        Some(PARQUET),
        negative,
        StatusCode::BAD_REQUEST,
        "outside the file",
    )
    .await;
    let negative_size = with_footer(&file, |c| c.set_total_compressed_size(-7));
    s.expect_error(
        M::PUT,
        write,
        Some(PARQUET),
        negative_size,
        StatusCode::BAD_REQUEST,
        "Parquet",
    )
    .await;
    let huge = with_footer(&file, |c| c.set_total_uncompressed_size(3 << 30));
    s.expect_error(
        M::PUT,
        write,
        Some(PARQUET),
        huge,
        StatusCode::BAD_REQUEST,
        "per row group",
    )
    .await;
    let (status, answer) = s.fetch_json("t", json!(["a"]), json!(["n"])).await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"columns": {"n": [null]}}))
    );
}

/// An Arrow stream whose record batch puts a buffer outside its message's body: arrow-ipc's
/// reader panics on it instead of failing (found by fuzzing, `fuzz/regressions/fetch_arrow`;
/// its first byte picked the fuzz target's table). Before the fix a fetch dropped the
/// connection, a write answered 500 and Flight's `do_put` failed as an internal error; now each
/// is bad input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_streams_that_panic_the_ipc_reader_are_bad_input() {
    use arrow_flight::flight_service_client::FlightServiceClient;
    use arrow_flight::{FlightData, FlightDescriptor};
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/regressions/fetch_arrow/buffer-outside-body"
    ))
    .expect("the regression input");
    let stream = input[1..].to_vec();
    let s = start().await;
    s.create("t").await;
    for (method, path) in [
        (M::POST, "/api/v1/table/t/fetch"),
        (M::PUT, "/api/v1/table/t/write"),
    ] {
        s.expect_error(
            method,
            path,
            Some(ARROW_STREAM),
            stream.clone(),
            StatusCode::BAD_REQUEST,
            "the Arrow IPC reader failed on malformed input",
        )
        .await;
    }

    // The stream's messages as Flight data: each message's metadata and body.
    let mut messages = Vec::new();
    let mut at = 0;
    while at + 8 <= stream.len() {
        let len = i32::from_le_bytes(stream[at + 4..at + 8].try_into().expect("4 bytes"));
        let len = usize::try_from(len).expect("a length");
        if len == 0 {
            break;
        }
        let meta = &stream[at + 8..at + 8 + len];
        let body_len = arrow_ipc::root_as_message(meta)
            .expect("a message")
            .bodyLength();
        let body_len = usize::try_from(body_len).expect("a body length");
        let body = &stream[at + 8 + len..at + 8 + len + body_len];
        messages.push(FlightData {
            flight_descriptor: messages
                .is_empty()
                .then(|| FlightDescriptor::new_path(vec!["t".to_owned()])),
            data_header: meta.to_vec().into(),
            data_body: body.to_vec().into(),
            ..FlightData::default()
        });
        at += 8 + len + body_len;
    }
    assert_eq!(messages.len(), 2, "a schema and a record batch");
    let channel = tonic::transport::Endpoint::from_shared(s.server.flight_url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let status = FlightServiceClient::new(channel)
        .do_put(futures_util::stream::iter(messages))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .contains("the Arrow IPC reader failed on malformed input"),
        "{status:?}"
    );
    // The server is whole: the table still takes writes and answers fetches.
    let (status, _, _) = s
        .send(
            M::PUT,
            "/api/v1/table/t/write",
            Some(ARROW_STREAM),
            ipc(&[batch(&["a"], &[1])]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
