//! The Arrow Flight transport.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{Action, Criteria, FlightDescriptor, Ticket};
use arrow_schema::Schema;
use futures_util::{StreamExt, TryStreamExt};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use std::borrow::Cow;

use murr_api::{CreateTableAction, DType, DropTableAction, FetchRequest, WriteAnswer};

use crate::{ColumnDef, Error, Result, TableSchema, single};

/// HTTP/2 flow-control window of one call, in bytes.
const H2_STREAM_WINDOW: u32 = 8 << 20;
/// HTTP/2 flow-control window of the whole connection, in bytes.
const H2_CONNECTION_WINDOW: u32 = 16 << 20;
/// Largest HTTP/2 frame this client accepts, in bytes (the protocol's default is 16 KiB).
const H2_MAX_FRAME: u32 = 4 << 20;

#[derive(Debug, Clone)]
pub(crate) struct FlightClient {
    client: FlightServiceClient<Channel>,
}

fn error(s: &Status) -> Error {
    let from_transport =
        std::error::Error::source(s).is_some_and(|src| src.is::<tonic::transport::Error>());
    let message = s.message().to_owned();
    match s.code() {
        Code::NotFound => Error::NotFound(message),
        Code::AlreadyExists => Error::AlreadyExists(message),
        Code::InvalidArgument => Error::InvalidArgument(message),
        Code::Unavailable if from_transport => Error::Transport(message),
        Code::Unavailable => Error::Unavailable(message),
        Code::DeadlineExceeded | Code::Cancelled => Error::Transport(message),
        Code::Unknown if from_transport => Error::Transport(message),
        other => Error::Protocol(format!("{other:?}: {message}")),
    }
}

fn flight_error(e: FlightError) -> Error {
    match e {
        FlightError::Tonic(s) => error(&s),
        other => Error::Protocol(other.to_string()),
    }
}

/// A table schema from a table's Arrow schema (metadata `key` names the key column).
fn table_schema(schema: &Schema) -> Result<TableSchema> {
    let key = schema
        .metadata()
        .get("key")
        .ok_or_else(|| Error::Protocol("table schema without a `key` metadata entry".to_owned()))?;
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let dtype = DType::from_arrow(f.data_type()).ok_or_else(|| {
                Error::Protocol(format!(
                    "column {:?} has type {} murr does not know",
                    f.name(),
                    f.data_type()
                ))
            })?;
            Ok(ColumnDef::new(f.name(), dtype, f.is_nullable()))
        })
        .collect::<Result<Vec<_>>>()?;
    let ttl = match schema.metadata().get("ttl") {
        None => None,
        Some(t) => Some(
            t.parse::<u64>()
                .map_err(|_| Error::Protocol(format!("table schema with ttl {t:?}")))?,
        ),
    };
    Ok(TableSchema::new(key, columns).with_ttl(ttl))
}

impl FlightClient {
    pub(crate) fn new(url: &str, timeout: Duration, connect_timeout: Duration) -> Result<Self> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| Error::InvalidArgument(format!("server URL {url:?}: {e}")))?
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            // Answers of a few MB flow without waiting for window updates, and small answers
            // do not cost a WINDOW_UPDATE round per call.
            .initial_stream_window_size(Some(H2_STREAM_WINDOW))
            .initial_connection_window_size(Some(H2_CONNECTION_WINDOW))
            // The server may send an answer's message in one DATA frame (one write) instead of
            // 16 KiB frames written one after the other.
            .max_frame_size(Some(H2_MAX_FRAME));
        let client = FlightServiceClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        Ok(FlightClient { client })
    }

    /// Runs an action; returns the body of its first result (empty when there is none).
    async fn action(&self, kind: &str, body: Vec<u8>) -> Result<Vec<u8>> {
        let action = Action {
            r#type: kind.to_owned(),
            body: body.into(),
        };
        let mut results = self
            .client
            .clone()
            .do_action(action)
            .await
            .map_err(|s| error(&s))?
            .into_inner();
        let mut first = None;
        while let Some(r) = results.message().await.map_err(|s| error(&s))? {
            first.get_or_insert(r.body.to_vec());
        }
        Ok(first.unwrap_or_default())
    }

    pub(crate) async fn alter_table(
        &self,
        name: &str,
        change: &murr_api::AlterRequest,
    ) -> Result<TableSchema> {
        let body = self
            .action("add_columns", change.to_json(Some(name)))
            .await?;
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("schema: {e}")))
    }

    pub(crate) async fn create_table(&self, name: &str, schema: &TableSchema) -> Result<()> {
        // Serialized straight from the struct: a serde_json::Value would sort the columns.
        let body = serde_json::to_vec(&CreateTableAction {
            table: name.to_owned(),
            schema: schema.clone(),
        })
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        self.action("create_table", body).await.map(drop)
    }

    pub(crate) async fn drop_table(&self, name: &str) -> Result<()> {
        let body = serde_json::to_vec(&DropTableAction {
            table: name.to_owned(),
        })
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        self.action("drop_table", body).await.map(drop)
    }

    pub(crate) async fn list_tables(&self) -> Result<BTreeMap<String, TableSchema>> {
        let mut infos = self
            .client
            .clone()
            .list_flights(Criteria::default())
            .await
            .map_err(|s| error(&s))?
            .into_inner();
        let mut out = BTreeMap::new();
        while let Some(info) = infos.message().await.map_err(|s| error(&s))? {
            let name = info
                .flight_descriptor
                .as_ref()
                .and_then(|d| d.path.first().cloned())
                .ok_or_else(|| Error::Protocol("flight info without a table path".to_owned()))?;
            let schema = info
                .try_decode_schema()
                .map_err(|e| Error::Protocol(format!("schema of {name}: {e}")))?;
            out.insert(name, table_schema(&schema)?);
        }
        Ok(out)
    }

    pub(crate) async fn schema(&self, name: &str) -> Result<TableSchema> {
        let result = self
            .client
            .clone()
            .get_schema(FlightDescriptor::new_path(vec![name.to_owned()]))
            .await
            .map_err(|s| error(&s))?
            .into_inner();
        let schema = Schema::try_from(&result)
            .map_err(|e| Error::Protocol(format!("schema of {name}: {e}")))?;
        table_schema(&schema)
    }

    pub(crate) async fn write(&self, name: &str, batches: Vec<RecordBatch>) -> Result<u64> {
        let data: Vec<_> = FlightDataEncoderBuilder::new()
            .with_flight_descriptor(Some(FlightDescriptor::new_path(vec![name.to_owned()])))
            .build(futures_util::stream::iter(batches.into_iter().map(Ok)))
            .try_collect()
            .await
            .map_err(|e| Error::InvalidArgument(format!("encoding Flight data: {e}")))?;
        let mut results = self
            .client
            .clone()
            .do_put(futures_util::stream::iter(data))
            .await
            .map_err(|s| error(&s))?
            .into_inner();
        let first = results
            .message()
            .await
            .map_err(|s| error(&s))?
            .ok_or_else(|| Error::Protocol("do_put answered no result".to_owned()))?;
        while results.message().await.map_err(|s| error(&s))?.is_some() {}
        let answer: WriteAnswer = serde_json::from_slice(&first.app_metadata)
            .map_err(|e| Error::Protocol(format!("do_put result: {e}")))?;
        Ok(answer.rows)
    }

    pub(crate) async fn fetch(
        &self,
        name: &str,
        keys: &[&str],
        columns: &[&str],
    ) -> Result<RecordBatch> {
        let ticket = serde_json::to_vec(&FetchRequest {
            table: Some(Cow::Borrowed(name)),
            keys: keys.iter().map(|k| Cow::Borrowed(*k)).collect(),
            columns: columns.iter().map(|c| Cow::Borrowed(*c)).collect(),
        })
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let data = self
            .client
            .clone()
            .do_get(Ticket {
                ticket: ticket.into(),
            })
            .await
            .map_err(|s| error(&s))?
            .into_inner();
        let mut stream = FlightRecordBatchStream::new_from_flight_data(
            data.map_err(|s| FlightError::Tonic(Box::new(s))),
        );
        let mut batches = Vec::new();
        while let Some(b) = stream.next().await {
            batches.push(b.map_err(flight_error)?);
        }
        let schema = stream
            .schema()
            .cloned()
            .ok_or_else(|| Error::Protocol("do_get answered no schema".to_owned()))?;
        single(schema, batches)
    }
}
