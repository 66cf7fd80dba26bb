//! Invoice numbers without gaps, given / when / then, and the printed document.

use proptest::prelude::*;
use symbiose_domain::Unit;
use symbiose_domain::lot::LegalStatus;

use super::*;
use crate::escrow;
use crate::testing::{NOW_MS, deal, eur, id};
use crate::vat::{MENTION_INTRA_EU_FR, MENTION_REVERSE_CHARGE_FR, Party};

const ISSUER: u128 = 1;

#[track_caller]
fn date(year: i32, month: u8, day: u8) -> CalendarDate {
    CalendarDate::new(year, month, day).expect("a date")
}

fn issue(invoice: u128, deal: u128, issue_date: CalendarDate) -> Command {
    Command::Issue {
        invoice_id: id(invoice),
        deal_id: id(deal),
        issuer: id(ISSUER),
        prefix: "FR".into(),
        year: issue_date.year(),
        issue_date,
    }
}

fn issued(invoice: u128, deal: u128, number: u32, issue_date: CalendarDate) -> Event {
    Event::Issued {
        issuer: id(ISSUER),
        year: issue_date.year(),
        prefix: "FR".into(),
        issued: Issued {
            invoice_id: id(invoice),
            deal_id: id(deal),
            number,
            formatted: format_number("FR", issue_date.year(), number),
            issue_date,
        },
        at_ms: NOW_MS,
    }
}

#[track_caller]
fn check(given: &[Event], when: Command, then: Result<Vec<Event>, Rejection>) {
    let state = given.iter().fold(SequenceState::Absent, evolve);
    assert_eq!(decide(&state, when, &Context { now_ms: NOW_MS }), then);
}

#[test]
fn numbers_follow_without_gaps() {
    let day = date(2026, 3, 14);
    check(&[], issue(10, 20, day), Ok(vec![issued(10, 20, 1, day)]));
    check(&[issued(10, 20, 1, day)], issue(11, 21, day), Ok(vec![issued(11, 21, 2, day)]));
    let Event::Issued { issued: first, .. } = issued(10, 20, 1, day);
    assert_eq!(first.formatted, "FR-2026-000001");
    assert_eq!(format_number("STRAS1", 2027, 123_456), "STRAS1-2027-123456");
}

#[test]
fn an_invoice_id_is_issued_once() {
    let day = date(2026, 3, 14);
    check(&[issued(10, 20, 1, day)], issue(10, 20, day), Ok(vec![]));
    check(
        &[issued(10, 20, 1, day)],
        issue(10, 21, day),
        Err(Rejection::InvoiceIdConflict { invoice_id: id(10) }),
    );
    check(
        &[issued(10, 20, 1, day)],
        issue(11, 20, day),
        Err(Rejection::DealAlreadyInvoiced { number: "FR-2026-000001".into() }),
    );
}

#[test]
fn a_sequence_is_one_issuers_year_in_order() {
    let day = date(2026, 3, 14);
    let next_year = date(2027, 1, 1);
    check(
        &[issued(10, 20, 1, day)],
        issue(11, 21, next_year),
        Err(Rejection::YearMismatch { year: 2026, issue_date: next_year }),
    );
    let Command::Issue { invoice_id, deal_id, issuer, prefix, issue_date, .. } = issue(11, 21, day);
    check(
        &[],
        Command::Issue { invoice_id, deal_id, issuer, prefix: prefix.clone(), year: 2025, issue_date },
        Err(Rejection::YearMismatch { year: 2025, issue_date: day }),
    );
    check(
        &[issued(10, 20, 1, day)],
        Command::Issue {
            invoice_id,
            deal_id,
            issuer: id(99),
            prefix: prefix.clone(),
            year: 2026,
            issue_date,
        },
        Err(Rejection::IssuerMismatch),
    );
    check(
        &[issued(10, 20, 1, day)],
        Command::Issue { invoice_id, deal_id, issuer, prefix: "DE".into(), year: 2026, issue_date },
        Err(Rejection::PrefixMismatch("FR".into())),
    );
    check(
        &[],
        Command::Issue { invoice_id, deal_id, issuer, prefix: "fr".into(), year: 2026, issue_date },
        Err(Rejection::BadPrefix),
    );
    check(
        &[issued(10, 20, 1, day)],
        issue(11, 21, date(2026, 3, 13)),
        Err(Rejection::DateBeforeLast { last: day }),
    );
    assert_eq!(Rejection::BadPrefix.kind(), RejectionKind::InvalidArgument { field: "prefix" });
}

#[test]
fn a_year_has_at_most_999999_invoices() {
    let day = date(2026, 12, 31);
    let last = issued(10, 20, INVOICE_NUMBER_MAX, day);
    check(&[last], issue(11, 21, day), Err(Rejection::SequenceExhausted));
}

/// ms since the epoch of an RFC 3339 instant.
fn unix_ms(instant: &str) -> i64 {
    instant.parse::<jiff::Timestamp>().expect("an instant").as_millisecond()
}

/// The date UTC would give: what the issuer's zone must not be confused with.
fn utc_date(unix_ms: i64) -> CalendarDate {
    let instant = jiff::Timestamp::from_millisecond(unix_ms).expect("an instant");
    CalendarDate::from(jiff::tz::TimeZone::UTC.to_datetime(instant).date())
}

#[test]
fn an_invoice_is_dated_and_numbered_in_its_issuers_time_zone() {
    // 23:30 UTC on New Year's Eve is 00:30 on 1 January in Paris (UTC+1).
    let new_year_eve = unix_ms("2026-12-31T23:30:00Z");
    assert_eq!(utc_date(new_year_eve), date(2026, 12, 31));
    let issue_date = CalendarDate::issued_at(new_year_eve, Country::Fr);
    assert_eq!(issue_date, date(2027, 1, 1));
    for country in Country::ALL {
        assert_eq!(CalendarDate::issued_at(new_year_eve, country), date(2027, 1, 1), "{country}");
    }
    // So the invoice is the first of 2027's sequence, and its number says 2027.
    check(&[], issue(10, 20, issue_date), Ok(vec![issued(10, 20, 1, issue_date)]));
    assert_eq!(format_number("FR", issue_date.year(), 1), "FR-2027-000001");
    assert_ne!(sequence_id(id(ISSUER), 2027), sequence_id(id(ISSUER), 2026));

    // Summer time: 22:30 UTC on 30 June is 00:30 on 1 July in Paris (UTC+2).
    let midsummer = unix_ms("2026-06-30T22:30:00Z");
    assert_eq!(utc_date(midsummer), date(2026, 6, 30));
    assert_eq!(CalendarDate::issued_at(midsummer, Country::Fr), date(2026, 7, 1));
    // And in winter an hour less: 22:30 UTC on 30 January is still the 30th.
    assert_eq!(CalendarDate::issued_at(unix_ms("2026-01-30T22:30:00Z"), Country::De), date(2026, 1, 30));
}

#[test]
fn dates_are_checked_and_read_back_as_written() {
    assert!(CalendarDate::new(2026, 2, 29).is_err());
    assert!(CalendarDate::new(2024, 2, 29).is_ok());
    assert!(CalendarDate::new(2026, 13, 1).is_err());
    assert!(CalendarDate::new(0, 1, 1).is_err());
    assert_eq!(date(2026, 3, 4).to_string(), "2026-03-04");
    for written in [date(2026, 3, 4), date(2000, 2, 29), date(1, 1, 1), date(9999, 12, 31)] {
        assert_eq!(CalendarDate::parse(&written.to_string()), Ok(written));
    }
    for bad in ["2026-02-29", "2026-13-01", "26-3-4", "", "2026-03-04T00:00:00Z"] {
        assert!(CalendarDate::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(CalendarDate::issued_at(0, Country::Ch), date(1970, 1, 1));
}

#[track_caller]
fn identifier(text: &str) -> Identifier {
    Identifier::parse(text).expect("an identifier")
}

fn seller() -> PartyDetails {
    PartyDetails {
        organization: id(1),
        name: "Palettes de l'Ill SAS".into(),
        address: "12 rue du Port du Rhin\n67000 Strasbourg".into(),
        country: Country::Fr,
        identifiers: vec![identifier("73282932000074")],
        vat_number: Some(identifier("FR40303265045")),
    }
}

fn buyer() -> PartyDetails {
    PartyDetails {
        organization: id(2),
        name: "Kehler Paletten GmbH".into(),
        address: "Hafenstraße 5\n77694 Kehl".into(),
        country: Country::De,
        identifiers: vec![],
        vat_number: Some(identifier("DE136695976")),
    }
}

fn pallets(accepted_milli: i64) -> LineInput {
    LineInput {
        description: "EUR pallets 1200x800, grade B".into(),
        quantity: Quantity::new(accepted_milli, Unit::Pallet, true).expect("a quantity"),
        unit_price: eur(350),
    }
}

fn draft(lines: Vec<LineInput>, regime: Regime) -> Draft {
    Draft {
        number: "FR-2026-000001".into(),
        issue_date: date(2026, 3, 14),
        deal_id: id(0xdea1),
        issuer: seller(),
        customer: buyer(),
        supply: Supply::Goods,
        lines,
        regime,
    }
}

#[test]
fn an_intra_eu_invoice_carries_the_mention_and_both_vat_numbers() {
    let invoice =
        Invoice::new(draft(vec![pallets(38_000)], Regime::IntraEuExempt { mention: MENTION_INTRA_EU_FR }))
            .expect("an invoice");
    assert_eq!((invoice.net_total, invoice.vat, invoice.gross_total), (eur(13_300), eur(0), eur(13_300)));
    assert_eq!(invoice.lines[0].net, eur(13_300));
    assert_eq!(
        invoice.mentions,
        vec![
            MENTION_INTRA_EU_FR.to_owned(),
            "VAT numbers / Numéros de TVA / USt-IdNr.: FR40303265045 (issuer), DE136695976 (customer)"
                .to_owned(),
        ]
    );
    let text = invoice.render_text();
    for expected in [
        "INVOICE / FACTURE / RECHNUNG",
        "No. FR-2026-000001",
        "Date: 2026-03-14",
        "Palettes de l'Ill SAS",
        "67000 Strasbourg",
        "SIRET 732 829 320 00074",
        "VAT DE136695976",
        "38 pallet",
        "3.50 EUR",
        "133.00 EUR",
        "VAT / TVA / USt 0.00 %",
        "Exonération de TVA, article 262 ter I du CGI",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
}

#[test]
fn a_domestic_invoice_charges_vat_on_the_total() {
    let mut domestic = draft(
        vec![pallets(40_000), LineInput { description: "Handling".into(), ..pallets(1_000) }],
        Regime::DomesticStandard { country: Country::Fr, rate_bp: 2000 },
    );
    domestic.customer = PartyDetails { country: Country::Fr, vat_number: None, ..buyer() };
    let invoice = Invoice::new(domestic).expect("an invoice");
    assert_eq!((invoice.net_total, invoice.vat, invoice.gross_total), (eur(14_350), eur(2_870), eur(17_220)));
    assert!(invoice.mentions.is_empty());
    assert!(invoice.render_text().contains("VAT / TVA / USt 20.00 %"));
}

#[test]
fn a_reverse_charged_invoice_says_autoliquidation() {
    let regime = Regime::DomesticReverseCharge { country: Country::Fr, mention: MENTION_REVERSE_CHARGE_FR };
    let mut waste = draft(vec![pallets(1_000)], regime);
    waste.customer.vat_number = None;
    assert_eq!(Invoice::new(waste.clone()), Err(InvoiceError::VatNumberRequired { party: "customer" }));
    waste.customer.vat_number = Some(identifier("FR83404833048"));
    let invoice = Invoice::new(waste).expect("an invoice");
    assert_eq!(invoice.vat, eur(0));
    assert!(invoice.render_text().contains("Autoliquidation"));
}

#[test]
fn a_gate_fee_is_a_service_invoice_from_the_receiver() {
    let gate_fee = deal(1, 2, 2_500, Unit::Tonne, eur(-1_200), LegalStatus::Waste);
    let roles = roles(&gate_fee);
    assert_eq!(
        roles,
        Roles { issuer: id(2), customer: id(1), supply: Supply::Service, unit_price: eur(1_200) }
    );
    let receiver = Party::new(Country::De, Some(identifier("DE136695976"))).expect("a party");
    let producer = Party::new(Country::Fr, Some(identifier("FR40303265045"))).expect("a party");
    let regime = vat::regime(&receiver, &producer, gate_fee.legal_status, roles.supply);
    let invoice = Invoice::new(Draft {
        issuer: buyer(),
        customer: seller(),
        supply: roles.supply,
        lines: vec![LineInput {
            description: "Taking charge of wood waste, EWC 15 01 03".into(),
            quantity: gate_fee.quantity,
            unit_price: roles.unit_price,
        }],
        ..draft(vec![], regime)
    })
    .expect("an invoice");
    assert_eq!((invoice.net_total, invoice.vat), (eur(3_000), eur(0)));
    let text = invoice.render_text();
    assert!(text.starts_with("INVOICE FOR SERVICES"), "{text}");
    assert!(text.contains("2.5 t") && text.contains("12.00 EUR") && text.contains("Steuerschuldnerschaft"));
    // Lines are never negative: the fee is invoiced by who takes the material.
    let negative = LineInput { unit_price: eur(-1_200), ..pallets(1_000) };
    assert_eq!(Invoice::new(draft(vec![negative], regime)), Err(InvoiceError::NegativeUnitPrice));
}

#[test]
fn the_inputs_of_an_invoice_are_bounded() {
    let regime = Regime::DomesticStandard { country: Country::Fr, rate_bp: 2000 };
    assert_eq!(Invoice::new(draft(vec![], regime)), Err(InvoiceError::LineCount));
    assert_eq!(
        Invoice::new(draft(vec![pallets(1_000); LINES_MAX + 1], regime)),
        Err(InvoiceError::LineCount)
    );
    let mut nameless = draft(vec![pallets(1_000)], regime);
    nameless.issuer.name = " ".into();
    assert_eq!(Invoice::new(nameless), Err(InvoiceError::BadName { party: "issuer" }));
    let chf = LineInput { unit_price: Money::new(100, Currency::Chf).expect("money"), ..pallets(1_000) };
    assert_eq!(Invoice::new(draft(vec![pallets(1_000), chf], regime)), Err(InvoiceError::MixedCurrencies));
    let blank = LineInput { description: String::new(), ..pallets(1_000) };
    assert_eq!(Invoice::new(draft(vec![blank], regime)), Err(InvoiceError::BadDescription));
}

proptest! {
    /// The invoice of an accepted quantity says what escrow paid: the same net and VAT.
    #[test]
    fn the_invoice_matches_the_escrow(
        amount_milli in 1i64..10_000_000,
        price_minor in 0i64..100_000,
        accepted_permille in 1i64..=1000,
        rate_bp in prop_oneof![Just(810u32), Just(1900u32), Just(2000u32)],
    ) {
        let sold = deal(1, 2, amount_milli, Unit::Tonne, eur(price_minor), LegalStatus::ByProduct);
        let regime = Regime::DomesticStandard { country: Country::Fr, rate_bp };
        let plan = escrow::on_deal_agreed(&sold, 200, regime).expect("a plan");
        let accepted_milli = (amount_milli * accepted_permille / 1000).max(1);
        let part = plan.amounts(accepted_milli).expect("amounts");
        let line = LineInput {
            description: "lot".into(),
            quantity: Quantity::new(accepted_milli, Unit::Tonne, true).expect("a quantity"),
            unit_price: roles(&sold).unit_price,
        };
        let mut domestic = draft(vec![line], regime);
        domestic.customer.vat_number = None;
        let invoice = Invoice::new(domestic).expect("an invoice");
        prop_assert_eq!(invoice.net_total, part.net);
        prop_assert_eq!(invoice.vat, part.vat);
    }
}

/// The regimes of the brief, each on the invoice of 40 pallets at 3.50 EUR (net 140.00),
/// against figures computed by hand.
#[test]
fn the_regimes_on_hand_computed_invoices() {
    let party =
        |country: Country, vat: Option<&str>| Party::new(country, vat.map(identifier)).expect("a party");
    let details = |organization: u128, country: Country, vat: Option<&str>| PartyDetails {
        organization: id(organization),
        country,
        vat_number: vat.map(identifier),
        ..seller()
    };
    let fr = (Country::Fr, Some("FR40303265045"));
    let fr_buyer = (Country::Fr, Some("FR40303265045"));
    let de = (Country::De, Some("DE812345673"));
    let de_buyer = (Country::De, Some("DE136695976"));
    let ch = (Country::Ch, Some("CHE-109.322.551"));
    // (seller, buyer, legal status, regime, VAT in cents, a mention the invoice carries)
    let rows = [
        // FR-FR waste between businesses: reverse charge, no VAT on the invoice.
        (fr, fr_buyer, LegalStatus::Waste, "domestic reverse charge", 0, Some("283-2 sexies")),
        // FR-FR product for reuse: 20% of 140.00 = 28.00.
        (fr, fr_buyer, LegalStatus::ProductForReuse, "domestic standard", 2_800, None),
        // FR-DE to a buyer with a VAT number: exempt intra-EU supply.
        (fr, de_buyer, LegalStatus::Waste, "intra-EU exempt", 0, Some("262 ter I")),
        // FR-CH: an export.
        (fr, ch, LegalStatus::ByProduct, "export", 0, Some("262 I")),
        // DE-DE scrap (waste): reverse charge under UStG 13b.
        (de, de_buyer, LegalStatus::Waste, "domestic reverse charge", 0, Some("13b")),
    ];
    for (index, (supplier, customer, legal_status, kind, vat_cents, mention)) in rows.into_iter().enumerate()
    {
        let regime = crate::vat::regime(
            &party(supplier.0, supplier.1),
            &party(customer.0, customer.1),
            legal_status,
            Supply::Goods,
        );
        let found = match regime {
            Regime::DomesticStandard { .. } => "domestic standard",
            Regime::DomesticReverseCharge { .. } => "domestic reverse charge",
            Regime::IntraEuExempt { .. } => "intra-EU exempt",
            Regime::Export { .. } => "export",
            Regime::ServiceReverseCharge { .. } => "service reverse charge",
        };
        assert_eq!(found, kind, "row {index}");
        let invoice = Invoice::new(Draft {
            issuer: details(1, supplier.0, supplier.1),
            customer: details(2, customer.0, customer.1),
            ..draft(vec![pallets(40_000)], regime)
        })
        .expect("an invoice");
        assert_eq!(
            (invoice.net_total, invoice.vat, invoice.gross_total),
            (eur(14_000), eur(vat_cents), eur(14_000 + vat_cents)),
            "row {index}"
        );
        if let Some(mention) = mention {
            assert!(
                invoice.mentions.iter().any(|printed| printed.contains(mention)),
                "row {index}: {:?}",
                invoice.mentions
            );
            assert!(invoice.render_text().contains(mention), "row {index}");
        } else {
            assert!(invoice.mentions.is_empty(), "row {index}: {:?}", invoice.mentions);
        }
    }
}
