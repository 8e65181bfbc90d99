//! `murr_client::Client::load` against a murr HTTP front-end that reads a Parquet dump from a
//! real S3 server (SeaweedFS): it waits for the load, reports progress, and turns a failed load
//! into `Error::LoadFailed` with the server's reason. (The `murr` binary's loads, with
//! pyarrow-written dumps and `murr load`, are in murr-server's node tests.)

#![allow(clippy::disallowed_methods, reason = "tests")]

use std::io::Write;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use murr_client::{Client, Error, LoadMode, LoadState, Transport};
use murr_directory::{Directory, FilePath, ObjectStoreDirectory, RamDirectory, RemoteOptions};
use murr_format::TableSchema;
use murr_table::{Store, StoreOptions};
use murr_tests::seaweed::{ACCESS_KEY, SECRET_KEY, Seaweed};

/// A Parquet file of keys `k{from}..k{from + rows}`, `v` = the key's number times 10.
fn parquet(from: i64, rows: i64) -> Vec<u8> {
    let ids: Vec<String> = (from..from + rows).map(|i| format!("k{i}")).collect();
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(StringArray::from(ids)) as ArrayRef),
        (
            "v",
            Arc::new(Int64Array::from_iter_values(
                (from..from + rows).map(|i| i * 10),
            )) as ArrayRef,
        ),
    ])
    .expect("batch");
    let mut out = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    out
}

#[test]
fn the_client_loads_a_dump_waits_and_reports_a_failed_load() {
    let s3 = Seaweed::start("client-load");
    let options = RemoteOptions {
        endpoint: Some(s3.endpoint.clone()),
        allow_http: true,
        s3_keys: Some((ACCESS_KEY.to_owned(), SECRET_KEY.to_owned())),
        ..RemoteOptions::default()
    };
    let dump = ObjectStoreDirectory::from_url(&s3.url("dump"), &options).expect("bucket");
    for (i, from) in [0, 500, 1000].into_iter().enumerate() {
        let mut file = dump
            .create(&FilePath::new(format!("part-{i}.parquet")).expect("path"))
            .expect("create");
        file.write_all(&parquet(from, 500)).expect("write");
        file.finish().expect("upload");
    }

    let store = Arc::new(
        Store::open(Arc::new(RamDirectory::new()), StoreOptions::default()).expect("store"),
    );
    let schema: TableSchema = serde_json::from_str(
        r#"{"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}, "v": {"dtype": "int64"}}}"#,
    )
    .expect("schema");
    store.create_table("t", schema).expect("create");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let listener = murr_http::bind("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("binds");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let router = murr_http::router(murr_http::AppState {
            store,
            config: Arc::default(),
            node: Arc::default(),
            registry: None,
            loads: Arc::new(murr_http::Loads::new(options)),
        });
        tokio::spawn(async move {
            murr_http::serve(
                listener,
                router,
                &murr_http::HttpConfig::default(),
                std::future::pending(),
            )
            .await
        });
        let client = Client::builder(&url).build().expect("client");
        let mut seen = Vec::new();
        let done = client
            .load("t", &s3.url("dump/"), LoadMode::Replace, |s| {
                seen.push(s.state);
            })
            .await
            .expect("the load commits");
        assert_eq!(done.state, LoadState::Done);
        assert_eq!((done.files, done.files_done, done.rows), (Some(3), 3, 1500));
        assert_eq!(done.result.map(|r| r.stored), Some(1500));
        assert_eq!(seen.first(), Some(&LoadState::Running));
        assert_eq!(seen.last(), Some(&LoadState::Done));
        let again = client
            .load_status("t", &done.id)
            .await
            .expect("the status stays");
        assert_eq!(again.state, LoadState::Done);
        let rows = client
            .fetch("t", &["k0", "k1499", "k1500"], &["v"])
            .await
            .expect("fetch");
        let v = rows
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("int64");
        assert_eq!(v.iter().collect::<Vec<_>>(), [Some(0), Some(14_990), None]);

        match client
            .load("t", &s3.url("nothing/"), LoadMode::Upsert, |_| {})
            .await
        {
            Err(Error::LoadFailed(reason)) => assert!(reason.contains("no files at"), "{reason}"),
            other => panic!("a load of nothing fails: {other:?}"),
        }
        match client.load_status("t", "no-such-load").await {
            Err(Error::NotFound(_)) => {}
            other => panic!("an unknown load is not found: {other:?}"),
        }
        let flight = Client::builder(&url)
            .transport(Transport::Flight)
            .build()
            .expect("client");
        match flight
            .start_load("t", &s3.url("dump/"), LoadMode::Upsert)
            .await
        {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("HTTP"), "{m}"),
            other => panic!("loads are HTTP calls: {other:?}"),
        }
    });
}
