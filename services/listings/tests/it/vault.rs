//! The vault's keys under power loss, on a real file system that forgets what was not synced
//! (`symbiose-forgetfs`, mounted with FUSE). Data sealed with a key goes into the log: the key
//! must be on disk before the sealed data leaves the vault, or a power loss shreds data nobody
//! erased. An erasure that returned must stay erased. A seal or an erasure cut at any step
//! leaves the key absent or whole, never a file the vault refuses.

use std::path::Path;

use symbiose_forgetfs::{Disk, cut_at_every_step, fuse_or_skip};
use symbiose_listings::{FileVault, VaultError};
use uuid::Uuid;

/// Where a server keeps its vault, under its data directory.
const VAULT_DIR: &str = "vault";
const CONTACTS: &[u8] = b"Marie Muller, +33 3 88 00 00 00";

fn vault(data_dir: &Path) -> FileVault {
    FileVault::open(data_dir.join(VAULT_DIR)).expect("open the vault")
}

#[test]
fn sealed_data_opens_after_the_power_goes() {
    if !fuse_or_skip("sealed_data_opens_after_the_power_goes") {
        return;
    }
    // A first seal in a new data directory: the vault makes its directory too.
    let subject = Uuid::now_v7();
    let mounted = Disk::new().mount_temporary().expect("mount");
    let sealed = vault(mounted.path()).seal(subject, CONTACTS).expect("seal");
    let (disk, lost) = mounted.power_loss();

    let mounted = disk.mount_temporary().expect("mount after the power loss");
    let opened = vault(mounted.path()).open_sealed(subject, &sealed).expect("open");
    assert_eq!(opened.as_deref(), Some(CONTACTS), "the key survived: the data still opens");
    assert_eq!(lost.bytes, 0, "a seal leaves no key unsynced: {lost:?}");
}

#[test]
fn a_seal_cut_at_any_step_leaves_no_key_or_the_whole_key() {
    if !fuse_or_skip("a_seal_cut_at_any_step_leaves_no_key_or_the_whole_key") {
        return;
    }
    // A vault that already holds another subject's key, which no cut may touch.
    let (other, other_sealed) = (Uuid::now_v7(), b"another subject".as_slice());
    let mounted = Disk::new().mount_temporary().expect("mount");
    let other_sealed = vault(mounted.path()).seal(other, other_sealed).expect("seal");
    let (disk, _) = mounted.power_loss();

    let subject = Uuid::now_v7();
    let mut keys_there = Vec::new();
    let operations = cut_at_every_step(
        &disk,
        |data_dir| FileVault::open(data_dir.join(VAULT_DIR))?.seal(subject, CONTACTS),
        |data_dir, sealed: &Result<Vec<u8>, VaultError>| {
            let vault = vault(data_dir);
            // Too short to hold a nonce: refused if the subject has a key, nothing if it has none.
            let probe = vault.open_sealed(subject, b"short");
            let key_there = match probe {
                Ok(None) => false,
                Err(VaultError::DoesNotOpen(_)) => true,
                Err(error) => panic!("after a seal cut by the power, a key the vault refuses: {error}"),
                Ok(Some(_)) => unreachable!("nothing opens data sealed by no key"),
            };
            keys_there.push(key_there);
            if let Ok(sealed) = sealed {
                let opened = vault.open_sealed(subject, sealed).expect("open");
                assert_eq!(opened.as_deref(), Some(CONTACTS), "data sealed by a seal that returned opens");
            }
            let opened = vault.open_sealed(other, &other_sealed).expect("open the other subject's data");
            assert_eq!(opened.as_deref(), Some(&b"another subject"[..]));
            // The next seal goes on from what the cut left.
            let resealed = vault.seal(subject, CONTACTS).expect("seal after the cut");
            assert_eq!(vault.open_sealed(subject, &resealed).expect("open").as_deref(), Some(CONTACTS));
        },
    );
    assert!(operations >= 4, "a key written, synced, linked and named: {operations} operations");
    assert_eq!(keys_there.first(), Some(&false));
    assert_eq!(keys_there.last(), Some(&true));
}

#[test]
fn an_erasure_that_returned_stays_erased_after_the_power_goes() {
    if !fuse_or_skip("an_erasure_that_returned_stays_erased_after_the_power_goes") {
        return;
    }
    let subject = Uuid::now_v7();
    let mounted = Disk::new().mount_temporary().expect("mount");
    let sealed = vault(mounted.path()).seal(subject, CONTACTS).expect("seal");
    let (disk, _) = mounted.power_loss();

    let mut erased_after = Vec::new();
    cut_at_every_step(
        &disk,
        |data_dir| FileVault::open(data_dir.join(VAULT_DIR))?.erase(subject),
        |data_dir, erased: &Result<(), VaultError>| {
            let opened = vault(data_dir).open_sealed(subject, &sealed).expect("open");
            match opened.as_deref() {
                None => erased_after.push(true),
                Some(contacts) => {
                    assert_eq!(contacts, CONTACTS, "the key whole, or no key");
                    assert!(erased.is_err(), "an erasure that returned was undone by the power loss");
                    erased_after.push(false);
                }
            }
        },
    );
    assert_eq!(erased_after.last(), Some(&true));
}
