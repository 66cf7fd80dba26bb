//! The matching service alone, for deployments with one process per service: its own store,
//! the other services' events from NATS (`SYMBIOSE_NATS_URL` is required), the listings service over
//! gRPC (`SYMBIOSE_LISTINGS_URL`).

use anyhow::Context as _;
use symbiose_kit::{Listeners, ServerConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ServerConfig::from_env().context("reading the configuration")?;
    symbiose_kit::telemetry::init(config.log_format);
    let listeners = Listeners::bind(&config).await?;
    symbiose::alone::run_matching(config, listeners, symbiose_kit::server::shutdown_signal()).await
}
