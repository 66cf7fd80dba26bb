//! The listings service alone, for deployments with one process per service.

/// mimalloc: a rebuild folds millions of events on several threads, and rebuilds about a
/// fifth faster with it than with the system allocator (docs/benchmarks.md, the catalog).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    symbiose::alone::main("symbiose-listings").await
}
