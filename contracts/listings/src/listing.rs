//! A listing as other contexts know it: an offer (supply) or a request (demand) of a material,
//! from draft to published to closed (fulfilled, withdrawn or expired), with the reservations
//! made against an offer's quantity; its events and their fold.
//!
//! The listings service decides; everyone folds the same events the same way with [`evolve`].

use std::collections::BTreeMap;

use symbiose_domain::GeoPoint;
pub use symbiose_domain::lot::{DataQuality, LegalStatus, Place, PlasticForm, Polymer, Quality};
use symbiose_domain::{MaterialFamily, Money, Quantity, QuantityError, WasteCode};
use uuid::Uuid;

/// Largest quantity of one listing, in milli-units of its unit (ten million units).
pub const LISTING_QUANTITY_MILLI_MAX: i64 = 10_000_000_000;
/// Default distance a request accepts, in km (a stored `max_distance_km` of 0 means it).
pub const REQUEST_DISTANCE_KM_DEFAULT: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Side {
    Offer,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Delivery {
    BuyerCollects,
    SellerDelivers { within_km: u32 },
    Either { seller_within_km: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AttachmentKind {
    Photo,
    LabAnalysis,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attachment {
    pub kind: AttachmentKind,
    pub url: String,
    pub sha256: String,
}

/// What a listing says, as parsed from the wire: every value already valid on its own.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Terms {
    pub side: Side,
    pub family: MaterialFamily,
    pub waste_code: Option<WasteCode>,
    pub legal_status: LegalStatus,
    pub description: String,
    pub quality: Quality,
    pub quantity: Quantity,
    pub minimum_lot: Option<Quantity>,
    /// 0 for a one-off lot.
    pub recurrence_days: u32,
    pub site_id: Uuid,
    pub location: Option<GeoPoint>,
    pub available_from_ms: i64,
    pub available_until_ms: i64,
    pub price_per_unit: Money,
    pub delivery: Delivery,
    pub max_distance_km: u32,
    pub accepts_other_countries: bool,
    pub attachments: Vec<Attachment>,
    pub expires_at_ms: i64,
}

impl Terms {
    /// The names of the terms that differ from `other`.
    pub fn changes_from(&self, other: &Terms) -> Vec<String> {
        let mut changed = Vec::new();
        let mut note = |name: &str, differs: bool| {
            if differs {
                changed.push(name.to_owned());
            }
        };
        note("family", self.family != other.family);
        note("waste_code", self.waste_code != other.waste_code);
        note("legal_status", self.legal_status != other.legal_status);
        note("description", self.description != other.description);
        note("quality", self.quality != other.quality);
        note("quantity", self.quantity != other.quantity);
        note("minimum_lot", self.minimum_lot != other.minimum_lot);
        note("recurrence", self.recurrence_days != other.recurrence_days);
        note("site_id", self.site_id != other.site_id);
        note("location", self.location != other.location);
        note("available_from", self.available_from_ms != other.available_from_ms);
        note("available_until", self.available_until_ms != other.available_until_ms);
        note("price_per_unit", self.price_per_unit != other.price_per_unit);
        note("delivery", self.delivery != other.delivery);
        note("max_distance_km", self.max_distance_km != other.max_distance_km);
        note("accepts_other_countries", self.accepts_other_countries != other.accepts_other_countries);
        note("attachments", self.attachments != other.attachments);
        note("expires_at", self.expires_at_ms != other.expires_at_ms);
        changed
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Closure {
    Fulfilled,
    Withdrawn,
    Expired,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Listing {
    pub id: Uuid,
    pub owner: Uuid,
    pub terms: Terms,
    pub place: Place,
    /// Open reservations, in milli-units of the quantity's unit.
    pub reservations: BTreeMap<Uuid, i64>,
    /// Delivered so far, in milli-units of the quantity's unit.
    pub delivered_milli: i64,
    /// Whether it was ever published: a listing never published stays its owner's business.
    pub published_once: bool,
}

impl Listing {
    pub fn reserved_milli(&self) -> i64 {
        self.reservations.values().fold(0, |sum, reserved| sum.saturating_add(*reserved))
    }

    /// What can still be reserved, in milli-units of the quantity's unit.
    pub fn available_milli(&self) -> i64 {
        self.terms
            .quantity
            .amount_milli()
            .saturating_sub(self.reserved_milli())
            .saturating_sub(self.delivered_milli)
    }
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum ListingState {
    #[default]
    Absent,
    Draft(Box<Listing>),
    Published(Box<Listing>),
    Closed(Box<Listing>, Closure),
}

impl ListingState {
    pub fn listing(&self) -> Option<&Listing> {
        match self {
            ListingState::Absent => None,
            ListingState::Draft(listing)
            | ListingState::Published(listing)
            | ListingState::Closed(listing, _) => Some(listing),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    Created { id: Uuid, owner: Uuid, terms: Terms, place: Place },
    Amended { terms: Terms, place: Place, changed: Vec<String> },
    Published,
    Withdrawn,
    Expired,
    Fulfilled,
    QuantityReserved { reservation_id: Uuid, quantity_milli: i64 },
    ReservationReleased { reservation_id: Uuid },
    DeliveryConfirmed { reservation_id: Uuid, delivered_milli: i64 },
}

/// Applies an event. Total: events are facts, whatever the state says.
pub fn evolve(state: ListingState, event: &Event) -> ListingState {
    if let Event::Created { id, owner, terms, place } = event {
        return ListingState::Draft(Box::new(Listing {
            id: *id,
            owner: *owner,
            terms: terms.clone(),
            place: *place,
            reservations: BTreeMap::new(),
            delivered_milli: 0,
            published_once: false,
        }));
    }
    // The open states keep their kind through the events that do not change it.
    type Rebuild = fn(Box<Listing>) -> ListingState;
    let (mut listing, rebuild): (Box<Listing>, Rebuild) = match state {
        ListingState::Absent => return ListingState::Absent,
        ListingState::Draft(listing) => (listing, ListingState::Draft),
        ListingState::Published(listing) => (listing, ListingState::Published),
        ListingState::Closed(listing, closure) => {
            return ListingState::Closed(listing, closure);
        }
    };
    match event {
        Event::Created { .. } => unreachable!("handled above"),
        Event::Amended { terms, place, .. } => {
            listing.terms = terms.clone();
            listing.place = *place;
            rebuild(listing)
        }
        Event::Published => {
            listing.published_once = true;
            ListingState::Published(listing)
        }
        Event::Withdrawn => ListingState::Closed(listing, Closure::Withdrawn),
        Event::Expired => ListingState::Closed(listing, Closure::Expired),
        Event::Fulfilled => ListingState::Closed(listing, Closure::Fulfilled),
        Event::QuantityReserved { reservation_id, quantity_milli } => {
            listing.reservations.insert(*reservation_id, *quantity_milli);
            rebuild(listing)
        }
        Event::ReservationReleased { reservation_id } => {
            listing.reservations.remove(reservation_id);
            rebuild(listing)
        }
        Event::DeliveryConfirmed { reservation_id, delivered_milli } => {
            listing.reservations.remove(reservation_id);
            listing.delivered_milli = listing.delivered_milli.saturating_add(*delivered_milli);
            rebuild(listing)
        }
    }
}

/// A quantity of the listing's unit from milli-units, for answers.
pub fn quantity_of(listing: &Listing, amount_milli: i64) -> Result<Option<Quantity>, QuantityError> {
    if amount_milli <= 0 {
        return Ok(None);
    }
    Quantity::new(amount_milli, listing.terms.quantity.unit(), listing.terms.quantity.is_actual()).map(Some)
}
