//! What the tests share: a store on disk filled with listings events, the relay and a
//! consumer as tasks, a recording handler, and waiting with a bound.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use prost::Message as _;
use symbiose_eventstore::embedded::{EmbeddedStore, Options};
use symbiose_eventstore::{EventData, EventStore, ExpectedVersion, RecordedEvent, StreamName};
use symbiose_feed::{
    ConsumerMetrics, ConsumerOptions, ConsumerStats, Feed, FeedError, Handler, HandlerError, Relay,
    RelayMetrics, RelayOptions,
};
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub(crate) const CONTEXT: &str = "listings";
pub(crate) const STREAM: &str = "SYMBIOSE_LISTINGS";
pub(crate) const ORGANIZATION_REGISTERED: &str = "symbiose.listings.v1.OrganizationRegistered";
pub(crate) const SUBJECT: &str = "symbiose.listings.v1.organization_registered";
/// Longest wait for anything a test waits for.
pub(crate) const WAIT_MAX: Duration = Duration::from_secs(120);
/// The pause between two checks while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// An embedded store in `dir`.
pub(crate) fn open_store(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open(dir, Options::default()).expect("open the store").0
}

/// The legal name of the `index`-th organization of a test.
pub(crate) fn legal_name(index: u64) -> String {
    format!("Palettes de l'Est {index:05} SAS")
}

/// Appends `count` `OrganizationRegistered` events, numbered from `first_index`, `batch` to
/// an append (each batch in a stream of its own), with their metadata. Returns their ids.
pub(crate) async fn append_organizations(
    store: &EmbeddedStore,
    first_index: u64,
    count: u64,
    batch: u64,
) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut index = first_index;
    while index < first_index + count {
        let until = (index + batch).min(first_index + count);
        let stream = StreamName::for_aggregate("organization", Uuid::now_v7()).expect("stream name");
        let events: Vec<EventData> = (index..until).map(organization_registered).collect();
        ids.extend(events.iter().map(|event| event.id));
        store.append(&stream, ExpectedVersion::NoStream, events).await.expect("append");
        index = until;
    }
    ids
}

fn organization_registered(index: u64) -> EventData {
    let organization_id = Uuid::now_v7();
    let payload = pb::OrganizationRegistered {
        organization_id: organization_id.to_string(),
        legal_name: legal_name(index),
        country: common::Country::France.into(),
        legal_identifier: "73282932000074".to_owned(),
        roles: vec![common::Role::Producer.into()],
        registered_at: Some(prost_types_now()),
        ..Default::default()
    };
    let metadata = common::EventMetadata { request_id: format!("request-{index}"), ..Default::default() };
    EventData::new(Uuid::now_v7(), ORGANIZATION_REGISTERED, payload.encode_to_vec())
        .with_metadata(metadata.encode_to_vec())
}

fn prost_types_now() -> prost_types::Timestamp {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    prost_types::Timestamp { seconds: now.as_secs() as i64, nanos: 0 }
}

/// The legal name an `OrganizationRegistered` payload carries.
pub(crate) fn decoded_name(payload: &[u8]) -> String {
    pb::OrganizationRegistered::decode(payload).expect("an OrganizationRegistered").legal_name
}

/// Logs of the code under test, at the level of `RUST_LOG` (default `warn`), shown with a
/// failing test's output.
pub(crate) fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// Waits until `condition` holds, at most [`WAIT_MAX`]; panics naming `what` otherwise.
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    init_logs();
    let deadline = Instant::now() + WAIT_MAX;
    while !condition() {
        assert!(Instant::now() < deadline, "waited {WAIT_MAX:?} for {what}");
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A relay running as a task.
pub(crate) struct RelayTask {
    pub(crate) metrics: RelayMetrics,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<Result<(), FeedError>>,
}

impl RelayTask {
    pub(crate) fn spawn(
        store: &EmbeddedStore,
        client: &async_nats::Client,
        options: RelayOptions,
    ) -> RelayTask {
        let relay = Relay::new(store.clone(), symbiose_feed::jetstream(client.clone()), options);
        let metrics = relay.metrics();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(relay.run(async move {
            let _ = stopped.await;
        }));
        RelayTask { metrics, stop, handle }
    }

    /// Waits until every event of `store` is confirmed on NATS.
    pub(crate) async fn caught_up(&self, store: &EmbeddedStore) {
        let metrics = self.metrics.clone();
        let head = store.head();
        eventually(&format!("the relay to confirm position {head}"), || {
            metrics.stats().confirmed_position >= head.as_u64()
        })
        .await;
    }

    /// Stops the relay as the service would, and waits for it.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        self.handle.await.expect("the relay task").expect("the relay stops cleanly");
    }

    /// Ends the relay where it stands, as a crash would: no final checkpoint, publishes in
    /// flight abandoned.
    pub(crate) async fn crash(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }
}

/// Relay options for tests: the checkpoint in `dir`, short backoffs.
pub(crate) fn relay_options(dir: &Path) -> RelayOptions {
    let mut options = RelayOptions::new(dir.join("relay.checkpoint")).with_contexts(&[CONTEXT]);
    options.backoff = options.backoff.with_delays(Duration::from_millis(50), Duration::from_millis(500));
    options
}

/// What a [`Recorder`] applied, in order: position, id, legal name.
pub(crate) type Applied = Arc<Mutex<Vec<(u64, Uuid, String)>>>;

/// A projection: the legal names of the organizations, in log order. It refuses the
/// organization named `poison` every time.
pub(crate) struct Recorder {
    pub(crate) applied: Applied,
    pub(crate) poison: Option<String>,
}

impl Recorder {
    pub(crate) fn new() -> Recorder {
        Recorder { applied: Applied::default(), poison: None }
    }
}

impl Handler for Recorder {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), HandlerError> {
        let name = pb::OrganizationRegistered::decode(event.payload.as_ref())?.legal_name;
        if self.poison.as_ref() == Some(&name) {
            return Err(format!("cannot project {name}: poison for this test").into());
        }
        self.applied.lock().expect("not poisoned").push((event.position.as_u64(), event.id, name));
        Ok(())
    }
}

/// How many times the recorder applied each id.
pub(crate) fn applied_counts(applied: &Applied) -> HashMap<Uuid, usize> {
    let mut counts = HashMap::new();
    for (_, id, _) in applied.lock().expect("not poisoned").iter() {
        *counts.entry(*id).or_default() += 1;
    }
    counts
}

/// A consumer running as a task.
pub(crate) struct ConsumerTask {
    pub(crate) metrics: ConsumerMetrics,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<Result<ConsumerStats, FeedError>>,
}

impl ConsumerTask {
    pub(crate) fn spawn<H: Handler + 'static>(
        feed: Feed<EmbeddedStore>,
        mut handler: H,
        options: ConsumerOptions,
    ) -> ConsumerTask {
        let metrics = ConsumerMetrics::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let task_metrics = metrics.clone();
        let handle = tokio::spawn(async move {
            symbiose_feed::run_consumer(feed, &mut handler, &options, &task_metrics, async move {
                let _ = stopped.await;
            })
            .await
        });
        ConsumerTask { metrics, stop, handle }
    }

    /// Waits until the consumer has applied and parked `count` events in all.
    pub(crate) async fn done_with(&self, count: u64) {
        let metrics = self.metrics.clone();
        eventually(&format!("the consumer to apply or park {count} events"), || {
            let stats = metrics.stats();
            stats.processed + stats.parked >= count
        })
        .await;
    }

    pub(crate) async fn stop(self) -> ConsumerStats {
        let _ = self.stop.send(());
        self.handle.await.expect("the consumer task").expect("the consumer stops cleanly")
    }
}

/// Every message of a JetStream stream, in order: subject, headers, payload.
pub(crate) async fn stream_messages(
    jetstream: &jetstream::Context,
    stream: &str,
) -> Vec<(String, async_nats::HeaderMap, bytes::Bytes)> {
    let mut stream = jetstream.get_stream(stream).await.expect("the stream exists");
    let last = stream.info().await.expect("stream info").state.last_sequence;
    let mut messages = Vec::new();
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.expect("a message at every sequence");
        messages.push((message.subject.to_string(), message.headers, message.payload));
    }
    messages
}

/// The `ce-logposition` of a relayed message.
pub(crate) fn position_of(headers: &async_nats::HeaderMap) -> u64 {
    headers.get("ce-logposition").expect("ce-logposition").as_str().parse().expect("a position")
}
