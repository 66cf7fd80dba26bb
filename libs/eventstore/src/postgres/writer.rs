//! The writer task: group commit on PostgreSQL.
//!
//! Appends and deletes wait in a bounded queue. The writer takes the first, then every one
//! already queued behind it (up to the embedded store's group limits, or fewer appends where
//! `PostgresOptions::group_appends_max` says so), and writes them in one
//! transaction: lock the log row, load the state of every stream and event id the group
//! names, decide each operation in memory in queue order (each checked on its own against its
//! expected version, as if the earlier ones of the group were already written; a refused one
//! changes nothing), then write all the accepted events with one `INSERT`, the streams with
//! one upsert, move the log row, notify, and commit. Only after the commit does it move the
//! cached head and answer. If the transaction fails, every operation of the group gets the
//! error: none of them was written, or (a failed `COMMIT`) the outcome is unknown and the
//! caller repeats the append, which its event ids make safe.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{Client, Statement};
use uuid::Uuid;

use super::{Head, advance, connect, from_sql_u64, notify_channel, pg_error, to_sql_u64};
use crate::embedded::{GROUP_APPENDS_MAX, GROUP_BYTES_MAX};
use crate::model::{AppendResult, EventData, ExpectedVersion, Position, StoreError, StreamName};

pub(super) type Reply = oneshot::Sender<Result<AppendResult, StoreError>>;

#[derive(Debug)]
pub(super) enum Operation {
    Append { stream: StreamName, expected: ExpectedVersion, events: Vec<EventData> },
    Delete { stream: StreamName, expected: ExpectedVersion },
    Close,
}

#[derive(Debug)]
pub(super) struct Request {
    pub(super) operation: Operation,
    pub(super) reply: Reply,
}

impl Request {
    fn size(&self) -> usize {
        match &self.operation {
            Operation::Append { events, .. } => events.iter().map(EventData::encoded_len).sum(),
            Operation::Delete { .. } | Operation::Close => 64,
        }
    }
}

type Hold = Arc<dyn Fn() -> Duration + Send + Sync>;

pub(super) struct Writer {
    config: tokio_postgres::Config,
    /// `None` after a failure: the next group reconnects.
    client: Option<Client>,
    /// The statements of a group, prepared on `client`; `None` until the first group.
    statements: Option<Statements>,
    head: Arc<watch::Sender<Head>>,
    /// Operations in one transaction, at most: from 1 to [`GROUP_APPENDS_MAX`].
    group_appends_max: usize,
    hold_before_commit: Option<Hold>,
}

/// A stream as the group sees it: what the database holds, changed by the group so far.
#[derive(Debug, Clone, Copy, Default)]
struct StreamState {
    last_version: Option<u64>,
    deleted: bool,
    changed: bool,
}

/// An event already in the log, or written earlier in the group.
#[derive(Debug, Clone)]
struct KnownEvent {
    position: u64,
    batch_position: u64,
}

/// An original batch, for repeats: its stream, first version and ids.
#[derive(Debug, Clone)]
struct Batch {
    stream: String,
    first_version: u64,
    ids: Vec<Uuid>,
}

/// The rows a group inserts, column by column.
#[derive(Debug, Default)]
struct Rows<'a> {
    positions: Vec<i64>,
    batch_positions: Vec<i64>,
    streams: Vec<&'a str>,
    versions: Vec<i64>,
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    metadata: Vec<&'a [u8]>,
    payloads: Vec<&'a [u8]>,
}

impl Writer {
    pub(super) fn new(
        config: tokio_postgres::Config,
        client: Client,
        head: Arc<watch::Sender<Head>>,
        group_appends_max: usize,
        hold_before_commit: Option<Hold>,
    ) -> Writer {
        assert!(
            (1..=GROUP_APPENDS_MAX).contains(&group_appends_max),
            "a group holds 1 to GROUP_APPENDS_MAX operations"
        );
        Writer { config, client: Some(client), statements: None, head, group_appends_max, hold_before_commit }
    }

    pub(super) async fn run(mut self, mut receiver: mpsc::Receiver<Request>) {
        let mut group = Vec::with_capacity(64);
        let mut closing = false;
        while let Some(first) = receiver.recv().await {
            if matches!(first.operation, Operation::Close) {
                break;
            }
            let mut bytes = first.size();
            group.push(first);
            while group.len() < self.group_appends_max && bytes < GROUP_BYTES_MAX {
                match receiver.try_recv() {
                    Ok(request) if matches!(request.operation, Operation::Close) => {
                        closing = true;
                        break;
                    }
                    Ok(request) => {
                        bytes += request.size();
                        group.push(request);
                    }
                    Err(_) => break,
                }
            }
            let results = match self.commit(&group).await {
                Ok(results) => results,
                Err(error) => {
                    tracing::warn!(%error, appends = group.len(), "postgresql group commit failed");
                    // The connection may be in any state: start again on a new one.
                    self.client = None;
                    self.statements = None;
                    group.iter().map(|_| Err(error.clone())).collect()
                }
            };
            for (request, result) in group.drain(..).zip(results) {
                let _ = request.reply.send(result);
            }
            if closing {
                break;
            }
        }
        receiver.close();
        while let Ok(request) = receiver.try_recv() {
            let _ = request.reply.send(Err(StoreError::Closed));
        }
        self.head.send_modify(|head| head.closed = true);
        tracing::debug!("postgresql event store writer stopped");
    }

    /// Writes a group in one transaction and returns each operation's answer.
    async fn commit(
        &mut self,
        group: &[Request],
    ) -> Result<Vec<Result<AppendResult, StoreError>>, StoreError> {
        let error = |context: &'static str| move |error: tokio_postgres::Error| pg_error(context, &error);
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(connect(&self.config).await?);
            self.statements = None;
        }
        let client = self.client.as_mut().expect("connected above");
        if self.statements.is_none() {
            self.statements = Some(Statements::prepare(client).await.map_err(error("preparing the writes"))?);
        }
        let statements = self.statements.as_ref().expect("prepared above");
        let transaction = client.transaction().await.map_err(error("starting a write"))?;

        // Everything the group's decisions depend on, read under the lock that orders every
        // writer of the database (held until commit). The three queries are sent together:
        // the server runs them in the order sent, so the reads run once the lock is held.
        let mut names: Vec<&str> = Vec::new();
        let mut ids: Vec<Uuid> = Vec::new();
        for request in group {
            match &request.operation {
                Operation::Append { stream, events, .. } => {
                    names.push(stream.as_str());
                    ids.extend(events.iter().map(|event| event.id));
                }
                Operation::Delete { stream, .. } => names.push(stream.as_str()),
                Operation::Close => {}
            }
        }
        names.sort_unstable();
        names.dedup();
        let (lock_row, stream_rows, id_rows) = tokio::try_join!(
            async { transaction.query_one(&statements.lock, &[]).await.map_err(error("locking the log")) },
            async {
                transaction.query(&statements.streams, &[&names]).await.map_err(error("reading the streams"))
            },
            async {
                transaction.query(&statements.ids, &[&ids]).await.map_err(error("looking up event ids"))
            },
        )?;
        let first_position = from_sql_u64(lock_row.get(0));
        let mut streams: HashMap<String, StreamState> = HashMap::with_capacity(names.len());
        for row in stream_rows {
            let state = StreamState {
                last_version: Some(from_sql_u64(row.get(1))),
                deleted: row.get(2),
                changed: false,
            };
            streams.insert(row.get(0), state);
        }
        let mut known: HashMap<Uuid, KnownEvent> = HashMap::new();
        for row in id_rows {
            known.insert(
                row.get(0),
                KnownEvent { position: from_sql_u64(row.get(1)), batch_position: from_sql_u64(row.get(2)) },
            );
        }
        let mut batches: HashMap<u64, Batch> = HashMap::new();
        // The original batch of each append whose first id is a known batch's first: only as
        // many of its events as the append has, and one more (a longer original is no repeat),
        // a short range of the primary key since a batch's positions are contiguous.
        let mut spans: HashMap<u64, u64> = HashMap::new();
        for request in group {
            if let Operation::Append { events, .. } = &request.operation
                && let Some(first) = known.get(&events[0].id)
                && first.position == first.batch_position
            {
                let span = spans.entry(first.batch_position).or_default();
                *span = (*span).max(events.len() as u64 + 1);
            }
        }
        if !spans.is_empty() {
            let repeated: Vec<i64> = spans.keys().map(|position| to_sql_u64(*position)).collect();
            let lengths: Vec<i64> = spans.values().map(|span| to_sql_u64(*span)).collect();
            for row in transaction
                .query(
                    "SELECT event.batch_position, event.stream, event.version, event.event_id \
                     FROM UNNEST($1::bigint[], $2::bigint[]) AS batch(position, span) \
                     JOIN symbiose_events AS event \
                     ON event.position >= batch.position AND event.position < batch.position + batch.span \
                     AND event.batch_position = batch.position ORDER BY event.position",
                    &[&repeated, &lengths],
                )
                .await
                .map_err(error("reading repeated batches"))?
            {
                let batch = batches.entry(from_sql_u64(row.get(0))).or_insert_with(|| Batch {
                    stream: row.get(1),
                    first_version: from_sql_u64(row.get(2)),
                    ids: Vec::new(),
                });
                batch.ids.push(row.get(3));
            }
        }

        // Each operation decided in order, as if the earlier ones were written.
        let mut next_position = first_position;
        let mut rows = Rows::default();
        let mut results = Vec::with_capacity(group.len());
        for request in group {
            let result = match &request.operation {
                Operation::Append { stream, expected, events } => {
                    let context = Decide {
                        streams: &mut streams,
                        known: &mut known,
                        batches: &mut batches,
                        next_position: &mut next_position,
                    };
                    context.append(stream, *expected, events, &mut rows)
                }
                Operation::Delete { stream, expected } => {
                    delete(&mut streams, stream, *expected, next_position)
                }
                Operation::Close => Err(StoreError::Closed),
            };
            results.push(result);
        }

        // The writes, sent together: none depends on another's answer.
        let changed: Vec<(&String, &StreamState)> =
            streams.iter().filter(|(_, state)| state.changed).collect();
        let names: Vec<&str> = changed.iter().map(|(name, _)| name.as_str()).collect();
        let versions: Vec<i64> = changed
            .iter()
            .map(|(_, state)| to_sql_u64(state.last_version.expect("a changed stream has an event")))
            .collect();
        let deleted: Vec<bool> = changed.iter().map(|(_, state)| state.deleted).collect();
        let recorded_at = SystemTime::now();
        let (next_position_sql, head_text) = (to_sql_u64(next_position), next_position.to_string());
        let appended = next_position > first_position;
        let insert_events = async {
            if appended {
                let parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
                    &rows.positions,
                    &rows.batch_positions,
                    &rows.streams,
                    &rows.versions,
                    &rows.ids,
                    &rows.types,
                    &rows.metadata,
                    &rows.payloads,
                    &recorded_at,
                ];
                transaction
                    .execute(&statements.insert_events, &parameters)
                    .await
                    .map_err(error("inserting events"))?;
            }
            Ok::<(), StoreError>(())
        };
        let upsert_streams = async {
            if !names.is_empty() {
                transaction
                    .execute(&statements.upsert_streams, &[&names, &versions, &deleted])
                    .await
                    .map_err(error("updating the streams"))?;
            }
            Ok::<(), StoreError>(())
        };
        let advance_log = async {
            if appended {
                transaction
                    .execute(&statements.advance_log, &[&next_position_sql])
                    .await
                    .map_err(error("moving the log's next position"))?;
            }
            Ok::<(), StoreError>(())
        };
        let notify = async {
            if appended {
                // Delivered to listeners at commit, and only if it commits.
                transaction
                    .execute(&statements.notify, &[&notify_channel(), &head_text])
                    .await
                    .map_err(error("notifying"))?;
            }
            Ok::<(), StoreError>(())
        };
        tokio::try_join!(insert_events, upsert_streams, advance_log, notify)?;
        if let Some(hold) = &self.hold_before_commit {
            tokio::time::sleep(hold()).await;
        }
        transaction.commit().await.map_err(|error| {
            StoreError::Io(format!(
                "postgresql: committing appends (their outcome is unknown: repeat them with the same \
                 event ids): {}",
                pg_error("commit", &error)
            ))
        })?;
        advance(&self.head, next_position);
        Ok(results)
    }
}

/// The statements of a group, prepared once per connection: a group sends its reads together,
/// then its writes together, so it waits for four round trips (`BEGIN`, reads, writes,
/// `COMMIT`) whatever its size.
struct Statements {
    lock: Statement,
    streams: Statement,
    ids: Statement,
    insert_events: Statement,
    upsert_streams: Statement,
    advance_log: Statement,
    notify: Statement,
}

impl Statements {
    async fn prepare(client: &Client) -> Result<Statements, tokio_postgres::Error> {
        let (lock, streams, ids, insert_events, upsert_streams, advance_log, notify) = tokio::try_join!(
            client.prepare("SELECT next_position FROM symbiose_log WHERE id FOR UPDATE"),
            client.prepare("SELECT name, last_version, deleted FROM symbiose_streams WHERE name = ANY($1)"),
            client.prepare(
                "SELECT event_id, position, batch_position FROM symbiose_events WHERE event_id = ANY($1)"
            ),
            client.prepare(
                "INSERT INTO symbiose_events (position, batch_position, stream, version, event_id, \
                 event_type, metadata, payload, recorded_at) \
                 SELECT position, batch_position, stream, version, event_id, event_type, metadata, \
                 payload, $9 FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], \
                 $5::uuid[], $6::text[], $7::bytea[], $8::bytea[]) \
                 AS event(position, batch_position, stream, version, event_id, event_type, \
                 metadata, payload)"
            ),
            client.prepare(
                "INSERT INTO symbiose_streams (name, last_version, deleted) \
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::boolean[]) \
                 ON CONFLICT (name) DO UPDATE \
                 SET last_version = excluded.last_version, deleted = excluded.deleted"
            ),
            client.prepare("UPDATE symbiose_log SET next_position = $1 WHERE id"),
            client.prepare("SELECT pg_notify($1, $2)"),
        )?;
        Ok(Statements { lock, streams, ids, insert_events, upsert_streams, advance_log, notify })
    }
}

/// The group's view while deciding its appends.
struct Decide<'a> {
    streams: &'a mut HashMap<String, StreamState>,
    known: &'a mut HashMap<Uuid, KnownEvent>,
    batches: &'a mut HashMap<u64, Batch>,
    next_position: &'a mut u64,
}

impl Decide<'_> {
    fn append<'e>(
        self,
        stream: &'e StreamName,
        expected: ExpectedVersion,
        events: &'e [EventData],
        rows: &mut Rows<'e>,
    ) -> Result<AppendResult, StoreError> {
        let first_id = events[0].id;
        if let Some(original) = self.known.get(&first_id) {
            // A repeat answers the original result; anything else with a known id is refused.
            let batch = (original.position == original.batch_position)
                .then(|| self.batches.get(&original.batch_position))
                .flatten();
            if let Some(batch) = batch {
                let same_ids = batch.ids.len() == events.len()
                    && batch.ids.iter().zip(events).all(|(id, event)| *id == event.id);
                let original_expected = if batch.first_version == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(batch.first_version - 1)
                };
                if batch.stream == stream.as_str()
                    && same_ids
                    && (expected == ExpectedVersion::Any || expected == original_expected)
                {
                    let count = batch.ids.len() as u64;
                    return Ok(AppendResult {
                        next_expected_version: batch.first_version + count - 1,
                        first_position: Position::from_u64(original.batch_position),
                        last_position: Position::from_u64(original.batch_position + count - 1),
                    });
                }
            }
            return Err(StoreError::DuplicateEvent { stream: stream.clone(), id: first_id });
        }
        if let Some(event) = events.iter().find(|event| self.known.contains_key(&event.id)) {
            return Err(StoreError::DuplicateEvent { stream: stream.clone(), id: event.id });
        }

        let state = self.streams.entry(stream.as_str().to_owned()).or_default();
        if state.deleted {
            return Err(StoreError::StreamDeleted(stream.clone()));
        }
        check_expected(stream, expected, state.last_version)?;
        let first_version = state.last_version.map_or(0, |version| version + 1);
        let first_position = *self.next_position;
        let count = events.len() as u64;
        for (offset, event) in events.iter().enumerate() {
            let position = first_position + offset as u64;
            rows.positions.push(to_sql_u64(position));
            rows.batch_positions.push(to_sql_u64(first_position));
            rows.streams.push(stream.as_str());
            rows.versions.push(to_sql_u64(first_version + offset as u64));
            rows.ids.push(event.id);
            rows.types.push(&event.event_type);
            rows.metadata.push(&event.metadata);
            rows.payloads.push(&event.payload);
            self.known.insert(event.id, KnownEvent { position, batch_position: first_position });
        }
        self.batches.insert(
            first_position,
            Batch {
                stream: stream.as_str().to_owned(),
                first_version,
                ids: events.iter().map(|event| event.id).collect(),
            },
        );
        state.last_version = Some(first_version + count - 1);
        state.changed = true;
        *self.next_position += count;
        Ok(AppendResult {
            next_expected_version: first_version + count - 1,
            first_position: Position::from_u64(first_position),
            last_position: Position::from_u64(first_position + count - 1),
        })
    }
}

fn delete(
    streams: &mut HashMap<String, StreamState>,
    stream: &StreamName,
    expected: ExpectedVersion,
    next_position: u64,
) -> Result<AppendResult, StoreError> {
    let state = match streams.get_mut(stream.as_str()) {
        Some(state) if state.last_version.is_some() => state,
        _ => return Err(StoreError::StreamNotFound(stream.clone())),
    };
    if state.deleted {
        return Err(StoreError::StreamDeleted(stream.clone()));
    }
    check_expected(stream, expected, state.last_version)?;
    state.deleted = true;
    state.changed = true;
    let last_version = state.last_version.expect("checked above");
    let position = next_position.saturating_sub(1);
    Ok(AppendResult {
        next_expected_version: last_version,
        first_position: Position::from_u64(position),
        last_position: Position::from_u64(position),
    })
}

fn check_expected(
    stream: &StreamName,
    expected: ExpectedVersion,
    current: Option<u64>,
) -> Result<(), StoreError> {
    let holds = match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => current.is_none(),
        ExpectedVersion::Exact(version) => current == Some(version),
    };
    if holds {
        Ok(())
    } else {
        Err(StoreError::WrongExpectedVersion { stream: stream.clone(), expected, actual: current })
    }
}
