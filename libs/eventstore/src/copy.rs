//! A whole log copied from one store to another, whatever their backends: every event with
//! its stream, version, id, type, payload and metadata, in log order, so positions come out
//! the same; resumable from wherever the target stopped; and a digest of each log to check
//! the two are equal.
//!
//! What the trait cannot carry is not copied: the time each event was recorded (the target
//! records its own), and how the source grouped events into appends (consecutive events of
//! one stream are appended together). A soft-deleted stream is deleted in the target right
//! after its last event is copied.
//!
//! A copy works between stores whose positions number events 0, 1, 2... without gaps (the
//! embedded and PostgreSQL stores), which is what lets it resume from the target's head and
//! check the target is a prefix of the source: this module is where it counts on that, and
//! it refuses a source whose positions skip (EventStoreDB's do).

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};

use crate::{
    APPEND_BYTES_MAX, APPEND_EVENTS_MAX, APPEND_MANY_MAX, Append, EventData, EventStore, ExpectedVersion,
    Position, RecordedEvent, StoreError, StreamName,
};

/// Events read from the source at once, at most.
pub const COPY_PAGE_EVENTS: usize = 1000;
/// Positions of the target's prefix compared with the source's before a copy resumes, besides
/// the last page before its head.
pub const PREFIX_CHECKS_MAX: u64 = 8;

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The target's head when the copy started: the events before it were there already.
    pub from_position: u64,
    /// The target's head when the copy ended.
    pub to_position: u64,
    /// Appends written (consecutive events of a stream go in one).
    pub appends: u64,
    /// Streams deleted in the target, as they are in the source.
    pub deleted_streams: u64,
}

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("reading the source: {0}")]
    Source(StoreError),
    #[error("writing the target: {0}")]
    Target(StoreError),
    /// The target is not a prefix of the source, or a log has a gap: nothing more is written.
    #[error("refused: {0}")]
    Refused(String),
}

/// The number of events of a log and a SHA-256 over every one of them, in order: position,
/// stream, version, id, type, metadata and payload (not the recorded time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogDigest {
    pub events: u64,
    pub sha256: [u8; 32],
}

impl std::fmt::Display for LogDigest {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} events, sha256 ", self.events)?;
        self.sha256.iter().try_for_each(|byte| write!(formatter, "{byte:02x}"))
    }
}

/// Copies the source's events from the target's head up to `until_position` (exclusive,
/// capped at the source's head) into the target, calling `on_progress` with the number of
/// events copied so far after each page. The target must hold a prefix of the source (none
/// at all for a first copy); that is checked first, at a few positions and over the last page
/// before its head, and a target that differs is refused before anything is written.
pub async fn copy_log<S: EventStore, T: EventStore>(
    source: &S,
    target: &T,
    until_position: u64,
    mut on_progress: impl FnMut(u64),
) -> Result<Copied, CopyError> {
    let (start, source_head) = (target.head().as_u64(), source.head().as_u64());
    let until = until_position.min(source_head);
    if start > source_head {
        return Err(CopyError::Refused(format!(
            "the target holds {start} events, the source only {source_head}: the target is not a copy of it"
        )));
    }
    let mut copied = Copied { from_position: start, to_position: start, appends: 0, deleted_streams: 0 };
    if start > 0 {
        check_prefix(source, target, start).await?;
        // An interrupted copy may have stopped between a stream's last event and its deletion.
        let last_page = start.saturating_sub(COPY_PAGE_EVENTS as u64);
        let events = read_page(source, last_page, (start - last_page) as usize).await?;
        copied.deleted_streams += delete_finished_streams(source, target, &events).await?;
    }
    let mut position = start;
    while position < until {
        let count = (until - position).min(COPY_PAGE_EVENTS as u64) as usize;
        let events = read_page(source, position, count).await?;
        if events.is_empty() {
            return Err(CopyError::Refused(format!("the source has no event at position {position}")));
        }
        let appends = group_into_appends(&events);
        for chunk in appends.chunks(APPEND_MANY_MAX) {
            let expected_positions: Vec<u64> =
                chunk.iter().map(|(first_position, _)| *first_position).collect();
            let answers = target.append_many(chunk.iter().map(|(_, append)| append.clone()).collect()).await;
            for (answer, expected_position) in answers.into_iter().zip(expected_positions) {
                let appended = answer.map_err(CopyError::Target)?;
                if appended.first_position.as_u64() != expected_position {
                    return Err(CopyError::Refused(format!(
                        "the target wrote at position {} the event the source has at {expected_position}: \
                         something else writes to the target",
                        appended.first_position
                    )));
                }
                copied.appends += 1;
            }
        }
        copied.deleted_streams += delete_finished_streams(source, target, &events).await?;
        position += events.len() as u64;
        copied.to_position = position;
        on_progress(position - start);
    }
    Ok(copied)
}

/// The digest of the store's events from position 0 up to its head, calling `on_progress`
/// with the number of events read so far after each page.
pub async fn digest_log<S: EventStore>(
    store: &S,
    mut on_progress: impl FnMut(u64),
) -> Result<LogDigest, StoreError> {
    let head = store.head().as_u64();
    let mut hasher = Sha256::new();
    let mut position = 0;
    while position < head {
        let count = (head - position).min(COPY_PAGE_EVENTS as u64) as usize;
        let events = store.read_all(Position::from_u64(position), count).await?;
        if events.is_empty() {
            return Err(StoreError::InvalidInput(format!(
                "no event at position {position} below the head {head}"
            )));
        }
        for event in &events {
            hash_event(&mut hasher, event);
        }
        position += events.len() as u64;
        on_progress(position);
    }
    Ok(LogDigest { events: position, sha256: hasher.finalize().into() })
}

/// Each field of `event` but its time, lengths first, so that no two events hash the same bytes.
fn hash_event(hasher: &mut Sha256, event: &RecordedEvent) {
    hasher.update(event.position.as_u64().to_be_bytes());
    hasher.update((event.stream.as_str().len() as u64).to_be_bytes());
    hasher.update(event.stream.as_str().as_bytes());
    hasher.update(event.version.to_be_bytes());
    hasher.update(event.id.as_bytes());
    hasher.update((event.event_type.len() as u64).to_be_bytes());
    hasher.update(event.event_type.as_bytes());
    hasher.update((event.metadata.len() as u64).to_be_bytes());
    hasher.update(&event.metadata);
    hasher.update((event.payload.len() as u64).to_be_bytes());
    hasher.update(&event.payload);
}

/// `count` source events from `position`, checked to follow each other without a gap.
async fn read_page<S: EventStore>(
    source: &S,
    position: u64,
    count: usize,
) -> Result<Vec<RecordedEvent>, CopyError> {
    let events = source.read_all(Position::from_u64(position), count).await.map_err(CopyError::Source)?;
    for (offset, event) in events.iter().enumerate() {
        let expected = position + offset as u64;
        if event.position.as_u64() != expected {
            return Err(CopyError::Refused(format!(
                "the source's log has a gap: position {} where {expected} was expected",
                event.position
            )));
        }
    }
    Ok(events)
}

/// Compares the target's events with the source's at a few positions spread over the target's
/// `head` events and over the last page before it.
async fn check_prefix<S: EventStore, T: EventStore>(
    source: &S,
    target: &T,
    head: u64,
) -> Result<(), CopyError> {
    let last_page = head.saturating_sub(COPY_PAGE_EVENTS as u64);
    let mut ranges: Vec<(u64, usize)> = (0..PREFIX_CHECKS_MAX)
        .map(|index| index * (head - 1) / (PREFIX_CHECKS_MAX - 1))
        .filter(|position| *position < last_page)
        .map(|position| (position, 1))
        .collect();
    ranges.dedup();
    ranges.push((last_page, (head - last_page) as usize));
    for (position, count) in ranges {
        let theirs = read_page(source, position, count).await?;
        let ours = target.read_all(Position::from_u64(position), count).await.map_err(CopyError::Target)?;
        for (offset, event) in ours.iter().enumerate() {
            if theirs.get(offset).is_none_or(|source_event| !same_event(source_event, event)) {
                return Err(CopyError::Refused(format!(
                    "the target's event at position {} (id {}, stream {}) is not the source's: \
                     the target holds other events",
                    event.position, event.id, event.stream
                )));
            }
        }
        if ours.len() != count {
            return Err(CopyError::Refused(format!("the target's log has a gap after position {position}")));
        }
    }
    Ok(())
}

fn same_event(one: &RecordedEvent, other: &RecordedEvent) -> bool {
    one.position == other.position
        && one.id == other.id
        && one.stream == other.stream
        && one.version == other.version
        && one.event_type == other.event_type
        && one.metadata == other.metadata
        && one.payload == other.payload
}

/// The appends that write `events` (a gapless page of the log) in order, each with the
/// position its first event must get: consecutive events of one stream together, within the
/// limits of one append.
fn group_into_appends(events: &[RecordedEvent]) -> Vec<(u64, Append)> {
    let mut appends: Vec<(u64, Append, usize)> = Vec::new();
    for event in events {
        let data = EventData {
            id: event.id,
            event_type: event.event_type.clone(),
            metadata: event.metadata.clone(),
            payload: event.payload.clone(),
        };
        let bytes = data.encoded_len();
        if let Some((_, append, append_bytes)) = appends.last_mut()
            && append.stream == event.stream
            && append.events.len() < APPEND_EVENTS_MAX
            && *append_bytes + bytes <= APPEND_BYTES_MAX
        {
            append.events.push(data);
            *append_bytes += bytes;
            continue;
        }
        let expected = match event.version {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exact(version - 1),
        };
        appends.push((
            event.position.as_u64(),
            Append { stream: event.stream.clone(), expected, events: vec![data] },
            bytes,
        ));
    }
    appends.into_iter().map(|(position, append, _)| (position, append)).collect()
}

/// Deletes in the target each stream of `events` that the source has deleted and whose last
/// event is among them (so nothing more of it is to come); a stream deleted already is left.
async fn delete_finished_streams<S: EventStore, T: EventStore>(
    source: &S,
    target: &T,
    events: &[RecordedEvent],
) -> Result<u64, CopyError> {
    let mut last_versions: HashMap<&StreamName, u64> = HashMap::new();
    for event in events {
        last_versions.insert(&event.stream, event.version);
    }
    let mut deleted = 0;
    for (stream, last_version) in last_versions {
        let Some(info) = source.stream_info(stream).await.map_err(CopyError::Source)? else { continue };
        if !info.deleted || info.last_version != last_version {
            continue;
        }
        match target.stream_info(stream).await.map_err(CopyError::Target)? {
            Some(theirs) if theirs.deleted => continue,
            Some(theirs) if theirs.last_version == last_version => {}
            // Its last event is not in the target yet: it will be deleted once it is.
            _ => continue,
        }
        target
            .delete_stream(stream, ExpectedVersion::Exact(last_version))
            .await
            .map_err(CopyError::Target)?;
        deleted += 1;
    }
    Ok(deleted)
}
