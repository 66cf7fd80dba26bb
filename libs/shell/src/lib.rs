//! The one application shell of every service (listings, matching, logistics, settlement):
//! who acts and with which request id ([`Actor`]), the command loop ([`Shell::execute`]: take
//! the stream's turn, load, answer a repeated request with what it did the first time, decide,
//! append at the expected version, decide again on a conflict a bounded number of times), the
//! one way from a rule's refusal to an [`ApiError`] ([`rejected`]), the metadata written with
//! every event ([`Actor::metadata`], read back with [`metadata_of`]), and a read model that
//! follows the log from its first event or from its snapshot ([`Followed`], [`Snapshot`]).
//!
//! It never decides anything itself: what a command means stays in each aggregate's pure
//! `decide`, what is looked up around it in each service's shell.

mod command;
mod follow;
pub mod snapshot;
mod turns;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message as _;
use symbiose_eventstore::{RecordedEvent, StoreError, StreamName};
use symbiose_kit::ApiError;
use symbiose_proto::common::v1::EventMetadata;
use uuid::Uuid;

pub use command::{
    COMMAND_ATTEMPTS_MAX, Decision, Executed, Loaded, Outcome, Shell, Written, load, load_from,
};
pub use follow::{FOLLOW_FAILURES_MAX, Followed, VIEW_WAIT_MS_MAX, View};
pub use snapshot::{Snapshot, Snapshots};
pub use turns::{TURN_WAITERS_MAX, Turn, Turns};

/// Longest client request id, in bytes.
pub const REQUEST_ID_BYTES_MAX: usize = 128;

/// The version of the events' shape the shell writes in their metadata (0: written before
/// versions were recorded).
pub const SCHEMA_VERSION: u32 = 1;

/// The organization the platform's services act as when they react to an event: not the
/// operator's (nil), so the two are told apart in the events' metadata and ids.
pub const SERVICE_ORGANIZATION_ID: Uuid = Uuid::from_u128(0x5e41_11ce_5e41_4ce0_8000_0000_0000_0001);

/// Namespace of the ids of events derived with [`EventIds::Versioned`].
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6d61_7463_6865_7645_9b02_41d3_c0a1_7e11);

/// Namespace of the ids derived from a client's request id by [`Actor::derive_id`] (and of the
/// events' ids of [`EventIds::Attempted`]), so a repeated request produces the same ids.
const REQUEST_NAMESPACE: Uuid = Uuid::from_u128(0x5b1e_0b5e_1d00_4c3a_9a7e_2f1c_8d3b_6a01);

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// How the ids of the events a request writes derive from it. Stored logs recognise a repeated
/// request by these ids, so each context keeps the scheme its log was written with, for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventIds {
    /// From the organization, the request id, the stream, the version decided on and the
    /// event's index (matching, logistics, settlement).
    Versioned,
    /// From the organization, the stream, the attempt and the event's index, then the request
    /// id, as [`Actor::derive_id`] does (listings).
    Attempted,
}

/// How a rule's refusal reaches a caller, so every rejection of every aggregate is answered the
/// same way: `InvalidArgument` names the field at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    InvalidArgument { field: &'static str },
    NotFound,
    FailedPrecondition,
    PermissionDenied,
    ResourceExhausted,
}

/// The one way from a rule's refusal to an API error: its kind, and the message the caller
/// reads (the rejection itself, most often).
pub fn rejected(kind: RejectionKind, message: impl std::fmt::Display) -> ApiError {
    match kind {
        RejectionKind::InvalidArgument { field } => ApiError::invalid_argument(field, message),
        RejectionKind::NotFound => ApiError::NotFound(message.to_string()),
        RejectionKind::FailedPrecondition => ApiError::FailedPrecondition(message.to_string()),
        RejectionKind::PermissionDenied => ApiError::PermissionDenied(message.to_string()),
        RejectionKind::ResourceExhausted => ApiError::ResourceExhausted(message.to_string()),
    }
}

/// A store's error as the API says it: a full queue is a passing UNAVAILABLE, a concurrent
/// write ABORTED, anything else internal.
pub fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Overloaded(reason) => ApiError::Unavailable(reason),
        StoreError::WrongExpectedVersion { stream, .. } => {
            ApiError::Aborted(format!("{stream} changed concurrently"))
        }
        error => ApiError::Internal(anyhow::Error::new(error).context("event store")),
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

/// The metadata the shell wrote with `recorded` (who, which request, the trace, the schema
/// version); `None` if it does not decode.
pub fn metadata_of(recorded: &RecordedEvent) -> Option<EventMetadata> {
    EventMetadata::decode(recorded.metadata.as_ref()).ok()
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

    /// The platform itself, with no request id (a sweeper's work): the nil organization.
    pub fn system() -> Actor {
        Actor { organization: Uuid::nil(), request_id: None, fingerprint: None }
    }

    /// An id derived from the organization, its request id and `purpose` (a new listing's id,
    /// say), or a new one without a request id. Request ids are each caller's own: another
    /// caller's same id is another request.
    pub fn derive_id(&self, purpose: &str) -> Uuid {
        match &self.request_id {
            Some(request_id) => Uuid::new_v5(
                &REQUEST_NAMESPACE,
                format!("{}/{purpose}/{request_id}", self.organization).as_bytes(),
            ),
            None => Uuid::now_v7(),
        }
    }

    /// The id of the `index`th event this actor's request writes to `stream`, decided on
    /// `version` at the `attempt`th try; a new id without a request id.
    pub fn event_id(
        &self,
        ids: EventIds,
        stream: &StreamName,
        version: Option<u64>,
        attempt: usize,
        index: usize,
    ) -> Uuid {
        match (&self.request_id, ids) {
            (Some(request_id), EventIds::Versioned) => Uuid::new_v5(
                &EVENT_NAMESPACE,
                format!("{}/{request_id}/{stream}/{version:?}/{index}", self.organization).as_bytes(),
            ),
            (Some(_), EventIds::Attempted) => self.derive_id(&format!("{stream}/{attempt}/{index}")),
            (None, _) => Uuid::now_v7(),
        }
    }

    /// The metadata of every event this actor writes: who, which request (and its
    /// fingerprint), the trace of the work in progress ([`symbiose_kit::trace::current`]:
    /// empty when none), and [`SCHEMA_VERSION`].
    pub fn metadata(&self) -> Bytes {
        let trace = symbiose_kit::trace::current();
        Bytes::from(
            EventMetadata {
                request_id: self.request_id.clone().unwrap_or_default(),
                actor_organization_id: self.organization.to_string(),
                // A reaction's cause is the event it reacts to; a command's is the call that
                // carried it, named by its span id (the third part of the `traceparent` the call
                // answered with).
                causation_id: trace
                    .map(|trace| match trace.causation {
                        Some(event) => event.to_string(),
                        None => format!("{:016x}", trace.span_id),
                    })
                    .unwrap_or_default(),
                request_fingerprint: self
                    .fingerprint
                    .map(|fingerprint| fingerprint.to_vec())
                    .unwrap_or_default(),
                correlation_id: trace.map(|trace| trace.correlation_id()).unwrap_or_default(),
                traceparent: trace.map(|trace| trace.traceparent()).unwrap_or_default(),
                schema_version: SCHEMA_VERSION,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_derived_from_a_request_are_pinned_for_good() {
        // A request repeated is recognised by these ids in the store: a change of derivation
        // would apply it twice.
        let organization: Uuid = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".parse().expect("a uuid");
        let actor = Actor::new(organization, "request-1").expect("an actor");
        let stream = stream("proposal", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60".parse().expect("a uuid"));
        assert_eq!(
            actor.event_id(EventIds::Versioned, &stream, Some(3), 0, 0).to_string(),
            "86aef118-8cfd-5919-8745-e1abc3357cfa"
        );
        assert_eq!(
            actor.event_id(EventIds::Versioned, &stream, None, 0, 1).to_string(),
            "28a5295e-325d-547c-a601-25e187471e9b"
        );
        // The attempt does not enter this scheme.
        assert_eq!(
            actor.event_id(EventIds::Versioned, &stream, Some(3), 2, 0),
            actor.event_id(EventIds::Versioned, &stream, Some(3), 0, 0)
        );
    }

    #[test]
    fn ids_derived_from_a_request_are_pinned_for_good() {
        // A request repeated is recognised by these ids (its listing's, its events'): a change
        // of derivation would apply it twice.
        let organization: Uuid = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".parse().expect("a uuid");
        let actor = Actor::new(organization, "request-1").expect("an actor");
        assert_eq!(
            actor.derive_id("listing-0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60/0/0").to_string(),
            "71a4e981-0b6a-50d7-b80d-5d54390ce61a"
        );
        assert_eq!(
            actor.derive_id(&format!("listing/{organization}")).to_string(),
            "4018463c-54a4-57f1-8b2c-0188bcb8ce64"
        );
        // The listings' events' ids are the same derivation, from the stream, the attempt and
        // the index; the version does not enter it.
        let listing = stream("listing", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60".parse().expect("a uuid"));
        for version in [None, Some(7)] {
            assert_eq!(
                actor.event_id(EventIds::Attempted, &listing, version, 0, 0).to_string(),
                "71a4e981-0b6a-50d7-b80d-5d54390ce61a"
            );
        }
    }

    #[test]
    fn every_rejection_kind_keeps_its_status_and_message() {
        use tonic::Code;
        for (kind, code, message) in [
            (RejectionKind::InvalidArgument { field: "terms.side" }, Code::InvalidArgument, "terms.side: no"),
            (RejectionKind::NotFound, Code::NotFound, "no"),
            (RejectionKind::FailedPrecondition, Code::FailedPrecondition, "no"),
            (RejectionKind::PermissionDenied, Code::PermissionDenied, "no"),
            (RejectionKind::ResourceExhausted, Code::ResourceExhausted, "no"),
        ] {
            let status = tonic::Status::from(rejected(kind, "no"));
            assert_eq!((status.code(), status.message()), (code, message), "{kind:?}");
        }
    }

    #[tokio::test]
    async fn the_metadata_carries_the_trace_and_the_schema_version() {
        let actor = Actor::new(Uuid::nil(), "request-1").expect("an actor");
        let decode = |bytes: Bytes| EventMetadata::decode(bytes.as_ref()).expect("metadata");
        let without = decode(actor.metadata());
        assert_eq!(without.schema_version, SCHEMA_VERSION);
        assert_eq!((without.correlation_id.as_str(), without.traceparent.as_str()), ("", ""));
        let cause = Uuid::now_v7();
        let trace = symbiose_kit::trace::TraceContext::new_root().caused_by(cause);
        let with = symbiose_kit::trace::scope(trace, async { decode(actor.metadata()) }).await;
        assert_eq!(with.causation_id, cause.to_string());
        assert_eq!(with.correlation_id, trace.correlation_id());
        assert_eq!(with.traceparent, trace.traceparent());
        assert_eq!(with.request_id, "request-1");
        // A command's events are caused by the call: its span id.
        let call = symbiose_kit::trace::TraceContext::new_root();
        let command = symbiose_kit::trace::scope(call, async { decode(actor.metadata()) }).await;
        assert_eq!(command.causation_id, format!("{:016x}", call.span_id));
        assert_eq!(command.causation_id.len(), 16);
        assert!(command.traceparent.contains(&command.causation_id), "{command:?}");
    }
}
