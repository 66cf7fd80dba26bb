//! Consolidation: several small offers close together, picked up as one load for a request
//! that no single offer near it can fill.
//!
//! For a request, [`MatchIndex::consolidate`] takes its compatible offers (every rule applies,
//! except that the request's minimum lot is asked of the whole load, not of each offer): the
//! [`COMPATIBLE_MAX`](crate::index::COMPATIBLE_MAX) nearest, nearest first. If one of them covers the request alone there is
//! nothing to consolidate: `find` proposes it. Otherwise each of the [`SEEDS_MAX`] nearest
//! offers is tried as the first of a load: the offers of the same waste code whose sites lie
//! within [`CLUSTER_RADIUS_KM`] of it are added largest first (fewest stops), at most
//! [`CONSOLIDATED_OFFERS_MAX`] in all, each for what the request still needs (an offer gives at
//! least its minimum lot, or all it has left, as a reservation must), until the request is
//! covered. A load counts if it has two offers or more and covers at least
//! [`COVERAGE_PERMILLE_MIN`] of the request (and the request's minimum lot). The best load by
//! score is proposed.
//!
//! The score of a load is the pair score's formula (see `score`) applied to the load: distance
//! from the load's centroid to the request; price, the average of each offer's price component
//! weighted by what it gives; quantity, the share of the request covered; timing, the latest
//! offer's (the load leaves when its last part is available); CO2, the sum over the offers of
//! each part's mass moved from its own site to the request.

use symbiose_domain::GeoPoint;
use symbiose_listings_contract::listing::Side;
use uuid::Uuid;

use crate::index::MatchIndex;
use crate::score::{self, Score};
use crate::{Candidate, Fit};

/// Largest distance of an offer's site from the first offer of a load, in km.
pub const CLUSTER_RADIUS_KM: f64 = 25.0;
/// Most offers in one load.
pub const CONSOLIDATED_OFFERS_MAX: usize = 5;
/// Least share of the request a load covers, in thousandths.
pub const COVERAGE_PERMILLE_MIN: i64 = 800;
/// Nearest offers tried as the first of a load.
pub const SEEDS_MAX: usize = 32;

/// Several offers picked up as one load for a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Consolidation {
    /// The offers and what each gives, in milli-units of the request's unit; the first is the
    /// one the others lie around.
    pub offers: Vec<(Uuid, i64)>,
    pub total_milli: i64,
    /// The share of the request covered, in thousandths.
    pub coverage_permille: i64,
    /// The middle of the offers' sites.
    pub centroid: GeoPoint,
    /// The farthest offer's site from the centroid, in km.
    pub pickup_radius_km: f64,
    /// From the centroid to the request, in km.
    pub distance_km: f64,
    pub score: Score,
}

impl MatchIndex {
    /// The best load of several nearby offers for the indexed request `request_id`, when no
    /// single compatible offer covers it (see the module's documentation).
    pub fn consolidate(&self, request_id: Uuid, now_ms: i64) -> Option<Consolidation> {
        let request = self.get(request_id)?;
        if request.side != Side::Request {
            return None;
        }
        let each = Candidate { minimum_lot_milli: 0, ..request.clone() };
        let offers = self.compatible(&each, now_ms);
        if offers.iter().any(|(_, fit)| fit.lot_milli >= request.available_milli) {
            return None;
        }
        offers
            .iter()
            .take(SEEDS_MAX)
            .filter_map(|seed| load(request, seed, &offers, now_ms))
            .max_by(|a, b| b.score.best_first(&a.score).then(a.coverage_permille.cmp(&b.coverage_permille)))
    }
}

/// The load around `seed` from `offers`, if it counts.
fn load(
    request: &Candidate,
    seed: &(&Candidate, Fit),
    offers: &[(&Candidate, Fit)],
    now_ms: i64,
) -> Option<Consolidation> {
    let (first, _) = seed;
    let mut around: Vec<&(&Candidate, Fit)> = offers
        .iter()
        .filter(|(offer, _)| {
            offer.id != first.id
                && offer.waste_code == first.waste_code
                && offer.place.point.distance_km(&first.place.point) <= CLUSTER_RADIUS_KM
        })
        .collect();
    around.sort_by(|(a, _), (b, _)| b.available_milli.cmp(&a.available_milli).then(a.id.cmp(&b.id)));
    let mut parts: Vec<(&Candidate, &Fit, i64)> = Vec::with_capacity(CONSOLIDATED_OFFERS_MAX);
    let mut needed = request.available_milli;
    for (offer, fit) in std::iter::once(seed).chain(around) {
        if needed == 0 || parts.len() == CONSOLIDATED_OFFERS_MAX {
            break;
        }
        let given = offer.available_milli.min(needed);
        if given < offer.minimum_lot_milli && given != offer.available_milli {
            continue;
        }
        parts.push((offer, fit, given));
        needed -= given;
    }
    let total_milli = request.available_milli - needed;
    let coverage_permille = total_milli.saturating_mul(1000) / request.available_milli.max(1);
    if parts.len() < 2 || coverage_permille < COVERAGE_PERMILLE_MIN || total_milli < request.minimum_lot_milli
    {
        return None;
    }
    let count = parts.len() as f64;
    let centroid = GeoPoint::new(
        parts.iter().map(|(offer, ..)| offer.place.point.latitude()).sum::<f64>() / count,
        parts.iter().map(|(offer, ..)| offer.place.point.longitude()).sum::<f64>() / count,
    )
    .ok()?;
    let pickup_radius_km =
        parts.iter().map(|(offer, ..)| offer.place.point.distance_km(&centroid)).fold(0.0, f64::max);
    let distance_km = centroid.distance_km(&request.place.point);
    let distance = score::distance_component(distance_km, request.max_distance_km);
    let price = parts
        .iter()
        .map(|(offer, _, given)| {
            score::price_component(offer.price_per_unit.minor(), request.price_per_unit.minor())
                * score::share(*given, total_milli)
        })
        .sum();
    let quantity = score::share(total_milli, request.available_milli);
    let timing = parts
        .iter()
        .map(|(offer, ..)| {
            score::timing_component(
                offer.available_from_ms,
                (request.available_from_ms, request.available_until_ms),
                now_ms,
            )
        })
        .fold(1.0, f64::min);
    let co2_kg = parts
        .iter()
        .map(|(offer, fit, given)| score::transport_co2_kg(offer.family, offer.unit, *given, fit.distance_km))
        .sum();
    Some(Consolidation {
        offers: parts.iter().map(|(offer, _, given)| (offer.id, *given)).collect(),
        total_milli,
        coverage_permille,
        centroid,
        pickup_radius_km,
        distance_km,
        score: Score {
            total: score::weighted(distance, price, quantity, timing),
            distance,
            price,
            quantity,
            timing,
            co2_kg,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NOW_MS, offer, request};

    fn small_offer(id: u128, at: &str) -> Candidate {
        Candidate { available_milli: 30_000, ..offer(id, at) }
    }

    fn large_request() -> Candidate {
        Candidate { available_milli: 100_000, minimum_lot_milli: 50_000, ..request(100, "Strasbourg") }
    }

    #[test]
    fn small_offers_close_together_make_one_load() {
        let index = MatchIndex::bulk_load([
            large_request(),
            small_offer(1, "Strasbourg"),
            small_offer(2, "Kehl"),
            small_offer(3, "Offenburg"),
            small_offer(4, "Metz"),
        ]);
        assert!(index.find_for(large_request().id, 10, NOW_MS).expect("indexed").is_empty());
        let load = index.consolidate(large_request().id, NOW_MS).expect("a load");
        let mut ids: Vec<u128> = load.offers.iter().map(|(id, _)| id.as_u128()).collect();
        ids.sort();
        assert_eq!(ids, [1, 2, 3]);
        assert!(load.offers.iter().all(|(_, given)| *given == 30_000));
        assert_eq!(load.total_milli, 90_000);
        assert_eq!(load.coverage_permille, 900);
        let first = index.get(load.offers[0].0).expect("indexed").place.point;
        for (id, _) in &load.offers {
            let point = index.get(*id).expect("indexed").place.point;
            assert!(point.distance_km(&first) <= CLUSTER_RADIUS_KM);
        }
        assert!(load.pickup_radius_km < CLUSTER_RADIUS_KM);
        assert!(load.distance_km < 15.0, "{}", load.distance_km);
        assert!((load.score.quantity - 0.9).abs() < 1e-9);
        assert!(load.score.co2_kg.is_some_and(|co2| co2 > 0.0));
    }

    #[test]
    fn offers_far_apart_make_no_load() {
        let index = MatchIndex::bulk_load([
            large_request(),
            small_offer(1, "Strasbourg"),
            small_offer(2, "Colmar"),
            small_offer(3, "Haguenau"),
            small_offer(4, "Saverne"),
            small_offer(5, "Karlsruhe"),
        ]);
        // Every offer is compatible with the request, but no two lie within 25 km of each
        // other (Strasbourg to Haguenau, the nearest, is 27 km).
        assert_eq!(index.consolidate(large_request().id, NOW_MS), None);
    }

    #[test]
    fn a_load_stops_when_covered_and_a_single_offer_needs_none() {
        let index = MatchIndex::bulk_load([
            large_request(),
            Candidate { available_milli: 70_000, ..offer(1, "Strasbourg") },
            Candidate { available_milli: 60_000, ..offer(2, "Kehl") },
            small_offer(3, "Kehl"),
        ]);
        let load = index.consolidate(large_request().id, NOW_MS).expect("a load");
        assert_eq!(load.offers.len(), 2);
        assert_eq!(load.total_milli, 100_000);
        assert_eq!(load.coverage_permille, 1000);

        let index = MatchIndex::bulk_load([
            large_request(),
            Candidate { available_milli: 120_000, ..offer(1, "Kehl") },
        ]);
        assert_eq!(index.consolidate(large_request().id, NOW_MS), None);
        assert_eq!(index.consolidate(Uuid::from_u128(1), NOW_MS), None, "an offer is not consolidated");
    }
}
