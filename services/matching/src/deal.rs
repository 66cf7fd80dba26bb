//! The Deal aggregate: what a seller and a buyer agreed (the material, the quantity reserved on
//! the offer, the price, the places, the distance and the documents the shipment needs), until
//! either cancels it before pickup. Logistics and settlement act on its events. Pure. Its types,
//! events and fold are the matching contract's (`symbiose_matching_contract::deal`); what is here
//! is how the service decides.

pub use symbiose_matching_contract::deal::*;
use uuid::Uuid;

use crate::proposal::REASON_BYTES_MAX;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Agree(Box<Deal>),
    Cancel { by: Uuid, reason: String, now_ms: i64 },
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

#[cfg(test)]
mod tests {
    use symbiose_domain::lot::{LegalStatus, Place};
    use symbiose_domain::{Country, Currency, GeoPoint, MaterialFamily, Money, Quantity, Unit};

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
