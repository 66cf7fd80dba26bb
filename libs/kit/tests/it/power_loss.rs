//! The platform's signing key and the operator's token survive a power loss, on a real file
//! system that forgets what was not synced (`symbiose-forgetfs`, mounted with FUSE): what a
//! start wrote is there after the power goes, and a start cut at any step leaves each file
//! absent or whole (the old one or the new one), never one the next start refuses or reads
//! wrong, and the next start goes on from there.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use symbiose_forgetfs::{Disk, cut_at_every_step, fuse_or_skip};
use symbiose_kit::ServerConfig;
use symbiose_kit::auth::{AuthError, KEYS_DIR, KeyPolicy, OPERATOR_TOKEN_FILE, Security, TokenAuthority};

/// What a start made: the signing key's id and the operator's token.
type Started = Result<(String, String), AuthError>;

fn start(data_dir: &Path, key: KeyPolicy) -> Started {
    let security = Security::open(&ServerConfig::for_tests(data_dir.to_owned()), key)?;
    let token = fs::read_to_string(&security.operator_token_path).expect("the token just written");
    Ok((security.authority.key_id().to_owned(), token))
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

#[test]
fn what_a_first_start_wrote_is_there_after_the_power_goes() {
    if !fuse_or_skip("what_a_first_start_wrote_is_there_after_the_power_goes") {
        return;
    }
    let mounted = Disk::new().mount_temporary().expect("mount");
    let (key_id, token) = start(mounted.path(), KeyPolicy::CreateIfMissing).expect("a first start");
    let (disk, lost) = mounted.power_loss();

    let mounted = disk.mount_temporary().expect("mount after the power loss");
    let (key_id_after, token_after) =
        start(mounted.path(), KeyPolicy::MustExist).expect("the key is there after the power loss");
    assert_eq!(key_id_after, key_id, "the same key");
    assert_eq!(token_after, token, "the same operator token, kept");
    assert_eq!(lost.bytes, 0, "a start leaves nothing unsynced: {lost:?}");
}

#[test]
fn a_key_made_by_key_create_is_there_after_the_power_goes() {
    if !fuse_or_skip("a_key_made_by_key_create_is_there_after_the_power_goes") {
        return;
    }
    // `symbiose key create` on a new data directory: the key's directory is made too.
    let made = cut_at_every_step(
        &Disk::new(),
        |data_dir| TokenAuthority::create(&data_dir.join(KEYS_DIR)).map(|key| key.key_id().to_owned()),
        |data_dir, made: &Result<String, AuthError>| match TokenAuthority::load(&data_dir.join(KEYS_DIR)) {
            Ok(key) => {
                if let Ok(key_id) = made {
                    assert_eq!(key.key_id(), key_id, "the key made");
                }
            }
            Err(AuthError::MissingKey { .. }) => {
                assert!(made.is_err(), "a key reported made was lost to the power loss");
            }
            Err(error) => {
                panic!("after a key creation cut by the power, a key the next start refuses: {error}")
            }
        },
    );
    assert!(made >= 4, "a key written, synced, linked and named: {made} operations");
}

#[test]
fn a_first_start_cut_at_any_step_leaves_no_key_or_the_whole_key() {
    if !fuse_or_skip("a_first_start_cut_at_any_step_leaves_no_key_or_the_whole_key") {
        return;
    }
    let mut keys_there = Vec::new();
    let operations = cut_at_every_step(
        &Disk::new(),
        |data_dir| start(data_dir, KeyPolicy::CreateIfMissing),
        |data_dir, started: &Started| {
            let key = match TokenAuthority::load(&data_dir.join(KEYS_DIR)) {
                Ok(authority) => Some(authority),
                Err(AuthError::MissingKey { .. }) => None,
                Err(error) => panic!("after a start cut by the power, a key the next start refuses: {error}"),
            };
            keys_there.push(key.is_some());
            match (started, &key) {
                (Ok((key_id, _)), Some(key)) => assert_eq!(key.key_id(), key_id, "the key the start made"),
                (Ok(_), None) => panic!("a start that returned lost its key to the power loss"),
                (Err(_), _) => {}
            }
            // A token is written after its key is durable, and whole.
            match (fs::read_to_string(data_dir.join(OPERATOR_TOKEN_FILE)), &key) {
                (Ok(token), Some(key)) => {
                    key.verify(token.trim(), now_s())
                        .expect("a whole operator token, signed by the key there");
                    if let Ok((_, written)) = started {
                        assert_eq!(&token, written, "the token the start wrote");
                    }
                }
                (Ok(token), None) => panic!("an operator token without its key: {token:?}"),
                (Err(_), _) => {
                    assert!(started.is_err(), "a start that returned lost its token to the power loss")
                }
            }
            // The next start goes on from what the cut left.
            let (key_id, _) = start(data_dir, KeyPolicy::CreateIfMissing).expect("the next start");
            if let Some(key) = &key {
                assert_eq!(key_id, key.key_id(), "the next start keeps the key it found");
            }
        },
    );
    assert!(operations >= 8, "a key and a token, each written, synced and named: {operations} operations");
    assert_eq!(keys_there.first(), Some(&false));
    assert_eq!(keys_there.last(), Some(&true));
}

#[test]
fn a_token_renewal_cut_at_any_step_leaves_the_old_token_or_the_new_one() {
    if !fuse_or_skip("a_token_renewal_cut_at_any_step_leaves_the_old_token_or_the_new_one") {
        return;
    }
    // A platform with its key and a damaged token, which the next start writes anew.
    let mounted = Disk::new().mount_temporary().expect("mount");
    let (key_id, _) = start(mounted.path(), KeyPolicy::CreateIfMissing).expect("a first start");
    let token_path = mounted.path().join(OPERATOR_TOKEN_FILE);
    let damaged = fs::File::create(&token_path).and_then(|mut file| {
        std::io::Write::write_all(&mut file, b"damaged")?;
        file.sync_all()
    });
    damaged.expect("damage the token, durably");
    let (disk, _) = mounted.power_loss();

    let mut renewed = Vec::new();
    cut_at_every_step(
        &disk,
        |data_dir| start(data_dir, KeyPolicy::MustExist),
        |data_dir, started: &Started| {
            let key = TokenAuthority::load(&data_dir.join(KEYS_DIR)).expect("the key is never touched");
            assert_eq!(key.key_id(), key_id);
            let token = fs::read_to_string(data_dir.join(OPERATOR_TOKEN_FILE)).expect("a token, old or new");
            if token != "damaged" {
                key.verify(token.trim(), now_s()).expect("the new token, whole");
            }
            if let Ok((_, written)) = started {
                assert_eq!(&token, written, "a renewal that returned is durable");
            }
            renewed.push(token != "damaged");
        },
    );
    assert_eq!(
        renewed.iter().filter(|renewed| **renewed).count(),
        1,
        "renewed once, at the end: {renewed:?}"
    );
    assert_eq!(renewed.last(), Some(&true));
}
