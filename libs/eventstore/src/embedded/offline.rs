//! What an operator runs on a store that no process has open: [`verify`] scans every segment
//! and says what it finds; [`repair`] cuts the log at a record boundary, keeping what it cuts
//! beside it. Neither is ever run by the store itself: cutting acknowledged events is the
//! operator's decision.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::disk::{self, Disk as _, DiskFile, OpenMode, Plain};
use super::index::Index;
use super::record::Kind;
use super::segment::{self, ScanStop, Scanner, Verdict};
use super::{LOCK_FILE, apply, summary};
use crate::model::StoreError;

/// What a file set aside by [`repair`] is called: `<segment>.cut` for a whole later segment,
/// `<segment>.cut-<offset>` for the bytes cut off a segment.
const CUT_SUFFIX: &str = ".cut";

/// What [`verify`] found: one entry per segment file, in order, and every problem.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub segments: Vec<SegmentCheck>,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// No problem of any kind.
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }

    /// The events of every sound record.
    pub fn events(&self) -> u64 {
        self.segments.iter().map(|segment| segment.events).sum()
    }
}

/// One segment file, as far as its records could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentCheck {
    pub file: String,
    /// 1 for the first format (still read, never written), 2 for the current one; 0 if the
    /// file header is damaged.
    pub format: u8,
    pub bytes: u64,
    /// Records read whole and sound, up to the first problem.
    pub records: u64,
    pub events: u64,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    pub index: IndexFile,
}

/// The state of a segment's index file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexFile {
    /// The last segment, which has none until it is sealed.
    NotSealed,
    /// None: the next open scans the segment and writes it.
    Missing,
    /// There, and the same as the segment's records.
    Sound,
    /// There, but unusable or not the segment's records: a problem says which.
    Bad,
    /// Not compared, the segment itself having a problem.
    NotChecked,
}

/// Something wrong at an offset of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub offset: u64,
    pub kind: ProblemKind,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// An append that never completed, at the end of the last segment: never acknowledged,
    /// the next open cuts it by itself.
    TornTail,
    /// Written records damaged: the open refuses the store; in a sealed segment that has its
    /// index file, the open succeeds and every read that reaches the record fails.
    Damage,
    /// An index file unusable or not matching its segment: deleting it is safe, the next open
    /// rebuilds it.
    Index,
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            ProblemKind::TornTail => "torn tail",
            ProblemKind::Damage => "damage",
            ProblemKind::Index => "index",
        })
    }
}

/// What [`repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repaired {
    /// Bytes cut off the end of the segment.
    pub cut_bytes: u64,
    /// Where those bytes are kept, if any were cut.
    pub kept: Option<PathBuf>,
    /// The later segments set aside, each renamed `<segment>.cut`, in order.
    pub set_aside: Vec<PathBuf>,
}

/// Scans every segment of the store in `dir`, and every index file against its segment:
/// each record's checksums and trailer, that it decodes, that positions follow from one
/// record and one segment to the next, and each stream's versions. Each problem is judged by
/// the open's rule: a torn tail (the last segment only) or damage. Positions and versions are
/// followed until the first damage; the segments after it are still checked on their own.
///
/// Refuses a store another process has open: a scan racing the writer would see its
/// appends in flight as torn.
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport, StoreError> {
    let dir = dir.as_ref();
    let _lock = lock(dir, false)?;
    let first_positions =
        segment::list(&Plain, dir).map_err(|error| StoreError::io("listing the log", error))?;
    let mut report = VerifyReport::default();
    let mut index = Some(Index::default());
    let last = first_positions.len().saturating_sub(1);
    for (number, first_position) in first_positions.iter().copied().enumerate() {
        let name = segment::file_name(first_position);
        let sealed = number != last;
        let file = Plain
            .open(&dir.join(&name), OpenMode::Read)
            .map_err(|error| StoreError::io(&format!("opening {name}"), error))?;
        let file = &*file;
        let len = file.size().map_err(|error| StoreError::io(&format!("reading {name}"), error))?;
        let mut check = SegmentCheck {
            file: name.clone(),
            format: 0,
            bytes: len,
            records: 0,
            events: 0,
            first_position: None,
            last_position: None,
            index: if sealed { IndexFile::NotChecked } else { IndexFile::NotSealed },
        };
        let problems_before = report.problems.len();
        let damage = |report: &mut VerifyReport, offset: u64, reason: String| {
            report.problems.push(Problem { file: name.clone(), offset, kind: ProblemKind::Damage, reason });
        };
        let format = match segment::format_of(file, len) {
            Ok(format) => format,
            Err(stop) => {
                let (_, offset, reason) = judged(file, len, stop, !sealed, &name)?;
                damage(&mut report, offset, reason);
                report.segments.push(check);
                index = None;
                continue;
            }
        };
        check.format = format.number();
        if let Some(followed) = &index
            && followed.next_position != first_position
        {
            let reason = format!(
                "segment starts at position {first_position}, the log is at {}",
                followed.next_position
            );
            damage(&mut report, 0, reason);
            index = None;
        }
        let (summaries, stop) = summary::scan(file, format, len);
        for summary in &summaries {
            check.records += 1;
            if summary.kind == Kind::Events {
                check.events += u64::from(summary.count);
                check.first_position.get_or_insert(summary.first_position);
                check.last_position = Some(summary.first_position + u64::from(summary.count) - 1);
            }
            if let Some(followed) = index.as_mut()
                && let Err(reason) = apply(followed, summary, number)
            {
                damage(&mut report, summary.offset, reason);
                index = None;
            }
        }
        if let Some(stop) = stop {
            let (kind, offset, reason) = judged(file, len, stop, !sealed, &name)?;
            report.problems.push(Problem { file: name.clone(), offset, kind, reason });
            if kind == ProblemKind::Damage {
                index = None;
            }
        }
        if sealed && report.problems.len() == problems_before {
            check.index = match summary::read_checked(&Plain, dir, first_position, len) {
                None => IndexFile::Missing,
                Some(Ok(indexed)) if indexed == summaries => IndexFile::Sound,
                Some(Ok(_)) => {
                    let reason = "does not match its segment's records: delete it, the next open rebuilds it";
                    report.problems.push(index_problem(first_position, reason.to_owned()));
                    IndexFile::Bad
                }
                Some(Err(reason)) => {
                    let reason = format!("{reason}: the next open ignores it and rebuilds it");
                    report.problems.push(index_problem(first_position, reason));
                    IndexFile::Bad
                }
            };
        }
        report.segments.push(check);
    }
    Ok(report)
}

/// Cuts the segment `segment_name` of the store in `dir` at `offset`, which must be a record
/// boundary a scan of the segment reaches: its first record's start, or the end of a sound
/// record (the offset of the first bad record is one). The cut bytes are kept, durably, in
/// `<segment>.cut-<offset>` beside it. A segment followed by others is cut only with
/// `drop_later_segments`: they are then set aside whole, renamed `<segment>.cut`, never
/// deleted. The segment's index file is deleted (the open rebuilds it).
///
/// Refuses a store another process has open, an offset that is not such a boundary (a cut
/// elsewhere would leave a torn record, or split one), and names already taken by files of
/// an earlier repair, unless they hold the same bytes (a repair run again after a crash).
pub fn repair(
    dir: impl AsRef<Path>,
    segment_name: &str,
    offset: u64,
    drop_later_segments: bool,
) -> Result<Repaired, StoreError> {
    let dir = dir.as_ref();
    let invalid = |reason: String| Err(StoreError::InvalidInput(reason));
    let Some(first_position) = segment::parse_file_name(segment_name) else {
        return invalid(format!("{segment_name:?} is not a segment file name (<20 digits>.seg)"));
    };
    let path = dir.join(segment_name);
    if !path.is_file() {
        return invalid(format!("no segment {segment_name} in {}", dir.display()));
    }
    let _lock = lock(dir, true)?;
    let first_positions =
        segment::list(&Plain, dir).map_err(|error| StoreError::io("listing the log", error))?;
    let later: Vec<u64> = first_positions.into_iter().filter(|position| *position > first_position).collect();
    if !later.is_empty() && !drop_later_segments {
        return invalid(format!(
            "{segment_name} is followed by {} segments: cutting it drops them too; pass --drop-later-segments \
             to set them aside",
            later.len()
        ));
    }
    let file = Plain
        .open(&path, OpenMode::ReadWrite)
        .map_err(|error| StoreError::io(&format!("opening {segment_name}"), error))?;
    let len = file.size().map_err(|error| StoreError::io(&format!("reading {segment_name}"), error))?;
    let boundaries = record_boundaries(&*file, len, segment_name)?;
    if !boundaries.contains(&offset) {
        let before = boundaries.iter().copied().filter(|boundary| *boundary < offset).max();
        let after = boundaries.iter().copied().find(|boundary| *boundary > offset);
        let near = match (before, after) {
            (Some(before), Some(after)) => format!("the nearest are {before} and {after}"),
            (Some(before), None) => format!("the last one is {before}"),
            (None, Some(after)) => format!("the first one is {after}"),
            (None, None) => "there is none".to_owned(),
        };
        return invalid(format!(
            "offset {offset} is not a record boundary a scan of {segment_name} reaches: {near}"
        ));
    }
    let set_aside: Vec<(PathBuf, PathBuf)> = later
        .iter()
        .map(|position| {
            let name = segment::file_name(*position);
            (dir.join(&name), dir.join(format!("{name}{CUT_SUFFIX}")))
        })
        .collect();
    if let Some((_, taken)) = set_aside.iter().find(|(_, aside)| aside.exists()) {
        return invalid(format!("{} exists: move it away first", taken.display()));
    }
    let kept = dir.join(format!("{segment_name}{CUT_SUFFIX}-{offset}"));
    let cut = read_range(&*file, offset, len)
        .map_err(|error| StoreError::io(&format!("reading {segment_name}"), error))?;
    let kept_already = match std::fs::read(&kept) {
        _ if cut.is_empty() => false,
        Ok(bytes) if bytes == cut => true,
        Ok(_) => return invalid(format!("{} exists with other bytes: move it away first", kept.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => return Err(StoreError::io(&format!("reading {}", kept.display()), error)),
    };

    let failed = |what: &str| {
        let what = what.to_owned();
        move |error| StoreError::io(&what, error)
    };
    if !cut.is_empty() && !kept_already {
        disk::write_durably(&Plain, dir, &kept, &cut).map_err(failed("keeping the cut bytes"))?;
    }
    // The last segment first: a crash halfway leaves the log a run of segments without a gap.
    for (segment_path, aside) in set_aside.iter().rev() {
        remove_index_file(dir, segment_path)?;
        std::fs::rename(segment_path, aside).map_err(failed("setting a later segment aside"))?;
    }
    remove_index_file(dir, &path)?;
    Plain.sync_dir(dir).map_err(failed("syncing the log directory"))?;
    file.set_len(offset).map_err(failed("cutting the segment"))?;
    file.sync_all().map_err(failed("syncing the segment"))?;
    Plain.sync_dir(dir).map_err(failed("syncing the log directory"))?;
    tracing::warn!(file = %segment_name, offset, bytes = cut.len(), kept = %kept.display(), "log cut by an operator");
    Ok(Repaired {
        cut_bytes: cut.len() as u64,
        kept: (!cut.is_empty()).then_some(kept),
        set_aside: set_aside.into_iter().map(|(_, aside)| aside).collect(),
    })
}

/// Takes the store's lock, shared (to read) or exclusive (to change it): a store open in
/// another process holds it exclusively. `None` when there is no lock file, which an open
/// store always has.
fn lock(dir: &Path, exclusive: bool) -> Result<Option<File>, StoreError> {
    if !dir.is_dir() {
        return Err(StoreError::Io(format!("no event log in {}: not a directory", dir.display())));
    }
    let file = match File::open(dir.join(LOCK_FILE)) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StoreError::io("opening the lock file", error)),
    };
    let locked = if exclusive { file.try_lock() } else { file.try_lock_shared() };
    match locked {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(dir.display().to_string())),
        Err(std::fs::TryLockError::Error(error)) => Err(StoreError::io("locking the data directory", error)),
    }
}

/// Which kind of problem a scan's stop is, where, and why.
fn judged(
    file: &dyn DiskFile,
    len: u64,
    stop: ScanStop,
    last_segment: bool,
    name: &str,
) -> Result<(ProblemKind, u64, String), StoreError> {
    match segment::judge(file, len, stop, last_segment) {
        Ok(Verdict::Torn { offset, reason }) => {
            Ok((ProblemKind::TornTail, offset, format!("{reason}; the next open cuts it")))
        }
        Ok(Verdict::Damage { offset, reason }) => Ok((ProblemKind::Damage, offset, reason)),
        Err(error) => Err(StoreError::io(&format!("reading {name}"), error)),
    }
}

fn index_problem(first_position: u64, reason: String) -> Problem {
    Problem { file: summary::file_name(first_position), offset: 0, kind: ProblemKind::Index, reason }
}

/// The offsets a cut may be made at: the start of the records, and the end of each sound
/// record up to the first bad one.
fn record_boundaries(file: &dyn DiskFile, len: u64, name: &str) -> Result<Vec<u64>, StoreError> {
    let format = segment::format_of(file, len).map_err(|_| {
        StoreError::InvalidInput(format!(
            "the file header of {name} is damaged: no cut inside it can be made sound; restore it from a \
             backup, or cut the segment before it at its end with --drop-later-segments"
        ))
    })?;
    let start = segment::data_start(format);
    let mut boundaries = vec![start];
    let mut scanner = Scanner::new(file, format, start, len);
    loop {
        match scanner.next_record() {
            Ok(Some(raw)) => boundaries.push(raw.end),
            Ok(None) => return Ok(boundaries),
            Err(ScanStop::Io(error)) => return Err(StoreError::io(&format!("reading {name}"), error)),
            Err(_) => return Ok(boundaries),
        }
    }
}

fn read_range(file: &dyn DiskFile, from: u64, to: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; usize::try_from(to - from).unwrap_or(usize::MAX)];
    file.read_exact_at(&mut bytes, from)?;
    Ok(bytes)
}

/// Deletes the index file of the segment at `segment_path`, if it has one: it is only a cache,
/// and no longer the segment's once the segment is cut or set aside.
fn remove_index_file(dir: &Path, segment_path: &Path) -> Result<(), StoreError> {
    let Some(first_position) =
        segment_path.file_name().and_then(|name| name.to_str()).and_then(segment::parse_file_name)
    else {
        return Ok(());
    };
    match std::fs::remove_file(dir.join(summary::file_name(first_position))) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(StoreError::io("deleting an index file", error)),
    }
}
