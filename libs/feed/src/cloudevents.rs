//! The CloudEvents NATS binding (binary mode) of a stored event, both ways.
//!
//! A message's body is the event's payload, its protobuf encoding, untouched; its headers are
//! the CloudEvents attributes (`ce-specversion`, `ce-id`, `ce-source`, `ce-type`, `ce-subject`,
//! `ce-time`), `content-type: application/protobuf`, `Nats-Msg-Id` (the event id, for
//! JetStream's duplicate window), and extension attributes of Symbiose: the event's version in
//! its stream, its position in the log it was relayed from, its metadata, and from the
//! metadata its trace (`ce-causationid`, `ce-correlationid`, and `ce-traceparent` of the
//! CloudEvents distributed tracing extension), each only when the event has it.

use async_nats::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use symbiose_eventstore::{Position, RecordedEvent, StreamName};
use symbiose_kit::trace::EventTrace;
use uuid::Uuid;

use crate::route::{self, Route};

pub const SPECVERSION: &str = "ce-specversion";
pub const ID: &str = "ce-id";
pub const SOURCE: &str = "ce-source";
pub const TYPE: &str = "ce-type";
/// The aggregate stream the event belongs to (`organization-0199...`).
pub const SUBJECT: &str = "ce-subject";
pub const TIME: &str = "ce-time";
pub const CONTENT_TYPE: &str = "content-type";
/// Extension: the event's version in its stream, from 0.
pub const STREAM_VERSION: &str = "ce-streamversion";
/// Extension: the event's position in the log of the service that relayed it, from 0.
pub const LOG_POSITION: &str = "ce-logposition";
/// Extension: the event's metadata (`symbiose.common.v1.EventMetadata`), base64, when it has
/// any.
pub const EVENT_METADATA: &str = "ce-eventmetadata";
/// Extension: the id of the event this one reacts to, when it is a reaction.
pub const CAUSATION_ID: &str = "ce-causationid";
/// Extension: the correlation id of the user action the event belongs to (a W3C trace id).
pub const CORRELATION_ID: &str = "ce-correlationid";
/// Extension (CloudEvents distributed tracing): the W3C `traceparent` the event was written in.
pub const TRACEPARENT: &str = "ce-traceparent";
/// JetStream's duplicate detection key.
pub const NATS_MSG_ID: &str = "Nats-Msg-Id";

pub const SPECVERSION_VALUE: &str = "1.0";
pub const CONTENT_TYPE_PROTOBUF: &str = "application/protobuf";

/// The headers of `event` relayed on `route`.
pub fn headers(event: &RecordedEvent, route: &Route) -> HeaderMap {
    let id = event.id.to_string();
    let mut headers = HeaderMap::new();
    headers.insert(NATS_MSG_ID, id.as_str());
    headers.insert(SPECVERSION, SPECVERSION_VALUE);
    headers.insert(ID, id);
    headers.insert(SOURCE, route::source(&route.context));
    headers.insert(TYPE, event.event_type.as_str());
    headers.insert(SUBJECT, event.stream.as_str());
    headers.insert(TIME, rfc3339(event.timestamp_ms));
    headers.insert(CONTENT_TYPE, CONTENT_TYPE_PROTOBUF);
    headers.insert(STREAM_VERSION, event.version.to_string());
    headers.insert(LOG_POSITION, event.position.to_string());
    if !event.metadata.is_empty() {
        headers.insert(EVENT_METADATA, BASE64.encode(&event.metadata));
        let trace = EventTrace::of_metadata(&event.metadata);
        for (name, value) in [
            (CAUSATION_ID, trace.causation_id),
            (CORRELATION_ID, trace.correlation_id),
            (TRACEPARENT, trace.traceparent),
        ] {
            // Ids and hex digits as the shell writes them: anything else would not be a
            // header value, and stays in the metadata only.
            if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_graphic()) {
                headers.insert(name, value);
            }
        }
    }
    headers
}

/// The event a relayed message carries, or why it is not one.
pub fn event(headers: Option<&HeaderMap>, payload: Bytes) -> Result<RecordedEvent, String> {
    let headers = headers.ok_or("the message has no headers")?;
    let text = |name: &str| -> Result<&str, String> {
        headers.get(name).map(|value| value.as_str()).ok_or_else(|| format!("no {name} header"))
    };
    let number = |name: &str| -> Result<u64, String> {
        text(name)?.parse().map_err(|_| format!("{name} is not a number"))
    };
    if text(SPECVERSION)? != SPECVERSION_VALUE {
        return Err(format!("{SPECVERSION} is not {SPECVERSION_VALUE}"));
    }
    let id = Uuid::parse_str(text(ID)?).map_err(|_| format!("{ID} is not a uuid"))?;
    let stream = StreamName::new(text(SUBJECT)?).map_err(|error| format!("{SUBJECT}: {error}"))?;
    let metadata = match headers.get(EVENT_METADATA) {
        Some(value) => {
            BASE64.decode(value.as_str()).map_err(|_| format!("{EVENT_METADATA} is not base64"))?.into()
        }
        None => Bytes::new(),
    };
    Ok(RecordedEvent {
        id,
        event_type: text(TYPE)?.to_owned(),
        stream,
        version: number(STREAM_VERSION)?,
        position: Position::from_u64(number(LOG_POSITION)?),
        timestamp_ms: ms_from_rfc3339(text(TIME)?).ok_or_else(|| format!("{TIME} is not RFC 3339"))?,
        metadata,
        payload,
    })
}

/// The position a relayed message carries, if it carries one.
pub fn log_position(headers: Option<&HeaderMap>) -> Option<u64> {
    headers?.get(LOG_POSITION)?.as_str().parse().ok()
}

/// `2025-01-31T09:30:00.123Z`.
pub fn rfc3339(timestamp_ms: u64) -> String {
    let seconds = i64::try_from(timestamp_ms / 1000).unwrap_or(i64::MAX);
    let nanos = i32::try_from(timestamp_ms % 1000).unwrap_or(0) * 1_000_000;
    prost_types::Timestamp { seconds, nanos }.to_string()
}

fn ms_from_rfc3339(text: &str) -> Option<u64> {
    let timestamp: prost_types::Timestamp = text.parse().ok()?;
    let seconds = u64::try_from(timestamp.seconds).ok()?;
    let ms = u64::try_from(timestamp.nanos).ok()? / 1_000_000;
    seconds.checked_mul(1000)?.checked_add(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(metadata: &'static [u8]) -> RecordedEvent {
        RecordedEvent {
            id: Uuid::now_v7(),
            event_type: "symbiose.listings.v1.SiteAdded".to_owned(),
            stream: StreamName::new("organization-0199").expect("valid"),
            version: 3,
            position: Position::from_u64(41),
            timestamp_ms: 1_738_315_800_123,
            metadata: Bytes::from_static(metadata),
            payload: Bytes::from_static(b"\x0a\x03abc"),
        }
    }

    #[test]
    fn the_headers_follow_the_cloudevents_nats_binding() {
        let event = recorded(b"");
        let route = route::route(&event.event_type).expect("routed");
        let headers = headers(&event, &route);
        let get = |name: &str| headers.get(name).map(|value| value.as_str().to_owned());
        assert_eq!(get(SPECVERSION).as_deref(), Some("1.0"));
        assert_eq!(get(ID), Some(event.id.to_string()));
        assert_eq!(get(NATS_MSG_ID), Some(event.id.to_string()));
        assert_eq!(get(SOURCE).as_deref(), Some("/symbiose/listings"));
        assert_eq!(get(TYPE).as_deref(), Some("symbiose.listings.v1.SiteAdded"));
        assert_eq!(get(SUBJECT).as_deref(), Some("organization-0199"));
        assert_eq!(get(TIME).as_deref(), Some("2025-01-31T09:30:00.123Z"));
        assert_eq!(get(CONTENT_TYPE).as_deref(), Some("application/protobuf"));
        assert_eq!(get(STREAM_VERSION).as_deref(), Some("3"));
        assert_eq!(get(LOG_POSITION).as_deref(), Some("41"));
        assert_eq!(get(EVENT_METADATA), None);
        assert_eq!(get(TRACEPARENT), None);
    }

    #[test]
    fn the_trace_of_the_metadata_travels_as_extensions() {
        use prost::Message as _;
        let (causation, correlation) = (Uuid::now_v7().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let traceparent = format!("00-{correlation}-00f067aa0ba902b7-01");
        let metadata = symbiose_proto::common::v1::EventMetadata {
            causation_id: causation.clone(),
            correlation_id: correlation.to_owned(),
            traceparent: traceparent.clone(),
            ..Default::default()
        };
        let mut event = recorded(b"");
        event.metadata = metadata.encode_to_vec().into();
        let route = route::route(&event.event_type).expect("routed");
        let headers = headers(&event, &route);
        let get = |name: &str| headers.get(name).map(|value| value.as_str().to_owned());
        assert_eq!(get(CAUSATION_ID), Some(causation));
        assert_eq!(get(CORRELATION_ID).as_deref(), Some(correlation));
        assert_eq!(get(TRACEPARENT), Some(traceparent));
        assert_eq!(super::event(Some(&headers), event.payload.clone()), Ok(event.clone()));

        // Old metadata, without a trace: no extension rather than an empty one.
        let headers = headers_of(&recorded(b"\x0a\x02r1"));
        assert!([CAUSATION_ID, CORRELATION_ID, TRACEPARENT].iter().all(|name| headers.get(*name).is_none()));
    }

    fn headers_of(event: &RecordedEvent) -> HeaderMap {
        headers(event, &route::route(&event.event_type).expect("routed"))
    }

    #[test]
    fn a_message_gives_back_the_event() {
        for metadata in [&b""[..], &b"\x0a\x02r1"[..]] {
            let event = recorded(metadata);
            let route = route::route(&event.event_type).expect("routed");
            let headers = headers(&event, &route);
            assert_eq!(super::event(Some(&headers), event.payload.clone()), Ok(event.clone()));
            assert_eq!(log_position(Some(&headers)), Some(41));
        }
    }

    #[test]
    fn a_message_without_the_headers_is_refused_naming_what_is_missing() {
        let error = event(None, Bytes::new()).expect_err("no headers");
        assert_eq!(error, "the message has no headers");
        let mut headers = HeaderMap::new();
        headers.insert(SPECVERSION, "1.0");
        let error = event(Some(&headers), Bytes::new()).expect_err("no id");
        assert_eq!(error, "no ce-id header");
    }
}
