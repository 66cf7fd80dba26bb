//! The catalog that follows the log: the projection behind a lock, fed by a consumer over a
//! `Feed`, with the position it reflects published for read-your-writes waits.

use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use moka::sync::Cache;
use symbiose_eventstore::{EventStore, READ_EVENTS_MAX, RecordedEvent};
use symbiose_feed::{ConsumerMetrics, ConsumerOptions, Feed, FeedError, Handler, HandlerError, run_consumer};
use symbiose_kit::ApiError;
use tokio::sync::watch;
use uuid::Uuid;

use crate::projection::{Projection, Rebuild};
use crate::query::{Page, Query};

/// The consumer's name (its checkpoint and dead letters are named after it).
pub const CONSUMER_NAME: &str = "catalog";
/// The stream category of listings: the only events the catalog applies.
const LISTING_CATEGORY: &str = "listing";
/// Events between two saves of the catalog's checkpoint.
const CHECKPOINT_EVENTS_MAX: u64 = 1_000_000;
/// Longest time between two saves of the catalog's checkpoint.
const CHECKPOINT_INTERVAL_MS: u64 = 60_000;
/// Most pages the cache of hot queries holds.
pub const QUERY_CACHE_PAGES_MAX: u64 = 10_000;
/// Longest wait for the catalog to reach a position a query names.
pub const POSITION_WAIT_MS_MAX: u64 = 5_000;

/// The catalog's projection and the position it reflects, shared by the consumer and the
/// queries.
#[derive(Debug)]
pub struct Catalog {
    projection: RwLock<Projection>,
    /// The next log position to apply: every event before it is reflected.
    position: watch::Sender<u64>,
    /// Pages of hot queries, by projection position and query.
    queries: Cache<String, Arc<Page>>,
}

impl Catalog {
    pub fn new() -> Arc<Catalog> {
        Arc::new(Catalog {
            projection: RwLock::new(Projection::default()),
            position: watch::channel(0).0,
            queries: Cache::new(QUERY_CACHE_PAGES_MAX),
        })
    }

    /// The next position to apply: every event before it is reflected.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// The position as it moves: for a caller that waits without a bound of its own choosing
    /// (a benchmark waiting for a rebuild).
    pub fn watch_position(&self) -> watch::Receiver<u64> {
        self.position.subscribe()
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Projection> {
        self.projection.read().expect("the catalog lock is never poisoned: apply does not panic")
    }

    /// Runs `query` against the projection, through the cache of hot queries; the page and
    /// the position it reflects.
    pub fn search(&self, query: &Query) -> (Arc<Page>, u64) {
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
            let id = listing_id(event)?;
            let decoded = symbiose_listings::decode_listing_event(&event.event_type, &event.payload)?;
            let mut projection =
                self.projection.write().expect("the catalog lock is never poisoned: apply does not panic");
            projection.apply(id, event.version, event.position, &decoded);
            // Moved under the lock, so a reader holding the read lock sees the position of
            // exactly the state it reads: the query cache's key depends on it.
            self.position.send_replace(event.position + 1);
        } else {
            self.position.send_replace(event.position + 1);
        }
        Ok(())
    }

    /// Waits, at most [`POSITION_WAIT_MS_MAX`], until the event at `min_position` is
    /// reflected (0: no wait); else UNAVAILABLE saying how far behind the catalog is.
    pub async fn wait_for(&self, min_position: u64) -> Result<(), ApiError> {
        if min_position == 0 {
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
                    (min_position + 1).saturating_sub(next)
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

/// Follows `store` from position 0 (the catalog is rebuilt at every start: its checkpoint
/// is removed first) until `shutdown` completes.
pub async fn follow<S: EventStore>(
    catalog: Arc<Catalog>,
    store: S,
    options: ConsumerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), FeedError> {
    match std::fs::remove_file(options.checkpoint_path()) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(FeedError::Internal(format!("{}: {error}", options.checkpoint_path().display())));
        }
    }
    // The catalog starts from 0 every time, so its checkpoint is only a record of how far it
    // got: saving it (an fsync and a rename) every thousand events would cost the rebuild
    // more than the events do.
    let options = ConsumerOptions {
        checkpoint_events_max: CHECKPOINT_EVENTS_MAX,
        checkpoint_interval: Duration::from_millis(CHECKPOINT_INTERVAL_MS),
        ..options
    };
    let from_position = catch_up(&catalog, &store).await?;
    let feed = Feed::local(store, from_position, None, &options);
    let metrics = ConsumerMetrics::default();
    let mut handler = CatalogHandler(catalog);
    run_consumer(feed, &mut handler, &options, &metrics, shutdown).await.map(|_| ())
}

/// Folds the log up to its head as the rebuild starts, in pages, and installs the result
/// with one bulk load of the index; returns the position the consumer goes on from. An event
/// that does not decode stops the catch-up there: the consumer then retries and parks it as
/// it does any event.
async fn catch_up<S: EventStore>(catalog: &Catalog, store: &S) -> Result<u64, FeedError> {
    let head = store.head();
    let mut rebuild = Rebuild::default();
    let mut next = 0;
    'pages: while next < head {
        let page = store.read_all(next, READ_EVENTS_MAX).await?;
        if page.is_empty() {
            break;
        }
        for event in &page {
            if event.position >= head {
                break 'pages;
            }
            if event.stream.category() == LISTING_CATEGORY {
                let decoded = listing_id(event).and_then(|id| {
                    symbiose_listings::decode_listing_event(&event.event_type, &event.payload)
                        .map(|decoded| (id, decoded))
                });
                match decoded {
                    Ok((id, decoded)) => rebuild.push(id, event.version, event.position, &decoded),
                    Err(_) => break 'pages,
                }
            }
            next = event.position + 1;
        }
    }
    let projection = rebuild.finish();
    let mut current =
        catalog.projection.write().expect("the catalog lock is never poisoned: apply does not panic");
    *current = projection;
    catalog.position.send_replace(next);
    drop(current);
    tracing::info!(position = next, entries = catalog.read().len(), "catalog rebuilt up to the head");
    Ok(next)
}

fn listing_id(event: &RecordedEvent) -> Result<Uuid, String> {
    let name = event.stream.as_str();
    name.strip_prefix("listing-")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| format!("{name}: not a listing stream"))
}
