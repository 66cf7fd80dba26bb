//! Tests of the embedded store: the shared contract, recovery from torn and corrupted logs,
//! and crashes of a real writing process.

mod contract;
mod crash;
mod recovery;

use symbiose_eventstore::embedded::{EmbeddedStore, Options};

/// A store in a fresh directory that lives as long as the returned guard.
pub(crate) fn open_fresh(options: Options) -> (EmbeddedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (store, _) = EmbeddedStore::open(dir.path(), options).expect("open a fresh store");
    (store, dir)
}
