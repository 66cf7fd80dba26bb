//! Traces across a call: a server continues the `traceparent` a client sends, answers it, and
//! with `OTEL_EXPORTER_OTLP_ENDPOINT` set exports the call's span to a real OTLP/gRPC receiver
//! (the collector's `TraceService`, served here on a free port) as the child of the client's
//! span, then a reaction to an event the call wrote as the child of the call's span, and a
//! call between services made in that reaction as the child of the reaction's. This is the
//! only test of the binary that installs the global subscriber.

use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use symbiose_kit::ServerConfig;
use symbiose_kit::server::{self, Listeners, ServiceSet};
use symbiose_kit::trace::{self, EventTrace, TraceContext};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tracing::Instrument as _;

/// Longest a call or a wait may take before the test counts it as hung.
const WAIT_MS_MAX: u64 = 30_000;
/// Export requests the receiver holds before the exporter waits.
const RECEIVED_MAX: usize = 64;

/// The client's trace: the W3C example.
const CLIENT_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// An OTLP receiver that hands every span it is sent to the test.
struct Receiver {
    spans: mpsc::Sender<Span>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request.into_inner().resource_spans.into_iter().flat_map(|resource| resource.scope_spans);
        for span in spans.flat_map(|scope| scope.spans) {
            let _ = self.spans.send(span).await;
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

async fn start_receiver() -> (SocketAddr, mpsc::Receiver<Span>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
    let addr = listener.local_addr().expect("an address");
    let (spans, received) = mpsc::channel(RECEIVED_MAX);
    tokio::spawn(
        Server::builder()
            .add_service(TraceServiceServer::new(Receiver { spans }))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (addr, received)
}

/// The `traceparent` the server answers a health check sent with `traceparent`, if any.
async fn health_check(addr: SocketAddr, traceparent: Option<&str>) -> TraceContext {
    let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
    if let Some(traceparent) = traceparent {
        request.metadata_mut().insert("traceparent", traceparent.parse().expect("a header value"));
    }
    answered_traceparent(addr, request).await
}

/// The `traceparent` the server answers `request`.
async fn answered_traceparent(addr: SocketAddr, request: tonic::Request<HealthCheckRequest>) -> TraceContext {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("an endpoint")
        .timeout(Duration::from_millis(WAIT_MS_MAX))
        .connect()
        .await
        .expect("connect");
    let response = HealthClient::new(channel).check(request).await.expect("health answers");
    let answered = response.metadata().get("traceparent").expect("a traceparent answered");
    TraceContext::from_traceparent(answered.to_str().expect("ascii")).expect("a valid traceparent answered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_continues_the_client_s_trace_and_its_span_is_exported_over_otlp() {
    let (receiver_addr, mut received) = start_receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ServerConfig {
        metrics_addr: None,
        otlp_endpoint: Some(format!("http://{receiver_addr}")),
        ..ServerConfig::for_tests(dir.path().to_owned())
    };
    let telemetry = symbiose_kit::telemetry::init(&config).expect("telemetry");
    assert!(telemetry.exporting(), "the first subscriber of the test binary exports");

    let listeners = Listeners::bind(&config).await.expect("bind");
    let addr = listeners.grpc_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        server::serve(&config, ServiceSet::new(), listeners, async {
            let _ = stopped.await;
        })
        .await
    });

    let client = TraceContext::from_traceparent(CLIENT_TRACEPARENT).expect("valid");
    let answered = health_check(addr, Some(CLIENT_TRACEPARENT)).await;
    assert_eq!(answered.trace_id, client.trace_id, "the call continues the client's trace");
    assert_ne!(answered.span_id, client.span_id, "the call is a span of its own");

    // A reaction to an event the call wrote (its metadata holds the call's traceparent), as
    // the feed's consumers run one: a span of its own, the child of the call's.
    let event_id = uuid::Uuid::now_v7();
    let written = EventTrace { traceparent: answered.traceparent(), ..EventTrace::default() };
    let reaction_span = tracing::info_span!("event", trace_id = tracing::field::Empty);
    let reaction = trace::follow(&reaction_span, written.reaction(event_id));
    let seen = trace::scope(reaction, async { trace::current() }).instrument(reaction_span).await;
    assert_eq!(seen, Some(reaction));
    assert_eq!((reaction.trace_id, reaction.causation), (client.trace_id, Some(event_id)));

    // A call between services made during the reaction (as matching reserves through
    // listings): the callee continues the reaction's trace.
    let authority = symbiose_kit::TokenAuthority::create(&dir.path().join("keys")).expect("a signing key");
    let between_services = trace::scope(reaction, async {
        symbiose_kit::auth::service_request(&authority, HealthCheckRequest { service: String::new() })
    })
    .await;
    let callee = answered_traceparent(addr, between_services).await;
    assert_eq!(callee.trace_id, client.trace_id, "the callee continues the trace");

    // No traceparent, or a bad one: each call starts a trace of its own.
    let first = health_check(addr, None).await;
    let second = health_check(addr, Some("00-zz-bad-01")).await;
    assert_ne!(first.trace_id, second.trace_id);
    assert_ne!(first.trace_id, client.trace_id);

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_millis(WAIT_MS_MAX), server)
        .await
        .expect("the server stops")
        .expect("the server task")
        .expect("the server ran");
    // Dropping it flushes the spans not yet exported, as a binary does at exit.
    tokio::task::spawn_blocking(move || drop(telemetry)).await.expect("the flush");

    let trace_id = client.trace_id.to_be_bytes().to_vec();
    let mut spans = Vec::new();
    while spans.len() < 3 {
        let span = tokio::time::timeout(Duration::from_millis(WAIT_MS_MAX), received.recv())
            .await
            .expect("the trace's spans exported in time")
            .expect("the receiver runs");
        if span.trace_id == trace_id {
            spans.push(span);
        }
    }
    let named = |name: &str| spans.iter().find(|span| span.name == name).expect("a span of that name");
    let call_span = named("rpc");
    assert_eq!(
        call_span.parent_span_id,
        client.span_id.to_be_bytes().to_vec(),
        "the child of the client's span"
    );
    assert_eq!(call_span.span_id, answered.span_id.to_be_bytes().to_vec(), "the span the server answered");
    let reaction_span = named("event");
    assert_eq!(reaction_span.parent_span_id, call_span.span_id, "the reaction is the child of the call");
    assert_eq!(
        reaction_span.span_id,
        reaction.span_id.to_be_bytes().to_vec(),
        "the span the reaction writes in"
    );
}
