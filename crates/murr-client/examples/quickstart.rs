//! Talk to a running murr: create a table, write a batch, fetch it back over HTTP and Flight.
//!
//! Start a server first (`cargo run --release -p murr-server`), then:
//! `cargo run -p murr-client --example quickstart [http://127.0.0.1:8080] [http://127.0.0.1:8081]`

#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use murr_client::{Client, ColumnDef, DType, Error, TableSchema, Transport};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let http_url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let flight_url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8081".to_owned());
    let http = Client::builder(&http_url)
        .transport(Transport::Http)
        .build()?;
    let flight = Client::builder(&flight_url)
        .transport(Transport::Flight)
        .build()?;

    let schema = TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("score", DType::Float32, true),
        ],
    );
    match http.drop_table("quickstart").await {
        Ok(()) | Err(Error::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    http.create_table("quickstart", &schema).await?;
    let batch = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
        ),
        (
            "score",
            Arc::new(Float32Array::from(vec![0.5, 0.25, 0.125])) as ArrayRef,
        ),
    ])?;
    let rows = flight.write("quickstart", [batch]).await?;
    println!("wrote {rows} rows over Flight");
    let over_http = http
        .fetch("quickstart", &["c", "missing", "a"], &["id", "score"])
        .await?;
    let over_flight = flight
        .fetch("quickstart", &["c", "missing", "a"], &["id", "score"])
        .await?;
    assert_eq!(over_http, over_flight);
    println!("fetched over HTTP and Flight: {over_http:?}");
    println!(
        "tables: {:?}",
        http.list_tables().await?.keys().collect::<Vec<_>>()
    );
    http.drop_table("quickstart").await?;
    Ok(())
}
