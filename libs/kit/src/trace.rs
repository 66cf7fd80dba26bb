//! The context of one user action as it travels: a W3C trace context (`traceparent`), whose
//! trace id is the action's correlation id, and the id of the event being reacted to (the
//! causation). A gRPC call takes it from its `traceparent` header or starts a new one; a
//! consumer takes it from the event it handles. Code running for a call or a reaction reads it
//! with [`current`]; the shell writes it into every event's metadata.

use std::future::Future;

use uuid::Uuid;

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
        if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
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

    /// The W3C `traceparent` of this context (sampled).
    pub fn traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.span_id)
    }

    /// The correlation id of the user action: the trace id, 32 lowercase hex digits.
    pub fn correlation_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

fn nonzero_u128() -> u128 {
    loop {
        let value = Uuid::new_v4().as_u128();
        if value != 0 {
            return value;
        }
    }
}

fn nonzero_u64() -> u64 {
    loop {
        let value = Uuid::new_v4().as_u64_pair().0;
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
}
