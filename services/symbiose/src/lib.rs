//! The standalone Symbiose server: every service in one process, on one gRPC port, with its
//! data under one directory (the embedded event store in `<data dir>/events`). It is what
//! `cargo run --release` starts, and what the black-box tests start on free ports.
//!
//! It only composes the services: it holds no business rule of its own.

pub mod cli;

use std::future::Future;

use anyhow::Context as _;
use symbiose_eventstore::embedded::{self, EmbeddedStore};
use symbiose_kit::{Listeners, ServerConfig, ServiceSet};

/// The directory of the event store under the data directory.
pub const EVENTS_DIR: &str = "events";

/// A standalone server with its store open and its ports bound, ready to serve.
#[derive(Debug)]
pub struct Standalone {
    config: ServerConfig,
    listeners: Listeners,
    store: EmbeddedStore,
}

impl Standalone {
    /// Opens the event store (recovering it if the last run crashed) and takes the ports.
    /// Fails if another process holds the data directory.
    pub async fn build(config: ServerConfig, listeners: Listeners) -> anyhow::Result<Standalone> {
        let events_dir = config.data_dir.join(EVENTS_DIR);
        let (store, report) = tokio::task::spawn_blocking(move || {
            EmbeddedStore::open(&events_dir, embedded::Options::default())
                .with_context(|| format!("opening the event store in {}", events_dir.display()))
        })
        .await
        .context("opening the event store")??;
        tracing::info!(
            data_dir = %config.data_dir.display(),
            events = report.events,
            segments = report.segments,
            "standalone server starting"
        );
        Ok(Standalone { config, listeners, store })
    }

    pub fn store(&self) -> &EmbeddedStore {
        &self.store
    }

    /// Serves every service until `shutdown` completes, then closes the store.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Standalone { config, listeners, store } = self;
        let mut services = ServiceSet::new();
        services.add(symbiose_reference::service(&config));
        let served = symbiose_kit::server::serve(&config, services, listeners, shutdown).await;
        store.close().await;
        served
    }
}

/// Builds and runs the standalone server until `shutdown` completes.
pub async fn run(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Standalone::build(config, listeners).await?.run(shutdown).await
}
