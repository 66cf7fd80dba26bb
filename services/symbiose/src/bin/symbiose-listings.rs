//! The listings service alone, for deployments with one process per service.

use anyhow::Context as _;
use symbiose_kit::{Listeners, ServerConfig};

/// mimalloc: a rebuild folds millions of events on several threads, and rebuilds about a
/// fifth faster with it than with the system allocator (docs/benchmarks.md, the catalog).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ServerConfig::from_env().context("reading the configuration")?;
    symbiose_kit::telemetry::init(config.log_format);
    let listeners = Listeners::bind(&config).await?;
    symbiose_listings::run(config, listeners, symbiose_kit::server::shutdown_signal()).await
}
