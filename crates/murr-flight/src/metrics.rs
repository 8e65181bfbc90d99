//! The Flight front-end's metrics: calls by method and gRPC status, and their latency by method,
//! counted by a tower layer around the service (so no RPC can forget to count itself).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Latency buckets, in seconds: 50 µs to ~6.5 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(50e-6, 2.0, 18))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    method: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

/// The Flight metrics, and the tower layer that counts them. Clones share the counts.
#[derive(Debug, Clone)]
pub struct FlightMetrics {
    calls: Family<CallLabels, Counter>,
    latency: Family<MethodLabels, Histogram, fn() -> Histogram>,
}

impl Default for FlightMetrics {
    fn default() -> Self {
        FlightMetrics {
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl FlightMetrics {
    /// New metrics, registered in `registry` as `murr_flight_calls_total` and
    /// `murr_flight_call_duration_seconds`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = FlightMetrics::default();
        registry.register(
            "murr_flight_calls",
            "Arrow Flight calls answered, by method and gRPC status",
            m.calls.clone(),
        );
        registry.register(
            "murr_flight_call_duration_seconds",
            "Time from a call's start to its answer's headers (a do_get's answer is built by then), by method",
            m.latency.clone(),
        );
        m
    }
}

/// The RPC of a request path `/arrow.flight.protocol.FlightService/<Method>`.
fn method_of(path: &str) -> &'static str {
    const METHODS: [(&str, &str); 10] = [
        ("DoGet", "do_get"),
        ("DoPut", "do_put"),
        ("DoAction", "do_action"),
        ("GetFlightInfo", "get_flight_info"),
        ("GetSchema", "get_schema"),
        ("ListFlights", "list_flights"),
        ("ListActions", "list_actions"),
        ("Handshake", "handshake"),
        ("DoExchange", "do_exchange"),
        ("PollFlightInfo", "poll_flight_info"),
    ];
    let last = path.rsplit('/').next().unwrap_or_default();
    METHODS
        .iter()
        .find(|(m, _)| *m == last)
        .map_or("other", |(_, name)| name)
}

/// The name of a gRPC status code (`grpc-status` header value).
fn code_name(code: &[u8]) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    std::str::from_utf8(code)
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .and_then(|n| NAMES.get(n).copied())
        .unwrap_or("UNKNOWN")
}

impl<S> tower::Layer<S> for FlightMetrics {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Observed<S> {
        Observed {
            inner,
            metrics: self.clone(),
        }
    }
}

/// The Flight service, counted.
#[derive(Debug, Clone)]
pub struct Observed<S> {
    inner: S,
    metrics: FlightMetrics,
}

impl<S, B, R> tower::Service<http::Request<B>> for Observed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_of(request.uri().path());
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await;
            // An error before the answer's stream puts its status in the headers
            // ("trailers only"); an answer that streams says OK at its end.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .map_or("OK", |v| code_name(v.as_bytes())),
                Err(_) => "TRANSPORT",
            };
            metrics
                .calls
                .get_or_create(&CallLabels { method, code })
                .inc();
            metrics
                .latency
                .get_or_create(&MethodLabels { method })
                .observe(started.elapsed().as_secs_f64());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_codes_are_named() {
        assert_eq!(
            method_of("/arrow.flight.protocol.FlightService/DoGet"),
            "do_get"
        );
        assert_eq!(method_of("/x/Nope"), "other");
        assert_eq!(code_name(b"0"), "OK");
        assert_eq!(code_name(b"16"), "UNAUTHENTICATED");
        assert_eq!(code_name(b"99"), "UNKNOWN");
    }
}
