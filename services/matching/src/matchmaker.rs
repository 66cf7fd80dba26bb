//! The application shell of matching: finds matches in the view, proposes the best ones when
//! a listing is published, takes each party's answer, and concludes a proposal everyone
//! accepted into deals by reserving the offers' quantities through the listings service.
//!
//! Proposals and deals are aggregates in their own streams (`proposal-<id>`, `deal-<id>`);
//! every write names the version it expects and is decided again on a conflict, a bounded
//! number of times. Ids are derived from the listings paired, events' ids from the command,
//! so a redelivered publication proposes nothing twice and a retried conclusion reserves and
//! agrees nothing twice.

use std::sync::{Arc, RwLockReadGuard};

use symbiose_domain::Quantity;
use symbiose_eventstore::{EventStore, Position, StreamName};
use symbiose_kit::ApiError;
use symbiose_listings_contract::listing::Side;
use symbiose_shell::{
    Actor, Decision, EventIds, Executed, Followed, Loaded, Outcome, RejectionKind, Shell, Snapshots, load,
    now_ms, rejected,
};
use uuid::Uuid;

use crate::candidate::Candidate;
use crate::codec;
use crate::consolidation::Consolidation;
use crate::deal::{self, Deal, DealState, DealStatus};
use crate::index::Match;
use crate::proposal::{self, Line, Proposal, ProposalState, Status};
use crate::reservations::{Reservations, Reserved};
use crate::view::{DEAL_CATEGORY, PROPOSAL_CATEGORY, Unfinished, View};

/// Proposals made automatically when a listing is published: its best counterparts.
pub const PROPOSALS_PER_LISTING: usize = 3;
/// Most matches `FindMatches` answers, and its default.
pub const FIND_LIMIT_MAX: usize = 20;
pub const FIND_LIMIT_DEFAULT: usize = 5;
pub fn proposal_stream(id: Uuid) -> StreamName {
    symbiose_shell::stream(PROPOSAL_CATEGORY, id)
}

pub fn deal_stream(id: Uuid) -> StreamName {
    symbiose_shell::stream(DEAL_CATEGORY, id)
}

/// A match with what the other side shows of itself.
#[derive(Debug, Clone)]
pub struct Found {
    pub found: Match,
    pub counterpart: Candidate,
}

/// A consolidation with the offers it gathers.
#[derive(Debug, Clone)]
pub struct FoundConsolidation {
    pub consolidation: Consolidation,
    pub offers: Vec<Candidate>,
}

/// What an acceptance did: the proposal as it stands, the deals when it concluded, and the
/// position of the last write.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub proposal: Proposal,
    pub version: u64,
    pub deals: Vec<(Deal, u64)>,
    pub position: u64,
}

pub struct Matchmaker<S, R> {
    shell: Shell<S>,
    reservations: R,
    view: Followed<View>,
}

impl<S, R> std::fmt::Debug for Matchmaker<S, R> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Matchmaker").field("view", &self.view).finish_non_exhaustive()
    }
}

impl<S: EventStore, R: Reservations> Matchmaker<S, R> {
    /// The matchmaker over `store`, with its view fed by a task that follows the log from its
    /// snapshot (saved as `snapshots` says) for as long as the store is open.
    pub fn start(store: S, reservations: R, snapshots: Snapshots) -> Arc<Matchmaker<S, R>> {
        let view = Followed::start_snapshotted(store.clone(), "matching view", View::default(), snapshots);
        Arc::new(Matchmaker { shell: Shell::new(store, EventIds::Versioned), reservations, view })
    }

    pub fn view(&self) -> RwLockReadGuard<'_, View> {
        self.view.read()
    }

    /// The position the view reflects: every event before it.
    pub fn position(&self) -> Position {
        self.view.position()
    }

    /// Waits, within a bound, for the view to reflect the event at `position` (0: no wait);
    /// else UNAVAILABLE saying how far behind it is.
    pub async fn wait_for(&self, position: Position) -> Result<(), ApiError> {
        self.view.wait_for(position).await
    }

    /// The best `limit` counterparts of the open listing `listing`, now, and for a request
    /// larger than any single offer near it, a consolidated pickup. `authorize` sees the
    /// listing's owner first.
    pub fn find(
        &self,
        listing: Uuid,
        limit: usize,
        authorize: impl Fn(Uuid) -> Result<(), ApiError>,
    ) -> Result<(Vec<Found>, Option<FoundConsolidation>), ApiError> {
        let view = self.view();
        let owner = match view.listing(listing) {
            Some(state) => state.listing().map(|listing| listing.owner),
            None => None,
        }
        .ok_or_else(|| ApiError::NotFound(format!("listing {listing} not found")))?;
        authorize(owner)?;
        let Some(candidate) = view.candidate(listing) else {
            return Err(ApiError::FailedPrecondition(format!(
                "listing {listing} is not open: only published listings with something left are matched"
            )));
        };
        let now = now_ms();
        let found = view
            .index
            .find(candidate, limit, now)
            .into_iter()
            .filter_map(|found| {
                let counterpart = view.candidate(found.counterpart)?.clone();
                Some(Found { found, counterpart })
            })
            .collect();
        let consolidation = if candidate.side == Side::Request {
            view.index.consolidate(listing, now).map(|consolidation| FoundConsolidation {
                offers: consolidation
                    .offers
                    .iter()
                    .filter_map(|(offer, _)| view.candidate(*offer).cloned())
                    .collect(),
                consolidation,
            })
        } else {
            None
        };
        Ok((found, consolidation))
    }

    /// Proposes the best [`PROPOSALS_PER_LISTING`] counterparts of `listing` (and, for a
    /// request, a consolidated pickup when one is found): what the matching service does when
    /// a listing is published. A pair proposed before is not proposed again. Returns how many
    /// proposals are new.
    pub async fn propose_for(&self, listing: Uuid) -> Result<usize, ApiError> {
        let now = now_ms();
        let proposals = {
            let view = self.view();
            let Some(candidate) = view.candidate(listing) else { return Ok(0) };
            let mut proposals: Vec<Proposal> = view
                .index
                .find(candidate, PROPOSALS_PER_LISTING, now)
                .into_iter()
                .filter_map(|found| {
                    let other = view.candidate(found.counterpart)?;
                    let (offer, request) =
                        if candidate.side == Side::Offer { (candidate, other) } else { (other, candidate) };
                    single_proposal(offer, request, &found, now)
                })
                .collect();
            if candidate.side == Side::Request
                && let Some(consolidation) = view.index.consolidate(listing, now)
            {
                let offers: Vec<&Candidate> =
                    consolidation.offers.iter().filter_map(|(offer, _)| view.candidate(*offer)).collect();
                if offers.len() == consolidation.offers.len()
                    && let Some(proposal) = consolidated_proposal(candidate, &offers, &consolidation, now)
                {
                    proposals.push(proposal);
                }
            }
            proposals
        };
        let mut new = 0;
        for proposal in proposals {
            let id = proposal.id;
            let actor = Actor::service(&format!("propose/{id}"));
            let written =
                self.execute_proposal(id, &actor, proposal::Command::Propose(Box::new(proposal))).await?;
            if written.1 {
                new += 1;
            }
        }
        Ok(new)
    }

    async fn load_proposal(&self, id: Uuid) -> Result<Loaded<ProposalState>, ApiError> {
        load(
            self.shell.store(),
            &proposal_stream(id),
            symbiose_matching_contract::decode_recorded_proposal,
            proposal::evolve,
        )
        .await
    }

    async fn load_deal(&self, id: Uuid) -> Result<Loaded<DealState>, ApiError> {
        load(
            self.shell.store(),
            &deal_stream(id),
            symbiose_matching_contract::decode_recorded_deal,
            deal::evolve,
        )
        .await
    }

    /// Decides `command` on proposal `id` and appends, through the shell; returns the
    /// proposal's state, version and last position, and whether anything was written. A
    /// repeated request answers the proposal as it stands.
    async fn execute_proposal(
        &self,
        id: Uuid,
        actor: &Actor,
        command: proposal::Command,
    ) -> Result<((Proposal, u64, u64), bool), ApiError> {
        let executed = self
            .shell
            .execute(
                &proposal_stream(id),
                actor,
                || self.load_proposal(id),
                |loaded: &Loaded<ProposalState>| {
                    let events =
                        proposal::decide(&loaded.state, command.clone()).map_err(proposal_rejection)?;
                    let state = events.iter().fold(loaded.state.clone(), proposal::evolve);
                    let encoded =
                        events.iter().map(|event| codec::encode_proposal_event(id, event)).collect();
                    Ok(Decision::new(encoded, state))
                },
            )
            .await?;
        let appended = executed.appended();
        let (state, version, position) = as_it_stands(executed);
        let proposal = state.proposal().cloned().ok_or_else(|| not_found_proposal(id))?;
        Ok(((proposal, version, position), appended))
    }

    /// Decides `command` on deal `id` and appends, through the shell; returns the deal's
    /// state, version and last position.
    async fn execute_deal(
        &self,
        id: Uuid,
        actor: &Actor,
        command: deal::Command,
    ) -> Result<(Deal, u64, u64), ApiError> {
        let executed = self
            .shell
            .execute(
                &deal_stream(id),
                actor,
                || self.load_deal(id),
                |loaded: &Loaded<DealState>| {
                    let events = deal::decide(&loaded.state, command.clone()).map_err(deal_rejection)?;
                    let state = events.iter().fold(loaded.state.clone(), deal::evolve);
                    let encoded = events.iter().map(|event| codec::encode_deal_event(id, event)).collect();
                    Ok(Decision::new(encoded, state))
                },
            )
            .await?;
        let (state, version, position) = as_it_stands(executed);
        let deal = state.deal().cloned().ok_or_else(|| not_found_deal(id))?;
        Ok((deal, version, position))
    }

    /// `actor` accepts proposal `id` for its side. The last acceptance concludes it: every
    /// offer's quantity is reserved through the listings service, then the deals are agreed;
    /// if an offer no longer has the quantity, the reservations already made are released,
    /// the proposal is closed as unavailable, and the answer is FAILED_PRECONDITION saying so.
    pub async fn accept(&self, id: Uuid, actor: &Actor) -> Result<Accepted, ApiError> {
        let command = proposal::Command::Accept { by: actor.organization, now_ms: now_ms() };
        let ((proposal, version, position), _) = self.execute_proposal(id, actor, command).await?;
        if proposal.status == Status::Open && proposal.accepted_by_all() {
            return self.conclude(proposal).await;
        }
        let deals =
            if proposal.status == Status::Concluded { self.agree_deals(&proposal).await? } else { vec![] };
        Ok(Accepted { proposal, version, deals, position })
    }

    /// Reserves every line, on its offer (what the deal takes) and on the request (what the deal
    /// serves of it), concludes the proposal, then agrees its deals; or closes it as
    /// unavailable and releases what was reserved. The conclusion is appended at the version
    /// the proposal was decided on, so a decline or a close that came first wins and the
    /// reservations are given back. Every step is idempotent (ids derived from the proposal),
    /// so a conclusion cut short is finished by the next acceptance.
    async fn conclude(&self, proposal: Proposal) -> Result<Accepted, ApiError> {
        let id = proposal.id;
        let actor = Actor::service(&format!("conclude/{id}"));
        // Closing is another decision than concluding: its own request id, so that neither is
        // taken for a repeat of the other.
        let closer = Actor::service(&format!("close/{id}"));
        let mut held = Vec::new();
        let reservations = proposal
            .lines
            .iter()
            .flat_map(|line| [("offer", line.offer_id, line), ("request", proposal.request_id, line)]);
        for (side, listing, line) in reservations {
            let reserved = match self.reservations.reserve(listing, line.deal_id, line.quantity).await {
                Ok(reserved) => reserved,
                // Away: what was reserved goes back, and the concluder tries again later.
                Err(error) if error.unreachable => {
                    self.release(&held).await?;
                    return Err(ApiError::Unavailable(error.to_string()));
                }
                // Any other answer will not change by asking again: the pair is not available.
                Err(error) => Reserved::Refused(error.to_string()),
            };
            match reserved {
                Reserved::Held { .. } => held.push((listing, line.deal_id)),
                Reserved::Refused(reason) => {
                    let reason = format!("{side} {listing}: {reason}");
                    let command = proposal::Command::Close { reason: reason.clone() };
                    let ((closed, version, position), _) =
                        self.execute_proposal(id, &closer, command).await?;
                    if closed.status == Status::Concluded {
                        // Another acceptance concluded it meanwhile, with these reservations.
                        let deals = self.agree_deals(&closed).await?;
                        return Ok(Accepted { proposal: closed, version, deals, position });
                    }
                    self.release(&held).await?;
                    return Err(ApiError::FailedPrecondition(format!(
                        "proposal {id} is closed as unavailable: {reason}"
                    )));
                }
            }
        }
        let concluded = self.execute_proposal(id, &actor, proposal::Command::Conclude).await;
        let ((proposal, version, position), _) = match concluded {
            Ok(concluded) => concluded,
            Err(error) => {
                // Declined or closed first: what was reserved for it goes back.
                self.release(&held).await?;
                return Err(error);
            }
        };
        if proposal.status != Status::Concluded {
            self.release(&held).await?;
            return Err(ApiError::FailedPrecondition(format!(
                "proposal {id} is closed as unavailable: {}",
                proposal.reason
            )));
        }
        let deals = self.agree_deals(&proposal).await?;
        Ok(Accepted { proposal, version, deals, position })
    }

    /// Finishes a flow left half-way (see [`Unfinished`]): what the concluder does. Each step
    /// is idempotent, so finishing one a live call is finishing too does no harm.
    pub async fn finish(&self, unfinished: Unfinished) -> Result<(), ApiError> {
        match unfinished {
            Unfinished::Conclude(id) => {
                let loaded = self.load_proposal(id).await?;
                let Some(proposal) = loaded.state.proposal().cloned() else { return Ok(()) };
                if proposal.status != Status::Open || !proposal.accepted_by_all() {
                    return Ok(());
                }
                match self.conclude(proposal).await {
                    // Closed as unavailable: the flow ended, as the rules say.
                    Err(ApiError::FailedPrecondition(reason)) => {
                        tracing::info!(proposal = %id, %reason, "closed a proposal left half-way");
                        Ok(())
                    }
                    Ok(_) => {
                        tracing::info!(proposal = %id, "concluded a proposal left half-way");
                        Ok(())
                    }
                    Err(error) => Err(error),
                }
            }
            Unfinished::Agree(id) => {
                let loaded = self.load_proposal(id).await?;
                match loaded.state.proposal() {
                    Some(proposal) if proposal.status == Status::Concluded => {
                        self.agree_deals(proposal).await.map(|_| ())
                    }
                    _ => Ok(()),
                }
            }
            Unfinished::Release { listing, deal } => self.release(&[(listing, deal)]).await,
        }
    }

    /// Gives back the reservations `(listing, deal)`.
    async fn release(&self, held: &[(Uuid, Uuid)]) -> Result<(), ApiError> {
        for (listing, deal) in held {
            self.reservations
                .release(*listing, *deal)
                .await
                .map_err(|error| ApiError::Unavailable(error.to_string()))?;
        }
        Ok(())
    }

    /// The deals of a concluded proposal, agreed if they are not yet (a conclusion cut short
    /// before them).
    async fn agree_deals(&self, proposal: &Proposal) -> Result<Vec<(Deal, u64)>, ApiError> {
        let actor = Actor::service(&format!("conclude/{}", proposal.id));
        let now = now_ms();
        let mut deals = Vec::new();
        for line in &proposal.lines {
            let deal = deal_of(proposal, line, now);
            let (deal, version, _) =
                self.execute_deal(deal.id, &actor, deal::Command::Agree(Box::new(deal))).await?;
            deals.push((deal, version));
        }
        Ok(deals)
    }

    pub async fn decline(
        &self,
        id: Uuid,
        actor: &Actor,
        reason: String,
    ) -> Result<(Proposal, u64, u64), ApiError> {
        let command = proposal::Command::Decline { by: actor.organization, reason };
        Ok(self.execute_proposal(id, actor, command).await?.0)
    }

    /// `actor` (a party) cancels deal `id` before its material is picked up: the deal is
    /// recorded as cancelled, then its reservation released.
    pub async fn cancel_deal(
        &self,
        id: Uuid,
        actor: &Actor,
        reason: String,
    ) -> Result<(Deal, u64, u64), ApiError> {
        // Before pickup only: the view must hold every event written so far to say.
        self.view.wait_for_head(self.shell.store().head()).await?;
        let loaded = self.load_deal(id).await?;
        let deal = loaded.state.deal().ok_or_else(|| not_found_deal(id))?;
        if deal.is_party(actor.organization) && self.view().is_picked_up(id) {
            return Err(ApiError::FailedPrecondition(format!(
                "deal {id} cannot be cancelled: its material was picked up"
            )));
        }
        // Cancelled first, then released: a crash in between leaves a cancelled deal whose
        // reservation the next cancel (or any retry) releases, never a live deal without one.
        let cancelled = self
            .execute_deal(
                id,
                actor,
                deal::Command::Cancel { by: actor.organization, reason, now_ms: now_ms() },
            )
            .await?;
        if matches!(cancelled.0.status, DealStatus::Cancelled { .. }) {
            let deal = &cancelled.0;
            self.release(&[(deal.offer_id, deal.id), (deal.request_id, deal.id)]).await?;
        }
        Ok(cancelled)
    }

    /// The receiver accepted `accepted_milli` of deal `id`'s lot: the offer's reservation
    /// becomes that delivery, and what was refused goes back to the offer.
    pub async fn delivered(&self, id: Uuid, accepted_milli: i64) -> Result<(), ApiError> {
        let loaded = self.load_deal(id).await?;
        let Some(deal) = loaded.state.deal() else {
            return Err(ApiError::NotFound(format!("deal {id} not found")));
        };
        if deal.status != DealStatus::Agreed {
            return Ok(());
        }
        let delivered = if accepted_milli > 0 {
            Some(
                Quantity::new(accepted_milli, deal.quantity.unit(), true)
                    .map_err(|error| ApiError::FailedPrecondition(format!("deal {id}: {error}")))?,
            )
        } else {
            None
        };
        self.reservations.confirm_delivery(deal.offer_id, deal.id, delivered).await.map_err(|error| {
            if error.unreachable {
                ApiError::Unavailable(error.to_string())
            } else {
                ApiError::Internal(anyhow::anyhow!("deal {id}'s delivery: {error}"))
            }
        })?;
        // What was delivered served the request, up to what the deal reserved of it (a surplus
        // picked up is the offer's business). A request that closed meanwhile refuses it: the
        // offer's side is what must not be lost, so that is logged.
        let served = match delivered {
            Some(delivered) if delivered.amount_milli() > deal.quantity.amount_milli() => Some(deal.quantity),
            delivered => delivered,
        };
        match self.reservations.confirm_delivery(deal.request_id, deal.id, served).await {
            Err(error) if error.unreachable => Err(ApiError::Unavailable(error.to_string())),
            Err(error) => {
                tracing::warn!(deal = %id, request = %deal.request_id, %error, "the request did not take the delivery");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }
}

/// The proposal of one offer to one request.
fn single_proposal(offer: &Candidate, request: &Candidate, found: &Match, now: i64) -> Option<Proposal> {
    let id = proposal::proposal_id(request.id, &[offer.id]);
    let quantity = Quantity::new(found.fit.lot_milli, offer.unit, false).ok()?;
    Some(Proposal {
        id,
        request_id: request.id,
        buyer: request.owner,
        lines: vec![Line {
            offer_id: offer.id,
            seller: offer.owner,
            quantity,
            price_per_unit: offer.price_per_unit,
            pickup: offer.place,
            distance_km: found.fit.distance_km,
            documents: found.fit.documents.clone(),
            deal_id: proposal::deal_id(id, offer.id),
        }],
        family: offer.family,
        waste_code: offer.waste_code,
        legal_status: offer.legal_status,
        delivery: request.place,
        score: found.score,
        consolidated: false,
        proposed_at_ms: now,
        status: Status::Open,
        accepted_by: Default::default(),
        reason: String::new(),
    })
}

/// The proposal of several offers picked up together for one request.
fn consolidated_proposal(
    request: &Candidate,
    offers: &[&Candidate],
    consolidation: &Consolidation,
    now: i64,
) -> Option<Proposal> {
    let ids: Vec<Uuid> = offers.iter().map(|offer| offer.id).collect();
    let id = proposal::proposal_id(request.id, &ids);
    let first = offers.first()?;
    let lines = consolidation
        .offers
        .iter()
        .zip(offers)
        .map(|((_, quantity_milli), offer)| {
            let cross_border = offer.place.country != request.place.country;
            Some(Line {
                offer_id: offer.id,
                seller: offer.owner,
                quantity: Quantity::new(*quantity_milli, offer.unit, false).ok()?,
                price_per_unit: offer.price_per_unit,
                pickup: offer.place,
                distance_km: offer.place.point.distance_km(&request.place.point),
                documents: crate::rules::documents(offer, cross_border),
                deal_id: proposal::deal_id(id, offer.id),
            })
        })
        .collect::<Option<Vec<Line>>>()?;
    Some(Proposal {
        id,
        request_id: request.id,
        buyer: request.owner,
        lines,
        family: first.family,
        waste_code: first.waste_code,
        legal_status: first.legal_status,
        delivery: request.place,
        score: consolidation.score,
        consolidated: true,
        proposed_at_ms: now,
        status: Status::Open,
        accepted_by: Default::default(),
        reason: String::new(),
    })
}

/// The deal `line` of `proposal` becomes.
fn deal_of(proposal: &Proposal, line: &Line, now: i64) -> Deal {
    Deal {
        id: line.deal_id,
        proposal_id: proposal.id,
        offer_id: line.offer_id,
        request_id: proposal.request_id,
        seller: line.seller,
        buyer: proposal.buyer,
        family: proposal.family,
        waste_code: proposal.waste_code,
        legal_status: proposal.legal_status,
        quantity: line.quantity,
        price_per_unit: line.price_per_unit,
        pickup: line.pickup,
        delivery: proposal.delivery,
        distance_km: line.distance_km,
        documents: line.documents.clone(),
        agreed_at_ms: now,
        status: DealStatus::Agreed,
    }
}

fn not_found_proposal(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("proposal {id} not found"))
}

fn not_found_deal(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("deal {id} not found"))
}

/// An aggregate as a command left it, with its version and last position: as appended or
/// decided, or, for a repeated request, as it stands now.
fn as_it_stands<State>(executed: Executed<State, State>) -> (State, u64, u64) {
    let Executed { written, outcome } = executed;
    match outcome {
        Outcome::Appended(state) | Outcome::Unchanged(state) => {
            (state, written.version, written.position.as_u64())
        }
        Outcome::Repeated(loaded) => {
            (loaded.state, loaded.version.unwrap_or_default(), loaded.last_position.as_u64())
        }
    }
}

fn proposal_rejection(rejection: proposal::Rejection) -> ApiError {
    use proposal::Rejection as R;
    let kind = match rejection {
        R::NotFound => return rejected(RejectionKind::NotFound, "proposal not found"),
        R::NotAParty => RejectionKind::PermissionDenied,
        R::ReasonTooLong => RejectionKind::InvalidArgument { field: "reason" },
        R::Declined | R::Unavailable | R::Concluded | R::NotAcceptedByAll | R::AcceptedByAll => {
            RejectionKind::FailedPrecondition
        }
    };
    rejected(kind, rejection)
}

fn deal_rejection(rejection: deal::Rejection) -> ApiError {
    let kind = match rejection {
        deal::Rejection::NotFound => return rejected(RejectionKind::NotFound, "deal not found"),
        deal::Rejection::NotAParty => RejectionKind::PermissionDenied,
        deal::Rejection::ReasonTooLong => RejectionKind::InvalidArgument { field: "reason" },
    };
    rejected(kind, rejection)
}
