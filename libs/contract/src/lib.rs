//! What every context's event contract (`contracts/*`) shares.
//!
//! An event is stored as a type name (`symbiose.listings.v1.ListingCreated`), a protobuf payload
//! and an `EventMetadata` whose `schema_version` says which shape of the type the payload has.
//! A contract decodes a stored event in two steps: [`upcast`] brings the payload from the shape
//! it was written in to the current one, through the contract's [`Upcaster`]s, one version at
//! a time; then the current shape is decoded into the typed event. Old events are never
//! rewritten: they are read through the chain, every time.
//!
//! How an event changes shape:
//! - adding a field (a new number) needs nothing: older payloads decode with its default, and
//!   the decoding says what that default means;
//! - renaming a field keeps its number: the bytes do not change;
//! - anything else (a field's meaning, unit or type changes, a field splits, a message is
//!   replaced) raises [`SCHEMA_VERSION`] and adds, in the contract of the event's context, an
//!   upcaster from the previous version of that type to the new one, with a test that decodes
//!   a payload written in the previous shape. A field's number is never reused.
//!
//! Version 0 is every event written before versions were recorded; its shapes are those of
//! version 1 (the split of the events from the API messages kept every field's number and type).

use std::borrow::Cow;

use prost::Message as _;
use symbiose_eventstore::RecordedEvent;
use symbiose_proto::common::v1::EventMetadata;

/// The shape version every event is written in today.
pub const SCHEMA_VERSION: u32 = 1;

/// An event as the store holds it: its type, the version of its shape, its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<'a> {
    pub event_type: &'a str,
    pub schema_version: u32,
    pub payload: Cow<'a, [u8]>,
}

impl<'a> Stored<'a> {
    /// `recorded` with the version its metadata names (0 when it names none).
    pub fn of(recorded: &'a RecordedEvent) -> Stored<'a> {
        Stored {
            event_type: &recorded.event_type,
            schema_version: metadata(recorded).schema_version,
            payload: Cow::Borrowed(recorded.payload.as_ref()),
        }
    }

    /// A payload of the current shape.
    pub fn current(event_type: &'a str, payload: &'a [u8]) -> Stored<'a> {
        Stored { event_type, schema_version: SCHEMA_VERSION, payload: Cow::Borrowed(payload) }
    }
}

/// The metadata of `recorded`; empty (every field its default) when it has none or it does
/// not decode.
pub fn metadata(recorded: &RecordedEvent) -> EventMetadata {
    EventMetadata::decode(recorded.metadata.as_ref()).unwrap_or_default()
}

/// One step of a type's shape: a payload of `from_version` into one of `from_version + 1`.
#[derive(Debug, Clone, Copy)]
pub struct Upcaster {
    pub event_type: &'static str,
    pub from_version: u32,
    pub upcast: fn(&[u8]) -> Result<Vec<u8>, String>,
}

/// `stored` in the current shape: each upcaster of its type from its version on, in turn;
/// versions without one for the type kept the same shape. A version newer than this code
/// knows is refused, naming it: an old binary never misreads a newer shape.
pub fn upcast<'a>(upcasters: &[Upcaster], mut stored: Stored<'a>) -> Result<Stored<'a>, String> {
    if stored.schema_version > SCHEMA_VERSION {
        return Err(format!(
            "{}: schema version {} is newer than this service knows ({SCHEMA_VERSION})",
            stored.event_type, stored.schema_version
        ));
    }
    while stored.schema_version < SCHEMA_VERSION {
        if let Some(upcaster) = upcasters.iter().find(|upcaster| {
            upcaster.event_type == stored.event_type && upcaster.from_version == stored.schema_version
        }) {
            let payload = (upcaster.upcast)(&stored.payload).map_err(|error| {
                format!("{} from schema version {}: {error}", stored.event_type, stored.schema_version)
            })?;
            stored.payload = Cow::Owned(payload);
        }
        stored.schema_version += 1;
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doubled(payload: &[u8]) -> Result<Vec<u8>, String> {
        if payload.is_empty() {
            return Err("empty".to_owned());
        }
        Ok(payload.iter().flat_map(|byte| [*byte, *byte]).collect())
    }

    #[test]
    fn an_old_payload_goes_through_its_type_s_upcasters_and_others_stay() {
        let upcasters = [Upcaster { event_type: "a.v1.Thing", from_version: 0, upcast: doubled }];
        let old = Stored { event_type: "a.v1.Thing", schema_version: 0, payload: Cow::Borrowed(&[1, 2]) };
        let upcast_old = upcast(&upcasters, old).expect("upcast");
        assert_eq!(
            (upcast_old.schema_version, upcast_old.payload.as_ref()),
            (SCHEMA_VERSION, &[1, 1, 2, 2][..])
        );
        // Another type of the same version kept its shape.
        let other = Stored { event_type: "a.v1.Other", schema_version: 0, payload: Cow::Borrowed(&[1, 2]) };
        assert_eq!(upcast(&upcasters, other).expect("upcast").payload.as_ref(), &[1, 2]);
        // The current version is not upcast again.
        let current = Stored::current("a.v1.Thing", &[7]);
        assert_eq!(upcast(&upcasters, current).expect("upcast").payload.as_ref(), &[7]);
        // A failing step names the type and the version.
        let empty = Stored { event_type: "a.v1.Thing", schema_version: 0, payload: Cow::Borrowed(&[]) };
        assert_eq!(upcast(&upcasters, empty), Err("a.v1.Thing from schema version 0: empty".to_owned()));
        // A newer shape than this code knows is refused.
        let newer = Stored {
            event_type: "a.v1.Thing",
            schema_version: SCHEMA_VERSION + 1,
            payload: Cow::Borrowed(&[]),
        };
        assert_eq!(
            upcast(&upcasters, newer),
            Err(format!(
                "a.v1.Thing: schema version {} is newer than this service knows ({SCHEMA_VERSION})",
                SCHEMA_VERSION + 1
            ))
        );
    }
}
