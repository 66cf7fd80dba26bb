//! The command loop: load an aggregate from its stream, answer a repeated request with what it
//! did the first time, decide, append at the version decided on, and decide again on a
//! conflict, a bounded number of times.

use std::collections::HashMap;
use std::future::Future;

use symbiose_eventstore::{
    Direction, EventData, EventStore, ExpectedVersion, Position, RecordedEvent, StoreError, StreamName,
};
use symbiose_kit::ApiError;
use symbiose_kit::backoff::Backoff;

use crate::turns::Turns;
use crate::{Actor, EventIds, metadata_of, request_id_reused, request_key, store_error};

/// The pauses before a command is decided again after a conflict: the kit's one policy.
const CONFLICT_BACKOFF: Backoff = Backoff::CONFLICT;
/// Times a command is decided, at most, when its appends meet concurrent ones.
pub const COMMAND_ATTEMPTS_MAX: usize = CONFLICT_BACKOFF.attempts_max() as usize;
/// Events read from a stream at once when loading an aggregate.
const LOAD_PAGE_EVENTS: usize = 1000;

/// What a write did: the aggregate's version and the position of its last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub version: u64,
    pub position: Position,
}

/// An aggregate as loaded from its stream.
#[derive(Debug, Clone)]
pub struct Loaded<State> {
    pub state: State,
    pub version: Option<u64>,
    pub last_position: Position,
    /// What each request id already did, with the fingerprint of the request it came with
    /// (empty: none kept), so a repeat has one effect and another request under the same id is
    /// refused.
    requests: HashMap<String, (Written, Vec<u8>)>,
}

impl<State: Default> Default for Loaded<State> {
    fn default() -> Loaded<State> {
        Loaded::new(State::default(), None, Position::START)
    }
}

impl<State> Loaded<State> {
    /// `state` at `version`, as a read model holds it (no request known).
    pub fn new(state: State, version: Option<u64>, last_position: Position) -> Loaded<State> {
        Loaded { state, version, last_position, requests: HashMap::new() }
    }

    pub fn expected(&self) -> ExpectedVersion {
        self.version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
    }

    /// What `actor`'s request already did to this stream, if it wrote here; refused
    /// (FAILED_PRECONDITION naming `request_id`) if its request id wrote here for another
    /// request: never the first one's result again.
    pub fn repeated(&self, actor: &Actor) -> Result<Option<Written>, ApiError> {
        let Some(request_id) = &actor.request_id else { return Ok(None) };
        match (
            self.requests.get(&request_key(&actor.organization.to_string(), request_id)),
            &actor.fingerprint,
        ) {
            (Some((_, stored)), Some(fingerprint))
                if !stored.is_empty() && stored.as_slice() != fingerprint.as_slice() =>
            {
                Err(request_id_reused(request_id))
            }
            (Some((written, _)), _) => Ok(Some(*written)),
            (None, _) => Ok(None),
        }
    }

    /// What a command that decided nothing did: nothing, at the current version.
    pub fn unchanged(&self) -> Written {
        Written { version: self.version.unwrap_or_default(), position: self.last_position }
    }
}

/// Reads `stream` whole and folds its events, decoded by `decode` (a contract's
/// `decode_recorded_*`, which brings an event written in an earlier shape to the current one),
/// with `evolve`.
pub async fn load<S, State, Event>(
    store: &S,
    stream: &StreamName,
    decode: impl Fn(&RecordedEvent) -> Result<Event, String>,
    evolve: impl Fn(State, &Event) -> State,
) -> Result<Loaded<State>, ApiError>
where
    S: EventStore,
    State: Default,
{
    load_from(store, stream, decode, evolve, Loaded::default()).await
}

/// Folds the events of `stream` after `loaded` (its state at its version, from a cache) into
/// it: the same state as a whole load, reading only what came since. Events are never edited,
/// so a state folded up to a version stays true.
pub async fn load_from<S, State, Event>(
    store: &S,
    stream: &StreamName,
    decode: impl Fn(&RecordedEvent) -> Result<Event, String>,
    evolve: impl Fn(State, &Event) -> State,
    mut loaded: Loaded<State>,
) -> Result<Loaded<State>, ApiError>
where
    S: EventStore,
    State: Default,
{
    loop {
        let from = loaded.version.map_or(0, |version| version + 1);
        let events = match store.read_stream(stream, from, Direction::Forward, LOAD_PAGE_EVENTS).await {
            Ok(events) => events,
            Err(StoreError::StreamNotFound(_)) => return Ok(loaded),
            Err(error) => return Err(store_error(error)),
        };
        let count = events.len();
        for recorded in events {
            let event = decode(&recorded).map_err(|error| {
                ApiError::Internal(anyhow::anyhow!("corrupted event in {stream}: {error}"))
            })?;
            loaded.state = evolve(std::mem::take(&mut loaded.state), &event);
            loaded.version = Some(recorded.version);
            loaded.last_position = recorded.position;
            if let Some(metadata) = metadata_of(&recorded)
                && !metadata.request_id.is_empty()
            {
                loaded.requests.insert(
                    request_key(&metadata.actor_organization_id, &metadata.request_id),
                    (
                        Written { version: recorded.version, position: recorded.position },
                        metadata.request_fingerprint,
                    ),
                );
            }
        }
        if count < LOAD_PAGE_EVENTS {
            return Ok(loaded);
        }
    }
}

/// What a command decided: the events to append, as `(type, payload)` (none: nothing to do),
/// and what its caller needs back.
#[derive(Debug)]
pub struct Decision<T> {
    pub events: Vec<(&'static str, Vec<u8>)>,
    pub value: T,
}

impl<T> Decision<T> {
    pub fn new(events: Vec<(&'static str, Vec<u8>)>, value: T) -> Decision<T> {
        Decision { events, value }
    }

    /// Nothing to append.
    pub fn nothing(value: T) -> Decision<T> {
        Decision { events: Vec::new(), value }
    }
}

/// How a command ended.
#[derive(Debug)]
pub enum Outcome<State, T> {
    /// Its events were appended.
    Appended(T),
    /// It decided nothing to append.
    Unchanged(T),
    /// Its request wrote to the stream before: nothing was decided again. The aggregate as
    /// it stands now.
    Repeated(Loaded<State>),
}

/// What [`Shell::execute`] did.
#[derive(Debug)]
pub struct Executed<State, T> {
    /// The version and the position written; for a repeated request, those its first
    /// execution wrote; for nothing decided, the aggregate's as loaded.
    pub written: Written,
    pub outcome: Outcome<State, T>,
}

impl<State, T> Executed<State, T> {
    /// Whether this execution appended events.
    pub fn appended(&self) -> bool {
        matches!(self.outcome, Outcome::Appended(_))
    }
}

/// The application shell of one context: its store, the turns commands take on each stream
/// (so only writers of other processes meet a conflict), and how its events' ids derive from
/// requests.
#[derive(Debug, Clone)]
pub struct Shell<S> {
    store: S,
    turns: Turns,
    ids: EventIds,
}

impl<S: EventStore> Shell<S> {
    pub fn new(store: S, ids: EventIds) -> Shell<S> {
        Shell { store, turns: Turns::new(), ids }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Executes a command on `stream` for `actor`: takes the stream's turn, loads the aggregate
    /// with `load`, answers a request that already wrote here with what it did then (another
    /// request under its id is refused), asks `decide` for the events to append, appends them
    /// at the version loaded, and on a conflict pauses briefly and does it all again, at most
    /// [`COMMAND_ATTEMPTS_MAX`] times (then ABORTED).
    pub async fn execute<State, T, L>(
        &self,
        stream: &StreamName,
        actor: &Actor,
        load: impl Fn() -> L,
        mut decide: impl FnMut(&Loaded<State>) -> Result<Decision<T>, ApiError>,
    ) -> Result<Executed<State, T>, ApiError>
    where
        L: Future<Output = Result<Loaded<State>, ApiError>>,
    {
        self.execute_async(stream, actor, load, |loaded| std::future::ready(decide(loaded))).await
    }

    /// [`Shell::execute`] with a decision that waits for something (a view to catch up, a
    /// payment made first): `decide` takes what it needs of the aggregate loaded and returns a
    /// future that owns it.
    pub async fn execute_async<State, T, L, D>(
        &self,
        stream: &StreamName,
        actor: &Actor,
        load: impl Fn() -> L,
        mut decide: impl FnMut(&Loaded<State>) -> D,
    ) -> Result<Executed<State, T>, ApiError>
    where
        L: Future<Output = Result<Loaded<State>, ApiError>>,
        D: Future<Output = Result<Decision<T>, ApiError>>,
    {
        let _turn = self.turns.take(stream).await?;
        for attempt in 0..COMMAND_ATTEMPTS_MAX {
            if attempt > 0 {
                // Short and jittered, so commands that met do not meet again at once.
                tokio::time::sleep(CONFLICT_BACKOFF.delay(attempt as u64)).await;
            }
            let loaded = load().await?;
            if let Some(written) = loaded.repeated(actor)? {
                return Ok(Executed { written, outcome: Outcome::Repeated(loaded) });
            }
            let Decision { events, value } = decide(&loaded).await?;
            if events.is_empty() {
                return Ok(Executed { written: loaded.unchanged(), outcome: Outcome::Unchanged(value) });
            }
            if let Some(written) = self.append(stream, &loaded, actor, attempt, events).await? {
                return Ok(Executed { written, outcome: Outcome::Appended(value) });
            }
            tracing::warn!(stream = %stream, attempt, "append conflict, deciding again");
        }
        Err(ApiError::Aborted(format!("{stream} changed under {COMMAND_ATTEMPTS_MAX} attempts")))
    }

    /// Appends `events` (type, payload) to `stream` at the version of `loaded`, with ids
    /// derived from `actor`'s request (decided at the `attempt`th try) and its metadata;
    /// `None` when the stream moved meanwhile (decide again). For a write outside
    /// [`Shell::execute`]'s loop: a fact written once whoever writes it.
    pub async fn append<State>(
        &self,
        stream: &StreamName,
        loaded: &Loaded<State>,
        actor: &Actor,
        attempt: usize,
        events: Vec<(&'static str, Vec<u8>)>,
    ) -> Result<Option<Written>, ApiError> {
        let metadata = actor.metadata();
        let data = events
            .into_iter()
            .enumerate()
            .map(|(index, (event_type, payload))| {
                EventData::new(
                    actor.event_id(self.ids, stream, loaded.version, attempt, index),
                    event_type,
                    payload,
                )
                .with_metadata(metadata.clone())
            })
            .collect();
        match self.store.append(stream, loaded.expected(), data).await {
            Ok(result) => {
                Ok(Some(Written { version: result.next_expected_version, position: result.last_position }))
            }
            Err(StoreError::WrongExpectedVersion { .. }) => Ok(None),
            Err(error) => Err(store_error(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use symbiose_eventstore::embedded::{EmbeddedStore, Options};
    use uuid::Uuid;

    use super::*;
    use crate::{Followed, View, stream};

    #[derive(Default)]
    struct Count(u64);

    impl View for Count {
        fn apply(&mut self, _: &symbiose_eventstore::RecordedEvent) {
            self.0 += 1;
        }
    }

    fn decode(_: &RecordedEvent) -> Result<(), String> {
        Ok(())
    }

    fn evolve(count: u64, _: &()) -> u64 {
        count + 1
    }

    #[tokio::test]
    async fn a_repeated_request_appends_once_and_the_view_follows() {
        let dir = tempfile::tempdir().expect("a directory");
        let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("a store");
        let followed: Followed<Count> = Followed::start(store.clone(), "count");
        let shell = Shell::new(store.clone(), EventIds::Versioned);
        let actor =
            Actor::for_request(Uuid::now_v7(), "request-1", &"a request".to_owned()).expect("an actor");
        let name = stream("thing", Uuid::now_v7());
        // Position 0 means "no wait" to a view: another stream takes it first.
        let other = stream("other", Uuid::now_v7());
        shell
            .append(&other, &Loaded::new((), None, Position::START), &actor, 0, vec![("t", vec![0])])
            .await
            .expect("appended");
        let decided = AtomicUsize::new(0);
        let execute = |actor: Actor| {
            let (shell, name, decided) = (&shell, &name, &decided);
            async move {
                shell
                    .execute(
                        name,
                        &actor,
                        || load(shell.store(), name, decode, evolve),
                        |loaded: &Loaded<u64>| {
                            decided.fetch_add(1, Ordering::SeqCst);
                            Ok(Decision::new(vec![("t", vec![1])], loaded.state))
                        },
                    )
                    .await
            }
        };
        let first = execute(actor.clone()).await.expect("executed");
        assert!(first.appended());
        let again = execute(actor.clone()).await.expect("executed");
        assert_eq!(again.written, first.written, "the first execution's version and position");
        assert!(matches!(again.outcome, Outcome::Repeated(Loaded { state: 1, .. })));
        assert_eq!(decided.load(Ordering::SeqCst), 1, "decided once");
        let reused = Actor::for_request(actor.organization, "request-1", &"another request".to_owned())
            .expect("an actor");
        let refused = execute(reused).await.expect_err("another request under the same id");
        assert!(matches!(refused, ApiError::FailedPrecondition(_)), "{refused}");
        assert_eq!(
            Actor::new(Uuid::nil(), &"x".repeat(crate::REQUEST_ID_BYTES_MAX + 1))
                .map(|_| ())
                .map_err(|error| error.to_string()),
            Err(format!("request_id: must be at most {} bytes", crate::REQUEST_ID_BYTES_MAX))
        );
        followed.wait_for(first.written.position).await.expect("the view reaches the append");
        assert_eq!(followed.read().0, 2, "the other stream's event and this one");
        store.close().await;
    }

    #[tokio::test]
    async fn a_conflict_is_decided_again_on_the_new_version() {
        let dir = tempfile::tempdir().expect("a directory");
        let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("a store");
        let shell = Shell::new(store.clone(), EventIds::Versioned);
        let name = stream("thing", Uuid::now_v7());
        let writer = Actor::new(Uuid::now_v7(), "").expect("an actor");
        let loads = AtomicUsize::new(0);
        let executed = shell
            .execute(
                &name,
                &Actor::new(Uuid::now_v7(), "request-2").expect("an actor"),
                || async {
                    let loaded = load(&store, &name, decode, evolve).await?;
                    // Another process writes after the first load.
                    if loads.fetch_add(1, Ordering::SeqCst) == 0 {
                        shell.append(&name, &loaded, &writer, 0, vec![("t", vec![0])]).await?;
                    }
                    Ok(loaded)
                },
                |loaded: &Loaded<u64>| Ok(Decision::new(vec![("t", vec![1])], loaded.version)),
            )
            .await
            .expect("executed");
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        assert!(matches!(executed.outcome, Outcome::Appended(Some(0))), "{executed:?}");
        assert_eq!(executed.written.version, 1);
        store.close().await;
    }
}
