//! Prometheus metrics: calls, errors and latency per RPC, served as text on `/metrics` of a
//! separate HTTP port, so that scraping never competes with the gRPC port's limits.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tonic::Code;

/// Latency buckets: 50 µs doubling up to about 13 s.
const LATENCY_BUCKET_FIRST_S: f64 = 0.000_05;
const LATENCY_BUCKET_COUNT: u16 = 19;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    rpc: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    rpc: String,
}

/// The metrics of one server. Cloning shares them.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    calls: Family<CallLabels, Counter>,
    errors: Family<CallLabels, Counter>,
    latency: Family<RpcLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let calls = Family::<CallLabels, Counter>::default();
        let errors = Family::<CallLabels, Counter>::default();
        let latency = Family::<RpcLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(LATENCY_BUCKET_FIRST_S, 2.0, LATENCY_BUCKET_COUNT))
        });
        let mut registry = Registry::with_prefix("symbiose_grpc");
        registry.register("calls", "gRPC calls answered, by RPC and status code", calls.clone());
        registry.register("errors", "gRPC calls answered with a status other than OK", errors.clone());
        registry.register("call_duration_seconds", "Time to answer a gRPC call", latency.clone());
        Metrics { registry: Arc::new(registry), calls, errors, latency }
    }

    /// The tower layer that records every call through the server it wraps.
    pub fn layer(&self) -> MetricsLayer {
        MetricsLayer { metrics: self.clone() }
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    fn record(&self, path: &str, code: Code, seconds: f64) {
        // Unknown paths are folded into one label, so a client cannot grow the label set.
        let rpc = if code == Code::Unimplemented { "unimplemented" } else { path };
        let labels = CallLabels { rpc: rpc.to_owned(), code: format!("{code:?}") };
        self.calls.get_or_create(&labels).inc();
        if code != Code::Ok {
            self.errors.get_or_create(&labels).inc();
        }
        self.latency.get_or_create(&RpcLabels { rpc: rpc.to_owned() }).observe(seconds);
    }
}

/// Serves `/metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = metrics.encode();
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                )
            }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: Metrics,
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> MetricsService<S> {
        MetricsService { inner, metrics: self.metrics.clone() }
    }
}

#[derive(Clone, Debug)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, RequestBody, ResponseBody> tower::Service<http::Request<RequestBody>> for MetricsService<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            // Errors answered at once travel in the headers ("trailers-only"); a call that
            // has no status there succeeded or reports its status at the end of its stream.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<i32>().ok())
                    .map_or(Code::Ok, Code::from),
                Err(_) => Code::Internal,
            };
            metrics.record(&path, code, started.elapsed().as_secs_f64());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_errors_and_latency_are_counted_per_rpc() {
        let metrics = Metrics::new();
        metrics.record("/symbiose.reference.v1.ReferenceService/GetWasteCode", Code::Ok, 0.001);
        metrics.record("/symbiose.reference.v1.ReferenceService/GetWasteCode", Code::NotFound, 0.002);
        metrics.record("/no.Such/Call", Code::Unimplemented, 0.000_1);
        let text = metrics.encode();
        let rpc = "/symbiose.reference.v1.ReferenceService/GetWasteCode";
        assert!(
            text.contains(&format!("symbiose_grpc_calls_total{{rpc=\"{rpc}\",code=\"Ok\"}} 1")),
            "{text}"
        );
        assert!(
            text.contains(&format!("symbiose_grpc_errors_total{{rpc=\"{rpc}\",code=\"NotFound\"}} 1")),
            "{text}"
        );
        assert!(
            text.contains(&format!("symbiose_grpc_call_duration_seconds_count{{rpc=\"{rpc}\"}} 2")),
            "{text}"
        );
        assert!(!text.contains("/no.Such/Call"), "{text}");
        assert!(text.contains("rpc=\"unimplemented\""), "{text}");
    }
}
