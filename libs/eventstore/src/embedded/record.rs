//! The on-disk record: one per append, so that an append is atomic whatever crashes.
//!
//! ```text
//! header  u32 body length, u32 CRC32C of the body        (little endian)
//! body    u8  kind (1 events, 2 stream deleted)
//!         u64 first position, u64 timestamp ms, u64 first version
//!         u16 stream name length, stream name
//!         u32 event count
//!         per event: 16-byte id, u16 type length, type,
//!                    u32 metadata length, metadata, u32 payload length, payload
//! ```
//! A "stream deleted" record has no event and takes no position: its first position is the
//! next one to be assigned.

use bytes::{Buf, Bytes};
use uuid::Uuid;

use crate::model::{APPEND_BYTES_MAX, EventData, STREAM_NAME_BYTES_MAX};

pub(crate) const HEADER_BYTES: usize = 8;
/// Largest body a record may have: a full append plus its fixed fields.
pub(crate) const BODY_BYTES_MAX: usize = APPEND_BYTES_MAX + 64 + STREAM_NAME_BYTES_MAX;
const FIXED_BODY_BYTES: usize = 1 + 8 + 8 + 8 + 2 + 4;

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
    buffer.reserve(HEADER_BYTES + body_len);
    let start = buffer.len();
    buffer.extend_from_slice(&u32::try_from(body_len).expect("body length bounded").to_le_bytes());
    buffer.extend_from_slice(&[0; 4]);
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

fn finish(buffer: &mut [u8], start: usize, body_len: usize) {
    let body = &buffer[start + HEADER_BYTES..];
    assert_eq!(body.len(), body_len, "encoded length matches the computed length");
    let crc = crc32c::crc32c(body);
    buffer[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The body length and checksum of a record header.
pub(crate) fn parse_header(header: &[u8]) -> (usize, u32) {
    let length = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    (length as usize, crc)
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
        let (length, crc) = parse_header(&buffer[..HEADER_BYTES]);
        assert_eq!(length, buffer.len() - HEADER_BYTES);
        let body = Bytes::copy_from_slice(&buffer[HEADER_BYTES..]);
        assert!(checksum_holds(&body, crc));
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
    fn a_flipped_bit_fails_the_checksum() {
        let mut buffer = Vec::new();
        encode_deleted(&mut buffer, 7, 1, "listing-7", 2);
        let (_, crc) = parse_header(&buffer[..HEADER_BYTES]);
        buffer[HEADER_BYTES + 3] ^= 0x10;
        assert!(!checksum_holds(&buffer[HEADER_BYTES..], crc));
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
