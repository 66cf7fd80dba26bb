//! For tests only: a file system in memory, mounted with FUSE, that forgets in a power loss
//! whatever was not synced. It must never hold data anyone wants to keep.
//!
//! It keeps, for every file, its current data apart from its durable data (what the last
//! `fsync` or `fdatasync` of that file made durable, the size with it), and for every directory
//! its current entries apart from its durable entries (what the last `fsync` of that directory
//! made durable: a create, rename, unlink, link or mkdir is durable only then). That is the
//! strict POSIX promise, and the one a program must keep to on a real disk: a file whose data
//! was synced but whose name never was is gone after a power loss.
//!
//! A [`Disk`] is a durable image. [`Disk::mount`] serves it as a file system on background
//! threads; [`Mounted::power_loss`] cuts the power (every operation fails with EIO from that
//! instant), unmounts, and returns the new durable image with what was forgotten
//! ([`Lost`]). Mounting that image again is the reboot: a fresh mount, with nothing in any
//! cache. [`Mounted::power_loss_after`] lets the power go by itself after so many operations
//! that change the file system, so that a test can cut a multi-step write at every step;
//! [`Mounted::halt_after_syncs`] lets it go during a sync and halts the machine, so that
//! another process is caught with a sync in flight, as a real power loss catches it.
//!
//! Files are opened for direct I/O, so that no read is served from the kernel's page cache,
//! and writes go straight to this file system (no write-back cache). `flock` locks are left to
//! the kernel, which keeps them locally for a FUSE file system that does not implement them.
//! Mounting needs root and `/dev/fuse`; [`fuse_or_skip`] says whether a test can run here.
//! [`cut_at_every_step`] runs the usual check of a small durable write: after the power goes at
//! any step, the old version or the new one is there, whole.

mod fs;

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags};

use crate::fs::{Cut, ForgetFs, Image, ROOT_PERM, State};

/// How long a power loss waits for the FUSE session to end once the file system is detached;
/// a session still serving files that the test keeps open ends when it closes them.
const SESSION_END_WAIT_MS: u64 = 5_000;
/// Most operations of a write cut by [`cut_at_every_step`]: the files that must survive a power
/// loss are written in a few dozen.
const WRITE_OPERATIONS_MAX: u64 = 1_000;

/// A durable image: what a disk holds with the power off. A new one is empty. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Disk {
    image: Arc<Image>,
}

impl Default for Disk {
    fn default() -> Disk {
        Disk::new()
    }
}

impl Disk {
    /// An empty disk: a root directory and nothing in it.
    pub fn new() -> Disk {
        Disk { image: Arc::new(Image::empty()) }
    }

    /// Mounts a file system whose state starts as this image at `mountpoint`, an existing
    /// directory, served by background threads until [`Mounted::power_loss`] or the drop of
    /// the returned handle.
    pub fn mount(&self, mountpoint: &Path) -> io::Result<Mounted> {
        self.mount_at(mountpoint.to_owned(), None)
    }

    /// Mounts the image at a new temporary directory, removed after the unmount.
    pub fn mount_temporary(&self) -> io::Result<Mounted> {
        let mountpoint = tempfile::Builder::new().prefix("forgetfs-").tempdir()?;
        self.mount_at(mountpoint.path().to_owned(), Some(mountpoint))
    }

    fn mount_at(&self, path: PathBuf, mountpoint: Option<tempfile::TempDir>) -> io::Result<Mounted> {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let state = Arc::new(Mutex::new(State::new(&self.image, uid, gid)));
        let device = OpenOptions::new().read(true).write(true).open("/dev/fuse")?;
        let options = format!(
            "fd={},rootmode={:o},user_id={uid},group_id={gid}",
            device.as_raw_fd(),
            dir_mode(ROOT_PERM),
        );
        nix::mount::mount(
            Some("forgetfs"),
            &path,
            Some("fuse.forgetfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        )?;
        // The kernel sent its INIT on mount; the session answers it before anything is served.
        let filesystem = ForgetFs { state: state.clone() };
        let session = fuser::Session::from_fd(
            filesystem,
            OwnedFd::from(device),
            fuser::SessionACL::Owner,
            fuser::Config::default(),
        )
        .and_then(fuser::Session::spawn);
        let session = match session {
            Ok(session) => session,
            Err(error) => {
                let _ = nix::mount::umount2(&path, MntFlags::MNT_DETACH);
                return Err(error);
            }
        };
        Ok(Mounted { path, state, session: Some(session), _mountpoint: mountpoint })
    }
}

/// What a power loss forgot, for a test to check that it exercised one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lost {
    /// Bytes of file data not durable: written or cut since the file's last sync, or of a file
    /// whose name was never durable.
    pub bytes: u64,
    /// Directory entries not durable: made, removed or replaced since the directory's last
    /// sync.
    pub entries: u64,
}

/// A mounted [`Disk`]. Dropping it cuts the power too.
#[derive(Debug)]
pub struct Mounted {
    path: PathBuf,
    state: Arc<Mutex<State>>,
    session: Option<fuser::BackgroundSession>,
    _mountpoint: Option<tempfile::TempDir>,
}

impl Mounted {
    /// Where the file system is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lets the power go by itself after `operations` more operations that change the file
    /// system (create, mkdir, write, truncate or chmod, unlink, rmdir, rename, link, fsync of
    /// a file or a directory), counted whether they succeed or not: the next one fails with
    /// EIO, and so does everything after it.
    pub fn power_loss_after(&self, operations: u64) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cut_power_after(Cut::AfterOperations(operations));
    }

    /// Lets the power go by itself during a sync (`fsync` of a file or a directory) with
    /// something to make durable, the one after `syncs` more such syncs, and halts the machine:
    /// that sync and every operation after it hang, as on a machine that stopped, until
    /// [`Mounted::power_loss`] fails them with EIO. For a process other than the test's, to be
    /// killed while it hangs: it never sees an error it could act on. The durable image changes
    /// only at such syncs, so cutting at each one reaches every image a power loss could leave.
    pub fn halt_after_syncs(&self, syncs: u64) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).cut_power_after(Cut::AfterSyncs(syncs));
    }

    /// Whether the power is still on (it goes by [`Mounted::power_loss_after`] or
    /// [`Mounted::halt_after_syncs`]).
    pub fn has_power(&self) -> bool {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).is_powered()
    }

    /// What a power loss would forget if it came now.
    pub fn unsynced(&self) -> Lost {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).unsynced()
    }

    /// Cuts the power: from this instant every operation fails with EIO. Unmounts (lazily, if
    /// files are still open in it) and returns what is on the disk, and what was forgotten.
    pub fn power_loss(mut self) -> (Disk, Lost) {
        let (image, lost) = self.cut();
        (Disk { image: Arc::new(image) }, lost)
    }

    fn cut(&mut self) -> (Image, Lost) {
        let (taken, parked) = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.cut_power();
            ((state.durable_image(), state.unsynced()), state.release())
        };
        for fail in parked {
            fail();
        }
        if let Some(session) = self.session.take() {
            // A detach never fails for being busy; the kernel ends the session once the last
            // file open in the mount is closed.
            let _ = nix::mount::umount2(&self.path, MntFlags::MNT_DETACH);
            let deadline = Instant::now() + Duration::from_millis(SESSION_END_WAIT_MS);
            while !session.guard.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if session.guard.is_finished() {
                let _ = session.join();
            }
        }
        taken
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.session.is_some() {
            self.cut();
        }
    }
}

/// Cuts a write at every step: for n = 0, 1, 2, ... mounts `disk`, lets the power go after n
/// operations that change the file system, runs `write` on the mount's path, and hands what
/// the power loss left, mounted afresh, to `check` with the write's result; until a write
/// completes with the power still on (its check then sees the power loss right after it
/// returned). Returns the number of operations that write made.
///
/// Only `write` may use the mount meanwhile: every operation on it counts.
pub fn cut_at_every_step<T>(
    disk: &Disk,
    mut write: impl FnMut(&Path) -> T,
    mut check: impl FnMut(&Path, &T),
) -> u64 {
    for operations in 0..WRITE_OPERATIONS_MAX {
        let mounted = disk.mount_temporary().expect("mount the disk");
        mounted.power_loss_after(operations);
        let result = write(mounted.path());
        let completed = mounted.has_power();
        let (left, _) = mounted.power_loss();
        let rebooted = left.mount_temporary().expect("mount what the power loss left");
        check(rebooted.path(), &result);
        let _ = rebooted.power_loss();
        if completed {
            return operations;
        }
    }
    panic!("the write did not complete within {WRITE_OPERATIONS_MAX} operations");
}

/// Whether a FUSE file system can be mounted here (it needs root and `/dev/fuse`). If not,
/// prints `skipped <test>: FUSE cannot be mounted here: <reason>` and returns false; but where
/// the environment variable `CI` is set, it panics instead: CI never skips these tests.
pub fn fuse_or_skip(test: &str) -> bool {
    let probe = Disk::new().mount_temporary().and_then(|mounted| {
        let listed = std::fs::read_dir(mounted.path()).map(|entries| entries.count());
        let (_, _) = mounted.power_loss();
        listed
    });
    let Err(error) = probe else { return true };
    let reason = format!("FUSE cannot be mounted here: {error}");
    if std::env::var_os("CI").is_some_and(|value| !value.is_empty()) {
        panic!("{test}: {reason} (CI is set: this test must run)");
    }
    println!("skipped {test}: {reason}");
    false
}

/// The `st_mode` of a directory of permissions `perm`.
fn dir_mode(perm: u16) -> u32 {
    nix::libc::S_IFDIR | u32::from(perm)
}
