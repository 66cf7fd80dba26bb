//! The index against the rules: what `find` returns is what a scan of every candidate with
//! `rules::check` admits, best first.

use std::collections::BTreeSet;

use proptest::prelude::*;
use symbiose_domain::lot::{LegalStatus, Place, Quality};
use symbiose_domain::{Country, Money, PalletGrade, WasteCode, geo};

use super::*;
use crate::testing::{DAY_MS, NOW_MS, code, offer, permit, request, town};

fn ids(matches: &[Match]) -> Vec<u128> {
    matches.iter().map(|found| found.counterpart.as_u128()).collect()
}

#[test]
fn a_request_finds_the_offers_within_its_distance_nearest_first() {
    let index = MatchIndex::bulk_load([
        offer(1, "Offenburg"),
        offer(2, "Strasbourg"),
        offer(3, "Reims"),
        offer(4, "Karlsruhe"),
        Candidate { quality: Quality::PalletGrade(PalletGrade::C), ..offer(5, "Kehl") },
    ]);
    let found = index.find(&request(9, "Kehl"), 10, NOW_MS);
    assert_eq!(ids(&found), [2, 1, 4]);
    assert!(found.windows(2).all(|pair| pair[0].score.total >= pair[1].score.total));
    assert!(found[0].fit.cross_border);
    assert_eq!(index.find(&request(9, "Kehl"), 2, NOW_MS).len(), 2);
    assert!(index.find(&request(9, "Kehl"), 0, NOW_MS).is_empty());
}

#[test]
fn an_offer_finds_the_requests_whose_own_distance_reaches_it() {
    let index = MatchIndex::bulk_load([
        request(1, "Reims"),
        Candidate { max_distance_km: 300, ..request(2, "Reims") },
        request(3, "Kehl"),
        Candidate { accepts_other_countries: false, ..request(4, "Kehl") },
    ]);
    assert_eq!(ids(&index.find(&offer(9, "Strasbourg"), 10, NOW_MS)), [3, 2]);
    let delivered =
        Candidate { delivery: Delivery::SellerDelivers { within_km: 50 }, ..offer(9, "Strasbourg") };
    assert_eq!(ids(&index.find(&delivered, 10, NOW_MS)), [3]);
}

#[test]
fn upsert_replaces_remove_forgets_and_nothing_left_is_not_indexed() {
    let mut index = MatchIndex::new();
    index.upsert(offer(1, "Strasbourg"));
    index.upsert(offer(2, "Offenburg"));
    assert_eq!(index.len(), 2);
    assert_eq!(ids(&index.find(&request(9, "Kehl"), 10, NOW_MS)), [1, 2]);

    index.upsert(offer(1, "Reims"));
    assert_eq!(index.len(), 2);
    assert_eq!(ids(&index.find(&request(9, "Kehl"), 10, NOW_MS)), [2]);

    index.upsert(Candidate { available_milli: 0, ..offer(2, "Offenburg") });
    assert_eq!(index.len(), 1);
    assert!(index.get(Uuid::from_u128(2)).is_none());
    assert!(index.find(&request(9, "Kehl"), 10, NOW_MS).is_empty());

    assert_eq!(index.remove(Uuid::from_u128(1)).map(|removed| removed.place), Some(town("Reims")));
    assert_eq!(index.remove(Uuid::from_u128(1)), None);
    assert!(index.is_empty());
    index.upsert(offer(3, "Strasbourg"));
    assert_eq!(ids(&index.find_for(Uuid::from_u128(3), 10, NOW_MS).expect("indexed")), Vec::<u128>::new());
    index.upsert(request(4, "Kehl"));
    assert_eq!(ids(&index.find_for(Uuid::from_u128(3), 10, NOW_MS).expect("indexed")), [4]);
    assert_eq!(index.find_for(Uuid::from_u128(5), 10, NOW_MS), None);
}

#[test]
fn hazardous_waste_goes_to_holders_of_a_permit_only() {
    let solvent = |candidate: Candidate| Candidate {
        family: MaterialFamily::Solvents,
        waste_code: Some(code("140603")),
        quality: Quality::Unspecified,
        unit: Unit::Litre,
        ..candidate
    };
    let mut index = MatchIndex::bulk_load([solvent(request(1, "Kehl")), solvent(request(2, "Strasbourg"))]);
    let holder = Uuid::from_u128(1_000 + 2);
    index.set_permits(holder, vec![permit(&["140603"])]);
    let found = index.find(&solvent(offer(9, "Strasbourg")), 10, NOW_MS);
    assert_eq!(ids(&found), [2]);
    assert!(found[0].fit.documents.is_empty());
    index.set_permits(Uuid::from_u128(1_000 + 1), vec![permit(&["140603"])]);
    let found = index.find(&solvent(offer(9, "Strasbourg")), 10, NOW_MS);
    assert_eq!(ids(&found), [2, 1]);
    assert_eq!(found[1].fit.documents, [crate::RequiredDocument::PriorNotification]);
    index.set_permits(holder, vec![]);
    assert!(index.permits_of(holder).is_empty());
    assert_eq!(ids(&index.find(&solvent(offer(9, "Strasbourg")), 10, NOW_MS)), [1]);
}

#[test]
fn nearest_ignores_the_rules() {
    let index = MatchIndex::bulk_load([offer(1, "Reims"), offer(2, "Strasbourg"), request(3, "Kehl")]);
    let nearest: Vec<u128> = index.nearest(&request(9, "Kehl"), 10).iter().map(|id| id.as_u128()).collect();
    assert_eq!(nearest, [2, 1]);
}

#[test]
fn chords_and_arcs_agree_with_the_haversine() {
    let strasbourg = town("Strasbourg").point;
    for place in geo::places() {
        let [a, b] = [to_space(&strasbourg), to_space(&place.point)];
        let chord = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt();
        let haversine = strasbourg.distance_km(&place.point);
        assert!(
            (arc_of_chord_km(chord) - haversine).abs() < SUMMARY_DISTANCE_MARGIN_KM / 1000.0,
            "{}",
            place.name
        );
    }
}

// A random small population, to hold `find` to a scan of every candidate with the rules.

/// Towns of the Upper Rhine, most within 200 km of each other, on both sides of two borders.
const TOWNS: [&str; 8] =
    ["Strasbourg", "Kehl", "Offenburg", "Haguenau", "Colmar", "Karlsruhe", "Basel", "Freiburg im Breisgau"];
const CODES: [Option<&str>; 4] = [Some("150103"), Some("150101"), None, Some("140603")];
const GRADES: [Option<PalletGrade>; 6] = [
    None,
    Some(PalletGrade::New),
    Some(PalletGrade::A),
    Some(PalletGrade::B),
    Some(PalletGrade::C),
    Some(PalletGrade::Unsorted),
];

fn any_candidate() -> impl Strategy<Value = Candidate> {
    (
        (any::<bool>(), 0..TOWNS.len(), -0.3..0.3f64, -0.3..0.3f64, 0..6u128),
        (
            prop_oneof![6 => Just(0), 1 => Just(1), 1 => Just(2), 1 => Just(3)],
            0..GRADES.len(),
            any::<bool>(),
            prop_oneof![6 => Just(Unit::Pallet), 1 => Just(Unit::Piece)],
        ),
        (1..120i64, 0..30i64, -10..20i64, 10..60i64),
        (
            -200..800i64,
            prop_oneof![6 => Just(Currency::Eur), 1 => Just(Currency::Chf)],
            0..3u8,
            1..80u32,
            10..300u32,
        ),
        (prop_oneof![3 => Just(true), 1 => Just(false)], any::<u128>(), 0..1000u64),
    )
        .prop_map(|(place, material, quantities, terms, identity)| {
            let (is_offer, town, latitude, longitude, owner) = place;
            let (code_index, grade_index, by_product, unit) = material;
            let (available, minimum, from_days, length_days) = quantities;
            let (price, currency, delivery, within_km, max_distance_km) = terms;
            let (accepts_other_countries, id, published_position) = identity;
            let town = geo::place(TOWNS[town]).expect("a town of the table");
            // One in four on the town itself, so that distances, and scores, tie.
            let (latitude, longitude) = if (id >> 64) % 4 == 0 { (0.0, 0.0) } else { (latitude, longitude) };
            let point = GeoPoint::new(town.point.latitude() + latitude, town.point.longitude() + longitude)
                .expect("a point near a town");
            let waste_code: Option<WasteCode> = CODES[code_index].map(code);
            let family = if waste_code.is_some_and(|code| code.is_hazardous()) {
                MaterialFamily::Solvents
            } else if code_index == 1 && (id >> 66) % 2 == 0 {
                MaterialFamily::Packaging
            } else {
                MaterialFamily::Pallets
            };
            Candidate {
                id: Uuid::from_u128(id),
                owner: Uuid::from_u128(owner),
                side: if is_offer { Side::Offer } else { Side::Request },
                family,
                waste_code,
                accepted_waste_codes: if code_index == 1 { vec![code("150103")] } else { vec![] },
                legal_status: if by_product { LegalStatus::ByProduct } else { LegalStatus::Waste },
                quality: GRADES[grade_index].map_or(Quality::Unspecified, Quality::PalletGrade),
                available_milli: available * 1000,
                unit,
                minimum_lot_milli: minimum * 1000,
                available_from_ms: NOW_MS + from_days * DAY_MS,
                available_until_ms: NOW_MS + (from_days + length_days) * DAY_MS,
                place: Place { point, country: town.country },
                price_per_unit: Money::new(price, currency).expect("money"),
                delivery: match delivery {
                    0 => Delivery::BuyerCollects,
                    1 => Delivery::SellerDelivers { within_km },
                    _ => Delivery::Either { seller_within_km: within_km },
                },
                max_distance_km,
                accepts_other_countries,
                published_position,
            }
        })
}

/// Every candidate of `population` compatible with `of`, by the rules alone.
fn scan(index: &MatchIndex, population: &[Candidate], of: &Candidate) -> BTreeSet<Uuid> {
    population
        .iter()
        .filter(|other| other.side != of.side && index.get(other.id) == Some(*other))
        .filter(|other| {
            let (offer, request) = if of.side == Side::Offer { (of, *other) } else { (*other, of) };
            rules::check(offer, request, index.permits_of(request.owner), NOW_MS).is_ok()
        })
        .map(|other| other.id)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn find_returns_what_a_scan_with_the_rules_admits(
        population in proptest::collection::vec(any_candidate(), 0..120),
        queries in proptest::collection::vec(any_candidate(), 1..10),
        removed in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut index = MatchIndex::bulk_load(population.clone());
        let mut upserted = MatchIndex::new();
        for candidate in &population {
            upserted.upsert(candidate.clone());
        }
        for owner in [1u128, 3] {
            index.set_permits(Uuid::from_u128(owner), vec![permit(&["140603"])]);
            upserted.set_permits(Uuid::from_u128(owner), vec![permit(&["140603"])]);
        }
        if !population.is_empty() {
            for which in &removed {
                let id = population[which.index(population.len())].id;
                index.remove(id);
                upserted.remove(id);
            }
        }
        prop_assert_eq!(index.len(), upserted.len());
        for of in &queries {
            let expected = scan(&index, &population, of);
            let found = index.find(of, MATCHES_MAX, NOW_MS);
            let found_ids: BTreeSet<Uuid> = found.iter().map(|found| found.counterpart).collect();
            prop_assert_eq!(found_ids.len(), found.len());
            prop_assert_eq!(&found_ids, &expected);
            prop_assert!(found.windows(2).all(|pair| pair[0].score.best_first(&pair[1].score).is_le()));
            prop_assert_eq!(ids(&upserted.find(of, MATCHES_MAX, NOW_MS)), ids(&found));
            if let Some(best) = found.first() {
                let top = index.find(of, 1, NOW_MS);
                prop_assert_eq!(top.len(), 1);
                prop_assert!(top[0].score.total >= best.score.total);
            }
        }
    }
}

/// The best `limit` compatible counterparts of `of` among every candidate of `population` still
/// indexed, by `rules::check` and `score::score` alone, in `find`'s order.
fn exhaustive(index: &MatchIndex, population: &[Candidate], of: &Candidate, limit: usize) -> Vec<Match> {
    let mut seen = BTreeSet::new();
    let mut all: Vec<(Match, u64)> = population
        .iter()
        .filter(|other| other.side != of.side && index.get(other.id) == Some(*other) && seen.insert(other.id))
        .filter_map(|other| {
            let (offer, request) = if of.side == Side::Offer { (of, other) } else { (other, of) };
            let fit = rules::check(offer, request, index.permits_of(request.owner), NOW_MS).ok()?;
            let score = score::score(offer, request, &fit, NOW_MS);
            Some((Match { counterpart: other.id, fit, score }, other.published_position))
        })
        .collect();
    all.sort_by(|(a, a_position), (b, b_position)| {
        a.score.best_first(&b.score).then(b_position.cmp(a_position)).then(a.counterpart.cmp(&b.counterpart))
    });
    all.into_iter().take(limit).map(|(found, _)| found).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// On indexes of a few thousand candidates, bulk-loaded, then grown one by one past the
    /// buffer into trees of several levels, then thinned, `find` is exactly the exhaustive
    /// answer: the same counterparts, the same scores, the same order, ties included.
    #[test]
    fn find_is_the_exhaustive_best(
        loaded in proptest::collection::vec(any_candidate(), 0..2000),
        inserted in proptest::collection::vec(any_candidate(), 0..1500),
        queries in proptest::collection::vec(any_candidate(), 1..24),
        removed in proptest::collection::vec(any::<prop::sample::Index>(), 0..400),
        limit in prop_oneof![Just(1usize), Just(3), Just(10), Just(MATCHES_MAX)],
    ) {
        let mut index = MatchIndex::bulk_load(loaded.clone());
        for candidate in &inserted {
            index.upsert(candidate.clone());
        }
        index.set_permits(Uuid::from_u128(1), vec![permit(&["140603"])]);
        let population: Vec<Candidate> = loaded.iter().chain(&inserted).rev().cloned().collect();
        if !population.is_empty() {
            for which in &removed {
                index.remove(population[which.index(population.len())].id);
            }
        }
        for of in &queries {
            let expected = exhaustive(&index, &population, of, limit);
            prop_assert_eq!(index.find(of, limit, NOW_MS), expected);
        }
    }
}

#[test]
fn a_match_in_chf_stays_in_chf() {
    let basel = |candidate: Candidate| Candidate {
        price_per_unit: Money::new(candidate.price_per_unit.minor(), Currency::Chf).expect("money"),
        ..candidate
    };
    let index = MatchIndex::bulk_load([basel(offer(1, "Basel")), offer(2, "Loerrach")]);
    assert_eq!(ids(&index.find(&basel(request(9, "Loerrach")), 10, NOW_MS)), [1]);
    assert_eq!(ids(&index.find(&request(9, "Basel"), 10, NOW_MS)), [2]);
    assert_eq!(town("Basel").country, Country::Ch);
}

#[test]
fn inserts_after_a_bulk_load_of_any_size_keep_the_trees_sound() {
    // `rstar` 0.12 bulk-loads some sizes into trees with leaves at different depths, where an
    // insert panics (seen at a million listings): inserts go to a tree of their own.
    let at = |n: u128| {
        let town = &geo::places()[(n % 7) as usize];
        let jitter = |prime: u128| ((n * prime) % 1000) as f64 / 1000.0 * 0.6 - 0.3;
        let point =
            GeoPoint::new(town.point.latitude() + jitter(7919), town.point.longitude() + jitter(104_729))
                .expect("a point");
        Candidate { place: Place { point, country: town.country }, ..offer(n, "Strasbourg") }
    };
    for size in (0..2000).step_by(97) {
        let mut index = MatchIndex::bulk_load((0..size).map(at));
        for n in size..size + 80 {
            index.upsert(at(n));
        }
        for n in (0..size + 80).step_by(3) {
            assert!(index.remove(Uuid::from_u128(n)).is_some());
        }
        assert_eq!(index.len() as u128, size + 80 - (size + 80).div_ceil(3));
        assert!(!index.find(&request(10_000, "Strasbourg"), 10, NOW_MS).is_empty() || size + 80 <= 3);
    }
}
