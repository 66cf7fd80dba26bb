//! The Listing aggregate: an offer (supply) or a request (demand) of a material, from draft to
//! published to closed (fulfilled, withdrawn or expired), with the reservations made against
//! an offer's quantity.
//!
//! The invariant it keeps: what is reserved and delivered never exceeds the quantity. `decide`
//! and `evolve` are pure: the shell passes the time, the new ids, and what it looked up in the
//! directory (the site's point and country, whether the owner's permits accept the waste).

use std::collections::BTreeMap;

use symbiose_domain::{
    Country, GeoPoint, MaterialFamily, Money, PalletGrade, Quantity, QuantityError, WasteCode,
};
use uuid::Uuid;

/// Largest quantity of one listing, in milli-units of its unit (ten million units).
pub const LISTING_QUANTITY_MILLI_MAX: i64 = 10_000_000_000;
/// Largest price per unit, either way, in minor units (one million).
pub const PRICE_PER_UNIT_MINOR_MAX: i64 = 100_000_000;
/// Default and largest distance a request accepts, in km.
pub const REQUEST_DISTANCE_KM_DEFAULT: u32 = 200;
pub const REQUEST_DISTANCE_KM_MAX: u32 = 1000;
/// Most open reservations on one listing.
pub const RESERVATIONS_MAX: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Offer,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegalStatus {
    Waste,
    ByProduct,
    EndOfWaste,
    ProductForReuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polymer {
    Pet,
    Hdpe,
    Pp,
    Ldpe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlasticForm {
    Flakes,
    Pellets,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataQuality {
    Declared,
    Analysed,
    Certified,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quality {
    Unspecified,
    PalletGrade(PalletGrade),
    Plastic { polymer: Polymer, form: PlasticForm },
    Specification { text: String, data_quality: Option<DataQuality> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    BuyerCollects,
    SellerDelivers { within_km: u32 },
    Either { seller_within_km: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentKind {
    Photo,
    LabAnalysis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub kind: AttachmentKind,
    pub url: String,
    pub sha256: String,
}

/// What a listing says, as parsed from the wire: every value already valid on its own.
#[derive(Debug, Clone, PartialEq)]
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

/// Where the lot is, resolved by the shell from the owner's site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Place {
    pub point: GeoPoint,
    pub country: Country,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closure {
    Fulfilled,
    Withdrawn,
    Expired,
}

#[derive(Debug, Clone, PartialEq)]
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

#[derive(Debug, Clone, PartialEq, Default)]
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

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Create {
        id: Uuid,
        owner: Uuid,
        terms: Terms,
        place: Place,
    },
    Amend {
        terms: Terms,
        place: Place,
    },
    Publish,
    Withdraw,
    /// Sent by the shell once the expiry has passed.
    Expire,
    Reserve {
        reservation_id: Uuid,
        quantity: Quantity,
    },
    Release {
        reservation_id: Uuid,
    },
    ConfirmDelivery {
        reservation_id: Uuid,
        delivered: Quantity,
    },
}

/// What the shell passes in.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub now_ms: i64,
    /// For a request of hazardous waste: whether the owner holds a permit accepting it.
    pub owner_may_receive_hazardous: bool,
}

#[derive(Debug, Clone, PartialEq)]
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the listing already exists")]
    AlreadyExists,
    #[error("the listing does not exist")]
    NotFound,
    #[error("the unit {unit} does not fit {family}")]
    UnitDoesNotFitMaterial { unit: &'static str, family: &'static str },
    #[error("a waste names its waste code")]
    WasteWithoutCode,
    #[error("a quantity is at most {LISTING_QUANTITY_MILLI_MAX} milli-units")]
    QuantityTooLarge,
    #[error("the minimum lot is in another unit than the quantity, or larger than it")]
    MinimumLotDoesNotFit,
    #[error("a price per unit is at most {PRICE_PER_UNIT_MINOR_MAX} minor units either way")]
    PriceTooLarge,
    #[error("the availability window ends before it starts")]
    AvailabilityWindowReversed,
    #[error("the expiry has passed")]
    ExpiryPassed,
    #[error("a request's maximum distance is 1 to {REQUEST_DISTANCE_KM_MAX} km")]
    DistanceOutOfRange,
    #[error("hazardous waste is requested only by an organization whose permit accepts it")]
    HazardousWithoutPermit,
    #[error("the listing is closed")]
    Closed,
    #[error("the listing is already published")]
    AlreadyPublished,
    #[error("the listing is not published")]
    NotPublished,
    #[error("a listing's side cannot change")]
    SideChanged,
    #[error("the quantity cannot go below what is reserved and delivered ({0} milli-units)")]
    QuantityBelowCommitted(i64),
    #[error("the reservation is in another unit than the listing")]
    WrongUnit,
    #[error("{requested} milli-units asked, {available} available")]
    QuantityExceedsAvailable { requested: i64, available: i64 },
    #[error("a reservation is at least the minimum lot ({0} milli-units), or all that is left")]
    BelowMinimumLot(i64),
    #[error("reservation {0} was made for another quantity")]
    ReservationConflict(Uuid),
    #[error("reservation {0} not found")]
    UnknownReservation(Uuid),
    #[error("at most {RESERVATIONS_MAX} open reservations")]
    TooManyReservations,
    #[error("{delivered} milli-units delivered, at most {allowed} can be")]
    DeliveredExceedsQuantity { delivered: i64, allowed: i64 },
    #[error("{0} reservations are open: they are released or delivered first")]
    OpenReservations(usize),
}

/// The checks on terms that need no state: every rule of a valid listing.
fn check_terms(terms: &Terms, context: &Context) -> Result<(), Rejection> {
    let unit = terms.quantity.unit();
    if !terms.family.fits_unit(unit) {
        return Err(Rejection::UnitDoesNotFitMaterial { unit: unit.symbol(), family: terms.family.key() });
    }
    if terms.legal_status == LegalStatus::Waste && terms.waste_code.is_none() {
        return Err(Rejection::WasteWithoutCode);
    }
    if terms.quantity.amount_milli() > LISTING_QUANTITY_MILLI_MAX {
        return Err(Rejection::QuantityTooLarge);
    }
    if let Some(minimum) = terms.minimum_lot
        && (minimum.unit() != unit || minimum.amount_milli() > terms.quantity.amount_milli())
    {
        return Err(Rejection::MinimumLotDoesNotFit);
    }
    if terms.price_per_unit.minor().abs() > PRICE_PER_UNIT_MINOR_MAX {
        return Err(Rejection::PriceTooLarge);
    }
    if terms.available_until_ms < terms.available_from_ms {
        return Err(Rejection::AvailabilityWindowReversed);
    }
    if terms.expires_at_ms <= context.now_ms {
        return Err(Rejection::ExpiryPassed);
    }
    if terms.side == Side::Request {
        if terms.max_distance_km == 0 || terms.max_distance_km > REQUEST_DISTANCE_KM_MAX {
            return Err(Rejection::DistanceOutOfRange);
        }
        let hazardous = terms.waste_code.is_some_and(|code| code.is_hazardous());
        if hazardous && !context.owner_may_receive_hazardous {
            return Err(Rejection::HazardousWithoutPermit);
        }
    }
    Ok(())
}

pub fn decide(state: &ListingState, command: Command, context: &Context) -> Result<Vec<Event>, Rejection> {
    match (state, command) {
        (ListingState::Absent, Command::Create { id, owner, terms, place }) => {
            check_terms(&terms, context)?;
            Ok(vec![Event::Created { id, owner, terms, place }])
        }
        (_, Command::Create { .. }) => Err(Rejection::AlreadyExists),
        (ListingState::Absent, _) => Err(Rejection::NotFound),
        (ListingState::Closed(..), Command::Expire) => Ok(Vec::new()),
        // A closed listing holds no reservation: a release or a confirmation asked again (the
        // platform's retries) is answered as for any reservation the listing does not hold.
        (
            ListingState::Closed(..),
            Command::Release { reservation_id } | Command::ConfirmDelivery { reservation_id, .. },
        ) => Err(Rejection::UnknownReservation(reservation_id)),
        (ListingState::Closed(..), _) => Err(Rejection::Closed),

        (
            ListingState::Draft(listing) | ListingState::Published(listing),
            Command::Amend { terms, place },
        ) => {
            if terms.side != listing.terms.side {
                return Err(Rejection::SideChanged);
            }
            check_terms(&terms, context)?;
            let committed = listing.reserved_milli() + listing.delivered_milli;
            if terms.quantity.unit() != listing.terms.quantity.unit() && committed > 0 {
                return Err(Rejection::WrongUnit);
            }
            if terms.quantity.amount_milli() < committed {
                return Err(Rejection::QuantityBelowCommitted(committed));
            }
            let changed = terms.changes_from(&listing.terms);
            if changed.is_empty() && place == listing.place {
                return Ok(Vec::new());
            }
            Ok(vec![Event::Amended { terms, place, changed }])
        }
        (ListingState::Draft(listing), Command::Publish) => {
            if listing.terms.expires_at_ms <= context.now_ms {
                return Err(Rejection::ExpiryPassed);
            }
            Ok(vec![Event::Published])
        }
        (ListingState::Published(_), Command::Publish) => Err(Rejection::AlreadyPublished),
        (ListingState::Draft(listing) | ListingState::Published(listing), Command::Withdraw) => {
            if !listing.reservations.is_empty() {
                return Err(Rejection::OpenReservations(listing.reservations.len()));
            }
            Ok(vec![Event::Withdrawn])
        }
        (ListingState::Draft(listing) | ListingState::Published(listing), Command::Expire) => {
            // A deal in progress finishes first: the listing expires once its reservations are
            // delivered or released.
            if listing.terms.expires_at_ms > context.now_ms || !listing.reservations.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![Event::Expired])
        }

        (
            ListingState::Draft(_),
            Command::Reserve { .. } | Command::Release { .. } | Command::ConfirmDelivery { .. },
        ) => Err(Rejection::NotPublished),
        (ListingState::Published(listing), Command::Reserve { reservation_id, quantity }) => {
            reserve(listing, reservation_id, quantity)
        }
        (ListingState::Published(listing), Command::Release { reservation_id }) => {
            if !listing.reservations.contains_key(&reservation_id) {
                return Err(Rejection::UnknownReservation(reservation_id));
            }
            Ok(vec![Event::ReservationReleased { reservation_id }])
        }
        (ListingState::Published(listing), Command::ConfirmDelivery { reservation_id, delivered }) => {
            let Some(reserved) = listing.reservations.get(&reservation_id) else {
                return Err(Rejection::UnknownReservation(reservation_id));
            };
            if delivered.unit() != listing.terms.quantity.unit() {
                return Err(Rejection::WrongUnit);
            }
            // Actuals may differ from estimates: more than reserved is fine while the listing
            // still has it.
            let allowed = reserved + listing.available_milli();
            if delivered.amount_milli() > allowed {
                return Err(Rejection::DeliveredExceedsQuantity {
                    delivered: delivered.amount_milli(),
                    allowed,
                });
            }
            let mut events =
                vec![Event::DeliveryConfirmed { reservation_id, delivered_milli: delivered.amount_milli() }];
            let delivered_after = listing.delivered_milli + delivered.amount_milli();
            let reserved_after = listing.reserved_milli() - reserved;
            if delivered_after >= listing.terms.quantity.amount_milli() && reserved_after == 0 {
                events.push(Event::Fulfilled);
            }
            Ok(events)
        }
    }
}

/// A reservation of an offer holds what a deal takes from it; of a request, what a deal serves
/// of it: a request is consumed like an offer, and one fully served leaves the market.
fn reserve(listing: &Listing, reservation_id: Uuid, quantity: Quantity) -> Result<Vec<Event>, Rejection> {
    if quantity.unit() != listing.terms.quantity.unit() {
        return Err(Rejection::WrongUnit);
    }
    let requested = quantity.amount_milli();
    if let Some(existing) = listing.reservations.get(&reservation_id) {
        return if *existing == requested {
            Ok(Vec::new())
        } else {
            Err(Rejection::ReservationConflict(reservation_id))
        };
    }
    if listing.reservations.len() >= RESERVATIONS_MAX {
        return Err(Rejection::TooManyReservations);
    }
    let available = listing.available_milli();
    if requested > available {
        return Err(Rejection::QuantityExceedsAvailable { requested, available });
    }
    // An offer's minimum lot bounds what one deal takes. A request's bounds what it receives in
    // one delivery, which the matching rules checked for the whole pickup: a consolidated
    // pickup reserves its lines one by one, each below it.
    if let Some(minimum) = listing.terms.minimum_lot
        && listing.terms.side == Side::Offer
        && requested < minimum.amount_milli()
        && requested != available
    {
        return Err(Rejection::BelowMinimumLot(minimum.amount_milli()));
    }
    Ok(vec![Event::QuantityReserved { reservation_id, quantity_milli: requested }])
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

#[cfg(test)]
mod tests;
