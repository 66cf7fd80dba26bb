//! How a service running alone takes in the other contexts' events: through a durable
//! JetStream consumer per context, each event appended to the service's own store as it was
//! written (same stream, same version, same id, same metadata), so that its views and
//! reactors follow one local log, exactly as in the one-process mode.
//!
//! An import takes the messages ready, up to [`IMPORT_BATCH_MAX`], appends each run of one
//! stream's events in one append and hands the batch's appends to the store together and in
//! order ([`EventStore::append_many`]: the embedded store writes what it has queued with one
//! `fdatasync`); then it acknowledges each message. The copy's log keeps the context's order:
//! messages are taken in stream order only, and the import stops at the first event it cannot
//! copy and takes the stream again from the consumer's acknowledgement floor (the consumer is
//! made anew there, so nothing later overtakes it), after a pause; it does so at start too when
//! the last run left messages unacknowledged.
//!
//! An import is idempotent: an event the copy holds already at its place (delivered again after
//! a crash between the append and the acknowledgement) is acknowledged and not copied twice. A
//! copy never skips a version nor replaces an event: such an event is tried
//! [`IMPORT_ATTEMPTS_MAX`] times, then parked on `symbiose.deadletter.<consumer>` with the
//! reason, and the later events of its stream are parked at once while the process runs (they
//! could never follow it; after a restart, each is tried again first).
//! A store that fails ends the import, and the service with it: its views would go stale.
//!
//! The copies are the service's to read and never to publish: its relay publishes its own
//! context only ([`crate::RelayOptions::only_contexts`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{self, pull};
use async_nats::jetstream::{self};
use symbiose_eventstore::{
    APPEND_BYTES_MAX, Append, Direction, EventData, EventStore, ExpectedVersion, RecordedEvent, StoreError,
    StreamName,
};
use symbiose_kit::backoff::Backoff;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::StreamExt as _;

use crate::feed::{FEED_ERRORS_MAX, durable_consumer, park_message};
use crate::{CONSUMER_DELIVERIES_MAX, FeedError, RELAY_RESTART_DELAY_MS, cloudevents, route};

/// Messages an import takes at once, and lets wait for their acknowledgement.
pub const IMPORT_BATCH_MAX: usize = 256;
/// Times an import tries an event that cannot go in the copy before it parks it.
pub const IMPORT_ATTEMPTS_MAX: u32 = CONSUMER_DELIVERIES_MAX;
/// The pauses before an import tries again an event it could not copy.
const IMPORT_RETRY: Backoff = Backoff::REDELIVERY;
/// Bytes of events one append of an import takes, at most: half the store's bound, for the
/// records' own headers.
const IMPORT_APPEND_BYTES_MAX: usize = APPEND_BYTES_MAX / 2;
/// Streams an import remembers as broken (an event of theirs parked), at most.
const BROKEN_STREAMS_MAX: usize = 4096;
/// How long an import waits for a message before it looks at its consumer (see
/// [`Import::idle`]).
const IMPORT_IDLE_CHECK: Duration = Duration::from_secs(1);
/// How often [`RunningImports::caught_up`] looks.
pub const IMPORT_CATCH_UP_POLL_MS: u64 = 50;
/// Longest wait, at a stop, for JetStream to take the acknowledgements sent.
const IMPORT_SETTLE_MS_MAX: u64 = 2_000;
/// How often an import logs its progress, at most.
const IMPORT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What became of one event handed to [`import_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// Copied now.
    Copied,
    /// The copy held it already: it was delivered again.
    Held,
    /// It cannot go in the copy now, and why: its place is not the next of its stream, or holds
    /// another event, or the store refuses it.
    Refused(String),
    /// The store failed, whatever the event.
    Failed(String),
    /// Not tried: an event before it in the batch was not copied.
    Skipped,
}

/// Appends `events` (in the context's order) to `store` at their places, and says what became
/// of each. Each run of consecutive versions of one stream is one append, after what the copy
/// holds of it; the appends go to the store together and in order
/// ([`EventStore::append_many`]). Planning stops at the first event that cannot be copied: the
/// ones after it are [`Imported::Skipped`], so nothing overtakes it.
pub async fn import_events<S: EventStore>(store: &S, events: &[RecordedEvent]) -> Vec<Imported> {
    let mut outcomes = vec![Imported::Skipped; events.len()];
    // The version each stream's copy takes next, with what this batch plans before it.
    let mut next_of: HashMap<&StreamName, u64> = HashMap::new();
    // Each event id met in the batch, and where.
    let mut seen: HashMap<uuid::Uuid, (&StreamName, u64)> = HashMap::new();
    let mut appends = Vec::new();
    let mut planned: Vec<std::ops::Range<usize>> = Vec::new();
    // Each event as it would be appended, made once: its size cuts the runs, and the appends
    // take it.
    let mut copies: Vec<Option<EventData>> = events.iter().map(|event| Some(copy_of(event))).collect();
    let size = |copy: &Option<EventData>| copy.as_ref().map_or(0, EventData::encoded_len);
    let mut start = 0;
    'plan: while start < events.len() {
        let first = &events[start];
        if let Some(&(stream, version)) = seen.get(&first.id) {
            if (stream, version) != (&first.stream, first.version) {
                outcomes[start] = Imported::Refused(format!(
                    "the event {} is both {stream} version {version} and {} version {}",
                    first.id, first.stream, first.version
                ));
                break 'plan;
            }
            // The same event published twice: it is in the copy once the first is.
            outcomes[start] = Imported::Held;
            start += 1;
            continue;
        }
        seen.insert(first.id, (&first.stream, first.version));
        let mut end = start + 1;
        let mut bytes = size(&copies[start]);
        while end < events.len()
            && events[end].stream == first.stream
            && events[end].version == events[end - 1].version + 1
            && bytes + size(&copies[end]) <= IMPORT_APPEND_BYTES_MAX
            && !seen.contains_key(&events[end].id)
        {
            seen.insert(events[end].id, (&events[end].stream, events[end].version));
            bytes += size(&copies[end]);
            end += 1;
        }
        let run = start..end;
        start = end;
        let next = match next_of.get(&first.stream) {
            Some(next) => *next,
            None => match store.stream_info(&first.stream).await {
                Ok(Some(info)) if info.deleted => {
                    outcomes[run.start] = Imported::Refused(format!("{}: deleted in the copy", first.stream));
                    break 'plan;
                }
                Ok(info) => info.map_or(0, |info| info.last_version + 1),
                Err(error) => {
                    outcomes[run.start] = Imported::Failed(error.to_string());
                    break 'plan;
                }
            },
        };
        if first.version > next {
            outcomes[run.start] = Imported::Refused(format!(
                "{}: the copy ends before version {next}, the event {} is version {}: the events between are \
                 missing",
                first.stream, first.id, first.version
            ));
            break 'plan;
        }
        // The events of the run the copy holds already must be the same events.
        let overlap = usize::try_from(next - first.version).unwrap_or(usize::MAX).min(run.len());
        if overlap > 0 {
            let stored =
                match store.read_stream(&first.stream, first.version, Direction::Forward, overlap).await {
                    Ok(stored) => stored,
                    Err(error) => {
                        outcomes[run.start] = Imported::Failed(error.to_string());
                        break 'plan;
                    }
                };
            for index in run.start..run.start + overlap {
                let event = &events[index];
                if stored.get(index - run.start).is_none_or(|stored| stored.id != event.id) {
                    outcomes[index] = Imported::Refused(format!(
                        "{}: version {} holds another event than {} ({})",
                        event.stream, event.version, event.id, event.event_type
                    ));
                    break 'plan;
                }
                outcomes[index] = Imported::Held;
            }
        }
        let fresh = run.start + overlap;
        if fresh < run.end {
            appends.push(Append {
                stream: first.stream.clone(),
                expected: expected_before(events[fresh].version),
                events: copies[fresh..run.end].iter_mut().filter_map(Option::take).collect(),
            });
            planned.push(fresh..run.end);
            next_of.insert(&first.stream, events[run.end - 1].version + 1);
        } else {
            next_of.insert(&first.stream, next);
        }
    }
    let mut refused_before = false;
    for (answer, range) in store.append_many(appends).await.into_iter().zip(planned) {
        if answer.is_ok() && refused_before {
            tracing::error!(
                position = %events[range.start].position,
                "the store took an append after refusing one before it: the copy's log is out of the context's order"
            );
        }
        refused_before |= answer.is_err();
        let outcome = match answer {
            Ok(_) => Imported::Copied,
            Err(
                error @ (StoreError::WrongExpectedVersion { .. }
                | StoreError::DuplicateEvent { .. }
                | StoreError::InvalidInput(_)),
            ) => Imported::Refused(error.to_string()),
            Err(error) => Imported::Failed(error.to_string()),
        };
        for index in range {
            outcomes[index] = outcome.clone();
        }
    }
    outcomes
}

fn expected_before(version: u64) -> ExpectedVersion {
    version.checked_sub(1).map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
}

/// The event to append for `event`: the same id, type, payload and metadata.
fn copy_of(event: &RecordedEvent) -> EventData {
    EventData::new(event.id, event.event_type.clone(), event.payload.clone())
        .with_metadata(event.metadata.clone())
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
    /// Times the import took the stream again from its consumer's acknowledgement floor.
    pub restarts: AtomicU64,
    pub parked: AtomicU64,
    /// Messages of the stream not delivered yet, as of the last one delivered.
    pub pending: AtomicU64,
    /// The import has copied, once since it started, everything the stream held.
    pub caught_up: AtomicBool,
}

/// Imports running in the background, one per context: tell them to stop, then wait; or wait
/// for one to fail.
#[derive(Debug)]
pub struct RunningImports {
    stop: watch::Sender<bool>,
    failed: watch::Receiver<Option<String>>,
    tasks: Vec<(String, Arc<ImportCounters>, ImportTask)>,
}

type ImportTask = JoinHandle<Result<(), FeedError>>;

impl RunningImports {
    /// Each context's counters.
    pub fn counters(&self) -> impl Iterator<Item = (&str, &ImportCounters)> {
        self.tasks.iter().map(|(context, counters, _)| (context.as_str(), counters.as_ref()))
    }

    /// Completes when an import has ended on an error (a store error): why. A service stops
    /// then, rather than serve views that no longer follow.
    pub fn failure(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut failed = self.failed.clone();
        async move {
            let reason =
                failed.wait_for(Option::is_some).await.map(|reason| reason.clone().unwrap_or_default());
            match reason {
                Ok(reason) => reason,
                // Every import ended without an error: nothing will fail.
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Completes once every import has copied what its stream held (each one once since it
    /// started), checking every [`IMPORT_CATCH_UP_POLL_MS`].
    pub async fn caught_up(&self) {
        while !self.tasks.iter().all(|(_, counters, _)| counters.caught_up.load(Ordering::Relaxed)) {
            tokio::time::sleep(Duration::from_millis(IMPORT_CATCH_UP_POLL_MS)).await;
        }
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
/// store error ends it, and [`RunningImports::failure`] says so.
pub fn start_imports<S: EventStore>(
    jetstream: jetstream::Context,
    store: S,
    service: &str,
    contexts: &[&str],
) -> RunningImports {
    let (stop, stopped) = watch::channel(false);
    let (failure, failed) = watch::channel(None);
    let failure = Arc::new(failure);
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
            let (stopped, failure) = (stopped.clone(), failure.clone());
            let name = import.name.clone();
            let running = tokio::spawn(async move { import.supervise(stopped).await });
            let task = tokio::spawn(async move {
                // A panic fails the import as an error does.
                let result = running.await.unwrap_or_else(|error| {
                    Err(FeedError::Internal(format!("the import task failed: {error}")))
                });
                if let Err(error) = &result {
                    tracing::error!(%error, consumer = %name, "an import stopped on an error");
                    failure.send_replace(Some(format!("{name}: {error}")));
                }
                result
            });
            ((*context).to_owned(), counters, task)
        })
        .collect();
    tracing::info!(service, ?contexts, "importing the other contexts' events from NATS");
    RunningImports { stop, failed, tasks }
}

struct Import<S> {
    jetstream: jetstream::Context,
    store: S,
    context: String,
    name: String,
    counters: Arc<ImportCounters>,
}

/// How a batch ended.
enum Next {
    /// Take the next batch.
    Go,
    /// Take the stream again from the acknowledgement floor, after this pause.
    Again(Duration),
}

/// An event that could not be copied, and how many times in a row.
#[derive(Debug, Default)]
struct Attempts {
    sequence: u64,
    count: u32,
}

impl<S: EventStore> Import<S> {
    async fn supervise(&self, mut stopped: watch::Receiver<bool>) -> Result<(), FeedError> {
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

    /// Imports batch after batch until `stopped`, taking the stream again from the
    /// acknowledgement floor whenever a batch asks for it.
    async fn run(&self, stopped: &mut watch::Receiver<bool>) -> Result<(), FeedError> {
        let mut attempts = Attempts::default();
        let mut broken: HashSet<StreamName> = HashSet::new();
        let mut logged_at = Instant::now();
        loop {
            let (mut consumer, last_delivery) = self.consumer_from_floor().await?;
            let mut messages =
                consumer.stream().max_messages_per_batch(IMPORT_BATCH_MAX).messages().await.map_err(
                    |error| FeedError::nats(&format!("pulling from the consumer {}", self.name), error),
                )?;
            let mut delivery = last_delivery;
            let mut errors_in_a_row = 0_u32;
            let pause = loop {
                let first = tokio::select! {
                    _ = stopped.wait_for(|stopped| *stopped) => None,
                    first = tokio::time::timeout(IMPORT_IDLE_CHECK, messages.next()) => Some(first),
                };
                let Some(first) = first else {
                    drop(messages);
                    self.settle(&mut consumer).await;
                    return Ok(());
                };
                let Ok(first) = first else {
                    if self.idle(&mut consumer, delivery).await {
                        break Duration::ZERO;
                    }
                    continue;
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
                        tokio::time::sleep(Backoff::FEED.delay(u64::from(errors_in_a_row))).await;
                        continue;
                    }
                    None => {
                        return Err(FeedError::Nats(format!(
                            "the consumer {} stopped delivering",
                            self.name
                        )));
                    }
                };
                errors_in_a_row = 0;
                // What else is ready goes in the same batch (a zero timeout polls once).
                while batch.len() < IMPORT_BATCH_MAX {
                    match tokio::time::timeout(Duration::ZERO, messages.next()).await {
                        Ok(Some(Ok(message))) => batch.push(message),
                        Ok(Some(Err(error))) => {
                            tracing::warn!(consumer = %self.name, %error, "receiving failed");
                            break;
                        }
                        _ => break,
                    }
                }
                let next = self.import_batch(batch, &mut delivery, &mut attempts, &mut broken).await?;
                if logged_at.elapsed() >= IMPORT_LOG_INTERVAL {
                    self.log_progress("import progress");
                    logged_at = Instant::now();
                }
                if let Next::Again(pause) = next {
                    break pause;
                }
            };
            drop(messages);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stopped.wait_for(|stopped| *stopped) => return Ok(()),
            }
        }
    }

    /// Looks at the consumer after [`IMPORT_IDLE_CHECK`] without a message: says to take the
    /// stream again from the floor when JetStream delivered messages this session never got
    /// (a pull request of a process killed before may still wait on the consumer and take
    /// them, into an inbox nobody reads, until it expires and their acknowledgement wait runs
    /// out), and marks the import caught up when nothing waits.
    async fn idle(&self, consumer: &mut consumer::Consumer<pull::Config>, delivery: u64) -> bool {
        let Ok(info) = consumer.info().await else {
            return false;
        };
        if info.delivered.consumer_sequence > delivery {
            tracing::info!(
                consumer = %self.name,
                received = delivery,
                delivered = info.delivered.consumer_sequence,
                "deliveries this import never received: taking the stream again from the acknowledgement floor"
            );
            return true;
        }
        if info.num_pending == 0 && info.delivered.stream_sequence <= info.ack_floor.stream_sequence {
            self.counters.pending.store(0, Ordering::Relaxed);
            self.counters.caught_up.store(true, Ordering::Relaxed);
        }
        false
    }

    /// Waits, at most [`IMPORT_SETTLE_MS_MAX`], for JetStream to have taken every
    /// acknowledgement sent (they are sent without waiting): a stop leaves no message
    /// delivered and unacknowledged, so the next start goes on without taking the stream again.
    async fn settle(&self, consumer: &mut consumer::Consumer<pull::Config>) {
        let deadline = Instant::now() + Duration::from_millis(IMPORT_SETTLE_MS_MAX);
        loop {
            match consumer.info().await {
                Ok(info) if info.delivered.stream_sequence <= info.ack_floor.stream_sequence => return,
                _ if Instant::now() >= deadline => {
                    tracing::warn!(consumer = %self.name, "stopping with deliveries not yet acknowledged: the next start takes them again");
                    return;
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The durable consumer, made anew from its acknowledgement floor when messages wait
    /// unacknowledged (a crash, or a batch that stopped early): JetStream would hand them out
    /// again only after their acknowledgement wait, behind later ones.
    /// Also the consumer's sequence of its last delivery: the next one is one more (JetStream
    /// numbers every delivery, a delivery again included).
    async fn consumer_from_floor(&self) -> Result<(consumer::Consumer<pull::Config>, u64), FeedError> {
        let nats = |what: &str| {
            let what = format!("{what} {}", self.name);
            move |error: Box<dyn std::error::Error + Send + Sync>| FeedError::nats(&what, error)
        };
        let mut consumer =
            durable_consumer(&self.jetstream, &self.context, &self.name, None, IMPORT_BATCH_MAX as i64, None)
                .await?;
        let info = consumer.info().await.map_err(|error| nats("reading the consumer")(error.into()))?;
        let (floor, delivered) = (info.ack_floor.stream_sequence, info.delivered.stream_sequence);
        if delivered <= floor {
            if info.num_pending == 0 {
                self.counters.caught_up.store(true, Ordering::Relaxed);
            }
            let last_delivery = info.delivered.consumer_sequence;
            return Ok((consumer, last_delivery));
        }
        tracing::info!(consumer = %self.name, floor, delivered, "taking the stream again from the acknowledgement floor");
        self.counters.restarts.fetch_add(1, Ordering::Relaxed);
        let stream = self
            .jetstream
            .get_stream(route::stream_name(&self.context))
            .await
            .map_err(|error| nats("opening the stream of")(error.into()))?;
        stream
            .delete_consumer(&self.name)
            .await
            .map_err(|error| nats("deleting the consumer")(error.into()))?;
        durable_consumer(
            &self.jetstream,
            &self.context,
            &self.name,
            None,
            IMPORT_BATCH_MAX as i64,
            Some(floor + 1),
        )
        .await
        .map(|consumer| (consumer, 0))
    }

    /// Imports the batch's messages in their delivery order (the stream's, when every delivery
    /// comes in turn after `delivery`), acknowledges what the copy holds, and says whether to go
    /// on or to take the stream again from the acknowledgement floor (at the first event that
    /// could not be copied, or a delivery out of turn).
    async fn import_batch(
        &self,
        batch: Vec<jetstream::Message>,
        delivery: &mut u64,
        attempts: &mut Attempts,
        broken: &mut HashSet<StreamName>,
    ) -> Result<Next, FeedError> {
        let mut events = Vec::with_capacity(batch.len());
        let mut messages = Vec::with_capacity(batch.len());
        let mut next = Next::Go;
        for message in batch {
            let Ok(info) = message.info() else {
                tracing::error!(consumer = %self.name, subject = %message.subject, "a message without its JetStream metadata");
                next = Next::Again(IMPORT_RETRY.max_delay());
                break;
            };
            // Every delivery in turn: one missed (lost on a reconnection, or taken by a pull
            // of an earlier session) or one delivered again behind later ones would let a
            // later event in first. Take the stream again from the floor instead.
            if info.consumer_sequence != *delivery + 1 {
                tracing::info!(consumer = %self.name, expected = *delivery + 1, got = info.consumer_sequence, "a delivery out of turn");
                next = Next::Again(Duration::ZERO);
                break;
            }
            *delivery = info.consumer_sequence;
            self.counters.pending.store(info.pending, Ordering::Relaxed);
            let parked = match cloudevents::event(message.headers.as_ref(), message.payload.clone()) {
                Ok(event) if broken.contains(&event.stream) => {
                    Some(format!("{}: an earlier event of this stream was parked", event.stream))
                }
                Ok(event) => {
                    events.push(event);
                    messages.push(message);
                    continue;
                }
                Err(reason) => Some(format!("not a Symbiose event: {reason}")),
            };
            // Parked where it stands: the events before it are in the batch, not yet copied,
            // and go in before anything after it.
            if let Some(reason) = parked {
                next = self.copy(&mut events, &mut messages, attempts, broken).await?;
                if !matches!(next, Next::Go) {
                    return Ok(next);
                }
                tracing::error!(consumer = %self.name, subject = %message.subject, %reason, "event parked");
                park_message(&self.jetstream, &self.name, &message, 1, &reason).await?;
                self.counters.parked.fetch_add(1, Ordering::Relaxed);
            }
        }
        let copied = self.copy(&mut events, &mut messages, attempts, broken).await?;
        if matches!((&copied, &next), (Next::Go, Next::Go))
            && self.counters.pending.load(Ordering::Relaxed) == 0
        {
            self.counters.caught_up.store(true, Ordering::Relaxed);
        }
        Ok(if matches!(copied, Next::Go) { next } else { copied })
    }

    /// Copies `events` (taking them), acknowledges their `messages` up to the first that could
    /// not be copied, and parks that one after its last attempt.
    async fn copy(
        &self,
        events: &mut Vec<RecordedEvent>,
        messages: &mut Vec<jetstream::Message>,
        attempts: &mut Attempts,
        broken: &mut HashSet<StreamName>,
    ) -> Result<Next, FeedError> {
        let events = std::mem::take(events);
        let messages = std::mem::take(messages);
        let outcomes = import_events(&self.store, &events).await;
        for ((event, message), outcome) in events.iter().zip(messages).zip(outcomes) {
            let reason = match outcome {
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
                Imported::Failed(reason) => {
                    return Err(FeedError::Internal(format!("the store, importing {}: {reason}", event.id)));
                }
                Imported::Skipped => return Ok(Next::Again(Duration::ZERO)),
                Imported::Refused(reason) => reason,
            };
            let sequence = message.info().map_or(0, |info| info.stream_sequence);
            if attempts.sequence == sequence {
                attempts.count += 1;
            } else {
                *attempts = Attempts { sequence, count: 1 };
            }
            if attempts.count < IMPORT_ATTEMPTS_MAX {
                let pause = IMPORT_RETRY.delay(u64::from(attempts.count));
                tracing::warn!(consumer = %self.name, position = %event.position, id = %event.id, attempt = attempts.count, %reason, "event not imported: trying again");
                return Ok(Next::Again(pause));
            }
            tracing::error!(consumer = %self.name, position = %event.position, id = %event.id, attempts = attempts.count, %reason, "event parked");
            park_message(&self.jetstream, &self.name, &message, u64::from(attempts.count), &reason).await?;
            self.counters.parked.fetch_add(1, Ordering::Relaxed);
            if broken.len() < BROKEN_STREAMS_MAX {
                broken.insert(event.stream.clone());
            }
            // What came after it in the batch was not tried: take it again, at once.
            return Ok(Next::Again(Duration::ZERO));
        }
        Ok(Next::Go)
    }

    fn log_progress(&self, message: &'static str) {
        let counters = &self.counters;
        tracing::info!(
            consumer = %self.name,
            imported = counters.imported.load(Ordering::Relaxed),
            already_held = counters.already_held.load(Ordering::Relaxed),
            restarts = counters.restarts.load(Ordering::Relaxed),
            parked = counters.parked.load(Ordering::Relaxed),
            pending = counters.pending.load(Ordering::Relaxed),
            "{message}"
        );
    }
}

#[cfg(test)]
mod tests {
    use symbiose_eventstore::Position;
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
        let events = source.read_all(Position::START, 10).await.expect("read");
        source.close().await;
        events
    }

    async fn stream_of(store: &EmbeddedStore, name: &str) -> Vec<RecordedEvent> {
        let stream = StreamName::new(name).expect("a name");
        store.read_stream(&stream, 0, Direction::Forward, 10).await.expect("the copy")
    }

    use Imported::{Copied, Held, Skipped};

    fn refused(outcome: &Imported, saying: &str) -> bool {
        matches!(outcome, Imported::Refused(reason) if reason.contains(saying))
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
        let copy = store.read_all(Position::START, 10).await.expect("the copy");
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
    async fn a_copy_never_skips_a_version_nor_replaces_an_event_nor_lets_one_overtake_it() {
        let dirs = (tempfile::tempdir().expect("a dir"), tempfile::tempdir().expect("a dir"));
        let events = recorded_elsewhere(dirs.0.path()).await;
        let store = open(dirs.1.path());
        let gap = import_events(&store, &events[2..3]).await;
        assert!(refused(&gap[0], "missing"), "{gap:?}");
        assert_eq!(store.head().as_u64(), 0, "nothing written");

        // Out of order: what comes before its turn is refused, and nothing after it overtakes it.
        let shuffled = [events[0].clone(), events[3].clone(), events[1].clone()];
        let outcomes = import_events(&store, &shuffled).await;
        assert_eq!(outcomes[0], Copied);
        assert!(refused(&outcomes[1], "missing"), "{outcomes:?}");
        assert_eq!(outcomes[2], Skipped);
        assert_eq!(store.head().as_u64(), 1);
        // The same event twice in one batch (published twice): copied once.
        assert_eq!(import_events(&store, &[events[2].clone(), events[2].clone()]).await, [Copied, Held]);

        let mut impostor = events[3].clone();
        impostor.id = Uuid::now_v7();
        assert_eq!(import_events(&store, &[impostor.clone()]).await, [Copied]);
        let replaced =
            import_events(&store, &[events[2].clone(), events[3].clone(), events[1].clone()]).await;
        assert_eq!(replaced[0], Held);
        assert!(refused(&replaced[1], "holds another event"), "{replaced:?}");
        assert_eq!(replaced[2], Skipped);
        assert_eq!(stream_of(&store, "deal-1").await[2].id, impostor.id, "the copy is unchanged");
        assert_eq!(store.head().as_u64(), 3);
        store.close().await;
    }
}
