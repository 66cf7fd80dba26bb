//! The listings service alone, for deployments with one process per service.

use anyhow::Context as _;
use symbiose_kit::{Listeners, ServerConfig, ServiceSet};
use tonic::service::interceptor::InterceptedService;

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
    let reference =
        |config: &ServerConfig, authenticator: &symbiose_kit::Authenticator, services: &mut ServiceSet| {
            services.add(InterceptedService::new(symbiose_reference::service(config), authenticator.clone()));
        };
    symbiose_listings::run(config, listeners, reference, symbiose_kit::server::shutdown_signal()).await
}
