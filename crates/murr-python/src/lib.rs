//! `murr._murr`: the native half of murr's Python package (`pip install ./crates/murr-python`,
//! `import murr`).
//!
//! Two classes, one surface:
//! - [`Engine`]: the engine in the caller's process: a [`murr_table::Store`] over a local folder,
//!   opened the way the `murr` binary opens it (murr-server's `open_store`), optionally also
//!   serving the HTTP API (and Flight) from the same store.
//! - [`Remote`]: a remote server through [`murr_client::Client`], HTTP or Arrow Flight.
//!
//! Record batches cross into and out of Python through the Arrow C data and stream interfaces
//! (`arrow-pyarrow`): a fetch's arrays become pyarrow arrays without their values being copied.
//! Every call that fetches, writes or waits on the network releases the GIL. The Python side
//! (`python/murr`) holds the user-facing classes, input conversion (pandas, Polars, NumPy) and
//! the exception classes this module raises.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch, make_array};
use arrow_pyarrow::{FromPyArrow, ToPyArrow};
use arrow_schema::{ArrowError, DataType};
use murr_api::TableSchema;
use murr_table::{ErrorKind, Store};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyList;

/// What went wrong, in the classes of `murr.errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `TableNotFoundError` (also a `FileNotFoundError`).
    NotFound,
    /// `TableExistsError` (also a `ValueError`).
    Exists,
    /// `InvalidInputError` (also a `ValueError`).
    Invalid,
    /// `MurrConnectionError` (also a `ConnectionError`).
    Connection,
    /// `ClosedError`: the client was closed.
    Closed,
    /// `AuthenticationError`: no valid token (HTTP 401, gRPC Unauthenticated).
    Unauthenticated,
    /// `PermissionDeniedError`: the token lacks the scope (HTTP 403, gRPC PermissionDenied).
    Forbidden,
    /// `MurrError`: everything else (storage, unavailable tables, protocol).
    Other,
}

/// An error on its way to Python.
#[derive(Debug)]
struct Failure {
    kind: Kind,
    message: String,
}

impl Failure {
    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl From<murr_table::Error> for Failure {
    fn from(e: murr_table::Error) -> Self {
        let kind = match e.kind() {
            ErrorKind::NotFound => Kind::NotFound,
            ErrorKind::AlreadyExists => Kind::Exists,
            ErrorKind::InvalidArgument => Kind::Invalid,
            _ => Kind::Other,
        };
        Failure::new(kind, e.to_string())
    }
}

impl From<murr_client::Error> for Failure {
    fn from(e: murr_client::Error) -> Self {
        use murr_client::Error as E;
        let kind = match &e {
            E::NotFound(_) => Kind::NotFound,
            E::AlreadyExists(_) => Kind::Exists,
            E::InvalidArgument(_) => Kind::Invalid,
            E::Transport(_) => Kind::Connection,
            E::Unauthenticated(_) => Kind::Unauthenticated,
            E::PermissionDenied(_) => Kind::Forbidden,
            _ => Kind::Other,
        };
        Failure::new(kind, e.to_string())
    }
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        let class = match f.kind {
            Kind::NotFound => "TableNotFoundError",
            Kind::Exists => "TableExistsError",
            Kind::Invalid => "InvalidInputError",
            Kind::Connection => "MurrConnectionError",
            Kind::Closed => "ClosedError",
            Kind::Unauthenticated => "AuthenticationError",
            Kind::Forbidden => "PermissionDeniedError",
            Kind::Other => "MurrError",
        };
        Python::attach(|py| {
            let made = py
                .import("murr.errors")
                .and_then(|m| m.getattr(class))
                .and_then(|c| c.call1((f.message.clone(),)));
            match made {
                Ok(exception) => PyErr::from_value(exception),
                Err(e) => e,
            }
        })
    }
}

type Res<T> = Result<T, Failure>;

/// The tokio runtime of every client and embedded HTTP server in this process: two workers
/// are enough for network waits (fetches run on the caller's thread, GIL released).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("murr-py")
            .enable_all()
            .build()
            .expect("murr: cannot start its I/O threads")
    })
}

fn parse_schema(json: &str) -> Res<TableSchema> {
    serde_json::from_str(json).map_err(|e| Failure::new(Kind::Invalid, format!("schema: {e}")))
}

fn parse_alter(json: &str) -> Res<murr_api::AlterRequest> {
    murr_api::AlterRequest::parse(json.as_bytes()).map_err(|e| Failure::new(Kind::Invalid, e))
}

fn schema_json(schema: &TableSchema) -> Res<String> {
    serde_json::to_string(schema).map_err(|e| Failure::new(Kind::Other, e.to_string()))
}

/// Keys as Python gives them: a list of `str`, or an Arrow string array (pyarrow, or anything
/// with `__arrow_c_array__`). Both are read in place.
enum Keys {
    Strs(Vec<PyBackedStr>),
    Arrow(Arc<dyn Array>),
}

impl Keys {
    fn from_py(keys: &Bound<'_, PyAny>) -> PyResult<Keys> {
        if let Ok(list) = keys.cast::<PyList>() {
            let strs = list.extract::<Vec<PyBackedStr>>().map_err(|_| {
                PyErr::from(Failure::new(
                    Kind::Invalid,
                    "keys: a list of keys must hold str only",
                ))
            })?;
            return Ok(Keys::Strs(strs));
        }
        let data = arrow_data::ArrayData::from_pyarrow_bound(keys)?;
        let array = make_array(data);
        match array.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(Keys::Arrow(array)),
            other => Err(Failure::new(
                Kind::Invalid,
                format!("keys: expected strings, got an Arrow array of {other}"),
            )
            .into()),
        }
    }

    /// The keys as text; `None` for a null key.
    fn texts(&self) -> Res<Vec<&str>> {
        let null = || Failure::new(Kind::Invalid, "keys: a key is null");
        match self {
            Keys::Strs(v) => Ok(v.iter().map(|s| &**s).collect()),
            Keys::Arrow(a) => {
                if a.null_count() > 0 {
                    return Err(null());
                }
                Ok(match a.data_type() {
                    DataType::Utf8 => a.as_string::<i32>().iter().flatten().collect(),
                    DataType::LargeUtf8 => a.as_string::<i64>().iter().flatten().collect(),
                    _ => a.as_string_view().iter().flatten().collect(),
                })
            }
        }
    }
}

/// The record batches of a Python object with `__arrow_c_stream__` (pyarrow Table or
/// RecordBatchReader, Polars and pandas frames converted on the Python side).
fn stream_of(
    data: &Bound<'_, PyAny>,
) -> PyResult<arrow_array::ffi_stream::RecordBatchStreamReader> {
    arrow_array::ffi_stream::RecordBatchStreamReader::from_pyarrow_bound(data)
}

/// The key columns of a generation-2 read: every batch of `keys` (anything with
/// `__arrow_c_stream__`), joined.
fn key_batch(py: Python<'_>, keys: &Bound<'_, PyAny>) -> PyResult<RecordBatch> {
    let reader = stream_of(keys)?;
    let schema = arrow_array::RecordBatchReader::schema(&reader);
    let batches = py
        .detach(|| reader.collect::<Result<Vec<RecordBatch>, ArrowError>>())
        .map_err(|e| Failure::from(invalid_input(&e)))?;
    Ok(arrow_select::concat::concat_batches(&schema, &batches)
        .map_err(|e| Failure::from(invalid_input(&e)))?)
}

fn invalid_input(e: &ArrowError) -> murr_table::Error {
    murr_table::Error::Invalid(format!("reading the input batches: {e}"))
}

/// The engine in this process, over a local folder.
#[pyclass(frozen, module = "murr._murr")]
struct Engine {
    state: RwLock<Option<EngineState>>,
    /// Loads from object storage (credentials and endpoint from the `AWS_*` environment).
    loads: Arc<murr_http::Loads>,
}

struct EngineState {
    store: Arc<Store>,
    /// The HTTP address when the engine also serves the API, with the sender that stops it
    /// and the task serving.
    serving: Option<Serving>,
}

struct Serving {
    http: std::net::SocketAddr,
    grpc: Option<std::net::SocketAddr>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Engine {
    fn store(&self) -> Res<Arc<Store>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state
            .as_ref()
            .map(|s| Arc::clone(&s.store))
            .ok_or_else(|| Failure::new(Kind::Closed, "this murr engine is closed"))
    }
}

fn open_engine(
    cache_dir: PathBuf,
    http_port: Option<u16>,
    grpc_port: Option<u16>,
    host: IpAddr,
) -> Res<EngineState> {
    let mut config = murr_server::Config::default();
    config.storage.cache_dir = cache_dir;
    config.server.http.host = host;
    config.server.grpc.host = host;
    config.server.grpc.enabled = grpc_port.is_some();
    config.server.grpc.port = grpc_port.unwrap_or(0);
    let other = |e: anyhow::Error| {
        let message = format!("{e:#}");
        let locked = e.chain().any(|c| {
            matches!(
                c.downcast_ref::<murr_directory::Error>(),
                Some(murr_directory::Error::Locked { .. })
            )
        });
        let kind = if locked {
            Kind::Invalid
        } else if message.contains("cannot listen") {
            Kind::Connection
        } else {
            Kind::Other
        };
        Failure::new(kind, message)
    };
    let Some(port) = http_port else {
        let store = murr_server::open_configured_store(&config).map_err(other)?;
        return Ok(EngineState {
            store: Arc::new(store),
            serving: None,
        });
    };
    config.server.http.port = port;
    let server = runtime()
        .block_on(murr_server::Server::bind(config))
        .map_err(other)?;
    let store = Arc::clone(server.store());
    let http = server.http_addr();
    let grpc = server.grpc_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = runtime().spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    Ok(EngineState {
        store,
        serving: Some(Serving {
            http,
            grpc,
            stop,
            task,
        }),
    })
}

#[pymethods]
impl Engine {
    /// Opens (or creates) the murr folder `cache_dir` in this process. With `http_port` (0
    /// picks a free port) the engine also serves the HTTP API on `host`, and with `grpc_port`
    /// Arrow Flight too, from the same tables.
    #[new]
    #[pyo3(signature = (cache_dir, http_port=None, grpc_port=None, host="127.0.0.1"))]
    fn new(
        py: Python<'_>,
        cache_dir: PathBuf,
        http_port: Option<u16>,
        grpc_port: Option<u16>,
        host: &str,
    ) -> PyResult<Engine> {
        let host: IpAddr = host
            .parse()
            .map_err(|e| Failure::new(Kind::Invalid, format!("host {host:?}: {e}")))?;
        let state = py.detach(|| open_engine(cache_dir, http_port, grpc_port, host))?;
        Ok(Engine {
            state: RwLock::new(Some(state)),
            loads: Arc::new(murr_http::Loads::new(env_remote_options())),
        })
    }

    /// `http://host:port` of the HTTP API this engine serves, or None.
    #[getter]
    fn http_url(&self) -> Option<String> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state
            .as_ref()
            .and_then(|s| s.serving.as_ref())
            .map(|s| format!("http://{}", s.http))
    }

    /// `grpc://host:port` of the Arrow Flight API this engine serves, or None.
    #[getter]
    fn grpc_url(&self) -> Option<String> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state
            .as_ref()
            .and_then(|s| s.serving.as_ref())
            .and_then(|s| s.grpc)
            .map(|a| format!("grpc://{a}"))
    }

    fn create_table(&self, py: Python<'_>, name: &str, schema_json: &str) -> PyResult<()> {
        let schema = parse_schema(schema_json)?;
        let store = self.store()?;
        py.detach(|| store.create_table(name, schema).map(drop))
            .map_err(Failure::from)?;
        Ok(())
    }

    /// Changes a table's schema (JSON as `PATCH /api/v1/table/{name}` takes it); returns the
    /// new schema as JSON.
    fn alter_table(&self, py: Python<'_>, name: &str, change_json: &str) -> PyResult<String> {
        let change = parse_alter(change_json)?;
        let store = self.store()?;
        let schema = py
            .detach(|| {
                store.table(name)?.alter(&murr_table::Alter {
                    add_columns: change.columns,
                    ttl: change.ttl,
                })
            })
            .map_err(Failure::from)?;
        Ok(schema_json(&schema)?)
    }

    fn drop_table(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let store = self.store()?;
        py.detach(|| store.drop_table(name))
            .map_err(Failure::from)?;
        Ok(())
    }

    /// Every table's schema, as JSON `{"name": schema, ...}`.
    fn list_tables(&self) -> PyResult<String> {
        let store = self.store()?;
        let all: std::collections::BTreeMap<String, TableSchema> =
            store.schemas().into_iter().collect();
        Ok(serde_json::to_string(&all).map_err(|e| Failure::new(Kind::Other, e.to_string()))?)
    }

    fn get_schema(&self, name: &str) -> PyResult<String> {
        let store = self.store()?;
        let table = store.table(name).map_err(Failure::from)?;
        Ok(schema_json(&table.schema())?)
    }

    /// Writes the batches of `data` (an Arrow stream) atomically; returns the rows written.
    fn write(&self, py: Python<'_>, name: &str, data: &Bound<'_, PyAny>) -> PyResult<u64> {
        let store = self.store()?;
        let reader = stream_of(data)?;
        let stats = py
            .detach(|| {
                let table = store.table(name)?;
                table.write_stream(reader.map(|b| b.map_err(|e| invalid_input(&e))))
            })
            .map_err(Failure::from)?;
        Ok(stats.rows)
    }

    /// One row per key, in order, with `columns`: a pyarrow RecordBatch over the fetch's own
    /// buffers.
    fn read(
        &self,
        py: Python<'_>,
        name: &str,
        keys: &Bound<'_, PyAny>,
        columns: Vec<String>,
    ) -> PyResult<Py<PyAny>> {
        let store = self.store()?;
        let keys = Keys::from_py(keys)?;
        let batch: RecordBatch = py.detach(|| -> Res<RecordBatch> {
            let texts = keys.texts()?;
            let table = store.table(name)?;
            let meta = table.meta();
            let codec = meta.key_codec();
            let encoded = texts
                .iter()
                .map(|k| codec.encode_text(k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::new(Kind::Invalid, e.to_string()))?;
            Ok(table.fetch(&encoded, &columns)?)
        })?;
        Ok(batch.to_pyarrow(py)?.unbind())
    }

    /// Generation 2's read: `keys` holds the key columns; a sparse answer led by `_idx`.
    fn read_keyed(
        &self,
        py: Python<'_>,
        name: &str,
        keys: &Bound<'_, PyAny>,
        columns: Vec<String>,
    ) -> PyResult<Py<PyAny>> {
        let store = self.store()?;
        let keys = key_batch(py, keys)?;
        let batch: RecordBatch = py.detach(|| -> Res<RecordBatch> {
            let table = store.table(name)?;
            let request = murr_api::KeyedFetch::from_batch(keys, columns.clone());
            let arrays = request
                .key_arrays(table.meta().schema())
                .map_err(|e| Failure::new(Kind::Invalid, e))?;
            let (found, batch) = table.fetch_keyed(&arrays, &columns)?;
            Ok(murr_api::sparse_answer(found, &batch))
        })?;
        Ok(batch.to_pyarrow(py)?.unbind())
    }

    /// Merges all of a table's segments into one.
    fn compact(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let store = self.store()?;
        Ok(py.detach(|| -> Res<()> { Ok(store.table(name)?.compact()?) })?)
    }

    /// Loads Parquet files from object storage (`url`: a file, a prefix or a glob) into table
    /// `name` and waits for the load to end; its final status as JSON.
    fn load(&self, py: Python<'_>, name: &str, url: &str, mode: &str) -> PyResult<String> {
        let store = self.store()?;
        let mode = load_mode(mode)?;
        let loads = Arc::clone(&self.loads);
        let request = murr_api::LoadRequest {
            url: url.to_owned(),
            mode,
        };
        let status = py.detach(|| -> Res<murr_api::LoadStatus> {
            let started = loads.start(&store, name, request).map_err(|e| {
                let kind = match e.status.as_u16() {
                    404 => Kind::NotFound,
                    400 => Kind::Invalid,
                    409 => Kind::Exists,
                    _ => Kind::Other,
                };
                Failure::new(kind, e.message)
            })?;
            loads
                .wait(name, &started.id)
                .ok_or_else(|| Failure::new(Kind::Other, "the load's status was forgotten"))
        })?;
        Ok(load_answer(status)?)
    }

    /// Stops serving (when it does), and closes the tables. Calls after this raise ClosedError.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let state = self.state.write().unwrap_or_else(|e| e.into_inner()).take();
        let Some(state) = state else {
            return Ok(());
        };
        py.detach(|| close_engine(state))
    }
}

fn close_engine(state: EngineState) -> PyResult<()> {
    let EngineState { store, serving } = state;
    if let Some(s) = serving {
        let _ = s.stop.send(());
        match runtime().block_on(s.task) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(PyRuntimeError::new_err(format!("{e:#}"))),
            Err(e) => return Err(PyRuntimeError::new_err(e.to_string())),
        }
    }
    // The last reference closes the store (and joins its merge thread).
    drop(store);
    Ok(())
}

impl Drop for Engine {
    fn drop(&mut self) {
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // Closing waits for the HTTP server's requests in flight and a merge in progress:
        // other Python threads run meanwhile.
        if let Some(state) = state
            && let Err(e) = Python::attach(|py| py.detach(|| close_engine(state)))
        {
            tracing::warn!(error = %e, "closing the murr engine");
        }
    }
}

/// A remote murr server, over HTTP or Arrow Flight.
#[pyclass(frozen, module = "murr._murr")]
struct Remote {
    client: RwLock<Option<murr_client::Client>>,
    url: String,
}

impl Remote {
    fn client(&self) -> Res<murr_client::Client> {
        let c = self.client.read().unwrap_or_else(|e| e.into_inner());
        c.clone().ok_or_else(|| {
            Failure::new(
                Kind::Closed,
                format!("this murr client of {} is closed", self.url),
            )
        })
    }

    /// Runs `call` on the runtime with the GIL released, naming the server in transport errors.
    fn call<T: Send>(
        &self,
        py: Python<'_>,
        call: impl Future<Output = Result<T, murr_client::Error>> + Send,
    ) -> Res<T> {
        py.detach(|| runtime().block_on(call)).map_err(|e| {
            let mut f = Failure::from(e);
            if f.kind == Kind::Connection {
                f.message = format!("cannot reach murr at {}: {}", self.url, f.message);
            }
            f
        })
    }
}

#[pymethods]
impl Remote {
    /// A client of the server at `url`: `http://host:port` (HTTP) or `grpc://host:port`
    /// (Arrow Flight), or `https://` / `grpc+tls://` with TLS. It connects on first use; with
    /// `token`, every call carries it as a bearer token; `ca_pem` is a CA (PEM) to trust besides
    /// the system's.
    #[new]
    #[pyo3(signature = (url, timeout=30.0, token=None, ca_pem=None))]
    fn new(
        url: &str,
        timeout: f64,
        token: Option<&str>,
        ca_pem: Option<Vec<u8>>,
    ) -> PyResult<Remote> {
        let (transport, base) = if let Some(rest) = url.strip_prefix("grpc://") {
            (murr_client::Transport::Flight, format!("http://{rest}"))
        } else if let Some(rest) = url.strip_prefix("grpc+tls://") {
            (murr_client::Transport::Flight, format!("https://{rest}"))
        } else if url.starts_with("http://") || url.starts_with("https://") {
            (murr_client::Transport::Http, url.to_owned())
        } else {
            return Err(Failure::new(
                Kind::Invalid,
                format!(
                    "url {url:?}: expected http://host:port, https://host:port, grpc://host:port or grpc+tls://host:port"
                ),
            )
            .into());
        };
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(Failure::new(
                Kind::Invalid,
                format!("timeout {timeout}: expected seconds > 0"),
            )
            .into());
        }
        // The Flight client builds its channel on the runtime.
        let _guard = runtime().enter();
        let mut builder = murr_client::Client::builder(base)
            .transport(transport)
            .timeout(Duration::from_secs_f64(timeout));
        if let Some(token) = token {
            builder = builder.token(token);
        }
        if let Some(pem) = ca_pem {
            builder = builder.ca_cert_pem(pem);
        }
        let client = builder.build().map_err(Failure::from)?;
        Ok(Remote {
            client: RwLock::new(Some(client)),
            url: url.to_owned(),
        })
    }

    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    fn create_table(&self, py: Python<'_>, name: &str, schema_json: &str) -> PyResult<()> {
        let schema = parse_schema(schema_json)?;
        let c = self.client()?;
        Ok(self.call(py, async move { c.create_table(name, &schema).await })?)
    }

    fn alter_table(&self, py: Python<'_>, name: &str, change_json: &str) -> PyResult<String> {
        let change = parse_alter(change_json)?;
        let c = self.client()?;
        let schema = self.call(py, async move { c.alter_table(name, &change).await })?;
        Ok(schema_json(&schema)?)
    }

    fn drop_table(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let c = self.client()?;
        Ok(self.call(py, async move { c.drop_table(name).await })?)
    }

    fn list_tables(&self, py: Python<'_>) -> PyResult<String> {
        let c = self.client()?;
        let all = self.call(py, async move { c.list_tables().await })?;
        Ok(serde_json::to_string(&all).map_err(|e| Failure::new(Kind::Other, e.to_string()))?)
    }

    fn get_schema(&self, py: Python<'_>, name: &str) -> PyResult<String> {
        let c = self.client()?;
        let schema = self.call(py, async move { c.schema(name).await })?;
        Ok(schema_json(&schema)?)
    }

    fn write(&self, py: Python<'_>, name: &str, data: &Bound<'_, PyAny>) -> PyResult<u64> {
        let c = self.client()?;
        let reader = stream_of(data)?;
        let batches = py
            .detach(|| reader.collect::<Result<Vec<RecordBatch>, ArrowError>>())
            .map_err(|e| Failure::from(invalid_input(&e)))?;
        Ok(self.call(py, async move { c.write(name, batches).await })?)
    }

    fn read(
        &self,
        py: Python<'_>,
        name: &str,
        keys: &Bound<'_, PyAny>,
        columns: Vec<String>,
    ) -> PyResult<Py<PyAny>> {
        let c = self.client()?;
        let keys = Keys::from_py(keys)?;
        let texts = keys.texts()?;
        let batch = self.call(py, async move { c.fetch(name, &texts, &columns).await })?;
        Ok(batch.to_pyarrow(py)?.unbind())
    }

    fn read_keyed(
        &self,
        py: Python<'_>,
        name: &str,
        keys: &Bound<'_, PyAny>,
        columns: Vec<String>,
    ) -> PyResult<Py<PyAny>> {
        let c = self.client()?;
        let keys = key_batch(py, keys)?;
        let batch = self.call(py, async move { c.read(name, &keys, &columns).await })?;
        Ok(batch.to_pyarrow(py)?.unbind())
    }

    fn compact(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let c = self.client()?;
        Ok(self.call(py, async move { c.compact(name).await })?)
    }

    fn load(&self, py: Python<'_>, name: &str, url: &str, mode: &str) -> PyResult<String> {
        let c = self.client()?;
        let mode = load_mode(mode)?;
        let status = self.call(py, async move {
            match c.load(name, url, mode, |_| {}).await {
                Err(murr_client::Error::LoadFailed(reason)) => Ok(Err(reason)),
                other => other.map(Ok),
            }
        })?;
        match status {
            Ok(status) => Ok(load_answer(status)?),
            Err(reason) => Err(Failure::new(
                Kind::Invalid,
                format!("load failed, nothing was committed: {reason}"),
            )
            .into()),
        }
    }

    fn close(&self) {
        self.client
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

/// How the embedded engine's loads reach object storage: an S3-compatible endpoint from
/// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`), plain HTTP allowed with `AWS_ALLOW_HTTP=true`; the
/// keys and region from the rest of the `AWS_*` environment.
fn env_remote_options() -> murr_directory::RemoteOptions {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    murr_directory::RemoteOptions {
        endpoint: env("AWS_ENDPOINT_URL").or_else(|| env("AWS_ENDPOINT")),
        allow_http: env("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        ..murr_directory::RemoteOptions::default()
    }
}

/// `replace` or `upsert`.
fn load_mode(mode: &str) -> Res<murr_api::LoadMode> {
    match mode {
        "replace" => Ok(murr_api::LoadMode::Replace),
        "upsert" => Ok(murr_api::LoadMode::Upsert),
        other => Err(Failure::new(
            Kind::Invalid,
            format!("mode {other:?}: a load's mode is \"replace\" or \"upsert\""),
        )),
    }
}

/// A load's final status as JSON, or the failure that ended it.
fn load_answer(status: murr_api::LoadStatus) -> Res<String> {
    if status.state == murr_api::LoadState::Failed {
        return Err(Failure::new(
            Kind::Invalid,
            format!(
                "load failed, nothing was committed: {}",
                status.error.as_deref().unwrap_or("no reason given")
            ),
        ));
    }
    serde_json::to_string(&status).map_err(|e| Failure::new(Kind::Other, e.to_string()))
}

/// The native module.
#[pymodule]
fn _murr(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<Remote>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
