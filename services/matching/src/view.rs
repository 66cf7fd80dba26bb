//! The matching service's own read model, fed by the log: every listing's state (folded with
//! the listing aggregate's `evolve`) and the open ones in the [`MatchIndex`], the permits of
//! each organization, and the proposals and deals by party for the queries. Restored from its
//! snapshot (or rebuilt from the first event) at start; never written to by commands.

use std::collections::{BTreeSet, HashMap, HashSet};

use prost::Message as _;

use symbiose_eventstore::RecordedEvent;
use symbiose_listings_contract::listing::{self, ListingState};
use symbiose_listings_contract::organization;
use symbiose_shell::aggregate_id;
use uuid::Uuid;

use crate::candidate::Candidate;
use crate::deal::{self, Deal, DealState};
use crate::index::MatchIndex;
use crate::proposal::{self, Proposal, ProposalState};

/// The stream categories the view reads.
const LISTING_CATEGORY: &str = "listing";
const ORGANIZATION_CATEGORY: &str = "organization";
pub(crate) const PROPOSAL_CATEGORY: &str = "proposal";
pub(crate) const DEAL_CATEGORY: &str = "deal";
/// Logistics' event that tells a deal's material left its seller: the deal can no longer be
/// cancelled.
const SHIPMENT_PICKED_UP: &str = "symbiose.logistics.v1.ShipmentPickedUp";

/// An aggregate as the view holds it: its state, its version and the position of its first
/// event (the order of the lists, newest first).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Held<T> {
    pub value: T,
    pub version: u64,
    pub first_position: u64,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct View {
    listings: HashMap<Uuid, ListingState>,
    published_at: HashMap<Uuid, u64>,
    pub(crate) index: MatchIndex,
    proposals: HashMap<Uuid, Held<Proposal>>,
    /// (organization, first position, proposal) for every party of every proposal.
    proposals_by_party: BTreeSet<(Uuid, u64, Uuid)>,
    deals: HashMap<Uuid, Held<Deal>>,
    deals_by_party: BTreeSet<(Uuid, u64, Uuid)>,
    /// The deals whose material was picked up.
    picked_up: HashSet<Uuid>,
    /// What matching still owes a flow, for the concluder: proposals every party accepted that
    /// are neither concluded nor closed; concluded proposals with a deal not agreed yet; and
    /// (listing, deal) for cancelled deals whose reservation the offer or the request still
    /// holds.
    to_conclude: BTreeSet<Uuid>,
    to_agree: BTreeSet<Uuid>,
    to_release: BTreeSet<(Uuid, Uuid)>,
}

/// A flow matching left half-way (the listings service away, a crash), to be finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Unfinished {
    /// Every party accepted the proposal: reserve, then conclude or close it.
    Conclude(Uuid),
    /// The proposal concluded: agree its deals.
    Agree(Uuid),
    /// The deal was cancelled: release its reservation of the offer or the request.
    Release { listing: Uuid, deal: Uuid },
}

impl symbiose_shell::Snapshot for View {
    const NAME: &'static str = "matching.view";

    fn encode(&self) -> Result<Vec<u8>, String> {
        symbiose_shell::snapshot::encode(self)
    }

    fn restored(&self, bytes: &[u8]) -> Result<View, String> {
        symbiose_shell::snapshot::decode(bytes)
    }
}

impl symbiose_shell::View for View {
    /// Applies one stored event; events of other streams are skipped. An event that does not
    /// decode is logged and skipped, so one cannot stop the view.
    fn apply(&mut self, recorded: &RecordedEvent) {
        let outcome = match recorded.stream.category() {
            LISTING_CATEGORY => self.apply_listing(recorded),
            ORGANIZATION_CATEGORY => self.apply_organization(recorded),
            PROPOSAL_CATEGORY => self.apply_proposal(recorded),
            DEAL_CATEGORY => self.apply_deal(recorded),
            _ if recorded.event_type == SHIPMENT_PICKED_UP => self.apply_pickup(recorded),
            _ => Ok(()),
        };
        if let Err(error) = outcome {
            tracing::error!(position = %recorded.position, stream = %recorded.stream, %error, "matching view: skipping an event");
        }
    }
}

impl View {
    fn apply_listing(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let event = symbiose_listings_contract::decode_recorded_listing(recorded)?;
        if matches!(event, listing::Event::Published) {
            self.published_at.insert(id, recorded.position.as_u64());
        }
        // A reservation that reaches the view after its deal's cancellation (each service
        // alone imports the listings' events on their own) is still to be released.
        if let listing::Event::QuantityReserved { reservation_id, .. } = &event
            && self
                .deals
                .get(reservation_id)
                .is_some_and(|held| matches!(held.value.status, deal::DealStatus::Cancelled { .. }))
        {
            self.to_release.insert((id, *reservation_id));
        }
        let state = self.listings.remove(&id).unwrap_or_default();
        let state = listing::evolve(state, &event);
        match &state {
            ListingState::Published(listing) if listing.available_milli() > 0 => {
                let mut candidate = Candidate::from_listing(listing);
                candidate.published_position = self.published_at.get(&id).copied().unwrap_or_default();
                self.index.upsert(candidate);
            }
            _ => {
                self.index.remove(id);
            }
        }
        if let Some(listing) = state.listing() {
            let held: Vec<(Uuid, Uuid)> = self
                .to_release
                .range((id, Uuid::nil())..=(id, Uuid::max()))
                .filter(|(_, deal)| !listing.reservations.contains_key(deal))
                .copied()
                .collect();
            for released in held {
                self.to_release.remove(&released);
            }
        }
        self.listings.insert(id, state);
        Ok(())
    }

    fn apply_organization(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let event = symbiose_listings_contract::decode_recorded_organization(recorded)?;
        if let organization::Event::PermitAdded(permit) = event {
            let mut permits = self.index.permits_of(id).to_vec();
            permits.push(permit);
            self.index.set_permits(id, permits);
        }
        Ok(())
    }

    fn apply_proposal(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let event = symbiose_matching_contract::decode_recorded_proposal(recorded)?;
        let held = self.proposals.remove(&id);
        let first_position = held.as_ref().map_or(recorded.position.as_u64(), |held| held.first_position);
        let state = held.map_or(ProposalState::Absent, |held| ProposalState::Present(Box::new(held.value)));
        if let ProposalState::Present(proposal) = proposal::evolve(state, &event) {
            for party in proposal.parties() {
                self.proposals_by_party.insert((party, first_position, id));
            }
            self.to_conclude.remove(&id);
            self.to_agree.remove(&id);
            match proposal.status {
                proposal::Status::Open if proposal.accepted_by_all() => {
                    self.to_conclude.insert(id);
                }
                proposal::Status::Concluded
                    if proposal.lines.iter().any(|line| !self.deals.contains_key(&line.deal_id)) =>
                {
                    self.to_agree.insert(id);
                }
                _ => {}
            }
            self.proposals.insert(id, Held { value: *proposal, version: recorded.version, first_position });
        }
        Ok(())
    }

    fn apply_deal(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let event = symbiose_matching_contract::decode_recorded_deal(recorded)?;
        let held = self.deals.remove(&id);
        let first_position = held.as_ref().map_or(recorded.position.as_u64(), |held| held.first_position);
        let state = held.map_or(DealState::Absent, |held| DealState::Present(Box::new(held.value)));
        if let DealState::Present(deal) = deal::evolve(state, &event) {
            self.deals_by_party.insert((deal.seller, first_position, id));
            self.deals_by_party.insert((deal.buyer, first_position, id));
            if let Some(held) = self.proposals.get(&deal.proposal_id)
                && held
                    .value
                    .lines
                    .iter()
                    .all(|line| line.deal_id == id || self.deals.contains_key(&line.deal_id))
            {
                self.to_agree.remove(&deal.proposal_id);
            }
            if matches!(deal.status, deal::DealStatus::Cancelled { .. }) {
                for listing in [deal.offer_id, deal.request_id] {
                    let reserved = self
                        .listings
                        .get(&listing)
                        .and_then(ListingState::listing)
                        .is_some_and(|held| held.reservations.contains_key(&id));
                    if reserved {
                        self.to_release.insert((listing, id));
                    }
                }
            }
            self.deals.insert(id, Held { value: *deal, version: recorded.version, first_position });
        }
        Ok(())
    }

    fn apply_pickup(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let picked = symbiose_proto::logistics::v1::ShipmentPickedUp::decode(recorded.payload.as_ref())
            .map_err(|error| format!("{SHIPMENT_PICKED_UP}: {error}"))?;
        let deal = Uuid::parse_str(&picked.deal_id)
            .map_err(|_| format!("{SHIPMENT_PICKED_UP}: deal_id is not an id"))?;
        self.picked_up.insert(deal);
        Ok(())
    }

    /// Whether the material of `deal` was picked up.
    pub fn is_picked_up(&self, deal: Uuid) -> bool {
        self.picked_up.contains(&deal)
    }

    /// The flows left half-way, at most `limit` (see [`Unfinished`]).
    pub fn unfinished(&self, limit: usize) -> Vec<Unfinished> {
        self.to_conclude
            .iter()
            .map(|id| Unfinished::Conclude(*id))
            .chain(self.to_agree.iter().map(|id| Unfinished::Agree(*id)))
            .chain(
                self.to_release
                    .iter()
                    .map(|(listing, deal)| Unfinished::Release { listing: *listing, deal: *deal }),
            )
            .take(limit)
            .collect()
    }

    pub fn listing(&self, id: Uuid) -> Option<&ListingState> {
        self.listings.get(&id)
    }

    pub fn candidate(&self, id: Uuid) -> Option<&Candidate> {
        self.index.get(id)
    }

    pub fn proposal(&self, id: Uuid) -> Option<&Held<Proposal>> {
        self.proposals.get(&id)
    }

    pub fn deal(&self, id: Uuid) -> Option<&Held<Deal>> {
        self.deals.get(&id)
    }

    /// The proposals `organization` is a party to, newest first, after the key `after` (the
    /// last of the previous page), those naming `listing` only if given; at most `limit`, and
    /// whether more follow.
    pub fn proposals_of(
        &self,
        organization: Uuid,
        listing: Option<Uuid>,
        after: Option<(u64, Uuid)>,
        limit: usize,
    ) -> (Vec<&Held<Proposal>>, bool) {
        let upper = after
            .map_or((organization, u64::MAX, Uuid::max()), |(position, id)| (organization, position, id));
        let mut found = self
            .proposals_by_party
            .range((organization, 0, Uuid::nil())..upper)
            .rev()
            .filter_map(|(_, _, id)| self.proposals.get(id))
            .filter(|held| listing.is_none_or(|listing| held.value.names_listing(listing)));
        let page: Vec<&Held<Proposal>> = found.by_ref().take(limit).collect();
        let more = found.next().is_some();
        (page, more)
    }

    /// The deals `organization` is a party to, newest first, after `after`; at most `limit`,
    /// and whether more follow.
    pub fn deals_of(
        &self,
        organization: Uuid,
        after: Option<(u64, Uuid)>,
        limit: usize,
    ) -> (Vec<&Held<Deal>>, bool) {
        let upper = after
            .map_or((organization, u64::MAX, Uuid::max()), |(position, id)| (organization, position, id));
        let mut found = self
            .deals_by_party
            .range((organization, 0, Uuid::nil())..upper)
            .rev()
            .filter_map(|(_, _, id)| self.deals.get(id));
        let page: Vec<&Held<Deal>> = found.by_ref().take(limit).collect();
        let more = found.next().is_some();
        (page, more)
    }
}
