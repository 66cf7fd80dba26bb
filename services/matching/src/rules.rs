//! The compatibility rules: whether an offer and a request can be traded together, and if so
//! at what distance, across a border or not, and with which shipment documents.
//!
//! [`check`] applies every rule to one pair, in this order, and names the first that fails
//! with its [`Mismatch`] variant:
//!
//! 1. `Sides`: the first is an offer, the second a request.
//! 2. `SameOwner`: they belong to different organizations (nobody trades with itself).
//! 3. `Family`: the same material family.
//! 4. `Unit`: the same unit, so the quantities compare without conversion.
//! 5. `Currency`: prices in the same currency.
//! 6. `Material`: if the request names a waste code, the offer's code is that code or one of
//!    the request's accepted codes; a request that names no code takes any code of the family.
//! 7. `Quality`: at least what the request asks. An unspecified request takes anything. Pallet
//!    grades rank New > A > B > C > Unsorted, and an offer's grade must rank at least the
//!    request's (so an unsorted offer satisfies only an unsorted or unspecified request). A
//!    plastic is the same polymer in the same form. A specification's data quality ranks
//!    Declared < Analysed < Certified, an offer's at least the request's; its text is not
//!    compared (people read it), and a request naming no data quality takes any offer.
//! 8. `Quantity`: a reservable lot exists: the lot, the smaller of what the offer has left and
//!    what the request still wants, is at least the request's minimum lot, and at least the
//!    offer's minimum lot unless it is all the offer has left (the aggregate's own rule for a
//!    reservation).
//! 9. `Availability`: the two windows overlap, and the overlap has not ended at `now_ms`.
//! 10. `Price`: the offer's price per unit is at most the request's (its maximum). A negative
//!     price, a gate fee the producer pays, is below zero and so under any non-negative maximum.
//! 11. `Border`: an offer in another country only for a request that accepts other countries.
//! 12. `Distance`: the great-circle distance is at most the request's maximum distance.
//! 13. `Delivery`: when the seller delivers (`SellerDelivers`), the distance is also within
//!     the seller's delivery distance. `BuyerCollects` and `Either` impose nothing more: the
//!     buyer can always collect.
//! 14. `Permit`: hazardous waste (a code marked hazardous in the List of Waste) goes only to a
//!     buyer holding a permit that accepts the code at `now_ms` (`Permit::accepts`). The code's
//!     danger does not depend on the legal status, so the rule applies to any hazardous code,
//!     as the listing aggregate's own rule for a request does.
//!
//! Documents of a compatible pair ([`Fit::documents`]): none for a domestic shipment, none for
//! a material that is not waste (by-product, end-of-waste, product for reuse); for waste
//! across a border, an Annex VII document for a non-hazardous code (Reg. (EU) 2024/1157, green
//! listed waste for recovery; Switzerland applies the same rule), and a prior notification
//! and consent for a hazardous code, or for waste without a code, since its listing status is
//! then unknown.
//!
//! Pure and total: every input gives an answer, nothing panics.

use symbiose_domain::lot::{DataQuality, LegalStatus, PlasticForm, Polymer, Quality};
use symbiose_domain::{Country, Currency, Money, Unit, WasteCode};
use symbiose_listings_contract::listing::{Delivery, Side};
use symbiose_listings_contract::organization::Permit;

use crate::Candidate;

/// A margin on distance comparisons, in km (one metre), so that a pair exactly at the limit is
/// not refused by a rounding error of the float distance.
pub(crate) const DISTANCE_MARGIN_KM: f64 = 0.001;

pub use symbiose_matching_contract::deal::RequiredDocument;

/// A compatible pair: what a proposal and a shipment need to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// Great-circle distance between the two places, in km.
    pub distance_km: f64,
    /// Whether the places are in different countries.
    pub cross_border: bool,
    /// The largest lot the pair can trade now, in milli-units of their unit.
    pub lot_milli: i64,
    /// The documents a shipment needs, none for a domestic one.
    pub documents: Vec<RequiredDocument>,
}

/// The rule a pair fails, one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Mismatch {
    #[error("the first listing is not an offer, or the second not a request")]
    Sides,
    #[error("both listings are the same organization's")]
    SameOwner,
    #[error("the offer is {offer}, the request {request}: different material families")]
    Family { offer: &'static str, request: &'static str },
    #[error("the offer is counted in {offer}, the request in {request}")]
    Unit { offer: Unit, request: Unit },
    #[error("the offer is priced in {offer}, the request in {request}")]
    Currency { offer: Currency, request: Currency },
    #[error("the offer's waste code is not one the request accepts")]
    Material,
    #[error("the offer's quality is below what the request asks")]
    Quality,
    #[error("no lot of at least both minimum lots can be reserved")]
    Quantity,
    #[error("the availability windows do not overlap, or have ended")]
    Availability,
    #[error("the offer's price {offer} per unit is above the request's maximum {request}")]
    Price { offer: Money, request: Money },
    #[error("the offer is in {offer} and the request accepts material from {request} only")]
    Border { offer: Country, request: Country },
    #[error("{distance_km:.1} km apart, the request accepts at most {max_km} km")]
    Distance { distance_km: f64, max_km: u32 },
    #[error("{distance_km:.1} km apart, the seller delivers within {within_km} km")]
    Delivery { distance_km: f64, within_km: u32 },
    #[error("hazardous waste {}: the buyer holds no valid permit accepting it", .code.display_form())]
    Permit { code: WasteCode },
}

/// Applies every rule to `offer` and `request` (see the module's documentation), with
/// `buyer_permits` the permits of the request's owner.
pub fn check(
    offer: &Candidate,
    request: &Candidate,
    buyer_permits: &[Permit],
    now_ms: i64,
) -> Result<Fit, Mismatch> {
    if offer.side != Side::Offer || request.side != Side::Request {
        return Err(Mismatch::Sides);
    }
    if offer.owner == request.owner {
        return Err(Mismatch::SameOwner);
    }
    if offer.family != request.family {
        return Err(Mismatch::Family { offer: offer.family.key(), request: request.family.key() });
    }
    if offer.unit != request.unit {
        return Err(Mismatch::Unit { offer: offer.unit, request: request.unit });
    }
    let (offer_price, maximum) = (offer.price_per_unit, request.price_per_unit);
    if offer_price.currency() != maximum.currency() {
        return Err(Mismatch::Currency { offer: offer_price.currency(), request: maximum.currency() });
    }
    if !material_accepted(offer, request) {
        return Err(Mismatch::Material);
    }
    if !quality_satisfies(QualityKey::of(&offer.quality), QualityKey::of(&request.quality)) {
        return Err(Mismatch::Quality);
    }
    let lot_milli = reservable_lot_milli(
        (offer.available_milli, offer.minimum_lot_milli),
        (request.available_milli, request.minimum_lot_milli),
    )
    .ok_or(Mismatch::Quantity)?;
    if !windows_meet(
        (offer.available_from_ms, offer.available_until_ms),
        (request.available_from_ms, request.available_until_ms),
        now_ms,
    ) {
        return Err(Mismatch::Availability);
    }
    if offer_price.minor() > maximum.minor() {
        return Err(Mismatch::Price { offer: offer_price, request: maximum });
    }
    let cross_border = offer.place.country != request.place.country;
    if cross_border && !request.accepts_other_countries {
        return Err(Mismatch::Border { offer: offer.place.country, request: request.place.country });
    }
    let distance_km = offer.place.point.distance_km(&request.place.point);
    if distance_km > f64::from(request.max_distance_km) + DISTANCE_MARGIN_KM {
        return Err(Mismatch::Distance { distance_km, max_km: request.max_distance_km });
    }
    if let Delivery::SellerDelivers { within_km } = offer.delivery
        && distance_km > f64::from(within_km) + DISTANCE_MARGIN_KM
    {
        return Err(Mismatch::Delivery { distance_km, within_km });
    }
    if let Some(code) = offer.waste_code
        && code.is_hazardous()
        && !buyer_permits.iter().any(|permit| permit.accepts(code, now_ms))
    {
        return Err(Mismatch::Permit { code });
    }
    Ok(Fit { distance_km, cross_border, lot_milli, documents: documents(offer, cross_border) })
}

/// The documents a shipment of `offer`'s material needs.
pub fn documents(offer: &Candidate, cross_border: bool) -> Vec<RequiredDocument> {
    if !cross_border || offer.legal_status != LegalStatus::Waste {
        return Vec::new();
    }
    match offer.waste_code {
        Some(code) if !code.is_hazardous() => vec![RequiredDocument::AnnexVii],
        _ => vec![RequiredDocument::PriorNotification],
    }
}

fn material_accepted(offer: &Candidate, request: &Candidate) -> bool {
    match request.waste_code {
        None => true,
        Some(wanted) => offer
            .waste_code
            .is_some_and(|code| code == wanted || request.accepted_waste_codes.contains(&code)),
    }
}

/// A quality reduced to what the rules compare, small enough to sit in the index's leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QualityKey {
    Unspecified,
    /// A pallet grade's rank: Unsorted 0, C 1, B 2, A 3, New 4.
    Grade(u8),
    Plastic(Polymer, PlasticForm),
    /// A specification's data quality rank: none 0, Declared 1, Analysed 2, Certified 3.
    Specification(u8),
}

impl QualityKey {
    pub(crate) fn of(quality: &Quality) -> QualityKey {
        use symbiose_domain::PalletGrade;
        match quality {
            Quality::Unspecified => QualityKey::Unspecified,
            Quality::PalletGrade(grade) => QualityKey::Grade(match grade {
                PalletGrade::Unsorted => 0,
                PalletGrade::C => 1,
                PalletGrade::B => 2,
                PalletGrade::A => 3,
                PalletGrade::New => 4,
            }),
            Quality::Plastic { polymer, form } => QualityKey::Plastic(*polymer, *form),
            Quality::Specification { data_quality, .. } => QualityKey::Specification(match data_quality {
                None => 0,
                Some(DataQuality::Declared) => 1,
                Some(DataQuality::Analysed) => 2,
                Some(DataQuality::Certified) => 3,
            }),
        }
    }

    /// The data quality rank an offer of this quality brings: 0 unless it is a specification.
    fn data_quality_rank(self) -> u8 {
        match self {
            QualityKey::Specification(rank) => rank,
            _ => 0,
        }
    }
}

/// Rule 7: whether an offer of quality `offer` is at least what a request of `request` asks.
pub(crate) fn quality_satisfies(offer: QualityKey, request: QualityKey) -> bool {
    match (offer, request) {
        (_, QualityKey::Unspecified) => true,
        (QualityKey::Grade(offered), QualityKey::Grade(wanted)) => offered >= wanted,
        (QualityKey::Plastic(polymer, form), QualityKey::Plastic(wanted_polymer, wanted_form)) => {
            polymer == wanted_polymer && form == wanted_form
        }
        (offer, QualityKey::Specification(wanted)) => offer.data_quality_rank() >= wanted,
        _ => false,
    }
}

/// A quality's bit in a set of qualities, [`QualityKey::bit`]: one per grade, per data quality
/// rank, per polymer and form, and one for no quality.
impl QualityKey {
    pub(crate) fn bit(self) -> u32 {
        match self {
            QualityKey::Unspecified => 1,
            QualityKey::Grade(rank) => 1 << (1 + u32::from(rank.min(4))),
            QualityKey::Specification(rank) => 1 << (6 + u32::from(rank.min(3))),
            QualityKey::Plastic(polymer, form) => 1 << (10 + polymer as u32 * 2 + form as u32),
        }
    }

    /// The bits of the qualities that rule 7 lets meet this one: the offers' qualities that
    /// satisfy this request's, or (`of_offer`) the requests' qualities this offer's satisfies.
    pub(crate) fn compatible_bits(self, of_offer: bool) -> u32 {
        let grades = |ranks: std::ops::RangeInclusive<u8>| {
            ranks.map(|rank| QualityKey::Grade(rank).bit()).sum::<u32>()
        };
        let specifications = |ranks: std::ops::RangeInclusive<u8>| {
            ranks.map(|rank| QualityKey::Specification(rank).bit()).sum::<u32>()
        };
        if of_offer {
            let by_kind = match self {
                QualityKey::Grade(rank) => grades(0..=rank.min(4)),
                QualityKey::Plastic(..) => self.bit(),
                _ => 0,
            };
            QualityKey::Unspecified.bit() | by_kind | specifications(0..=self.data_quality_rank().min(3))
        } else {
            match self {
                QualityKey::Unspecified | QualityKey::Specification(0) => u32::MAX,
                QualityKey::Grade(rank) => grades(rank.min(4)..=4),
                QualityKey::Plastic(..) => self.bit(),
                QualityKey::Specification(rank) => specifications(rank.min(3)..=3),
            }
        }
    }
}

/// Rule 8: the lot the pair can trade, from the offer's (available, minimum lot) and the
/// request's (wanted, minimum lot), all in milli-units of one unit; `None` when there is none.
pub(crate) fn reservable_lot_milli(offer: (i64, i64), request: (i64, i64)) -> Option<i64> {
    let (available, offer_minimum) = offer;
    let (wanted, request_minimum) = request;
    let lot = available.min(wanted);
    let offer_minimum_met = lot >= offer_minimum || lot == available;
    (lot > 0 && offer_minimum_met && lot >= request_minimum).then_some(lot)
}

/// Rule 9: whether the windows (from, until) overlap in an interval not ended at `now_ms`.
pub(crate) fn windows_meet(offer: (i64, i64), request: (i64, i64), now_ms: i64) -> bool {
    let start = offer.0.max(request.0);
    let end = offer.1.min(request.1);
    start <= end && end >= now_ms
}

#[cfg(test)]
mod tests;
