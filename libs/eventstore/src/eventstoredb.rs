//! The event log on EventStoreDB (behind the cargo feature `eventstoredb`), through its official
//! gRPC client (the `eventstore` crate, 4.0.0). The store holds a [`Client`]; every method is one
//! or a few gRPC calls, and a task follows `$all` to keep [`EventStore::head`] synchronous.
//!
//! # How our model maps onto EventStoreDB
//!
//! **Positions.** An event's [`Position`] is its *prepare position* in `$all` (the byte offset of
//! its record in the transaction log). Every event this store writes comes from a gRPC append,
//! and the server writes an append's events as *self-committed* prepares (flag `IsCommitted`, no
//! separate commit record) with the single writer, one after the other: within an append the
//! events have increasing prepare positions, and across appends the prepare positions follow the
//! commit order, which is `$all`'s order. So the prepare position is a u64 that increases along
//! `$all`, with gaps (it counts bytes), as [`Position`] allows. The assumption fails only for
//! events written by the TCP API's explicit transactions (deprecated, gone from recent servers),
//! whose prepares may interleave with other writes while their commit comes later: a read of
//! the log that meets an event whose prepare position does not increase answers
//! [`StoreError::Failed`] rather than an order it cannot keep.
//!
//! Commit positions: it is sometimes said that an append's events share one commit position.
//! What the server reports for a self-committed event is its own offset as both its commit and
//! its prepare position (reads of `$all` over TCP show `2746/2746`, `2842/2842`... for the
//! events of one 4096-event append in EventStore-Client-Dotnet#20, and KurrentDB#2522 made gRPC
//! report the same). The cursor arithmetic below depends on it (a read from `(p, p)` would miss
//! a later event of the same append at `(c, p')` with `c < p`), so a read of the log that meets
//! an event of ours whose two positions differ answers [`StoreError::Failed`] too.
//!
//! A cursor is usually an event's position plus one ([`Position::after`]), not a position of
//! `$all`. To read from `from`, the store reads `$all` forwards from `(commit: from - 1,
//! prepare: from - 1)` (or from the start when `from` is [`Position::START`]) and drops what lies
//! below `from`. For a self-committed event at prepare position `p` the server reports the
//! position `(p, p)` (commit and prepare positions are both the record's own offset, as the
//! server's reads of `$all` report them since it fixed EventStore-Client-Dotnet#20), so
//! `from - 1 = p` names a record the server accepts. When `from` is an event's own position
//! (`from - 1` is then inside the record before), the server refuses it (`InvalidPosition` on
//! recent servers, an error on older ones): the read starts at `(from, from)` instead, a forwards
//! read including the record it starts at. A cursor that is neither (a number made up, or a
//! position of another backend) is read from the beginning of `$all`, skipping: correct but
//! slow, and logged. Events of `$`-prefixed streams or of `$`-prefixed
//! types (the server's own: stream metadata, statistics, projections' links, tombstones) and the
//! checkpoint streams are never returned, so a read keeps reading pages of `$all` until it has
//! an event of ours or reaches the end.
//!
//! **The head.** [`EventStore::head`] is a cached `watch` value: at connect, `$all` is read
//! backwards to the last event of ours (its position plus one, or [`Position::START`]); then a
//! task subscribes to `$all` from the last record read and moves the head at each event of ours
//! the server pushes (from any writer), and each append of this store moves it at once. The
//! subscription is made again after an error (the backwards read first, so nothing is missed).
//! [`EventStoreDbStore::close`] stops the task.
//!
//! The positions of the events of a stream read (not of `$all`) are sent by EventStoreDB 22.6 and
//! newer only: older servers are not supported (an append says so).
//!
//! **Appends.** [`ExpectedVersion`] maps to [`ExpectedRevision`] (`Any`, `NoStream`,
//! `Exact(v)`); our event id is the server's event id, the type its type, the payload its data
//! (content type `application/octet-stream`) and our metadata its custom metadata. The server's
//! answer names the last event's revision but not the positions of the first and last events (a
//! repeat answers no position at all), so the store reads those two events back, one read each,
//! at the same time: an append costs a metadata read (see deletes), the append and that read.
//! A refused version is [`StoreError::WrongExpectedVersion`] with the stream's actual version.
//!
//! **Idempotency** is the server's, which is narrower than our contract's, and these are gaps:
//! - a repeat with `NoStream` or `Exact(v)` is recognized by the ids at the expected place, so
//!   it returns the original result even after later appends, as the contract says;
//! - a repeat with `Any` is recognized from the server's in-memory cache of recent event ids:
//!   best effort, so after a server restart (or many events later) it is written again;
//! - a batch whose first id was appended before in another batch of the same stream is refused
//!   by the server as a wrong expected version; with `Any` (which never fails a version check)
//!   the store answers [`StoreError::DuplicateEvent`], with `NoStream`/`Exact` it answers
//!   [`StoreError::WrongExpectedVersion`];
//! - event ids are unique per stream only: the same ids appended to *another* stream are
//!   written again, where the embedded and PostgreSQL stores answer `DuplicateEvent`.
//!
//! **Deletes.** [`EventStore::delete_stream`] is the server's soft delete with the expected
//! revision (checked by the server, atomically), which sets the stream metadata's truncate
//! before (`$tb`) to its maximum. The server lets a later append recreate a soft-deleted stream;
//! our contract refuses it. So the store then writes the property `symbiose-deleted: true` into
//! the stream's metadata (which the server answers by setting `$tb` to the last version plus
//! one, keeping the property), and takes a stream as deleted when its metadata has `$tb` or that
//! property: this store never sets `$tb` otherwise. Each append and read of a stream reads its
//! metadata first (at the same time as the read) and refuses a deleted one; a deletion seen is
//! remembered by the process. What remains:
//! - **a race:** an append of another process that read the metadata just before a delete
//!   succeeded is still written after it (the server recreates the stream). Its events are in
//!   `$all`, the stream still reads as deleted and takes no more appends;
//! - a crash between the soft delete and the property leaves `$tb` at its maximum and no
//!   property: the stream reads as deleted, and [`EventStore::stream_info`] writes the property
//!   then, to learn the last version;
//! - **scavenging**: the server's scavenge removes the events of a soft-deleted stream (those
//!   before `$tb`) from the log, so after a scavenge they are no longer in `read_all`, which our
//!   contract keeps. Do not scavenge a store whose deleted streams' events matter (a copy of
//!   the log, a replay).
//!
//! **Checkpoints** live in a stream each, `symbiose-checkpoint-<name>`, whose metadata sets
//! `$maxCount` to 1 (written the first time this process saves that checkpoint): a save is one
//! append of one event (type `symbiose-checkpoint`, the value its data), atomic and durable as
//! every append, and a load reads the stream's last event. Those streams are not returned by
//! `read_all` and do not move the head; appends, reads and deletes of streams named
//! `symbiose-checkpoint-...` are refused as [`StoreError::InvalidInput`].
//!
//! **Leases** live in a stream each, `symbiose-lease-<name>`, whose metadata sets `$maxCount`
//! to [`LEASE_RECORDS_KEPT`]: each record (type `symbiose-lease`, a line `lease/1 <generation>
//! held|released <holder>`) is appended at the revision its writer read, so of two writers one
//! wins. The server keeps no deadline: a holder renews by appending a record after its own, and
//! another process takes the lease once the record it read has stayed the last for a whole TTL
//! of its own clock ([`crate::lease::Observed`]), so the replicas' clocks are never compared.
//! Those streams are hidden and reserved like the checkpoints'.
//!
//! **Snapshots** are not kept on the server (an event holds at most 16 MiB, a view's snapshot
//! far more): with [`EventStoreDbOptions::snapshot_dir`] they are files in a directory of the
//! process, a cache only (a replica with an empty one replays the log), read back after the
//! same checks as any snapshot (the build that wrote it, the event at its position).
//!
//! **Limits and errors.** The limits of the other backends are checked before any call
//! ([`READ_EVENTS_MAX`], [`APPEND_EVENTS_MAX`], [`APPEND_BYTES_MAX`] and the event sizes); the
//! server's own maximum append size (16 MiB by default) matches [`APPEND_BYTES_MAX`]. The
//! client's errors are [`StoreError::Io`] naming the operation (a stream that is missing or
//! deleted is [`StoreError::StreamNotFound`] or [`StoreError::StreamDeleted`]); nothing panics.
//!
//! **Namespaces.** [`EventStoreDbStore::connect_with`] may put a namespace before every stream
//! name on the server ([`EventStoreDbOptions::namespace`]): the store then sees only its
//! namespace's streams, in its reads, its head and its checkpoints, so that several stores (the
//! contract's checks, each on a "fresh" store) share one server. Positions stay the server's.
//! Namespaces must not be prefixes of one another (end them with `.`).
//!
//! **Connection.** [`EventStoreDbStore::connect`] takes an `esdb://` or `esdb+discover://`
//! connection string (`esdb://admin:changeit@127.0.0.1:2113?tls=false`). Its password is never
//! logged nor shown in an error: see [`redact_connection_string`]. Reads go to the leader (the
//! client's default node preference), so an append is visible to the next read. Reading `$all`
//! needs a user of `$admins` or `$ops` on a secure server.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use eventstore::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, DeleteStreamOptions, ExpectedRevision,
    ReadAllOptions, ReadStreamOptions, StreamMetadata, StreamMetadataResult, StreamPosition,
    SubscribeToAllOptions,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::EventStore;
use crate::model::{
    AppendResult, Direction, EventData, ExpectedVersion, Position, READ_EVENTS_MAX, RecordedEvent,
    STREAM_END, Snapshot, StoreError, StreamInfo, StreamName, check_checkpoint, check_snapshot,
};
use crate::postgres::check_append;

/// The streams checkpoints are kept in: this prefix and the checkpoint's name.
pub const CHECKPOINT_STREAM_PREFIX: &str = "symbiose-checkpoint-";
/// The type of the events that hold a checkpoint's value.
pub const CHECKPOINT_EVENT_TYPE: &str = "symbiose-checkpoint";
/// The streams leases are kept in: this prefix and the lease's name.
pub const LEASE_STREAM_PREFIX: &str = "symbiose-lease-";
/// The type of the events that hold a lease's record.
pub const LEASE_EVENT_TYPE: &str = "symbiose-lease";
/// How many records a lease's stream keeps (`$maxCount`): the last decides, the others say who
/// held it before.
pub const LEASE_RECORDS_KEPT: u64 = 16;
/// Prefixes of the streams this backend keeps for itself: hidden from reads, refused to appends.
const RESERVED_PREFIXES: [&str; 2] = [CHECKPOINT_STREAM_PREFIX, LEASE_STREAM_PREFIX];
/// The stream metadata property that marks a stream deleted by this store.
pub const DELETED_PROPERTY: &str = "symbiose-deleted";

/// How long [`EventStoreDbStore::connect`] waits for the server's first answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the head's follower waits before subscribing again after an error.
const FOLLOW_RETRY: Duration = Duration::from_secs(1);
/// Records of `$all` a read asks for at least, as most of a page may be the server's own.
const ALL_PAGE_MIN: usize = 256;
/// Tries of a read-modify-write of a stream's metadata that meets a concurrent writer.
const METADATA_TRIES: usize = 5;
/// What a position at or beyond means: the server did not tell one (old servers read events of a
/// stream without their position in `$all`).
const NO_POSITION: u64 = i64::MAX as u64;
/// `$tb` of a soft-deleted stream: the server's `EventNumber.DeletedStream`, `long.MaxValue`.
const TRUNCATE_BEFORE_DELETED: u64 = i64::MAX as u64;

/// A handle on an event log in EventStoreDB. Cloning shares it.
#[derive(Clone)]
pub struct EventStoreDbStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    namespace: Namespace,
    /// The connection string without its password, for messages.
    shown: String,
    head: Arc<watch::Sender<Head>>,
    closed: AtomicBool,
    stop: watch::Sender<bool>,
    follower: Mutex<Option<JoinHandle<()>>>,
    /// Streams seen deleted: a deletion is never undone.
    deleted: Mutex<HashSet<StreamName>>,
    /// Checkpoint and lease streams whose `$maxCount` this process has set or seen set.
    checkpoints_ready: Mutex<HashSet<String>>,
    /// What this process has seen of the leases others hold.
    leases: crate::lease::Observed,
    /// Where snapshots are cached, if anywhere.
    snapshot_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Head {
    position: Position,
    closed: bool,
}

impl fmt::Debug for EventStoreDbStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("EventStoreDbStore")
            .field("connection", &self.inner.shown)
            .field("head", &self.inner.head.borrow().position)
            .field("closed", &self.inner.closed.load(Ordering::SeqCst))
            .finish()
    }
}

impl EventStoreDbStore {
    /// Connects to the server (or cluster) of `connection_string` and reads where the log ends.
    /// Fails if the string does not parse or the server does not answer in time; the message
    /// shows the string without its password.
    pub async fn connect(connection_string: &str) -> Result<EventStoreDbStore, StoreError> {
        EventStoreDbStore::connect_with(connection_string, EventStoreDbOptions::default()).await
    }

    /// [`EventStoreDbStore::connect`] with `options`: a namespace makes a store of its own on a
    /// shared server.
    pub async fn connect_with(
        connection_string: &str,
        options: EventStoreDbOptions,
    ) -> Result<EventStoreDbStore, StoreError> {
        let namespace = Namespace::new(&options.namespace)?;
        if let Some(dir) = &options.snapshot_dir {
            crate::snapshot_files::remove_unfinished(dir)?;
        }
        let shown = redact_connection_string(connection_string);
        let settings: ClientSettings =
            connection_string.parse().map_err(|error: eventstore::ClientSettingsParseError| {
                StoreError::InvalidInput(hide_password(
                    &format!("eventstoredb connection string {shown}: {}", error.message()),
                    connection_string,
                ))
            })?;
        let client = Client::new(settings).map_err(|error| {
            StoreError::Io(hide_password(&format!("eventstoredb {shown}: {error}"), connection_string))
        })?;
        let ends = tokio::time::timeout(CONNECT_TIMEOUT, log_ends(&client, &namespace))
            .await
            .map_err(|_| {
                StoreError::Io(format!("eventstoredb {shown}: no answer in {} s", CONNECT_TIMEOUT.as_secs()))
            })?
            .map_err(|error| match error {
                StoreError::Io(message) => StoreError::Io(hide_password(&message, connection_string)),
                other => other,
            })?;
        let head = Arc::new(watch::Sender::new(Head {
            position: ends.last_ours.map_or(Position::START, Position::after),
            closed: false,
        }));
        let (stop, stopped) = watch::channel(false);
        let follower = tokio::spawn(follow_head(
            client.clone(),
            namespace.clone(),
            head.clone(),
            ends.last_record,
            stopped,
        ));
        tracing::info!(connection = %shown, head = %head.borrow().position, "connected to eventstoredb");
        Ok(EventStoreDbStore {
            inner: Arc::new(Inner {
                client,
                namespace,
                shown,
                head,
                closed: AtomicBool::new(false),
                stop,
                follower: Mutex::new(Some(follower)),
                deleted: Mutex::new(HashSet::new()),
                checkpoints_ready: Mutex::new(HashSet::new()),
                leases: crate::lease::Observed::new(),
                snapshot_dir: options.snapshot_dir,
            }),
        })
    }

    /// Stops following the head. Every handle gets [`StoreError::Closed`] afterwards; the
    /// client's connections close with its last handle.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.inner.stop.send(true);
        let follower = self.inner.follower.lock().map(|mut follower| follower.take()).unwrap_or_default();
        if let Some(follower) = follower {
            let _ = follower.await;
        }
        self.inner.head.send_modify(|head| head.closed = true);
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.inner.closed.load(Ordering::SeqCst) { Err(StoreError::Closed) } else { Ok(()) }
    }

    fn io(&self, context: &str, error: &eventstore::Error) -> StoreError {
        client_error(context, error)
    }

    /// Whether `stream` is deleted (by this store, or tombstoned by another client).
    async fn is_deleted(&self, stream: &StreamName) -> Result<bool, StoreError> {
        if self.known_deleted(stream) {
            return Ok(true);
        }
        let deleted = match self.metadata(stream).await? {
            Metadata::Absent => false,
            Metadata::Tombstoned => true,
            Metadata::Present(metadata) => is_deleted_metadata(&metadata),
        };
        if deleted {
            self.remember_deleted(stream);
        }
        Ok(deleted)
    }

    fn known_deleted(&self, stream: &StreamName) -> bool {
        self.inner.deleted.lock().is_ok_and(|deleted| deleted.contains(stream))
    }

    fn remember_deleted(&self, stream: &StreamName) {
        if let Ok(mut deleted) = self.inner.deleted.lock() {
            deleted.insert(stream.clone());
        }
    }

    async fn metadata(&self, stream: &StreamName) -> Result<Metadata, StoreError> {
        let result = self
            .inner
            .client
            .get_stream_metadata(
                self.inner.namespace.server_name(stream.as_str()),
                &ReadStreamOptions::default(),
            )
            .await
            .map_err(|error| self.io("reading a stream's metadata", &error))?;
        Ok(match result {
            StreamMetadataResult::NotFound => Metadata::Absent,
            StreamMetadataResult::Deleted => Metadata::Tombstoned,
            StreamMetadataResult::Success(versioned) => {
                Metadata::Present(Box::new(versioned.metadata().clone()))
            }
        })
    }

    /// Adds `changes` to the stream's metadata (keeping its other properties), unless `done`
    /// says they are there already: a read-modify-write on the metadata's revision.
    async fn update_metadata(
        &self,
        stream: &str,
        done: impl Fn(&StreamMetadata) -> bool,
        change: impl Fn(&mut StreamMetadata),
    ) -> Result<(), StoreError> {
        for _ in 0..METADATA_TRIES {
            let result = self
                .inner
                .client
                .get_stream_metadata(stream, &ReadStreamOptions::default())
                .await
                .map_err(|error| self.io("reading a stream's metadata", &error))?;
            let (mut metadata, expected) = match result {
                StreamMetadataResult::NotFound => (StreamMetadata::default(), ExpectedRevision::NoStream),
                StreamMetadataResult::Deleted => return Ok(()),
                StreamMetadataResult::Success(versioned) => {
                    (versioned.metadata().clone(), ExpectedRevision::Exact(versioned.version()))
                }
            };
            if done(&metadata) {
                return Ok(());
            }
            change(&mut metadata);
            let options = AppendToStreamOptions::default().expected_revision(expected);
            match self.inner.client.set_stream_metadata(stream, &options, &metadata).await {
                Ok(_) => return Ok(()),
                Err(eventstore::Error::WrongExpectedVersion { .. }) => continue,
                Err(error) => return Err(self.io("writing a stream's metadata", &error)),
            }
        }
        Err(StoreError::Io(format!(
            "eventstoredb: writing the metadata of {stream}: other writers changed it {METADATA_TRIES} times in a row"
        )))
    }

    /// Marks a soft-deleted stream as ours to keep deleted (see the module's documentation).
    async fn mark_deleted(&self, stream: &StreamName) -> Result<(), StoreError> {
        self.update_metadata(
            &self.inner.namespace.server_name(stream.as_str()),
            |metadata| {
                metadata.custom_properties.get(DELETED_PROPERTY) == Some(&serde_json::Value::Bool(true))
            },
            |metadata| {
                metadata.custom_properties.insert(DELETED_PROPERTY.to_owned(), serde_json::Value::Bool(true));
            },
        )
        .await?;
        self.remember_deleted(stream);
        Ok(())
    }

    /// At most `max_count` events of `stream` as `options` reads them, its own events only.
    async fn read_events(
        &self,
        stream: &StreamName,
        options: &ReadStreamOptions,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let not_found = |error: eventstore::Error| match error {
            eventstore::Error::ResourceNotFound => StoreError::StreamNotFound(stream.clone()),
            eventstore::Error::ResourceDeleted => StoreError::StreamDeleted(stream.clone()),
            other => self.io("reading a stream", &other),
        };
        let server_name = self.inner.namespace.server_name(stream.as_str());
        let mut read = self.inner.client.read_stream(server_name, options).await.map_err(not_found)?;
        let mut events = Vec::new();
        while let Some(resolved) = read.next().await.map_err(not_found)? {
            if let Some(event) = resolved.event.as_ref()
                && !event.event_type.starts_with('$')
            {
                events.push(recorded_event(event, stream.clone()));
            }
        }
        Ok(events)
    }

    /// The event of `stream` at `version`, if any.
    async fn event_at(&self, stream: &StreamName, version: u64) -> Result<Option<RecordedEvent>, StoreError> {
        let options =
            ReadStreamOptions::default().position(StreamPosition::Position(version)).forwards().max_count(1);
        let events = self.read_events(stream, &options).await?;
        Ok(events.into_iter().next().filter(|event| event.version == version))
    }

    /// The last event of `stream`, if it has one that reads.
    async fn last_event(&self, stream: &StreamName) -> Result<Option<RecordedEvent>, StoreError> {
        let options = ReadStreamOptions::default().position(StreamPosition::End).backwards().max_count(1);
        match self.read_events(stream, &options).await {
            Ok(events) => Ok(events.into_iter().next()),
            Err(StoreError::StreamNotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn advance(&self, position: Position) {
        advance(&self.inner.head, position);
    }

    /// Sets the `$maxCount` of one of this backend's own streams (server name `stream`) to
    /// `count`, once per process.
    async fn keep_last(&self, stream: &str, count: u64) -> Result<(), StoreError> {
        let ready = self.inner.checkpoints_ready.lock().is_ok_and(|ready| ready.contains(stream));
        if !ready {
            self.update_metadata(
                stream,
                |metadata| metadata.max_count == Some(count),
                |metadata| metadata.max_count = Some(count),
            )
            .await?;
            if let Ok(mut ready) = self.inner.checkpoints_ready.lock() {
                ready.insert(stream.to_owned());
            }
        }
        Ok(())
    }
}

impl crate::lease::LeaseLog for EventStoreDbStore {
    async fn last_record(&self, name: &str) -> Result<Option<(u64, crate::lease::LeaseRecord)>, StoreError> {
        self.check_open()?;
        let stream = self.inner.namespace.server_name(&lease_stream(name));
        let options = ReadStreamOptions::default().position(StreamPosition::End).backwards().max_count(1);
        let mut read = match self.inner.client.read_stream(stream, &options).await {
            Ok(read) => read,
            Err(eventstore::Error::ResourceNotFound) => return Ok(None),
            Err(error) => return Err(self.io("reading a lease", &error)),
        };
        match read.next().await {
            Ok(Some(resolved)) => {
                let Some(event) = resolved.event else { return Ok(None) };
                if event.event_type != LEASE_EVENT_TYPE {
                    return Err(StoreError::Io(format!(
                        "eventstoredb: the lease {name:?} ends with an event of type {:?}",
                        event.event_type
                    )));
                }
                let record = crate::lease::LeaseRecord::decode(&event.data).ok_or_else(|| {
                    StoreError::Io(format!(
                        "eventstoredb: the lease {name:?} ends with a record that does not read"
                    ))
                })?;
                Ok(Some((event.revision, record)))
            }
            Ok(None) | Err(eventstore::Error::ResourceNotFound) => Ok(None),
            Err(error) => Err(self.io("reading a lease", &error)),
        }
    }

    async fn append_record(
        &self,
        name: &str,
        expected: Option<u64>,
        record: &crate::lease::LeaseRecord,
    ) -> Result<bool, StoreError> {
        self.check_open()?;
        let stream = self.inner.namespace.server_name(&lease_stream(name));
        self.keep_last(&stream, LEASE_RECORDS_KEPT).await?;
        let expected = expected.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
        let event = eventstore::EventData::binary(LEASE_EVENT_TYPE, record.encode()).id(Uuid::now_v7());
        let options = AppendToStreamOptions::default().expected_revision(expected);
        match self.inner.client.append_to_stream(stream.as_str(), &options, event).await {
            Ok(_) => Ok(true),
            Err(error) if is_wrong_expected_version(&error) => Ok(false),
            Err(error) => Err(self.io("writing a lease", &error)),
        }
    }
}

/// A stream's metadata as the server answers it.
enum Metadata {
    Absent,
    /// The stream is hard-deleted (tombstoned), by another client: this store never does.
    Tombstoned,
    Present(Box<StreamMetadata>),
}

impl EventStore for EventStoreDbStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError> {
        self.check_open()?;
        check_not_reserved(stream)?;
        check_append(&events)?;
        if self.is_deleted(stream).await? {
            return Err(StoreError::StreamDeleted(stream.clone()));
        }
        let count = events.len() as u64;
        let (first_id, last_id) = (events[0].id, events[events.len() - 1].id);
        let data: Vec<eventstore::EventData> = events.into_iter().map(event_data).collect();
        let options = AppendToStreamOptions::default().expected_revision(expected_revision(expected));
        let written = self
            .inner
            .client
            .append_to_stream(self.inner.namespace.server_name(stream.as_str()), &options, data)
            .await
            .map_err(|error| append_error(stream, expected, first_id, &error))?;
        let last_version = written.next_expected_version;
        let first_version = last_version.checked_sub(count - 1).ok_or_else(|| {
            StoreError::Io(format!(
                "eventstoredb: appending to {stream}: the server answered version {last_version} for {count} events"
            ))
        })?;
        let (first, last) =
            tokio::join!(self.event_at(stream, first_version), self.event_at(stream, last_version));
        let read_back = |event: Option<RecordedEvent>, id: Uuid, version: u64| match event {
            Some(event) if event.id == id && event.position.as_u64() >= NO_POSITION => {
                Err(StoreError::Io(format!(
                    "eventstoredb: appending to {stream}: the server reads events of a stream without their \
                     position in $all (EventStoreDB 22.6 or newer is needed)"
                )))
            }
            Some(event) if event.id == id => Ok(event.position),
            Some(event) => Err(StoreError::Io(format!(
                "eventstoredb: appending to {stream}: version {version} holds event {}, not {id}",
                event.id
            ))),
            None => Err(StoreError::Io(format!(
                "eventstoredb: appending to {stream}: version {version} does not read back"
            ))),
        };
        let first_position = read_back(first?, first_id, first_version)?;
        let last_position = read_back(last?, last_id, last_version)?;
        self.advance(last_position.after());
        Ok(AppendResult { next_expected_version: last_version, first_position, last_position })
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_version: u64,
        direction: Direction,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check_open()?;
        check_not_reserved(stream)?;
        let max_count = max_count.min(READ_EVENTS_MAX);
        let options = match direction {
            Direction::Forward => {
                ReadStreamOptions::default().position(StreamPosition::Position(from_version)).forwards()
            }
            Direction::Backward if from_version == STREAM_END => {
                ReadStreamOptions::default().position(StreamPosition::End)
            }
            Direction::Backward => {
                ReadStreamOptions::default().position(StreamPosition::Position(from_version)).backwards()
            }
        }
        // A read of no event still tells an absent or deleted stream.
        .max_count(max_count.max(1));
        let (deleted, events) = tokio::join!(self.is_deleted(stream), self.read_events(stream, &options));
        if deleted? {
            return Err(StoreError::StreamDeleted(stream.clone()));
        }
        let mut events = events?;
        events.truncate(max_count);
        Ok(events)
    }

    async fn read_all(
        &self,
        from_position: Position,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check_open()?;
        let max_count = max_count.min(READ_EVENTS_MAX);
        if max_count == 0 {
            return Ok(Vec::new());
        }
        let page = max_count.clamp(ALL_PAGE_MIN, READ_EVENTS_MAX);
        let mut events: Vec<RecordedEvent> = Vec::new();
        let mut starts = read_starts(from_position).into_iter();
        let mut start = starts.next().unwrap_or(StreamPosition::Start);
        let mut last_record: Option<eventstore::Position> = None;
        loop {
            let options = ReadAllOptions::default().position(start).forwards().max_count(page);
            let mut records = 0;
            let page_read: Result<(), eventstore::Error> = async {
                let mut read = self.inner.client.read_all(&options).await?;
                while let Some(resolved) = read.next().await? {
                    records += 1;
                    let Some(event) = resolved.event.as_ref() else { continue };
                    if last_record.is_some_and(|last| event.position <= last) {
                        continue;
                    }
                    last_record = Some(event.position);
                    let Some(name) = self.inner.namespace.ours(&event.stream_id, &event.event_type) else { continue };
                    if !at_or_after(event.position, from_position) {
                        continue;
                    }
                    if event.position.commit != event.position.prepare {
                        return Err(eventstore::Error::IllegalStateError(format!(
                            "event {} of {name} is at commit position {} but prepare position {}: this store's \
                             cursors need them equal, as they are for every event of a gRPC append (an event of a \
                             TCP transaction?)",
                            event.id, event.position.commit, event.position.prepare
                        )));
                    }
                    let recorded = recorded_event(event, StreamName::from_trusted(name));
                    if let Some(previous) = events.last()
                        && recorded.position <= previous.position
                    {
                        return Err(eventstore::Error::IllegalStateError(format!(
                            "event {} of {} at prepare position {} follows one at {} in $all: prepare positions \
                             do not follow the log's order (events of a TCP transaction?)",
                            recorded.id, recorded.stream, recorded.position, previous.position
                        )));
                    }
                    events.push(recorded);
                    if events.len() == max_count {
                        break;
                    }
                }
                Ok(())
            }
            .await;
            match page_read {
                Ok(()) => {}
                Err(eventstore::Error::IllegalStateError(message)) => {
                    return Err(StoreError::Failed(format!("eventstoredb: {message}")));
                }
                Err(error) if last_record.is_none() && starts.len() > 0 => {
                    // No record of `$all` starts there: try the next place to start from.
                    let next = starts.next().unwrap_or(StreamPosition::Start);
                    if next == StreamPosition::Start {
                        tracing::warn!(
                            %error, from = %from_position,
                            "eventstoredb refused to read $all from this position: reading from the start instead"
                        );
                    }
                    start = next;
                    continue;
                }
                Err(error) => return Err(self.io("reading $all", &error)),
            }
            if events.len() == max_count || records < page {
                return Ok(events);
            }
            match last_record {
                Some(last) => start = StreamPosition::Position(last),
                None => return Ok(events),
            }
        }
    }

    fn head(&self) -> Position {
        self.inner.head.borrow().position
    }

    async fn wait_for_head(&self, position: Position) -> Result<Position, StoreError> {
        let mut receiver = self.inner.head.subscribe();
        let head = *receiver
            .wait_for(|head| head.closed || head.position > position)
            .await
            .map_err(|_| StoreError::Closed)?;
        if head.position > position { Ok(head.position) } else { Err(StoreError::Closed) }
    }

    async fn stream_info(&self, stream: &StreamName) -> Result<Option<StreamInfo>, StoreError> {
        self.check_open()?;
        check_not_reserved(stream)?;
        let (metadata, last) = tokio::join!(self.metadata(stream), self.last_event(stream));
        let (metadata, last) = (metadata?, last);
        match metadata {
            Metadata::Tombstoned => {
                self.remember_deleted(stream);
                // A tombstone keeps no version this client can read; the stream takes nothing more.
                Ok(Some(StreamInfo { last_version: TRUNCATE_BEFORE_DELETED, deleted: true }))
            }
            Metadata::Absent => {
                Ok(last?.map(|event| StreamInfo { last_version: event.version, deleted: false }))
            }
            Metadata::Present(metadata) if !is_deleted_metadata(&metadata) => {
                Ok(last?.map(|event| StreamInfo { last_version: event.version, deleted: false }))
            }
            Metadata::Present(metadata) => {
                self.remember_deleted(stream);
                if let Some(event) = last? {
                    return Ok(Some(StreamInfo { last_version: event.version, deleted: true }));
                }
                let truncate_before = match metadata.truncate_before {
                    Some(TRUNCATE_BEFORE_DELETED) | None => {
                        // A delete cut short before its property: finishing it has the server
                        // set `$tb` to the last version plus one.
                        self.mark_deleted(stream).await?;
                        match self.metadata(stream).await? {
                            Metadata::Present(metadata) => metadata.truncate_before,
                            _ => None,
                        }
                    }
                    known => known,
                };
                match truncate_before {
                    Some(truncate_before)
                        if truncate_before > 0 && truncate_before < TRUNCATE_BEFORE_DELETED =>
                    {
                        Ok(Some(StreamInfo { last_version: truncate_before - 1, deleted: true }))
                    }
                    _ => Err(StoreError::Io(format!(
                        "eventstoredb: {stream} is deleted but its metadata does not tell its last version"
                    ))),
                }
            }
        }
    }

    async fn delete_stream(&self, stream: &StreamName, expected: ExpectedVersion) -> Result<(), StoreError> {
        self.check_open()?;
        check_not_reserved(stream)?;
        let info = match self.stream_info(stream).await? {
            None => return Err(StoreError::StreamNotFound(stream.clone())),
            Some(info) if info.deleted => return Err(StoreError::StreamDeleted(stream.clone())),
            Some(info) => info,
        };
        let wrong = |actual: Option<u64>| StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual,
        };
        match expected {
            ExpectedVersion::NoStream => return Err(wrong(Some(info.last_version))),
            ExpectedVersion::Exact(version) if version != info.last_version => {
                return Err(wrong(Some(info.last_version)));
            }
            _ => {}
        }
        let options = DeleteStreamOptions::default().expected_revision(expected_revision(expected));
        if let Err(error) =
            self.inner.client.delete_stream(self.inner.namespace.server_name(stream.as_str()), &options).await
        {
            return Err(match error {
                eventstore::Error::WrongExpectedVersion { current, .. } => wrong(actual_version(current)),
                eventstore::Error::ResourceDeleted => StoreError::StreamDeleted(stream.clone()),
                error if is_wrong_expected_version(&error) => {
                    let actual = self.last_event(stream).await.ok().flatten().map(|event| event.version);
                    wrong(actual)
                }
                error => self.io("deleting a stream", &error),
            });
        }
        self.mark_deleted(stream).await
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Bytes>, StoreError> {
        self.check_open()?;
        check_checkpoint(name, &[])?;
        let stream = self.inner.namespace.server_name(&checkpoint_stream(name));
        let options = ReadStreamOptions::default().position(StreamPosition::End).backwards().max_count(1);
        let mut read = match self.inner.client.read_stream(stream, &options).await {
            Ok(read) => read,
            Err(eventstore::Error::ResourceNotFound) => return Ok(None),
            Err(error) => return Err(self.io("reading a checkpoint", &error)),
        };
        loop {
            match read.next().await {
                Ok(Some(resolved)) => {
                    if let Some(event) = resolved.event
                        && event.event_type == CHECKPOINT_EVENT_TYPE
                    {
                        return Ok(Some(event.data));
                    }
                }
                Ok(None) | Err(eventstore::Error::ResourceNotFound) => return Ok(None),
                Err(error) => return Err(self.io("reading a checkpoint", &error)),
            }
        }
    }

    async fn save_checkpoint(&self, name: &str, value: Bytes) -> Result<(), StoreError> {
        self.check_open()?;
        check_checkpoint(name, &value)?;
        let stream = self.inner.namespace.server_name(&checkpoint_stream(name));
        self.keep_last(&stream, 1).await?;
        let event = eventstore::EventData::binary(CHECKPOINT_EVENT_TYPE, value).id(Uuid::now_v7());
        self.inner
            .client
            .append_to_stream(stream.as_str(), &AppendToStreamOptions::default(), event)
            .await
            .map_err(|error| self.io("saving a checkpoint", &error))?;
        Ok(())
    }

    fn keeps_snapshots(&self) -> bool {
        self.inner.snapshot_dir.is_some()
    }

    async fn load_snapshot(&self, name: &str) -> Result<Option<Snapshot>, StoreError> {
        self.check_open()?;
        check_snapshot(name, &[])?;
        match &self.inner.snapshot_dir {
            Some(dir) => crate::snapshot_files::load(dir, name).await,
            None => Ok(None),
        }
    }

    async fn save_snapshot(&self, name: &str, snapshot: Snapshot) -> Result<(), StoreError> {
        self.check_open()?;
        check_snapshot(name, &snapshot.body)?;
        match &self.inner.snapshot_dir {
            Some(dir) => crate::snapshot_files::save(dir.clone(), name, snapshot).await,
            None => Ok(()),
        }
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        self.inner.leases.acquire(self, name, holder, ttl).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.leases.release(self, name, holder).await
    }
}

/// Where the log ends, as a backwards read of `$all` finds it.
#[derive(Debug, Default)]
struct LogEnds {
    /// The last record of `$all`, whoever wrote it: a subscription starts after it.
    last_record: Option<eventstore::Position>,
    /// The position of the last event of ours.
    last_ours: Option<Position>,
}

async fn log_ends(client: &Client, namespace: &Namespace) -> Result<LogEnds, StoreError> {
    let mut ends = LogEnds::default();
    let mut start = StreamPosition::End;
    loop {
        let options = ReadAllOptions::default().position(start).backwards().max_count(ALL_PAGE_MIN);
        let mut read = client
            .read_all(&options)
            .await
            .map_err(|error| client_error("reading the end of $all", &error))?;
        let mut records = 0;
        let mut oldest = None;
        while let Some(resolved) =
            read.next().await.map_err(|error| client_error("reading the end of $all", &error))?
        {
            records += 1;
            let Some(event) = resolved.event.as_ref() else { continue };
            if oldest.is_some_and(|oldest| event.position >= oldest) {
                continue;
            }
            oldest = Some(event.position);
            ends.last_record.get_or_insert(event.position);
            if namespace.ours(&event.stream_id, &event.event_type).is_some() {
                ends.last_ours = Some(Position::from_u64(event.position.prepare));
                return Ok(ends);
            }
        }
        match oldest {
            Some(oldest) if records == ALL_PAGE_MIN => start = StreamPosition::Position(oldest),
            _ => return Ok(ends),
        }
    }
}

/// Keeps the cached head up with every writer: a subscription to `$all` from `after` (the last
/// record when the store connected), made again after an error, until `stop`.
async fn follow_head(
    client: Client,
    namespace: Namespace,
    head: Arc<watch::Sender<Head>>,
    mut after: Option<eventstore::Position>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match follow(&client, &namespace, &head, after, &mut stop).await {
            Ok(()) => return,
            Err(error) => tracing::warn!(%error, "following the eventstoredb head, subscribing again"),
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_RETRY) => {}
            _ = stop.changed() => return,
        }
        // Whatever was written meanwhile: read the end again, then subscribe after it.
        match log_ends(&client, &namespace).await {
            Ok(ends) => {
                if let Some(last) = ends.last_ours {
                    advance(&head, last.after());
                }
                after = ends.last_record;
            }
            Err(error) => tracing::warn!(%error, "reading the end of eventstoredb's $all"),
        }
    }
}

/// One subscription's worth of [`follow_head`]: `Ok` when asked to stop.
async fn follow(
    client: &Client,
    namespace: &Namespace,
    head: &watch::Sender<Head>,
    after: Option<eventstore::Position>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let position = after.map_or(StreamPosition::Start, StreamPosition::Position);
    let mut subscription =
        client.subscribe_to_all(&SubscribeToAllOptions::default().position(position)).await;
    loop {
        tokio::select! {
            event = subscription.next() => {
                let event = event.map_err(|error| client_error("subscribing to $all", &error))?;
                if let Some(event) = event.event.as_ref()
                    && namespace.ours(&event.stream_id, &event.event_type).is_some()
                {
                    advance(head, Position::from_u64(event.position.prepare).after());
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return Ok(());
                }
            }
        }
    }
}

/// Moves the cached head forward, never back.
fn advance(head: &watch::Sender<Head>, position: Position) {
    head.send_if_modified(|head| {
        let moved = position > head.position;
        if moved {
            head.position = position;
        }
        moved
    });
}

/// Where a forwards read of `$all` for events at or after `from` may start, each tried when the
/// server refuses the one before as naming no record: the record at `from - 1` (the event a
/// cursor made by [`Position::after`] follows), the record at `from` (an event's own position),
/// then the beginning. A forwards read includes the record it starts at.
fn read_starts(from: Position) -> Vec<StreamPosition<eventstore::Position>> {
    let at = |position: u64| {
        StreamPosition::Position(eventstore::Position { commit: position, prepare: position })
    };
    match from.as_u64() {
        0 => vec![StreamPosition::Start],
        next => vec![at(next - 1), at(next), StreamPosition::Start],
    }
}

/// Whether the event at `position` in `$all` is at or after the cursor `from`.
fn at_or_after(position: eventstore::Position, from: Position) -> bool {
    position.prepare >= from.as_u64()
}

/// Whether an event of `$all` is one of ours: not the server's (`$` streams and types) and not a
/// checkpoint.
fn is_ours(stream: &str, event_type: &str) -> bool {
    !stream.starts_with('$')
        && !event_type.starts_with('$')
        && !RESERVED_PREFIXES.iter().any(|prefix| stream.starts_with(prefix))
}

/// Settings of an EventStoreDB store.
#[derive(Debug, Clone, Default)]
pub struct EventStoreDbOptions {
    /// Put before every stream name on the server, so that several stores share one server
    /// (the tests, each check in a namespace of its own): a store sees only the streams of its
    /// namespace, its head and `read_all` included. Empty (the default) or up to
    /// [`NAMESPACE_BYTES_MAX`] ASCII letters, digits, `.`, `_` and `-`. Positions stay the
    /// server's, shared by every namespace.
    pub namespace: String,
    /// A directory of the process where the views' snapshots are cached (the service's data
    /// directory's `snapshots`); `None` keeps none, and every start replays the log.
    pub snapshot_dir: Option<PathBuf>,
}

/// Longest namespace, in bytes.
pub const NAMESPACE_BYTES_MAX: usize = 64;

/// [`EventStoreDbOptions::namespace`], checked.
#[derive(Debug, Clone)]
struct Namespace(Arc<str>);

impl Namespace {
    fn new(namespace: &str) -> Result<Namespace, StoreError> {
        let valid = namespace.len() <= NAMESPACE_BYTES_MAX
            && namespace
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
        if !valid {
            return Err(StoreError::InvalidInput(format!(
                "eventstoredb namespace {namespace:?} must be up to {NAMESPACE_BYTES_MAX} letters, digits, '.', \
                 '_' or '-'"
            )));
        }
        Ok(Namespace(Arc::from(namespace)))
    }

    /// The server's name of the stream this store calls `stream`.
    fn server_name(&self, stream: &str) -> String {
        format!("{}{stream}", self.0)
    }

    /// The name this store gives an event of the server's stream `stream`, if it is one of
    /// ours: in the namespace, not the server's own (`$` streams and types), not a checkpoint.
    fn ours<'a>(&self, stream: &'a str, event_type: &str) -> Option<&'a str> {
        let name = stream.strip_prefix(&*self.0)?;
        is_ours(name, event_type).then_some(name)
    }
}

/// The stream of the checkpoint `name`.
fn checkpoint_stream(name: &str) -> String {
    format!("{CHECKPOINT_STREAM_PREFIX}{name}")
}

/// The stream of the lease `name`.
fn lease_stream(name: &str) -> String {
    format!("{LEASE_STREAM_PREFIX}{name}")
}

/// Streams named like checkpoints' and leases' are this backend's own.
fn check_not_reserved(stream: &StreamName) -> Result<(), StoreError> {
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|prefix| stream.as_str().starts_with(*prefix)) {
        return Err(StoreError::InvalidInput(format!(
            "stream name {stream:?}: names starting with {prefix:?} are reserved for checkpoints and leases \
             on eventstoredb"
        )));
    }
    Ok(())
}

/// Whether stream metadata says the stream is deleted: `$tb` (set by the server's soft delete,
/// never by this store otherwise) or our property.
fn is_deleted_metadata(metadata: &StreamMetadata) -> bool {
    metadata.truncate_before.is_some()
        || metadata.custom_properties.get(DELETED_PROPERTY) == Some(&serde_json::Value::Bool(true))
}

fn expected_revision(expected: ExpectedVersion) -> ExpectedRevision {
    match expected {
        ExpectedVersion::Any => ExpectedRevision::Any,
        ExpectedVersion::NoStream => ExpectedRevision::NoStream,
        ExpectedVersion::Exact(version) => ExpectedRevision::Exact(version),
    }
}

fn actual_version(current: CurrentRevision) -> Option<u64> {
    match current {
        CurrentRevision::Current(version) => Some(version),
        CurrentRevision::NoStream => None,
    }
}

/// An append's error as the store answers it.
fn append_error(
    stream: &StreamName,
    expected: ExpectedVersion,
    first_id: Uuid,
    error: &eventstore::Error,
) -> StoreError {
    match error {
        // `Any` passes every version check: the server refuses it only when the first id was
        // appended before in another batch (its "corrupted idempotency").
        eventstore::Error::WrongExpectedVersion { .. } if expected == ExpectedVersion::Any => {
            StoreError::DuplicateEvent { stream: stream.clone(), id: first_id }
        }
        eventstore::Error::WrongExpectedVersion { current, .. } => StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual: actual_version(*current),
        },
        eventstore::Error::ResourceDeleted => StoreError::StreamDeleted(stream.clone()),
        other => client_error("appending", other),
    }
}

/// A wrong expected version the client left as a plain gRPC status (a delete's).
fn is_wrong_expected_version(error: &eventstore::Error) -> bool {
    match error {
        eventstore::Error::WrongExpectedVersion { .. } => true,
        eventstore::Error::Grpc { code, message } => {
            let message = message.to_ascii_lowercase();
            format!("{code:?}") == "FailedPrecondition"
                || message.contains("expected version")
                || message.contains("wrongexpectedversion")
        }
        _ => false,
    }
}

/// Any other error of the client: an i/o error naming the operation.
fn client_error(context: &str, error: &eventstore::Error) -> StoreError {
    match error {
        eventstore::Error::AccessDenied => StoreError::Io(format!(
            "eventstoredb: {context}: access denied (the connection string's user must be allowed to read $all \
             and write the streams: a member of $admins or $ops)"
        )),
        eventstore::Error::DeadlineExceeded => {
            StoreError::Io(format!("eventstoredb: {context}: no answer before the deadline"))
        }
        other => StoreError::Io(format!("eventstoredb: {context}: {other}")),
    }
}

/// The event as the server will keep it.
fn event_data(event: EventData) -> eventstore::EventData {
    let data = eventstore::EventData::binary(&event.event_type, event.payload).id(event.id);
    if event.metadata.is_empty() { data } else { data.metadata(event.metadata) }
}

/// `event` of the stream this store names `stream`.
fn recorded_event(event: &eventstore::RecordedEvent, stream: StreamName) -> RecordedEvent {
    RecordedEvent {
        id: event.id,
        event_type: event.event_type.clone(),
        stream,
        version: event.revision,
        position: Position::from_u64(event.position.prepare),
        timestamp_ms: timestamp_ms(&event.metadata),
        metadata: event.custom_metadata.clone(),
        payload: event.data.clone(),
    }
}

/// The commit time in milliseconds: the server's `created` is in ticks (100 ns) since the Unix
/// epoch (the client's own conversion keeps whole seconds only).
fn timestamp_ms(metadata: &HashMap<String, String>) -> u64 {
    metadata.get("created").and_then(|ticks| ticks.parse::<u64>().ok()).map_or(0, |ticks| ticks / 10_000)
}

/// `connection_string` with the password of its user part replaced by `***`: what messages
/// and logs show of it.
pub fn redact_connection_string(connection_string: &str) -> String {
    let (scheme, rest) = connection_string.split_once("://").unwrap_or(("", connection_string));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, hosts)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{hosts}"),
            None => format!("{user_info}@{hosts}"),
        },
        None => authority.to_owned(),
    };
    if scheme.is_empty() { format!("{authority}{tail}") } else { format!("{scheme}://{authority}{tail}") }
}

/// The password of the connection string's user part, if it has one.
fn password_of(connection_string: &str) -> Option<&str> {
    let rest = connection_string.split_once("://").map_or(connection_string, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let (user_info, _) = authority.rsplit_once('@')?;
    let (_, password) = user_info.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// `text` with every occurrence of the connection string's password replaced by `***`, for a
/// message that quotes something the client said about it.
fn hide_password(text: &str, connection_string: &str) -> String {
    match password_of(connection_string) {
        Some(password) => text.replace(password, "***"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str) -> StreamName {
        StreamName::new(name).expect("a valid name")
    }

    #[test]
    fn a_cursor_reads_from_the_record_before_it() {
        assert_eq!(read_starts(Position::START), [StreamPosition::Start]);
        let event = eventstore::Position { commit: 4242, prepare: 4242 };
        let cursor = Position::from_u64(event.prepare).after();
        let next = eventstore::Position { commit: 4243, prepare: 4243 };
        assert_eq!(
            read_starts(cursor),
            [StreamPosition::Position(event), StreamPosition::Position(next), StreamPosition::Start],
            "the event the cursor follows, else the cursor as an event's position, else the beginning"
        );
        assert!(!at_or_after(event, cursor), "the event itself is dropped");
        assert!(at_or_after(eventstore::Position { commit: 4243, prepare: 4243 }, cursor));
        assert!(at_or_after(eventstore::Position { commit: 4300, prepare: 4390 }, cursor));
        assert!(at_or_after(event, Position::START));
    }

    #[test]
    fn the_servers_events_and_checkpoints_are_not_ours() {
        assert!(is_ours("listing-0190", "ListingPublished"));
        assert!(!is_ours("$stats-127.0.0.1:2113", "$statsCollected"));
        assert!(!is_ours("$$listing-1", "$metadata"));
        assert!(!is_ours("$ce-listing", "$>"));
        assert!(!is_ours("listing-1", "$streamDeleted"));
        assert!(!is_ours(&checkpoint_stream("feed"), CHECKPOINT_EVENT_TYPE));
        assert!(!is_ours(&lease_stream("matching.jobs"), LEASE_EVENT_TYPE));
    }

    #[test]
    fn a_namespace_holds_a_store_of_its_own() {
        let namespace = Namespace::new("test-0190.").expect("a valid namespace");
        assert_eq!(namespace.server_name("listing-1"), "test-0190.listing-1");
        assert_eq!(namespace.ours("test-0190.listing-1", "ListingPublished"), Some("listing-1"));
        assert_eq!(namespace.ours("listing-1", "ListingPublished"), None, "another namespace's");
        assert_eq!(namespace.ours("$$test-0190.listing-1", "$metadata"), None);
        assert_eq!(
            namespace.ours(&namespace.server_name(&checkpoint_stream("feed")), CHECKPOINT_EVENT_TYPE),
            None
        );
        let none = Namespace::new("").expect("no namespace");
        assert_eq!(none.server_name("listing-1"), "listing-1");
        assert_eq!(none.ours("listing-1", "ListingPublished"), Some("listing-1"));
        assert_eq!(none.ours("$stats-1", "$statsCollected"), None);
        for bad in ["$all", "a b", "x/y", &"n".repeat(NAMESPACE_BYTES_MAX + 1)] {
            assert!(matches!(Namespace::new(bad), Err(StoreError::InvalidInput(_))), "{bad:?}");
        }
    }

    #[test]
    fn checkpoints_and_leases_have_a_stream_each_which_appends_may_not_use() {
        assert_eq!(checkpoint_stream("feed.relay-1"), "symbiose-checkpoint-feed.relay-1");
        assert_eq!(lease_stream("matching.jobs"), "symbiose-lease-matching.jobs");
        for name in ["symbiose-checkpoint-feed", "symbiose-lease-matching.jobs"] {
            let reserved = check_not_reserved(&stream(name));
            assert!(matches!(reserved, Err(StoreError::InvalidInput(_))), "{name}: {reserved:?}");
        }
        assert!(check_not_reserved(&stream("symbiose-1")).is_ok());
        assert!(check_not_reserved(&stream("listing-1")).is_ok());
    }

    #[test]
    fn expected_versions_map_to_expected_revisions() {
        assert_eq!(expected_revision(ExpectedVersion::Any), ExpectedRevision::Any);
        assert_eq!(expected_revision(ExpectedVersion::NoStream), ExpectedRevision::NoStream);
        assert_eq!(expected_revision(ExpectedVersion::Exact(7)), ExpectedRevision::Exact(7));
    }

    #[test]
    fn append_errors_map_to_store_errors() {
        let deal = stream("deal-1");
        let id = Uuid::now_v7();
        let wrong = |current| eventstore::Error::WrongExpectedVersion {
            expected: ExpectedRevision::Exact(0),
            current,
        };
        assert_eq!(
            append_error(&deal, ExpectedVersion::Exact(0), id, &wrong(CurrentRevision::Current(1))),
            StoreError::WrongExpectedVersion {
                stream: deal.clone(),
                expected: ExpectedVersion::Exact(0),
                actual: Some(1)
            }
        );
        assert_eq!(
            append_error(&deal, ExpectedVersion::Exact(0), id, &wrong(CurrentRevision::NoStream)),
            StoreError::WrongExpectedVersion {
                stream: deal.clone(),
                expected: ExpectedVersion::Exact(0),
                actual: None
            }
        );
        assert_eq!(
            append_error(&deal, ExpectedVersion::Any, id, &wrong(CurrentRevision::Current(3))),
            StoreError::DuplicateEvent { stream: deal.clone(), id }
        );
        assert_eq!(
            append_error(&deal, ExpectedVersion::Any, id, &eventstore::Error::ResourceDeleted),
            StoreError::StreamDeleted(deal.clone())
        );
        let closed = append_error(&deal, ExpectedVersion::Any, id, &eventstore::Error::ConnectionClosed);
        assert!(
            matches!(&closed, StoreError::Io(message) if message.starts_with("eventstoredb: appending")),
            "{closed:?}"
        );
        let denied = client_error("reading $all", &eventstore::Error::AccessDenied);
        assert!(matches!(&denied, StoreError::Io(message) if message.contains("$admins")), "{denied:?}");
        assert!(is_wrong_expected_version(&wrong(CurrentRevision::Current(1))));
        assert!(!is_wrong_expected_version(&eventstore::Error::ConnectionClosed));
    }

    #[test]
    fn a_stream_is_deleted_by_its_truncate_before_or_our_property() {
        assert!(!is_deleted_metadata(&StreamMetadata::default()));
        assert!(!is_deleted_metadata(&StreamMetadata::builder().max_count(1).build()));
        assert!(is_deleted_metadata(
            &StreamMetadata::builder().truncate_before(TRUNCATE_BEFORE_DELETED).build()
        ));
        assert!(is_deleted_metadata(&StreamMetadata::builder().truncate_before(3).build()));
        let mut marked = StreamMetadata::default();
        marked.custom_properties.insert(DELETED_PROPERTY.to_owned(), serde_json::Value::Bool(true));
        assert!(is_deleted_metadata(&marked));
        // What the server writes for a soft delete reads back as deleted.
        let written: StreamMetadata =
            serde_json::from_str("{\"$tb\":9223372036854775807}").expect("the server's metadata");
        assert_eq!(written.truncate_before, Some(TRUNCATE_BEFORE_DELETED));
        assert!(is_deleted_metadata(&written));
    }

    #[test]
    fn commit_times_are_ticks_made_milliseconds() {
        let mut metadata = HashMap::new();
        assert_eq!(timestamp_ms(&metadata), 0);
        metadata.insert("created".to_owned(), "17000000001234567".to_owned());
        assert_eq!(timestamp_ms(&metadata), 1_700_000_000_123);
    }

    #[test]
    fn the_password_is_never_shown() {
        let url = "esdb://admin:hunter2@node1:2113,node2:2113?tls=true&tlsVerifyCert=false";
        let shown = redact_connection_string(url);
        assert_eq!(shown, "esdb://admin:***@node1:2113,node2:2113?tls=true&tlsVerifyCert=false");
        assert_eq!(password_of(url), Some("hunter2"));
        assert_eq!(hide_password("bad thing near hunter2 here", url), "bad thing near *** here");
        let discover = "esdb+discover://ops:p@ss@cluster.local:2113";
        assert_eq!(redact_connection_string(discover), "esdb+discover://ops:***@cluster.local:2113");
        assert_eq!(password_of(discover), Some("p@ss"));
        for plain in ["esdb://127.0.0.1:2113?tls=false", "esdb://admin@127.0.0.1:2113"] {
            assert_eq!(redact_connection_string(plain), plain);
            assert_eq!(password_of(plain), None);
            assert_eq!(hide_password("text", plain), "text");
        }
    }

    #[test]
    fn appends_are_checked_before_any_call() {
        assert!(matches!(check_append(&[]), Err(StoreError::InvalidInput(_))));
        let event = EventData::new(Uuid::now_v7(), "ThingHappened", Bytes::from_static(b"x"));
        assert!(check_append(std::slice::from_ref(&event)).is_ok());
        let twice = check_append(&[event.clone(), event]);
        assert!(matches!(twice, Err(StoreError::InvalidInput(message)) if message.contains("twice")));
    }

    /// A connection string that does not parse is refused before any connection, without its
    /// password.
    #[tokio::test]
    async fn a_bad_connection_string_is_refused_without_its_password() {
        let refused = EventStoreDbStore::connect("esdb://admin:hunter2@node1:2113?tls=maybe").await;
        match refused {
            Err(StoreError::InvalidInput(message)) => {
                assert!(!message.contains("hunter2"), "{message}");
                assert!(message.contains("admin:***@node1"), "{message}");
            }
            other => panic!("expected a refusal: {other:?}"),
        }
    }
}
