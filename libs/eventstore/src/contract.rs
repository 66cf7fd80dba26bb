//! The contract every backend passes, written once. A backend's tests call [`run_all`] with a
//! function that opens a fresh, empty store; each check gets its own.
//!
//! The checks panic with a message saying what broke, as tests do.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;

use bytes::Bytes;
use uuid::Uuid;

use crate::{Direction, EventData, EventStore, ExpectedVersion, STREAM_END, StoreError, StreamName};

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
    orders_the_log_without_gaps(&new_store().await).await;
    lets_one_of_many_concurrent_creators_win(&new_store().await).await;
    keeps_every_concurrent_append(&new_store().await).await;
    subscribes_without_gap_or_duplicate(&new_store().await).await;
    reads_absent_and_deleted_streams(&new_store().await).await;
    appends_many_in_order_each_on_its_own(&new_store().await).await;
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
    assert_eq!(result.last_position - result.first_position, 2);
    assert_eq!(store.head(), result.last_position + 1);

    let read = store.read_stream(&listing, 0, Direction::Forward, 100).await.expect("read forward");
    assert_eq!(read.len(), 3);
    for (version, (event, original)) in read.iter().zip(&written).enumerate() {
        assert_eq!(event.id, original.id);
        assert_eq!(event.event_type, original.event_type);
        assert_eq!(event.payload, original.payload);
        assert_eq!(event.metadata, original.metadata);
        assert_eq!(event.stream, listing);
        assert_eq!(event.version, version as u64);
        assert_eq!(event.position, result.first_position + version as u64);
        assert!(event.timestamp_ms > 1_600_000_000_000, "a commit time in milliseconds");
    }
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
    let elsewhere = store.append(&stream("shipment-2"), ExpectedVersion::Any, batch).await;
    assert!(
        matches!(elsewhere, Err(StoreError::DuplicateEvent { .. })),
        "same ids, other stream: {elsewhere:?}"
    );
    let all = store.read_all(0, 100).await.expect("read all");
    assert_eq!(all.len(), 3);
    let ids: HashSet<Uuid> = all.iter().map(|event| event.id).collect();
    assert_eq!(ids.len(), 3, "no event twice");
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
    assert_eq!(store.head(), 0, "nothing of a refused append is written");
    assert!(store.stream_info(&listing).await.expect("info").is_none());
}

pub async fn orders_the_log_without_gaps<S: EventStore>(store: &S) {
    let names = ["listing-a", "deal-b", "listing-c"];
    for round in 0..5 {
        for name in names {
            store
                .append(&stream(name), ExpectedVersion::Any, events(round % 3 + 1, name))
                .await
                .expect("append");
        }
    }
    let head = store.head();
    let all = store.read_all(0, 10_000).await.expect("read all");
    assert_eq!(all.len() as u64, head);
    for (expected, event) in all.iter().enumerate() {
        assert_eq!(event.position, expected as u64, "positions without gaps, in order");
    }
    let mut versions: BTreeMap<StreamName, u64> = BTreeMap::new();
    for event in &all {
        let next = versions.entry(event.stream.clone()).or_default();
        assert_eq!(event.version, *next, "stream versions follow the log order");
        *next += 1;
    }
    let tail = store.read_all(head - 2, 10).await.expect("read the tail");
    assert_eq!(tail.len(), 2);
    assert!(store.read_all(head, 10).await.expect("read past the head").is_empty());
    assert_eq!(store.read_all(1, 4).await.expect("a page").len(), 4, "max count respected");
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
    let all = store.read_all(0, 10_000).await.expect("read all");
    assert_eq!(all.len(), total, "every acknowledged event is in the log");
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
    let mut from_start = store.subscribe_all(0);
    let mut from_middle = store.subscribe_all(350);
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
    for expected in 0..(BEFORE + DURING) as u64 {
        let event =
            tokio::time::timeout(wait, from_start.next()).await.expect("an event in time").expect("next");
        assert_eq!(event.position, expected, "from the start: every position once, in order");
    }
    for expected in 350..(BEFORE + DURING) as u64 {
        let event =
            tokio::time::timeout(wait, from_middle.next()).await.expect("an event in time").expect("next");
        assert_eq!(event.position, expected, "from the middle: every position once, in order");
    }
    writer.await.expect("writer");
    assert_eq!(from_start.position(), (BEFORE + DURING) as u64);
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
    let all = store.read_all(0, 100).await.expect("read all");
    assert_eq!(all.len(), 2, "a soft delete keeps the events in the log");
    store
        .append(&stream("listing-after"), ExpectedVersion::NoStream, events(1, "after"))
        .await
        .expect("append after");
    assert_eq!(store.read_all(0, 100).await.expect("read all").len(), 3, "positions go on after a delete");
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
    let positions: Vec<u64> = answers
        .iter()
        .filter_map(|answer| answer.as_ref().ok())
        .map(|result| result.first_position)
        .collect();
    assert_eq!(positions, vec![0, 2, 3], "in their order, without gaps: {answers:?}");
    assert!(matches!(answers[2], Err(StoreError::WrongExpectedVersion { .. })), "{:?}", answers[2]);
    let log: Vec<String> = store
        .read_all(0, 10)
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
