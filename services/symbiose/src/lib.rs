//! The standalone Symbiose server: every service in one process, on one gRPC port, with its
//! data under one directory. It is what `cargo run --release` starts, and what the black-box
//! tests start on free ports.
//!
//! It only composes the services: it holds no business rule of its own.

pub mod cli;

use std::future::Future;

use anyhow::Context as _;
use symbiose_kit::{Listeners, ServerConfig, ServiceSet};

/// Serves every service on `listeners` until `shutdown` completes.
pub async fn run(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    tracing::info!(data_dir = %config.data_dir.display(), "standalone server starting");

    let mut services = ServiceSet::new();
    services.add(symbiose_reference::service(&config));
    symbiose_kit::server::serve(&config, services, listeners, shutdown).await
}
