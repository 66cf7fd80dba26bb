//! Each reaction runs in the trace of the event it handles: the same correlation id (the trace
//! id of the event's `traceparent`, else its correlation id), caused by the event; an event
//! written before traces starts a new one.

use std::sync::{Arc, Mutex};

use prost::Message as _;
use symbiose_eventstore::{EventData, EventStore, ExpectedVersion, Position, RecordedEvent, StreamName};
use symbiose_feed::{ConsumerOptions, Feed, Handler, HandlerError};
use symbiose_kit::trace::{self, TraceContext};
use symbiose_proto::common::v1 as common;
use uuid::Uuid;

use crate::support::{CONTEXT, ConsumerTask, ORGANIZATION_REGISTERED, open_store};

/// An event's id and the context it was handled in.
type Handled = (Uuid, Option<TraceContext>);

/// The context each event was handled in, in order.
#[derive(Default, Clone)]
struct Contexts(Arc<Mutex<Vec<Handled>>>);

impl Handler for Contexts {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), HandlerError> {
        self.0.lock().expect("not poisoned").push((event.id, trace::current()));
        Ok(())
    }
}

fn event(metadata: Option<common::EventMetadata>) -> EventData {
    let event = EventData::new(Uuid::now_v7(), ORGANIZATION_REGISTERED, b"".to_vec());
    match metadata {
        Some(metadata) => event.with_metadata(metadata.encode_to_vec()),
        None => event,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaction_continues_the_trace_of_its_event_caused_by_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(&dir.path().join("events"));
    let action = TraceContext::new_root();
    let other_action = TraceContext::new_root();
    let events = vec![
        event(Some(common::EventMetadata {
            correlation_id: action.correlation_id(),
            traceparent: action.traceparent(),
            ..Default::default()
        })),
        // A correlation id without a traceparent: the same action all the same.
        event(Some(common::EventMetadata {
            correlation_id: other_action.correlation_id(),
            ..Default::default()
        })),
        // Written before traces.
        event(Some(common::EventMetadata { request_id: "r1".to_owned(), ..Default::default() })),
        event(None),
    ];
    let ids: Vec<Uuid> = events.iter().map(|event| event.id).collect();
    let stream = StreamName::new("organization-1").expect("stream name");
    store.append(&stream, ExpectedVersion::NoStream, events).await.expect("append");

    let options = ConsumerOptions::new("traced", dir.path()).expect("options");
    let contexts = Contexts::default();
    let feed = Feed::local(store.clone(), Position::START, Some(CONTEXT), &options);
    let consumer = ConsumerTask::spawn(feed, contexts.clone(), options);
    consumer.done_with(ids.len() as u64).await;
    consumer.stop().await;

    let seen = contexts.0.lock().expect("not poisoned").clone();
    assert_eq!(seen.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
    let contexts: Vec<TraceContext> =
        seen.iter().map(|(_, context)| context.expect("every event handled in a trace context")).collect();
    for (context, id) in contexts.iter().zip(&ids) {
        assert_eq!(context.causation, Some(*id), "each reaction is caused by its event");
    }
    assert_eq!(contexts[0].trace_id, action.trace_id);
    assert_ne!(contexts[0].span_id, action.span_id, "a span of its own");
    assert_eq!(contexts[1].trace_id, other_action.trace_id);
    let old = [contexts[2].trace_id, contexts[3].trace_id];
    assert!(old.iter().all(|trace_id| ![action.trace_id, other_action.trace_id].contains(trace_id)));
    assert_ne!(old[0], old[1], "each old event starts an action of its own");
}
