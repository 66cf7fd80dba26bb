//! Checkpoints survive a power loss, on a real file system that forgets what was not synced
//! (`symbiose-forgetfs`, mounted with FUSE): a saved checkpoint is there after the power goes,
//! and a save cut at any step leaves the old checkpoint or the new one, whole, never a file the
//! loader refuses or reads wrong.

use std::path::Path;

use symbiose_feed::Checkpoint;
use symbiose_forgetfs::{Disk, cut_at_every_step, fuse_or_skip};

/// Where a server keeps its relay's checkpoint, under its data directory.
const CHECKPOINT: &str = "feed/relay.checkpoint";

fn checkpoint(next_position: u64) -> Checkpoint {
    let mut checkpoint = Checkpoint::default();
    checkpoint.set("next_position", next_position);
    checkpoint.set("acked.listings", next_position.saturating_sub(10));
    checkpoint
}

#[test]
fn a_saved_checkpoint_is_there_after_the_power_goes() {
    if !fuse_or_skip("a_saved_checkpoint_is_there_after_the_power_goes") {
        return;
    }
    // The first save of a new data directory: the save makes the checkpoint's directory too.
    let mounted = Disk::new().mount_temporary().expect("mount");
    checkpoint(100).save(&mounted.path().join(CHECKPOINT)).expect("save");
    let (disk, _) = mounted.power_loss();

    let mounted = disk.mount_temporary().expect("mount after the power loss");
    let path = mounted.path().join(CHECKPOINT);
    assert_eq!(Checkpoint::load(&path).expect("load"), checkpoint(100), "the first save is durable");
    checkpoint(200).save(&path).expect("save again");
    let (disk, lost) = mounted.power_loss();

    let mounted = disk.mount_temporary().expect("mount after the power loss");
    let path = mounted.path().join(CHECKPOINT);
    assert_eq!(Checkpoint::load(&path).expect("load"), checkpoint(200), "the replacing save is durable");
    assert_eq!(lost.bytes, 0, "a save leaves nothing unsynced: {lost:?}");
}

#[test]
fn a_save_cut_at_any_step_leaves_the_old_checkpoint_or_the_new_one() {
    if !fuse_or_skip("a_save_cut_at_any_step_leaves_the_old_checkpoint_or_the_new_one") {
        return;
    }
    let new = checkpoint(2000);
    // A first save, into a data directory without one (none, then the new one), and a save
    // over an old checkpoint (the old one, then the new one).
    for (old, disk) in
        [(Checkpoint::default(), Disk::new()), (checkpoint(1000), disk_with(&checkpoint(1000)))]
    {
        let mut loaded = Vec::new();
        let operations = cut_at_every_step(
            &disk,
            |data_dir| new.save(&data_dir.join(CHECKPOINT)),
            |data_dir, saved| {
                let checkpoint = Checkpoint::load(&data_dir.join(CHECKPOINT))
                    .unwrap_or_else(|error| panic!("after a save cut by the power: {error}"));
                if saved.is_ok() {
                    assert_eq!(checkpoint, new, "a save that returned is durable");
                }
                assert!(checkpoint == old || checkpoint == new, "neither old nor new: {checkpoint:?}");
                loaded.push(checkpoint == new);
            },
        );
        assert!(operations >= 4, "write, sync, rename, sync the directory: {operations} operations");
        // Old until the rename is durable, new from then on: the change happens once.
        assert_eq!(loaded.iter().filter(|is_new| **is_new).count(), 1, "{loaded:?}");
        assert_eq!(loaded.last(), Some(&true));
    }
}

/// A disk whose data directory holds `checkpoint`, durably.
fn disk_with(checkpoint: &Checkpoint) -> Disk {
    let mounted = Disk::new().mount_temporary().expect("mount");
    checkpoint.save(&mounted.path().join(CHECKPOINT)).expect("save");
    sync_dir(mounted.path());
    let (disk, _) = mounted.power_loss();
    disk
}

fn sync_dir(dir: &Path) {
    std::fs::File::open(dir).and_then(|dir| dir.sync_all()).expect("sync a directory");
}
