//! Keys per data subject, for personal data kept in the log (crypto-shredding).
//!
//! Events are never edited, so personal data goes into them sealed with a key of its own
//! subject (an organization); erasing the data is deleting the key. The keys live in files of
//! their own (`<subject>.key`, mode 0600), never in the log, and the vault never writes
//! plaintext anywhere.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use uuid::Uuid;

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("vault i/o on {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("key file {0} is damaged")]
    DamagedKey(String),
    #[error("sealed data for {0} does not open with its key")]
    DoesNotOpen(Uuid),
}

#[derive(Debug, Clone)]
pub struct Vault {
    dir: PathBuf,
}

impl Vault {
    pub fn open(dir: impl Into<PathBuf>) -> Result<Vault, VaultError> {
        let dir = dir.into();
        symbiose_eventstore::embedded::disk::create_dir_all_durably(&dir).map_err(|error| io(&dir, error))?;
        Ok(Vault { dir })
    }

    /// Seals `plaintext` with `subject`'s key, creating the key if it has none.
    pub fn seal(&self, subject: Uuid, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let cipher = ChaCha20Poly1305::new(&self.key(subject, true)?.expect("created when missing"));
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher.encrypt(&nonce, plaintext).map_err(|_| VaultError::DoesNotOpen(subject))?;
        let mut sealed = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Opens data sealed for `subject`, or `None` if its key was erased (or the data was
    /// sealed with an erased key and the subject has a new one).
    pub fn open_sealed(&self, subject: Uuid, sealed: &[u8]) -> Result<Option<Vec<u8>>, VaultError> {
        let Some(key) = self.key(subject, false)? else { return Ok(None) };
        if sealed.len() < NONCE_BYTES {
            return Err(VaultError::DoesNotOpen(subject));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        Ok(ChaCha20Poly1305::new(&key).decrypt(Nonce::from_slice(nonce), ciphertext).ok())
    }

    /// Deletes `subject`'s key, durably: what was sealed with it can never be opened again.
    pub fn erase(&self, subject: Uuid) -> Result<(), VaultError> {
        let path = self.path(subject);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io(&path, error)),
        }
        sync_dir(&self.dir)
    }

    fn path(&self, subject: Uuid) -> PathBuf {
        self.dir.join(format!("{subject}.key"))
    }

    fn key(&self, subject: Uuid, create: bool) -> Result<Option<Key>, VaultError> {
        let path = self.path(subject);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == KEY_BYTES => return Ok(Some(*Key::from_slice(&bytes))),
            Ok(_) => return Err(VaultError::DamagedKey(path.display().to_string())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && create => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io(&path, error)),
        }
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        // Written whole under a name of its own, then linked into place: a reader never sees a
        // key file half written, and of two concurrent creations the first link wins.
        let temporary = self.dir.join(format!("{subject}.key.{}.tmp", Uuid::now_v7()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options
            .open(&temporary)
            .and_then(|mut file| file.write_all(&key).and_then(|()| file.sync_all()))
            .map_err(|error| io(&temporary, error));
        let linked = written.and_then(|()| match std::fs::hard_link(&temporary, &path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(io(&path, error)),
        });
        let _ = std::fs::remove_file(&temporary);
        if linked? {
            sync_dir(&self.dir)?;
            Ok(Some(key))
        } else {
            // Another call created it first: use that one.
            self.key(subject, false)
        }
    }
}

fn io(path: &Path, error: std::io::Error) -> VaultError {
    VaultError::Io { path: path.display().to_string(), error }
}

fn sync_dir(dir: &Path) -> Result<(), VaultError> {
    std::fs::File::open(dir).and_then(|file| file.sync_all()).map_err(|error| io(dir, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_until_its_key_is_erased() {
        let dir = tempfile::tempdir().expect("dir");
        let vault = Vault::open(dir.path()).expect("vault");
        let subject = Uuid::now_v7();
        let sealed = vault.seal(subject, b"Marie Muller, +33 3 88 00 00 00").expect("seal");
        assert!(!sealed.windows(5).any(|window| window == b"Marie"), "no plaintext in the sealed bytes");
        assert_eq!(
            vault.open_sealed(subject, &sealed).expect("open").as_deref(),
            Some(&b"Marie Muller, +33 3 88 00 00 00"[..])
        );

        vault.erase(subject).expect("erase");
        assert_eq!(vault.open_sealed(subject, &sealed).expect("open"), None);
        // A new key for the same subject does not open what the old one sealed.
        let _ = vault.seal(subject, b"new").expect("seal again");
        assert_eq!(vault.open_sealed(subject, &sealed).expect("open"), None);
        vault.erase(Uuid::now_v7()).expect("erasing a subject without a key is fine");
    }
}
