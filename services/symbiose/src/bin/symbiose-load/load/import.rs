//! `--import N`: a partner's bulk import measured whole. The run starts the standalone server
//! (embedded store, a temporary data directory, the request timeout raised to its maximum),
//! registers one producer, then, in the same run:
//!
//! - the baseline: 1 % of N listings created and published one at a time through
//!   `CreateListing` and `PublishListing` from 16 concurrent clients, as a partner without the
//!   import would;
//! - `ImportListings` of a CSV file of N lines, one in a hundred of them bad (a unit no one
//!   trades in), sent in chunks of 1 MiB as the command-line client does, published as they are
//!   created;
//! - the same file again under the same import id, which applies nothing.
//!
//! It prints each one's listings per second, and the import's rate over the baseline's.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use tokio::task::JoinSet;

use super::{process, setup};

/// Most lines one run imports: the server's own limit.
pub(crate) const LINES_MAX: usize = 200_000;
/// Bytes of the file each message carries, as the command-line client sends them.
const CHUNK_BYTES: usize = 1024 * 1024;
/// Concurrent clients of the baseline.
const BASELINE_CLIENTS: usize = 16;
/// The request timeout the server runs with: its largest, so the import is bounded by nothing
/// but its own work.
const REQUEST_TIMEOUT_MS: &str = "300000";
/// Longest the server may take to start.
const START_WAIT: Duration = Duration::from_secs(60);

/// The CSV file: a header and `lines` offers of EUR pallets at `site_id`, every hundredth one
/// in crates, which the server refuses.
fn file(lines: usize, site_id: &str) -> Vec<u8> {
    let mut text = String::from(
        "side,family,waste_code,legal_status,description,quantity,unit,price_per_unit,currency,site_id,expires_at,delivery,pallet_grade\n",
    );
    for line in 0..lines {
        let unit = if line % 100 == 99 { "crate" } else { "pallet" };
        let grade = ["a", "b", "c"][line % 3];
        text.push_str(&format!(
            "offer,pallets,15 01 03,waste,EUR pallets lot {line},{},{unit},{}.{:02},EUR,{site_id},2030-12-31T17:00:00Z,buyer_collects,{grade}\n",
            10 + line % 90,
            2 + line % 5,
            line % 100
        ));
    }
    text.into_bytes()
}

/// Sends `bytes` to `ImportListings` under `import_id`, published; the response and how long
/// the call took.
async fn import(
    client: &mut ListingServiceClient<setup::Authed>,
    import_id: &str,
    bytes: &[u8],
) -> anyhow::Result<(listings::ImportListingsResponse, Duration)> {
    let header = listings::ImportHeader {
        import_id: import_id.to_owned(),
        format: listings::ImportFormat::Csv.into(),
        publish: true,
    };
    let mut messages = vec![listings::ImportListingsRequest {
        part: Some(listings::import_listings_request::Part::Header(header)),
    }];
    messages.extend(bytes.chunks(CHUNK_BYTES).map(|chunk| listings::ImportListingsRequest {
        part: Some(listings::import_listings_request::Part::Chunk(chunk.to_vec())),
    }));
    let started = Instant::now();
    let response = client
        .import_listings(tonic::codegen::tokio_stream::iter(messages))
        .await
        .map_err(setup::status("ImportListings"))?
        .into_inner();
    Ok((response, started.elapsed()))
}

/// Runs the import's measurement over `lines` lines.
pub(crate) async fn run(lines: usize) -> anyhow::Result<()> {
    let binary = std::env::current_exe().context("finding this executable")?.with_file_name("symbiose");
    let data_dir = tempfile::tempdir().context("a data directory for the server")?;
    let env = [(symbiose_kit::config::REQUEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS)];
    let server = process::start_server_with(&binary, data_dir.path(), None, &env, START_WAIT).await?;
    let address = server.address.to_string();
    let channel = process::connect(&address).await?;
    let operator = setup::authed(&channel, &server.operator_token)?;
    let members = setup::register(&operator, &channel, 1).await.context("registering the producer")?;
    let member = &members[0];
    println!(
        "symbiose-load --import: {} at {address}, embedded store, one producer, {lines} lines with one in a hundred bad",
        binary.display()
    );

    // The baseline: 1 % of the listings through CreateListing and PublishListing.
    let one_by_one = (lines / 100).max(BASELINE_CLIENTS);
    let started = Instant::now();
    let mut publishing = JoinSet::new();
    for index in 0..one_by_one {
        if publishing.len() >= BASELINE_CLIENTS
            && let Some(done) = publishing.join_next().await
        {
            done.context("a baseline call panicked")??;
        }
        let client = ListingServiceClient::new(setup::authed(&channel, &member.token)?);
        let terms = setup::terms(listings::ListingSide::Offer, &member.site_id, index as u64);
        publishing.spawn(setup::create_and_publish(client, terms));
    }
    while let Some(done) = publishing.join_next().await {
        done.context("a baseline call panicked")??;
    }
    let baseline = started.elapsed();
    let baseline_rate = one_by_one as f64 / baseline.as_secs_f64();
    println!(
        "baseline, CreateListing + PublishListing one at a time from {BASELINE_CLIENTS} clients: {one_by_one} listings in {:.2} s = {baseline_rate:.0} listings/s",
        baseline.as_secs_f64()
    );

    let bytes = file(lines, &member.site_id);
    let mut client = ListingServiceClient::new(setup::authed(&channel, &member.token)?)
        .max_decoding_message_size(64 * 1024 * 1024);
    let (first, took) = import(&mut client, "load-import", &bytes).await?;
    let rate = f64::from(first.created) / took.as_secs_f64();
    println!(
        "ImportListings, {lines} lines ({:.1} MB): {} created and published, {} refused, in {:.2} s = {rate:.0} listings/s, {:.1} x the baseline",
        bytes.len() as f64 / 1e6,
        first.created,
        first.refused,
        took.as_secs_f64(),
        rate / baseline_rate
    );
    anyhow::ensure!(
        first.created as usize + first.refused as usize == lines && first.refused as usize == lines / 100,
        "the import did not apply what was expected: {} created, {} refused of {lines}",
        first.created,
        first.refused
    );
    let (again, took_again) = import(&mut client, "load-import", &bytes).await?;
    println!(
        "the same file again under the same id: {} created, {} already present, {} refused, in {:.2} s",
        again.created,
        again.already_present,
        again.refused,
        took_again.as_secs_f64()
    );
    if let Some(usage) = process::usage(server.process.pid()) {
        println!(
            "server: {:.1} s of CPU, {:.0} MiB resident",
            usage.cpu_s,
            usage.rss_bytes as f64 / 1048576.0
        );
    }
    Ok(())
}
