//! Measures the relay: events per second from the store to acknowledged JetStream publishes.
//!
//! ```text
//! cargo run --release -p symbiose-feed --bin feed-bench -- [--events N] [--quick]
//! ```
//!
//! It starts its own `nats-server -js` (on a free loopback port, with its storage in a
//! temporary directory), fills an embedded store with N events of a contract type (256-byte
//! payloads, 64 events per append, spread over many streams), then times a fresh relay from
//! position 0 until every event is acknowledged by JetStream, with the default window of
//! publishes in flight, and once more with one publish in flight (no pipelining) on a tenth
//! of the events, for comparison. Both runs end with a checkpoint saved. Between the two, it
//! times an import (`symbiose_feed::start_imports`, what a service running alone does with
//! another context's events) of a tenth of the relayed events from JetStream into a fresh
//! store: a durable consumer, up to 256 messages taken at once, each stream's events of a
//! batch in one append and the batch's appends written together (one `fdatasync`). `--quick` relays 20,000 events (a smoke test, not a measurement).

use std::time::{Duration, Instant};

use bytes::Bytes;
use symbiose_eventstore::embedded::{EmbeddedStore, Options};
use symbiose_eventstore::{EventData, EventStore, ExpectedVersion, StreamName};
use symbiose_feed::testing::NatsServer;
use symbiose_feed::{Relay, RelayOptions};
use tokio::task::JoinSet;
use uuid::Uuid;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const EVENTS_DEFAULT: u64 = 500_000;
const EVENTS_QUICK: u64 = 20_000;
const PAYLOAD_BYTES: usize = 256;
const EVENTS_PER_APPEND: u64 = 64;
/// Appends in flight while filling the store: enough for the writer to group them.
const FILL_TASKS: u64 = 16;
const EVENT_TYPE: &str = "symbiose.listings.v1.OrganizationRegistered";
/// Longest a relay run may take before the benchmark gives up.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
const POLL_INTERVAL: Duration = Duration::from_millis(2);

fn main() -> BenchResult<()> {
    let mut events = EVENTS_DEFAULT;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => events = EVENTS_QUICK,
            "--events" => events = args.next().ok_or("--events needs a number")?.parse()?,
            other => return Err(format!("unknown argument {other}; use --events N or --quick").into()),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(events))
}

async fn bench(events: u64) -> BenchResult<()> {
    let nats = NatsServer::start()?;
    let version = std::process::Command::new(symbiose_feed::testing::find_binary().ok_or("nats-server")?)
        .arg("--version")
        .output()?;
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism()?,
        String::from_utf8_lossy(&version.stdout).trim()
    );
    println!("events: {events} of {PAYLOAD_BYTES}-byte payload, type {EVENT_TYPE}, JetStream file storage");

    let pipelined = relay_run(&nats, events, RelayOptions::new("unused")).await?;
    println!(
        "relay, {} publishes in flight: {events} events in {:.2} s = {:.0} events/s ({:.1} MB/s of payload)",
        symbiose_feed::RELAY_IN_FLIGHT_MAX,
        pipelined.as_secs_f64(),
        events as f64 / pipelined.as_secs_f64(),
        (events as usize * PAYLOAD_BYTES) as f64 / pipelined.as_secs_f64() / 1e6,
    );

    // The stream now holds the events relayed above: a service alone imports them.
    let import_events = (events / 10).max(1);
    let imported = import_run(&nats, import_events).await?;
    println!(
        "import, batches of up to {}: {import_events} events in {:.2} s = {:.0} events/s",
        symbiose_feed::IMPORT_BATCH_MAX,
        imported.as_secs_f64(),
        import_events as f64 / imported.as_secs_f64(),
    );

    let serial_events = (events / 10).max(1);
    let mut serial_options = RelayOptions::new("unused");
    serial_options.in_flight_max = 1;
    let serial = relay_run(&nats, serial_events, serial_options).await?;
    println!(
        "relay, 1 publish in flight: {serial_events} events in {:.2} s = {:.0} events/s",
        serial.as_secs_f64(),
        serial_events as f64 / serial.as_secs_f64(),
    );
    let import_rate = import_events as f64 / imported.as_secs_f64();
    println!(
        "import / relay (same run): {:.2} of the pipelined relay, {:.2} of the relay with 1 publish in flight",
        import_rate / (events as f64 / pipelined.as_secs_f64()),
        import_rate / (serial_events as f64 / serial.as_secs_f64())
    );
    Ok(())
}

/// Times the import of the first `events` events of the listings' stream into a fresh store.
async fn import_run(nats: &NatsServer, events: u64) -> BenchResult<Duration> {
    let dir = tempfile::tempdir()?;
    let (store, _) = EmbeddedStore::open(dir.path().join("events"), Options::default())?;
    let client = symbiose_feed::connect(&nats.url(), None, "feed-bench-import").await?;
    let started = Instant::now();
    let imports =
        symbiose_feed::start_imports(symbiose_feed::jetstream(client), store.clone(), "bench", &["listings"]);
    while store.head().as_u64() < events {
        if started.elapsed() > RUN_TIMEOUT {
            return Err(
                format!("the import did not finish in {RUN_TIMEOUT:?}: {} events", store.head()).into()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let elapsed = started.elapsed();
    imports.stop().await;
    store.close().await;
    Ok(elapsed)
}

/// Fills a fresh store with `events` events of a context of its own, then times a relay from
/// position 0 to the last acknowledgement and its checkpoint.
async fn relay_run(nats: &NatsServer, events: u64, mut options: RelayOptions) -> BenchResult<Duration> {
    let dir = tempfile::tempdir()?;
    let (store, _) = EmbeddedStore::open(dir.path().join("events"), Options::default())?;
    fill(&store, events).await?;

    let client = symbiose_feed::connect(&nats.url(), None, "feed-bench").await?;
    client.flush().await?;
    options.checkpoint_path = dir.path().join("relay.checkpoint");
    // Each run gets empty streams: delete what an earlier run left.
    let jetstream = symbiose_feed::jetstream(client);
    let _ = jetstream.delete_stream("SYMBIOSE_LISTINGS").await;
    let relay = Relay::new(store.clone(), jetstream, options.with_contexts(&["listings"]));
    let metrics = relay.metrics();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(relay.run(async move {
        let _ = stopped.await;
    }));
    while metrics.stats().checkpoint_position < events {
        if started.elapsed() > RUN_TIMEOUT {
            return Err(format!("the relay did not finish in {RUN_TIMEOUT:?}: {:?}", metrics.stats()).into());
        }
        if task.is_finished() {
            return Err(format!("the relay stopped: {:?}", task.await?).into());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    task.await??;
    let stats = metrics.stats();
    assert_eq!(stats.published, events, "every event published once");
    store.close().await;
    Ok(elapsed)
}

async fn fill(store: &EmbeddedStore, events: u64) -> BenchResult<()> {
    let payload = Bytes::from(vec![0x5a; PAYLOAD_BYTES]);
    let appends = events.div_ceil(EVENTS_PER_APPEND);
    let mut tasks = JoinSet::new();
    for task in 0..FILL_TASKS {
        let (store, payload) = (store.clone(), payload.clone());
        tasks.spawn(async move {
            let mut append = task;
            while append < appends {
                let first = append * EVENTS_PER_APPEND;
                let count = EVENTS_PER_APPEND.min(events - first);
                let batch =
                    (0..count).map(|_| EventData::new(Uuid::now_v7(), EVENT_TYPE, payload.clone())).collect();
                let stream = StreamName::for_aggregate("organization", Uuid::now_v7())?;
                store.append(&stream, ExpectedVersion::NoStream, batch).await?;
                append += FILL_TASKS;
            }
            Ok::<(), symbiose_eventstore::StoreError>(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    assert_eq!(store.head().as_u64(), events);
    Ok(())
}
