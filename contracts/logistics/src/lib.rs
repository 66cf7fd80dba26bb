//! The events of the logistics context as a contract: their type names, the typed events of
//! each aggregate (`carrier`, `transport`, `shipment`, `pallets`), their stored form (the
//! messages of `symbiose/logistics/v1/events.proto`, which hold no API message) both ways, and
//! the decoding of stored events through [`upcast`] (`decode_recorded` in each module). Other
//! contexts read logistics' events through this crate only, with the facts they act on:
//! `shipment::StoredShipmentEvent::closed` and `picked_up`, `pallets::Settlement::payment`.
//!
//! It must never do I/O, decide anything, or depend on a service crate: the rules stay in
//! `symbiose-logistics`, which depends on this crate, never the other way.

pub mod carrier;
pub mod pallets;
pub mod shipment;
pub mod transport;
mod wire;

use symbiose_contract::{Stored, Upcaster};

pub use wire::{grade_from_wire, grade_to_wire};

pub const CARRIER_REGISTERED: &str = "symbiose.logistics.v1.CarrierRegistered";
pub const CARRIER_UPDATED: &str = "symbiose.logistics.v1.CarrierUpdated";
pub const TRANSPORT_REQUESTED: &str = "symbiose.logistics.v1.TransportRequested";
pub const QUOTE_SUBMITTED: &str = "symbiose.logistics.v1.QuoteSubmitted";
pub const SHIPMENT_BOOKED: &str = "symbiose.logistics.v1.ShipmentBooked";
pub const SHIPMENT_PICKED_UP: &str = "symbiose.logistics.v1.ShipmentPickedUp";
pub const BORDER_CROSSED: &str = "symbiose.logistics.v1.BorderCrossed";
pub const SHIPMENT_DELIVERED: &str = "symbiose.logistics.v1.ShipmentDelivered";
pub const SHIPMENT_CLOSED: &str = "symbiose.logistics.v1.ShipmentClosed";
pub const PALLET_BALANCE_SETTLED: &str = "symbiose.logistics.v1.PalletBalanceSettled";

/// The steps from an earlier shape of a logistics event to the next. None yet: every shape
/// written so far (versions 0 and 1) is the current one.
pub const UPCASTERS: &[Upcaster] = &[];

/// `stored` (an event of this context with the schema version of its metadata) in the shape
/// the `decode` functions read: versions 0 (written before versions were recorded) and 1 are
/// the current shape and pass as they are; a version newer than this code knows is an error
/// naming it, so an old binary never misreads a newer event.
pub fn upcast(stored: Stored<'_>) -> Result<Stored<'_>, String> {
    symbiose_contract::upcast(UPCASTERS, stored)
}
