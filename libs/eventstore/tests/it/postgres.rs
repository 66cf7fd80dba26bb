//! The PostgreSQL store on the server at 127.0.0.1:5432: the shared contract, the ordering
//! race (writers committing out of order while a reader follows the log), clients killed in
//! the middle of an append, the queue's bound and the migrations. Each test works in databases
//! of its own, made with unique names and dropped when it ends, passed or failed. Where no
//! server answers, the tests say so and pass, except under `CI`, where they fail.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use symbiose_eventstore::postgres::{PostgresOptions, PostgresStore};
use symbiose_eventstore::{
    Append, EventData, EventStore as _, ExpectedVersion, Position, RecordedEvent, StoreError, StreamName,
};
use tokio::sync::watch;
use tokio_postgres::NoTls;
use uuid::Uuid;

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// The databases one test made, dropped (with their connections) when it ends.
pub(crate) struct Databases {
    names: Mutex<Vec<String>>,
}

impl Databases {
    /// A new empty database, and its url.
    pub(crate) async fn create(&self) -> String {
        let name = format!("symbiose_test_{}", Uuid::now_v7().simple());
        let admin = admin().await.expect("connect to the postgres database");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create a test database");
        self.names.lock().expect("lock").push(name.clone());
        format!("{SERVER}/{name}")
    }
}

impl Drop for Databases {
    fn drop(&mut self) {
        let names =
            std::mem::take(&mut *self.names.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if names.is_empty() {
            return;
        }
        // Drop may run inside the test's runtime: the cleanup gets a thread and runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let Ok(admin) = admin().await else { return };
                for name in names {
                    if let Err(error) =
                        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
                    {
                        eprintln!("dropping the test database {name}: {error}");
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

async fn admin() -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    raw(&format!("{SERVER}/postgres")).await.map(|(client, _)| client)
}

/// A plain connection, and the task that runs its protocol (abort it to cut the connection).
async fn raw(
    url: &str,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse().expect("a valid url");
    config.connect_timeout(Duration::from_secs(3));
    let (client, connection) = config.connect(NoTls).await?;
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((client, task))
}

/// The databases of `test`, or `None` (the test then passes, saying why) where PostgreSQL does
/// not answer; under `CI` that fails the test instead.
pub(crate) async fn postgres_or_skip(test: &str) -> Option<Databases> {
    match admin().await {
        Ok(_) => Some(Databases { names: Mutex::new(Vec::new()) }),
        Err(error) => {
            let cause =
                std::error::Error::source(&error).map(|cause| format!(": {cause}")).unwrap_or_default();
            let reason = format!("PostgreSQL does not answer on 127.0.0.1:5432: {error}{cause}");
            if std::env::var_os("CI").is_some_and(|value| !value.is_empty()) {
                panic!("{test}: {reason} (CI is set: this test must run)");
            }
            println!("skipped {test}: {reason}");
            None
        }
    }
}

async fn connect(url: &str, options: PostgresOptions) -> PostgresStore {
    PostgresStore::connect(url, options).await.expect("connect the store")
}

fn stream(name: &str) -> StreamName {
    StreamName::new(name).expect("a valid stream name")
}

fn events(count: usize, tag: &str) -> Vec<EventData> {
    (0..count)
        .map(|index| EventData::new(Uuid::now_v7(), "ThingHappened", Bytes::from(format!("{tag}-{index}"))))
        .collect()
}

/// A few random milliseconds, from the random bits of a UUIDv7.
fn random_ms(max: u64) -> u64 {
    (Uuid::now_v7().as_u128() as u64) % (max + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_passes_the_contract() {
    let test = "the_postgres_store_passes_the_contract";
    let Some(databases) = postgres_or_skip(test).await else { return };
    let databases = &databases;
    let started = Instant::now();
    symbiose_eventstore::contract::run_all(|| async move {
        connect(&databases.create().await, PostgresOptions::default()).await
    })
    .await;
    symbiose_eventstore::contract::run_gapless(|| async move {
        connect(&databases.create().await, PostgresOptions::default()).await
    })
    .await;
    println!("{test}: the contract suite took {:?}", started.elapsed());
}

/// Follows the log from position 0 through the store's read path until `total` (once known)
/// events are read, checking that each page goes on exactly where the previous one stopped.
/// A reader that skips a position never gets it back (it asks from the next position), so a
/// late commit below a position already read is reported here as a jump.
async fn follow_log(
    store: &PostgresStore,
    mut total: watch::Receiver<Option<u64>>,
) -> Result<Vec<RecordedEvent>, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen: Vec<RecordedEvent> = Vec::new();
    loop {
        if Instant::now() > deadline {
            return Err(format!("the reader is stuck at position {}", seen.len()));
        }
        let next = seen.len() as u64;
        let page = store
            .read_all(Position::from_u64(next), 1000)
            .await
            .map_err(|error| format!("read_all: {error}"))?;
        if page.is_empty() {
            if let Some(total) = *total.borrow_and_update()
                && next >= total
            {
                return Ok(seen);
            }
            let _ = tokio::time::timeout(
                Duration::from_millis(20),
                store.wait_for_head(Position::from_u64(next)),
            )
            .await;
            continue;
        }
        for event in page {
            let expected = seen.len() as u64;
            if event.position.as_u64() != expected {
                return Err(format!(
                    "the reader expected position {expected} and read {} ({}): it skipped a commit",
                    event.position, event.id
                ));
            }
            seen.push(event);
        }
    }
}

/// Sixteen writers on four stores (four writer connections, each with its own group commit)
/// hold each write transaction open a random few milliseconds after taking their positions,
/// so transactions finish in every order the lock allows, while a reader on a fifth store
/// follows the log. The reader must see every acknowledged event exactly once, at the position
/// its append reported, without a jump. `a_naive_sequence_fails_the_ordering_race` shows the
/// same reader catching a `bigserial` allocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_skips_an_event_committed_late() {
    const STORES: usize = 4;
    const WRITERS: usize = 16;
    const APPENDS: usize = 20;
    let Some(databases) = postgres_or_skip("a_reader_never_skips_an_event_committed_late").await else {
        return;
    };
    let url = databases.create().await;
    let hold: Arc<dyn Fn() -> Duration + Send + Sync> = Arc::new(|| Duration::from_millis(random_ms(3)));
    let options = PostgresOptions { hold_before_commit: Some(hold), ..PostgresOptions::default() };
    let mut writers = Vec::new();
    for _ in 0..STORES {
        writers.push(connect(&url, options.clone()).await);
    }
    let reader = connect(&url, PostgresOptions { head_poll_ms: 50, ..PostgresOptions::default() }).await;
    let (total, total_known) = watch::channel(None);
    let following = {
        let reader = reader.clone();
        tokio::spawn(async move { follow_log(&reader, total_known).await })
    };

    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = writers[writer % STORES].clone();
        tasks.push(tokio::spawn(async move {
            let own = stream(&format!("race-{writer}"));
            let mut expected = ExpectedVersion::NoStream;
            let mut acknowledged = Vec::new();
            for append in 0..APPENDS {
                tokio::time::sleep(Duration::from_millis(random_ms(2))).await;
                let batch = events(append % 3 + 1, &format!("{writer}-{append}"));
                let ids: Vec<Uuid> = batch.iter().map(|event| event.id).collect();
                let result = if append % 5 == 4 {
                    store.append(&stream("race-shared"), ExpectedVersion::Any, batch).await.expect("append")
                } else {
                    let result = store.append(&own, expected, batch).await.expect("append");
                    expected = ExpectedVersion::Exact(result.next_expected_version);
                    result
                };
                for (offset, id) in ids.into_iter().enumerate() {
                    acknowledged.push((id, result.first_position.as_u64() + offset as u64));
                }
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.expect("writer"));
    }
    total.send_replace(Some(acknowledged.len() as u64));
    let seen = following.await.expect("reader").unwrap_or_else(|failure| panic!("{failure}"));

    assert_eq!(seen.len(), acknowledged.len(), "the reader saw every acknowledged event, no more");
    let ids: HashSet<Uuid> = seen.iter().map(|event| event.id).collect();
    assert_eq!(ids.len(), seen.len(), "each event once");
    for (id, position) in &acknowledged {
        assert_eq!(
            seen[*position as usize].id, *id,
            "the event at {position} is the one its append reported"
        );
    }
}

/// The same race against a deliberately naive protocol: positions drawn from a `bigserial`
/// sequence (`nextval`), the head moved to the highest committed position at commit. Two
/// writers draw 7 and 8; the one holding 8 commits first and the head becomes 9; the reader
/// reads `[7, 9)` through the store's read path, finds 8 where it expected 7, and, were it a
/// subscription, would move on to 9 and never see 7. The reader of the test above must
/// catch this, or it proves nothing; a few rounds are allowed for the timing to line up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_naive_sequence_fails_the_ordering_race() {
    const WRITERS: usize = 8;
    const APPENDS: usize = 30;
    const ROUNDS: usize = 5;
    let Some(databases) = postgres_or_skip("a_naive_sequence_fails_the_ordering_race").await else { return };
    for round in 0..ROUNDS {
        let url = databases.create().await;
        let reader = connect(&url, PostgresOptions { head_poll_ms: 20, ..PostgresOptions::default() }).await;
        let (admin, _task) = raw(&url).await.expect("connect");
        admin.batch_execute("CREATE SEQUENCE naive_position MINVALUE 0 START 0").await.expect("sequence");
        let (total, total_known) = watch::channel(None);
        let following = {
            let reader = reader.clone();
            tokio::spawn(async move { follow_log(&reader, total_known).await })
        };
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let (mut client, _task) = raw(&url).await.expect("connect");
                for append in 0..APPENDS {
                    let transaction = client.transaction().await.expect("begin");
                    let position: i64 = transaction
                        .query_one(
                            "INSERT INTO symbiose_events (position, batch_position, stream, version, \
                             event_id, event_type, metadata, payload, recorded_at) \
                             VALUES (nextval('naive_position'), currval('naive_position'), $1, $2, $3, \
                             'Naive', '', '', now()) RETURNING position",
                            &[&format!("naive-{writer}"), &(append as i64), &Uuid::now_v7()],
                        )
                        .await
                        .expect("insert")
                        .get(0);
                    tokio::time::sleep(Duration::from_millis(random_ms(3))).await;
                    transaction
                        .execute(
                            "UPDATE symbiose_log SET next_position = GREATEST(next_position, $1) WHERE id",
                            &[&(position + 1)],
                        )
                        .await
                        .expect("move the head");
                    transaction
                        .execute("SELECT pg_notify('symbiose_events', $1)", &[&(position + 1).to_string()])
                        .await
                        .expect("notify");
                    transaction.commit().await.expect("commit");
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer");
        }
        total.send_replace(Some((WRITERS * APPENDS) as u64));
        match following.await.expect("reader") {
            Err(failure) => {
                println!("round {round}: the naive sequence fails the race, as it must: {failure}");
                return;
            }
            Ok(_) => println!("round {round}: the naive sequence got through this time"),
        }
    }
    panic!("the reader never caught a naive sequence in {ROUNDS} rounds: the race test proves nothing");
}

/// The writer's connection is killed while its transaction holds positions and events, before
/// the commit: the append fails, nothing of it is in the log, and the store goes on (a new
/// connection) from the same position, the repeated append taking it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_whose_connection_dies_before_commit_writes_nothing() {
    let Some(databases) =
        postgres_or_skip("an_append_whose_connection_dies_before_commit_writes_nothing").await
    else {
        return;
    };
    let url = databases.create().await;
    let (held, mut holding) = tokio::sync::mpsc::unbounded_channel();
    // Armed for the doomed append only.
    let armed = Arc::new(AtomicBool::new(false));
    let hold: Arc<dyn Fn() -> Duration + Send + Sync> = Arc::new({
        let armed = armed.clone();
        move || {
            if armed.swap(false, Ordering::SeqCst) {
                let _ = held.send(());
                Duration::from_millis(1500)
            } else {
                Duration::ZERO
            }
        }
    });
    let store =
        connect(&url, PostgresOptions { hold_before_commit: Some(hold), ..PostgresOptions::default() }).await;
    store.append(&stream("before-1"), ExpectedVersion::NoStream, events(2, "before")).await.expect("append");
    let doomed = stream("doomed-1");
    let batch = events(5, "doomed");
    armed.store(true, Ordering::SeqCst);
    let append = {
        let (store, doomed, batch) = (store.clone(), doomed.clone(), batch.clone());
        tokio::spawn(async move { store.append(&doomed, ExpectedVersion::NoStream, batch).await })
    };
    holding.recv().await.expect("the writer holds its transaction");
    let (admin, _task) = raw(&url).await.expect("connect");
    let killed: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND state = 'idle in transaction' \
             AND pid <> pg_backend_pid()) AS killed",
            &[],
        )
        .await
        .expect("terminate the writer's backend")
        .get(0);
    assert_eq!(killed, 1, "one transaction in flight: the writer's");
    let failed = append.await.expect("append task");
    assert!(matches!(failed, Err(StoreError::Io(_))), "{failed:?}");

    assert_eq!(
        store.read_all(Position::START, 100).await.expect("read").len(),
        2,
        "nothing of the killed append"
    );
    assert!(store.stream_info(&doomed).await.expect("info").is_none());
    assert_eq!(store.head().as_u64(), 2);
    let repeated = store.append(&doomed, ExpectedVersion::NoStream, batch).await.expect("repeat the append");
    assert_eq!(
        (repeated.first_position.as_u64(), repeated.last_position.as_u64()),
        (2, 6),
        "no gap where it failed"
    );
    let log = store.read_all(Position::START, 100).await.expect("read");
    assert_eq!(
        log.iter().map(|event| event.position.as_u64()).collect::<Vec<_>>(),
        (0..7).collect::<Vec<_>>()
    );
}

/// A client following the store's protocol by hand takes the log's lock and writes three
/// events, then goes away (its socket closed) before committing: PostgreSQL rolls it back,
/// the lock is released, and the store appends at position 0 as if it never was. A client
/// that commits leaves all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_append_leaves_all_or_nothing() {
    let Some(databases) = postgres_or_skip("a_client_gone_mid_append_leaves_all_or_nothing").await else {
        return;
    };
    let url = databases.create().await;
    let store = connect(&url, PostgresOptions::default()).await;

    async fn write_three(client: &mut tokio_postgres::Client, commit: bool) -> Vec<Uuid> {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let transaction = client.transaction().await.expect("begin");
        let next: i64 = transaction
            .query_one("SELECT next_position FROM symbiose_log WHERE id FOR UPDATE", &[])
            .await
            .expect("lock")
            .get(0);
        for (offset, id) in ids.iter().enumerate() {
            let offset = offset as i64;
            transaction
                .execute(
                    "INSERT INTO symbiose_events (position, batch_position, stream, version, event_id, \
                     event_type, metadata, payload, recorded_at) \
                     VALUES ($1, $2, 'raw-1', $3, $4, 'Raw', '', '', now())",
                    &[&(next + offset), &next, &offset, id],
                )
                .await
                .expect("insert");
        }
        transaction
            .execute(
                "INSERT INTO symbiose_streams (name, last_version) VALUES ('raw-1', 2) \
                 ON CONFLICT (name) DO NOTHING",
                &[],
            )
            .await
            .expect("stream");
        transaction
            .execute("UPDATE symbiose_log SET next_position = $1 WHERE id", &[&(next + 3)])
            .await
            .expect("head");
        if commit {
            transaction.commit().await.expect("commit");
        } else {
            // Dropped without a commit or rollback: the caller then cuts the connection.
            std::mem::forget(transaction);
        }
        ids
    }

    let (mut client, connection) = raw(&url).await.expect("connect");
    let lost = write_three(&mut client, false).await;
    drop(client);
    connection.abort();
    let _ = connection.await;
    let after = tokio::time::timeout(
        Duration::from_secs(10),
        store.append(&stream("after-1"), ExpectedVersion::NoStream, events(1, "after")),
    )
    .await
    .expect("the lock is released when the client goes")
    .expect("append");
    assert_eq!(after.first_position, Position::START, "the lost transaction took no position");
    let log = store.read_all(Position::START, 100).await.expect("read");
    assert!(log.iter().all(|event| !lost.contains(&event.id)), "none of the lost events");

    let (mut client, _connection) = raw(&url).await.expect("connect");
    let kept = write_three(&mut client, true).await;
    drop(client);
    let log = store.read_all(Position::START, 100).await.expect("read");
    assert_eq!(
        log.iter().skip(1).map(|event| event.id).collect::<Vec<_>>(),
        kept,
        "all of the committed ones"
    );
}

/// The writer holds a group; the queue takes `append_queue_max` more and refuses the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_overloaded() {
    let Some(databases) = postgres_or_skip("a_full_queue_is_overloaded").await else { return };
    let url = databases.create().await;
    let (held, mut holding) = tokio::sync::mpsc::unbounded_channel();
    let hold: Arc<dyn Fn() -> Duration + Send + Sync> = Arc::new(move || {
        let _ = held.send(());
        Duration::from_millis(300)
    });
    let options =
        PostgresOptions { append_queue_max: 2, hold_before_commit: Some(hold), ..PostgresOptions::default() };
    let store = connect(&url, options).await;
    let first = {
        let store = store.clone();
        tokio::spawn(async move { store.append(&stream("q-0"), ExpectedVersion::Any, events(1, "q")).await })
    };
    holding.recv().await.expect("the writer holds the first group");
    let appends = (1..=3)
        .map(|index| Append {
            stream: stream(&format!("q-{index}")),
            expected: ExpectedVersion::Any,
            events: events(1, "q"),
        })
        .collect();
    let answers = store.append_many(appends).await;
    first.await.expect("task").expect("the first append");
    assert!(answers[0].is_ok() && answers[1].is_ok(), "{answers:?}");
    assert!(matches!(answers[2], Err(StoreError::Overloaded(_))), "{:?}", answers[2]);
    assert_eq!(store.read_all(Position::START, 10).await.expect("read").len(), 3);
}

/// Three stores connecting at once to a new database migrate it once; another store sees
/// their appends through its notifications; a store connected later finds the log as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_connecting_together_migrate_once_and_share_the_log() {
    let Some(databases) = postgres_or_skip("stores_connecting_together_migrate_once_and_share_the_log").await
    else {
        return;
    };
    let url = databases.create().await;
    // A long poll: the head must come from the notification.
    let slow_poll = PostgresOptions { head_poll_ms: 60_000, ..PostgresOptions::default() };
    let (first, second, third) = tokio::join!(
        PostgresStore::connect(&url, PostgresOptions::default()),
        PostgresStore::connect(&url, slow_poll.clone()),
        PostgresStore::connect(&url, PostgresOptions::default()),
    );
    let (first, second, _third) = (first.expect("first"), second.expect("second"), third.expect("third"));
    let (admin, _task) = raw(&url).await.expect("connect");
    let migrations: Vec<i32> = admin
        .query("SELECT version FROM symbiose_schema_migrations ORDER BY version", &[])
        .await
        .expect("list the migrations")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(migrations, [1, 2, 3, 4], "each migration applied once");

    // Connected means listening: the second store hears the append without its (slow) poll.
    first.append(&stream("shared-1"), ExpectedVersion::NoStream, events(3, "s")).await.expect("append");
    let head = tokio::time::timeout(Duration::from_secs(5), second.wait_for_head(Position::from_u64(2)))
        .await
        .expect("the other store hears of the append")
        .expect("head");
    assert_eq!(head.as_u64(), 3);
    first.close().await;
    assert!(matches!(first.read_all(Position::START, 10).await, Err(StoreError::Closed)));

    let later = connect(&url, PostgresOptions::default()).await;
    assert_eq!(later.head().as_u64(), 3);
    assert_eq!(later.read_all(Position::START, 10).await.expect("read").len(), 3);
}

/// Appends queued while the writer holds a transaction are written together in the next one
/// (their rows share one `xmin`, the id of the transaction that wrote them), each decided on
/// its own: a refused one and a repeat among them change nothing of the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_appends_are_written_in_one_transaction_each_on_its_own() {
    let Some(databases) =
        postgres_or_skip("queued_appends_are_written_in_one_transaction_each_on_its_own").await
    else {
        return;
    };
    let url = databases.create().await;
    let (held, mut holding) = tokio::sync::mpsc::unbounded_channel();
    let armed = Arc::new(AtomicBool::new(false));
    let hold: Arc<dyn Fn() -> Duration + Send + Sync> = Arc::new({
        let armed = armed.clone();
        move || {
            if armed.swap(false, Ordering::SeqCst) {
                let _ = held.send(());
                Duration::from_millis(300)
            } else {
                Duration::ZERO
            }
        }
    });
    let store =
        connect(&url, PostgresOptions { hold_before_commit: Some(hold), ..PostgresOptions::default() }).await;
    let original = events(2, "original");
    store.append(&stream("g-0"), ExpectedVersion::NoStream, original.clone()).await.expect("append");
    armed.store(true, Ordering::SeqCst);
    let first = {
        let store = store.clone();
        tokio::spawn(async move {
            store.append(&stream("g-1"), ExpectedVersion::NoStream, events(1, "held")).await
        })
    };
    holding.recv().await.expect("the writer holds a transaction");
    let mut appends: Vec<Append> = (0..50)
        .map(|index| Append {
            stream: stream(&format!("g-group-{}", index % 5)),
            expected: ExpectedVersion::Any,
            events: events(2, "grouped"),
        })
        .collect();
    appends.insert(
        10,
        Append { stream: stream("g-0"), expected: ExpectedVersion::NoStream, events: events(1, "refused") },
    );
    appends
        .insert(20, Append { stream: stream("g-0"), expected: ExpectedVersion::NoStream, events: original });
    let answers = store.append_many(appends).await;
    first.await.expect("task").expect("the held append");
    assert!(matches!(answers[10], Err(StoreError::WrongExpectedVersion { .. })), "{:?}", answers[10]);
    assert_eq!(
        answers[20].as_ref().expect("a repeat").first_position,
        Position::START,
        "the repeat answers the original"
    );
    let written: Vec<_> = answers.iter().enumerate().filter(|(index, _)| ![10, 20].contains(index)).collect();
    assert!(written.iter().all(|(_, answer)| answer.is_ok()), "the others are written: {answers:?}");
    let (admin, _task) = raw(&url).await.expect("connect");
    let transactions: i64 = admin
        .query_one(
            "SELECT count(DISTINCT xmin::text) FROM symbiose_events WHERE stream LIKE 'g-group-%'",
            &[],
        )
        .await
        .expect("count transactions")
        .get(0);
    assert_eq!(transactions, 1, "fifty queued appends, one transaction");
    let log = store.read_all(Position::START, 1000).await.expect("read");
    assert_eq!(log.len(), 2 + 1 + 100);
    assert!(log.iter().enumerate().all(|(index, event)| event.position.as_u64() == index as u64));
}

/// Event ids are unique in the whole log (a unique index): an append reusing any id of an
/// earlier batch, not only its first, is refused, and so is one naming an id twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_id_is_unique_in_the_whole_log() {
    let Some(databases) = postgres_or_skip("an_event_id_is_unique_in_the_whole_log").await else { return };
    let store = connect(&databases.create().await, PostgresOptions::default()).await;
    let first = events(2, "first");
    store.append(&stream("ids-1"), ExpectedVersion::NoStream, first.clone()).await.expect("append");
    let mut reused = events(2, "reused");
    reused[1].id = first[1].id;
    let refused = store.append(&stream("ids-2"), ExpectedVersion::Any, reused).await;
    assert!(
        matches!(&refused, Err(StoreError::DuplicateEvent { id, .. }) if *id == first[1].id),
        "{refused:?}"
    );
    let mut twice = events(2, "twice");
    twice[1].id = twice[0].id;
    let refused = store.append(&stream("ids-3"), ExpectedVersion::Any, twice).await;
    assert!(matches!(refused, Err(StoreError::InvalidInput(_))), "{refused:?}");
    assert_eq!(store.head().as_u64(), 2);
}

/// A lease has one holder at a time: another is refused until the holder releases it or its
/// deadline passes, each change of holder counts a generation, and a renewal keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_has_one_holder_until_released_or_expired() {
    let Some(databases) = postgres_or_skip("a_lease_has_one_holder_until_released_or_expired").await else {
        return;
    };
    let url = databases.create().await;
    let (first, second) =
        (connect(&url, PostgresOptions::default()).await, connect(&url, PostgresOptions::default()).await);
    let ttl = Duration::from_secs(30);
    assert_eq!(first.acquire_lease("matching.jobs", "a", ttl).await.expect("take"), Some(1));
    assert_eq!(second.acquire_lease("matching.jobs", "b", ttl).await.expect("try"), None, "held by a");
    assert_eq!(
        first.acquire_lease("matching.jobs", "a", ttl).await.expect("renew"),
        Some(1),
        "renewed, same generation"
    );
    assert_eq!(second.acquire_lease("logistics.jobs", "b", ttl).await.expect("another lease"), Some(1));
    // Only the holder releases.
    second.release_lease("matching.jobs", "b").await.expect("release by a non-holder");
    assert_eq!(second.acquire_lease("matching.jobs", "b", ttl).await.expect("try"), None);
    first.release_lease("matching.jobs", "a").await.expect("release");
    assert_eq!(second.acquire_lease("matching.jobs", "b", ttl).await.expect("take over"), Some(2));
    // A holder that stops renewing loses it at its deadline.
    let short = Duration::from_millis(300);
    assert_eq!(second.acquire_lease("matching.jobs", "b", short).await.expect("renew short"), Some(2));
    assert_eq!(first.acquire_lease("matching.jobs", "a", ttl).await.expect("try"), None);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        first.acquire_lease("matching.jobs", "a", ttl).await.expect("take after the deadline"),
        Some(3)
    );
    assert_eq!(second.acquire_lease("matching.jobs", "b", ttl).await.expect("the old holder"), None);
    assert!(matches!(first.acquire_lease("bad name", "a", ttl).await, Err(StoreError::InvalidInput(_))));
    assert!(matches!(first.acquire_lease("ok", "", ttl).await, Err(StoreError::InvalidInput(_))));
}

/// Jobs kept under one lease by two processes: one runs at a time; when its keeper stops, the
/// other takes over within a renewal; when its store goes away (a process cut off), its job
/// stops before the deadline and the other takes over after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_job_runs_in_one_process_and_moves_when_its_holder_goes() {
    use symbiose_eventstore::lease::{LeaseOptions, LeaseState, keep};
    let Some(databases) =
        postgres_or_skip("a_kept_job_runs_in_one_process_and_moves_when_its_holder_goes").await
    else {
        return;
    };
    let url = databases.create().await;
    let options = LeaseOptions::with_ttl_ms(1_000);
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let overlapped = Arc::new(AtomicBool::new(false));
    let starts = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let job = |who: &'static str| {
        let (running, overlapped, starts) = (running.clone(), overlapped.clone(), starts.clone());
        move |held: symbiose_eventstore::lease::Held| {
            let (running, overlapped, starts) = (running.clone(), overlapped.clone(), starts.clone());
            async move {
                if running.fetch_add(1, Ordering::SeqCst) > 0 {
                    overlapped.store(true, Ordering::SeqCst);
                }
                starts.lock().expect("lock").push(who);
                held.stopped().await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        }
    };
    let (first_store, second_store) =
        (connect(&url, PostgresOptions::default()).await, connect(&url, PostgresOptions::default()).await);
    let (stop_first, first_stopped) = watch::channel(false);
    let first =
        keep(first_store.clone(), "jobs".into(), "first".into(), options, first_stopped, job("first"));
    let mut first_state = first.state.clone();
    tokio::time::timeout(
        Duration::from_secs(5),
        first_state.wait_for(|state| matches!(state, LeaseState::Held { .. })),
    )
    .await
    .expect("the first keeper takes the lease")
    .expect("state");
    let (stop_second, second_stopped) = watch::channel(false);
    let second =
        keep(second_store.clone(), "jobs".into(), "second".into(), options, second_stopped, job("second"));
    let mut second_state = second.state.clone();
    second_state.wait_for(|state| *state == LeaseState::Elsewhere).await.expect("state");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(*starts.lock().expect("lock"), ["first"], "the second waits while the first renews");

    // A stop releases: the other takes over within a renewal period, not a TTL.
    let stopped_at = Instant::now();
    stop_first.send(true).expect("stop");
    first.task.await.expect("first keeper").expect("its job ended well");
    tokio::time::timeout(
        Duration::from_secs(5),
        second_state.wait_for(|state| *state == LeaseState::Held { generation: 2 }),
    )
    .await
    .expect("the second keeper takes over")
    .expect("state");
    let released_takeover = stopped_at.elapsed();
    assert!(
        released_takeover < options.ttl,
        "taken over in {released_takeover:?}, within a TTL of {:?}",
        options.ttl
    );

    // The holder cut off from its store stops its job; a third process takes over after the deadline.
    let third_store = connect(&url, PostgresOptions::default()).await;
    let (_stop_third, third_stopped) = watch::channel(false);
    let third = keep(third_store, "jobs".into(), "third".into(), options, third_stopped, job("third"));
    let mut third_state = third.state.clone();
    let cut_at = Instant::now();
    second_store.close().await;
    tokio::time::timeout(
        Duration::from_secs(10),
        third_state.wait_for(|state| *state == LeaseState::Held { generation: 3 }),
    )
    .await
    .expect("the third keeper takes over")
    .expect("state");
    let takeover = cut_at.elapsed();
    assert!(takeover >= options.ttl - options.renew, "not before the deadline: {takeover:?}");
    // The state says held as the job is spawned: its first step follows.
    let deadline = Instant::now() + Duration::from_secs(5);
    while starts.lock().expect("lock").len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!overlapped.load(Ordering::SeqCst), "two jobs ran at once");
    assert_eq!(*starts.lock().expect("lock"), ["first", "second", "third"]);
    drop(stop_second);
    println!(
        "takeovers: after a stop {released_takeover:?}, after a cut {takeover:?} (TTL {:?})",
        options.ttl
    );
}

/// The vault's keys: the first created wins, erasing deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_keys_are_created_once_and_erased() {
    let Some(databases) = postgres_or_skip("vault_keys_are_created_once_and_erased").await else { return };
    let url = databases.create().await;
    let store = connect(&url, PostgresOptions::default()).await;
    let subject = Uuid::now_v7();
    assert_eq!(store.vault_key(subject).await.expect("read"), None);
    let first = store.create_vault_key(subject, &[1; 32]).await.expect("create");
    assert_eq!(first, vec![1; 32]);
    assert_eq!(
        store.create_vault_key(subject, &[2; 32]).await.expect("create again"),
        vec![1; 32],
        "the first wins"
    );
    assert_eq!(store.vault_key(subject).await.expect("read"), Some(vec![1; 32]));
    assert!(matches!(store.create_vault_key(subject, &[3; 5]).await, Err(StoreError::InvalidInput(_))));
    store.erase_vault_key(subject).await.expect("erase");
    assert_eq!(store.vault_key(subject).await.expect("read"), None);
}
