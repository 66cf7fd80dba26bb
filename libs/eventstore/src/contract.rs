//! The contract every backend passes, written once. A backend's tests call [`run_all`] with a
//! function that opens a fresh, empty store; each check gets its own.
//!
//! The checks panic with a message saying what broke, as tests do. They rely on positions only
//! being ordered (EventStoreDB's are not consecutive); [`run_gapless`] adds the checks of the
//! backends whose positions number the events 0, 1, 2... without gaps.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;

use bytes::Bytes;
use uuid::Uuid;

use crate::{
    CHECKPOINT_BYTES_MAX, Direction, EventData, EventStore, ExpectedVersion, Position, RecordedEvent,
    STREAM_END, Snapshot, StoreError, StreamName,
};

/// Runs every check, each on a new store from `new_store`.
pub async fn run_all<S, F, Fut>(new_store: F)
where
    S: EventStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    appends_and_reads_a_stream(&new_store().await).await;
    refuses_a_wrong_expected_version(&new_store().await).await;
    repeats_an_append_without_writing_it_twice(&new_store().await).await;
    writes_an_invalid_append_not_at_all(&new_store().await).await;
    orders_the_log(&new_store().await).await;
    lets_one_of_many_concurrent_creators_win(&new_store().await).await;
    keeps_every_concurrent_append(&new_store().await).await;
    subscribes_without_gap_or_duplicate(&new_store().await).await;
    reads_absent_and_deleted_streams(&new_store().await).await;
    appends_many_in_order_each_on_its_own(&new_store().await).await;
    keeps_checkpoints_beside_the_log(&new_store().await).await;
    keeps_snapshots_or_says_it_does_not(&new_store().await).await;
}

/// The checks of a backend whose positions are gapless (the embedded and PostgreSQL stores),
/// each on a new store from `new_store`; run them besides [`run_all`].
pub async fn run_gapless<S, F, Fut>(new_store: F)
where
    S: EventStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    numbers_the_log_without_gaps(&new_store().await).await;
    refuses_an_event_id_used_in_another_stream(&new_store().await).await;
}

/// The whole log, read a page at a time.
async fn read_whole_log<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    let mut log: Vec<RecordedEvent> = Vec::new();
    loop {
        let from = log.last().map_or(Position::START, |event| event.position.after());
        let page = store.read_all(from, 1000).await.expect("read all");
        if page.is_empty() {
            return log;
        }
        log.extend(page);
    }
}

fn assert_ordered(events: &[RecordedEvent], what: &str) {
    for pair in events.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "{what}: positions increase: {:?}",
            (pair[0].position, pair[1].position)
        );
    }
}

fn stream(name: &str) -> StreamName {
    StreamName::new(name).expect("a valid stream name")
}

fn events(count: usize, tag: &str) -> Vec<EventData> {
    (0..count)
        .map(|index| {
            EventData::new(Uuid::now_v7(), "ThingHappened", Bytes::from(format!("{tag}-{index}")))
                .with_metadata(Bytes::from_static(b"{\"causation\":\"test\"}"))
        })
        .collect()
}

pub async fn appends_and_reads_a_stream<S: EventStore>(store: &S) {
    let listing = stream("listing-1");
    let written = events(3, "a");
    let result = store.append(&listing, ExpectedVersion::NoStream, written.clone()).await.expect("append");
    assert_eq!(result.next_expected_version, 2);
    assert!(result.first_position < result.last_position, "{result:?}");
    assert_eq!(store.head(), result.last_position.after());

    let read = store.read_stream(&listing, 0, Direction::Forward, 100).await.expect("read forward");
    assert_eq!(read.len(), 3);
    for (version, (event, original)) in read.iter().zip(&written).enumerate() {
        assert_eq!(event.id, original.id);
        assert_eq!(event.event_type, original.event_type);
        assert_eq!(event.payload, original.payload);
        assert_eq!(event.metadata, original.metadata);
        assert_eq!(event.stream, listing);
        assert_eq!(event.version, version as u64);
        assert!(event.timestamp_ms > 1_600_000_000_000, "a commit time in milliseconds");
    }
    assert_ordered(&read, "a stream");
    assert_eq!(read[0].position, result.first_position);
    assert_eq!(read[2].position, result.last_position);
    let backwards =
        store.read_stream(&listing, STREAM_END, Direction::Backward, 2).await.expect("read backward");
    assert_eq!(backwards.iter().map(|event| event.version).collect::<Vec<_>>(), [2, 1], "latest first");
    let middle = store.read_stream(&listing, 1, Direction::Forward, 1).await.expect("read one");
    assert_eq!(middle[0].version, 1);
    let past_end = store.read_stream(&listing, 3, Direction::Forward, 10).await.expect("read past the end");
    assert!(past_end.is_empty());
    let info = store.stream_info(&listing).await.expect("info").expect("the stream exists");
    assert_eq!((info.last_version, info.deleted), (2, false));
}

pub async fn refuses_a_wrong_expected_version<S: EventStore>(store: &S) {
    let deal = stream("deal-1");
    let absent = store.append(&deal, ExpectedVersion::Exact(0), events(1, "x")).await;
    assert!(
        matches!(absent, Err(StoreError::WrongExpectedVersion { actual: None, .. })),
        "exact version on an absent stream: {absent:?}"
    );
    store.append(&deal, ExpectedVersion::NoStream, events(2, "a")).await.expect("create");
    let again = store.append(&deal, ExpectedVersion::NoStream, events(1, "b")).await;
    assert!(
        matches!(again, Err(StoreError::WrongExpectedVersion { actual: Some(1), .. })),
        "no stream on an existing stream: {again:?}"
    );
    let stale = store.append(&deal, ExpectedVersion::Exact(0), events(1, "c")).await;
    assert!(matches!(stale, Err(StoreError::WrongExpectedVersion { .. })), "stale version: {stale:?}");
    let next = store.append(&deal, ExpectedVersion::Exact(1), events(1, "d")).await.expect("right version");
    assert_eq!(next.next_expected_version, 2);
    let any = store.append(&deal, ExpectedVersion::Any, events(1, "e")).await.expect("any version");
    assert_eq!(any.next_expected_version, 3);
    let read = store.read_stream(&deal, 0, Direction::Forward, 100).await.expect("read");
    assert_eq!(read.len(), 4, "refused appends wrote nothing");
}

pub async fn repeats_an_append_without_writing_it_twice<S: EventStore>(store: &S) {
    let shipment = stream("shipment-1");
    let batch = events(2, "a");
    let first = store.append(&shipment, ExpectedVersion::NoStream, batch.clone()).await.expect("first");
    let head = store.head();
    let repeat = store.append(&shipment, ExpectedVersion::NoStream, batch.clone()).await.expect("repeat");
    assert_eq!(repeat, first, "a repeat returns the original result");
    let repeat_any =
        store.append(&shipment, ExpectedVersion::Any, batch.clone()).await.expect("repeat with any");
    assert_eq!(repeat_any, first);
    assert_eq!(store.head(), head, "a repeat writes nothing");

    store.append(&shipment, ExpectedVersion::Exact(1), events(1, "b")).await.expect("later append");
    let late_repeat =
        store.append(&shipment, ExpectedVersion::NoStream, batch.clone()).await.expect("late repeat");
    assert_eq!(late_repeat, first, "a repeat after later appends still returns the original result");

    let mut other_ids = batch.clone();
    other_ids[1].id = Uuid::now_v7();
    let clash = store.append(&shipment, ExpectedVersion::Any, other_ids).await;
    assert!(matches!(clash, Err(StoreError::DuplicateEvent { .. })), "same first id, other batch: {clash:?}");
    let all = store.read_all(Position::START, 100).await.expect("read all");
    assert_eq!(all.len(), 3);
    let ids: HashSet<Uuid> = all.iter().map(|event| event.id).collect();
    assert_eq!(ids.len(), 3, "no event twice");
}

/// Event ids are unique across the whole log, not only within a stream (EventStoreDB keeps
/// them unique per stream only, so this check is not part of [`run_all`]).
pub async fn refuses_an_event_id_used_in_another_stream<S: EventStore>(store: &S) {
    let batch = events(2, "a");
    store.append(&stream("shipment-1"), ExpectedVersion::NoStream, batch.clone()).await.expect("first");
    let elsewhere = store.append(&stream("shipment-2"), ExpectedVersion::Any, batch).await;
    assert!(
        matches!(elsewhere, Err(StoreError::DuplicateEvent { .. })),
        "same ids, other stream: {elsewhere:?}"
    );
    assert!(store.stream_info(&stream("shipment-2")).await.expect("info").is_none(), "nothing written");
    assert_eq!(store.read_all(Position::START, 100).await.expect("read all").len(), 2);
}

pub async fn writes_an_invalid_append_not_at_all<S: EventStore>(store: &S) {
    let listing = stream("listing-2");
    let mut batch = events(3, "a");
    batch[2].event_type = String::new();
    let refused = store.append(&listing, ExpectedVersion::Any, batch).await;
    assert!(matches!(refused, Err(StoreError::InvalidInput(_))), "{refused:?}");
    let empty = store.append(&listing, ExpectedVersion::Any, Vec::new()).await;
    assert!(matches!(empty, Err(StoreError::InvalidInput(_))), "{empty:?}");
    let mut oversized = events(1, "big");
    oversized[0].payload = Bytes::from(vec![0u8; crate::EVENT_PAYLOAD_BYTES_MAX + 1]);
    let oversized = store.append(&listing, ExpectedVersion::Any, oversized).await;
    assert!(matches!(oversized, Err(StoreError::InvalidInput(_))), "{oversized:?}");
    assert_eq!(store.head(), Position::START, "nothing of a refused append is written");
    assert!(store.stream_info(&listing).await.expect("info").is_none());
}

async fn append_rounds<S: EventStore>(store: &S) {
    let names = ["listing-a", "deal-b", "listing-c"];
    for round in 0..5 {
        for name in names {
            store
                .append(&stream(name), ExpectedVersion::Any, events(round % 3 + 1, name))
                .await
                .expect("append");
        }
    }
}

pub async fn orders_the_log<S: EventStore>(store: &S) {
    append_rounds(store).await;
    let head = store.head();
    let all = store.read_all(Position::START, 10_000).await.expect("read all");
    assert_eq!(all.len(), 27, "3 streams of 1 + 2 + 3 + 1 + 2 events");
    assert_ordered(&all, "the log");
    assert_eq!(all.last().map(|event| event.position.after()), Some(head), "the head follows the last event");
    let mut versions: BTreeMap<StreamName, u64> = BTreeMap::new();
    for event in &all {
        let next = versions.entry(event.stream.clone()).or_default();
        assert_eq!(event.version, *next, "stream versions follow the log order");
        *next += 1;
    }
    let tail = store.read_all(all[25].position, 10).await.expect("read the tail");
    assert_eq!(tail, all[25..], "from an event's position, that event on");
    let after = store.read_all(all[24].position.after(), 10).await.expect("read after an event");
    assert_eq!(after, all[25..], "after an event, the next one on");
    assert!(store.read_all(head, 10).await.expect("read past the head").is_empty());
    let page = store.read_all(all[1].position, 4).await.expect("a page");
    assert_eq!(page, all[1..5], "max count respected");
}

pub async fn numbers_the_log_without_gaps<S: EventStore>(store: &S) {
    append_rounds(store).await;
    let all = store.read_all(Position::START, 10_000).await.expect("read all");
    assert_eq!(all.len() as u64, store.head().as_u64());
    for (expected, event) in all.iter().enumerate() {
        assert_eq!(event.position.as_u64(), expected as u64, "positions without gaps, in order");
    }
    assert_eq!(store.read_all(Position::from_u64(1), 4).await.expect("a page").len(), 4);
}

pub async fn lets_one_of_many_concurrent_creators_win<S: EventStore>(store: &S) {
    let contested = stream("reservation-1");
    let mut tasks = Vec::new();
    for writer in 0..32 {
        let store = store.clone();
        let contested = contested.clone();
        tasks.push(tokio::spawn(async move {
            store.append(&contested, ExpectedVersion::NoStream, events(1, &format!("w{writer}"))).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(StoreError::WrongExpectedVersion { .. }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one creator wins");
    assert_eq!(store.read_stream(&contested, 0, Direction::Forward, 100).await.expect("read").len(), 1);
}

pub async fn keeps_every_concurrent_append<S: EventStore>(store: &S) {
    const WRITERS: usize = 16;
    const APPENDS: usize = 40;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let name = stream(&format!("writer-{writer}"));
            let mut expected = ExpectedVersion::NoStream;
            let mut ids = Vec::new();
            for append in 0..APPENDS {
                let batch = events(append % 2 + 1, &format!("{writer}-{append}"));
                ids.extend(batch.iter().map(|event| event.id));
                let result = store.append(&name, expected, batch).await.expect("append");
                expected = ExpectedVersion::Exact(result.next_expected_version);
            }
            (name, ids)
        }));
    }
    let mut written = Vec::new();
    for task in tasks {
        written.push(task.await.expect("task"));
    }
    let total: usize = written.iter().map(|(_, ids)| ids.len()).sum();
    let all = store.read_all(Position::START, 10_000).await.expect("read all");
    assert_eq!(all.len(), total, "every acknowledged event is in the log");
    assert_ordered(&all, "the log");
    for (name, ids) in written {
        let read = store.read_stream(&name, 0, Direction::Forward, 10_000).await.expect("read");
        assert_eq!(read.iter().map(|event| event.id).collect::<Vec<_>>(), ids, "{name}: in append order");
    }
}

pub async fn subscribes_without_gap_or_duplicate<S: EventStore>(store: &S) {
    const BEFORE: usize = 700;
    const DURING: usize = 600;
    for index in 0..BEFORE / 100 {
        store
            .append(&stream(&format!("early-{index}")), ExpectedVersion::Any, events(100, "early"))
            .await
            .expect("append");
    }
    let before = read_whole_log(store).await;
    assert_eq!(before.len(), BEFORE);
    let mut from_start = store.subscribe_all(Position::START);
    let mut from_middle = store.subscribe_all(before[350].position);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for index in 0..DURING {
                store
                    .append(&stream(&format!("live-{}", index % 7)), ExpectedVersion::Any, events(1, "live"))
                    .await
                    .expect("append");
                if index % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let wait = std::time::Duration::from_secs(30);
    let mut seen_from_start = Vec::with_capacity(BEFORE + DURING);
    for _ in 0..BEFORE + DURING {
        let event =
            tokio::time::timeout(wait, from_start.next()).await.expect("an event in time").expect("next");
        seen_from_start.push(event);
    }
    let mut seen_from_middle = Vec::with_capacity(BEFORE + DURING - 350);
    for _ in 350..BEFORE + DURING {
        let event =
            tokio::time::timeout(wait, from_middle.next()).await.expect("an event in time").expect("next");
        seen_from_middle.push(event);
    }
    writer.await.expect("writer");
    let log = read_whole_log(store).await;
    assert_eq!(seen_from_start, log, "from the start: every event once, in the log's order");
    assert_eq!(seen_from_middle, log[350..], "from the middle: every event once, in the log's order");
    assert_eq!(from_start.position(), store.head());
    let nothing_more = tokio::time::timeout(std::time::Duration::from_millis(50), from_start.next()).await;
    assert!(nothing_more.is_err(), "nothing beyond the head");
}

pub async fn reads_absent_and_deleted_streams<S: EventStore>(store: &S) {
    let absent = stream("listing-absent");
    let read = store.read_stream(&absent, 0, Direction::Forward, 10).await;
    assert!(matches!(read, Err(StoreError::StreamNotFound(_))), "{read:?}");
    assert!(store.stream_info(&absent).await.expect("info").is_none());
    let delete_absent = store.delete_stream(&absent, ExpectedVersion::Any).await;
    assert!(matches!(delete_absent, Err(StoreError::StreamNotFound(_))), "{delete_absent:?}");

    let doomed = stream("listing-doomed");
    store.append(&doomed, ExpectedVersion::NoStream, events(2, "d")).await.expect("append");
    let wrong = store.delete_stream(&doomed, ExpectedVersion::Exact(0)).await;
    assert!(matches!(wrong, Err(StoreError::WrongExpectedVersion { .. })), "{wrong:?}");
    store.delete_stream(&doomed, ExpectedVersion::Exact(1)).await.expect("delete");
    let read = store.read_stream(&doomed, 0, Direction::Forward, 10).await;
    assert!(matches!(read, Err(StoreError::StreamDeleted(_))), "{read:?}");
    let info = store.stream_info(&doomed).await.expect("info").expect("still known");
    assert!(info.deleted);
    let append = store.append(&doomed, ExpectedVersion::Any, events(1, "late")).await;
    assert!(matches!(append, Err(StoreError::StreamDeleted(_))), "{append:?}");
    let all = store.read_all(Position::START, 100).await.expect("read all");
    assert_eq!(all.len(), 2, "a soft delete keeps the events in the log");
    store
        .append(&stream("listing-after"), ExpectedVersion::NoStream, events(1, "after"))
        .await
        .expect("append after");
    assert_eq!(
        store.read_all(Position::START, 100).await.expect("read all").len(),
        3,
        "the log goes on after a delete"
    );
}

pub async fn appends_many_in_order_each_on_its_own<S: EventStore>(store: &S) {
    let (first, second) = (stream("deal-1"), stream("deal-2"));
    let append = |stream: &StreamName, expected, count, tag| crate::Append {
        stream: stream.clone(),
        expected,
        events: events(count, tag),
    };
    let answers = store
        .append_many(vec![
            append(&first, ExpectedVersion::NoStream, 2, "a"),
            append(&second, ExpectedVersion::NoStream, 1, "b"),
            // Refused (deal-1 is at version 1), and leaves the others.
            append(&first, ExpectedVersion::NoStream, 1, "c"),
            append(&first, ExpectedVersion::Exact(1), 1, "d"),
        ])
        .await;
    assert_eq!(answers.len(), 4);
    let written: Vec<_> = answers.iter().filter_map(|answer| answer.as_ref().ok()).collect();
    assert_eq!(written.len(), 3, "{answers:?}");
    assert!(
        written.windows(2).all(|pair| pair[0].last_position < pair[1].first_position),
        "in their order: {answers:?}"
    );
    assert!(matches!(answers[2], Err(StoreError::WrongExpectedVersion { .. })), "{:?}", answers[2]);
    let log: Vec<String> = store
        .read_all(Position::START, 10)
        .await
        .expect("read")
        .iter()
        .map(|event| String::from_utf8_lossy(&event.payload).into_owned())
        .collect();
    assert_eq!(log, ["a-0", "a-1", "b-0", "d-0"]);
    let too_many = (0..=crate::APPEND_MANY_MAX)
        .map(|index| append(&stream(&format!("t-{index}")), ExpectedVersion::Any, 1, "e"));
    let answers = store.append_many(too_many.collect()).await;
    assert!(answers[..crate::APPEND_MANY_MAX].iter().all(Result::is_ok));
    assert!(matches!(answers[crate::APPEND_MANY_MAX], Err(StoreError::InvalidInput(_))));
}

pub async fn keeps_checkpoints_beside_the_log<S: EventStore>(store: &S) {
    assert_eq!(store.load_checkpoint("relay.listings").await.expect("load"), None, "none saved yet");
    store.save_checkpoint("relay.listings", Bytes::from_static(b"next_position=12")).await.expect("save");
    store.save_checkpoint("consumer-settler", Bytes::from_static(b"7")).await.expect("save another");
    store.save_checkpoint("relay.listings", Bytes::from_static(b"next_position=40")).await.expect("replace");
    assert_eq!(
        store.load_checkpoint("relay.listings").await.expect("load").as_deref(),
        Some(&b"next_position=40"[..]),
        "the last value saved"
    );
    assert_eq!(store.load_checkpoint("consumer-settler").await.expect("load").as_deref(), Some(&b"7"[..]));
    for bad in ["", "../escape", "a b", "slash/name", &"x".repeat(crate::CHECKPOINT_NAME_BYTES_MAX + 1)] {
        let refused = store.save_checkpoint(bad, Bytes::from_static(b"1")).await;
        assert!(matches!(refused, Err(StoreError::InvalidInput(_))), "name {bad:?}: {refused:?}");
    }
    let oversized = store.save_checkpoint("big", Bytes::from(vec![b'1'; CHECKPOINT_BYTES_MAX + 1])).await;
    assert!(matches!(oversized, Err(StoreError::InvalidInput(_))), "{oversized:?}");
    assert_eq!(store.head(), Position::START, "checkpoints are not events");
    assert!(store.read_all(Position::START, 10).await.expect("read all").is_empty(), "nor in the log");
}

/// A store that keeps snapshots gives back the last one saved under a name, whole, with its
/// position; one that keeps none gives none back. Either way names are checked, and a snapshot
/// is neither an event nor a checkpoint.
pub async fn keeps_snapshots_or_says_it_does_not<S: EventStore>(store: &S) {
    assert_eq!(store.load_snapshot("listings.market").await.expect("load"), None, "none saved yet");
    let body: Vec<u8> = (0..200_000_u32).map(|index| (index % 251) as u8).collect();
    let first = Snapshot { position: Position::from_u64(41), body: Bytes::from(body) };
    let last = Snapshot { position: Position::from_u64(7), body: Bytes::from_static(b"an older position") };
    store.save_snapshot("listings.market", first.clone()).await.expect("save");
    store.save_snapshot("matching.view", first.clone()).await.expect("save another");
    store.save_snapshot("listings.market", last.clone()).await.expect("replace");
    let kept = |snapshot: Snapshot| store.keeps_snapshots().then_some(snapshot);
    assert_eq!(
        store.load_snapshot("listings.market").await.expect("load"),
        kept(last),
        "the last saved, whatever its position"
    );
    assert_eq!(store.load_snapshot("matching.view").await.expect("load"), kept(first));
    for bad in ["", "../escape", "a b", "slash/name"] {
        let refused =
            store.save_snapshot(bad, Snapshot { position: Position::START, body: Bytes::new() }).await;
        assert!(matches!(refused, Err(StoreError::InvalidInput(_))), "name {bad:?}: {refused:?}");
        let refused = store.load_snapshot(bad).await;
        assert!(matches!(refused, Err(StoreError::InvalidInput(_))), "name {bad:?}: {refused:?}");
    }
    assert_eq!(store.load_checkpoint("listings.market").await.expect("load"), None, "not a checkpoint");
    assert_eq!(store.head(), Position::START, "snapshots are not events");
}
