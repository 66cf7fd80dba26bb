//! The Listing aggregate: an offer (supply) or a request (demand) of a material, from draft to
//! published to closed (fulfilled, withdrawn or expired), with the reservations made against
//! an offer's quantity. Its types, events and fold are the listings contract's
//! (`symbiose_listings_contract::listing`); what is here is how the service decides.
//!
//! The invariant it keeps: what is reserved and delivered never exceeds the quantity. `decide`
//! and `evolve` are pure: the shell passes the time, the new ids, and what it looked up in the
//! directory (the site's point and country, whether the owner's permits accept the waste).

use symbiose_domain::Quantity;
pub use symbiose_listings_contract::listing::*;
use uuid::Uuid;

/// Largest price per unit, either way, in minor units (one million).
pub const PRICE_PER_UNIT_MINOR_MAX: i64 = 100_000_000;
/// Largest distance a request accepts, in km.
pub const REQUEST_DISTANCE_KM_MAX: u32 = 1000;
/// Most open reservations on one listing.
pub const RESERVATIONS_MAX: usize = 1000;

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

#[cfg(test)]
mod tests;
