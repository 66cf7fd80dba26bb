//! What moving a lot by road weighs and emits: the masses per unit and the emission factor
//! that matching's estimates and logistics' quotes both use, so the two never disagree.

use crate::{MaterialFamily, Unit};

/// Road freight emissions, kgCO2e per tonne-kilometre of goods carried. Source: ADEME, Base
/// Carbone, rigid diesel truck of 26 to 32 t gross weight ("porteur 26-32 t, gazole"). Scope:
/// road transport of goods; one factor for every pair, whatever the truck a carrier sends (a
/// carrier's quote replaces the estimate).
pub const ROAD_FREIGHT_KG_CO2E_PER_TONNE_KM: f64 = 0.105;
/// Mass of one EUR/EPAL 1200x800 pallet in grams: 20 to 25 kg depending on moisture, the upper
/// value so that the estimate does not flatter.
pub const PALLET_MASS_G: i64 = 25_000;
/// Mass of a litre of treated process water in grams: water is 1 kg per litre.
pub const WATER_MASS_G_PER_LITRE: i64 = 1_000;

/// The mass of one unit of `family` counted in `unit`, in grams, when it is known.
pub fn mass_g_per_unit(family: MaterialFamily, unit: Unit) -> Option<i64> {
    match (family, unit) {
        (_, Unit::Kilogram) => Some(1_000),
        (_, Unit::Tonne) => Some(1_000_000),
        (MaterialFamily::Pallets, Unit::Pallet | Unit::Piece) => Some(PALLET_MASS_G),
        (MaterialFamily::ProcessWater, Unit::Litre) => Some(WATER_MASS_G_PER_LITRE),
        (MaterialFamily::ProcessWater, Unit::CubicMetre) => Some(1_000 * WATER_MASS_G_PER_LITRE),
        _ => None,
    }
}
