//! The workloads and the phase that runs one: every client calls in a loop, one call at a time,
//! from the start of the warm-up to the end of the measured window; only the calls sent and
//! answered inside the window are counted, while the server's CPU and memory are read from
//! `/proc` at its edges and sampled within it.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use symbiose_proto::catalog::v1 as catalog;
use symbiose_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::matching::v1 as matching;
use symbiose_proto::matching::v1::matching_service_client::MatchingServiceClient;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use uuid::Uuid;

use super::histogram::Histogram;
use super::process::{self, Usage};
use super::setup::{self, Authed, Member, Seeded};

/// Pause between two samples of the server's resident memory, in milliseconds.
const MEMORY_SAMPLE_MS: u64 = 100;
/// Radius of a search around the caller's site, in kilometres.
const SEARCH_RADIUS_KM: u32 = 150;
/// Entries a search asks for.
const SEARCH_PAGE_SIZE: i32 = 20;
/// Matches a FindMatches asks for.
const FIND_LIMIT: u32 = 10;
/// Bytes of the first error message kept for the report.
const ERROR_MESSAGE_BYTES_MAX: usize = 300;
/// The server counts as idle once it uses less than this share of a core over a look.
const IDLE_CORES_MAX: f64 = 0.05;
/// The length of one look at the server's CPU while waiting for it to be idle, in milliseconds.
const IDLE_LOOK_MS: u64 = 250;
/// Longest wait for the server to be idle between two phases, in milliseconds: the catalog
/// and matching follow the log behind the commands, and a phase should not pay for the last.
pub(crate) const SETTLE_WAIT_MS: u64 = 30_000;

/// One kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Check,
    CreateListing,
    PublishListing,
    SearchCatalog,
    FindMatches,
    ReserveQuantity,
}

pub(crate) const CALLS: [Call; 6] = [
    Call::Check,
    Call::CreateListing,
    Call::PublishListing,
    Call::SearchCatalog,
    Call::FindMatches,
    Call::ReserveQuantity,
];

impl Call {
    fn index(self) -> usize {
        CALLS.iter().position(|call| *call == self).expect("every call is listed")
    }
}

impl fmt::Display for Call {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Call::Check => "Health/Check",
            Call::CreateListing => "CreateListing",
            Call::PublishListing => "PublishListing",
            Call::SearchCatalog => "SearchCatalog",
            Call::FindMatches => "FindMatches",
            Call::ReserveQuantity => "ReserveQuantity",
        })
    }
}

/// What the clients of a phase call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    /// `Health/Check` on the echo server: the ceiling of the transport.
    Echo,
    /// `SearchCatalog` around the caller's site, nearest first.
    Search,
    /// `FindMatches` for one of the caller's listings.
    Find,
    /// `CreateListing` alone: one durable command a call.
    Create,
    /// `CreateListing` then `PublishListing` of the listing created.
    CreatePublish,
    /// 35% searches, 35% finds, 20% creations with their publication, 10% reservations of an
    /// offer the client published (as the operator: only the platform reserves).
    Mixed,
}

/// Every workload but the echo, in the order a run measures them: the queries first, on the
/// listings seeded, then the commands, which add listings.
pub(crate) const WORKLOADS: [Workload; 5] =
    [Workload::Search, Workload::Find, Workload::Create, Workload::CreatePublish, Workload::Mixed];

impl fmt::Display for Workload {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Workload::Echo => "echo",
            Workload::Search => "search",
            Workload::Find => "find",
            Workload::Create => "create",
            Workload::CreatePublish => "create+publish",
            Workload::Mixed => "mixed",
        })
    }
}

/// One client: its own connection to the server and one to the echo server, the organization
/// it acts as, and what it published.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    index: usize,
    member: Member,
    seeded: Seeded,
    listings: ListingServiceClient<Authed>,
    catalog: CatalogServiceClient<Authed>,
    matching: MatchingServiceClient<Authed>,
    /// The same connection with the operator's token, for reservations.
    operator_listings: ListingServiceClient<Authed>,
    echo: HealthClient<Channel>,
    /// Iterations so far, across phases: what varies the requests.
    iterations: u64,
    /// The last offer this client published in the mixed workload, which it reserves from.
    last_offer: Option<String>,
    /// The state of the client's own pseudo-random draws (xorshift64).
    random: u64,
}

impl Client {
    pub(crate) fn new(
        index: usize,
        member: Member,
        seeded: Seeded,
        server: &Channel,
        operator_token: &str,
        echo: Channel,
    ) -> anyhow::Result<Client> {
        let own = setup::authed(server, &member.token)?;
        anyhow::ensure!(
            !seeded.offers.is_empty() && !seeded.requests.is_empty(),
            "organization {} has no offer or no request: raise --listings",
            member.organization_id
        );
        Ok(Client {
            index,
            listings: ListingServiceClient::new(own.clone()),
            catalog: CatalogServiceClient::new(own.clone()),
            matching: MatchingServiceClient::new(own),
            operator_listings: ListingServiceClient::new(setup::authed(server, operator_token)?),
            echo: HealthClient::new(echo),
            member,
            seeded,
            iterations: 0,
            last_offer: None,
            random: 0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9),
        })
    }

    /// A draw in `0..100`.
    fn percent(&mut self) -> u64 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random % 100
    }

    /// Runs `workload` until `window` ends, counting what falls inside it in `tally`.
    async fn run(&mut self, workload: Workload, window: Window, tally: &mut Tally) {
        while Instant::now() < window.end {
            self.iterations += 1;
            match workload {
                Workload::Echo => self.check(window, tally).await,
                Workload::Search => self.search(window, tally).await,
                Workload::Find => self.find(window, tally).await,
                Workload::Create => {
                    self.create(window, tally).await;
                }
                Workload::CreatePublish => self.create_publish(window, tally).await,
                Workload::Mixed => match self.percent() {
                    0..35 => self.search(window, tally).await,
                    35..70 => self.find(window, tally).await,
                    70..90 => self.create_publish(window, tally).await,
                    _ => self.reserve(window, tally).await,
                },
            }
        }
    }

    async fn check(&mut self, window: Window, tally: &mut Tally) {
        let sent = Instant::now();
        let answer = self.echo.check(HealthCheckRequest { service: String::new() }).await;
        tally.count(Call::Check, window, sent, answer.map(drop));
    }

    async fn search(&mut self, window: Window, tally: &mut Tally) {
        let side = if self.iterations.is_multiple_of(2) {
            listings::ListingSide::Offer
        } else {
            listings::ListingSide::Request
        };
        let request = catalog::SearchCatalogRequest {
            side: side.into(),
            material_family: symbiose_proto::common::v1::MaterialFamily::Pallets.into(),
            near: Some(self.member.place.point.into()),
            radius_km: SEARCH_RADIUS_KM,
            sort: catalog::CatalogSort::Distance.into(),
            page_size: SEARCH_PAGE_SIZE,
            language: "en".into(),
            ..Default::default()
        };
        let sent = Instant::now();
        let answer = self.catalog.search_catalog(request).await;
        tally.count(Call::SearchCatalog, window, sent, answer.map(drop));
    }

    async fn find(&mut self, window: Window, tally: &mut Tally) {
        let turn = (self.iterations / 2) as usize;
        let listing_id = if self.iterations.is_multiple_of(2) {
            &self.seeded.offers[turn % self.seeded.offers.len()]
        } else {
            &self.seeded.requests[turn % self.seeded.requests.len()]
        };
        let request = matching::FindMatchesRequest {
            listing_id: listing_id.clone(),
            limit: FIND_LIMIT,
            min_position: 0,
        };
        let sent = Instant::now();
        let answer = self.matching.find_matches(request).await;
        tally.count(Call::FindMatches, window, sent, answer.map(drop));
    }

    /// Creates a listing, an offer or a request in turn; its id and side if it was created.
    async fn create(&mut self, window: Window, tally: &mut Tally) -> Option<(String, listings::ListingSide)> {
        let side = if self.iterations.is_multiple_of(2) {
            listings::ListingSide::Offer
        } else {
            listings::ListingSide::Request
        };
        let terms = setup::terms(side, &self.member.site_id, self.iterations ^ self.index as u64);
        let request = listings::CreateListingRequest { request_id: String::new(), terms: Some(terms) };
        let sent = Instant::now();
        let answer = self.listings.create_listing(request).await;
        let created = answer.as_ref().ok().map(|response| response.get_ref().listing_id.clone());
        tally.count(Call::CreateListing, window, sent, answer.map(drop));
        created.map(|id| (id, side))
    }

    async fn create_publish(&mut self, window: Window, tally: &mut Tally) {
        let Some((listing_id, side)) = self.create(window, tally).await else {
            return;
        };
        let request =
            listings::PublishListingRequest { request_id: String::new(), listing_id: listing_id.clone() };
        let sent = Instant::now();
        let answer = self.listings.publish_listing(request).await;
        if answer.is_ok() && side == listings::ListingSide::Offer {
            self.last_offer = Some(listing_id);
        }
        tally.count(Call::PublishListing, window, sent, answer.map(drop));
    }

    /// Reserves one pallet of the last offer this client published (of a seeded one before
    /// its first): each offer holds far more pallets, and is reserved from far fewer times,
    /// than a listing's limits.
    async fn reserve(&mut self, window: Window, tally: &mut Tally) {
        let offer = self.last_offer.clone().unwrap_or_else(|| self.seeded.offers[0].clone());
        let request = listings::ReserveQuantityRequest {
            request_id: String::new(),
            listing_id: offer,
            reservation_id: Uuid::now_v7().to_string(),
            quantity: Some(setup::pallets(1)),
        };
        let sent = Instant::now();
        let answer = self.operator_listings.reserve_quantity(request).await;
        tally.count(Call::ReserveQuantity, window, sent, answer.map(drop));
    }
}

/// The measured window of a phase.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// What one client counted in the window.
#[derive(Debug, Default)]
struct Tally {
    latencies: [Histogram; CALLS.len()],
    errors: [u64; CALLS.len()],
    first_error: Option<String>,
}

impl Tally {
    fn count(&mut self, call: Call, window: Window, sent: Instant, answer: Result<(), tonic::Status>) {
        let answered = Instant::now();
        if sent < window.start || answered > window.end {
            return;
        }
        match answer {
            Ok(()) => self.latencies[call.index()].record(answered - sent),
            Err(status) => {
                self.errors[call.index()] += 1;
                if self.first_error.is_none() {
                    let mut message = format!("{call}: {:?}: {}", status.code(), status.message());
                    let mut end = message.len().min(ERROR_MESSAGE_BYTES_MAX);
                    while !message.is_char_boundary(end) {
                        end -= 1;
                    }
                    message.truncate(end);
                    self.first_error = Some(message);
                }
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        for (mine, theirs) in self.latencies.iter_mut().zip(other.latencies.iter()) {
            mine.merge(theirs);
        }
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The figures of one kind of call in a phase.
#[derive(Debug, Clone)]
pub(crate) struct CallFigures {
    pub(crate) call: Call,
    pub(crate) latencies: Histogram,
    pub(crate) errors: u64,
}

/// What a phase measured.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) workload: Workload,
    pub(crate) seconds: f64,
    /// The calls the workload made, in the order of [`CALLS`].
    pub(crate) calls: Vec<CallFigures>,
    pub(crate) first_error: Option<String>,
    /// The serving process's cores used over the window and its largest resident memory
    /// sampled within it, in bytes; `None` when its `/proc` cannot be read.
    pub(crate) server: Option<(f64, u64)>,
    /// This process's cores used over the window (the clients).
    pub(crate) load_cores: Option<f64>,
    /// The cores every other process of the machine used over the window: on a shared machine,
    /// what the server and the clients could not have.
    pub(crate) others_cores: Option<f64>,
}

impl Measured {
    /// Successful calls a second, every call of the workload together.
    pub(crate) fn per_second(&self) -> f64 {
        self.calls.iter().map(|figures| figures.latencies.count()).sum::<u64>() as f64 / self.seconds
    }

    pub(crate) fn errors(&self) -> u64 {
        self.calls.iter().map(|figures| figures.errors).sum()
    }

    /// The figures of `call`, if the workload made it.
    pub(crate) fn call(&self, call: Call) -> Option<&CallFigures> {
        self.calls.iter().find(|figures| figures.call == call)
    }

    /// The latencies of every call together.
    pub(crate) fn latencies(&self) -> Histogram {
        let mut all = Histogram::default();
        for figures in &self.calls {
            all.merge(&figures.latencies);
        }
        all
    }
}

/// Runs `workload` on `clients` for `warm_up` then `measured`, reading the serving process
/// `serving_pid` (if known) over the measured window.
pub(crate) async fn run(
    workload: Workload,
    clients: Vec<Client>,
    warm_up: Duration,
    measured: Duration,
    serving_pid: Option<u32>,
) -> anyhow::Result<(Measured, Vec<Client>)> {
    let count = clients.len();
    assert!(count > 0, "a phase has clients");
    let start = Instant::now() + warm_up;
    let window = Window { start, end: start + measured };
    let mut tasks = Vec::with_capacity(count);
    for mut client in clients {
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            client.run(workload, window, &mut tally).await;
            (client, tally)
        }));
    }

    tokio::time::sleep_until(window.start.into()).await;
    let server_before = serving_pid.and_then(process::usage);
    let load_before = process::usage(std::process::id());
    let machine_before = process::machine_cpu_s();
    let mut rss_peak_bytes = server_before.map_or(0, |usage| usage.rss_bytes);
    let mut sampling = tokio::time::interval(Duration::from_millis(MEMORY_SAMPLE_MS));
    while Instant::now() < window.end {
        sampling.tick().await;
        if let Some(usage) = serving_pid.and_then(process::usage) {
            rss_peak_bytes = rss_peak_bytes.max(usage.rss_bytes);
        }
    }
    let server_after = serving_pid.and_then(process::usage);
    let load_after = process::usage(std::process::id());
    let machine_after = process::machine_cpu_s();
    // The CPU used over the time it was read for, which the samples above make a little longer
    // than the window.
    let seconds = (Instant::now() - window.start).as_secs_f64();
    let cores = |before: Option<Usage>, after: Option<Usage>| {
        before.zip(after).map(|(before, after)| (after.cpu_s - before.cpu_s) / seconds)
    };

    let server_cores = cores(server_before, server_after);
    let load_cores = cores(load_before, load_after);
    let others_cores = machine_before.zip(machine_after).map(|(before, after)| {
        ((after - before) / seconds - server_cores.unwrap_or(0.0) - load_cores.unwrap_or(0.0)).max(0.0)
    });

    let mut total = Tally::default();
    let mut clients = Vec::with_capacity(count);
    for task in tasks {
        let (client, tally) = task.await.context("a client panicked")?;
        total.merge(tally);
        clients.push(client);
    }
    clients.sort_by_key(|client| client.index);
    let calls = CALLS
        .iter()
        .zip(total.latencies.iter().zip(total.errors))
        .filter(|(_, (latencies, errors))| latencies.count() > 0 || *errors > 0)
        .map(|(call, (latencies, errors))| CallFigures { call: *call, latencies: latencies.clone(), errors })
        .collect();
    let measured = Measured {
        workload,
        // The window as planned: calls answered after its end are not counted.
        seconds: measured.as_secs_f64(),
        calls,
        first_error: total.first_error,
        server: server_cores.map(|cores| (cores, rss_peak_bytes)),
        load_cores,
        others_cores,
    };
    Ok((measured, clients))
}

/// Waits, with a bound, until `pid` uses almost no CPU: what the last phase set going (the
/// catalog and matching following the log, proposals made after publications) is done. The
/// time waited, or `None` if the bound was reached first.
pub(crate) async fn settle(pid: u32) -> Option<Duration> {
    let started = Instant::now();
    let deadline = started + Duration::from_millis(SETTLE_WAIT_MS);
    while Instant::now() < deadline {
        let before = process::usage(pid)?;
        tokio::time::sleep(Duration::from_millis(IDLE_LOOK_MS)).await;
        let after = process::usage(pid)?;
        if (after.cpu_s - before.cpu_s) / (IDLE_LOOK_MS as f64 / 1000.0) < IDLE_CORES_MAX {
            return Some(started.elapsed());
        }
    }
    None
}
