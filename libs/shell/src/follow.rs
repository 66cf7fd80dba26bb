//! A read model that follows a store's log from its first event (or from its snapshot), with
//! the position it reflects and a bounded wait for a caller's own writes.

use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use symbiose_eventstore::{EventStore, Position, RecordedEvent, Snapshot as Stored, StoreError};
use symbiose_kit::ApiError;
use symbiose_kit::backoff::Backoff;
use tokio::sync::watch;

use crate::snapshot::{self, Snapshot, Snapshots};

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

/// Time after which a view that never catches up (the log grows as fast as it follows it)
/// saves its snapshot all the same: a snapshot taken behind the head is as true.
const SNAPSHOT_LAGGING_MS: u64 = 600_000;

/// A view kept up to date by a task that follows the log.
pub struct Followed<V> {
    view: Arc<RwLock<V>>,
    /// The position of the last event applied, if any.
    applied: watch::Receiver<Option<Position>>,
    /// Where the view started: the position of the snapshot it restored, or `None` for the
    /// log's first event; set once the start is done.
    started: Arc<OnceLock<Option<Position>>>,
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
        Followed::spawn(store, name, view, None)
    }

    /// Starts following `store` into `view`, from the view's snapshot where the store keeps
    /// one this build wrote (else from the first event), saving snapshots as `snapshots` says.
    pub fn start_snapshotted<S: EventStore>(
        store: S,
        name: &'static str,
        view: V,
        snapshots: Snapshots,
    ) -> Followed<V>
    where
        V: Snapshot,
    {
        let kept = snapshots.is_on() && store.keeps_snapshots() && snapshot::build_fingerprint().is_some();
        let snapshotting = kept.then_some(Snapshotting {
            name: V::NAME,
            policy: snapshots,
            encode: <V as Snapshot>::encode,
            restored: <V as Snapshot>::restored,
        });
        Followed::spawn(store, name, view, snapshotting)
    }

    fn spawn<S: EventStore>(
        store: S,
        name: &'static str,
        view: V,
        snapshotting: Option<Snapshotting<V>>,
    ) -> Followed<V> {
        let view = Arc::new(RwLock::new(view));
        let (sender, applied) = watch::channel(None);
        let started = Arc::new(OnceLock::new());
        tokio::spawn(follow(store, view.clone(), sender, name, snapshotting, started.clone()));
        Followed { view, applied, started, name }
    }

    /// Where the view started, once it has: `Some` position of the snapshot it restored, or
    /// `None` (the log's first event); `None` too while the start goes on.
    pub fn started_from(&self) -> Option<Option<Position>> {
        self.started.get().copied()
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

/// How a view is snapshotted: the name it is kept under, when, and the view's own encoding.
struct Snapshotting<V> {
    name: &'static str,
    policy: Snapshots,
    encode: fn(&V) -> Result<Vec<u8>, String>,
    restored: fn(&V, &[u8]) -> Result<V, String>,
}

async fn follow<S: EventStore, V: View>(
    store: S,
    view: Arc<RwLock<V>>,
    applied: watch::Sender<Option<Position>>,
    name: &'static str,
    snapshotting: Option<Snapshotting<V>>,
    started: Arc<OnceLock<Option<Position>>>,
) {
    let began = Instant::now();
    let mut next = Position::START;
    let mut restored = None;
    if let Some(snapshotting) = &snapshotting
        && let Some(position) = restore(&store, &view, snapshotting, name).await
    {
        next = position.after();
        restored = Some(position);
        applied.send_replace(Some(position));
    }
    let _ = started.set(restored);
    // The log as it stood at start: once the view reaches it, it says how long that took.
    let start_head = store.head();
    let mut caught_up = false;
    let mut replayed = 0_u64;
    let mut since_snapshot = 0_u64;
    // When the last snapshot was saved (`None`: none yet), and since when the view is due one.
    let mut last_saved: Option<Instant> = None;
    let mut due_since = Instant::now();
    let mut saving: Option<tokio::task::JoinHandle<()>> = None;
    let mut failures = 0_u32;
    let mut subscription = store.subscribe_all(next);
    loop {
        if !caught_up && next >= start_head {
            caught_up = true;
            tracing::info!(view = name, position = %next, from_snapshot = restored.is_some(), replayed, elapsed_ms = began.elapsed().as_millis() as u64, "a view caught up with the log");
        }
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
        replayed += 1;
        applied.send_replace(Some(recorded.position));
        let Some(snapshotting) = &snapshotting else { continue };
        since_snapshot += 1;
        // Once caught up; or, under writes that never let it catch up, after a while.
        let caught_up_now = store.head() <= next;
        let due = since_snapshot >= snapshotting.policy.events
            && last_saved.is_none_or(|at| at.elapsed() >= snapshotting.policy.interval)
            && (caught_up_now || due_since.elapsed() >= Duration::from_millis(SNAPSHOT_LAGGING_MS))
            && saving.as_ref().is_none_or(tokio::task::JoinHandle::is_finished);
        if due {
            due_since = Instant::now();
            since_snapshot = 0;
            last_saved = Some(Instant::now());
            saving = take_snapshot(&store, &view, snapshotting, (recorded.position, recorded.id), name).await;
        }
    }
}

/// The view's snapshot, if the store keeps one this build wrote, that checks, belongs to the
/// log ([`snapshot::in_log`]) and decodes, restored into `view`: its position. It is decoded
/// beside the fresh view, which readers may see meanwhile, then swapped in whole. Anything
/// else is logged and the view starts from the first event.
async fn restore<S: EventStore, V: View>(
    store: &S,
    view: &Arc<RwLock<V>>,
    snapshotting: &Snapshotting<V>,
    name: &str,
) -> Option<Position> {
    let started = Instant::now();
    let (fresh, restored_with) = (view.clone(), snapshotting.restored);
    let decode = move |bytes: &[u8]| {
        let fresh = fresh.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        restored_with(&fresh, bytes)
    };
    match snapshot::restore(store, snapshotting.name, decode).await {
        Ok(Some((position, restored))) => {
            let fresh = std::mem::replace(
                &mut *view.write().unwrap_or_else(std::sync::PoisonError::into_inner),
                restored,
            );
            drop(fresh);
            tracing::info!(view = name, %position, elapsed_ms = started.elapsed().as_millis() as u64, "a view restored its snapshot: catching up from there");
            Some(position)
        }
        Ok(None) => None,
        Err(reason) => {
            tracing::warn!(view = name, %reason, "a view's snapshot was set aside: replaying the log");
            None
        }
    }
}

/// Encodes the view as it stands after the event at `position`, whose id is `anchor` (the
/// follower waits, so the state and the position agree) and saves it in the background: the
/// save's task.
async fn take_snapshot<S: EventStore, V: View>(
    store: &S,
    view: &Arc<RwLock<V>>,
    snapshotting: &Snapshotting<V>,
    (position, anchor): (Position, uuid::Uuid),
    name: &'static str,
) -> Option<tokio::task::JoinHandle<()>> {
    let started = Instant::now();
    let (view, encode) = (view.clone(), snapshotting.encode);
    let encoded = tokio::task::spawn_blocking(move || {
        let view = view.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        encode(&view).and_then(|body| {
            snapshot::sealed(anchor, &body).ok_or_else(|| String::from("no build fingerprint"))
        })
    })
    .await;
    let body = match encoded {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            tracing::error!(%error, view = name, "a view could not be encoded: no snapshot");
            return None;
        }
        Err(error) => {
            tracing::error!(%error, view = name, "a view's encoding failed: no snapshot");
            return None;
        }
    };
    let encode_ms = started.elapsed().as_millis() as u64;
    let (store, snapshot_name) = (store.clone(), snapshotting.name);
    Some(tokio::spawn(async move {
        let bytes = body.len();
        let snapshot = Stored { position, body: bytes::Bytes::from(body) };
        match store.save_snapshot(snapshot_name, snapshot).await {
            Ok(()) => {
                tracing::info!(view = name, %position, bytes, encode_ms, elapsed_ms = started.elapsed().as_millis() as u64, "a view saved its snapshot")
            }
            Err(StoreError::Closed) => {}
            Err(error) => {
                tracing::warn!(%error, view = name, %position, "a view's snapshot could not be saved")
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use symbiose_eventstore::embedded::{EmbeddedStore, Options};
    use symbiose_eventstore::{EventData, ExpectedVersion, StreamName};
    use uuid::Uuid;

    use super::*;

    /// Each stream's events' payloads, in order: a state that shows a lost or doubled event.
    #[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Payloads(BTreeMap<String, Vec<u8>>);

    impl View for Payloads {
        fn apply(&mut self, recorded: &RecordedEvent) {
            self.0.entry(recorded.stream.to_string()).or_default().extend_from_slice(&recorded.payload);
        }
    }

    impl Snapshot for Payloads {
        const NAME: &'static str = "test.payloads";

        fn encode(&self) -> Result<Vec<u8>, String> {
            snapshot::encode(self)
        }

        fn restored(&self, bytes: &[u8]) -> Result<Payloads, String> {
            snapshot::decode(bytes)
        }
    }

    async fn append(store: &EmbeddedStore, stream: &StreamName, byte: u8) -> Position {
        let event = EventData::new(Uuid::now_v7(), "t", vec![byte]);
        store.append(stream, ExpectedVersion::Any, vec![event]).await.expect("appended").last_position
    }

    async fn caught_up(followed: &Followed<Payloads>, store: &EmbeddedStore) {
        followed.wait_for_head(store.head()).await.expect("the view catches up");
    }

    const EVERY_FOUR: Snapshots = Snapshots::every(4).with_interval(Duration::ZERO);

    #[tokio::test]
    async fn a_view_restarts_from_its_snapshot_in_the_state_a_replay_gives() {
        let dir = tempfile::tempdir().expect("a directory");
        let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("a store");
        let streams: Vec<StreamName> =
            (0..3).map(|index| StreamName::new(&format!("thing-{index}")).expect("a name")).collect();
        for byte in 0..10_u8 {
            append(&store, &streams[usize::from(byte) % 3], byte).await;
        }
        let first = Followed::start_snapshotted(store.clone(), "payloads", Payloads::default(), EVERY_FOUR);
        caught_up(&first, &store).await;
        assert_eq!(first.started_from(), Some(None), "no snapshot yet: from the first event");
        // Saved once caught up, after at least four events: at the last of the ten.
        let saved = wait_for_snapshot(&store, Position::START).await;
        assert_eq!(saved.after(), store.head(), "the snapshot reflects every event");
        drop(first);

        for byte in 10..13_u8 {
            append(&store, &streams[usize::from(byte) % 3], byte).await;
        }
        let restarted =
            Followed::start_snapshotted(store.clone(), "payloads", Payloads::default(), EVERY_FOUR);
        caught_up(&restarted, &store).await;
        assert_eq!(restarted.started_from(), Some(Some(saved)), "from the snapshot");
        let replayed =
            Followed::start_snapshotted(store.clone(), "payloads", Payloads::default(), Snapshots::OFF);
        caught_up(&replayed, &store).await;
        assert_eq!(replayed.started_from(), Some(None), "snapshots off: from the first event");
        assert_eq!(*restarted.read(), *replayed.read(), "the same state either way");
        assert_eq!(restarted.read().0["thing-1"], vec![1, 4, 7, 10]);
        store.close().await;
    }

    #[tokio::test]
    async fn a_damaged_foreign_or_unanchored_snapshot_is_set_aside_and_the_log_replayed() {
        let dir = tempfile::tempdir().expect("a directory");
        let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("a store");
        let stream = StreamName::new("thing-0").expect("a name");
        let mut last = Position::START;
        for byte in 0..5_u8 {
            last = append(&store, &stream, byte).await;
        }
        let last_id = store.read_all(last, 1).await.expect("read")[0].id;
        let build = snapshot::build_fingerprint().expect("a fingerprint");
        let truth = Payloads(BTreeMap::from([(String::from("thing-0"), vec![0, 1, 2, 3, 4])]));
        let wrong = snapshot::encode(&Payloads(BTreeMap::from([(String::from("thing-0"), vec![9])])))
            .expect("encodes");
        let mut damaged = snapshot::seal(build, last_id, &wrong);
        *damaged.last_mut().expect("a body") ^= 1;
        let cases = [
            ("damaged", damaged, last),
            ("another build's", snapshot::seal([0; 12], last_id, &wrong), last),
            ("undecodable", snapshot::seal(build, last_id, &[0xff; 3]), last),
            ("beyond the log", snapshot::seal(build, last_id, &wrong), last.after()),
            // The log cut and written again: another event at the snapshot's position.
            ("unanchored", snapshot::seal(build, Uuid::now_v7(), &wrong), last),
        ];
        for (case, body, position) in cases {
            let stored = Stored { position, body: bytes::Bytes::from(body) };
            store.save_snapshot(Payloads::NAME, stored).await.expect("saved");
            let followed = Followed::start_snapshotted(
                store.clone(),
                "payloads",
                Payloads::default(),
                Snapshots::every(1_000),
            );
            caught_up(&followed, &store).await;
            assert_eq!(followed.started_from(), Some(None), "{case}: set aside");
            assert_eq!(*followed.read(), truth, "{case}");
        }
        // The same bytes, anchored to the event at the head's last position, are restored.
        let anchored = snapshot::seal(build, last_id, &wrong);
        store
            .save_snapshot(Payloads::NAME, Stored { position: last, body: anchored.into() })
            .await
            .expect("saved");
        let followed = Followed::start_snapshotted(
            store.clone(),
            "payloads",
            Payloads::default(),
            Snapshots::every(1_000),
        );
        caught_up(&followed, &store).await;
        assert_eq!(followed.started_from(), Some(Some(last)), "restored at the last event");
        assert_eq!(followed.read().0["thing-0"], vec![9], "the snapshot's state, nothing replayed over it");
        store.close().await;
    }

    /// Waits for a snapshot saved beyond `after`: its position.
    async fn wait_for_snapshot(store: &EmbeddedStore, after: Position) -> Position {
        for _ in 0..500 {
            if let Some(saved) = store.load_snapshot(Payloads::NAME).await.expect("read")
                && saved.position > after
            {
                return saved.position;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no snapshot saved beyond {after}");
    }
}
