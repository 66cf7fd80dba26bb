//! Values the tests share: a time, ids and money.

use symbiose_domain::{Currency, Money};
use uuid::Uuid;

pub(crate) const NOW_MS: i64 = 1_790_000_000_000;

pub(crate) fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

#[track_caller]
pub(crate) fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::Eur).expect("money")
}

#[track_caller]
pub(crate) fn chf(minor: i64) -> Money {
    Money::new(minor, Currency::Chf).expect("money")
}

#[track_caller]
pub(crate) fn place_of(name: &str) -> symbiose_domain::lot::Place {
    let town = symbiose_domain::geo::place(name).unwrap_or_else(|| panic!("{name} is in the table"));
    symbiose_domain::lot::Place { point: town.point, country: town.country }
}

/// A deal of `amount_milli` of `unit` at `price_per_unit`, from Strasbourg to Kehl.
pub(crate) fn deal(
    seller: u128,
    buyer: u128,
    amount_milli: i64,
    unit: symbiose_domain::Unit,
    price_per_unit: Money,
    legal_status: symbiose_domain::lot::LegalStatus,
) -> symbiose_matching_contract::deal::Deal {
    symbiose_matching_contract::deal::Deal {
        id: id(0xdea1),
        proposal_id: id(0xb0b),
        offer_id: id(0x0ffe),
        request_id: id(0x4e9),
        seller: id(seller),
        buyer: id(buyer),
        family: symbiose_domain::MaterialFamily::Pallets,
        waste_code: None,
        legal_status,
        quantity: symbiose_domain::Quantity::new(amount_milli, unit, false).expect("a quantity"),
        price_per_unit,
        pickup: place_of("Strasbourg"),
        delivery: place_of("Kehl"),
        distance_km: 4.9,
        documents: vec![],
        agreed_at_ms: NOW_MS,
        status: symbiose_matching_contract::deal::DealStatus::Agreed,
    }
}
