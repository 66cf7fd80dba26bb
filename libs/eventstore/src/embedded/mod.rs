//! The embedded backend: an append-only log of segment files in one directory.
//!
//! - One record per append ([`record`]), with a checksummed header, a checksummed body and a
//!   constant trailer, so an append is all there or not at all, and no byte of it can change
//!   unseen.
//! - One writer thread takes the appends waiting in a bounded queue, checks each against the
//!   index, writes them with one `write` and one `fdatasync` (group commit), and only then
//!   publishes the new committed position and answers: no append is acknowledged before it is
//!   on disk, and readers never see past the committed position.
//! - The `fdatasync`s are made by a sync thread, while the writer writes the next groups. One
//!   sync covers every group written since the last one. When the writer says more appends are
//!   queued behind the last group it wrote, the sync thread waits for them a short, bounded
//!   time ([`Options::sync_gather_us`]) before syncing: with many writers, fewer and larger
//!   syncs; a lone writer, whose queue is empty, is synced at once.
//! - A `LOCK` file, held with an exclusive lock, keeps a second process out.
//! - [`verify`] and [`repair`] are for an operator, on a store no process has open.
//!
//! # Recovery: a torn write or damage
//!
//! On open, sealed segments are read from their index files (scanned if they have none), and
//! the last segment is scanned. At its first bad record, at offset X, the bytes from X on are
//! a torn write, an append that never completed and so was never acknowledged, only if:
//! - fewer bytes than a record header are left after X;
//! - or the header at X holds its checksum and its record runs past the end of the file;
//! - or every byte is zero from X, or from a 512-byte boundary before the end of the bad
//!   record (its header only, if the header fails its checksum), to the end of the file:
//!   space the file system extended but whose data never reached the disk in a power loss.
//!
//! Those bytes are cut, and kept beside the segment in `<segment>.torn-<X>`. Anything else is
//! damage to written records: the open fails with [`StoreError::Corrupted`] naming the file
//! and offset, and changes nothing on disk. A flipped bit cannot shorten a file, CRC32C
//! catches every single-bit error in a header or body, and a complete record ends in a
//! non-zero trailer; so one flipped bit anywhere in the last segment's records always stops
//! the open. What the rule cannot tell apart: damage that zeroes everything from a sector
//! boundary inside the last record to the end of the file looks like lost sectors, and is
//! cut; and sectors lost in the middle of a torn append, with later ones written, look like
//! damage, and are refused (the operator then cuts them with [`repair`]).
//!
//! Sealed segments are not scanned at open, so that a large log opens fast: a damaged record
//! in one is not seen by the open (unless its index file is missing or its length changed).
//! Every read checks both checksums of every record it passes, so a read that reaches a
//! damaged record fails with [`StoreError::Corrupted`] naming the file and offset: it never
//! returns wrong data nor skips the record. [`verify`] scans every segment.
//!
//! Segment files of the first format (no file header, no header checksum, no trailer) are
//! still read, with the first format's weaker rule (a bad record is torn only if zeros follow
//! it to the end); on open the last segment, if of that format, is rewritten in the current
//! one, so new records are never written in it.

pub mod disk;
mod index;
mod offline;
mod record;
mod segment;
mod summary;

/// What a file written whole or not at all is called until it is renamed into place.
#[cfg(feature = "eventstoredb")]
pub(crate) use self::segment::TEMPORARY_SUFFIX;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use self::disk::{DirLock, Disk, DiskFile, FileRef, OpenMode, Plain};
use self::index::{Committed, Index, SegmentRef};
pub use self::offline::{
    IndexFile, Problem, ProblemKind, Repaired, SegmentCheck, VerifyReport, repair, verify,
};
use self::record::{Format, Kind};
use self::segment::{ScanStop, Scanner, Verdict};
use self::summary::Summary;
use crate::model::{
    APPEND_BYTES_MAX, APPEND_EVENTS_MAX, AppendResult, CHECKPOINT_BYTES_MAX, Direction, EventData,
    ExpectedVersion, Position, READ_EVENTS_MAX, RecordedEvent, STREAM_END, Snapshot, StoreError, StreamInfo,
    StreamName, check_checkpoint, check_snapshot,
};

/// Appends waiting for the writer, at most; callers wait for room beyond it.
pub const APPEND_QUEUE_MAX: usize = 16_384;
/// Most appends written together under one fsync.
pub const GROUP_APPENDS_MAX: usize = 4096;
/// Most bytes written together under one fsync (a group may pass it by one append).
pub const GROUP_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Default size after which the writer starts a new segment file.
pub const SEGMENT_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;
/// Default of [`Options::sync_gather_us`].
pub const SYNC_GATHER_US_DEFAULT: u64 = 200;
/// Longest [`Options::sync_gather_us`] accepted: an append may wait this long more than its sync.
pub const SYNC_GATHER_US_MAX: u64 = 10_000;
/// Appends one sync covers, beyond which the sync thread waits for no more.
pub const SYNC_GATHER_APPENDS_MAX: usize = 1024;

const LOCK_FILE: &str = "LOCK";
/// The directory, beside the segments, of the checkpoints kept in the store: a file each.
const CHECKPOINTS_DIR: &str = "checkpoints";
/// The permission bits of a checkpoint file: read and written by its owner only.
const CHECKPOINT_FILE_MODE: u32 = 0o600;
/// The directory, beside the segments, of the read models' snapshots: a file each, its
/// position (8 bytes, little-endian) then its body.
const SNAPSHOTS_DIR: &str = "snapshots";

/// Settings of an embedded store.
#[derive(Debug, Clone)]
pub struct Options {
    /// Size after which a new segment file is started.
    pub segment_bytes_max: u64,
    /// How long, at most, the sync thread holds an `fdatasync` back to gather the groups the
    /// writer is about to write, when it said more appends were queued behind the last one (in
    /// microseconds; more than [`SYNC_GATHER_US_MAX`] is taken as it). Nothing waits when nothing more is
    /// queued, so a lone writer is not delayed. 0 syncs whatever is written at once.
    pub sync_gather_us: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options { segment_bytes_max: SEGMENT_BYTES_DEFAULT, sync_gather_us: SYNC_GATHER_US_DEFAULT }
    }
}

/// What [`EmbeddedStore::open`] found and did, for the logs and the benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenReport {
    pub segments: usize,
    pub events: u64,
    /// Sealed segments read from their index files rather than scanned.
    pub indexed_segments: usize,
    /// Bytes of a torn final record cut off the last segment.
    pub truncated_bytes: u64,
}

/// A handle on an open embedded store. Cloning shares it.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    appends: mpsc::Sender<AppendRequest>,
    writer: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

#[derive(Debug)]
struct Shared {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    index: RwLock<Index>,
    head: watch::Sender<Head>,
    /// Set after an I/O error on write or sync: from then on every append is refused.
    failure: std::sync::Mutex<Option<String>>,
    /// `fdatasync`s the sync thread made, for [`EmbeddedStore::syncs`].
    syncs: AtomicU64,
}

impl Shared {
    fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn fail(&self, reason: &str) {
        let mut failure = self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if failure.is_none() {
            tracing::error!(%reason, "event store failed; it takes no more appends until reopened");
            *failure = Some(reason.to_owned());
        }
    }
}

/// The committed position, and whether the store was closed (which wakes every waiter).
#[derive(Debug, Clone, Copy)]
struct Head {
    position: u64,
    closed: bool,
}

#[derive(Debug)]
enum Operation {
    Append {
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    },
    Delete {
        stream: StreamName,
        expected: ExpectedVersion,
    },
    /// Stop the writer after the appends before this one.
    Close,
}

#[derive(Debug)]
struct AppendRequest {
    operation: Operation,
    reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`, recovering its index from the log.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<(EmbeddedStore, OpenReport), StoreError> {
        EmbeddedStore::open_on(Arc::new(Plain), dir, options)
    }

    /// Opens (or creates) the store in `dir` of `disk`: [`EmbeddedStore::open`] on another
    /// [`Disk`] than the local file system, such as a simulated one.
    pub fn open_on(
        disk: Arc<dyn Disk>,
        dir: impl AsRef<Path>,
        options: Options,
    ) -> Result<(EmbeddedStore, OpenReport), StoreError> {
        let dir = dir.as_ref().to_path_buf();
        disk.create_dir_all(&dir)
            .map_err(|error| StoreError::io(&format!("creating {}", dir.display()), error))?;
        let lock = disk
            .try_lock(&dir.join(LOCK_FILE))
            .map_err(|error| StoreError::io("locking the data directory", error))?
            .ok_or_else(|| StoreError::Locked(dir.display().to_string()))?;

        let (index, active, report) = recover(&*disk, &dir)?;
        let head = index.committed.position;
        let (head_sender, _) = watch::channel(Head { position: head, closed: false });
        let shared = Arc::new(Shared {
            disk,
            dir,
            index: RwLock::new(index),
            head: head_sender,
            failure: std::sync::Mutex::new(None),
            syncs: AtomicU64::new(0),
        });
        let (sync, sync_receiver) = std::sync::mpsc::sync_channel(SYNC_QUEUE_GROUPS);
        let syncer = {
            let shared = shared.clone();
            let gather = Duration::from_micros(options.sync_gather_us.min(SYNC_GATHER_US_MAX));
            std::thread::Builder::new()
                .name("eventstore-sync".to_owned())
                .spawn(move || run_syncer(shared, sync_receiver, gather))
                .map_err(|error| StoreError::io("starting the sync thread", error))?
        };
        let (sender, receiver) = mpsc::channel(APPEND_QUEUE_MAX);
        let writer = Writer {
            shared: shared.clone(),
            active,
            options,
            failed: None,
            _lock: lock,
            buffer: Vec::new(),
            indexing: Vec::new(),
            sync,
            syncer: Some(syncer),
        };
        let handle = std::thread::Builder::new()
            .name("eventstore-writer".to_owned())
            .spawn(move || writer.run(receiver))
            .map_err(|error| StoreError::io("starting the writer thread", error))?;
        tracing::info!(
            dir = %shared.dir.display(),
            segments = report.segments,
            events = report.events,
            truncated_bytes = report.truncated_bytes,
            "event store opened"
        );
        Ok((
            EmbeddedStore { shared, appends: sender, writer: Arc::new(std::sync::Mutex::new(Some(handle))) },
            report,
        ))
    }

    /// Stops the writer once the appends already queued are written, and releases the
    /// directory. Other handles get [`StoreError::Closed`] afterwards.
    pub async fn close(self) {
        let (reply, _) = oneshot::channel();
        // The writer stops at this request, whatever other clones still hold.
        let _ = self.appends.send(AppendRequest { operation: Operation::Close, reply }).await;
        let handle = self.writer.lock().map(|mut guard| guard.take()).unwrap_or(None);
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The `fdatasync`s of appended groups made since the store was opened: with the appends
    /// answered, how many each sync covered, for the benchmarks.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    async fn submit(&self, operation: Operation) -> Result<AppendResult, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.appends.send(AppendRequest { operation, reply }).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.shared.index.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl crate::EventStore for EmbeddedStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError> {
        check_append(&events)?;
        self.submit(Operation::Append { stream: stream.clone(), expected, events }).await
    }

    /// Queues every append for the writer in order before waiting for any answer, so that the
    /// writer takes them in one round: one write and one `fdatasync` for all.
    async fn append_many(&self, appends: Vec<crate::Append>) -> Vec<Result<AppendResult, StoreError>> {
        let mut answers = Vec::with_capacity(appends.len());
        for (index, append) in appends.into_iter().enumerate() {
            if index >= crate::APPEND_MANY_MAX {
                answers.push(Err(crate::too_many_appends()));
                continue;
            }
            if let Err(error) = check_append(&append.events) {
                answers.push(Err(error));
                continue;
            }
            let (reply, answer) = oneshot::channel();
            let operation =
                Operation::Append { stream: append.stream, expected: append.expected, events: append.events };
            match self.appends.send(AppendRequest { operation, reply }).await {
                Ok(()) => answers.push(Ok(answer)),
                Err(_) => answers.push(Err(StoreError::Closed)),
            }
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(match answer {
                Ok(answer) => answer.await.map_err(|_| StoreError::Closed).and_then(|result| result),
                Err(error) => Err(error),
            });
        }
        results
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_version: u64,
        direction: Direction,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let max_count = max_count.min(READ_EVENTS_MAX);
        let (positions, locations) = {
            let index = self.read_index();
            let committed = index.committed.position;
            let state = index.streams.get(stream.as_str());
            let state = match state {
                Some(state) if state.positions.first().is_some_and(|first| *first < committed) => state,
                _ => return Err(StoreError::StreamNotFound(stream.clone())),
            };
            if state.deleted {
                return Err(StoreError::StreamDeleted(stream.clone()));
            }
            let visible = state.positions.partition_point(|position| *position < committed);
            let versions: Vec<u64> = match direction {
                Direction::Forward => (from_version..visible as u64).take(max_count).collect(),
                Direction::Backward => {
                    let last = if from_version == STREAM_END { visible as u64 - 1 } else { from_version };
                    let last = last.min(visible as u64 - 1);
                    (0..=last).rev().take(max_count).collect()
                }
            };
            let positions: Vec<u64> =
                versions.iter().map(|version| state.positions[*version as usize]).collect();
            let locations = positions.iter().map(|position| index.locate(*position)).collect::<Vec<_>>();
            (positions, locations)
        };
        let mut events = Vec::with_capacity(positions.len());
        for (position, location) in positions.into_iter().zip(locations) {
            let location = location.expect("a committed position has a sparse entry at or before it");
            let event = self.read_one(position, location)?;
            events.push(event);
        }
        Ok(events)
    }

    async fn read_all(
        &self,
        from_position: Position,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from_position = from_position.as_u64();
        let max_count = max_count.min(READ_EVENTS_MAX);
        let (committed, start, segments) = {
            let index = self.read_index();
            let committed = index.committed;
            if from_position >= committed.position || max_count == 0 {
                return Ok(Vec::new());
            }
            let start = index.locate(from_position).expect("a committed position has a sparse entry");
            let segments: Vec<(FileRef, String, Format)> = index.segments[start.segment..=committed.segment]
                .iter()
                .map(|segment| (segment.file.clone(), segment.name.clone(), segment.format))
                .collect();
            (committed, start, segments)
        };
        let mut events = Vec::with_capacity(max_count.min(1024));
        let mut offset = start.offset;
        for (index, (file, name, format)) in segments.iter().enumerate() {
            let segment = start.segment + index;
            let end = if segment == committed.segment {
                committed.end
            } else {
                file.size().map_err(|error| StoreError::io("reading a segment's size", error))?
            };
            if index > 0 {
                offset = segment::data_start(*format);
            }
            let mut scanner = Scanner::new(&**file, *format, offset, end);
            while let Some(raw) = scanner.next_record().map_err(|stop| scan_error(name, stop))? {
                let decoded =
                    record::decode(raw.body).map_err(|reason| corrupted(name, raw.offset, reason))?;
                if decoded.kind != Kind::Events {
                    continue;
                }
                push_events(&mut events, &decoded, from_position, committed.position, max_count)
                    .map_err(|reason| corrupted(name, raw.offset, reason))?;
                if events.len() >= max_count {
                    return Ok(events);
                }
            }
        }
        Ok(events)
    }

    fn head(&self) -> Position {
        Position::from_u64(self.shared.head.borrow().position)
    }

    async fn wait_for_head(&self, beyond: Position) -> Result<Position, StoreError> {
        let beyond = beyond.as_u64();
        let mut receiver = self.shared.head.subscribe();
        let head = *receiver
            .wait_for(|head| head.closed || head.position > beyond)
            .await
            .map_err(|_| StoreError::Closed)?;
        if head.position > beyond { Ok(Position::from_u64(head.position)) } else { Err(StoreError::Closed) }
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<bytes::Bytes>, StoreError> {
        check_checkpoint(name, &[])?;
        let path = self.shared.dir.join(CHECKPOINTS_DIR).join(name);
        tokio::task::spawn_blocking(move || match std::fs::read(&path) {
            Ok(bytes) if bytes.len() > CHECKPOINT_BYTES_MAX => Err(StoreError::Corrupted {
                file: path.display().to_string(),
                offset: 0,
                reason: format!("a checkpoint larger than {CHECKPOINT_BYTES_MAX} bytes"),
            }),
            Ok(bytes) => Ok(Some(bytes::Bytes::from(bytes))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StoreError::io(&format!("reading {}", path.display()), error)),
        })
        .await
        .map_err(|error| StoreError::Io(format!("reading a checkpoint: {error}")))?
    }

    async fn save_checkpoint(&self, name: &str, value: bytes::Bytes) -> Result<(), StoreError> {
        check_checkpoint(name, &value)?;
        if self.shared.head.borrow().closed {
            return Err(StoreError::Closed);
        }
        let dir = self.shared.dir.join(CHECKPOINTS_DIR);
        let path = dir.join(name);
        tokio::task::spawn_blocking(move || {
            disk::create_dir_all_durably(&dir)
                .and_then(|()| {
                    disk::write_file_durably(&path, &value, CHECKPOINT_FILE_MODE, disk::Existing::Replace)
                })
                .map_err(|error| StoreError::io(&format!("writing {}", path.display()), error))
        })
        .await
        .map_err(|error| StoreError::Io(format!("writing a checkpoint: {error}")))?
    }

    fn keeps_snapshots(&self) -> bool {
        true
    }

    async fn load_snapshot(&self, name: &str) -> Result<Option<Snapshot>, StoreError> {
        check_snapshot(name, &[])?;
        crate::snapshot_files::load(&self.shared.dir.join(SNAPSHOTS_DIR), name).await
    }

    async fn save_snapshot(&self, name: &str, snapshot: Snapshot) -> Result<(), StoreError> {
        check_snapshot(name, &snapshot.body)?;
        if self.shared.head.borrow().closed {
            return Err(StoreError::Closed);
        }
        crate::snapshot_files::save(self.shared.dir.join(SNAPSHOTS_DIR), name, snapshot).await
    }

    async fn stream_info(&self, stream: &StreamName) -> Result<Option<StreamInfo>, StoreError> {
        let index = self.read_index();
        let committed = index.committed.position;
        Ok(index.streams.get(stream.as_str()).and_then(|state| {
            let visible = state.positions.partition_point(|position| *position < committed);
            (visible > 0).then(|| StreamInfo { last_version: visible as u64 - 1, deleted: state.deleted })
        }))
    }

    async fn delete_stream(&self, stream: &StreamName, expected: ExpectedVersion) -> Result<(), StoreError> {
        self.submit(Operation::Delete { stream: stream.clone(), expected }).await.map(|_| ())
    }
}

impl EmbeddedStore {
    /// Reads the event at `position`, scanning from `location`.
    fn read_one(&self, position: u64, location: index::SparseEntry) -> Result<RecordedEvent, StoreError> {
        let (file, name, format) = {
            let index = self.read_index();
            let segment = &index.segments[location.segment];
            (segment.file.clone(), segment.name.clone(), segment.format)
        };
        let end = file.size().map_err(|error| StoreError::io("reading a segment's size", error))?;
        let mut scanner =
            Scanner::with_chunk(&*file, format, location.offset, end, segment::LOOKUP_CHUNK_BYTES);
        while let Some(raw) = scanner.next_record().map_err(|stop| scan_error(&name, stop))? {
            let decoded = record::decode(raw.body).map_err(|reason| corrupted(&name, raw.offset, reason))?;
            let count = decoded.events.len() as u64;
            if decoded.kind == Kind::Events && position < decoded.first_position + count {
                let mut events = Vec::with_capacity(1);
                push_events(&mut events, &decoded, position, position + 1, 1)
                    .map_err(|reason| corrupted(&name, raw.offset, reason))?;
                return events
                    .pop()
                    .ok_or_else(|| corrupted(&name, raw.offset, "position not in its record".into()));
            }
        }
        Err(corrupted(&name, location.offset, format!("position {position} not found from its index entry")))
    }
}

/// Adds the events of `record` with positions in `from..until` to `events`, up to `max_count`.
fn push_events(
    events: &mut Vec<RecordedEvent>,
    record: &record::Record,
    from: u64,
    until: u64,
    max_count: usize,
) -> Result<(), String> {
    let stream = std::str::from_utf8(&record.stream).map_err(|_| "stream name is not UTF-8".to_owned())?;
    let stream = StreamName::from_trusted(stream);
    for (offset, event) in record.events.iter().enumerate() {
        let position = record.first_position + offset as u64;
        if position < from {
            continue;
        }
        if position >= until || events.len() >= max_count {
            break;
        }
        let event_type =
            std::str::from_utf8(&event.event_type).map_err(|_| "event type is not UTF-8".to_owned())?;
        events.push(RecordedEvent {
            id: event.id,
            event_type: event_type.to_owned(),
            stream: stream.clone(),
            version: record.first_version + offset as u64,
            position: Position::from_u64(position),
            timestamp_ms: record.timestamp_ms,
            metadata: event.metadata.clone(),
            payload: event.payload.clone(),
        });
    }
    Ok(())
}

fn check_append(events: &[EventData]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::InvalidInput("an append needs at least one event".to_owned()));
    }
    if events.len() > APPEND_EVENTS_MAX {
        return Err(StoreError::InvalidInput(format!("an append takes at most {APPEND_EVENTS_MAX} events")));
    }
    let mut bytes = 0;
    for event in events {
        event.check()?;
        bytes += event.encoded_len();
    }
    if bytes > APPEND_BYTES_MAX {
        return Err(StoreError::InvalidInput(format!("an append takes at most {APPEND_BYTES_MAX} bytes")));
    }
    Ok(())
}

fn corrupted(file: &str, offset: u64, reason: String) -> StoreError {
    StoreError::Corrupted { file: file.to_owned(), offset, reason }
}

/// A scan that stops inside committed data: every such stop is corruption, whatever it would
/// be at the end of the log.
fn scan_error(file: &str, stop: ScanStop) -> StoreError {
    match stop {
        ScanStop::Short { offset } | ScanStop::PastEnd { offset } => {
            corrupted(file, offset, "record cut short".to_owned())
        }
        ScanStop::Invalid { offset, reason, .. } => corrupted(file, offset, reason),
        ScanStop::Io(error) => StoreError::io(&format!("reading {file}"), error),
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// The segment being appended to.
#[derive(Debug)]
struct Active {
    segment: usize,
    file: FileRef,
    len: u64,
}

/// Rebuilds the index from every segment of `dir`: sealed segments from their index files
/// where sound, by a scan otherwise; the last segment by a scan, cutting a torn write at its
/// end and refusing damage (see the module's rule). Nothing on disk changes before every
/// segment has been judged, but for the removal of temporary files.
fn recover(disk: &dyn Disk, dir: &Path) -> Result<(Index, Active, OpenReport), StoreError> {
    remove_temporaries(disk, dir)?;
    let mut first_positions =
        segment::list(disk, dir).map_err(|error| StoreError::io("listing the data directory", error))?;
    if first_positions.is_empty() {
        segment::create(disk, dir, &segment::file_name(0))
            .map_err(|error| StoreError::io("creating the first segment", error))?;
        first_positions.push(0);
    }

    let mut index = Index::default();
    let mut report = OpenReport { segments: first_positions.len(), ..OpenReport::default() };
    let last = first_positions.len() - 1;
    let mut active_len = 0;
    // Index files to write once every segment is known sound.
    let mut to_index = Vec::new();
    for (segment_number, first_position) in first_positions.iter().copied().enumerate() {
        let name = segment::file_name(first_position);
        let mut file = disk
            .open(&dir.join(&name), OpenMode::ReadWrite)
            .map_err(|error| StoreError::io(&format!("opening {name}"), error))?;
        if first_position != index.next_position {
            return Err(corrupted(
                &name,
                0,
                format!("segment starts at position {first_position}, the log is at {}", index.next_position),
            ));
        }
        let mut len = file.size().map_err(|error| StoreError::io(&format!("reading {name}"), error))?;
        let mut format = segment::format_of(&*file, len).map_err(|stop| scan_error(&name, stop))?;
        let sealed = segment_number != last;
        let summaries = if sealed {
            match summary::read(disk, dir, first_position, len) {
                Some(summaries) => {
                    report.indexed_segments += 1;
                    summaries
                }
                None => {
                    let (summaries, stop) = summary::scan(&*file, format, len);
                    if let Some(stop) = stop {
                        return Err(refusal(&*file, &name, len, stop));
                    }
                    to_index.push((first_position, len, summaries.clone()));
                    summaries
                }
            }
        } else {
            let (mut summaries, stop) = summary::scan(&*file, format, len);
            if let Some(stop) = stop {
                let end = torn_write_end(&*file, &name, len, stop)?;
                cut_torn_write(disk, dir, &*file, &name, end, len)?;
                report.truncated_bytes = len - end;
                len = end;
            }
            if format == Format::V1 {
                // The log goes on in the current format: the last segment is rewritten in it
                // (the same bodies), so that no file mixes two formats. Sealed segments of
                // the first format stay as they are, read with its rules.
                file = segment::convert(disk, dir, &name, &*file, len).map_err(|error| {
                    StoreError::io(&format!("rewriting {name} in the current format"), error)
                })?;
                format = Format::V2;
                len = file.size().map_err(|error| StoreError::io(&format!("reading {name}"), error))?;
                tracing::info!(file = %name, "segment of the first format rewritten in the current one");
                let (converted, stop) = summary::scan(&*file, format, len);
                if let Some(stop) = stop {
                    return Err(scan_error(&name, stop));
                }
                summaries = converted;
            }
            active_len = len;
            summaries
        };
        for summary in &summaries {
            apply(&mut index, summary, segment_number)
                .map_err(|reason| corrupted(&name, summary.offset, reason))?;
        }
        index.segments.push(SegmentRef { name, file, format });
    }
    for (first_position, len, summaries) in to_index {
        if let Err(error) = summary::write(disk, dir, first_position, len, &summaries) {
            tracing::warn!(segment = first_position, %error, "cannot write a segment index");
        }
    }

    let active_segment = index.segments.len() - 1;
    let file = index.segments[active_segment].file.clone();
    index.committed = Committed { position: index.next_position, segment: active_segment, end: active_len };
    report.events = index.next_position;
    Ok((index, Active { segment: active_segment, file, len: active_len }, report))
}

/// Removes segment files a crash left half made under their temporary name: they were never
/// renamed, so they never held acknowledged data.
fn remove_temporaries(disk: &dyn Disk, dir: &Path) -> Result<(), StoreError> {
    let names = disk.list(dir).map_err(|error| StoreError::io("listing the data directory", error))?;
    for name in &names {
        let is_segment =
            name.strip_suffix(segment::TEMPORARY_SUFFIX).and_then(segment::parse_file_name).is_some();
        if is_segment {
            tracing::info!(file = %name, "removing a segment file a crash left unfinished");
            disk.remove_file(&dir.join(name))
                .map_err(|error| StoreError::io(&format!("removing {name}"), error))?;
        }
    }
    // A checkpoint or a snapshot is written to a temporary file of its own, then renamed: a
    // crash in between leaves the temporary file, as large as a snapshot.
    for beside in [CHECKPOINTS_DIR, SNAPSHOTS_DIR] {
        let beside = dir.join(beside);
        let Ok(names) = disk.list(&beside) else { continue };
        for name in names.iter().filter(|name| name.ends_with(segment::TEMPORARY_SUFFIX)) {
            tracing::info!(file = %name, "removing a file a crash left unfinished");
            disk.remove_file(&beside.join(name))
                .map_err(|error| StoreError::io(&format!("removing {name}"), error))?;
        }
    }
    Ok(())
}

/// Where the last segment's sound records end, when the scan's stop is a torn write; the
/// corruption error otherwise.
fn torn_write_end(file: &dyn DiskFile, name: &str, len: u64, stop: ScanStop) -> Result<u64, StoreError> {
    match segment::judge(file, len, stop, true) {
        Ok(Verdict::Torn { offset, reason }) => {
            tracing::warn!(file = %name, offset, %reason, "a torn write at the end of the log");
            Ok(offset)
        }
        Ok(Verdict::Damage { offset, reason }) => Err(corrupted(name, offset, reason)),
        Err(error) => Err(StoreError::io(&format!("reading {name}"), error)),
    }
}

/// The error that stops an open at a bad record of a sealed segment: never a torn write, the
/// segment having been synced before the next one was made.
fn refusal(file: &dyn DiskFile, name: &str, len: u64, stop: ScanStop) -> StoreError {
    match segment::judge(file, len, stop, false) {
        Ok(Verdict::Torn { offset, reason } | Verdict::Damage { offset, reason }) => {
            corrupted(name, offset, reason)
        }
        Err(error) => StoreError::io(&format!("reading {name}"), error),
    }
}

/// Cuts the last segment at `end`, keeping what is cut beside the log, in `<name>.torn-<end>`:
/// a torn write was never acknowledged, but should the rule ever misjudge, those bytes are
/// the way back.
fn cut_torn_write(
    disk: &dyn Disk,
    dir: &Path,
    file: &dyn DiskFile,
    name: &str,
    end: u64,
    len: u64,
) -> Result<(), StoreError> {
    let kept = dir.join(format!("{name}.torn-{end}"));
    save_bytes(disk, dir, file, end, len, &kept)
        .map_err(|error| StoreError::io(&format!("keeping the torn tail of {name}"), error))?;
    tracing::warn!(file = %name, offset = end, bytes = len - end, kept = %kept.display(), "truncating a torn write at the end of the log");
    file.set_len(end).map_err(|error| StoreError::io(&format!("truncating {name}"), error))?;
    file.sync_all().map_err(|error| StoreError::io(&format!("syncing {name}"), error))
}

/// Copies `file[from..to]` to `path`, durably.
fn save_bytes(
    disk: &dyn Disk,
    dir: &Path,
    file: &dyn DiskFile,
    from: u64,
    to: u64,
    path: &Path,
) -> std::io::Result<()> {
    let mut bytes = vec![0u8; usize::try_from(to - from).unwrap_or(usize::MAX)];
    file.read_exact_at(&mut bytes, from)?;
    let kept = disk.open(path, OpenMode::Truncate)?;
    kept.write_all_at(&bytes, 0)?;
    kept.sync_all()?;
    disk.sync_dir(dir)
}

/// Adds a record's summary to the index during recovery, checking that it follows.
fn apply(index: &mut Index, summary: &Summary, segment: usize) -> Result<(), String> {
    if summary.first_position != index.next_position {
        return Err(format!(
            "record at position {}, the log is at {}",
            summary.first_position, index.next_position
        ));
    }
    let current = index.streams.get(summary.stream.as_str()).and_then(|state| state.last_version());
    match summary.kind {
        Kind::Events => {
            let expected_first = current.map_or(0, |version| version + 1);
            if summary.first_version != expected_first {
                return Err(format!(
                    "stream {} version {} follows {current:?}",
                    summary.stream, summary.first_version
                ));
            }
            index.add_events(
                &summary.stream,
                summary.first_id,
                summary.first_position,
                summary.count as usize,
                segment,
                summary.offset,
            );
        }
        Kind::StreamDeleted => index.mark_deleted(&summary.stream, segment, summary.offset),
    }
    Ok(())
}

/// The thread that owns the active segment and writes every append.
struct Writer {
    shared: Arc<Shared>,
    active: Active,
    options: Options,
    /// Set after an I/O error: from then on every append is refused.
    failed: Option<String>,
    _lock: DirLock,
    buffer: Vec<u8>,
    /// Threads writing the index files of sealed segments, joined before the writer stops.
    indexing: Vec<JoinHandle<()>>,
    /// Written groups on their way to the sync thread.
    sync: std::sync::mpsc::SyncSender<SyncItem>,
    syncer: Option<JoinHandle<()>>,
}

type Reply = (oneshot::Sender<Result<AppendResult, StoreError>>, Result<AppendResult, StoreError>);

/// A written group: what the sync thread makes durable, publishes, then answers.
struct SyncItem {
    file: FileRef,
    has_bytes: bool,
    segment: usize,
    end: u64,
    position: u64,
    replies: Vec<Reply>,
    /// Requests waiting in the writer's queue when it sent this group: the next groups.
    queued_behind: usize,
}

/// Groups written but not yet synced, at most: the writer waits beyond it.
const SYNC_QUEUE_GROUPS: usize = 4;
/// Most written groups one fdatasync covers.
const SYNC_GROUPS_MAX: usize = 64;

/// The sync thread: one `fdatasync` for every group written since the last one, then the
/// committed position moves and the appends are answered. The writer meanwhile writes the
/// next groups, so the disk is never idle waiting for the writer, nor the writer for it.
/// While the writer says more appends are queued behind the last group, the sync waits up to
/// `gather` for the groups it is writing ([`gather_wait`]).
fn run_syncer(shared: Arc<Shared>, receiver: std::sync::mpsc::Receiver<SyncItem>, gather: Duration) {
    while let Ok(first) = receiver.recv() {
        let started = Instant::now();
        let mut appends = first.replies.len();
        let mut items = vec![first];
        loop {
            while items.len() < SYNC_GROUPS_MAX {
                match receiver.try_recv() {
                    Ok(item) => {
                        appends += item.replies.len();
                        items.push(item);
                    }
                    Err(_) => break,
                }
            }
            let queued_behind = items.last().map_or(0, |item| item.queued_behind);
            let gathered = Gathered { groups: items.len(), appends, queued_behind };
            let Some(wait) = gather_wait(gather, started.elapsed(), gathered) else {
                break;
            };
            match receiver.recv_timeout(wait) {
                Ok(item) => {
                    appends += item.replies.len();
                    items.push(item);
                }
                Err(_) => break,
            }
        }
        if cfg!(feature = "unsafe-ack-before-sync") {
            // The broken store the power-loss tests must catch: answered, then synced.
            answer(&shared, &mut items);
        }
        let mut synced: Vec<&FileRef> = Vec::new();
        let mut failure = shared.failure();
        for item in items.iter().filter(|item| item.has_bytes) {
            if failure.is_some() || synced.iter().any(|file| Arc::ptr_eq(file, &item.file)) {
                continue;
            }
            // Files are synced in the order they were written: an older segment's end before a
            // newer segment's start.
            if let Some(previous) = synced.last()
                && let Err(error) = previous.sync_data()
            {
                failure = Some(format!("syncing a segment: {error}"));
                continue;
            }
            synced.push(&item.file);
        }
        if failure.is_none()
            && let Some(last) = synced.last()
            && let Err(error) = last.sync_data()
        {
            failure = Some(format!("syncing segment: {error}"));
        }
        shared.syncs.fetch_add(synced.len() as u64, Ordering::Relaxed);
        if let Some(reason) = failure {
            shared.fail(&reason);
            for item in items {
                for (reply, _) in item.replies {
                    let _ = reply.send(Err(StoreError::Failed(reason.clone())));
                }
            }
            continue;
        }
        answer(&shared, &mut items);
    }
}

/// What the sync thread holds for its next `fdatasync`, and what it knows of what comes next.
#[derive(Debug, Clone, Copy)]
struct Gathered {
    /// Written groups.
    groups: usize,
    /// Appends of those groups.
    appends: usize,
    /// Requests waiting in the writer's queue when it sent the last group: the writer is
    /// about to write them.
    queued_behind: usize,
}

/// How much longer the sync thread may wait for the next written group before its
/// `fdatasync`, having waited `waited` since it took the first; `None` to sync now. It waits
/// only while requests are queued behind the last group (a lone writer's never are), only up
/// to `gather` in all, and only while the sync covers fewer than [`SYNC_GROUPS_MAX`] groups and
/// [`SYNC_GATHER_APPENDS_MAX`] appends.
///
/// Waiting on the queue alone, not on how many appends the last sync covered (whose writers,
/// just answered, will append again): on a busy machine those writers wait for a core, and a
/// sync held back for them leaves the disk idle; runs of `eventstore-bench` measured that rule
/// slower than syncing at once with 256 writers.
fn gather_wait(gather: Duration, waited: Duration, gathered: Gathered) -> Option<Duration> {
    if gathered.queued_behind == 0
        || gathered.groups >= SYNC_GROUPS_MAX
        || gathered.appends >= SYNC_GATHER_APPENDS_MAX
    {
        return None;
    }
    gather.checked_sub(waited).filter(|left| !left.is_zero())
}

/// Publishes the committed position of the last of `items` and sends their answers.
fn answer(shared: &Shared, items: &mut [SyncItem]) {
    let Some(last) = items.last() else { return };
    {
        let mut index = shared.index.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        index.committed = Committed { position: last.position, segment: last.segment, end: last.end };
    }
    let position = last.position;
    shared.head.send_modify(|head| head.position = position);
    for item in items {
        for (reply, result) in item.replies.drain(..) {
            let _ = reply.send(result);
        }
    }
}

/// An append of the current group, kept until the group is durable.
struct Pending {
    first_position: u64,
    stream: StreamName,
    first_version: u64,
    ids: Vec<Uuid>,
}

impl Writer {
    fn run(mut self, mut receiver: mpsc::Receiver<AppendRequest>) {
        let mut group = Vec::with_capacity(GROUP_APPENDS_MAX);
        let mut closing = false;
        while let Some(first) = receiver.blocking_recv() {
            if matches!(first.operation, Operation::Close) {
                break;
            }
            let mut bytes = first.size();
            group.push(first);
            while group.len() < GROUP_APPENDS_MAX && bytes < GROUP_BYTES_MAX {
                match receiver.try_recv() {
                    Ok(request) if matches!(request.operation, Operation::Close) => {
                        closing = true;
                        break;
                    }
                    Ok(request) => {
                        bytes += request.size();
                        group.push(request);
                    }
                    Err(_) => break,
                }
            }
            if let Some(mut item) = self.commit(&mut group) {
                item.queued_behind = receiver.len();
                if let Err(std::sync::mpsc::SendError(item)) = self.sync.send(item) {
                    for (reply, _) in item.replies {
                        let _ = reply.send(Err(StoreError::Closed));
                    }
                }
            }
            if closing {
                break;
            }
            self.indexing.retain(|thread| !thread.is_finished());
        }
        // Appends queued after the close are refused when the receiver goes.
        receiver.close();
        while let Ok(request) = receiver.try_recv() {
            let _ = request.reply.send(Err(StoreError::Closed));
        }
        // The sync thread finishes the groups it has, then stops.
        drop(self.sync);
        if let Some(syncer) = self.syncer.take() {
            let _ = syncer.join();
        }
        self.shared.head.send_modify(|head| head.closed = true);
        for thread in self.indexing.drain(..) {
            let _ = thread.join();
        }
        tracing::debug!("event store writer stopped");
    }

    /// Checks, encodes and writes a group of appends: what the sync thread must make durable
    /// before answering each, or `None` if they were answered already (refused after a failure).
    fn commit(&mut self, group: &mut Vec<AppendRequest>) -> Option<SyncItem> {
        if self.failed.is_none()
            && let Some(reason) = self.shared.failure()
        {
            self.failed = Some(reason);
        }
        if let Some(reason) = &self.failed {
            for request in group.drain(..) {
                let _ = request.reply.send(Err(StoreError::Failed(reason.clone())));
            }
            return None;
        }
        if self.active.len >= self.options.segment_bytes_max
            && let Err(error) = self.roll()
        {
            self.fail(format!("starting a new segment: {error}"));
            return self.commit(group);
        }

        self.buffer.clear();
        let timestamp_ms = now_ms();
        let mut results = Vec::with_capacity(group.len());
        {
            let shared = self.shared.clone();
            let mut index = shared.index.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let group_first_position = index.next_position;
            let mut pending: Vec<Pending> = Vec::new();
            for request in group.iter() {
                let result = match &request.operation {
                    Operation::Append { stream, expected, events } => self.prepare_append(
                        &mut index,
                        &mut pending,
                        group_first_position,
                        timestamp_ms,
                        stream,
                        *expected,
                        events,
                    ),
                    Operation::Delete { stream, expected } => {
                        self.prepare_delete(&mut index, timestamp_ms, stream, *expected)
                    }
                    Operation::Close => Err(StoreError::Closed),
                };
                results.push(result);
            }
        }

        let replies: Vec<Reply> = group.drain(..).map(|request| request.reply).zip(results).collect();
        let has_bytes = !self.buffer.is_empty();
        if has_bytes {
            if let Err(error) = self.active.file.write_all_at(&self.buffer, self.active.len) {
                self.fail(format!("writing segment {}: {error}", self.active.segment));
                let reason = self.failed.clone().unwrap_or_default();
                for (reply, _) in replies {
                    let _ = reply.send(Err(StoreError::Failed(reason.clone())));
                }
                return None;
            }
            self.active.len += self.buffer.len() as u64;
        }
        // Every answer, refusals and repeats included, leaves through the sync thread, in order:
        // none may go out before what it saw is on disk.
        let (file, position) = {
            let index = self.shared.index.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            (index.segments[self.active.segment].file.clone(), index.next_position)
        };
        Some(SyncItem {
            file,
            has_bytes,
            segment: self.active.segment,
            end: self.active.len,
            position,
            replies,
            queued_behind: 0,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn prepare_append(
        &mut self,
        index: &mut Index,
        pending: &mut Vec<Pending>,
        group_first_position: u64,
        timestamp_ms: u64,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<AppendResult, StoreError> {
        let first_id = events[0].id;
        if let Some(original_position) = index.batch_first_ids.get(&first_id).copied() {
            let original = if original_position >= group_first_position {
                pending
                    .iter()
                    .find(|batch| batch.first_position == original_position)
                    .map(|batch| (batch.stream.clone(), batch.first_version, batch.ids.clone()))
            } else {
                Some(read_batch(index, original_position)?)
            };
            let Some((original_stream, first_version, ids)) = original else {
                return Err(StoreError::Failed(format!("batch at position {original_position} not found")));
            };
            let same_ids =
                ids.len() == events.len() && ids.iter().zip(events).all(|(id, event)| *id == event.id);
            let original_expected = if first_version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(first_version - 1)
            };
            if original_stream == *stream
                && same_ids
                && (expected == ExpectedVersion::Any || expected == original_expected)
            {
                let count = ids.len() as u64;
                return Ok(AppendResult {
                    next_expected_version: first_version + count - 1,
                    first_position: Position::from_u64(original_position),
                    last_position: Position::from_u64(original_position + count - 1),
                });
            }
            return Err(StoreError::DuplicateEvent { stream: stream.clone(), id: first_id });
        }

        let state = index.streams.get(stream.as_str());
        if state.is_some_and(|state| state.deleted) {
            return Err(StoreError::StreamDeleted(stream.clone()));
        }
        let current = state.and_then(|state| state.last_version());
        check_expected(stream, expected, current)?;

        let first_version = current.map_or(0, |version| version + 1);
        let first_position = index.next_position;
        let offset = self.active.len + self.buffer.len() as u64;
        record::encode_events(
            &mut self.buffer,
            first_position,
            timestamp_ms,
            stream.as_str(),
            first_version,
            events,
        );
        index.add_events(stream, first_id, first_position, events.len(), self.active.segment, offset);
        pending.push(Pending {
            first_position,
            stream: stream.clone(),
            first_version,
            ids: events.iter().map(|event| event.id).collect(),
        });
        let count = events.len() as u64;
        Ok(AppendResult {
            next_expected_version: first_version + count - 1,
            first_position: Position::from_u64(first_position),
            last_position: Position::from_u64(first_position + count - 1),
        })
    }

    fn prepare_delete(
        &mut self,
        index: &mut Index,
        timestamp_ms: u64,
        stream: &StreamName,
        expected: ExpectedVersion,
    ) -> Result<AppendResult, StoreError> {
        let state =
            index.streams.get(stream.as_str()).ok_or_else(|| StoreError::StreamNotFound(stream.clone()))?;
        if state.deleted {
            return Err(StoreError::StreamDeleted(stream.clone()));
        }
        let current = state.last_version();
        check_expected(stream, expected, current)?;
        let last_version = current.expect("a stream in the index has an event");
        let offset = self.active.len + self.buffer.len() as u64;
        record::encode_deleted(
            &mut self.buffer,
            index.next_position,
            timestamp_ms,
            stream.as_str(),
            last_version,
        );
        index.mark_deleted(stream, self.active.segment, offset);
        let position = index.next_position.saturating_sub(1);
        Ok(AppendResult {
            next_expected_version: last_version,
            first_position: Position::from_u64(position),
            last_position: Position::from_u64(position),
        })
    }

    /// Seals the active segment and starts a new one named after the next position. The
    /// sealed segment's index file is written in the background: until it is, an open scans
    /// that segment instead.
    fn roll(&mut self) -> std::io::Result<()> {
        // The sealed segment is whole on disk before a newer one exists: recovery accepts a
        // torn write only at the end of the last segment.
        self.active.file.sync_data()?;
        let mut index = self.shared.index.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let first_position = index.next_position;
        let name = segment::file_name(first_position);
        let file = segment::create(&*self.shared.disk, &self.shared.dir, &name)?;
        let writer = file.clone();
        let sealed = index.segments[self.active.segment].file.clone();
        let sealed_first_position = segment::parse_file_name(&index.segments[self.active.segment].name)
            .expect("segment names are parsed on open");
        index.segments.push(SegmentRef { name, file, format: Format::V2 });
        let segment = index.segments.len() - 1;
        index.committed.segment = segment;
        index.committed.end = segment::FILE_HEADER_BYTES;
        drop(index);

        let sealed_len = self.active.len;
        let (disk, dir) = (self.shared.disk.clone(), self.shared.dir.clone());
        self.indexing.push(std::thread::spawn(move || {
            let (summaries, stop) = summary::scan(&*sealed, Format::V2, sealed_len);
            if stop.is_some() {
                tracing::error!(segment = sealed_first_position, "a sealed segment does not scan whole");
                return;
            }
            if let Err(error) = summary::write(&*disk, &dir, sealed_first_position, sealed_len, &summaries) {
                tracing::warn!(segment = sealed_first_position, %error, "cannot write a segment index");
            }
        }));
        self.active = Active { segment, file: writer, len: segment::FILE_HEADER_BYTES };
        Ok(())
    }

    fn fail(&mut self, reason: String) {
        self.shared.fail(&reason);
        self.failed = Some(reason);
    }
}

impl AppendRequest {
    fn size(&self) -> usize {
        match &self.operation {
            Operation::Append { events, .. } => events.iter().map(EventData::encoded_len).sum(),
            Operation::Delete { .. } | Operation::Close => 64,
        }
    }
}

fn check_expected(
    stream: &StreamName,
    expected: ExpectedVersion,
    current: Option<u64>,
) -> Result<(), StoreError> {
    let holds = match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => current.is_none(),
        ExpectedVersion::Exact(version) => current == Some(version),
    };
    if holds {
        Ok(())
    } else {
        Err(StoreError::WrongExpectedVersion { stream: stream.clone(), expected, actual: current })
    }
}

/// The stream, first version and event ids of the durable batch at `position`.
fn read_batch(index: &Index, position: u64) -> Result<(StreamName, u64, Vec<Uuid>), StoreError> {
    let location = index.locate(position).expect("an indexed batch has a sparse entry");
    let segment = &index.segments[location.segment];
    // Written but not yet synced batches count too: the writer checks repeats against them.
    let end = segment.file.size().map_err(|error| StoreError::io("reading a segment's size", error))?;
    let mut scanner = Scanner::with_chunk(
        &*segment.file,
        segment.format,
        location.offset,
        end,
        segment::LOOKUP_CHUNK_BYTES,
    );
    while let Some(raw) = scanner.next_record().map_err(|stop| scan_error(&segment.name, stop))? {
        let offset = raw.offset;
        let decoded = record::decode(raw.body).map_err(|reason| corrupted(&segment.name, offset, reason))?;
        if decoded.kind == Kind::Events && decoded.first_position == position {
            let stream = std::str::from_utf8(&decoded.stream)
                .map_err(|_| corrupted(&segment.name, offset, "stream name is not UTF-8".to_owned()))?;
            let ids = decoded.events.iter().map(|event| event.id).collect();
            return Ok((StreamName::from_trusted(stream), decoded.first_version, ids));
        }
    }
    Err(corrupted(&segment.name, location.offset, format!("batch at position {position} not found")))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::EventStore as _;

    fn event(tag: &str) -> EventData {
        EventData::new(Uuid::now_v7(), "ThingHappened", Bytes::from(format!("payload {tag}")))
    }

    /// The bytes of a segment of the first format starting at `first_position`: one record per
    /// append of (stream, first version, events), each a length, a body checksum and the body.
    fn first_format_segment(first_position: u64, appends: &[(&str, u64, &[EventData])]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut position = first_position;
        for (stream, first_version, events) in appends {
            let mut current = Vec::new();
            record::encode_events(&mut current, position, 1, stream, *first_version, events);
            bytes.extend_from_slice(&current[..8]);
            bytes.extend_from_slice(&current[12..current.len() - 1]);
            position += events.len() as u64;
        }
        bytes
    }

    #[tokio::test]
    async fn a_log_of_the_first_format_is_read_and_goes_on_in_the_current_one() {
        let dir = tempfile::tempdir().expect("dir");
        let events: Vec<EventData> = (0..6).map(|index| event(&index.to_string())).collect();
        let sealed =
            first_format_segment(0, &[("listing-1", 0, &events[0..2]), ("listing-2", 0, &events[2..3])]);
        let mut last = first_format_segment(3, &[("listing-1", 2, &events[3..5])]);
        // A torn write at the end, cut by the first format's rule.
        let torn = first_format_segment(5, &[("listing-2", 1, &events[5..6])]);
        last.extend_from_slice(&torn[..torn.len() / 2]);
        std::fs::write(dir.path().join(segment::file_name(0)), &sealed).expect("write");
        std::fs::write(dir.path().join(segment::file_name(3)), &last).expect("write");

        let (store, report) = EmbeddedStore::open(dir.path(), Options::default()).expect("open");
        assert_eq!((report.segments, report.events), (2, 5));
        assert_eq!(report.truncated_bytes, (torn.len() / 2) as u64);
        let read = store.read_all(Position::START, 100).await.expect("read all");
        let ids: Vec<Uuid> = read.iter().map(|event| event.id).collect();
        assert_eq!(ids, events[..5].iter().map(|event| event.id).collect::<Vec<_>>());
        let stream = StreamName::new("listing-1").expect("name");
        let appended =
            store.append(&stream, ExpectedVersion::Exact(3), vec![event("new")]).await.expect("append");
        assert_eq!(appended.first_position, Position::from_u64(5));
        store.close().await;

        // The sealed segment is as it was; the last one was rewritten in the current format.
        assert_eq!(std::fs::read(dir.path().join(segment::file_name(0))).expect("read"), sealed);
        let rewritten = std::fs::read(dir.path().join(segment::file_name(3))).expect("read");
        assert_eq!(rewritten[..8], segment::FILE_MAGIC);
        let (store, report) = EmbeddedStore::open(dir.path(), Options::default()).expect("reopen");
        assert_eq!((report.events, report.indexed_segments, report.truncated_bytes), (6, 1, 0));
        let read = store.read_stream(&stream, 0, Direction::Forward, 100).await.expect("read stream");
        assert_eq!(read.iter().map(|event| event.version).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        store.close().await;

        let verified = verify(dir.path()).expect("verify");
        assert!(verified.is_sound(), "{:?}", verified.problems);
        let formats: Vec<u8> = verified.segments.iter().map(|segment| segment.format).collect();
        assert_eq!(formats, [1, 2]);
    }

    #[tokio::test]
    async fn an_empty_last_segment_of_the_first_format_takes_appends() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join(segment::file_name(0)), b"").expect("write");
        let (store, report) = EmbeddedStore::open(dir.path(), Options::default()).expect("open");
        assert_eq!(report.events, 0);
        let stream = StreamName::new("listing-1").expect("name");
        store.append(&stream, ExpectedVersion::NoStream, vec![event("first")]).await.expect("append");
        store.close().await;
        let (store, report) = EmbeddedStore::open(dir.path(), Options::default()).expect("reopen");
        assert_eq!(report.events, 1);
        store.close().await;
    }

    fn gathered(groups: usize, appends: usize, queued_behind: usize) -> Gathered {
        Gathered { groups, appends, queued_behind }
    }

    #[test]
    fn a_sync_waits_for_nothing_when_nothing_is_queued_behind() {
        let gather = Duration::from_micros(SYNC_GATHER_US_MAX);
        // A lone writer: its append is the only request, so nothing is queued behind it.
        assert_eq!(gather_wait(gather, Duration::ZERO, gathered(1, 1, 0)), None);
        assert_eq!(gather_wait(gather, Duration::ZERO, gathered(3, 40, 0)), None);
        // No gathering at all.
        assert_eq!(gather_wait(Duration::ZERO, Duration::ZERO, gathered(1, 1, 5)), None);
    }

    #[test]
    fn a_sync_waits_only_the_rest_of_its_bound() {
        let gather = Duration::from_micros(200);
        assert_eq!(gather_wait(gather, Duration::ZERO, gathered(1, 1, 3)), Some(gather));
        let waiting = gathered(2, 40, 3);
        assert_eq!(gather_wait(gather, Duration::from_micros(150), waiting), Some(Duration::from_micros(50)));
        assert_eq!(gather_wait(gather, Duration::from_micros(200), waiting), None);
        assert_eq!(gather_wait(gather, Duration::from_micros(900), waiting), None);
    }

    #[test]
    fn a_sync_stops_gathering_at_its_limits() {
        let gather = Duration::from_micros(SYNC_GATHER_US_MAX);
        let most = SYNC_GATHER_APPENDS_MAX;
        assert_eq!(gather_wait(gather, Duration::ZERO, gathered(SYNC_GROUPS_MAX, 64, 3)), None);
        assert_eq!(gather_wait(gather, Duration::ZERO, gathered(2, most, 3)), None);
        assert!(gather_wait(gather, Duration::ZERO, gathered(SYNC_GROUPS_MAX - 1, most - 1, 3)).is_some());
    }

    /// With the longest gathering allowed, a lone writer still syncs each append at once: 50
    /// appends one after the other take less than 50 gathering bounds.
    #[tokio::test]
    async fn a_lone_writer_is_not_held_back_by_gathering() {
        let dir = tempfile::tempdir().expect("dir");
        let options = Options { sync_gather_us: SYNC_GATHER_US_MAX, ..Options::default() };
        let (store, _) = EmbeddedStore::open(dir.path(), options).expect("open");
        let stream = StreamName::new("listing-1").expect("name");
        let appends = 50;
        let started = Instant::now();
        let mut expected = ExpectedVersion::NoStream;
        for version in 0..appends {
            let appended = store.append(&stream, expected, vec![event("lone")]).await.expect("append");
            assert_eq!(appended.next_expected_version, version);
            expected = ExpectedVersion::Exact(version);
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_micros(SYNC_GATHER_US_MAX) * appends as u32,
            "{appends} lone appends took {elapsed:?}"
        );
        store.close().await;
    }

    /// Many writers at once, with the longest gathering: every append is answered, in order
    /// on its stream, and all are in the log after a reopen.
    #[tokio::test]
    async fn concurrent_writers_are_all_answered_with_gathering() {
        let dir = tempfile::tempdir().expect("dir");
        let options = Options { sync_gather_us: SYNC_GATHER_US_MAX, ..Options::default() };
        let (store, _) = EmbeddedStore::open(dir.path(), options.clone()).expect("open");
        let (writers, appends) = (64u64, 20u64);
        let mut tasks = tokio::task::JoinSet::new();
        for writer in 0..writers {
            let store = store.clone();
            tasks.spawn(async move {
                let stream = StreamName::new(&format!("writer-{writer}")).expect("name");
                let mut expected = ExpectedVersion::NoStream;
                for version in 0..appends {
                    let appended =
                        store.append(&stream, expected, vec![event("many")]).await.expect("append");
                    assert_eq!(appended.next_expected_version, version);
                    expected = ExpectedVersion::Exact(version);
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.expect("writer");
        }
        store.close().await;
        let (store, report) = EmbeddedStore::open(dir.path(), options).expect("reopen");
        assert_eq!(report.events, writers * appends);
        store.close().await;
    }
}
