//! The context of one user action as it travels: a W3C trace context (`traceparent`), whose
//! trace id is the action's correlation id, and the id of the event being reacted to (the
//! causation). A gRPC call takes it from its `traceparent` header or starts a new one; a
//! consumer takes it from the event it handles. Code running for a call or a reaction reads it
//! with [`current`]; the shell writes it into every event's metadata.
//!
//! Where it travels:
//! - a gRPC call: the `traceparent` request header, read by [`TraceLayer`] in every server,
//!   which answers with the `traceparent` of the call (so a client learns its correlation id);
//!   calls between services send the current one ([`crate::auth::service_request`]);
//! - an event: its metadata (`causation_id`, `correlation_id`, `traceparent`), and on NATS
//!   the CloudEvents extensions `ce-causationid`, `ce-correlationid` and `ce-traceparent`;
//! - a reaction: [`EventTrace::reaction`], the event's trace continued, caused by the event.
//!
//! With OpenTelemetry on ([`crate::telemetry`]), [`follow`] makes a call's or a reaction's
//! span the child of the `traceparent` it continues, and the span id it writes further is the
//! exported span's.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use prost::Message as _;
use symbiose_proto::common::v1::EventMetadata;
use tonic::body::Body;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use uuid::Uuid;

/// The W3C header of a trace context, on gRPC requests and responses.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The trace context of the work in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The W3C trace id: the correlation id of the user action (never zero).
    pub trace_id: u128,
    /// The W3C parent span id: the span this work continues (never zero).
    pub span_id: u64,
    /// The id of the event this work reacts to; `None` for a command from a caller.
    pub causation: Option<Uuid>,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The context of the call or reaction in progress, if one was set with [`scope`].
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|context| *context).ok()
}

/// Runs `future` with `context` as the current one.
pub async fn scope<F: Future>(context: TraceContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// Makes `span` the span of the work that continues `parent`: records the trace id on it
/// (its `trace_id` field), makes it the child of `parent` in OpenTelemetry when the export is
/// on, and returns the context to run the work in: `parent`'s trace and causation, and the
/// span's own id (a new random one when nothing exports). Call it before `span` is entered.
pub fn follow(span: &tracing::Span, parent: TraceContext) -> TraceContext {
    span.record("trace_id", tracing::field::display(parent.correlation_id()));
    let remote = SpanContext::new(
        TraceId::from_bytes(parent.trace_id.to_be_bytes()),
        SpanId::from_bytes(parent.span_id.to_be_bytes()),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let child = parent.child();
    // Without the OpenTelemetry layer (export off) this fails, and nothing needs it.
    if span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote.clone())).is_err() {
        return child;
    }
    let context = span.context();
    let exported = context.span().span_context().clone();
    if exported.is_valid() && exported.trace_id() == remote.trace_id() {
        TraceContext { span_id: u64::from_be_bytes(exported.span_id().to_bytes()), ..child }
    } else {
        child
    }
}

/// The trace fields of a stored event's metadata (`symbiose.common.v1.EventMetadata`), each
/// empty where the event has none (events written before they existed, metadata that does not
/// decode).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventTrace {
    pub causation_id: String,
    pub correlation_id: String,
    pub traceparent: String,
}

impl EventTrace {
    /// The trace fields of the encoded metadata `metadata`.
    pub fn of_metadata(metadata: &[u8]) -> EventTrace {
        match EventMetadata::decode(metadata) {
            Ok(metadata) => EventTrace {
                causation_id: metadata.causation_id,
                correlation_id: metadata.correlation_id,
                traceparent: metadata.traceparent,
            },
            Err(_) => EventTrace::default(),
        }
    }

    /// The parent context of a reaction to the event `event_id` that has this trace: its
    /// `traceparent` (the span that wrote it), else its correlation id (from a new span id),
    /// else a new root (events written before traces), caused by the event. The reaction's own
    /// span is made from it by [`follow`].
    pub fn reaction(&self, event_id: Uuid) -> TraceContext {
        let parent = TraceContext::from_traceparent(&self.traceparent)
            .or_else(|| TraceContext::from_correlation_id(&self.correlation_id))
            .unwrap_or_else(TraceContext::new_root);
        TraceContext { causation: Some(event_id), ..parent }
    }
}

impl TraceContext {
    /// A new user action: a random trace id and span id.
    pub fn new_root() -> TraceContext {
        TraceContext { trace_id: nonzero_u128(), span_id: nonzero_u64(), causation: None }
    }

    /// The same action, one step further: a new span id, the same trace id.
    pub fn child(&self) -> TraceContext {
        TraceContext { span_id: nonzero_u64(), ..*self }
    }

    /// The same action, reacting to the event `event_id`.
    pub fn caused_by(&self, event_id: Uuid) -> TraceContext {
        TraceContext { causation: Some(event_id), ..self.child() }
    }

    /// Parses a W3C `traceparent` (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`);
    /// `None` for anything else, an all-zero id included.
    pub fn from_traceparent(header: &str) -> Option<TraceContext> {
        let mut parts = header.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 || flags.len() != 2
        {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        u8::from_str_radix(version, 16).ok()?;
        u8::from_str_radix(flags, 16).ok()?;
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(TraceContext { trace_id, span_id, causation: None })
    }

    /// The context of the action whose correlation id is `correlation_id` (32 hex digits, not
    /// all zero), from a new span id; `None` for anything else.
    pub fn from_correlation_id(correlation_id: &str) -> Option<TraceContext> {
        let correlation_id = correlation_id.trim();
        if correlation_id.len() != 32 || !correlation_id.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        let trace_id = u128::from_str_radix(correlation_id, 16).ok()?;
        (trace_id != 0).then(|| TraceContext { trace_id, span_id: nonzero_u64(), causation: None })
    }

    /// The W3C `traceparent` of this context (sampled).
    pub fn traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.span_id)
    }

    /// The correlation id of the user action: the trace id, 32 lowercase hex digits.
    pub fn correlation_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

/// The tower layer of every server that runs each call in its trace context: the request's
/// `traceparent` continued, or a new root when it has none or a bad one. The call runs in a
/// span `rpc` with its path and trace id, within [`scope`], and its response carries the
/// `traceparent` of the call.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> TraceService<S> {
        TraceService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct TraceService<S> {
    inner: S,
}

impl<S, ResponseBody> tower::Service<http::Request<Body>> for TraceService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let parent = request
            .headers()
            .get(TRACEPARENT_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(TraceContext::from_traceparent)
            .unwrap_or_else(TraceContext::new_root);
        let span = tracing::info_span!("rpc", rpc = %request.uri().path(), trace_id = tracing::field::Empty);
        let context = follow(&span, parent);
        // The handler's future is made here: in the scope too, for what it reads when made.
        let response = CURRENT.sync_scope(context, || self.inner.call(request));
        Box::pin(
            scope(context, async move {
                let mut response = response.await?;
                let traceparent = context.traceparent().parse().expect("a traceparent is a header value");
                response.headers_mut().insert(TRACEPARENT_HEADER, traceparent);
                Ok(response)
            })
            .instrument(span),
        )
    }
}

/// Random bytes from the system; a system without a random source cannot run a server.
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("the system's random source");
    bytes
}

fn nonzero_u128() -> u128 {
    loop {
        let value = u128::from_ne_bytes(random());
        if value != 0 {
            return value;
        }
    }
}

fn nonzero_u64() -> u64 {
    loop {
        let value = u64::from_ne_bytes(random());
        if value != 0 {
            return value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_goes_both_ways_and_bad_ones_are_refused() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::from_traceparent(header).expect("a valid traceparent");
        assert_eq!(context.traceparent(), header);
        assert_eq!(context.correlation_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_current_context_is_the_scope_s() {
        assert_eq!(current(), None);
        let root = TraceContext::new_root();
        let event = Uuid::now_v7();
        let seen = scope(root.caused_by(event), async { current() }).await.expect("a context in scope");
        assert_eq!((seen.trace_id, seen.causation), (root.trace_id, Some(event)));
        assert_ne!(seen.span_id, root.span_id);
    }

    #[tokio::test]
    async fn a_call_between_services_carries_the_current_traceparent() {
        let traceparent = |request: &tonic::Request<()>| {
            request.metadata().get(TRACEPARENT_HEADER).map(|value| value.to_str().expect("ascii").to_owned())
        };
        assert_eq!(traceparent(&crate::auth::service_request_in_process(())), None);
        let context = TraceContext::new_root();
        let request = scope(context, async { crate::auth::service_request_in_process(()) }).await;
        assert_eq!(traceparent(&request), Some(context.traceparent()));
    }

    #[test]
    fn a_reaction_continues_the_event_s_trace_caused_by_the_event() {
        let event = Uuid::now_v7();
        let action = TraceContext::new_root();
        let metadata = |correlation_id: String, traceparent: String| {
            EventMetadata { correlation_id, traceparent, ..EventMetadata::default() }.encode_to_vec()
        };

        let traced = EventTrace::of_metadata(&metadata(action.correlation_id(), action.traceparent()));
        assert_eq!(traced.traceparent, action.traceparent());
        let reaction = traced.reaction(event);
        assert_eq!(
            reaction,
            TraceContext { causation: Some(event), ..action },
            "the writer's span continued"
        );

        let correlated =
            EventTrace::of_metadata(&metadata(action.correlation_id(), String::new())).reaction(event);
        assert_eq!((correlated.trace_id, correlated.causation), (action.trace_id, Some(event)));

        // Events written before traces: a new action, still caused by the event.
        for old in [Vec::new(), metadata(String::new(), String::new()), b"\xff\xff".to_vec()] {
            let reaction = EventTrace::of_metadata(&old).reaction(event);
            assert_ne!(reaction.trace_id, action.trace_id);
            assert_eq!(reaction.causation, Some(event));
        }
        assert_eq!(TraceContext::from_correlation_id(&"0".repeat(32)), None);
        assert_eq!(TraceContext::from_correlation_id("not hex"), None);
    }
}
