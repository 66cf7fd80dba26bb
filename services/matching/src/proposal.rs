//! The Proposal aggregate: a request paired with one offer (or, consolidated, with several
//! offers picked up together), put to every party, open until each has accepted (then the
//! shell reserves the offers' quantities and concludes it into deals), one declines, or an
//! offer turns out to be gone (closed as unavailable).
//!
//! Its id and its deals' ids are derived from the listings paired, so a pair is proposed once
//! and a retried conclusion reserves and agrees the same deals. Pure: `decide` and `evolve`.
//! Its types, events and fold are the matching contract's (`symbiose_matching_contract::proposal`);
//! what is here is how the service decides.

pub use symbiose_matching_contract::proposal::*;
use uuid::Uuid;

/// Longest reason given for a decline or a cancellation, in bytes.
pub const REASON_BYTES_MAX: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Propose(Box<Proposal>),
    Accept {
        by: Uuid,
        now_ms: i64,
    },
    Decline {
        by: Uuid,
        reason: String,
    },
    /// An offer did not have the quantity when the last party accepted.
    Close {
        reason: String,
    },
    /// Every party accepted and every line's quantity is reserved.
    Conclude,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the proposal does not exist")]
    NotFound,
    #[error("only the parties of a proposal answer it")]
    NotAParty,
    #[error("the proposal was declined")]
    Declined,
    #[error("the proposal was closed: an offer no longer had the quantity")]
    Unavailable,
    #[error("the proposal is concluded: its deals exist")]
    Concluded,
    #[error("not every party has accepted")]
    NotAcceptedByAll,
    #[error("every party accepted: the proposal is being concluded")]
    AcceptedByAll,
    #[error("a reason is at most {REASON_BYTES_MAX} bytes")]
    ReasonTooLong,
}

/// What `command` does to `state`: the events to append (none: nothing to do), or why not.
pub fn decide(state: &ProposalState, command: Command) -> Result<Vec<Event>, Rejection> {
    let (proposal, command) = match (state, command) {
        (ProposalState::Absent, Command::Propose(proposal)) => return Ok(vec![Event::Proposed(proposal)]),
        // Proposed already: the same pair is proposed once.
        (ProposalState::Present(_), Command::Propose(_)) => return Ok(vec![]),
        (ProposalState::Absent, _) => return Err(Rejection::NotFound),
        (ProposalState::Present(proposal), command) => (proposal, command),
    };
    match command {
        Command::Propose(_) => Ok(vec![]),
        Command::Accept { by, now_ms } => {
            party(proposal, by)?;
            match proposal.status {
                Status::Open if proposal.accepted_by.contains(&by) => Ok(vec![]),
                Status::Open => Ok(vec![Event::Accepted { by, at_ms: now_ms }]),
                // Accepting again what is concluded changes nothing.
                Status::Concluded => Ok(vec![]),
                Status::Declined => Err(Rejection::Declined),
                Status::Unavailable => Err(Rejection::Unavailable),
            }
        }
        Command::Decline { by, reason } => {
            party(proposal, by)?;
            if reason.len() > REASON_BYTES_MAX {
                return Err(Rejection::ReasonTooLong);
            }
            match proposal.status {
                // Every party accepted: it is being concluded, the reservations made.
                Status::Open if proposal.accepted_by_all() => Err(Rejection::AcceptedByAll),
                Status::Open => Ok(vec![Event::Declined { by, reason }]),
                Status::Declined => Ok(vec![]),
                Status::Concluded => Err(Rejection::Concluded),
                Status::Unavailable => Err(Rejection::Unavailable),
            }
        }
        Command::Close { reason } => match proposal.status {
            Status::Open => Ok(vec![Event::Closed { reason }]),
            _ => Ok(vec![]),
        },
        Command::Conclude => match proposal.status {
            Status::Open if proposal.accepted_by_all() => Ok(vec![Event::Concluded {
                deal_ids: proposal.lines.iter().map(|line| line.deal_id).collect(),
            }]),
            Status::Open => Err(Rejection::NotAcceptedByAll),
            Status::Concluded => Ok(vec![]),
            Status::Declined => Err(Rejection::Declined),
            Status::Unavailable => Err(Rejection::Unavailable),
        },
    }
}

fn party(proposal: &Proposal, organization: Uuid) -> Result<(), Rejection> {
    if proposal.is_party(organization) { Ok(()) } else { Err(Rejection::NotAParty) }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use symbiose_domain::lot::{LegalStatus, Place};
    use symbiose_domain::{Country, Currency, GeoPoint, MaterialFamily, Money, Quantity, Unit};

    use super::*;

    fn proposal(buyer: Uuid, sellers: &[Uuid]) -> Proposal {
        let request_id = Uuid::now_v7();
        let offers: Vec<Uuid> = sellers.iter().map(|_| Uuid::now_v7()).collect();
        let id = proposal_id(request_id, &offers);
        let place = Place { point: GeoPoint::new(48.58, 7.75).expect("a point"), country: Country::Fr };
        Proposal {
            id,
            request_id,
            buyer,
            lines: sellers
                .iter()
                .zip(&offers)
                .map(|(seller, offer)| Line {
                    offer_id: *offer,
                    seller: *seller,
                    quantity: Quantity::new(10_000, Unit::Pallet, false).expect("a quantity"),
                    price_per_unit: Money::new(350, Currency::Eur).expect("a price"),
                    pickup: place,
                    distance_km: 4.9,
                    documents: vec![],
                    deal_id: deal_id(id, *offer),
                })
                .collect(),
            family: MaterialFamily::Pallets,
            waste_code: None,
            legal_status: LegalStatus::ProductForReuse,
            delivery: place,
            score: Score {
                total: 0.9,
                distance: 0.97,
                price: 0.8,
                quantity: 1.0,
                timing: 1.0,
                co2_kg: Some(0.1),
            },
            consolidated: sellers.len() > 1,
            proposed_at_ms: 0,
            status: Status::Open,
            accepted_by: BTreeSet::new(),
            reason: String::new(),
        }
    }

    fn apply(state: ProposalState, command: Command) -> Result<ProposalState, Rejection> {
        let events = decide(&state, command)?;
        Ok(events.iter().fold(state, evolve))
    }

    #[test]
    fn ids_are_derived_from_the_pair_whatever_the_order_of_the_offers() {
        let (request, a, b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(proposal_id(request, &[a, b]), proposal_id(request, &[b, a]));
        assert_ne!(proposal_id(request, &[a]), proposal_id(request, &[b]));
        let id = proposal_id(request, &[a]);
        assert_eq!(deal_id(id, a), deal_id(id, a));
        assert_ne!(deal_id(id, a), deal_id(id, b));
    }

    #[test]
    fn a_proposal_concludes_once_every_party_accepted() {
        let (buyer, first, second) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let proposed = proposal(buyer, &[first, second]);
        let state =
            apply(ProposalState::Absent, Command::Propose(Box::new(proposed.clone()))).expect("proposed");
        // Proposing the same pair again does nothing.
        assert_eq!(decide(&state, Command::Propose(Box::new(proposed))), Ok(vec![]));
        let state = apply(state, Command::Accept { by: buyer, now_ms: 1 }).expect("accepted");
        assert_eq!(decide(&state, Command::Accept { by: buyer, now_ms: 2 }), Ok(vec![]), "accepting twice");
        assert_eq!(decide(&state, Command::Conclude), Err(Rejection::NotAcceptedByAll));
        let state = apply(state, Command::Accept { by: first, now_ms: 3 }).expect("accepted");
        let state = apply(state, Command::Accept { by: second, now_ms: 4 }).expect("accepted");
        // Once every party accepted, the conclusion is under way: no one declines any more.
        assert_eq!(
            decide(&state, Command::Decline { by: buyer, reason: String::new() }),
            Err(Rejection::AcceptedByAll)
        );
        let events = decide(&state, Command::Conclude).expect("concludes");
        let Some(Event::Concluded { deal_ids }) = events.first() else { panic!("{events:?}") };
        assert_eq!(deal_ids.len(), 2);
        let state = events.iter().fold(state, evolve);
        assert_eq!(state.proposal().map(|proposal| proposal.status), Some(Status::Concluded));
        assert_eq!(decide(&state, Command::Conclude), Ok(vec![]), "concluding again does nothing");
        assert_eq!(
            decide(&state, Command::Decline { by: buyer, reason: String::new() }),
            Err(Rejection::Concluded)
        );
    }

    #[test]
    fn only_parties_answer_and_a_closed_proposal_cannot_be_accepted() {
        let (buyer, seller) = (Uuid::now_v7(), Uuid::now_v7());
        let state = apply(ProposalState::Absent, Command::Propose(Box::new(proposal(buyer, &[seller]))))
            .expect("proposed");
        let stranger = Uuid::now_v7();
        assert_eq!(decide(&state, Command::Accept { by: stranger, now_ms: 1 }), Err(Rejection::NotAParty));
        assert_eq!(
            decide(&state, Command::Decline { by: seller, reason: "x".repeat(REASON_BYTES_MAX + 1) }),
            Err(Rejection::ReasonTooLong)
        );
        let closed = apply(state.clone(), Command::Close { reason: "gone".into() }).expect("closed");
        assert_eq!(decide(&closed, Command::Accept { by: buyer, now_ms: 1 }), Err(Rejection::Unavailable));
        let declined =
            apply(state, Command::Decline { by: seller, reason: "too far".into() }).expect("declined");
        let declined_proposal = declined.proposal().expect("present");
        assert_eq!(
            (declined_proposal.status, declined_proposal.reason.as_str()),
            (Status::Declined, "too far")
        );
        assert_eq!(decide(&declined, Command::Accept { by: buyer, now_ms: 1 }), Err(Rejection::Declined));
        assert_eq!(decide(&ProposalState::Absent, Command::Conclude), Err(Rejection::NotFound));
    }
}
