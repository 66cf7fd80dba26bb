//! The value types of the marketplace: waste codes from the European List of Waste, quantities,
//! money, places and distances, countries, company identifiers and material families. Each type
//! is parsed once from untrusted input and cannot hold a bad value afterwards, so the services
//! built on it check nothing twice.
//!
//! This crate must never do I/O, read the clock, or depend on the wire format: its reference
//! data is compiled in with `include_str!`, and the services convert protobuf messages into
//! these types at their edges. Money and quantities are integers, never floats.

pub mod country;
pub mod freight;
pub mod geo;
pub mod identifier;
pub mod input;
pub mod lot;
pub mod material;
pub mod money;
pub mod quantity;
pub mod role;
pub mod waste;

pub use country::{Country, CountryError};
pub use geo::{GeoError, GeoPoint, Place};
pub use identifier::{Identifier, IdentifierError, IdentifierKind};
pub use material::{Labels, MaterialFamily, MaterialGroup, PalletGrade};
pub use money::{Currency, Money, MoneyError};
pub use quantity::{Dimension, Quantity, QuantityError, Unit};
pub use role::{Role, UnknownRole};
pub use waste::{EntryType, WasteCode, WasteCodeEntry, WasteCodeError, WasteFilter};

mod csv;
