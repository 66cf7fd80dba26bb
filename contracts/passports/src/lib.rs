//! The events of the passports context as a contract: their type names, the streams they are
//! written to, the typed events of each aggregate (`passport`, `instructions`), their stored
//! form (the messages of `symbiose/passports/v1/events.proto`, which hold no API message) both
//! ways, and the decoding of stored events through [`upcast`] (`decode_recorded` in each
//! module). Other contexts read passports' events through this crate only.
//!
//! It must never do I/O, decide anything, or depend on a service crate: the rules (what a
//! declaration may say, who may write it) stay in `symbiose-passports`, which depends on this
//! crate, never the other way.

pub mod instructions;
pub mod passport;
mod wire;

use symbiose_contract::{Stored, Upcaster};
use symbiose_eventstore::StreamName;
use uuid::Uuid;

pub const PASSPORT_CREATED: &str = "symbiose.passports.v1.PassportCreated";
pub const PASSPORT_AMENDED: &str = "symbiose.passports.v1.PassportAmended";
pub const PASSPORT_PUBLISHED: &str = "symbiose.passports.v1.PassportPublished";
pub const PASSPORT_WITHDRAWN: &str = "symbiose.passports.v1.PassportWithdrawn";
pub const INSTRUCTIONS_PUBLISHED: &str = "symbiose.passports.v1.InstructionsPublished";
pub const INSTRUCTIONS_WITHDRAWN: &str = "symbiose.passports.v1.InstructionsWithdrawn";

/// The category of a passport's stream, `passport-<passport id>`.
pub const PASSPORT_CATEGORY: &str = "passport";
/// The category of a set of instructions' stream, `instructions-<instructions id>`.
pub const INSTRUCTIONS_CATEGORY: &str = "instructions";

/// The steps from an earlier shape of a passports event to the next. None yet: every shape
/// written so far (version 1) is the current one.
pub const UPCASTERS: &[Upcaster] = &[];

/// `stored` (an event of this context with the schema version of its metadata) in the shape
/// the `decode` functions read: versions 0 (written before versions were recorded, which no
/// passports event is) and 1 are the current shape and pass as they are; a version newer than
/// this code knows is an error naming it, so an old binary never misreads a newer event.
pub fn upcast(stored: Stored<'_>) -> Result<Stored<'_>, String> {
    symbiose_contract::upcast(UPCASTERS, stored)
}

/// The stream of the passport `id`: `passport-<id>`.
pub fn passport_stream(id: Uuid) -> StreamName {
    StreamName::for_aggregate(PASSPORT_CATEGORY, id).expect("a category and a uuid make a valid stream name")
}

/// The stream of the instructions `id`: `instructions-<id>`.
pub fn instructions_stream(id: Uuid) -> StreamName {
    StreamName::for_aggregate(INSTRUCTIONS_CATEGORY, id)
        .expect("a category and a uuid make a valid stream name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_named_by_category_and_id() {
        let id = Uuid::now_v7();
        let passport = passport_stream(id);
        assert_eq!(passport.as_str(), format!("passport-{id}"));
        assert_eq!((passport.category(), passport.aggregate_id()), (PASSPORT_CATEGORY, Some(id)));
        let instructions = instructions_stream(id);
        assert_eq!(instructions.as_str(), format!("instructions-{id}"));
        assert_eq!((instructions.category(), instructions.aggregate_id()), (INSTRUCTIONS_CATEGORY, Some(id)));
    }
}
