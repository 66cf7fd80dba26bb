//! The conversions every stored event of passports shares.

use symbiose_domain::WasteCode;
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{FieldError, ms_from_timestamp};

use crate::passport::Texts;

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

/// A text in its stored form, every language written ("" for one not given).
pub(crate) fn texts_to_stored(texts: &Texts) -> common::LocalizedText {
    common::LocalizedText { en: texts.en.clone(), fr: texts.fr.clone(), de: texts.de.clone() }
}

/// A text from its stored form; absent is no language given.
pub(crate) fn texts_from_stored(text: Option<common::LocalizedText>) -> Texts {
    let text = text.unwrap_or_default();
    Texts { en: text.en, fr: text.fr, de: text.de }
}

/// A waste code from its stored form; `field` names it. The hazardous flag is not read: the
/// code decides it.
pub(crate) fn waste_code_from_stored(code: &common::WasteCode, field: &str) -> Result<WasteCode, FieldError> {
    WasteCode::parse(&code.code).map_err(|error| FieldError::new(field, error))
}

/// An optional text from its stored form, where "" is none.
pub(crate) fn optional(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}
