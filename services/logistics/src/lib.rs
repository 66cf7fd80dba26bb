//! The pure core of logistics: carrier profiles, automatic quotes, shipments from booking to
//! closure, pallet accounts and the data of the Annex VII document of a cross-border shipment.
//!
//! - `carrier`: the Carrier profile aggregate (depots, countries, radius, vehicles, rates).
//! - `quote`: the load of a deal and the quote a carrier's profile gives for it (price, time,
//!   CO2 with its emission factor).
//! - `shipment`: the Shipment aggregate, booked -> picked up -> (borders crossed) -> delivered
//!   -> closed.
//! - `pallets`: the pallet accounts between two organizations, per grade, and their settlement.
//! - `annex_vii`: the information document of green-listed waste crossing a border, as text
//!   or PDF.
//!
//! Around it, the service: `transport` (the transport request of an agreed deal and its
//! quotes), `codec` (the API's form; the events and their stored form are the contract's,
//! `symbiose-logistics-contract`, named there), `view` (the service's read model), `desk` (the
//! application shell), `contacts` (the port to the directory's contacts, for the Annex VII
//! document), `grpc` (the handlers) and `service` (the wiring and the transport
//! opener, which reacts to `DealAgreed`).
//!
//! The core modules must never do I/O, read the clock or draw random numbers: the caller passes
//! `now_ms` and new ids. It knows no wire type. Money and quantities are integers; only
//! distances and CO2 estimates are floats.

pub mod annex_vii;
pub mod carrier;
pub mod codec;
pub mod contacts;
pub mod desk;
mod grpc;
pub mod pallets;
pub mod payments;
pub mod quote;
mod service;
pub mod shipment;
pub mod transport;
pub mod view;

pub use annex_vii::AnnexVii;
pub use carrier::{Carrier, CarrierState};
pub use contacts::{ListingsContacts, OrganizationContacts, RemoteContacts};
pub use desk::Logistics;
pub use grpc::{LogisticsApi, QUOTES_PAGE_SIZE_MAX};
pub use pallets::PalletLedger;
pub use payments::{PalletPayments, RemotePayments, SettlementPayments};
pub use quote::{EmissionFactor, Load, Quote};
pub use service::{Opening, TRANSPORT_OPENER_NAME, TransportOpener, react, service, start};
pub use shipment::{Shipment, ShipmentState};

/// How a rejection reaches a caller: the shell's one mapping of every aggregate's refusals.
pub use symbiose_shell::RejectionKind;

#[cfg(test)]
mod testing;
