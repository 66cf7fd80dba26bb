//! The relay: a service's log, published to JetStream in order, at least once, with nothing
//! skipped and, in practice, nothing doubled.
//!
//! It reads the store from its checkpoint and publishes every event whose type is a contract
//! type (`symbiose.<context>.v1.<Name>`) to the stream of its context, with the CloudEvents
//! headers and `Nats-Msg-Id` set to the event id. Up to [`RELAY_IN_FLIGHT_MAX`] publishes are
//! in flight; their acknowledgements are taken in order, and the checkpoint moves only over
//! acknowledged (or deliberately skipped) positions. It is saved durably in batches: every
//! [`RELAY_CHECKPOINT_EVENTS_MAX`] events or [`RELAY_CHECKPOINT_INTERVAL_MS`], when the relay
//! has caught up, and when it stops.
//!
//! Order and duplicates are guarded by the stream itself, not only by the duplicate window:
//! - every publish names the sequence it expects the stream to be at
//!   (`Nats-Expected-Last-Sequence`), so when one publish is lost (a connection cut), every
//!   later one in flight is refused rather than stored ahead of it: a stream never holds a
//!   context's events out of order;
//! - at the start of every round (at start, and after any NATS error) the relay reads the
//!   last message of each stream and its `ce-logposition`, and skips the events at or before
//!   it: a replay from an older checkpoint, or of publishes whose acks were lost, publishes
//!   nothing twice, however old they are;
//! - if a stream holds less than the relay knows was acknowledged (a nats-server that lost
//!   its unsynced tail on a crash), it goes back to the first missing position and publishes
//!   again from there.
//!
//! A NATS error ends the round: the relay backs off ([`Backoff::SUBSCRIPTION`]: from 50 ms,
//! doubling, with jitter, under 5 s) and starts again from its first unacknowledged position. After
//! [`RELAY_ATTEMPTS_MAX`] failed rounds in a row without an acknowledgement in between,
//! [`Relay::run`] returns the error (having saved its checkpoint); the caller decides whether
//! to start it again. Store errors end the run at once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{GetStreamErrorKind, PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::RawMessageErrorKind;
use symbiose_eventstore::{EventStore, Position, READ_EVENTS_MAX, RecordedEvent};
use symbiose_kit::backoff::Backoff;

use crate::checkpoint::Checkpoint;
use crate::route::{self, Route, StreamReplicas};
use crate::{FeedError, Shutdown, cloudevents};

/// Publishes waiting for their acknowledgement, at most.
pub const RELAY_IN_FLIGHT_MAX: usize = 1024;
/// Events read from the store at once.
pub const RELAY_READ_EVENTS: usize = 1024;
/// Acknowledged events after which the checkpoint is saved, at most.
pub const RELAY_CHECKPOINT_EVENTS_MAX: u64 = 10_000;
/// Time after which acknowledged events are checkpointed, at most.
pub const RELAY_CHECKPOINT_INTERVAL_MS: u64 = 1_000;
/// Failed rounds in a row after which [`Relay::run`] gives up.
pub const RELAY_ATTEMPTS_MAX: u32 = 30;
/// The pause before [`Relay::supervise`] starts a relay again after it gave up on NATS.
pub const RELAY_RESTART_DELAY_MS: u64 = 30_000;
/// Event types whose route the relay remembers; others are routed again each time.
pub const RELAY_EVENT_TYPES_MAX: usize = 4096;
/// Contexts (JetStream streams) one relay publishes to, at most.
pub const RELAY_CONTEXTS_MAX: usize = 64;

/// The name of a relay's checkpoint in its store, by default.
pub const RELAY_CHECKPOINT_NAME: &str = "relay";
/// The checkpoint's name of the next position to read.
const NEXT_POSITION: &str = "next_position";
/// The checkpoint's prefix of a context's last acknowledged position (`acked.listings`).
const ACKED_PREFIX: &str = "acked.";

const _: () = assert!(RELAY_READ_EVENTS <= READ_EVENTS_MAX);

/// The settings of a relay. [`RelayOptions::new`] gives the defaults, the named constants.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// The name of the relay's checkpoint, kept in the store it relays
    /// ([`RELAY_CHECKPOINT_NAME`] by default).
    pub checkpoint_name: String,
    /// Where an earlier version kept the checkpoint, in the service's data directory: read
    /// once if the store holds none.
    pub checkpoint_path: PathBuf,
    /// Contexts whose streams are created or updated at start; others are when their first
    /// event comes.
    pub contexts: Vec<String>,
    /// Relay the events of [`RelayOptions::contexts`] only: a service running alone keeps in
    /// its store copies of the other contexts' events it consumes, which are not its to publish.
    pub only_contexts: bool,
    /// The JetStream replicas of the streams the relay creates.
    pub stream_replicas: StreamReplicas,
    pub in_flight_max: usize,
    pub checkpoint_events_max: u64,
    pub checkpoint_interval: Duration,
    /// The pauses between failed rounds, and the failed rounds in a row after which the relay
    /// gives up ([`RELAY_ATTEMPTS_MAX`]).
    pub backoff: Backoff,
}

impl RelayOptions {
    pub fn new(checkpoint_path: impl Into<PathBuf>) -> RelayOptions {
        RelayOptions {
            checkpoint_name: RELAY_CHECKPOINT_NAME.to_owned(),
            checkpoint_path: checkpoint_path.into(),
            contexts: Vec::new(),
            only_contexts: false,
            stream_replicas: StreamReplicas::Auto,
            in_flight_max: RELAY_IN_FLIGHT_MAX,
            checkpoint_events_max: RELAY_CHECKPOINT_EVENTS_MAX,
            checkpoint_interval: Duration::from_millis(RELAY_CHECKPOINT_INTERVAL_MS),
            backoff: Backoff::SUBSCRIPTION.with_attempts_max(RELAY_ATTEMPTS_MAX),
        }
    }

    /// The replicas of the streams it creates.
    pub fn with_stream_replicas(mut self, replicas: StreamReplicas) -> RelayOptions {
        self.stream_replicas = replicas;
        self
    }

    pub fn with_contexts(mut self, contexts: &[&str]) -> RelayOptions {
        self.contexts = contexts.iter().map(|context| (*context).to_owned()).collect();
        self
    }

    /// Relays the events of `contexts` and of no other context.
    pub fn only_contexts(mut self, contexts: &[&str]) -> RelayOptions {
        self = self.with_contexts(contexts);
        self.only_contexts = true;
        self
    }
}

/// The relay's counters, shared with whoever watches it.
#[derive(Debug, Clone, Default)]
pub struct RelayMetrics(Arc<RelayCounters>);

#[derive(Debug, Default)]
struct RelayCounters {
    published: AtomicU64,
    already_stored: AtomicU64,
    unroutable: AtomicU64,
    foreign: AtomicU64,
    oversized: AtomicU64,
    failures: AtomicU64,
    confirmed_position: AtomicU64,
    checkpoint_position: AtomicU64,
    head: AtomicU64,
    streams_with_other_settings: AtomicU64,
}

/// A snapshot of a relay's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayStats {
    /// Events JetStream acknowledged, since this relay started.
    pub published: u64,
    /// Events skipped because their stream already held them.
    pub already_stored: u64,
    /// Events skipped because their type is not a contract type.
    pub unroutable: u64,
    /// Events skipped because their context is another service's ([`RelayOptions::only_contexts`]).
    pub foreign: u64,
    /// Events skipped because they are larger than the NATS server takes.
    pub oversized: u64,
    /// Rounds that ended in a NATS error.
    pub failures: u64,
    /// Every event before this position is acknowledged or skipped.
    pub confirmed_position: u64,
    /// The position the checkpoint file holds.
    pub checkpoint_position: u64,
    /// The store's head when the relay last looked.
    pub head: u64,
    /// Times the relay found a stream with other settings than its own (reported in the log,
    /// and used as it is).
    pub streams_with_other_settings: u64,
}

impl RelayStats {
    /// How far the store's head is beyond what NATS confirmed: in events on the embedded and
    /// PostgreSQL stores (see [`Position::distance_to`]).
    pub fn lag(&self) -> u64 {
        Position::from_u64(self.confirmed_position).distance_to(Position::from_u64(self.head))
    }
}

impl RelayMetrics {
    pub fn stats(&self) -> RelayStats {
        let counters = &self.0;
        RelayStats {
            published: counters.published.load(Ordering::Relaxed),
            already_stored: counters.already_stored.load(Ordering::Relaxed),
            unroutable: counters.unroutable.load(Ordering::Relaxed),
            foreign: counters.foreign.load(Ordering::Relaxed),
            oversized: counters.oversized.load(Ordering::Relaxed),
            failures: counters.failures.load(Ordering::Relaxed),
            confirmed_position: counters.confirmed_position.load(Ordering::Relaxed),
            checkpoint_position: counters.checkpoint_position.load(Ordering::Relaxed),
            head: counters.head.load(Ordering::Relaxed),
            streams_with_other_settings: counters.streams_with_other_settings.load(Ordering::Relaxed),
        }
    }
}

/// Publishes one store's events to JetStream. See the module's note.
#[derive(Debug)]
pub struct Relay<S> {
    store: S,
    jetstream: async_nats::jetstream::Context,
    options: RelayOptions,
    metrics: RelayMetrics,
}

impl<S: EventStore> Relay<S> {
    pub fn new(store: S, jetstream: async_nats::jetstream::Context, options: RelayOptions) -> Relay<S> {
        assert!(options.in_flight_max >= 1, "at least one publish in flight");
        Relay { store, jetstream, options, metrics: RelayMetrics::default() }
    }

    pub fn metrics(&self) -> RelayMetrics {
        self.metrics.clone()
    }

    /// Relays until `shutdown` completes, starting the relay again
    /// [`RELAY_RESTART_DELAY_MS`] after it gives up on NATS: what a server runs in the
    /// background, so that a long NATS outage delays events and never stops the relaying for
    /// good. A store or checkpoint error ends it.
    pub async fn supervise(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), FeedError> {
        let mut shutdown = Shutdown::new(shutdown);
        let (stop, _) = tokio::sync::watch::channel(false);
        loop {
            let relay = Relay {
                store: self.store.clone(),
                jetstream: self.jetstream.clone(),
                options: self.options.clone(),
                metrics: self.metrics.clone(),
            };
            let mut stopped = stop.subscribe();
            let run = relay.run(async move {
                let _ = stopped.wait_for(|stopped| *stopped).await;
            });
            let mut run = pin!(run);
            let result = tokio::select! {
                result = &mut run => result,
                _ = shutdown.or(std::future::pending::<()>()) => {
                    let _ = stop.send(true);
                    run.await
                }
            };
            match result {
                Err(FeedError::NatsUnavailable { attempts, last_error }) => {
                    tracing::error!(
                        attempts,
                        %last_error,
                        restart_in_ms = RELAY_RESTART_DELAY_MS,
                        "the relay gave up on NATS; it will start again"
                    );
                    let delay = Duration::from_millis(RELAY_RESTART_DELAY_MS);
                    if shutdown.or(tokio::time::sleep(delay)).await.is_none() {
                        return Ok(());
                    }
                }
                other => return other,
            }
        }
    }

    /// Relays until `shutdown` completes (then saves the checkpoint and returns `Ok`), a store
    /// error, or the attempts of [`RelayOptions::backoff`] in NATS failures in a row.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), FeedError> {
        let mut shutdown = Shutdown::new(shutdown);
        let checkpoint =
            Checkpoint::load_from(&self.store, &self.options.checkpoint_name, &self.options.checkpoint_path)
                .await?;
        let mut state = State::from_checkpoint(&checkpoint, &self.options.contexts)?;
        self.metrics.0.checkpoint_position.store(state.saved_position.as_u64(), Ordering::Relaxed);
        self.metrics.0.confirmed_position.store(state.next_read.as_u64(), Ordering::Relaxed);
        tracing::info!(
            checkpoint = %self.options.checkpoint_name,
            position = %state.next_read,
            contexts = ?state.contexts.keys().collect::<Vec<_>>(),
            "relay starting"
        );
        let mut failures = 0_u32;
        loop {
            let published_before = self.metrics.0.published.load(Ordering::Relaxed);
            let mut in_flight = VecDeque::new();
            let result = self.round(&mut state, &mut in_flight, &mut shutdown).await;
            if let Some(first_unacked) = in_flight.front() {
                state.next_read = first_unacked.position;
            }
            in_flight.clear();
            let stopping = shutdown.is_done().await;
            match result {
                Ok(()) => {
                    self.save(&mut state, true).await?;
                    tracing::info!(position = %state.next_read, "relay stopped");
                    return Ok(());
                }
                Err(FeedError::Nats(error)) if stopping => {
                    self.save(&mut state, true).await?;
                    tracing::info!(position = %state.next_read, %error, "relay stopped while NATS failed");
                    return Ok(());
                }
                Err(FeedError::Nats(error)) => {
                    self.metrics.0.failures.fetch_add(1, Ordering::Relaxed);
                    if self.metrics.0.published.load(Ordering::Relaxed) > published_before {
                        failures = 0;
                    }
                    failures += 1;
                    // Whatever came back acknowledged is safe to checkpoint now.
                    self.save(&mut state, true).await?;
                    if failures >= self.options.backoff.attempts_max() {
                        tracing::error!(attempts = failures, %error, "relay giving up: NATS keeps failing");
                        return Err(FeedError::NatsUnavailable { attempts: failures, last_error: error });
                    }
                    let backoff = self.options.backoff.delay(u64::from(failures));
                    tracing::warn!(
                        attempt = failures,
                        %error,
                        position = %state.next_read,
                        backoff_ms = backoff.as_millis() as u64,
                        "relay round failed, resuming from the first unacknowledged event"
                    );
                    for context in state.contexts.values_mut() {
                        context.synced = false;
                    }
                    if shutdown.or(tokio::time::sleep(backoff)).await.is_none() {
                        self.save(&mut state, true).await?;
                        return Ok(());
                    }
                }
                Err(error) => {
                    let _ = self.save(&mut state, true).await;
                    tracing::error!(%error, "relay stopped by an error");
                    return Err(error);
                }
            }
        }
    }

    /// Syncs every known stream, then publishes until shutdown (`Ok`) or an error. On return,
    /// `in_flight` holds the publishes not acknowledged, first the oldest.
    async fn round(
        &self,
        state: &mut State,
        in_flight: &mut VecDeque<InFlight>,
        shutdown: &mut Shutdown<'_>,
    ) -> Result<(), FeedError> {
        let contexts: Vec<String> = state.contexts.keys().cloned().collect();
        for context in contexts {
            self.sync(state, &context).await?;
        }
        loop {
            let events = self.store.read_all(state.next_read, RELAY_READ_EVENTS).await?;
            self.metrics.0.head.store(self.store.head().as_u64(), Ordering::Relaxed);
            if events.is_empty() {
                // Caught up: take every ack, checkpoint, and wait for the log to grow.
                while !in_flight.is_empty() {
                    self.settle_oldest(state, in_flight).await?;
                }
                self.save(state, true).await?;
                let next_read = state.next_read;
                match shutdown.or(self.store.wait_for_head(next_read)).await {
                    Some(head) => {
                        self.metrics.0.head.store(head?.as_u64(), Ordering::Relaxed);
                        continue;
                    }
                    None => return Ok(()),
                }
            }
            for event in events {
                self.relay_one(state, in_flight, &event).await?;
                state.next_read = event.position.after();
                while in_flight.len() >= self.options.in_flight_max {
                    self.settle_oldest(state, in_flight).await?;
                }
                if state.checkpoint_due(in_flight, &self.options) {
                    self.save_confirmed(state, in_flight).await?;
                }
            }
            if shutdown.is_done().await {
                while !in_flight.is_empty() {
                    self.settle_oldest(state, in_flight).await?;
                }
                return Ok(());
            }
        }
    }

    /// Publishes `event`, or skips it (not a contract type, already in its stream, too large).
    async fn relay_one(
        &self,
        state: &mut State,
        in_flight: &mut VecDeque<InFlight>,
        event: &RecordedEvent,
    ) -> Result<(), FeedError> {
        let Some(route) = state.route(&event.event_type) else {
            self.metrics.0.unroutable.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        if self.options.only_contexts && !self.options.contexts.contains(&route.context) {
            self.metrics.0.foreign.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if !state.contexts.contains_key(&route.context) {
            if state.contexts.len() >= RELAY_CONTEXTS_MAX {
                tracing::error!(context = %route.context, "relay: too many contexts, event not relayed");
                self.metrics.0.unroutable.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            state.contexts.insert(route.context.clone(), ContextStream::default());
        }
        if !state.contexts[&route.context].synced {
            self.sync(state, &route.context).await?;
        }
        let context = state.contexts.get_mut(&route.context).expect("inserted above");
        if context.stored_position.is_some_and(|stored| event.position <= stored) {
            self.metrics.0.already_stored.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let expected_sequence = context.last_sequence;
        let message = PublishMessage::build()
            .payload(event.payload.clone())
            .headers(cloudevents::headers(event, &route))
            .expected_last_sequence(expected_sequence);
        match self.jetstream.send_publish(route.subject.clone(), message).await {
            Ok(ack) => {
                context.last_sequence += 1;
                in_flight.push_back(InFlight {
                    position: event.position,
                    context: route.context,
                    expected_sequence,
                    ack,
                });
                Ok(())
            }
            Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                tracing::error!(
                    position = %event.position,
                    id = %event.id,
                    event_type = %event.event_type,
                    bytes = event.payload.len(),
                    "event larger than the NATS server's max_payload: not relayed"
                );
                self.metrics.0.oversized.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => Err(FeedError::nats(&format!("publishing to {}", route.subject), error)),
        }
    }

    /// Waits for the acknowledgement of the oldest publish in flight.
    async fn settle_oldest(
        &self,
        state: &mut State,
        in_flight: &mut VecDeque<InFlight>,
    ) -> Result<(), FeedError> {
        let Some(oldest) = in_flight.pop_front() else { return Ok(()) };
        let (position, context_name, expected_sequence) =
            (oldest.position, oldest.context.clone(), oldest.expected_sequence);
        let acked = oldest.ack.await;
        let failed = |state: &mut State, in_flight: &mut VecDeque<InFlight>, reason: String| {
            state.next_read = position;
            in_flight.clear();
            Err(FeedError::Nats(format!("publish of position {position}: {reason}")))
        };
        let ack = match acked {
            Ok(ack) => ack,
            Err(error) => return failed(state, in_flight, error.to_string()),
        };
        if ack.duplicate || ack.sequence != expected_sequence + 1 {
            return failed(
                state,
                in_flight,
                format!(
                    "stream {} out of step: sequence {} (duplicate: {}), expected {}",
                    ack.stream,
                    ack.sequence,
                    ack.duplicate,
                    expected_sequence + 1
                ),
            );
        }
        let context = state.contexts.get_mut(&context_name).expect("a context in flight is known");
        context.acked_position = Some(position);
        self.metrics.0.published.fetch_add(1, Ordering::Relaxed);
        let confirmed = in_flight.front().map_or(state.next_read, |oldest| oldest.position);
        self.metrics.0.confirmed_position.store(confirmed.as_u64(), Ordering::Relaxed);
        Ok(())
    }

    /// The context's stream: created with the relay's settings if absent; if present with
    /// other settings, reported (in the log and [`RelayStats::streams_with_other_settings`])
    /// and used as it is, never changed behind its operator's back, except one made by a
    /// consumer before the relay, which differs only in having fewer replicas: that one is
    /// given the relay's.
    async fn open_stream(
        &self,
        context_name: &str,
    ) -> Result<async_nats::jetstream::stream::Info, FeedError> {
        let mut wanted = route::stream_config(context_name);
        let stream_name = wanted.name.clone();
        let found = match self.jetstream.get_stream(&stream_name).await {
            Ok(stream) => Some(stream.cached_info().clone()),
            Err(error)
                if matches!(error.kind(), GetStreamErrorKind::JetStream(ref error)
                    if error.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                None
            }
            Err(error) => return Err(FeedError::nats(&format!("reading the stream {stream_name}"), error)),
        };
        // Answered once connected: whether the server is part of a cluster.
        let clustered =
            self.jetstream.client().server_info().cluster.is_some_and(|cluster| !cluster.is_empty());
        wanted.num_replicas = self.options.stream_replicas.resolve(clustered);
        let Some(found) = found else {
            tracing::info!(stream = %stream_name, replicas = wanted.num_replicas, "creating the stream");
            let replicas = wanted.num_replicas;
            return self.jetstream.create_stream(wanted).await.map(|stream| stream.cached_info().clone()).map_err(|error| {
                FeedError::nats(
                    &format!(
                        "creating the stream {stream_name} with {replicas} replicas (SYMBIOSE_NATS_STREAM_REPLICAS)"
                    ),
                    error,
                )
            });
        };
        let differences = route::stream_differences(&found.config, &wanted);
        if differences.is_empty() {
            return Ok(found);
        }
        let fewer_replicas_only = differences.len() == 1
            && found.config.num_replicas.max(1) < wanted.num_replicas
            && found.config.description == wanted.description;
        if fewer_replicas_only {
            tracing::info!(stream = %stream_name, replicas = wanted.num_replicas, "giving the stream its replicas");
            return self.jetstream.update_stream(wanted).await.map_err(|error| {
                FeedError::nats(&format!("giving the stream {stream_name} its replicas"), error)
            });
        }
        self.metrics.0.streams_with_other_settings.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            stream = %stream_name,
            differences = %differences.join("; "),
            "the stream exists with other settings than the relay's: it is used as it is; change it, or \
             remove it for the relay to make it again (SYMBIOSE_NATS_STREAM_REPLICAS sets the replicas)"
        );
        Ok(found)
    }

    /// Checks that the stream's last event, at `position` with the id `id`, is this log's. A
    /// log restored from a backup (or another log relaying into the same stream) is behind the
    /// stream or holds other events there: the relay would take its new events for ones the
    /// stream has and skip them. It says so and does not relay that stream until its operator
    /// removes it (README, "Backup and restore"); the events wait in the log.
    async fn check_tail_is_ours(
        &self,
        stream: &str,
        position: Position,
        id: Option<&str>,
    ) -> Result<(), FeedError> {
        let events = self.store.read_all(position, 1).await?;
        let ours = events.first().is_some_and(|event| {
            event.position == position && id.is_none_or(|id| id == event.id.to_string())
        });
        if ours {
            return Ok(());
        }
        let found = events.first().map_or("no event there".to_owned(), |event| {
            format!("the event {} at {}", event.id, event.position)
        });
        Err(FeedError::nats(
            &format!("the stream {stream}"),
            format!(
                "its last event ({}, position {position}) is not this log's ({found}): the log was restored from \
                 a backup or another log relays into this stream. Nothing more is relayed to it until it is \
                 removed (`nats stream rm {stream}`; the relay then publishes this log again from its first event)",
                id.unwrap_or("no id")
            ),
        ))
    }

    /// Creates or updates the context's stream and reads where it is: its last sequence and
    /// the position of its last event. Goes back to republish what the stream lost.
    async fn sync(&self, state: &mut State, context_name: &str) -> Result<(), FeedError> {
        let info = self.open_stream(context_name).await?;
        let stream_name = info.config.name.clone();
        let last_sequence = info.state.last_sequence;
        let tail = if last_sequence == 0 {
            Tail::Empty
        } else if info.state.messages == 0 {
            Tail::Unknown
        } else {
            let stream = self
                .jetstream
                .get_stream_no_info(&stream_name)
                .await
                .map_err(|error| FeedError::nats(&format!("opening the stream {stream_name}"), error))?;
            match stream.get_raw_message(last_sequence).await {
                Ok(message) => match cloudevents::log_position(Some(&message.headers)) {
                    Some(position) => {
                        let position = Position::from_u64(position);
                        let id = message.headers.get("Nats-Msg-Id").map(|id| id.as_str().to_owned());
                        self.check_tail_is_ours(&stream_name, position, id.as_deref()).await?;
                        Tail::Position(position)
                    }
                    None => Tail::Unknown,
                },
                Err(error) if error.kind() == RawMessageErrorKind::NoMessageFound => Tail::Unknown,
                Err(error) => {
                    return Err(FeedError::nats(
                        &format!("reading the last message of {stream_name}"),
                        error,
                    ));
                }
            }
        };
        let context = state.contexts.entry(context_name.to_owned()).or_default();
        // The stream lost acknowledged events: the first lost position, and the last one kept.
        let lost = match (context.acked_position, tail) {
            (Some(_), Tail::Empty) => Some((Position::START, None)),
            (Some(acked), Tail::Position(stored)) if stored < acked => Some((stored.after(), Some(stored))),
            _ => None,
        };
        if let Some((lost_from, kept)) = lost {
            tracing::warn!(
                stream = %stream_name,
                acked = ?context.acked_position,
                republish_from = %lost_from,
                "the stream lost acknowledged events; publishing them again"
            );
            context.acked_position = kept;
            state.next_read = state.next_read.min(lost_from);
        }
        context.last_sequence = last_sequence;
        context.stored_position = match tail {
            Tail::Position(position) => Some(position),
            Tail::Empty | Tail::Unknown => None,
        };
        context.synced = true;
        tracing::debug!(stream = %stream_name, last_sequence, tail = ?tail, "relay synced a stream");
        Ok(())
    }

    /// Checkpoints what is confirmed given the publishes in flight.
    async fn save_confirmed(
        &self,
        state: &mut State,
        in_flight: &VecDeque<InFlight>,
    ) -> Result<(), FeedError> {
        let confirmed = in_flight.front().map_or(state.next_read, |oldest| oldest.position);
        state.save_checkpoint(&self.store, confirmed, &self.options, &self.metrics, false).await
    }

    /// Checkpoints `state.next_read`, which is confirmed when nothing is in flight.
    async fn save(&self, state: &mut State, force: bool) -> Result<(), FeedError> {
        let confirmed = state.next_read;
        state.save_checkpoint(&self.store, confirmed, &self.options, &self.metrics, force).await
    }
}

/// What the last message of a stream says.
#[derive(Debug, Clone, Copy)]
enum Tail {
    /// The stream holds no message.
    Empty,
    /// Its last message is the event at this position.
    Position(Position),
    /// Its last message is gone (expired, purged) or carries no position.
    Unknown,
}

/// A publish waiting for its acknowledgement.
struct InFlight {
    position: Position,
    context: String,
    expected_sequence: u64,
    ack: PublishAckFuture,
}

/// What the relay knows of one context's stream.
#[derive(Debug, Default)]
struct ContextStream {
    /// `last_sequence` and `stored_position` are read from the stream this round.
    synced: bool,
    /// The stream's last sequence, counting the publishes in flight.
    last_sequence: u64,
    /// The position of the last event the stream held when synced.
    stored_position: Option<Position>,
    /// The position of the last event of this context JetStream acknowledged.
    acked_position: Option<Position>,
}

#[derive(Debug)]
struct State {
    /// The next position to read; every event before it is handled or in flight.
    next_read: Position,
    contexts: BTreeMap<String, ContextStream>,
    routes: HashMap<String, Option<Route>>,
    saved_position: Position,
    saved_acked: BTreeMap<String, Position>,
    saved_at: Instant,
}

impl State {
    fn from_checkpoint(checkpoint: &Checkpoint, contexts: &[String]) -> Result<State, FeedError> {
        let mut state = State {
            next_read: checkpoint.position(NEXT_POSITION),
            contexts: BTreeMap::new(),
            routes: HashMap::new(),
            saved_position: checkpoint.position(NEXT_POSITION),
            saved_acked: BTreeMap::new(),
            saved_at: Instant::now(),
        };
        for context in contexts {
            if !route::is_context(context) {
                return Err(FeedError::Invalid {
                    what: "context",
                    reason: format!("{context:?} is not a context name"),
                });
            }
            state.contexts.entry(context.clone()).or_default();
        }
        for (name, value) in &checkpoint.values {
            if let Some(context) = name.strip_prefix(ACKED_PREFIX)
                && route::is_context(context)
            {
                let acked = Position::from_u64(*value);
                state.contexts.entry(context.to_owned()).or_default().acked_position = Some(acked);
                state.saved_acked.insert(context.to_owned(), acked);
            }
        }
        Ok(state)
    }

    fn route(&mut self, event_type: &str) -> Option<Route> {
        if let Some(route) = self.routes.get(event_type) {
            return route.clone();
        }
        let route = route::route(event_type);
        if route.is_none() {
            tracing::warn!(
                event_type,
                "events of this type are not relayed: not a symbiose.<context>.v1 type"
            );
        }
        if self.routes.len() < RELAY_EVENT_TYPES_MAX {
            self.routes.insert(event_type.to_owned(), route.clone());
        }
        route
    }

    fn checkpoint_due(&self, in_flight: &VecDeque<InFlight>, options: &RelayOptions) -> bool {
        let confirmed = in_flight.front().map_or(self.next_read, |oldest| oldest.position);
        confirmed > self.saved_position
            && (self.saved_position.distance_to(confirmed) >= options.checkpoint_events_max
                || self.saved_at.elapsed() >= options.checkpoint_interval)
    }

    async fn save_checkpoint<S: EventStore>(
        &mut self,
        store: &S,
        confirmed: Position,
        options: &RelayOptions,
        metrics: &RelayMetrics,
        force: bool,
    ) -> Result<(), FeedError> {
        metrics.0.confirmed_position.store(confirmed.as_u64(), Ordering::Relaxed);
        let acked: BTreeMap<String, Position> = self
            .contexts
            .iter()
            .filter_map(|(name, context)| context.acked_position.map(|position| (name.clone(), position)))
            .collect();
        let changed = confirmed != self.saved_position || acked != self.saved_acked;
        let due = self.saved_at.elapsed() >= options.checkpoint_interval
            || self.saved_position.distance_to(confirmed) >= options.checkpoint_events_max
            || confirmed.distance_to(self.saved_position) >= options.checkpoint_events_max;
        if !changed || !(force || due) {
            return Ok(());
        }
        let mut checkpoint = Checkpoint::default();
        checkpoint.set(NEXT_POSITION, confirmed.as_u64());
        for (context, position) in &acked {
            checkpoint.set(format!("{ACKED_PREFIX}{context}"), position.as_u64());
        }
        checkpoint.save_to(store, &options.checkpoint_name).await?;
        self.saved_position = confirmed;
        self.saved_acked = acked;
        self.saved_at = Instant::now();
        let stats = metrics.stats();
        metrics.0.checkpoint_position.store(confirmed.as_u64(), Ordering::Relaxed);
        // Every second under a steady stream of events: a debug line, not the operator's log.
        tracing::debug!(
            position = %confirmed,
            published = stats.published,
            already_stored = stats.already_stored,
            unroutable = stats.unroutable,
            foreign = stats.foreign,
            lag = stats.lag(),
            "relay checkpoint"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_resumes_from_the_checkpoint_with_each_context_acked_position() {
        let mut checkpoint = Checkpoint::default();
        checkpoint.set(NEXT_POSITION, 120);
        checkpoint.set("acked.listings", 118);
        let state = State::from_checkpoint(&checkpoint, &["matching".to_owned()]).expect("valid");
        assert_eq!(state.next_read, Position::from_u64(120));
        assert_eq!(state.contexts["listings"].acked_position, Some(Position::from_u64(118)));
        assert_eq!(state.contexts["matching"].acked_position, None);
        assert!(State::from_checkpoint(&checkpoint, &["Not A Context".to_owned()]).is_err());
    }
}

/// A relay running in the background: tell it to stop, then wait for it.
#[derive(Debug)]
pub struct RunningRelay {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), FeedError>>,
}

impl RunningRelay {
    /// Stops the relay (it saves its checkpoint) and waits for it; its error, logged, if it
    /// had stopped on one.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "the relay stopped with an error"),
            Err(error) => tracing::error!(%error, "the relay task failed"),
        }
    }
}

/// Starts relaying `store`'s events of `contexts`, and of no other context, to the NATS at
/// `url` (with `credentials`),
/// supervised, from the checkpoint at `checkpoint`; `None` (and a line in the log saying events
/// stay local) when `url` is `None`.
pub async fn start_relay<S: EventStore>(
    url: Option<&str>,
    credentials: Option<&std::path::Path>,
    store: S,
    checkpoint: &std::path::Path,
    contexts: &[&str],
    stream_replicas: StreamReplicas,
) -> Result<Option<RunningRelay>, FeedError> {
    let Some(url) = url else {
        tracing::info!("NATS is off (SYMBIOSE_NATS_URL is not set): events stay on the local feed, no relay");
        return Ok(None);
    };
    let client = crate::connect(url, credentials, "symbiose-relay").await?;
    let options = RelayOptions::new(checkpoint).only_contexts(contexts).with_stream_replicas(stream_replicas);
    let relay = Relay::new(store, crate::jetstream(client), options);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(relay.supervise(async move {
        let _ = stopped.await;
    }));
    tracing::info!(
        nats = %without_credentials(url),
        checkpoint = %checkpoint.display(),
        "relaying events to NATS JetStream"
    );
    Ok(Some(RunningRelay { stop, task }))
}

/// `url` with any `user:password@` replaced, for the logs.
pub fn without_credentials(url: &str) -> String {
    url.split(',')
        .map(|server| match (server.split_once("://"), server.rsplit_once('@')) {
            (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
            (None, Some((_, host))) => format!("***@{host}"),
            _ => server.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}
