//! No acknowledged event disappears without the open refusing: every bit of the headers, and
//! bytes of the bodies, of records at the end of the log, in the middle of the last segment
//! and in a sealed segment, flipped one at a time; and the torn writes a crash leaves are
//! still cut.

use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use symbiose_eventstore::embedded::{EmbeddedStore, Options};
use symbiose_eventstore::{
    Direction, EventData, EventStore, ExpectedVersion, Position, READ_EVENTS_MAX, STREAM_END, StoreError,
    StreamName,
};
use uuid::Uuid;

/// Small segments, so that the fixture's log spans several.
pub(crate) const SEGMENT_BYTES_MAX: u64 = 8 * 1024;
/// Appends of the fixture before its last one.
const APPENDS: usize = 150;
/// Payload of the last append: large enough to span several 512-byte sectors.
const FINAL_PAYLOAD_BYTES: usize = 1500;
/// Payload of the last append where the log is cut at every byte of it: each cut is an open
/// with three fsyncs.
const SMALL_FINAL_PAYLOAD_BYTES: usize = 100;
/// The file header of a segment of the current format.
const FILE_MAGIC: [u8; 8] = [b'S', b'Y', b'M', 0xFF, b'S', b'E', b'G', 2];
const RECORD_HEADER_BYTES: usize = 12;
/// Every how many bytes of a body one bit is flipped.
const BODY_SAMPLE_EVERY_BYTES: usize = 7;

pub(crate) fn options() -> Options {
    Options { segment_bytes_max: SEGMENT_BYTES_MAX, ..Options::default() }
}

/// Longest wait for the `LOCK` of a directory this test closed to be free again.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the store in `dir`. Another test of this binary that starts a process forks while
/// holding every open file for an instant, the `LOCK` of a store just closed here included:
/// that brief hold is waited out (with a bound), any other answer is the open's.
pub(crate) fn open(
    dir: &Path,
) -> Result<(EmbeddedStore, symbiose_eventstore::embedded::OpenReport), StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match EmbeddedStore::open(dir, options()) {
            Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            opened => return opened,
        }
    }
}

/// One acknowledged append: one record of the log, in order.
#[derive(Debug, Clone)]
pub(crate) struct Acknowledged {
    pub(crate) stream: String,
    pub(crate) first_position: Position,
    pub(crate) ids: Vec<Uuid>,
}

/// A closed store of a few hundred events over several segments, and what was acknowledged.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) acknowledged: Vec<Acknowledged>,
}

/// Where a record lies: its segment file and its bytes there.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub(crate) file: String,
    pub(crate) range: Range<usize>,
    /// Its index among all the log's records: the append it holds.
    pub(crate) record: usize,
}

impl Fixture {
    pub(crate) async fn build() -> Fixture {
        Fixture::build_with(FINAL_PAYLOAD_BYTES).await
    }

    /// A fixture whose last append has a payload of `final_payload_bytes`.
    pub(crate) async fn build_with(final_payload_bytes: usize) -> Fixture {
        let dir = tempfile::tempdir().expect("dir");
        let (store, _) = open(dir.path()).expect("open");
        let mut acknowledged = Vec::new();
        for index in 0..=APPENDS {
            let stream = format!("listing-{}", index % 3);
            let events: Vec<EventData> = if index == APPENDS {
                vec![event(&"z".repeat(final_payload_bytes))]
            } else {
                (0..1 + index % 3)
                    .map(|number| event(&format!("{index}-{number} {}", "x".repeat(50))))
                    .collect()
            };
            let ids = events.iter().map(|event| event.id).collect();
            let name = StreamName::new(&stream).expect("name");
            let appended = store.append(&name, ExpectedVersion::Any, events).await.expect("append");
            acknowledged.push(Acknowledged { stream, first_position: appended.first_position, ids });
        }
        store.close().await;
        let fixture = Fixture { dir, acknowledged };
        let records = fixture.records();
        assert_eq!(records.len(), fixture.acknowledged.len(), "one record per append");
        assert!(segments(fixture.path()).len() >= 3, "sealed segments and a last one");
        assert!(fixture.last_segment_records().len() >= 5, "the last segment has a middle");
        fixture
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn events(&self) -> u64 {
        self.acknowledged.iter().map(|append| append.ids.len() as u64).sum()
    }

    /// Every record of the log, in order.
    pub(crate) fn records(&self) -> Vec<Located> {
        let mut located = Vec::new();
        for path in segments(self.path()) {
            let file = file_name(&path);
            for range in records(&std::fs::read(&path).expect("read")) {
                located.push(Located { file: file.clone(), range, record: located.len() });
            }
        }
        located
    }

    fn last_segment_records(&self) -> Vec<Located> {
        let records = self.records();
        let last = records.last().expect("records").file.clone();
        records.into_iter().filter(|record| record.file == last).collect()
    }

    /// The last record of the log.
    pub(crate) fn tail(&self) -> Located {
        self.records().pop().expect("records")
    }

    /// A record in the middle of the last segment.
    pub(crate) fn middle_of_last(&self) -> Located {
        let records = self.last_segment_records();
        records[records.len() / 2].clone()
    }

    /// A record in the middle of the first segment, which is sealed.
    pub(crate) fn in_sealed(&self) -> Located {
        let records = self.records();
        let first = records[0].file.clone();
        let sealed: Vec<Located> = records.into_iter().filter(|record| record.file == first).collect();
        sealed[sealed.len() / 2].clone()
    }

    /// A copy of the log to damage, in a directory of its own.
    pub(crate) fn copy(&self) -> tempfile::TempDir {
        let copy = tempfile::tempdir().expect("dir");
        for entry in std::fs::read_dir(self.path()).expect("list") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).expect("copy");
        }
        copy
    }

    /// The ids of every acknowledged event before the record `record`.
    pub(crate) fn ids_before(&self, record: usize) -> Vec<Uuid> {
        self.acknowledged[..record].iter().flat_map(|append| append.ids.clone()).collect()
    }
}

pub(crate) fn event(tag: &str) -> EventData {
    EventData::new(Uuid::now_v7(), "ThingHappened", Bytes::from(format!("payload {tag}")))
}

pub(crate) fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    paths.sort();
    paths
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().expect("a file name").to_string_lossy().into_owned()
}

/// The byte ranges of the records of a segment file of the current format: a file header,
/// then records of a 12-byte header (u32 body length, two CRC32C), the body and a trailer.
pub(crate) fn records(bytes: &[u8]) -> Vec<Range<usize>> {
    assert_eq!(bytes[..8], FILE_MAGIC, "a segment of the current format");
    let mut ranges = Vec::new();
    let mut offset = FILE_MAGIC.len();
    while offset < bytes.len() {
        let length = u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        let end = offset + RECORD_HEADER_BYTES + length + 1;
        ranges.push(offset..end);
        offset = end;
    }
    assert_eq!(offset, bytes.len(), "the records end with the file");
    ranges
}

/// Changes the bytes of `file` in `dir` with `change`.
pub(crate) fn damage(dir: &Path, file: &str, change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let path = dir.join(file);
    let mut bytes = std::fs::read(&path).expect("read");
    change(&mut bytes);
    std::fs::write(&path, &bytes).expect("write");
    bytes
}

/// Every bit of the record's header, and one bit of a sample of its body and of its trailer:
/// (byte offset in the file, bit).
fn flips(range: &Range<usize>) -> Vec<(usize, u8)> {
    let header = range.start..range.start + RECORD_HEADER_BYTES;
    let mut flips: Vec<(usize, u8)> = header.flat_map(|byte| (0..8).map(move |bit| (byte, bit))).collect();
    let body = range.start + RECORD_HEADER_BYTES..range.end - 1;
    flips.extend(body.step_by(BODY_SAMPLE_EVERY_BYTES).map(|byte| (byte, (byte % 8) as u8)));
    flips.extend([(range.end - 2, 0), (range.end - 1, 0), (range.end - 1, 7)]);
    flips
}

#[track_caller]
fn assert_corrupted_at(error: &StoreError, file: &str, offset: usize, context: &str) {
    match error {
        StoreError::Corrupted { file: named, offset: at, .. } if named == file && *at == offset as u64 => {}
        other => panic!("{context}: not a corruption of {file} at {offset}: {other:?}"),
    }
}

#[tokio::test]
async fn a_flipped_bit_in_the_last_segment_always_stops_the_open() {
    let fixture = Fixture::build().await;
    for (target, located) in
        [("tail", fixture.tail()), ("middle of the last segment", fixture.middle_of_last())]
    {
        for (byte, bit) in flips(&located.range) {
            let trial = fixture.copy();
            let damaged = damage(trial.path(), &located.file, |bytes| bytes[byte] ^= 1 << bit);
            let context = format!("{target}: bit {bit} of byte {byte}");
            match open(trial.path()) {
                Err(error) => assert_corrupted_at(&error, &located.file, located.range.start, &context),
                Ok((store, report)) => {
                    store.close().await;
                    panic!(
                        "{context}: opened with {} events of {} acknowledged",
                        report.events,
                        fixture.events()
                    );
                }
            }
            let after = std::fs::read(trial.path().join(&located.file)).expect("read");
            assert!(after == damaged, "{context}: the refused open changed the segment");
        }
    }
}

#[tokio::test]
async fn a_flipped_bit_in_a_sealed_segment_fails_every_read_that_reaches_it() {
    let fixture = Fixture::build().await;
    let located = fixture.in_sealed();
    let append = &fixture.acknowledged[located.record];
    let stream = StreamName::new(&append.stream).expect("name");
    let before = fixture.ids_before(located.record);
    for (byte, bit) in flips(&located.range) {
        let trial = fixture.copy();
        damage(trial.path(), &located.file, |bytes| bytes[byte] ^= 1 << bit);
        let context = format!("bit {bit} of byte {byte}");
        // The open reads the sealed segment from its index file, not its records: it succeeds,
        // and the damage is found by every read that reaches the record.
        let store = match open(trial.path()) {
            Err(error) => {
                assert_corrupted_at(&error, &located.file, located.range.start, &context);
                continue;
            }
            Ok((store, _)) => store,
        };
        // Pages of 64, then one event at a time once a page fails: every event before the
        // damage comes back, and then the error, never an event after it.
        let mut read = Vec::new();
        let mut page_events = 64;
        let error = loop {
            match store.read_all(Position::from_u64(read.len() as u64), page_events).await {
                Ok(page) if page.is_empty() => panic!("{context}: read_all reached the end past the damage"),
                Ok(page) => read.extend(page.into_iter().map(|event| event.id)),
                Err(error) if page_events > 1 => {
                    assert_corrupted_at(&error, &located.file, located.range.start, &context);
                    page_events = 1;
                }
                Err(error) => break error,
            }
        };
        assert_corrupted_at(&error, &located.file, located.range.start, &context);
        assert!(read == before, "{context}: read_all gave exactly the events before the damage");
        let from_record = store.read_all(append.first_position, READ_EVENTS_MAX).await;
        assert_corrupted_at(
            &from_record.expect_err("read_all from the record"),
            &located.file,
            located.range.start,
            &context,
        );
        for (direction, from) in [(Direction::Forward, 0), (Direction::Backward, STREAM_END)] {
            let read = store.read_stream(&stream, from, direction, READ_EVENTS_MAX).await;
            let error = read.expect_err("read_stream through the record");
            assert_corrupted_at(&error, &located.file, located.range.start, &context);
        }
        store.close().await;

        // Without its index file, the open scans the segment and refuses.
        let index_file = located.file.replace(".seg", ".idx");
        std::fs::remove_file(trial.path().join(&index_file)).expect("remove the index file");
        let error = open(trial.path()).map(|_| ()).expect_err("a damaged segment");
        assert_corrupted_at(&error, &located.file, located.range.start, &format!("{context}, without index"));
    }
}

#[tokio::test]
async fn a_flipped_bit_in_a_segment_file_header_stops_the_open() {
    let fixture = Fixture::build().await;
    let paths = segments(fixture.path());
    for path in [&paths[0], paths.last().expect("segments")] {
        let file = file_name(path);
        for bit in 0..64 {
            let trial = fixture.copy();
            damage(trial.path(), &file, |bytes| bytes[bit / 8] ^= 1 << (bit % 8));
            let error = open(trial.path()).map(|_| ()).expect_err("a damaged header");
            assert_corrupted_at(&error, &file, 0, &format!("bit {bit} of {file}"));
        }
    }
}

/// Opens `dir`, expecting the last record cut as a torn write and every other event there.
async fn assert_last_record_cut(fixture: &Fixture, dir: &Path, context: &str) {
    let tail = fixture.tail();
    let length = std::fs::metadata(dir.join(&tail.file)).expect("metadata").len();
    let (store, report) = open(dir).unwrap_or_else(|error| panic!("{context}: {error}"));
    let last = fixture.acknowledged.last().expect("appends");
    assert_eq!(report.events, fixture.events() - last.ids.len() as u64, "{context}");
    assert_eq!(report.truncated_bytes, length - tail.range.start as u64, "{context}");
    let read = store.read_all(Position::START, READ_EVENTS_MAX).await.expect("read all");
    let ids: Vec<Uuid> = read.iter().map(|event| event.id).collect();
    assert!(ids == fixture.ids_before(tail.record), "{context}: every event before the torn write is there");
    store.close().await;
    let cut_to = std::fs::metadata(dir.join(&tail.file)).expect("metadata").len();
    assert_eq!(cut_to, tail.range.start as u64, "{context}: cut where the last record starts");
}

#[tokio::test]
async fn a_final_record_cut_at_any_byte_is_a_torn_write() {
    let fixture = Fixture::build_with(SMALL_FINAL_PAYLOAD_BYTES).await;
    let tail = fixture.tail();
    let pristine = std::fs::read(fixture.path().join(&tail.file)).expect("read");
    for cut in tail.range.start + 1..tail.range.end {
        let trial = fixture.copy();
        damage(trial.path(), &tail.file, |bytes| bytes.truncate(cut));
        assert_last_record_cut(&fixture, trial.path(), &format!("cut at {cut}")).await;
        let kept = trial.path().join(format!("{}.torn-{}", tail.file, tail.range.start));
        assert!(std::fs::read(&kept).expect("the cut bytes are kept") == pristine[tail.range.start..cut]);
    }
}

#[tokio::test]
async fn a_final_record_zeroed_to_the_end_from_a_sector_boundary_is_a_torn_write() {
    let fixture = Fixture::build().await;
    let tail = fixture.tail();
    let boundaries: Vec<usize> =
        (tail.range.start + 1..tail.range.end).filter(|offset| offset % 512 == 0).collect();
    assert!(boundaries.len() >= 2, "the last record spans sectors");
    // Zeros from the record's start, from each sector boundary in it, and from an offset
    // just before one (the sector before written, the zeros after it lost).
    let just_before = [boundaries[0] - 3].into_iter().filter(|start| *start > tail.range.start);
    let starts = [tail.range.start].into_iter().chain(boundaries.iter().copied()).chain(just_before);
    for start in starts {
        let trial = fixture.copy();
        damage(trial.path(), &tail.file, |bytes| bytes[start..].fill(0));
        assert_last_record_cut(&fixture, trial.path(), &format!("zeros from {start}")).await;
    }
}

#[tokio::test]
async fn zeros_that_cannot_be_lost_sectors_are_refused() {
    let fixture = Fixture::build().await;
    let tail = fixture.tail();
    let last_boundary = (tail.range.end - 1) / 512 * 512;
    assert!(last_boundary > tail.range.start + RECORD_HEADER_BYTES && last_boundary + 1 < tail.range.end);
    let cases = [
        // After the last sector boundary: the zeros start inside a sector that was written.
        ("zeros after the last sector boundary", last_boundary + 1..tail.range.end),
        // A zero run in the middle, the record's end still there.
        ("zeros inside the record", tail.range.start + 100..tail.range.end - 1),
    ];
    for (context, zeroed) in cases {
        let trial = fixture.copy();
        damage(trial.path(), &tail.file, |bytes| bytes[zeroed].fill(0));
        let error = open(trial.path()).map(|_| ()).expect_err(context);
        assert_corrupted_at(&error, &tail.file, tail.range.start, context);
    }
    // A zeroed record in the middle of the last segment, with records after it.
    let middle = fixture.middle_of_last();
    let trial = fixture.copy();
    damage(trial.path(), &middle.file, |bytes| bytes[middle.range.clone()].fill(0));
    let error = open(trial.path()).map(|_| ()).expect_err("a zeroed record");
    assert_corrupted_at(&error, &middle.file, middle.range.start, "a zeroed record in the middle");
}

#[tokio::test]
async fn zeros_after_the_last_record_are_cut() {
    let fixture = Fixture::build().await;
    let tail = fixture.tail();
    for zeros in [1, RECORD_HEADER_BYTES - 1, RECORD_HEADER_BYTES, 4096] {
        let trial = fixture.copy();
        damage(trial.path(), &tail.file, |bytes| bytes.resize(bytes.len() + zeros, 0));
        let (store, report) = open(trial.path()).expect("open");
        assert_eq!(
            (report.events, report.truncated_bytes),
            (fixture.events(), zeros as u64),
            "{zeros} zeros"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn a_segment_left_unfinished_by_a_crash_is_removed() {
    let fixture = Fixture::build().await;
    let trial = fixture.copy();
    let unfinished = trial.path().join("00000000000000999999.seg.tmp");
    std::fs::write(&unfinished, FILE_MAGIC).expect("write");
    let (store, report) = open(trial.path()).expect("open");
    assert_eq!(report.events, fixture.events());
    assert!(!unfinished.exists());
    let next = store
        .append(&StreamName::new("listing-9").expect("name"), ExpectedVersion::NoStream, vec![event("after")])
        .await
        .expect("append");
    assert_eq!(next.first_position.as_u64(), fixture.events());
    store.close().await;
}

/// Why records end in a non-zero trailer: an acknowledged record whose payload ends in zeros
/// across sector boundaries, with one bit flipped before them, would otherwise look like a
/// record whose last sectors were lost, and be cut.
#[tokio::test]
async fn a_final_record_ending_in_zeros_with_a_flipped_bit_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, _) = open(dir.path()).expect("open");
    let stream = StreamName::new("listing-1").expect("name");
    store.append(&stream, ExpectedVersion::NoStream, vec![event("first")]).await.expect("append");
    let mut payload = b"zeros follow".to_vec();
    payload.resize(2000, 0);
    let zeros = EventData::new(Uuid::now_v7(), "ThingHappened", Bytes::from(payload));
    store.append(&stream, ExpectedVersion::Exact(0), vec![zeros]).await.expect("append");
    store.close().await;

    let path = segments(dir.path()).pop().expect("a segment");
    let file = file_name(&path);
    let last = records(&std::fs::read(&path).expect("read")).pop().expect("records");
    damage(dir.path(), &file, |bytes| bytes[last.start + RECORD_HEADER_BYTES + 40] ^= 0x01);
    let error = open(dir.path()).map(|_| ()).expect_err("damage");
    assert_corrupted_at(&error, &file, last.start, "a flipped bit before a run of zeros");
}
