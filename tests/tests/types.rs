//! The ML data types end to end against a real server: JSON, Arrow IPC and Parquet bodies over
//! HTTP, Flight and murr-client; exact JSON round trips and 400s naming the column.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, FixedSizeListBuilder, Float32Builder, Int64Builder, ListBuilder, StringBuilder,
};
use arrow_array::{
    Array, ArrayRef, Date32Array, Float16Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{Field, Schema};
use murr_client::{TableSchema, Transport};
use murr_http::{ARROW_STREAM, PARQUET};
use murr_tests::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SCHEMA: &str = r#"{"key": "id", "columns": {
    "id": {"dtype": "utf8", "nullable": false},
    "half": {"dtype": "float16"},
    "blob": {"dtype": "binary"},
    "day": {"dtype": "date32"},
    "at": {"dtype": "timestamp[us, UTC]"},
    "local": {"dtype": "timestamp[ms]"},
    "counts": {"dtype": "list<int64>"},
    "tags": {"dtype": "list<utf8>"},
    "emb": {"dtype": "fixed_size_list<float32, 3>"}
}}"#;

struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    fn new(server: &TestServer) -> Http {
        Http {
            base: server.http_url.clone(),
            client: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        ct: &str,
        accept: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", ct)
            .header("accept", accept)
            .body(body)
            .send()
            .await
            .expect("request");
        (resp.status(), resp.bytes().await.expect("body").to_vec())
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: &Value) -> (StatusCode, Value) {
        let (status, bytes) = self
            .send(
                method,
                path,
                "application/json",
                "application/json",
                body.to_string().into_bytes(),
            )
            .await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A write that must be refused with 400 naming `column` and `needle`.
    async fn refused(&self, ct: &str, body: Vec<u8>, column: &str, needle: &str) {
        let (status, bytes) = self
            .send(
                reqwest::Method::PUT,
                "/api/v1/table/t/write",
                ct,
                "application/json",
                body,
            )
            .await;
        let answer: Value = serde_json::from_slice(&bytes).expect("JSON error");
        let msg = answer["error"].as_str().unwrap_or_default();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            msg.contains(&format!("{column:?}")) && msg.contains(needle),
            "{msg:?} should name {column:?} and {needle:?}"
        );
    }
}

fn columns() -> Vec<&'static str> {
    vec![
        "half", "blob", "day", "at", "local", "counts", "tags", "emb",
    ]
}

/// A JSON write body's columns, with nulls everywhere a type allows one.
fn json_columns() -> Value {
    json!({
        "id": ["j0", "j1", "j2"],
        "half": [0.5, null, -1.0996094],
        "blob": ["AP8H", null, ""],
        "day": ["2026-11-27", null, "1969-12-31"],
        "at": ["2026-11-27T10:00:00.123456Z", null, "1970-01-01T00:00:00.000000Z"],
        "local": ["2026-11-27T10:00:00.500", null, "1900-01-01T00:00:00.000"],
        "counts": [[1, null, 3], null, []],
        "tags": [["a", null], [], null],
        "emb": [[0.25, -1.5, 3.0], null, [1.0, null, 2.0]]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_writes_and_answers_round_trip_exactly_and_schemas_too() {
    let server = TestServer::start().await;
    let h = Http::new(&server);
    let schema: Value = serde_json::from_str(SCHEMA).expect("schema");
    let (status, body) = h
        .json(reqwest::Method::PUT, "/api/v1/table/t", &schema)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The schema reads back as written; creating a table from it gives the same schema.
    let (_, got) = h
        .json(reqwest::Method::GET, "/api/v1/table/t/schema", &Value::Null)
        .await;
    let mut want = schema.clone();
    for c in want["columns"]
        .as_object_mut()
        .expect("columns")
        .values_mut()
    {
        c.as_object_mut()
            .expect("column")
            .entry("nullable")
            .or_insert(json!(true));
    }
    assert_eq!(got, want);
    let (status, _) = h.json(reqwest::Method::PUT, "/api/v1/table/t2", &got).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, again) = h
        .json(
            reqwest::Method::GET,
            "/api/v1/table/t2/schema",
            &Value::Null,
        )
        .await;
    assert_eq!(again, got);

    let (status, body) = h
        .json(
            reqwest::Method::PUT,
            "/api/v1/table/t/write",
            &json!({"columns": json_columns()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, answer) = h
        .json(
            reqwest::Method::POST,
            "/api/v1/table/t/fetch",
            &json!({"keys": ["j0", "j1", "j2", "nope"], "columns": columns()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let sent = json_columns();
    for c in columns() {
        let mut want = sent[c].as_array().expect("array").clone();
        want.push(Value::Null);
        assert_eq!(answer["columns"][c], Value::Array(want), "column {c}");
    }
}

/// A batch of every type with keys `prefix0..prefix{n}`.
fn batch(prefix: &str, n: usize) -> RecordBatch {
    let ids = StringArray::from_iter_values((0..n).map(|i| format!("{prefix}{i}")));
    let half = Float16Array::from_iter(
        (0..n).map(|i| (i % 3 != 1).then(|| half::f16::from_f32(i as f32 / 8.0))),
    );
    let mut blob = BinaryBuilder::new();
    let mut counts = ListBuilder::new(Int64Builder::new());
    let mut tags = ListBuilder::new(StringBuilder::new());
    let mut emb = FixedSizeListBuilder::new(Float32Builder::new(), 3);
    for i in 0..n {
        blob.append_option((i % 4 != 0).then(|| vec![i as u8; i % 5]));
        for j in 0..i % 4 {
            counts
                .values()
                .append_option((j != 2).then_some((i * j) as i64));
            tags.values().append_value(format!("t{j}"));
        }
        counts.append(i % 5 != 4);
        tags.append(true);
        if i % 6 == 5 {
            emb.values().append_nulls(3);
            emb.append(false);
        } else {
            emb.values().append_slice(&[i as f32, 0.5, -(i as f32)]);
            emb.append(true);
        }
    }
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(ids),
        Arc::new(half),
        Arc::new(blob.finish()),
        Arc::new(Date32Array::from_iter(
            (0..n).map(|i| (i % 2 == 0).then_some(i as i32 * 100 - 5000)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter((0..n).map(|i| Some(i as i64 * 1_000_001 - 7)))
                .with_timezone("UTC"),
        ),
        Arc::new(arrow_array::TimestampMillisecondArray::from_iter(
            (0..n).map(|i| (i % 3 == 0).then_some(i as i64 * 86_400_123)),
        )),
        Arc::new(counts.finish()),
        Arc::new(tags.finish()),
        Arc::new(emb.finish()),
    ];
    let names = [
        "id", "half", "blob", "day", "at", "local", "counts", "tags", "emb",
    ];
    let fields: Vec<Field> = names
        .iter()
        .zip(&arrays)
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), *n != "id"))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("batch")
}

fn parquet(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).expect("writer");
    w.write(batch).expect("write");
    w.close().expect("close");
    out
}

fn ipc(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w =
        arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).expect("writer");
    w.write(batch).expect("write");
    w.finish().expect("finish");
    drop(w);
    out
}

/// `got` holds `want`'s rows for its keys, column by column, with the table's types.
fn assert_rows(got: &RecordBatch, want: &RecordBatch, what: &str) {
    assert_eq!(got.num_rows(), want.num_rows(), "{what}");
    for (c, name) in columns().iter().enumerate() {
        let w = want.column_by_name(name).expect("column");
        assert_eq!(
            got.column(c).to_data(),
            w.to_data(),
            "{what}: column {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_ipc_parquet_flight_and_the_client_agree() {
    let server = TestServer::start().await;
    let http = server.client(Transport::Http);
    let flight = server.client(Transport::Flight);
    let schema: TableSchema = serde_json::from_str(SCHEMA).expect("schema");
    http.create_table("t", &schema).await.expect("creates");
    assert_eq!(
        flight.schema("t").await.expect("schema over Flight"),
        schema
    );

    let (a, b, c) = (batch("a", 40), batch("b", 30), batch("c", 20));
    http.write("t", [a.clone()]).await.expect("IPC write");
    flight.write("t", [c.clone()]).await.expect("Flight write");
    let h = Http::new(&server);
    let (status, body) = h
        .send(
            reqwest::Method::PUT,
            "/api/v1/table/t/write",
            PARQUET,
            "application/json",
            parquet(&b),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));

    for (want, prefix, n) in [(&a, "a", 40), (&b, "b", 30), (&c, "c", 20)] {
        let keys: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        for (client, how) in [(&http, "HTTP"), (&flight, "Flight")] {
            let got = client.fetch("t", &keys, &columns()).await.expect("fetches");
            assert_rows(&got, want, &format!("{prefix} over {how}"));
        }
        // JSON answers of the same rows parse and have a value (or null) per key.
        let (status, answer) = h
            .json(
                reqwest::Method::POST,
                "/api/v1/table/t/fetch",
                &json!({"keys": keys, "columns": columns()}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["columns"]["emb"].as_array().expect("emb").len(), n);
    }
    // An embedding arrives as FixedSizeList over Arrow IPC, as the table declares it.
    let (status, bytes) = h
        .send(
            reqwest::Method::POST,
            "/api/v1/table/t/fetch",
            "application/json",
            ARROW_STREAM,
            json!({"keys": ["a1"], "columns": ["emb"]})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).expect("IPC");
    let got: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    assert_eq!(
        got[0].schema().field(0).data_type(),
        &"fixed_size_list<float32, 3>"
            .parse::<murr_client::DType>()
            .expect("type")
            .to_arrow()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_are_400_naming_the_column_and_write_nothing() {
    let server = TestServer::start().await;
    let h = Http::new(&server);
    let schema: Value = serde_json::from_str(SCHEMA).expect("schema");
    assert_eq!(
        h.json(reqwest::Method::PUT, "/api/v1/table/t", &schema)
            .await
            .0,
        StatusCode::CREATED
    );
    let body = |column: &str, values: Value| {
        json!({"columns": {"id": ["x0", "x1"], column: values}})
            .to_string()
            .into_bytes()
    };
    let j = "application/json";
    h.refused(
        j,
        body("counts", json!([[1], 5])),
        "counts",
        "is a number, dtype list<int64> takes a JSON array",
    )
    .await;
    h.refused(
        j,
        body("emb", json!([[1, 2, 3], [1, 2]])),
        "emb",
        "has 2 items, dtype fixed_size_list<float32, 3> takes 3",
    )
    .await;
    h.refused(
        j,
        body("counts", json!([[1], ["a"]])),
        "counts",
        "item \"a\" at index 0 of the list at index 1",
    )
    .await;
    h.refused(
        j,
        body("at", json!(["2026-11-27T10:00:00.1234567Z", null])),
        "at",
        "does not fit dtype timestamp[us, UTC]",
    )
    .await;
    h.refused(
        j,
        body("day", json!(["27/11/2026", null])),
        "day",
        "does not fit dtype date32",
    )
    .await;
    h.refused(
        j,
        body("blob", json!(["not base64!", null])),
        "blob",
        "does not fit dtype binary",
    )
    .await;
    h.refused(j, body("tags", json!({"a": 1})), "tags", "array")
        .await;
    // Arrow bodies: an embedding of the wrong length, a timestamp in another zone.
    let two = |name: &str, array: ArrayRef| {
        let ids: ArrayRef = Arc::new(StringArray::from(vec!["x0"]));
        RecordBatch::try_from_iter(vec![("id", ids), (name, array)]).expect("batch")
    };
    let mut short = ListBuilder::new(Float32Builder::new());
    short.values().append_slice(&[1.0, 2.0]);
    short.append(true);
    h.refused(
        ARROW_STREAM,
        ipc(&two("emb", Arc::new(short.finish()))),
        "emb",
        "FixedSizeList",
    )
    .await;
    let paris: ArrayRef =
        Arc::new(TimestampMicrosecondArray::from(vec![1]).with_timezone("Europe/Paris"));
    h.refused(
        ARROW_STREAM,
        ipc(&two("at", paris.clone())),
        "at",
        "timestamp[us, UTC]",
    )
    .await;
    h.refused(
        PARQUET,
        parquet(&two("at", paris)),
        "at",
        "timestamp[us, UTC]",
    )
    .await;
    // Nothing of any refused write is stored.
    let (_, answer) = h
        .json(
            reqwest::Method::POST,
            "/api/v1/table/t/fetch",
            &json!({"keys": ["x0", "x1"], "columns": ["emb"]}),
        )
        .await;
    assert_eq!(answer["columns"]["emb"], json!([null, null]));
    // Bad type names in a schema are 400s saying why.
    for (dtype, needle) in [
        ("list<list<int8>>", "do not nest"),
        ("fixed_size_list<utf8, 3>", "holds numbers"),
        ("timestamp[m]", "s, ms, us or ns"),
    ] {
        let (status, answer) = h
            .json(reqwest::Method::PUT, "/api/v1/table/bad", &json!({"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}, "x": {"dtype": dtype}}}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains(needle),
            "{answer}"
        );
    }
}
