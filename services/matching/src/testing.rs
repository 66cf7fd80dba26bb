//! Values the tests share: a fixed time, towns of the reference table, and an offer and a
//! request of EUR pallets that match, for a test to change one term of.

use symbiose_domain::lot::{LegalStatus, Place, Quality};
use symbiose_domain::{Currency, MaterialFamily, Money, PalletGrade, Unit, WasteCode, geo};
use symbiose_listings_contract::listing::{Delivery, REQUEST_DISTANCE_KM_DEFAULT, Side};
use symbiose_listings_contract::organization::{Permit, PermitKind};
use uuid::Uuid;

use crate::Candidate;

pub(crate) const NOW_MS: i64 = 1_790_000_000_000;
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The place of a town of the reference table.
#[track_caller]
pub(crate) fn town(name: &str) -> Place {
    let place = geo::place(name).unwrap_or_else(|| panic!("{name} is in the reference table"));
    Place { point: place.point, country: place.country }
}

#[track_caller]
pub(crate) fn code(text: &str) -> WasteCode {
    WasteCode::parse(text).expect("a code of the list")
}

#[track_caller]
pub(crate) fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::Eur).expect("money")
}

/// 40 EUR pallets of grade B (EWC 15 01 03, waste) at 3.50 EUR each, in lots of 10 or more,
/// available for 30 days, collected by the buyer.
pub(crate) fn offer(id: u128, at: &str) -> Candidate {
    Candidate {
        id: Uuid::from_u128(id),
        owner: Uuid::from_u128(1_000 + id),
        side: Side::Offer,
        family: MaterialFamily::Pallets,
        waste_code: Some(code("150103")),
        accepted_waste_codes: vec![],
        legal_status: LegalStatus::Waste,
        quality: Quality::PalletGrade(PalletGrade::B),
        available_milli: 40_000,
        unit: Unit::Pallet,
        minimum_lot_milli: 10_000,
        available_from_ms: NOW_MS,
        available_until_ms: NOW_MS + 30 * DAY_MS,
        place: town(at),
        price_per_unit: eur(350),
        delivery: Delivery::BuyerCollects,
        max_distance_km: REQUEST_DISTANCE_KM_DEFAULT,
        accepts_other_countries: true,
        published_position: id as u64,
    }
}

/// A standing request for 20 EUR pallets of grade B or better, at most 4.00 EUR each, within
/// the default 200 km, from any country, over the next 60 days.
pub(crate) fn request(id: u128, at: &str) -> Candidate {
    Candidate {
        side: Side::Request,
        quality: Quality::PalletGrade(PalletGrade::B),
        available_milli: 20_000,
        minimum_lot_milli: 0,
        available_until_ms: NOW_MS + 60 * DAY_MS,
        price_per_unit: eur(400),
        ..offer(id, at)
    }
}

/// A treatment permit accepting `codes`, hazardous included, valid for a year.
pub(crate) fn permit(codes: &[&str]) -> Permit {
    Permit {
        permit_id: Uuid::from_u128(77),
        kind: PermitKind::Treatment,
        number: "ICPE-2791".into(),
        issued_by: "Préfecture du Bas-Rhin".into(),
        valid_until_ms: NOW_MS + 365 * DAY_MS,
        accepted_waste_codes: codes.iter().map(|text| code(text)).collect(),
        hazardous_accepted: true,
        dangerous_goods_allowed: false,
    }
}
