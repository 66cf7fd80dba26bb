//! The logistics service alone, for deployments with one process per service: its own store,
//! the other services' events from NATS (`SYMBIOSE_NATS_URL` is required).

use anyhow::Context as _;
use symbiose_kit::{Listeners, ServerConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ServerConfig::from_env().context("reading the configuration")?;
    // Kept to the end: dropping it flushes the traces not yet exported.
    let _telemetry = symbiose_kit::telemetry::init(&config)?;
    let listeners = Listeners::bind(&config).await?;
    symbiose::alone::run_logistics(config, listeners, symbiose_kit::server::shutdown_signal()).await
}
