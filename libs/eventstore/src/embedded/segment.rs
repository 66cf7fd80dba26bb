//! Segment files, the sequential scan of their records, and the rule that tells a torn write
//! from damage.
//!
//! A segment file of the current format starts with an 8-byte file header, [`FILE_MAGIC`],
//! then its records. A file of the first format has no file header: its first bytes are a
//! record's length, whose high byte is 0 or 1 (a body is at most a little over 16 MiB). The
//! magic's fourth byte is 0xFF, at least 7 bits away from either, so a file of the first
//! format is never taken for a damaged magic, nor a magic with a few bits flipped for a file
//! of the first format.

use std::path::Path;

use bytes::{Bytes, BytesMut};

use super::disk::{Disk, DiskFile, FileRef, OpenMode};
use super::record::{self, BODY_BYTES_MAX, Format};

/// Bytes read from disk at once when scanning through a file.
pub(crate) const SCAN_CHUNK_BYTES: usize = 1024 * 1024;
/// Bytes read from disk at once when looking for one record near a sparse index entry.
pub(crate) const LOOKUP_CHUNK_BYTES: usize = 64 * 1024;
/// The unit in which a disk persists writes: after a power loss, a run of zeros that starts
/// on such a boundary is data that never reached the disk.
pub(crate) const SECTOR_BYTES: u64 = 512;
pub(crate) const SEGMENT_SUFFIX: &str = ".seg";
/// What a segment file is called while it is being written, before its rename.
pub(crate) const TEMPORARY_SUFFIX: &str = ".tmp";
/// The file header of a segment of the current format: "SYM", 0xFF, "SEG", format 2.
pub(crate) const FILE_MAGIC: [u8; 8] = [b'S', b'Y', b'M', 0xFF, b'S', b'E', b'G', 2];
pub(crate) const FILE_HEADER_BYTES: u64 = FILE_MAGIC.len() as u64;
/// Most bits by which a file's first 8 bytes may differ from [`FILE_MAGIC`] and still be a
/// damaged magic rather than a file of the first format (which differs by 7 or more).
const MAGIC_FLIPPED_BITS_MAX: u32 = 6;

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

/// The first positions of the segments in `dir`, in order.
pub(crate) fn list(disk: &dyn Disk, dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut first_positions: Vec<u64> =
        disk.list(dir)?.iter().filter_map(|name| parse_file_name(name)).collect();
    first_positions.sort_unstable();
    Ok(first_positions)
}

/// Where the records of a file of `format` start.
pub(crate) fn data_start(format: Format) -> u64 {
    match format {
        Format::V1 => 0,
        Format::V2 => FILE_HEADER_BYTES,
    }
}

/// The format of a segment file of `len` bytes, from its first bytes; a damaged file header
/// is an invalid stop at offset 0.
pub(crate) fn format_of(file: &dyn DiskFile, len: u64) -> Result<Format, ScanStop> {
    // A file of the current format is created whole with its header (written, then renamed),
    // so a shorter file is of the first format: empty, or a record cut short.
    if len < FILE_HEADER_BYTES {
        return Ok(Format::V1);
    }
    let mut first = [0u8; FILE_MAGIC.len()];
    file.read_exact_at(&mut first, 0).map_err(ScanStop::Io)?;
    let flipped: u32 = first.iter().zip(FILE_MAGIC).map(|(byte, magic)| (byte ^ magic).count_ones()).sum();
    match flipped {
        0 => Ok(Format::V2),
        1..=MAGIC_FLIPPED_BITS_MAX => Err(ScanStop::Invalid {
            offset: 0,
            reach: 0,
            reason: format!("segment file header damaged ({flipped} bits differ from the magic)"),
        }),
        _ => Ok(Format::V1),
    }
}

/// Creates the segment file `name` in `dir`, of the current format, durably: written whole
/// under a temporary name, synced, renamed, and the directory synced; so a segment file never
/// exists without its header. Opened for reading and writing.
pub(crate) fn create(disk: &dyn Disk, dir: &Path, name: &str) -> std::io::Result<FileRef> {
    let path = dir.join(name);
    if disk.exists(&path)? {
        return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, format!("{name} exists")));
    }
    super::disk::write_durably(disk, dir, &path, &FILE_MAGIC)?;
    disk.open(&path, OpenMode::ReadWrite)
}

/// Rewrites the segment `name` of the first format, whose records up to `end` are sound, in
/// the current format (the same bodies, new headers and trailers), replacing it atomically:
/// a crash leaves either file whole. Returns the new file, opened for reading and writing.
pub(crate) fn convert(
    disk: &dyn Disk,
    dir: &Path,
    name: &str,
    file: &dyn DiskFile,
    end: u64,
) -> std::io::Result<FileRef> {
    let temporary = dir.join(format!("{name}{TEMPORARY_SUFFIX}"));
    let out = disk.open(&temporary, OpenMode::Truncate)?;
    let mut pending = Vec::with_capacity(SCAN_CHUNK_BYTES);
    pending.extend_from_slice(&FILE_MAGIC);
    let mut written = 0u64;
    let mut scanner = Scanner::new(file, Format::V1, 0, end);
    loop {
        match scanner.next_record() {
            Ok(Some(raw)) => {
                record::encode_body(&mut pending, &raw.body);
                if pending.len() >= SCAN_CHUNK_BYTES {
                    out.write_all_at(&pending, written)?;
                    written += pending.len() as u64;
                    pending.clear();
                }
            }
            Ok(None) => break,
            Err(ScanStop::Io(error)) => return Err(error),
            Err(stop) => {
                return Err(std::io::Error::other(format!("{name} no longer scans whole: {stop:?}")));
            }
        }
    }
    out.write_all_at(&pending, written)?;
    out.sync_all()?;
    drop(out);
    disk.rename(&temporary, &dir.join(name))?;
    disk.sync_dir(dir)?;
    disk.open(&dir.join(name), OpenMode::ReadWrite)
}

/// Why a scan stopped before the end it was given.
#[derive(Debug)]
pub(crate) enum ScanStop {
    /// Fewer bytes than a record header are left at `offset`.
    Short {
        offset: u64,
    },
    /// The header at `offset` holds, but its record runs past the end.
    PastEnd {
        offset: u64,
    },
    /// The record at `offset` is bad: its header or body fails its checksum, its trailer is
    /// wrong, its length is impossible, or it does not decode. `reach` is where it ends as far
    /// as anything can be trusted (its end when its header holds, the end of the header
    /// otherwise); only a zero run starting at a sector boundary before `reach` can be a torn
    /// write.
    Invalid {
        offset: u64,
        reach: u64,
        reason: String,
    },
    Io(std::io::Error),
}

/// A record found by a scan: where it starts, where it ends, and its body (checksums
/// verified).
#[derive(Debug)]
pub(crate) struct RawRecord {
    pub(crate) offset: u64,
    pub(crate) end: u64,
    pub(crate) body: Bytes,
}

/// Reads the records of one file in order, from `offset` up to `end`, a large chunk at a time.
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    file: &'a dyn DiskFile,
    format: Format,
    offset: u64,
    end: u64,
    chunk: Bytes,
    chunk_start: u64,
    chunk_bytes: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(file: &'a dyn DiskFile, format: Format, offset: u64, end: u64) -> Scanner<'a> {
        Scanner::with_chunk(file, format, offset, end, SCAN_CHUNK_BYTES)
    }

    /// A scanner that reads `chunk_bytes` at a time (more for a larger record).
    pub(crate) fn with_chunk(
        file: &'a dyn DiskFile,
        format: Format,
        offset: u64,
        end: u64,
        chunk_bytes: usize,
    ) -> Scanner<'a> {
        assert!(offset <= end, "a scan starts before its end");
        Scanner { file, format, offset, end, chunk: Bytes::new(), chunk_start: offset, chunk_bytes }
    }

    /// The next record, `None` at the end, or why the scan cannot go on. Every check of the
    /// format is made here, so no reader can take a damaged record for a sound one.
    pub(crate) fn next_record(&mut self) -> Result<Option<RawRecord>, ScanStop> {
        if self.offset == self.end {
            return Ok(None);
        }
        let offset = self.offset;
        let header_bytes = self.format.header_bytes();
        if self.end - offset < header_bytes as u64 {
            return Err(ScanStop::Short { offset });
        }
        let header = self.bytes(offset, header_bytes)?;
        let header_end = offset + header_bytes as u64;
        let header = record::parse_header(self.format, &header).map_err(|reason| ScanStop::Invalid {
            offset,
            reach: header_end,
            reason,
        })?;
        // A length under a sound header checksum was written so: an impossible one is a bug,
        // never a torn write. In the first format it was all a scan had to go on.
        if header.body_len == 0 || header.body_len > BODY_BYTES_MAX {
            let reason = format!("impossible record length {}", header.body_len);
            return Err(ScanStop::Invalid { offset, reach: offset, reason });
        }
        let record_end = offset + self.format.record_bytes(header.body_len);
        if record_end > self.end {
            return Err(ScanStop::PastEnd { offset });
        }
        // In the first format nothing but zeros from the record's start could be told from
        // damage: its length is untrusted.
        let reach = match self.format {
            Format::V1 => offset,
            Format::V2 => record_end,
        };
        let whole =
            self.bytes(offset, usize::try_from(record_end - offset).expect("a record fits memory"))?;
        let body = whole.slice(header_bytes..header_bytes + header.body_len);
        if !record::checksum_holds(&body, header.body_crc) {
            return Err(ScanStop::Invalid {
                offset,
                reach,
                reason: "record body checksum mismatch".to_owned(),
            });
        }
        if self.format == Format::V2 && whole.last() != Some(&record::TRAILER) {
            let reason =
                format!("record trailer is {:#04x}, not {:#04x}", whole[whole.len() - 1], record::TRAILER);
            return Err(ScanStop::Invalid { offset, reach, reason });
        }
        self.offset = record_end;
        Ok(Some(RawRecord { offset, end: record_end, body }))
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

/// What a scan's stop means.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// The bytes from `offset` on are an append that never completed: cut them.
    Torn { offset: u64, reason: String },
    /// The record at `offset` was written whole and is damaged: refuse.
    Damage { offset: u64, reason: String },
}

/// Tells a torn write from damage where a scan of a file of `len` bytes stopped. Only the last
/// segment can end in a torn write (a segment is synced before the next one exists), and only
/// when:
/// - fewer bytes than a header are left, or a header that holds runs past the end: a bit
///   flip cannot shorten a file, so this append was never complete, never acknowledged;
/// - or every byte is zero from the bad record's start, or from a sector boundary before its
///   reach, to the end of the file: space the file system extended whose data never reached
///   the disk. A complete record ends in a non-zero trailer, so this cannot be the genuine
///   end of an acknowledged record, with or without one flipped bit.
///
/// Anything else, a failing header or body with non-zero bytes after it, is damage.
pub(crate) fn judge(
    file: &dyn DiskFile,
    len: u64,
    stop: ScanStop,
    last_segment: bool,
) -> std::io::Result<Verdict> {
    let (offset, reach, reason) = match stop {
        ScanStop::Io(error) => return Err(error),
        ScanStop::Short { offset } if last_segment => {
            let reason = "fewer bytes than a record header at the end of the log".to_owned();
            return Ok(Verdict::Torn { offset, reason });
        }
        ScanStop::PastEnd { offset } if last_segment => {
            let reason = "record runs past the end of the log".to_owned();
            return Ok(Verdict::Torn { offset, reason });
        }
        ScanStop::Short { offset } | ScanStop::PastEnd { offset } => {
            let reason = "record cut short before the last segment".to_owned();
            return Ok(Verdict::Damage { offset, reason });
        }
        ScanStop::Invalid { offset, reach, reason } => (offset, reach, reason),
    };
    if !last_segment {
        return Ok(Verdict::Damage { offset, reason });
    }
    let zeros = zero_tail_start(file, offset, len)?;
    let from = if zeros == offset { offset } else { zeros.next_multiple_of(SECTOR_BYTES) };
    if from == offset || from < reach {
        let reason =
            format!("{reason}, and only zeros from offset {from} to the end: sectors lost in a power loss");
        return Ok(Verdict::Torn { offset, reason });
    }
    Ok(Verdict::Damage { offset, reason })
}

/// The start of the run of zeros that ends `file` at `len`, looking no further back than
/// `floor`: `len` if the last byte is not zero, `floor` if every byte from it is.
pub(crate) fn zero_tail_start(file: &dyn DiskFile, floor: u64, len: u64) -> std::io::Result<u64> {
    let mut buffer = vec![0u8; SCAN_CHUNK_BYTES];
    let mut end = len;
    while end > floor {
        let length = usize::try_from(end - floor).unwrap_or(usize::MAX).min(buffer.len());
        let start = end - length as u64;
        file.read_exact_at(&mut buffer[..length], start)?;
        if let Some(last) = buffer[..length].iter().rposition(|byte| *byte != 0) {
            return Ok(start + last as u64 + 1);
        }
        end = start;
    }
    Ok(floor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::disk::Plain;

    #[test]
    fn file_names_round_trip_and_sort_by_position() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("42.seg"), None);
        assert_eq!(parse_file_name("LOCK"), None);
        assert_eq!(parse_file_name(&format!("{}{TEMPORARY_SUFFIX}", file_name(42))), None);
        assert!(file_name(9) < file_name(10));
    }

    #[test]
    fn a_file_of_the_first_format_is_never_taken_for_a_damaged_magic() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("segment");
        let format = |first: &[u8]| {
            std::fs::write(&path, first).expect("write");
            let file = Plain.open(&path, OpenMode::Read).expect("open");
            format_of(&*file, first.len() as u64)
        };
        assert!(matches!(format(&FILE_MAGIC), Ok(Format::V2)));
        assert!(matches!(format(&[]), Ok(Format::V1)));
        // The first format starts with a body length of at most a little over 16 MiB.
        for length in [1u32, 300, 0x00FF_FFFF, BODY_BYTES_MAX as u32] {
            for crc in [0u32, u32::MAX, 0x4745_5302] {
                let mut first = length.to_le_bytes().to_vec();
                first.extend_from_slice(&crc.to_le_bytes());
                assert!(matches!(format(&first), Ok(Format::V1)), "{length} {crc}");
            }
        }
        for bit in 0..64 {
            let mut damaged = FILE_MAGIC;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(matches!(format(&damaged), Err(ScanStop::Invalid { offset: 0, .. })), "bit {bit}");
        }
    }

    #[test]
    fn the_zero_tail_starts_after_the_last_non_zero_byte() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("file");
        let mut bytes = vec![7u8; 3000];
        bytes[1000..].fill(0);
        std::fs::write(&path, &bytes).expect("write");
        let file = Plain.open(&path, OpenMode::Read).expect("open");
        let file = &*file;
        assert_eq!(zero_tail_start(file, 0, 3000).expect("read"), 1000);
        assert_eq!(zero_tail_start(file, 2000, 3000).expect("read"), 2000);
        assert_eq!(zero_tail_start(file, 0, 1000).expect("read"), 1000);
    }
}
