//! How a service running alone takes in the other contexts' events: through a durable
//! JetStream consumer per context, each event appended to the service's own store as it was
//! written (same stream, same version, same id, same metadata), so that its views and
//! reactors follow one local log, exactly as in the one-process mode.
//!
//! An import takes the messages ready, up to [`IMPORT_BATCH_MAX`], appends each run of one
//! stream's events in one append and hands the batch's appends to the store together and in
//! order ([`EventStore::append_many`]: one `fdatasync` for the batch, and the copy's log in the
//! context's order); then it acknowledges each message. An import is idempotent: an
//! event the copy holds already at its place (delivered again after a crash between the
//! append and the acknowledgement) is acknowledged and not copied twice. A copy never skips a
//! version nor replaces an event: such an event is delivered again later (its predecessor may
//! be on its way), and parked on `symbiose.deadletter.<consumer>` after
//! [`IMPORT_DELIVERIES_MAX`] deliveries, never written out of place.
//!
//! The copies are the service's to read and never to publish: its relay publishes its own
//! context only ([`crate::RelayOptions::only_contexts`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use symbiose_eventstore::{
    Append, Direction, EventData, EventStore, ExpectedVersion, RecordedEvent, StreamName,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::StreamExt as _;

use crate::feed::{FEED_BACKOFF_MS_MAX, FEED_ERRORS_MAX};
use crate::feed::{durable_consumer, park_message};
use crate::{CONSUMER_DELIVERIES_MAX, FeedError, RELAY_RESTART_DELAY_MS, cloudevents};

/// Messages an import takes at once, and lets wait for their acknowledgement.
pub const IMPORT_BATCH_MAX: usize = 256;
/// Deliveries of one message after which an import parks it.
pub const IMPORT_DELIVERIES_MAX: u32 = CONSUMER_DELIVERIES_MAX;
/// The delay before a message that could not be imported is delivered again: it doubles
/// with each delivery up to [`IMPORT_RETRY_DELAY_MS_MAX`].
pub const IMPORT_RETRY_DELAY_MS_MIN: u64 = 200;
pub const IMPORT_RETRY_DELAY_MS_MAX: u64 = 5_000;
/// How often an import logs its progress, at most.
const IMPORT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What became of one event handed to [`import_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// Copied now.
    Copied,
    /// The copy held it already: it was delivered again.
    Held,
    /// Not in the copy, and why: deliver it again later.
    NotYet(String),
}

/// Appends `events` (in the order they were delivered: each context's order) to `store` at
/// their places, and says what became of each. Each run of consecutive versions of one stream
/// is one append, after what the copy holds of it; the appends go to the store together and
/// in order ([`EventStore::append_many`]), so the copy's log keeps the delivered order.
pub async fn import_events<S: EventStore>(store: &S, events: &[RecordedEvent]) -> Vec<Imported> {
    let mut outcomes: Vec<Option<Imported>> = vec![None; events.len()];
    // The version each stream's copy takes next, with what this batch plans before it.
    let mut next_of: HashMap<&StreamName, Result<u64, String>> = HashMap::new();
    let mut seen = HashSet::new();
    let mut appends = Vec::new();
    let mut planned: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    while start < events.len() {
        let first = &events[start];
        if !seen.insert(first.id) {
            outcomes[start] = Some(Imported::NotYet(format!("{} delivered twice in one batch", first.id)));
            start += 1;
            continue;
        }
        let mut end = start + 1;
        while end < events.len()
            && events[end].stream == first.stream
            && events[end].version == events[end - 1].version + 1
            && seen.insert(events[end].id)
        {
            end += 1;
        }
        let run = start..end;
        start = end;
        let next = match next_of.get(&first.stream) {
            Some(next) => next.clone(),
            None => {
                let next = match store.stream_info(&first.stream).await {
                    Ok(Some(info)) if info.deleted => Err(format!("{}: deleted in the copy", first.stream)),
                    Ok(info) => Ok(info.map_or(0, |info| info.last_version + 1)),
                    Err(error) => Err(error.to_string()),
                };
                next_of.insert(&first.stream, next.clone());
                next
            }
        };
        let next = match next {
            Ok(next) => next,
            Err(reason) => {
                run.for_each(|index| outcomes[index] = Some(Imported::NotYet(reason.clone())));
                continue;
            }
        };
        if first.version > next {
            let reason = format!(
                "{}: the copy ends before version {next}, the event {} is version {}: the events between are \
                 missing",
                first.stream, first.id, first.version
            );
            run.for_each(|index| outcomes[index] = Some(Imported::NotYet(reason.clone())));
            continue;
        }
        // The events of the run the copy holds already must be the same events.
        let overlap = usize::try_from(next - first.version).unwrap_or(usize::MAX).min(run.len());
        let mut fresh = run.start + overlap;
        if overlap > 0 {
            let stored = store.read_stream(&first.stream, first.version, Direction::Forward, overlap).await;
            let stored = stored.unwrap_or_default();
            for index in run.start..run.start + overlap {
                let event = &events[index];
                let same = stored.get(index - run.start).is_some_and(|stored| stored.id == event.id);
                if !same {
                    let reason = format!(
                        "{}: version {} holds another event than {} ({})",
                        event.stream, event.version, event.id, event.event_type
                    );
                    (index..run.end)
                        .for_each(|index| outcomes[index] = Some(Imported::NotYet(reason.clone())));
                    fresh = run.end;
                    break;
                }
                outcomes[index] = Some(Imported::Held);
            }
        }
        if fresh < run.end {
            appends.push(Append {
                stream: first.stream.clone(),
                expected: expected_before(events[fresh].version),
                events: copies(&events[fresh..run.end]),
            });
            planned.push(fresh..run.end);
            next_of.insert(&first.stream, Ok(events[run.end - 1].version + 1));
        }
    }
    for (answer, range) in store.append_many(appends).await.into_iter().zip(planned) {
        for index in range {
            outcomes[index] = Some(match &answer {
                Ok(_) => Imported::Copied,
                Err(error) => Imported::NotYet(error.to_string()),
            });
        }
    }
    outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or(Imported::NotYet("not planned".to_owned())))
        .collect()
}

fn expected_before(version: u64) -> ExpectedVersion {
    version.checked_sub(1).map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
}

fn copies(events: &[RecordedEvent]) -> Vec<EventData> {
    events
        .iter()
        .map(|event| {
            EventData::new(event.id, event.event_type.clone(), event.payload.clone())
                .with_metadata(event.metadata.clone())
        })
        .collect()
}

/// The name of the consumer through which `service` imports `context`'s events.
pub fn importer_name(service: &str, context: &str) -> String {
    format!("{service}-imports-{context}")
}

/// An import's counters, since its process started.
#[derive(Debug, Default)]
pub struct ImportCounters {
    pub imported: AtomicU64,
    pub already_held: AtomicU64,
    pub retried: AtomicU64,
    pub parked: AtomicU64,
    /// Messages of the stream not delivered yet, as of the last one delivered.
    pub pending: AtomicU64,
}

/// Imports running in the background, one per context: tell them to stop, then wait.
#[derive(Debug)]
pub struct RunningImports {
    stop: watch::Sender<bool>,
    tasks: Vec<(String, Arc<ImportCounters>, ImportTask)>,
}

type ImportTask = JoinHandle<Result<(), FeedError>>;

impl RunningImports {
    /// Each context's counters.
    pub fn counters(&self) -> impl Iterator<Item = (&str, &ImportCounters)> {
        self.tasks.iter().map(|(context, counters, _)| (context.as_str(), counters.as_ref()))
    }

    /// Stops every import and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (context, _, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, context, "an import stopped with an error"),
                Err(error) => tracing::error!(%error, context, "an import task failed"),
            }
        }
    }
}

/// Starts importing the events of each of `contexts` into `store`, for `service`, through
/// durable JetStream consumers (named by [`importer_name`]; JetStream keeps where each
/// stands). An import that gives up on NATS starts again after [`RELAY_RESTART_DELAY_MS`]; a
/// store error ends it.
pub fn start_imports<S: EventStore>(
    jetstream: jetstream::Context,
    store: S,
    service: &str,
    contexts: &[&str],
) -> RunningImports {
    let (stop, stopped) = watch::channel(false);
    let tasks = contexts
        .iter()
        .map(|context| {
            let counters = Arc::new(ImportCounters::default());
            let import = Import {
                jetstream: jetstream.clone(),
                store: store.clone(),
                context: (*context).to_owned(),
                name: importer_name(service, context),
                counters: counters.clone(),
            };
            ((*context).to_owned(), counters, tokio::spawn(import.supervise(stopped.clone())))
        })
        .collect();
    tracing::info!(service, ?contexts, "importing the other contexts' events from NATS");
    RunningImports { stop, tasks }
}

struct Import<S> {
    jetstream: jetstream::Context,
    store: S,
    context: String,
    name: String,
    counters: Arc<ImportCounters>,
}

impl<S: EventStore> Import<S> {
    async fn supervise(self, mut stopped: watch::Receiver<bool>) -> Result<(), FeedError> {
        loop {
            match self.run(&mut stopped).await {
                Err(error @ (FeedError::Nats(_) | FeedError::NatsUnavailable { .. })) => {
                    tracing::error!(
                        %error,
                        consumer = %self.name,
                        restart_in_ms = RELAY_RESTART_DELAY_MS,
                        "an import gave up on NATS; it will start again"
                    );
                    let delay = tokio::time::sleep(Duration::from_millis(RELAY_RESTART_DELAY_MS));
                    tokio::select! {
                        () = delay => {}
                        _ = stopped.wait_for(|stopped| *stopped) => return Ok(()),
                    }
                }
                other => {
                    self.log_progress("import stopped");
                    return other;
                }
            }
        }
    }

    /// Imports batch after batch until `stopped`.
    async fn run(&self, stopped: &mut watch::Receiver<bool>) -> Result<(), FeedError> {
        let consumer = durable_consumer(
            &self.jetstream,
            &self.context,
            &self.name,
            IMPORT_DELIVERIES_MAX,
            IMPORT_BATCH_MAX as i64,
        )
        .await?;
        let mut messages =
            consumer.stream().max_messages_per_batch(IMPORT_BATCH_MAX).messages().await.map_err(|error| {
                FeedError::nats(&format!("pulling from the consumer {}", self.name), error)
            })?;
        tracing::info!(consumer = %self.name, context = %self.context, "import starting");
        let mut errors_in_a_row = 0_u32;
        let mut logged_at = Instant::now();
        loop {
            let first = tokio::select! {
                _ = stopped.wait_for(|stopped| *stopped) => return Ok(()),
                first = messages.next() => first,
            };
            let mut batch = match first {
                Some(Ok(message)) => vec![message],
                Some(Err(error)) => {
                    errors_in_a_row += 1;
                    if errors_in_a_row > FEED_ERRORS_MAX {
                        return Err(FeedError::NatsUnavailable {
                            attempts: errors_in_a_row,
                            last_error: format!("receiving from the consumer {}: {error}", self.name),
                        });
                    }
                    tracing::warn!(consumer = %self.name, attempt = errors_in_a_row, %error, "receiving failed");
                    let backoff = (10 * u64::from(errors_in_a_row).pow(2)).min(FEED_BACKOFF_MS_MAX);
                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                    continue;
                }
                None => {
                    return Err(FeedError::Nats(format!("the consumer {} stopped delivering", self.name)));
                }
            };
            errors_in_a_row = 0;
            // What else is ready goes in the same batch (a zero timeout polls once).
            while batch.len() < IMPORT_BATCH_MAX {
                match tokio::time::timeout(Duration::ZERO, messages.next()).await {
                    Ok(Some(Ok(message))) => batch.push(message),
                    _ => break,
                }
            }
            self.import_batch(batch).await?;
            if logged_at.elapsed() >= IMPORT_LOG_INTERVAL {
                self.log_progress("import progress");
                logged_at = Instant::now();
            }
        }
    }

    /// Imports the batch's events, then acknowledges what the copy holds, and asks again for
    /// (or parks) the rest.
    async fn import_batch(&self, batch: Vec<jetstream::Message>) -> Result<(), FeedError> {
        let mut events = Vec::with_capacity(batch.len());
        let mut messages = Vec::with_capacity(batch.len());
        for message in batch {
            if let Ok(info) = message.info() {
                self.counters.pending.store(info.pending, Ordering::Relaxed);
            }
            match cloudevents::event(message.headers.as_ref(), message.payload.clone()) {
                Ok(event) => {
                    events.push(event);
                    messages.push(message);
                }
                Err(reason) => {
                    tracing::error!(consumer = %self.name, subject = %message.subject, %reason, "not a Symbiose event: parked");
                    let error = format!("not a Symbiose event: {reason}");
                    park_message(&self.jetstream, &self.name, &message, delivered(&message), &error).await?;
                    self.counters.parked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let outcomes = import_events(&self.store, &events).await;
        for ((event, message), outcome) in events.iter().zip(messages).zip(outcomes) {
            let error = match outcome {
                Imported::Copied | Imported::Held => {
                    let counter = if outcome == Imported::Copied {
                        &self.counters.imported
                    } else {
                        &self.counters.already_held
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    message.ack().await.map_err(|error| FeedError::nats("acknowledging a message", error))?;
                    continue;
                }
                Imported::NotYet(error) => error,
            };
            let delivered = delivered(&message);
            if delivered >= u64::from(IMPORT_DELIVERIES_MAX) {
                tracing::error!(consumer = %self.name, position = event.position, id = %event.id, delivered, %error, "event parked");
                park_message(&self.jetstream, &self.name, &message, delivered, &error).await?;
                self.counters.parked.fetch_add(1, Ordering::Relaxed);
            } else {
                let delay = retry_delay(delivered);
                tracing::warn!(consumer = %self.name, position = event.position, id = %event.id, delivered, %error, "event not imported, delivering it again");
                message
                    .ack_with(AckKind::Nak(Some(delay)))
                    .await
                    .map_err(|error| FeedError::nats("asking for a message again", error))?;
                self.counters.retried.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn log_progress(&self, message: &'static str) {
        let counters = &self.counters;
        tracing::info!(
            consumer = %self.name,
            imported = counters.imported.load(Ordering::Relaxed),
            already_held = counters.already_held.load(Ordering::Relaxed),
            retried = counters.retried.load(Ordering::Relaxed),
            parked = counters.parked.load(Ordering::Relaxed),
            pending = counters.pending.load(Ordering::Relaxed),
            "{message}"
        );
    }
}

/// How many times `message` has been delivered to its consumer, this time included.
fn delivered(message: &jetstream::Message) -> u64 {
    message.info().map_or(1, |info| u64::try_from(info.delivered).unwrap_or(1).max(1))
}

/// The delay before the delivery that follows the `delivered`-th.
fn retry_delay(delivered: u64) -> Duration {
    let doubling = u32::try_from(delivered.saturating_sub(1).min(16)).unwrap_or(16);
    Duration::from_millis(
        IMPORT_RETRY_DELAY_MS_MIN.saturating_mul(1 << doubling).min(IMPORT_RETRY_DELAY_MS_MAX),
    )
}

#[cfg(test)]
mod tests {
    use symbiose_eventstore::embedded::{EmbeddedStore, Options};
    use uuid::Uuid;

    use super::*;

    fn open(dir: &std::path::Path) -> EmbeddedStore {
        EmbeddedStore::open(dir, Options::default()).expect("a store").0
    }

    /// Events as another service's store recorded them, in its log's order: `deal-1` v0,
    /// `deal-2` v0, `deal-1` v1 and v2 (one append).
    async fn recorded_elsewhere(dir: &std::path::Path) -> Vec<RecordedEvent> {
        let source = open(dir);
        let (deal, other) =
            (StreamName::new("deal-1").expect("a name"), StreamName::new("deal-2").expect("a name"));
        let event = |name: &str| {
            EventData::new(Uuid::now_v7(), format!("symbiose.matching.v1.{name}"), name.as_bytes().to_vec())
                .with_metadata(b"who".to_vec())
        };
        source.append(&deal, ExpectedVersion::NoStream, vec![event("DealAgreed")]).await.expect("append");
        source.append(&other, ExpectedVersion::NoStream, vec![event("DealAgreed")]).await.expect("append");
        let two = vec![event("DealCancelled"), event("DealClosed")];
        source.append(&deal, ExpectedVersion::Exact(0), two).await.expect("append");
        let events = source.read_all(0, 10).await.expect("read");
        source.close().await;
        events
    }

    async fn stream_of(store: &EmbeddedStore, name: &str) -> Vec<RecordedEvent> {
        let stream = StreamName::new(name).expect("a name");
        store.read_stream(&stream, 0, Direction::Forward, 10).await.expect("the copy")
    }

    use Imported::{Copied, Held};

    fn not_yet(outcome: &Imported, saying: &str) -> bool {
        matches!(outcome, Imported::NotYet(reason) if reason.contains(saying))
    }

    #[tokio::test]
    async fn an_event_delivered_again_is_copied_once_at_its_place_in_the_contexts_order() {
        let dirs = (tempfile::tempdir().expect("a dir"), tempfile::tempdir().expect("a dir"));
        let events = recorded_elsewhere(dirs.0.path()).await;
        let store = open(dirs.1.path());
        assert_eq!(import_events(&store, &events[..1]).await, [Copied]);
        // A crash between the append and the acknowledgement delivers events again, with the
        // ones that follow them.
        assert_eq!(import_events(&store, &events).await, [Held, Copied, Copied, Copied]);
        assert_eq!(import_events(&store, &events[2..]).await, [Held, Held]);
        let copy = store.read_all(0, 10).await.expect("the copy");
        assert_eq!(copy.len(), 4, "each event once");
        for (copied, original) in copy.iter().zip(&events) {
            assert_eq!(
                (
                    copied.id,
                    &copied.stream,
                    copied.version,
                    &copied.event_type,
                    &copied.payload,
                    &copied.metadata
                ),
                (
                    original.id,
                    &original.stream,
                    original.version,
                    &original.event_type,
                    &original.payload,
                    &original.metadata
                ),
                "in the order of the context's log"
            );
        }
        store.close().await;
    }

    #[tokio::test]
    async fn a_copy_never_skips_a_version_nor_replaces_an_event() {
        let dirs = (tempfile::tempdir().expect("a dir"), tempfile::tempdir().expect("a dir"));
        let events = recorded_elsewhere(dirs.0.path()).await;
        let store = open(dirs.1.path());
        let gap = import_events(&store, &events[2..3]).await;
        assert!(not_yet(&gap[0], "missing"), "{gap:?}");
        assert_eq!(store.head(), 0, "nothing written");

        // Out of order: what comes before its turn waits, the rest goes on.
        let shuffled = [events[0].clone(), events[3].clone(), events[1].clone()];
        let outcomes = import_events(&store, &shuffled).await;
        assert_eq!(outcomes[0], Copied);
        assert!(not_yet(&outcomes[1], "missing"), "{outcomes:?}");
        assert_eq!(outcomes[2], Copied);
        // Twice in one batch: the second waits for the next delivery.
        let twice = import_events(&store, &[events[2].clone(), events[2].clone()]).await;
        assert_eq!(twice[0], Copied);
        assert!(not_yet(&twice[1], "twice"), "{twice:?}");

        let mut impostor = events[3].clone();
        impostor.id = Uuid::now_v7();
        assert_eq!(import_events(&store, &[impostor.clone()]).await, [Copied]);
        let replaced = import_events(&store, &events[2..4]).await;
        assert_eq!(replaced[0], Held);
        assert!(not_yet(&replaced[1], "holds another event"), "{replaced:?}");
        assert_eq!(stream_of(&store, "deal-1").await[2].id, impostor.id, "the copy is unchanged");
        assert_eq!(store.head(), 4);
        store.close().await;
    }
}
