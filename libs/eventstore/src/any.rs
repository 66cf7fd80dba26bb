//! The store a server holds when its configuration chooses the backend: one of the backends,
//! behind the same [`EventStore`] interface.
//!
//! An enum rather than a boxed trait object: [`EventStore`]'s methods return `impl Future`, so
//! the trait is not object safe, and a match per call costs nothing beside the call itself.
//! Code that takes a store stays generic (`S: EventStore`); only a server that opens the store
//! its configuration names holds an [`AnyStore`].

use crate::embedded::EmbeddedStore;
#[cfg(feature = "eventstoredb")]
use crate::eventstoredb::EventStoreDbStore;
use crate::postgres::PostgresStore;
use crate::{
    Append, AppendResult, Direction, EventData, EventStore, ExpectedVersion, Position, RecordedEvent,
    Snapshot, StoreError, StreamInfo, StreamName,
};

/// One of the backends. Cloning clones the handle, as each backend's does.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// The log on local disk.
    Embedded(EmbeddedStore),
    /// The log in a PostgreSQL database.
    Postgres(PostgresStore),
    /// The log in EventStoreDB (built with the feature `eventstoredb`).
    #[cfg(feature = "eventstoredb")]
    EventStoreDb(EventStoreDbStore),
}

impl AnyStore {
    /// Closes the backend: the embedded store writes what is queued and releases its
    /// directory; the PostgreSQL store writes what is queued and closes its connections.
    pub async fn close(self) {
        match self {
            AnyStore::Embedded(store) => store.close().await,
            AnyStore::Postgres(store) => store.close().await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.close().await,
        }
    }

    /// The backend's name, for the logs: `embedded`, `postgres` or `eventstoredb`.
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Embedded(_) => "embedded",
            AnyStore::Postgres(_) => "postgres",
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(_) => "eventstoredb",
        }
    }
}

impl From<EmbeddedStore> for AnyStore {
    fn from(store: EmbeddedStore) -> AnyStore {
        AnyStore::Embedded(store)
    }
}

impl From<PostgresStore> for AnyStore {
    fn from(store: PostgresStore) -> AnyStore {
        AnyStore::Postgres(store)
    }
}

#[cfg(feature = "eventstoredb")]
impl From<EventStoreDbStore> for AnyStore {
    fn from(store: EventStoreDbStore) -> AnyStore {
        AnyStore::EventStoreDb(store)
    }
}

impl EventStore for AnyStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError> {
        match self {
            AnyStore::Embedded(store) => store.append(stream, expected, events).await,
            AnyStore::Postgres(store) => store.append(stream, expected, events).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.append(stream, expected, events).await,
        }
    }

    async fn append_many(&self, appends: Vec<Append>) -> Vec<Result<AppendResult, StoreError>> {
        match self {
            AnyStore::Embedded(store) => store.append_many(appends).await,
            AnyStore::Postgres(store) => store.append_many(appends).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.append_many(appends).await,
        }
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_version: u64,
        direction: Direction,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match self {
            AnyStore::Embedded(store) => store.read_stream(stream, from_version, direction, max_count).await,
            AnyStore::Postgres(store) => store.read_stream(stream, from_version, direction, max_count).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => {
                store.read_stream(stream, from_version, direction, max_count).await
            }
        }
    }

    async fn read_all(
        &self,
        from_position: Position,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match self {
            AnyStore::Embedded(store) => store.read_all(from_position, max_count).await,
            AnyStore::Postgres(store) => store.read_all(from_position, max_count).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.read_all(from_position, max_count).await,
        }
    }

    fn head(&self) -> Position {
        match self {
            AnyStore::Embedded(store) => store.head(),
            AnyStore::Postgres(store) => store.head(),
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.head(),
        }
    }

    async fn wait_for_head(&self, position: Position) -> Result<Position, StoreError> {
        match self {
            AnyStore::Embedded(store) => store.wait_for_head(position).await,
            AnyStore::Postgres(store) => store.wait_for_head(position).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.wait_for_head(position).await,
        }
    }

    async fn stream_info(&self, stream: &StreamName) -> Result<Option<StreamInfo>, StoreError> {
        match self {
            AnyStore::Embedded(store) => store.stream_info(stream).await,
            AnyStore::Postgres(store) => store.stream_info(stream).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.stream_info(stream).await,
        }
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<bytes::Bytes>, StoreError> {
        match self {
            AnyStore::Embedded(store) => store.load_checkpoint(name).await,
            AnyStore::Postgres(store) => store.load_checkpoint(name).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.load_checkpoint(name).await,
        }
    }

    async fn save_checkpoint(&self, name: &str, value: bytes::Bytes) -> Result<(), StoreError> {
        match self {
            AnyStore::Embedded(store) => store.save_checkpoint(name, value).await,
            AnyStore::Postgres(store) => store.save_checkpoint(name, value).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.save_checkpoint(name, value).await,
        }
    }

    async fn delete_stream(&self, stream: &StreamName, expected: ExpectedVersion) -> Result<(), StoreError> {
        match self {
            AnyStore::Embedded(store) => store.delete_stream(stream, expected).await,
            AnyStore::Postgres(store) => store.delete_stream(stream, expected).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.delete_stream(stream, expected).await,
        }
    }

    fn keeps_snapshots(&self) -> bool {
        match self {
            AnyStore::Embedded(store) => store.keeps_snapshots(),
            AnyStore::Postgres(store) => store.keeps_snapshots(),
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.keeps_snapshots(),
        }
    }

    async fn load_snapshot(&self, name: &str) -> Result<Option<Snapshot>, StoreError> {
        match self {
            AnyStore::Embedded(store) => store.load_snapshot(name).await,
            AnyStore::Postgres(store) => store.load_snapshot(name).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.load_snapshot(name).await,
        }
    }

    async fn save_snapshot(&self, name: &str, snapshot: Snapshot) -> Result<(), StoreError> {
        match self {
            AnyStore::Embedded(store) => store.save_snapshot(name, snapshot).await,
            AnyStore::Postgres(store) => store.save_snapshot(name, snapshot).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.save_snapshot(name, snapshot).await,
        }
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<u64>, StoreError> {
        match self {
            AnyStore::Embedded(store) => store.acquire_lease(name, holder, ttl).await,
            AnyStore::Postgres(store) => store.acquire_lease(name, holder, ttl).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.acquire_lease(name, holder, ttl).await,
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        match self {
            AnyStore::Embedded(store) => store.release_lease(name, holder).await,
            AnyStore::Postgres(store) => store.release_lease(name, holder).await,
            #[cfg(feature = "eventstoredb")]
            AnyStore::EventStoreDb(store) => store.release_lease(name, holder).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::Options;

    /// The contract suite through the enum, on the embedded arm: every method reaches the
    /// backend (the PostgreSQL arm is the same match).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_embedded_arm_passes_the_contract() {
        let dirs = std::sync::Mutex::new(Vec::new());
        let new_store = || {
            let dir = tempfile::tempdir().expect("a directory");
            let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("open");
            dirs.lock().expect("lock").push(dir);
            let store = AnyStore::from(store);
            assert_eq!(store.backend(), "embedded");
            async move { store }
        };
        crate::contract::run_all(&new_store).await;
        crate::contract::run_gapless(&new_store).await;
    }
}
