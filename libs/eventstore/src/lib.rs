//! The event store: the source of truth of every Symbiose service.
//!
//! [`EventStore`] is the interface every backend implements: append to a stream with an
//! expected version (idempotent by event ids, atomic per append), read a stream forwards or
//! backwards, read the whole log from a global position, wait for new events, and soft-delete
//! a stream. [`Subscription`] is written once on top of it: catch-up, then live, without a gap
//! or a duplicate at the switch, pulling one page at a time so a slow subscriber never makes
//! the store buffer for it. [`contract`] is the test suite every backend must pass.
//!
//! [`embedded::EmbeddedStore`] is the backend `cargo run` uses: a segmented, checksummed log
//! on local disk with group commit. [`any::AnyStore`] is the one a server holds when its
//! configuration chooses the backend. [`postgres::PostgresStore`] keeps the log in PostgreSQL,
//! positions taken under one row lock so they follow commit order. [`copy`] copies a whole log
//! from one store to another and digests a log to check the copy. With the feature
//! `eventstoredb`, [`eventstoredb::EventStoreDbStore`] keeps the log in EventStoreDB. This crate
//! never decodes payloads: they are opaque bytes.

pub mod any;
pub mod contract;
pub mod copy;
pub mod embedded;
#[cfg(feature = "eventstoredb")]
pub mod eventstoredb;
pub mod lease;
mod model;
pub mod postgres;
mod snapshot_files;
mod subscription;

use std::future::Future;

pub use any::AnyStore;
pub use model::{
    APPEND_BYTES_MAX, APPEND_EVENTS_MAX, AppendResult, CHECKPOINT_BYTES_MAX, CHECKPOINT_NAME_BYTES_MAX,
    Direction, EVENT_METADATA_BYTES_MAX, EVENT_PAYLOAD_BYTES_MAX, EVENT_TYPE_BYTES_MAX, EventData,
    ExpectedVersion, Position, READ_EVENTS_MAX, RecordedEvent, SNAPSHOT_BYTES_MAX, STREAM_END,
    STREAM_NAME_BYTES_MAX, Snapshot, StoreError, StreamInfo, StreamName, check_checkpoint, check_snapshot,
};
pub use subscription::{SUBSCRIPTION_PAGE_BYTES, SUBSCRIPTION_PAGE_EVENTS, Subscription};

/// Appends one [`EventStore::append_many`] takes, at most.
pub const APPEND_MANY_MAX: usize = 1024;

/// One append of [`EventStore::append_many`].
#[derive(Debug, Clone)]
pub struct Append {
    pub stream: StreamName,
    pub expected: ExpectedVersion,
    pub events: Vec<EventData>,
}

/// The answer to each append past [`APPEND_MANY_MAX`].
pub fn too_many_appends() -> StoreError {
    StoreError::InvalidInput(format!("at most {APPEND_MANY_MAX} appends at once"))
}

/// A store of event streams with one global order.
///
/// Versions count from 0 within a stream; [`Position`]s order the whole log, in commit order
/// (consecutive or not, as the backend defines them), and an event is visible only once it is
/// durable.
pub trait EventStore: Clone + Send + Sync + 'static {
    /// Appends `events` to `stream` if its version is `expected`, all or nothing. Appending
    /// again a batch whose ids were appended to that stream, with the same expected version
    /// (or `Any`), returns the original result and writes nothing.
    fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send;

    /// Appends each of `appends` (stream, expected version, events) as [`EventStore::append`]
    /// would, in their order (an append's positions follow the previous one's), each on its own
    /// (one refused leaves the others), and answers each. A backend may write them together:
    /// the embedded store makes them durable with one `fdatasync`. At most
    /// [`APPEND_MANY_MAX`] appends.
    fn append_many(
        &self,
        appends: Vec<Append>,
    ) -> impl Future<Output = Vec<Result<AppendResult, StoreError>>> + Send {
        async move {
            let mut answers = Vec::with_capacity(appends.len());
            for (index, append) in appends.into_iter().enumerate() {
                answers.push(if index < APPEND_MANY_MAX {
                    self.append(&append.stream, append.expected, append.events).await
                } else {
                    Err(too_many_appends())
                });
            }
            answers
        }
    }

    /// At most `max_count` events of `stream` from `from_version` on (forwards), or from
    /// `from_version` down (backwards; [`STREAM_END`] for the last event). An absent stream is
    /// [`StoreError::StreamNotFound`], a deleted one [`StoreError::StreamDeleted`].
    fn read_stream(
        &self,
        stream: &StreamName,
        from_version: u64,
        direction: Direction,
        max_count: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// At most `max_count` events of the whole log from `from_position` on, in order.
    fn read_all(
        &self,
        from_position: Position,
        max_count: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Where the durable log ends: [`Position::after`] its last durable event, or
    /// [`Position::START`] while it has none. Every event at or beyond it is yet to come.
    fn head(&self) -> Position;

    /// Waits until the head is beyond `position` (an event at or after `position` is durable),
    /// and returns the head.
    fn wait_for_head(&self, position: Position) -> impl Future<Output = Result<Position, StoreError>> + Send;

    /// The stream's last version and whether it is deleted, or `None` if it has no event.
    fn stream_info(
        &self,
        stream: &StreamName,
    ) -> impl Future<Output = Result<Option<StreamInfo>, StoreError>> + Send;

    /// Soft-deletes `stream` if its version is `expected`: its events stay in the log (and in
    /// `read_all`), but reading the stream answers `StreamDeleted` and appends are refused.
    fn delete_stream(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The checkpoint saved under `name` (a consumer's progress through some log), or `None` if
    /// none was. Checkpoints live beside the events, so a process that moves to another
    /// machine finds its progress where it finds the log.
    fn load_checkpoint(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<bytes::Bytes>, StoreError>> + Send;

    /// Replaces the checkpoint `name` with `value`, durably: after a crash it holds the old
    /// value or the new one. Names and sizes are checked by [`check_checkpoint`]. Checkpoints
    /// are not events: no read of the log returns them.
    fn save_checkpoint(
        &self,
        name: &str,
        value: bytes::Bytes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether the store keeps snapshots ([`EventStore::save_snapshot`]). The embedded store
    /// keeps them in files beside its segments, PostgreSQL in a table, the EventStoreDB backend
    /// in a directory of the process when given one (a cache; without it, none, and the read
    /// models replay the log from its first event at every start).
    fn keeps_snapshots(&self) -> bool {
        false
    }

    /// The snapshot saved under `name`, or `None` if none was (or the store keeps none).
    fn load_snapshot(&self, name: &str) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send {
        let checked = check_snapshot(name, &[]);
        async move { checked.map(|()| None) }
    }

    /// Replaces the snapshot `name` with `snapshot`, durably: after a crash it holds the old
    /// one or the new one. The last saved wins, whatever the positions: every snapshot is true
    /// at its own position. A store that keeps none ([`EventStore::keeps_snapshots`]) drops it.
    fn save_snapshot(
        &self,
        name: &str,
        snapshot: Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let checked = check_snapshot(name, &snapshot.body);
        async move { checked }
    }

    /// Takes the lease `name` for `holder` until `ttl` from now, or renews it if `holder` holds
    /// it: the lease's generation (how many times it changed hands), or `None` while another
    /// holder's deadline has not passed. See [`lease`]. The default, for a store one process
    /// owns (the embedded store locks its directory), grants every lease at once: there is no
    /// one else to share it with. PostgreSQL keeps leases in a table, EventStoreDB in a stream
    /// each ([`lease::Observed`]).
    fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        let _ = ttl;
        let checked = lease::check_lease(name, holder);
        async move { checked.map(|()| Some(1)) }
    }

    /// Gives up the lease `name` if `holder` holds it, so another may take it at once.
    fn release_lease(&self, name: &str, holder: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let checked = lease::check_lease(name, holder);
        async move { checked }
    }

    /// Every event from `from_position` on: first those already in the log, then new ones as
    /// they become durable.
    fn subscribe_all(&self, from_position: Position) -> Subscription<Self> {
        Subscription::new(self.clone(), from_position)
    }
}
