//! The pure core of settlement: the double-entry ledger that holds buyers' payments in escrow
//! and pays sellers, the VAT regime of a deal, invoices numbered without gaps, and the plans
//! that turn the facts of other services (a deal agreed, a delivery accepted, a deal
//! cancelled, pallets paid for) into ledger commands.
//!
//! - `ledger`: the Ledger aggregate, one per currency: accounts, transfers, two-phase
//!   (pending, then posted or voided) transfers, balances and statements.
//! - `vat`: the standard rates with their legal sources, and the rules that give a deal's
//!   regime (domestic, domestic reverse charge, intra-EU exempt, export) and its VAT amount.
//! - `invoice`: the InvoiceSequence aggregate (one per issuer and year, numbers without gaps)
//!   and the printable `Invoice`.
//! - `escrow`: pure functions from a deal and its facts to ledger commands, with transfer ids
//!   derived from the deal, so a redelivered fact cannot move money twice.
//!
//! Around it, the service: `codec` (the API's form of invoices; the events and their stored form
//! are the contract's, `symbiose-settlement-contract`, named there), `view` (its read model),
//! `treasury` (the shell that executes the plans), `grpc` (the handlers) and `service` (the
//! wiring and the settler, which reacts to deals agreed and cancelled, shipments closed and
//! pallets paid for).
//!
//! The core modules must never do I/O, read the clock or draw random numbers: the caller passes
//! `now_ms`, dates and new ids. It knows no wire type. Money is integer minor units; there is
//! no float anywhere in it.

pub mod codec;
pub mod escrow;
mod grpc;
pub mod invoice;
pub mod ledger;
mod service;
pub mod treasury;
pub mod vat;
pub mod view;

pub use escrow::EscrowPlan;
pub use grpc::{
    DEAL_TRANSFERS_PAGE_SIZE_MAX, INVOICES_PAGE_SIZE_MAX, STATEMENT_PAGE_SIZE_MAX, SettlementApi,
};
pub use invoice::{Invoice, InvoiceSequence};
pub use ledger::{AccountId, AccountKind, Ledger};
pub use service::{SETTLER_NAME, Settler, Settling, react, service, start};
pub use treasury::Treasury;
pub use vat::{Party, Regime, Supply};

/// How a rejection reaches a caller: the shell's one mapping of every aggregate's refusals.
pub use symbiose_shell::RejectionKind;

#[cfg(test)]
mod testing;
