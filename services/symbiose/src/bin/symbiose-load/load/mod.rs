//! `symbiose-load`: the whole service measured through gRPC, against a bare tonic echo on the
//! same machine with the same clients.

pub(crate) mod echo;
pub(crate) mod histogram;
pub(crate) mod import;
pub(crate) mod pages;
pub(crate) mod process;
pub(crate) mod replicas;
pub(crate) mod report;
pub(crate) mod restart;
pub(crate) mod setup;
pub(crate) mod workload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use self::workload::{Client, Workload};

/// What a run measures, checked: see the binary's flags.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Call this server instead of starting one, with the operator token of this file.
    pub(crate) target: Option<(String, PathBuf)>,
    /// The process of the target, for its CPU and memory.
    pub(crate) server_pid: Option<u32>,
    /// The numbers of clients measured, in this order.
    pub(crate) clients: Vec<usize>,
    pub(crate) warm_up: Duration,
    pub(crate) measured: Duration,
    /// The workloads measured after the echo, in this order.
    pub(crate) workloads: Vec<Workload>,
    /// Listings created and published before the phases.
    pub(crate) listings: usize,
    /// Start the servers on a database of their own on this PostgreSQL server, and measure
    /// with 1, then 2, ... up to `replicas` of them, the clients spread over them.
    pub(crate) postgres: Option<String>,
    pub(crate) replicas: usize,
    /// With `postgres`, time only restarts of the server over a log of this many listings.
    pub(crate) restart_listings: Option<u64>,
    /// Measure the passports' public web port instead (`pages`).
    pub(crate) pages: bool,
    /// Measure a bulk import of this many listings instead (`import`).
    pub(crate) import: Option<usize>,
}

/// The server a run calls.
struct Served {
    address: String,
    operator_token: String,
    pid: Option<u32>,
    description: String,
    /// Kept to the end of the run: dropping it stops the server, then removes its data.
    _started: Option<(process::StartedServer, tempfile::TempDir)>,
    /// The replicas over PostgreSQL, with `--postgres`.
    replicas: Option<replicas::Replicas>,
}

/// Runs `plan`, printing each table as soon as it is measured and the targets at the end.
pub(crate) async fn run(plan: Plan) -> anyhow::Result<()> {
    if plan.pages {
        return pages::run(&plan).await;
    }
    if let Some(lines) = plan.import {
        return import::run(lines).await;
    }
    if let (Some(listings), Some(server)) = (plan.restart_listings, &plan.postgres) {
        let binary = std::env::current_exe().context("finding this executable")?.with_file_name("symbiose");
        return restart::run(&binary, server, listings).await;
    }
    let clients_max = plan.clients.iter().copied().max().context("--clients names at least one number")?;
    let echo = process::start_echo().await?;
    let mut served = serve(&plan).await?;

    let setup_started = Instant::now();
    let operator_channel = process::connect(&served.address).await?;
    let operator = setup::authed(&operator_channel, &served.operator_token)?;
    let organizations = clients_max.min(setup::ORGANIZATIONS_MAX);
    let members = setup::register(&operator, &operator_channel, organizations)
        .await
        .context("registering the organizations (is --token-file an operator's token?)")?;
    let seeded =
        setup::seed(&operator_channel, &members, plan.listings).await.context("seeding the listings")?;
    let setup_s = setup_started.elapsed().as_secs_f64();
    let connect_clients = |addresses: Vec<String>| {
        let (members, seeded, token, echo_address) =
            (&members, &seeded, &served.operator_token, echo.address.to_string());
        async move {
            let mut clients = Vec::with_capacity(clients_max);
            for index in 0..clients_max {
                let owner = index % members.len();
                clients.push(Client::new(
                    index,
                    members[owner].clone(),
                    seeded[owner].clone(),
                    &process::connect(&addresses[index % addresses.len()]).await?,
                    token,
                    process::connect(&echo_address).await?,
                )?);
            }
            anyhow::Ok(clients)
        }
    };

    println!(
        "symbiose-load: {} s of warm-up then {} s measured per workload, each client one call at a time on a connection of its own",
        plan.warm_up.as_secs(),
        plan.measured.as_secs()
    );
    println!(
        "machine: {} cores ({}), shared by the server, the echo server and the clients",
        process::cores(),
        cpu_model()
    );
    println!("server: {}", served.description);
    println!(
        "columns: server cores and RSS are the serving process's (the echo server's on the echo row), load cores this process's (the clients), others the rest of the machine's"
    );
    println!(
        "echo: grpc.health.v1.Health/Check on a bare tonic server, this binary with --echo-server (pid {})",
        echo.process.pid()
    );
    println!(
        "setup: {organizations} organizations registered and {} listings published through the API in {setup_s:.1} s",
        plan.listings
    );

    let Some(mut replicas) = served.replicas.take() else {
        let clients = connect_clients(vec![served.address.clone()]).await?;
        let results = phases(&plan, clients, served.pid, echo.process.pid()).await?;
        let judged = results
            .iter()
            .find(|(count, _, _)| *count == report::TARGET_CLIENTS)
            .or_else(|| results.iter().max_by_key(|(count, _, _)| *count));
        if let Some((count, echo_measured, measured)) = judged {
            println!();
            print!("{}", report::targets(*count, echo_measured, measured));
        }
        if let Some(peak_bytes) = served.pid.and_then(process::peak_rss_bytes) {
            println!(
                "server peak RSS over the run (VmHWM): {:.0} MiB",
                peak_bytes as f64 / (1024.0 * 1024.0)
            );
        }
        return Ok(());
    };
    let outcome = async {
        let mut by_replicas = Vec::new();
        for count in 1..=plan.replicas {
            replicas.grow_to(count).await?;
            println!();
            println!("== {count} replica(s) of the server over one PostgreSQL database, the clients spread over them (server columns: the first replica's)");
            let clients = connect_clients(replicas.addresses()).await?;
            by_replicas.push((count, phases(&plan, clients, served.pid, echo.process.pid()).await?));
        }
        println!();
        print!("{}", report::replicas(&by_replicas));
        let events = replicas.events().await?;
        let took = replicas.restart_last().await?;
        println!(
            "restart: replica {} killed and started again on a log of {events} events: serving after {:.2} s (its views rebuilt from the first event)",
            replicas.servers.len(),
            took.as_secs_f64()
        );
        anyhow::Ok(())
    }
    .await;
    replicas.close().await;
    outcome?;
    Ok(())
}

/// Measures every workload with each number of clients of `plan`, printing each table.
async fn phases(
    plan: &Plan,
    mut clients: Vec<Client>,
    server_pid: Option<u32>,
    echo_pid: u32,
) -> anyhow::Result<Vec<report::Phases>> {
    let mut results: Vec<report::Phases> = Vec::with_capacity(plan.clients.len());
    for &count in &plan.clients {
        let rest = clients.split_off(count);
        let mut notes = Vec::new();
        notes.extend(settle(server_pid, Workload::Echo).await);
        let (echo_measured, mut running) =
            workload::run(Workload::Echo, clients, plan.warm_up, plan.measured, Some(echo_pid)).await?;
        let mut measured = Vec::with_capacity(plan.workloads.len());
        for &workload in &plan.workloads {
            notes.extend(settle(server_pid, workload).await);
            let (phase, back) =
                workload::run(workload, running, plan.warm_up, plan.measured, server_pid).await?;
            running = back;
            measured.push(phase);
        }
        clients = running;
        clients.extend(rest);
        println!();
        println!("{count} clients");
        print!("{}", report::table(&echo_measured, &measured));
        for note in notes {
            println!("  {note}");
        }
        results.push((count, echo_measured, measured));
    }
    Ok(results)
}

/// Waits until the server is idle before `next` (when its process is known); a note if it was
/// still busy at the bound: the catalog, matching and its proposals follow the log behind the
/// commands, and the next phase then shares the machine with them.
async fn settle(pid: Option<u32>, next: Workload) -> Option<String> {
    let pid = pid?;
    match workload::settle(pid).await {
        Some(_) => None,
        None => Some(format!(
            "before {next}: the server was still busy {} s after the phase before",
            workload::SETTLE_WAIT_MS / 1000
        )),
    }
}

/// Starts the standalone server beside this executable, or describes the target.
async fn serve(plan: &Plan) -> anyhow::Result<Served> {
    if let Some((address, token_file)) = &plan.target {
        let operator_token = std::fs::read_to_string(token_file)
            .with_context(|| format!("--token-file {}: reading the operator token", token_file.display()))?
            .trim()
            .to_owned();
        let pid = plan.server_pid;
        let description = match pid {
            Some(pid) => format!("{address} (pid {pid}), not started by this run"),
            None => format!("{address}, not started by this run (no --server-pid: no CPU or memory figures)"),
        };
        return Ok(Served {
            address: address.clone(),
            operator_token,
            pid,
            description,
            _started: None,
            replicas: None,
        });
    }
    let executable = std::env::current_exe().context("finding this executable")?;
    let binary = executable.with_file_name("symbiose");
    if let Some(server) = &plan.postgres {
        let replicas = replicas::Replicas::start(&binary, server).await?;
        let (first, _) = &replicas.servers[0];
        let description = format!(
            "{} (pid {} for the first), replicas on a PostgreSQL database of the run's own at {server}, started by this run",
            binary.display(),
            first.process.pid()
        );
        return Ok(Served {
            address: first.address.to_string(),
            operator_token: first.operator_token.clone(),
            pid: Some(first.process.pid()),
            description,
            _started: None,
            replicas: Some(replicas),
        });
    }
    let data_dir = tempfile::Builder::new()
        .prefix("symbiose-load-")
        .tempdir()
        .context("making the server's temporary data directory")?;
    let started = process::start_server(&binary, data_dir.path()).await?;
    let description = format!(
        "{} (pid {}), on the embedded store in {}, started by this run",
        started.binary.display(),
        started.process.pid(),
        data_dir.path().display()
    );
    Ok(Served {
        address: started.address.to_string(),
        operator_token: started.operator_token.clone(),
        pid: Some(started.process.pid()),
        description,
        _started: Some((started, data_dir)),
        replicas: None,
    })
}

/// Serves the echo on `address` until standard input ends: the `--echo-server` mode.
pub(crate) async fn echo_server(address: SocketAddr) -> anyhow::Result<()> {
    echo::serve(address).await
}

/// The processor's name from `/proc/cpuinfo`, or "unknown processor".
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown processor".to_owned())
}
