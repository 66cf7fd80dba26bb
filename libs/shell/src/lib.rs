//! What the application shells of matching, logistics and settlement share: who acts and with
//! which request id ([`Actor`]), loading an aggregate by folding its stream ([`load`]),
//! appending decided events at the version they were decided on, with ids derived from the
//! request or the cause ([`append`]), and a read model that follows the log from its first
//! event ([`Followed`]), and the turns commands take on one stream inside a process
//! ([`Turns`]), so that only writers of other processes ever meet a conflict.
//!
//! Each shell keeps its own command loop (take the stream's turn, load, decide, append, again
//! on a conflict, a bounded number of times): the loop is short, and what differs between
//! aggregates is the point.

mod turns;

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message as _;
use symbiose_eventstore::{
    Direction, EventData, EventStore, ExpectedVersion, RecordedEvent, StoreError, StreamName,
};
use symbiose_kit::ApiError;
use symbiose_proto::common::v1::EventMetadata;
use tokio::sync::watch;
use uuid::Uuid;

pub use turns::{TURN_WAITERS_MAX, Turn, Turns};

/// Times a command is decided again after its append met a concurrent one.
pub const COMMAND_ATTEMPTS_MAX: usize = 5;
/// Events read from a stream at once when loading an aggregate.
const LOAD_PAGE_EVENTS: usize = 1000;
/// Longest client request id, in bytes.
pub const REQUEST_ID_BYTES_MAX: usize = 128;
/// Longest wait for a view to reach a position a caller names.
pub const VIEW_WAIT_MS_MAX: u64 = 5_000;

/// The organization the platform's services act as when they react to an event: not the
/// operator's (nil), so the two are told apart in the events' metadata and ids.
pub const SERVICE_ORGANIZATION_ID: Uuid = Uuid::from_u128(0x5e41_11ce_5e41_4ce0_8000_0000_0000_0001);

/// Namespace of the ids of events, derived from what caused them.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6d61_7463_6865_7645_9b02_41d3_c0a1_7e11);

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// A store's error as the API says it: a full queue is a passing UNAVAILABLE, anything else
/// internal.
fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Overloaded(reason) => ApiError::Unavailable(reason),
        error => ApiError::Internal(error.into()),
    }
}

/// A reaction's failure, for the consumer runner. A passing one is [`symbiose_feed::Transient`]
/// and delivered again without a bound in count: UNAVAILABLE (another service away, a view
/// behind), ABORTED (a conflict with another process), RESOURCE_EXHAUSTED (a queue full).
/// Any other (a rule, a bad event) is parked after the consumer's bound.
pub fn reaction_failed(error: ApiError) -> symbiose_feed::HandlerError {
    match error {
        ApiError::Unavailable(_) | ApiError::Aborted(_) | ApiError::ResourceExhausted(_) => {
            symbiose_feed::Transient::error(error)
        }
        error => Box::new(error),
    }
}

/// The stream `<category>-<id>`.
pub fn stream(category: &str, id: Uuid) -> StreamName {
    StreamName::for_aggregate(category, id).expect("a category and a uuid make a valid stream name")
}

/// The aggregate's id of the stream `recorded` was written to, for a view's fold.
pub fn aggregate_id(recorded: &RecordedEvent) -> Result<Uuid, String> {
    recorded.stream.aggregate_id().ok_or_else(|| format!("{}: not an aggregate's stream", recorded.stream))
}

/// The stream named `name` (such as `ledger-EUR`), for a stream that is not one aggregate's.
pub fn stream_named(name: &str) -> StreamName {
    StreamName::new(name).expect("a stream name the service chose is valid")
}

/// Who acts, and with which request id (the ids of the events derive from it).
#[derive(Debug, Clone)]
pub struct Actor {
    pub organization: Uuid,
    pub request_id: Option<String>,
    /// The fingerprint of the request the id came with ([`fingerprint`]), kept in the events'
    /// metadata: the same id with another request is refused.
    pub fingerprint: Option<[u8; 32]>,
}

impl Actor {
    /// `organization` acting with the client's `request_id` (empty: none), for a command with
    /// no request to compare a repeat with.
    pub fn new(organization: Uuid, request_id: &str) -> Result<Actor, ApiError> {
        let request_id = request_id.trim();
        if request_id.len() > REQUEST_ID_BYTES_MAX {
            return Err(ApiError::invalid_argument(
                "request_id",
                format!("must be at most {REQUEST_ID_BYTES_MAX} bytes"),
            ));
        }
        Ok(Actor {
            organization,
            request_id: (!request_id.is_empty()).then(|| request_id.to_owned()),
            fingerprint: None,
        })
    }

    /// `organization` acting with `request`, which carries `request_id`: a repeat of the id
    /// with another request is refused ([`Loaded::repeated`]).
    pub fn for_request(
        organization: Uuid,
        request_id: &str,
        request: &impl prost::Message,
    ) -> Result<Actor, ApiError> {
        let mut actor = Actor::new(organization, request_id)?;
        if actor.request_id.is_some() {
            actor.fingerprint = Some(fingerprint(request));
        }
        Ok(actor)
    }

    /// The platform's service itself, reacting to `cause` (an event or a decision), so a
    /// reaction repeated writes the same events.
    pub fn service(cause: &str) -> Actor {
        Actor { organization: SERVICE_ORGANIZATION_ID, request_id: Some(cause.to_owned()), fingerprint: None }
    }

    fn event_id(&self, stream: &StreamName, version: Option<u64>, index: usize) -> Uuid {
        match &self.request_id {
            Some(request_id) => Uuid::new_v5(
                &EVENT_NAMESPACE,
                format!("{}/{request_id}/{stream}/{version:?}/{index}", self.organization).as_bytes(),
            ),
            None => Uuid::now_v7(),
        }
    }

    fn metadata(&self) -> Bytes {
        Bytes::from(
            EventMetadata {
                request_id: self.request_id.clone().unwrap_or_default(),
                actor_organization_id: self.organization.to_string(),
                causation_id: String::new(),
                request_fingerprint: self
                    .fingerprint
                    .map(|fingerprint| fingerprint.to_vec())
                    .unwrap_or_default(),
                ..EventMetadata::default()
            }
            .encode_to_vec(),
        )
    }
}

/// SHA-256 of a request's message name and protobuf encoding: what a request_id is compared
/// against when it comes again. The name tells apart requests that encode alike (a publication
/// and a withdrawal both carry only ids); requests have no map fields, so their encoding is
/// deterministic.
pub fn fingerprint<M: prost::Message>(request: &M) -> [u8; 32] {
    use sha2::Digest as _;
    let name = std::any::type_name::<M>().rsplit("::").next().unwrap_or_default();
    let mut hasher = sha2::Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(request.encode_to_vec());
    hasher.finalize().into()
}

/// The key of a request among those a stream applied: its organization and its id (request
/// ids are each caller's own).
pub fn request_key(organization: &str, request_id: &str) -> String {
    format!("{organization}/{request_id}")
}

/// The error of a request_id sent again with another request, naming the field.
pub fn request_id_reused(request_id: &str) -> ApiError {
    ApiError::FailedPrecondition(format!(
        "request_id: {request_id:?} was sent before with another request; send a new request_id for a new request"
    ))
}

/// An aggregate loaded from its stream.
#[derive(Debug)]
pub struct Loaded<State> {
    pub state: State,
    pub version: Option<u64>,
    pub last_position: u64,
    /// The fingerprint each request id that wrote to the stream came with (empty: none kept).
    requests: HashMap<String, Vec<u8>>,
}

impl<State> Loaded<State> {
    pub fn expected(&self) -> ExpectedVersion {
        self.version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
    }

    /// Whether `actor`'s request already wrote to this stream (then it decides nothing
    /// again); refused (FAILED_PRECONDITION naming `request_id`) if its request id wrote here
    /// for another request: never the first one's result again.
    pub fn repeated(&self, actor: &Actor) -> Result<bool, ApiError> {
        let Some(request_id) = &actor.request_id else { return Ok(false) };
        match (
            self.requests.get(&request_key(&actor.organization.to_string(), request_id)),
            &actor.fingerprint,
        ) {
            (Some(stored), Some(fingerprint))
                if !stored.is_empty() && stored.as_slice() != fingerprint.as_slice() =>
            {
                Err(request_id_reused(request_id))
            }
            (Some(_), _) => Ok(true),
            (None, _) => Ok(false),
        }
    }
}

/// Reads `stream` whole and folds its events, decoded by `decode`, with `evolve`.
pub async fn load<S, State, Event>(
    store: &S,
    stream: &StreamName,
    decode: impl Fn(&str, &[u8]) -> Result<Event, String>,
    evolve: impl Fn(State, &Event) -> State,
) -> Result<Loaded<State>, ApiError>
where
    S: EventStore,
    State: Default,
{
    let mut loaded =
        Loaded { state: State::default(), version: None, last_position: 0, requests: HashMap::new() };
    loop {
        let from = loaded.version.map_or(0, |version| version + 1);
        let events = match store.read_stream(stream, from, Direction::Forward, LOAD_PAGE_EVENTS).await {
            Ok(events) => events,
            Err(StoreError::StreamNotFound(_)) => return Ok(loaded),
            Err(error) => return Err(store_error(error)),
        };
        let count = events.len();
        for recorded in events {
            let event = decode(&recorded.event_type, &recorded.payload).map_err(|error| {
                ApiError::Internal(anyhow::anyhow!("corrupted event in {stream}: {error}"))
            })?;
            loaded.state = evolve(std::mem::take(&mut loaded.state), &event);
            loaded.version = Some(recorded.version);
            loaded.last_position = recorded.position;
            if let Ok(metadata) = EventMetadata::decode(recorded.metadata.as_ref())
                && !metadata.request_id.is_empty()
            {
                loaded.requests.insert(
                    request_key(&metadata.actor_organization_id, &metadata.request_id),
                    metadata.request_fingerprint,
                );
            }
        }
        if count < LOAD_PAGE_EVENTS {
            return Ok(loaded);
        }
    }
}

/// Appends `events` (type, payload) to `stream` at `expected`, with ids derived from the
/// actor's request and the version they follow (`version`); `None` when the stream moved
/// meanwhile (decide again), else the version and the position written.
pub async fn append<S: EventStore>(
    store: &S,
    stream: &StreamName,
    expected: ExpectedVersion,
    version: Option<u64>,
    actor: &Actor,
    events: Vec<(&'static str, Vec<u8>)>,
) -> Result<Option<(u64, u64)>, ApiError> {
    let metadata = actor.metadata();
    let data = events
        .into_iter()
        .enumerate()
        .map(|(index, (event_type, payload))| {
            EventData::new(actor.event_id(stream, version, index), event_type, payload)
                .with_metadata(metadata.clone())
        })
        .collect();
    match store.append(stream, expected, data).await {
        Ok(result) => Ok(Some((result.next_expected_version, result.last_position))),
        Err(StoreError::WrongExpectedVersion { .. }) => Ok(None),
        Err(error) => Err(store_error(error)),
    }
}

/// A read model that follows a store's log from its first event, and the position it
/// reflects, for read-your-writes waits.
pub trait View: Send + Sync + 'static {
    fn apply(&mut self, recorded: &RecordedEvent);
}

/// A view kept up to date by a task that follows the log.
pub struct Followed<V> {
    view: Arc<RwLock<V>>,
    position: watch::Receiver<u64>,
    name: &'static str,
}

impl<V> std::fmt::Debug for Followed<V> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Followed")
            .field("name", &self.name)
            .field("position", &*self.position.borrow())
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
        let (sender, position) = watch::channel(0);
        tokio::spawn(follow(store, view.clone(), sender, name));
        Followed { view, position, name }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, V> {
        self.view.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The position the view reflects: every event before it.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Waits, at most [`VIEW_WAIT_MS_MAX`], for the view to reflect the event at `position`
    /// (0: no wait); else UNAVAILABLE saying how far behind it is.
    pub async fn wait_for(&self, position: u64) -> Result<(), ApiError> {
        if position == 0 {
            return Ok(());
        }
        let mut receiver = self.position.clone();
        let reached = tokio::time::timeout(
            Duration::from_millis(VIEW_WAIT_MS_MAX),
            receiver.wait_for(|next| *next > position),
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

/// Failures in a row of a view's subscription after which the view stops following (and its
/// waits answer UNAVAILABLE, saying how far behind it is).
pub const FOLLOW_FAILURES_MAX: u32 = 60;
/// Longest pause after a failure of a view's subscription, in milliseconds.
const FOLLOW_BACKOFF_MS_MAX: u64 = 5_000;

async fn follow<S: EventStore, V: View>(
    store: S,
    view: Arc<RwLock<V>>,
    position: watch::Sender<u64>,
    name: &str,
) {
    let mut next = 0;
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
                tokio::time::sleep(Duration::from_millis(
                    (100 * u64::from(failures)).min(FOLLOW_BACKOFF_MS_MAX),
                ))
                .await;
                subscription = store.subscribe_all(next);
                continue;
            }
        };
        failures = 0;
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            view.write().unwrap_or_else(std::sync::PoisonError::into_inner).apply(&recorded);
        }));
        if applied.is_err() {
            // A fold that panics must not stop the view: the event is skipped, loudly.
            tracing::error!(view = name, position = recorded.position, stream = %recorded.stream, "a view could not apply an event: skipped");
        }
        next = recorded.position + 1;
        position.send_replace(next);
    }
}

#[cfg(test)]
mod tests {
    use symbiose_eventstore::embedded::{EmbeddedStore, Options};

    use super::*;

    #[derive(Default)]
    struct Count(u64);

    impl View for Count {
        fn apply(&mut self, _: &RecordedEvent) {
            self.0 += 1;
        }
    }

    #[test]
    fn event_ids_derived_from_a_request_are_pinned_for_good() {
        // A request repeated is recognised by these ids in the store: a change of derivation
        // would apply it twice.
        let organization: Uuid = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".parse().expect("a uuid");
        let actor = Actor::new(organization, "request-1").expect("an actor");
        let stream = stream("proposal", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60".parse().expect("a uuid"));
        assert_eq!(actor.event_id(&stream, Some(3), 0).to_string(), "86aef118-8cfd-5919-8745-e1abc3357cfa");
        assert_eq!(actor.event_id(&stream, None, 1).to_string(), "28a5295e-325d-547c-a601-25e187471e9b");
    }

    #[tokio::test]
    async fn a_repeated_request_appends_once_and_the_view_follows() {
        let dir = tempfile::tempdir().expect("a directory");
        let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("a store");
        let followed: Followed<Count> = Followed::start(store.clone(), "count");
        let actor = Actor::new(Uuid::now_v7(), "request-1").expect("an actor");
        let name = stream("thing", Uuid::now_v7());
        let decode = |_: &str, _: &[u8]| Ok::<(), String>(());
        let evolve = |count: u64, _: &()| count + 1;
        // Position 0 means "no wait" to a view: another stream takes it first.
        let other = stream("other", Uuid::now_v7());
        append(&store, &other, ExpectedVersion::NoStream, None, &actor, vec![("t", vec![0])])
            .await
            .expect("appended")
            .expect("no conflict");
        let loaded = load(&store, &name, decode, evolve).await.expect("loaded");
        let first = append(&store, &name, loaded.expected(), loaded.version, &actor, vec![("t", vec![1])])
            .await
            .expect("appended")
            .expect("no conflict");
        // The same request again, decided on the same version: the store recognises the ids.
        let again = append(&store, &name, ExpectedVersion::Any, loaded.version, &actor, vec![("t", vec![1])])
            .await
            .expect("appended");
        assert_eq!(again.map(|(version, _)| version), Some(first.0));
        let reloaded = load(&store, &name, decode, evolve).await.expect("loaded");
        assert_eq!(reloaded.state, 1, "one event");
        assert_eq!(
            Actor::new(Uuid::nil(), &"x".repeat(REQUEST_ID_BYTES_MAX + 1))
                .map(|_| ())
                .map_err(|error| error.to_string()),
            Err(format!("request_id: must be at most {REQUEST_ID_BYTES_MAX} bytes"))
        );
        followed.wait_for(first.1).await.expect("the view reaches the append");
        assert_eq!(followed.read().0, 2, "the other stream's event and this one");
        store.close().await;
    }
}
