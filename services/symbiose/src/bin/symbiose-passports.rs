//! The passports service alone, for deployments with one process per service: its own store,
//! the listings', matching's and logistics' events from NATS (`SYMBIOSE_NATS_URL` is required),
//! its gRPC port and the public web port of the passports' pages (`SYMBIOSE_WEB_ADDR`).

use anyhow::Context as _;
use symbiose_kit::{Listeners, ServerConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ServerConfig::from_env().context("reading the configuration")?;
    // Kept to the end: dropping it flushes the traces not yet exported.
    let _telemetry = symbiose_kit::telemetry::init(&config)?;
    let listeners = Listeners::bind_with_web(&config).await?;
    symbiose::alone::run_passports(config, listeners, symbiose_kit::server::shutdown_signal()).await
}
