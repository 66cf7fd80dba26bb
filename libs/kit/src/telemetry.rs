//! Logs and spans with `tracing`: the level from `RUST_LOG` (default `info`), text for a
//! terminal or JSON for a log pipeline; and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the
//! spans exported with OpenTelemetry over OTLP/gRPC (a call's span and a reaction's span are
//! the children of the `traceparent` they continue: [`crate::trace::follow`]).

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::ServerConfig;
use crate::config::LogFormat;

/// What [`init`] installed. Keep it for the life of the server: dropping it flushes the spans
/// not yet exported and stops the export.
#[derive(Debug)]
#[must_use = "dropping it stops the export of traces"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Exports what is queued (bounded by the exporter's timeout), then stops.
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "flushing the traces at exit");
            }
        }
    }
}

/// Installs the global subscriber, with the OTLP export when `config.otlp_endpoint` is set.
/// Call once, at the top of a binary, inside the Tokio runtime (the exporter's gRPC client
/// runs on it); a second call (several servers in one test process) leaves the first
/// subscriber in place and exports nothing. Fails only if the exporter cannot be built.
pub fn init(config: &ServerConfig) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match config.log_format {
        LogFormat::Text => {
            Box::new(tracing_subscriber::fmt::layer().with_target(false).with_writer(std::io::stderr))
        }
        LogFormat::Json => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_span_events(FmtSpan::NONE)
                .with_writer(std::io::stderr),
        ),
    };
    let provider = match &config.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(endpoint)?),
        None => None,
    };
    let export = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("symbiose")));
    let installed = tracing_subscriber::registry().with(logs).with(export).with(filter).try_init().is_ok();
    let provider = provider.filter(|_| installed);
    if let (Some(_), Some(endpoint)) = (&provider, &config.otlp_endpoint) {
        tracing::info!(%endpoint, "exporting traces over OTLP");
    }
    Ok(Telemetry { provider })
}

/// A provider exporting in batches (bounded queue) to the OTLP/gRPC collector at `endpoint`,
/// naming the service after the running binary.
fn tracer_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .with_context(|| format!("building the OTLP exporter to {endpoint}"))?;
    let service_name = std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().map(|stem| stem.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "symbiose".to_owned());
    Ok(SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service_name).build())
        .with_batch_exporter(exporter)
        .build())
}
