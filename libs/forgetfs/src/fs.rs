//! The file system itself: every inode with its current and its durable state, and the FUSE
//! operations on them.
//!
//! A file's durable data is what its last `fsync` or `fdatasync` (both sync data, and the size
//! with it) made durable; a directory's durable entries are what its last `fsync` made durable.
//! The durable image is what is reachable from the root through durable entries, each file with
//! its durable data: the rest is what a power loss forgets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use nix::libc;

use crate::Lost;

/// Nothing is cached by the kernel: every lookup and attribute comes from here, so that what
/// the code under test sees is always this file system's current state.
const TTL: Duration = Duration::ZERO;
pub(crate) const ROOT: u64 = INodeNo::ROOT.0;
pub(crate) const ROOT_PERM: u16 = 0o755;
const BLOCK_BYTES: u32 = 4096;
/// Largest file, in bytes: the tests write a few megabytes at most, and a write far past the
/// end of a file is a bug of the test, better refused than filling the memory with zeros.
const FILE_BYTES_MAX: u64 = 1 << 30;

/// A file system as it is on the disk after a power loss: the durable state only.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub(crate) nodes: BTreeMap<u64, ImageNode>,
}

#[derive(Debug, Clone)]
pub(crate) enum ImageNode {
    File { data: Vec<u8>, perm: u16 },
    Dir { entries: BTreeMap<OsString, u64>, perm: u16 },
}

impl Image {
    /// A disk with an empty root directory.
    pub(crate) fn empty() -> Image {
        let root = ImageNode::Dir { entries: BTreeMap::new(), perm: ROOT_PERM };
        Image { nodes: BTreeMap::from([(ROOT, root)]) }
    }
}

/// When the power goes by itself.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cut {
    /// After so many operations that change the file system: the next fails with EIO.
    AfterOperations(u64),
    /// After so many syncs that have something to make durable: the power goes during the
    /// next such sync, and the machine halts.
    AfterSyncs(u64),
}

/// Replies held while the machine is halted.
struct Parked(Vec<Box<dyn FnOnce() + Send>>);

impl std::fmt::Debug for Parked {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} parked replies", self.0.len())
    }
}

/// The state of a mounted file system, shared by the FUSE threads and the test that holds the
/// power switch.
#[derive(Debug)]
pub(crate) struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Directory listings taken at `opendir`, by handle.
    listings: HashMap<u64, Vec<(u64, FileType, OsString)>>,
    next_handle: u64,
    /// Off once the power went: every operation fails with EIO from then on.
    powered: bool,
    /// When the power is to go by itself.
    cut: Option<Cut>,
    /// Set when the power went at a sync of [`Cut::AfterSyncs`]: operations hang (their
    /// replies wait in `parked`) until the test takes the disk, which fails them.
    halted: bool,
    parked: Parked,
    uid: u32,
    gid: u32,
}

#[derive(Debug)]
struct Node {
    content: Content,
    perm: u16,
    durable_perm: u16,
    /// Names pointing to this inode (files only; directories report 2).
    nlink: u32,
    mtime: SystemTime,
}

#[derive(Debug)]
enum Content {
    File {
        data: Vec<u8>,
        durable: Vec<u8>,
        /// `data[..synced]` equals `durable[..synced]`: only the rest is copied on sync.
        synced: usize,
    },
    Dir {
        entries: BTreeMap<OsString, u64>,
        durable: BTreeMap<OsString, u64>,
    },
}

type Answer<T> = Result<T, Errno>;

impl Node {
    /// Whether a sync of this node would make anything durable.
    fn is_unsynced(&self) -> bool {
        self.perm != self.durable_perm
            || match &self.content {
                Content::File { data, durable, synced } => {
                    *synced != data.len() || durable.len() != data.len()
                }
                Content::Dir { entries, durable } => entries != durable,
            }
    }
}

impl State {
    pub(crate) fn new(image: &Image, uid: u32, gid: u32) -> State {
        let now = SystemTime::now();
        let mut nlinks: HashMap<u64, u32> = HashMap::new();
        for node in image.nodes.values() {
            if let ImageNode::Dir { entries, .. } = node {
                for ino in entries.values() {
                    *nlinks.entry(*ino).or_default() += 1;
                }
            }
        }
        let nodes: HashMap<u64, Node> = image
            .nodes
            .iter()
            .map(|(ino, node)| {
                let (content, perm) = match node {
                    ImageNode::File { data, perm } => (
                        Content::File { data: data.clone(), durable: data.clone(), synced: data.len() },
                        *perm,
                    ),
                    ImageNode::Dir { entries, perm } => {
                        (Content::Dir { entries: entries.clone(), durable: entries.clone() }, *perm)
                    }
                };
                let nlink = nlinks.get(ino).copied().unwrap_or(1);
                (*ino, Node { content, perm, durable_perm: perm, nlink, mtime: now })
            })
            .collect();
        let next_ino = nodes.keys().max().copied().unwrap_or(ROOT) + 1;
        State {
            nodes,
            next_ino,
            listings: HashMap::new(),
            next_handle: 1,
            powered: true,
            cut: None,
            halted: false,
            parked: Parked(Vec::new()),
            uid,
            gid,
        }
    }

    pub(crate) fn is_powered(&self) -> bool {
        self.powered
    }

    pub(crate) fn cut_power(&mut self) {
        self.powered = false;
    }

    pub(crate) fn cut_power_after(&mut self, cut: Cut) {
        self.cut = Some(cut);
    }

    /// Ends the halt: the replies that waited for it, to be failed.
    pub(crate) fn release(&mut self) -> Vec<Box<dyn FnOnce() + Send>> {
        self.halted = false;
        std::mem::take(&mut self.parked.0)
    }

    /// What is on the disk: everything reachable from the root through durable entries, with
    /// durable data.
    pub(crate) fn durable_image(&self) -> Image {
        let nodes = self
            .durable_inodes()
            .into_iter()
            .map(|ino| {
                let node = &self.nodes[&ino];
                let kept = match &node.content {
                    Content::File { durable, .. } => {
                        ImageNode::File { data: durable.clone(), perm: node.durable_perm }
                    }
                    Content::Dir { durable, .. } => {
                        ImageNode::Dir { entries: durable.clone(), perm: node.durable_perm }
                    }
                };
                (ino, kept)
            })
            .collect();
        Image { nodes }
    }

    /// What the current tree holds that the disk has not: what a power loss would forget now.
    pub(crate) fn unsynced(&self) -> Lost {
        let durable = self.durable_inodes();
        let mut lost = Lost::default();
        let mut seen = HashSet::new();
        let mut pending = vec![ROOT];
        while let Some(ino) = pending.pop() {
            if !seen.insert(ino) {
                continue;
            }
            let survives = durable.contains(&ino);
            match &self.nodes[&ino].content {
                Content::File { data, durable, synced } => {
                    lost.bytes += if survives {
                        let longest = data.len().max(durable.len());
                        (*synced..longest).filter(|at| data.get(*at) != durable.get(*at)).count() as u64
                    } else {
                        data.len() as u64
                    };
                }
                Content::Dir { entries, durable } => {
                    pending.extend(entries.values().copied());
                    lost.entries += if survives {
                        let added = entries.iter().filter(|(name, ino)| durable.get(*name) != Some(ino));
                        let removed = durable.keys().filter(|name| !entries.contains_key(*name));
                        (added.count() + removed.count()) as u64
                    } else {
                        entries.len() as u64
                    };
                }
            }
        }
        lost
    }

    /// The inodes reachable from the root through durable entries.
    fn durable_inodes(&self) -> HashSet<u64> {
        let mut reached = HashSet::new();
        let mut pending = vec![ROOT];
        while let Some(ino) = pending.pop() {
            if reached.insert(ino)
                && let Content::Dir { durable, .. } = &self.nodes[&ino].content
            {
                pending.extend(durable.values().copied());
            }
        }
        reached
    }

    /// Fails once the power is gone.
    fn check(&self) -> Answer<()> {
        if self.powered { Ok(()) } else { Err(Errno::EIO) }
    }

    /// Counts one operation that changes the file system; the power goes instead of it when
    /// the operations allowed by [`Cut::AfterOperations`] are spent.
    fn spend(&mut self) -> Answer<()> {
        self.check()?;
        match self.cut {
            Some(Cut::AfterOperations(0)) => {
                self.powered = false;
                Err(Errno::EIO)
            }
            Some(Cut::AfterOperations(left)) => {
                self.cut = Some(Cut::AfterOperations(left - 1));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Counts one sync of `ino`, if it has something to make durable; the power goes during
    /// it, and the machine halts, when the syncs allowed by [`Cut::AfterSyncs`] are spent.
    fn spend_sync(&mut self, ino: u64) -> Answer<()> {
        self.spend()?;
        if !self.node(ino)?.is_unsynced() {
            return Ok(());
        }
        match self.cut {
            Some(Cut::AfterSyncs(0)) => {
                self.powered = false;
                self.halted = true;
                Err(Errno::EIO)
            }
            Some(Cut::AfterSyncs(left)) => {
                self.cut = Some(Cut::AfterSyncs(left - 1));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn node(&self, ino: u64) -> Answer<&Node> {
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: u64) -> Answer<&mut Node> {
        self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn entries(&self, dir: u64) -> Answer<&BTreeMap<OsString, u64>> {
        match &self.node(dir)?.content {
            Content::Dir { entries, .. } => Ok(entries),
            Content::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: u64) -> Answer<&mut BTreeMap<OsString, u64>> {
        let node = self.node_mut(dir)?;
        node.mtime = SystemTime::now();
        match &mut node.content {
            Content::Dir { entries, .. } => Ok(entries),
            Content::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    fn attr(&self, ino: u64) -> Answer<FileAttr> {
        let node = self.node(ino)?;
        let (kind, size, nlink) = match &node.content {
            Content::File { data, .. } => (FileType::RegularFile, data.len() as u64, node.nlink),
            Content::Dir { .. } => (FileType::Directory, 0, 2),
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: node.mtime,
            mtime: node.mtime,
            ctime: node.mtime,
            crtime: node.mtime,
            kind,
            perm: node.perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: BLOCK_BYTES,
            flags: 0,
        })
    }

    fn lookup(&self, parent: u64, name: &OsStr) -> Answer<FileAttr> {
        self.check()?;
        let ino = *self.entries(parent)?.get(name).ok_or(Errno::ENOENT)?;
        self.attr(ino)
    }

    fn getattr(&self, ino: u64) -> Answer<FileAttr> {
        self.check()?;
        self.attr(ino)
    }

    fn setattr(&mut self, ino: u64, mode: Option<u32>, size: Option<u64>) -> Answer<FileAttr> {
        if mode.is_some() || size.is_some() {
            self.spend()?;
        } else {
            self.check()?;
        }
        let node = self.node_mut(ino)?;
        if let Some(mode) = mode {
            node.perm = (mode & 0o7777) as u16;
        }
        if let Some(size) = size {
            let Content::File { data, synced, .. } = &mut node.content else { return Err(Errno::EISDIR) };
            let size = usize::try_from(size).ok().filter(|size| *size as u64 <= FILE_BYTES_MAX);
            let size = size.ok_or(Errno::EFBIG)?;
            *synced = (*synced).min(size).min(data.len());
            data.resize(size, 0);
            node.mtime = SystemTime::now();
        }
        self.attr(ino)
    }

    /// A new inode named `name` in `parent`.
    fn add(&mut self, parent: u64, name: &OsStr, content: Content, perm: u16) -> Answer<u64> {
        if self.entries(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let node = Node { content, perm, durable_perm: perm, nlink: 1, mtime: SystemTime::now() };
        self.nodes.insert(ino, node);
        self.entries_mut(parent)?.insert(name.to_owned(), ino);
        Ok(ino)
    }

    fn create(&mut self, parent: u64, name: &OsStr, mode: u32, umask: u32, flags: i32) -> Answer<FileAttr> {
        self.spend()?;
        if let Some(ino) = self.entries(parent)?.get(name).copied() {
            // The kernel looks a name up before it creates it; this is a race with another
            // creator, answered as open(2) would.
            if flags & libc::O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            if flags & libc::O_TRUNC != 0 {
                return self.setattr_unchecked_size(ino, 0);
            }
            return self.attr(ino);
        }
        let perm = (mode & !umask & 0o7777) as u16;
        let content = Content::File { data: Vec::new(), durable: Vec::new(), synced: 0 };
        let ino = self.add(parent, name, content, perm)?;
        self.attr(ino)
    }

    fn setattr_unchecked_size(&mut self, ino: u64, size: usize) -> Answer<FileAttr> {
        let Content::File { data, synced, .. } = &mut self.node_mut(ino)?.content else {
            return Err(Errno::EISDIR);
        };
        *synced = (*synced).min(size).min(data.len());
        data.resize(size, 0);
        self.attr(ino)
    }

    fn mkdir(&mut self, parent: u64, name: &OsStr, mode: u32, umask: u32) -> Answer<FileAttr> {
        self.spend()?;
        let perm = (mode & !umask & 0o7777) as u16;
        let content = Content::Dir { entries: BTreeMap::new(), durable: BTreeMap::new() };
        let ino = self.add(parent, name, content, perm)?;
        self.attr(ino)
    }

    fn open(&self, ino: u64) -> Answer<()> {
        self.check()?;
        match self.node(ino)?.content {
            Content::File { .. } => Ok(()),
            Content::Dir { .. } => Err(Errno::EISDIR),
        }
    }

    fn read(&self, ino: u64, offset: u64, size: u32) -> Answer<Vec<u8>> {
        self.check()?;
        let Content::File { data, .. } = &self.node(ino)?.content else { return Err(Errno::EISDIR) };
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let end = start.saturating_add(size as usize).min(data.len());
        Ok(data[start..end].to_vec())
    }

    fn write(&mut self, ino: u64, offset: u64, bytes: &[u8]) -> Answer<u32> {
        self.spend()?;
        let end = offset.checked_add(bytes.len() as u64).filter(|end| *end <= FILE_BYTES_MAX);
        let end = end.ok_or(Errno::EFBIG)? as usize;
        let offset = offset as usize;
        let node = self.node_mut(ino)?;
        node.mtime = SystemTime::now();
        let Content::File { data, synced, .. } = &mut node.content else { return Err(Errno::EISDIR) };
        // A write past the end leaves a hole of zeros, which is not durable either.
        *synced = (*synced).min(offset).min(data.len());
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset..end].copy_from_slice(bytes);
        Ok(bytes.len() as u32)
    }

    /// `fsync` and `fdatasync` alike: the data, its size and the mode become durable.
    fn fsync(&mut self, ino: u64) -> Answer<()> {
        self.spend_sync(ino)?;
        let node = self.node_mut(ino)?;
        node.durable_perm = node.perm;
        match &mut node.content {
            Content::File { data, durable, synced } => {
                durable.truncate(*synced);
                durable.extend_from_slice(&data[*synced..]);
                *synced = data.len();
            }
            Content::Dir { entries, durable } => durable.clone_from(entries),
        }
        Ok(())
    }

    fn unlink(&mut self, parent: u64, name: &OsStr) -> Answer<()> {
        self.spend()?;
        let ino = *self.entries(parent)?.get(name).ok_or(Errno::ENOENT)?;
        if matches!(self.node(ino)?.content, Content::Dir { .. }) {
            return Err(Errno::EISDIR);
        }
        self.entries_mut(parent)?.remove(name);
        let node = self.node_mut(ino)?;
        node.nlink = node.nlink.saturating_sub(1);
        Ok(())
    }

    fn rmdir(&mut self, parent: u64, name: &OsStr) -> Answer<()> {
        self.spend()?;
        let ino = *self.entries(parent)?.get(name).ok_or(Errno::ENOENT)?;
        if !self.entries(ino)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.entries_mut(parent)?.remove(name);
        Ok(())
    }

    fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> Answer<()> {
        self.spend()?;
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return Err(Errno::EINVAL);
        }
        let ino = *self.entries(parent)?.get(name).ok_or(Errno::ENOENT)?;
        let moving_dir = matches!(self.node(ino)?.content, Content::Dir { .. });
        if let Some(replaced) = self.entries(new_parent)?.get(new_name).copied() {
            if replaced == ino {
                return Ok(());
            }
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            match (&self.node(replaced)?.content, moving_dir) {
                (Content::Dir { entries, .. }, true) if !entries.is_empty() => return Err(Errno::ENOTEMPTY),
                (Content::Dir { .. }, false) => return Err(Errno::EISDIR),
                (Content::File { .. }, true) => return Err(Errno::ENOTDIR),
                _ => {}
            }
            let node = self.node_mut(replaced)?;
            node.nlink = node.nlink.saturating_sub(1);
        }
        self.entries_mut(parent)?.remove(name);
        self.entries_mut(new_parent)?.insert(new_name.to_owned(), ino);
        Ok(())
    }

    fn link(&mut self, ino: u64, new_parent: u64, new_name: &OsStr) -> Answer<FileAttr> {
        self.spend()?;
        if matches!(self.node(ino)?.content, Content::Dir { .. }) {
            return Err(Errno::EPERM);
        }
        if self.entries(new_parent)?.contains_key(new_name) {
            return Err(Errno::EEXIST);
        }
        self.entries_mut(new_parent)?.insert(new_name.to_owned(), ino);
        self.node_mut(ino)?.nlink += 1;
        self.attr(ino)
    }

    fn opendir(&mut self, ino: u64) -> Answer<u64> {
        self.check()?;
        let entries = self.entries(ino)?;
        let mut listing = vec![
            (ino, FileType::Directory, OsString::from(".")),
            (ino, FileType::Directory, OsString::from("..")),
        ];
        for (name, child) in entries {
            let kind = match self.node(*child)?.content {
                Content::File { .. } => FileType::RegularFile,
                Content::Dir { .. } => FileType::Directory,
            };
            listing.push((*child, kind, name.clone()));
        }
        let handle = self.next_handle;
        self.next_handle += 1;
        self.listings.insert(handle, listing);
        Ok(handle)
    }

    /// The entries of the listing `handle` from `offset` on, each with the offset after it.
    fn readdir(&self, handle: u64, offset: u64) -> Answer<Vec<(u64, u64, FileType, OsString)>> {
        self.check()?;
        let listing = self.listings.get(&handle).ok_or(Errno::EBADF)?;
        let entries = listing.iter().enumerate().skip(usize::try_from(offset).unwrap_or(usize::MAX));
        Ok(entries.map(|(index, (ino, kind, name))| (index as u64 + 1, *ino, *kind, name.clone())).collect())
    }
}

/// The FUSE face of a [`State`].
#[derive(Debug)]
pub(crate) struct ForgetFs {
    pub(crate) state: Arc<Mutex<State>>,
}

impl ForgetFs {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `operation` on the state and sends its answer with `send`; while the machine is
    /// halted, the reply waits instead, to be failed when the test takes the disk.
    fn serve<R: Send + 'static, T: 'static>(
        &self,
        reply: R,
        operation: impl FnOnce(&mut State) -> Answer<T>,
        send: fn(R, Answer<T>),
    ) {
        let mut state = self.state();
        let answer = operation(&mut state);
        if state.halted {
            state.parked.0.push(Box::new(move || send(reply, Err(Errno::EIO))));
            return;
        }
        drop(state);
        send(reply, answer);
    }
}

/// Files are opened for direct I/O: no read is served from the kernel's page cache, so what
/// a reader sees is this file system's data.
const OPEN_FLAGS: FopenFlags = FopenFlags::FOPEN_DIRECT_IO;

fn send_entry(reply: ReplyEntry, answer: Answer<FileAttr>) {
    match answer {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(error) => reply.error(error),
    }
}

fn send_attr(reply: ReplyAttr, answer: Answer<FileAttr>) {
    match answer {
        Ok(attr) => reply.attr(&TTL, &attr),
        Err(error) => reply.error(error),
    }
}

fn send_empty(reply: ReplyEmpty, answer: Answer<()>) {
    match answer {
        Ok(()) => reply.ok(),
        Err(error) => reply.error(error),
    }
}

fn send_opened(reply: ReplyOpen, answer: Answer<()>) {
    match answer {
        Ok(()) => reply.opened(FileHandle(0), OPEN_FLAGS),
        Err(error) => reply.error(error),
    }
}

fn send_created(reply: ReplyCreate, answer: Answer<FileAttr>) {
    match answer {
        Ok(attr) => reply.created(&TTL, &attr, Generation(0), FileHandle(0), OPEN_FLAGS),
        Err(error) => reply.error(error),
    }
}

fn send_data(reply: ReplyData, answer: Answer<Vec<u8>>) {
    match answer {
        Ok(bytes) => reply.data(&bytes),
        Err(error) => reply.error(error),
    }
}

fn send_written(reply: ReplyWrite, answer: Answer<u32>) {
    match answer {
        Ok(written) => reply.written(written),
        Err(error) => reply.error(error),
    }
}

fn send_dir_opened(reply: ReplyOpen, answer: Answer<u64>) {
    match answer {
        Ok(handle) => reply.opened(FileHandle(handle), FopenFlags::empty()),
        Err(error) => reply.error(error),
    }
}

fn send_listing(mut reply: ReplyDirectory, answer: Answer<Vec<(u64, u64, FileType, OsString)>>) {
    match answer {
        Ok(entries) => {
            for (next, ino, kind, name) in entries {
                if reply.add(INodeNo(ino), next, kind, name) {
                    break;
                }
            }
            reply.ok();
        }
        Err(error) => reply.error(error),
    }
}

impl Filesystem for ForgetFs {
    fn lookup(&self, _request: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.serve(reply, |state| state.lookup(parent.0, name), send_entry);
    }

    fn getattr(&self, _request: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.serve(reply, |state| state.getattr(ino.0), send_attr);
    }

    fn setattr(
        &self,
        _request: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.serve(reply, |state| state.setattr(ino.0, mode, size), send_attr);
    }

    fn mkdir(
        &self,
        _request: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        self.serve(reply, |state| state.mkdir(parent.0, name, mode, umask), send_entry);
    }

    fn unlink(&self, _request: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.serve(reply, |state| state.unlink(parent.0, name), send_empty);
    }

    fn rmdir(&self, _request: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.serve(reply, |state| state.rmdir(parent.0, name), send_empty);
    }

    fn rename(
        &self,
        _request: &Request,
        parent: INodeNo,
        name: &OsStr,
        new_parent: INodeNo,
        new_name: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.serve(reply, |state| state.rename(parent.0, name, new_parent.0, new_name, flags), send_empty);
    }

    fn link(
        &self,
        _request: &Request,
        ino: INodeNo,
        new_parent: INodeNo,
        new_name: &OsStr,
        reply: ReplyEntry,
    ) {
        self.serve(reply, |state| state.link(ino.0, new_parent.0, new_name), send_entry);
    }

    fn open(&self, _request: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.serve(reply, |state| state.open(ino.0), send_opened);
    }

    fn create(
        &self,
        _request: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        self.serve(reply, |state| state.create(parent.0, name, mode, umask, flags), send_created);
    }

    fn read(
        &self,
        _request: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.serve(reply, |state| state.read(ino.0, offset, size), send_data);
    }

    fn write(
        &self,
        _request: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.serve(reply, |state| state.write(ino.0, offset, data), send_written);
    }

    fn flush(
        &self,
        _request: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.serve(reply, |state| state.check(), send_empty);
    }

    fn fsync(&self, _request: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.serve(reply, |state| state.fsync(ino.0), send_empty);
    }

    fn opendir(&self, _request: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.serve(reply, |state| state.opendir(ino.0), send_dir_opened);
    }

    fn readdir(&self, _request: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, reply: ReplyDirectory) {
        self.serve(reply, |state| state.readdir(fh.0, offset), send_listing);
    }

    fn releasedir(
        &self,
        _request: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.state().listings.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _request: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.serve(reply, |state| state.fsync(ino.0), send_empty);
    }
}
