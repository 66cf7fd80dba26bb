//! `contention-bench`: durable `ReserveQuantity` commands through gRPC on one hot offer (every
//! command on the same aggregate, taking turns), against the same commands spread over as
//! many offers as there are clients (no two on one aggregate at once), in the same run on the
//! same server: commands/s, p50 and p99, the ratio of the two, and how many calls failed.
//!
//! `cargo run --release -p symbiose-tests --bin contention-bench [clients] [commands]`

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_tests::TestServer;
use symbiose_tests::fixtures::{self, member, pallet_terms, pallets, publish};
use uuid::Uuid;

/// Concurrent clients, by default.
const CLIENTS_DEFAULT: usize = 64;
/// Reservations in each case, by default; at most a listing's open reservations.
const COMMANDS_DEFAULT: usize = 960;
const COMMANDS_MAX: usize = 1000;

#[derive(Debug)]
struct Measured {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    failed: usize,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let clients: usize = arguments.next().map(|text| text.parse()).transpose()?.unwrap_or(CLIENTS_DEFAULT);
    let commands: usize =
        arguments.next().map(|text| text.parse()).transpose()?.unwrap_or(COMMANDS_DEFAULT).min(COMMANDS_MAX);
    anyhow::ensure!(clients >= 1 && commands >= clients, "at least one client and one command per client");

    let server = TestServer::start_with(|config| {
        config.rate_limit_per_second = NonZeroU32::new(1_000_000).expect("non-zero");
        config.rate_limit_burst = NonZeroU32::new(1_000_000).expect("non-zero");
    })
    .await?;
    let producer = member(
        &server,
        "Palettes de l'Est SAS",
        common::Country::France,
        "73282932000074",
        &[common::Role::Producer],
        "Strasbourg",
    )
    .await?;
    let terms = || pallet_terms(pb::ListingSide::Offer, &producer.site_id, 1_000_000, 350);
    let (hot, _) = publish(&server, &producer.token, terms()).await?;
    let mut spread = Vec::new();
    for _ in 0..clients {
        spread.push(publish(&server, &producer.token, terms()).await?.0);
    }
    let token = fixtures::service_token(&server)?;

    // Warm-up: connections, caches, the allocator.
    run(&server, &token, &spread, clients, clients).await?;
    let spread_measured = run(&server, &token, &spread, clients, commands).await?;
    let hot_measured = run(&server, &token, std::slice::from_ref(&hot), clients, commands).await?;
    println!(
        "contention-bench: {commands} durable ReserveQuantity through gRPC, {clients} concurrent clients"
    );
    for (name, measured) in
        [("spread over offers (baseline)", &spread_measured), ("one hot offer", &hot_measured)]
    {
        println!(
            "  {name:<30} {:>8.0} commands/s  p50 {:>6.2} ms  p99 {:>6.2} ms  failed {}",
            measured.per_second,
            measured.p50.as_secs_f64() * 1e3,
            measured.p99.as_secs_f64() * 1e3,
            measured.failed
        );
    }
    println!(
        "  one hot offer / spread: {:.2} of the throughput, p99 x {:.2}",
        hot_measured.per_second / spread_measured.per_second,
        hot_measured.p99.as_secs_f64() / spread_measured.p99.as_secs_f64()
    );
    server.stop().await?;
    Ok(())
}

/// `commands` reservations of one pallet from `clients` clients, client `i` on offer
/// `offers[i % offers.len()]`.
async fn run(
    server: &TestServer,
    token: &str,
    offers: &[String],
    clients: usize,
    commands: usize,
) -> anyhow::Result<Measured> {
    let channel = server.authed(token).await?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let mut listings = ListingServiceClient::new(channel.clone());
        let offer = offers[client % offers.len()].clone();
        let count = commands / clients + usize::from(client < commands % clients);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            let mut failed = 0;
            for _ in 0..count {
                let sent = Instant::now();
                let answer = listings
                    .reserve_quantity(pb::ReserveQuantityRequest {
                        request_id: String::new(),
                        listing_id: offer.clone(),
                        reservation_id: Uuid::now_v7().to_string(),
                        quantity: Some(pallets(1)),
                    })
                    .await;
                latencies.push(sent.elapsed());
                failed += usize::from(answer.is_err());
            }
            (latencies, failed)
        }));
    }
    let mut latencies = Vec::with_capacity(commands);
    let mut failed = 0;
    for task in tasks {
        let (measured, failures) = task.await.context("a client")?;
        latencies.extend(measured);
        failed += failures;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |quantile: f64| latencies[((latencies.len() - 1) as f64 * quantile) as usize];
    Ok(Measured { per_second: commands as f64 / elapsed.as_secs_f64(), p50: at(0.50), p99: at(0.99), failed })
}
