//! catalog-bench: how fast the catalog rebuilds from the embedded store, and how fast it
//! answers a radius query, with many open listings.
//!
//! It fills a fresh embedded store (in a temporary directory, removed at the end) with
//! `--listings` offers of EUR pallets (a `ListingCreated` and a `ListingPublished` each, in
//! the stored form the listings service writes), at towns of the reference table jittered by
//! up to 0.3 degrees; then times the stages of a rebuild one after the other on one thread
//! (the log read in pages alone, then read and decoded, then read, decoded and folded, then the
//! entries built and the R-tree bulk-loaded); then `--rebuilds` rebuilds of the catalog from
//! position 0 the way the server does it at start (`symbiose_catalog::follow`), each right
//! after a bare read of the same store, its baseline, with the CPU time they used; then times
//! `--queries` radius queries at random towns, first page (50), nearest first, on the
//! projection (no cache).
//!
//! `cargo run --release -p symbiose-catalog --bin catalog-bench -- --listings 1000000`

/// The allocator the server binaries use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use symbiose_catalog::Catalog;
use symbiose_catalog::projection::Rebuild;
use symbiose_catalog::query::{Query, Sort};
use symbiose_catalog::sample::{self, Random};
use symbiose_domain::{GeoPoint, MaterialFamily, PalletGrade, geo};
use symbiose_eventstore::embedded::{EmbeddedStore, Options};
use symbiose_eventstore::{EventStore, ExpectedVersion, Position, READ_EVENTS_MAX, RecordedEvent};
use symbiose_feed::ConsumerOptions;
use symbiose_shell::Snapshots;

/// Appends in flight while filling the store.
const FILL_APPENDS_IN_FLIGHT: usize = 256;
/// Longest wait for the rebuild to reach the head.
const REBUILD_WAIT_S_MAX: u64 = 3_600;

#[derive(Debug)]
struct Arguments {
    listings: u64,
    queries: usize,
    rebuilds: usize,
}

fn arguments() -> anyhow::Result<Arguments> {
    let mut arguments = Arguments { listings: 1_000_000, queries: 10_000, rebuilds: 3 };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let value = words.next().with_context(|| format!("{word} needs a value"))?;
        match word.as_str() {
            "--listings" => arguments.listings = value.parse().context("--listings")?,
            "--queries" => arguments.queries = value.parse().context("--queries")?,
            "--rebuilds" => arguments.rebuilds = value.parse().context("--rebuilds")?,
            other => {
                anyhow::bail!("unknown argument {other}: expected --listings N, --queries N, --rebuilds N")
            }
        }
    }
    Ok(arguments)
}

async fn fill(store: &EmbeddedStore, listings: u64) -> anyhow::Result<()> {
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let mut random = Random::new(sample::OFFERS_SEED);
    let mut in_flight = tokio::task::JoinSet::new();
    for _ in 0..listings {
        if in_flight.len() >= FILL_APPENDS_IN_FLIGHT {
            in_flight.join_next().await.context("a task")???;
        }
        let (stream, events) = sample::offer(&mut random, now_s);
        let store = store.clone();
        in_flight
            .spawn(async move { store.append(&stream, ExpectedVersion::NoStream, events).await.map(|_| ()) });
    }
    while let Some(joined) = in_flight.join_next().await {
        joined??;
    }
    Ok(())
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn query(point: GeoPoint, radius_km: u32, pallet_grade: Option<PalletGrade>) -> Query {
    Query {
        side: None,
        family: pallet_grade.map(|_| MaterialFamily::Pallets),
        waste_code: None,
        waste_chapter: None,
        hazardous: None,
        legal_status: None,
        pallet_grade,
        near: Some((point, radius_km)),
        countries: vec![],
        currency: None,
        price_min_minor: None,
        price_max_minor: None,
        available_on_ms: None,
        sort: Sort::Distance,
        page_size: symbiose_kit::page::PAGE_SIZE_DEFAULT,
        after: None,
    }
}

fn time_queries(
    catalog: &Catalog,
    queries: usize,
    radius_km: u32,
    pallet_grade: Option<PalletGrade>,
) -> String {
    let mut random = Random::new(0x0bad_5eed_0000_0002);
    let projection = catalog.read();
    let mut latencies = Vec::with_capacity(queries);
    let mut hits = 0usize;
    for _ in 0..queries {
        let town = &geo::places()[random.below(geo::places().len())];
        let query = query(town.point, radius_km, pallet_grade);
        let started = Instant::now();
        let page = query.run(&projection);
        latencies.push(started.elapsed());
        hits += page.hits.len();
    }
    latencies.sort();
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} queries, {:.1} hits a page on average)",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        queries,
        hits as f64 / queries.max(1) as f64,
    )
}

/// Reads the log from position 0 up to `head` in pages of [`READ_EVENTS_MAX`], handing each
/// page to `each`; the time it took.
async fn scan(
    store: &EmbeddedStore,
    head: u64,
    mut each: impl FnMut(&[RecordedEvent]) -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut next = 0;
    while next < head {
        let page = store.read_all(Position::from_u64(next), READ_EVENTS_MAX).await?;
        let last = page.last().context("the log ends before its head")?;
        next = last.position.as_u64() + 1;
        each(&page)?;
    }
    Ok(started.elapsed())
}

/// Rebuilds `catalog` from position 0 the way the server does at start, and stops following
/// once it has reached `events`; the time that took.
async fn time_rebuild(
    catalog: &Arc<Catalog>,
    store: &EmbeddedStore,
    events: u64,
    feed_dir: &std::path::Path,
) -> anyhow::Result<Duration> {
    let options = ConsumerOptions::new("catalog-bench", feed_dir.to_owned())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    // No snapshot: each run times a rebuild from the first event.
    let task = tokio::spawn(symbiose_catalog::follow(
        catalog.clone(),
        store.clone(),
        options,
        Snapshots::OFF,
        async move {
            let _ = stopped.await;
        },
    ));
    let mut position = catalog.watch_position();
    tokio::time::timeout(
        Duration::from_secs(REBUILD_WAIT_S_MAX),
        position.wait_for(|next| next.as_u64() >= events),
    )
    .await
    .context("the rebuild did not finish in time")??;
    let rebuilt = started.elapsed();
    let _ = stop.send(());
    task.await??;
    Ok(rebuilt)
}

/// The CPU time the process has used so far, all threads, user and system, from
/// `/proc/self/stat` (in clock ticks, 100 a second on Linux); zero where that is not readable.
/// On a shared machine the wall time of a rebuild depends on the neighbours; its CPU time
/// much less.
fn cpu_time() -> Duration {
    let ticks = || -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The fields after the command name start at the third, the state; utime and stime
        // are the 14th and 15th.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    };
    Duration::from_millis(ticks().unwrap_or(0) * 10)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn rate(events: u64, took: Duration) -> String {
    format!(
        "{events} events in {:.2} s = {:.0} events/s",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    )
}

/// Times the stages of a rebuild one after the other, on one thread: each line is the cost of
/// its stages together, so the difference between two lines is the cost of the stage added.
async fn time_phases(store: &EmbeddedStore, events: u64) -> anyhow::Result<()> {
    let mut payload_bytes = 0;
    let cpu_before = cpu_time();
    let read = scan(store, events, |page| {
        payload_bytes += page.iter().map(|event| event.payload.len()).sum::<usize>();
        Ok(())
    })
    .await?;
    println!(
        "phase read (read_all in pages): {}, {payload_bytes} payload bytes, {:.2} s of CPU",
        rate(events, read),
        cpu_time().saturating_sub(cpu_before).as_secs_f64()
    );
    let mut decoded = 0_u64;
    let cpu_before = cpu_time();
    let took = scan(store, events, |page| {
        for event in page {
            decoded +=
                u64::from(symbiose_catalog::listing_event(event).map_err(anyhow::Error::msg)?.is_some());
        }
        Ok(())
    })
    .await?;
    println!(
        "phase read + decode: {}, {decoded} listing events, {:.2} s of CPU",
        rate(events, took),
        cpu_time().saturating_sub(cpu_before).as_secs_f64()
    );
    let mut rebuild = Rebuild::default();
    let cpu_before = cpu_time();
    let took = scan(store, events, |page| {
        for event in page {
            if let Some((id, decoded)) = symbiose_catalog::listing_event(event).map_err(anyhow::Error::msg)? {
                rebuild.push(id, event.version, event.position.as_u64(), &decoded);
            }
        }
        Ok(())
    })
    .await?;
    println!(
        "phase read + decode + fold: {}, {:.2} s of CPU",
        rate(events, took),
        cpu_time().saturating_sub(cpu_before).as_secs_f64()
    );
    let cpu_before = cpu_time();
    let started = Instant::now();
    let projection = rebuild.finish();
    let took = started.elapsed();
    println!(
        "phase finish (entries, R-tree bulk load): {:.2} s for {} open entries, {:.2} s of CPU",
        took.as_secs_f64(),
        projection.len(),
        cpu_time().saturating_sub(cpu_before).as_secs_f64()
    );
    let started = Instant::now();
    drop(projection);
    println!("phase drop of the projection: {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = arguments()?;
    let dir = std::env::temp_dir().join(format!("catalog-bench-{}", std::process::id()));
    let result = run(&arguments, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(arguments: &Arguments, dir: &std::path::Path) -> anyhow::Result<()> {
    let (store, _) = EmbeddedStore::open(dir.join("events"), Options::default())?;
    let started = Instant::now();
    fill(&store, arguments.listings).await?;
    let events = store.head().as_u64();
    let filled = started.elapsed();
    println!(
        "fill: {} listings, {events} events in {:.2} s = {:.0} events/s",
        arguments.listings,
        filled.as_secs_f64(),
        events as f64 / filled.as_secs_f64()
    );

    time_phases(&store, events).await?;

    // The machine may be shared: each rebuild is timed right after a bare read of the same
    // store, and the ratio of the two is what compares across runs.
    let mut catalog = Catalog::new();
    let mut ratios = Vec::with_capacity(arguments.rebuilds);
    let mut rates = Vec::with_capacity(arguments.rebuilds);
    for rebuild in 1..=arguments.rebuilds {
        let read = scan(&store, events, |_| Ok(())).await?;
        let read_rate = events as f64 / read.as_secs_f64();
        catalog = Catalog::new();
        let cpu_before = cpu_time();
        let rebuilt = time_rebuild(&catalog, &store, events, &dir.join("feed")).await?;
        let cpu = cpu_time().saturating_sub(cpu_before);
        let rebuild_rate = events as f64 / rebuilt.as_secs_f64();
        println!(
            "rebuild {rebuild} (read in pages, decode, fold, R-tree bulk load): {}, {} open entries, {:.2} s of CPU; bare read just before: {read_rate:.0} events/s; ratio {:.2}",
            rate(events, rebuilt),
            catalog.read().len(),
            cpu.as_secs_f64(),
            rebuild_rate / read_rate
        );
        ratios.push(rebuild_rate / read_rate);
        rates.push(rebuild_rate);
    }
    println!(
        "rebuild, median of {}: {:.0} events/s, {:.2} of the bare read",
        arguments.rebuilds,
        median(&mut rates),
        median(&mut ratios)
    );

    let catalog: Arc<Catalog> = catalog;
    for radius_km in [100, 200] {
        println!(
            "radius {radius_km} km, first page nearest first, any listing: {}",
            time_queries(&catalog, arguments.queries, radius_km, None)
        );
    }
    println!(
        "radius 200 km, first page nearest first, pallets of grade B: {}",
        time_queries(&catalog, arguments.queries, 200, Some(PalletGrade::B))
    );
    store.close().await;
    Ok(())
}
