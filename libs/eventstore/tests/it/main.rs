//! Tests of the embedded store: the shared contract, recovery from torn and corrupted logs,
//! flipped bits everywhere in a record, the operator's verify and repair, crashes of a real
//! writing process, and power lost under the store, on a simulated disk and on a FUSE file
//! system that forgets what was not synced. `postgres`: the PostgreSQL store (the contract, the
//! ordering race, clients killed mid-append), on the server at 127.0.0.1:5432.
//! `postgres_restart`: a private PostgreSQL cluster crashed and restarted under sixteen
//! writers, nothing acknowledged lost. `copy`: a log copied between backends, resumed and
//! verified.

mod contract;
mod copy;
mod crash;
mod damage;
mod eventstoredb;
mod fuse;
mod lease_log;
mod offline;
mod postgres;
mod postgres_restart;
mod power_loss;
mod recovery;
mod sim_disk;

use symbiose_eventstore::embedded::{EmbeddedStore, Options};

/// A store in a fresh directory that lives as long as the returned guard.
pub(crate) fn open_fresh(options: Options) -> (EmbeddedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (store, _) = EmbeddedStore::open(dir.path(), options).expect("open a fresh store");
    (store, dir)
}

/// The whole log, read from the first position in pages.
pub(crate) async fn read_whole_log(store: &EmbeddedStore) -> Vec<symbiose_eventstore::RecordedEvent> {
    use symbiose_eventstore::EventStore as _;
    let mut all = Vec::new();
    loop {
        let page = store
            .read_all(symbiose_eventstore::Position::from_u64(all.len() as u64), 10_000)
            .await
            .expect("read all");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}
