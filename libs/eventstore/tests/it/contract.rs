//! The contract suite on the embedded store, with default segments and with tiny ones (so
//! reads and appends cross segment files all the time).

use std::sync::Mutex;

use symbiose_eventstore::embedded::Options;

use crate::open_fresh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_passes_the_contract() {
    let dirs = Mutex::new(Vec::new());
    symbiose_eventstore::contract::run_all(|| {
        let (store, dir) = open_fresh(Options::default());
        dirs.lock().expect("lock").push(dir);
        async move { store }
    })
    .await;
    symbiose_eventstore::contract::run_gapless(|| {
        let (store, dir) = open_fresh(Options::default());
        dirs.lock().expect("lock").push(dir);
        async move { store }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_passes_the_contract_across_many_segments() {
    let dirs = Mutex::new(Vec::new());
    symbiose_eventstore::contract::run_all(|| {
        let (store, dir) = open_fresh(Options { segment_bytes_max: 4096, ..Options::default() });
        dirs.lock().expect("lock").push(dir);
        async move { store }
    })
    .await;
    symbiose_eventstore::contract::run_gapless(|| {
        let (store, dir) = open_fresh(Options { segment_bytes_max: 4096, ..Options::default() });
        dirs.lock().expect("lock").push(dir);
        async move { store }
    })
    .await;
}
