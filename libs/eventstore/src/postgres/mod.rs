//! The event log on PostgreSQL: the same contract as the embedded store, for deployments that
//! keep their data in a database server.
//!
//! Three tables (see `schema`): `symbiose_log`, one row holding the next global position;
//! `symbiose_streams`, each stream's last version and whether it is deleted; and
//! `symbiose_events`, one row per event keyed by its position.
//!
//! **Positions are gapless and in commit order.** Every writing transaction first locks the
//! one row of `symbiose_log` (`SELECT ... FOR UPDATE`), takes its positions from it, writes
//! its events and moves it on, then commits. The row lock is held until commit, so the next
//! writer (in this process or another) can only take its positions after the previous one is
//! committed or rolled back: positions are handed out in commit order and a rollback hands
//! back exactly what it took. A reader therefore never sees position `n + 1` committed while
//! `n` is still in flight, which is how a `bigserial` key fails: two transactions draw 7 and 8,
//! the one holding 8 commits first, a reader reads 8 and moves on, and 7 appears behind it.
//! The trade-off is throughput: the writers of one database are serialized for the length of
//! a transaction. The writer task's group commit (see `writer`) is what makes that cheap: one
//! transaction, one lock and one WAL flush for every append queued meanwhile.
//!
//! The head the store reports (`head()`, synchronous) is a cache: the writer moves it after
//! each commit, and a follower task moves it for other writers of the same database, on their
//! `NOTIFY` and by polling in case a notification is lost.

mod schema;
mod writer;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls, Row};
use uuid::Uuid;

use self::writer::{Operation, Request, Writer};
use crate::model::{
    APPEND_BYTES_MAX, APPEND_EVENTS_MAX, AppendResult, Direction, EventData, ExpectedVersion, Position,
    READ_EVENTS_MAX, RecordedEvent, STREAM_END, Snapshot, StoreError, StreamInfo, StreamName,
    check_checkpoint, check_snapshot,
};

/// Connections the store reads through by default (each pipelines many queries).
pub const READ_CONNECTIONS_DEFAULT: usize = 2;
/// How often the head is read from the database, besides notifications, by default.
pub const HEAD_POLL_MS_DEFAULT: u64 = 1000;
/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT_MS: u64 = 5000;
/// The channel of the notifications a commit sends, its payload the new head.
const NOTIFY_CHANNEL: &str = "symbiose_events";

/// Longest wait at connect for the listener of other writers' commits.
const LISTEN_WAIT: Duration = Duration::from_secs(5);
/// The wait before listening again after a connection attempt failed, doubled after each
/// failure up to the longest.
const LISTEN_RETRY_FIRST: Duration = Duration::from_millis(50);
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(2);

/// Settings of a PostgreSQL store.
#[derive(Clone)]
pub struct PostgresOptions {
    /// Connections for reads, at least 1.
    pub read_connections: usize,
    /// How often the head is polled, for writers whose notification was lost.
    pub head_poll_ms: u64,
    /// Appends waiting for the writer, at most: one more is [`StoreError::Overloaded`].
    pub append_queue_max: usize,
    /// Appends (and deletes) the writer commits in one transaction, at most, at least 1. The
    /// default is the embedded store's group limit; 1 writes one transaction per append, which
    /// the benchmark uses to measure what group commit buys.
    pub group_appends_max: usize,
    /// Tests only: called in each write transaction after its positions are taken and its
    /// events written, before the commit; the writer then waits the duration it returns,
    /// holding the transaction open.
    #[doc(hidden)]
    pub hold_before_commit: Option<Arc<dyn Fn() -> Duration + Send + Sync>>,
}

impl Default for PostgresOptions {
    fn default() -> PostgresOptions {
        PostgresOptions {
            read_connections: READ_CONNECTIONS_DEFAULT,
            head_poll_ms: HEAD_POLL_MS_DEFAULT,
            append_queue_max: crate::embedded::APPEND_QUEUE_MAX,
            group_appends_max: crate::embedded::GROUP_APPENDS_MAX,
            hold_before_commit: None,
        }
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PostgresOptions")
            .field("read_connections", &self.read_connections)
            .field("head_poll_ms", &self.head_poll_ms)
            .field("append_queue_max", &self.append_queue_max)
            .field("group_appends_max", &self.group_appends_max)
            .field("hold_before_commit", &self.hold_before_commit.is_some())
            .finish()
    }
}

/// A handle on the event log in a PostgreSQL database. Cloning shares it.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    appends: mpsc::Sender<Request>,
    head: Arc<watch::Sender<Head>>,
    closed: AtomicBool,
    /// Dropped or set on close: the follower task stops.
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The committed head as this process knows it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Head {
    pub(crate) position: u64,
    pub(crate) closed: bool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database` or key=value
    /// pairs), creating or migrating the schema first.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|error| StoreError::InvalidInput(format!("postgresql url: {error}")))?;
        config.connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS));
        let mut client = connect(&config).await?;
        schema::migrate(&mut client).await?;
        let position = read_head(&client).await?;
        let head = Arc::new(watch::Sender::new(Head { position, closed: false }));

        let writer_client = connect(&config).await?;
        let (appends, receiver) = mpsc::channel(options.append_queue_max.max(1));
        let group_appends_max = options.group_appends_max.clamp(1, crate::embedded::GROUP_APPENDS_MAX);
        let writer = Writer::new(
            config.clone(),
            writer_client,
            head.clone(),
            group_appends_max,
            options.hold_before_commit.clone(),
        );
        let writer = tokio::spawn(writer.run(receiver));

        let (stop, stopped) = watch::channel(false);
        let poll = Duration::from_millis(options.head_poll_ms.max(1));
        let (listening, mut listened) = watch::channel(false);
        let follower = tokio::spawn(follow_head(config.clone(), head.clone(), poll, stopped, listening));
        // A store answers once it hears other writers' commits: an append made by another
        // process right after this one connected moves this head at once, not at the next poll.
        if tokio::time::timeout(LISTEN_WAIT, listened.wait_for(|listening| *listening)).await.is_err() {
            tracing::warn!(
                "not listening for other writers' commits yet: their appends show at the next poll"
            );
        }

        let pool = Pool::new(config, options.read_connections.max(1), client);
        let inner = Inner {
            pool,
            appends,
            head,
            closed: AtomicBool::new(false),
            stop,
            tasks: Mutex::new(vec![writer, follower]),
        };
        Ok(PostgresStore { inner: Arc::new(inner) })
    }

    /// Stops the writer once the appends already queued are written, and closes the
    /// connections. Every handle gets [`StoreError::Closed`] afterwards.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let (reply, _) = oneshot::channel();
        let _ = self.inner.appends.send(Request { operation: Operation::Close, reply }).await;
        let _ = self.inner.stop.send(true);
        let tasks: Vec<JoinHandle<()>> =
            self.inner.tasks.lock().map(|mut tasks| tasks.drain(..).collect()).unwrap_or_default();
        for task in tasks {
            let _ = task.await;
        }
        self.inner.head.send_modify(|head| head.closed = true);
        self.inner.pool.close();
    }

    /// The bytes of a vault key.
    pub const VAULT_KEY_BYTES: usize = 32;

    /// The key `subject`'s personal data is sealed with, if it has one.
    pub async fn vault_key(&self, subject: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_open()?;
        let client = self.inner.pool.client().await?;
        let row = client
            .query_opt("SELECT key FROM symbiose_vault_keys WHERE subject = $1", &[&subject])
            .await
            .map_err(|error| pg_error("reading a vault key", &error))?;
        Ok(row.map(|row| row.get::<_, Vec<u8>>(0)))
    }

    /// Keeps `key` as `subject`'s unless it has one already, and answers the one it has: of two
    /// replicas creating a key together, the first wins and both seal with it.
    pub async fn create_vault_key(&self, subject: Uuid, key: &[u8]) -> Result<Vec<u8>, StoreError> {
        if key.len() != Self::VAULT_KEY_BYTES {
            return Err(StoreError::InvalidInput(format!("a vault key has {} bytes", Self::VAULT_KEY_BYTES)));
        }
        self.check_open()?;
        let client = self.inner.pool.client().await?;
        client
            .execute(
                "INSERT INTO symbiose_vault_keys (subject, key) VALUES ($1, $2) ON CONFLICT (subject) DO NOTHING",
                &[&subject, &key],
            )
            .await
            .map_err(|error| pg_error("creating a vault key", &error))?;
        let row = client
            .query_opt("SELECT key FROM symbiose_vault_keys WHERE subject = $1", &[&subject])
            .await
            .map_err(|error| pg_error("reading a vault key", &error))?;
        // Erased between the two statements: the erasure stands, and this key is not kept.
        row.map(|row| row.get::<_, Vec<u8>>(0)).ok_or_else(|| {
            StoreError::Failed(format!("the vault key of {subject} was erased while it was created"))
        })
    }

    /// Deletes `subject`'s key: what was sealed with it can never be opened again. The row's
    /// bytes leave the table's pages at the next `VACUUM`, and stay in backups taken before.
    pub async fn erase_vault_key(&self, subject: Uuid) -> Result<(), StoreError> {
        self.check_open()?;
        let client = self.inner.pool.client().await?;
        client
            .execute("DELETE FROM symbiose_vault_keys WHERE subject = $1", &[&subject])
            .await
            .map_err(|error| pg_error("erasing a vault key", &error))?;
        Ok(())
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.inner.closed.load(Ordering::SeqCst) { Err(StoreError::Closed) } else { Ok(()) }
    }

    /// Queues an operation for the writer without waiting for room: a full queue is
    /// [`StoreError::Overloaded`].
    fn queue(
        &self,
        operation: Operation,
    ) -> Result<oneshot::Receiver<Result<AppendResult, StoreError>>, StoreError> {
        self.check_open()?;
        let (reply, answer) = oneshot::channel();
        match self.inner.appends.try_send(Request { operation, reply }) {
            Ok(()) => Ok(answer),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(StoreError::Overloaded("the queue of appends to postgresql is full".to_owned()))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(StoreError::Closed),
        }
    }
}

async fn answer(
    answer: oneshot::Receiver<Result<AppendResult, StoreError>>,
) -> Result<AppendResult, StoreError> {
    answer.await.map_err(|_| StoreError::Closed)?
}

impl crate::EventStore for PostgresStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError> {
        check_append(&events)?;
        answer(self.queue(Operation::Append { stream: stream.clone(), expected, events })?).await
    }

    /// Queues every append before waiting for any answer, so the writer takes them together:
    /// one transaction for all (or for as many as one group holds).
    async fn append_many(&self, appends: Vec<crate::Append>) -> Vec<Result<AppendResult, StoreError>> {
        let mut answers = Vec::with_capacity(appends.len());
        for (index, append) in appends.into_iter().enumerate() {
            if index >= crate::APPEND_MANY_MAX {
                answers.push(Err(crate::too_many_appends()));
                continue;
            }
            answers.push(check_append(&append.events).and_then(|()| {
                self.queue(Operation::Append {
                    stream: append.stream,
                    expected: append.expected,
                    events: append.events,
                })
            }));
        }
        let mut results = Vec::with_capacity(answers.len());
        for queued in answers {
            results.push(match queued {
                Ok(queued) => answer(queued).await,
                Err(error) => Err(error),
            });
        }
        results
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_version: u64,
        direction: Direction,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check_open()?;
        let max_count = max_count.min(READ_EVENTS_MAX) as i64;
        let client = self.inner.pool.client().await?;
        let info = stream_info(&client, stream).await?;
        match info {
            None => return Err(StoreError::StreamNotFound(stream.clone())),
            Some(info) if info.deleted => return Err(StoreError::StreamDeleted(stream.clone())),
            Some(_) => {}
        }
        let rows = match direction {
            Direction::Forward => {
                client
                    .query(
                        "SELECT position, stream, version, event_id, event_type, metadata, payload, \
                         recorded_at FROM symbiose_events WHERE stream = $1 AND version >= $2 \
                         ORDER BY version LIMIT $3",
                        &[&stream.as_str(), &to_sql_u64(from_version), &max_count],
                    )
                    .await
            }
            Direction::Backward => {
                let from = if from_version == STREAM_END { i64::MAX } else { to_sql_u64(from_version) };
                client
                    .query(
                        "SELECT position, stream, version, event_id, event_type, metadata, payload, \
                         recorded_at FROM symbiose_events WHERE stream = $1 AND version <= $2 \
                         ORDER BY version DESC LIMIT $3",
                        &[&stream.as_str(), &from, &max_count],
                    )
                    .await
            }
        }
        .map_err(|error| pg_error("reading a stream", &error))?;
        rows.iter().map(recorded_event).collect()
    }

    /// Reads only below the head in the same snapshot. Committed positions are a gapless
    /// prefix of the log (see the module's documentation), so this bound is belt and braces.
    async fn read_all(
        &self,
        from_position: Position,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check_open()?;
        let max_count = max_count.min(READ_EVENTS_MAX) as i64;
        if max_count == 0 {
            return Ok(Vec::new());
        }
        let client = self.inner.pool.client().await?;
        let rows = client
            .query(
                "SELECT position, stream, version, event_id, event_type, metadata, payload, recorded_at \
                 FROM symbiose_events WHERE position >= $1 \
                 AND position < (SELECT next_position FROM symbiose_log WHERE id) \
                 ORDER BY position LIMIT $2",
                &[&to_sql_u64(from_position.as_u64()), &max_count],
            )
            .await
            .map_err(|error| pg_error("reading the log", &error))?;
        rows.iter().map(recorded_event).collect()
    }

    fn head(&self) -> Position {
        Position::from_u64(self.inner.head.borrow().position)
    }

    async fn wait_for_head(&self, beyond: Position) -> Result<Position, StoreError> {
        let beyond = beyond.as_u64();
        let mut receiver = self.inner.head.subscribe();
        let head = *receiver
            .wait_for(|head| head.closed || head.position > beyond)
            .await
            .map_err(|_| StoreError::Closed)?;
        if head.position > beyond { Ok(Position::from_u64(head.position)) } else { Err(StoreError::Closed) }
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Bytes>, StoreError> {
        check_checkpoint(name, &[])?;
        self.check_open()?;
        let client = self.inner.pool.client().await?;
        let row = client
            .query_opt("SELECT value FROM symbiose_checkpoints WHERE name = $1", &[&name])
            .await
            .map_err(|error| pg_error("reading a checkpoint", &error))?;
        Ok(row.map(|row| Bytes::from(row.get::<_, Vec<u8>>(0))))
    }

    /// One statement, so one transaction: the old value or the new one, durable at commit.
    async fn save_checkpoint(&self, name: &str, value: Bytes) -> Result<(), StoreError> {
        check_checkpoint(name, &value)?;
        self.check_open()?;
        let client = self.inner.pool.client().await?;
        client
            .execute(
                "INSERT INTO symbiose_checkpoints (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, saved_at = now()",
                &[&name, &&value[..]],
            )
            .await
            .map_err(|error| pg_error("saving a checkpoint", &error))?;
        Ok(())
    }

    fn keeps_snapshots(&self) -> bool {
        true
    }

    async fn load_snapshot(&self, name: &str) -> Result<Option<Snapshot>, StoreError> {
        check_snapshot(name, &[])?;
        self.check_open()?;
        let client = self.inner.pool.client().await?;
        let row = client
            .query_opt("SELECT position, body FROM symbiose_snapshots WHERE name = $1", &[&name])
            .await
            .map_err(|error| pg_error("reading a snapshot", &error))?;
        Ok(row.map(|row| Snapshot {
            position: Position::from_u64(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)),
            body: Bytes::from(row.get::<_, Vec<u8>>(1)),
        }))
    }

    /// One statement, so one transaction: the old snapshot or the new one, durable at commit.
    async fn save_snapshot(&self, name: &str, snapshot: Snapshot) -> Result<(), StoreError> {
        check_snapshot(name, &snapshot.body)?;
        self.check_open()?;
        let position = i64::try_from(snapshot.position.as_u64())
            .map_err(|_| StoreError::InvalidInput(format!("snapshot {name}: position out of range")))?;
        let client = self.inner.pool.client().await?;
        client
            .execute(
                "INSERT INTO symbiose_snapshots (name, position, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position, body = excluded.body, \
                   saved_at = now()",
                &[&name, &position, &&snapshot.body[..]],
            )
            .await
            .map_err(|error| pg_error("saving a snapshot", &error))?;
        Ok(())
    }

    async fn stream_info(&self, stream: &StreamName) -> Result<Option<StreamInfo>, StoreError> {
        self.check_open()?;
        let client = self.inner.pool.client().await?;
        stream_info(&client, stream).await
    }

    async fn delete_stream(&self, stream: &StreamName, expected: ExpectedVersion) -> Result<(), StoreError> {
        answer(self.queue(Operation::Delete { stream: stream.clone(), expected })?).await.map(|_| ())
    }

    /// One statement on `symbiose_leases`: inserted if absent, taken over if its deadline has
    /// passed (one more generation), renewed if `holder` holds it; otherwise no row comes
    /// back. The deadline is the database's clock.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        crate::lease::check_lease(name, holder)?;
        self.check_open()?;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let client = self.inner.pool.client().await?;
        let row = client
            .query_opt(
                "INSERT INTO symbiose_leases AS lease (name, holder, expires_at, generation, taken_at) \
                 VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond', 1, now()) \
                 ON CONFLICT (name) DO UPDATE SET \
                   holder = excluded.holder, \
                   expires_at = excluded.expires_at, \
                   generation = CASE WHEN lease.holder = excluded.holder THEN lease.generation \
                     ELSE lease.generation + 1 END, \
                   taken_at = CASE WHEN lease.holder = excluded.holder THEN lease.taken_at ELSE now() END \
                 WHERE lease.holder = excluded.holder OR lease.expires_at < now() \
                 RETURNING generation",
                &[&name, &holder, &ttl_ms],
            )
            .await
            .map_err(|error| pg_error("taking a lease", &error))?;
        Ok(row.map(|row| u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)))
    }

    /// Moves the deadline into the past, keeping the generation count.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        crate::lease::check_lease(name, holder)?;
        self.check_open()?;
        let client = self.inner.pool.client().await?;
        client
            .execute(
                "UPDATE symbiose_leases SET expires_at = now() - interval '1 millisecond' \
                 WHERE name = $1 AND holder = $2",
                &[&name, &holder],
            )
            .await
            .map_err(|error| pg_error("releasing a lease", &error))?;
        Ok(())
    }
}

/// The limits the embedded store enforces, and distinct ids within an append (the EventStoreDB
/// backend checks its appends with this too) (a unique index
/// would refuse them anyway, for the whole group).
pub(crate) fn check_append(events: &[EventData]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::InvalidInput("an append needs at least one event".to_owned()));
    }
    if events.len() > APPEND_EVENTS_MAX {
        return Err(StoreError::InvalidInput(format!("an append takes at most {APPEND_EVENTS_MAX} events")));
    }
    let mut bytes = 0;
    let mut ids = std::collections::HashSet::with_capacity(events.len());
    for event in events {
        event.check()?;
        if !ids.insert(event.id) {
            return Err(StoreError::InvalidInput(format!("event {} appears twice in one append", event.id)));
        }
        bytes += event.encoded_len();
    }
    if bytes > APPEND_BYTES_MAX {
        return Err(StoreError::InvalidInput(format!("an append takes at most {APPEND_BYTES_MAX} bytes")));
    }
    Ok(())
}

async fn stream_info(client: &Client, stream: &StreamName) -> Result<Option<StreamInfo>, StoreError> {
    let row = client
        .query_opt("SELECT last_version, deleted FROM symbiose_streams WHERE name = $1", &[&stream.as_str()])
        .await
        .map_err(|error| pg_error("reading a stream's state", &error))?;
    Ok(row.map(|row| StreamInfo { last_version: from_sql_u64(row.get(0)), deleted: row.get(1) }))
}

fn recorded_event(row: &Row) -> Result<RecordedEvent, StoreError> {
    let decode = |error: tokio_postgres::Error| pg_error("decoding an event row", &error);
    let recorded_at: SystemTime = row.try_get(7).map_err(decode)?;
    let metadata: Vec<u8> = row.try_get(5).map_err(decode)?;
    let payload: Vec<u8> = row.try_get(6).map_err(decode)?;
    Ok(RecordedEvent {
        position: Position::from_u64(from_sql_u64(row.try_get(0).map_err(decode)?)),
        stream: StreamName::from_trusted(row.try_get(1).map_err(decode)?),
        version: from_sql_u64(row.try_get(2).map_err(decode)?),
        id: row.try_get::<_, Uuid>(3).map_err(decode)?,
        event_type: row.try_get(4).map_err(decode)?,
        metadata: Bytes::from(metadata),
        payload: Bytes::from(payload),
        timestamp_ms: recorded_at.duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64),
    })
}

/// Positions and versions are `bigint` columns: far below `i64::MAX` in any log.
pub(crate) fn to_sql_u64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn from_sql_u64(value: i64) -> u64 {
    debug_assert!(value >= 0, "positions and versions are never negative");
    value.max(0) as u64
}

pub(crate) fn pg_error(context: &str, error: &tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) => StoreError::Io(format!("postgresql: {context}: {} ({})", db.message(), db.code().code())),
        None => match std::error::Error::source(error) {
            Some(cause) => StoreError::Io(format!("postgresql: {context}: {error}: {cause}")),
            None => StoreError::Io(format!("postgresql: {context}: {error}")),
        },
    }
}

/// A connection whose protocol half runs in a task of its own until the client is dropped.
pub(crate) async fn connect(config: &tokio_postgres::Config) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(|error| pg_error("connecting", &error))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "postgresql connection ended");
        }
    });
    Ok(client)
}

pub(crate) async fn read_head(client: &Client) -> Result<u64, StoreError> {
    let row = client
        .query_one("SELECT next_position FROM symbiose_log WHERE id", &[])
        .await
        .map_err(|error| pg_error("reading the head", &error))?;
    Ok(from_sql_u64(row.get(0)))
}

/// Moves the cached head forward, never back.
pub(crate) fn advance(head: &watch::Sender<Head>, position: u64) {
    head.send_if_modified(|head| {
        let moved = position > head.position;
        if moved {
            head.position = position;
        }
        moved
    });
}

/// Keeps the cached head up with other writers of the database: their commits' notifications,
/// and a poll every `poll` in case one is lost. When the listening connection ends (the server
/// restarted, the backend was killed), it connects and listens again at once, then after a
/// backoff doubling from [`LISTEN_RETRY_FIRST`] to [`LISTEN_RETRY_MAX`] while the server does
/// not answer; the head is read again on each new connection, so commits made meanwhile show.
async fn follow_head(
    config: tokio_postgres::Config,
    head: Arc<watch::Sender<Head>>,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
    listening: watch::Sender<bool>,
) {
    let mut backoff = Duration::ZERO;
    loop {
        let mut listened = false;
        match listen(&config, &head, poll, &mut stop, &listening, &mut listened).await {
            Ok(()) => return,
            Err(error) => tracing::warn!(%error, "following the postgresql head, reconnecting"),
        }
        if *stop.borrow() {
            return;
        }
        // A connection that listened ended: try again at once. One that could not: back off.
        backoff =
            if listened { Duration::ZERO } else { (backoff * 2).clamp(LISTEN_RETRY_FIRST, LISTEN_RETRY_MAX) };
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One connection's worth of [`follow_head`]: returns `Ok` when asked to stop, an error as
/// soon as the connection ends. `listened` is set once it listens.
async fn listen(
    config: &tokio_postgres::Config,
    head: &Arc<watch::Sender<Head>>,
    poll: Duration,
    stop: &mut watch::Receiver<bool>,
    listening: &watch::Sender<bool>,
    listened: &mut bool,
) -> Result<(), StoreError> {
    let (client, mut connection) =
        config.connect(NoTls).await.map_err(|error| pg_error("connecting to listen", &error))?;
    let notified = head.clone();
    // Dropped when the connection ends, however it ends: the loop below stops waiting then.
    let (ended, mut connection_ended) = oneshot::channel::<()>();
    let driver = tokio::spawn(async move {
        let _ended = ended;
        while let Some(message) = std::future::poll_fn(|context| connection.poll_message(context)).await {
            match message {
                Ok(AsyncMessage::Notification(notification)) => {
                    if let Ok(position) = notification.payload().parse::<u64>() {
                        advance(&notified, position);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, "postgresql listening connection ended");
                    break;
                }
            }
        }
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
            .await
            .map_err(|error| pg_error("listening", &error))?;
        *listened = true;
        listening.send_replace(true);
        loop {
            advance(head, read_head(&client).await?);
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = &mut connection_ended => {
                    return Err(StoreError::Io("postgresql: the listening connection ended".to_owned()));
                }
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return Ok(());
                    }
                }
            }
        }
    }
    .await;
    drop(client);
    let _ = driver.await;
    result
}

/// A few pipelined connections for reads, taken in turn, each reconnected when found broken.
#[derive(Debug)]
struct Pool {
    config: tokio_postgres::Config,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Client>>>>,
    next: AtomicUsize,
}

impl Pool {
    fn new(config: tokio_postgres::Config, size: usize, first: Client) -> Pool {
        let mut slots: Vec<_> = (0..size).map(|_| tokio::sync::Mutex::new(None)).collect();
        slots[0] = tokio::sync::Mutex::new(Some(Arc::new(first)));
        Pool { config, slots, next: AtomicUsize::new(0) }
    }

    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let mut guard = slot.lock().await;
        if let Some(client) = guard.as_ref().filter(|client| !client.is_closed()) {
            return Ok(client.clone());
        }
        let client = Arc::new(connect(&self.config).await?);
        *guard = Some(client.clone());
        Ok(client)
    }

    /// Drops the idle connections; those lent out close when their reads end.
    fn close(&self) {
        for slot in &self.slots {
            if let Ok(mut guard) = slot.try_lock() {
                guard.take();
            }
        }
    }
}

pub(crate) fn notify_channel() -> &'static str {
    NOTIFY_CHANNEL
}
