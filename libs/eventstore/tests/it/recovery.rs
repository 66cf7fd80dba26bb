//! What survives a close, a torn write and a corruption; and one process per directory.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use symbiose_eventstore::embedded::{EmbeddedStore, Options};
use symbiose_eventstore::{
    Direction, EventData, EventStore, ExpectedVersion, Position, Snapshot, StoreError, StreamName,
};
use uuid::Uuid;

fn stream(name: &str) -> StreamName {
    StreamName::new(name).expect("stream name")
}

fn event(tag: &str) -> EventData {
    EventData::new(Uuid::now_v7(), "ThingHappened", Bytes::from(format!("payload {tag} {}", "x".repeat(200))))
}

/// Appends `count` single-event appends to `stream`, from its current version.
async fn append_many(store: &EmbeddedStore, name: &str, count: usize) -> Vec<Uuid> {
    let stream = stream(name);
    let mut ids = Vec::new();
    for index in 0..count {
        let event = event(&format!("{name}-{index}"));
        ids.push(event.id);
        store.append(&stream, ExpectedVersion::Any, vec![event]).await.expect("append");
    }
    ids
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    paths.sort();
    paths
}

#[tokio::test]
async fn everything_appended_is_there_after_a_reopen() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, _) =
        EmbeddedStore::open(dir.path(), Options { segment_bytes_max: 8 * 1024, ..Options::default() })
            .expect("open");
    let ids = append_many(&store, "listing-1", 100).await;
    store.delete_stream(&stream("listing-1"), ExpectedVersion::Exact(99)).await.expect("delete");
    let other = append_many(&store, "listing-2", 20).await;
    store.close().await;

    let (store, report) =
        EmbeddedStore::open(dir.path(), Options { segment_bytes_max: 8 * 1024, ..Options::default() })
            .expect("reopen");
    assert_eq!(report.events, 120);
    assert!(report.segments > 1, "the log spans segments: {report:?}");
    assert_eq!(report.truncated_bytes, 0);
    let all = store.read_all(Position::START, 1000).await.expect("read all");
    assert_eq!(all.iter().map(|event| event.id).collect::<Vec<_>>(), [ids, other.clone()].concat());
    let deleted = store.read_stream(&stream("listing-1"), 0, Direction::Forward, 10).await;
    assert!(matches!(deleted, Err(StoreError::StreamDeleted(_))), "the delete survives: {deleted:?}");
    let second = store.read_stream(&stream("listing-2"), 0, Direction::Forward, 100).await.expect("read");
    assert_eq!(second.iter().map(|event| event.id).collect::<Vec<_>>(), other);
    let next = store
        .append(&stream("listing-2"), ExpectedVersion::Exact(19), vec![event("next")])
        .await
        .expect("append");
    assert_eq!((next.next_expected_version, next.first_position.as_u64()), (20, 120));
    store.close().await;
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("open");
    let second = EmbeddedStore::open(dir.path(), Options::default());
    assert!(matches!(second, Err(StoreError::Locked(_))), "{:?}", second.map(|_| ()));
    store.close().await;
    let (again, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("open after close");
    again.close().await;
}

#[tokio::test]
async fn a_torn_final_record_is_dropped_and_the_log_goes_on() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("open");
    let ids = append_many(&store, "listing-1", 10).await;
    store.close().await;

    // Cut the last record in the middle, as a crash during its write would.
    let segment = segments(dir.path()).pop().expect("a segment");
    let length = std::fs::metadata(&segment).expect("metadata").len();
    OpenOptions::new().write(true).open(&segment).expect("open").set_len(length - 100).expect("truncate");

    let (store, report) =
        EmbeddedStore::open(dir.path(), Options::default()).expect("reopen after a torn write");
    assert_eq!(report.events, 9, "the torn record is gone, the others stay");
    assert!(report.truncated_bytes > 0);
    let kept: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".torn-"))
        .collect();
    assert_eq!(kept.len(), 1, "the cut bytes are kept beside the log: {kept:?}");
    let all = store.read_all(Position::START, 100).await.expect("read all");
    assert_eq!(all.iter().map(|event| event.id).collect::<Vec<_>>(), ids[..9]);
    let next = store
        .append(&stream("listing-1"), ExpectedVersion::Exact(8), vec![event("after")])
        .await
        .expect("append");
    assert_eq!(next.first_position.as_u64(), 9, "positions continue without a gap");
    store.close().await;
    let (store, report) = EmbeddedStore::open(dir.path(), Options::default()).expect("reopen again");
    assert_eq!((report.events, report.truncated_bytes), (10, 0));
    store.close().await;
}

#[tokio::test]
async fn a_zeroed_tail_after_a_power_loss_is_dropped() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("open");
    append_many(&store, "listing-1", 5).await;
    store.close().await;
    let segment = segments(dir.path()).pop().expect("a segment");
    let length = std::fs::metadata(&segment).expect("metadata").len();
    OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open")
        .set_len(length + 4096)
        .expect("extend with zeros");

    let (store, report) = EmbeddedStore::open(dir.path(), Options::default()).expect("reopen");
    assert_eq!((report.events, report.truncated_bytes), (5, 4096));
    store.close().await;
}

#[tokio::test]
async fn a_flipped_bit_in_the_middle_is_refused_naming_the_file_and_offset() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("open");
    append_many(&store, "listing-1", 50).await;
    store.close().await;

    let segment = segments(dir.path()).pop().expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x04;
    std::fs::write(&segment, &bytes).expect("write");

    let error = EmbeddedStore::open(dir.path(), Options::default()).map(|_| ()).expect_err("a corrupted log");
    let StoreError::Corrupted { file, offset, reason } = &error else {
        panic!("not a corruption error: {error:?}")
    };
    let name = segment.file_name().expect("name").to_string_lossy();
    assert_eq!(file, &name);
    assert!(
        *offset <= middle as u64 && middle as u64 - offset < 400,
        "offset {offset} is the record holding byte {middle}"
    );
    assert!(reason.contains("checksum"), "{reason}");
    let message = error.to_string();
    assert!(message.contains(&*name) && message.contains(&offset.to_string()), "{message}");
    // Refusing changed nothing: the file is as it was.
    assert_eq!(std::fs::read(&segment).expect("read"), bytes);
}

#[tokio::test]
async fn a_corrupted_segment_before_the_last_is_refused_even_at_its_end() {
    let dir = tempfile::tempdir().expect("dir");
    let options = Options { segment_bytes_max: 4096, ..Options::default() };
    let (store, _) = EmbeddedStore::open(dir.path(), options.clone()).expect("open");
    append_many(&store, "listing-1", 60).await;
    store.close().await;
    let first = segments(dir.path()).remove(0);
    let length = std::fs::metadata(&first).expect("metadata").len();
    OpenOptions::new().write(true).open(&first).expect("open").set_len(length - 10).expect("truncate");
    let error = EmbeddedStore::open(dir.path(), options).map(|_| ()).expect_err("a cut in an old segment");
    assert!(matches!(error, StoreError::Corrupted { .. }), "{error:?}");
}

#[tokio::test]
async fn sealed_segments_open_from_their_index_files() {
    let dir = tempfile::tempdir().expect("dir");
    let options = Options { segment_bytes_max: 8 * 1024, ..Options::default() };
    let (store, _) = EmbeddedStore::open(dir.path(), options.clone()).expect("open");
    let ids = append_many(&store, "listing-1", 300).await;
    store.close().await;

    let (store, report) = EmbeddedStore::open(dir.path(), options.clone()).expect("reopen");
    assert!(report.segments > 3, "{report:?}");
    assert_eq!(report.indexed_segments, report.segments - 1, "only the last segment is scanned: {report:?}");
    let all = store.read_all(Position::START, 1000).await.expect("read all");
    assert_eq!(all.iter().map(|event| event.id).collect::<Vec<_>>(), ids);
    store.close().await;

    // A damaged index file is only a cache: the segment is scanned instead, and reindexed.
    let index_file = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.extension().is_some_and(|extension| extension == "idx"))
        .expect("an index file");
    let mut bytes = std::fs::read(&index_file).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&index_file, &bytes).expect("write");
    let (store, damaged) =
        EmbeddedStore::open(dir.path(), options.clone()).expect("reopen with a damaged index");
    assert_eq!(damaged.indexed_segments, report.segments - 2);
    let all = store.read_all(Position::START, 1000).await.expect("read all");
    assert_eq!(all.iter().map(|event| event.id).collect::<Vec<_>>(), ids);
    let stream =
        store.read_stream(&stream("listing-1"), 0, Direction::Forward, 1000).await.expect("read stream");
    assert_eq!(stream.len(), 300);
    store.close().await;
    let (store, repaired) = EmbeddedStore::open(dir.path(), options).expect("reopen after reindexing");
    assert_eq!(repaired.indexed_segments, report.segments - 1);
    store.close().await;
}

#[tokio::test]
async fn closing_stops_every_handle_and_wakes_every_waiter() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("open");
    let other = store.clone();
    let waiter = tokio::spawn({
        let store = store.clone();
        async move { store.subscribe_all(Position::START).next().await }
    });
    store.close().await;
    let woken =
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter).await.expect("woken").expect("join");
    assert!(matches!(woken, Err(StoreError::Closed)), "{woken:?}");
    let append = other.append(&stream("listing-1"), ExpectedVersion::Any, vec![event("late")]).await;
    assert!(matches!(append, Err(StoreError::Closed)), "{append:?}");
    let (again, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("the directory is free");
    again.close().await;
}

/// A snapshot's temporary file left by a crash mid-write is removed at the next open; the
/// snapshot saved before is kept.
#[tokio::test]
async fn a_snapshot_cut_short_by_a_crash_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("open");
    let saved = Snapshot { position: Position::from_u64(3), body: Bytes::from_static(b"the state") };
    store.save_snapshot("listings.market", saved.clone()).await.expect("save");
    store.close().await;
    let stray = dir.path().join("snapshots").join(format!("listings.market.{}.tmp", Uuid::now_v7().simple()));
    std::fs::write(&stray, vec![7_u8; 4096]).expect("a half-written snapshot");
    let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("reopen");
    assert!(!stray.exists(), "the temporary file is removed");
    assert_eq!(store.load_snapshot("listings.market").await.expect("load"), Some(saved));
    store.close().await;
}
