//! The standalone Symbiose server: every service in one process, on one gRPC port, with its
//! data under one directory: the embedded event store in `events/`, the token signing key in
//! `keys/`, the keys of personal data in `vault/`, and the operator's token in
//! `operator.token`. It is what `cargo run --release` starts, and what the black-box tests
//! start on free ports.
//!
//! It only composes the services: it holds no business rule of its own.

pub mod cli;

use std::future::Future;
use std::path::Path;

use anyhow::Context as _;
use symbiose_eventstore::embedded::{self, EmbeddedStore};
use symbiose_kit::auth::Security;
use symbiose_kit::{Listeners, ServerConfig, ServiceSet};
use tonic::service::interceptor::InterceptedService;

/// The directory of the event store under the data directory.
pub const EVENTS_DIR: &str = symbiose_listings::EVENTS_DIR;

/// A standalone server with its store open, its keys loaded and its ports bound, ready to
/// serve.
#[derive(Debug)]
pub struct Standalone {
    config: ServerConfig,
    listeners: Listeners,
    store: EmbeddedStore,
    security: Security,
}

impl Standalone {
    /// Opens the event store (recovering it if the last run crashed), loads or creates the
    /// signing key and the operator token, and takes the ports. Fails if another process
    /// holds the data directory.
    pub async fn build(config: ServerConfig, listeners: Listeners) -> anyhow::Result<Standalone> {
        let events_dir = config.data_dir.join(EVENTS_DIR);
        let (store, report) = tokio::task::spawn_blocking(move || {
            EmbeddedStore::open(&events_dir, embedded::Options::default())
                .with_context(|| format!("opening the event store in {}", events_dir.display()))
        })
        .await
        .context("opening the event store")??;
        let security = Security::open(&config).context("loading the token signing key")?;
        tracing::info!(
            data_dir = %config.data_dir.display(),
            events = report.events,
            segments = report.segments,
            operator_token = %security.operator_token_path.display(),
            "standalone server starting"
        );
        Ok(Standalone { config, listeners, store, security })
    }

    pub fn store(&self) -> &EmbeddedStore {
        &self.store
    }

    /// Where the operator's token is.
    pub fn operator_token_path(&self) -> &Path {
        &self.security.operator_token_path
    }

    /// Serves every service until `shutdown` completes, then closes the store.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Standalone { config, listeners, store, security } = self;
        let mut services = ServiceSet::new();
        services.add(InterceptedService::new(
            symbiose_reference::service(&config),
            security.authenticator.clone(),
        ));
        symbiose_listings::add_services(&mut services, &config, store.clone(), &security).await?;
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
