//! How matching holds a listing's quantity for a deal: through the listings service's own
//! reservation commands (`ReserveQuantity`, `ReleaseReservation`, `ConfirmDelivery`), called as
//! the platform's service, with the deal's id as the reservation id, so a retry never reserves
//! twice: the listing itself recognises a reservation it holds (same id, same quantity), and one
//! released is reserved again by a later call, as the listing's state says, never answered from
//! a request id's earlier write.
//!
//! [`Reservations`] is the port; [`ListingsReservations`] calls the listings service's handler
//! itself when both run in one process, [`RemoteReservations`] calls it over gRPC when each
//! runs alone. Either way the listings service decides, with its own rules.

use std::future::Future;

use symbiose_domain::Quantity;
use symbiose_kit::auth::{TokenAuthority, service_request, service_request_in_process as request};
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::listings::v1::listing_service_server::ListingService;
use tonic::transport::Channel;
use tonic::{Code, Response, Status};
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
#[error("the listings service: {message}")]
pub struct ReservationsError {
    pub message: String,
    /// The listings service did not answer (it may be starting again): asking again may do.
    pub unreachable: bool,
}

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

impl<L: ListingService> Reservations for ListingsReservations<L> {
    async fn reserve(
        &self,
        offer: Uuid,
        reservation_id: Uuid,
        quantity: Quantity,
    ) -> Result<Reserved, ReservationsError> {
        let answer =
            self.listings.reserve_quantity(request(reserve_message(offer, reservation_id, quantity)));
        reserved(answer.await.map(Response::into_inner))
    }

    async fn release(&self, offer: Uuid, reservation_id: Uuid) -> Result<(), ReservationsError> {
        let answer = self.listings.release_reservation(request(release_message(offer, reservation_id)));
        gone(answer.await.map(|_| ()))
    }

    async fn confirm_delivery(
        &self,
        offer: Uuid,
        reservation_id: Uuid,
        delivered: Option<Quantity>,
    ) -> Result<(), ReservationsError> {
        let Some(delivered) = delivered else { return self.release(offer, reservation_id).await };
        let message = delivery_message(offer, reservation_id, delivered);
        gone(self.listings.confirm_delivery(request(message)).await.map(|_| ()))
    }
}

/// The listings service's reservations over gRPC, when each service runs alone: every call
/// carries a short-lived token of the platform's service, signed with the platform's key.
#[derive(Debug, Clone)]
pub struct RemoteReservations {
    client: ListingServiceClient<Channel>,
    authority: TokenAuthority,
}

impl RemoteReservations {
    /// Calls the listings service through `channel` (connected lazily, so the two may start
    /// in any order), signing its tokens with `authority`.
    pub fn new(channel: Channel, authority: TokenAuthority) -> RemoteReservations {
        RemoteReservations { client: ListingServiceClient::new(channel), authority }
    }
}

impl Reservations for RemoteReservations {
    async fn reserve(
        &self,
        offer: Uuid,
        reservation_id: Uuid,
        quantity: Quantity,
    ) -> Result<Reserved, ReservationsError> {
        let request = service_request(&self.authority, reserve_message(offer, reservation_id, quantity));
        reserved(self.client.clone().reserve_quantity(request).await.map(Response::into_inner))
    }

    async fn release(&self, offer: Uuid, reservation_id: Uuid) -> Result<(), ReservationsError> {
        let request = service_request(&self.authority, release_message(offer, reservation_id));
        gone(self.client.clone().release_reservation(request).await.map(|_| ()))
    }

    async fn confirm_delivery(
        &self,
        offer: Uuid,
        reservation_id: Uuid,
        delivered: Option<Quantity>,
    ) -> Result<(), ReservationsError> {
        let Some(delivered) = delivered else { return self.release(offer, reservation_id).await };
        let request = service_request(&self.authority, delivery_message(offer, reservation_id, delivered));
        gone(self.client.clone().confirm_delivery(request).await.map(|_| ()))
    }
}

/// No request id: a call repeated (after a lost answer, or by a service restarted) is applied
/// once by the listing's own rule for the reservation id, which follows what the listing holds
/// now. A request id would answer a reservation made, released, then asked again with the first
/// write, although nothing is held any more.
fn reserve_message(
    offer: Uuid,
    reservation_id: Uuid,
    quantity: Quantity,
) -> listings::ReserveQuantityRequest {
    listings::ReserveQuantityRequest {
        request_id: String::new(),
        listing_id: offer.to_string(),
        reservation_id: reservation_id.to_string(),
        quantity: Some(quantity.into()),
    }
}

fn release_message(offer: Uuid, reservation_id: Uuid) -> listings::ReleaseReservationRequest {
    listings::ReleaseReservationRequest {
        request_id: String::new(),
        listing_id: offer.to_string(),
        reservation_id: reservation_id.to_string(),
    }
}

fn delivery_message(
    offer: Uuid,
    reservation_id: Uuid,
    delivered: Quantity,
) -> listings::ConfirmDeliveryRequest {
    listings::ConfirmDeliveryRequest {
        request_id: String::new(),
        listing_id: offer.to_string(),
        reservation_id: reservation_id.to_string(),
        delivered: Some(delivered.into()),
    }
}

fn failed(status: &Status) -> ReservationsError {
    ReservationsError {
        message: format!("{:?}: {}", status.code(), status.message()),
        unreachable: matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled),
    }
}

/// A reservation's answer: refused by a rule of the listing, or not reached.
fn reserved(
    answer: Result<listings::ReserveQuantityResponse, Status>,
) -> Result<Reserved, ReservationsError> {
    match answer {
        Ok(response) => Ok(Reserved::Held { position: response.position }),
        Err(status) if matches!(status.code(), Code::FailedPrecondition | Code::NotFound) => {
            Ok(Reserved::Refused(status.message().to_owned()))
        }
        Err(status) => Err(failed(&status)),
    }
}

/// A release's or a confirmation's answer: NOT_FOUND means released or confirmed already, or
/// never made; nothing is held either way.
fn gone(answer: Result<(), Status>) -> Result<(), ReservationsError> {
    match answer {
        Ok(()) => Ok(()),
        Err(status) if status.code() == Code::NotFound => Ok(()),
        Err(status) => Err(failed(&status)),
    }
}
