//! A consumer that keeps failing on one event parks it with the error and carries on.

use std::time::Duration;

use symbiose_eventstore::Position;
use symbiose_feed::testing::NatsServer;
use symbiose_feed::{ConsumerOptions, Feed};

use crate::support::{
    CONTEXT, ConsumerTask, Recorder, RelayTask, append_organizations, decoded_name, legal_name, open_store,
    relay_options, stream_messages,
};

const EVENTS: u64 = 20;
const POISON: u64 = 7;
const DELIVERIES_MAX: u32 = 3;

fn options(name: &str, dir: &std::path::Path) -> ConsumerOptions {
    let mut options = ConsumerOptions::new(name, dir).expect("options");
    options.deliveries_max = DELIVERIES_MAX;
    options.retry = options.retry.with_delays(Duration::from_millis(10), Duration::from_millis(50));
    options
}

fn poisoned() -> Recorder {
    Recorder { poison: Some(legal_name(POISON)), ..Recorder::new() }
}

/// The recorder applied every event but the poison one, in order, the ones after it included.
#[track_caller]
fn check_carried_on(recorder_names: Vec<String>) {
    let expected: Vec<String> = (0..EVENTS).filter(|index| *index != POISON).map(legal_name).collect();
    assert_eq!(recorder_names, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_on_jetstream_parks_a_poison_event_on_the_dead_letter_subject_and_carries_on() {
    let Some(nats) = NatsServer::start_or_skip("a_consumer_on_jetstream_parks_a_poison_event") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(&dir.path().join("events"));
    let ids = append_organizations(&store, 0, EVENTS, 4).await;
    let client = symbiose_feed::connect(&nats.url(), None, "test").await.expect("connect");
    let relay = RelayTask::spawn(&store, &client, relay_options(dir.path()));

    let options = options("catalog", dir.path());
    let recorder = poisoned();
    let applied = recorder.applied.clone();
    let jetstream = symbiose_feed::jetstream(client.clone());
    let feed = Feed::jetstream(jetstream.clone(), CONTEXT, &options).await.expect("feed");
    let consumer = ConsumerTask::spawn(feed, recorder, options);
    consumer.done_with(EVENTS).await;
    let stats = consumer.stop().await;
    relay.stop().await;

    assert_eq!(
        (stats.processed, stats.parked, stats.retried),
        (EVENTS - 1, 1, u64::from(DELIVERIES_MAX) - 1)
    );
    check_carried_on(applied.lock().expect("lock").iter().map(|(_, _, name)| name.clone()).collect());

    let parked = stream_messages(&jetstream, "SYMBIOSE_DEADLETTER").await;
    assert_eq!(parked.len(), 1, "one message parked");
    let (subject, headers, payload) = &parked[0];
    let header = |name: &str| headers.get(name).map(|value| value.as_str().to_owned()).unwrap_or_default();
    assert_eq!(subject, "symbiose.deadletter.catalog");
    assert_eq!(header("ce-id"), ids[POISON as usize].to_string());
    assert_eq!(header("ce-type"), "symbiose.listings.v1.OrganizationRegistered");
    assert!(header("symbiose-error").contains("poison for this test"), "{}", header("symbiose-error"));
    assert_eq!(header("symbiose-deliveries"), DELIVERIES_MAX.to_string());
    assert_eq!(header("symbiose-consumer"), "catalog");
    assert_eq!(header("symbiose-subject"), "symbiose.listings.v1.organization_registered");
    assert_eq!(decoded_name(payload), legal_name(POISON), "the body is the event, untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_on_the_local_feed_parks_a_poison_event_in_its_dead_letter_file_and_carries_on() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(&dir.path().join("events"));
    let ids = append_organizations(&store, 0, EVENTS, 4).await;

    let options = options("catalog", dir.path());
    let recorder = poisoned();
    let applied = recorder.applied.clone();
    let feed = Feed::local(store.clone(), Position::START, Some(CONTEXT), &options);
    let consumer = ConsumerTask::spawn(feed, recorder, options.clone());
    consumer.done_with(EVENTS).await;
    let stats = consumer.stop().await;

    assert_eq!(
        (stats.processed, stats.parked, stats.retried),
        (EVENTS - 1, 1, u64::from(DELIVERIES_MAX) - 1)
    );
    check_carried_on(applied.lock().expect("lock").iter().map(|(_, _, name)| name.clone()).collect());
    let parked = std::fs::read_to_string(options.dead_letter_path()).expect("the dead-letter file");
    let lines: Vec<&str> = parked.lines().collect();
    assert_eq!(lines.len(), 1, "{parked}");
    assert!(lines[0].contains(&format!("id={}", ids[POISON as usize])), "{}", lines[0]);
    assert!(lines[0].contains(&format!("position={POISON}")), "{}", lines[0]);
    assert!(lines[0].contains(&format!("deliveries={DELIVERIES_MAX}")), "{}", lines[0]);
    assert!(lines[0].contains("poison for this test"), "{}", lines[0]);
}

/// Fails with a transient error the first `failures` deliveries of one event (another service
/// away), then applies it: the recorder underneath sees every event once, in order.
struct Away {
    recorder: Recorder,
    failures: u32,
    failed: u32,
    on: String,
}

impl symbiose_feed::Handler for Away {
    async fn handle(
        &mut self,
        event: &symbiose_eventstore::RecordedEvent,
    ) -> Result<(), symbiose_feed::HandlerError> {
        let name = decoded_name(&event.payload);
        if name == self.on && self.failed < self.failures {
            self.failed += 1;
            return Err(symbiose_feed::Transient::error("the listings service did not answer"));
        }
        self.recorder.handle(event).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_past_the_delivery_bound_and_never_parked() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(&dir.path().join("events"));
    append_organizations(&store, 0, EVENTS, 4).await;

    let options = options("deliverer", dir.path());
    let recorder = Recorder::new();
    let applied = recorder.applied.clone();
    // Four times the bound after which a failing event would be parked.
    let failures = 4 * DELIVERIES_MAX;
    let away = Away { recorder, failures, failed: 0, on: legal_name(POISON) };
    let feed = Feed::local(store.clone(), Position::START, Some(CONTEXT), &options);
    let consumer = ConsumerTask::spawn(feed, away, options.clone());
    consumer.done_with(EVENTS).await;
    let stats = consumer.stop().await;

    assert_eq!((stats.processed, stats.parked, stats.retried), (EVENTS, 0, u64::from(failures)));
    let names: Vec<String> = applied.lock().expect("lock").iter().map(|(_, _, name)| name.clone()).collect();
    assert_eq!(names, (0..EVENTS).map(legal_name).collect::<Vec<_>>(), "every event once, in order");
    assert!(!options.dead_letter_path().exists(), "nothing parked");
}
