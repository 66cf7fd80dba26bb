//! The `ListingService` handlers: who calls, what they ask, what the market does.

use std::sync::Arc;

use symbiose_domain::{Quantity, Role};
use symbiose_eventstore::EventStore;
use symbiose_eventstore::Position;
use symbiose_kit::ApiError;
use symbiose_kit::auth::{self, Caller};
use symbiose_kit::page;
use symbiose_proto::convert::{self, FieldError, material_family_from_wire};
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::listing_service_server::ListingService;
use symbiose_shell::Actor;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::codec;
use crate::error::ListingsError;
use crate::import::{self, Format, IMPORT_BYTES_MAX, IMPORT_ID_BYTES_MAX, IMPORT_REFUSALS_MAX};
use crate::listing::{Closure, Command, Listing, ListingState, Side};
use crate::listing_codec::{listing_to_wire, terms_from_wire};
use crate::market::{Imported, Market};

/// Largest page of `ListMyListings`.
pub(crate) const LISTINGS_PAGE_SIZE_MAX: usize = 200;

#[derive(Debug)]
pub struct ListingApi<S> {
    market: Arc<Market<S>>,
}

impl<S> ListingApi<S> {
    pub fn new(market: Arc<Market<S>>) -> ListingApi<S> {
        ListingApi { market }
    }
}

fn listing_id(value: &str) -> Result<Uuid, ListingsError> {
    Ok(codec::id(value, "listing_id")?)
}

/// Only the owner (or the operator) changes a listing.
fn owned_by(caller: &Caller) -> impl Fn(&Listing) -> Result<(), ListingsError> + '_ {
    move |listing| Ok(caller.require_organization(listing.owner)?)
}

/// The role a side needs: producers offer, buyers and recyclers ask.
fn require_side_role(caller: &Caller, side: Side) -> Result<(), ListingsError> {
    match side {
        Side::Offer => caller.require_role(Role::Producer)?,
        Side::Request => caller.require_any_role(&[Role::Buyer, Role::Recycler])?,
    }
    Ok(())
}

/// Reservations are the platform's services' (and the operator's), never end users'.
fn require_service(caller: &Caller) -> Result<(), ListingsError> {
    Ok(caller.require_any_role(&[Role::Service, Role::Operator])?)
}

fn quantity(
    value: Option<symbiose_proto::common::v1::Quantity>,
    field: &str,
) -> Result<Quantity, ListingsError> {
    Ok(convert::required::<_, Quantity>(value, field)?)
}

/// An import's header, read from the first message of its stream.
#[derive(Debug)]
struct ImportHeader {
    import_id: String,
    format: Format,
    publish: bool,
}

fn import_header(first: Option<pb::ImportListingsRequest>) -> Result<ImportHeader, ListingsError> {
    let Some(pb::import_listings_request::Part::Header(header)) = first.and_then(|first| first.part) else {
        return Err(ListingsError::invalid("header", "is required: the first message carries it"));
    };
    let import_id = header.import_id.trim();
    if import_id.is_empty() || import_id.len() > IMPORT_ID_BYTES_MAX {
        return Err(ListingsError::invalid(
            "header.import_id",
            format!("must be 1 to {IMPORT_ID_BYTES_MAX} bytes"),
        ));
    }
    let format = match pb::ImportFormat::try_from(header.format) {
        Ok(pb::ImportFormat::Csv) => Format::Csv,
        Ok(pb::ImportFormat::JsonLines) => Format::JsonLines,
        Ok(pb::ImportFormat::Unspecified) => return Err(FieldError::required("header.format").into()),
        Err(_) => {
            return Err(ListingsError::invalid(
                "header.format",
                format!("{} is not a format", header.format),
            ));
        }
    };
    Ok(ImportHeader { import_id: import_id.to_owned(), format, publish: header.publish })
}

/// The file's bytes, from the messages after the header, at most [`IMPORT_BYTES_MAX`].
async fn import_file(parts: &mut Streaming<pb::ImportListingsRequest>) -> Result<Vec<u8>, Status> {
    let mut file = Vec::new();
    while let Some(part) = parts.message().await? {
        match part.part {
            Some(pb::import_listings_request::Part::Chunk(chunk)) => {
                if file.len() + chunk.len() > IMPORT_BYTES_MAX {
                    return Err(ListingsError::invalid(
                        "chunk",
                        format!("the file is larger than {IMPORT_BYTES_MAX} bytes"),
                    )
                    .into());
                }
                file.extend_from_slice(&chunk);
            }
            Some(pb::import_listings_request::Part::Header(_)) => {
                return Err(ListingsError::invalid("header", "only the first message carries it").into());
            }
            None => return Err(ListingsError::from(FieldError::required("chunk")).into()),
        }
    }
    Ok(file)
}

fn import_to_wire(imported: Imported) -> pb::ImportListingsResponse {
    let refused = imported.refused.len();
    pb::ImportListingsResponse {
        lines: imported.lines,
        created: imported.created,
        already_present: imported.already_present,
        refused: refused as u32,
        refusals: imported
            .refused
            .into_iter()
            .take(IMPORT_REFUSALS_MAX)
            .map(|(line, error)| pb::ImportRefusal { line, field: error.field, reason: error.message })
            .collect(),
        refusals_omitted: refused.saturating_sub(IMPORT_REFUSALS_MAX) as u32,
        position: imported.position.map_or(0, Position::as_u64),
    }
}

#[tonic::async_trait]
impl<S: EventStore> ListingService for ListingApi<S> {
    async fn create_listing(
        &self,
        request: Request<pb::CreateListingRequest>,
    ) -> Result<Response<pb::CreateListingResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let terms =
            request.terms.ok_or_else(|| FieldError::required("terms")).map_err(ListingsError::from)?;
        let terms = terms_from_wire(terms).map_err(|error| ListingsError::from(error.under("terms")))?;
        require_side_role(&caller, terms.side)?;
        let (id, written) = self.market.create(caller.organization_id, &actor, terms).await?;
        Ok(Response::new(pb::CreateListingResponse {
            listing_id: id.to_string(),
            version: written.version,
            position: written.position.as_u64(),
        }))
    }

    async fn import_listings(
        &self,
        request: Request<Streaming<pb::ImportListingsRequest>>,
    ) -> Result<Response<pb::ImportListingsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let mut parts = request.into_inner();
        let header = import_header(parts.message().await?)?;
        let file = import_file(&mut parts).await?;
        let started = std::time::Instant::now();
        // Reading 100,000 lines is work for a blocking thread, not the runtime's.
        let lines = tokio::task::spawn_blocking(move || import::read(header.format, &file))
            .await
            .map_err(|error| ApiError::Internal(anyhow::Error::new(error).context("reading an import")))?
            .map_err(ListingsError::from)?;
        let roles = caller.clone();
        let may_hold = move |side| require_side_role(&roles, side);
        let imported = self
            .market
            .import(caller.organization_id, &header.import_id, header.publish, may_hold, lines)
            .await?;
        tracing::info!(
            import_id = %header.import_id,
            lines = imported.lines,
            created = imported.created,
            already_present = imported.already_present,
            refused = imported.refused.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "listings imported"
        );
        Ok(Response::new(import_to_wire(imported)))
    }

    async fn amend_listing(
        &self,
        request: Request<pb::AmendListingRequest>,
    ) -> Result<Response<pb::AmendListingResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let id = listing_id(&request.listing_id)?;
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let terms =
            request.terms.ok_or_else(|| FieldError::required("terms")).map_err(ListingsError::from)?;
        let terms = terms_from_wire(terms).map_err(|error| ListingsError::from(error.under("terms")))?;
        let (written, changed) =
            self.market.amend(id, &actor, terms, owned_by(&caller)).await.map_err(|error| {
                ApiError::from(error).in_request(&[("quantity.unit", "terms.quantity.unit")])
            })?;
        Ok(Response::new(pb::AmendListingResponse {
            changed,
            version: written.version,
            position: written.position.as_u64(),
        }))
    }

    async fn publish_listing(
        &self,
        request: Request<pb::PublishListingRequest>,
    ) -> Result<Response<pb::PublishListingResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let id = listing_id(&request.listing_id)?;
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        // The request holds no terms: a term the rules refuse now (an expiry passed) is the
        // listing's state.
        let written = self
            .market
            .execute(id, &actor, Command::Publish, false, owned_by(&caller))
            .await
            .map_err(|error| ApiError::from(error).not_from_request())?;
        Ok(Response::new(pb::PublishListingResponse {
            version: written.version,
            position: written.position.as_u64(),
        }))
    }

    async fn withdraw_listing(
        &self,
        request: Request<pb::WithdrawListingRequest>,
    ) -> Result<Response<pb::WithdrawListingResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let id = listing_id(&request.listing_id)?;
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let written = self.market.execute(id, &actor, Command::Withdraw, false, owned_by(&caller)).await?;
        Ok(Response::new(pb::WithdrawListingResponse {
            version: written.version,
            position: written.position.as_u64(),
        }))
    }

    async fn get_listing(
        &self,
        request: Request<pb::GetListingRequest>,
    ) -> Result<Response<pb::GetListingResponse>, Status> {
        let caller = auth::caller(&request)?;
        let id = listing_id(&request.into_inner().listing_id)?;
        let loaded = self.market.load(id).await?;
        let not_found = || ApiError::NotFound(format!("listing {id} not found"));
        let listing = loaded.state.listing().ok_or_else(not_found)?;
        let insider = caller.require_organization(listing.owner).is_ok() || caller.has_role(Role::Service);
        // A listing never published is its owner's business; reservations are the owner's and
        // the services'.
        if !listing.published_once && !insider {
            return Err(not_found().into());
        }
        let mut answer = listing_to_wire(&loaded.state).ok_or_else(not_found)?;
        if !insider {
            answer.open_reservations.clear();
        }
        Ok(Response::new(pb::GetListingResponse {
            listing: Some(answer),
            version: loaded.version.unwrap_or_default(),
        }))
    }

    async fn list_my_listings(
        &self,
        request: Request<pb::ListMyListingsRequest>,
    ) -> Result<Response<pb::ListMyListingsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let in_state: Option<fn(&ListingState) -> bool> = match pb::ListingState::try_from(request.state) {
            Ok(pb::ListingState::Unspecified) => None,
            Ok(pb::ListingState::Draft) => Some(|state| matches!(state, ListingState::Draft(_))),
            Ok(pb::ListingState::Published) => Some(|state| matches!(state, ListingState::Published(_))),
            Ok(pb::ListingState::Fulfilled) => {
                Some(|state| matches!(state, ListingState::Closed(_, Closure::Fulfilled)))
            }
            Ok(pb::ListingState::Withdrawn) => {
                Some(|state| matches!(state, ListingState::Closed(_, Closure::Withdrawn)))
            }
            Ok(pb::ListingState::Expired) => {
                Some(|state| matches!(state, ListingState::Closed(_, Closure::Expired)))
            }
            Err(_) => {
                return Err(
                    ListingsError::invalid("state", format!("{} is not a state", request.state)).into()
                );
            }
        };
        let family = match request.family {
            0 => None,
            value => Some(material_family_from_wire(value, "family").map_err(ListingsError::from)?),
        };
        let page_size = page::page_size(request.page_size, LISTINGS_PAGE_SIZE_MAX)?;
        let after = page::decode_token(&request.page_token)?
            .map(|key| Uuid::parse_str(&key))
            .transpose()
            .map_err(|_| ListingsError::invalid("page_token", "is not a token this service issued"))?;
        self.market.wait_for_view(Position::from_u64(request.min_position)).await?;
        let (states, more) = self.market.list_of(caller.organization_id, in_state, family, after, page_size);
        let listings: Vec<pb::Listing> = states.iter().filter_map(listing_to_wire).collect();
        let next_page_token = match listings.last() {
            Some(last) if more => page::encode_token(&last.listing_id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListMyListingsResponse { listings, next_page_token }))
    }

    async fn reserve_quantity(
        &self,
        request: Request<pb::ReserveQuantityRequest>,
    ) -> Result<Response<pb::ReserveQuantityResponse>, Status> {
        let caller = auth::caller(&request)?;
        require_service(&caller)?;
        let request = request.into_inner();
        let id = listing_id(&request.listing_id)?;
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let reservation_id =
            codec::id(&request.reservation_id, "reservation_id").map_err(ListingsError::from)?;
        let quantity = quantity(request.quantity, "quantity")?;
        let command = Command::Reserve { reservation_id, quantity };
        let written = self.market.execute(id, &actor, command, false, |_| Ok(())).await?;
        let loaded = self.market.load(id).await?;
        let available = loaded.state.listing().and_then(|listing| {
            crate::listing::quantity_of(listing, listing.available_milli()).ok().flatten()
        });
        Ok(Response::new(pb::ReserveQuantityResponse {
            available: available.map(Into::into),
            version: written.version,
            position: written.position.as_u64(),
        }))
    }

    async fn release_reservation(
        &self,
        request: Request<pb::ReleaseReservationRequest>,
    ) -> Result<Response<pb::ReleaseReservationResponse>, Status> {
        let caller = auth::caller(&request)?;
        require_service(&caller)?;
        let request = request.into_inner();
        let id = listing_id(&request.listing_id)?;
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let reservation_id =
            codec::id(&request.reservation_id, "reservation_id").map_err(ListingsError::from)?;
        let written =
            self.market.execute(id, &actor, Command::Release { reservation_id }, false, |_| Ok(())).await?;
        Ok(Response::new(pb::ReleaseReservationResponse {
            version: written.version,
            position: written.position.as_u64(),
        }))
    }

    async fn confirm_delivery(
        &self,
        request: Request<pb::ConfirmDeliveryRequest>,
    ) -> Result<Response<pb::ConfirmDeliveryResponse>, Status> {
        let caller = auth::caller(&request)?;
        require_service(&caller)?;
        let request = request.into_inner();
        let id = listing_id(&request.listing_id)?;
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let reservation_id =
            codec::id(&request.reservation_id, "reservation_id").map_err(ListingsError::from)?;
        let delivered = quantity(request.delivered, "delivered")?;
        let command = Command::ConfirmDelivery { reservation_id, delivered };
        let written = self
            .market
            .execute(id, &actor, command, false, |_| Ok(()))
            .await
            .map_err(|error| ApiError::from(error).in_request(&[("quantity.unit", "delivered.unit")]))?;
        Ok(Response::new(pb::ConfirmDeliveryResponse {
            version: written.version,
            position: written.position.as_u64(),
        }))
    }
}
