//! `symbiose store backup` and `symbiose store restore`: a consistent copy of a service's data
//! directory on the embedded store, taken while the service runs, and its return into an empty
//! data directory.
//!
//! The embedded log is append-only and every record is checksummed, so a copy of its segment
//! files, in order, each as long as it was when the copy read it, holds a prefix of the log:
//! opened, the copy ends at its last whole record (the store acknowledges an append only once
//! it is synced, so every append acknowledged before the backup started is in it). What refers
//! to positions of the log is copied before it (the relay's and the reactors' checkpoints, the
//! views' snapshots), so none refers to an event the copy lacks; what the log refers to is
//! copied after it (the vault's keys, which the sealed contacts of the copied events need, and
//! the signing key). The backup's `manifest.json` names the position it ends at, its number of
//! events and their SHA-256 digest (as `store copy` digests a log); `restore` copies it back,
//! opens the log and checks the digest.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};
use symbiose_eventstore::copy::digest_log;
use symbiose_eventstore::embedded::{self, EmbeddedStore};

use crate::EVENTS_DIR;

/// The name of the backup's description, in its directory.
pub const MANIFEST: &str = "manifest.json";
/// The format of [`MANIFEST`].
const MANIFEST_FORMAT: &str = "symbiose-backup/1";
/// Directories of the event log that refer to its positions: copied before it.
const BEFORE_THE_LOG: [&str; 2] = ["checkpoints", "snapshots"];
/// Directories of the data directory that refer to positions of the log: copied before it.
const FEED_DIR: &str = "feed";
/// What is never copied: the lock of the running store, the files a write in progress makes.
const NEVER_COPIED_SUFFIXES: [&str; 1] = [".tmp"];
const LOCK_FILE: &str = "LOCK";

/// What a backup holds, as `manifest.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// When the backup was taken, in seconds since the Unix epoch.
    pub taken_at_unix_s: u64,
    /// The log's events in the backup: positions 0 to `events - 1`.
    pub events: u64,
    /// Their SHA-256 digest, in hexadecimal, as `store copy` prints it.
    pub sha256: String,
    /// Every file of the backup but the manifest, relative to its directory, with its size.
    pub files: Vec<(String, u64)>,
}

/// Backs up the data directory `data_dir` into `to` (made; refused if it holds anything).
pub async fn backup(data_dir: &Path, to: &Path) -> Result<Manifest, String> {
    let started = Instant::now();
    let events = data_dir.join(EVENTS_DIR);
    if !events.join(segment_name(0)).is_file() {
        return Err(format!("{}: no event log there", events.display()));
    }
    if to.exists() && fs::read_dir(to).map_err(|error| io_error(to, &error))?.next().is_some() {
        return Err(format!("{}: not empty; a backup goes into a new directory", to.display()));
    }
    let absolute = |path: &Path| std::path::absolute(path).map_err(|error| io_error(path, &error));
    if absolute(to)?.starts_with(absolute(data_dir)?) {
        return Err(format!(
            "{}: inside the data directory {}; put the backup elsewhere",
            to.display(),
            data_dir.display()
        ));
    }
    // It holds the signing key and the vault's keys: for its owner only.
    {
        use std::os::unix::fs::DirBuilderExt as _;
        fs::DirBuilder::new().recursive(true).mode(0o700).create(to).map_err(|error| io_error(to, &error))?;
    }
    let mut files = Vec::new();
    // 1. What refers to positions of the log, before the log.
    for dir in BEFORE_THE_LOG {
        copy_tree(&events.join(dir), &to.join(EVENTS_DIR).join(dir), to, &mut files)?;
    }
    copy_tree(&data_dir.join(FEED_DIR), &to.join(FEED_DIR), to, &mut files)?;
    // 2. The log: each segment (and a sealed one's index) as long as it is now.
    let mut segments: Vec<String> =
        list(&events)?.into_iter().filter(|name| name.ends_with(".seg") || name.ends_with(".idx")).collect();
    segments.sort();
    for name in &segments {
        copy_file(&events.join(name), &to.join(EVENTS_DIR).join(name), to, &mut files)?;
    }
    // 3. What the log refers to: the vault's keys, the signing key, the rest.
    for name in list(data_dir)? {
        if name == EVENTS_DIR || name == FEED_DIR {
            continue;
        }
        let from = data_dir.join(&name);
        if from.is_dir() {
            copy_tree(&from, &to.join(&name), to, &mut files)?;
        } else {
            copy_file(&from, &to.join(&name), to, &mut files)?;
        }
    }
    // The copy, opened, ends at its last whole record; its digest is the backup's.
    let digest = digest_of(&to.join(EVENTS_DIR)).await?;
    // Opening the copy may have cut a torn last record: the sizes are read after.
    for (name, size) in &mut files {
        *size = fs::metadata(to.join(&*name)).map(|metadata| metadata.len()).unwrap_or(*size);
    }
    files.retain(|(name, _)| to.join(name).exists());
    let manifest = Manifest {
        format: MANIFEST_FORMAT.to_owned(),
        taken_at_unix_s: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |time| time.as_secs()),
        events: digest.0,
        sha256: digest.1,
        files,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|error| error.to_string())?;
    embedded::disk::write_file_durably(&to.join(MANIFEST), &text, 0o600, embedded::disk::Existing::Keep)
        .map_err(|error| io_error(&to.join(MANIFEST), &error))?;
    println!(
        "backed up {} into {}: {} events, sha256 {}, {} files, in {:.1} s",
        data_dir.display(),
        to.display(),
        manifest.events,
        manifest.sha256,
        manifest.files.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(manifest)
}

/// Restores the backup in `from` into the data directory `data_dir`, which must hold no event
/// log and no vault (a signing key mounted there, the same as the backup's, is left as it is).
/// `Ok(true)` when the restored log's digest is the manifest's.
pub async fn restore(from: &Path, data_dir: &Path) -> Result<bool, String> {
    let text = fs::read(from.join(MANIFEST)).map_err(|error| io_error(&from.join(MANIFEST), &error))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|error| format!("{}: not a backup's manifest: {error}", from.join(MANIFEST).display()))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(format!(
            "{}: format {:?}, expected {MANIFEST_FORMAT:?}",
            from.display(),
            manifest.format
        ));
    }
    for busy in [EVENTS_DIR, "vault"] {
        let dir = data_dir.join(busy);
        if dir.exists() && fs::read_dir(&dir).map_err(|error| io_error(&dir, &error))?.next().is_some() {
            return Err(format!(
                "{}: not empty; a backup is restored into a data directory with no log and no vault",
                dir.display()
            ));
        }
    }
    let mut restored = Vec::new();
    for (name, size) in &manifest.files {
        let relative = Path::new(name);
        if relative.is_absolute()
            || relative.components().any(|part| matches!(part, std::path::Component::ParentDir))
        {
            return Err(format!("{MANIFEST}: the file {name:?} is outside the backup"));
        }
        let (source, target) = (from.join(relative), data_dir.join(relative));
        let found = fs::metadata(&source).map_err(|error| io_error(&source, &error))?.len();
        if found != *size {
            return Err(format!("{}: {found} bytes, the manifest says {size}", source.display()));
        }
        if target.exists() {
            // A key mounted from a Secret: it must be the backup's.
            let (there, backed_up) = (fs::read(&target), fs::read(&source));
            if there.is_err() || backed_up.is_err() || there.ok() != backed_up.ok() {
                return Err(format!("{}: already there, and not the backup's", target.display()));
            }
            continue;
        }
        copy_file(&source, &target, data_dir, &mut restored)?;
    }
    let digest = digest_of(&data_dir.join(EVENTS_DIR)).await?;
    let equal = digest == (manifest.events, manifest.sha256.clone());
    println!(
        "restored {} into {}: {} events, sha256 {} ({})",
        from.display(),
        data_dir.display(),
        digest.0,
        digest.1,
        if equal { "the backup's" } else { "NOT the backup's" }
    );
    Ok(equal)
}

/// The number of events of the embedded log in `dir` and their digest, in hexadecimal.
async fn digest_of(dir: &Path) -> Result<(u64, String), String> {
    let opened_dir = dir.to_owned();
    let (store, _) =
        tokio::task::spawn_blocking(move || EmbeddedStore::open(&opened_dir, embedded::Options::default()))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| format!("{}: {error}", dir.display()))?;
    let digest = digest_log(&store, |_| {}).await.map_err(|error| format!("{}: {error}", dir.display()));
    store.close().await;
    let digest = digest?;
    let hex = digest.sha256.iter().map(|byte| format!("{byte:02x}")).collect::<String>();
    Ok((digest.events, hex))
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}

fn list(dir: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|error| io_error(dir, &error))? {
        let entry = entry.map_err(|error| io_error(dir, &error))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != LOCK_FILE && !NEVER_COPIED_SUFFIXES.iter().any(|suffix| name.ends_with(suffix)) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Copies the directory `from` (if it exists) into `to`, file by file.
fn copy_tree(from: &Path, to: &Path, root: &Path, files: &mut Vec<(String, u64)>) -> Result<(), String> {
    if !from.is_dir() {
        return Ok(());
    }
    for name in list(from)? {
        let path = from.join(&name);
        if path.is_dir() {
            copy_tree(&path, &to.join(&name), root, files)?;
        } else {
            copy_file(&path, &to.join(&name), root, files)?;
        }
    }
    Ok(())
}

/// Copies `from` to `to` (its directory made), as many bytes as `from` has now (a segment the
/// service appends to goes on growing), with `from`'s permission bits, synced; records it in
/// `files` relative to `root`.
fn copy_file(from: &Path, to: &Path, root: &Path, files: &mut Vec<(String, u64)>) -> Result<(), String> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut source = match fs::File::open(from) {
        Ok(source) => source,
        // Removed meanwhile (a snapshot replaced, a key erased): nothing to copy.
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error(from, &error)),
    };
    let metadata = source.metadata().map_err(|error| io_error(from, &error))?;
    let length = metadata.len();
    let dir = to.parent().unwrap_or(root);
    embedded::disk::create_dir_all_durably(dir).map_err(|error| io_error(dir, &error))?;
    let mut target = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(metadata.permissions().mode() & 0o777)
        .open(to)
        .map_err(|error| io_error(to, &error))?;
    let mut remaining = length;
    let mut buffer = vec![0; 1 << 20];
    while remaining > 0 {
        let want = remaining.min(buffer.len() as u64) as usize;
        let read = source.read(&mut buffer[..want]).map_err(|error| io_error(from, &error))?;
        if read == 0 {
            break;
        }
        target.write_all(&buffer[..read]).map_err(|error| io_error(to, &error))?;
        remaining -= read as u64;
    }
    target.sync_all().map_err(|error| io_error(to, &error))?;
    fs::File::open(dir).and_then(|dir| dir.sync_all()).map_err(|error| io_error(dir, &error))?;
    let relative = to.strip_prefix(root).unwrap_or(to).display().to_string();
    files.push((relative, length - remaining));
    Ok(())
}

fn io_error(path: &Path, error: &io::Error) -> String {
    format!("{}: {error}", path.display())
}
