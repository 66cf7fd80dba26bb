//! The file system forgets exactly what POSIX lets a power loss forget, on real mounts: file
//! data not synced, directory entries whose directory was not synced; and keeps the rest.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use symbiose_forgetfs::{Disk, Lost, Mounted, cut_at_every_step, fuse_or_skip};

fn mount(disk: &Disk) -> Mounted {
    disk.mount_temporary().expect("mount the disk")
}

fn sync_dir(dir: &Path) {
    File::open(dir).and_then(|dir| dir.sync_all()).expect("sync the directory");
}

/// A disk holding `name` with `content`, durably.
fn disk_with(name: &str, content: &[u8]) -> Disk {
    let mounted = mount(&Disk::new());
    let path = mounted.path().join(name);
    let mut file = File::create(&path).expect("create");
    file.write_all(content).expect("write");
    file.sync_all().expect("sync");
    drop(file);
    sync_dir(mounted.path());
    let (disk, _) = mounted.power_loss();
    disk
}

#[test]
fn written_and_synced_data_survives_a_power_loss() {
    if !fuse_or_skip("written_and_synced_data_survives_a_power_loss") {
        return;
    }
    let disk = disk_with("kept", b"durable bytes");
    let mounted = mount(&disk);
    assert_eq!(fs::read(mounted.path().join("kept")).expect("read"), b"durable bytes");
    let (_, lost) = mounted.power_loss();
    assert_eq!(lost, Lost::default(), "nothing was written since");
}

#[test]
fn written_but_not_synced_data_is_forgotten() {
    if !fuse_or_skip("written_but_not_synced_data_is_forgotten") {
        return;
    }
    let disk = disk_with("file", b"old old old");
    let mounted = mount(&disk);
    let path = mounted.path().join("file");
    let file = OpenOptions::new().write(true).open(&path).expect("open");
    file.write_all_at(b"new", 0).expect("overwrite");
    file.write_all_at(b" and more", 11).expect("append");
    // Read back before the power goes: the current data, not the page cache's.
    assert_eq!(fs::read(&path).expect("read"), b"new old old and more");
    drop(file);
    assert_eq!(mounted.unsynced(), Lost { bytes: 12, entries: 0 }, "what a power loss would forget");
    let (disk, lost) = mounted.power_loss();
    assert_eq!(lost.bytes, 3 + 9, "the overwritten and the appended bytes");

    let mounted = mount(&disk);
    assert_eq!(fs::read(mounted.path().join("file")).expect("read"), b"old old old");
    // A sync in between keeps what was written up to it, and forgets what came after.
    let path = mounted.path().join("file");
    let file = OpenOptions::new().write(true).open(&path).expect("open");
    file.write_all_at(b"NEW", 0).expect("write");
    file.sync_data().expect("fdatasync");
    file.write_all_at(b"OLD", 4).expect("write");
    drop(file);
    let (disk, lost) = mounted.power_loss();
    assert_eq!(lost.bytes, 3);
    let mounted = mount(&disk);
    assert_eq!(fs::read(mounted.path().join("file")).expect("read"), b"NEW old old");
}

#[test]
fn a_created_file_stays_only_if_its_directory_was_synced() {
    if !fuse_or_skip("a_created_file_stays_only_if_its_directory_was_synced") {
        return;
    }
    let mounted = mount(&Disk::new());
    fs::create_dir(mounted.path().join("dir")).expect("mkdir");
    sync_dir(mounted.path());
    let mut file = File::create_new(mounted.path().join("dir/unnamed")).expect("create");
    file.write_all(b"synced data, unsynced name").expect("write");
    file.sync_all().expect("sync the file, not its directory");
    drop(file);
    let (disk, lost) = mounted.power_loss();
    assert_eq!(lost, Lost { bytes: 26, entries: 1 });
    let mounted = mount(&disk);
    assert!(mounted.path().join("dir").is_dir(), "the synced mkdir stays");
    assert_eq!(fs::read_dir(mounted.path().join("dir")).expect("list").count(), 0, "the file is gone");

    let mut file = File::create_new(mounted.path().join("dir/named")).expect("create");
    file.write_all(b"all synced").expect("write");
    file.sync_all().expect("sync the file");
    drop(file);
    sync_dir(&mounted.path().join("dir"));
    let error = File::create_new(mounted.path().join("dir/named")).expect_err("exclusive create");
    assert_eq!(error.kind(), ErrorKind::AlreadyExists);
    let (disk, lost) = mounted.power_loss();
    assert_eq!(lost, Lost::default());
    let mounted = mount(&disk);
    assert_eq!(fs::read(mounted.path().join("dir/named")).expect("read"), b"all synced");
}

#[test]
fn a_rename_is_undone_unless_its_directory_was_synced() {
    if !fuse_or_skip("a_rename_is_undone_unless_its_directory_was_synced") {
        return;
    }
    let mounted = mount(&Disk::new());
    for (name, content) in [("target", &b"old target"[..]), ("source", b"new target")] {
        let mut file = File::create(mounted.path().join(name)).expect("create");
        file.write_all(content).expect("write");
        file.sync_all().expect("sync");
    }
    sync_dir(mounted.path());
    let (disk, _) = mounted.power_loss();

    let mounted = mount(&disk);
    fs::rename(mounted.path().join("source"), mounted.path().join("target")).expect("rename over");
    assert_eq!(fs::read(mounted.path().join("target")).expect("read"), b"new target");
    assert!(!mounted.path().join("source").exists());
    let (undone, lost) = mounted.power_loss();
    assert_eq!(lost, Lost { bytes: 0, entries: 2 }, "target replaced, source removed");
    let mounted = mount(&undone);
    assert_eq!(fs::read(mounted.path().join("target")).expect("read"), b"old target");
    assert_eq!(fs::read(mounted.path().join("source")).expect("read"), b"new target");

    fs::rename(mounted.path().join("source"), mounted.path().join("target")).expect("rename over");
    sync_dir(mounted.path());
    let (done, _) = mounted.power_loss();
    let mounted = mount(&done);
    assert_eq!(fs::read(mounted.path().join("target")).expect("read"), b"new target");
    assert!(!mounted.path().join("source").exists());
}

#[test]
fn a_truncation_is_durable_only_after_a_sync_of_the_file() {
    if !fuse_or_skip("a_truncation_is_durable_only_after_a_sync_of_the_file") {
        return;
    }
    let disk = disk_with("file", b"0123456789");
    let mounted = mount(&disk);
    let file = OpenOptions::new().write(true).open(mounted.path().join("file")).expect("open");
    file.set_len(4).expect("cut");
    assert_eq!(fs::metadata(mounted.path().join("file")).expect("stat").len(), 4);
    drop(file);
    let (disk, lost) = mounted.power_loss();
    assert_eq!(lost.bytes, 6);
    let mounted = mount(&disk);
    assert_eq!(fs::read(mounted.path().join("file")).expect("read"), b"0123456789");

    let file = OpenOptions::new().write(true).open(mounted.path().join("file")).expect("open");
    file.set_len(4).expect("cut");
    file.sync_all().expect("sync");
    // Extending leaves zeros, and those are not durable before a sync either.
    file.set_len(8).expect("extend");
    file.write_all_at(b"x", 9).expect("write past the end");
    assert_eq!(fs::read(mounted.path().join("file")).expect("read"), b"0123\0\0\0\0\0x");
    drop(file);
    let (disk, lost) = mounted.power_loss();
    assert_eq!(lost.bytes, 6);
    let mounted = mount(&disk);
    assert_eq!(fs::read(mounted.path().join("file")).expect("read"), b"0123");
}

#[test]
fn hard_links_name_the_same_file_and_last_like_any_entry() {
    if !fuse_or_skip("hard_links_name_the_same_file_and_last_like_any_entry") {
        return;
    }
    let mounted = mount(&Disk::new());
    let temporary = mounted.path().join("key.tmp");
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let mut file = options.open(&temporary).expect("create");
    file.write_all(b"secret").expect("write");
    file.sync_all().expect("sync");
    drop(file);
    fs::hard_link(&temporary, mounted.path().join("key")).expect("link");
    let error = fs::hard_link(&temporary, mounted.path().join("key")).expect_err("a second link");
    assert_eq!(error.kind(), ErrorKind::AlreadyExists);
    assert_eq!(fs::metadata(&temporary).expect("stat").nlink(), 2);
    fs::remove_file(&temporary).expect("unlink the temporary name");
    let metadata = fs::metadata(mounted.path().join("key")).expect("stat");
    assert_eq!((metadata.nlink(), metadata.permissions().mode() & 0o777), (1, 0o600));
    sync_dir(mounted.path());
    let (disk, _) = mounted.power_loss();

    let mounted = mount(&disk);
    assert_eq!(fs::read(mounted.path().join("key")).expect("read"), b"secret");
    assert!(!temporary.exists());
    let names: Vec<_> = fs::read_dir(mounted.path())
        .expect("list")
        .map(|entry| entry.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    assert_eq!(names, ["key"]);
    assert_eq!(fs::metadata(mounted.path().join("key")).expect("stat").permissions().mode() & 0o777, 0o600);
}

#[test]
fn the_power_goes_after_the_operations_allowed_and_everything_fails_after() {
    if !fuse_or_skip("the_power_goes_after_the_operations_allowed_and_everything_fails_after") {
        return;
    }
    let mounted = mount(&Disk::new());
    let mut file = File::create(mounted.path().join("file")).expect("create");
    mounted.power_loss_after(2);
    file.write_all(b"one").expect("first write");
    file.sync_all().expect("sync");
    assert!(mounted.has_power());
    let error = file.write_all(b"two").expect_err("the power is gone");
    assert_eq!(error.raw_os_error(), Some(nix::libc::EIO), "{error}");
    assert!(!mounted.has_power());
    assert!(fs::metadata(mounted.path().join("file")).is_err(), "even a stat fails");
    drop(file);
    let (disk, lost) = mounted.power_loss();
    assert_eq!(lost, Lost { bytes: 3, entries: 1 }, "the file's name was never synced");
    let mounted = mount(&disk);
    assert_eq!(fs::read_dir(mounted.path()).expect("list").count(), 0);
}

#[test]
fn a_halt_holds_the_sync_in_flight_and_fails_it_at_the_power_loss() {
    if !fuse_or_skip("a_halt_holds_the_sync_in_flight_and_fails_it_at_the_power_loss") {
        return;
    }
    let disk = disk_with("file", b"before");
    let mounted = mount(&disk);
    let path = mounted.path().join("file");
    mounted.halt_after_syncs(1);
    let writer = std::thread::spawn(move || {
        let file = OpenOptions::new().write(true).open(&path).expect("open");
        file.write_all_at(b"first", 0).expect("write");
        file.sync_data().expect("the first sync");
        file.write_all_at(b"again", 0).expect("write");
        file.sync_data()
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while mounted.has_power() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(!mounted.has_power(), "the second sync halts the machine");
    assert!(!writer.is_finished(), "the sync in flight hangs");
    let (disk, lost) = mounted.power_loss();
    let error = writer.join().expect("the writer").expect_err("the sync in flight fails");
    assert_eq!(error.raw_os_error(), Some(nix::libc::EIO), "{error}");
    assert_eq!(lost.bytes, 5);
    let mounted = mount(&disk);
    assert_eq!(fs::read(mounted.path().join("file")).expect("read"), b"firste", "the first sync only");
}

#[test]
fn an_exclusive_lock_keeps_a_second_holder_out() {
    if !fuse_or_skip("an_exclusive_lock_keeps_a_second_holder_out") {
        return;
    }
    let mounted = mount(&Disk::new());
    let path = mounted.path().join("LOCK");
    let first = File::create(&path).expect("create");
    first.try_lock().expect("the first lock");
    let second = File::open(&path).expect("open again");
    assert!(matches!(second.try_lock(), Err(fs::TryLockError::WouldBlock)));
    drop(first);
    second.try_lock().expect("free once the first holder is gone");
}

/// Replaces `name` in `dir` with `content` the durable way, or without the directory sync.
fn replace(dir: &Path, name: &str, content: &[u8], sync_the_directory: bool) -> std::io::Result<()> {
    let temporary = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&temporary)?;
    file.write_all(content)?;
    file.sync_all()?;
    fs::rename(&temporary, dir.join(name))?;
    if sync_the_directory {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[test]
fn a_durable_replace_cut_at_every_step_leaves_the_old_file_or_the_new_one() {
    if !fuse_or_skip("a_durable_replace_cut_at_every_step_leaves_the_old_file_or_the_new_one") {
        return;
    }
    let disk = disk_with("file", b"old");
    let mut seen = Vec::new();
    let operations = cut_at_every_step(
        &disk,
        |dir| replace(dir, "file", b"new", true),
        |dir, result| {
            let content = fs::read(dir.join("file")).expect("the file is always there");
            if result.is_ok() {
                assert_eq!(content, b"new", "a replace that returned is durable");
            }
            assert!(content == b"old" || content == b"new", "{content:?}");
            seen.push(content);
        },
    );
    // create, write, fsync, rename, fsync of the directory.
    assert_eq!(operations, 5);
    assert_eq!(seen, [&b"old"[..], b"old", b"old", b"old", b"old", b"new"]);
}

#[test]
fn a_replace_without_the_directory_sync_is_caught() {
    if !fuse_or_skip("a_replace_without_the_directory_sync_is_caught") {
        return;
    }
    let disk = disk_with("file", b"old");
    let mut after_return = Vec::new();
    cut_at_every_step(
        &disk,
        |dir| replace(dir, "file", b"new", false),
        |dir, result| {
            if result.is_ok() {
                after_return.push(fs::read(dir.join("file")).expect("read"));
            }
        },
    );
    assert_eq!(after_return, [b"old"], "the rename returned, and the power loss undid it");
}
