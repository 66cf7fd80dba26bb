//! The files of an import: CSV (a header row, RFC 4180 quoting) or JSON lines (one flat object
//! a line, the same keys), each line turned into `ListingTerms` and checked by the very
//! conversion `CreateListing` uses, so a refusal names the field `CreateListing` would name.
//! No I/O: the handler gathers the bytes, the market applies the lines.
//!
//! A file over a limit, or a CSV header that names an unknown column or lacks a required one,
//! is refused whole; any other fault refuses its line only.

use std::borrow::Cow;

use symbiose_domain::{Currency, MaterialFamily, Quantity, Unit};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::FieldError;
use symbiose_proto::listings::v1 as pb;

use crate::listing::Terms;
use crate::listing_codec::terms_from_wire;

/// Largest file an import takes, in bytes.
pub(crate) const IMPORT_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Most listing lines in one file (a CSV header and blank lines not counted).
pub(crate) const IMPORT_LINES_MAX: usize = 200_000;
/// Longest line of a file, in bytes.
pub(crate) const IMPORT_LINE_BYTES_MAX: usize = 16 * 1024;
/// Longest import id, in bytes.
pub(crate) const IMPORT_ID_BYTES_MAX: usize = 64;
/// Refused lines an answer details; the others are counted.
pub(crate) const IMPORT_REFUSALS_MAX: usize = 10_000;

/// The field a whole-file error names: the bytes sent.
const FILE_FIELD: &str = "chunk";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    JsonLines,
}

/// One listing line of a file: its number (from 1, in the file) and its terms, or why they
/// are refused.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) number: u32,
    pub(crate) terms: Result<Terms, FieldError>,
}

/// The columns of a file, in the order the documentation gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Side,
    Family,
    WasteCode,
    LegalStatus,
    Description,
    Quantity,
    Unit,
    MinimumLot,
    PricePerUnit,
    Currency,
    SiteId,
    AvailableFrom,
    AvailableUntil,
    ExpiresAt,
    Delivery,
    SellerDeliveryKm,
    MaxDistanceKm,
    AcceptsOtherCountries,
    RecurrenceDays,
    PalletGrade,
    Polymer,
    PlasticForm,
    Specification,
    DataQuality,
}

const COLUMN_COUNT: usize = 24;

impl Column {
    const ALL: [Column; COLUMN_COUNT] = [
        Column::Side,
        Column::Family,
        Column::WasteCode,
        Column::LegalStatus,
        Column::Description,
        Column::Quantity,
        Column::Unit,
        Column::MinimumLot,
        Column::PricePerUnit,
        Column::Currency,
        Column::SiteId,
        Column::AvailableFrom,
        Column::AvailableUntil,
        Column::ExpiresAt,
        Column::Delivery,
        Column::SellerDeliveryKm,
        Column::MaxDistanceKm,
        Column::AcceptsOtherCountries,
        Column::RecurrenceDays,
        Column::PalletGrade,
        Column::Polymer,
        Column::PlasticForm,
        Column::Specification,
        Column::DataQuality,
    ];

    /// Its name in a CSV header and as a JSON key.
    fn name(self) -> &'static str {
        match self {
            Column::Side => "side",
            Column::Family => "family",
            Column::WasteCode => "waste_code",
            Column::LegalStatus => "legal_status",
            Column::Description => "description",
            Column::Quantity => "quantity",
            Column::Unit => "unit",
            Column::MinimumLot => "minimum_lot",
            Column::PricePerUnit => "price_per_unit",
            Column::Currency => "currency",
            Column::SiteId => "site_id",
            Column::AvailableFrom => "available_from",
            Column::AvailableUntil => "available_until",
            Column::ExpiresAt => "expires_at",
            Column::Delivery => "delivery",
            Column::SellerDeliveryKm => "seller_delivery_km",
            Column::MaxDistanceKm => "max_distance_km",
            Column::AcceptsOtherCountries => "accepts_other_countries",
            Column::RecurrenceDays => "recurrence_days",
            Column::PalletGrade => "pallet_grade",
            Column::Polymer => "polymer",
            Column::PlasticForm => "plastic_form",
            Column::Specification => "specification",
            Column::DataQuality => "data_quality",
        }
    }

    /// The `ListingTerms` field it fills, as `CreateListing` names it inside `terms`.
    fn field(self) -> &'static str {
        match self {
            Column::Quantity => "quantity.amount_milli",
            Column::Unit => "quantity.unit",
            Column::MinimumLot => "minimum_lot.amount_milli",
            Column::PricePerUnit => "price_per_unit.amount_minor",
            Column::Currency => "price_per_unit.currency_code",
            Column::Delivery => "delivery.mode",
            Column::SellerDeliveryKm => "delivery.seller_delivery_km",
            Column::RecurrenceDays => "recurrence.every_days",
            Column::PalletGrade => "quality.pallet_grade",
            Column::Polymer => "quality.plastic.polymer",
            Column::PlasticForm => "quality.plastic.form",
            Column::Specification => "quality.specification.text",
            Column::DataQuality => "quality.specification.data_quality",
            column => column.name(),
        }
    }

    /// Whether a CSV header must name it.
    fn required(self) -> bool {
        matches!(
            self,
            Column::Side
                | Column::Family
                | Column::LegalStatus
                | Column::Quantity
                | Column::Unit
                | Column::PricePerUnit
                | Column::Currency
                | Column::SiteId
                | Column::ExpiresAt
                | Column::Delivery
        )
    }

    fn named(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|column| column.name() == name)
    }
}

/// A line's values by column, empty where the file says nothing.
type Row<'a> = [Cow<'a, str>; COLUMN_COUNT];

fn empty_row<'a>() -> Row<'a> {
    std::array::from_fn(|_| Cow::Borrowed(""))
}

/// Every listing line of `bytes` written as `format`, each converted to terms or refused.
/// Errors are the whole file's: over a limit, or a CSV header that does not fit.
pub(crate) fn read(format: Format, bytes: &[u8]) -> Result<Vec<Line>, FieldError> {
    if bytes.len() > IMPORT_BYTES_MAX {
        return Err(FieldError::new(FILE_FIELD, format!("the file is larger than {IMPORT_BYTES_MAX} bytes")));
    }
    check_line_lengths(bytes)?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let lines = match format {
        Format::Csv => read_csv(bytes)?,
        Format::JsonLines => read_json_lines(bytes)?,
    };
    Ok(lines)
}

/// Refuses the file if one of its lines is longer than [`IMPORT_LINE_BYTES_MAX`].
fn check_line_lengths(bytes: &[u8]) -> Result<(), FieldError> {
    for (index, line) in bytes.split(|byte| *byte == b'\n').enumerate() {
        if line.len() > IMPORT_LINE_BYTES_MAX {
            return Err(FieldError::new(
                FILE_FIELD,
                format!("line {} is longer than {IMPORT_LINE_BYTES_MAX} bytes", index + 1),
            ));
        }
    }
    Ok(())
}

fn too_many_lines() -> FieldError {
    FieldError::new(FILE_FIELD, format!("the file has more than {IMPORT_LINES_MAX} listing lines"))
}

fn line_number(line: u64) -> u32 {
    // A file of at most IMPORT_BYTES_MAX bytes has fewer lines than u32::MAX.
    u32::try_from(line).expect("a line number of a bounded file")
}

fn read_csv(bytes: &[u8]) -> Result<Vec<Line>, FieldError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(bytes);
    let header = reader
        .byte_headers()
        .map_err(|error| FieldError::new(FILE_FIELD, format!("line 1: {error}")))?
        .clone();
    let columns = header_columns(&header)?;
    let mut lines = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                let line = error.position().map_or(0, |position| position.line());
                return Err(FieldError::new(FILE_FIELD, format!("line {line}: {error}")));
            }
        }
        if lines.len() == IMPORT_LINES_MAX {
            return Err(too_many_lines());
        }
        let number = line_number(record.position().map_or(0, |position| position.line()));
        let terms = csv_row(&columns, &record).and_then(|row| terms_of(&row));
        lines.push(Line { number, terms });
    }
    Ok(lines)
}

/// The column of each field of the header, refused whole if a name is unknown, repeated, or a
/// required column is missing.
fn header_columns(header: &csv::ByteRecord) -> Result<Vec<Column>, FieldError> {
    let mut columns = Vec::with_capacity(header.len());
    let mut unknown = Vec::new();
    let mut repeated = Vec::new();
    for name in header.iter() {
        let name = String::from_utf8_lossy(name);
        let name = name.trim();
        match Column::named(name) {
            Some(column) if columns.contains(&column) => repeated.push(format!("{name:?}")),
            Some(column) => columns.push(column),
            None => unknown.push(format!("{name:?}")),
        }
    }
    let missing: Vec<&str> = Column::ALL
        .into_iter()
        .filter(|column| column.required() && !columns.contains(column))
        .map(Column::name)
        .collect();
    let mut faults = Vec::new();
    if !unknown.is_empty() {
        faults.push(format!("unknown columns {}", unknown.join(", ")));
    }
    if !repeated.is_empty() {
        faults.push(format!("columns named twice {}", repeated.join(", ")));
    }
    if !missing.is_empty() {
        faults.push(format!("missing required columns {}", missing.join(", ")));
    }
    if !faults.is_empty() {
        return Err(FieldError::new(FILE_FIELD, format!("line 1 (the header): {}", faults.join("; "))));
    }
    Ok(columns)
}

fn csv_row<'a>(columns: &[Column], record: &'a csv::ByteRecord) -> Result<Row<'a>, FieldError> {
    if record.len() != columns.len() {
        return Err(FieldError::new(
            "",
            format!("the line has {} fields, the header {}", record.len(), columns.len()),
        ));
    }
    let mut row = empty_row();
    for (column, value) in columns.iter().zip(record.iter()) {
        let value = std::str::from_utf8(value)
            .map_err(|_| FieldError::new(format!("terms.{}", column.field()), "is not UTF-8"))?;
        row[*column as usize] = Cow::Borrowed(value);
    }
    Ok(row)
}

fn read_json_lines(bytes: &[u8]) -> Result<Vec<Line>, FieldError> {
    let mut lines = Vec::new();
    for (index, line) in bytes.split(|byte| *byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if lines.len() == IMPORT_LINES_MAX {
            return Err(too_many_lines());
        }
        let number = line_number(index as u64 + 1);
        let terms = json_row(line).and_then(|row| terms_of(&row));
        lines.push(Line { number, terms });
    }
    Ok(lines)
}

fn json_row(line: &[u8]) -> Result<Row<'static>, FieldError> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)
        .map_err(|error| FieldError::new("", format!("is not a JSON object: {error}")))?;
    let mut row = empty_row();
    for (key, value) in object {
        let column = Column::named(&key)
            .ok_or_else(|| FieldError::new("", format!("{:?} is not a column", truncated(&key))))?;
        let text = match value {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(text) => text,
            serde_json::Value::Bool(value) => value.to_string(),
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                return Err(FieldError::new(
                    format!("terms.{}", column.field()),
                    "must be a string, a number, a boolean or null",
                ));
            }
        };
        row[column as usize] = Cow::Owned(text);
    }
    Ok(row)
}

/// At most 64 characters of a name the caller sent, for a message.
fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The terms of a row, converted as `CreateListing` converts them; errors name their field
/// inside the request (`terms.quantity.unit`).
fn terms_of(row: &Row) -> Result<Terms, FieldError> {
    let wire = wire_terms(row).map_err(|error| error.under("terms"))?;
    terms_from_wire(wire).map_err(|error| error.under("terms"))
}

/// A row as the `ListingTerms` a client would send: the text of each column read, nothing
/// checked that `terms_from_wire` checks.
fn wire_terms(row: &Row) -> Result<pb::ListingTerms, FieldError> {
    let text = |column: Column| row[column as usize].trim();
    let unit = match text(Column::Unit) {
        "" => None,
        symbol => Some(Unit::from_symbol(symbol).ok_or_else(|| {
            invalid(Column::Unit, format!("{:?} is not kg, t, l, m3, piece or pallet", truncated(symbol)))
        })?),
    };
    let quantity = |column: Column| -> Result<Option<common::Quantity>, FieldError> {
        match (text(column), unit) {
            ("", _) => Ok(None),
            (_, None) => Err(FieldError::required(Column::Unit.field())),
            (amount, Some(unit)) => Quantity::parse(amount, unit, false)
                .map(|quantity| Some(quantity.into()))
                .map_err(|error| invalid(column, error)),
        }
    };
    let price_per_unit = match (text(Column::PricePerUnit), text(Column::Currency)) {
        ("", _) => None,
        (_, "") => return Err(FieldError::required(Column::Currency.field())),
        (amount, code) => {
            let currency: Currency = code.parse().map_err(|error| invalid(Column::Currency, error))?;
            let amount_minor = decimal(amount, currency.minor_unit_digits())
                .map_err(|error| invalid(Column::PricePerUnit, error))?;
            Some(common::Money { amount_minor, currency_code: currency.code().to_owned() })
        }
    };
    let family = match text(Column::Family) {
        "" => 0,
        key => common::MaterialFamily::from(MaterialFamily::from_key(key).ok_or_else(|| {
            invalid(Column::Family, format!("{:?} is not a material family", truncated(key)))
        })?)
        .into(),
    };
    let delivery = match text(Column::Delivery) {
        "" => None,
        mode => Some(pb::DeliveryTerms {
            mode: enumerated(mode, "DELIVERY_MODE_", Column::Delivery, pb::DeliveryMode::from_str_name)?,
            seller_delivery_km: whole(text(Column::SellerDeliveryKm), Column::SellerDeliveryKm)?,
        }),
    };
    let recurrence_days = whole(text(Column::RecurrenceDays), Column::RecurrenceDays)?;
    Ok(pb::ListingTerms {
        side: enumerated(text(Column::Side), "LISTING_SIDE_", Column::Side, pb::ListingSide::from_str_name)?,
        family,
        waste_code: text(Column::WasteCode).to_owned(),
        legal_status: enumerated(
            text(Column::LegalStatus),
            "LEGAL_STATUS_",
            Column::LegalStatus,
            pb::LegalStatus::from_str_name,
        )?,
        description: text(Column::Description).to_owned(),
        quality: quality(row)?,
        quantity: quantity(Column::Quantity)?,
        minimum_lot: quantity(Column::MinimumLot)?,
        recurrence: (recurrence_days > 0).then_some(pb::Recurrence { every_days: recurrence_days }),
        site_id: text(Column::SiteId).to_owned(),
        location: None,
        available_from: timestamp(text(Column::AvailableFrom), Column::AvailableFrom)?,
        available_until: timestamp(text(Column::AvailableUntil), Column::AvailableUntil)?,
        price_per_unit,
        delivery,
        max_distance_km: whole(text(Column::MaxDistanceKm), Column::MaxDistanceKm)?,
        accepts_other_countries: match text(Column::AcceptsOtherCountries) {
            "" | "false" => false,
            "true" => true,
            other => {
                return Err(invalid(
                    Column::AcceptsOtherCountries,
                    format!("{:?} is not true or false", truncated(other)),
                ));
            }
        },
        attachments: Vec::new(),
        expires_at: timestamp(text(Column::ExpiresAt), Column::ExpiresAt)?,
    })
}

/// The one quality a row names, if any: a pallet grade, a plastic, or a specification.
fn quality(row: &Row) -> Result<Option<pb::Quality>, FieldError> {
    let text = |column: Column| row[column as usize].trim();
    let grade = text(Column::PalletGrade);
    let (polymer, form) = (text(Column::Polymer), text(Column::PlasticForm));
    let specification = text(Column::Specification);
    let named = [!grade.is_empty(), !(polymer.is_empty() && form.is_empty()), !specification.is_empty()];
    let kind = match named {
        [false, false, false] => {
            if !text(Column::DataQuality).is_empty() {
                return Err(FieldError::required(Column::Specification.field()));
            }
            return Ok(None);
        }
        [true, false, false] => pb::quality::Kind::PalletGrade(enumerated(
            grade,
            "PALLET_GRADE_",
            Column::PalletGrade,
            pb::PalletGrade::from_str_name,
        )?),
        [false, true, false] => pb::quality::Kind::Plastic(pb::PlasticQuality {
            polymer: enumerated(polymer, "POLYMER_", Column::Polymer, pb::Polymer::from_str_name)?,
            form: enumerated(form, "PLASTIC_FORM_", Column::PlasticForm, pb::PlasticForm::from_str_name)?,
        }),
        [false, false, true] => pb::quality::Kind::Specification(pb::Specification {
            text: specification.to_owned(),
            data_quality: enumerated(
                text(Column::DataQuality),
                "DATA_QUALITY_",
                Column::DataQuality,
                pb::DataQuality::from_str_name,
            )?,
        }),
        _ => {
            return Err(FieldError::new(
                "quality",
                "at most one of pallet_grade, polymer and plastic_form, specification",
            ));
        }
    };
    Ok(Some(pb::Quality { kind: Some(kind) }))
}

fn invalid(column: Column, message: impl std::fmt::Display) -> FieldError {
    FieldError::new(column.field(), message)
}

/// An enum's wire value from its lower-case name (`offer` for `LISTING_SIDE_OFFER`); empty
/// text is unspecified (0), which the conversion refuses where the value is required.
fn enumerated<E: Into<i32>>(
    text: &str,
    prefix: &str,
    column: Column,
    from_name: fn(&str) -> Option<E>,
) -> Result<i32, FieldError> {
    if text.is_empty() {
        return Ok(0);
    }
    let name = format!("{prefix}{}", text.to_ascii_uppercase());
    match from_name(&name).map(Into::into) {
        Some(value) if value != 0 => Ok(value),
        _ => Err(invalid(column, format!("{:?} is not one of its values", truncated(text)))),
    }
}

/// A whole number of at most 9 digits; empty is 0.
fn whole(text: &str, column: Column) -> Result<u32, FieldError> {
    if text.is_empty() {
        return Ok(0);
    }
    if text.len() > 9 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid(column, format!("{:?} is not a whole number", truncated(text))));
    }
    text.parse().map_err(|_| invalid(column, format!("{:?} is not a whole number", truncated(text))))
}

/// An RFC 3339 time (`2026-12-31T17:00:00Z`, `2026-12-31T18:00:00+01:00`); empty is none.
fn timestamp(text: &str, column: Column) -> Result<Option<prost_types::Timestamp>, FieldError> {
    if text.is_empty() {
        return Ok(None);
    }
    let at: jiff::Timestamp = text.parse().map_err(|_| {
        invalid(column, format!("{:?} is not an RFC 3339 time such as 2026-12-31T17:00:00Z", truncated(text)))
    })?;
    Ok(Some(prost_types::Timestamp { seconds: at.as_second(), nanos: at.subsec_nanosecond() }))
}

/// `text`, a decimal with at most `digits` decimals ("3.50", "-12"), in units of 10^-digits.
fn decimal(text: &str, digits: u32) -> Result<i64, String> {
    let invalid = || format!("{:?} is not a decimal with at most {digits} decimals", truncated(text));
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((_, "")) => return Err(invalid()),
        Some(parts) => parts,
        None => (unsigned, ""),
    };
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() || fraction.len() > digits as usize || !all_digits(whole) || !all_digits(fraction) {
        return Err(invalid());
    }
    let mut value: i64 = 0;
    let scaled = whole.bytes().chain(fraction.bytes().chain(std::iter::repeat(b'0')).take(digits as usize));
    for digit in scaled {
        value = value
            .checked_mul(10)
            .and_then(|value| value.checked_add(i64::from(digit - b'0')))
            .ok_or_else(|| format!("{:?} is too large", truncated(text)))?;
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests;
