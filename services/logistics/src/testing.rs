//! Values the tests share: a time, ids, towns of the reference table and a carrier profile.

use std::collections::BTreeSet;

use symbiose_domain::geo::place;
use symbiose_domain::lot::Place;
use symbiose_domain::{Country, Currency, Money, Quantity, Unit};
use uuid::Uuid;

use crate::carrier::{Carrier, Depot, Profile, Rates, Vehicle};

pub(crate) const NOW_MS: i64 = 1_790_000_000_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;

pub(crate) fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

#[track_caller]
pub(crate) fn place_of(name: &str) -> Place {
    let town = place(name).unwrap_or_else(|| panic!("{name} is in the table"));
    Place { point: town.point, country: town.country }
}

#[track_caller]
pub(crate) fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::Eur).expect("money")
}

#[track_caller]
pub(crate) fn quantity(units: i64, unit: Unit) -> Quantity {
    Quantity::new(units * 1000, unit, false).expect("quantity")
}

pub(crate) fn van(n: u128, payload_kg: i64, pallet_places: i64, dangerous_goods: bool) -> Vehicle {
    Vehicle {
        id: id(n),
        name: format!("vehicle {n}"),
        payload_kg,
        pallet_places,
        tail_lift: true,
        dangerous_goods,
    }
}

/// One depot in Strasbourg with a 150 km radius over France and Germany; a van (1.2 t,
/// 6 places), a rigid truck (12 t, 18 places) and an ADR rigid truck (10 t, 15 places); 1.80
/// per km, 15.00 per tonne, at least 90.00, in euros.
pub(crate) fn profile() -> Profile {
    let strasbourg = place_of("Strasbourg");
    Profile {
        depots: vec![Depot {
            id: id(10),
            name: "Strasbourg port du Rhin".into(),
            point: strasbourg.point,
            country: strasbourg.country,
        }],
        countries: BTreeSet::from([Country::Fr, Country::De]),
        service_radius_km: 150,
        vehicles: vec![van(20, 1200, 6, false), van(21, 12_000, 18, false), van(22, 10_000, 15, true)],
        rates: Rates {
            per_km_minor: 180,
            per_tonne_minor: 1500,
            minimum_minor: 9000,
            currency: Currency::Eur,
        },
        takes_pallet_exchange: true,
    }
}

pub(crate) fn carrier(n: u128, profile: Profile) -> Carrier {
    Carrier { organization: id(n), profile, registered_at_ms: NOW_MS, updated_at_ms: NOW_MS }
}
