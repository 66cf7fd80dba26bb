//! The contract of the listings context: the events of the directory (organizations, their
//! legal identifiers and tokens) and of the listings, as every other context reads them.
//!
//! - [`listing`] and [`organization`]: the typed events and the folds other contexts use (a
//!   listing's state, an organization's public record);
//! - the stored form: [`encode_listing_event`], [`decode_listing_event`] and their organization
//!   twins, on the `Stored*` messages of `symbiose.listings.v1` (never an API message);
//! - [`decode_recorded_listing`], [`decode_recorded_organization`]: a recorded event of any
//!   shape it was written in, brought to the current one by the [`upcasters`] first;
//! - [`vocabulary`]: the enums shared by the API and the events, mapped once;
//! - [`revoked_token`]: what every server that checks tokens follows.
//!
//! A service depends on this crate, never on the listings service.

pub mod listing;
pub mod organization;
mod stored;
pub mod vocabulary;

use std::collections::HashMap;

use prost::Message as _;
use symbiose_contract::Stored;
use symbiose_eventstore::RecordedEvent;
use uuid::Uuid;

pub use stored::{
    decode_listing_event, decode_organization_event, encode_listing_event, encode_organization_event,
};

/// The type names of the context's events: the full names of their messages, which are also
/// their CloudEvents `type` and, in snake case, their NATS subject.
pub mod event_types {
    pub const ORGANIZATION_REGISTERED: &str = "symbiose.listings.v1.OrganizationRegistered";
    pub const SITE_ADDED: &str = "symbiose.listings.v1.SiteAdded";
    pub const SITE_UPDATED: &str = "symbiose.listings.v1.SiteUpdated";
    pub const ROLES_SET: &str = "symbiose.listings.v1.RolesSet";
    pub const PERMIT_ADDED: &str = "symbiose.listings.v1.PermitAdded";
    pub const CONTACTS_SET: &str = "symbiose.listings.v1.ContactsSet";
    pub const CONTACTS_ERASED: &str = "symbiose.listings.v1.ContactsErased";
    pub const LEGAL_IDENTIFIER_CLAIMED: &str = "symbiose.listings.v1.LegalIdentifierClaimed";
    pub const TOKEN_ISSUED: &str = "symbiose.listings.v1.TokenIssued";
    pub const TOKEN_REVOKED: &str = "symbiose.listings.v1.TokenRevoked";
    pub const LISTING_CREATED: &str = "symbiose.listings.v1.ListingCreated";
    pub const LISTING_AMENDED: &str = "symbiose.listings.v1.ListingAmended";
    pub const LISTING_PUBLISHED: &str = "symbiose.listings.v1.ListingPublished";
    pub const LISTING_WITHDRAWN: &str = "symbiose.listings.v1.ListingWithdrawn";
    pub const LISTING_EXPIRED: &str = "symbiose.listings.v1.ListingExpired";
    pub const LISTING_FULFILLED: &str = "symbiose.listings.v1.ListingFulfilled";
    pub const QUANTITY_RESERVED: &str = "symbiose.listings.v1.QuantityReserved";
    pub const RESERVATION_RELEASED: &str = "symbiose.listings.v1.ReservationReleased";
    pub const DELIVERY_CONFIRMED: &str = "symbiose.listings.v1.DeliveryConfirmed";
}

/// The steps from each earlier shape of an event of this context to the next
/// (`symbiose_contract` says when one is needed). None yet: every event of schema version 0
/// has the shape of version 1.
pub mod upcasters {
    use symbiose_contract::Upcaster;

    pub const UPCASTERS: &[Upcaster] = &[];
}

/// The listing event `recorded` holds, whatever shape it was written in.
pub fn decode_recorded_listing(recorded: &RecordedEvent) -> Result<listing::Event, String> {
    let stored = stored::current(Stored::of(recorded))?;
    decode_listing_event(stored.event_type, &stored.payload)
}

/// The organization event `recorded` holds, whatever shape it was written in.
pub fn decode_recorded_organization(recorded: &RecordedEvent) -> Result<organization::Event, String> {
    let stored = stored::current(Stored::of(recorded))?;
    decode_organization_event(stored.event_type, &stored.payload)
}

/// Folds the organization event `recorded` into `organizations`, as every other context keeps
/// the directory: public records, without contacts ([`organization::fold_public`]).
pub fn fold_public_recorded(
    organizations: &mut HashMap<Uuid, organization::Organization>,
    recorded: &RecordedEvent,
) -> Result<(), String> {
    let id = recorded
        .stream
        .aggregate_id()
        .ok_or_else(|| format!("{}: not an organization's stream", recorded.stream))?;
    organization::fold_public(organizations, id, &decode_recorded_organization(recorded)?);
    Ok(())
}

/// The token a `TokenRevoked` event revokes; `None` for any other event (or a damaged one).
/// Every server that checks tokens follows these, the catalog's replicas included.
pub fn revoked_token(recorded: &RecordedEvent) -> Option<Uuid> {
    if recorded.event_type != event_types::TOKEN_REVOKED {
        return None;
    }
    let revoked = symbiose_proto::listings::v1::TokenRevoked::decode(recorded.payload.as_ref()).ok()?;
    Uuid::parse_str(&revoked.token_id).ok()
}
