//! Measures the embedded event store against the disk it runs on, in one run.
//!
//! ```text
//! cargo run --release -p symbiose-eventstore --bin eventstore-bench -- [--dir PATH] [--quick] [--appends-only]
//!     [--sync-gather-us N] [--postgres-url URL]
//! cargo run --release -p symbiose-eventstore --bin eventstore-bench -- --store postgres [--postgres-url URL] [--quick]
//! ```
//!
//! It prints, one result a line, each with its unit and its ratio to a physical limit measured
//! by the same run on the same disk:
//!
//! 1. The disk: the rate of 4 KiB `write` + `fdatasync` appends, the sequential write bandwidth
//!    (1 MiB writes, one `fdatasync` at the end), and the rate of `fdatasync`ed writes of 512
//!    events of 300 bytes, turned into the events per second the disk takes at that batch size.
//! 2. Durable appends of one 256-byte event each by 1, 16 and 256 concurrent writers, each on
//!    its own stream with an exact expected version: events per second, latency percentiles
//!    and appends per `fdatasync`, against the fsync rate and the disk's events per second at
//!    512-event batches, with the targets and whether they are met. The store's
//!    `Options::sync_gather_us` is its default, or `--sync-gather-us N`.
//! 3. The sync policy: for 1 and 256 writers, twice, a store that syncs whatever is written at
//!    once (`sync_gather_us` 0, the store before gathering), then the store of 2 again right
//!    after it, and their ratio: events per second, p50 and p99.
//! 4. The same appends through the store's peers, where they are on this machine (otherwise a
//!    line says which was skipped and why), each figure with its ratio to the embedded store's
//!    in 2 and to the fsync rate, then the targets: the embedded store with 256 writers
//!    against each peer with 256 writers (and against the peer's best figure of the run):
//!    - JetStream: a `nats-server -js` this program starts (from `PATH` or
//!      [`NATS_SERVER_PATH`], on a free loopback port, its store in the work directory). Each
//!      writer publishes to a stream of its own with the expected last subject sequence
//!      (`Nats-Expected-Last-Subject-Sequence`), up to [`JETSTREAM_IN_FLIGHT_MAX`] publishes
//!      in flight. A stream per writer, because in a shared stream a publish cannot name the
//!      sequence it expects before the one before it is acknowledged. nats-server 2.9
//!      acknowledges a publish before its fsync: the output says so beside the figures.
//!    - PostgreSQL at `--postgres-url` (default [`POSTGRES_URL_DEFAULT`]), in a database of its
//!      own: a plain events table ([`PLAIN_TABLE`]: an identity position, `UNIQUE (stream,
//!      version)` for the expected version), one connection per writer (as many as the server
//!      allows, said in the output), in transactions of one append (one `INSERT` in
//!      autocommit), of 100 appends as 100 `INSERT`s sent together between `BEGIN` and
//!      `COMMIT`, and of 100 appends as one `INSERT` of 100 rows (arrays `unnest`ed), the
//!      server's best for a batch.
//! 5. Reading a whole log back, through `read_all` pages and through `subscribe_all(Position::START)`.
//! 6. Opening a log of 10,000,000 events, in a fresh process (this program again, with a hidden
//!    `--open-child DIR`): the seconds, the peak RSS after it, the store's `OpenReport`; once
//!    as the store left the log, once with its segment index files removed (a full scan).
//!
//! `--appends-only` stops after 4. The logs of 5 and 6 are filled with appends of 512 events to
//! 10,000 streams, 16 appends in flight; their line ("fill") is a figure too, for bulk writes.
//! The appends of 2 take their ids from `Uuid::now_v7`, as a service would; the fills build
//! them from a counter (`fill_id`).
//!
//! Everything happens in a fresh directory under `--dir` (default: the system temp dir, unless
//! it is a tmpfs, as `/tmp` is on some machines, in which case `target/bench-eventstore` under
//! the current directory), removed at the end. The log is read back right after it is written,
//! so reads and the open scan are served from the page cache: they measure the store's CPU
//! cost, not the disk's reads. `--quick` shortens every run and shrinks every log (a smoke
//! test, not a measurement). Peak disk use is about 3.5 GB (about 1 GB with `--quick`).
//!
//! `--store postgres` (with `--postgres-url URL`, default [`POSTGRES_URL_DEFAULT`]) measures
//! the PostgreSQL store instead, in a database of its own (`symbiose_bench_<random>`, dropped
//! at the end), against the same server's raw ceiling for the same work, in the same run:
//!
//! 1. For 1, 16 and 256 writers, each appending one 256-byte event at a time to its own stream
//!    through `PostgresStore`: appends per second (those finished within the measured run) and
//!    latency percentiles. Then as many `tokio-postgres` connections (at most the server's
//!    `max_connections` less its reserved ones and [`RAW_CONNECTIONS_MARGIN`], said in the
//!    output), each writing the same rows to a table `LIKE symbiose_events INCLUDING ALL` in
//!    transactions of one `INSERT` each (`BEGIN`, `INSERT`, `COMMIT`): no Symbiose code. The
//!    ratio store / raw, against its target.
//! 2. At 256 writers, the store as it is against the store with one append per transaction
//!    (`PostgresOptions::group_appends_max` 1): what group commit buys, against its target.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use symbiose_eventstore::embedded::{EmbeddedStore, Options, SYNC_GATHER_US_MAX};
use symbiose_eventstore::postgres::{PostgresOptions, PostgresStore};
use symbiose_eventstore::{
    EventData, EventStore, ExpectedVersion, Position, READ_EVENTS_MAX, StoreError, StreamName,
};
use tokio::task::JoinSet;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Bytes of each write of the fsync-rate loop.
const FSYNC_WRITE_BYTES: usize = 4096;
/// Bytes of each write of the sequential-bandwidth run.
const SEQUENTIAL_CHUNK_BYTES: usize = 1024 * 1024;
/// Events per batch, for the disk's batch rate and for filling logs quickly.
const BATCH_EVENTS: usize = 512;
/// Bytes an event of 256-byte payload takes on disk, about: the disk's batch rate writes these.
const BATCH_EVENT_BYTES: usize = 300;
const PAYLOAD_BYTES: usize = 256;
const EVENT_TYPE: &str = "BenchEvent";
/// Writer counts of the append runs.
const WRITER_COUNTS: [usize; 3] = [1, 16, 256];
/// Latency samples kept per append run, all writers together (8 bytes each).
const LATENCY_SAMPLES_MAX: usize = 4_000_000;
/// Appends a writer may make in one run, warm-up included: a bound besides the clock.
const WRITER_APPENDS_MAX: u64 = 10_000_000;
/// Iterations of a disk loop, at most, besides its duration.
const DISK_LOOP_ITERATIONS_MAX: u64 = 10_000_000;
/// Batch appends in flight while filling a log: enough for the writer to group several.
const FILL_TASKS: usize = 16;
/// Streams a filled log spreads its batches over.
const FILL_STREAMS: u64 = 10_000;
/// The suffix of the store's segment files, whose sizes make the bytes of a log.
const SEGMENT_SUFFIX: &str = ".seg";
/// The extension of the store's segment index files, a cache the open reads instead of
/// scanning a sealed segment.
const SEGMENT_INDEX_EXTENSION: &str = "idx";
/// The hidden argument that makes this program only open a store, for the open run.
const OPEN_CHILD_ARG: &str = "--open-child";
const USAGE: &str = "eventstore-bench [--dir PATH] [--quick] [--appends-only] [--sync-gather-us N] \
                     [--store embedded|postgres] [--postgres-url URL]";
/// The server `--store postgres` measures unless told otherwise.
const POSTGRES_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Connections of the server the raw side leaves to others: the bench's own administration
/// connection, the store's (between runs: none), other clients of the server.
const RAW_CONNECTIONS_MARGIN: usize = 16;
/// The table of the raw side, made `LIKE symbiose_events INCLUDING ALL`: the same columns,
/// checks and indexes.
const RAW_TABLE: &str = "bench_raw_events";
/// The events table of the PostgreSQL peer: what a plain event store on PostgreSQL writes.
const PLAIN_TABLE: &str = "bench_events";
/// Appends of one transaction of the PostgreSQL peer's batched runs.
const PLAIN_BATCH_APPENDS: usize = 100;
/// Where the Debian package installs the NATS server, looked for after `PATH`.
const NATS_SERVER_PATH: &str = "/usr/sbin/nats-server";
/// Longest wait for the NATS server to accept connections.
const NATS_START_TIMEOUT: Duration = Duration::from_secs(15);
/// The pause between two looks at a starting NATS server.
const NATS_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Publishes each JetStream writer keeps in flight, at most, before waiting for the oldest ack.
const JETSTREAM_IN_FLIGHT_MAX: usize = 64;
/// Pairs of runs, syncing at once then gathering, of the sync policy's comparison.
const SYNC_POLICY_ROUNDS: usize = 2;
/// The writer count the peers are held to, the last of [`WRITER_COUNTS`].
const PEER_TARGET_WRITERS: usize = 256;

const TARGET_ONE_WRITER_OF_FSYNC: f64 = 0.8;
const TARGET_MANY_WRITERS_OF_BATCH_DISK: f64 = 0.2;
const TARGET_MANY_WRITERS_EVENTS_PER_S: f64 = 300_000.0;
const TARGET_MANY_WRITERS_P99_US: u64 = 10_000;
const TARGET_READ_EVENTS_PER_S: f64 = 1_000_000.0;
const TARGET_POSTGRES_OF_RAW: f64 = 0.8;
const TARGET_GROUP_COMMIT_GAIN: f64 = 5.0;
const TARGET_OF_JETSTREAM: f64 = 3.0;
const TARGET_OF_POSTGRES_BATCHED: f64 = 4.0;

/// How long each run lasts and how large each log is: full, or `--quick`.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    disk_loop: Duration,
    sequential_bytes: u64,
    append_warmup: Duration,
    append_run: Duration,
    read_log_events: u64,
    open_log_events: u64,
}

const FULL: Sizes = Sizes {
    disk_loop: Duration::from_secs(2),
    sequential_bytes: 1024 * 1024 * 1024,
    append_warmup: Duration::from_millis(500),
    append_run: Duration::from_secs(3),
    read_log_events: 2_000_000,
    open_log_events: 10_000_000,
};

const QUICK: Sizes = Sizes {
    disk_loop: Duration::from_millis(500),
    sequential_bytes: 256 * 1024 * 1024,
    append_warmup: Duration::from_millis(200),
    append_run: Duration::from_secs(1),
    read_log_events: 500_000,
    open_log_events: 2_000_000,
};

#[tokio::main]
async fn main() -> BenchResult<()> {
    let (parent, sizes, options, url, appends_only) = match parse_args()? {
        Mode::Bench { parent, sizes, options, url, appends_only } => {
            (parent, sizes, options, url, appends_only)
        }
        Mode::Postgres { url, sizes } => return bench_postgres(&url, sizes).await,
        Mode::OpenChild { dir } => return open_child(&dir).await,
    };
    std::fs::create_dir_all(&parent)?;
    let work = WorkDir::create(&parent)?;
    let filesystem = filesystem_of(&work.0).unwrap_or_else(|| "unknown filesystem".to_owned());
    println!("eventstore-bench: {} ({filesystem})", work.0.display());
    println!(
        "cores {}, {}, load average at start {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        if sizes.open_log_events == QUICK.open_log_events {
            "--quick: figures are indicative only"
        } else {
            "full run"
        },
        load_average(),
    );
    if filesystem.contains("tmpfs") {
        println!("warning: this directory is on a tmpfs: the disk figures are memory figures");
    }
    let payload = pseudo_random_bytes(PAYLOAD_BYTES, 7);
    let cpu_at_start = CpuSample::now();

    println!("\n1. the disk");
    let disk = measure_disk(&work.0, sizes)?;

    println!(
        "\n2. durable appends, one 256-byte event per append, one stream per writer \
         (sync_gather_us {}: a sync waits up to that for the appends queued behind it)",
        options.sync_gather_us
    );
    let mut embedded = Vec::with_capacity(WRITER_COUNTS.len());
    for writers in WRITER_COUNTS {
        let dir = work.0.join(format!("appends-{writers}"));
        let run = measure_appends(&dir, writers, options.clone(), sizes, &payload).await?;
        print_append_run(&run, "", &disk);
        embedded.push(run);
    }

    println!(
        "\n3. the sync policy: the same appends with sync_gather_us 0 (each sync takes what is written \
         at once, as before gathering), then with gathering again"
    );
    measure_sync_policy(&work.0, &options, sizes, &payload, &disk).await?;

    println!("\n4. the same appends through the peers, in this run");
    measure_peers(&work.0, &url, &embedded, sizes, &payload, &disk).await;

    if !appends_only {
        println!("\n5. reading the whole log");
        measure_reads(&work.0.join("read"), sizes.read_log_events, &disk, &payload).await?;

        println!("\n6. opening a large log");
        measure_open(&work.0.join("open"), sizes.open_log_events, &disk, &payload).await?;
    }
    // Other work on the machine (a build, a test run) skews every figure: this shows it.
    let others = cpu_at_start.zip(CpuSample::now()).map(|(start, end)| start.others_cores(&end));
    println!(
        "\nload average at the end {}; other processes used {} cores on average during the run",
        load_average(),
        others.map_or("?".to_owned(), |cores| format!("{cores:.2}")),
    );
    Ok(())
}

/// What this process is run for.
#[derive(Debug)]
enum Mode {
    Bench {
        parent: PathBuf,
        sizes: Sizes,
        /// The store's options of the append runs.
        options: Options,
        /// The PostgreSQL server of the peer runs.
        url: String,
        /// Skip reading and opening large logs.
        appends_only: bool,
    },
    /// `--store postgres`: the PostgreSQL store against plain transactions on the same server.
    Postgres { url: String, sizes: Sizes },
    /// Only open the store in `dir`, for [`open_in_child`].
    OpenChild { dir: PathBuf },
}

/// `--dir PATH` (the parent of the work directory), `--quick`, `--appends-only`,
/// `--sync-gather-us N`, `--store embedded|postgres` and `--postgres-url URL`, or
/// `--open-child DIR`.
fn parse_args() -> BenchResult<Mode> {
    let mut parent = None;
    let mut sizes = FULL;
    let mut postgres = false;
    let mut appends_only = false;
    let mut options = Options::default();
    let mut url = POSTGRES_URL_DEFAULT.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            OPEN_CHILD_ARG => {
                let dir = args.next().ok_or("--open-child needs a path")?;
                return Ok(Mode::OpenChild { dir: PathBuf::from(dir) });
            }
            "--dir" => parent = Some(PathBuf::from(args.next().ok_or("--dir needs a path")?)),
            "--quick" => sizes = QUICK,
            "--appends-only" => appends_only = true,
            "--sync-gather-us" => {
                let micros: u64 = args.next().ok_or("--sync-gather-us needs a number")?.parse()?;
                if micros > SYNC_GATHER_US_MAX {
                    return Err(format!("--sync-gather-us is at most {SYNC_GATHER_US_MAX}").into());
                }
                options.sync_gather_us = micros;
            }
            "--store" => match args.next().as_deref() {
                Some("embedded") => postgres = false,
                Some("postgres") => postgres = true,
                other => return Err(format!("--store takes embedded or postgres, not {other:?}").into()),
            },
            "--postgres-url" => url = args.next().ok_or("--postgres-url needs a url")?,
            "-h" | "--help" => {
                println!("usage: {USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}; usage: {USAGE}").into()),
        }
    }
    if postgres {
        return Ok(Mode::Postgres { url, sizes });
    }
    Ok(Mode::Bench { parent: parent.unwrap_or_else(default_parent), sizes, options, url, appends_only })
}

/// The system temp dir, unless it is a tmpfs, which would measure memory instead of the disk.
fn default_parent() -> PathBuf {
    let temp = std::env::temp_dir();
    if filesystem_of(&temp).is_some_and(|filesystem| filesystem.starts_with("tmpfs")) {
        PathBuf::from("target/bench-eventstore")
    } else {
        temp
    }
}

/// The type and device of the file system holding `path`, from `/proc/mounts`.
fn filesystem_of(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, mount_point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount_point)
                .then(|| (mount_point.len(), format!("{kind} on {device}, mounted at {mount_point}")))
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, description)| description)
}

/// A fresh directory for this run, removed when dropped, error or not.
#[derive(Debug)]
struct WorkDir(PathBuf);

impl WorkDir {
    fn create(parent: &Path) -> std::io::Result<WorkDir> {
        let dir = parent.join(format!("eventstore-bench-{}", std::process::id()));
        std::fs::create_dir(&dir)?;
        Ok(WorkDir(dir.canonicalize()?))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The physical limits of the disk, as this run measured them.
#[derive(Debug, Clone, Copy)]
struct Disk {
    syncs_per_s: f64,
    sequential_bytes_per_s: f64,
    batch_events_per_s: f64,
}

fn measure_disk(dir: &Path, sizes: Sizes) -> std::io::Result<Disk> {
    let syncs_per_s = sync_rate(&dir.join("fsync-4k"), FSYNC_WRITE_BYTES, sizes.disk_loop)?;
    line(
        "fsync rate, 4 KiB write + fdatasync",
        &format!("{} syncs/s", thousands(syncs_per_s)),
        "the limit of 1 writer",
    );

    let sequential_bytes_per_s = sequential_bandwidth(&dir.join("sequential"), sizes.sequential_bytes)?;
    line(
        "sequential write, 1 MiB writes",
        &format!("{:.0} MB/s", sequential_bytes_per_s / 1e6),
        &format!("{} MiB, one fdatasync at the end", sizes.sequential_bytes >> 20),
    );

    let batch_syncs_per_s =
        sync_rate(&dir.join("fsync-batch"), BATCH_EVENTS * BATCH_EVENT_BYTES, sizes.disk_loop)?;
    let batch_events_per_s = batch_syncs_per_s * BATCH_EVENTS as f64;
    line(
        "disk events/s at 512-event batches",
        &format!("{} events/s", thousands(batch_events_per_s)),
        &format!(
            "{} syncs/s of {} KiB (512 x {BATCH_EVENT_BYTES} B) write + fdatasync",
            thousands(batch_syncs_per_s),
            BATCH_EVENTS * BATCH_EVENT_BYTES / 1024
        ),
    );
    Ok(Disk { syncs_per_s, sequential_bytes_per_s, batch_events_per_s })
}

/// `write` + `fdatasync` of `write_bytes` at the end of a new file, for `duration`: syncs/s.
fn sync_rate(path: &Path, write_bytes: usize, duration: Duration) -> std::io::Result<f64> {
    let mut file = OpenOptions::new().create_new(true).write(true).open(path)?;
    let block = pseudo_random_bytes(write_bytes, 1);
    let started = Instant::now();
    let mut syncs = 0u64;
    while syncs < DISK_LOOP_ITERATIONS_MAX && started.elapsed() < duration {
        file.write_all(&block)?;
        file.sync_data()?;
        syncs += 1;
    }
    let rate = syncs as f64 / started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(path)?;
    Ok(rate)
}

/// `total_bytes` written in 1 MiB writes to a new file, then one `fdatasync`: bytes/s.
fn sequential_bandwidth(path: &Path, total_bytes: u64) -> std::io::Result<f64> {
    let mut file = OpenOptions::new().create_new(true).write(true).open(path)?;
    let chunk = pseudo_random_bytes(SEQUENTIAL_CHUNK_BYTES, 2);
    let chunks = total_bytes / SEQUENTIAL_CHUNK_BYTES as u64;
    let started = Instant::now();
    for _ in 0..chunks {
        file.write_all(&chunk)?;
    }
    file.sync_data()?;
    let rate = (chunks * SEQUENTIAL_CHUNK_BYTES as u64) as f64 / started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(path)?;
    Ok(rate)
}

/// What one append run measured.
#[derive(Debug)]
struct AppendRun {
    writers: usize,
    events_per_s: f64,
    /// Every measured append's latency, sorted.
    latencies_us: Vec<u64>,
    /// Cores other processes used during the run, on average.
    others_cores: Option<f64>,
    /// Appends per `fdatasync` of the store, warm-up included.
    appends_per_sync: f64,
}

/// `writers` tasks append one event at a time to their own stream, on a fresh store opened
/// with `options`, for the warm-up and then the measured run. Only appends started after the
/// warm-up count.
async fn measure_appends(
    dir: &Path,
    writers: usize,
    options: Options,
    sizes: Sizes,
    payload: &Bytes,
) -> BenchResult<AppendRun> {
    let (store, _) = EmbeddedStore::open(dir, options)?;
    let cpu_before = CpuSample::now();
    let (events_per_s, _, latencies_us) = run_writers(&store, "bench", writers, sizes, payload).await?;
    let others_cores = cpu_before.zip(CpuSample::now()).map(|(before, after)| before.others_cores(&after));
    // One event per append: the head counts the appends.
    let appends_per_sync = store.head().as_u64() as f64 / store.syncs().max(1) as f64;
    store.close().await;
    std::fs::remove_dir_all(dir)?;
    Ok(AppendRun { writers, events_per_s, latencies_us, others_cores, appends_per_sync })
}

/// `writers` tasks append one event at a time to their own stream (`<prefix>-<writer>`) of
/// `store`, for the warm-up and then the measured run: see [`collect_latencies`].
async fn run_writers<S: EventStore>(
    store: &S,
    prefix: &str,
    writers: usize,
    sizes: Sizes,
    payload: &Bytes,
) -> BenchResult<(f64, f64, Vec<u64>)> {
    let measure_from = Instant::now() + sizes.append_warmup;
    let until = measure_from + sizes.append_run;
    let samples_max = LATENCY_SAMPLES_MAX / writers;
    let mut tasks = JoinSet::new();
    for writer in 0..writers {
        let (store, payload) = (store.clone(), payload.clone());
        let stream = StreamName::new(&format!("{prefix}-{writer}"))?;
        tasks.spawn(async move {
            append_one_by_one(store, stream, payload, measure_from, until, samples_max).await
        });
    }
    collect_latencies(tasks, measure_from, sizes.append_run).await
}

/// What one writer task measured: its latencies, when its last append finished, and how many
/// finished within the measured run.
type WriterRun = (Vec<u64>, Instant, u64);

/// Of the writer tasks of a run: the appends started after the warm-up per second until the
/// last one finished (the embedded figure), the appends finished within the measured run per
/// second of it (the PostgreSQL figure: there an append may wait longer than the run lasts,
/// which would make the first one count time without its appends), and the sorted latencies
/// of the appends started after the warm-up.
async fn collect_latencies<E>(
    mut tasks: JoinSet<Result<WriterRun, E>>,
    measure_from: Instant,
    run: Duration,
) -> BenchResult<(f64, f64, Vec<u64>)>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let mut latencies_us = Vec::new();
    let mut last_finished = measure_from;
    let mut finished_in_run = 0;
    while let Some(joined) = tasks.join_next().await {
        let (samples, finished, in_run) = joined?.map_err(Into::into)?;
        latencies_us.extend(samples);
        last_finished = last_finished.max(finished);
        finished_in_run += in_run;
    }
    latencies_us.sort_unstable();
    let events_per_s = latencies_us.len() as f64 / (last_finished - measure_from).as_secs_f64();
    Ok((events_per_s, finished_in_run as f64 / run.as_secs_f64(), latencies_us))
}

/// Appends one event at a time to `stream`, each expecting the version the last one made,
/// until `until`: the latencies of the appends started from `measure_from`, when the last one
/// finished, and how many finished from `measure_from` to `until`.
async fn append_one_by_one<S: EventStore>(
    store: S,
    stream: StreamName,
    payload: Bytes,
    measure_from: Instant,
    until: Instant,
    samples_max: usize,
) -> Result<WriterRun, StoreError> {
    let mut expected = ExpectedVersion::NoStream;
    let mut samples = Vec::new();
    let mut finished = Instant::now();
    let mut finished_in_run = 0;
    for version in 0..WRITER_APPENDS_MAX {
        let started = Instant::now();
        if started >= until || samples.len() >= samples_max {
            break;
        }
        let event = EventData::new(Uuid::now_v7(), EVENT_TYPE, payload.clone());
        let appended = store.append(&stream, expected, vec![event]).await?;
        finished = Instant::now();
        assert_eq!(appended.next_expected_version, version, "an append of one event adds one version");
        expected = ExpectedVersion::Exact(version);
        if started >= measure_from {
            samples.push(u64::try_from((finished - started).as_micros()).unwrap_or(u64::MAX));
        }
        finished_in_run += u64::from(finished >= measure_from && finished <= until);
    }
    Ok((samples, finished, finished_in_run))
}

/// The line of an append run, its label ending in `suffix`.
fn print_append_run(run: &AppendRun, suffix: &str, disk: &Disk) {
    let label = format!("appends, {}{suffix}", plural(run.writers, "writer"));
    let latencies = format!(
        "p50 {}  p99 {}  p999 {}  {:.1} appends/sync",
        millis(percentile_us(&run.latencies_us, 5000)),
        millis(percentile_us(&run.latencies_us, 9900)),
        millis(percentile_us(&run.latencies_us, 9990)),
        run.appends_per_sync,
    );
    let ratio = match run.writers {
        1 => {
            let ratio = run.events_per_s / disk.syncs_per_s;
            format!(
                "{ratio:.2} of fsync rate ({})",
                target(ratio >= TARGET_ONE_WRITER_OF_FSYNC, "target 0.80")
            )
        }
        _ => {
            let ratio = run.events_per_s / disk.batch_events_per_s;
            if run.writers == *WRITER_COUNTS.last().expect("writer counts") {
                let p99_us = percentile_us(&run.latencies_us, 9900);
                format!(
                    "{ratio:.2} of disk at 512-event batches ({}; {}; {})",
                    target(ratio >= TARGET_MANY_WRITERS_OF_BATCH_DISK, "target 0.20"),
                    target(run.events_per_s >= TARGET_MANY_WRITERS_EVENTS_PER_S, "target 300,000 events/s"),
                    target(p99_us < TARGET_MANY_WRITERS_P99_US, "target p99 < 10 ms"),
                )
            } else {
                format!("{ratio:.2} of disk at 512-event batches (no target)")
            }
        }
    };
    let others =
        run.others_cores.map_or_else(String::new, |cores| format!("   others used {cores:.2} cores"));
    line(
        &label,
        &format!("{} events/s", thousands(run.events_per_s)),
        &format!("{latencies}   {ratio}{others}"),
    );
}

/// Section 3: for 1 and 256 writers, [`SYNC_POLICY_ROUNDS`] times, a store that syncs at once
/// (`sync_gather_us` 0), then one with `gathering` right after it: each pair is measured close
/// in time, and the rounds show how much other work on the machine moves the figures.
async fn measure_sync_policy(
    work: &Path,
    gathering: &Options,
    sizes: Sizes,
    payload: &Bytes,
    disk: &Disk,
) -> BenchResult<()> {
    let at_once = Options { sync_gather_us: 0, ..gathering.clone() };
    for (writers, round) in [1, PEER_TARGET_WRITERS]
        .into_iter()
        .flat_map(|writers| (1..=SYNC_POLICY_ROUNDS).map(move |round| (writers, round)))
    {
        let dir = work.join(format!("at-once-{writers}"));
        let without = measure_appends(&dir, writers, at_once.clone(), sizes, payload).await?;
        print_append_run(&without, ", sync at once", disk);
        let dir = work.join(format!("gathering-{writers}"));
        let with = measure_appends(&dir, writers, gathering.clone(), sizes, payload).await?;
        print_append_run(&with, &format!(", gathering {} us", gathering.sync_gather_us), disk);
        let percentiles = |run: &AppendRun| {
            (percentile_us(&run.latencies_us, 5000), percentile_us(&run.latencies_us, 9900))
        };
        let ((with_p50, with_p99), (without_p50, without_p99)) = (percentiles(&with), percentiles(&without));
        line(
            &format!("gathering / at once, {}, round {round}", plural(writers, "writer")),
            &format!("{:.2}", with.events_per_s / without.events_per_s),
            &format!(
                "of events/s; p50 {} / {}, p99 {} / {}",
                millis(with_p50),
                millis(without_p50),
                millis(with_p99),
                millis(without_p99)
            ),
        );
    }
    Ok(())
}

/// What a peer did with one writer count: appends per second (those finished within the
/// measured run) and the sorted latencies of its publishes or transactions.
#[derive(Debug)]
struct PeerRun {
    writers: usize,
    appends_per_s: f64,
    latencies_us: Vec<u64>,
}

/// Section 4: JetStream and PostgreSQL, where they are, then the targets against them. A peer
/// that is missing or fails is said so in a line, and its targets are not judged.
async fn measure_peers(
    work: &Path,
    url: &str,
    embedded: &[AppendRun],
    sizes: Sizes,
    payload: &Bytes,
    disk: &Disk,
) {
    let jetstream = match NatsServer::start(&work.join("nats")) {
        Err(reason) => {
            println!("JetStream: skipped, {reason}");
            None
        }
        Ok(server) => {
            println!(
                "JetStream: {} -js on {}, store in the work directory; it acknowledges a publish before \
                 its fsync (its file store syncs on a timer): its figures are not of durable appends",
                server.version, server.url
            );
            let runs = measure_jetstream(&server, embedded, sizes, payload, disk).await;
            drop(server);
            runs.inspect_err(|error| println!("JetStream: stopped, {error}")).ok()
        }
    };
    let postgres = match measure_postgres_plain(url, embedded, sizes, payload, disk).await {
        Ok(runs) => runs,
        Err(error) => {
            println!("PostgreSQL: stopped, {error}");
            None
        }
    };

    let Some(many) = embedded.iter().find(|run| run.writers == PEER_TARGET_WRITERS) else { return };
    let judge = |peer: &str, runs: Option<&[PeerRun]>, goal: f64| {
        let label = format!("embedded / {peer}, {}", plural(PEER_TARGET_WRITERS, "writer"));
        let Some(runs) = runs else {
            return line(&label, "-", "not judged: no figure for the peer in this run");
        };
        let best = runs.iter().max_by(|one, other| one.appends_per_s.total_cmp(&other.appends_per_s));
        match runs.iter().find(|run| run.writers == PEER_TARGET_WRITERS) {
            Some(run) => {
                let ratio = many.events_per_s / run.appends_per_s;
                let best = best.map_or_else(String::new, |best| {
                    format!(
                        "; {:.2} of its best ({} appends/s, {})",
                        many.events_per_s / best.appends_per_s,
                        thousands(best.appends_per_s),
                        plural(best.writers, "writer")
                    )
                });
                line(
                    &label,
                    &format!("{ratio:.2}"),
                    &format!("{}{best}", target(ratio >= goal, &format!("target {goal:.2}"))),
                );
            }
            None => line(&label, "-", "not judged: no figure for the peer in this run"),
        }
    };
    judge("JetStream pipelined", jetstream.as_deref(), TARGET_OF_JETSTREAM);
    for (shape, runs) in postgres.iter().flatten() {
        if *shape != PlainTransaction::One {
            judge(&shape.label(), Some(runs), TARGET_OF_POSTGRES_BATCHED);
        }
    }
}

/// The line of a peer's run: its figure, its latencies (of a `latency`: an append when empty),
/// against the embedded store's with as many writers and against the fsync rate.
fn print_peer_run(label: &str, run: &PeerRun, latency: &str, embedded: &[AppendRun], disk: &Disk) {
    let latency = if latency.is_empty() { String::new() } else { format!("{latency}: ") };
    let against = embedded
        .iter()
        .find(|own| own.writers == run.writers)
        .map_or_else(String::new, |own| format!("embedded / it {:.2}", own.events_per_s / run.appends_per_s));
    line(
        label,
        &format!("{} appends/s", thousands(run.appends_per_s)),
        &format!(
            "{latency}p50 {}  p99 {}   {against}   {:.2} of fsync rate",
            millis(percentile_us(&run.latencies_us, 5000)),
            millis(percentile_us(&run.latencies_us, 9900)),
            run.appends_per_s / disk.syncs_per_s,
        ),
    );
}

/// A `nats-server -js` this run started, on a free loopback port, killed when dropped.
#[derive(Debug)]
struct NatsServer {
    child: Child,
    url: String,
    /// What `nats-server --version` said.
    version: String,
}

impl NatsServer {
    /// Starts the server with its store under `dir`, waiting up to [`NATS_START_TIMEOUT`] for
    /// its log to say it is ready; the reason in words if it is not installed or does not start.
    fn start(dir: &Path) -> Result<NatsServer, String> {
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file());
        let binary = on_path
            .or_else(|| Some(PathBuf::from(NATS_SERVER_PATH)).filter(|path| path.is_file()))
            .ok_or_else(|| format!("no nats-server on PATH nor at {NATS_SERVER_PATH}"))?;
        let version = Command::new(&binary)
            .arg("--version")
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .map_err(|error| format!("running {} --version: {error}", binary.display()))?;
        std::fs::create_dir_all(dir).map_err(|error| format!("creating {}: {error}", dir.display()))?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map_err(|error| format!("finding a free port: {error}"))?
            .port();
        let log = dir.join("nats-server.log");
        let child = Command::new(&binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.join("jetstream"))
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("starting {}: {error}", binary.display()))?;
        let mut server = NatsServer { child, url: format!("nats://127.0.0.1:{port}"), version };
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + NATS_START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("nats-server exited with {status}; its log is {}", log.display()));
            }
            let ready = std::fs::read_to_string(&log).is_ok_and(|text| text.contains("Server is ready"));
            if ready && TcpStream::connect_timeout(&address, NATS_POLL_INTERVAL).is_ok() {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                return Err(format!("nats-server not ready on {address} after {NATS_START_TIMEOUT:?}"));
            }
            std::thread::sleep(NATS_POLL_INTERVAL);
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// For 1, 16 and 256 writers, each publishing to a JetStream stream of its own (made for the
/// run, deleted after it), pipelined: see [`publish_pipelined`].
async fn measure_jetstream(
    server: &NatsServer,
    embedded: &[AppendRun],
    sizes: Sizes,
    payload: &Bytes,
    disk: &Disk,
) -> BenchResult<Vec<PeerRun>> {
    let client = async_nats::connect(server.url.as_str()).await?;
    let mut runs = Vec::with_capacity(WRITER_COUNTS.len());
    for writers in WRITER_COUNTS {
        let jetstream = async_nats::jetstream::ContextBuilder::new()
            .max_ack_inflight(writers * JETSTREAM_IN_FLIGHT_MAX)
            .build(client.clone());
        let mut streams = Vec::with_capacity(writers);
        for writer in 0..writers {
            let (name, subject) = (format!("bench_{writers}_{writer}"), format!("bench.{writers}.{writer}"));
            jetstream
                .create_stream(async_nats::jetstream::stream::Config {
                    name: name.clone(),
                    subjects: vec![subject.clone()],
                    ..Default::default()
                })
                .await?;
            streams.push((name, subject));
        }
        let measure_from = Instant::now() + sizes.append_warmup;
        let until = measure_from + sizes.append_run;
        let samples_max = LATENCY_SAMPLES_MAX / writers;
        let mut tasks = JoinSet::new();
        for (_, subject) in &streams {
            let (jetstream, subject, payload) = (jetstream.clone(), subject.clone(), payload.clone());
            tasks.spawn(async move {
                publish_pipelined(jetstream, subject, payload, measure_from, until, samples_max).await
            });
        }
        let (_, appends_per_s, latencies_us) =
            collect_latencies(tasks, measure_from, sizes.append_run).await?;
        for (name, _) in &streams {
            jetstream.delete_stream(name).await?;
        }
        let run = PeerRun { writers, appends_per_s, latencies_us };
        let label = format!("JetStream pipelined, {}", plural(writers, "writer"));
        print_peer_run(&label, &run, "publish to ack", embedded, disk);
        runs.push(run);
    }
    Ok(runs)
}

/// Publishes one event at a time to `subject`, the only subject of its stream, each expecting
/// the subject's last sequence to be the one before it, with up to [`JETSTREAM_IN_FLIGHT_MAX`]
/// publishes waiting for their acks, until `until`: the latencies (publish to ack) of the
/// publishes sent from `measure_from`, when the last ack came, and how many came from
/// `measure_from` to `until`.
async fn publish_pipelined(
    jetstream: async_nats::jetstream::Context,
    subject: String,
    payload: Bytes,
    measure_from: Instant,
    until: Instant,
    samples_max: usize,
) -> BenchResult<WriterRun> {
    let mut in_flight: VecDeque<(Instant, u64, PublishAckFuture)> =
        VecDeque::with_capacity(JETSTREAM_IN_FLIGHT_MAX);
    let mut samples = Vec::new();
    let mut finished = Instant::now();
    let mut finished_in_run = 0;
    let mut sent = 0;
    loop {
        let now = Instant::now();
        let sending = now < until && sent < WRITER_APPENDS_MAX && samples.len() < samples_max;
        if sending && in_flight.len() < JETSTREAM_IN_FLIGHT_MAX {
            // In a stream of one subject, the subject's sequence is the stream's: the k-th
            // publish expects k, its ack says k + 1.
            let message =
                PublishMessage::build().payload(payload.clone()).expected_last_subject_sequence(sent);
            in_flight.push_back((now, sent + 1, jetstream.send_publish(subject.clone(), message).await?));
            sent += 1;
            continue;
        }
        let Some((started, sequence, ack)) = in_flight.pop_front() else { break };
        let ack = ack.await?;
        assert_eq!(ack.sequence, sequence, "each publish lands right after the one before");
        finished = Instant::now();
        if started >= measure_from {
            samples.push(u64::try_from((finished - started).as_micros()).unwrap_or(u64::MAX));
        }
        finished_in_run += u64::from(finished >= measure_from && finished <= until);
    }
    Ok((samples, finished, finished_in_run))
}

/// How the PostgreSQL peer writes its appends: a transaction each, or [`PLAIN_BATCH_APPENDS`]
/// to a transaction, as many `INSERT`s or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlainTransaction {
    /// One `INSERT` of one row, in autocommit.
    One,
    /// `BEGIN`, an `INSERT` of one row per append, all sent together, `COMMIT`.
    Statements,
    /// One `INSERT` of a row per append (arrays `unnest`ed), in autocommit.
    Rows,
}

impl PlainTransaction {
    const ALL: [PlainTransaction; 3] =
        [PlainTransaction::One, PlainTransaction::Statements, PlainTransaction::Rows];

    fn appends(self) -> usize {
        match self {
            PlainTransaction::One => 1,
            PlainTransaction::Statements | PlainTransaction::Rows => PLAIN_BATCH_APPENDS,
        }
    }

    fn label(self) -> String {
        match self {
            PlainTransaction::One => "PostgreSQL 1 per transaction".to_owned(),
            PlainTransaction::Statements => {
                format!("PostgreSQL {PLAIN_BATCH_APPENDS} INSERTs per transaction")
            }
            PlainTransaction::Rows => format!("PostgreSQL {PLAIN_BATCH_APPENDS}-row INSERT per transaction"),
        }
    }
}

/// The PostgreSQL peer, in a database of its own on the server at `url` (dropped at the end):
/// for each [`PlainTransaction`], 1, 16 and 256 writers. `None` after a line saying so when the
/// server cannot be reached.
async fn measure_postgres_plain(
    url: &str,
    embedded: &[AppendRun],
    sizes: Sizes,
    payload: &Bytes,
    disk: &Disk,
) -> BenchResult<Option<Vec<(PlainTransaction, Vec<PeerRun>)>>> {
    let admin_config: tokio_postgres::Config = url.parse()?;
    let (admin, connection) = match admin_config.connect(NoTls).await {
        Ok(connected) => connected,
        Err(error) => {
            println!("PostgreSQL: skipped, cannot connect to {url}: {error}");
            return Ok(None);
        }
    };
    let connection = tokio::spawn(connection);
    let version: String = admin.query_one("SHOW server_version", &[]).await?.try_get(0)?;
    let synchronous_commit: String = admin.query_one("SHOW synchronous_commit", &[]).await?.try_get(0)?;
    let connections_max = connections_max(&admin).await?;
    let database = create_bench_database(&admin).await?;
    println!(
        "PostgreSQL {version} at {url}, database {database} (made for this run), synchronous_commit \
         {synchronous_commit}, at most {connections_max} connections (max_connections less reserved \
         and a margin of {RAW_CONNECTIONS_MARGIN}), one per writer; table {PLAIN_TABLE}: identity \
         position, UNIQUE (stream, version)"
    );
    let config: tokio_postgres::Config = with_database(url, &database).parse()?;
    let result = postgres_plain_runs(&config, connections_max, embedded, sizes, payload, disk).await;
    let dropped = admin.batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)")).await;
    drop(admin);
    let _ = connection.await;
    let runs = result?;
    dropped?;
    Ok(Some(runs))
}

/// The runs of [`measure_postgres_plain`] in the database of `config`.
async fn postgres_plain_runs(
    config: &tokio_postgres::Config,
    connections_max: usize,
    embedded: &[AppendRun],
    sizes: Sizes,
    payload: &Bytes,
    disk: &Disk,
) -> BenchResult<Vec<(PlainTransaction, Vec<PeerRun>)>> {
    let (client, connection) = config.connect(NoTls).await?;
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE TABLE {PLAIN_TABLE} (
                position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                stream text NOT NULL,
                version bigint NOT NULL,
                event_id uuid NOT NULL,
                event_type text NOT NULL,
                payload bytea NOT NULL,
                recorded_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (stream, version)
            )"
        ))
        .await?;
    drop(client);
    let _ = connection.await;
    let mut all = Vec::with_capacity(PlainTransaction::ALL.len());
    for shape in PlainTransaction::ALL {
        let mut runs = Vec::with_capacity(WRITER_COUNTS.len());
        for writers in WRITER_COUNTS {
            let connections = writers.min(connections_max);
            let mut clients = Vec::with_capacity(connections);
            for _ in 0..connections {
                let (client, connection) = config.connect(NoTls).await?;
                tokio::spawn(connection);
                clients.push(client);
            }
            let measure_from = Instant::now() + sizes.append_warmup;
            let until = measure_from + sizes.append_run;
            let samples_max = LATENCY_SAMPLES_MAX / connections;
            let mut tasks = JoinSet::new();
            for (writer, client) in clients.into_iter().enumerate() {
                let stream = format!("plain-{shape:?}-{writers}-{writer}");
                let payload = payload.clone();
                tasks.spawn(async move {
                    insert_plain(client, stream, shape, payload, measure_from, until, samples_max).await
                });
            }
            let (_, appends_per_s, latencies_us) =
                collect_latencies(tasks, measure_from, sizes.append_run).await?;
            let run = PeerRun { writers, appends_per_s, latencies_us };
            let capped =
                if connections < writers { format!(", {connections} connections") } else { String::new() };
            let latency = if shape == PlainTransaction::One { "" } else { "transaction" };
            let label = format!("{}, {}{capped}", shape.label(), plural(writers, "writer"));
            print_peer_run(&label, &run, latency, embedded, disk);
            runs.push(run);
        }
        all.push((shape, runs));
    }
    Ok(all)
}

/// The PostgreSQL peer's writer: transactions of `shape` to `stream` until `until`: the
/// latencies of the transactions started from `measure_from`, when the last one finished, and
/// the appends of those that finished from `measure_from` to `until`.
async fn insert_plain(
    mut client: Client,
    stream: String,
    shape: PlainTransaction,
    payload: Bytes,
    measure_from: Instant,
    until: Instant,
    samples_max: usize,
) -> Result<WriterRun, tokio_postgres::Error> {
    let insert_rows = client
        .prepare(&format!(
            "INSERT INTO {PLAIN_TABLE} (stream, version, event_id, event_type, payload) \
             SELECT $1, version, event_id, $4, payload FROM unnest($2::bigint[], $3::uuid[], $5::bytea[]) \
             AS batch (version, event_id, payload)"
        ))
        .await?;
    let insert_one = client
        .prepare(&format!(
            "INSERT INTO {PLAIN_TABLE} (stream, version, event_id, event_type, payload) \
             VALUES ($1, $2, $3, $4, $5)"
        ))
        .await?;
    let appends = shape.appends();
    let payloads: Vec<&[u8]> = vec![payload.as_ref(); appends];
    let mut samples = Vec::new();
    let mut finished = Instant::now();
    let mut finished_in_run = 0;
    let mut next_version = 0i64;
    while next_version < WRITER_APPENDS_MAX as i64 {
        let started = Instant::now();
        if started >= until || samples.len() >= samples_max {
            break;
        }
        let versions: Vec<i64> = (next_version..next_version + appends as i64).collect();
        let ids: Vec<Uuid> = versions.iter().map(|_| Uuid::now_v7()).collect();
        match shape {
            PlainTransaction::One => {
                let row: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                    [&stream, &versions[0], &ids[0], &EVENT_TYPE, &payloads[0]];
                client.execute(&insert_one, &row).await?;
            }
            PlainTransaction::Statements => {
                let transaction = client.transaction().await?;
                let rows: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 5]> = versions
                    .iter()
                    .zip(&ids)
                    .map(|(version, id)| {
                        [
                            &stream as &(dyn tokio_postgres::types::ToSql + Sync),
                            version,
                            id,
                            &EVENT_TYPE,
                            &payloads[0],
                        ]
                    })
                    .collect();
                let inserts = rows.iter().map(|row| transaction.execute(&insert_one, row)).collect();
                all_done(inserts).await?;
                transaction.commit().await?;
            }
            PlainTransaction::Rows => {
                client.execute(&insert_rows, &[&stream, &versions, &ids, &EVENT_TYPE, &payloads]).await?;
            }
        }
        next_version += appends as i64;
        finished = Instant::now();
        if started >= measure_from {
            samples.push(u64::try_from((finished - started).as_micros()).unwrap_or(u64::MAX));
        }
        if finished >= measure_from && finished <= until {
            finished_in_run += appends as u64;
        }
    }
    Ok((samples, finished, finished_in_run))
}

/// Waits for every statement of `statements`, polling them all together: each is sent at its
/// first poll, so they go out one after the other without waiting for each other's answers.
async fn all_done<F>(statements: Vec<F>) -> Result<(), tokio_postgres::Error>
where
    F: std::future::Future<Output = Result<u64, tokio_postgres::Error>>,
{
    let mut pending: Vec<std::pin::Pin<Box<F>>> = statements.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|context| {
        let mut index = 0;
        while index < pending.len() {
            match pending[index].as_mut().poll(context) {
                std::task::Poll::Ready(Ok(_)) => {
                    pending.remove(index);
                }
                std::task::Poll::Ready(Err(error)) => return std::task::Poll::Ready(Err(error)),
                std::task::Poll::Pending => index += 1,
            }
        }
        if pending.is_empty() { std::task::Poll::Ready(Ok(())) } else { std::task::Poll::Pending }
    })
    .await
}

/// Fills a fresh store, then reads it all through `read_all` pages and through a subscription.
async fn measure_reads(dir: &Path, events: u64, disk: &Disk, payload: &Bytes) -> BenchResult<()> {
    let (store, _) = EmbeddedStore::open(dir, Options::default())?;
    let filled = fill(&store, events, payload).await?;
    print_fill(events, filled, disk);
    let log_bytes = log_bytes(dir)?;

    let started = Instant::now();
    let mut position = Position::START;
    for _ in 0..=events / READ_EVENTS_MAX as u64 {
        let page = store.read_all(position, READ_EVENTS_MAX).await?;
        let Some(last) = page.last() else { break };
        assert_eq!(
            last.position.as_u64(),
            position.as_u64() + page.len() as u64 - 1,
            "a page holds consecutive positions"
        );
        position = last.position.after();
    }
    assert_eq!(position.as_u64(), events, "read_all returns every event");
    print_read(
        &format!("read_all, pages of {}", thousands(READ_EVENTS_MAX as f64)),
        events,
        log_bytes,
        started.elapsed(),
        disk,
    );

    let started = Instant::now();
    let mut subscription = store.subscribe_all(Position::START);
    for position in 0..events {
        let event = subscription.next().await?;
        assert_eq!(event.position.as_u64(), position, "a subscription delivers every position in order");
    }
    print_read("subscribe_all(Position::START)", events, log_bytes, started.elapsed(), disk);
    drop(subscription);
    store.close().await;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

fn print_read(label: &str, events: u64, log_bytes: u64, elapsed: Duration, disk: &Disk) {
    let events_per_s = events as f64 / elapsed.as_secs_f64();
    let bytes_per_s = log_bytes as f64 / elapsed.as_secs_f64();
    line(
        label,
        &format!("{} events/s", thousands(events_per_s)),
        &format!(
            "{} events in {:.2} s, {:.0} MB/s = {:.2} of sequential write ({})",
            thousands(events as f64),
            elapsed.as_secs_f64(),
            bytes_per_s / 1e6,
            bytes_per_s / disk.sequential_bytes_per_s,
            target(events_per_s >= TARGET_READ_EVENTS_PER_S, "target 1,000,000 events/s"),
        ),
    );
}

/// Fills a fresh store and closes it, then times its open in a fresh process: as the store
/// keeps it (sealed segments with their index files), and without the index files (every
/// segment scanned, as after a crash that lost them or on a log written before they existed).
async fn measure_open(dir: &Path, events: u64, disk: &Disk, payload: &Bytes) -> BenchResult<()> {
    let (store, _) = EmbeddedStore::open(dir, Options::default())?;
    let filled = fill(&store, events, payload).await?;
    print_fill(events, filled, disk);
    store.close().await;
    let log_bytes = log_bytes(dir)?;

    let label = format!("open, {} events", thousands(events as f64));
    let run = open_in_child(dir).await?;
    print_open(&label, &run, events, log_bytes, disk);

    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|extension| extension == SEGMENT_INDEX_EXTENSION) {
            std::fs::remove_file(path)?;
            removed += 1;
        }
    }
    if removed > 0 {
        let run = open_in_child(dir).await?;
        print_open(&format!("{label}, no index files"), &run, events, log_bytes, disk);
    } else {
        println!("(no segment index files: the open above scanned every segment)");
    }
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

/// What the child process measured of one open.
#[derive(Debug)]
struct OpenRun {
    elapsed: Duration,
    rss_before_kib: u64,
    peak_rss_kib: u64,
    events: u64,
    report: String,
}

/// Runs this program again as `--open-child <dir>`, so the peak RSS is the open's alone, in a
/// process that has allocated nothing else, as a service starting up.
async fn open_in_child(dir: &Path) -> BenchResult<OpenRun> {
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.arg(OPEN_CHILD_ARG).arg(dir);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    if !output.status.success() {
        return Err(format!("the open child failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let stdout = String::from_utf8(output.stdout)?;
    let mut fields = stdout.trim().splitn(5, ' ');
    let mut number =
        || -> BenchResult<u64> { Ok(fields.next().ok_or("the open child said too little")?.parse()?) };
    let elapsed = Duration::from_nanos(number()?);
    let (rss_before_kib, peak_rss_kib, events) = (number()?, number()?, number()?);
    let report = fields.next().unwrap_or_default().to_owned();
    Ok(OpenRun { elapsed, rss_before_kib, peak_rss_kib, events, report })
}

/// The child process of [`open_in_child`]: opens the store in `dir`, prints the nanoseconds it
/// took, the RSS before and the peak RSS after (KiB), the events found and the report.
async fn open_child(dir: &Path) -> BenchResult<()> {
    let rss_before_kib = proc_status_kib("VmRSS:").unwrap_or(0);
    let started = Instant::now();
    let (store, report) = EmbeddedStore::open(dir, Options::default())?;
    let elapsed = started.elapsed();
    let peak_rss_kib = proc_status_kib("VmHWM:").unwrap_or(0);
    assert_eq!(store.head().as_u64(), report.events, "the open makes every event it found readable");
    println!("{} {rss_before_kib} {peak_rss_kib} {} {report:?}", elapsed.as_nanos(), report.events);
    store.close().await;
    Ok(())
}

fn print_open(label: &str, run: &OpenRun, events: u64, log_bytes: u64, disk: &Disk) {
    assert_eq!(run.events, events, "the open finds every event");
    let seconds = run.elapsed.as_secs_f64();
    let bytes_per_s = log_bytes as f64 / seconds;
    line(
        label,
        &format!("{seconds:.2} s"),
        &format!(
            "{} events/s rebuilt, {:.0} MB/s of log = {:.2} of sequential write",
            thousands(events as f64 / seconds),
            bytes_per_s / 1e6,
            bytes_per_s / disk.sequential_bytes_per_s,
        ),
    );
    line(
        "  peak RSS after open",
        &format!("{} MiB", run.peak_rss_kib / 1024),
        &format!("VmHWM of a fresh process, {} MiB before the open", run.rss_before_kib / 1024),
    );
    line("  open report", &format!("{} MB of log", log_bytes / 1_000_000), &run.report);
}

/// Appends `events` events in batches of 512 to [`FILL_STREAMS`] streams, several batches in
/// flight so the writer groups them: how long it took.
async fn fill(store: &EmbeddedStore, events: u64, payload: &Bytes) -> BenchResult<Duration> {
    let batches = events.div_ceil(BATCH_EVENTS as u64);
    let fill_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for task in 0..FILL_TASKS as u64 {
        let (store, payload) = (store.clone(), payload.clone());
        tasks.spawn(async move {
            for batch in (task..batches).step_by(FILL_TASKS) {
                let first = batch * BATCH_EVENTS as u64;
                let count = (events - first).min(BATCH_EVENTS as u64);
                let stream = StreamName::new(&format!("fill-{}", batch % FILL_STREAMS))?;
                let batch_events = (first..first + count)
                    .map(|number| EventData::new(fill_id(fill_ms, number), EVENT_TYPE, payload.clone()))
                    .collect();
                store.append(&stream, ExpectedVersion::Any, batch_events).await?;
            }
            Ok::<(), StoreError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    assert_eq!(store.head().as_u64(), events, "the fill appends every event");
    Ok(started.elapsed())
}

/// A UUIDv7 of the fill's millisecond and the event's number, unique in the log. The fill does
/// not use `Uuid::now_v7`: its `getrandom` system call per id took about 40% of the CPU of a
/// fill on 2 cores, so the fill would have measured the ids more than the store.
fn fill_id(fill_ms: u64, number: u64) -> Uuid {
    let mut counter = [0; 10];
    counter[2..].copy_from_slice(&number.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(fill_ms, &counter).into_uuid()
}

fn print_fill(events: u64, elapsed: Duration, disk: &Disk) {
    let events_per_s = events as f64 / elapsed.as_secs_f64();
    line(
        &format!("fill, {} events", thousands(events as f64)),
        &format!("{} events/s", thousands(events_per_s)),
        &format!(
            "512-event appends, {FILL_TASKS} in flight, in {:.1} s: {:.2} of disk at 512-event batches",
            elapsed.as_secs_f64(),
            events_per_s / disk.batch_events_per_s
        ),
    );
}

/// Bytes of the segment files in a store's directory.
fn log_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(SEGMENT_SUFFIX) {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// `--store postgres`: in a database of its own on the server at `url` (created first, dropped
/// at the end, error or not), the PostgreSQL store against the server's raw ceiling for the same
/// work, then group commit against one transaction per append.
async fn bench_postgres(url: &str, sizes: Sizes) -> BenchResult<()> {
    let admin_config: tokio_postgres::Config = url.parse()?;
    let (admin, connection) = admin_config.connect(NoTls).await?;
    let connection = tokio::spawn(connection);
    let database = create_bench_database(&admin).await?;
    let result = postgres_runs(&admin, &with_database(url, &database), &database, sizes).await;
    let dropped = admin.batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)")).await;
    drop(admin);
    let _ = connection.await;
    result?;
    dropped?;
    println!("database {database} dropped");
    Ok(())
}

/// Creates a database for this run on the server of `admin`: `symbiose_bench_<random>`.
async fn create_bench_database(admin: &Client) -> Result<String, tokio_postgres::Error> {
    let hex = Uuid::now_v7().simple().to_string();
    // The last hex digits of a UUIDv7 are random.
    let database = format!("symbiose_bench_{}", &hex[hex.len() - 12..]);
    admin.batch_execute(&format!("CREATE DATABASE {database}")).await?;
    Ok(database)
}

/// Connections the server at `admin` leaves to a bench, at most: its `max_connections` less its
/// reserved ones and [`RAW_CONNECTIONS_MARGIN`].
async fn connections_max(admin: &Client) -> BenchResult<usize> {
    let setting = async |name: &str| -> BenchResult<usize> {
        let text: String = admin.query_one(&format!("SHOW {name}"), &[]).await?.try_get(0)?;
        Ok(text.parse()?)
    };
    let (max_connections, reserved) =
        (setting("max_connections").await?, setting("superuser_reserved_connections").await?);
    Ok(max_connections.saturating_sub(reserved + RAW_CONNECTIONS_MARGIN).max(1))
}

/// `url` naming `database` instead of its own: the path of a `postgres://` url, or a `dbname`
/// added to key=value pairs (the last one wins).
fn with_database(url: &str, database: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return format!("{url} dbname={database}");
    };
    let (rest, query) = rest.split_once('?').map_or((rest, None), |(rest, query)| (rest, Some(query)));
    let authority = rest.split_once('/').map_or(rest, |(authority, _)| authority);
    let query = query.map_or_else(String::new, |query| format!("?{query}"));
    format!("{scheme}://{authority}/{database}{query}")
}

/// The runs of `--store postgres`, in `database` (at `url`), `admin` connected to the server.
async fn postgres_runs(admin: &Client, url: &str, database: &str, sizes: Sizes) -> BenchResult<()> {
    let payload = pseudo_random_bytes(PAYLOAD_BYTES, 7);
    let setting = async |name: &str| -> BenchResult<String> {
        Ok(admin.query_one(&format!("SHOW {name}"), &[]).await?.try_get(0)?)
    };
    let version = setting("server_version").await?;
    let max_connections: usize = setting("max_connections").await?.parse()?;
    let reserved: usize = setting("superuser_reserved_connections").await?.parse()?;
    let raw_connections_max = max_connections.saturating_sub(reserved + RAW_CONNECTIONS_MARGIN).max(1);
    println!(
        "eventstore-bench --store postgres: database {database} (made for this run) on PostgreSQL {version}"
    );
    println!(
        "cores {}, {}, load average at start {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        if sizes.open_log_events == QUICK.open_log_events {
            "--quick: figures are indicative only"
        } else {
            "full run"
        },
        load_average(),
    );
    println!(
        "server: synchronous_commit {}, fsync {}, wal_sync_method {}, max_connections {max_connections} \
         ({reserved} reserved): the raw side opens {raw_connections_max} connections at most \
         (a margin of {RAW_CONNECTIONS_MARGIN})",
        setting("synchronous_commit").await?,
        setting("fsync").await?,
        setting("wal_sync_method").await?,
    );
    println!(
        "each run: {:.1} s of warm-up, then {:.1} s measured; one {PAYLOAD_BYTES}-byte event per append, \
         one stream per writer",
        sizes.append_warmup.as_secs_f64(),
        sizes.append_run.as_secs_f64(),
    );

    // Connecting the store creates its schema, which the raw table copies.
    PostgresStore::connect(url, PostgresOptions::default()).await?.close().await;
    let config: tokio_postgres::Config = url.parse()?;
    let (client, connection) = config.connect(NoTls).await?;
    let connection = tokio::spawn(connection);
    client.batch_execute(&format!("CREATE TABLE {RAW_TABLE} (LIKE symbiose_events INCLUDING ALL)")).await?;
    drop(client);
    let _ = connection.await;

    println!(
        "\n1. the store (PostgresStore, group commit) against plain transactions of the same rows \
         (BEGIN; INSERT; COMMIT per append into {RAW_TABLE}, no Symbiose code)"
    );
    let mut group_commit_at_most = None;
    for writers in WRITER_COUNTS {
        let store = measure_postgres_store(url, writers, PostgresOptions::default(), sizes, &payload).await?;
        print_postgres_run(&format!("store, {}", plural(writers, "writer")), &store);
        let connections = writers.min(raw_connections_max);
        let raw = measure_raw(&config, connections, writers, sizes, &payload).await?;
        let capped = if connections < writers {
            format!(" (not {writers}: the server's max_connections less a margin)")
        } else {
            String::new()
        };
        print_postgres_run(&format!("raw, {}{capped}", plural(connections, "connection")), &raw);
        let ratio = store.0 / raw.0;
        line(
            &format!("store / raw, {}", plural(writers, "writer")),
            &format!("{ratio:.2}"),
            &target(ratio >= TARGET_POSTGRES_OF_RAW, "target 0.80"),
        );
        group_commit_at_most = Some((writers, store));
    }

    let (writers, grouped) = group_commit_at_most.ok_or("no writer count")?;
    println!("\n2. group commit against one transaction per append, {}", plural(writers, "writer"));
    let options = PostgresOptions { group_appends_max: 1, ..PostgresOptions::default() };
    let single = measure_postgres_store(url, writers, options, sizes, &payload).await?;
    print_postgres_run("store, group commit (above)", &grouped);
    print_postgres_run("store, 1 append per transaction", &single);
    let gain = grouped.0 / single.0;
    line(
        "group commit / 1 per transaction",
        &format!("{gain:.2}"),
        &target(gain >= TARGET_GROUP_COMMIT_GAIN, "target 5.00"),
    );
    println!("\nload average at the end {}", load_average());
    Ok(())
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

/// Appends finished within the measured run per second, and sorted latencies in microseconds.
type Rate = (f64, Vec<u64>);

/// A store connected for this run with `options`, its writers on streams of their own.
async fn measure_postgres_store(
    url: &str,
    writers: usize,
    options: PostgresOptions,
    sizes: Sizes,
    payload: &Bytes,
) -> BenchResult<Rate> {
    let single = options.group_appends_max == 1;
    let store = PostgresStore::connect(url, options).await?;
    let prefix = format!("{}-{writers}", if single { "single" } else { "store" });
    let result = run_writers(&store, &prefix, writers, sizes, payload).await;
    store.close().await;
    let (_, appends_per_s, latencies_us) = result?;
    Ok((appends_per_s, latencies_us))
}

/// `connections` connections, each appending one event at a time in its own transaction
/// (`BEGIN`, one `INSERT` of the row the store would write, `COMMIT`), positions from a counter
/// in this process: what the server does for the same work with no Symbiose code.
async fn measure_raw(
    config: &tokio_postgres::Config,
    connections: usize,
    writers: usize,
    sizes: Sizes,
    payload: &Bytes,
) -> BenchResult<Rate> {
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(connection);
        clients.push(client);
    }
    // The table keeps the rows of earlier runs, as the store's does.
    let next: i64 = clients[0]
        .query_one(&format!("SELECT coalesce(max(position) + 1, 0) FROM {RAW_TABLE}"), &[])
        .await?
        .try_get(0)?;
    let positions = Arc::new(AtomicU64::new(u64::try_from(next)?));
    let measure_from = Instant::now() + sizes.append_warmup;
    let until = measure_from + sizes.append_run;
    let samples_max = LATENCY_SAMPLES_MAX / connections;
    let mut tasks = JoinSet::new();
    for (writer, client) in clients.into_iter().enumerate() {
        let (positions, payload) = (positions.clone(), payload.clone());
        let stream = format!("raw-{writers}-{writer}");
        tasks.spawn(async move {
            insert_one_by_one(client, stream, positions, payload, measure_from, until, samples_max).await
        });
    }
    let (_, appends_per_s, latencies_us) = collect_latencies(tasks, measure_from, sizes.append_run).await?;
    Ok((appends_per_s, latencies_us))
}

/// The raw side's writer: the same row as the store's, one transaction each, until `until`.
async fn insert_one_by_one(
    mut client: Client,
    stream: String,
    positions: Arc<AtomicU64>,
    payload: Bytes,
    measure_from: Instant,
    until: Instant,
    samples_max: usize,
) -> Result<WriterRun, tokio_postgres::Error> {
    let insert = client
        .prepare(&format!(
            "INSERT INTO {RAW_TABLE} (position, batch_position, stream, version, event_id, \
             event_type, metadata, payload, recorded_at) VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .await?;
    let mut samples = Vec::new();
    let mut finished = Instant::now();
    let mut finished_in_run = 0;
    for version in 0..WRITER_APPENDS_MAX as i64 {
        let started = Instant::now();
        if started >= until || samples.len() >= samples_max {
            break;
        }
        let position = positions.fetch_add(1, Ordering::Relaxed) as i64;
        let (id, recorded_at) = (Uuid::now_v7(), std::time::SystemTime::now());
        let metadata: &[u8] = &[];
        let transaction = client.transaction().await?;
        transaction
            .execute(
                &insert,
                &[&position, &stream, &version, &id, &EVENT_TYPE, &metadata, &payload.as_ref(), &recorded_at],
            )
            .await?;
        transaction.commit().await?;
        finished = Instant::now();
        if started >= measure_from {
            samples.push(u64::try_from((finished - started).as_micros()).unwrap_or(u64::MAX));
        }
        finished_in_run += u64::from(finished >= measure_from && finished <= until);
    }
    Ok((samples, finished, finished_in_run))
}

fn print_postgres_run(label: &str, (appends_per_s, latencies_us): &Rate) {
    line(
        label,
        &format!("{} appends/s", thousands(*appends_per_s)),
        &format!(
            "p50 {}  p99 {}  ({} latencies)",
            millis(percentile_us(latencies_us, 5000)),
            millis(percentile_us(latencies_us, 9900)),
            thousands(latencies_us.len() as f64),
        ),
    );
}

/// CPU time counters of the whole machine and of this process, in clock ticks: how much other
/// work ran alongside a measurement, which on a shared machine skews the figures.
#[derive(Debug, Clone, Copy)]
struct CpuSample {
    /// Ticks of every CPU not idle, waiting for I/O or stolen by the hypervisor.
    machine_busy: u64,
    /// Ticks of every CPU, whatever they did.
    machine_total: u64,
    /// Ticks this process and its children ran, user and system.
    own: u64,
}

impl CpuSample {
    /// From `/proc/stat` and `/proc/self/stat`; `None` where they cannot be read.
    fn now() -> Option<CpuSample> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|field| field.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal: guest time is counted in user already.
        let [user, nice, system, idle, iowait, irq, softirq, steal] = *ticks.get(..8)? else { return None };
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // After the command name (which may hold spaces): utime, stime, and the same of the
        // children waited for (the open runs), from the 12th field on.
        let own_fields: Vec<&str> = own_stat.rsplit_once(')')?.1.split_whitespace().collect();
        let own =
            own_fields.get(11..15)?.iter().map(|field| field.parse::<u64>().ok()).sum::<Option<u64>>()?;
        Some(CpuSample {
            machine_busy: user + nice + system + irq + softirq,
            machine_total: user + nice + system + idle + iowait + irq + softirq + steal,
            own,
        })
    }

    /// The cores other processes kept busy from `self` to `later`, on average.
    fn others_cores(&self, later: &CpuSample) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let total = later.machine_total.saturating_sub(self.machine_total).max(1) as f64;
        let others = (later.machine_busy.saturating_sub(self.machine_busy))
            .saturating_sub(later.own.saturating_sub(self.own)) as f64;
        others / total * cores
    }
}

/// The 1, 5 and 15 minute load averages, from `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// A field of `/proc/self/status` in KiB (`VmRSS:`, `VmHWM:`).
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// The latency at `per_ten_thousand` (5000 for p50) of sorted samples.
fn percentile_us(sorted_us: &[u64], per_ten_thousand: usize) -> u64 {
    if sorted_us.is_empty() {
        return 0;
    }
    sorted_us[(sorted_us.len() - 1) * per_ten_thousand / 10_000]
}

/// Bytes that no layer below could compress or deduplicate away.
fn pseudo_random_bytes(length: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(length);
    for _ in 0..length {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.push(state as u8);
    }
    Bytes::from(bytes)
}

/// One result: what, the figure with its unit, and the rest (ratio, target) after it.
fn line(label: &str, figure: &str, rest: &str) {
    println!("{label:<38} {figure:>20}   {rest}");
}

fn target(met: bool, target: &str) -> String {
    format!("{target}: {}", if met { "met" } else { "NOT met" })
}

fn millis(micros: u64) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}

/// `1234567.8` as `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}
