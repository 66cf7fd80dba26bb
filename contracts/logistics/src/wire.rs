//! The conversions every stored event of logistics shares: times, countries, places, grades.

use symbiose_domain::{Country, PalletGrade};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{FieldError, ms_from_timestamp};
use symbiose_proto::listings::v1 as listings;

/// A stored time in ms since the epoch; 0 when absent.
pub(crate) fn ms(timestamp: Option<&prost_types::Timestamp>, field: &str) -> Result<i64, FieldError> {
    timestamp.map_or(Ok(0), |at| ms_from_timestamp(at, field))
}

pub(crate) fn country_to_wire(country: Country) -> i32 {
    common::Country::from(country).into()
}

/// A pallet grade as the shared vocabulary of `listings.proto` names it (stored events and the
/// API alike).
pub fn grade_to_wire(grade: PalletGrade) -> i32 {
    match grade {
        PalletGrade::New => listings::PalletGrade::New,
        PalletGrade::A => listings::PalletGrade::A,
        PalletGrade::B => listings::PalletGrade::B,
        PalletGrade::C => listings::PalletGrade::C,
        PalletGrade::Unsorted => listings::PalletGrade::Unsorted,
    }
    .into()
}

/// A pallet grade from the shared vocabulary; unspecified or unknown is an error on `field`.
pub fn grade_from_wire(value: i32, field: &str) -> Result<PalletGrade, FieldError> {
    match listings::PalletGrade::try_from(value) {
        Ok(listings::PalletGrade::New) => Ok(PalletGrade::New),
        Ok(listings::PalletGrade::A) => Ok(PalletGrade::A),
        Ok(listings::PalletGrade::B) => Ok(PalletGrade::B),
        Ok(listings::PalletGrade::C) => Ok(PalletGrade::C),
        Ok(listings::PalletGrade::Unsorted) => Ok(PalletGrade::Unsorted),
        Ok(listings::PalletGrade::Unspecified) => Err(FieldError::required(field)),
        Err(_) => Err(FieldError::new(field, format!("{value} is not a pallet grade"))),
    }
}

/// The error of decoding `event_type`'s payload.
pub(crate) fn bad(event_type: &str) -> impl Fn(prost::DecodeError) -> String + '_ {
    move |error| format!("{event_type}: {error}")
}

/// The error of a field of `event_type`.
pub(crate) fn field(event_type: &str) -> impl Fn(FieldError) -> String + '_ {
    move |error| format!("{event_type}: {error}")
}
