//! The event feed: how events leave a service's store for NATS, and how every consumer
//! (projection, reactor, another service) takes them in, without losing or doubling an effect.
//!
//! - [`relay`]: a service's [`Relay`] reads its store from a durable checkpoint and publishes
//!   each event to JetStream, on `symbiose.<context>.v1.<event_type>`, in the CloudEvents NATS
//!   binding ([`cloudevents`]) with the protobuf payload as body and `Nats-Msg-Id` set to the
//!   event id; it moves its checkpoint only over acknowledged publishes.
//! - [`feed`]: [`Feed`] is "events from position P on", from the local store's subscription
//!   (one process) or from a durable JetStream pull consumer (one process per service).
//! - [`consumer`]: [`run_consumer`] drives a [`Handler`] over a feed: explicit acks, bounded
//!   deliveries then the message parked on `symbiose.deadletter.<consumer>`, a checkpoint per
//!   consumer, duplicates skipped by position, and metrics.
//! - [`import`]: a service running alone copies the other contexts' events it consumes into
//!   its own store, through a durable consumer per context, in batches, so it follows one
//!   local log.
//! - [`replay`]: [`Replay`] is a context's whole stream, then its live events, through an
//!   ordered consumer of its own: how a stateless replica of a read model rebuilds and follows.
//! - [`testing`]: a real `nats-server` with JetStream on a free port, for tests and benchmarks.
//!
//! NATS carries events; it is never their source of truth, and this crate never writes to a
//! store. It never decodes payloads either: they go out as the bytes the store holds.

pub mod checkpoint;
pub mod cloudevents;
pub mod consumer;
pub mod feed;
pub mod import;
pub mod relay;
pub mod replay;
pub mod route;
pub mod testing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use symbiose_eventstore::StoreError;
use symbiose_kit::backoff::Backoff;

pub use checkpoint::Checkpoint;
pub use consumer::{
    CONSUMER_CHECKPOINT_EVENTS_MAX, CONSUMER_CHECKPOINT_INTERVAL_MS, CONSUMER_DELIVERIES_MAX,
    CONSUMER_NAME_BYTES_MAX, ConsumerMetrics, ConsumerOptions, ConsumerStats, Handler, HandlerError,
    Transient, run_consumer,
};
pub use feed::{Delivery, Feed, JetStreamFeed, LocalFeed};
pub use import::{
    IMPORT_ATTEMPTS_MAX, IMPORT_BATCH_MAX, ImportCounters, Imported, RunningImports, import_events,
    importer_name, start_imports,
};
pub use relay::{
    RELAY_ATTEMPTS_MAX, RELAY_CHECKPOINT_EVENTS_MAX, RELAY_CHECKPOINT_INTERVAL_MS, RELAY_IN_FLIGHT_MAX,
    RELAY_READ_EVENTS, RELAY_RESTART_DELAY_MS, Relay, RelayMetrics, RelayOptions, RelayStats, RunningRelay,
    start_relay, without_credentials,
};
pub use replay::{Replay, Replayed};
pub use route::{DUPLICATE_WINDOW, Route};

/// Longest wait for a JetStream API reply and for a publish acknowledgement.
pub const NATS_REQUEST_TIMEOUT_MS: u64 = 5_000;
/// Longest wait for a TCP connection to the NATS server.
pub const NATS_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Publishes a JetStream context lets wait for their acknowledgement, at most.
pub const NATS_ACKS_PENDING_MAX: usize = 2 * RELAY_IN_FLIGHT_MAX;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    #[error("nats: {0}")]
    Nats(String),
    /// NATS failed this many times in a row; the last error says why.
    #[error("nats failed {attempts} times in a row, last: {last_error}")]
    NatsUnavailable { attempts: u32, last_error: String },
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint { path: PathBuf, reason: String },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl FeedError {
    pub(crate) fn nats(context: &str, error: impl std::fmt::Display) -> FeedError {
        FeedError::Nats(format!("{context}: {error}"))
    }
}

/// Connects to NATS at `url` (a comma-separated list of servers is allowed), with the
/// credentials file `credentials` if given. It does not wait for the server: the client
/// connects, and reconnects, in the background, so a NATS that is down at start delays the
/// relay without stopping the service.
pub async fn connect(
    url: &str,
    credentials: Option<&Path>,
    client_name: &str,
) -> Result<async_nats::Client, FeedError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(client_name)
        .connection_timeout(Duration::from_millis(NATS_CONNECT_TIMEOUT_MS))
        .request_timeout(Some(Duration::from_millis(NATS_REQUEST_TIMEOUT_MS)))
        // The pauses of [`Backoff::RECONNECT`], for as long as the process lives: a service
        // must come back when NATS does.
        .reconnect_delay_callback(|attempts| Backoff::RECONNECT.delay(attempts as u64))
        .retry_on_initial_connect();
    if let Some(credentials) = credentials {
        options = options.credentials_file(credentials).await.map_err(|error| FeedError::Invalid {
            what: "NATS credentials file",
            reason: format!("{}: {error}", credentials.display()),
        })?;
    }
    options.connect(url).await.map_err(|error| FeedError::nats(&format!("connecting to {url}"), error))
}

/// The JetStream context the relay and the feeds use: bounded API waits, and publishes that
/// wait for room rather than fail when [`NATS_ACKS_PENDING_MAX`] acks are pending.
pub fn jetstream(client: async_nats::Client) -> async_nats::jetstream::Context {
    async_nats::jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(NATS_REQUEST_TIMEOUT_MS))
        // The acks of publishes given up on (after a NATS error) hold their room this long.
        .ack_timeout(Duration::from_millis(NATS_REQUEST_TIMEOUT_MS))
        .max_ack_inflight(NATS_ACKS_PENDING_MAX)
        .backpressure_on_inflight(true)
        .build(client)
}

/// A shutdown future that may be asked about again once it has completed.
pub(crate) struct Shutdown<'a> {
    future: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>,
    done: bool,
}

impl<'a> Shutdown<'a> {
    pub(crate) fn new(future: impl std::future::Future<Output = ()> + Send + 'a) -> Shutdown<'a> {
        Shutdown { future: Box::pin(future), done: false }
    }

    /// `future`'s output, or `None` if the shutdown comes (or came) first.
    pub(crate) async fn or<T>(&mut self, future: impl std::future::Future<Output = T>) -> Option<T> {
        if self.done {
            return None;
        }
        tokio::select! {
            biased;
            () = self.future.as_mut() => {
                self.done = true;
                None
            }
            output = future => Some(output),
        }
    }

    /// Whether the shutdown came, without waiting.
    pub(crate) async fn is_done(&mut self) -> bool {
        self.or(std::future::ready(())).await.is_none()
    }
}
