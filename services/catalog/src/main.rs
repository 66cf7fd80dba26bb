//! The catalog alone: a stateless replica that rebuilds from the listings' events on NATS at
//! start, follows them, and serves `CatalogService` (any number of them behind one address).

use anyhow::Context as _;
use symbiose_kit::{Listeners, ServerConfig};

/// mimalloc: a rebuild folds millions of events on several threads, and rebuilds about a
/// fifth faster with it than with the system allocator (docs/benchmarks.md, the catalog).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ServerConfig::from_env().context("reading the configuration")?;
    // Kept to the end: dropping it flushes the traces not yet exported.
    let _telemetry = symbiose_kit::telemetry::init(&config)?;
    let listeners = Listeners::bind(&config).await?;
    symbiose_catalog::run(config, listeners, symbiose_kit::server::shutdown_signal()).await
}
