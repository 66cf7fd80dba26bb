//! The wire form of matching: proposals, deals and matches to and from the messages of
//! `matching.proto`, and the events to and from `events.proto` (`symbiose.matching.v1.<type>`).

use std::collections::BTreeSet;

use prost::Message as _;
use symbiose_domain::{Country, WasteCode};
use symbiose_listings::listing::{LegalStatus, Place};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{
    FieldError, country_from_wire, material_family_from_wire, ms_from_timestamp, required, timestamp_from_ms,
};
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::matching::v1 as pb;
use uuid::Uuid;

use crate::deal::{self, Deal, DealStatus};
use crate::proposal::{self, Line, Proposal, Status};
use crate::rules::RequiredDocument;
use crate::score::Score;

pub const MATCH_PROPOSED: &str = "symbiose.matching.v1.MatchProposed";
pub const PROPOSAL_ACCEPTED: &str = "symbiose.matching.v1.ProposalAccepted";
pub const PROPOSAL_DECLINED: &str = "symbiose.matching.v1.ProposalDeclined";
pub const PROPOSAL_CLOSED: &str = "symbiose.matching.v1.ProposalClosed";
pub const PROPOSAL_CONCLUDED: &str = "symbiose.matching.v1.ProposalConcluded";
pub const DEAL_AGREED: &str = "symbiose.matching.v1.DealAgreed";
pub const DEAL_CANCELLED: &str = "symbiose.matching.v1.DealCancelled";

pub use symbiose_proto::convert::id;

pub(crate) fn legal_status_to_wire(status: LegalStatus) -> listings::LegalStatus {
    match status {
        LegalStatus::Waste => listings::LegalStatus::Waste,
        LegalStatus::ByProduct => listings::LegalStatus::ByProduct,
        LegalStatus::EndOfWaste => listings::LegalStatus::EndOfWaste,
        LegalStatus::ProductForReuse => listings::LegalStatus::ProductForReuse,
    }
}

fn legal_status_from_wire(value: i32, field: &str) -> Result<LegalStatus, FieldError> {
    match listings::LegalStatus::try_from(value) {
        Ok(listings::LegalStatus::Waste) => Ok(LegalStatus::Waste),
        Ok(listings::LegalStatus::ByProduct) => Ok(LegalStatus::ByProduct),
        Ok(listings::LegalStatus::EndOfWaste) => Ok(LegalStatus::EndOfWaste),
        Ok(listings::LegalStatus::ProductForReuse) => Ok(LegalStatus::ProductForReuse),
        _ => Err(FieldError::new(field, format!("{value} is not a legal status"))),
    }
}

pub(crate) fn document_to_wire(document: RequiredDocument) -> i32 {
    match document {
        RequiredDocument::AnnexVii => pb::RequiredDocument::AnnexVii,
        RequiredDocument::PriorNotification => pb::RequiredDocument::PriorNotification,
    }
    .into()
}

fn documents_from_wire(values: &[i32], field: &str) -> Result<Vec<RequiredDocument>, FieldError> {
    values
        .iter()
        .map(|value| match pb::RequiredDocument::try_from(*value) {
            Ok(pb::RequiredDocument::AnnexVii) => Ok(RequiredDocument::AnnexVii),
            Ok(pb::RequiredDocument::PriorNotification) => Ok(RequiredDocument::PriorNotification),
            _ => Err(FieldError::new(field, format!("{value} is not a document"))),
        })
        .collect()
}

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

fn score_from_wire(score: Option<pb::Score>) -> Score {
    let score = score.unwrap_or_default();
    Score {
        total: score.total,
        distance: score.distance,
        price: score.price,
        quantity: score.quantity,
        timing: score.timing,
        co2_kg: (score.co2_kg > 0.0).then_some(score.co2_kg),
    }
}

fn waste_code_from_wire(
    code: Option<common::WasteCode>,
    field: &str,
) -> Result<Option<WasteCode>, FieldError> {
    match code {
        Some(code) if !code.code.is_empty() => {
            WasteCode::parse(&code.code).map(Some).map_err(|error| FieldError::new(field, error))
        }
        _ => Ok(None),
    }
}

fn place(
    point: Option<common::GeoPoint>,
    country: i32,
    point_field: &str,
    country_field: &str,
) -> Result<Place, FieldError> {
    Ok(Place { point: required(point, point_field)?, country: country_from_wire(country, country_field)? })
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
        legal_status: legal_status_to_wire(proposal.legal_status).into(),
    }
}

/// A proposal as `MatchProposed` stored it: open, accepted by no one.
fn proposal_from_wire(proposal: pb::Proposal) -> Result<Proposal, FieldError> {
    let proposal_id = id(&proposal.proposal_id, "proposal_id")?;
    let lines = proposal
        .lines
        .into_iter()
        .enumerate()
        .map(|(index, line)| {
            let offer_id = id(&line.offer_id, "offer_id")?;
            Ok(Line {
                offer_id,
                seller: id(&line.seller_organization_id, "seller_organization_id")?,
                quantity: required(line.quantity, "quantity")?,
                price_per_unit: required(line.price_per_unit, "price_per_unit")?,
                pickup: place(line.pickup, line.pickup_country, "pickup", "pickup_country")?,
                distance_km: line.distance_km,
                documents: documents_from_wire(&line.required_documents, "required_documents")?,
                deal_id: proposal::deal_id(proposal_id, offer_id),
            })
            .map_err(|error: FieldError| error.under(&format!("lines[{index}]")))
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    Ok(Proposal {
        id: proposal_id,
        request_id: id(&proposal.request_id, "request_id")?,
        buyer: id(&proposal.buyer_organization_id, "buyer_organization_id")?,
        lines,
        family: material_family_from_wire(proposal.material_family, "material_family")?,
        waste_code: waste_code_from_wire(proposal.waste_code, "waste_code")?,
        legal_status: legal_status_from_wire(proposal.legal_status, "legal_status")?,
        delivery: place(proposal.delivery, proposal.delivery_country, "delivery", "delivery_country")?,
        score: score_from_wire(proposal.score),
        consolidated: proposal.consolidated,
        proposed_at_ms: match &proposal.proposed_at {
            Some(at) => ms_from_timestamp(at, "proposed_at")?,
            None => 0,
        },
        status: Status::Open,
        accepted_by: BTreeSet::new(),
        reason: String::new(),
    })
}

fn organization(value: &str, field: &str) -> Result<Uuid, String> {
    id(value, field).map_err(|error| error.to_string())
}

pub fn encode_proposal_event(proposal_id: Uuid, event: &proposal::Event) -> (&'static str, Vec<u8>) {
    let id = proposal_id.to_string();
    match event {
        proposal::Event::Proposed(proposal) => (
            MATCH_PROPOSED,
            pb::MatchProposed { proposal: Some(proposal_to_wire(proposal, 0)) }.encode_to_vec(),
        ),
        proposal::Event::Accepted { by, at_ms } => (
            PROPOSAL_ACCEPTED,
            pb::ProposalAccepted {
                proposal_id: id,
                organization_id: by.to_string(),
                accepted_at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        proposal::Event::Declined { by, reason } => (
            PROPOSAL_DECLINED,
            pb::ProposalDeclined { proposal_id: id, organization_id: by.to_string(), reason: reason.clone() }
                .encode_to_vec(),
        ),
        proposal::Event::Closed { reason } => {
            (PROPOSAL_CLOSED, pb::ProposalClosed { proposal_id: id, reason: reason.clone() }.encode_to_vec())
        }
        proposal::Event::Concluded { deal_ids } => (
            PROPOSAL_CONCLUDED,
            pb::ProposalConcluded {
                proposal_id: id,
                deal_ids: deal_ids.iter().map(Uuid::to_string).collect(),
            }
            .encode_to_vec(),
        ),
    }
}

pub fn decode_proposal_event(event_type: &str, payload: &[u8]) -> Result<proposal::Event, String> {
    let bad = |error: prost::DecodeError| format!("{event_type}: {error}");
    match event_type {
        MATCH_PROPOSED => {
            let event = pb::MatchProposed::decode(payload).map_err(bad)?;
            let proposal = required_proposal(event.proposal)?;
            Ok(proposal::Event::Proposed(Box::new(proposal)))
        }
        PROPOSAL_ACCEPTED => {
            let event = pb::ProposalAccepted::decode(payload).map_err(bad)?;
            let at_ms = match &event.accepted_at {
                Some(at) => ms_from_timestamp(at, "accepted_at").map_err(|error| error.to_string())?,
                None => 0,
            };
            Ok(proposal::Event::Accepted {
                by: organization(&event.organization_id, "organization_id")?,
                at_ms,
            })
        }
        PROPOSAL_DECLINED => {
            let event = pb::ProposalDeclined::decode(payload).map_err(bad)?;
            Ok(proposal::Event::Declined {
                by: organization(&event.organization_id, "organization_id")?,
                reason: event.reason,
            })
        }
        PROPOSAL_CLOSED => {
            let event = pb::ProposalClosed::decode(payload).map_err(bad)?;
            Ok(proposal::Event::Closed { reason: event.reason })
        }
        PROPOSAL_CONCLUDED => {
            let event = pb::ProposalConcluded::decode(payload).map_err(bad)?;
            let deal_ids =
                event.deal_ids.iter().map(|deal| organization(deal, "deal_ids")).collect::<Result<_, _>>()?;
            Ok(proposal::Event::Concluded { deal_ids })
        }
        other => Err(format!("{other} is not a proposal event")),
    }
}

fn required_proposal(proposal: Option<pb::Proposal>) -> Result<Proposal, String> {
    let proposal = proposal.ok_or("proposal: is required")?;
    proposal_from_wire(proposal).map_err(|error| error.under("proposal").to_string())
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
        legal_status: legal_status_to_wire(deal.legal_status).into(),
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

pub fn deal_from_wire(deal: pb::Deal) -> Result<Deal, FieldError> {
    Ok(Deal {
        id: id(&deal.deal_id, "deal_id")?,
        proposal_id: id(&deal.proposal_id, "proposal_id")?,
        offer_id: id(&deal.offer_id, "offer_id")?,
        request_id: id(&deal.request_id, "request_id")?,
        seller: id(&deal.seller_organization_id, "seller_organization_id")?,
        buyer: id(&deal.buyer_organization_id, "buyer_organization_id")?,
        family: material_family_from_wire(deal.material_family, "material_family")?,
        waste_code: waste_code_from_wire(deal.waste_code, "waste_code")?,
        legal_status: legal_status_from_wire(deal.legal_status, "legal_status")?,
        quantity: required(deal.quantity, "quantity")?,
        price_per_unit: required(deal.price_per_unit, "price_per_unit")?,
        pickup: place(deal.pickup, deal.pickup_country, "pickup", "pickup_country")?,
        delivery: place(deal.delivery, deal.delivery_country, "delivery", "delivery_country")?,
        distance_km: deal.distance_km,
        documents: documents_from_wire(&deal.required_documents, "required_documents")?,
        agreed_at_ms: match &deal.agreed_at {
            Some(at) => ms_from_timestamp(at, "agreed_at")?,
            None => 0,
        },
        status: DealStatus::Agreed,
    })
}

pub fn encode_deal_event(deal_id: Uuid, event: &deal::Event) -> (&'static str, Vec<u8>) {
    match event {
        deal::Event::Agreed(deal) => {
            (DEAL_AGREED, pb::DealAgreed { deal: Some(deal_to_wire(deal, 0)) }.encode_to_vec())
        }
        deal::Event::Cancelled { by, reason, at_ms } => (
            DEAL_CANCELLED,
            pb::DealCancelled {
                deal_id: deal_id.to_string(),
                organization_id: by.to_string(),
                reason: reason.clone(),
                cancelled_at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
    }
}

pub fn decode_deal_event(event_type: &str, payload: &[u8]) -> Result<deal::Event, String> {
    let bad = |error: prost::DecodeError| format!("{event_type}: {error}");
    match event_type {
        DEAL_AGREED => {
            let event = pb::DealAgreed::decode(payload).map_err(bad)?;
            let deal = event.deal.ok_or("deal: is required")?;
            let deal = deal_from_wire(deal).map_err(|error| error.under("deal").to_string())?;
            Ok(deal::Event::Agreed(Box::new(deal)))
        }
        DEAL_CANCELLED => {
            let event = pb::DealCancelled::decode(payload).map_err(bad)?;
            let at_ms = match &event.cancelled_at {
                Some(at) => ms_from_timestamp(at, "cancelled_at").map_err(|error| error.to_string())?,
                None => 0,
            };
            Ok(deal::Event::Cancelled {
                by: organization(&event.organization_id, "organization_id")?,
                reason: event.reason,
                at_ms,
            })
        }
        other => Err(format!("{other} is not a deal event")),
    }
}

#[cfg(test)]
mod tests {
    use symbiose_domain::{Currency, GeoPoint, MaterialFamily, Money, Quantity, Unit};

    use super::*;

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
