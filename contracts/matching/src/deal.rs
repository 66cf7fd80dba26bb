//! A deal as other contexts know it: what a seller and a buyer agreed (the material, the
//! quantity reserved on the offer, the price, the places, the distance and the documents the
//! shipment needs), until either cancels it before pickup; its events and their fold.
//! Logistics and settlement act on them.

use std::collections::HashMap;

use symbiose_domain::lot::{LegalStatus, Place};
use symbiose_domain::{MaterialFamily, Money, MoneyError, Quantity, WasteCode};
use uuid::Uuid;

/// A document a shipment between the pair needs before it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum RequiredDocument {
    /// The Annex VII information document (Reg. (EU) 2024/1157) of green-listed waste for
    /// recovery, signed by the arranger and carried with the shipment.
    AnnexVii,
    /// Prior written notification and consent of the authorities of dispatch, transit and
    /// destination, for hazardous or amber-listed waste; its number is known before booking.
    PriorNotification,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum DealStatus {
    Agreed,
    Cancelled { by: Uuid, reason: String, at_ms: i64 },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    Agreed(Box<Deal>),
    Cancelled { by: Uuid, reason: String, at_ms: i64 },
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
