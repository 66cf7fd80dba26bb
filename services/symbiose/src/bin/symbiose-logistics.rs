//! The logistics service alone, for deployments with one process per service: its own store,
//! the other services' events from NATS (`SYMBIOSE_NATS_URL` is required).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    symbiose::alone::main("symbiose-logistics").await
}
