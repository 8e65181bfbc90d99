//! The HTTP front-end's metrics: requests by route, method and status, their latency by route,
//! and open connections; and `GET /metrics`, which renders a registry in the Prometheus text
//! format (the server registers these and its own in it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::{ApiError, AppState};

/// Latency buckets, in seconds: 50 µs to ~6.5 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(50e-6, 2.0, 18))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

/// The HTTP metrics. Clones share the counts.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    connections: Gauge,
}

impl Default for HttpMetrics {
    /// Metrics that count but are in no registry.
    fn default() -> Self {
        HttpMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            connections: Gauge::default(),
        }
    }
}

impl HttpMetrics {
    /// New metrics, registered in `registry` as `murr_http_requests_total`,
    /// `murr_http_request_duration_seconds` and `murr_http_open_connections`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = HttpMetrics::default();
        registry.register(
            "murr_http_requests",
            "HTTP requests answered, by method, route and status",
            m.requests.clone(),
        );
        registry.register(
            "murr_http_request_duration_seconds",
            "Time from a request's headers to its answer, by route",
            m.latency.clone(),
        );
        registry.register(
            "murr_http_open_connections",
            "HTTP connections open now",
            m.connections.clone(),
        );
        m
    }

    /// A connection opened; its end is the guard's drop.
    pub(crate) fn connection(&self) -> ConnectionGuard {
        self.connections.inc();
        ConnectionGuard(self.connections.clone())
    }

    fn observe(
        &self,
        method: &'static str,
        route: &'static str,
        status: StatusCode,
        took: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }
}

/// Counts a connection as open while it lives.
#[derive(Debug)]
pub(crate) struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The route pattern as a static name (a label set must not grow with what clients send).
fn route_name(matched: Option<&MatchedPath>) -> &'static str {
    matched
        .and_then(|m| {
            crate::ROUTES
                .iter()
                .find(|(_, path)| *path == m.as_str())
                .map(|(_, path)| *path)
        })
        .unwrap_or("unmatched")
}

/// The middleware that counts every answer.
pub(crate) async fn observe(
    State(metrics): State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_name(request.method());
    let route = route_name(request.extensions().get::<MatchedPath>());
    let response = next.run(request).await;
    metrics.observe(method, route, response.status(), started.elapsed());
    response
}

/// `GET /metrics`: the registry in the Prometheus text format (0.0.4).
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    let Some(registry) = state.registry.as_ref().map(Arc::clone) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "this server keeps no metrics registry",
        )
        .into_response();
    };
    let mut text = String::with_capacity(16 << 10);
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
        tracing::error!(error = %e, "rendering the metrics failed");
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "rendering the metrics failed",
        )
        .into_response();
    }
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
    );
    response
}
