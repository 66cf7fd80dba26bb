//! The rules, one row per rule: pairs at real towns that must and must not match.

use symbiose_domain::lot::{LegalStatus, Quality};
use symbiose_domain::{MaterialFamily, PalletGrade};

use super::*;
use crate::testing::{DAY_MS, NOW_MS, code, eur, offer, permit, request, town};

/// The rule's name, to compare a mismatch without its details.
fn rule(mismatch: &Mismatch) -> &'static str {
    match mismatch {
        Mismatch::Sides => "sides",
        Mismatch::SameOwner => "same owner",
        Mismatch::Family { .. } => "family",
        Mismatch::Unit { .. } => "unit",
        Mismatch::Currency { .. } => "currency",
        Mismatch::Material => "material",
        Mismatch::Quality => "quality",
        Mismatch::Quantity => "quantity",
        Mismatch::Availability => "availability",
        Mismatch::Price { .. } => "price",
        Mismatch::Border { .. } => "border",
        Mismatch::Distance { .. } => "distance",
        Mismatch::Delivery { .. } => "delivery",
        Mismatch::Permit { .. } => "permit",
    }
}

fn solvent_offer(at: &str) -> Candidate {
    Candidate {
        family: MaterialFamily::Solvents,
        waste_code: Some(code("140603")),
        quality: Quality::Unspecified,
        unit: Unit::Litre,
        available_milli: 2_000_000,
        minimum_lot_milli: 0,
        ..offer(1, at)
    }
}

fn solvent_request(at: &str) -> Candidate {
    Candidate {
        family: MaterialFamily::Solvents,
        waste_code: Some(code("140603")),
        quality: Quality::Unspecified,
        unit: Unit::Litre,
        available_milli: 5_000_000,
        ..request(2, at)
    }
}

/// What a row expects: the documents of a match, or the rule that fails.
type Expected = Result<(bool, Vec<RequiredDocument>), &'static str>;

fn rows() -> Vec<(&'static str, Candidate, Candidate, Vec<Permit>, Expected)> {
    let annex = Ok((true, vec![RequiredDocument::AnnexVii]));
    let domestic = Ok((false, vec![]));
    let kehl = || request(2, "Kehl");
    vec![
        ("pallets Strasbourg to Kehl", offer(1, "Strasbourg"), kehl(), vec![], annex.clone()),
        (
            "pallets within Strasbourg",
            offer(1, "Strasbourg"),
            request(2, "Strasbourg"),
            vec![],
            domestic.clone(),
        ),
        ("pallets to Reims at 200 km", offer(1, "Strasbourg"), request(2, "Reims"), vec![], Err("distance")),
        (
            "Reims within 300 km",
            offer(1, "Strasbourg"),
            Candidate { max_distance_km: 300, ..request(2, "Reims") },
            vec![],
            domestic.clone(),
        ),
        (
            "two offers",
            offer(1, "Strasbourg"),
            Candidate { side: Side::Offer, ..kehl() },
            vec![],
            Err("sides"),
        ),
        (
            "same owner",
            offer(1, "Strasbourg"),
            Candidate { owner: offer(1, "Kehl").owner, ..kehl() },
            vec![],
            Err("same owner"),
        ),
        (
            "another family",
            offer(1, "Strasbourg"),
            Candidate { family: MaterialFamily::Packaging, ..kehl() },
            vec![],
            Err("family"),
        ),
        (
            "another unit",
            offer(1, "Strasbourg"),
            Candidate { unit: Unit::Piece, ..kehl() },
            vec![],
            Err("unit"),
        ),
        (
            "another currency",
            offer(1, "Strasbourg"),
            Candidate { price_per_unit: Money::new(400, Currency::Chf).expect("money"), ..kehl() },
            vec![],
            Err("currency"),
        ),
        (
            "another waste code",
            offer(1, "Strasbourg"),
            Candidate { waste_code: Some(code("150101")), ..kehl() },
            vec![],
            Err("material"),
        ),
        (
            "a code the request also accepts",
            offer(1, "Strasbourg"),
            Candidate {
                waste_code: Some(code("150101")),
                accepted_waste_codes: vec![code("150103")],
                ..kehl()
            },
            vec![],
            annex.clone(),
        ),
        (
            "a request naming no code",
            offer(1, "Strasbourg"),
            Candidate { waste_code: None, ..kehl() },
            vec![],
            annex.clone(),
        ),
        (
            "a request of waste, an offer without a code",
            Candidate {
                waste_code: None,
                legal_status: LegalStatus::ProductForReuse,
                ..offer(1, "Strasbourg")
            },
            kehl(),
            vec![],
            Err("material"),
        ),
        (
            "grade A asked, grade B offered",
            offer(1, "Strasbourg"),
            Candidate { quality: Quality::PalletGrade(PalletGrade::A), ..kehl() },
            vec![],
            Err("quality"),
        ),
        (
            "grade B asked, new offered",
            Candidate { quality: Quality::PalletGrade(PalletGrade::New), ..offer(1, "Strasbourg") },
            kehl(),
            vec![],
            annex.clone(),
        ),
        (
            "grade C asked, unsorted offered",
            Candidate { quality: Quality::PalletGrade(PalletGrade::Unsorted), ..offer(1, "Strasbourg") },
            Candidate { quality: Quality::PalletGrade(PalletGrade::C), ..kehl() },
            vec![],
            Err("quality"),
        ),
        (
            "unspecified asked, unsorted offered",
            Candidate { quality: Quality::PalletGrade(PalletGrade::Unsorted), ..offer(1, "Strasbourg") },
            Candidate { quality: Quality::Unspecified, ..kehl() },
            vec![],
            annex.clone(),
        ),
        (
            "rPET pellets asked, rPET flakes offered",
            Candidate {
                quality: Quality::Plastic { polymer: Polymer::Pet, form: PlasticForm::Flakes },
                ..offer(1, "Strasbourg")
            },
            Candidate {
                quality: Quality::Plastic { polymer: Polymer::Pet, form: PlasticForm::Pellets },
                ..kehl()
            },
            vec![],
            Err("quality"),
        ),
        (
            "analysed asked, declared offered",
            Candidate {
                quality: Quality::Specification {
                    text: "dry".into(),
                    data_quality: Some(DataQuality::Declared),
                },
                ..offer(1, "Strasbourg")
            },
            Candidate {
                quality: Quality::Specification {
                    text: "dry".into(),
                    data_quality: Some(DataQuality::Analysed),
                },
                ..kehl()
            },
            vec![],
            Err("quality"),
        ),
        (
            "analysed asked, certified offered",
            Candidate {
                quality: Quality::Specification {
                    text: "dry".into(),
                    data_quality: Some(DataQuality::Certified),
                },
                ..offer(1, "Strasbourg")
            },
            Candidate {
                quality: Quality::Specification {
                    text: "dry".into(),
                    data_quality: Some(DataQuality::Analysed),
                },
                ..kehl()
            },
            vec![],
            annex.clone(),
        ),
        (
            "the request's minimum lot above the offer",
            offer(1, "Strasbourg"),
            Candidate { available_milli: 60_000, minimum_lot_milli: 50_000, ..kehl() },
            vec![],
            Err("quantity"),
        ),
        (
            "the request below the offer's minimum lot",
            offer(1, "Strasbourg"),
            Candidate { available_milli: 5_000, ..kehl() },
            vec![],
            Err("quantity"),
        ),
        (
            "the offer's last pallets, below its minimum lot",
            Candidate { available_milli: 5_000, ..offer(1, "Strasbourg") },
            kehl(),
            vec![],
            annex.clone(),
        ),
        (
            "windows apart",
            Candidate {
                available_from_ms: NOW_MS + 61 * DAY_MS,
                available_until_ms: NOW_MS + 90 * DAY_MS,
                ..offer(1, "Strasbourg")
            },
            kehl(),
            vec![],
            Err("availability"),
        ),
        (
            "windows ended",
            Candidate {
                available_from_ms: NOW_MS - 9 * DAY_MS,
                available_until_ms: NOW_MS - DAY_MS,
                ..offer(1, "Strasbourg")
            },
            Candidate { available_from_ms: NOW_MS - 9 * DAY_MS, ..kehl() },
            vec![],
            Err("availability"),
        ),
        (
            "above the maximum price",
            Candidate { price_per_unit: eur(450), ..offer(1, "Strasbourg") },
            kehl(),
            vec![],
            Err("price"),
        ),
        (
            "a gate fee under a free maximum",
            Candidate { price_per_unit: eur(-200), ..offer(1, "Strasbourg") },
            Candidate { price_per_unit: eur(0), ..kehl() },
            vec![],
            annex.clone(),
        ),
        (
            "a request keeping to its country",
            offer(1, "Strasbourg"),
            Candidate { accepts_other_countries: false, ..kehl() },
            vec![],
            Err("border"),
        ),
        (
            "delivered within 3 km, Kehl at 5",
            Candidate { delivery: Delivery::SellerDelivers { within_km: 3 }, ..offer(1, "Strasbourg") },
            kehl(),
            vec![],
            Err("delivery"),
        ),
        (
            "delivered within 50 km",
            Candidate { delivery: Delivery::SellerDelivers { within_km: 50 }, ..offer(1, "Strasbourg") },
            kehl(),
            vec![],
            annex.clone(),
        ),
        (
            "either, delivered within 3 km or collected",
            Candidate { delivery: Delivery::Either { seller_within_km: 3 }, ..offer(1, "Strasbourg") },
            kehl(),
            vec![],
            annex.clone(),
        ),
        (
            "a by-product across the border",
            Candidate { legal_status: LegalStatus::ByProduct, ..offer(1, "Strasbourg") },
            kehl(),
            vec![],
            Ok((true, vec![])),
        ),
        (
            "hazardous solvent, no permit",
            solvent_offer("Strasbourg"),
            solvent_request("Strasbourg"),
            vec![],
            Err("permit"),
        ),
        (
            "hazardous solvent, a permit for another code",
            solvent_offer("Strasbourg"),
            solvent_request("Strasbourg"),
            vec![permit(&["140602"])],
            Err("permit"),
        ),
        (
            "hazardous solvent, an expired permit",
            solvent_offer("Strasbourg"),
            solvent_request("Strasbourg"),
            vec![Permit { valid_until_ms: NOW_MS, ..permit(&["140603"]) }],
            Err("permit"),
        ),
        (
            "hazardous solvent, a valid permit",
            solvent_offer("Strasbourg"),
            solvent_request("Strasbourg"),
            vec![permit(&["140602"]), permit(&["140603"])],
            domestic.clone(),
        ),
        (
            "hazardous solvent to Kehl, a valid permit",
            solvent_offer("Strasbourg"),
            solvent_request("Kehl"),
            vec![permit(&["140603"])],
            Ok((true, vec![RequiredDocument::PriorNotification])),
        ),
    ]
}

#[test]
fn each_rule_admits_and_refuses_its_pairs() {
    let mut failures = Vec::new();
    for (name, offer, request, permits, expected) in rows() {
        let outcome = check(&offer, &request, &permits, NOW_MS);
        let got: Expected =
            outcome.as_ref().map(|fit| (fit.cross_border, fit.documents.clone())).map_err(rule);
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {outcome:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_has_a_row_that_fails_it() {
    let failed: std::collections::BTreeSet<&str> =
        rows().into_iter().filter_map(|(.., expected)| expected.err()).collect();
    assert_eq!(failed.len(), 14, "{failed:?}");
}

#[test]
fn a_fit_tells_the_distance_and_the_lot() {
    let fit = check(&offer(1, "Strasbourg"), &request(2, "Kehl"), &[], NOW_MS).expect("a match");
    assert!((4.0..6.0).contains(&fit.distance_km), "{}", fit.distance_km);
    assert_eq!(fit.lot_milli, 20_000);
    let far = check(&offer(1, "Strasbourg"), &request(2, "Reims"), &[], NOW_MS).expect_err("too far");
    assert!(far.to_string().starts_with("28"), "{far}");
    assert!(far.to_string().ends_with("km apart, the request accepts at most 200 km"), "{far}");
}

#[test]
fn mismatches_say_why() {
    let cases = [
        (
            Mismatch::Unit { offer: Unit::Pallet, request: Unit::Piece },
            "the offer is counted in pallet, the request in piece",
        ),
        (
            Mismatch::Price { offer: eur(450), request: eur(400) },
            "the offer's price 4.50 EUR per unit is above the request's maximum 4.00 EUR",
        ),
        (
            Mismatch::Permit { code: code("140603") },
            "hazardous waste 14 06 03*: the buyer holds no valid permit accepting it",
        ),
        (
            Mismatch::Border { offer: town("Strasbourg").country, request: town("Kehl").country },
            "the offer is in FR and the request accepts material from DE only",
        ),
    ];
    for (mismatch, text) in cases {
        assert_eq!(mismatch.to_string(), text);
    }
}

#[test]
fn pallet_grades_rank_new_a_b_c_unsorted() {
    let grades = [PalletGrade::Unsorted, PalletGrade::C, PalletGrade::B, PalletGrade::A, PalletGrade::New];
    for (offered_rank, offered) in grades.iter().enumerate() {
        for (wanted_rank, wanted) in grades.iter().enumerate() {
            let satisfied = quality_satisfies(
                QualityKey::of(&Quality::PalletGrade(*offered)),
                QualityKey::of(&Quality::PalletGrade(*wanted)),
            );
            assert_eq!(satisfied, offered_rank >= wanted_rank, "{offered:?} for {wanted:?}");
        }
    }
}

#[test]
fn quality_bits_say_what_rule_7_says() {
    use symbiose_domain::lot::{PlasticForm, Polymer};
    let mut keys = vec![QualityKey::Unspecified];
    keys.extend((0..=4).map(QualityKey::Grade));
    keys.extend((0..=3).map(QualityKey::Specification));
    for polymer in [Polymer::Pet, Polymer::Hdpe, Polymer::Pp, Polymer::Ldpe] {
        for form in [PlasticForm::Flakes, PlasticForm::Pellets] {
            keys.push(QualityKey::Plastic(polymer, form));
        }
    }
    let bits: std::collections::BTreeSet<u32> = keys.iter().map(|key| key.bit()).collect();
    assert_eq!(bits.len(), keys.len(), "one bit per quality");
    for &offer in &keys {
        for &request in &keys {
            let satisfied = quality_satisfies(offer, request);
            assert_eq!(
                request.compatible_bits(false) & offer.bit() != 0,
                satisfied,
                "{offer:?} for {request:?}"
            );
            assert_eq!(
                offer.compatible_bits(true) & request.bit() != 0,
                satisfied,
                "{offer:?} for {request:?}"
            );
        }
    }
}
