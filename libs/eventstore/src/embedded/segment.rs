//! Segment files and the sequential scan of their records.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use bytes::{Bytes, BytesMut};

use super::record::{self, BODY_BYTES_MAX, HEADER_BYTES};

/// Bytes read from disk at once when scanning through a file.
pub(crate) const SCAN_CHUNK_BYTES: usize = 1024 * 1024;
/// Bytes read from disk at once when looking for one record near a sparse index entry.
pub(crate) const LOOKUP_CHUNK_BYTES: usize = 64 * 1024;
pub(crate) const SEGMENT_SUFFIX: &str = ".seg";

/// The file name of the segment whose first event has `first_position`.
pub(crate) fn file_name(first_position: u64) -> String {
    format!("{first_position:020}{SEGMENT_SUFFIX}")
}

/// The first position a segment file name stands for.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Why a scan stopped before the end it was given.
#[derive(Debug)]
pub(crate) enum ScanStop {
    /// The record at `offset` runs past the end: a write cut short.
    Truncated {
        offset: u64,
    },
    /// The record at `offset` has an impossible length or fails its checksum.
    Invalid {
        offset: u64,
        reason: String,
    },
    Io(std::io::Error),
}

/// A record found by a scan: where it starts, and its body (checksum verified).
#[derive(Debug)]
pub(crate) struct RawRecord {
    pub(crate) offset: u64,
    pub(crate) body: Bytes,
}

/// Reads the records of one file in order, from `offset` up to `end`, a large chunk at a time.
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    file: &'a File,
    offset: u64,
    end: u64,
    chunk: Bytes,
    chunk_start: u64,
    chunk_bytes: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(file: &'a File, offset: u64, end: u64) -> Scanner<'a> {
        Scanner::with_chunk(file, offset, end, SCAN_CHUNK_BYTES)
    }

    /// A scanner that reads `chunk_bytes` at a time (more for a larger record).
    pub(crate) fn with_chunk(file: &'a File, offset: u64, end: u64, chunk_bytes: usize) -> Scanner<'a> {
        Scanner { file, offset, end, chunk: Bytes::new(), chunk_start: offset, chunk_bytes }
    }

    /// The next record, `None` at the end, or why the scan cannot go on.
    pub(crate) fn next_record(&mut self) -> Result<Option<RawRecord>, ScanStop> {
        if self.offset == self.end {
            return Ok(None);
        }
        let offset = self.offset;
        if self.end - offset < HEADER_BYTES as u64 {
            return Err(ScanStop::Truncated { offset });
        }
        let header = self.bytes(offset, HEADER_BYTES)?;
        let (body_len, crc) = record::parse_header(&header);
        if body_len == 0 || body_len > BODY_BYTES_MAX {
            return Err(ScanStop::Invalid { offset, reason: format!("impossible record length {body_len}") });
        }
        if self.end - offset < (HEADER_BYTES + body_len) as u64 {
            return Err(ScanStop::Truncated { offset });
        }
        let body = self.bytes(offset + HEADER_BYTES as u64, body_len)?;
        if !record::checksum_holds(&body, crc) {
            return Err(ScanStop::Invalid { offset, reason: "checksum mismatch".to_owned() });
        }
        self.offset = offset + (HEADER_BYTES + body_len) as u64;
        Ok(Some(RawRecord { offset, body }))
    }

    /// `length` bytes at `offset`, from the current chunk or a new one.
    fn bytes(&mut self, offset: u64, length: usize) -> Result<Bytes, ScanStop> {
        let chunk_end = self.chunk_start + self.chunk.len() as u64;
        if offset < self.chunk_start || offset + length as u64 > chunk_end {
            let wanted =
                length.max(self.chunk_bytes).min(usize::try_from(self.end - offset).unwrap_or(usize::MAX));
            let mut buffer = BytesMut::zeroed(wanted);
            self.file.read_exact_at(&mut buffer, offset).map_err(ScanStop::Io)?;
            self.chunk = buffer.freeze();
            self.chunk_start = offset;
        }
        let start = usize::try_from(offset - self.chunk_start).expect("within a chunk");
        Ok(self.chunk.slice(start..start + length))
    }
}

/// Whether every byte of `file` from `offset` to `end` is zero: the mark of space the file
/// system extended but the data never reached, after a power loss.
pub(crate) fn is_zero_from(file: &File, offset: u64, end: u64) -> std::io::Result<bool> {
    let mut position = offset;
    let mut buffer = vec![0u8; SCAN_CHUNK_BYTES];
    while position < end {
        let length = usize::try_from(end - position).unwrap_or(usize::MAX).min(buffer.len());
        file.read_exact_at(&mut buffer[..length], position)?;
        if buffer[..length].iter().any(|byte| *byte != 0) {
            return Ok(false);
        }
        position += length as u64;
    }
    Ok(true)
}

/// Makes a directory entry durable: a created or renamed file is not on disk until its
/// directory is synced.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_sort_by_position() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("42.seg"), None);
        assert_eq!(parse_file_name("LOCK"), None);
        assert!(file_name(9) < file_name(10));
    }
}
