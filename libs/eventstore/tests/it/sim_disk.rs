//! A disk that loses power: [`SimDisk`] serves the store's [`Disk`] interface from memory and
//! records every operation in order (writes, truncations, file syncs, directory entries made,
//! renamed or removed, directory syncs) together with the moments the test saw an append
//! acknowledged. [`SimDisk::crash_image`] then says what a power loss at any point of that
//! record leaves on the platter:
//! - a file's data as of its last sync survives whole;
//! - of the writes after it, a prefix survives (later writes lost while earlier ones survive),
//!   and the first write lost may be torn: cut at any byte, or its sectors from a 512-byte
//!   boundary on never written (the file is longer, those bytes are zeros);
//! - a directory's entries as of its last sync survive; of the changes after it, a prefix;
//! - a file whose entry did not survive is lost with its data.
//!
//! Every choice comes from the generator passed in, so a seed and a record give one image.
//! Directories themselves are taken as durable: the store makes none but its own, which the
//! test names.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use symbiose_eventstore::embedded::disk::{DirLock, Disk, DiskFile, FileRef, OpenMode};

/// The sector of the simulated disk: a write reaches it a sector at a time.
const SECTOR_BYTES: u64 = 512;

/// SplitMix64: small, and the same sequence for the same seed on every machine.
#[derive(Debug, Clone)]
pub(crate) struct Random(u64);

impl Random {
    pub(crate) fn new(seed: u64) -> Random {
        Random(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 { 0 } else { self.next() % bound }
    }

    pub(crate) fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// One recorded operation.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Write {
        inode: u64,
        offset: u64,
        bytes: Arc<[u8]>,
    },
    SetLen {
        inode: u64,
        len: u64,
    },
    Sync {
        inode: u64,
    },
    Link {
        path: PathBuf,
        inode: u64,
    },
    Unlink {
        path: PathBuf,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    SyncDir {
        dir: PathBuf,
    },
    /// The test saw append number `.0` acknowledged.
    Ack(usize),
}

/// What survives a power loss: the files, by path.
pub(crate) type Image = BTreeMap<PathBuf, Vec<u8>>;

#[derive(Debug, Default)]
struct State {
    /// What the disk held when it was made: durable.
    base_files: HashMap<u64, Vec<u8>>,
    base_entries: BTreeMap<PathBuf, u64>,
    /// What a reader sees now.
    files: HashMap<u64, Vec<u8>>,
    entries: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    next_inode: u64,
    trace: Vec<Op>,
    locks: HashSet<PathBuf>,
}

impl State {
    fn link(&mut self, path: &Path) -> u64 {
        let inode = self.next_inode;
        self.next_inode += 1;
        self.files.insert(inode, Vec::new());
        self.entries.insert(path.to_owned(), inode);
        self.trace.push(Op::Link { path: path.to_owned(), inode });
        inode
    }

    fn parent_exists(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(parent) if self.dirs.contains(parent) => Ok(()),
            _ => Err(not_found(path)),
        }
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
}

/// A simulated disk; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimDisk {
    state: Arc<Mutex<State>>,
}

impl SimDisk {
    /// A disk holding `image`, durably, with `dirs` made.
    pub(crate) fn from_image(image: &Image, dirs: &[&Path]) -> SimDisk {
        let mut state = State::default();
        for dir in dirs {
            for ancestor in dir.ancestors() {
                state.dirs.insert(ancestor.to_owned());
            }
        }
        for (path, bytes) in image {
            let inode = state.next_inode;
            state.next_inode += 1;
            state.base_files.insert(inode, bytes.clone());
            state.base_entries.insert(path.clone(), inode);
        }
        state.files = state.base_files.clone();
        state.entries = state.base_entries.clone();
        SimDisk { state: Arc::new(Mutex::new(state)) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that append `number` was acknowledged, at this point of the record.
    pub(crate) fn ack(&self, number: usize) {
        self.lock().trace.push(Op::Ack(number));
    }

    /// The number of operations recorded so far.
    pub(crate) fn trace_len(&self) -> usize {
        self.lock().trace.len()
    }

    /// The appends acknowledged in the first `point` operations.
    pub(crate) fn acked_before(&self, point: usize) -> Vec<usize> {
        let state = self.lock();
        state.trace[..point]
            .iter()
            .filter_map(|op| if let Op::Ack(number) = op { Some(*number) } else { None })
            .collect()
    }

    /// What the disk holds after a power loss just after operation `point` (of
    /// [`SimDisk::trace_len`]), with what was lost, described, for a failure's message.
    pub(crate) fn crash_image(&self, point: usize, random: &mut Random) -> (Image, Vec<String>) {
        let state = self.lock();
        let trace = &state.trace[..point];
        let mut lost = Vec::new();

        // File data: what was synced, then a prefix of the rest, perhaps torn.
        let mut data_ops: BTreeMap<u64, Vec<&Op>> = BTreeMap::new();
        for op in trace {
            match op {
                Op::Write { inode, .. } | Op::SetLen { inode, .. } | Op::Sync { inode } => {
                    data_ops.entry(*inode).or_default().push(op);
                }
                _ => {}
            }
        }
        let mut contents: HashMap<u64, Vec<u8>> = state.base_files.clone();
        for (inode, ops) in &data_ops {
            let content = contents.entry(*inode).or_default();
            let synced = ops.iter().rposition(|op| matches!(op, Op::Sync { .. })).map_or(0, |at| at + 1);
            for op in &ops[..synced] {
                apply_data(content, op);
            }
            let unsynced = &ops[synced..];
            let kept = random.below(unsynced.len() as u64 + 1) as usize;
            for op in &unsynced[..kept] {
                apply_data(content, op);
            }
            if let Some(Op::Write { offset, bytes, .. }) = unsynced.get(kept)
                && random.chance(2)
            {
                let len = bytes.len() as u64;
                if random.chance(2) {
                    let cut = random.below(len) as usize;
                    apply_data(
                        content,
                        &Op::Write { inode: *inode, offset: *offset, bytes: bytes[..cut].into() },
                    );
                    lost.push(format!("inode {inode}: write at {offset} cut after {cut} of {len} bytes"));
                } else {
                    let first = offset.next_multiple_of(SECTOR_BYTES);
                    let boundaries = (offset + len).saturating_sub(first).div_ceil(SECTOR_BYTES);
                    if boundaries > 0 {
                        let zero_from = first + random.below(boundaries) * SECTOR_BYTES;
                        let mut torn = bytes.to_vec();
                        torn[(zero_from - offset) as usize..].fill(0);
                        apply_data(
                            content,
                            &Op::Write { inode: *inode, offset: *offset, bytes: torn.into() },
                        );
                        lost.push(format!(
                            "inode {inode}: write at {offset} of {len} bytes, sectors from {zero_from} zeros"
                        ));
                    }
                }
            }
            let dropped = unsynced.len() - kept;
            if dropped > 0 {
                lost.push(format!("inode {inode}: {dropped} of {} unsynced operations lost", unsynced.len()));
            }
        }

        // Directory entries: what was synced, then a prefix of the rest.
        let parent = |path: &Path| path.parent().map(Path::to_owned).unwrap_or_default();
        let mut last_sync: HashMap<PathBuf, usize> = HashMap::new();
        let mut unsynced: HashMap<PathBuf, usize> = HashMap::new();
        for (at, op) in trace.iter().enumerate() {
            if let Op::SyncDir { dir } = op {
                last_sync.insert(dir.clone(), at);
            }
        }
        for (at, op) in trace.iter().enumerate() {
            let dir = match op {
                Op::Link { path, .. } | Op::Unlink { path } => parent(path),
                Op::Rename { from, .. } => parent(from),
                _ => continue,
            };
            if last_sync.get(&dir).is_none_or(|synced| at > *synced) {
                *unsynced.entry(dir).or_default() += 1;
            }
        }
        let kept: HashMap<PathBuf, usize> = unsynced
            .iter()
            .map(|(dir, count)| {
                let kept = random.below(*count as u64 + 1) as usize;
                if kept < *count {
                    lost.push(format!(
                        "{}: {} of {count} unsynced entry changes lost",
                        dir.display(),
                        count - kept
                    ));
                }
                (dir.clone(), kept)
            })
            .collect();
        let mut entries = state.base_entries.clone();
        let mut applied: HashMap<PathBuf, usize> = HashMap::new();
        for (at, op) in trace.iter().enumerate() {
            let dir = match op {
                Op::Link { path, .. } | Op::Unlink { path } => parent(path),
                Op::Rename { from, .. } => parent(from),
                _ => continue,
            };
            let synced = last_sync.get(&dir).is_some_and(|synced| at < *synced);
            if !synced {
                let count = applied.entry(dir.clone()).or_default();
                if *count >= kept.get(&dir).copied().unwrap_or(0) {
                    continue;
                }
                *count += 1;
            }
            match op {
                Op::Link { path, inode } => {
                    entries.insert(path.clone(), *inode);
                }
                Op::Unlink { path } => {
                    entries.remove(path);
                }
                Op::Rename { from, to } => {
                    if let Some(inode) = entries.remove(from) {
                        entries.insert(to.clone(), inode);
                    }
                }
                _ => {}
            }
        }
        let image = entries
            .into_iter()
            .map(|(path, inode)| (path, contents.get(&inode).cloned().unwrap_or_default()))
            .collect();
        (image, lost)
    }
}

fn apply_data(content: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { offset, bytes, .. } => {
            let start = *offset as usize;
            let end = start + bytes.len();
            if content.len() < end {
                content.resize(end, 0);
            }
            content[start..end].copy_from_slice(bytes);
        }
        Op::SetLen { len, .. } => content.resize(*len as usize, 0),
        _ => {}
    }
}

#[derive(Debug)]
struct SimFile {
    disk: SimDisk,
    inode: u64,
}

impl DiskFile for SimFile {
    fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()> {
        let state = self.disk.lock();
        let content = &state.files[&self.inode];
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start.checked_add(buffer.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        if end > content.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"));
        }
        buffer.copy_from_slice(&content[start..end]);
        Ok(())
    }

    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut state = self.disk.lock();
        let op = Op::Write { inode: self.inode, offset, bytes: bytes.into() };
        apply_data(state.files.get_mut(&self.inode).expect("an open file's inode"), &op);
        state.trace.push(op);
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.disk.lock().files[&self.inode].len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.disk.lock();
        let op = Op::SetLen { inode: self.inode, len };
        apply_data(state.files.get_mut(&self.inode).expect("an open file's inode"), &op);
        state.trace.push(op);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.disk.lock().trace.push(Op::Sync { inode: self.inode });
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

/// A held lock: released when dropped.
struct SimLock {
    disk: SimDisk,
    path: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.disk.lock().locks.remove(&self.path);
    }
}

impl Disk for SimDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        for ancestor in dir.ancestors() {
            state.dirs.insert(ancestor.to_owned());
        }
        Ok(())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<FileRef> {
        let mut state = self.lock();
        state.parent_exists(path)?;
        let inode = match (state.entries.get(path).copied(), mode) {
            (Some(inode), OpenMode::Truncate) => {
                let op = Op::SetLen { inode, len: 0 };
                apply_data(state.files.get_mut(&inode).expect("an entry's inode"), &op);
                state.trace.push(op);
                inode
            }
            (Some(inode), _) => inode,
            (None, OpenMode::Truncate) => state.link(path),
            (None, _) => return Err(not_found(path)),
        };
        Ok(Arc::new(SimFile { disk: self.clone(), inode }))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        Ok(self.lock().entries.contains_key(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let inode = state.entries.remove(from).ok_or_else(|| not_found(from))?;
        state.entries.insert(to.to_owned(), inode);
        state.trace.push(Op::Rename { from: from.to_owned(), to: to.to_owned() });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.entries.remove(path).ok_or_else(|| not_found(path))?;
        state.trace.push(Op::Unlink { path: path.to_owned() });
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        if !state.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(state
            .entries
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.lock().trace.push(Op::SyncDir { dir: dir.to_owned() });
        Ok(())
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<DirLock>> {
        let mut state = self.lock();
        state.parent_exists(path)?;
        if !state.entries.contains_key(path) {
            state.link(path);
        }
        if !state.locks.insert(path.to_owned()) {
            return Ok(None);
        }
        Ok(Some(Box::new(SimLock { disk: self.clone(), path: path.to_owned() })))
    }
}
