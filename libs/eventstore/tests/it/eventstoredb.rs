//! The EventStoreDB store (feature `eventstoredb`) on the server `SYMBIOSE_EVENTSTORE_CONNECTION_STRING`
//! names: the shared contract, each check on a store in a namespace of its own (a fresh
//! uuid), so the runs never see each other's streams and a server can be reused. No
//! EventStoreDB server can be installed on this machine (it is not in the package registries
//! it reaches), so where the variable is unset the test says so and passes.

#![cfg(feature = "eventstoredb")]

use std::time::Instant;

use symbiose_eventstore::eventstoredb::{EventStoreDbOptions, EventStoreDbStore};
use uuid::Uuid;

/// The variable that names the server, as the configuration names it.
const CONNECTION_STRING: &str = "SYMBIOSE_EVENTSTORE_CONNECTION_STRING";

fn connection_string_or_skip(test: &str) -> Option<String> {
    match std::env::var(CONNECTION_STRING) {
        Ok(value) if !value.trim().is_empty() => Some(value),
        _ => {
            println!(
                "{test}: skipped: {CONNECTION_STRING} is not set (no EventStoreDB server can be installed on \
                 this machine)"
            );
            None
        }
    }
}

async fn fresh_store(connection_string: &str) -> EventStoreDbStore {
    let options =
        EventStoreDbOptions { namespace: format!("test-{}.", Uuid::now_v7().simple()), snapshot_dir: None };
    EventStoreDbStore::connect_with(connection_string, options).await.expect("connect to eventstoredb")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_eventstoredb_store_passes_the_contract() {
    let test = "the_eventstoredb_store_passes_the_contract";
    let Some(connection_string) = connection_string_or_skip(test) else { return };
    let connection_string = &connection_string;
    let started = Instant::now();
    symbiose_eventstore::contract::run_all(|| async move { fresh_store(connection_string).await }).await;
    println!("{test}: the contract suite took {:?}", started.elapsed());
}

/// A process of its own on the server: a store with its own view of the leases.
struct Replica {
    store: EventStoreDbStore,
    holder: &'static str,
}

impl crate::lease_log::Contender for Replica {
    async fn acquire(&self, name: &str, ttl: std::time::Duration) -> Option<u64> {
        use symbiose_eventstore::EventStore as _;
        self.store.acquire_lease(name, self.holder, ttl).await.expect("acquire a lease")
    }

    async fn release(&self, name: &str) {
        use symbiose_eventstore::EventStore as _;
        self.store.release_lease(name, self.holder).await.expect("release a lease");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_on_eventstoredb_share_a_lease_one_holder_at_a_time() {
    let test = "replicas_on_eventstoredb_share_a_lease_one_holder_at_a_time";
    let Some(connection_string) = connection_string_or_skip(test) else { return };
    let namespace = format!("test-{}.", Uuid::now_v7().simple());
    let replica = |holder| {
        let (connection_string, namespace) = (connection_string.clone(), namespace.clone());
        async move {
            let options = EventStoreDbOptions { namespace, snapshot_dir: None };
            let store = EventStoreDbStore::connect_with(&connection_string, options).await.expect("connect");
            Replica { store, holder }
        }
    };
    let (a, b, c) = (replica("a").await, replica("b").await, replica("c").await);
    let takeover = crate::lease_log::contest(&a, &b, &c).await;
    println!("{test}: the lease moved {takeover:?} after its holder's last renewal (TTL 600 ms)");
    // The lease streams are the backend's own: not in the log its readers see.
    use symbiose_eventstore::EventStore as _;
    let events = a.store.read_all(symbiose_eventstore::Position::START, 1_000).await.expect("read all");
    assert!(events.is_empty(), "lease records in the log: {events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshots_on_eventstoredb_are_a_cache_in_a_directory_of_the_process() {
    use symbiose_eventstore::{EventStore as _, Position, Snapshot};
    let test = "snapshots_on_eventstoredb_are_a_cache_in_a_directory_of_the_process";
    let Some(connection_string) = connection_string_or_skip(test) else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let namespace = format!("test-{}.", Uuid::now_v7().simple());
    let options = EventStoreDbOptions {
        namespace: namespace.clone(),
        snapshot_dir: Some(dir.path().join("snapshots")),
    };
    let store = EventStoreDbStore::connect_with(&connection_string, options).await.expect("connect");
    assert!(store.keeps_snapshots());
    let snapshot =
        Snapshot { position: Position::from_u64(41), body: bytes::Bytes::from_static(b"the view") };
    store.save_snapshot("listings.view", snapshot.clone()).await.expect("save");
    assert_eq!(store.load_snapshot("listings.view").await.expect("load"), Some(snapshot));
    assert!(dir.path().join("snapshots").join("listings.view").is_file());
    let without = EventStoreDbStore::connect_with(
        &connection_string,
        EventStoreDbOptions { namespace, snapshot_dir: None },
    )
    .await
    .expect("connect");
    assert!(!without.keeps_snapshots());
    assert_eq!(without.load_snapshot("listings.view").await.expect("load"), None);
}
