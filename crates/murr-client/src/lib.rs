//! A Rust client for murr, over HTTP (Arrow IPC bodies) or Arrow Flight, chosen when the client
//! is built. Connections are reused; every call has a timeout.
//!
//! ```no_run
//! # async fn demo() -> Result<(), murr_client::Error> {
//! use murr_client::{Client, Transport};
//! let client = Client::builder("http://127.0.0.1:8080").transport(Transport::Http).build()?;
//! let batch = client.fetch("items", &["a", "b"], &["score"]).await?;
//! # Ok(()) }
//! ```
//!
//! It depends on no server crate: only on `murr-api`, the wire shapes it shares with the server.

mod flight;
mod http;

use std::collections::BTreeMap;
use std::time::Duration;

use arrow_array::RecordBatch;
pub use murr_api::{AlterRequest, ColumnDef, DType, LoadMode, LoadState, LoadStatus, TableSchema};

/// What went wrong, classified; each carries the server's message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The table does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The table already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The request was refused as wrong (unknown column, bad type, bad name, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The server cannot serve it now (table failed to load, storage trouble, body too large).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The server could not be reached, or the connection failed or timed out.
    #[error("transport: {0}")]
    Transport(String),
    /// The server wants a valid bearer token ([`ClientBuilder::token`]): HTTP 401, gRPC
    /// Unauthenticated.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The token lacks the scope the call needs: HTTP 403, gRPC PermissionDenied.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The server answered something this client does not understand.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A load from object storage ended without committing anything; the server's reason,
    /// naming the file.
    #[error("load failed: {0}")]
    LoadFailed(String),
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the client talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP, with Arrow IPC bodies for writes and fetches (port 8080 by default).
    Http,
    /// Arrow Flight over gRPC (port 8081 by default).
    Flight,
}

/// Builds a [`Client`]. Both transports read their settings from it.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    transport: Transport,
    timeout: Duration,
    connect_timeout: Duration,
    token: Option<String>,
    ca: Option<Vec<u8>>,
}

impl ClientBuilder {
    /// `Bearer <token>` as a header value, marked sensitive (never printed), when a token is set.
    fn bearer_header(&self) -> Result<Option<reqwest::header::HeaderValue>> {
        let Some(token) = &self.token else {
            return Ok(None);
        };
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| Error::InvalidArgument("the token is not printable ASCII".to_owned()))?;
        v.set_sensitive(true);
        Ok(Some(v))
    }
}

impl ClientBuilder {
    /// A certificate authority (PEM) to trust besides the system's, for an `https://` server
    /// whose certificate it signed (a private CA, a self-signed certificate).
    #[must_use]
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(pem.into());
        self
    }

    /// The bearer token to send with every call (`authorization: Bearer <token>`), for a
    /// server with `server.auth.tokens`.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The transport (default HTTP).
    #[must_use]
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The time limit of one call (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The time limit of connecting (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The client. It connects on first use.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a URL that cannot be used.
    pub fn build(self) -> Result<Client> {
        let inner = match self.transport {
            Transport::Http => Inner::Http(http::HttpClient::new(&self)?),
            Transport::Flight => Inner::Flight(flight::FlightClient::new(&self)?),
        };
        Ok(Client { inner })
    }
}

#[derive(Debug, Clone)]
enum Inner {
    Http(http::HttpClient),
    Flight(flight::FlightClient),
}

/// A murr client. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Inner,
}

impl Client {
    /// A builder for the server at `url`: `http://host:port`, or `https://host:port` for a
    /// server with TLS (either transport).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            transport: Transport::Http,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            token: None,
            ca: None,
        }
    }

    /// Creates a table.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`], [`Error::InvalidArgument`] for a bad name or schema, transport errors.
    pub async fn create_table(&self, name: &str, schema: &TableSchema) -> Result<()> {
        match &self.inner {
            Inner::Http(c) => c.create_table(name, schema).await,
            Inner::Flight(c) => c.create_table(name, schema).await,
        }
    }

    /// Adds nullable columns to a table, after its existing ones (rows written before read null
    /// in them); returns the new schema.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] for a column the table has, [`Error::InvalidArgument`] for a
    /// column that is not nullable or a bad name, [`Error::NotFound`], transport errors.
    pub async fn add_columns(&self, name: &str, columns: &[ColumnDef]) -> Result<TableSchema> {
        self.alter_table(
            name,
            &murr_api::AlterRequest {
                columns: columns.to_vec(),
                ttl: None,
            },
        )
        .await
    }

    /// Sets a table's time to live in seconds (`None` removes it): rows read as missing that
    /// long after they were written, rows already written included. Returns the new schema.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a ttl of 0 or above 100 years, [`Error::NotFound`],
    /// transport errors.
    pub async fn set_ttl(&self, name: &str, ttl: Option<u64>) -> Result<TableSchema> {
        self.alter_table(
            name,
            &murr_api::AlterRequest {
                columns: Vec::new(),
                ttl: Some(ttl),
            },
        )
        .await
    }

    /// Changes a table's schema: new columns and/or a new time to live in one change.
    ///
    /// # Errors
    /// As [`Client::add_columns`] and [`Client::set_ttl`].
    pub async fn alter_table(
        &self,
        name: &str,
        change: &murr_api::AlterRequest,
    ) -> Result<TableSchema> {
        match &self.inner {
            Inner::Http(c) => c.alter_table(name, change).await,
            Inner::Flight(c) => c.alter_table(name, change).await,
        }
    }

    /// Drops a table.
    ///
    /// # Errors
    /// [`Error::NotFound`], transport errors.
    pub async fn drop_table(&self, name: &str) -> Result<()> {
        match &self.inner {
            Inner::Http(c) => c.drop_table(name).await,
            Inner::Flight(c) => c.drop_table(name).await,
        }
    }

    /// Every table and its schema.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn list_tables(&self) -> Result<BTreeMap<String, TableSchema>> {
        match &self.inner {
            Inner::Http(c) => c.list_tables().await,
            Inner::Flight(c) => c.list_tables().await,
        }
    }

    /// A table's schema.
    ///
    /// # Errors
    /// [`Error::NotFound`], transport errors.
    pub async fn schema(&self, name: &str) -> Result<TableSchema> {
        match &self.inner {
            Inner::Http(c) => c.schema(name).await,
            Inner::Flight(c) => c.schema(name).await,
        }
    }

    /// Writes record batches (all of one schema) atomically; returns the rows written.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::InvalidArgument`] naming the column at fault, transport errors.
    pub async fn write(
        &self,
        name: &str,
        batches: impl IntoIterator<Item = RecordBatch>,
    ) -> Result<u64> {
        let batches: Vec<RecordBatch> = batches.into_iter().collect();
        if batches.is_empty() {
            return Ok(0);
        }
        match &self.inner {
            Inner::Http(c) => c.write(name, &batches).await,
            Inner::Flight(c) => c.write(name, batches).await,
        }
    }

    /// One row per key, in order, with the columns asked for (nulls for keys never written).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::InvalidArgument`] for an unknown column, transport errors.
    pub async fn fetch<K: AsRef<str>, C: AsRef<str>>(
        &self,
        name: &str,
        keys: &[K],
        columns: &[C],
    ) -> Result<RecordBatch> {
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        let columns: Vec<&str> = columns.iter().map(AsRef::as_ref).collect();
        match &self.inner {
            Inner::Http(c) => c.fetch(name, &keys, &columns).await,
            Inner::Flight(c) => c.fetch(name, &keys, &columns).await,
        }
    }
}

impl Client {
    /// Generation 2's read: `keys` holds one column per key column of the table (utf8 or
    /// integers; a type that widens to the key's is fine, a narrower one is refused). The answer
    /// is sparse: a row per key found, in request order (a key given twice has two rows, a key
    /// never written none), led by `_idx` (uint32, the key's row in `keys`), then `columns`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::InvalidArgument`] for keys that do not match the table's
    /// key or an unknown column, transport errors.
    pub async fn read<C: AsRef<str>>(
        &self,
        name: &str,
        keys: &RecordBatch,
        columns: &[C],
    ) -> Result<RecordBatch> {
        let columns: Vec<&str> = columns.iter().map(AsRef::as_ref).collect();
        match &self.inner {
            Inner::Http(c) => c.read(name, keys, &columns).await,
            Inner::Flight(c) => c.read(name, keys, &columns).await,
        }
    }

    /// Starts loading Parquet files from object storage into table `name` on the server
    /// (`url`: one file, a prefix or a glob; see [`murr_api::LoadRequest`]); returns the load's
    /// first status at once. HTTP only.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::InvalidArgument`] for a URL the server cannot read from
    /// or a Flight client, [`Error::AlreadyExists`] while the table is being loaded (HTTP 409),
    /// transport errors.
    pub async fn start_load(&self, name: &str, url: &str, mode: LoadMode) -> Result<LoadStatus> {
        self.http("a load")?.start_load(name, url, mode).await
    }

    /// The status of load `id` of table `name`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a load the server does not know, transport errors.
    pub async fn load_status(&self, name: &str, id: &str) -> Result<LoadStatus> {
        self.http("a load")?.load_status(name, id).await
    }

    /// Loads Parquet files from object storage into table `name` ([`Client::start_load`]) and
    /// waits for the load to end, calling `progress` with each status seen; returns the final
    /// status.
    ///
    /// # Errors
    /// [`Error::LoadFailed`] with the server's reason when nothing was committed, and the
    /// errors of [`Client::start_load`].
    pub async fn load(
        &self,
        name: &str,
        url: &str,
        mode: LoadMode,
        mut progress: impl FnMut(&LoadStatus),
    ) -> Result<LoadStatus> {
        let client = self.http("a load")?;
        let mut status = client.start_load(name, url, mode).await?;
        loop {
            progress(&status);
            match status.state {
                LoadState::Running => {}
                LoadState::Done => return Ok(status),
                LoadState::Failed => {
                    return Err(Error::LoadFailed(
                        status.error.unwrap_or_else(|| "no reason given".to_owned()),
                    ));
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            status = client.load_status(name, &status.id).await?;
        }
    }

    fn http(&self, what: &str) -> Result<&http::HttpClient> {
        match &self.inner {
            Inner::Http(c) => Ok(c),
            Inner::Flight(_) => Err(Error::InvalidArgument(format!(
                "{what} is an HTTP call: build the client with Transport::Http"
            ))),
        }
    }

    /// Merges all of a table's segments into one; returns when done.
    ///
    /// # Errors
    /// [`Error::NotFound`], transport errors.
    pub async fn compact(&self, name: &str) -> Result<()> {
        match &self.inner {
            Inner::Http(c) => c.compact(name).await,
            Inner::Flight(c) => c.compact(name).await,
        }
    }
}

/// The one batch of `batches`, or an empty batch of `schema` when there is none.
pub(crate) fn single(
    schema: arrow_schema::SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<RecordBatch> {
    match batches.len() {
        0 => Ok(RecordBatch::new_empty(schema)),
        1 => Ok(batches.into_iter().next().expect("one batch")),
        _ => arrow_select_concat(&schema, &batches),
    }
}

fn arrow_select_concat(
    schema: &arrow_schema::SchemaRef,
    batches: &[RecordBatch],
) -> Result<RecordBatch> {
    arrow_select::concat::concat_batches(schema, batches)
        .map_err(|e| Error::Protocol(format!("joining answer batches: {e}")))
}
