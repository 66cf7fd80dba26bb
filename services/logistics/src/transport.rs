//! The transport request of a deal: opened once when the deal is agreed (its id is the deal's,
//! so a redelivered `DealAgreed` cannot open two), holding the deal as agreed and the prices
//! carriers submitted. Automatic quotes are not stored: they are what the carriers' current
//! profiles give for the deal's load, issued in windows of [`QUOTE_VALIDITY_MS`] from the
//! request (or from the carrier's last update), so the same quote keeps its id and its expiry
//! until it expires, and a fresh one follows. Pure.

use symbiose_domain::{Currency, Money};
use symbiose_matching_contract::deal::{Deal, DealStatus};
use uuid::Uuid;

use crate::carrier::Carrier;
use crate::quote::{self, EMISSION_FACTOR, Load, PriceRejection, QUOTE_VALIDITY_MS};

/// Namespace of the quotes' ids.
const QUOTE_NAMESPACE: Uuid = Uuid::from_u128(0x7175_6f74_6573_4c61_9e44_0b6d_2f81_a3c5);
/// Longest validity a carrier gives its own price, in hours.
pub const SUBMITTED_VALID_HOURS_MAX: u32 = 14 * 24;
/// Most prices submitted for one transport (one per carrier; a new one replaces the last).
pub const SUBMITTED_QUOTES_MAX: usize = 200;

// A quote as the parties see it and book it, and the events, are the contract's.
pub use symbiose_logistics_contract::transport::{Event, OfferedQuote};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TransportRequest {
    pub deal: Deal,
    pub requested_at_ms: i64,
    /// The carriers' own prices, the last of each carrier.
    pub submitted: Vec<OfferedQuote>,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum TransportState {
    #[default]
    Absent,
    Requested(Box<TransportRequest>),
}

impl TransportState {
    pub fn request(&self) -> Option<&TransportRequest> {
        match self {
            TransportState::Absent => None,
            TransportState::Requested(request) => Some(request),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no transport is requested for this deal")]
    NotRequested,
    #[error("the deal is cancelled")]
    DealCancelled,
    #[error("a price is valid for 1 to {SUBMITTED_VALID_HOURS_MAX} hours")]
    ValidityOutOfRange,
    #[error(transparent)]
    Price(#[from] PriceRejection),
    #[error("at most {SUBMITTED_QUOTES_MAX} carriers answer one transport")]
    TooManyQuotes,
}

/// Opens the transport of `deal`: once, whatever the redeliveries; none for a cancelled deal
/// or one whose lot does not move (pickup and delivery at the same point).
pub fn request(state: &TransportState, deal: &Deal, now_ms: i64) -> Vec<Event> {
    let moves = deal.pickup.point != deal.delivery.point;
    match state {
        TransportState::Absent if moves && deal.status == DealStatus::Agreed => {
            vec![Event::Requested { deal: Box::new(deal.clone()), at_ms: now_ms }]
        }
        _ => vec![],
    }
}

/// The price `carrier` submits for the transport, valid `valid_hours` from `now_ms`;
/// `estimate` is its automatic quote (for the distance, time and CO2), if it has one.
pub fn submit(
    state: &TransportState,
    carrier: Uuid,
    price: Money,
    valid_hours: u32,
    estimate: Option<&OfferedQuote>,
    now_ms: i64,
) -> Result<Vec<Event>, Rejection> {
    let request = state.request().ok_or(Rejection::NotRequested)?;
    if request.deal.status != DealStatus::Agreed {
        return Err(Rejection::DealCancelled);
    }
    if valid_hours == 0 || valid_hours > SUBMITTED_VALID_HOURS_MAX {
        return Err(Rejection::ValidityOutOfRange);
    }
    quote::check_submitted_price(price, price_currency(&request.deal))?;
    if request.submitted.len() >= SUBMITTED_QUOTES_MAX
        && !request.submitted.iter().any(|quote| quote.carrier == carrier)
    {
        return Err(Rejection::TooManyQuotes);
    }
    let load = load_of(&request.deal);
    let deal = &request.deal;
    let road_m = symbiose_domain::geo::road_distance_m(deal.pickup.point.distance_m(&deal.delivery.point));
    let road_distance_km = road_m as f64 / 1000.0;
    let chargeable_mass_kg =
        estimate.map_or(load.mass_kg.unwrap_or(0), |estimate| estimate.chargeable_mass_kg);
    let quote = OfferedQuote {
        id: Uuid::new_v5(
            &QUOTE_NAMESPACE,
            format!("{}/{carrier}/submitted/{now_ms}", request.deal.id).as_bytes(),
        ),
        deal_id: request.deal.id,
        carrier,
        vehicle: estimate.map(|estimate| estimate.vehicle.clone()).unwrap_or_default(),
        price,
        road_distance_km,
        duration_minutes: estimate
            .map_or_else(|| quote::duration_minutes(road_m), |estimate| estimate.duration_minutes),
        chargeable_mass_kg,
        co2_kg: chargeable_mass_kg as f64 / 1000.0 * road_distance_km * EMISSION_FACTOR.kg_co2e_per_tonne_km,
        expires_at_ms: now_ms + i64::from(valid_hours) * 3_600_000,
        automatic: false,
    };
    Ok(vec![Event::QuoteSubmitted(Box::new(quote))])
}

/// The currency a transport is priced in: the deal's.
pub fn price_currency(deal: &Deal) -> Currency {
    deal.price_per_unit.currency()
}

pub fn load_of(deal: &Deal) -> Load {
    Load::of(deal.family, deal.quantity, deal.waste_code)
}

pub fn evolve(state: TransportState, event: &Event) -> TransportState {
    match (state, event) {
        (TransportState::Absent, Event::Requested { deal, at_ms }) => {
            TransportState::Requested(Box::new(TransportRequest {
                deal: (**deal).clone(),
                requested_at_ms: *at_ms,
                submitted: Vec::new(),
            }))
        }
        (TransportState::Requested(mut request), Event::QuoteSubmitted(quote)) => {
            request.submitted.retain(|submitted| submitted.carrier != quote.carrier);
            request.submitted.push((**quote).clone());
            TransportState::Requested(request)
        }
        (state, _) => state,
    }
}

/// The automatic quote of `carrier` for `request` at `now_ms`, if it can carry the load
/// (`may_carry_dangerous_goods`: a valid transport permit allowing them). Issued at the start
/// of the current validity window, counted from the request or the carrier's last update.
pub fn automatic_quote(
    request: &TransportRequest,
    carrier: &Carrier,
    may_carry_dangerous_goods: bool,
    now_ms: i64,
) -> Option<OfferedQuote> {
    let base = request.requested_at_ms.max(carrier.updated_at_ms);
    let issued_at =
        if now_ms <= base { base } else { base + (now_ms - base) / QUOTE_VALIDITY_MS * QUOTE_VALIDITY_MS };
    let deal = &request.deal;
    let load = load_of(deal);
    let quoted =
        quote::quote(carrier, &load, &deal.pickup, &deal.delivery, may_carry_dangerous_goods, issued_at)?;
    if quoted.price.currency() != price_currency(deal) {
        return None;
    }
    let vehicle = carrier
        .profile
        .vehicles
        .iter()
        .find(|vehicle| vehicle.id == quoted.vehicle)
        .map(|vehicle| vehicle.name.clone())
        .unwrap_or_default();
    Some(OfferedQuote {
        id: Uuid::new_v5(
            &QUOTE_NAMESPACE,
            format!("{}/{}/automatic/{issued_at}", deal.id, carrier.organization).as_bytes(),
        ),
        deal_id: deal.id,
        carrier: carrier.organization,
        vehicle,
        price: quoted.price,
        road_distance_km: quoted.road_distance_km,
        duration_minutes: quoted.duration_minutes,
        chargeable_mass_kg: quoted.chargeable_mass_kg,
        co2_kg: quoted.co2_kg,
        expires_at_ms: quoted.expires_at_ms,
        automatic: true,
    })
}
