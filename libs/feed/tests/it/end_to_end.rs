//! Events appended to a store come out of NATS as a partner sees them, and a projection runs
//! the same on the local feed and on JetStream.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use symbiose_eventstore::{EventData, EventStore, ExpectedVersion, Position, StreamName};
use symbiose_feed::testing::NatsServer;
use symbiose_feed::{ConsumerOptions, Feed};
use symbiose_proto::common::v1 as common;
use tokio_stream::StreamExt as _;
use uuid::Uuid;

use crate::support::{
    CONTEXT, ConsumerTask, ORGANIZATION_REGISTERED, Recorder, RelayTask, STREAM, SUBJECT, WAIT_MAX,
    append_organizations, decoded_name, legal_name, open_store, position_of, relay_options,
};

const EVENTS: u64 = 120;

/// What a partner checks of a message, knowing only the .proto files and the CloudEvents
/// NATS binding: the subject, the headers, and the body decoded as the type names it.
#[track_caller]
fn check_as_a_partner(subject: &str, headers: &async_nats::HeaderMap, payload: &[u8], index: u64, id: Uuid) {
    let header = |name: &str| headers.get(name).map(|value| value.as_str().to_owned()).unwrap_or_default();
    assert_eq!(subject, SUBJECT);
    assert_eq!(header("ce-specversion"), "1.0");
    assert_eq!(header("ce-id"), id.to_string());
    assert_eq!(header("Nats-Msg-Id"), id.to_string());
    assert_eq!(header("ce-source"), "/symbiose/listings");
    assert_eq!(header("ce-type"), ORGANIZATION_REGISTERED);
    assert!(header("ce-subject").starts_with("organization-"), "{}", header("ce-subject"));
    assert_eq!(header("content-type"), "application/protobuf");
    let time: prost_types::Timestamp = header("ce-time").parse().expect("ce-time is RFC 3339");
    assert!(time.seconds > 1_700_000_000, "ce-time is the event's time: {time}");
    // The type named by ce-type decodes the body.
    assert_eq!(decoded_name(payload), legal_name(index));
    let metadata = base64_decode(&header("ce-eventmetadata"));
    let metadata: common::EventMetadata = prost::Message::decode(metadata.as_slice()).expect("EventMetadata");
    assert_eq!(metadata.request_id, format!("request-{index}"));
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_appended_to_a_store_reach_a_partner_as_cloudevents_decodable_with_the_proto() {
    let Some(nats) = NatsServer::start_or_skip("events_appended_to_a_store_reach_a_partner") else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(&dir.path().join("events"));
    let ids = append_organizations(&store, 0, EVENTS, 10).await;
    // An event of no contract type stays home.
    let note = EventData::new(Uuid::now_v7(), "InternalNote", &b"not for partners"[..]);
    let stream = StreamName::new("note-1").expect("stream name");
    store.append(&stream, ExpectedVersion::NoStream, vec![note]).await.expect("append");

    // A plain NATS subscriber, listening before the relay starts.
    let partner = async_nats::connect(nats.url()).await.expect("connect");
    let mut live = partner.subscribe("symbiose.listings.v1.>").await.expect("subscribe");
    partner.flush().await.expect("flush");

    let client = symbiose_feed::connect(&nats.url(), None, "relay").await.expect("connect");
    let relay = RelayTask::spawn(&store, &client, relay_options(dir.path()));
    relay.caught_up(&store).await;

    for (index, id) in ids.iter().enumerate() {
        let message = tokio::time::timeout(WAIT_MAX, live.next()).await.expect("in time").expect("a message");
        let headers = message.headers.as_ref().expect("headers");
        check_as_a_partner(message.subject.as_str(), headers, &message.payload, index as u64, *id);
    }

    // A durable JetStream consumer of the partner's own, made with the plain client.
    let jetstream = async_nats::jetstream::new(partner.clone());
    let mut stream = jetstream.get_stream(STREAM).await.expect("the relay created the stream");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.config.subjects, vec!["symbiose.listings.v1.>".to_owned()]);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    assert_eq!(info.state.messages, EVENTS, "only the contract events are on NATS");
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("partner".to_owned()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("a consumer");
    let mut messages = consumer.fetch().max_messages(EVENTS as usize).messages().await.expect("fetch");
    let mut index = 0;
    while let Some(message) = tokio::time::timeout(WAIT_MAX, messages.next()).await.expect("in time") {
        let message = message.expect("a message");
        let headers = message.headers.as_ref().expect("headers");
        check_as_a_partner(message.subject.as_str(), headers, &message.payload, index, ids[index as usize]);
        assert_eq!(position_of(headers), index, "in log order");
        message.ack().await.expect("ack");
        index += 1;
    }
    assert_eq!(index, EVENTS);

    let stats = relay.metrics.stats();
    assert_eq!((stats.published, stats.unroutable), (EVENTS, 1));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_runs_the_same_on_the_local_feed_and_on_jetstream_and_resumes_from_its_checkpoint() {
    let Some(nats) = NatsServer::start_or_skip("a_projection_runs_the_same_on_both_feeds") else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(&dir.path().join("events"));
    append_organizations(&store, 0, EVENTS, 7).await;

    // One process: the projection follows the store.
    let local_options = ConsumerOptions::new("catalog-local", dir.path()).expect("options");
    let local = Recorder::new();
    let local_applied = local.applied.clone();
    let feed = Feed::local(
        store.clone(),
        local_options.load_position().expect("checkpoint"),
        Some(CONTEXT),
        &local_options,
    );
    let consumer = ConsumerTask::spawn(feed, local, local_options.clone());
    consumer.done_with(EVENTS).await;
    let stats = consumer.stop().await;
    assert_eq!((stats.processed, stats.position), (EVENTS, EVENTS));

    // One process per service: the same projection follows JetStream.
    let client = symbiose_feed::connect(&nats.url(), None, "test").await.expect("connect");
    let relay = RelayTask::spawn(&store, &client, relay_options(dir.path()));
    let remote_options = ConsumerOptions::new("catalog-remote", dir.path()).expect("options");
    let remote = Recorder::new();
    let remote_applied = remote.applied.clone();
    let feed = Feed::jetstream(symbiose_feed::jetstream(client.clone()), CONTEXT, &remote_options)
        .await
        .expect("feed");
    let consumer = ConsumerTask::spawn(feed, remote, remote_options.clone());
    consumer.done_with(EVENTS).await;
    consumer.stop().await;
    assert_eq!(*local_applied.lock().expect("lock"), *remote_applied.lock().expect("lock"));
    assert_eq!(local_applied.lock().expect("lock").len(), EVENTS as usize);

    // Both resume after what they applied: only the new events come.
    append_organizations(&store, EVENTS, 5, 5).await;
    for (options, applied) in [(local_options, local_applied), (remote_options, remote_applied)] {
        // The local consumer keeps its checkpoint in the store it reads; the JetStream one in a file.
        let from = if options.name.ends_with("local") {
            options.load_position_from(&store).await.expect("checkpoint")
        } else {
            options.load_position().expect("checkpoint")
        };
        assert_eq!(from.as_u64(), EVENTS, "{} saved its position when it stopped", options.name);
        let feed = if options.name.ends_with("local") {
            Feed::local(store.clone(), from, Some(CONTEXT), &options)
        } else {
            Feed::jetstream(symbiose_feed::jetstream(client.clone()), CONTEXT, &options).await.expect("feed")
        };
        let recorder = Recorder { applied: applied.clone(), poison: None };
        let consumer = ConsumerTask::spawn(feed, recorder, options.clone());
        consumer.done_with(5).await;
        let stats = consumer.stop().await;
        assert_eq!(
            (stats.processed, stats.duplicates, stats.position),
            (5, 0, EVENTS + 5),
            "{}",
            options.name
        );
        let applied = applied.lock().expect("lock");
        assert_eq!(applied.len() as u64, EVENTS + 5, "{}", options.name);
        assert_eq!(applied.last().map(|(_, _, name)| name.clone()), Some(legal_name(EVENTS + 4)));
    }
    relay.stop().await;
}

/// Two services alone: the listings service relays its events, matching imports them into its
/// own store through NATS (stopping, crashing with a batch unacknowledged, and starting again
/// in between) and relays its own context only, so the copies never go back on NATS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_alone_imports_another_contexts_events_once_and_never_relays_them() {
    let Some(nats) = NatsServer::start_or_skip("a_service_alone_imports_another_contexts_events") else {
        return;
    };
    let dirs = (tempfile::tempdir().expect("a directory"), tempfile::tempdir().expect("a directory"));
    let listings = open_store(&dirs.0.path().join("events"));
    let matching = open_store(&dirs.1.path().join("events"));
    let client = symbiose_feed::connect(&nats.url(), None, "services").await.expect("connect");
    let mut ids = append_organizations(&listings, 0, EVENTS, 3).await;
    let listings_relay =
        RelayTask::spawn(&listings, &client, relay_options(dirs.0.path()).only_contexts(&[CONTEXT]));
    let jetstream = symbiose_feed::jetstream(client.clone());
    let imports = symbiose_feed::start_imports(jetstream.clone(), matching.clone(), "matching", &[CONTEXT]);
    crate::support::eventually("the first events imported", || matching.head().as_u64() == EVENTS).await;
    imports.stop().await;

    // More events while matching's import is stopped: it resumes where its consumer stood.
    ids.extend(append_organizations(&listings, EVENTS, EVENTS, 3).await);
    let imports = symbiose_feed::start_imports(jetstream.clone(), matching.clone(), "matching", &[CONTEXT]);
    let counts = |imports: &symbiose_feed::RunningImports| {
        let (_, counters) = imports.counters().next().expect("one import");
        (counters.imported.load(Ordering::Relaxed), counters.already_held.load(Ordering::Relaxed))
    };
    // The counters move once a batch is durable and acknowledged, a moment after the store's head.
    crate::support::eventually("every event imported", || counts(&imports).0 == EVENTS).await;
    assert_eq!(matching.head().as_u64(), 2 * EVENTS);
    tokio::time::timeout(WAIT_MAX, imports.caught_up()).await.expect("the import says it caught up");
    assert_eq!(counts(&imports), (EVENTS, 0), "resumed after the last acknowledged, not from the start");
    imports.stop().await;

    // An import that crashed with a batch taken and not acknowledged: the next one takes the
    // stream again from the acknowledgement floor, at once and in order, not after those
    // messages' acknowledgement wait and behind later ones.
    ids.extend(append_organizations(&listings, 2 * EVENTS, EVENTS, 3).await);
    listings_relay.caught_up(&listings).await;
    let consumer = import_consumer(&jetstream).await;
    let mut taken = consumer.fetch().max_messages(10).messages().await.expect("fetch");
    for _ in 0..10 {
        tokio::time::timeout(WAIT_MAX, taken.next()).await.expect("in time").expect("a message").expect("ok");
    }
    let imports = symbiose_feed::start_imports(jetstream.clone(), matching.clone(), "matching", &[CONTEXT]);
    crate::support::eventually("the rest imported", || counts(&imports).0 == EVENTS).await;
    assert_eq!(matching.head().as_u64(), 3 * EVENTS);
    assert_eq!(counts(&imports), (EVENTS, 0), "each event once");
    let (_, counters) = imports.counters().next().expect("one import");
    assert_eq!(counters.restarts.load(Ordering::Relaxed), 1, "once from the floor, at start");
    let copies = matching.read_all(Position::START, 3 * EVENTS as usize + 1).await.expect("the copies");
    let originals = listings.read_all(Position::START, 3 * EVENTS as usize + 1).await.expect("the originals");
    assert_eq!(copies.len(), originals.len(), "each event once");
    for (copy, original) in copies.iter().zip(&originals) {
        assert_eq!(
            (copy.id, &copy.stream, copy.version, &copy.payload, &copy.metadata),
            (original.id, &original.stream, original.version, &original.payload, &original.metadata),
            "the copy of the event at {}",
            original.position
        );
    }
    assert_eq!(copies.iter().map(|copy| copy.id).collect::<Vec<_>>(), ids);

    // Matching's relay publishes matching's events only: the copies stay home.
    let matching_relay =
        RelayTask::spawn(&matching, &client, relay_options(dirs.1.path()).only_contexts(&["matching"]));
    matching_relay.caught_up(&matching).await;
    let stats = matching_relay.metrics.stats();
    assert_eq!((stats.published, stats.foreign), (0, 3 * EVENTS));
    let mut stream = jetstream.get_stream(STREAM).await.expect("the listings' stream");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.state.messages, 3 * EVENTS, "the listings' events, once each");
    imports.stop().await;

    // A process killed while its pull request waited on the consumer: JetStream would hand the
    // next messages to that request, into an inbox nobody reads, until it expires (a minute
    // here) and their acknowledgement wait runs out. The next start takes the stream again from
    // the floor instead, so the new events come at once.
    let ghost = symbiose_feed::connect(&nats.url(), None, "a killed process").await.expect("connect");
    let inbox = ghost.new_inbox();
    let _unread = ghost.subscribe(inbox.clone()).await.expect("subscribe");
    let next =
        format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{}", symbiose_feed::importer_name("matching", CONTEXT));
    ghost
        .publish_with_reply(next, inbox, r#"{"batch":256,"expires":60000000000}"#.into())
        .await
        .expect("a pull request");
    ghost.flush().await.expect("flush");
    let info = consumer_info(&jetstream).await;
    assert!(info.num_waiting >= 1, "the pull request waits on the consumer: {info:?}");
    let imports = symbiose_feed::start_imports(jetstream.clone(), matching.clone(), "matching", &[CONTEXT]);
    tokio::time::timeout(WAIT_MAX, imports.caught_up()).await.expect("nothing to import yet");
    ids.extend(append_organizations(&listings, 3 * EVENTS, EVENTS, 3).await);
    listings_relay.caught_up(&listings).await;
    // Well within the consumer's acknowledgement wait (10 s) and the request's minute.
    tokio::time::timeout(Duration::from_secs(5), async {
        while matching.head().as_u64() < 4 * EVENTS {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the new events are imported at once, not after the stale request expires");
    let (_, counters) = imports.counters().next().expect("one import");
    assert_eq!(counters.restarts.load(Ordering::Relaxed), 1, "once from the floor, at start");
    drop(ghost);

    matching_relay.stop().await;
    imports.stop().await;
    listings_relay.stop().await;
}

/// Matching's durable consumer of the listings' stream, the one its import pulls from.
async fn import_consumer(
    jetstream: &async_nats::jetstream::Context,
) -> async_nats::jetstream::consumer::Consumer<pull::Config> {
    jetstream
        .get_stream(STREAM)
        .await
        .expect("the stream")
        .get_consumer(&symbiose_feed::importer_name("matching", CONTEXT))
        .await
        .expect("the import's consumer")
}

async fn consumer_info(jetstream: &async_nats::jetstream::Context) -> async_nats::jetstream::consumer::Info {
    import_consumer(jetstream).await.info().await.expect("the consumer's info").clone()
}

/// The relay makes its streams with the replicas the NATS server allows (one on a lone server,
/// as here), and a stream someone made before it with other settings is reported, setting by
/// setting, and used as it is: never silently, never changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_makes_its_streams_with_their_replicas_and_reports_one_made_otherwise() {
    let test = "the_relay_makes_its_streams_with_their_replicas_and_reports_one_made_otherwise";
    let Some(nats) = NatsServer::start_or_skip(test) else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(&dir.path().join("events"));
    append_organizations(&store, 0, 10, 10).await;
    let client = symbiose_feed::connect(&nats.url(), None, "relay").await.expect("connect");
    let jetstream = async_nats::jetstream::new(client.clone());

    // A lone server: one replica, made by the relay with its settings.
    let relay = RelayTask::spawn(&store, &client, relay_options(dir.path()));
    relay.caught_up(&store).await;
    assert_eq!(relay.metrics.stats().streams_with_other_settings, 0);
    relay.stop().await;
    let info = jetstream.get_stream(STREAM).await.expect("the stream").cached_info().clone();
    assert!(
        symbiose_feed::route::stream_differences(&info.config, &symbiose_feed::route::stream_config(CONTEXT))
            .is_empty()
    );
    assert_eq!(info.config.num_replicas.max(1), 1);
    // Started again on its own stream, the relay finds nothing to report.
    let relay = RelayTask::spawn(&store, &client, relay_options(dir.path()));
    append_organizations(&store, 100, 1, 1).await;
    relay.caught_up(&store).await;
    assert_eq!(relay.metrics.stats().streams_with_other_settings, 0);
    relay.stop().await;
    assert_eq!(info.config.duplicate_window, symbiose_feed::DUPLICATE_WINDOW);
    assert_eq!(info.state.messages, 10);

    // An operator made the stream again, keeping a day of events: the relay says so and
    // relays into it, leaving its settings as they are.
    jetstream.delete_stream(STREAM).await.expect("delete the stream");
    let day = std::time::Duration::from_secs(86_400);
    let made = async_nats::jetstream::stream::Config {
        max_age: day,
        ..symbiose_feed::route::stream_config(CONTEXT)
    };
    jetstream.create_stream(made).await.expect("the operator's stream");
    std::fs::remove_file(dir.path().join("relay.checkpoint")).ok();
    let relay = RelayTask::spawn(&store, &client, relay_options(dir.path()));
    append_organizations(&store, 10, 5, 5).await;
    crate::support::eventually("the relay to report the stream's settings", || {
        relay.metrics.stats().streams_with_other_settings >= 1
    })
    .await;
    relay.caught_up(&store).await;
    relay.stop().await;
    let info = jetstream.get_stream(STREAM).await.expect("the stream").cached_info().clone();
    assert_eq!(info.config.max_age, day, "the operator's setting is kept");
    assert!(info.state.messages >= 5, "the relay relayed into it: {} messages", info.state.messages);
    let differences =
        symbiose_feed::route::stream_differences(&info.config, &symbiose_feed::route::stream_config(CONTEXT));
    assert_eq!(differences, vec!["max_age 86400s (the relay's: 0ns)".to_owned()]);
}

/// A log restored from an older backup is behind its stream: the relay finds the stream's last
/// event is not its log's, says so, and relays nothing into that stream (its new events would
/// be taken for ones the stream has, and skipped) until the stream is removed; then it
/// publishes its log again from the first event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_log_is_behind_its_stream_relays_nothing_until_the_stream_is_removed() {
    let test = "a_relay_whose_log_is_behind_its_stream_relays_nothing_until_the_stream_is_removed";
    let Some(nats) = NatsServer::start_or_skip(test) else { return };
    let client = symbiose_feed::connect(&nats.url(), None, "relay").await.expect("connect");
    let jetstream = async_nats::jetstream::new(client.clone());
    let first = tempfile::tempdir().expect("temporary directory");
    let store = open_store(&first.path().join("events"));
    append_organizations(&store, 0, 10, 10).await;
    let relay = RelayTask::spawn(&store, &client, relay_options(first.path()));
    relay.caught_up(&store).await;
    relay.stop().await;

    // The "restored" log: three events where the stream has ten.
    let second = tempfile::tempdir().expect("temporary directory");
    let restored = open_store(&second.path().join("events"));
    append_organizations(&restored, 100, 3, 3).await;
    let relay = RelayTask::spawn(&restored, &client, relay_options(second.path()));
    crate::support::eventually("the relay to refuse the stream", || relay.metrics.stats().failures >= 1)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let messages = jetstream.get_stream(STREAM).await.expect("the stream").cached_info().state.messages;
    assert_eq!(messages, 10, "nothing relayed into a stream ahead of the log");
    assert_eq!(relay.metrics.stats().published, 0);

    // The operator removes the stream: the relay publishes the restored log from its start.
    jetstream.delete_stream(STREAM).await.expect("remove the stream");
    relay.caught_up(&restored).await;
    relay.stop().await;
    let messages = jetstream.get_stream(STREAM).await.expect("the stream").cached_info().state.messages;
    assert_eq!(messages, 3);
}
