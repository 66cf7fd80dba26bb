//! The file operations the embedded store makes, and nothing more: a narrow interface under
//! the log, so that a test can put a disk that loses power under the very code that runs in
//! production. [`Plain`] is the real one: plain files of the local file system.
//!
//! What the store relies on is only what a POSIX file system promises: data written to a file
//! is durable once [`DiskFile::sync_data`] (or [`DiskFile::sync_all`]) returns, and a created,
//! renamed or removed directory entry once [`Disk::sync_dir`] returns. Anything else may be
//! lost in a power loss, or kept in part.

use std::any::Any;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Arc;

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// An existing file, to read.
    Read,
    /// An existing file, to read and write.
    ReadWrite,
    /// A file to write from scratch: created if missing, emptied if there.
    Truncate,
}

/// A file the store reads and writes at offsets.
pub trait DiskFile: Send + Sync + Debug {
    /// Fills `buffer` from `offset`; an error if the file ends first.
    fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `bytes` at `offset`, extending the file as needed.
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Cuts or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data (and its length) durable: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the file's data and metadata durable: `fsync`.
    fn sync_all(&self) -> io::Result<()>;
}

/// An open file, shared by the store's threads.
pub type FileRef = Arc<dyn DiskFile>;

/// A held lock on a data directory; released when dropped.
pub type DirLock = Box<dyn Any + Send + Sync>;

/// The directory operations of the store, and the way to its files.
pub trait Disk: Send + Sync + Debug {
    /// Creates `dir` and its parents where missing, durably: each new directory's name is
    /// synced in its parent.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<FileRef>;
    /// Whether `path` names an existing file.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of `dir` that are valid UTF-8, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Makes the entries of `dir` durable: a created or renamed file is not on disk until its
    /// directory is synced.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes the exclusive lock of the file at `path` (creating it if missing), or `None`
    /// when another holder has it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<DirLock>>;
}

/// The whole content of the file at `path`.
pub(crate) fn read_all(disk: &dyn Disk, path: &Path) -> io::Result<Vec<u8>> {
    let file = disk.open(path, OpenMode::Read)?;
    let len = usize::try_from(file.size()?).map_err(|_| io::Error::other("file too large"))?;
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it, synced, renamed,
/// and the directory synced.
pub(crate) fn write_durably(disk: &dyn Disk, dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(super::segment::TEMPORARY_SUFFIX);
    let temporary = Path::new(&temporary);
    let file = disk.open(temporary, OpenMode::Truncate)?;
    file.write_all_at(bytes, 0)?;
    file.sync_all()?;
    drop(file);
    disk.rename(temporary, path)?;
    disk.sync_dir(dir)
}

/// The local file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

#[derive(Debug)]
struct PlainFile(File);

impl DiskFile for PlainFile {
    fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buffer, offset)
    }

    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(bytes, offset)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
}

/// Creates `dir` and its missing parents, each durably: a new directory's name is synced in
/// its parent, or a power loss could take the directory away with everything written in it.
pub fn create_dir_all_durably(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut next = Some(dir);
    while let Some(current) = next.filter(|path| !path.as_os_str().is_empty()) {
        if current.try_exists()? {
            break;
        }
        missing.push(current);
        next = current.parent();
    }
    std::fs::create_dir_all(dir)?;
    for created in missing.iter().rev() {
        let parent = created.parent().filter(|parent| !parent.as_os_str().is_empty());
        File::open(parent.unwrap_or(Path::new(".")))?.sync_all()?;
    }
    Ok(())
}

/// What [`write_file_durably`] does with a file already at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replaced, atomically (a rename): a crash leaves the old file or the new one, whole.
    Replace,
    /// Kept, and the write fails with [`io::ErrorKind::AlreadyExists`] (a hard link, which
    /// never replaces): of two concurrent creations the first wins, as for a key.
    Keep,
}

/// Writes `bytes` to the file at `path` of the local file system whole or not at all, and
/// durably: a temporary file of its own beside it (created with the permission bits `mode`,
/// 0o600 for a secret), written, synced, put into place as `existing` says, and the directory
/// synced. The directory must exist (see [`create_dir_all_durably`]). This is the one way a
/// file outside the log is written: checkpoints, keys, tokens, profiles.
pub fn write_file_durably(path: &Path, bytes: &[u8], mode: u32, existing: Existing) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    let name = path.file_name().ok_or_else(|| io::Error::other("a durable write needs a file name"))?;
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // A name of its own, so that concurrent writers never share a temporary file, and created
    // new, so that `mode` applies (a stale file would keep its own permissions).
    let mut temporary = name.to_owned();
    temporary.push(format!(".{}{}", uuid::Uuid::now_v7().simple(), super::segment::TEMPORARY_SUFFIX));
    let temporary = dir.join(temporary);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| match existing {
            Existing::Replace => std::fs::rename(&temporary, path),
            Existing::Keep => std::fs::hard_link(&temporary, path),
        });
    if written.is_err() || existing == Existing::Keep {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    File::open(dir)?.sync_all()
}

impl Disk for Plain {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        create_dir_all_durably(dir)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<FileRef> {
        let mut options = OpenOptions::new();
        match mode {
            OpenMode::Read => options.read(true),
            OpenMode::ReadWrite => options.read(true).write(true),
            OpenMode::Truncate => options.read(true).write(true).create(true).truncate(true),
        };
        Ok(Arc::new(PlainFile(options.open(path)?)))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<DirLock>> {
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(error)) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names = Plain.list(dir).expect("listing");
        names.sort();
        names
    }

    #[test]
    fn a_durable_write_replaces_whole_with_its_mode_and_leaves_nothing_beside() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("token");
        write_file_durably(&path, b"first", 0o644, Existing::Replace).expect("written");
        write_file_durably(&path, b"second", 0o600, Existing::Replace).expect("replaced");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        assert_eq!(std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777, 0o600);
        assert_eq!(names(dir.path()), ["token"]);
    }

    #[test]
    fn a_durable_write_that_keeps_never_replaces() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("signing.key");
        write_file_durably(&path, b"first", 0o600, Existing::Keep).expect("created");
        let error = write_file_durably(&path, b"second", 0o600, Existing::Keep).expect_err("kept");
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).expect("read"), b"first");
        assert_eq!(std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777, 0o600);
        assert_eq!(names(dir.path()), ["signing.key"]);
    }
}
