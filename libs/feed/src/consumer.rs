//! The consumer runner: one [`Handler`] over one [`Feed`], each event applied once.
//!
//! - Every delivery is answered explicitly: acknowledged when the handler returns `Ok`;
//!   delivered again after a growing delay when it fails; parked (kept with the error on
//!   `symbiose.deadletter.<consumer>`, or in `<consumer>.deadletter` beside the checkpoint in
//!   the local mode) on its [`ConsumerOptions::deliveries_max`]-th failure, after which the
//!   consumer moves on to the next event. A failure the handler marks [`Transient`] (another
//!   service away, a view behind, a conflict) is never parked: the event is delivered again,
//!   the delay growing as [`ConsumerOptions::retry`] says, for as long as it takes, so
//!   a flow waits for what it needs rather than stopping half-way.
//! - The runner keeps the position after the last event it applied or parked, and skips any
//!   delivery before it: duplicates from NATS (a redelivery after a lost ack, a republish
//!   beyond the duplicate window) do nothing. It saves that position (in the store a local
//!   feed reads, as `consumer.<consumer>`; in `<consumer>.checkpoint` for a JetStream feed)
//!   every [`CONSUMER_CHECKPOINT_EVENTS_MAX`] events or
//!   [`CONSUMER_CHECKPOINT_INTERVAL_MS`], and when it stops; after a crash, the events since
//!   the last save come again, so a handler whose effects outlive the process must also be
//!   idempotent by event id or by version (both are in [`RecordedEvent`]).
//! - [`ConsumerMetrics`] counts what was processed, skipped, retried and parked, and the lag;
//!   the runner logs them with the checkpoint, and each event is handled in a span naming it.
//! - Each event is handled in its trace context ([`symbiose_kit::trace`]): the trace of its
//!   metadata continued (a new one for an event without), caused by the event.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use symbiose_eventstore::{EventStore, Position, RecordedEvent};
use symbiose_kit::backoff::Backoff;
use symbiose_kit::trace::{self, EventTrace};
use tracing::Instrument as _;

use crate::checkpoint::Checkpoint;
use crate::feed::Feed;
use crate::{FeedError, Shutdown};

/// Deliveries of one event after which it is parked.
pub const CONSUMER_DELIVERIES_MAX: u32 = 5;
/// Applied events after which the checkpoint is saved, at most.
pub const CONSUMER_CHECKPOINT_EVENTS_MAX: u64 = 1_000;
/// Time after which applied events are checkpointed, at most.
pub const CONSUMER_CHECKPOINT_INTERVAL_MS: u64 = 1_000;
/// Longest consumer name, in bytes: it names a durable JetStream consumer and two files.
pub const CONSUMER_NAME_BYTES_MAX: usize = 64;

/// The checkpoint's name of the next position to apply.
const NEXT_POSITION: &str = "next_position";

/// Why a handler did not apply an event.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// A failure that passes by itself (another service away, a read model behind, a conflict
/// with another process): the runner delivers the event again, without a bound in count, and
/// never parks it.
#[derive(Debug)]
pub struct Transient(pub String);

impl std::fmt::Display for Transient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} (transient)", self.0)
    }
}

impl std::error::Error for Transient {}

impl Transient {
    /// A handler error that is transient.
    pub fn error(reason: impl std::fmt::Display) -> HandlerError {
        Box::new(Transient(reason.to_string()))
    }
}

/// A projection or a reactor: what a consumer does with each event.
pub trait Handler: Send {
    /// Applies `event`. An error means it was not applied: it is delivered again, up to the
    /// consumer's bound, and then parked.
    fn handle(&mut self, event: &RecordedEvent) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// The settings of one consumer. [`ConsumerOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Names the durable JetStream consumer, the checkpoint and the dead-letter subject.
    pub name: String,
    /// Where `<name>.checkpoint` (and, in the local mode, `<name>.deadletter`) are kept.
    pub checkpoint_dir: PathBuf,
    pub deliveries_max: u32,
    /// The delays before an event is delivered again ([`Backoff::REDELIVERY`]).
    pub retry: Backoff,
    pub checkpoint_events_max: u64,
    pub checkpoint_interval: Duration,
}

impl ConsumerOptions {
    /// `name`: ASCII letters, digits, `-` and `_`, at most [`CONSUMER_NAME_BYTES_MAX`] bytes.
    pub fn new(name: &str, checkpoint_dir: impl Into<PathBuf>) -> Result<ConsumerOptions, FeedError> {
        let valid = !name.is_empty()
            && name.len() <= CONSUMER_NAME_BYTES_MAX
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(FeedError::Invalid {
                what: "consumer name",
                reason: format!("{name:?}: 1 to {CONSUMER_NAME_BYTES_MAX} ASCII letters, digits, - or _"),
            });
        }
        Ok(ConsumerOptions {
            name: name.to_owned(),
            checkpoint_dir: checkpoint_dir.into(),
            deliveries_max: CONSUMER_DELIVERIES_MAX,
            retry: Backoff::REDELIVERY,
            checkpoint_events_max: CONSUMER_CHECKPOINT_EVENTS_MAX,
            checkpoint_interval: Duration::from_millis(CONSUMER_CHECKPOINT_INTERVAL_MS),
        })
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.checkpoint_dir.join(format!("{}.checkpoint", self.name))
    }

    /// Where the local feed parks events.
    pub fn dead_letter_path(&self) -> PathBuf {
        self.checkpoint_dir.join(format!("{}.deadletter", self.name))
    }

    /// The position a consumer of JetStream resumes from, in its checkpoint file.
    pub fn load_position(&self) -> Result<Position, FeedError> {
        Ok(Checkpoint::load(&self.checkpoint_path())?.position(NEXT_POSITION))
    }

    /// The name of the checkpoint a consumer of a local feed keeps in the store it reads.
    pub fn checkpoint_name(&self) -> String {
        format!("consumer.{}", self.name)
    }

    /// The position a consumer of `store`'s log resumes from, in its checkpoint kept in that
    /// store (or in the file an earlier version kept).
    pub async fn load_position_from<S: EventStore>(&self, store: &S) -> Result<Position, FeedError> {
        let checkpoint =
            Checkpoint::load_from(store, &self.checkpoint_name(), &self.checkpoint_path()).await?;
        Ok(checkpoint.position(NEXT_POSITION))
    }

    /// The delay before the delivery that follows the `delivered`-th.
    fn retry_delay(&self, delivered: u64) -> Duration {
        self.retry.delay(delivered)
    }
}

/// A consumer's counters, shared with whoever watches it.
#[derive(Debug, Clone, Default)]
pub struct ConsumerMetrics(Arc<ConsumerCounters>);

#[derive(Debug, Default)]
struct ConsumerCounters {
    processed: AtomicU64,
    duplicates: AtomicU64,
    retried: AtomicU64,
    parked: AtomicU64,
    position: AtomicU64,
    lag: AtomicU64,
}

/// A snapshot of a consumer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Events the handler applied.
    pub processed: u64,
    /// Deliveries skipped: their position was already applied or parked.
    pub duplicates: u64,
    /// Deliveries that failed and were asked for again.
    pub retried: u64,
    /// Events given up on and parked.
    pub parked: u64,
    /// The next position to apply.
    pub position: u64,
    /// Events after the last delivery that the feed holds, not yet delivered.
    pub lag: u64,
}

impl ConsumerMetrics {
    pub fn stats(&self) -> ConsumerStats {
        let counters = &self.0;
        ConsumerStats {
            processed: counters.processed.load(Ordering::Relaxed),
            duplicates: counters.duplicates.load(Ordering::Relaxed),
            retried: counters.retried.load(Ordering::Relaxed),
            parked: counters.parked.load(Ordering::Relaxed),
            position: counters.position.load(Ordering::Relaxed),
            lag: counters.lag.load(Ordering::Relaxed),
        }
    }
}

/// Runs `handler` over `feed` until `shutdown` completes or the feed fails, then saves the
/// checkpoint. A local feed is applied from where it starts (open it with
/// [`Feed::local_from_checkpoint`] to resume) and checkpointed in its store; a JetStream feed
/// from the checkpoint file, whatever JetStream delivers before it skipped.
pub async fn run_consumer<S: EventStore, H: Handler>(
    mut feed: Feed<S>,
    handler: &mut H,
    options: &ConsumerOptions,
    metrics: &ConsumerMetrics,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<ConsumerStats, FeedError> {
    assert!(options.deliveries_max >= 1, "at least one delivery");
    let mut shutdown = Shutdown::new(shutdown);
    let keeper = Keeper::of(&feed, options);
    let mut next_position = match &feed {
        Feed::Local(local) => local.from_position(),
        Feed::JetStream(_) => options.load_position()?,
    };
    let mut saved_position = next_position;
    let mut saved_at = Instant::now();
    let counters = &metrics.0;
    counters.position.store(next_position.as_u64(), Ordering::Relaxed);
    tracing::info!(consumer = %options.name, mode = feed.mode(), position = %next_position, "consumer starting");

    let result = loop {
        let delivery = match shutdown.or(feed.next()).await {
            None => break Ok(()),
            Some(Err(error)) => break Err(error),
            Some(Ok(delivery)) => delivery,
        };
        counters.lag.store(delivery.pending, Ordering::Relaxed);
        let (position, delivered) = (delivery.event.position, delivery.delivered);
        let answered = if position < next_position {
            counters.duplicates.fetch_add(1, Ordering::Relaxed);
            feed.ack(delivery).await
        } else {
            let span = tracing::info_span!(
                "event",
                consumer = %options.name,
                %position,
                id = %delivery.event.id,
                event_type = %delivery.event.event_type,
                delivered,
                trace_id = tracing::field::Empty,
            );
            // The reaction continues the event's trace, caused by it: what it writes carries
            // the same correlation id and this event's id as its causation.
            let reaction = EventTrace::of_metadata(&delivery.event.metadata).reaction(delivery.event.id);
            let context = trace::follow(&span, reaction);
            match trace::scope(context, handler.handle(&delivery.event)).instrument(span).await {
                Ok(()) => {
                    next_position = position.after();
                    counters.processed.fetch_add(1, Ordering::Relaxed);
                    feed.ack(delivery).await
                }
                Err(error) if delivered >= u64::from(options.deliveries_max) && !error.is::<Transient>() => {
                    tracing::error!(consumer = %options.name, %position, delivered, %error, "event parked");
                    let parked = feed.park(delivery, &error.to_string()).await;
                    if parked.is_ok() {
                        next_position = position.after();
                        counters.parked.fetch_add(1, Ordering::Relaxed);
                    }
                    parked
                }
                Err(error) => {
                    let delay = options.retry_delay(delivered);
                    tracing::warn!(
                        consumer = %options.name,
                        %position,
                        delivered,
                        %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "event failed, delivering it again"
                    );
                    counters.retried.fetch_add(1, Ordering::Relaxed);
                    feed.retry(delivery, delay).await
                }
            }
        };
        counters.position.store(next_position.as_u64(), Ordering::Relaxed);
        if let Err(error) = answered {
            break Err(error);
        }
        let due = saved_position.distance_to(next_position) >= options.checkpoint_events_max
            || saved_at.elapsed() >= options.checkpoint_interval;
        if next_position > saved_position && due {
            keeper.save(next_position).await?;
            (saved_position, saved_at) = (next_position, Instant::now());
            log_progress(options, metrics, tracing::Level::DEBUG);
        }
    };
    if next_position != saved_position {
        keeper.save(next_position).await?;
    }
    log_progress(options, metrics, tracing::Level::INFO);
    match &result {
        Ok(()) => tracing::info!(consumer = %options.name, position = %next_position, "consumer stopped"),
        Err(error) => {
            tracing::error!(consumer = %options.name, position = %next_position, %error, "consumer failed")
        }
    }
    result.map(|()| metrics.stats())
}

/// Where a consumer keeps its checkpoint: in the store its local feed reads, or in a file.
enum Keeper<S> {
    Store { store: S, name: String },
    File(PathBuf),
}

impl<S: EventStore> Keeper<S> {
    fn of(feed: &Feed<S>, options: &ConsumerOptions) -> Keeper<S> {
        match feed {
            Feed::Local(local) => {
                Keeper::Store { store: local.store().clone(), name: options.checkpoint_name() }
            }
            Feed::JetStream(_) => Keeper::File(options.checkpoint_path()),
        }
    }

    async fn save(&self, next_position: Position) -> Result<(), FeedError> {
        let mut checkpoint = Checkpoint::default();
        checkpoint.set(NEXT_POSITION, next_position.as_u64());
        match self {
            Keeper::Store { store, name } => checkpoint.save_to(store, name).await,
            Keeper::File(path) => checkpoint.save_async(path).await,
        }
    }
}

/// The consumer's counters: at `DEBUG` for each checkpoint (every second under a steady
/// stream of events), at `INFO` when it stops.
fn log_progress(options: &ConsumerOptions, metrics: &ConsumerMetrics, level: tracing::Level) {
    let stats = metrics.stats();
    macro_rules! progress {
        ($level:expr) => {
            tracing::event!(
                $level,
                consumer = %options.name,
                position = stats.position,
                processed = stats.processed,
                duplicates = stats.duplicates,
                retried = stats.retried,
                parked = stats.parked,
                lag = stats.lag,
                "consumer checkpoint"
            )
        };
    }
    if level == tracing::Level::INFO {
        progress!(tracing::Level::INFO);
    } else {
        progress!(tracing::Level::DEBUG);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_checked() {
        assert!(ConsumerOptions::new("catalog-v1", "/tmp").is_ok());
        for bad in ["", "a.b", "a b", "a>", &"x".repeat(CONSUMER_NAME_BYTES_MAX + 1)] {
            assert!(ConsumerOptions::new(bad, "/tmp").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_retry_delay_grows_within_its_bounds() {
        let options = ConsumerOptions::new("catalog", "/tmp").expect("valid");
        let retry = Backoff::REDELIVERY;
        assert!(
            options.retry_delay(1) >= retry.min_delay() && options.retry_delay(1) <= retry.min_delay() * 2
        );
        assert!(options.retry_delay(3) >= retry.min_delay() * 4);
        assert!(options.retry_delay(u64::MAX) >= retry.max_delay() / 2);
        assert!(options.retry_delay(u64::MAX) <= retry.max_delay());
    }
}
