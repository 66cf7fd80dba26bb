//! Snapshots kept as files in a directory, one per name: the position it reflects (8 bytes,
//! little-endian) then its body, written whole or not at all (a temporary file, synced, then
//! renamed). The embedded store keeps its snapshots so, beside its log; the EventStoreDB backend
//! keeps them so as a local cache of the process.

use std::path::{Path, PathBuf};

use crate::embedded::disk;
use crate::model::{Position, SNAPSHOT_BYTES_MAX, Snapshot, StoreError};

/// Snapshot files are private to the process's user.
const SNAPSHOT_FILE_MODE: u32 = 0o600;

/// The snapshot `name` of the directory `dir`, or `None` if there is none.
pub(crate) async fn load(dir: &Path, name: &str) -> Result<Option<Snapshot>, StoreError> {
    let path = dir.join(name);
    tokio::task::spawn_blocking(move || {
        let corrupted = |reason: &str| StoreError::Corrupted {
            file: path.display().to_string(),
            offset: 0,
            reason: reason.to_owned(),
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StoreError::io(&format!("reading {}", path.display()), error)),
        };
        if bytes.len() > 8 + SNAPSHOT_BYTES_MAX {
            return Err(corrupted(&format!("a snapshot larger than {SNAPSHOT_BYTES_MAX} bytes")));
        }
        let Some(position) = bytes.first_chunk::<8>().copied() else {
            return Err(corrupted("a snapshot shorter than its position"));
        };
        Ok(Some(Snapshot {
            position: Position::from_u64(u64::from_le_bytes(position)),
            body: bytes::Bytes::from(bytes).slice(8..),
        }))
    })
    .await
    .map_err(|error| StoreError::Io(format!("reading a snapshot: {error}")))?
}

/// Replaces the snapshot `name` of the directory `dir` (made if missing) with `snapshot`.
pub(crate) async fn save(dir: PathBuf, name: &str, snapshot: Snapshot) -> Result<(), StoreError> {
    let path = dir.join(name);
    tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::with_capacity(8 + snapshot.body.len());
        bytes.extend_from_slice(&snapshot.position.as_u64().to_le_bytes());
        bytes.extend_from_slice(&snapshot.body);
        disk::create_dir_all_durably(&dir)
            .and_then(|()| {
                disk::write_file_durably(&path, &bytes, SNAPSHOT_FILE_MODE, disk::Existing::Replace)
            })
            .map_err(|error| StoreError::io(&format!("writing {}", path.display()), error))
    })
    .await
    .map_err(|error| StoreError::Io(format!("writing a snapshot: {error}")))?
}

/// Removes the temporary files a crash left in `dir` in the middle of a save (each as large as
/// a snapshot). A directory that does not exist has none.
#[cfg(feature = "eventstoredb")]
pub(crate) fn remove_unfinished(dir: &Path) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(StoreError::io(&format!("listing {}", dir.display()), error)),
    };
    for entry in entries {
        let entry = entry.map_err(|error| StoreError::io(&format!("listing {}", dir.display()), error))?;
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(crate::embedded::TEMPORARY_SUFFIX) {
            tracing::info!(file = %entry.path().display(), "removing a snapshot a crash left unfinished");
            std::fs::remove_file(entry.path())
                .map_err(|error| StoreError::io(&format!("removing {}", entry.path().display()), error))?;
        }
    }
    Ok(())
}
