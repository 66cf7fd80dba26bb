//! Tests of the embedded store: the shared contract, recovery from torn and corrupted logs,
//! flipped bits everywhere in a record, the operator's verify and repair, and crashes of a
//! real writing process.

mod contract;
mod crash;
mod damage;
mod offline;
mod recovery;

use symbiose_eventstore::embedded::{EmbeddedStore, Options};

/// A store in a fresh directory that lives as long as the returned guard.
pub(crate) fn open_fresh(options: Options) -> (EmbeddedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (store, _) = EmbeddedStore::open(dir.path(), options).expect("open a fresh store");
    (store, dir)
}
