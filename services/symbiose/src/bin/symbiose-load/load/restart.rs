//! How long the server takes to serve again after a restart over a big log, with and without
//! its views' snapshots: a PostgreSQL database of the run's own is filled with `--listings`
//! published offers straight through the store (the stored form the listings service writes,
//! `symbiose_catalog::sample`), then the server is started on it three times, killed with
//! SIGKILL after each: with snapshots off (every view replays the log: the baseline), with
//! snapshots on for the first time (it replays, then saves a snapshot of each view), and with
//! snapshots on again (each view restores its snapshot and replays only what follows).
//!
//! Each start is timed to the health check's SERVING and to the moment every view and the
//! catalog have caught up with the log (the server's log says when each did).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use symbiose_catalog::sample::{self, Random};
use symbiose_eventstore::postgres::{PostgresOptions, PostgresStore};
use symbiose_eventstore::{APPEND_MANY_MAX, Append, EventStore as _, ExpectedVersion};
use symbiose_shell::snapshot::SNAPSHOT_EVENTS_DEFAULT;

use super::process;
use super::replicas::{connect, create_database, drop_database};

/// Most listings a run fills its log with.
pub(crate) const LISTINGS_MAX: u64 = 5_000_000;
/// Batches of appends in flight while filling the log.
const FILL_BATCHES_IN_FLIGHT: usize = 4;
/// Longest wait for a start, for the views to catch up, or for the snapshots to be saved.
const START_WAIT: Duration = Duration::from_secs(1_800);
/// Pause between two looks at the server's log or at the snapshots.
const POLL: Duration = Duration::from_millis(20);
/// The read models of the one-process server, each of which says when it caught up: five
/// views and the catalog, each with a snapshot.
const VIEWS: usize = 6;
/// What the server logs when a view, or the catalog, reached the log's head as it was at start.
const VIEW_CAUGHT_UP: &str = "a view caught up with the log";
const CATALOG_CAUGHT_UP: &str = "catalog caught up with the log";

/// One timed start.
struct Start {
    serving: Duration,
    caught_up: Duration,
    restored: usize,
    rss_mib: u64,
    /// Each view's and the catalog's own time to catch up, as the server's log says.
    each: Vec<(String, f64)>,
}

/// Each view's and the catalog's time to catch up, and whether from a snapshot, from the JSON
/// lines of the server's `log`.
fn each_caught_up(log: &str) -> Vec<(String, f64, bool)> {
    log.lines()
        .filter_map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).ok()?;
            let fields = record.get("fields").unwrap_or(&record);
            let message = fields.get("message")?.as_str()?;
            let (name, ms) = if message == VIEW_CAUGHT_UP {
                (fields.get("view")?.as_str()?.to_owned(), fields.get("elapsed_ms")?)
            } else if message == CATALOG_CAUGHT_UP {
                ("catalog".to_owned(), fields.get("duration_ms")?)
            } else {
                return None;
            };
            let restored = fields.get("from_snapshot").and_then(serde_json::Value::as_bool).unwrap_or(false);
            Some((name, ms.as_f64()? / 1000.0, restored))
        })
        .collect()
}

/// Fills a database of the run's own with `listings` offers, times the three starts, prints
/// them, and drops the database.
pub(crate) async fn run(binary: &Path, server: &str, listings: u64) -> anyhow::Result<()> {
    let database = create_database(server).await?;
    let outcome = measure(binary, server, &database, listings).await;
    drop_database(server, &database).await;
    outcome
}

async fn measure(binary: &Path, server: &str, database: &str, listings: u64) -> anyhow::Result<()> {
    let url = format!("{}/{database}", server.trim_end_matches('/'));
    println!(
        "symbiose-load --restart-listings: the server over a PostgreSQL database of the run's own at {server}"
    );
    println!("machine: {} cores, shared by the server, PostgreSQL and this process", process::cores());
    let filled = Instant::now();
    fill(&url, listings).await?;
    println!(
        "fill: {listings} offers, {} events, appended through the store in {:.1} s",
        2 * listings,
        filled.elapsed().as_secs_f64()
    );
    let data_dir = tempfile::Builder::new()
        .prefix("symbiose-load-restart-")
        .tempdir()
        .context("making the server's temporary data directory")?;
    let (mut server_process, replay) = timed_start(binary, data_dir.path(), &url, "0").await?;
    server_process.process.kill();
    report("snapshots off (SYMBIOSE_VIEW_SNAPSHOT_EVENTS=0): every view replays the log", &replay);

    // The default, or fewer for a log too short to reach it.
    let every = (2 * listings).min(SNAPSHOT_EVENTS_DEFAULT).to_string();
    let (mut server_process, first) = timed_start(binary, data_dir.path(), &url, &every).await?;
    let saved = Instant::now();
    let (count, bytes) = wait_for_snapshots(&url).await?;
    server_process.process.kill();
    report(
        &format!(
            "snapshots on (SYMBIOSE_VIEW_SNAPSHOT_EVENTS={every}), none saved yet: every view replays the log, then saves its snapshot"
        ),
        &first,
    );
    println!(
        "  {count} snapshots saved, {:.1} MiB in all, {:.1} s after the views caught up",
        bytes as f64 / (1024.0 * 1024.0),
        saved.elapsed().as_secs_f64()
    );

    let (mut server_process, restored) = timed_start(binary, data_dir.path(), &url, &every).await?;
    server_process.process.kill();
    report("snapshots on: every view restores its snapshot and replays what follows", &restored);
    anyhow::ensure!(restored.restored == VIEWS, "{} of {VIEWS} views restored a snapshot", restored.restored);
    println!(
        "restored / replayed (same run): {:.2} of the time to serve, {:.2} of the time to catch up",
        restored.serving.as_secs_f64() / replay.serving.as_secs_f64(),
        restored.caught_up.as_secs_f64() / replay.caught_up.as_secs_f64()
    );
    Ok(())
}

fn report(title: &str, start: &Start) {
    println!("{title}");
    println!(
        "  health SERVING after {:.2} s; every view and the catalog caught up after {:.2} s ({} restored); RSS {} MiB",
        start.serving.as_secs_f64(),
        start.caught_up.as_secs_f64(),
        start.restored,
        start.rss_mib
    );
    let each: Vec<String> =
        start.each.iter().map(|(name, seconds)| format!("{name} {seconds:.2} s")).collect();
    println!("  each caught up after: {}", each.join(", "));
}

/// Appends `listings` sample offers, [`APPEND_MANY_MAX`] streams a call, a few calls at once.
async fn fill(url: &str, listings: u64) -> anyhow::Result<()> {
    let store = PostgresStore::connect(url, PostgresOptions::default())
        .await
        .with_context(|| format!("opening the store at {url}"))?;
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let mut random = Random::new(sample::OFFERS_SEED);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut left = listings;
    while left > 0 {
        if in_flight.len() >= FILL_BATCHES_IN_FLIGHT {
            in_flight.join_next().await.context("a batch")???;
        }
        let count = left.min(APPEND_MANY_MAX as u64);
        left -= count;
        let appends: Vec<Append> = (0..count)
            .map(|_| {
                let (stream, events) = sample::offer(&mut random, now_s);
                Append { stream, expected: ExpectedVersion::NoStream, events }
            })
            .collect();
        let store = store.clone();
        in_flight.spawn(async move {
            for answer in store.append_many(appends).await {
                answer?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = in_flight.join_next().await {
        joined??;
    }
    store.close().await;
    Ok(())
}

/// Starts the server on `url` with `SYMBIOSE_VIEW_SNAPSHOT_EVENTS=snapshot_events` and times it.
async fn timed_start(
    binary: &Path,
    data_dir: &Path,
    url: &str,
    snapshot_events: &str,
) -> anyhow::Result<(process::StartedServer, Start)> {
    let log_path = data_dir.join("server.log");
    let log_from = std::fs::metadata(&log_path).map_or(0, |metadata| metadata.len() as usize);
    let started = Instant::now();
    let server = process::start_server_with(
        binary,
        data_dir,
        Some(url),
        &[
            (symbiose_kit::config::VIEW_SNAPSHOT_EVENTS, snapshot_events),
            (symbiose_kit::config::LOG_FORMAT, "json"),
        ],
        START_WAIT,
    )
    .await?;
    let serving = started.elapsed();
    loop {
        let log = std::fs::read(&log_path).with_context(|| format!("reading {}", log_path.display()))?;
        let log = String::from_utf8_lossy(log.get(log_from..).unwrap_or_default());
        let each = each_caught_up(&log);
        if each.len() >= VIEWS {
            let caught_up = started.elapsed();
            let rss_mib = process::usage(server.process.pid()).map_or(0, |usage| usage.rss_bytes >> 20);
            let restored = each.iter().filter(|(_, _, restored)| *restored).count();
            let each = each.into_iter().map(|(name, seconds, _)| (name, seconds)).collect();
            return Ok((server, Start { serving, caught_up, restored, rss_mib, each }));
        }
        anyhow::ensure!(
            started.elapsed() < START_WAIT,
            "{} of {VIEWS} views caught up within {} s",
            each.len(),
            START_WAIT.as_secs()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits for a snapshot of every view in the database: how many, and their bytes.
async fn wait_for_snapshots(url: &str) -> anyhow::Result<(i64, i64)> {
    let client = connect(url).await?;
    let started = Instant::now();
    loop {
        let row = client
            .query_one("SELECT count(*), coalesce(sum(length(body)), 0)::bigint FROM symbiose_snapshots", &[])
            .await
            .context("counting the snapshots")?;
        let (count, bytes): (i64, i64) = (row.get(0), row.get(1));
        if count >= VIEWS as i64 {
            return Ok((count, bytes));
        }
        anyhow::ensure!(
            started.elapsed() < START_WAIT,
            "{count} of {VIEWS} snapshots saved within {} s",
            START_WAIT.as_secs()
        );
        tokio::time::sleep(POLL).await;
    }
}
