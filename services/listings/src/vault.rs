//! Keys per data subject, for personal data kept in the log (crypto-shredding).
//!
//! Events are never edited, so personal data goes into them sealed with a key of its own
//! subject (an organization); erasing the data is deleting the key. The keys never go into the
//! log, and the vault never writes plaintext anywhere. Where they live follows the store:
//! beside the embedded store, in files of their own in the data directory (`<subject>.key`,
//! mode 0600, [`FileVault`]); beside a PostgreSQL store, in its table `symbiose_vault_keys`,
//! so that every replica of the listings service seals and opens with the same keys
//! ([`Vault::Postgres`]; the key files an earlier run kept in the data directory are moved
//! into the table at open).

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use symbiose_eventstore::embedded::disk;
use symbiose_eventstore::postgres::PostgresStore;
use uuid::Uuid;

const KEY_BYTES: usize = 32;
/// The permission bits of a key file: a secret of its owner.
const KEY_FILE_MODE: u32 = 0o600;
const NONCE_BYTES: usize = 12;
/// How the temporary files of durable writes end (`disk::write_file_durably`).
const TEMPORARY_SUFFIX: &str = ".tmp";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("vault i/o on {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("key file {0} is damaged")]
    DamagedKey(String),
    #[error("sealed data for {0} does not open with its key")]
    DoesNotOpen(Uuid),
    #[error("vault keys in the database: {0}")]
    Store(symbiose_eventstore::StoreError),
}

/// The vault of the listings service: keys in files, or in the PostgreSQL store's database.
#[derive(Debug, Clone)]
pub enum Vault {
    Files(FileVault),
    Postgres(PostgresVault),
}

impl Vault {
    /// Seals `plaintext` with `subject`'s key, creating the key if it has none.
    pub async fn seal(&self, subject: Uuid, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        match self {
            Vault::Files(files) => files.seal(subject, plaintext),
            Vault::Postgres(shared) => {
                seal_with(subject, &shared.key(subject, true).await?.expect("created"), plaintext)
            }
        }
    }

    /// Opens data sealed for `subject`, or `None` if its key was erased.
    pub async fn open_sealed(&self, subject: Uuid, sealed: &[u8]) -> Result<Option<Vec<u8>>, VaultError> {
        match self {
            Vault::Files(files) => files.open_sealed(subject, sealed),
            Vault::Postgres(shared) => match shared.key(subject, false).await? {
                Some(key) => open_with(subject, &key, sealed),
                None => Ok(None),
            },
        }
    }

    /// Deletes `subject`'s key: what was sealed with it can never be opened again.
    pub async fn erase(&self, subject: Uuid) -> Result<(), VaultError> {
        match self {
            Vault::Files(files) => files.erase(subject),
            Vault::Postgres(shared) => shared.erase(subject).await,
        }
    }
}

/// The keys in a PostgreSQL store's database, shared by every replica.
#[derive(Debug, Clone)]
pub struct PostgresVault {
    store: PostgresStore,
}

impl PostgresVault {
    /// The vault in `store`'s database. The key files of `legacy_dir` (a vault an earlier run
    /// kept in the data directory), if any, are moved into it first: each key is inserted,
    /// then its file removed. A subject that already has another key in the database keeps
    /// its file, with an error logged: data was sealed with both.
    pub async fn open(store: PostgresStore, legacy_dir: &Path) -> Result<PostgresVault, VaultError> {
        let vault = PostgresVault { store };
        let entries = match std::fs::read_dir(legacy_dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(vault),
            Err(error) => return Err(io(legacy_dir, error)),
        };
        let legacy = FileVault::open(legacy_dir)?;
        let mut moved = 0_usize;
        for entry in entries {
            let entry = entry.map_err(|error| io(legacy_dir, error))?;
            let name = entry.file_name();
            let Some(subject) = name.to_str().and_then(|name| name.strip_suffix(".key")) else { continue };
            let Ok(subject) = subject.parse::<Uuid>() else { continue };
            let Some(key) = legacy.key(subject, false)? else { continue };
            let kept = vault.store.create_vault_key(subject, &key).await.map_err(VaultError::Store)?;
            if kept[..] == key[..] {
                legacy.erase(subject)?;
                moved += 1;
            } else {
                tracing::error!(
                    %subject,
                    file = %entry.path().display(),
                    "the database holds another key for this subject: its key file is kept, and data sealed with it opens with that file only"
                );
            }
        }
        if moved > 0 {
            tracing::info!(keys = moved, dir = %legacy_dir.display(), "vault keys moved from files into the database");
        }
        Ok(vault)
    }

    async fn key(&self, subject: Uuid, create: bool) -> Result<Option<Key>, VaultError> {
        let stored = match self.store.vault_key(subject).await.map_err(VaultError::Store)? {
            Some(stored) => stored,
            None if create => {
                let key = ChaCha20Poly1305::generate_key(&mut OsRng);
                // Of two replicas creating it together, the first wins and both use it.
                self.store.create_vault_key(subject, &key).await.map_err(VaultError::Store)?
            }
            None => return Ok(None),
        };
        if stored.len() != KEY_BYTES {
            return Err(VaultError::DamagedKey(format!("symbiose_vault_keys {subject}")));
        }
        Ok(Some(*Key::from_slice(&stored)))
    }

    async fn erase(&self, subject: Uuid) -> Result<(), VaultError> {
        self.store.erase_vault_key(subject).await.map_err(VaultError::Store)
    }
}

fn seal_with(subject: Uuid, key: &Key, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
    let cipher = ChaCha20Poly1305::new(key);
    let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = cipher.encrypt(&nonce, plaintext).map_err(|_| VaultError::DoesNotOpen(subject))?;
    let mut sealed = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

fn open_with(subject: Uuid, key: &Key, sealed: &[u8]) -> Result<Option<Vec<u8>>, VaultError> {
    if sealed.len() < NONCE_BYTES {
        return Err(VaultError::DoesNotOpen(subject));
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    Ok(ChaCha20Poly1305::new(key).decrypt(Nonce::from_slice(nonce), ciphertext).ok())
}

/// The keys in files of their own, in a directory.
#[derive(Debug, Clone)]
pub struct FileVault {
    dir: PathBuf,
}

impl FileVault {
    /// Opens the vault in `dir`, removing the copies of keys a crash left half-written (a
    /// key's temporary file outlives its erasure otherwise: crypto-shredding would not shred).
    pub fn open(dir: impl Into<PathBuf>) -> Result<FileVault, VaultError> {
        let dir = dir.into();
        disk::create_dir_all_durably(&dir).map_err(|error| io(&dir, error))?;
        let vault = FileVault { dir };
        vault.remove_temporaries(|_| true)?;
        Ok(vault)
    }

    /// Removes the temporary files (`*.tmp`) whose names `select` accepts, durably.
    fn remove_temporaries(&self, select: impl Fn(&str) -> bool) -> Result<(), VaultError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|error| io(&self.dir, error))?;
        let mut removed = false;
        for entry in entries {
            let entry = entry.map_err(|error| io(&self.dir, error))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(TEMPORARY_SUFFIX) && select(name) {
                std::fs::remove_file(entry.path()).map_err(|error| io(&entry.path(), error))?;
                removed = true;
            }
        }
        if removed { sync_dir(&self.dir) } else { Ok(()) }
    }

    /// Seals `plaintext` with `subject`'s key, creating the key if it has none.
    pub fn seal(&self, subject: Uuid, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        seal_with(subject, &self.key(subject, true)?.expect("created when missing"), plaintext)
    }

    /// Opens data sealed for `subject`, or `None` if its key was erased (or the data was
    /// sealed with an erased key and the subject has a new one).
    pub fn open_sealed(&self, subject: Uuid, sealed: &[u8]) -> Result<Option<Vec<u8>>, VaultError> {
        let Some(key) = self.key(subject, false)? else { return Ok(None) };
        open_with(subject, &key, sealed)
    }

    /// Deletes `subject`'s key, durably: what was sealed with it can never be opened again.
    pub fn erase(&self, subject: Uuid) -> Result<(), VaultError> {
        let prefix = format!("{subject}.key.");
        self.remove_temporaries(|name| name.starts_with(&prefix))?;
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
        // Written whole, then linked into place: a reader never sees a key file half written,
        // and of two concurrent creations the first wins.
        match disk::write_file_durably(&path, &key, KEY_FILE_MODE, disk::Existing::Keep) {
            Ok(()) => Ok(Some(key)),
            // Another call created it first: use that one.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => self.key(subject, false),
            Err(error) => Err(io(&path, error)),
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
        let vault = FileVault::open(dir.path()).expect("vault");
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

    #[test]
    fn a_key_s_temporary_copy_left_by_a_crash_does_not_outlive_the_vault_s_next_open() {
        let dir = tempfile::tempdir().expect("dir");
        let subject = Uuid::now_v7();
        let stale = dir.path().join(format!("{subject}.key.0199aa{TEMPORARY_SUFFIX}"));
        std::fs::write(&stale, [7_u8; KEY_BYTES]).expect("a stale copy");
        let other = dir.path().join("notes.txt");
        std::fs::write(&other, b"kept").expect("another file");
        let vault = FileVault::open(dir.path()).expect("vault");
        assert!(!stale.exists(), "the stale copy of the key is gone");
        assert!(other.exists(), "other files are kept");
        let sealed = vault.seal(subject, b"contact").expect("seal");
        std::fs::write(&stale, [7_u8; KEY_BYTES]).expect("a stale copy again");
        vault.erase(subject).expect("erase");
        assert!(!stale.exists(), "erasing a key removes its stale copies too");
        assert_eq!(vault.open_sealed(subject, &sealed).expect("open"), None);
    }
}
