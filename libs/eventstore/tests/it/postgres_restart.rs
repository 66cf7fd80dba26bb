//! PostgreSQL crashed and restarted under load: nothing acknowledged is lost.
//!
//! The test runs a PostgreSQL cluster of its own (never the shared server on 5432, which other
//! tests use): `initdb` in a temporary directory, as the `postgres` user when the tests run as
//! root (`initdb` refuses root), on a free port of 127.0.0.1, its unix socket in the same
//! directory, trust authentication and `fsync = on`. The cluster is stopped and removed when the
//! test ends, passed or panicked. Without PostgreSQL's server binaries
//! (`/usr/lib/postgresql/*/bin/initdb`) the test fails, saying so: CI installs them.
//!
//! Sixteen writers append to streams of their own with expected versions while the server is
//! crashed (`pg_ctl stop -m immediate`: every backend killed, no shutdown checkpoint, the WAL
//! replayed at the next start) and started again on the same port and data directory. Each
//! append that fails is repeated, with its event ids and expected version, until it is
//! answered: the store's idempotency answers a repeat of a batch that landed with its
//! original result. Then every acknowledged event must be in the log exactly once, where its
//! append said, and nothing else; the log's positions gapless; each stream's versions 0..n;
//! and the store, and another store that only listens, must have followed the restart. Just
//! before the crash a synchronous standby that never connects is named, so the commit in
//! flight is durable but unanswered when the server dies: the repeat of an append that did
//! land is certain to be tested, not left to timing.
//!
//! `a_store_listens_again_when_its_connections_are_cut`: the same follower of other writers'
//! commits when the server cuts every connection without restarting.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use symbiose_eventstore::postgres::{PostgresOptions, PostgresStore};
use symbiose_eventstore::{
    Direction, EventData, EventStore as _, ExpectedVersion, Position, RecordedEvent, StoreError, StreamName,
};
use uuid::Uuid;

/// Where Debian installs each major version's server binaries: `<root>/<version>/bin`.
const POSTGRES_ROOT: &str = "/usr/lib/postgresql";

const WRITERS: usize = 16;
/// Appends acknowledged before the crash, at least: the server dies under load.
const ACKNOWLEDGED_BEFORE_CRASH: usize = 160;
/// Failed attempts each writer sees while the server is down before it is started again.
const ERRORS_WHILE_DOWN: usize = 3;
/// Appends each writer must have acknowledged after the restart.
const ACKNOWLEDGED_AFTER_RESTART: usize = 3;
/// Attempts of one append, at most, and the backoff between them.
const ATTEMPTS_MAX: usize = 80;
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_millis(200);

/// A private PostgreSQL cluster in a temporary directory, stopped (`-m immediate`) and
/// removed when dropped, even by a panic.
struct Cluster {
    bin: PathBuf,
    /// Owned by `postgres` when the test runs as root; removed after the server stops.
    dir: tempfile::TempDir,
    port: u16,
    /// Run PostgreSQL's programs as the `postgres` user (the tests run as root).
    as_postgres: bool,
}

impl Cluster {
    /// `initdb`, the settings, and a first start.
    fn create() -> Cluster {
        let bin = server_binaries();
        let as_postgres = is_root();
        let dir =
            tempfile::Builder::new().prefix("symbiose-pg-restart-").tempdir().expect("temporary directory");
        if as_postgres {
            run(Command::new("chown").arg("-R").arg("postgres:postgres").arg(dir.path()))
                .unwrap_or_else(|failure| panic!("give the cluster's directory to postgres: {failure}"));
        }
        let port = free_port();
        let cluster = Cluster { bin, dir, port, as_postgres };
        // Without a shutdown, `Drop` has nothing to stop: dropping `cluster` from here on is safe.
        cluster
            .pg("initdb", |command| {
                // `--no-sync`: initdb's own files; the server itself runs with `fsync = on`.
                command.arg("-D").arg(cluster.data()).args([
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ])
            })
            .unwrap_or_else(|failure| panic!("initdb: {failure}"));
        let settings = format!(
            "\n# symbiose postgres_restart test\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{}'\nfsync = on\nsynchronous_commit = on\nfull_page_writes = on\n\
             max_connections = 50\nlogging_collector = off\n",
            cluster.dir.path().display()
        );
        let conf = cluster.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
        text.push_str(&settings);
        std::fs::write(&conf, text).expect("write postgresql.conf");
        cluster.start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// One of PostgreSQL's programs, as `postgres` if need be, in the cluster's directory.
    fn pg(&self, program: &str, arguments: impl FnOnce(&mut Command) -> &mut Command) -> Result<(), String> {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.current_dir(self.dir.path());
        run(arguments(&mut command))
    }

    /// Starts the server and waits until it takes connections (after replaying its WAL).
    fn start(&self) {
        self.pg("pg_ctl", |command| {
            command.arg("-D").arg(self.data()).arg("-l").arg(self.log()).args(["-w", "-t", "30", "start"])
        })
        .unwrap_or_else(|failure| panic!("pg_ctl start: {failure}\n{}", self.log_tail()));
    }

    /// A crash: the postmaster kills every backend at once, without a shutdown checkpoint.
    fn crash(&self) {
        self.pg("pg_ctl", |command| {
            command.arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "-t", "30", "stop"])
        })
        .unwrap_or_else(|failure| panic!("pg_ctl stop -m immediate: {failure}\n{}", self.log_tail()));
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!("server log (last lines):\n{}", lines[lines.len().saturating_sub(30)..].join("\n"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        // Fails harmlessly if the server is already down; the directory goes with `dir`.
        if self.data().join("postmaster.pid").exists()
            && let Err(failure) = self.pg("pg_ctl", |command| {
                command.arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"])
            })
        {
            eprintln!("stopping the test's PostgreSQL cluster: {failure}");
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn server_binaries() -> PathBuf {
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(POSTGRES_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let bin = entry.path().join("bin");
            let version = entry
                .file_name()
                .to_string_lossy()
                .split('.')
                .map(|part| part.parse().unwrap_or(0))
                .collect();
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL's server binaries are not installed ({POSTGRES_ROOT}/*/bin/initdb is absent): \
             install the postgresql package (CI does) to run this test"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A port of 127.0.0.1 nobody listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|error| format!("{command:?}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?}: {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Where the server is, as the writers see it when they send an append and get its answer.
const UP: u8 = 0;
/// From the end of `pg_ctl stop` to the start of `pg_ctl start`: nothing can commit.
const DOWN: u8 = 1;
const RESTARTING: u8 = 2;
const RESTARTED: u8 = 3;

struct Shared {
    phase: AtomicU8,
    stop: AtomicBool,
    acknowledged: AtomicUsize,
    /// Per writer: failed attempts since the crash, appends acknowledged after the restart.
    errors_since_crash: Vec<AtomicUsize>,
    acknowledged_after_restart: Vec<AtomicUsize>,
}

/// An append the store acknowledged.
struct Acknowledged {
    ids: Vec<Uuid>,
    first_version: u64,
    first_position: u64,
    last_position: u64,
    /// When its answer came.
    phase: u8,
    /// It failed at least once before: its outcome was unknown and a repeat answered it.
    repeated: bool,
}

#[derive(Default)]
struct WriterReport {
    acknowledged: Vec<Acknowledged>,
    io_errors: usize,
    overloaded: usize,
    /// What must not happen, for the final assertion to name.
    violations: Vec<String>,
}

/// Appends batches of 1 to 3 events to `restart-<writer>` until told to stop, each with the
/// expected version its previous append left, each repeated until answered.
async fn write(store: PostgresStore, writer: usize, shared: Arc<Shared>) -> WriterReport {
    let own = StreamName::new(&format!("restart-{writer}")).expect("a valid stream name");
    let mut report = WriterReport::default();
    let mut next_version = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let count = report.acknowledged.len() % 3 + 1;
        let batch: Vec<EventData> = (0..count)
            .map(|index| {
                EventData::new(
                    Uuid::now_v7(),
                    "Written",
                    Bytes::from(format!("{writer}-{next_version}-{index}")),
                )
            })
            .collect();
        let ids: Vec<Uuid> = batch.iter().map(|event| event.id).collect();
        let expected = if next_version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(next_version - 1)
        };
        let mut backoff = BACKOFF_FIRST;
        let mut failed = 0;
        loop {
            let sent_in = shared.phase.load(Ordering::SeqCst);
            // The same ids and expected version every attempt: a repeat of a batch that landed
            // (its commit reached the WAL, its answer died with the connection) is answered
            // with the original result; one that did not land is written now.
            let answer = store.append(&own, expected, batch.clone()).await;
            let answered_in = shared.phase.load(Ordering::SeqCst);
            match answer {
                Ok(result) => {
                    if sent_in == DOWN && answered_in == DOWN {
                        report.violations.push(format!(
                            "{own}: an append sent and answered while the server was down was acknowledged: \
                             {result:?}"
                        ));
                    }
                    let (first, last) = (result.first_position.as_u64(), result.last_position.as_u64());
                    if result.next_expected_version != next_version + count as u64 - 1
                        || last.checked_sub(first) != Some(count as u64 - 1)
                    {
                        report.violations.push(format!(
                            "{own}: an append of {count} events at version {next_version} answered {result:?}"
                        ));
                        return report;
                    }
                    report.acknowledged.push(Acknowledged {
                        ids,
                        first_version: next_version,
                        first_position: first,
                        last_position: last,
                        phase: answered_in,
                        repeated: failed > 0,
                    });
                    next_version += count as u64;
                    shared.acknowledged.fetch_add(1, Ordering::SeqCst);
                    if sent_in == RESTARTED {
                        shared.acknowledged_after_restart[writer].fetch_add(1, Ordering::SeqCst);
                    }
                    break;
                }
                // `Io`: the connection failed, before the commit (nothing written) or during it
                // (the outcome is unknown): repeat. `Overloaded`: the queue refused it, nothing
                // written: repeat too.
                Err(error @ (StoreError::Io(_) | StoreError::Overloaded(_))) => {
                    if matches!(error, StoreError::Io(_)) {
                        report.io_errors += 1;
                    } else {
                        report.overloaded += 1;
                    }
                    failed += 1;
                    if sent_in != UP {
                        shared.errors_since_crash[writer].fetch_add(1, Ordering::SeqCst);
                    }
                    if failed >= ATTEMPTS_MAX {
                        report.violations.push(format!(
                            "{own}: an append failed {failed} times in a row, the last with: {error}"
                        ));
                        return report;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                // Only this writer appends to its stream, so a refusal can only be about its own
                // batch. On a first attempt it is a plain bug. On a repeat it means the store
                // did not recognise its own batch: the store's contract answers a repeat (same
                // ids, same expected version) with the original result, so
                // `WrongExpectedVersion` (the stream moved: by this batch, or by part of it) or
                // `DuplicateEvent` (its ids are known, in another batch) breaks idempotency,
                // whether or not the batch landed. The stream is read to say which it was, and
                // the writer stops: its idea of the stream is no longer certain.
                Err(
                    error @ (StoreError::WrongExpectedVersion { .. } | StoreError::DuplicateEvent { .. }),
                ) => {
                    let landed = match store.read_stream(&own, next_version, Direction::Forward, count).await
                    {
                        Ok(events) => {
                            let found: Vec<Uuid> = events.iter().map(|event| event.id).collect();
                            if found == ids { "it is in the log" } else { "it is not in the log as sent" }
                        }
                        Err(_) => "the stream cannot be read",
                    };
                    report.violations.push(format!(
                        "{own}: an append at version {next_version} (after {failed} failed attempts) was \
                         refused: {error}; {landed}"
                    ));
                    return report;
                }
                Err(error) => {
                    report
                        .violations
                        .push(format!("{own}: an append at version {next_version} failed: {error}"));
                    return report;
                }
            }
        }
    }
    report
}

/// Polls `condition` every 10 ms until it holds, or panics with `what` at `deadline`.
async fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The whole log, in pages, each resumed after the last event read.
async fn read_whole_log(store: &PostgresStore) -> Vec<RecordedEvent> {
    let mut log: Vec<RecordedEvent> = Vec::new();
    loop {
        let from = log.last().map_or(Position::START, |event| event.position.after());
        let page = store.read_all(from, 1000).await.expect("read the log after the restart");
        if page.is_empty() {
            return log;
        }
        log.extend(page);
    }
}

fn millis_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_and_restart_of_postgresql_loses_no_acknowledged_append() {
    let started = Instant::now();
    let cluster = Arc::new(tokio::task::spawn_blocking(Cluster::create).await.expect("create the cluster"));
    let url = cluster.url();
    let store = PostgresStore::connect(&url, PostgresOptions::default()).await.expect("connect the store");
    // Another store of the same database that only reads: its head follows the writers through
    // its LISTEN connection. Its poll is too slow to matter here: after the restart, it must
    // hear of new commits by listening again.
    let observer =
        PostgresStore::connect(&url, PostgresOptions { head_poll_ms: 60_000, ..PostgresOptions::default() })
            .await
            .expect("connect the observer");

    let shared = Arc::new(Shared {
        phase: AtomicU8::new(UP),
        stop: AtomicBool::new(false),
        acknowledged: AtomicUsize::new(0),
        errors_since_crash: (0..WRITERS).map(|_| AtomicUsize::new(0)).collect(),
        acknowledged_after_restart: (0..WRITERS).map(|_| AtomicUsize::new(0)).collect(),
    });
    let writers: Vec<_> =
        (0..WRITERS).map(|writer| tokio::spawn(write(store.clone(), writer, shared.clone()))).collect();

    wait_until("appends acknowledged before the crash", Duration::from_secs(10), || {
        shared.acknowledged.load(Ordering::SeqCst) >= ACKNOWLEDGED_BEFORE_CRASH
    })
    .await;
    // The case idempotency is for, made certain rather than left to timing: a commit durable on
    // the server whose answer the crash takes. With a synchronous standby named that never
    // connects, a commit flushes its WAL and then waits for the standby: the writer's next group
    // is in the log, unanswered, when the server dies. The setting is reset in the configuration
    // file (not reloaded) so the restarted server commits as before.
    let (admin, connection) =
        tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect admin");
    let _connection = tokio::spawn(connection);
    // Two statements: ALTER SYSTEM refuses the implicit transaction of a multi-statement query.
    admin
        .batch_execute("ALTER SYSTEM SET synchronous_standby_names = 'symbiose_nobody'")
        .await
        .expect("name a standby");
    admin.batch_execute("SELECT pg_reload_conf()").await.expect("reload the configuration");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = admin
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'", &[])
            .await
            .expect("read pg_stat_activity")
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no commit waited for the standby in 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    admin.batch_execute("ALTER SYSTEM RESET synchronous_standby_names").await.expect("reset the standby");
    let crashed_at = SystemTime::now();
    let crashing = Instant::now();
    tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || cluster.crash()
    })
    .await
    .expect("crash the server");
    shared.phase.store(DOWN, Ordering::SeqCst);
    // The outage lasts until every writer has seen its appends fail a few times.
    wait_until("every writer to see errors while the server is down", Duration::from_secs(10), || {
        shared.errors_since_crash.iter().all(|errors| errors.load(Ordering::SeqCst) >= ERRORS_WHILE_DOWN)
    })
    .await;
    shared.phase.store(RESTARTING, Ordering::SeqCst);
    tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || cluster.start()
    })
    .await
    .expect("restart the server");
    let outage = crashing.elapsed();
    shared.phase.store(RESTARTED, Ordering::SeqCst);
    let after_restart = Instant::now();
    wait_until("every writer to append again after the restart", Duration::from_secs(15), || {
        shared
            .acknowledged_after_restart
            .iter()
            .all(|acknowledged| acknowledged.load(Ordering::SeqCst) >= ACKNOWLEDGED_AFTER_RESTART)
            || writers.iter().any(tokio::task::JoinHandle::is_finished)
    })
    .await;
    let recovered_in = after_restart.elapsed();
    shared.stop.store(true, Ordering::SeqCst);
    let mut reports = Vec::with_capacity(WRITERS);
    for writer in writers {
        reports.push(writer.await.expect("a writer task"));
    }
    let violations: Vec<&String> = reports.iter().flat_map(|report| &report.violations).collect();
    assert!(violations.is_empty(), "the writers saw what must not happen:\n{violations:#?}");

    let log = read_whole_log(&store).await;
    let by_phase = |phase: u8| {
        reports.iter().flat_map(|report| &report.acknowledged).filter(|a| a.phase == phase).count()
    };
    let repeated: Vec<&Acknowledged> =
        reports.iter().flat_map(|report| &report.acknowledged).filter(|append| append.repeated).collect();
    // A repeated append whose events were recorded before the crash had landed then: only its
    // answer was lost, and the repeat was answered from the log.
    let crashed_ms = millis_since_epoch(crashed_at);
    let landed_before = repeated
        .iter()
        .filter(|append| {
            log.get(append.first_position as usize).is_some_and(|event| event.timestamp_ms < crashed_ms)
        })
        .count();
    println!(
        "postgres_restart: appends acknowledged before the crash {}, while the server was down or starting {} \
         (answered by the restarted server, or late), after the restart {} ({} events in all); {} i/o errors \
         and {} overloaded answers; {} appends acknowledged after failing, {} of which had landed before the \
         crash (answered by the repeat); outage {:?}, every writer appending again {:?} after the restart; \
         {:?} in all",
        by_phase(UP),
        by_phase(DOWN) + by_phase(RESTARTING),
        by_phase(RESTARTED),
        log.len(),
        reports.iter().map(|report| report.io_errors).sum::<usize>(),
        reports.iter().map(|report| report.overloaded).sum::<usize>(),
        repeated.len(),
        landed_before,
        outage,
        recovered_in,
        started.elapsed(),
    );

    // The log as the store reads it after the restart: positions 0, 1, 2... (gapless on
    // PostgreSQL), each event once.
    for (index, event) in log.iter().enumerate() {
        assert_eq!(
            event.position,
            Position::from_u64(index as u64),
            "the log's positions increase by one from 0: event {} of {} ({})",
            index,
            event.stream,
            event.id
        );
    }
    let mut in_log: HashMap<Uuid, usize> = HashMap::with_capacity(log.len());
    for (index, event) in log.iter().enumerate() {
        if let Some(earlier) = in_log.insert(event.id, index) {
            panic!("event {} is in the log twice: at {earlier} and {index}", event.id);
        }
    }

    // Every acknowledged event, at the position and version its append answered; and nothing
    // else (every append a writer started was repeated until acknowledged).
    let mut acknowledged_events = 0;
    for (writer, report) in reports.iter().enumerate() {
        let own = StreamName::new(&format!("restart-{writer}")).expect("a valid stream name");
        let mut stream_ids = Vec::new();
        for append in &report.acknowledged {
            for (offset, id) in append.ids.iter().enumerate() {
                let position = append.first_position + offset as u64;
                let index = *in_log.get(id).unwrap_or_else(|| {
                    panic!("{own}: event {id}, acknowledged at position {position}, is not in the log")
                });
                let event = &log[index];
                assert_eq!(
                    (event.position, &event.stream, event.version),
                    (Position::from_u64(position), &own, append.first_version + offset as u64),
                    "{own}: event {id} is where its append said"
                );
            }
            assert_eq!(append.last_position - append.first_position + 1, append.ids.len() as u64);
            stream_ids.extend(append.ids.iter().copied());
        }
        acknowledged_events += stream_ids.len();

        // The stream, read on its own: versions 0..n without a gap, exactly the acknowledged ids.
        let events = store
            .read_stream(&own, 0, Direction::Forward, stream_ids.len() + 10)
            .await
            .unwrap_or_else(|error| panic!("{own}: read the stream after the restart: {error}"));
        let versions: Vec<u64> = events.iter().map(|event| event.version).collect();
        assert_eq!(versions, (0..stream_ids.len() as u64).collect::<Vec<_>>(), "{own}: versions 0..n");
        assert_eq!(
            events.iter().map(|event| event.id).collect::<Vec<_>>(),
            stream_ids,
            "{own}: the stream holds its acknowledged events, in order, and nothing else"
        );
        let info = store.stream_info(&own).await.expect("stream info").expect("the stream exists");
        assert_eq!(info.last_version + 1, stream_ids.len() as u64, "{own}: its last version");
    }
    assert_eq!(log.len(), acknowledged_events, "the log holds the acknowledged events and nothing else");
    assert!(
        landed_before > 0,
        "the group committed but unanswered at the crash is in the log and was acknowledged by a repeat"
    );

    // The store writes again, and both heads follow: the writer's through its own commits, the
    // observer's by listening again (its poll is a minute away).
    let end = Position::from_u64(log.len() as u64);
    assert_eq!(store.head(), end, "the store's head after the restart");
    let last = StreamName::new("restart-after").expect("a valid stream name");
    let appended = store
        .append(&last, ExpectedVersion::NoStream, vec![EventData::new(Uuid::now_v7(), "Written", "after")])
        .await
        .expect("an append after the restart");
    assert_eq!(appended.first_position, end, "the next append goes on where the log ended");
    let heard = tokio::time::timeout(Duration::from_secs(5), observer.wait_for_head(end)).await;
    assert_eq!(
        heard.map_err(|_| "nothing in 5 s").and_then(|head| head.map_err(|_| "an error")),
        Ok(end.after()),
        "the other store hears of commits after the restart (its LISTEN connection was cut)"
    );
    let observed = observer.read_all(end, 10).await.expect("the other store reads after the restart");
    assert_eq!(observed.len(), 1);

    store.close().await;
    observer.close().await;
}

/// Appends, repeating the append (same ids) while it fails for a cut connection.
async fn append_until_answered(
    store: &PostgresStore,
    stream: &StreamName,
    expected: ExpectedVersion,
) -> symbiose_eventstore::AppendResult {
    let batch = vec![EventData::new(Uuid::now_v7(), "Written", "cut")];
    let mut attempts = 0;
    loop {
        attempts += 1;
        match store.append(stream, expected, batch.clone()).await {
            Ok(result) => return result,
            Err(StoreError::Io(_)) if attempts < 50 => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(error) => panic!("{stream}: append after {attempts} attempts: {error}"),
        }
    }
}

/// Every connection of two stores cut by the server (`pg_terminate_backend`, as a restart of a
/// pooler or a failover does) while one only listens: the one that writes goes on, and the one
/// that listens hears its commits again at once, not at its next poll (a minute away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_listens_again_when_its_connections_are_cut() {
    let cluster = tokio::task::spawn_blocking(Cluster::create).await.expect("create the cluster");
    let url = cluster.url();
    let writer = PostgresStore::connect(&url, PostgresOptions::default()).await.expect("connect the writer");
    let listener =
        PostgresStore::connect(&url, PostgresOptions { head_poll_ms: 60_000, ..PostgresOptions::default() })
            .await
            .expect("connect the listener");
    let own = StreamName::new("cut-1").expect("a valid stream name");
    writer
        .append(&own, ExpectedVersion::NoStream, vec![EventData::new(Uuid::now_v7(), "Written", "before")])
        .await
        .expect("append");
    let heard = tokio::time::timeout(Duration::from_secs(5), listener.wait_for_head(Position::START)).await;
    assert!(
        matches!(heard, Ok(Ok(head)) if head == Position::from_u64(1)),
        "heard before the cut: {heard:?}"
    );

    let (admin, connection) =
        tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect admin");
    let _connection = tokio::spawn(connection);
    let cut: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()) AS cut",
            &[],
        )
        .await
        .expect("terminate the stores' backends")
        .get(0);
    // Each store has a writer's, a reader's and a listener's connection at least.
    assert!(cut >= 6, "the stores' connections were cut: {cut}");

    for version in 0..2u64 {
        let appended = append_until_answered(&writer, &own, ExpectedVersion::Exact(version)).await;
        let heard =
            tokio::time::timeout(Duration::from_secs(5), listener.wait_for_head(appended.first_position))
                .await;
        assert!(
            matches!(heard, Ok(Ok(head)) if head == appended.last_position.after()),
            "the listening store hears commit {} after its connections were cut: {heard:?}",
            version + 2
        );
    }
    writer.close().await;
    listener.close().await;
}
