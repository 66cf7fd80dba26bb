//! NATS dies while the log grows, the relay dies in the middle of a batch: nothing is lost,
//! nothing is applied twice, and the stream has no gap.

use std::collections::HashSet;
use std::time::Duration;

use symbiose_eventstore::EventStore;
use symbiose_feed::testing::NatsServer;
use symbiose_feed::{Checkpoint, ConsumerOptions, Feed};

use crate::support::{
    CONTEXT, ConsumerTask, Recorder, RelayTask, STREAM, append_organizations, applied_counts, eventually,
    open_store, position_of, relay_options,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_killed_while_events_are_appended_loses_nothing_and_each_event_is_applied_once() {
    const EVENTS: u64 = 3_000;
    const KILL_AFTER_PUBLISHED: u64 = 300;
    const APPENDED_WHILE_DOWN: u64 = 500;
    let Some(mut nats) = NatsServer::start_or_skip("nats_killed_while_events_are_appended") else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(&dir.path().join("events"));
    let client = symbiose_feed::connect(&nats.url(), None, "test").await.expect("connect");
    let relay = RelayTask::spawn(&store, &client, relay_options(dir.path()));
    let options = ConsumerOptions::new("directory", dir.path()).expect("options");
    let recorder = Recorder::new();
    let applied = recorder.applied.clone();
    let feed =
        Feed::jetstream(symbiose_feed::jetstream(client.clone()), CONTEXT, &options).await.expect("feed");
    let consumer = ConsumerTask::spawn(feed, recorder, options);

    let writer = {
        let store = store.clone();
        tokio::spawn(async move { append_organizations(&store, 0, EVENTS, 10).await })
    };
    let relay_metrics = relay.metrics.clone();
    eventually("the relay to publish some events", || {
        relay_metrics.stats().published >= KILL_AFTER_PUBLISHED
    })
    .await;
    nats.kill();
    let head_at_kill = store.head().as_u64();
    let store_for_wait = store.clone();
    eventually("events to be appended while NATS is down", || {
        store_for_wait.head().as_u64() >= (head_at_kill + APPENDED_WHILE_DOWN).min(EVENTS)
    })
    .await;
    // Down long enough for the relay to fail, not only for the client to buffer.
    eventually("the relay to notice the outage", || relay_metrics.stats().failures >= 1).await;
    nats.restart().expect("nats-server starts again on its port and storage");
    let ids = writer.await.expect("the writer");
    assert_eq!(ids.len() as u64, EVENTS);

    relay.caught_up(&store).await;
    consumer.done_with(EVENTS).await;
    let stats = consumer.stop().await;
    let relay_stats = relay.metrics.stats();
    relay.stop().await;

    // Every event was applied, each exactly once, in log order.
    let counts = applied_counts(&applied);
    assert_eq!(counts.len() as u64, EVENTS, "every event applied");
    assert!(counts.values().all(|count| *count == 1), "no event applied twice");
    assert!(ids.iter().all(|id| counts.contains_key(id)));
    let positions: Vec<u64> =
        applied.lock().expect("lock").iter().map(|(position, _, _)| *position).collect();
    assert_eq!(positions, (0..EVENTS).collect::<Vec<_>>(), "applied in log order");
    assert_eq!((stats.processed, stats.parked), (EVENTS, 0));
    assert!(relay_stats.failures >= 1, "the relay saw the outage: {relay_stats:?}");
    assert!(
        client.statistics().connects.load(std::sync::atomic::Ordering::Relaxed) >= 2,
        "the client reconnected"
    );

    // JetStream holds every event once, in order.
    let jetstream = symbiose_feed::jetstream(client);
    let positions: Vec<u64> = crate::support::stream_messages(&jetstream, STREAM)
        .await
        .iter()
        .map(|(_, headers, _)| position_of(headers))
        .collect();
    assert_eq!(positions, (0..EVENTS).collect::<Vec<_>>(), "the stream holds each event once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_restarted_in_the_middle_of_a_batch_leaves_no_gap_and_no_duplicate() {
    const EVENTS: u64 = 6_000;
    let Some(nats) = NatsServer::start_or_skip("a_relay_restarted_in_the_middle_of_a_batch") else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(&dir.path().join("events"));
    append_organizations(&store, 0, EVENTS, 100).await;
    let client = symbiose_feed::connect(&nats.url(), None, "test").await.expect("connect");

    // The first relay checkpoints rarely, and dies with publishes acknowledged past its
    // checkpoint and more in flight.
    let mut rare = relay_options(dir.path());
    rare.checkpoint_events_max = 2_000;
    rare.checkpoint_interval = Duration::from_secs(3600);
    let first = RelayTask::spawn(&store, &client, rare.clone());
    let metrics = first.metrics.clone();
    eventually("the first relay to pass its first checkpoint", || {
        let stats = metrics.stats();
        stats.checkpoint_position >= 2_000 && stats.published > stats.checkpoint_position + 100
    })
    .await;
    first.crash().await;
    let crashed = metrics.stats();
    let checkpoint = Checkpoint::load_from(&store, &rare.checkpoint_name, &rare.checkpoint_path)
        .await
        .expect("checkpoint")
        .get("next_position")
        .expect("saved in the store");
    assert!(
        checkpoint < crashed.published,
        "it died in the middle of a batch: {checkpoint} < {}",
        crashed.published
    );

    let second = RelayTask::spawn(&store, &client, relay_options(dir.path()));
    second.caught_up(&store).await;
    let resumed = second.metrics.stats();
    second.stop().await;
    assert!(
        resumed.already_stored >= crashed.published - checkpoint,
        "the second relay skipped what the stream already held: {resumed:?}"
    );

    let jetstream = symbiose_feed::jetstream(client);
    let positions: Vec<u64> = crate::support::stream_messages(&jetstream, STREAM)
        .await
        .iter()
        .map(|(_, headers, _)| position_of(headers))
        .collect();
    let unique: HashSet<u64> = positions.iter().copied().collect();
    assert_eq!(unique.len(), positions.len(), "no event twice in the stream");
    assert_eq!(positions, (0..EVENTS).collect::<Vec<_>>(), "no gap, in log order");
}
