//! murr-client drives every method over both transports against a real server; both give the
//! same batches, and the error paths give the typed errors.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use murr_client::{Client, ColumnDef, DType, Error, TableSchema, Transport};
use murr_tests::TestServer;

fn schema() -> TableSchema {
    TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("score", DType::Float32, true),
            ColumnDef::new("n", DType::Int64, false),
            ColumnDef::new("tag", DType::Utf8, true),
        ],
    )
}

fn batch(keys: &[&str], base: i64) -> RecordBatch {
    RecordBatch::try_from_iter_with_nullable(vec![
        (
            "id",
            Arc::new(StringArray::from(keys.to_vec())) as ArrayRef,
            false,
        ),
        (
            "n",
            Arc::new(Int64Array::from_iter_values(
                (0..keys.len() as i64).map(|i| base + i),
            )) as ArrayRef,
            false,
        ),
        (
            "score",
            Arc::new(Float32Array::from_iter(
                (0..keys.len()).map(|i| (i % 2 == 0).then_some(i as f32 * 0.5)),
            )) as ArrayRef,
            true,
        ),
        (
            "tag",
            Arc::new(StringArray::from_iter(
                (0..keys.len()).map(|i| (i % 3 != 0).then(|| format!("t{i}"))),
            )) as ArrayRef,
            true,
        ),
    ])
    .expect("batch")
}

/// Column `i` of `batch`, an int64 column.
fn int64s(batch: &RecordBatch, i: usize) -> &Int64Array {
    batch
        .column(i)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("int64")
}

async fn exercise(client: &Client, table: &str) -> (RecordBatch, RecordBatch) {
    client
        .create_table(table, &schema())
        .await
        .expect("creates");
    assert_eq!(
        client.schema(table).await.expect("schema"),
        schema(),
        "{table}"
    );
    assert_eq!(client.list_tables().await.expect("lists")[table], schema());
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let rows = client
        .write(table, vec![batch(&refs[..30], 0), batch(&refs[20..], 100)])
        .await
        .expect("writes");
    assert_eq!(rows, 60);
    let mut asked: Vec<&str> = refs.iter().rev().copied().collect();
    asked.extend(["missing", "k0", "k0"]);
    let full = client
        .fetch(table, &asked, &["tag", "n", "score", "id"])
        .await
        .expect("fetches");
    let none = client
        .fetch(table, &[] as &[&str], &["n"])
        .await
        .expect("fetches no keys");
    (full, none)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_transports_give_identical_batches() {
    let server = TestServer::start().await;
    let http = server.client(Transport::Http);
    let flight = server.client(Transport::Flight);
    let (h_full, h_none) = exercise(&http, "via_http").await;
    let (f_full, f_none) = exercise(&flight, "via_flight").await;
    assert_eq!(h_full, f_full);
    assert_eq!(h_none, f_none);
    assert_eq!(h_full.num_rows(), 53);
    assert_eq!(h_none.num_rows(), 0);
    let n = int64s(&h_full, 1);
    // k49 was last written by the second batch (base 100, position 29); k0 only by the first.
    assert_eq!((n.value(0), n.is_null(50), n.value(51)), (129, true, 0));
    // Each transport reads what the other wrote.
    assert_eq!(
        http.fetch("via_flight", &["k3"], &["n"])
            .await
            .expect("fetches"),
        flight
            .fetch("via_flight", &["k3"], &["n"])
            .await
            .expect("fetches")
    );
    http.drop_table("via_http").await.expect("drops");
    flight.drop_table("via_flight").await.expect("drops");
    assert!(http.list_tables().await.expect("lists").is_empty());
    assert!(flight.list_tables().await.expect("lists").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed_on_both_transports() {
    let server = TestServer::start().await;
    for transport in [Transport::Http, Transport::Flight] {
        let c = server.client(transport);
        let name = format!("t_{transport:?}");
        assert!(
            matches!(c.schema(&name).await, Err(Error::NotFound(m)) if m.contains(&name)),
            "{transport:?}"
        );
        assert!(matches!(
            c.fetch(&name, &["a"], &["n"]).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(c.drop_table(&name).await, Err(Error::NotFound(_))));
        c.create_table(&name, &schema()).await.expect("creates");
        assert!(matches!(
            c.create_table(&name, &schema()).await,
            Err(Error::AlreadyExists(_))
        ));
        let bad = TableSchema::new("id", vec![ColumnDef::new("id", DType::Utf8, true)]);
        assert!(
            matches!(c.create_table("other", &bad).await, Err(Error::InvalidArgument(m)) if m.contains("nullable"))
        );
        let err = c
            .fetch(&name, &["a"], &["n", "nope"])
            .await
            .expect_err("unknown column");
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("\"nope\"")),
            "{transport:?}: {err}"
        );
        // A type that does not fit: float64 into the float32 column.
        let wrong = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
            ("n", Arc::new(Int32Array::from(vec![1])) as ArrayRef),
            ("score", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef),
        ])
        .expect("batch");
        let err = c.write(&name, vec![wrong]).await.expect_err("wrong type");
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("\"score\"")),
            "{transport:?}: {err}"
        );
        let unknown = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
            ("n", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("extra", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ])
        .expect("batch");
        assert!(
            matches!(c.write(&name, vec![unknown]).await, Err(Error::InvalidArgument(m)) if m.contains("\"extra\""))
        );
        assert!(matches!(
            c.write("nope", vec![batch(&["a"], 0)]).await,
            Err(Error::NotFound(_))
        ));
    }
}

/// With tokens configured, the client sends its token on both transports, and a missing or
/// insufficient one comes back as the typed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_sent_and_refusals_typed_on_both_transports() {
    use murr_server::config::{Scope, TokenConfig};
    const ADMIN: &str = "admin-token-0123456789";
    const READ: &str = "read-token-0123456789";
    let server = TestServer::start_with(|c| {
        c.server.auth.tokens = vec![
            TokenConfig {
                name: "ops".to_owned(),
                token: Some(ADMIN.into()),
                token_sha256: None,
                token_file: None,
                scopes: vec![Scope::Read, Scope::Write, Scope::Admin],
            },
            TokenConfig {
                name: "inference".to_owned(),
                token: Some(READ.into()),
                token_sha256: None,
                token_file: None,
                scopes: vec![Scope::Read],
            },
        ];
    })
    .await;
    for transport in [Transport::Http, Transport::Flight] {
        let url = server.url(transport);
        let with = |token: Option<&str>| {
            let b = Client::builder(url).transport(transport);
            match token {
                Some(t) => b.token(t),
                None => b,
            }
            .build()
            .expect("client")
        };
        let (admin, reader, anonymous) = (with(Some(ADMIN)), with(Some(READ)), with(None));
        let name = format!("t_{transport:?}");
        assert!(
            matches!(
                anonymous.create_table(&name, &schema()).await,
                Err(Error::Unauthenticated(_))
            ),
            "{transport:?}"
        );
        assert!(
            matches!(
                with(Some("wrong-token-0123456789")).list_tables().await,
                Err(Error::Unauthenticated(_))
            ),
            "{transport:?}"
        );
        let err = reader
            .create_table(&name, &schema())
            .await
            .expect_err("read only");
        assert!(
            matches!(&err, Error::PermissionDenied(m) if m.contains("admin") && !m.contains(READ)),
            "{transport:?}: {err}"
        );
        admin
            .create_table(&name, &schema())
            .await
            .expect("admin creates");
        assert!(matches!(
            reader.write(&name, vec![batch(&["a"], 7)]).await,
            Err(Error::PermissionDenied(_))
        ));
        admin
            .write(&name, vec![batch(&["a"], 7)])
            .await
            .expect("admin writes");
        let got = reader.fetch(&name, &["a"], &["n"]).await.expect("reads");
        assert_eq!(int64s(&got, 0).value(0), 7);
        assert!(matches!(
            anonymous.fetch(&name, &["a"], &["n"]).await,
            Err(Error::Unauthenticated(_))
        ));
    }
}

/// With `server.tls`, both transports speak TLS: a client that trusts the CA reads and writes
/// over `https://`; one that does not, and a plain-text one, fail as transport errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_both_transports_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("temp folder");
    let certs = murr_tests::tls::private_ca(dir.path());
    let server = TestServer::start_with(|c| {
        c.server.tls.cert = Some(certs.cert.clone());
        c.server.tls.key = Some(certs.key.clone());
    })
    .await;
    for transport in [Transport::Http, Transport::Flight] {
        let plain = server.url(transport);
        let secure = plain.replacen("http://", "https://", 1);
        let trusting = Client::builder(secure.clone())
            .transport(transport)
            .ca_cert_pem(certs.ca_pem.clone())
            .build()
            .expect("client");
        let name = format!("t_{transport:?}");
        trusting
            .create_table(&name, &schema())
            .await
            .expect("creates over TLS");
        trusting
            .write(&name, vec![batch(&["a", "b"], 5)])
            .await
            .expect("writes over TLS");
        let got = trusting
            .fetch(&name, &["b"], &["n"])
            .await
            .expect("reads over TLS");
        assert_eq!(int64s(&got, 0).value(0), 6);
        let untrusting = Client::builder(secure)
            .transport(transport)
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("client");
        let err = untrusting.list_tables().await.expect_err("an unknown CA");
        assert!(matches!(err, Error::Transport(_)), "{transport:?}: {err}");
        let cleartext = Client::builder(plain)
            .transport(transport)
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("client");
        let err = cleartext
            .list_tables()
            .await
            .expect_err("plain text to a TLS port");
        assert!(
            matches!(err, Error::Transport(_) | Error::Protocol(_)),
            "{transport:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tickets_are_invalid_argument() {
    use arrow_flight::Ticket;
    use arrow_flight::flight_service_client::FlightServiceClient;
    let server = TestServer::start().await;
    server
        .client(Transport::Http)
        .create_table("t", &schema())
        .await
        .expect("creates");
    let channel = tonic::transport::Endpoint::from_shared(server.flight_url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let mut raw = FlightServiceClient::new(channel);
    for ticket in [
        &b"not json"[..],
        br#"{"table": "t"}"#,
        br#"{"table": "t", "keys": "a", "columns": []}"#,
        br#"{"keys": ["a"], "columns": []}"#,
    ] {
        let status = raw
            .do_get(Ticket {
                ticket: ticket.to_vec().into(),
            })
            .await
            .expect_err("bad ticket");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    }
    let status = raw
        .do_get(Ticket {
            ticket: br#"{"table": "nope", "keys": [], "columns": []}"#.to_vec().into(),
        })
        .await
        .expect_err("unknown table");
    assert_eq!(status.code(), tonic::Code::NotFound);
    // The service still answers after bad input.
    let ok = raw
        .do_get(Ticket {
            ticket: br#"{"table": "t", "keys": ["a"], "columns": ["n"]}"#.to_vec().into(),
        })
        .await;
    assert!(ok.is_ok());
    let actions: Vec<_> = futures_util::StreamExt::collect::<Vec<_>>(
        raw.list_actions(arrow_flight::Empty {})
            .await
            .expect("lists")
            .into_inner(),
    )
    .await;
    let names: Vec<String> = actions
        .into_iter()
        .map(|a| a.expect("an action").r#type)
        .collect();
    assert_eq!(
        names,
        [
            "create_table",
            "add_columns",
            "alter_table",
            "drop_table",
            "compact"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_gone_is_a_transport_error() {
    let server = TestServer::start().await;
    let http = server.client(Transport::Http);
    let flight = server.client(Transport::Flight);
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for c in [http, flight] {
        let err = c.list_tables().await.expect_err("server is gone");
        assert!(matches!(err, Error::Transport(_)), "{err:?}");
    }
}

/// A Flight upload whose call ends before the client's end of stream (here its deadline passes,
/// and the server drops the call) commits nothing, though three whole batches arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_flight_upload_commits_nothing() {
    use arrow_flight::encode::FlightDataEncoderBuilder;
    use arrow_flight::flight_service_client::FlightServiceClient;
    use arrow_flight::{FlightData, FlightDescriptor};
    use futures_util::StreamExt;
    let server = TestServer::start().await;
    let client = server.client(Transport::Http);
    client.create_table("t", &schema()).await.expect("creates");
    let batches = vec![batch(&["a"], 1), batch(&["b"], 2), batch(&["c"], 3)];
    let messages: Vec<FlightData> = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_path(vec!["t".to_owned()])))
        .build(futures_util::stream::iter(batches.into_iter().map(Ok)))
        .map(|m| m.expect("encodes"))
        .collect()
        .await;
    // The messages, then a stream that never ends: the client neither finishes nor cancels.
    let upload = futures_util::stream::iter(messages).chain(futures_util::stream::pending());
    let channel = tonic::transport::Endpoint::from_shared(server.flight_url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connects");
    // The deadline travels as gRPC's `grpc-timeout` header; both the client and the server
    // enforce it. When the client's side fires first, the server sees the request stream end
    // as if the client had finished it: the server must still know the upload is not complete.
    let mut request = tonic::Request::new(upload);
    request
        .metadata_mut()
        .insert("grpc-timeout", "700m".parse().expect("header value"));
    let status = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        FlightServiceClient::new(channel).do_put(request),
    )
    .await
    .expect("the server ends the call")
    .expect_err("the deadline passes");
    assert!(
        matches!(
            status.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{status:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let out = client
        .fetch("t", &["a", "b", "c"], &["n"])
        .await
        .expect("fetches");
    assert_eq!(
        out.column(0).null_count(),
        3,
        "nothing of the cancelled upload is visible"
    );
}

/// Flight tickets obey the same fetch limits as HTTP bodies, and both transports name them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_limits_hold_over_both_transports() {
    let server = TestServer::start_with(|c| c.server.fetch.max_keys = 3).await;
    let http = server.client(Transport::Http);
    http.create_table("t", &schema()).await.expect("creates");
    for transport in [Transport::Http, Transport::Flight] {
        let c = server.client(transport);
        let err = c
            .fetch("t", &["a", "b", "c", "d"], &["n"])
            .await
            .expect_err("4 keys");
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("server.fetch.max_keys")),
            "{transport:?}: {err}"
        );
        let err = c
            .fetch("t", &["a"], &["n", "n"])
            .await
            .expect_err("a column twice");
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("twice")),
            "{transport:?}: {err}"
        );
        c.fetch("t", &["a", "b", "c"], &["n"])
            .await
            .expect("within the limit");
    }
}

/// A Flight upload is bounded as a whole, not only message by message: past the limit it is
/// refused naming the setting, and nothing of it is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flight_upload_past_its_limit_is_refused_whole() {
    let server = TestServer::start_with(|c| c.server.grpc.max_upload_size = 4000).await;
    let flight = server.client(Transport::Flight);
    flight.create_table("t", &schema()).await.expect("creates");
    // Many small batches, each far below the limit, together above it.
    let batches: Vec<RecordBatch> = (0..40).map(|i| batch(&[&format!("k{i}")], i)).collect();
    let err = flight.write("t", batches).await.expect_err("too large");
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("server.grpc.max_upload_size")),
        "{err}"
    );
    let out = flight
        .fetch("t", &["k0", "k39"], &["n"])
        .await
        .expect("fetches");
    assert_eq!(
        out.column(0).null_count(),
        2,
        "nothing of the refused upload is visible"
    );
    flight
        .write("t", [batch(&["k0"], 0)])
        .await
        .expect("a small upload passes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_and_ttl_change_over_both_transports() {
    let server = TestServer::start().await;
    for transport in [Transport::Http, Transport::Flight] {
        let client = server.client(transport);
        let table = format!("life-{transport:?}");
        client
            .create_table(&table, &schema().with_ttl(Some(7 * 86_400)))
            .await
            .expect("creates");
        client
            .write(&table, [batch(&["a", "b"], 1)])
            .await
            .expect("writes");
        let extra = ColumnDef::new("extra", DType::Float64, true);
        let schema = client
            .add_columns(&table, std::slice::from_ref(&extra))
            .await
            .expect("adds a column");
        assert_eq!(schema.columns.last(), Some(&extra));
        assert_eq!(schema.ttl, Some(7 * 86_400));
        // Every way to read the schema shows the change, over this transport.
        assert_eq!(client.schema(&table).await.expect("schema"), schema);
        assert_eq!(
            client.list_tables().await.expect("lists").get(&table),
            Some(&schema)
        );
        let got = client
            .fetch(&table, &["a"], &["extra", "n"])
            .await
            .expect("fetches");
        assert_eq!(got.column(0).null_count(), 1, "{transport:?}");
        let err = client
            .add_columns(&table, &[ColumnDef::new("n", DType::Utf8, true)])
            .await
            .expect_err("a column it has");
        assert!(
            matches!(&err, Error::AlreadyExists(m) if m.contains("\"n\"")),
            "{transport:?}: {err}"
        );
        let err = client
            .add_columns(&table, &[ColumnDef::new("z", DType::Int8, false)])
            .await
            .expect_err("not nullable");
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("nullable")),
            "{err}"
        );
        let err = client
            .add_columns("nope", &[ColumnDef::new("z", DType::Int8, true)])
            .await
            .expect_err("no table");
        assert!(matches!(err, Error::NotFound(_)), "{err}");
        let schema = client.set_ttl(&table, None).await.expect("removes the ttl");
        assert_eq!(schema.ttl, None);
        assert_eq!(client.schema(&table).await.expect("schema").ttl, None);
        let err = client.set_ttl(&table, Some(0)).await.expect_err("ttl 0");
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("ttl")),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compound_keys_read_sparse_over_both_transports() {
    let server = TestServer::start().await;
    let ratings = TableSchema::compound(
        &["user", "item"],
        vec![
            ColumnDef::new("user", DType::Utf8, false),
            ColumnDef::new("item", DType::Int64, false),
            ColumnDef::new("score", DType::Float32, true).with_strict(false),
        ],
    );
    let mut answers = Vec::new();
    for transport in [Transport::Http, Transport::Flight] {
        let client = server.client(transport);
        let table = format!("ratings-{transport:?}");
        client
            .create_table(&table, &ratings)
            .await
            .expect("creates");
        // The schema comes back as generation 2, key columns and strictness kept, over both.
        assert_eq!(client.schema(&table).await.expect("schema"), ratings);
        let rows = RecordBatch::try_from_iter([
            (
                "user",
                Arc::new(StringArray::from(vec!["u1", "u1", "u2"])) as ArrayRef,
            ),
            (
                "item",
                Arc::new(Int64Array::from(vec![1, 2, 1])) as ArrayRef,
            ),
            (
                "score",
                Arc::new(Float64Array::from(vec![0.1, 0.2, 0.3])) as ArrayRef,
            ),
        ])
        .expect("batch");
        client.write(&table, [rows.clone()]).await.expect("writes");
        client.write(&table, [rows]).await.expect("writes again");
        client.compact(&table).await.expect("compacts");
        // int32 items widen to the int64 key; a miss has no row, a duplicate two.
        let keys = RecordBatch::try_from_iter([
            (
                "user",
                Arc::new(StringArray::from(vec!["u2", "zz", "u1", "u2"])) as ArrayRef,
            ),
            (
                "item",
                Arc::new(Int32Array::from(vec![1, 1, 2, 1])) as ArrayRef,
            ),
        ])
        .expect("keys");
        let got = client.read(&table, &keys, &["score"]).await.expect("reads");
        assert_eq!(got.schema().field(0).name(), "_idx");
        let idx: Vec<u32> = got
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::UInt32Array>()
            .expect("uint32")
            .values()
            .to_vec();
        assert_eq!(idx, [0, 2, 3], "{transport:?}");
        let scores = got
            .column(1)
            .as_any()
            .downcast_ref::<Float32Array>()
            .expect("float32");
        assert_eq!(scores.values().to_vec(), [0.3f32, 0.2, 0.3]);
        answers.push(got);
        // A key column the table does not have, and a missing table, are typed errors.
        let wrong = RecordBatch::try_from_iter([(
            "user",
            Arc::new(StringArray::from(vec!["u1"])) as ArrayRef,
        )])
        .expect("keys");
        let err = client
            .read(&table, &wrong, &["score"])
            .await
            .expect_err("lacks item");
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("\"item\"")),
            "{transport:?}: {err}"
        );
        let err = client.compact("nope").await.expect_err("no table");
        assert!(matches!(err, Error::NotFound(_)), "{transport:?}: {err}");
    }
    assert_eq!(
        answers[0], answers[1],
        "both transports give the same batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_keys_over_both_transports() {
    let server = TestServer::start().await;
    let schema = TableSchema::compound(
        &["id"],
        vec![
            ColumnDef::new("id", DType::Int32, false),
            ColumnDef::new("v", DType::Float64, true),
        ],
    );
    for transport in [Transport::Http, Transport::Flight] {
        let client = server.client(transport);
        let table = format!("ints-{transport:?}");
        client.create_table(&table, &schema).await.expect("creates");
        let rows = RecordBatch::try_from_iter([
            ("id", Arc::new(Int32Array::from(vec![-1, 7])) as ArrayRef),
            (
                "v",
                Arc::new(Float64Array::from(vec![0.5, 1.5])) as ArrayRef,
            ),
        ])
        .expect("batch");
        client.write(&table, [rows]).await.expect("writes");
        let keys = |ids: Vec<i32>| {
            RecordBatch::try_from_iter([("id", Arc::new(Int32Array::from(ids)) as ArrayRef)])
                .expect("keys")
        };
        let got = client
            .read(&table, &keys(vec![7, 8, -1]), &["v"])
            .await
            .expect("reads");
        let idx = got
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::UInt32Array>()
            .expect("uint32");
        assert_eq!(idx.values().to_vec(), [0, 2], "{transport:?}");
        // Nothing found: no rows, the full schema.
        let none = client
            .read(&table, &keys(vec![100]), &["v"])
            .await
            .expect("reads");
        assert_eq!(none.num_rows(), 0);
        assert_eq!(none.schema().fields().len(), 2);
        for bad in ["_idx", "id"] {
            let err = client
                .read(&table, &keys(vec![7]), &[bad])
                .await
                .expect_err("not a column to ask for");
            assert!(
                matches!(&err, Error::InvalidArgument(_)),
                "{transport:?} {bad}: {err}"
            );
        }
        // Keys as strings do not fit an integer key.
        let err = client
            .fetch(&table, &["7"], &["v"])
            .await
            .expect_err("an int32 key");
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("\"id\" (int32)")),
            "{transport:?}: {err}"
        );
    }
}
