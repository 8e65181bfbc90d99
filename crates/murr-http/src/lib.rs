//! murr's HTTP API: generation 1 of the upstream murr contract (`docs/api.md`), over
//! [`murr_table::Store`], with the wire shapes of [`murr_api`].
//!
//! [`router`] builds the routes (see [`ROUTES`]); [`serve`] runs them on a listener with
//! TCP_NODELAY and keep-alive until a shutdown signal, finishing requests in flight.
//! Storage, Arrow and Parquet work runs on tokio's blocking pool, never on the async workers
//! (small fetches excepted: they take less time than a thread hand-off).
//!
//! Every error answer is JSON `{"error": "<message>"}`; table errors map to status codes in one
//! place (`impl From<murr_table::Error> for ApiError`).

mod auth;
mod body;
mod conn;
mod error;
mod guard;
mod handlers;
mod json;
mod json_text;
mod listener;
mod load;
mod metrics;
mod node;
pub mod openapi;
mod parquet_upload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post, put};
use murr_table::Store;
use tokio::net::TcpListener;

pub use error::{ApiError, ApiResult};
pub use listener::BoundedListener;
pub use load::{Loads, Watch};
pub use metrics::HttpMetrics;
use murr_api::FetchLimits;
use murr_api::auth::{AuthHandle, Scope};
pub use murr_api::{ARROW_STREAM, PARQUET};
pub use node::{HealthReport, NodeStatus, Role};

/// The HTTP front-end's settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body, in bytes (413 above). Default 1 GiB.
    pub max_payload_size: u64,
    /// Largest accepted fetch request body, in bytes (413 above). Default 16 MiB.
    pub max_fetch_payload_size: u64,
    /// Bounds on one fetch's keys and cells.
    pub fetch_limits: FetchLimits,
    /// Where Parquet uploads are spooled while they are read (a folder on local disk).
    pub upload_dir: PathBuf,
    /// The bearer tokens requests need (open by default: no tokens).
    pub auth: AuthHandle,
    /// The longest a request's headers may take to arrive (a slowloris client is dropped);
    /// also how long a kept-alive connection may stay idle. Default 30 s.
    pub header_read_timeout: Duration,
    /// The longest a request body may send nothing before the request fails with 408.
    /// Default 30 s.
    pub body_timeout: Duration,
    /// The most connections open at once; more wait in the listen backlog. Default 4096.
    pub max_connections: usize,
    /// The front-end's metrics (the server registers them; by default in no registry).
    pub metrics: HttpMetrics,
    /// Whether `GET /metrics` is open when tokens are configured (else it needs `read`).
    pub open_metrics: bool,
    /// TLS: connections are accepted as TLS with this configuration (HTTP/1.1 over rustls).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Where connections that start with a write are served (a runtime on the CPUs kept for
    /// background work), so that receiving and decoding an upload does not take the threads
    /// and cores that fetches run on. `None` serves every connection on the caller's runtime.
    /// Plain TCP only: a TLS connection's first request cannot be read before its handshake.
    pub background: Option<tokio::runtime::Handle>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_payload_size: 1 << 30,
            max_fetch_payload_size: 16 << 20,
            fetch_limits: FetchLimits::default(),
            upload_dir: std::env::temp_dir(),
            auth: AuthHandle::default(),
            header_read_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            metrics: HttpMetrics::default(),
            open_metrics: false,
            tls: None,
            background: None,
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The tables.
    pub store: Arc<Store>,
    /// The settings.
    pub config: Arc<HttpConfig>,
    /// The node's role and sync state (`/health`).
    pub node: Arc<NodeStatus>,
    /// What `GET /metrics` renders (404 without one).
    pub registry: Option<Arc<prometheus_client::registry::Registry>>,
    /// The loads from object storage, running and finished.
    pub loads: Arc<Loads>,
}

/// Every route: method and path, as `/openapi.json` documents them (a test keeps the two equal).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/openapi.json"),
    ("get", "/metrics"),
    ("get", "/api/v1/table"),
    ("get", "/api/v1/table/{name}/schema"),
    ("put", "/api/v1/table/{name}"),
    ("patch", "/api/v1/table/{name}"),
    ("delete", "/api/v1/table/{name}"),
    ("put", "/api/v1/table/{name}/write"),
    ("post", "/api/v1/table/{name}/fetch"),
    ("post", "/api/v1/table/{name}/compact"),
    ("post", "/api/v1/table/{name}/load"),
    ("get", "/api/v1/table/{name}/load/{id}"),
];

/// The scope each route needs when tokens are configured (routes not listed are open).
pub const ROUTE_SCOPES: &[(&str, &str, Scope)] = &[
    ("get", "/metrics", Scope::Read),
    ("get", "/api/v1/table", Scope::Read),
    ("get", "/api/v1/table/{name}/schema", Scope::Read),
    ("post", "/api/v1/table/{name}/fetch", Scope::Read),
    ("put", "/api/v1/table/{name}/write", Scope::Write),
    ("post", "/api/v1/table/{name}/load", Scope::Write),
    ("get", "/api/v1/table/{name}/load/{id}", Scope::Write),
    ("put", "/api/v1/table/{name}", Scope::Admin),
    ("patch", "/api/v1/table/{name}", Scope::Admin),
    ("delete", "/api/v1/table/{name}", Scope::Admin),
    ("post", "/api/v1/table/{name}/compact", Scope::Admin),
];

/// The API's routes over `state`. `/health` and `/openapi.json` are open (and `/metrics` with
/// `open_metrics`); every other route needs a token with its scope ([`ROUTE_SCOPES`]) once
/// tokens are configured.
pub fn router(state: AppState) -> Router {
    let guard = |scope: Scope| {
        axum::middleware::from_fn_with_state((state.config.auth.clone(), scope), auth::require)
    };
    let metrics = Router::new().route("/metrics", get(metrics::render));
    let (open_metrics, read_metrics) = if state.config.open_metrics {
        (metrics, Router::new())
    } else {
        (Router::new(), metrics)
    };
    let read = read_metrics
        .route("/api/v1/table", get(handlers::list_tables))
        .route("/api/v1/table/{name}/schema", get(handlers::get_schema))
        .route("/api/v1/table/{name}/fetch", post(handlers::fetch))
        .route_layer(guard(Scope::Read));
    let write = Router::new()
        .route("/api/v1/table/{name}/write", put(handlers::write))
        .route("/api/v1/table/{name}/load", post(handlers::load))
        .route("/api/v1/table/{name}/load/{id}", get(handlers::load_status))
        .route_layer(guard(Scope::Write));
    let admin = Router::new()
        .route(
            "/api/v1/table/{name}",
            put(handlers::create_table)
                .patch(handlers::alter_table)
                .delete(handlers::drop_table),
        )
        .route("/api/v1/table/{name}/compact", post(handlers::compact))
        .route_layer(guard(Scope::Admin));
    Router::new()
        .route("/health", get(handlers::health))
        .route("/openapi.json", get(handlers::openapi))
        .merge(open_metrics)
        .merge(read)
        .merge(write)
        .merge(admin)
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.config.body_timeout,
            guard::guard_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.config.metrics.clone(),
            metrics::observe,
        ))
        .with_state(state)
}

/// Binds `addr` (port 0 picks a free port).
///
/// # Errors
/// When the address cannot be bound.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits for
/// requests in flight to finish, with `config`'s connection bounds (`max_connections`,
/// `header_read_timeout`).
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    conn::serve(listener, router, config, shutdown).await
}
