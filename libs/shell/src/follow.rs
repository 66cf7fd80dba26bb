//! A read model that follows a store's log from its first event, with the position it reflects
//! and a bounded wait for a caller's own writes.

use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use symbiose_eventstore::{EventStore, Position, RecordedEvent, StoreError};
use symbiose_kit::ApiError;
use symbiose_kit::backoff::Backoff;
use tokio::sync::watch;

/// Longest wait for a view to reach a position a caller names.
pub const VIEW_WAIT_MS_MAX: u64 = 5_000;
/// The pauses after failures of a view's subscription: the kit's one policy.
const FOLLOW_BACKOFF: Backoff = Backoff::SUBSCRIPTION;
/// Failures in a row of a view's subscription after which the view stops following (and its
/// waits answer UNAVAILABLE, saying how far behind it is).
pub const FOLLOW_FAILURES_MAX: u32 = FOLLOW_BACKOFF.attempts_max();

/// A read model folded from the log, event by event.
pub trait View: Send + Sync + 'static {
    fn apply(&mut self, recorded: &RecordedEvent);
}

/// A view kept up to date by a task that follows the log.
pub struct Followed<V> {
    view: Arc<RwLock<V>>,
    /// The position of the last event applied, if any.
    applied: watch::Receiver<Option<Position>>,
    name: &'static str,
}

impl<V> std::fmt::Debug for Followed<V> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Followed")
            .field("name", &self.name)
            .field("applied", &*self.applied.borrow())
            .finish_non_exhaustive()
    }
}

impl<V: View> Followed<V> {
    /// Starts following `store` from its first event into a new view named `name` (in logs
    /// and answers), for as long as the store is open.
    pub fn start<S: EventStore>(store: S, name: &'static str) -> Followed<V>
    where
        V: Default,
    {
        Followed::start_with(store, name, V::default())
    }

    /// Starts following `store` from its first event into `view`.
    pub fn start_with<S: EventStore>(store: S, name: &'static str, view: V) -> Followed<V> {
        let view = Arc::new(RwLock::new(view));
        let (sender, applied) = watch::channel(None);
        tokio::spawn(follow(store, view.clone(), sender, name));
        Followed { view, applied, name }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, V> {
        self.view.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The position the view reflects: every event before it.
    pub fn position(&self) -> Position {
        self.applied.borrow().map_or(Position::START, Position::after)
    }

    /// The position of the last event the view applied ([`Position::START`] before the
    /// first): a position every caller waiting for it finds reached.
    pub fn last_position(&self) -> Position {
        self.applied.borrow().unwrap_or(Position::START)
    }

    /// Whether the view still follows the log: false once the store closed (or the view gave
    /// up after [`FOLLOW_FAILURES_MAX`] failures).
    pub fn is_following(&self) -> bool {
        self.applied.has_changed().is_ok()
    }

    /// Waits, at most [`VIEW_WAIT_MS_MAX`], for the view to reflect the event at `position`
    /// ([`Position::START`], 0 on the wire: no wait); else UNAVAILABLE saying how far behind it is.
    pub async fn wait_for(&self, position: Position) -> Result<(), ApiError> {
        if position == Position::START {
            return Ok(());
        }
        self.wait_for_within(position, VIEW_WAIT_MS_MAX).await
    }

    /// Waits, at most [`VIEW_WAIT_MS_MAX`], for the view to reflect every event before `head`
    /// (a store's [`EventStore::head`]: everything written so far); else UNAVAILABLE.
    pub async fn wait_for_head(&self, head: Position) -> Result<(), ApiError> {
        self.wait_for_head_within(head, VIEW_WAIT_MS_MAX).await
    }

    /// Waits at most `wait_ms` for the view to reflect every event before `head`.
    pub async fn wait_for_head_within(&self, head: Position, wait_ms: u64) -> Result<(), ApiError> {
        let mut receiver = self.applied.clone();
        let reached = tokio::time::timeout(
            Duration::from_millis(wait_ms),
            receiver.wait_for(|applied| applied.map_or(Position::START, Position::after) >= head),
        )
        .await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::Unavailable(format!(
                "the {} reflects positions before {}, behind the log's head {head}",
                self.name,
                self.position()
            ))),
        }
    }

    /// Waits at most `wait_ms` for the view to reflect the event at `position`; else
    /// UNAVAILABLE saying how far behind it is.
    pub async fn wait_for_within(&self, position: Position, wait_ms: u64) -> Result<(), ApiError> {
        let mut receiver = self.applied.clone();
        let reached = tokio::time::timeout(
            Duration::from_millis(wait_ms),
            receiver.wait_for(|applied| applied.is_some_and(|applied| applied >= position)),
        )
        .await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::Unavailable(format!(
                "min_position: the {} reflects positions before {}, behind {position}",
                self.name,
                self.position()
            ))),
        }
    }
}

async fn follow<S: EventStore, V: View>(
    store: S,
    view: Arc<RwLock<V>>,
    applied: watch::Sender<Option<Position>>,
    name: &str,
) {
    let mut next = Position::START;
    let mut failures = 0_u32;
    let mut subscription = store.subscribe_all(next);
    loop {
        let recorded = match subscription.next().await {
            Ok(recorded) => recorded,
            Err(StoreError::Closed) => return,
            Err(error) => {
                failures += 1;
                if failures >= FOLLOW_FAILURES_MAX {
                    tracing::error!(%error, view = name, failures, "a view stopped following the log");
                    return;
                }
                tracing::warn!(%error, view = name, failures, "a view's subscription failed: subscribing again");
                tokio::time::sleep(FOLLOW_BACKOFF.delay(u64::from(failures))).await;
                subscription = store.subscribe_all(next);
                continue;
            }
        };
        failures = 0;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            view.write().unwrap_or_else(std::sync::PoisonError::into_inner).apply(&recorded);
        }));
        if outcome.is_err() {
            // A fold that panics must not stop the view: the event is skipped, loudly.
            tracing::error!(view = name, position = %recorded.position, stream = %recorded.stream, "a view could not apply an event: skipped");
        }
        next = recorded.position.after();
        applied.send_replace(Some(recorded.position));
    }
}
