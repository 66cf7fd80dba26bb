//! How a service running alone takes in the other contexts' events: through a durable
//! JetStream consumer per context, each event appended to the service's own store as it was
//! written (same stream, same version, same id, same metadata), so that its views and
//! reactors follow one local log, exactly as in the one-process mode.
//!
//! An import is idempotent: the store recognises an event id it already holds at that place,
//! so an event delivered again (after a crash between the append and the acknowledgement)
//! is not copied twice. Events of one context come in their order (the consumer lets one
//! message wait at a time), so each stream's copy grows version by version; a copy that
//! would skip a version, or one whose place holds another event, is an error, and the event is
//! delivered again and then parked, never written out of place.
//!
//! The copies are the service's to read and never to publish: its relay publishes its own
//! context only ([`crate::RelayOptions::only_contexts`]).

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use symbiose_eventstore::{
    Direction, EventData, EventStore, ExpectedVersion, RecordedEvent, STREAM_END, StoreError,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::consumer::{ConsumerMetrics, ConsumerOptions, Handler, HandlerError, run_consumer};
use crate::{Feed, FeedError, RELAY_RESTART_DELAY_MS};

/// Appends each event it is handed to `store`, in its stream at its version.
#[derive(Debug, Clone)]
pub struct Import<S> {
    store: S,
}

impl<S: EventStore> Import<S> {
    pub fn new(store: S) -> Import<S> {
        Import { store }
    }
}

impl<S: EventStore> Handler for Import<S> {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), HandlerError> {
        import(&self.store, event).await
    }
}

/// Appends `event` to `store` at its place: its stream, right after its version's predecessor.
/// Done already (the same id at the same place) is done.
pub async fn import<S: EventStore>(store: &S, event: &RecordedEvent) -> Result<(), HandlerError> {
    let expected = match event.version.checked_sub(1) {
        None => ExpectedVersion::NoStream,
        Some(previous) => ExpectedVersion::Exact(previous),
    };
    let copy = EventData::new(event.id, event.event_type.clone(), event.payload.clone())
        .with_metadata(event.metadata.clone());
    match store.append(&event.stream, expected, vec![copy]).await {
        Ok(_) => Ok(()),
        Err(StoreError::WrongExpectedVersion { .. }) => {
            let held = match store.read_stream(&event.stream, STREAM_END, Direction::Backward, 1).await {
                Ok(last) => last.first().map(|last| last.version),
                Err(StoreError::StreamNotFound(_)) => None,
                Err(error) => return Err(error.into()),
            };
            Err(match held {
                Some(held) if held >= event.version => format!(
                    "{}: version {} holds another event than {} ({})",
                    event.stream, event.version, event.id, event.event_type
                ),
                _ => format!(
                    "{}: the copy ends at version {held:?}, the event {} is version {}: the events between \
                     are missing",
                    event.stream, event.id, event.version
                ),
            }
            .into())
        }
        Err(error) => Err(error.into()),
    }
}

/// The name of the consumer through which `service` imports `context`'s events.
pub fn importer_name(service: &str, context: &str) -> String {
    format!("{service}-imports-{context}")
}

/// Imports running in the background, one per context: tell them to stop, then wait.
#[derive(Debug)]
pub struct RunningImports {
    stop: watch::Sender<bool>,
    tasks: Vec<(String, JoinHandle<Result<(), FeedError>>)>,
}

impl RunningImports {
    /// Stops every import (each saves its checkpoint) and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (context, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, context, "an import stopped with an error"),
                Err(error) => tracing::error!(%error, context, "an import task failed"),
            }
        }
    }
}

/// Starts importing the events of each of `contexts` into `store`, for `service`, through
/// durable JetStream consumers (named by [`importer_name`]) with their checkpoints in
/// `checkpoint_dir`. An import that gives up on NATS starts again after
/// [`RELAY_RESTART_DELAY_MS`]; a store or checkpoint error ends it.
pub fn start_imports<S: EventStore>(
    jetstream: jetstream::Context,
    store: S,
    service: &str,
    contexts: &[&str],
    checkpoint_dir: &Path,
) -> Result<RunningImports, FeedError> {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::with_capacity(contexts.len());
    for context in contexts {
        let options = ConsumerOptions::new(&importer_name(service, context), checkpoint_dir)?;
        let task = tokio::spawn(supervise(
            jetstream.clone(),
            Import::new(store.clone()),
            (*context).to_owned(),
            options,
            stopped.clone(),
        ));
        tasks.push(((*context).to_owned(), task));
    }
    tracing::info!(service, ?contexts, "importing the other contexts' events from NATS");
    Ok(RunningImports { stop, tasks })
}

async fn supervise<S: EventStore>(
    jetstream: jetstream::Context,
    mut import: Import<S>,
    context: String,
    options: ConsumerOptions,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), FeedError> {
    let metrics = ConsumerMetrics::default();
    loop {
        let result = match Feed::<S>::jetstream(jetstream.clone(), &context, &options).await {
            Ok(feed) => {
                let mut until_stopped = stopped.clone();
                run_consumer(feed, &mut import, &options, &metrics, async move {
                    let _ = until_stopped.wait_for(|stopped| *stopped).await;
                })
                .await
                .map(|_| ())
            }
            Err(error) => Err(error),
        };
        match result {
            Err(error @ (FeedError::Nats(_) | FeedError::NatsUnavailable { .. })) => {
                tracing::error!(
                    %error,
                    consumer = %options.name,
                    restart_in_ms = RELAY_RESTART_DELAY_MS,
                    "an import gave up on NATS; it will start again"
                );
                let delay = tokio::time::sleep(Duration::from_millis(RELAY_RESTART_DELAY_MS));
                tokio::select! {
                    () = delay => {}
                    _ = stopped.wait_for(|stopped| *stopped) => return Ok(()),
                }
            }
            other => return other,
        }
        if *stopped.borrow() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use symbiose_eventstore::StreamName;
    use symbiose_eventstore::embedded::{EmbeddedStore, Options};
    use uuid::Uuid;

    use super::*;

    fn open(dir: &Path) -> EmbeddedStore {
        EmbeddedStore::open(dir, Options::default()).expect("a store").0
    }

    /// Events as another service's store recorded them: two streams, one of two events.
    async fn recorded_elsewhere(dir: &Path) -> Vec<RecordedEvent> {
        let source = open(dir);
        let (deal, other) =
            (StreamName::new("deal-1").expect("a name"), StreamName::new("deal-2").expect("a name"));
        let event = |name: &str| {
            EventData::new(Uuid::now_v7(), format!("symbiose.matching.v1.{name}"), name.as_bytes().to_vec())
                .with_metadata(b"who".to_vec())
        };
        source.append(&deal, ExpectedVersion::NoStream, vec![event("DealAgreed")]).await.expect("append");
        source.append(&other, ExpectedVersion::NoStream, vec![event("DealAgreed")]).await.expect("append");
        source.append(&deal, ExpectedVersion::Exact(0), vec![event("DealCancelled")]).await.expect("append");
        let events = source.read_all(0, 10).await.expect("read");
        source.close().await;
        events
    }

    async fn stream_of(store: &EmbeddedStore, name: &str) -> Vec<RecordedEvent> {
        let stream = StreamName::new(name).expect("a name");
        store.read_stream(&stream, 0, Direction::Forward, 10).await.expect("the copy")
    }

    #[tokio::test]
    async fn an_event_delivered_again_is_copied_once_at_its_place() {
        let dirs = (tempfile::tempdir().expect("a dir"), tempfile::tempdir().expect("a dir"));
        let events = recorded_elsewhere(dirs.0.path()).await;
        let store = open(dirs.1.path());
        // A crash between the append and the acknowledgement delivers an event again.
        for event in [&events[0], &events[0], &events[1], &events[2], &events[2]] {
            import(&store, event).await.expect("imported");
        }
        let copy = stream_of(&store, "deal-1").await;
        assert_eq!(copy.len(), 2, "each event once");
        for (copied, original) in copy.iter().zip([&events[0], &events[2]]) {
            assert_eq!(
                (copied.id, copied.version, &copied.event_type, &copied.payload, &copied.metadata),
                (original.id, original.version, &original.event_type, &original.payload, &original.metadata)
            );
        }
        assert_eq!(store.head(), 3, "three events in the copy's log");
        store.close().await;
    }

    #[tokio::test]
    async fn a_copy_never_skips_a_version_nor_replaces_an_event() {
        let dirs = (tempfile::tempdir().expect("a dir"), tempfile::tempdir().expect("a dir"));
        let events = recorded_elsewhere(dirs.0.path()).await;
        let store = open(dirs.1.path());
        let gap = import(&store, &events[2]).await.expect_err("version 1 before version 0");
        assert!(gap.to_string().contains("missing"), "{gap}");
        assert_eq!(store.head(), 0, "nothing written");

        import(&store, &events[0]).await.expect("version 0");
        let mut impostor = events[2].clone();
        impostor.id = Uuid::now_v7();
        import(&store, &impostor).await.expect("another event at version 1 the first time");
        let replaced = import(&store, &events[2]).await.expect_err("version 1 holds the impostor");
        assert!(replaced.to_string().contains("holds another event"), "{replaced}");
        assert_eq!(stream_of(&store, "deal-1").await[1].id, impostor.id, "the copy is unchanged");
        store.close().await;
    }
}
