//! The wire form of matching: proposals, deals and matches to and from the messages of
//! `matching.proto`, and the events to and from `events.proto` (`symbiose.matching.v1.<type>`).

use symbiose_domain::Country;
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::timestamp_from_ms;
use symbiose_proto::matching::v1 as pb;
use uuid::Uuid;

use crate::deal::{Deal, DealStatus};
use crate::proposal::{Proposal, Status};
use crate::score::Score;

use symbiose_listings_contract::vocabulary;
pub(crate) use symbiose_matching_contract::document_to_wire;
pub use symbiose_matching_contract::event_types::*;
/// The stored form of the deal events is the matching contract's.
pub use symbiose_matching_contract::{
    decode_deal_event, decode_proposal_event, encode_deal_event, encode_proposal_event,
};
pub use symbiose_proto::convert::id;

pub(crate) fn score_to_wire(score: &Score) -> pb::Score {
    pb::Score {
        total: score.total,
        distance: score.distance,
        price: score.price,
        quantity: score.quantity,
        timing: score.timing,
        co2_kg: score.co2_kg.unwrap_or_default(),
    }
}

fn country_to_wire(country: Country) -> i32 {
    common::Country::from(country).into()
}

fn proposal_status_to_wire(status: Status) -> pb::ProposalState {
    match status {
        Status::Open => pb::ProposalState::Open,
        Status::Concluded => pb::ProposalState::Concluded,
        Status::Declined => pb::ProposalState::Declined,
        Status::Unavailable => pb::ProposalState::Unavailable,
    }
}

/// The proposal as the API shows it, at `version`; `concluded` tells whether its lines'
/// deals exist.
pub fn proposal_to_wire(proposal: &Proposal, version: u64) -> pb::Proposal {
    let concluded = proposal.status == Status::Concluded;
    pb::Proposal {
        proposal_id: proposal.id.to_string(),
        request_id: proposal.request_id.to_string(),
        buyer_organization_id: proposal.buyer.to_string(),
        lines: proposal
            .lines
            .iter()
            .map(|line| pb::ProposalLine {
                offer_id: line.offer_id.to_string(),
                seller_organization_id: line.seller.to_string(),
                quantity: Some(line.quantity.into()),
                price_per_unit: Some(line.price_per_unit.into()),
                pickup: Some(line.pickup.point.into()),
                pickup_country: country_to_wire(line.pickup.country),
                distance_km: line.distance_km,
                required_documents: line.documents.iter().copied().map(document_to_wire).collect(),
                deal_id: if concluded { line.deal_id.to_string() } else { String::new() },
            })
            .collect(),
        material_family: common::MaterialFamily::from(proposal.family).into(),
        waste_code: proposal.waste_code.map(Into::into),
        delivery: Some(proposal.delivery.point.into()),
        delivery_country: country_to_wire(proposal.delivery.country),
        score: Some(score_to_wire(&proposal.score)),
        consolidated: proposal.consolidated,
        state: proposal_status_to_wire(proposal.status).into(),
        accepted_by: proposal.accepted_by.iter().map(Uuid::to_string).collect(),
        reason: proposal.reason.clone(),
        proposed_at: Some(timestamp_from_ms(proposal.proposed_at_ms)),
        version,
        legal_status: vocabulary::legal_status_to_wire(proposal.legal_status),
    }
}

/// The deal as the API shows it, at `version`.
pub fn deal_to_wire(deal: &Deal, version: u64) -> pb::Deal {
    let (state, cancelled_by, cancel_reason) = match &deal.status {
        DealStatus::Agreed => (pb::DealState::Agreed, String::new(), String::new()),
        DealStatus::Cancelled { by, reason, .. } => {
            (pb::DealState::Cancelled, by.to_string(), reason.clone())
        }
    };
    pb::Deal {
        deal_id: deal.id.to_string(),
        proposal_id: deal.proposal_id.to_string(),
        offer_id: deal.offer_id.to_string(),
        request_id: deal.request_id.to_string(),
        seller_organization_id: deal.seller.to_string(),
        buyer_organization_id: deal.buyer.to_string(),
        material_family: common::MaterialFamily::from(deal.family).into(),
        waste_code: deal.waste_code.map(Into::into),
        legal_status: vocabulary::legal_status_to_wire(deal.legal_status),
        quantity: Some(deal.quantity.into()),
        price_per_unit: Some(deal.price_per_unit.into()),
        total: deal.total().ok().map(Into::into),
        pickup: Some(deal.pickup.point.into()),
        pickup_country: country_to_wire(deal.pickup.country),
        delivery: Some(deal.delivery.point.into()),
        delivery_country: country_to_wire(deal.delivery.country),
        distance_km: deal.distance_km,
        required_documents: deal.documents.iter().copied().map(document_to_wire).collect(),
        reservation_id: deal.id.to_string(),
        state: state.into(),
        cancelled_by,
        cancel_reason,
        agreed_at: Some(timestamp_from_ms(deal.agreed_at_ms)),
        version,
    }
}

#[cfg(test)]
mod tests {
    use symbiose_domain::{Currency, GeoPoint, MaterialFamily, Money, Quantity, Unit};

    use symbiose_domain::WasteCode;
    use symbiose_domain::lot::{LegalStatus, Place};

    use super::*;
    use crate::deal;
    use crate::proposal::{self, Line};
    use crate::rules::RequiredDocument;
    use std::collections::BTreeSet;

    fn place(latitude: f64, longitude: f64, country: Country) -> Place {
        Place { point: GeoPoint::new(latitude, longitude).expect("a point"), country }
    }

    #[test]
    fn proposal_and_deal_events_read_back_as_written() {
        let (request, offer, buyer, seller) =
            (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let id = proposal::proposal_id(request, &[offer]);
        let proposal = Proposal {
            id,
            request_id: request,
            buyer,
            lines: vec![Line {
                offer_id: offer,
                seller,
                quantity: Quantity::new(40_000, Unit::Pallet, false).expect("a quantity"),
                price_per_unit: Money::new(350, Currency::Eur).expect("a price"),
                pickup: place(48.5734, 7.7521, Country::Fr),
                distance_km: 4.9,
                documents: vec![RequiredDocument::AnnexVii],
                deal_id: proposal::deal_id(id, offer),
            }],
            family: MaterialFamily::Pallets,
            waste_code: Some(WasteCode::parse("15 01 03").expect("a code")),
            legal_status: LegalStatus::Waste,
            delivery: place(48.5667, 7.8167, Country::De),
            score: Score {
                total: 0.9,
                distance: 0.97,
                price: 0.5,
                quantity: 1.0,
                timing: 1.0,
                co2_kg: Some(0.5),
            },
            consolidated: false,
            proposed_at_ms: 1_700_000_000_123,
            status: Status::Open,
            accepted_by: BTreeSet::new(),
            reason: String::new(),
        };
        for event in [
            proposal::Event::Proposed(Box::new(proposal.clone())),
            proposal::Event::Accepted { by: buyer, at_ms: 1_700_000_000_456 },
            proposal::Event::Declined { by: seller, reason: "too far".into() },
            proposal::Event::Closed { reason: "sold".into() },
            proposal::Event::Concluded { deal_ids: vec![proposal::deal_id(id, offer)] },
        ] {
            let (event_type, payload) = encode_proposal_event(id, &event);
            assert_eq!(decode_proposal_event(event_type, &payload), Ok(event));
        }
        let deal = Deal {
            id: proposal::deal_id(id, offer),
            proposal_id: id,
            offer_id: offer,
            request_id: request,
            seller,
            buyer,
            family: MaterialFamily::Pallets,
            waste_code: proposal.waste_code,
            legal_status: LegalStatus::Waste,
            quantity: proposal.lines[0].quantity,
            price_per_unit: proposal.lines[0].price_per_unit,
            pickup: proposal.lines[0].pickup,
            delivery: proposal.delivery,
            distance_km: 4.9,
            documents: vec![RequiredDocument::AnnexVii],
            agreed_at_ms: 1_700_000_000_789,
            status: DealStatus::Agreed,
        };
        for event in [
            deal::Event::Agreed(Box::new(deal.clone())),
            deal::Event::Cancelled { by: buyer, reason: "plans changed".into(), at_ms: 1_700_000_001_000 },
        ] {
            let (event_type, payload) = encode_deal_event(deal.id, &event);
            assert_eq!(decode_deal_event(event_type, &payload), Ok(event));
        }
        assert!(decode_deal_event(MATCH_PROPOSED, &[]).is_err(), "a proposal event is not a deal's");
        assert!(decode_proposal_event(MATCH_PROPOSED, &[0xff]).is_err(), "garbage does not decode");
    }
}
