//! A log copied between backends: an embedded log of several streams, one of them deleted,
//! with metadata, copied into a fresh PostgreSQL database in two runs (a prefix, then the rest)
//! and digested equal on both sides; a target holding other events refused.

use std::time::Instant;

use bytes::Bytes;
use symbiose_eventstore::copy::{CopyError, copy_log, digest_log};
use symbiose_eventstore::embedded::Options;
use symbiose_eventstore::postgres::{PostgresOptions, PostgresStore};
use symbiose_eventstore::{EventData, EventStore as _, ExpectedVersion, Position, StreamName};
use uuid::Uuid;

use crate::postgres::postgres_or_skip;

fn stream(name: &str) -> StreamName {
    StreamName::new(name).expect("a valid stream name")
}

fn event(tag: &str) -> EventData {
    EventData::new(Uuid::now_v7(), "ThingHappened", Bytes::from(format!("payload {tag}")))
        .with_metadata(Bytes::from(format!("{{\"cause\":\"{tag}\"}}")))
}

/// An embedded log of `streams` streams appended to in turns, one event or a few at a time,
/// the second stream deleted halfway.
async fn filled_source(
    streams: usize,
    rounds: usize,
) -> (symbiose_eventstore::embedded::EmbeddedStore, tempfile::TempDir) {
    let (source, dir) = crate::open_fresh(Options::default());
    for round in 0..rounds {
        for index in 0..streams {
            if index == 1 && round >= rounds / 2 {
                continue;
            }
            let name = stream(&format!("thing-{index}"));
            let events = (0..=(round + index) % 3).map(|n| event(&format!("{index}-{round}-{n}"))).collect();
            source.append(&name, ExpectedVersion::Any, events).await.expect("append");
        }
        if round + 1 == rounds / 2 {
            let name = stream("thing-1");
            let last = source.stream_info(&name).await.expect("info").expect("exists").last_version;
            source.delete_stream(&name, ExpectedVersion::Exact(last)).await.expect("delete");
        }
    }
    (source, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_log_copied_to_postgres_in_two_runs_is_equal() {
    let test = "an_embedded_log_copied_to_postgres_in_two_runs_is_equal";
    let Some(databases) = postgres_or_skip(test).await else { return };
    let (source, _dir) = filled_source(7, 400).await;
    let head = source.head().as_u64();
    assert!(head > 3000, "several pages: {head}");
    let target =
        PostgresStore::connect(&databases.create().await, PostgresOptions::default()).await.expect("connect");

    // Interrupted halfway: a prefix, then a second run resumes where the target stopped.
    let half = head / 2 + 17;
    let first = copy_log(&source, &target, half, |_| {}).await.expect("first run");
    assert_eq!((first.from_position, first.to_position), (0, half));
    assert_eq!(target.head().as_u64(), half);
    let started = Instant::now();
    let mut reported = 0;
    let second = copy_log(&source, &target, u64::MAX, |copied| reported = copied).await.expect("second run");
    let elapsed = started.elapsed();
    assert_eq!((second.from_position, second.to_position), (half, head));
    assert_eq!(reported, head - half);
    assert_eq!(first.deleted_streams + second.deleted_streams, 1);
    println!(
        "{test}: {} events in {elapsed:?} ({:.0} events/s)",
        head - half,
        (head - half) as f64 / elapsed.as_secs_f64()
    );

    let ours = digest_log(&source, |_| {}).await.expect("source digest");
    let theirs = digest_log(&target, |_| {}).await.expect("target digest");
    assert_eq!(ours, theirs);
    assert_eq!(ours.events, head);
    let deleted = target.stream_info(&stream("thing-1")).await.expect("info").expect("exists");
    assert!(deleted.deleted, "{deleted:?}");
    for index in [0, 2, 6] {
        let name = stream(&format!("thing-{index}"));
        assert_eq!(
            target.stream_info(&name).await.expect("info"),
            source.stream_info(&name).await.expect("info"),
            "{name}"
        );
    }
    let copied = target.read_all(Position::from_u64(head - 1), 1).await.expect("read");
    let original = source.read_all(Position::from_u64(head - 1), 1).await.expect("read");
    assert_eq!((copied[0].id, &copied[0].metadata), (original[0].id, &original[0].metadata));

    // A third run has nothing to do, and says so.
    let third = copy_log(&source, &target, u64::MAX, |_| {}).await.expect("third run");
    assert_eq!((third.from_position, third.to_position, third.appends), (head, head, 0));
    target.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_holding_other_events_is_refused() {
    let (source, _source_dir) = filled_source(3, 20).await;
    let (target, _target_dir) = crate::open_fresh(Options::default());
    // The same shape, other events: the copy must not add the source's after them.
    for index in 0..5 {
        target
            .append(&stream(&format!("other-{index}")), ExpectedVersion::NoStream, vec![event("x")])
            .await
            .expect("append");
    }
    let refused = copy_log(&source, &target, u64::MAX, |_| {}).await.expect_err("refused");
    assert!(matches!(refused, CopyError::Refused(_)), "{refused}");
    assert!(refused.to_string().contains("position 0"), "{refused}");
    assert_eq!(target.head().as_u64(), 5, "nothing written");

    // A target with more events than the source is refused too.
    let (small, _small_dir) = crate::open_fresh(Options::default());
    small.append(&stream("thing-0"), ExpectedVersion::NoStream, vec![event("y")]).await.expect("append");
    let refused = copy_log(&small, &target, u64::MAX, |_| {}).await.expect_err("refused");
    assert!(refused.to_string().contains("the source only 1"), "{refused}");
}

/// A copy between two embedded stores, no server needed: interrupted, resumed, equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_log_copied_to_another_in_two_runs_is_equal() {
    let (source, _source_dir) = filled_source(5, 300).await;
    let (target, _target_dir) = crate::open_fresh(Options::default());
    let head = source.head().as_u64();
    copy_log(&source, &target, 1234, |_| {}).await.expect("first run");
    let second = copy_log(&source, &target, u64::MAX, |_| {}).await.expect("second run");
    assert_eq!((second.from_position, second.to_position), (1234, head));
    assert_eq!(
        digest_log(&source, |_| {}).await.expect("digest"),
        digest_log(&target, |_| {}).await.expect("digest")
    );
    assert!(target.stream_info(&stream("thing-1")).await.expect("info").expect("exists").deleted);
}
