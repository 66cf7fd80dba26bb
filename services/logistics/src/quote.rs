//! Automatic quotes: what a deal's lot weighs and takes up on a truck (`Load`), and what a
//! carrier's profile charges to move it, how long it takes and what it emits (`Quote`).
//!
//! The load of a lot:
//!
//! - mass: from the masses per unit matching uses (`symbiose_domain::freight::mass_g_per_unit`):
//!   kilograms and tonnes exactly, EUR pallets at `PALLET_MASS_G` (25 kg) each, process water
//!   at 1 kg per litre; rounded up to the kilogram. Other lots (packaging counted in pieces or
//!   pallets, solvents in litres, compost in m3) have no known mass: the quote then takes the
//!   smallest vehicle that fits on places and equipment, and charges and counts it as a full
//!   load of that vehicle (the carrier is paid for the truck it sends, and the CO2 is not
//!   understated).
//! - pallet places: a lot of EUR pallets travels as stacks of `EMPTY_PALLETS_PER_PLACE` empty
//!   pallets per place; a lot of anything else counted in pallets takes one place per loaded
//!   pallet; bulk, weights and pieces take none.
//! - dangerous goods: a hazardous entry of the List of Waste, or solvents (flammable liquids,
//!   ADR class 3, whether waste or regenerated). The ADR class is per substance; reading the
//!   hazardous flag as dangerous goods is the cautious side.
//!
//! A quote, for a carrier covering both places with a vehicle that fits (the smallest by
//! payload, then places: the rates are the carrier's whatever the vehicle, and a smaller truck
//! wastes less), and for dangerous goods only when its organization holds a transport permit
//! allowing them:
//!
//! ```text
//! road_m         = great-circle m x ROAD_FACTOR_PERCENT / 100        (geo::road_distance_m)
//! price          = max(minimum, per_km x road_m / 1000 + per_tonne x mass_g / 1_000_000)
//!                  in minor units, the sum rounded half up once at the end
//! duration_min   = ceil(road_m / (AVERAGE_SPEED_KM_PER_H x 1000) x 60)
//!                  + STOPS_PER_TRIP x HANDLING_MINUTES_PER_STOP
//! co2_kg         = mass_t x road_km x EMISSION_FACTOR.kg_co2e_per_tonne_km
//! expires_at_ms  = now_ms + QUOTE_VALIDITY_MS
//! ```
//!
//! The trip is pickup to delivery: the run from and back to the depot is the carrier's to
//! price into its rates. A carrier may also answer a request with its own price, checked by
//! `check_submitted_price`.

use symbiose_domain::freight::mass_g_per_unit;
use symbiose_domain::geo::road_distance_m;
use symbiose_domain::lot::Place;
use symbiose_domain::{Currency, MaterialFamily, Money, Quantity, Unit, WasteCode};
use uuid::Uuid;

use crate::carrier::{Carrier, Rates, Vehicle};

/// Average road speed of a truck over a regional trip, in km/h: motorways at 80 to 90, towns
/// and border approaches far below.
pub const AVERAGE_SPEED_KM_PER_H: i64 = 60;
/// Time to load or unload at one stop, in minutes (docking, counting or weighing, papers).
pub const HANDLING_MINUTES_PER_STOP: i64 = 30;
/// Stops of a trip: the pickup and the delivery.
pub const STOPS_PER_TRIP: i64 = 2;
/// How long an automatic quote holds, in ms (48 hours): rates and fuel move, and a booking
/// names a quote still valid.
pub const QUOTE_VALIDITY_MS: i64 = 48 * 3_600_000;
/// Empty EUR pallets stacked on one pallet place: 15 pallets of 144 mm make a 2.16 m stack,
/// under the inner height of a box body or curtain-sider.
pub const EMPTY_PALLETS_PER_PLACE: i64 = 15;
/// Largest price a carrier may submit, in minor units (100,000.00).
pub const SUBMITTED_PRICE_MINOR_MAX: i64 = 10_000_000;

// The factor a quote records is the contract's: a stored quote carries it.
pub use symbiose_logistics_contract::transport::{EMISSION_FACTOR, EmissionFactor};

/// What a lot takes on a truck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Rounded up to the kilogram; `None` when the unit has no known mass.
    pub mass_kg: Option<i64>,
    /// EUR pallet places needed.
    pub pallets: i64,
    pub dangerous_goods: bool,
}

impl Load {
    /// The load of `quantity` of `family`, carrying `waste_code` when it is waste.
    pub fn of(family: MaterialFamily, quantity: Quantity, waste_code: Option<WasteCode>) -> Load {
        let amount_milli = i128::from(quantity.amount_milli());
        let mass_kg = mass_g_per_unit(family, quantity.unit()).map(|grams_per_unit| {
            let grams = div_ceil(amount_milli * i128::from(grams_per_unit), 1000);
            // At most 10^12 units of a tonne: 10^15 kg, inside i64.
            i64::try_from(div_ceil(grams, 1000)).unwrap_or(i64::MAX)
        });
        let count = i64::try_from(div_ceil(amount_milli, 1000)).unwrap_or(i64::MAX);
        let pallets = match (family, quantity.unit()) {
            (MaterialFamily::Pallets, _) => (count + EMPTY_PALLETS_PER_PLACE - 1) / EMPTY_PALLETS_PER_PLACE,
            (_, Unit::Pallet) => count,
            _ => 0,
        };
        let dangerous_goods =
            family == MaterialFamily::Solvents || waste_code.is_some_and(|code| code.is_hazardous());
        Load { mass_kg, pallets, dangerous_goods }
    }
}

/// A carrier's automatic answer to a transport request.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// The carrier organization.
    pub carrier: Uuid,
    pub vehicle: Uuid,
    pub price: Money,
    pub road_distance_m: u64,
    pub road_distance_km: f64,
    pub duration_minutes: i64,
    /// The mass priced and counted for CO2: the load's, or the vehicle's payload when the
    /// load's mass is unknown.
    pub chargeable_mass_kg: i64,
    pub co2_kg: f64,
    pub emission_factor: EmissionFactor,
    pub expires_at_ms: i64,
}

/// The quote `carrier` gives for `load` from `pickup` to `delivery`, or `None` when it cannot
/// carry it: a place not covered, no vehicle that fits, or dangerous goods without
/// `may_carry_dangerous_goods` (a valid transport permit of the carrier's organization that
/// allows them, looked up by the shell).
pub fn quote(
    carrier: &Carrier,
    load: &Load,
    pickup: &Place,
    delivery: &Place,
    may_carry_dangerous_goods: bool,
    now_ms: i64,
) -> Option<Quote> {
    if !carrier.covers(pickup) || !carrier.covers(delivery) {
        return None;
    }
    if load.dangerous_goods && !may_carry_dangerous_goods {
        return None;
    }
    let vehicle = smallest(carrier.vehicles_fitting(load))?;
    let chargeable_mass_kg = load.mass_kg.unwrap_or(vehicle.payload_kg);
    let road_m = road_distance_m(pickup.point.distance_m(&delivery.point));
    let rates = &carrier.profile.rates;
    let price = Money::new(price_minor(rates, road_m, chargeable_mass_kg * 1000), rates.currency).ok()?;
    let road_distance_km = road_m as f64 / 1000.0;
    Some(Quote {
        carrier: carrier.organization,
        vehicle: vehicle.id,
        price,
        road_distance_m: road_m,
        road_distance_km,
        duration_minutes: duration_minutes(road_m),
        chargeable_mass_kg,
        co2_kg: chargeable_mass_kg as f64 / 1000.0 * road_distance_km * EMISSION_FACTOR.kg_co2e_per_tonne_km,
        emission_factor: EMISSION_FACTOR,
        expires_at_ms: now_ms.saturating_add(QUOTE_VALIDITY_MS),
    })
}

/// `max(minimum, per_km x road km + per_tonne x tonnes)` in minor units, from whole metres and
/// grams: the exact sum over a common denominator of 10^9, rounded half up once.
pub fn price_minor(rates: &Rates, road_m: u64, mass_g: i64) -> i64 {
    // minor/km x m = 10^-3 minor; minor/t x g = 10^-6 minor: both over 10^9.
    let distance = i128::from(rates.per_km_minor) * i128::from(road_m) * 1_000_000;
    let tonnage = i128::from(rates.per_tonne_minor) * i128::from(mass_g) * 1000;
    let rounded = (distance + tonnage + 500_000_000) / 1_000_000_000;
    // Rates, distances and payloads are bounded far below i64::MAX minor units.
    i64::try_from(rounded).unwrap_or(i64::MAX).max(rates.minimum_minor)
}

/// Driving time at `AVERAGE_SPEED_KM_PER_H`, rounded up to the minute, plus handling at both
/// stops.
pub fn duration_minutes(road_m: u64) -> i64 {
    let metres_per_minute = AVERAGE_SPEED_KM_PER_H as u64 * 1000 / 60;
    let driving = i64::try_from(road_m.div_ceil(metres_per_minute)).unwrap_or(i64::MAX / 2);
    driving + STOPS_PER_TRIP * HANDLING_MINUTES_PER_STOP
}

/// Why a price a carrier submits is refused (INVALID_ARGUMENT on the price).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceRejection {
    #[error("a submitted price is positive")]
    NotPositive,
    #[error("a submitted price is in {expected}, not {submitted}")]
    WrongCurrency { expected: Currency, submitted: Currency },
    #[error("a submitted price is at most {SUBMITTED_PRICE_MINOR_MAX} minor units")]
    TooLarge,
}

/// Checks a price a carrier submits for a transport to be paid in `currency`.
pub fn check_submitted_price(price: Money, currency: Currency) -> Result<(), PriceRejection> {
    if price.currency() != currency {
        return Err(PriceRejection::WrongCurrency { expected: currency, submitted: price.currency() });
    }
    if price.minor() <= 0 {
        return Err(PriceRejection::NotPositive);
    }
    if price.minor() > SUBMITTED_PRICE_MINOR_MAX {
        return Err(PriceRejection::TooLarge);
    }
    Ok(())
}

/// The smallest vehicle: by payload, then pallet places, then id (so the choice is stable).
fn smallest<'a>(vehicles: impl Iterator<Item = &'a Vehicle>) -> Option<&'a Vehicle> {
    vehicles.min_by_key(|vehicle| (vehicle.payload_kg, vehicle.pallet_places, vehicle.id))
}

fn div_ceil(numerator: i128, denominator: i128) -> i128 {
    (numerator + denominator - 1) / denominator
}

#[cfg(test)]
mod tests {
    use symbiose_domain::freight::{PALLET_MASS_G, ROAD_FREIGHT_KG_CO2E_PER_TONNE_KM};

    use super::*;
    use crate::carrier::Profile;
    use crate::testing::{NOW_MS, carrier, eur, id, place_of, profile, quantity};

    #[track_caller]
    fn close(value: f64, expected: f64) {
        assert!((value - expected).abs() < 1e-9, "{value} is not {expected}");
    }

    fn forty_pallets() -> Load {
        Load::of(MaterialFamily::Pallets, quantity(40, Unit::Pallet), WasteCode::parse("150103").ok())
    }

    #[test]
    fn the_load_of_a_lot() {
        assert_eq!(PALLET_MASS_G, 25_000);
        // 40 EUR pallets x 25 kg = 1000 kg, in ceil(40 / 15) = 3 stacks.
        assert_eq!(forty_pallets(), Load { mass_kg: Some(1000), pallets: 3, dangerous_goods: false });
        let metals = Load::of(MaterialFamily::Metals, quantity(12, Unit::Tonne), None);
        assert_eq!(metals, Load { mass_kg: Some(12_000), pallets: 0, dangerous_goods: false });
        // 1.235 kg: rounded up to 2 kg, never down.
        let grams = Quantity::new(1_235, Unit::Kilogram, false).expect("quantity");
        assert_eq!(Load::of(MaterialFamily::Plastics, grams, None).mass_kg, Some(2));
        let water = Load::of(MaterialFamily::ProcessWater, quantity(3, Unit::CubicMetre), None);
        assert_eq!(water.mass_kg, Some(3000));
        let boxes = Load::of(MaterialFamily::Packaging, quantity(10, Unit::Pallet), None);
        assert_eq!(boxes, Load { mass_kg: None, pallets: 10, dangerous_goods: false });
        let solvent = Load::of(MaterialFamily::Solvents, quantity(500, Unit::Litre), None);
        assert_eq!(solvent, Load { mass_kg: None, pallets: 0, dangerous_goods: true });
        let hazardous = WasteCode::parse("170503").ok();
        assert!(hazardous.is_some_and(|code| code.is_hazardous()));
        assert!(Load::of(MaterialFamily::Aggregates, quantity(5, Unit::Tonne), hazardous).dangerous_goods);
    }

    #[test]
    fn strasbourg_to_kehl_costs_the_minimum_charge() {
        let carrier = carrier(1, profile());
        let (strasbourg, kehl) = (place_of("Strasbourg"), place_of("Kehl"));
        let great_circle_m = strasbourg.point.distance_m(&kehl.point);
        // Strasbourg (48.5734, 7.7521) to Kehl (48.5724, 7.8154): 4659 m as the crow flies,
        // across the Rhine.
        assert_eq!(great_circle_m, 4659);
        let quote = quote(&carrier, &forty_pallets(), &strasbourg, &kehl, false, NOW_MS).expect("a quote");
        // Road: 4659 x 1.30 = 6056.7, 6057 m.
        assert_eq!(quote.road_distance_m, 6057);
        close(quote.road_distance_km, 6.057);
        // 40 pallets x 25 kg = 1 t fits the van (1.2 t, 6 places; 3 stacks).
        assert_eq!(quote.vehicle, id(20));
        assert_eq!(quote.chargeable_mass_kg, 1000);
        // 1.80/km x 6.057 km = 10.9026, plus 15.00/t x 1 t = 15.00: 25.9026, below the
        // minimum charge of 90.00.
        assert_eq!(price_minor(&carrier.profile.rates, 6057, 1_000_000), 9000);
        assert_eq!(quote.price, eur(9000));
        // 6.057 km at 60 km/h = 6.057 min, 7 rounded up, plus 2 x 30 min of handling.
        assert_eq!(quote.duration_minutes, 67);
        // 1 t x 6.057 km x 0.105 = 0.635985 kgCO2e.
        close(quote.co2_kg, 0.635_985);
        assert_eq!(quote.emission_factor, EMISSION_FACTOR);
        assert_eq!(quote.expires_at_ms, NOW_MS + 172_800_000);
    }

    #[test]
    fn metz_to_strasbourg_by_the_rates() {
        let carrier = carrier(1, profile());
        let (metz, strasbourg) = (place_of("Metz"), place_of("Strasbourg"));
        // Metz (49.1193, 6.1757) to Strasbourg: 130,346 m as the crow flies.
        assert_eq!(metz.point.distance_m(&strasbourg.point), 130_346);
        let load =
            Load::of(MaterialFamily::Metals, quantity(12, Unit::Tonne), WasteCode::parse("170405").ok());
        let quote = quote(&carrier, &load, &metz, &strasbourg, false, NOW_MS).expect("a quote");
        // Road: 130,346 x 1.30 = 169,449.8, 169,450 m.
        assert_eq!(quote.road_distance_m, 169_450);
        // 12 t: only the 12 t rigid truck (the ADR truck carries 10 t).
        assert_eq!(quote.vehicle, id(21));
        // 1.80/km x 169.450 km = 305.01, plus 15.00/t x 12 t = 180.00: 485.01, above the
        // minimum of 90.00.
        assert_eq!(quote.price, eur(48_501));
        // 169.45 min of driving, 170 rounded up, plus 60 min of handling.
        assert_eq!(quote.duration_minutes, 230);
        // 12 t x 169.45 km x 0.105 = 213.507 kgCO2e.
        close(quote.co2_kg, 213.507);
    }

    #[test]
    fn the_price_rounds_half_up_once() {
        let rates =
            Rates { per_km_minor: 500, per_tonne_minor: 0, minimum_minor: 0, currency: Currency::Eur };
        // 5.00/km x 1 m = 0.5 minor units: half up to 1.
        assert_eq!(price_minor(&rates, 1, 0), 1);
        // 4.90/km x 1 m = 0.49: down to 0.
        assert_eq!(price_minor(&Rates { per_km_minor: 490, ..rates }, 1, 0), 0);
        // 4.00/km x 1 m = 0.4 and 4.00/t x 1 kg = 0.4: 0.8 rounds to 1 (rounding each part
        // first would give 0).
        let both = Rates { per_km_minor: 400, per_tonne_minor: 400, ..rates };
        assert_eq!(price_minor(&both, 1, 1000), 1);
        // The minimum charge applies after rounding.
        assert_eq!(price_minor(&Rates { minimum_minor: 2, ..both }, 1, 1000), 2);
    }

    #[test]
    fn no_quote_out_of_area_or_without_a_vehicle() {
        let carrier = carrier(1, profile());
        let (strasbourg, kehl, basel) = (place_of("Strasbourg"), place_of("Kehl"), place_of("Basel"));
        // Basel is in Switzerland, which the carrier does not serve.
        assert_eq!(quote(&carrier, &forty_pallets(), &strasbourg, &basel, false, NOW_MS), None);
        assert_eq!(quote(&carrier, &forty_pallets(), &basel, &strasbourg, false, NOW_MS), None);
        // 20 t: no vehicle carries it.
        let heavy = Load::of(MaterialFamily::Metals, quantity(20, Unit::Tonne), None);
        assert_eq!(quote(&carrier, &heavy, &strasbourg, &kehl, false, NOW_MS), None);
        // 20 loaded pallets need 20 places: the largest truck has 18.
        let boxes = Load::of(MaterialFamily::Packaging, quantity(20, Unit::Pallet), None);
        assert_eq!(quote(&carrier, &boxes, &strasbourg, &kehl, false, NOW_MS), None);
    }

    #[test]
    fn dangerous_goods_need_a_capable_vehicle_and_a_permit() {
        let solvent = Load::of(MaterialFamily::Solvents, quantity(2000, Unit::Litre), None);
        let (strasbourg, kehl) = (place_of("Strasbourg"), place_of("Kehl"));
        let carrier = carrier(1, profile());
        assert_eq!(quote(&carrier, &solvent, &strasbourg, &kehl, false, NOW_MS), None, "no permit");
        let quote_with_permit = quote(&carrier, &solvent, &strasbourg, &kehl, true, NOW_MS).expect("a quote");
        assert_eq!(quote_with_permit.vehicle, id(22), "the ADR truck");
        // Unknown mass: charged and counted as a full load of the ADR truck, 10 t.
        assert_eq!(quote_with_permit.chargeable_mass_kg, 10_000);
        // 1.80 x 6.057 = 10.9026, plus 15.00 x 10 t = 150.00: 160.9026, 160.90.
        assert_eq!(quote_with_permit.price, eur(16_090));
        let without_adr = Profile {
            vehicles: profile().vehicles.into_iter().filter(|vehicle| !vehicle.dangerous_goods).collect(),
            ..profile()
        };
        let carrier = crate::testing::carrier(1, without_adr);
        assert_eq!(quote(&carrier, &solvent, &strasbourg, &kehl, true, NOW_MS), None, "no ADR vehicle");
    }

    #[test]
    fn the_emission_factor_is_the_one_matching_shows() {
        assert_eq!(
            EMISSION_FACTOR.kg_co2e_per_tonne_km.to_bits(),
            ROAD_FREIGHT_KG_CO2E_PER_TONNE_KM.to_bits()
        );
        assert!(EMISSION_FACTOR.source.contains("ADEME"));
    }

    #[test]
    fn a_submitted_price_is_positive_bounded_and_in_the_currency() {
        assert_eq!(check_submitted_price(eur(12_000), Currency::Eur), Ok(()));
        assert_eq!(check_submitted_price(eur(0), Currency::Eur), Err(PriceRejection::NotPositive));
        assert_eq!(check_submitted_price(eur(-100), Currency::Eur), Err(PriceRejection::NotPositive));
        assert_eq!(
            check_submitted_price(eur(SUBMITTED_PRICE_MINOR_MAX + 1), Currency::Eur),
            Err(PriceRejection::TooLarge)
        );
        assert_eq!(
            check_submitted_price(eur(12_000), Currency::Chf),
            Err(PriceRejection::WrongCurrency { expected: Currency::Chf, submitted: Currency::Eur })
        );
    }
}
