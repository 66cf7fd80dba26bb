//! The events of the settlement context as a contract: their type names, the typed events of
//! each aggregate (`ledger`, `escrow`, `invoice`) with the VAT vocabulary they record (`vat`),
//! their stored form (the messages of `symbiose/settlement/v1/events.proto`, which hold no API
//! message) both ways, and the decoding of stored events through [`upcast`] (`decode_recorded`
//! in each module). Other contexts read settlement's events through this crate only
//! (logistics: the escrows held, by [`ESCROW_HELD`]).
//!
//! It must never do I/O, decide anything, or depend on a service crate: the rules stay in
//! `symbiose-settlement`, which depends on this crate, never the other way.

pub mod escrow;
pub mod invoice;
pub mod ledger;
pub mod vat;
mod wire;

use symbiose_contract::{Stored, Upcaster};

pub const TRANSFERRED: &str = "symbiose.settlement.v1.Transferred";
pub const PENDING_CREATED: &str = "symbiose.settlement.v1.PendingCreated";
pub const PENDING_POSTED: &str = "symbiose.settlement.v1.PendingPosted";
pub const PENDING_VOIDED: &str = "symbiose.settlement.v1.PendingVoided";
pub const ESCROW_HELD: &str = "symbiose.settlement.v1.EscrowHeld";
pub const ESCROW_REFUSED: &str = "symbiose.settlement.v1.EscrowRefused";
pub const ESCROW_RELEASED: &str = "symbiose.settlement.v1.EscrowReleased";
pub const ESCROW_CANCELLED: &str = "symbiose.settlement.v1.EscrowCancelled";
pub const INVOICE_ISSUED: &str = "symbiose.settlement.v1.InvoiceIssued";

/// The steps from an earlier shape of a settlement event to the next. None yet: every shape
/// written so far (versions 0 and 1) is the current one.
pub const UPCASTERS: &[Upcaster] = &[];

/// `stored` (an event of this context with the schema version of its metadata) in the shape
/// the `decode` functions read: versions 0 (written before versions were recorded) and 1 are
/// the current shape and pass as they are; a version newer than this code knows is an error
/// naming it, so an old binary never misreads a newer event.
pub fn upcast(stored: Stored<'_>) -> Result<Stored<'_>, String> {
    symbiose_contract::upcast(UPCASTERS, stored)
}
