//! Per-segment index files (`<first position>.idx`): for each record of a sealed segment,
//! what the in-memory index needs (stream, versions, positions, offset, first event id), and
//! none of the payloads. Opening a large log reads these instead of rescanning every event;
//! only the last segment, still being written, is scanned.
//!
//! An index file is written once, when its segment is sealed, in the background (or on open
//! for a sealed segment that lacks one). It is only a cache of the segment: a missing,
//! mismatched or corrupted one is ignored, and the segment is scanned instead. It does not
//! vouch for the segment's records: a damaged record of a sealed segment is found when it is
//! read (every read checks both checksums) or by `verify`, not by the open.
//!
//! ```text
//! u8[8] magic "SYMIDX01", u64 segment length, u64 record count, u32 CRC32C of the entries
//! entries: u8 kind, u64 first position, u64 first version, u32 event count, u64 offset,
//!          u8[16] first event id, u16 stream name length, stream name
//! ```

use std::path::Path;

use bytes::Buf as _;
use uuid::Uuid;

use super::disk::{self, Disk, DiskFile};
use super::record::{self, Format, Kind, Record};
use super::segment::{self, ScanStop, Scanner};
use crate::model::StreamName;

const MAGIC: &[u8; 8] = b"SYMIDX01";
const HEADER_BYTES: usize = 8 + 8 + 8 + 4;
pub(crate) const SUFFIX: &str = ".idx";

/// What the index keeps of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) kind: Kind,
    pub(crate) first_position: u64,
    pub(crate) first_version: u64,
    pub(crate) count: u32,
    pub(crate) offset: u64,
    /// The first event's id; nil for a stream-deleted record.
    pub(crate) first_id: Uuid,
    pub(crate) stream: StreamName,
}

impl Summary {
    pub(crate) fn of(record: &Record, offset: u64) -> Result<Summary, String> {
        let stream =
            std::str::from_utf8(&record.stream).map_err(|_| "stream name is not UTF-8".to_owned())?;
        if record.kind == Kind::Events && record.events.is_empty() {
            return Err("an events record without events".to_owned());
        }
        Ok(Summary {
            kind: record.kind,
            first_position: record.first_position,
            first_version: record.first_version,
            count: u32::try_from(record.events.len())
                .map_err(|_| "too many events in a record".to_owned())?,
            offset,
            first_id: record.events.first().map_or(Uuid::nil(), |event| event.id),
            stream: StreamName::from_trusted(stream),
        })
    }
}

pub(crate) fn file_name(first_position: u64) -> String {
    format!("{first_position:020}{SUFFIX}")
}

/// Summarises every record of `file` (of `format`) up to `len`, with why the scan stopped
/// short of `len` if it did (a record that does not decode is an invalid stop at its offset).
pub(crate) fn scan(file: &dyn DiskFile, format: Format, len: u64) -> (Vec<Summary>, Option<ScanStop>) {
    let mut scanner = Scanner::new(file, format, segment::data_start(format), len);
    let mut summaries = Vec::new();
    loop {
        match scanner.next_record() {
            Ok(Some(raw)) => {
                let offset = raw.offset;
                let summary = record::decode(raw.body).and_then(|record| Summary::of(&record, offset));
                match summary {
                    Ok(summary) => summaries.push(summary),
                    // Its checksums hold: it was written so, and is never a torn write.
                    Err(reason) => {
                        return (summaries, Some(ScanStop::Invalid { offset, reach: offset, reason }));
                    }
                }
            }
            Ok(None) => return (summaries, None),
            Err(stop) => return (summaries, Some(stop)),
        }
    }
}

/// Writes the index file of a sealed segment durably (temporary file, sync, rename, sync).
pub(crate) fn write(
    disk: &dyn Disk,
    dir: &Path,
    first_position: u64,
    segment_len: u64,
    summaries: &[Summary],
) -> std::io::Result<()> {
    let mut entries = Vec::with_capacity(summaries.len() * 64);
    for summary in summaries {
        entries.push(summary.kind as u8);
        entries.extend_from_slice(&summary.first_position.to_le_bytes());
        entries.extend_from_slice(&summary.first_version.to_le_bytes());
        entries.extend_from_slice(&summary.count.to_le_bytes());
        entries.extend_from_slice(&summary.offset.to_le_bytes());
        entries.extend_from_slice(summary.first_id.as_bytes());
        let stream = summary.stream.as_str().as_bytes();
        entries
            .extend_from_slice(&u16::try_from(stream.len()).expect("stream names are short").to_le_bytes());
        entries.extend_from_slice(stream);
    }
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&segment_len.to_le_bytes());
    header.extend_from_slice(&(summaries.len() as u64).to_le_bytes());
    header.extend_from_slice(&crc32c::crc32c(&entries).to_le_bytes());

    header.extend_from_slice(&entries);
    disk::write_durably(disk, dir, &dir.join(file_name(first_position)), &header)
}

/// The summaries of a sealed segment of length `segment_len`, if its index file is there
/// and sound.
pub(crate) fn read(
    disk: &dyn Disk,
    dir: &Path,
    first_position: u64,
    segment_len: u64,
) -> Option<Vec<Summary>> {
    let name = file_name(first_position);
    match read_checked(disk, dir, first_position, segment_len)? {
        Ok(summaries) => Some(summaries),
        Err(reason) => {
            tracing::warn!(file = %name, %reason, "ignoring a segment index, scanning the segment instead");
            None
        }
    }
}

/// The summaries of a sealed segment of length `segment_len` from its index file, why they
/// cannot be used, or `None` if there is no index file.
pub(crate) fn read_checked(
    disk: &dyn Disk,
    dir: &Path,
    first_position: u64,
    segment_len: u64,
) -> Option<Result<Vec<Summary>, String>> {
    match disk::read_all(disk, &dir.join(file_name(first_position))) {
        Ok(bytes) => Some(parse(&bytes, segment_len)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => Some(Err(format!("cannot be read: {error}"))),
    }
}

fn parse(bytes: &[u8], segment_len: u64) -> Result<Vec<Summary>, String> {
    if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
        return Err("not a segment index".to_owned());
    }
    let mut header = &bytes[8..HEADER_BYTES];
    let indexed_len = header.get_u64_le();
    let count = header.get_u64_le();
    let crc = header.get_u32_le();
    let mut entries = &bytes[HEADER_BYTES..];
    if indexed_len != segment_len {
        return Err(format!("indexes {indexed_len} bytes, the segment has {segment_len}"));
    }
    if crc32c::crc32c(entries) != crc {
        return Err("checksum mismatch".to_owned());
    }
    const ENTRY_FIXED_BYTES: usize = 1 + 8 + 8 + 4 + 8 + 16 + 2;
    if count > (entries.len() / ENTRY_FIXED_BYTES) as u64 {
        return Err(format!("{count} entries do not fit the file"));
    }
    let mut summaries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        if entries.len() < ENTRY_FIXED_BYTES {
            return Err("entries end early".to_owned());
        }
        let kind = match entries.get_u8() {
            1 => Kind::Events,
            2 => Kind::StreamDeleted,
            other => return Err(format!("unknown record kind {other}")),
        };
        let first_position = entries.get_u64_le();
        let first_version = entries.get_u64_le();
        let event_count = entries.get_u32_le();
        let offset = entries.get_u64_le();
        let first_id = Uuid::from_slice(&entries[..16]).map_err(|error| error.to_string())?;
        entries.advance(16);
        let stream_len = usize::from(entries.get_u16_le());
        if entries.len() < stream_len {
            return Err("entries end early".to_owned());
        }
        let stream =
            std::str::from_utf8(&entries[..stream_len]).map_err(|_| "stream name is not UTF-8".to_owned())?;
        let stream = StreamName::from_trusted(stream);
        entries.advance(stream_len);
        summaries.push(Summary {
            kind,
            first_position,
            first_version,
            count: event_count,
            offset,
            first_id,
            stream,
        });
    }
    if !entries.is_empty() {
        return Err("bytes after the last entry".to_owned());
    }
    Ok(summaries)
}
