//! The Deal aggregate: what a seller and a buyer agreed (the material, the quantity reserved on
//! the offer, the price, the places, the distance and the documents the shipment needs), until
//! either cancels it before pickup. Logistics and settlement act on its events. Pure.

use std::collections::HashMap;

use symbiose_domain::{MaterialFamily, Money, MoneyError, Quantity, WasteCode};
use symbiose_listings::listing::{LegalStatus, Place};
use uuid::Uuid;

use crate::proposal::REASON_BYTES_MAX;
use crate::rules::RequiredDocument;

#[derive(Debug, Clone, PartialEq)]
pub enum DealStatus {
    Agreed,
    Cancelled { by: Uuid, reason: String, at_ms: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Deal {
    /// Also the id of the reservation held on the offer.
    pub id: Uuid,
    pub proposal_id: Uuid,
    pub offer_id: Uuid,
    pub request_id: Uuid,
    pub seller: Uuid,
    pub buyer: Uuid,
    pub family: MaterialFamily,
    pub waste_code: Option<WasteCode>,
    pub legal_status: LegalStatus,
    pub quantity: Quantity,
    pub price_per_unit: Money,
    pub pickup: Place,
    pub delivery: Place,
    pub distance_km: f64,
    pub documents: Vec<RequiredDocument>,
    pub agreed_at_ms: i64,
    pub status: DealStatus,
}

impl Deal {
    pub fn is_party(&self, organization: Uuid) -> bool {
        self.seller == organization || self.buyer == organization
    }

    /// The quantity times the price per unit, in minor units rounded half away from zero
    /// (quantities are in thousandths of a unit). Negative for a gate fee.
    pub fn total(&self) -> Result<Money, MoneyError> {
        total(self.quantity, self.price_per_unit)
    }
}

/// `quantity` times `price_per_unit`, rounded half away from zero to the minor unit.
pub fn total(quantity: Quantity, price_per_unit: Money) -> Result<Money, MoneyError> {
    let product = i128::from(quantity.amount_milli()) * i128::from(price_per_unit.minor());
    let rounded = (product.abs() + 500) / 1000 * product.signum();
    let minor = i64::try_from(rounded).map_err(|_| MoneyError::TooLarge)?;
    Money::new(minor, price_per_unit.currency())
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum DealState {
    #[default]
    Absent,
    Present(Box<Deal>),
}

impl DealState {
    pub fn deal(&self) -> Option<&Deal> {
        match self {
            DealState::Absent => None,
            DealState::Present(deal) => Some(deal),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Agree(Box<Deal>),
    Cancel { by: Uuid, reason: String, now_ms: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Agreed(Box<Deal>),
    Cancelled { by: Uuid, reason: String, at_ms: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the deal does not exist")]
    NotFound,
    #[error("only the seller and the buyer act on a deal")]
    NotAParty,
    #[error("a reason is at most {REASON_BYTES_MAX} bytes")]
    ReasonTooLong,
}

pub fn decide(state: &DealState, command: Command) -> Result<Vec<Event>, Rejection> {
    match (state, command) {
        (DealState::Absent, Command::Agree(deal)) => Ok(vec![Event::Agreed(deal)]),
        // Agreed already: a retried conclusion agrees nothing twice.
        (DealState::Present(_), Command::Agree(_)) => Ok(vec![]),
        (DealState::Absent, Command::Cancel { .. }) => Err(Rejection::NotFound),
        (DealState::Present(deal), Command::Cancel { by, reason, now_ms }) => {
            if !deal.is_party(by) {
                return Err(Rejection::NotAParty);
            }
            if reason.len() > REASON_BYTES_MAX {
                return Err(Rejection::ReasonTooLong);
            }
            match deal.status {
                DealStatus::Agreed => Ok(vec![Event::Cancelled { by, reason, at_ms: now_ms }]),
                DealStatus::Cancelled { .. } => Ok(vec![]),
            }
        }
    }
}

/// Folds `event` of deal `id` into a map of deals, as the views of other services keep them.
pub fn fold(deals: &mut HashMap<Uuid, Deal>, id: Uuid, event: &Event) {
    let state = deals.remove(&id).map_or(DealState::Absent, |deal| DealState::Present(Box::new(deal)));
    if let DealState::Present(deal) = evolve(state, event) {
        deals.insert(id, *deal);
    }
}

pub fn evolve(state: DealState, event: &Event) -> DealState {
    match (state, event) {
        (DealState::Absent, Event::Agreed(deal)) => DealState::Present(deal.clone()),
        (DealState::Present(mut deal), Event::Cancelled { by, reason, at_ms }) => {
            deal.status = DealStatus::Cancelled { by: *by, reason: reason.clone(), at_ms: *at_ms };
            DealState::Present(deal)
        }
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests {
    use symbiose_domain::{Country, Currency, GeoPoint, Unit};

    use super::*;

    fn deal() -> Deal {
        let place = Place { point: GeoPoint::new(48.58, 7.75).expect("a point"), country: Country::Fr };
        Deal {
            id: Uuid::now_v7(),
            proposal_id: Uuid::now_v7(),
            offer_id: Uuid::now_v7(),
            request_id: Uuid::now_v7(),
            seller: Uuid::now_v7(),
            buyer: Uuid::now_v7(),
            family: MaterialFamily::Pallets,
            waste_code: None,
            legal_status: LegalStatus::ProductForReuse,
            quantity: Quantity::new(40_000, Unit::Pallet, false).expect("a quantity"),
            price_per_unit: Money::new(350, Currency::Eur).expect("a price"),
            pickup: place,
            delivery: place,
            distance_km: 4.9,
            documents: vec![],
            agreed_at_ms: 0,
            status: DealStatus::Agreed,
        }
    }

    #[test]
    fn the_total_is_exact_and_rounds_half_away_from_zero() {
        let eur = |minor| Money::new(minor, Currency::Eur).expect("money");
        let quantity = |milli| Quantity::new(milli, Unit::Tonne, false).expect("a quantity");
        assert_eq!(total(quantity(40_000), eur(350)), Ok(eur(14_000)), "40 x 3.50 = 140.00");
        // 0.5 t at 0.01 EUR is 0.005 EUR: half a cent, rounded to one.
        assert_eq!(total(quantity(500), eur(1)), Ok(eur(1)));
        assert_eq!(total(quantity(500), eur(-1)), Ok(eur(-1)), "a gate fee rounds away from zero too");
        assert_eq!(total(quantity(2_500), eur(-1_200)), Ok(eur(-3_000)), "2.5 t at a 12.00 gate fee");
    }

    #[test]
    fn either_party_cancels_once_and_no_one_else() {
        let agreed = deal();
        let state = DealState::Present(Box::new(agreed.clone()));
        assert_eq!(decide(&state, Command::Agree(Box::new(agreed.clone()))), Ok(vec![]), "agreed once");
        let stranger = Uuid::now_v7();
        assert_eq!(
            decide(&state, Command::Cancel { by: stranger, reason: String::new(), now_ms: 1 }),
            Err(Rejection::NotAParty)
        );
        let events =
            decide(&state, Command::Cancel { by: agreed.buyer, reason: "plans changed".into(), now_ms: 1 })
                .expect("cancelled");
        let cancelled = events.iter().fold(state, evolve);
        assert!(matches!(cancelled.deal().map(|deal| &deal.status), Some(DealStatus::Cancelled { .. })));
        assert_eq!(
            decide(&cancelled, Command::Cancel { by: agreed.seller, reason: String::new(), now_ms: 2 }),
            Ok(vec![]),
            "cancelling again does nothing"
        );
    }
}
