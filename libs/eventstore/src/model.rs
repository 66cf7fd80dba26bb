//! What goes in and out of a store: stream names, expected versions, events, errors, limits.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;

/// Longest stream name, in bytes.
pub const STREAM_NAME_BYTES_MAX: usize = 200;
/// Longest event type name, in bytes.
pub const EVENT_TYPE_BYTES_MAX: usize = 200;
/// Largest payload of one event, in bytes.
pub const EVENT_PAYLOAD_BYTES_MAX: usize = 1024 * 1024;
/// Largest metadata of one event, in bytes.
pub const EVENT_METADATA_BYTES_MAX: usize = 16 * 1024;
/// Most events in one append.
pub const APPEND_EVENTS_MAX: usize = 10_000;
/// Largest append, all its events encoded, in bytes.
pub const APPEND_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most events one read returns.
pub const READ_EVENTS_MAX: usize = 10_000;

/// Largest checkpoint value, in bytes: a consumer's few named positions.
pub const CHECKPOINT_BYTES_MAX: usize = 64 * 1024;
/// Longest checkpoint name, in bytes.
pub const CHECKPOINT_NAME_BYTES_MAX: usize = 100;

/// Checks a checkpoint's name (1 to [`CHECKPOINT_NAME_BYTES_MAX`] bytes of ASCII letters,
/// digits, `.`, `_` and `-`) and the size of its value.
pub fn check_checkpoint(name: &str, value: &[u8]) -> Result<(), StoreError> {
    let valid_name = !name.is_empty()
        && name.len() <= CHECKPOINT_NAME_BYTES_MAX
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if !valid_name {
        return Err(StoreError::InvalidInput(format!(
            "checkpoint name {name:?} must be 1 to {CHECKPOINT_NAME_BYTES_MAX} letters, digits, '.', '_' or '-'"
        )));
    }
    if value.len() > CHECKPOINT_BYTES_MAX {
        return Err(StoreError::InvalidInput(format!(
            "checkpoint {name}: value is larger than {CHECKPOINT_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

/// Largest snapshot body, in bytes: under PostgreSQL's limit of 1 GiB for one value.
pub const SNAPSHOT_BYTES_MAX: usize = 768 * 1024 * 1024;

/// A read model's state as it stood after the event at `position`, encoded by the read model
/// (the store keeps the bytes, it does not read them). Kept under a name with
/// [`crate::EventStore::save_snapshot`], a checkpoint's kind of name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub position: Position,
    pub body: bytes::Bytes,
}

/// Checks a snapshot's name (as a checkpoint's) and the size of its body.
pub fn check_snapshot(name: &str, body: &[u8]) -> Result<(), StoreError> {
    check_checkpoint(name, &[])?;
    if body.len() > SNAPSHOT_BYTES_MAX {
        return Err(StoreError::InvalidInput(format!(
            "snapshot {name}: body is larger than {SNAPSHOT_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

/// Read a stream backwards from its last event.
pub const STREAM_END: u64 = u64::MAX;

/// A place in the whole log, as the backend defines it: each event has one, and they increase
/// in log order, but they need not be consecutive. The embedded and PostgreSQL stores number
/// their events 0, 1, 2... without gaps; EventStoreDB's are offsets in its transaction log.
///
/// Code outside a backend only compares positions, keeps and sends them (as [`Position::as_u64`])
/// and resumes after an event with [`Position::after`]; it never computes one from another.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position(u64);

impl Position {
    /// Before every event: reading from here reads the whole log.
    pub const START: Position = Position(0);

    /// The position a backend gave, or one read back from a checkpoint or a request.
    pub const fn from_u64(value: u64) -> Position {
        Position(value)
    }

    /// The value to keep or send, and to read back with [`Position::from_u64`].
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Where a reader resumes after the event at this position: no event lies between the two,
    /// and the next event's position is at or beyond it.
    #[must_use]
    pub const fn after(self) -> Position {
        Position(self.0.saturating_add(1))
    }

    /// How far `later` is from this position, for metrics and progress only: in events on the
    /// embedded and PostgreSQL stores, in bytes of log on EventStoreDB. Zero if `later` is not
    /// later.
    pub const fn distance_to(self, later: Position) -> u64 {
        later.0.saturating_sub(self.0)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl From<Position> for u64 {
    fn from(position: Position) -> u64 {
        position.0
    }
}

/// The name of a stream: `<category>-<id>` by convention (`listing-0190...`). Non-empty, at
/// most [`STREAM_NAME_BYTES_MAX`] bytes, no control characters, not starting with `$`
/// (reserved for the store's own streams).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(Arc<str>);

impl StreamName {
    pub fn new(name: &str) -> Result<StreamName, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidInput(format!("stream name {name:?} {reason}"));
        if name.is_empty() {
            return Err(invalid("is empty"));
        }
        if name.len() > STREAM_NAME_BYTES_MAX {
            return Err(invalid(&format!("is longer than {STREAM_NAME_BYTES_MAX} bytes")));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid("has control characters"));
        }
        if name.starts_with('$') {
            return Err(invalid("starts with $, which is reserved"));
        }
        Ok(StreamName(Arc::from(name)))
    }

    /// A name read back from the log, checked when it was appended.
    pub(crate) fn from_trusted(name: &str) -> StreamName {
        StreamName(Arc::from(name))
    }

    /// `<category>-<id>`.
    pub fn for_aggregate(category: &str, id: Uuid) -> Result<StreamName, StoreError> {
        StreamName::new(&format!("{category}-{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `-`.
    pub fn category(&self) -> &str {
        self.0.split('-').next().unwrap_or_default()
    }

    /// The aggregate's id of a stream named `<category>-<id>`, if the rest is a uuid.
    pub fn aggregate_id(&self) -> Option<Uuid> {
        self.0.split_once('-').and_then(|(_, id)| Uuid::parse_str(id).ok())
    }
}

impl std::borrow::Borrow<str> for StreamName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for StreamName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:?}", &*self.0)
    }
}

/// What an append expects of its stream. A mismatch is [`StoreError::WrongExpectedVersion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Whatever the stream holds, or nothing.
    Any,
    /// The stream has no event yet.
    NoStream,
    /// The stream's last event has this version (the first event is version 0).
    Exact(u64),
}

/// An event to append: its id (a UUIDv7 the caller chose, the key of idempotency), its type
/// name, and opaque metadata and payload bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventData {
    pub id: Uuid,
    pub event_type: String,
    pub metadata: Bytes,
    pub payload: Bytes,
}

impl EventData {
    pub fn new(id: Uuid, event_type: impl Into<String>, payload: impl Into<Bytes>) -> EventData {
        EventData { id, event_type: event_type.into(), metadata: Bytes::new(), payload: payload.into() }
    }

    pub fn with_metadata(mut self, metadata: impl Into<Bytes>) -> EventData {
        self.metadata = metadata.into();
        self
    }

    /// Bytes this event takes in a record, for the size limits ([`APPEND_BYTES_MAX`]).
    pub fn encoded_len(&self) -> usize {
        16 + 2 + self.event_type.len() + 4 + self.metadata.len() + 4 + self.payload.len()
    }

    pub(crate) fn check(&self) -> Result<(), StoreError> {
        let invalid = |reason: String| Err(StoreError::InvalidInput(format!("event {}: {reason}", self.id)));
        if self.event_type.is_empty() || self.event_type.len() > EVENT_TYPE_BYTES_MAX {
            return invalid(format!("type must be 1 to {EVENT_TYPE_BYTES_MAX} bytes"));
        }
        if self.payload.len() > EVENT_PAYLOAD_BYTES_MAX {
            return invalid(format!("payload is larger than {EVENT_PAYLOAD_BYTES_MAX} bytes"));
        }
        if self.metadata.len() > EVENT_METADATA_BYTES_MAX {
            return invalid(format!("metadata is larger than {EVENT_METADATA_BYTES_MAX} bytes"));
        }
        Ok(())
    }
}

/// An event as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub id: Uuid,
    pub event_type: String,
    pub stream: StreamName,
    /// Its place in its stream, from 0.
    pub version: u64,
    /// Its place in the whole log, in commit order.
    pub position: Position,
    /// When the store committed it, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    pub metadata: Bytes,
    pub payload: Bytes,
}

/// What a successful append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The version of the stream's last event, now.
    pub next_expected_version: u64,
    /// The position of the first and last events appended.
    pub first_position: Position,
    pub last_position: Position,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// What a store knows of a stream besides its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    /// The version of its last event.
    pub last_version: u64,
    /// Soft-deleted: its events stay in the log, but the stream reads as deleted and takes no
    /// more appends.
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("stream {stream}: expected version {expected:?}, but the stream is at {actual:?}")]
    WrongExpectedVersion { stream: StreamName, expected: ExpectedVersion, actual: Option<u64> },
    #[error("stream {0} not found")]
    StreamNotFound(StreamName),
    #[error("stream {0} is deleted")]
    StreamDeleted(StreamName),
    /// The first event id of the append was appended before, to this stream, in another
    /// batch: the append is neither new nor a repeat.
    #[error("stream {stream}: event {id} was already appended in a different batch")]
    DuplicateEvent { stream: StreamName, id: Uuid },
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Too many appends are waiting: try later.
    #[error("the store is overloaded: {0}")]
    Overloaded(String),
    #[error("the data directory {0} is in use by another process")]
    Locked(String),
    /// A record that fails a checksum or does not decode, where it cannot be a write cut
    /// short: the open refuses the store, or a read that reaches it fails. `file` and
    /// `offset` name where the record starts.
    #[error("corrupted log: {file} at offset {offset}: {reason}")]
    Corrupted { file: String, offset: u64, reason: String },
    /// The store stopped after an I/O error and takes no more appends; reopening recovers
    /// what was acknowledged.
    #[error("the store failed and must be reopened: {0}")]
    Failed(String),
    #[error("the store is closed")]
    Closed,
    #[error("i/o: {0}")]
    Io(String),
}

impl StoreError {
    pub(crate) fn io(context: &str, error: std::io::Error) -> StoreError {
        StoreError::Io(format!("{context}: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_checked() {
        assert!(StreamName::new("listing-0190a1b2").is_ok());
        assert_eq!(StreamName::new("listing-42").expect("valid").category(), "listing");
        for bad in ["", "$all", "a\nb", &"x".repeat(STREAM_NAME_BYTES_MAX + 1)] {
            assert!(matches!(StreamName::new(bad), Err(StoreError::InvalidInput(_))), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;

    #[test]
    fn a_snapshot_larger_than_the_limit_is_refused_naming_it() {
        let body = vec![0_u8; SNAPSHOT_BYTES_MAX + 1];
        let refused = check_snapshot("listings.market", &body).expect_err("too large");
        assert!(refused.to_string().contains("snapshot listings.market"), "{refused}");
        assert!(check_snapshot("listings.market", &body[..SNAPSHOT_BYTES_MAX]).is_ok());
    }
}
