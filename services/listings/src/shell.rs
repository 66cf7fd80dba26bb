//! What every aggregate's application shell shares: who asks and with which request id, how
//! an aggregate is loaded from its stream, and how decided events are appended.
//!
//! Each aggregate keeps its own `execute` (load, decide, append, retry): the loop is short,
//! and the differences (what is looked up first, what a rejection means) are the point.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message;
use symbiose_eventstore::{Direction, EventData, EventStore, ExpectedVersion, StoreError, StreamName};
use symbiose_kit::auth::Caller;
use symbiose_proto::common::v1::EventMetadata;
use uuid::Uuid;

use crate::error::ListingsError;

/// Times a command is decided again after its append met a concurrent one.
pub(crate) const COMMAND_ATTEMPTS_MAX: usize = 5;
/// Events read from a stream at once when loading an aggregate.
const LOAD_PAGE_EVENTS: usize = 1000;
/// Longest client request id, in bytes.
pub(crate) const REQUEST_ID_BYTES_MAX: usize = 128;

/// Namespace of the ids derived from a client's request id, so a repeated request produces
/// the same ids and the store recognises it.
const REQUEST_NAMESPACE: Uuid = Uuid::from_u128(0x5b1e_0b5e_1d00_4c3a_9a7e_2f1c_8d3b_6a01);

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Who asks, and with which request id.
#[derive(Debug, Clone)]
pub struct Meta {
    pub actor: Uuid,
    pub request_id: Option<String>,
    /// The fingerprint of the request the id came with: the same id with another request is
    /// refused.
    pub fingerprint: Option<[u8; 32]>,
}

impl Meta {
    /// `caller` asking with `request_id` (empty: none), for a command with no request to
    /// compare a repeat with.
    pub fn new(caller: &Caller, request_id: &str) -> Result<Meta, ListingsError> {
        let request_id = request_id.trim();
        if request_id.len() > REQUEST_ID_BYTES_MAX {
            return Err(ListingsError::invalid(
                "request_id",
                format!("must be at most {REQUEST_ID_BYTES_MAX} bytes"),
            ));
        }
        Ok(Meta {
            actor: caller.organization_id,
            request_id: (!request_id.is_empty()).then(|| request_id.to_owned()),
            fingerprint: None,
        })
    }

    /// `caller` asking with `request`, which carries `request_id`: a repeat of the id with
    /// another request is refused ([`Loaded::repeated`]).
    pub fn for_request(
        caller: &Caller,
        request_id: &str,
        request: &impl Message,
    ) -> Result<Meta, ListingsError> {
        let mut meta = Meta::new(caller, request_id)?;
        if meta.request_id.is_some() {
            meta.fingerprint = Some(symbiose_shell::fingerprint(request));
        }
        Ok(meta)
    }

    /// An id derived from the caller, its request id and `purpose`, or a new one without a
    /// request id. Request ids are the caller's: another caller's same id is another request.
    pub fn derive_id(&self, purpose: &str) -> Uuid {
        match &self.request_id {
            Some(request_id) => {
                Uuid::new_v5(&REQUEST_NAMESPACE, format!("{}/{purpose}/{request_id}", self.actor).as_bytes())
            }
            None => Uuid::now_v7(),
        }
    }

    pub(crate) fn metadata(&self) -> Bytes {
        Bytes::from(
            EventMetadata {
                request_id: self.request_id.clone().unwrap_or_default(),
                actor_organization_id: self.actor.to_string(),
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

/// What a write did: the aggregate's version and the position of its last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub version: u64,
    pub position: u64,
}

/// An aggregate as loaded from its stream.
#[derive(Debug, Clone)]
pub struct Loaded<State> {
    pub state: State,
    pub version: Option<u64>,
    pub last_position: u64,
    /// What each caller's request id already did, with the fingerprint of the request it came
    /// with, so a repeat has one effect and another request under the same id is refused.
    pub(crate) requests: HashMap<String, (Written, Vec<u8>)>,
}

impl<State: Default> Default for Loaded<State> {
    fn default() -> Loaded<State> {
        Loaded { state: State::default(), version: None, last_position: 0, requests: HashMap::new() }
    }
}

impl<State> Loaded<State> {
    /// What `meta`'s request id already did, if it was applied; refused (FAILED_PRECONDITION
    /// naming `request_id`) if it was applied to another request.
    pub(crate) fn repeated(&self, meta: &Meta) -> Result<Option<Written>, ListingsError> {
        let Some(request_id) = meta.request_id.as_ref() else { return Ok(None) };
        let key = symbiose_shell::request_key(&meta.actor.to_string(), request_id);
        match (self.requests.get(&key), meta.fingerprint) {
            (Some((_, stored)), Some(fingerprint))
                if !stored.is_empty() && stored.as_slice() != fingerprint =>
            {
                Err(ListingsError::Api(symbiose_shell::request_id_reused(request_id)))
            }
            (Some((written, _)), _) => Ok(Some(*written)),
            (None, _) => Ok(None),
        }
    }

    pub(crate) fn expected(&self) -> ExpectedVersion {
        self.version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
    }

    /// What a command that decided nothing did: nothing, at the current version.
    pub(crate) fn unchanged(&self) -> Written {
        Written { version: self.version.unwrap_or_default(), position: self.last_position }
    }
}

/// Reads `stream` whole and folds its events, decoded by `decode`, with `evolve`.
pub(crate) async fn load<S, State, Event>(
    store: &S,
    stream: &StreamName,
    decode: impl Fn(&str, &[u8]) -> Result<Event, String>,
    evolve: impl Fn(State, &Event) -> State,
) -> Result<Loaded<State>, ListingsError>
where
    S: EventStore,
    State: Default,
{
    load_from(store, stream, decode, evolve, Loaded::default()).await
}

/// Folds the events of `stream` after `loaded` (its state at its version, from a cache) into
/// it: the same state as a whole load, reading only what came since. Events are never edited,
/// so a state folded up to a version stays true.
pub(crate) async fn load_from<S, State, Event>(
    store: &S,
    stream: &StreamName,
    decode: impl Fn(&str, &[u8]) -> Result<Event, String>,
    evolve: impl Fn(State, &Event) -> State,
    mut loaded: Loaded<State>,
) -> Result<Loaded<State>, ListingsError>
where
    S: EventStore,
    State: Default,
{
    loop {
        let from = loaded.version.map_or(0, |version| version + 1);
        let events = match store.read_stream(stream, from, Direction::Forward, LOAD_PAGE_EVENTS).await {
            Ok(events) => events,
            Err(StoreError::StreamNotFound(_)) => return Ok(loaded),
            Err(error) => return Err(error.into()),
        };
        let count = events.len();
        for recorded in events {
            let event = decode(&recorded.event_type, &recorded.payload).map_err(ListingsError::Corrupted)?;
            loaded.state = evolve(std::mem::take(&mut loaded.state), &event);
            loaded.version = Some(recorded.version);
            loaded.last_position = recorded.position;
            if let Ok(metadata) = EventMetadata::decode(recorded.metadata.as_ref())
                && !metadata.request_id.is_empty()
            {
                loaded.requests.insert(
                    symbiose_shell::request_key(&metadata.actor_organization_id, &metadata.request_id),
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

/// Appends `events` (as `(type, payload)`) to `stream` at `expected`, with ids derived from the
/// request and the attempt. `None` when the stream moved meanwhile: decide again.
pub(crate) async fn append<S: EventStore>(
    store: &S,
    stream: &StreamName,
    expected: ExpectedVersion,
    meta: &Meta,
    attempt: usize,
    events: Vec<(&'static str, Vec<u8>)>,
) -> Result<Option<Written>, ListingsError> {
    let metadata = meta.metadata();
    let data = events
        .into_iter()
        .enumerate()
        .map(|(index, (event_type, payload))| {
            EventData::new(meta.derive_id(&format!("{stream}/{attempt}/{index}")), event_type, payload)
                .with_metadata(metadata.clone())
        })
        .collect();
    match store.append(stream, expected, data).await {
        Ok(result) => {
            Ok(Some(Written { version: result.next_expected_version, position: result.last_position }))
        }
        Err(StoreError::WrongExpectedVersion { .. }) => {
            tracing::warn!(stream = %stream, attempt, "append conflict, deciding again");
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

/// Waits at most `wait_ms` for a view whose position `receiver` publishes to reflect
/// `position`; `view` names it in the answer when it is behind.
pub(crate) async fn wait_for_position(
    receiver: &tokio::sync::watch::Receiver<u64>,
    position: u64,
    wait_ms: u64,
    view: &str,
) -> Result<(), ListingsError> {
    let mut waiting = receiver.clone();
    let reached = tokio::time::timeout(
        std::time::Duration::from_millis(wait_ms),
        waiting.wait_for(|seen| *seen > position),
    )
    .await;
    match reached {
        Ok(Ok(_)) => Ok(()),
        _ => Err(ListingsError::Unavailable(format!(
            "the {view} is at position {}, behind {position}",
            *receiver.borrow()
        ))),
    }
}

/// Follows the whole log from the start for as long as the store is open, handing each event
/// to `apply` and then publishing the next position on `position` (what `wait_for_position`
/// waits on); `view` names the view in the log when it stops on an error.
pub(crate) async fn follow_log<S: EventStore>(
    store: S,
    view: &str,
    position: tokio::sync::watch::Sender<u64>,
    mut apply: impl FnMut(&symbiose_eventstore::RecordedEvent),
) {
    let mut subscription = store.subscribe_all(0);
    loop {
        let recorded = match subscription.next().await {
            Ok(recorded) => recorded,
            Err(StoreError::Closed) => return,
            Err(error) => {
                tracing::error!(%error, view, "a view stopped following the log");
                return;
            }
        };
        apply(&recorded);
        position.send_replace(recorded.position + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_derived_from_a_request_are_pinned_for_good() {
        // A request repeated is recognised by these ids (its listing's, its events'): a change
        // of derivation would apply it twice.
        let organization: Uuid = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".parse().expect("a uuid");
        let meta = Meta { actor: organization, request_id: Some("request-1".to_owned()), fingerprint: None };
        assert_eq!(
            meta.derive_id("listing-0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60/0/0").to_string(),
            "71a4e981-0b6a-50d7-b80d-5d54390ce61a"
        );
        assert_eq!(
            meta.derive_id(&format!("listing/{organization}")).to_string(),
            "4018463c-54a4-57f1-8b2c-0188bcb8ce64"
        );
    }
}
