//! The catalog that follows the log: the projection behind a lock, fed by a consumer over a
//! `Feed` (one process: the local store) or by a [`Replay`] of the listings' stream on NATS (a
//! stateless replica), with the position it reflects published for read-your-writes waits.
//! Either way it is rebuilt from the first event whenever the operator asks; at start, the
//! local one goes on from its snapshot where the store keeps one.

use std::pin::pin;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use moka::sync::Cache;
use symbiose_eventstore::{EventStore, Position, READ_EVENTS_MAX, RecordedEvent, Snapshot, StoreError};
use symbiose_feed::{
    ConsumerMetrics, ConsumerOptions, Feed, FeedError, Handler, HandlerError, Replay, run_consumer,
};
use symbiose_kit::ApiError;
use symbiose_kit::auth::Revocations;
use symbiose_kit::backoff::Backoff;
use symbiose_shell::Snapshots;
use tokio::sync::{Notify, mpsc, watch};
use uuid::Uuid;

use crate::projection::{Projection, Rebuild};
use crate::query::{Page, Query};

/// The consumer's name (its checkpoint and dead letters are named after it).
pub const CONSUMER_NAME: &str = "catalog";
/// The name the catalog's snapshot is kept under in the store: its listings, with the position
/// of the last event they reflect.
pub const SNAPSHOT_NAME: &str = "catalog.projection";
/// The stream category of listings: the only events the catalog applies.
const LISTING_CATEGORY: &str = "listing";
/// Events between two saves of the catalog's checkpoint.
const CHECKPOINT_EVENTS_MAX: u64 = 1_000_000;
/// Longest time between two saves of the catalog's checkpoint.
const CHECKPOINT_INTERVAL_MS: u64 = 60_000;
/// Most pages the cache of hot queries holds.
pub const QUERY_CACHE_PAGES_MAX: u64 = 10_000;
/// Pages (of at most `READ_EVENTS_MAX` events) on their way from one stage of a catch-up to
/// the next.
const CATCH_UP_PAGES_QUEUED_MAX: usize = 2;
/// Pages on their way back, spent: a stage frees the pages it allocated, which costs the
/// allocator much less than freeing them on the thread of the next stage.
const CATCH_UP_PAGES_SPENT_MAX: usize = 4;

/// Longest wait for the catalog to reach a position a query names.
pub const POSITION_WAIT_MS_MAX: u64 = 5_000;
/// Longest wait of a rebuild asked for by the operator, before answering that it is still
/// running (it goes on all the same).
pub const REBUILD_WAIT_MS_MAX: u64 = 120_000;
/// The NATS context whose stream carries the listings' events (and the revoked tokens).
pub const LISTINGS_CONTEXT: &str = "listings";
/// Failures in a row of a replica's replay after which it stops (and its process exits, to be
/// restarted by its supervisor).
pub const REPLAY_FAILURES_MAX: u32 = 30;

/// What the last rebuild gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Rebuilds since the process started (the first, at start, is 1).
    pub count: u64,
    pub entries: u64,
    /// Every event before it is reflected.
    pub position: u64,
    pub duration_ms: u64,
}

/// The catalog's projection and the position it reflects, shared by the consumer and the
/// queries.
#[derive(Debug)]
pub struct Catalog {
    projection: RwLock<Projection>,
    /// The next log position to apply: every event before it is reflected.
    position: watch::Sender<Position>,
    /// Pages of hot queries, by projection position and query.
    queries: Cache<String, Arc<Page>>,
    /// Woken when the operator asks for a rebuild.
    rebuild_requested: Notify,
    /// Whether a rebuild is under way (from its start to its install).
    rebuilding: std::sync::atomic::AtomicBool,
    rebuilt: watch::Sender<Rebuilt>,
}

impl Catalog {
    pub fn new() -> Arc<Catalog> {
        Arc::new(Catalog {
            projection: RwLock::new(Projection::default()),
            position: watch::channel(Position::START).0,
            queries: Cache::new(QUERY_CACHE_PAGES_MAX),
            rebuild_requested: Notify::new(),
            rebuilding: std::sync::atomic::AtomicBool::new(true),
            rebuilt: watch::channel(Rebuilt::default()).0,
        })
    }

    /// What the last rebuild gave.
    pub fn rebuilt(&self) -> Rebuilt {
        *self.rebuilt.borrow()
    }

    /// Waits until the catalog has been rebuilt at least once (at start), or forever if it
    /// never is: for a replica that serves only once it holds the history.
    pub async fn wait_for_first_rebuild(&self) {
        let mut receiver = self.rebuilt.subscribe();
        let _ = receiver.wait_for(|rebuilt| rebuilt.count > 0).await;
    }

    /// Asks the follower to rebuild the catalog from the first event, and waits (at most
    /// [`REBUILD_WAIT_MS_MAX`]) for a rebuild that started after the asking to finish.
    /// Queries go on against the previous state meanwhile.
    pub async fn rebuild(&self) -> Result<Rebuilt, ApiError> {
        let mut receiver = self.rebuilt.subscribe();
        // Read together, before asking: a rebuild under way counts once, the one asked for next.
        let running = self.rebuilding();
        let asked_after = receiver.borrow_and_update().count;
        self.rebuild_requested.notify_one();
        let done = tokio::time::timeout(
            Duration::from_millis(REBUILD_WAIT_MS_MAX),
            // A rebuild that was running when asked counts once; the one it asked for is next.
            receiver.wait_for(|rebuilt| rebuilt.count > asked_after + u64::from(running)),
        )
        .await;
        match done {
            Ok(Ok(rebuilt)) => Ok(*rebuilt),
            Ok(Err(_)) => Err(ApiError::Unavailable("the catalog is not following the log".to_owned())),
            Err(_) => Err(ApiError::Unavailable(format!(
                "the rebuild is still running after {REBUILD_WAIT_MS_MAX} ms; queries are served from the previous state until it ends"
            ))),
        }
    }

    /// Whether a rebuild is under way: one that started before a request cannot answer it.
    fn rebuilding(&self) -> bool {
        self.rebuilding.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A rebuild starts: the rebuild it installs may predate requests made from now on.
    fn rebuild_started(&self) {
        self.rebuilding.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Puts a rebuilt projection in place of the current one, at once: queries see the old
    /// state or the new, never a mix.
    fn install(&self, projection: Projection, position: Position, started: Instant, from_snapshot: bool) {
        let entries = projection.len() as u64;
        let mut current =
            self.projection.write().expect("the catalog lock is never poisoned: apply does not panic");
        let previous = std::mem::replace(&mut *current, projection);
        self.position.send_replace(position);
        // A rebuild may land on a position an older answer was cached under.
        self.queries.invalidate_all();
        drop(current);
        // Freeing a large projection takes a while: not under the lock queries wait for.
        drop(previous);
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Cleared before the count moves, so a request never waits for a rebuild that will not come.
        self.rebuilding.store(false, std::sync::atomic::Ordering::SeqCst);
        self.rebuilt.send_modify(|rebuilt| {
            *rebuilt =
                Rebuilt { count: rebuilt.count + 1, entries, position: position.as_u64(), duration_ms };
        });
        tracing::info!(%position, entries, duration_ms, from_snapshot, "catalog caught up with the log");
    }

    /// The next position to apply: every event before it is reflected.
    pub fn position(&self) -> Position {
        *self.position.borrow()
    }

    /// The position as it moves: for a caller that waits without a bound of its own choosing
    /// (a benchmark waiting for a rebuild).
    pub fn watch_position(&self) -> watch::Receiver<Position> {
        self.position.subscribe()
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Projection> {
        self.projection.read().expect("the catalog lock is never poisoned: apply does not panic")
    }

    /// Runs `query` against the projection, through the cache of hot queries; the page and
    /// the position it reflects.
    pub fn search(&self, query: &Query) -> (Arc<Page>, Position) {
        let projection = self.read();
        let position = self.position();
        // The position is part of the key: once the projection moves, older answers are
        // never served again (they age out of the bounded cache).
        let key = format!("{position}|{query:?}");
        let page = self.queries.get_with(key, || Arc::new(query.run(&projection)));
        (page, position)
    }

    /// Applies one stored event: listing events change the projection, every event moves the
    /// position.
    pub fn apply(&self, event: &RecordedEvent) -> Result<(), String> {
        if event.stream.category() == LISTING_CATEGORY {
            let (id, decoded) = decode(event)?;
            let mut projection =
                self.projection.write().expect("the catalog lock is never poisoned: apply does not panic");
            projection.apply(id, event.version, event.position.as_u64(), &decoded);
            // Moved under the lock, so a reader holding the read lock sees the position of
            // exactly the state it reads: the query cache's key depends on it.
            self.position.send_replace(event.position.after());
        } else {
            self.position.send_replace(event.position.after());
        }
        Ok(())
    }

    /// Waits, at most [`POSITION_WAIT_MS_MAX`], until the event at `min_position` is
    /// reflected (0: no wait); else UNAVAILABLE saying how far behind the catalog is.
    pub async fn wait_for(&self, min_position: Position) -> Result<(), ApiError> {
        if min_position == Position::START {
            return Ok(());
        }
        let mut receiver = self.position.subscribe();
        let reached = tokio::time::timeout(
            Duration::from_millis(POSITION_WAIT_MS_MAX),
            receiver.wait_for(|next| *next > min_position),
        )
        .await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => {
                let next = self.position();
                Err(ApiError::Unavailable(format!(
                    "min_position: the catalog reflects positions before {next}, {} behind {min_position} after {POSITION_WAIT_MS_MAX} ms",
                    next.distance_to(min_position.after())
                )))
            }
        }
    }
}

/// The consumer's handler: applies each event to the catalog.
#[derive(Debug)]
pub struct CatalogHandler(pub Arc<Catalog>);

impl Handler for CatalogHandler {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), HandlerError> {
        self.0.apply(event).map_err(HandlerError::from)
    }
}

/// Follows `store` until `shutdown` completes: at start from the catalog's snapshot where the
/// store keeps one this build wrote (else from position 0), and from position 0 again at every
/// rebuild the operator asks for; snapshots are saved as `snapshots` says. Its checkpoint is
/// removed first each time: it is only a record of how far it got.
pub async fn follow<S: EventStore>(
    catalog: Arc<Catalog>,
    store: S,
    options: ConsumerOptions,
    snapshots: Snapshots,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), FeedError> {
    // The catalog starts from its snapshot or from 0, so its checkpoint is only a record of
    // how far it got: saving it (an fsync and a rename) every thousand events would cost the
    // rebuild more than the events do.
    let options = ConsumerOptions {
        checkpoint_events_max: CHECKPOINT_EVENTS_MAX,
        checkpoint_interval: Duration::from_millis(CHECKPOINT_INTERVAL_MS),
        ..options
    };
    let snapshots = if store.keeps_snapshots() { snapshots } else { Snapshots::OFF };
    let mut shutdown = pin!(shutdown);
    let mut first = true;
    loop {
        match std::fs::remove_file(options.checkpoint_path()) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(FeedError::Internal(format!("{}: {error}", options.checkpoint_path().display())));
            }
        }
        // An operator's rebuild starts from the first event, whatever the snapshot holds.
        let started = Instant::now();
        let restored = if first && snapshots.is_on() { restore(&store).await } else { None };
        first = false;
        let (from_position, read, last) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            caught_up = catch_up(&catalog, &store, restored, started) => caught_up?,
        };
        let mut handler = Snapshotting {
            handler: CatalogHandler(catalog.clone()),
            store: store.clone(),
            policy: snapshots,
            since: read,
            last_saved: None,
            saving: None,
        };
        handler.after(last).await;
        let feed = Feed::local(store.clone(), from_position, None, &options);
        let metrics = ConsumerMetrics::default();
        let mut stopping = false;
        let stop = async {
            tokio::select! {
                () = &mut shutdown => stopping = true,
                () = catalog.rebuild_requested.notified() => {}
            }
        };
        run_consumer(feed, &mut handler, &options, &metrics, stop).await?;
        if stopping {
            return Ok(());
        }
    }
}

/// The catalog's handler, saving a snapshot once `policy.events` events were read since the
/// last (and `policy.interval` has passed), the catalog waiting while it is encoded.
struct Snapshotting<S> {
    handler: CatalogHandler,
    store: S,
    policy: Snapshots,
    since: u64,
    last_saved: Option<Instant>,
    saving: Option<tokio::task::JoinHandle<()>>,
}

impl<S: EventStore> Handler for Snapshotting<S> {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), HandlerError> {
        self.handler.handle(event).await?;
        self.since += 1;
        self.after(Some((event.position, event.id))).await;
        Ok(())
    }
}

impl<S: EventStore> Snapshotting<S> {
    /// Saves a snapshot of the catalog, which reflects every event up to `last` (its position
    /// and id; `None` before the first), if it is due.
    async fn after(&mut self, last: Option<(Position, Uuid)>) {
        let Some((position, anchor)) = last else { return };
        let due = self.policy.is_on()
            && self.since >= self.policy.events
            && self.last_saved.is_none_or(|at| at.elapsed() >= self.policy.interval)
            && self.saving.as_ref().is_none_or(tokio::task::JoinHandle::is_finished);
        if !due {
            return;
        }
        self.since = 0;
        self.last_saved = Some(Instant::now());
        let started = Instant::now();
        let catalog = self.handler.0.clone();
        let encoded = tokio::task::spawn_blocking(move || {
            let body = catalog.read().encode()?;
            symbiose_shell::snapshot::sealed(anchor, &body)
                .ok_or_else(|| String::from("no build fingerprint"))
        })
        .await;
        let body = match encoded {
            Ok(Ok(body)) => body,
            Ok(Err(error)) => {
                tracing::error!(%error, "the catalog could not be encoded: no snapshot");
                return;
            }
            Err(error) => {
                tracing::error!(%error, "the catalog's encoding failed: no snapshot");
                return;
            }
        };
        let store = self.store.clone();
        let encode_ms = started.elapsed().as_millis() as u64;
        self.saving = Some(tokio::spawn(async move {
            let bytes = body.len();
            match store.save_snapshot(SNAPSHOT_NAME, Snapshot { position, body: body.into() }).await {
                Ok(()) => {
                    tracing::info!(%position, bytes, encode_ms, "the catalog saved its snapshot")
                }
                Err(StoreError::Closed) => {}
                Err(error) => tracing::warn!(%error, "the catalog's snapshot could not be saved"),
            }
        }));
    }
}

/// The catalog's snapshot, if the store keeps one this build wrote, that checks, decodes and
/// is within the log: the rebuild it holds and the position to go on from. Anything else is
/// logged and the catalog is rebuilt from the first event.
async fn restore<S: EventStore>(store: &S) -> Option<(Rebuild, Position)> {
    match symbiose_shell::snapshot::restore(store, SNAPSHOT_NAME, Rebuild::restore).await {
        Ok(Some((position, rebuild))) => Some((rebuild, position.after())),
        Ok(None) => None,
        Err(reason) => {
            tracing::warn!(%reason, "the catalog's snapshot was set aside: rebuilding from the first event");
            None
        }
    }
}

/// Folds the log up to its head, in pages, into `from`'s rebuild from its position (a
/// snapshot's) or into an empty one from the first event, and installs the result with one
/// bulk load of the index; returns the position the consumer goes on from, how many events
/// it read, and the position and id of the last (`None` if none). `started` is when the catch-up (with the snapshot's restore) began. An event that does not decode
/// stops the catch-up there: the consumer then retries and parks it as it does any event.
///
/// Three stages run at once, joined by bounded queues of pages: this task reads the log, a
/// blocking thread decodes the listing events, another folds them; then the entries and the
/// index are built on blocking threads. Each spent page goes back to the stage that allocated
/// it, to be freed there.
async fn catch_up<S: EventStore>(
    catalog: &Catalog,
    store: &S,
    from: Option<(Rebuild, Position)>,
    started: Instant,
) -> Result<(Position, u64, Option<(Position, Uuid)>), FeedError> {
    catalog.rebuild_started();
    let head = store.head();
    let restored = from.is_some();
    let (rebuild, start) = from.unwrap_or_else(|| (Rebuild::default(), Position::START));
    let (to_decode, decoding_from) = link();
    let (to_fold, folding_from) = link();
    let decoding = tokio::task::spawn_blocking(move || decode_pages(decoding_from, to_fold, start, head));
    let folding = tokio::task::spawn_blocking(move || fold_pages(folding_from, rebuild, start));
    read_pages(store, start, head, to_decode).await?;
    decoding.await.map_err(|error| FeedError::Internal(format!("decoding the log: {error}")))?;
    let (rebuild, next, read, last) =
        folding.await.map_err(|error| FeedError::Internal(format!("folding the log: {error}")))?;
    catalog.install(finish(rebuild).await?, next, started, restored);
    Ok((next, read, last))
}

/// The sending end of a link between two stages of a catch-up.
#[derive(Debug)]
struct Upstream<T> {
    pages: mpsc::Sender<T>,
    spent: mpsc::Receiver<T>,
}

/// The receiving end of a link between two stages of a catch-up.
#[derive(Debug)]
struct Downstream<T> {
    pages: mpsc::Receiver<T>,
    spent: mpsc::Sender<T>,
}

fn link<T>() -> (Upstream<T>, Downstream<T>) {
    let (pages, pages_received) = mpsc::channel(CATCH_UP_PAGES_QUEUED_MAX);
    let (spent, spent_received) = mpsc::channel(CATCH_UP_PAGES_SPENT_MAX);
    (Upstream { pages, spent: spent_received }, Downstream { pages: pages_received, spent })
}

impl<T> Upstream<T> {
    /// Frees the pages the next stage is done with.
    fn free_spent(&mut self) {
        while let Ok(spent) = self.spent.try_recv() {
            drop(spent);
        }
    }
}

impl<T> Downstream<T> {
    /// Hands a page back to the stage that allocated it, or frees it here if that stage has
    /// not taken back the ones before (a stage never waits for the one before it).
    fn give_back(&self, page: T) {
        let _ = self.spent.try_send(page);
    }
}

/// The listing events of a page of the log, decoded (listing id, version, position, event),
/// with the position after the last event of the page that was decoded or was not a listing
/// event.
#[derive(Debug)]
struct DecodedPage {
    events: Vec<(Uuid, u64, u64, symbiose_listings_contract::listing::Event)>,
    next: Position,
    /// Events of the log the page covered, listing events or not.
    read: u64,
    /// The position and id of the last of them.
    last: Option<(Position, Uuid)>,
}

/// Reads the log from `start` to the next stage, a page of [`READ_EVENTS_MAX`] at a time,
/// until `head` or until the next stage stops taking pages.
async fn read_pages<S: EventStore>(
    store: &S,
    start: Position,
    head: Position,
    mut next_stage: Upstream<Vec<RecordedEvent>>,
) -> Result<(), FeedError> {
    let mut next = start;
    while next < head {
        next_stage.free_spent();
        let page = store.read_all(next, READ_EVENTS_MAX).await?;
        let Some(last) = page.last() else { break };
        next = last.position.after();
        if next_stage.pages.send(page).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Decodes the listing events of the pages read (positions before `head`) to the next stage,
/// and stops after the page of the first event that does not decode, whose position is then
/// the last page's `next`.
fn decode_pages(
    mut pages: Downstream<Vec<RecordedEvent>>,
    mut next_stage: Upstream<DecodedPage>,
    start: Position,
    head: Position,
) {
    let mut next = start;
    while let Some(page) = pages.pages.blocking_recv() {
        next_stage.free_spent();
        let mut events = Vec::with_capacity(page.len());
        let mut stopped = false;
        let mut read = 0_u64;
        let mut last = None;
        for event in &page {
            if event.position >= head {
                stopped = true;
                break;
            }
            match listing_event(event) {
                Ok(Some((id, decoded))) => events.push((id, event.version, event.position.as_u64(), decoded)),
                Ok(None) => {}
                Err(_) => {
                    stopped = true;
                    break;
                }
            }
            next = event.position.after();
            read += 1;
            last = Some((event.position, event.id));
        }
        pages.give_back(page);
        if next_stage.pages.blocking_send(DecodedPage { events, next, read, last }).is_err() || stopped {
            return;
        }
    }
}

/// Folds the decoded pages into `rebuild`, which reflects the log before `start`; the rebuild,
/// the position after the last event folded, the events read, and the last one's position and id.
fn fold_pages(
    mut pages: Downstream<DecodedPage>,
    mut rebuild: Rebuild,
    start: Position,
) -> (Rebuild, Position, u64, Option<(Position, Uuid)>) {
    let mut next = start;
    let mut read = 0_u64;
    let mut last = None;
    while let Some(page) = pages.pages.blocking_recv() {
        for (id, version, position, event) in &page.events {
            rebuild.push(*id, *version, *position, event);
        }
        next = page.next;
        read += page.read;
        last = page.last.or(last);
        pages.give_back(page);
    }
    (rebuild, next, read, last)
}

/// Builds the projection of a rebuild on a blocking thread: it takes a while for a large log.
async fn finish(rebuild: Rebuild) -> Result<Projection, FeedError> {
    tokio::task::spawn_blocking(move || rebuild.finish())
        .await
        .map_err(|error| FeedError::Internal(format!("building the catalog: {error}")))
}

/// Follows the listings' stream on NATS from its first message, as a stateless replica does:
/// the history folded in bulk, then each event as it comes, revoked tokens included (so a
/// replica refuses them as the listings service does). A failed replay (NATS gone for good,
/// a consumer lost) is started over from the first message, queries meanwhile served from
/// the state already built, at most [`REPLAY_FAILURES_MAX`] times in a row. Ends when
/// `shutdown` completes.
pub async fn follow_replay(
    catalog: Arc<Catalog>,
    jetstream: async_nats::jetstream::Context,
    revocations: Revocations,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), FeedError> {
    let mut shutdown = pin!(shutdown);
    let mut failures = 0_u32;
    loop {
        let replayed = tokio::select! {
            () = &mut shutdown => return Ok(()),
            replayed = replay_once(&catalog, &jetstream, &revocations, &mut failures) => replayed,
        };
        let Err(error) = replayed else { continue };
        failures += 1;
        if failures >= REPLAY_FAILURES_MAX {
            return Err(FeedError::NatsUnavailable { attempts: failures, last_error: error.to_string() });
        }
        let pause = Backoff::SUBSCRIPTION.delay(u64::from(failures));
        tracing::warn!(%error, failures, ?pause, "the catalog's replay failed: starting it over");
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// One replay: the history, installed at once, then the live events until a rebuild is asked
/// for (`Ok`) or the replay fails. `failures` is reset once the history is in.
async fn replay_once(
    catalog: &Catalog,
    jetstream: &async_nats::jetstream::Context,
    revocations: &Revocations,
    failures: &mut u32,
) -> Result<(), FeedError> {
    catalog.rebuild_started();
    let started = Instant::now();
    let mut replay = Replay::open(jetstream.clone(), LISTINGS_CONTEXT, CONSUMER_NAME).await?;
    let head = replay.head_at_open();
    let mut rebuild = Rebuild::default();
    let mut next = Position::START;
    let mut sequence = 0;
    while sequence < head {
        let replayed = replay.next().await?;
        sequence = replayed.stream_sequence;
        let Some(event) = usable(replayed.event, sequence) else { continue };
        if let Some(token_id) = symbiose_listings_contract::revoked_token(&event) {
            revocations.revoke(token_id);
        } else if event.stream.category() == LISTING_CATEGORY {
            match decode(&event) {
                Ok((id, decoded)) => rebuild.push(id, event.version, event.position.as_u64(), &decoded),
                Err(error) => tracing::error!(position = %event.position, %error, "skipping a listing event"),
            }
        }
        next = next.max(event.position.after());
    }
    catalog.install(finish(rebuild).await?, next, started, false);
    *failures = 0;
    loop {
        let replayed = tokio::select! {
            replayed = replay.next() => replayed?,
            () = catalog.rebuild_requested.notified() => return Ok(()),
        };
        let Some(event) = usable(replayed.event, replayed.stream_sequence) else { continue };
        if event.position < catalog.position() {
            continue;
        }
        if let Some(token_id) = symbiose_listings_contract::revoked_token(&event) {
            revocations.revoke(token_id);
        }
        if let Err(error) = catalog.apply(&event) {
            tracing::error!(position = %event.position, %error, "skipping a listing event");
            catalog.position.send_replace(event.position.after());
        }
    }
}

/// The event a replayed message carries; a message that carries none is logged and skipped.
fn usable(event: Result<RecordedEvent, String>, stream_sequence: u64) -> Option<RecordedEvent> {
    event
        .inspect_err(|reason| {
            tracing::error!(stream_sequence, %reason, "skipping a message that is not a Symbiose event")
        })
        .ok()
}

/// The listing and the event a stored event of a listing stream carries, `None` for an event
/// of another stream; an error for a listing event that does not decode.
pub fn listing_event(
    event: &RecordedEvent,
) -> Result<Option<(Uuid, symbiose_listings_contract::listing::Event)>, String> {
    if event.stream.category() == LISTING_CATEGORY { decode(event).map(Some) } else { Ok(None) }
}

fn decode(event: &RecordedEvent) -> Result<(Uuid, symbiose_listings_contract::listing::Event), String> {
    let id = listing_id(event)?;
    let decoded = symbiose_listings_contract::decode_recorded_listing(event)?;
    Ok((id, decoded))
}

fn listing_id(event: &RecordedEvent) -> Result<Uuid, String> {
    let name = event.stream.as_str();
    name.strip_prefix("listing-")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| format!("{name}: not a listing stream"))
}
