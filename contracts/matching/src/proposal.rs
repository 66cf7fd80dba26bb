//! A proposal as the matching context records it: a request paired with one offer (or,
//! consolidated, with several offers picked up together), put to every party, open until each
//! has accepted, one declines, or an offer turns out to be gone; its events and their fold.
//!
//! Its id and its deals' ids are derived from the listings paired (pinned: a stored log relies
//! on them), so a pair is proposed once and a retried conclusion agrees the same deals.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use symbiose_domain::lot::{LegalStatus, Place};
use symbiose_domain::{MaterialFamily, Money, Quantity, WasteCode};
use uuid::Uuid;

use crate::deal::RequiredDocument;

/// Namespace of the ids derived from the listings a proposal pairs.
const PROPOSAL_NAMESPACE: Uuid = Uuid::from_u128(0x6d61_7463_6869_4e67_8a11_7e57_0c0d_e5a1);
/// The id of the proposal pairing `request` with `offers` (in any order).
pub fn proposal_id(request: Uuid, offers: &[Uuid]) -> Uuid {
    let mut sorted = offers.to_vec();
    sorted.sort_unstable();
    let names: Vec<String> = sorted.iter().map(Uuid::to_string).collect();
    Uuid::new_v5(&PROPOSAL_NAMESPACE, format!("proposal/{request}/{}", names.join(",")).as_bytes())
}

/// The id of the deal that `offer`'s line of `proposal` becomes: also its reservation's id.
pub fn deal_id(proposal: Uuid, offer: Uuid) -> Uuid {
    Uuid::new_v5(&PROPOSAL_NAMESPACE, format!("deal/{proposal}/{offer}").as_bytes())
}

/// One offer of a proposal and what would move from it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Line {
    pub offer_id: Uuid,
    pub seller: Uuid,
    pub quantity: Quantity,
    pub price_per_unit: Money,
    pub pickup: Place,
    pub distance_km: f64,
    pub documents: Vec<RequiredDocument>,
    pub deal_id: Uuid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    Open,
    Concluded,
    Declined,
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Proposal {
    pub id: Uuid,
    pub request_id: Uuid,
    pub buyer: Uuid,
    pub lines: Vec<Line>,
    pub family: MaterialFamily,
    pub waste_code: Option<WasteCode>,
    pub legal_status: LegalStatus,
    pub delivery: Place,
    pub score: Score,
    pub consolidated: bool,
    pub proposed_at_ms: i64,
    pub status: Status,
    pub accepted_by: BTreeSet<Uuid>,
    /// Why it was declined or closed.
    pub reason: String,
}

impl Proposal {
    /// The buyer and every seller, once each.
    pub fn parties(&self) -> BTreeSet<Uuid> {
        std::iter::once(self.buyer).chain(self.lines.iter().map(|line| line.seller)).collect()
    }

    pub fn is_party(&self, organization: Uuid) -> bool {
        self.buyer == organization || self.lines.iter().any(|line| line.seller == organization)
    }

    /// Whether every party has accepted.
    pub fn accepted_by_all(&self) -> bool {
        self.parties().is_subset(&self.accepted_by)
    }

    /// Whether `listing` is the request or one of the offers.
    pub fn names_listing(&self, listing: Uuid) -> bool {
        self.request_id == listing || self.lines.iter().any(|line| line.offer_id == listing)
    }
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum ProposalState {
    #[default]
    Absent,
    Present(Box<Proposal>),
}

impl ProposalState {
    pub fn proposal(&self) -> Option<&Proposal> {
        match self {
            ProposalState::Absent => None,
            ProposalState::Present(proposal) => Some(proposal),
        }
    }
}

/// How well a pair fits: each component in [0, 1] (1 is best) and their weighted `total`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    pub total: f64,
    pub distance: f64,
    pub price: f64,
    pub quantity: f64,
    pub timing: f64,
    /// Estimated kgCO2e of moving the lot by road, when its mass is known.
    pub co2_kg: Option<f64>,
}

impl Score {
    /// Best first: the higher total, then the nearer.
    pub fn best_first(&self, other: &Score) -> Ordering {
        other.total.total_cmp(&self.total).then(other.distance.total_cmp(&self.distance))
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    Proposed(Box<Proposal>),
    Accepted { by: Uuid, at_ms: i64 },
    Declined { by: Uuid, reason: String },
    Closed { reason: String },
    Concluded { deal_ids: Vec<Uuid> },
}

/// The state after `event`.
pub fn evolve(state: ProposalState, event: &Event) -> ProposalState {
    match (state, event) {
        (ProposalState::Absent, Event::Proposed(proposal)) => ProposalState::Present(proposal.clone()),
        (ProposalState::Present(mut proposal), event) => {
            match event {
                Event::Proposed(_) => {}
                Event::Accepted { by, .. } => {
                    proposal.accepted_by.insert(*by);
                }
                Event::Declined { reason, .. } => {
                    proposal.status = Status::Declined;
                    proposal.reason.clone_from(reason);
                }
                Event::Closed { reason } => {
                    proposal.status = Status::Unavailable;
                    proposal.reason.clone_from(reason);
                }
                Event::Concluded { .. } => proposal.status = Status::Concluded,
            }
            ProposalState::Present(proposal)
        }
        (state, _) => state,
    }
}
