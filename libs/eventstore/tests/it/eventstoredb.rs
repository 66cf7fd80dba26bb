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
    let options = EventStoreDbOptions { namespace: format!("test-{}.", Uuid::now_v7().simple()) };
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
