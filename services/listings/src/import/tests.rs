//! The lines of an import file, read as a partner writes them: good lines become the terms
//! `CreateListing` would make, bad ones name the field `CreateListing` would name.

use symbiose_domain::{MaterialFamily, Unit};

use super::*;
use crate::listing::{Delivery, LegalStatus, Quality, Side};

const SITE: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const HEADER: &str = "side,family,waste_code,legal_status,description,quantity,unit,minimum_lot,price_per_unit,\
                      currency,site_id,available_from,expires_at,delivery,recurrence_days,pallet_grade";

/// A good line of `HEADER`: 40 EUR pallets of grade B at 3.50 EUR each, every week.
fn good_line() -> String {
    format!(
        "offer,pallets,15 01 03,waste,\"EUR/EPAL 1200x800, grade B\",40,pallet,1,3.50,EUR,{SITE},\
         2026-12-01T08:00:00Z,2099-01-01T00:00:00+01:00,buyer_collects,7,b"
    )
}

fn csv(lines: &[&str]) -> Vec<u8> {
    let mut file = String::from(HEADER);
    for line in lines {
        file.push('\n');
        file.push_str(line);
    }
    file.push('\n');
    file.into_bytes()
}

/// The line of `file` numbered `number`: its terms, or the field and message of its refusal.
#[track_caller]
fn refusal(format: Format, file: &[u8]) -> (u32, String, String) {
    let lines = read(format, file).expect("a file read");
    assert_eq!(lines.len(), 1, "one listing line");
    let line = lines.into_iter().next().expect("a line");
    let error = line.terms.expect_err("a refused line");
    (line.number, error.field, error.message)
}

/// `good_line` with `column`'s value (counted from 0 in `HEADER`) replaced by `value`.
fn with(column: usize, value: &str) -> String {
    let mut record = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(good_line().as_bytes())
        .into_records()
        .next()
        .expect("a record")
        .expect("a good record")
        .iter()
        .map(|field| format!("\"{field}\""))
        .collect::<Vec<_>>();
    record[column] = format!("\"{value}\"");
    record.join(",")
}

#[test]
fn a_good_line_makes_the_terms_create_listing_would_make() {
    let lines = read(Format::Csv, &csv(&[&good_line()])).expect("a file read");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].number, 2, "the header is line 1");
    let terms = lines[0].terms.as_ref().expect("good terms");
    assert_eq!(terms.side, Side::Offer);
    assert_eq!(terms.family, MaterialFamily::Pallets);
    assert_eq!(terms.waste_code.map(|code| code.as_str().to_owned()), Some("150103".to_owned()));
    assert_eq!(terms.legal_status, LegalStatus::Waste);
    assert_eq!(terms.description, "EUR/EPAL 1200x800, grade B");
    assert_eq!((terms.quantity.amount_milli(), terms.quantity.unit()), (40_000, Unit::Pallet));
    assert_eq!(terms.minimum_lot.map(|lot| lot.amount_milli()), Some(1000));
    assert_eq!((terms.price_per_unit.minor(), terms.price_per_unit.currency().code()), (350, "EUR"));
    assert_eq!(terms.site_id.to_string(), SITE);
    assert_eq!(terms.available_from_ms, 1_796_112_000_000);
    assert_eq!(terms.expires_at_ms, 4_070_905_200_000, "the offset is kept");
    assert_eq!(terms.available_until_ms, terms.expires_at_ms, "no end: until the expiry");
    assert_eq!(terms.delivery, Delivery::BuyerCollects);
    assert_eq!(terms.recurrence_days, 7);
    assert!(matches!(terms.quality, Quality::PalletGrade(_)), "{:?}", terms.quality);
}

#[test]
fn the_same_line_as_json_makes_the_same_terms() {
    let json = format!(
        r#"{{"side":"offer","family":"pallets","waste_code":"15 01 03","legal_status":"waste","description":"EUR/EPAL 1200x800, grade B","quantity":40,"unit":"pallet","minimum_lot":1,"price_per_unit":"3.50","currency":"EUR","site_id":"{SITE}","available_from":"2026-12-01T08:00:00Z","expires_at":"2099-01-01T00:00:00+01:00","delivery":"buyer_collects","recurrence_days":7,"pallet_grade":"b","accepts_other_countries":false,"seller_delivery_km":null}}"#
    );
    // A blank line is skipped, and the numbers stay the file's.
    let file = format!("\n{json}\r\n");
    let from_json = read(Format::JsonLines, file.as_bytes()).expect("a file read");
    let from_csv = read(Format::Csv, &csv(&[&good_line()])).expect("a file read");
    assert_eq!(from_json.len(), 1);
    assert_eq!(from_json[0].number, 2);
    assert_eq!(from_json[0].terms, from_csv[0].terms);
}

#[test]
fn each_bad_value_names_its_field_as_create_listing_does() {
    // Columns of HEADER, from 0.
    let cases: [(usize, &str, &str, &str); 14] = [
        (0, "sell", "terms.side", "\"sell\" is not one of its values"),
        (0, "", "terms.side", "is required"),
        (1, "gold", "terms.family", "\"gold\" is not a material family"),
        (2, "99 99 99", "terms.waste_code", ""),
        (3, "", "terms.legal_status", "is required"),
        (5, "forty", "terms.quantity.amount_milli", ""),
        (5, "", "terms.quantity", "is required"),
        (6, "crate", "terms.quantity.unit", "\"crate\" is not kg, t, l, m3, piece or pallet"),
        (
            8,
            "3.505",
            "terms.price_per_unit.amount_minor",
            "\"3.505\" is not a decimal with at most 2 decimals",
        ),
        (9, "USD", "terms.price_per_unit.currency_code", ""),
        (10, "site 1", "terms.site_id", "\"site 1\" is not an id"),
        (12, "31/12/2099", "terms.expires_at", "is not an RFC 3339 time"),
        (13, "drone", "terms.delivery.mode", "\"drone\" is not one of its values"),
        (15, "z", "terms.quality.pallet_grade", "\"z\" is not one of its values"),
    ];
    for (column, value, field, message) in cases {
        let (number, named, said) = refusal(Format::Csv, &csv(&[&with(column, value)]));
        assert_eq!(number, 2);
        assert_eq!(named, field, "column {column} = {value:?}: {said}");
        assert!(said.contains(message), "column {column} = {value:?}: {said:?} should say {message:?}");
    }
}

#[test]
fn rules_of_the_terms_are_create_listing_s_own() {
    // A seller who delivers says how far: the conversion CreateListing uses says so.
    let (_, field, message) = refusal(Format::Csv, &csv(&[&with(13, "seller_delivers")]));
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("terms.delivery.seller_delivery_km", "must be 1 to 1000")
    );
    let json = format!(
        r#"{{"side":"request","family":"pallets","legal_status":"by_product","quantity":"1","unit":"pallet","price_per_unit":"0","currency":"EUR","site_id":"{SITE}","expires_at":"2099-01-01T00:00:00Z","delivery":"either","seller_delivery_km":50,"recurrence_days":400}}"#
    );
    let (_, field, _) = refusal(Format::JsonLines, json.as_bytes());
    assert_eq!(field, "terms.recurrence.every_days");
}

#[test]
fn a_line_that_does_not_fit_its_format_is_refused_alone() {
    let lines = read(Format::Csv, &csv(&[&good_line(), "offer,pallets", &good_line()])).expect("a file read");
    let numbers: Vec<u32> = lines.iter().map(|line| line.number).collect();
    assert_eq!(numbers, [2, 3, 4]);
    assert!(lines[0].terms.is_ok() && lines[2].terms.is_ok());
    let error = lines[1].terms.as_ref().expect_err("two fields");
    assert_eq!((error.field.as_str(), error.message.as_str()), ("", "the line has 2 fields, the header 16"));

    for (json, field, message) in [
        ("[1, 2]", "", "is not a JSON object"),
        ("{\"side\": \"offer\"", "", "is not a JSON object"),
        ("{\"colour\": \"blue\"}", "", "\"colour\" is not a column"),
        (
            "{\"quantity\": [40]}",
            "terms.quantity.amount_milli",
            "must be a string, a number, a boolean or null",
        ),
        (
            "{\"accepts_other_countries\": \"yes\"}",
            "terms.accepts_other_countries",
            "\"yes\" is not true or false",
        ),
    ] {
        let (number, named, said) = refusal(Format::JsonLines, json.as_bytes());
        assert_eq!(number, 1);
        assert_eq!(named, field, "{json}");
        assert!(said.starts_with(message), "{json}: {said:?}");
    }
}

#[test]
fn a_quoted_value_over_several_lines_keeps_the_numbers_of_the_file() {
    let spread = with(4, "first line\nsecond line, with a comma");
    let lines = read(Format::Csv, &csv(&[&spread, &good_line()])).expect("a file read");
    assert_eq!(lines.iter().map(|line| line.number).collect::<Vec<_>>(), [2, 4]);
    let terms = lines[0].terms.as_ref().expect("good terms");
    assert_eq!(terms.description, "first line\nsecond line, with a comma");
}

#[test]
fn a_header_that_does_not_fit_is_refused_whole_naming_the_columns() {
    let file = "side,family,colour,quantity,quantity,unit\noffer,pallets,blue,1,1,pallet\n";
    let error = read(Format::Csv, file.as_bytes()).expect_err("a bad header");
    assert_eq!(error.field, "chunk");
    assert_eq!(
        error.message,
        "line 1 (the header): unknown columns \"colour\"; columns named twice \"quantity\"; missing \
         required columns legal_status, price_per_unit, currency, site_id, expires_at, delivery"
    );
    // Every documented column is known, in any order.
    let all = Column::ALL.map(Column::name).into_iter().rev().collect::<Vec<_>>().join(",");
    let empty = vec![""; COLUMN_COUNT].join(",");
    let lines = read(Format::Csv, format!("{all}\n{empty}\n").as_bytes()).expect("every column known");
    assert_eq!(lines.len(), 1);
}

#[test]
fn a_file_over_a_limit_is_refused_whole() {
    let long = format!("{}\n", "x".repeat(IMPORT_LINE_BYTES_MAX + 1));
    let error = read(Format::JsonLines, format!("{{}}\n{long}").as_bytes()).expect_err("a long line");
    assert_eq!(error.to_string(), format!("chunk: line 2 is longer than {IMPORT_LINE_BYTES_MAX} bytes"));

    let many = "{}\n".repeat(IMPORT_LINES_MAX + 1);
    let error = read(Format::JsonLines, many.as_bytes()).expect_err("too many lines");
    assert_eq!(error.to_string(), format!("chunk: the file has more than {IMPORT_LINES_MAX} listing lines"));
    assert_eq!(
        read(Format::JsonLines, "{}\n".repeat(IMPORT_LINES_MAX).as_bytes()).map(|lines| lines.len()),
        Ok(IMPORT_LINES_MAX)
    );

    let large = vec![b'\n'; IMPORT_BYTES_MAX + 1];
    let error = read(Format::Csv, &large).expect_err("too large");
    assert_eq!(error.to_string(), format!("chunk: the file is larger than {IMPORT_BYTES_MAX} bytes"));
}

#[test]
fn decimals_are_exact() {
    assert_eq!(decimal("3.5", 2), Ok(350));
    assert_eq!(decimal("-12", 2), Ok(-1200));
    assert_eq!(decimal("0.07", 2), Ok(7));
    for bad in ["", "1.", ".5", "1.234", "1,5", "--1", "1e3", "99999999999999999999"] {
        assert!(decimal(bad, 2).is_err(), "{bad:?}");
    }
}
