//! The reference service alone, for deployments with one process per service.

use anyhow::Context as _;
use symbiose_kit::{Listeners, ServerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ServerConfig::from_env().context("reading the configuration")?;
    // Kept to the end: dropping it flushes the traces not yet exported.
    let _telemetry = symbiose_kit::telemetry::init(&config)?;
    let listeners = Listeners::bind(&config).await?;
    symbiose_reference::run(config, listeners, symbiose_kit::server::shutdown_signal()).await
}
