//! How well a compatible pair fits: four components in [0, 1], their weighted sum, and the
//! transport CO2 of the lot, so a person can see why a pair ranks where it does.
//!
//! For an offer `o` and a request `r` that pass the rules, at great-circle distance `d` km,
//! with the lot `lot` (the smaller of what `o` has left and what `r` wants), at `now`:
//!
//! ```text
//! distance = clamp(1 - d / max(r.max_distance_km, 1), 0, 1)
//! price    = clamp((r.price - o.price) / max(|r.price|, 1), 0, 1)      prices in minor units
//! quantity = lot / r.wanted
//! timing   = clamp(1 - (start - open) / (r.until - open), 0, 1), and 1 when r.until <= open,
//!            where open = max(r.from, now) and start = max(o.from, open)
//! total    = 0.40 distance + 0.25 price + 0.20 quantity + 0.15 timing
//! co2_kg   = mass_t(lot) * d * 1.30 * 0.105                               when the mass is known
//! ```
//!
//! - `distance` is the transport CO2 per tonne delivered, relative to that at the request's
//!   own limit: with one emission factor and one road factor for every pair it is linear in
//!   the distance, so it is written as the distance. It is the heaviest weight: short supply
//!   circuits are the plan's first aim.
//! - `price` is what the buyer saves on its maximum, as a share of the maximum: 1 at a price of
//!   zero or below (a gate fee) under a positive maximum, 0 at the maximum. Under a maximum at
//!   or below zero (the buyer wants to be paid) the share is of the fee it asks.
//! - `quantity` is how much of the request the offer covers.
//! - `timing` is how soon the lot can move within the request's window: 1 when the offer is
//!   available as soon as the request is (or now), 0 when only at the window's end.
//! - `co2_kg` is the estimate for moving the whole lot by road (the great-circle distance times
//!   `ROAD_FACTOR_PERCENT`), shown and not weighed: a larger lot emits more in total but less
//!   per tonne, and ranking on the total would punish it. `None` when the unit has no known
//!   mass (pieces of packaging, litres of solvent): the distance alone then says it.
//!
//! Scores are floats: they rank, they are never summed into money.

use symbiose_domain::geo::ROAD_FACTOR_PERCENT;
use symbiose_domain::{MaterialFamily, Unit};

use crate::{Candidate, Fit};

/// Weight of the distance component.
pub const WEIGHT_DISTANCE: f64 = 0.40;
/// Weight of the price component.
pub const WEIGHT_PRICE: f64 = 0.25;
/// Weight of the quantity component.
pub const WEIGHT_QUANTITY: f64 = 0.20;
/// Weight of the timing component.
pub const WEIGHT_TIMING: f64 = 0.15;

pub use symbiose_domain::freight::{
    PALLET_MASS_G, ROAD_FREIGHT_KG_CO2E_PER_TONNE_KM, WATER_MASS_G_PER_LITRE, mass_g_per_unit,
};

pub use symbiose_matching_contract::proposal::Score;

/// The score of the compatible pair `offer`, `request` whose rules gave `fit`.
pub fn score(offer: &Candidate, request: &Candidate, fit: &Fit, now_ms: i64) -> Score {
    let [distance, price, quantity, timing] = components(
        (fit.distance_km, request.max_distance_km),
        (offer.price_per_unit.minor(), request.price_per_unit.minor()),
        (fit.lot_milli, request.available_milli),
        (offer.available_from_ms, (request.available_from_ms, request.available_until_ms)),
        now_ms,
    );
    Score {
        total: weighted(distance, price, quantity, timing),
        distance,
        price,
        quantity,
        timing,
        co2_kg: transport_co2_kg(offer.family, offer.unit, fit.lot_milli, fit.distance_km),
    }
}

/// The distance, price, quantity and timing components from what they read: (distance, the
/// request's maximum distance), (the offer's price, the request's maximum), (the lot, what the
/// request wants), (the offer's start, the request's window).
pub(crate) fn components(
    distance: (f64, u32),
    price: (i64, i64),
    quantity: (i64, i64),
    timing: (i64, (i64, i64)),
    now_ms: i64,
) -> [f64; 4] {
    [
        distance_component(distance.0, distance.1),
        price_component(price.0, price.1),
        share(quantity.0, quantity.1),
        timing_component(timing.0, timing.1, now_ms),
    ]
}

/// The weighted sum of the four components.
pub(crate) fn weighted(distance: f64, price: f64, quantity: f64, timing: f64) -> f64 {
    WEIGHT_DISTANCE * distance + WEIGHT_PRICE * price + WEIGHT_QUANTITY * quantity + WEIGHT_TIMING * timing
}

pub(crate) fn distance_component(distance_km: f64, max_distance_km: u32) -> f64 {
    (1.0 - distance_km / f64::from(max_distance_km.max(1))).clamp(0.0, 1.0)
}

pub(crate) fn price_component(offer_minor: i64, maximum_minor: i64) -> f64 {
    let saved = maximum_minor.saturating_sub(offer_minor) as f64;
    (saved / maximum_minor.unsigned_abs().max(1) as f64).clamp(0.0, 1.0)
}

/// `part / whole` in [0, 1], 0 for an empty whole.
pub(crate) fn share(part: i64, whole: i64) -> f64 {
    if whole <= 0 { 0.0 } else { (part as f64 / whole as f64).clamp(0.0, 1.0) }
}

pub(crate) fn timing_component(offer_from_ms: i64, request_window: (i64, i64), now_ms: i64) -> f64 {
    let open = request_window.0.max(now_ms);
    let close = request_window.1;
    if close <= open {
        return 1.0;
    }
    let start = offer_from_ms.max(open);
    (1.0 - (start - open) as f64 / (close - open) as f64).clamp(0.0, 1.0)
}

/// kgCO2e of moving `amount_milli` milli-units over `distance_km` great-circle by road.
pub fn transport_co2_kg(
    family: MaterialFamily,
    unit: Unit,
    amount_milli: i64,
    distance_km: f64,
) -> Option<f64> {
    let grams_per_unit = mass_g_per_unit(family, unit)?;
    let tonnes = amount_milli as f64 / 1_000.0 * grams_per_unit as f64 / 1_000_000.0;
    let road_km = distance_km * ROAD_FACTOR_PERCENT as f64 / 100.0;
    Some(tonnes * road_km * ROAD_FREIGHT_KG_CO2E_PER_TONNE_KM)
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::*;
    use crate::rules::check;
    use crate::testing::{DAY_MS, NOW_MS, eur, offer, request};

    #[track_caller]
    fn score_of(offer: &Candidate, request: &Candidate) -> Score {
        let fit = check(offer, request, &[], NOW_MS).expect("a match");
        score(offer, request, &fit, NOW_MS)
    }

    #[track_caller]
    fn close(value: f64, expected: f64) {
        assert!((value - expected).abs() < 1e-9, "{value} is not {expected}");
    }

    #[test]
    fn the_weights_are_pinned_by_literal_totals() {
        // Worked by hand: 0.40 distance, 0.25 price, 0.20 quantity, 0.15 timing.
        close(weighted(1.0, 1.0, 1.0, 1.0), 1.0);
        close(weighted(1.0, 0.0, 0.0, 0.0), 0.40);
        close(weighted(0.0, 1.0, 0.0, 0.0), 0.25);
        close(weighted(0.0, 0.0, 1.0, 0.0), 0.20);
        close(weighted(0.0, 0.0, 0.0, 1.0), 0.15);
        // The README's Strasbourg-Kehl pair: 0.4 x 0.98 + 0.25 x 0.12 + 0.2 + 0.15 = 0.772.
        close(weighted(0.98, 0.12, 1.0, 1.0), 0.772);
    }

    #[test]
    fn components_of_the_strasbourg_kehl_pair() {
        let score = score_of(&offer(1, "Strasbourg"), &request(2, "Kehl"));
        // About 4.6 km of 200.
        assert!((0.97..0.98).contains(&score.distance), "{}", score.distance);
        close(score.price, 0.125); // 3.50 against at most 4.00
        close(score.quantity, 1.0); // 40 pallets for 20 wanted
        close(score.timing, 1.0); // both open now
        close(score.total, weighted(score.distance, 0.125, 1.0, 1.0));
        // 20 pallets of 25 kg = 0.5 t, over about 4.6 * 1.3 km of road.
        let co2 = score.co2_kg.expect("pallets have a mass");
        assert!((0.29..0.33).contains(&co2), "{co2}");
    }

    #[test]
    fn nearer_ranks_higher_all_else_equal() {
        let near = score_of(&offer(1, "Kehl"), &request(3, "Strasbourg"));
        let farther = score_of(&offer(2, "Offenburg"), &request(3, "Strasbourg"));
        let far = score_of(&offer(4, "Karlsruhe"), &request(3, "Strasbourg"));
        assert_eq!(near.best_first(&farther), Ordering::Less);
        assert_eq!(farther.best_first(&far), Ordering::Less);
        assert!(near.total > farther.total && farther.total > far.total);
        assert!(near.co2_kg < far.co2_kg);
    }

    #[test]
    fn cheaper_fuller_and_sooner_rank_higher() {
        let request = request(9, "Strasbourg");
        let base = score_of(&offer(1, "Strasbourg"), &request);
        let gate_fee = score_of(&Candidate { price_per_unit: eur(-100), ..offer(1, "Strasbourg") }, &request);
        close(gate_fee.price, 1.0);
        assert!(gate_fee.total > base.total);
        let partial = score_of(&Candidate { available_milli: 10_000, ..offer(1, "Strasbourg") }, &request);
        close(partial.quantity, 0.5);
        assert!(partial.total < base.total);
        let later = Candidate { available_from_ms: NOW_MS + 30 * DAY_MS, ..offer(1, "Strasbourg") };
        let later = score_of(&later, &request);
        close(later.timing, 0.5); // half way through the request's 60 days
        assert!(later.total < base.total);
    }

    #[test]
    fn price_is_a_share_of_the_maximum_either_side_of_zero() {
        close(price_component(400, 400), 0.0);
        close(price_component(0, 400), 1.0);
        close(price_component(-50, 400), 1.0);
        close(price_component(300, 400), 0.25);
        // The buyer asks to be paid 2.00 at least: a fee of 3.00 saves half of it again.
        close(price_component(-300, -200), 0.5);
        close(price_component(-200, 0), 1.0);
        close(price_component(0, 0), 0.0);
    }

    #[test]
    fn timing_within_the_request_window() {
        close(timing_component(NOW_MS, (NOW_MS, NOW_MS + 10), NOW_MS), 1.0);
        close(timing_component(NOW_MS + 10, (NOW_MS, NOW_MS + 10), NOW_MS), 0.0);
        close(timing_component(NOW_MS - DAY_MS, (NOW_MS - 2 * DAY_MS, NOW_MS + DAY_MS), NOW_MS), 1.0);
        close(timing_component(NOW_MS, (NOW_MS, NOW_MS), NOW_MS), 1.0);
    }

    #[test]
    fn masses_are_known_for_weights_pallets_and_water_only() {
        assert_eq!(mass_g_per_unit(MaterialFamily::Metals, Unit::Tonne), Some(1_000_000));
        assert_eq!(mass_g_per_unit(MaterialFamily::Pallets, Unit::Pallet), Some(25_000));
        assert_eq!(mass_g_per_unit(MaterialFamily::ProcessWater, Unit::CubicMetre), Some(1_000_000));
        assert_eq!(mass_g_per_unit(MaterialFamily::Solvents, Unit::Litre), None);
        assert_eq!(mass_g_per_unit(MaterialFamily::Packaging, Unit::Pallet), None);
        // 10 t over 100 km great-circle: 130 km of road, 1300 t.km.
        let co2 = transport_co2_kg(MaterialFamily::Metals, Unit::Tonne, 10_000, 100.0).expect("mass");
        close(co2, 1300.0 * ROAD_FREIGHT_KG_CO2E_PER_TONNE_KM);
        assert_eq!(transport_co2_kg(MaterialFamily::Solvents, Unit::Litre, 10_000, 100.0), None);
    }
}
