//! A candidate: the matching view of one published, open listing (an offer or a request), with
//! only what the rules and the score read.
//!
//! Built from the listing aggregate's state by [`Candidate::from_listing`], so matching reads a
//! listing exactly as the listings service keeps it. The fields are public: the caller sets
//! what the listing does not hold (the log position of its publication, the other codes a
//! request accepts).

use symbiose_domain::lot::{LegalStatus, Place, Quality};
use symbiose_domain::{MaterialFamily, Money, Unit, WasteCode};
use symbiose_listings_contract::listing::{Delivery, Listing, Side};
use uuid::Uuid;

/// The matching view of one open listing.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    pub id: Uuid,
    /// The organization that published it.
    pub owner: Uuid,
    pub side: Side,
    pub family: MaterialFamily,
    pub waste_code: Option<WasteCode>,
    /// For a request: other codes it accepts besides its own. Empty for an offer.
    pub accepted_waste_codes: Vec<WasteCode>,
    pub legal_status: LegalStatus,
    pub quality: Quality,
    /// What can still be reserved (an offer) or is still wanted (a request), in milli-units of
    /// `unit`.
    pub available_milli: i64,
    pub unit: Unit,
    /// The smallest lot it trades, in milli-units of `unit`; 0 when it names none.
    pub minimum_lot_milli: i64,
    pub available_from_ms: i64,
    pub available_until_ms: i64,
    pub place: Place,
    /// Per unit; negative when the producer pays a gate fee. For a request, the most it pays.
    pub price_per_unit: Money,
    pub delivery: Delivery,
    /// For a request: how far, great-circle, it accepts material from, in km.
    pub max_distance_km: u32,
    /// For a request: whether material may come from another country.
    pub accepts_other_countries: bool,
    /// The log position of its last publication: larger is more recent.
    pub published_position: u64,
}

impl Candidate {
    /// The candidate of `listing`, as it stands (what is left of its quantity after the open
    /// reservations and deliveries). `published_position` is 0 and `accepted_waste_codes`
    /// empty: the listing does not hold them, the caller sets them.
    pub fn from_listing(listing: &Listing) -> Candidate {
        let terms = &listing.terms;
        Candidate {
            id: listing.id,
            owner: listing.owner,
            side: terms.side,
            family: terms.family,
            waste_code: terms.waste_code,
            accepted_waste_codes: Vec::new(),
            legal_status: terms.legal_status,
            quality: terms.quality.clone(),
            available_milli: listing.available_milli(),
            unit: terms.quantity.unit(),
            minimum_lot_milli: terms.minimum_lot.map_or(0, |lot| lot.amount_milli()),
            available_from_ms: terms.available_from_ms,
            available_until_ms: terms.available_until_ms,
            place: listing.place,
            price_per_unit: terms.price_per_unit,
            delivery: terms.delivery,
            max_distance_km: terms.max_distance_km,
            accepts_other_countries: terms.accepts_other_countries,
            published_position: 0,
        }
    }

    /// Whether something is left to trade: only open candidates are indexed.
    pub fn is_open(&self) -> bool {
        self.available_milli > 0
    }

    /// Whether the material is hazardous waste by its code (an asterisk in the List of Waste).
    pub fn is_hazardous(&self) -> bool {
        self.waste_code.is_some_and(|code| code.is_hazardous())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use symbiose_domain::{Currency, PalletGrade, Quantity};
    use symbiose_listings_contract::listing::{REQUEST_DISTANCE_KM_DEFAULT, Terms};

    use super::*;
    use crate::testing::{NOW_MS, town};

    fn listing() -> Listing {
        let pallets = |count: i64| Quantity::new(count * 1000, Unit::Pallet, false).expect("quantity");
        Listing {
            id: Uuid::from_u128(1),
            owner: Uuid::from_u128(2),
            terms: Terms {
                side: Side::Offer,
                family: MaterialFamily::Pallets,
                waste_code: Some(WasteCode::parse("150103").expect("code")),
                legal_status: LegalStatus::Waste,
                description: "EUR pallets, grade B".into(),
                quality: Quality::PalletGrade(PalletGrade::B),
                quantity: pallets(40),
                minimum_lot: Some(pallets(10)),
                recurrence_days: 7,
                site_id: Uuid::from_u128(3),
                location: None,
                available_from_ms: NOW_MS,
                available_until_ms: NOW_MS + 1000,
                price_per_unit: Money::new(350, Currency::Eur).expect("money"),
                delivery: Delivery::BuyerCollects,
                max_distance_km: REQUEST_DISTANCE_KM_DEFAULT,
                accepts_other_countries: true,
                attachments: vec![],
                expires_at_ms: NOW_MS + 2000,
            },
            place: town("Strasbourg"),
            reservations: BTreeMap::from([(Uuid::from_u128(9), 15_000)]),
            delivered_milli: 5_000,
            published_once: true,
        }
    }

    #[test]
    fn a_candidate_keeps_what_is_left_to_reserve() {
        let candidate = Candidate::from_listing(&listing());
        assert_eq!(candidate.id, Uuid::from_u128(1));
        assert_eq!(candidate.owner, Uuid::from_u128(2));
        assert_eq!(candidate.available_milli, 20_000);
        assert_eq!(candidate.unit, Unit::Pallet);
        assert_eq!(candidate.minimum_lot_milli, 10_000);
        assert_eq!(candidate.quality, Quality::PalletGrade(PalletGrade::B));
        assert_eq!(candidate.place, town("Strasbourg"));
        assert!(candidate.accepted_waste_codes.is_empty());
        assert_eq!(candidate.published_position, 0);
        assert!(candidate.is_open());
        assert!(!candidate.is_hazardous());
    }

    #[test]
    fn no_minimum_lot_is_zero_and_nothing_left_is_closed() {
        let mut listing = listing();
        listing.terms.minimum_lot = None;
        listing.delivered_milli = 25_000;
        let candidate = Candidate::from_listing(&listing);
        assert_eq!(candidate.minimum_lot_milli, 0);
        assert_eq!(candidate.available_milli, 0);
        assert!(!candidate.is_open());
    }
}
