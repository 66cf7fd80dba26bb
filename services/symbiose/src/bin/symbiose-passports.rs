//! The passports service alone, for deployments with one process per service: its own store,
//! the listings', matching's and logistics' events from NATS (`SYMBIOSE_NATS_URL` is required),
//! its gRPC port and the public web port of the passports' pages (`SYMBIOSE_WEB_ADDR`).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    symbiose::alone::main("symbiose-passports").await
}
