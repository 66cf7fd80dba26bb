//! The `MatchingService` handlers: who calls, what they ask, what the matchmaker does.

use std::sync::Arc;

use symbiose_domain::Quantity;
use symbiose_eventstore::{EventStore, Position};
use symbiose_kit::auth::{self, Caller};
use symbiose_kit::{ApiError, page};
use symbiose_listings_contract::listing::Side;
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::FieldError;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::matching::v1::{self as pb, matching_service_server::MatchingService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::candidate::Candidate;
use crate::codec::{self, deal_to_wire, document_to_wire, proposal_to_wire, score_to_wire};
use crate::matchmaker::{FIND_LIMIT_DEFAULT, FIND_LIMIT_MAX, Found, FoundConsolidation, Matchmaker};
use crate::reservations::Reservations;
use symbiose_shell::Actor;

/// Largest page of proposals or deals.
pub const LIST_PAGE_SIZE_MAX: usize = 100;
/// Page size when the request says 0.
const LIST_PAGE_SIZE_DEFAULT: u32 = 20;

#[derive(Debug)]
pub struct MatchingApi<S, R> {
    matchmaker: Arc<Matchmaker<S, R>>,
}

impl<S, R> MatchingApi<S, R> {
    pub fn new(matchmaker: Arc<Matchmaker<S, R>>) -> MatchingApi<S, R> {
        MatchingApi { matchmaker }
    }
}

fn id(value: &str, field: &str) -> Result<Uuid, ApiError> {
    codec::id(value, field).map_err(invalid)
}

fn invalid(error: FieldError) -> ApiError {
    ApiError::InvalidArgument { field: error.field, message: error.message }
}

/// The caller's own business, or the operator's.
fn owner_or_operator(caller: &Caller, owner: Uuid) -> Result<(), ApiError> {
    if caller.is_operator() { Ok(()) } else { caller.require_organization(owner) }
}

fn side_to_wire(side: Side) -> i32 {
    match side {
        Side::Offer => listings::ListingSide::Offer,
        Side::Request => listings::ListingSide::Request,
    }
    .into()
}

fn counterpart_to_wire(candidate: &Candidate) -> pb::Counterpart {
    pb::Counterpart {
        listing_id: candidate.id.to_string(),
        organization_id: candidate.owner.to_string(),
        side: side_to_wire(candidate.side),
        location: Some(candidate.place.point.into()),
        country: common::Country::from(candidate.place.country).into(),
        quantity: Quantity::new(candidate.available_milli, candidate.unit, false).ok().map(Into::into),
        price_per_unit: Some(candidate.price_per_unit.into()),
    }
}

fn match_to_wire(found: &Found) -> pb::Match {
    let Found { found, counterpart } = found;
    pb::Match {
        counterpart: Some(counterpart_to_wire(counterpart)),
        distance_km: found.fit.distance_km,
        cross_border: found.fit.cross_border,
        required_documents: found.fit.documents.iter().copied().map(document_to_wire).collect(),
        score: Some(score_to_wire(&found.score)),
        quantity: Quantity::new(found.fit.lot_milli, counterpart.unit, false).ok().map(Into::into),
    }
}

fn consolidation_to_wire(found: &FoundConsolidation, request: &Candidate) -> pb::Consolidation {
    let FoundConsolidation { consolidation, offers } = found;
    pb::Consolidation {
        offers: consolidation
            .offers
            .iter()
            .zip(offers)
            .map(|((_, quantity_milli), offer)| {
                let cross_border = offer.place.country != request.place.country;
                pb::ConsolidatedOffer {
                    offer: Some(counterpart_to_wire(offer)),
                    quantity: Quantity::new(*quantity_milli, offer.unit, false).ok().map(Into::into),
                    distance_km: offer.place.point.distance_km(&request.place.point),
                    cross_border,
                    required_documents: crate::rules::documents(offer, cross_border)
                        .into_iter()
                        .map(document_to_wire)
                        .collect(),
                }
            })
            .collect(),
        total: Quantity::new(consolidation.total_milli, request.unit, false).ok().map(Into::into),
        distance_km: consolidation.distance_km,
        pickup_radius_km: consolidation.pickup_radius_km,
        score: Some(score_to_wire(&consolidation.score)),
    }
}

/// The key of a list's page token: the first position and the id of the last item.
fn page_key(token: &str) -> Result<Option<(u64, Uuid)>, ApiError> {
    let malformed = || ApiError::invalid_argument("page_token", "is not a token this service issued");
    let Some(key) = page::decode_token(token)? else { return Ok(None) };
    let (position, id) = key.split_once('/').ok_or_else(malformed)?;
    Ok(Some((position.parse().map_err(|_| malformed())?, Uuid::parse_str(id).map_err(|_| malformed())?)))
}

fn page_size(requested: u32) -> Result<usize, ApiError> {
    let requested = if requested == 0 { LIST_PAGE_SIZE_DEFAULT } else { requested };
    page::page_size(i32::try_from(requested).unwrap_or(i32::MAX), LIST_PAGE_SIZE_MAX)
}

#[tonic::async_trait]
impl<S: EventStore, R: Reservations> MatchingService for MatchingApi<S, R> {
    async fn find_matches(
        &self,
        request: Request<pb::FindMatchesRequest>,
    ) -> Result<Response<pb::FindMatchesResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let listing = id(&request.listing_id, "listing_id")?;
        let limit = match request.limit as usize {
            0 => FIND_LIMIT_DEFAULT,
            limit if limit <= FIND_LIMIT_MAX => limit,
            _ => {
                return Err(
                    ApiError::invalid_argument("limit", format!("must be at most {FIND_LIMIT_MAX}")).into()
                );
            }
        };
        self.matchmaker.wait_for(Position::from_u64(request.min_position)).await?;
        let (found, consolidation) =
            self.matchmaker.find(listing, limit, |owner| owner_or_operator(&caller, owner))?;
        let request_candidate = self.matchmaker.view().candidate(listing).cloned();
        Ok(Response::new(pb::FindMatchesResponse {
            matches: found.iter().map(match_to_wire).collect(),
            consolidation: match (consolidation, request_candidate) {
                (Some(consolidation), Some(request)) => Some(consolidation_to_wire(&consolidation, &request)),
                _ => None,
            },
            position: self.matchmaker.position().as_u64(),
        }))
    }

    async fn list_proposals(
        &self,
        request: Request<pb::ListProposalsRequest>,
    ) -> Result<Response<pb::ListProposalsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let listing = match request.listing_id.trim() {
            "" => None,
            listing => Some(id(listing, "listing_id")?),
        };
        let size = page_size(request.page_size)?;
        let after = page_key(&request.page_token)?;
        self.matchmaker.wait_for(Position::from_u64(request.min_position)).await?;
        let view = self.matchmaker.view();
        let (page, more) = view.proposals_of(caller.organization_id, listing, after, size);
        let next_page_token = match page.last() {
            Some(last) if more => page::encode_token(&format!("{}/{}", last.first_position, last.value.id)),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListProposalsResponse {
            proposals: page.iter().map(|held| proposal_to_wire(&held.value, held.version)).collect(),
            next_page_token,
        }))
    }

    async fn accept_proposal(
        &self,
        request: Request<pb::AcceptProposalRequest>,
    ) -> Result<Response<pb::AcceptProposalResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let proposal = id(&request.proposal_id, "proposal_id")?;
        let accepted = self.matchmaker.accept(proposal, &actor).await?;
        Ok(Response::new(pb::AcceptProposalResponse {
            proposal: Some(proposal_to_wire(&accepted.proposal, accepted.version)),
            deals: accepted.deals.iter().map(|(deal, version)| deal_to_wire(deal, *version)).collect(),
            position: accepted.position,
        }))
    }

    async fn decline_proposal(
        &self,
        request: Request<pb::DeclineProposalRequest>,
    ) -> Result<Response<pb::DeclineProposalResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let proposal = id(&request.proposal_id, "proposal_id")?;
        let (proposal, version, position) = self.matchmaker.decline(proposal, &actor, request.reason).await?;
        Ok(Response::new(pb::DeclineProposalResponse {
            proposal: Some(proposal_to_wire(&proposal, version)),
            position,
        }))
    }

    async fn get_deal(
        &self,
        request: Request<pb::GetDealRequest>,
    ) -> Result<Response<pb::GetDealResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let deal = id(&request.deal_id, "deal_id")?;
        self.matchmaker.wait_for(Position::from_u64(request.min_position)).await?;
        let view = self.matchmaker.view();
        let not_found = || ApiError::NotFound(format!("deal {deal} not found"));
        let held = view.deal(deal).ok_or_else(not_found)?;
        // A stranger learns nothing, not even that the deal exists.
        if !caller.is_operator() && !held.value.is_party(caller.organization_id) {
            return Err(not_found().into());
        }
        Ok(Response::new(pb::GetDealResponse { deal: Some(deal_to_wire(&held.value, held.version)) }))
    }

    async fn list_deals(
        &self,
        request: Request<pb::ListDealsRequest>,
    ) -> Result<Response<pb::ListDealsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let size = page_size(request.page_size)?;
        let after = page_key(&request.page_token)?;
        self.matchmaker.wait_for(Position::from_u64(request.min_position)).await?;
        let view = self.matchmaker.view();
        let (page, more) = view.deals_of(caller.organization_id, after, size);
        let next_page_token = match page.last() {
            Some(last) if more => page::encode_token(&format!("{}/{}", last.first_position, last.value.id)),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListDealsResponse {
            deals: page.iter().map(|held| deal_to_wire(&held.value, held.version)).collect(),
            next_page_token,
        }))
    }

    async fn cancel_deal(
        &self,
        request: Request<pb::CancelDealRequest>,
    ) -> Result<Response<pb::CancelDealResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let deal = id(&request.deal_id, "deal_id")?;
        let (deal, version, position) = self.matchmaker.cancel_deal(deal, &actor, request.reason).await?;
        Ok(Response::new(pb::CancelDealResponse { deal: Some(deal_to_wire(&deal, version)), position }))
    }
}
