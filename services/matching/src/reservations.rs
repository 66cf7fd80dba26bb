//! How matching holds an offer's quantity for a deal: through the listings service's own
//! reservation commands (`ReserveQuantity`, `ReleaseReservation`), called as the platform's
//! service, with the deal's id as the reservation id and in the request id, so a retry never
//! reserves twice.
//!
//! [`Reservations`] is the port; [`ListingsReservations`] calls any `ListingService`: the
//! listings service's handler itself when both run in one process, or a gRPC client of it
//! when each runs alone. Either way the listings service decides, with its own rules.

use std::future::Future;

use symbiose_domain::{Quantity, Role};
use symbiose_kit::auth::Caller;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::listings::v1::listing_service_server::ListingService;
use tonic::{Code, Request};
use uuid::Uuid;

/// What the listings service answered to a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Held (or already held, by this same id and quantity); the log position of the write.
    Held { position: u64 },
    /// Refused by a rule of the listing: not enough left, closed, withdrawn. The reason says which.
    Refused(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the listings service: {0}")]
pub struct ReservationsError(pub String);

/// The listings service's reservation commands, as matching uses them.
pub trait Reservations: Send + Sync + 'static {
    /// Reserves `quantity` of `offer` under `reservation_id`.
    fn reserve(
        &self,
        offer: Uuid,
        reservation_id: Uuid,
        quantity: Quantity,
    ) -> impl Future<Output = Result<Reserved, ReservationsError>> + Send;

    /// Releases the reservation `reservation_id` of `offer` (nothing if it was released).
    fn release(
        &self,
        offer: Uuid,
        reservation_id: Uuid,
    ) -> impl Future<Output = Result<(), ReservationsError>> + Send;

    /// Turns the reservation `reservation_id` of `offer` into `delivered` (the rest goes back
    /// to the offer); nothing delivered releases it. Nothing if it was confirmed or released.
    fn confirm_delivery(
        &self,
        offer: Uuid,
        reservation_id: Uuid,
        delivered: Option<Quantity>,
    ) -> impl Future<Output = Result<(), ReservationsError>> + Send;
}

/// The reservations of any `ListingService` implementation, called with the platform
/// service's identity.
#[derive(Debug, Clone)]
pub struct ListingsReservations<L> {
    listings: L,
}

impl<L> ListingsReservations<L> {
    pub fn new(listings: L) -> ListingsReservations<L> {
        ListingsReservations { listings }
    }
}

/// The identity matching acts under in one process: the platform's service role.
fn service_caller() -> Caller {
    Caller {
        organization_id: Uuid::nil(),
        roles: vec![Role::Service],
        token_id: Uuid::nil(),
        expires_at_s: u64::MAX,
    }
}

fn request<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(service_caller());
    request
}

impl<L: ListingService> Reservations for ListingsReservations<L> {
    async fn reserve(
        &self,
        offer: Uuid,
        reservation_id: Uuid,
        quantity: Quantity,
    ) -> Result<Reserved, ReservationsError> {
        let message = listings::ReserveQuantityRequest {
            request_id: format!("reserve/{reservation_id}"),
            listing_id: offer.to_string(),
            reservation_id: reservation_id.to_string(),
            quantity: Some(quantity.into()),
        };
        match self.listings.reserve_quantity(request(message)).await {
            Ok(response) => Ok(Reserved::Held { position: response.into_inner().position }),
            Err(status) if matches!(status.code(), Code::FailedPrecondition | Code::NotFound) => {
                Ok(Reserved::Refused(status.message().to_owned()))
            }
            Err(status) => Err(ReservationsError(format!("{:?}: {}", status.code(), status.message()))),
        }
    }

    async fn release(&self, offer: Uuid, reservation_id: Uuid) -> Result<(), ReservationsError> {
        let message = listings::ReleaseReservationRequest {
            request_id: format!("release/{reservation_id}"),
            listing_id: offer.to_string(),
            reservation_id: reservation_id.to_string(),
        };
        match self.listings.release_reservation(request(message)).await {
            // Released already, or never made: nothing is held either way.
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::NotFound => Ok(()),
            Err(status) => Err(ReservationsError(format!("{:?}: {}", status.code(), status.message()))),
        }
    }

    async fn confirm_delivery(
        &self,
        offer: Uuid,
        reservation_id: Uuid,
        delivered: Option<Quantity>,
    ) -> Result<(), ReservationsError> {
        let Some(delivered) = delivered else { return self.release(offer, reservation_id).await };
        let message = listings::ConfirmDeliveryRequest {
            request_id: format!("deliver/{reservation_id}"),
            listing_id: offer.to_string(),
            reservation_id: reservation_id.to_string(),
            delivered: Some(delivered.into()),
        };
        match self.listings.confirm_delivery(request(message)).await {
            Ok(_) => Ok(()),
            // Confirmed or released already: the reservation is gone either way.
            Err(status) if status.code() == Code::NotFound => Ok(()),
            Err(status) => Err(ReservationsError(format!("{:?}: {}", status.code(), status.message()))),
        }
    }
}
