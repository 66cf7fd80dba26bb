//! Checkpoints: a few named positions, kept in the event store beside the log they follow
//! ([`EventStore::save_checkpoint`]: a row of the PostgreSQL database, a file of the embedded
//! store's directory), or, for a consumer of NATS, in a small text file.
//!
//! Either way a save replaces the old values atomically and durably: after a crash the
//! checkpoint holds the old values or the new ones, never a mix. A file is written beside the
//! checkpoint, synced, renamed over it, and the directory synced. The relay and the consumer
//! runner save in batches (every so many events or so much time), never per event.
//!
//! A checkpoint kept in a file by an earlier version is read once when the store has none,
//! and saved to the store from then on.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use symbiose_eventstore::embedded::disk;
use symbiose_eventstore::{EventStore, Position};

use crate::FeedError;

/// Largest checkpoint file read, in bytes: a few hundred named positions.
pub const CHECKPOINT_BYTES_MAX: u64 = 64 * 1024;
/// Most named positions in one checkpoint.
pub const CHECKPOINT_ENTRIES_MAX: usize = 1024;
/// The permission bits of a checkpoint file: read and written by its owner only.
const CHECKPOINT_FILE_MODE: u32 = 0o600;
/// The first line of every checkpoint file.
const HEADER: &str = "# symbiose checkpoint v1";

/// Named positions (`next_position`, `acked.listings`), as last saved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub values: BTreeMap<String, u64>,
}

impl Checkpoint {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values.get(name).copied()
    }

    /// The position saved under `name`, or the start of the log.
    pub fn position(&self, name: &str) -> Position {
        self.get(name).map_or(Position::START, Position::from_u64)
    }

    pub fn set(&mut self, name: impl Into<String>, value: u64) {
        self.values.insert(name.into(), value);
    }

    /// Reads the checkpoint at `path`; an absent file is an empty checkpoint (start from the
    /// beginning). A file that does not parse is an error naming it: starting over silently
    /// could replay a whole log.
    pub fn load(path: &Path) -> Result<Checkpoint, FeedError> {
        let corrupt = |reason: String| FeedError::Checkpoint { path: path.to_owned(), reason };
        let metadata = match fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Checkpoint::default()),
            Err(error) => return Err(corrupt(error.to_string())),
        };
        if metadata.len() > CHECKPOINT_BYTES_MAX {
            return Err(corrupt(format!("larger than {CHECKPOINT_BYTES_MAX} bytes")));
        }
        let text = fs::read_to_string(path).map_err(|error| corrupt(error.to_string()))?;
        Checkpoint::parse(&text, corrupt)
    }

    /// The checkpoint in `text` (the file format), or what `corrupt` makes of the reason.
    fn parse(text: &str, corrupt: impl Fn(String) -> FeedError) -> Result<Checkpoint, FeedError> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(corrupt(format!("does not start with {HEADER:?}")));
        }
        let mut checkpoint = Checkpoint::default();
        for line in lines.filter(|line| !line.trim().is_empty()) {
            let (name, value) = line.split_once('=').ok_or_else(|| corrupt(format!("bad line {line:?}")))?;
            let value = value.trim().parse().map_err(|_| corrupt(format!("bad number in {line:?}")))?;
            if checkpoint.values.len() == CHECKPOINT_ENTRIES_MAX {
                return Err(corrupt(format!("more than {CHECKPOINT_ENTRIES_MAX} entries")));
            }
            checkpoint.set(name.trim(), value);
        }
        Ok(checkpoint)
    }

    /// The checkpoint `name` kept in `store`; if the store has none, the one an earlier version
    /// kept in the file `legacy` (absent: an empty checkpoint, the start of the log).
    pub async fn load_from<S: EventStore>(
        store: &S,
        name: &str,
        legacy: &Path,
    ) -> Result<Checkpoint, FeedError> {
        let corrupt =
            |reason: String| FeedError::Checkpoint { path: PathBuf::from(format!("store:{name}")), reason };
        match store.load_checkpoint(name).await.map_err(|error| corrupt(error.to_string()))? {
            Some(bytes) => {
                let text = std::str::from_utf8(&bytes).map_err(|_| corrupt("is not UTF-8".to_owned()))?;
                Checkpoint::parse(text, corrupt)
            }
            None => {
                let legacy = legacy.to_owned();
                tokio::task::spawn_blocking(move || Checkpoint::load(&legacy))
                    .await
                    .map_err(|error| FeedError::Internal(format!("loading a checkpoint: {error}")))?
            }
        }
    }

    /// Replaces the checkpoint `name` in `store` with these values, durably.
    pub async fn save_to<S: EventStore>(&self, store: &S, name: &str) -> Result<(), FeedError> {
        store.save_checkpoint(name, Bytes::from(self.text())).await.map_err(|error| FeedError::Checkpoint {
            path: PathBuf::from(format!("store:{name}")),
            reason: error.to_string(),
        })
    }

    /// The file format: the header, then `name=value` lines.
    fn text(&self) -> String {
        assert!(self.values.len() <= CHECKPOINT_ENTRIES_MAX, "a checkpoint holds a few positions");
        let mut text = String::from(HEADER);
        text.push('\n');
        for (name, value) in &self.values {
            assert!(!name.contains(['=', '\n']), "checkpoint names are plain words");
            text.push_str(&format!("{name}={value}\n"));
        }
        text
    }

    /// Replaces the file at `path` with these values, durably (see the module's note). Blocks:
    /// call it from `spawn_blocking` in async code, or use [`Checkpoint::save_async`].
    pub fn save(&self, path: &Path) -> Result<(), FeedError> {
        let failed = |error: std::io::Error| FeedError::Checkpoint {
            path: path.to_owned(),
            reason: error.to_string(),
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        disk::create_dir_all_durably(&dir).map_err(failed)?;
        let text = self.text();
        disk::write_file_durably(path, text.as_bytes(), CHECKPOINT_FILE_MODE, disk::Existing::Replace)
            .map_err(failed)
    }

    /// [`Checkpoint::save`] on the blocking pool.
    pub async fn save_async(&self, path: &Path) -> Result<(), FeedError> {
        let (checkpoint, path) = (self.clone(), path.to_owned());
        tokio::task::spawn_blocking(move || checkpoint.save(&path))
            .await
            .map_err(|error| FeedError::Internal(format!("saving a checkpoint: {error}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_checkpoint_loads_back_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("relay.checkpoint");
        assert_eq!(Checkpoint::load(&path).expect("absent"), Checkpoint::default());

        let mut checkpoint = Checkpoint::default();
        checkpoint.set("next_position", 1234);
        checkpoint.set("acked.listings", 1200);
        checkpoint.save(&path).expect("saved");
        assert_eq!(Checkpoint::load(&path).expect("loaded"), checkpoint);

        checkpoint.set("next_position", 1300);
        checkpoint.save(&path).expect("saved again");
        assert_eq!(Checkpoint::load(&path).expect("loaded").get("next_position"), Some(1300));
        let leftovers = fs::read_dir(dir.path()).expect("listing").count();
        assert_eq!(leftovers, 1, "only the checkpoint remains, no temporary file");
    }

    #[tokio::test]
    async fn a_checkpoint_lives_in_the_store_and_an_older_file_is_read_once() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (store, _) =
            symbiose_eventstore::embedded::EmbeddedStore::open(dir.path().join("events"), Default::default())
                .expect("open");
        let legacy = dir.path().join("relay.checkpoint");
        let mut older = Checkpoint::default();
        older.set("next_position", 7);
        older.save(&legacy).expect("an older version's file");
        let loaded = Checkpoint::load_from(&store, "relay", &legacy).await.expect("load");
        assert_eq!(loaded, older, "the store has none yet: the file is read");

        let mut newer = Checkpoint::default();
        newer.set("next_position", 12);
        newer.set("acked.listings", 11);
        newer.save_to(&store, "relay").await.expect("save");
        assert_eq!(
            Checkpoint::load_from(&store, "relay", &legacy).await.expect("load"),
            newer,
            "the store's, not the file's"
        );
        assert_eq!(Checkpoint::load(&legacy).expect("the file"), older, "the file is left as it was");
        store.close().await;
    }

    #[test]
    fn a_damaged_checkpoint_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("relay.checkpoint");
        for text in [
            "next_position=1\n",
            "# symbiose checkpoint v1\nnext_position=x\n",
            "# symbiose checkpoint v1\nnope\n",
        ] {
            fs::write(&path, text).expect("written");
            let error = Checkpoint::load(&path).expect_err(text);
            assert!(error.to_string().contains("relay.checkpoint"), "{error}");
        }
    }
}
