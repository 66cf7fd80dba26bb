//! The pure core of matching: which open offers and requests fit together, how well, and which
//! small offers near each other make one pickup for a large request.
//!
//! - `candidate`: the matching view of one published, open listing.
//! - `rules`: the compatibility rules, one function, one `Mismatch` variant per rule.
//! - `score`: how well a compatible pair fits (distance and transport CO2, price, quantity,
//!   timing), each component shown.
//! - `index`: `MatchIndex`, the open candidates in bounded trees per side and material, and
//!   `find`, the best compatible counterparts of a listing, exactly.
//! - `consolidation`: several small offers close together as one pickup for a large request.
//!
//! No I/O, no clock, no randomness: the caller passes `now_ms`, the candidates and the permits.

pub mod candidate;
pub mod codec;
pub mod consolidation;
pub mod deal;
mod grpc;
pub mod index;
pub mod matchmaker;
pub mod proposal;
pub mod reservations;
pub mod rules;
pub mod score;
mod service;
pub mod view;

pub use candidate::Candidate;
pub use consolidation::Consolidation;
pub use grpc::{LIST_PAGE_SIZE_MAX, MatchingApi};
pub use index::{Match, MatchIndex};
pub use matchmaker::Matchmaker;
pub use reservations::{ListingsReservations, RemoteReservations, Reservations};
pub use rules::{Fit, Mismatch, RequiredDocument};
pub use score::Score;
pub use service::{DELIVERER_NAME, Deliverer, PROPOSER_NAME, Proposer, Proposing, react, service, start};

#[cfg(test)]
mod testing;
