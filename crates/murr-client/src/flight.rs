//! The Arrow Flight transport.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{Action, Criteria, FlightDescriptor, Ticket};
use arrow_schema::Schema;
use futures_util::{StreamExt, TryStreamExt};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use std::borrow::Cow;

use murr_api::{CreateTableAction, DType, DropTableAction, FetchRequest, WriteAnswer};

use crate::{ClientBuilder, ColumnDef, Error, Result, TableSchema, single};

/// HTTP/2 flow-control window of one call, in bytes.
const H2_STREAM_WINDOW: u32 = 8 << 20;
/// HTTP/2 flow-control window of the whole connection, in bytes.
const H2_CONNECTION_WINDOW: u32 = 16 << 20;
/// Largest HTTP/2 frame this client accepts, in bytes (the protocol's default is 16 KiB).
const H2_MAX_FRAME: u32 = 4 << 20;

#[derive(Debug, Clone)]
pub(crate) struct FlightClient {
    client: FlightServiceClient<InterceptedService<Channel, Bearer>>,
}

/// Adds the `authorization` metadata to every call, when there is a token.
#[derive(Clone)]
struct Bearer(Option<tonic::metadata::AsciiMetadataValue>);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Bearer(<redacted>)"
        } else {
            "Bearer(None)"
        })
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

fn error(s: &Status) -> Error {
    let from_transport =
        std::error::Error::source(s).is_some_and(|src| src.is::<tonic::transport::Error>());
    let message = s.message().to_owned();
    match s.code() {
        Code::NotFound => Error::NotFound(message),
        Code::Unauthenticated => Error::Unauthenticated(message),
        Code::PermissionDenied => Error::PermissionDenied(message),
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

/// A table schema from a table's Arrow schema: schema metadata `key` names the key column of a
/// generation-1 table; the key columns of a generation-2 table have field metadata `key`.
fn table_schema(schema: &Schema) -> Result<TableSchema> {
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
            let strict = f.metadata().get("strict").is_none_or(|s| s != "false");
            Ok(ColumnDef::new(f.name(), dtype, f.is_nullable()).with_strict(strict))
        })
        .collect::<Result<Vec<_>>>()?;
    let ttl = match schema.metadata().get("ttl") {
        None => None,
        Some(t) => Some(
            t.parse::<u64>()
                .map_err(|_| Error::Protocol(format!("table schema with ttl {t:?}")))?,
        ),
    };
    let schema = match schema.metadata().get("key") {
        Some(key) => TableSchema::new(key, columns),
        None => {
            let keys: Vec<&str> = schema
                .fields()
                .iter()
                .filter(|f| f.metadata().get("key").is_some_and(|k| k == "true"))
                .map(|f| f.name().as_str())
                .collect();
            if keys.is_empty() {
                return Err(Error::Protocol(
                    "table schema without a key (schema metadata `key` or fields marked `key`)"
                        .to_owned(),
                ));
            }
            TableSchema::compound(&keys, columns)
        }
    };
    Ok(schema.with_ttl(ttl))
}

/// The JSON values of a key column, for a ticket.
fn json_keys(name: &str, array: &dyn arrow_array::Array) -> Result<Vec<serde_json::Value>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types as t;
    use arrow_schema::DataType as A;
    if array.null_count() > 0 {
        return Err(Error::InvalidArgument(format!(
            "key column {name:?} holds a null"
        )));
    }
    fn ints<T: arrow_array::ArrowPrimitiveType>(
        a: &dyn arrow_array::Array,
    ) -> Vec<serde_json::Value>
    where
        T::Native: Into<serde_json::Number>,
    {
        a.as_primitive::<T>()
            .values()
            .iter()
            .map(|v| serde_json::Value::Number((*v).into()))
            .collect()
    }
    Ok(match array.data_type() {
        A::Utf8 => array
            .as_string::<i32>()
            .iter()
            .map(|v| v.unwrap_or_default().into())
            .collect(),
        A::LargeUtf8 => array
            .as_string::<i64>()
            .iter()
            .map(|v| v.unwrap_or_default().into())
            .collect(),
        A::Int8 => ints::<t::Int8Type>(array),
        A::Int16 => ints::<t::Int16Type>(array),
        A::Int32 => ints::<t::Int32Type>(array),
        A::Int64 => ints::<t::Int64Type>(array),
        A::UInt8 => ints::<t::UInt8Type>(array),
        A::UInt16 => ints::<t::UInt16Type>(array),
        A::UInt32 => ints::<t::UInt32Type>(array),
        A::UInt64 => ints::<t::UInt64Type>(array),
        other => {
            return Err(Error::InvalidArgument(format!(
                "key column {name:?} is {other}: keys are utf8 or integers"
            )));
        }
    })
}

impl FlightClient {
    pub(crate) fn new(settings: &ClientBuilder) -> Result<Self> {
        let url = &settings.url;
        let bearer = match settings.bearer_header()? {
            Some(v) => {
                let mut v =
                    tonic::metadata::AsciiMetadataValue::try_from(v.as_bytes()).map_err(|_| {
                        Error::InvalidArgument("the token is not printable ASCII".to_owned())
                    })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| Error::InvalidArgument(format!("server URL {url:?}: {e}")))?
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .tcp_nodelay(true)
            // Answers of a few MB flow without waiting for window updates, and small answers
            // do not cost a WINDOW_UPDATE round per call.
            .initial_stream_window_size(Some(H2_STREAM_WINDOW))
            .initial_connection_window_size(Some(H2_CONNECTION_WINDOW))
            // The server may send an answer's message in one DATA frame (one write) instead of
            // 16 KiB frames written one after the other.
            .max_frame_size(Some(H2_MAX_FRAME));
        let endpoint = if url.starts_with("https://") {
            // tonic builds its TLS configuration with the process's default provider.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
            if let Some(pem) = &settings.ca {
                tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            endpoint
                .tls_config(tls)
                .map_err(|e| Error::InvalidArgument(format!("TLS for {url:?}: {e}")))?
        } else {
            endpoint
        };
        let client = FlightServiceClient::with_interceptor(endpoint.connect_lazy(), Bearer(bearer))
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
        self.get(ticket).await
    }

    pub(crate) async fn read(
        &self,
        name: &str,
        keys: &RecordBatch,
        columns: &[&str],
    ) -> Result<RecordBatch> {
        let lists = keys
            .schema_ref()
            .fields()
            .iter()
            .zip(keys.columns())
            .map(|(f, a)| Ok((f.name().as_str(), json_keys(f.name(), a.as_ref())?)))
            .collect::<Result<Vec<_>>>()?;
        let ticket = murr_api::KeyedFetch::json_body(Some(name), &lists, columns);
        self.get(ticket).await
    }

    pub(crate) async fn compact(&self, name: &str) -> Result<()> {
        let body = serde_json::to_vec(&DropTableAction {
            table: name.to_owned(),
        })
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        self.action("compact", body).await.map(drop)
    }

    async fn get(&self, ticket: Vec<u8>) -> Result<RecordBatch> {
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
