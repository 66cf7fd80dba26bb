//! `symbiose-load`: a request through gRPC, authentication, the shell and the store, measured
//! whole. It starts the standalone server (the `symbiose` binary beside it, on the embedded
//! store in a temporary data directory, on free ports) or calls the one `--target` names,
//! registers organizations and publishes listings through the public API as a partner app
//! would, then drives from N concurrent clients, each workload after a warm-up: SearchCatalog,
//! FindMatches, CreateListing, CreateListing then PublishListing, and a mixed marketplace. For
//! each call it prints calls/s and p50, p99 and p999, with the server's cores and memory, beside
//! a bare tonic echo served by a process of its own on the same machine with the same clients:
//! the ceiling of the transport. Last, it says which of the targets of `docs/benchmarks.md` are
//! met.
//!
//! With `--postgres URL --replicas N`, the servers run over a PostgreSQL database of the run's
//! own instead, measured with one replica, then two, ... up to N (the clients spread over
//! them), and the last is then restarted to time how long it takes to serve again. With
//! `--postgres URL --restart-listings N` it measures only how long the server takes to serve
//! after a restart with N listings in the log, with and without its views' snapshots.
//!
//! With `--import N` it measures a partner's bulk import instead (`load::import`): N listings
//! of a CSV file through `ImportListings`, with one line in a hundred bad, beside the same
//! listings created and published one call at a time.
//!
//! With `--pages` it measures the passports' public web port instead (`load::pages`): a
//! published passport's page in French and German, its JSON-LD, QR codes, labels and Digital
//! Link, beside the same port's 404 page.
//!
//! `cargo build --release -p symbiose --bin symbiose --bin symbiose-load &&
//! target/release/symbiose-load [--clients 1,16,64] [--seconds 10] [--quick]
//! [--postgres postgres://postgres@127.0.0.1:5432 --replicas 2 | --restart-listings 1000000]
//! [--pages] [--import 100000]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

mod load;

/// The same allocator as the server's, for the echo server this binary also is, and for the
/// clients, whose CPU the server shares.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Most concurrent clients: each holds two connections (the server, the echo server).
const CLIENTS_MAX: usize = 256;
/// Most numbers of clients one run measures.
const CLIENT_COUNTS_MAX: usize = 8;
/// Longest measured window of a workload, and longest warm-up, in seconds.
const SECONDS_MAX: u64 = 3_600;
/// Most listings seeded before the phases.
const LISTINGS_MAX: usize = 100_000;
/// The defaults, and those of `--quick`.
const SECONDS_DEFAULT: u64 = 10;
const SECONDS_QUICK: u64 = 2;
const WARM_UP_SECONDS_DEFAULT: u64 = 3;
const WARM_UP_SECONDS_QUICK: u64 = 1;
const LISTINGS_DEFAULT: usize = 2_000;
const LISTINGS_QUICK: usize = 256;

/// Drives the Symbiose server with concurrent gRPC clients, and a bare tonic echo with the same
/// clients, and compares them.
#[derive(Debug, Parser)]
#[command(name = "symbiose-load")]
struct Arguments {
    /// Call the server at this address (`127.0.0.1:50051` or `http://host:port`) instead of
    /// starting one; needs --token-file.
    #[arg(long, value_name = "ADDR")]
    target: Option<String>,
    /// The operator token of the --target server (its `<data dir>/operator.token`).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The process id of the --target server, for its CPU and memory.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// The numbers of concurrent clients, each a run of every workload, comma-separated
    /// (`1,16,64`); each 1 to 256.
    #[arg(long, value_name = "N[,N...]", value_delimiter = ',', default_value = "64")]
    clients: Vec<usize>,
    /// The measured window of each workload, in seconds (1 to 3600; 10, or 2 with --quick).
    #[arg(long, value_name = "S")]
    seconds: Option<u64>,
    /// The warm-up before each window, in seconds (0 to 3600; 3, or 1 with --quick).
    #[arg(long, value_name = "S")]
    warm_up_seconds: Option<u64>,
    /// Listings published before the phases, offers and requests, at least two per organization
    /// (one organization per client, up to 64) and at most 100000; 2000, or 256 with --quick.
    #[arg(long, value_name = "N")]
    listings: Option<usize>,
    /// The workloads measured, comma-separated, among search, find, create, create+publish and
    /// mixed (the echo is always measured); all by default.
    #[arg(long, value_name = "W[,W...]", value_delimiter = ',')]
    workloads: Vec<String>,
    /// A smoke run of a few seconds a workload.
    #[arg(long)]
    quick: bool,
    /// Run the servers over PostgreSQL: a database of the run's own on this server
    /// (`postgres://postgres@127.0.0.1:5432`), dropped at the end.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// With --postgres, measure with 1, then 2, ... up to this many replicas of the server over
    /// the database, the clients spread over them (1 to 4), then restart the last one and time
    /// how long it takes to serve again.
    #[arg(long, value_name = "N", default_value_t = 1)]
    replicas: usize,
    /// With --postgres, measure nothing else but how long the server takes to serve after a
    /// restart with this many listings in the log, with and without its views' snapshots (the
    /// listings appended straight through the store; 1 to 5000000).
    #[arg(long, value_name = "N")]
    restart_listings: Option<u64>,
    /// Measure the passports' public web port instead: a published passport's page, JSON-LD,
    /// QR codes, labels and Digital Link, beside the same port's 404 page, from each number of
    /// --clients.
    #[arg(long)]
    pages: bool,
    /// Measure a bulk import instead: this many lines of CSV (1 in 100 bad) through
    /// ImportListings, beside 1 % of them created and published one call at a time (100 to
    /// 200000).
    #[arg(long, value_name = "N")]
    import: Option<usize>,
    /// Serve the echo on this address and nothing else, until standard input ends (how a run
    /// starts its echo server).
    #[arg(long, value_name = "ADDR", hide = true)]
    echo_server: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let outcome = match arguments.echo_server {
        Some(address) => load::echo_server(address).await,
        None => match plan(arguments) {
            Ok(plan) => load::run(plan).await,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The run the arguments ask for, or an error naming the flag at fault.
fn plan(arguments: Arguments) -> anyhow::Result<load::Plan> {
    let target = match (arguments.target, arguments.token_file) {
        (Some(address), Some(token_file)) => Some((address, token_file)),
        (Some(_), None) => anyhow::bail!("--target needs --token-file, the operator token of that server"),
        (None, Some(_)) => {
            anyhow::bail!("--token-file goes with --target; without it the run starts its own server")
        }
        (None, None) => None,
    };
    anyhow::ensure!(
        target.is_some() || arguments.server_pid.is_none(),
        "--server-pid goes with --target; the run knows the server it starts"
    );
    anyhow::ensure!(
        (1..=load::replicas::REPLICAS_MAX).contains(&arguments.replicas),
        "--replicas: 1 to {}, not {}",
        load::replicas::REPLICAS_MAX,
        arguments.replicas
    );
    anyhow::ensure!(
        arguments.replicas == 1 || arguments.postgres.is_some(),
        "--replicas goes with --postgres: replicas share a PostgreSQL database"
    );
    anyhow::ensure!(
        target.is_none() || arguments.postgres.is_none(),
        "--postgres starts servers of the run's own; --target calls one already running"
    );
    anyhow::ensure!(
        !arguments.pages || (target.is_none() && arguments.postgres.is_none()),
        "--pages starts a server of the run's own on the embedded store: not with --target or --postgres"
    );
    if let Some(listings) = arguments.restart_listings {
        anyhow::ensure!(
            (1..=load::restart::LISTINGS_MAX).contains(&listings),
            "--restart-listings: 1 to {}, not {listings}",
            load::restart::LISTINGS_MAX
        );
        anyhow::ensure!(
            arguments.postgres.is_some() && target.is_none(),
            "--restart-listings goes with --postgres: the run restarts servers of its own over a database of its own"
        );
    }
    if let Some(lines) = arguments.import {
        anyhow::ensure!(
            (100..=load::import::LINES_MAX).contains(&lines),
            "--import: 100 to {}, not {lines}",
            load::import::LINES_MAX
        );
        anyhow::ensure!(
            target.is_none() && arguments.postgres.is_none() && !arguments.pages,
            "--import starts a server of the run's own on the embedded store: not with --target, --postgres or --pages"
        );
    }
    let clients = arguments.clients;
    anyhow::ensure!(
        (1..=CLIENT_COUNTS_MAX).contains(&clients.len()),
        "--clients: 1 to {CLIENT_COUNTS_MAX} numbers, not {}",
        clients.len()
    );
    if let Some(bad) = clients.iter().find(|count| !(1..=CLIENTS_MAX).contains(*count)) {
        anyhow::bail!("--clients: each number is 1 to {CLIENTS_MAX}, not {bad}");
    }
    let quick = arguments.quick;
    let seconds = arguments.seconds.unwrap_or(if quick { SECONDS_QUICK } else { SECONDS_DEFAULT });
    anyhow::ensure!((1..=SECONDS_MAX).contains(&seconds), "--seconds: 1 to {SECONDS_MAX}, not {seconds}");
    let warm_up_seconds = arguments.warm_up_seconds.unwrap_or(if quick {
        WARM_UP_SECONDS_QUICK
    } else {
        WARM_UP_SECONDS_DEFAULT
    });
    anyhow::ensure!(
        warm_up_seconds <= SECONDS_MAX,
        "--warm-up-seconds: 0 to {SECONDS_MAX}, not {warm_up_seconds}"
    );
    let organizations = clients.iter().copied().max().unwrap_or(1).min(load::setup::ORGANIZATIONS_MAX);
    let listings = arguments.listings.unwrap_or(if quick { LISTINGS_QUICK } else { LISTINGS_DEFAULT });
    anyhow::ensure!(
        (2 * organizations..=LISTINGS_MAX).contains(&listings),
        "--listings: {} to {LISTINGS_MAX} (an offer and a request for each of the {organizations} organizations), not {listings}",
        2 * organizations
    );
    let workloads = if arguments.workloads.is_empty() {
        load::workload::WORKLOADS.to_vec()
    } else {
        let mut chosen = Vec::new();
        for name in &arguments.workloads {
            let Some(workload) =
                load::workload::WORKLOADS.iter().find(|workload| workload.to_string() == *name)
            else {
                let names: Vec<String> = load::workload::WORKLOADS.iter().map(ToString::to_string).collect();
                anyhow::bail!("--workloads: {name:?} is none of {}", names.join(", "));
            };
            if !chosen.contains(workload) {
                chosen.push(*workload);
            }
        }
        chosen
    };
    Ok(load::Plan {
        target,
        workloads,
        server_pid: arguments.server_pid,
        clients,
        warm_up: Duration::from_secs(warm_up_seconds),
        measured: Duration::from_secs(seconds),
        listings,
        postgres: arguments.postgres,
        replicas: arguments.replicas,
        restart_listings: arguments.restart_listings,
        pages: arguments.pages,
        import: arguments.import,
    })
}
