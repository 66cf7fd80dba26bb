//! The conversions every stored event of settlement shares.

use symbiose_proto::convert::{FieldError, ms_from_timestamp};

/// A stored time in ms since the epoch; 0 when absent.
pub(crate) fn ms(timestamp: Option<&prost_types::Timestamp>, field: &str) -> Result<i64, FieldError> {
    timestamp.map_or(Ok(0), |at| ms_from_timestamp(at, field))
}

/// The error of decoding `event_type`'s payload.
pub(crate) fn bad(event_type: &str) -> impl Fn(prost::DecodeError) -> String + '_ {
    move |error| format!("{event_type}: {error}")
}

/// The error of a field of `event_type`.
pub(crate) fn field(event_type: &str) -> impl Fn(FieldError) -> String + '_ {
    move |error| format!("{event_type}: {error}")
}
