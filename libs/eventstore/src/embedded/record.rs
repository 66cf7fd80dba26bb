//! The on-disk record: one per append, so that an append is atomic whatever crashes.
//!
//! ```text
//! header   u32 body length, u32 CRC32C of the body,
//!          u32 CRC32C of the 8 header bytes before                           (little endian)
//! body     u8  kind (1 events, 2 stream deleted)
//!          u64 first position, u64 timestamp ms, u64 first version
//!          u16 stream name length, stream name
//!          u32 event count
//!          per event: 16-byte id, u16 type length, type,
//!                     u32 metadata length, metadata, u32 payload length, payload
//! trailer  u8  0xA5
//! ```
//! Every byte is checked: the header by its own checksum, so a damaged length is never
//! trusted to find the next record; the body by its checksum; the trailer by its value. The
//! trailer is there for recovery: a complete record never ends in a zero byte, even with one
//! bit flipped, so zeros up to the end of a file can only be lost sectors, never the genuine
//! end of an acknowledged record (see the rule in `embedded`).
//!
//! A "stream deleted" record has no event and takes no position: its first position is the
//! next one to be assigned.
//!
//! Segment files of the first format ([`Format::V1`]) hold records of `u32 body length, u32
//! CRC32C of the body`, the same body, and no trailer: they are still read, never written.

use bytes::{Buf, Bytes};
use uuid::Uuid;

use crate::model::{APPEND_BYTES_MAX, EventData, STREAM_NAME_BYTES_MAX};

/// Largest body a record may have: a full append plus its fixed fields.
pub(crate) const BODY_BYTES_MAX: usize = APPEND_BYTES_MAX + 64 + STREAM_NAME_BYTES_MAX;
/// The last byte of every record of the current format. Four bits set: one flipped bit
/// leaves it non-zero.
pub(crate) const TRAILER: u8 = 0xA5;
const FIXED_BODY_BYTES: usize = 1 + 8 + 8 + 8 + 2 + 4;

/// The record layout of a segment file, told by the file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The first format: the length is outside every checksum. Read only.
    V1,
    /// The current format: header checksum and trailer.
    V2,
}

impl Format {
    pub(crate) fn header_bytes(self) -> usize {
        match self {
            Format::V1 => 8,
            Format::V2 => 12,
        }
    }

    /// The bytes a record with a body of `body_len` takes on disk.
    pub(crate) fn record_bytes(self, body_len: usize) -> u64 {
        let trailer = match self {
            Format::V1 => 0,
            Format::V2 => 1,
        };
        (self.header_bytes() + body_len + trailer) as u64
    }

    /// The number operators see: 1 or 2.
    pub(crate) fn number(self) -> u8 {
        match self {
            Format::V1 => 1,
            Format::V2 => 2,
        }
    }
}

/// What a record header says, once its checksum holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) body_len: usize,
    pub(crate) body_crc: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Events = 1,
    StreamDeleted = 2,
}

/// One event of a decoded record.
#[derive(Debug, Clone)]
pub(crate) struct RecordEvent {
    pub(crate) id: Uuid,
    pub(crate) event_type: Bytes,
    pub(crate) metadata: Bytes,
    pub(crate) payload: Bytes,
}

#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) kind: Kind,
    pub(crate) first_position: u64,
    pub(crate) timestamp_ms: u64,
    pub(crate) first_version: u64,
    pub(crate) stream: Bytes,
    pub(crate) events: Vec<RecordEvent>,
}

/// Appends the record of an append to `buffer`.
pub(crate) fn encode_events(
    buffer: &mut Vec<u8>,
    first_position: u64,
    timestamp_ms: u64,
    stream: &str,
    first_version: u64,
    events: &[EventData],
) {
    let body_len = FIXED_BODY_BYTES + stream.len() + events.iter().map(EventData::encoded_len).sum::<usize>();
    let start = begin(buffer, body_len);
    put_fixed(buffer, Kind::Events, first_position, timestamp_ms, first_version, stream, events.len());
    for event in events {
        buffer.extend_from_slice(event.id.as_bytes());
        buffer.extend_from_slice(
            &u16::try_from(event.event_type.len()).expect("type length checked").to_le_bytes(),
        );
        buffer.extend_from_slice(event.event_type.as_bytes());
        buffer.extend_from_slice(
            &u32::try_from(event.metadata.len()).expect("metadata length checked").to_le_bytes(),
        );
        buffer.extend_from_slice(&event.metadata);
        buffer.extend_from_slice(
            &u32::try_from(event.payload.len()).expect("payload length checked").to_le_bytes(),
        );
        buffer.extend_from_slice(&event.payload);
    }
    finish(buffer, start, body_len);
}

/// Appends a "stream deleted" record to `buffer`.
pub(crate) fn encode_deleted(
    buffer: &mut Vec<u8>,
    next_position: u64,
    timestamp_ms: u64,
    stream: &str,
    last_version: u64,
) {
    let body_len = FIXED_BODY_BYTES + stream.len();
    let start = begin(buffer, body_len);
    put_fixed(buffer, Kind::StreamDeleted, next_position, timestamp_ms, last_version, stream, 0);
    finish(buffer, start, body_len);
}

fn begin(buffer: &mut Vec<u8>, body_len: usize) -> usize {
    assert!(body_len <= BODY_BYTES_MAX, "appends are checked against the size limit first");
    buffer.reserve(Format::V2.record_bytes(body_len) as usize);
    let start = buffer.len();
    buffer.extend_from_slice(&[0; 12]);
    start
}

fn put_fixed(
    buffer: &mut Vec<u8>,
    kind: Kind,
    first_position: u64,
    timestamp_ms: u64,
    first_version: u64,
    stream: &str,
    count: usize,
) {
    buffer.push(kind as u8);
    buffer.extend_from_slice(&first_position.to_le_bytes());
    buffer.extend_from_slice(&timestamp_ms.to_le_bytes());
    buffer.extend_from_slice(&first_version.to_le_bytes());
    buffer.extend_from_slice(&u16::try_from(stream.len()).expect("stream name length checked").to_le_bytes());
    buffer.extend_from_slice(stream.as_bytes());
    buffer.extend_from_slice(&u32::try_from(count).expect("event count checked").to_le_bytes());
}

fn finish(buffer: &mut Vec<u8>, start: usize, body_len: usize) {
    let header_bytes = Format::V2.header_bytes();
    let body = &buffer[start + header_bytes..];
    assert_eq!(body.len(), body_len, "encoded length matches the computed length");
    let header = header_for(body);
    buffer[start..start + header_bytes].copy_from_slice(&header);
    buffer.push(TRAILER);
}

/// Appends a whole record of the current format holding `body`, as it was in a file of the
/// first format.
pub(crate) fn encode_body(buffer: &mut Vec<u8>, body: &[u8]) {
    assert!(body.len() <= BODY_BYTES_MAX, "a body read back was checked against the limit");
    buffer.extend_from_slice(&header_for(body));
    buffer.extend_from_slice(body);
    buffer.push(TRAILER);
}

fn header_for(body: &[u8]) -> [u8; 12] {
    let mut header = [0u8; 12];
    let length = u32::try_from(body.len()).expect("body length bounded");
    header[0..4].copy_from_slice(&length.to_le_bytes());
    header[4..8].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    let header_crc = crc32c::crc32c(&header[0..8]);
    header[8..12].copy_from_slice(&header_crc.to_le_bytes());
    header
}

/// The header at the start of `bytes` (at least `format.header_bytes()` long), or why it
/// cannot be trusted.
pub(crate) fn parse_header(format: Format, bytes: &[u8]) -> Result<Header, String> {
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    if format == Format::V2 && crc32c::crc32c(&bytes[0..8]) != word(8) {
        return Err("record header checksum mismatch".to_owned());
    }
    Ok(Header { body_len: word(0) as usize, body_crc: word(4) })
}

pub(crate) fn checksum_holds(body: &[u8], crc: u32) -> bool {
    crc32c::crc32c(body) == crc
}

/// Decodes a body whose checksum holds. A body that does not decode is corruption.
pub(crate) fn decode(body: Bytes) -> Result<Record, String> {
    let mut body = body;
    let short = || "record body ends early".to_owned();
    if body.len() < FIXED_BODY_BYTES {
        return Err(short());
    }
    let kind = match body.get_u8() {
        1 => Kind::Events,
        2 => Kind::StreamDeleted,
        other => return Err(format!("unknown record kind {other}")),
    };
    let first_position = body.get_u64_le();
    let timestamp_ms = body.get_u64_le();
    let first_version = body.get_u64_le();
    let stream_len = usize::from(body.get_u16_le());
    if body.len() < stream_len + 4 {
        return Err(short());
    }
    let stream = body.split_to(stream_len);
    let count = body.get_u32_le() as usize;
    if kind == Kind::StreamDeleted && count != 0 {
        return Err("a stream-deleted record holds events".to_owned());
    }
    // Each event takes at least 26 bytes: a count beyond that is corruption, not an
    // allocation to attempt.
    if count > body.len() / 26 {
        return Err(format!("event count {count} does not fit the record"));
    }
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        if body.len() < 18 {
            return Err(short());
        }
        let id = Uuid::from_slice(&body.split_to(16)).map_err(|error| error.to_string())?;
        let type_len = usize::from(body.get_u16_le());
        if body.len() < type_len + 4 {
            return Err(short());
        }
        let event_type = body.split_to(type_len);
        let metadata_len = body.get_u32_le() as usize;
        if body.len() < metadata_len + 4 {
            return Err(short());
        }
        let metadata = body.split_to(metadata_len);
        let payload_len = body.get_u32_le() as usize;
        if body.len() < payload_len {
            return Err(short());
        }
        let payload = body.split_to(payload_len);
        events.push(RecordEvent { id, event_type, metadata, payload });
    }
    if !body.is_empty() {
        return Err(format!("{} bytes left after the last event", body.len()));
    }
    Ok(Record { kind, first_position, timestamp_ms, first_version, stream, events })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_decodes_to_what_was_encoded() {
        let events = vec![
            EventData::new(Uuid::now_v7(), "ListingPublished", &b"payload one"[..])
                .with_metadata(&b"meta"[..]),
            EventData::new(Uuid::now_v7(), "ListingAmended", Bytes::new()),
        ];
        let mut buffer = Vec::new();
        encode_events(&mut buffer, 41, 1_700_000_000_000, "listing-7", 3, &events);
        let header = parse_header(Format::V2, &buffer).expect("a sound header");
        assert_eq!(Format::V2.record_bytes(header.body_len), buffer.len() as u64);
        assert_eq!(buffer.last(), Some(&TRAILER));
        let body = Bytes::copy_from_slice(&buffer[12..12 + header.body_len]);
        assert!(checksum_holds(&body, header.body_crc));
        let record = decode(body).expect("decodes");
        assert_eq!(record.kind, Kind::Events);
        assert_eq!((record.first_position, record.first_version), (41, 3));
        assert_eq!(&record.stream[..], b"listing-7");
        assert_eq!(record.events.len(), 2);
        assert_eq!(record.events[0].id, events[0].id);
        assert_eq!(&record.events[0].event_type[..], b"ListingPublished");
        assert_eq!(&record.events[0].metadata[..], b"meta");
        assert_eq!(&record.events[0].payload[..], b"payload one");
        assert!(record.events[1].payload.is_empty());
    }

    #[test]
    fn every_flipped_bit_of_a_record_is_caught() {
        let mut buffer = Vec::new();
        encode_deleted(&mut buffer, 7, 1, "listing-7", 2);
        let sound = |bytes: &[u8]| {
            parse_header(Format::V2, bytes).is_ok_and(|header| {
                Format::V2.record_bytes(header.body_len) == bytes.len() as u64
                    && checksum_holds(&bytes[12..12 + header.body_len], header.body_crc)
                    && bytes.last() == Some(&TRAILER)
            })
        };
        assert!(sound(&buffer));
        for bit in 0..buffer.len() * 8 {
            let mut flipped = buffer.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(!sound(&flipped), "bit {bit} flipped goes unseen");
        }
    }

    #[test]
    fn a_zeroed_header_fails_its_checksum() {
        assert!(parse_header(Format::V2, &[0; 12]).is_err());
        assert!(parse_header(Format::V1, &[0; 8]).is_ok(), "the first format had no header checksum");
    }

    #[test]
    fn a_body_of_the_first_format_becomes_a_record_of_the_current_one() {
        let mut record = Vec::new();
        encode_deleted(&mut record, 7, 1, "listing-7", 2);
        let body = &record[12..record.len() - 1];
        let mut converted = Vec::new();
        encode_body(&mut converted, body);
        assert_eq!(converted, record);
    }

    #[test]
    fn garbage_bodies_are_errors_not_panics() {
        for body in [vec![], vec![1; 10], vec![9; 40], {
            let mut body = vec![1u8];
            body.extend_from_slice(&[0; 24]);
            body.extend_from_slice(&0u16.to_le_bytes());
            body.extend_from_slice(&u32::MAX.to_le_bytes());
            body
        }] {
            assert!(decode(Bytes::from(body)).is_err());
        }
    }
}
