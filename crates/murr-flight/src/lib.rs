//! murr's Arrow Flight service over [`murr_table::Store`], as `docs/api.md` states it:
//! `do_get` with a JSON ticket, `get_flight_info`/`get_schema`/`list_flights` for table schemas,
//! `do_put` to write, and the actions `create_table` and `drop_table`, so that a Flight-only
//! client needs nothing else. Other RPCs answer Unimplemented. With tokens configured, every call
//! needs `authorization: Bearer <token>` metadata with the call's scope ([`FlightConfig::auth`]).
//!
//! Table errors map to gRPC codes in one place ([`status`]). Storage and Arrow work runs on
//! tokio's blocking pool, except small fetches (cheaper than the hand-off); answers are streamed
//! in messages of bounded size.

mod metrics;

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use arrow_schema::Schema;
use futures_util::{FutureExt, Stream, StreamExt, TryStreamExt};
use murr_api::auth::{AuthHandle, Scope};
use murr_api::{
    AnyFetch, CompactAnswer, CreateTableAction, DropAnswer, DropTableAction, FetchLimits,
    SMALL_FETCH_CELLS, WriteAnswer, encode_keys, sparse_answer,
};
use murr_table::{ErrorKind, Store, Table};
use tonic::{Request, Response, Status, Streaming};

pub use metrics::{FlightMetrics, Observed};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The Flight front-end's settings.
#[derive(Debug, Clone)]
pub struct FlightConfig {
    /// Largest gRPC message accepted or sent, in bytes. Default 64 MiB.
    pub max_message_size: usize,
    /// Target size of one Flight data message of an answer; larger answers are split. Default 2 MiB.
    pub max_flight_data_size: usize,
    /// Bounds on one fetch's keys and cells.
    pub fetch_limits: FetchLimits,
    /// Largest `do_put` stream, all its messages together, in bytes. Default 1 GiB.
    pub max_upload_size: u64,
    /// The bearer tokens calls need, in the `authorization` metadata (open by default).
    pub auth: AuthHandle,
}

impl Default for FlightConfig {
    fn default() -> Self {
        FlightConfig {
            max_message_size: 64 << 20,
            max_flight_data_size: 2 << 20,
            fetch_limits: FetchLimits::default(),
            max_upload_size: 1 << 30,
            auth: AuthHandle::default(),
        }
    }
}

/// The only place table errors become gRPC codes.
pub fn status(e: &murr_table::Error) -> Status {
    match e.kind() {
        ErrorKind::NotFound => Status::not_found(e.to_string()),
        ErrorKind::AlreadyExists => Status::already_exists(e.to_string()),
        ErrorKind::InvalidArgument => Status::invalid_argument(e.to_string()),
        ErrorKind::Conflict => Status::failed_precondition(e.to_string()),
        ErrorKind::Unavailable | ErrorKind::Storage => Status::unavailable(e.to_string()),
        ErrorKind::StorageFull => Status::resource_exhausted(e.to_string()),
        _ => {
            tracing::error!(error = %e, "flight request failed");
            Status::internal(e.to_string())
        }
    }
}

/// The call's timeout from its `grpc-timeout` header (digits and a unit: H, M, S, m, u, n).
fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<std::time::Duration> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => std::time::Duration::from_secs(n.saturating_mul(3600)),
        "M" => std::time::Duration::from_secs(n.saturating_mul(60)),
        "S" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_millis(n),
        "u" => std::time::Duration::from_micros(n),
        "n" => std::time::Duration::from_nanos(n),
        _ => return None,
    })
}

fn flight_status(e: FlightError) -> Status {
    match e {
        FlightError::Tonic(s) => *s,
        other => Status::invalid_argument(format!("invalid Flight data: {other}")),
    }
}

/// A table's Arrow schema in column order, with `ttl` = the time to live in seconds in the
/// schema metadata when the table has one. A generation-1 table's schema metadata has `key` = the
/// key column; a generation-2 table's has no `key` (its key columns' fields have the field
/// metadata `key` = `true`, and a column that is not strict `strict` = `false`).
pub fn table_schema(table: &Table) -> Schema {
    let meta = table.meta();
    let schema = meta.arrow_schema();
    let def = meta.schema();
    let mut metadata = schema.metadata().clone();
    let fields: Vec<arrow_schema::FieldRef> = match def.generation {
        murr_api::Generation::V1 => {
            metadata.insert("key".to_owned(), def.keys[0].clone());
            schema.fields().iter().cloned().collect()
        }
        murr_api::Generation::V2 => schema
            .fields()
            .iter()
            .zip(&def.columns)
            .map(|(f, c)| {
                let mut m = f.metadata().clone();
                if def.is_key(&c.name) {
                    m.insert("key".to_owned(), "true".to_owned());
                }
                if !c.strict {
                    m.insert("strict".to_owned(), "false".to_owned());
                }
                Arc::new(f.as_ref().clone().with_metadata(m))
            })
            .collect(),
    };
    if let Some(ttl) = def.ttl {
        metadata.insert("ttl".to_owned(), ttl.to_string());
    }
    Schema::new_with_metadata(fields, metadata)
}

/// The service.
#[derive(Debug, Clone)]
pub struct MurrFlight {
    store: Arc<Store>,
    config: FlightConfig,
}

impl MurrFlight {
    /// A service over `store`.
    pub fn new(store: Arc<Store>, config: FlightConfig) -> Self {
        MurrFlight { store, config }
    }

    /// The tonic service, with the configured message size limits.
    pub fn into_server(self) -> FlightServiceServer<MurrFlight> {
        let limit = self.config.max_message_size;
        FlightServiceServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit)
    }

    /// Refuses a call whose `authorization` metadata holds no token with `scope` (when tokens
    /// are configured): Unauthenticated, or PermissionDenied for a known token without it.
    fn authorize<T>(&self, request: &Request<T>, scope: Scope) -> Result<(), Status> {
        let header = request
            .metadata()
            .get("authorization")
            .map(tonic::metadata::MetadataValue::as_bytes);
        self.config
            .auth
            .check(header, scope)
            .map(drop)
            .map_err(|d| {
                if d.is_forbidden() {
                    Status::permission_denied(d.to_string())
                } else {
                    Status::unauthenticated(d.to_string())
                }
            })
    }

    fn table_of(&self, descriptor: &FlightDescriptor) -> Result<Arc<Table>, Status> {
        match descriptor.path.as_slice() {
            [name] => self.store.table(name).map_err(|e| status(&e)),
            _ => Err(Status::invalid_argument(format!(
                "a flight descriptor names one table as its path, got path {:?}",
                descriptor.path
            ))),
        }
    }

    fn info(table: &Table) -> Result<FlightInfo, Status> {
        FlightInfo::new()
            .try_with_schema(&table_schema(table))
            .map(|i| i.with_descriptor(FlightDescriptor::new_path(vec![table.name().to_owned()])))
            .map_err(|e| Status::internal(format!("encoding a schema: {e}")))
    }
}

fn owned<T: ?Sized + ToOwned>(v: &[Cow<'_, T>]) -> Vec<T::Owned> {
    v.iter().map(|s| s.clone().into_owned()).collect()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))?
}

fn once<T: Send + 'static>(item: T) -> BoxStream<T> {
    Box::pin(futures_util::stream::once(async move { Ok(item) }))
}

#[tonic::async_trait]
impl FlightService for MurrFlight {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoExchangeStream = BoxStream<FlightData>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;

    async fn handshake(
        &self,
        _: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented(
            "handshake: murr needs no authentication handshake",
        ))
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        self.authorize(&request, Scope::Read)?;
        let infos = self
            .store
            .tables()
            .into_iter()
            .filter_map(|(name, _)| self.store.table(&name).ok())
            .map(|t| Self::info(&t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(Box::pin(futures_util::stream::iter(
            infos.into_iter().map(Ok),
        ))))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request, Scope::Read)?;
        let table = self.table_of(request.get_ref())?;
        Ok(Response::new(Self::info(&table)?))
    }

    async fn poll_flight_info(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented(
            "poll_flight_info: use get_flight_info",
        ))
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        self.authorize(&request, Scope::Read)?;
        let table = self.table_of(request.get_ref())?;
        let schema = table_schema(&table);
        let options = arrow_ipc::writer::IpcWriteOptions::default();
        let result = SchemaResult::try_from(SchemaAsIpc::new(&schema, &options))
            .map_err(|e| Status::internal(format!("encoding a schema: {e}")))?;
        Ok(Response::new(result))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        self.authorize(&request, Scope::Read)?;
        let bytes = request.into_inner().ticket;
        let bad = |e: &dyn std::fmt::Display| {
            Status::invalid_argument(format!(
                "invalid ticket: {e} (expected JSON {{\"table\": \"...\", \"keys\": [...], \"columns\": [...]}}, \
                 or keys by key column: {{\"table\": \"...\", \"keys\": {{\"id\": [...]}}, \"columns\": [...]}})"
            ))
        };
        let ticket = AnyFetch::from_json(&bytes).map_err(|e| bad(&e))?;
        let Some(name) = ticket.table() else {
            return Err(bad(&"missing field `table`"));
        };
        ticket
            .check(&self.config.fetch_limits)
            .map_err(Status::invalid_argument)?;
        let table = self.store.table(name).map_err(|e| status(&e))?;
        let small = ticket.cells() <= SMALL_FETCH_CELLS;
        let batch = match &ticket {
            AnyFetch::Dense(ticket) => {
                let keys = encode_keys(table.meta().key_codec(), &ticket.keys)
                    .map_err(Status::invalid_argument)?;
                // Small fetches take less time than a hand-off to the blocking pool.
                if small {
                    table
                        .fetch(&keys, &ticket.columns)
                        .map_err(|e| status(&e))?
                } else {
                    let (keys, columns) = (owned(&keys), owned(&ticket.columns));
                    blocking(move || table.fetch(&keys, &columns).map_err(|e| status(&e))).await?
                }
            }
            AnyFetch::Keyed(ticket) => {
                let keys = ticket
                    .key_arrays(table.meta().schema())
                    .map_err(Status::invalid_argument)?;
                let columns = ticket.columns.clone();
                let fetch = move || {
                    table
                        .fetch_keyed(&keys, &columns)
                        .map(|(found, batch)| sparse_answer(found, &batch))
                        .map_err(|e| status(&e))
                };
                if small {
                    fetch()?
                } else {
                    blocking(fetch).await?
                }
            }
        };
        // The answer is encoded here, whole (it is in memory anyway), so that every message is
        // ready at once: gRPC then writes them in as few frames as it can, where a lazy stream
        // made it flush each message (and the client wake up for each) separately.
        let messages: Vec<FlightData> = FlightDataEncoderBuilder::new()
            .with_max_flight_data_size(self.config.max_flight_data_size)
            .with_schema(batch.schema())
            .build(futures_util::stream::once(async move { Ok(batch) }))
            .try_collect()
            .await
            .map_err(flight_status)?;
        Ok(Response::new(Box::pin(futures_util::stream::iter(
            messages.into_iter().map(Ok),
        ))))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        self.authorize(&request, Scope::Write)?;
        // The call's deadline: when it passes, the client gives up, and the end of the request
        // stream that the server then sees is not the client's end of its upload.
        // The server's clock starts after the client's (the headers' transit, the handler's
        // start): a margin of a tenth of the timeout (at most 1 s) keeps an end that comes from
        // the client giving up from passing as the upload's end. An upload that ends within the
        // margin is refused; the client, still within its deadline, hears so and can retry.
        let deadline = grpc_timeout(request.metadata()).map(|t| {
            let margin = (t / 10).min(std::time::Duration::from_secs(1));
            tokio::time::Instant::now() + t - margin
        });
        let mut stream = request.into_inner();
        let Some(first) = stream.message().await? else {
            return Err(Status::invalid_argument(
                "do_put: empty stream, expected a descriptor and a schema",
            ));
        };
        let Some(descriptor) = first.flight_descriptor.clone() else {
            return Err(Status::invalid_argument(
                "do_put: the first message carries no flight descriptor naming the table",
            ));
        };
        let table = self.table_of(&descriptor)?;
        // The stream as a whole is bounded (tonic bounds each message): a client cannot fill
        // the disk with one upload.
        let limit = self.config.max_upload_size;
        let mut seen = 0u64;
        let data = futures_util::stream::once(async move { Ok(first) })
            .chain(stream)
            .map(move |m| {
                let m = m?;
                seen += (m.data_header.len() + m.data_body.len() + m.app_metadata.len()) as u64;
                if seen > limit {
                    return Err(Status::resource_exhausted(format!(
                        "the upload is larger than the limit of {limit} bytes (server.grpc.max_upload_size)"
                    )));
                }
                Ok(m)
            })
            .map_err(|s| FlightError::Tonic(Box::new(s)));
        let mut batches = FlightRecordBatchStream::new_from_flight_data(data);
        // `None` is the client's end of stream: only then does the write commit. When this
        // handler is dropped first (the client cancelled, its deadline passed, the server is
        // stopping), the channel closes without it and the write aborts.
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<Option<Result<RecordBatch, murr_table::Error>>>(4);
        let writer = tokio::task::spawn_blocking(move || {
            table.write_stream(std::iter::from_fn(move || match rx.blocking_recv() {
                Some(item) => item,
                None => Some(Err(murr_table::Error::Invalid(
                    "do_put: the upload stopped before the client's end of stream".to_owned(),
                ))),
            }))
        });
        loop {
            // The decoder asserts on some malformed messages: a panic is bad data, as in
            // `murr_api::decode_ipc`.
            let next = std::panic::AssertUnwindSafe(batches.next())
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Some(Err(FlightError::DecodeError(
                        murr_api::MALFORMED_IPC.to_owned(),
                    )))
                });
            let item = next.map(|item| {
                item.map_err(|e| murr_table::Error::Invalid(format!("invalid Flight data: {e}")))
            });
            let late = item.is_none() && deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
            let item = if late {
                Some(Err(murr_table::Error::Invalid(
                    "do_put: the call's deadline passed before the upload ended".to_owned(),
                )))
            } else {
                item
            };
            let last = !matches!(item, Some(Ok(_)));
            if tx.send(item).await.is_err() || last {
                break;
            }
        }
        drop(tx);
        let stats = writer
            .await
            .map_err(|e| Status::internal(format!("worker failed: {e}")))?
            .map_err(|e| status(&e))?;
        let answer = WriteAnswer {
            rows: stats.rows,
            stored: stats.stored,
            bytes: stats.bytes,
        };
        let meta = serde_json::to_vec(&answer).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(once(PutResult {
            app_metadata: meta.into(),
        })))
    }

    async fn do_exchange(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented(
            "do_exchange is not supported: use do_get and do_put",
        ))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        self.authorize(&request, Scope::Admin)?;
        let action = request.into_inner();
        let store = Arc::clone(&self.store);
        let invalid = |e: serde_json::Error| {
            Status::invalid_argument(format!("action {} body: {e}", action.r#type))
        };
        let body = match action.r#type.as_str() {
            "create_table" => {
                let req: CreateTableAction =
                    serde_json::from_slice(&action.body).map_err(invalid)?;
                blocking(move || {
                    let t = store
                        .create_table(&req.table, req.schema)
                        .map_err(|e| status(&e))?;
                    serde_json::to_vec(&t.schema()).map_err(|e| Status::internal(e.to_string()))
                })
                .await?
            }
            "add_columns" | "alter_table" => {
                let (table, req) =
                    murr_api::AlterRequest::parse_action(&action.body).map_err(|e| {
                        Status::invalid_argument(format!("action {} body: {e}", action.r#type))
                    })?;
                let table = store.table(&table).map_err(|e| status(&e))?;
                blocking(move || {
                    let schema = table
                        .alter(&murr_table::Alter {
                            add_columns: req.columns,
                            ttl: req.ttl,
                        })
                        .map_err(|e| status(&e))?;
                    serde_json::to_vec(&schema).map_err(|e| Status::internal(e.to_string()))
                })
                .await?
            }
            "drop_table" => {
                let req: DropTableAction = serde_json::from_slice(&action.body).map_err(invalid)?;
                let name = req.table.clone();
                blocking(move || store.drop_table(&req.table).map_err(|e| status(&e))).await?;
                serde_json::to_vec(&DropAnswer { dropped: name })
                    .map_err(|e| Status::internal(e.to_string()))?
            }
            "compact" => {
                let req: DropTableAction = serde_json::from_slice(&action.body).map_err(invalid)?;
                let table = store.table(&req.table).map_err(|e| status(&e))?;
                let segments = blocking(move || {
                    table.compact().map_err(|e| status(&e))?;
                    Ok(table.stats().segments)
                })
                .await?;
                serde_json::to_vec(&CompactAnswer {
                    compacted: req.table,
                    segments,
                })
                .map_err(|e| Status::internal(e.to_string()))?
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown action {other:?} (list_actions names them: create_table, add_columns, alter_table, drop_table, compact)"
                )));
            }
        };
        Ok(Response::new(once(arrow_flight::Result {
            body: body.into(),
        })))
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        self.authorize(&request, Scope::Read)?;
        let actions = vec![
            ActionType {
                r#type: "create_table".to_owned(),
                description: "Create a table. Body: JSON {\"table\": \"name\", \"schema\": TableSchema}; result: the schema".to_owned(),
            },
            ActionType {
                r#type: "add_columns".to_owned(),
                description: "Change a table's schema: add nullable columns, set or remove the time to live. Body: JSON {\"table\": \"name\", \"columns\": {name: {\"dtype\": .., \"nullable\": true}}, \"ttl\": \"7d\" or seconds or null}, either part optional; result: the new schema".to_owned(),
            },
            ActionType {
                r#type: "alter_table".to_owned(),
                description: "The same as add_columns".to_owned(),
            },
            ActionType {
                r#type: "drop_table".to_owned(),
                description: "Drop a table. Body: JSON {\"table\": \"name\"}".to_owned(),
            },
            ActionType {
                r#type: "compact".to_owned(),
                description: "Merge all of a table's segments into one; answers when done. Body: JSON {\"table\": \"name\"}; result: {\"compacted\": \"name\", \"segments\": n}".to_owned(),
            },
        ];
        Ok(Response::new(Box::pin(futures_util::stream::iter(
            actions.into_iter().map(Ok),
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        let t = |v: &str| {
            let mut m = tonic::metadata::MetadataMap::new();
            m.insert("grpc-timeout", v.parse().expect("ascii"));
            grpc_timeout(&m)
        };
        use std::time::Duration as D;
        assert_eq!(t("700m"), Some(D::from_millis(700)));
        assert_eq!(t("2S"), Some(D::from_secs(2)));
        assert_eq!(t("1H"), Some(D::from_secs(3600)));
        assert_eq!(t("3M"), Some(D::from_secs(180)));
        assert_eq!(t("5u"), Some(D::from_micros(5)));
        assert_eq!(t("9n"), Some(D::from_nanos(9)));
        assert_eq!(t("7x"), None);
        assert_eq!(t("m"), None);
        assert_eq!(grpc_timeout(&tonic::metadata::MetadataMap::new()), None);
    }
}
