//! The application shell of matching: finds matches in the view, proposes the best ones when
//! a listing is published, takes each party's answer, and concludes a proposal everyone
//! accepted into deals by reserving the offers' quantities through the listings service.
//!
//! Proposals and deals are aggregates in their own streams (`proposal-<id>`, `deal-<id>`);
//! every write names the version it expects and is decided again on a conflict, a bounded
//! number of times. Ids are derived from the listings paired, events' ids from the command,
//! so a redelivered publication proposes nothing twice and a retried conclusion reserves and
//! agrees nothing twice.

use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message as _;
use symbiose_domain::Quantity;
use symbiose_eventstore::{Direction, EventData, EventStore, ExpectedVersion, StoreError, StreamName};
use symbiose_kit::ApiError;
use symbiose_listings::listing::Side;
use symbiose_proto::common::v1::EventMetadata;
use tokio::sync::watch;
use uuid::Uuid;

use crate::candidate::Candidate;
use crate::codec;
use crate::consolidation::Consolidation;
use crate::deal::{self, Deal, DealState, DealStatus};
use crate::index::Match;
use crate::proposal::{self, Line, Proposal, ProposalState, Status};
use crate::reservations::{Reservations, Reserved};
use crate::view::{DEAL_CATEGORY, PROPOSAL_CATEGORY, View};

/// Proposals made automatically when a listing is published: its best counterparts.
pub const PROPOSALS_PER_LISTING: usize = 3;
/// Most matches `FindMatches` answers, and its default.
pub const FIND_LIMIT_MAX: usize = 20;
pub const FIND_LIMIT_DEFAULT: usize = 5;
/// Times a command is decided again after its append met a concurrent one.
const COMMAND_ATTEMPTS_MAX: usize = 5;
/// Events read from a stream at once when loading an aggregate (a proposal or a deal has a
/// handful).
const LOAD_PAGE_EVENTS: usize = 1000;
/// Longest wait for the view to reach a position a caller names.
pub const VIEW_WAIT_MS_MAX: u64 = 5_000;
/// Longest client request id, in bytes.
pub const REQUEST_ID_BYTES_MAX: usize = 128;

/// Namespace of the ids of events, derived from what caused them.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6d61_7463_6865_7645_9b02_41d3_c0a1_7e11);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}

pub fn proposal_stream(id: Uuid) -> StreamName {
    StreamName::new(&format!("{PROPOSAL_CATEGORY}-{id}")).expect("a uuid makes a valid stream name")
}

pub fn deal_stream(id: Uuid) -> StreamName {
    StreamName::new(&format!("{DEAL_CATEGORY}-{id}")).expect("a uuid makes a valid stream name")
}

/// Who acts, and with which request id (the ids of the events derive from it).
#[derive(Debug, Clone)]
pub struct Actor {
    pub organization: Uuid,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn new(organization: Uuid, request_id: &str) -> Result<Actor, ApiError> {
        let request_id = request_id.trim();
        if request_id.len() > REQUEST_ID_BYTES_MAX {
            return Err(ApiError::invalid_argument(
                "request_id",
                format!("must be at most {REQUEST_ID_BYTES_MAX} bytes"),
            ));
        }
        Ok(Actor { organization, request_id: (!request_id.is_empty()).then(|| request_id.to_owned()) })
    }

    /// The matching service itself, reacting to an event.
    fn service(cause: &str) -> Actor {
        Actor { organization: Uuid::nil(), request_id: Some(cause.to_owned()) }
    }

    fn event_id(&self, stream: &StreamName, version: Option<u64>, index: usize) -> Uuid {
        match &self.request_id {
            Some(request_id) => Uuid::new_v5(
                &EVENT_NAMESPACE,
                format!("{}/{request_id}/{stream}/{version:?}/{index}", self.organization).as_bytes(),
            ),
            None => Uuid::now_v7(),
        }
    }

    fn metadata(&self) -> Bytes {
        Bytes::from(
            EventMetadata {
                request_id: self.request_id.clone().unwrap_or_default(),
                actor_organization_id: self.organization.to_string(),
                causation_id: String::new(),
            }
            .encode_to_vec(),
        )
    }
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

/// An aggregate loaded from its stream.
struct Loaded<State> {
    state: State,
    version: Option<u64>,
    last_position: u64,
}

impl<State> Loaded<State> {
    fn expected(&self) -> ExpectedVersion {
        self.version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
    }
}

pub struct Matchmaker<S, R> {
    store: S,
    reservations: R,
    view: Arc<RwLock<View>>,
    position: watch::Receiver<u64>,
}

impl<S, R> std::fmt::Debug for Matchmaker<S, R> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Matchmaker")
            .field("position", &*self.position.borrow())
            .finish_non_exhaustive()
    }
}

impl<S: EventStore, R: Reservations> Matchmaker<S, R> {
    /// The matchmaker over `store`, with its view fed by a task that follows the log from the
    /// first event for as long as the store is open.
    pub fn start(store: S, reservations: R) -> Arc<Matchmaker<S, R>> {
        let view = Arc::new(RwLock::new(View::default()));
        let (sender, position) = watch::channel(0);
        tokio::spawn(follow(store.clone(), view.clone(), sender));
        Arc::new(Matchmaker { store, reservations, view, position })
    }

    pub fn view(&self) -> RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The position the view reflects: every event before it.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Waits, at most [`VIEW_WAIT_MS_MAX`], for the view to reflect the event at `position`
    /// (0: no wait); else UNAVAILABLE saying how far behind it is.
    pub async fn wait_for(&self, position: u64) -> Result<(), ApiError> {
        if position == 0 {
            return Ok(());
        }
        let mut receiver = self.position.clone();
        let reached = tokio::time::timeout(
            Duration::from_millis(VIEW_WAIT_MS_MAX),
            receiver.wait_for(|next| *next > position),
        )
        .await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::Unavailable(format!(
                "min_position: the matching view reflects positions before {}, behind {position}",
                self.position()
            ))),
        }
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
        load(&self.store, &proposal_stream(id), codec::decode_proposal_event, proposal::evolve).await
    }

    async fn load_deal(&self, id: Uuid) -> Result<Loaded<DealState>, ApiError> {
        load(&self.store, &deal_stream(id), codec::decode_deal_event, deal::evolve).await
    }

    /// Decides `command` on proposal `id` and appends; returns the proposal's state, version
    /// and last position, and whether anything was written.
    async fn execute_proposal(
        &self,
        id: Uuid,
        actor: &Actor,
        command: proposal::Command,
    ) -> Result<((Proposal, u64, u64), bool), ApiError> {
        let stream = proposal_stream(id);
        for _ in 0..COMMAND_ATTEMPTS_MAX {
            let loaded = self.load_proposal(id).await?;
            let events = proposal::decide(&loaded.state, command.clone()).map_err(proposal_rejection)?;
            if events.is_empty() {
                let proposal = loaded.state.proposal().cloned().ok_or_else(|| not_found_proposal(id))?;
                return Ok(((proposal, loaded.version.unwrap_or_default(), loaded.last_position), false));
            }
            let encoded = events.iter().map(|event| codec::encode_proposal_event(id, event)).collect();
            if let Some((version, position)) =
                append(&self.store, &stream, loaded.expected(), loaded.version, actor, encoded).await?
            {
                let state = events.iter().fold(loaded.state, proposal::evolve);
                let proposal = state.proposal().cloned().ok_or_else(|| not_found_proposal(id))?;
                return Ok(((proposal, version, position), true));
            }
        }
        Err(ApiError::Aborted(format!("proposal {id} changed under {COMMAND_ATTEMPTS_MAX} attempts")))
    }

    async fn execute_deal(
        &self,
        id: Uuid,
        actor: &Actor,
        command: deal::Command,
    ) -> Result<(Deal, u64, u64), ApiError> {
        let stream = deal_stream(id);
        for _ in 0..COMMAND_ATTEMPTS_MAX {
            let loaded = self.load_deal(id).await?;
            let events = deal::decide(&loaded.state, command.clone()).map_err(deal_rejection)?;
            if events.is_empty() {
                let deal = loaded.state.deal().cloned().ok_or_else(|| not_found_deal(id))?;
                return Ok((deal, loaded.version.unwrap_or_default(), loaded.last_position));
            }
            let encoded = events.iter().map(|event| codec::encode_deal_event(id, event)).collect();
            if let Some((version, position)) =
                append(&self.store, &stream, loaded.expected(), loaded.version, actor, encoded).await?
            {
                let state = events.iter().fold(loaded.state, deal::evolve);
                let deal = state.deal().cloned().ok_or_else(|| not_found_deal(id))?;
                return Ok((deal, version, position));
            }
        }
        Err(ApiError::Aborted(format!("deal {id} changed under {COMMAND_ATTEMPTS_MAX} attempts")))
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
            if proposal.status == Status::Concluded { self.deals_of(&proposal).await? } else { vec![] };
        Ok(Accepted { proposal, version, deals, position })
    }

    /// Reserves every line, then agrees the deals and concludes the proposal; or releases what
    /// was reserved and closes it as unavailable. Every step is idempotent (ids derived from the
    /// proposal), so a conclusion cut short is finished by the next acceptance.
    async fn conclude(&self, proposal: Proposal) -> Result<Accepted, ApiError> {
        let id = proposal.id;
        let actor = Actor::service(&format!("conclude/{id}"));
        let mut held = Vec::new();
        for line in &proposal.lines {
            match self.reservations.reserve(line.offer_id, line.deal_id, line.quantity).await {
                Ok(Reserved::Held { .. }) => held.push(line),
                Ok(Reserved::Refused(reason)) => {
                    for line in held {
                        self.reservations
                            .release(line.offer_id, line.deal_id)
                            .await
                            .map_err(|error| ApiError::Unavailable(error.to_string()))?;
                    }
                    let reason = format!("offer {}: {reason}", line.offer_id);
                    self.execute_proposal(id, &actor, proposal::Command::Close { reason: reason.clone() })
                        .await?;
                    return Err(ApiError::FailedPrecondition(format!(
                        "proposal {id} is closed as unavailable: {reason}"
                    )));
                }
                Err(error) => return Err(ApiError::Unavailable(error.to_string())),
            }
        }
        let now = now_ms();
        let mut deals = Vec::new();
        for line in &proposal.lines {
            let deal = deal_of(&proposal, line, now);
            let (deal, version, _) =
                self.execute_deal(deal.id, &actor, deal::Command::Agree(Box::new(deal))).await?;
            deals.push((deal, version));
        }
        let ((proposal, version, position), _) =
            self.execute_proposal(id, &actor, proposal::Command::Conclude).await?;
        Ok(Accepted { proposal, version, deals, position })
    }

    async fn deals_of(&self, proposal: &Proposal) -> Result<Vec<(Deal, u64)>, ApiError> {
        let mut deals = Vec::new();
        for line in &proposal.lines {
            let loaded = self.load_deal(line.deal_id).await?;
            if let Some(deal) = loaded.state.deal() {
                deals.push((deal.clone(), loaded.version.unwrap_or_default()));
            }
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

    /// `actor` (a party) cancels deal `id`: its reservation is released first, then the deal
    /// is recorded as cancelled.
    pub async fn cancel_deal(
        &self,
        id: Uuid,
        actor: &Actor,
        reason: String,
    ) -> Result<(Deal, u64, u64), ApiError> {
        let loaded = self.load_deal(id).await?;
        let deal = loaded.state.deal().ok_or_else(|| not_found_deal(id))?;
        // The rules first, so a stranger or a bad reason releases nothing.
        let events = deal::decide(
            &loaded.state,
            deal::Command::Cancel { by: actor.organization, reason: reason.clone(), now_ms: now_ms() },
        )
        .map_err(deal_rejection)?;
        if !events.is_empty() && deal.status == DealStatus::Agreed {
            self.reservations
                .release(deal.offer_id, deal.id)
                .await
                .map_err(|error| ApiError::Unavailable(error.to_string()))?;
        }
        self.execute_deal(
            id,
            actor,
            deal::Command::Cancel { by: actor.organization, reason, now_ms: now_ms() },
        )
        .await
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

fn proposal_rejection(rejection: proposal::Rejection) -> ApiError {
    use proposal::Rejection as R;
    match rejection {
        R::NotFound => ApiError::NotFound("proposal not found".to_owned()),
        R::NotAParty => ApiError::PermissionDenied(rejection.to_string()),
        R::ReasonTooLong => ApiError::invalid_argument("reason", rejection),
        R::Declined | R::Unavailable | R::Concluded | R::NotAcceptedByAll => {
            ApiError::FailedPrecondition(rejection.to_string())
        }
    }
}

fn deal_rejection(rejection: deal::Rejection) -> ApiError {
    match rejection {
        deal::Rejection::NotFound => ApiError::NotFound("deal not found".to_owned()),
        deal::Rejection::NotAParty => ApiError::PermissionDenied(rejection.to_string()),
        deal::Rejection::ReasonTooLong => ApiError::invalid_argument("reason", rejection),
    }
}

/// Reads `stream` whole and folds it.
async fn load<S, State, Event>(
    store: &S,
    stream: &StreamName,
    decode: impl Fn(&str, &[u8]) -> Result<Event, String>,
    evolve: impl Fn(State, &Event) -> State,
) -> Result<Loaded<State>, ApiError>
where
    S: EventStore,
    State: Default,
{
    let mut loaded = Loaded { state: State::default(), version: None, last_position: 0 };
    loop {
        let from = loaded.version.map_or(0, |version| version + 1);
        let events = match store.read_stream(stream, from, Direction::Forward, LOAD_PAGE_EVENTS).await {
            Ok(events) => events,
            Err(StoreError::StreamNotFound(_)) => return Ok(loaded),
            Err(error) => return Err(ApiError::Internal(error.into())),
        };
        let count = events.len();
        for recorded in events {
            let event = decode(&recorded.event_type, &recorded.payload).map_err(|error| {
                ApiError::Internal(anyhow::anyhow!("corrupted event in {stream}: {error}"))
            })?;
            loaded.state = evolve(std::mem::take(&mut loaded.state), &event);
            loaded.version = Some(recorded.version);
            loaded.last_position = recorded.position;
        }
        if count < LOAD_PAGE_EVENTS {
            return Ok(loaded);
        }
    }
}

/// Appends `events` at `expected`, with ids derived from the actor's request and the version
/// they follow; `None` when the stream moved meanwhile (decide again). The version and
/// position written otherwise.
async fn append<S: EventStore>(
    store: &S,
    stream: &StreamName,
    expected: ExpectedVersion,
    version: Option<u64>,
    actor: &Actor,
    events: Vec<(&'static str, Vec<u8>)>,
) -> Result<Option<(u64, u64)>, ApiError> {
    let metadata = actor.metadata();
    let data = events
        .into_iter()
        .enumerate()
        .map(|(index, (event_type, payload))| {
            EventData::new(actor.event_id(stream, version, index), event_type, payload)
                .with_metadata(metadata.clone())
        })
        .collect();
    match store.append(stream, expected, data).await {
        Ok(result) => Ok(Some((result.next_expected_version, result.last_position))),
        Err(StoreError::WrongExpectedVersion { .. }) => Ok(None),
        Err(error) => Err(ApiError::Internal(error.into())),
    }
}

/// Follows the log from the first event into the view, for as long as the store is open.
async fn follow<S: EventStore>(store: S, view: Arc<RwLock<View>>, position: watch::Sender<u64>) {
    let mut subscription = store.subscribe_all(0);
    loop {
        let recorded = match subscription.next().await {
            Ok(recorded) => recorded,
            Err(StoreError::Closed) => return,
            Err(error) => {
                tracing::error!(%error, "the matching view stopped following the log");
                return;
            }
        };
        view.write().unwrap_or_else(std::sync::PoisonError::into_inner).apply(&recorded);
        position.send_replace(recorded.position + 1);
    }
}
