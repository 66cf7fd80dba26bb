//! "Events from position P on", whichever way they come: [`Feed`] is the local store's
//! subscription in the one-process mode, or a durable JetStream pull consumer when each
//! service runs alone, so that a projection or a reactor is written once and runs in both.
//!
//! A feed hands out [`Delivery`]s in log order. Each one is then acknowledged (done), retried
//! (delivered again after a delay) or parked (given up on, kept on the dead-letter subject or
//! file with the error). The consumer runner ([`crate::run_consumer`]) makes those choices;
//! a feed only carries them out.
//!
//! The JetStream consumer lets one message wait for its acknowledgement at a time
//! (`max_ack_pending` 1): a message delivered again (after a retry, or after a lost
//! connection) comes before any later one, so a consumer sees each context's events in order.
//! That costs a round trip per event, a few thousand events per second; the local feed, and a
//! rebuild from the store, have no such bound.

use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{self, AckKind};
use symbiose_eventstore::{EventStore, Position, RecordedEvent, Subscription};
use symbiose_kit::backoff::Backoff;
use tokio::time::Instant;
use tokio_stream::StreamExt as _;

use crate::consumer::ConsumerOptions;
use crate::route::{self, CONTRACT_VERSION, SUBJECT_ROOT};
use crate::{FeedError, cloudevents};

/// How long JetStream waits for a message's acknowledgement before delivering it again.
pub const CONSUMER_ACK_WAIT_MS: u64 = 10_000;
/// Messages a JetStream consumer may have delivered and not acknowledged: one, for order.
pub const CONSUMER_ACK_PENDING_MAX: i64 = 1;
/// Messages one pull request asks for.
pub const CONSUMER_PULL_BATCH: usize = 256;
/// Errors in a row from the JetStream consumer after which the feed gives up.
pub const FEED_ERRORS_MAX: u32 = 60;
/// Attempts to publish a parked message before the feed gives up.
pub const PARK_ATTEMPTS_MAX: u32 = 20;
/// Longest error text kept with a parked message, in bytes.
pub const DEAD_LETTER_ERROR_BYTES_MAX: usize = 1024;

/// The error that made a consumer park a message.
pub const DEAD_LETTER_ERROR: &str = "symbiose-error";
/// The consumer that parked it.
pub const DEAD_LETTER_CONSUMER: &str = "symbiose-consumer";
/// How many times it was delivered to that consumer.
pub const DEAD_LETTER_DELIVERIES: &str = "symbiose-deliveries";
/// The subject it was published on.
pub const DEAD_LETTER_ORIGINAL_SUBJECT: &str = "symbiose-subject";

/// One event handed to a consumer, and what it takes to answer for it.
pub struct Delivery {
    pub event: RecordedEvent,
    /// How many times this event has been handed to this consumer, this time included.
    pub delivered: u64,
    /// Events the feed holds after this one, not delivered yet: the consumer's lag.
    pub pending: u64,
    message: Option<jetstream::Message>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Delivery")
            .field("event", &self.event)
            .field("delivered", &self.delivered)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

/// Where a consumer's events come from.
#[derive(Debug)]
pub enum Feed<S> {
    Local(LocalFeed<S>),
    JetStream(JetStreamFeed),
}

impl<S: EventStore> Feed<S> {
    /// The store's events from `from_position` on, those of `context` only if given.
    pub fn local(
        store: S,
        from_position: Position,
        context: Option<&str>,
        options: &ConsumerOptions,
    ) -> Feed<S> {
        Feed::Local(LocalFeed::new(store, from_position, context, options))
    }

    /// The store's events from where the consumer's checkpoint, kept in that store, says it
    /// stopped (see [`ConsumerOptions::checkpoint_name`]), those of `context` only if given.
    pub async fn local_from_checkpoint(
        store: S,
        context: Option<&str>,
        options: &ConsumerOptions,
    ) -> Result<Feed<S>, FeedError> {
        let from_position = options.load_position_from(&store).await?;
        Ok(Feed::local(store, from_position, context, options))
    }

    /// The events of `context` through the durable pull consumer named after the consumer,
    /// created if absent (delivering from the stream's start). The stream is created if
    /// absent too, so a consumer may start before the relay. JetStream remembers where the
    /// consumer is; the runner skips whatever comes before its own checkpoint.
    pub async fn jetstream(
        jetstream: jetstream::Context,
        context: &str,
        options: &ConsumerOptions,
    ) -> Result<Feed<S>, FeedError> {
        Ok(Feed::JetStream(JetStreamFeed::open(jetstream, context, options).await?))
    }

    /// The next event, waiting for one.
    pub async fn next(&mut self) -> Result<Delivery, FeedError> {
        match self {
            Feed::Local(feed) => feed.next().await,
            Feed::JetStream(feed) => feed.next().await,
        }
    }

    /// The event is handled: never deliver it again.
    pub async fn ack(&mut self, delivery: Delivery) -> Result<(), FeedError> {
        match (self, delivery.message) {
            (Feed::Local(_), _) => Ok(()),
            (Feed::JetStream(_), Some(message)) => {
                message.ack().await.map_err(|error| FeedError::nats("acknowledging a message", error))
            }
            (Feed::JetStream(_), None) => unreachable!("a JetStream delivery holds its message"),
        }
    }

    /// The event failed: deliver it again after `delay`, before any later one.
    pub async fn retry(&mut self, delivery: Delivery, delay: Duration) -> Result<(), FeedError> {
        match self {
            Feed::Local(feed) => {
                feed.retry = Some((delivery.event, delivery.delivered + 1, Instant::now() + delay));
                Ok(())
            }
            Feed::JetStream(_) => {
                let message = delivery.message.expect("a JetStream delivery holds its message");
                message
                    .ack_with(AckKind::Nak(Some(delay)))
                    .await
                    .map_err(|error| FeedError::nats("asking for a message again", error))
            }
        }
    }

    /// The event failed for the last time: keep it with `error` on the dead-letter subject
    /// (JetStream) or file (local), and never deliver it again.
    pub async fn park(&mut self, delivery: Delivery, error: &str) -> Result<(), FeedError> {
        match self {
            Feed::Local(feed) => feed.park(&delivery, error).await,
            Feed::JetStream(feed) => feed.park(delivery, error).await,
        }
    }

    /// `local` or `jetstream`, for the logs.
    pub fn mode(&self) -> &'static str {
        match self {
            Feed::Local(_) => "local",
            Feed::JetStream(_) => "jetstream",
        }
    }
}

/// The local store's catch-up subscription, filtered to one context.
#[derive(Debug)]
pub struct LocalFeed<S> {
    store: S,
    /// Where it started: the consumer runner applies from there.
    from_position: Position,
    subscription: Subscription<S>,
    /// `symbiose.<context>.v1.`: the type prefix of the events delivered; `None`: all.
    type_prefix: Option<String>,
    consumer: String,
    dead_letter_path: PathBuf,
    /// An event to deliver again, how many times it will have been delivered, and when.
    retry: Option<(RecordedEvent, u64, Instant)>,
}

impl<S: EventStore> LocalFeed<S> {
    pub fn new(
        store: S,
        from_position: Position,
        context: Option<&str>,
        options: &ConsumerOptions,
    ) -> LocalFeed<S> {
        LocalFeed {
            from_position,
            subscription: store.subscribe_all(from_position),
            store,
            type_prefix: context.map(|context| format!("{SUBJECT_ROOT}.{context}.{CONTRACT_VERSION}.")),
            consumer: options.name.clone(),
            dead_letter_path: options.dead_letter_path(),
            retry: None,
        }
    }

    /// The store it reads.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The position it started from.
    pub fn from_position(&self) -> Position {
        self.from_position
    }

    async fn next(&mut self) -> Result<Delivery, FeedError> {
        if let Some((event, delivered, at)) = self.retry.take() {
            tokio::time::sleep_until(at).await;
            let pending = self.pending(event.position);
            return Ok(Delivery { event, delivered, pending, message: None });
        }
        loop {
            let event = self.subscription.next().await?;
            if self.type_prefix.as_ref().is_none_or(|prefix| event.event_type.starts_with(prefix.as_str())) {
                let pending = self.pending(event.position);
                return Ok(Delivery { event, delivered: 1, pending, message: None });
            }
        }
    }

    fn pending(&self, position: Position) -> u64 {
        position.after().distance_to(self.store.head())
    }

    /// Appends a line naming the event and the error to the consumer's dead-letter file.
    async fn park(&mut self, delivery: &Delivery, error: &str) -> Result<(), FeedError> {
        let event = &delivery.event;
        let line = format!(
            "position={} id={} type={} stream={} deliveries={} consumer={} error={:?}\n",
            event.position,
            event.id,
            event.event_type,
            event.stream,
            delivery.delivered,
            self.consumer,
            bounded_error(error),
        );
        let path = self.dead_letter_path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            file.write_all(line.as_bytes())?;
            file.sync_data()
        })
        .await
        .map_err(|error| FeedError::Internal(format!("parking an event: {error}")))?
        .map_err(|error| FeedError::Internal(format!("{}: {error}", self.dead_letter_path.display())))
    }
}

/// A durable JetStream pull consumer on one context's stream.
pub struct JetStreamFeed {
    jetstream: jetstream::Context,
    /// Boxed, as the pull stream: both are large, and made once per consumer.
    consumer: Box<consumer::Consumer<pull::Config>>,
    consumer_name: String,
    messages: Option<Box<pull::Stream>>,
    errors_in_a_row: u32,
}

impl fmt::Debug for JetStreamFeed {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("JetStreamFeed").field("consumer", &self.consumer_name).finish_non_exhaustive()
    }
}

impl JetStreamFeed {
    pub async fn open(
        jetstream: jetstream::Context,
        context: &str,
        options: &ConsumerOptions,
    ) -> Result<JetStreamFeed, FeedError> {
        // No bound at JetStream: the runner parks a failing event itself, and retries one
        // that failed for a passing reason (another service away) for as long as it takes.
        let consumer =
            durable_consumer(&jetstream, context, &options.name, None, CONSUMER_ACK_PENDING_MAX, None)
                .await?;
        Ok(JetStreamFeed {
            jetstream,
            consumer: Box::new(consumer),
            consumer_name: options.name.clone(),
            messages: None,
            errors_in_a_row: 0,
        })
    }

    async fn next(&mut self) -> Result<Delivery, FeedError> {
        loop {
            let messages = match &mut self.messages {
                Some(messages) => messages,
                None => {
                    match self.consumer.stream().max_messages_per_batch(CONSUMER_PULL_BATCH).messages().await
                    {
                        Ok(messages) => self.messages.insert(Box::new(messages)),
                        Err(error) => {
                            self.failed(&format!("pulling from the consumer {}", self.consumer_name), error)
                                .await?;
                            continue;
                        }
                    }
                }
            };
            match messages.next().await {
                Some(Ok(message)) => {
                    self.errors_in_a_row = 0;
                    let (delivered, pending) = match message.info() {
                        Ok(info) => (u64::try_from(info.delivered).unwrap_or(1).max(1), info.pending),
                        Err(_) => (1, 0),
                    };
                    match cloudevents::event(message.headers.as_ref(), message.payload.clone()) {
                        Ok(event) => {
                            return Ok(Delivery { event, delivered, pending, message: Some(message) });
                        }
                        Err(reason) => {
                            tracing::error!(
                                consumer = %self.consumer_name,
                                subject = %message.subject,
                                %reason,
                                "not a Symbiose event: parked"
                            );
                            self.park_message(
                                &message,
                                delivered,
                                &format!("not a Symbiose event: {reason}"),
                            )
                            .await?;
                        }
                    }
                }
                Some(Err(error)) => {
                    self.failed(&format!("receiving from the consumer {}", self.consumer_name), error)
                        .await?;
                }
                None => self.messages = None,
            }
        }
    }

    /// Counts an error; past [`FEED_ERRORS_MAX`] in a row it is the feed's error, else it
    /// backs off ([`Backoff::FEED`]) and starts a new pull.
    async fn failed(&mut self, what: &str, error: impl fmt::Display) -> Result<(), FeedError> {
        self.errors_in_a_row += 1;
        self.messages = None;
        if self.errors_in_a_row > FEED_ERRORS_MAX {
            return Err(FeedError::NatsUnavailable {
                attempts: self.errors_in_a_row,
                last_error: format!("{what}: {error}"),
            });
        }
        let backoff = Backoff::FEED.delay(u64::from(self.errors_in_a_row));
        tracing::warn!(consumer = %self.consumer_name, attempt = self.errors_in_a_row, %error, "{what}");
        tokio::time::sleep(backoff).await;
        Ok(())
    }

    async fn park(&mut self, delivery: Delivery, error: &str) -> Result<(), FeedError> {
        let message = delivery.message.expect("a JetStream delivery holds its message");
        self.park_message(&message, delivery.delivered, error).await
    }

    async fn park_message(
        &mut self,
        message: &jetstream::Message,
        delivered: u64,
        error: &str,
    ) -> Result<(), FeedError> {
        park_message(&self.jetstream, &self.consumer_name, message, delivered, error).await
    }
}

/// The durable pull consumer `name` of `context`'s events (and the stream and the dead-letter
/// stream, created if absent), delivering from the stream's start (or from `start_sequence`
/// when it is made), each message at most `deliveries_max` times and one more (`None`: no
/// bound), with at most `ack_pending_max` messages unacknowledged at a time.
pub(crate) async fn durable_consumer(
    jetstream: &jetstream::Context,
    context: &str,
    name: &str,
    deliveries_max: Option<u32>,
    ack_pending_max: i64,
    start_sequence: Option<u64>,
) -> Result<consumer::Consumer<pull::Config>, FeedError> {
    if !route::is_context(context) {
        return Err(FeedError::Invalid {
            what: "context",
            reason: format!("{context:?} is not a context name"),
        });
    }
    let stream = jetstream
        .get_or_create_stream(route::stream_config(context))
        .await
        .map_err(|error| FeedError::nats(&format!("opening the stream of {context}"), error))?;
    jetstream
        .create_or_update_stream(route::dead_letter_stream_config())
        .await
        .map_err(|error| FeedError::nats("creating the dead-letter stream", error))?;
    let config = pull::Config {
        durable_name: Some(name.to_owned()),
        description: Some(format!("Symbiose consumer {name} of the {context} events")),
        deliver_policy: start_sequence
            .map_or(DeliverPolicy::All, |start_sequence| DeliverPolicy::ByStartSequence { start_sequence }),
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_millis(CONSUMER_ACK_WAIT_MS),
        // One delivery more than the consumer's bound: it parks the message on its last
        // delivery, and this one more lets it do so if it crashed in between.
        max_deliver: deliveries_max.map_or(-1, |deliveries_max| i64::from(deliveries_max) + 1),
        max_ack_pending: ack_pending_max,
        filter_subject: route::stream_subjects(context),
        ..Default::default()
    };
    stream
        .get_or_create_consumer(name, config)
        .await
        .map_err(|error| FeedError::nats(&format!("opening the consumer {name}"), error))
}

/// Publishes a copy of `message` on `consumer`'s dead-letter subject, with the error, waits
/// for JetStream to keep it, then tells the consumer never to deliver it again.
pub(crate) async fn park_message(
    jetstream: &jetstream::Context,
    consumer: &str,
    message: &jetstream::Message,
    delivered: u64,
    error: &str,
) -> Result<(), FeedError> {
    let original = message.headers.clone().unwrap_or_default();
    let original_id = original
        .get(cloudevents::NATS_MSG_ID)
        .map(|id| id.as_str().to_owned())
        .unwrap_or_else(|| message.info().map(|info| info.stream_sequence.to_string()).unwrap_or_default());
    // The CloudEvents headers go along; NATS's own (`Nats-Msg-Id`, the relay's
    // `Nats-Expected-Last-Sequence`) do not: they would make JetStream refuse the copy.
    let mut headers = HeaderMap::new();
    for (name, values) in original.iter() {
        if name.to_string().to_ascii_lowercase().starts_with("nats-") {
            continue;
        }
        for value in values {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(cloudevents::NATS_MSG_ID, format!("{consumer}.{original_id}"));
    headers.insert(DEAD_LETTER_ERROR, bounded_error(error));
    headers.insert(DEAD_LETTER_CONSUMER, consumer);
    headers.insert(DEAD_LETTER_DELIVERIES, delivered.to_string());
    headers.insert(DEAD_LETTER_ORIGINAL_SUBJECT, message.subject.as_str());
    let subject = route::dead_letter_subject(consumer);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match publish_and_wait(jetstream, &subject, headers.clone(), message.payload.clone()).await {
            Ok(()) => break,
            Err(error) if attempt >= PARK_ATTEMPTS_MAX => {
                return Err(FeedError::nats(&format!("parking on {subject}"), error));
            }
            Err(error) => {
                tracing::warn!(consumer, attempt, %error, "parking failed, trying again");
                tokio::time::sleep(Backoff::FEED.delay(u64::from(attempt))).await;
            }
        }
    }
    message
        .ack_with(AckKind::Term)
        .await
        .map_err(|error| FeedError::nats("terminating a parked message", error))
}

/// Publishes to JetStream and waits for the acknowledgement (the message is kept).
async fn publish_and_wait(
    jetstream: &jetstream::Context,
    subject: &str,
    headers: HeaderMap,
    payload: bytes::Bytes,
) -> Result<(), String> {
    let ack = jetstream
        .publish_with_headers(subject.to_owned(), headers, payload)
        .await
        .map_err(|error| error.to_string())?;
    ack.await.map(|_| ()).map_err(|error| error.to_string())
}

/// `error` on one line, at most [`DEAD_LETTER_ERROR_BYTES_MAX`] bytes.
fn bounded_error(error: &str) -> String {
    let mut line: String = error.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.len() > DEAD_LETTER_ERROR_BYTES_MAX {
        let mut end = DEAD_LETTER_ERROR_BYTES_MAX;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_error_is_one_bounded_line() {
        assert_eq!(bounded_error("bad\r\nthing"), "bad  thing");
        let long = "é".repeat(DEAD_LETTER_ERROR_BYTES_MAX);
        let bounded = bounded_error(&long);
        // Cut on a character boundary: 'é' is two bytes, and the bound is even.
        assert_eq!(bounded.len(), DEAD_LETTER_ERROR_BYTES_MAX);
        assert!(bounded.chars().all(|c| c == 'é'));
    }
}
