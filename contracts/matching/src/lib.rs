//! The contract of the matching context: the deals, as logistics and settlement read them.
//!
//! - [`deal`]: the typed events and the fold other contexts keep (a deal's summary);
//! - the stored form: [`encode_deal_event`], [`decode_deal_event`], on `StoredDeal`
//!   (`symbiose.matching.v1`, never the API's `Deal`);
//! - [`decode_recorded_deal`]: a recorded event of any shape it was written in, brought to the
//!   current one by the [`upcasters`] first.
//!
//! The proposals' events are here too (`proposal`, `encode_proposal_event`,
//! `decode_proposal_event`): the matching service is their only reader today, but what a
//! context stores is its contract.
//!
//! A service depends on this crate, never on the matching service.

pub mod deal;
pub mod proposal;

use prost::Message as _;
use symbiose_contract::Stored;
use symbiose_domain::WasteCode;
use symbiose_domain::lot::Place;
use symbiose_eventstore::RecordedEvent;
use symbiose_listings_contract::vocabulary;
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{
    FieldError, country_from_wire, id, material_family_from_wire, ms_from_timestamp, required,
    timestamp_from_ms,
};
use symbiose_proto::matching::v1 as pb;
use uuid::Uuid;

use std::collections::{BTreeSet, HashMap};

use crate::deal::{Deal, DealStatus, RequiredDocument};
use crate::proposal::{Line, Proposal, Score, Status};

/// The type names of the context's events (the full names of their messages).
pub mod event_types {
    pub const MATCH_PROPOSED: &str = "symbiose.matching.v1.MatchProposed";
    pub const PROPOSAL_ACCEPTED: &str = "symbiose.matching.v1.ProposalAccepted";
    pub const PROPOSAL_DECLINED: &str = "symbiose.matching.v1.ProposalDeclined";
    pub const PROPOSAL_CLOSED: &str = "symbiose.matching.v1.ProposalClosed";
    pub const PROPOSAL_CONCLUDED: &str = "symbiose.matching.v1.ProposalConcluded";
    pub const DEAL_AGREED: &str = "symbiose.matching.v1.DealAgreed";
    pub const DEAL_CANCELLED: &str = "symbiose.matching.v1.DealCancelled";
}

/// The steps from each earlier shape of an event of this context to the next
/// (`symbiose_contract` says when one is needed). None yet: `DealAgreed` of schema version 0
/// holds the API's `Deal`, whose fields `StoredDeal` keeps by number, and the ones it left out
/// (state, cancellation, version) were always agreed, empty and 0.
pub mod upcasters {
    use symbiose_contract::Upcaster;

    pub const UPCASTERS: &[Upcaster] = &[];
}

/// The documents' enum on the wire.
pub fn document_to_wire(document: RequiredDocument) -> i32 {
    match document {
        RequiredDocument::AnnexVii => pb::RequiredDocument::AnnexVii,
        RequiredDocument::PriorNotification => pb::RequiredDocument::PriorNotification,
    }
    .into()
}

/// The documents from the wire, `field` naming them.
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

/// A waste code from the wire; absent or empty is none.
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

/// A place from its point and country on the wire.
pub fn place_from_wire(
    point: Option<common::GeoPoint>,
    country: i32,
    point_field: &str,
    country_field: &str,
) -> Result<Place, FieldError> {
    Ok(Place { point: required(point, point_field)?, country: country_from_wire(country, country_field)? })
}

/// A deal in its stored form, as `DealAgreed` holds it (and logistics' `TransportRequested`).
pub fn deal_to_stored(deal: &Deal) -> pb::StoredDeal {
    pb::StoredDeal {
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
        pickup_country: common::Country::from(deal.pickup.country).into(),
        delivery: Some(deal.delivery.point.into()),
        delivery_country: common::Country::from(deal.delivery.country).into(),
        distance_km: deal.distance_km,
        required_documents: deal.documents.iter().copied().map(document_to_wire).collect(),
        reservation_id: deal.id.to_string(),
        agreed_at: Some(timestamp_from_ms(deal.agreed_at_ms)),
    }
}

/// A deal from its stored form, as agreed.
pub fn deal_from_stored(deal: pb::StoredDeal) -> Result<Deal, FieldError> {
    Ok(Deal {
        id: id(&deal.deal_id, "deal_id")?,
        proposal_id: id(&deal.proposal_id, "proposal_id")?,
        offer_id: id(&deal.offer_id, "offer_id")?,
        request_id: id(&deal.request_id, "request_id")?,
        seller: id(&deal.seller_organization_id, "seller_organization_id")?,
        buyer: id(&deal.buyer_organization_id, "buyer_organization_id")?,
        family: material_family_from_wire(deal.material_family, "material_family")?,
        waste_code: waste_code_from_wire(deal.waste_code, "waste_code")?,
        legal_status: vocabulary::required(
            vocabulary::legal_status_from_wire(deal.legal_status, "legal_status"),
            "legal_status",
        )?,
        quantity: required(deal.quantity, "quantity")?,
        price_per_unit: required(deal.price_per_unit, "price_per_unit")?,
        pickup: place_from_wire(deal.pickup, deal.pickup_country, "pickup", "pickup_country")?,
        delivery: place_from_wire(deal.delivery, deal.delivery_country, "delivery", "delivery_country")?,
        distance_km: deal.distance_km,
        documents: documents_from_wire(&deal.required_documents, "required_documents")?,
        agreed_at_ms: deal
            .agreed_at
            .as_ref()
            .map(|at| ms_from_timestamp(at, "agreed_at"))
            .transpose()?
            .unwrap_or(0),
        status: DealStatus::Agreed,
    })
}

/// The type name and payload of a deal event, for `deal_id`.
pub fn encode_deal_event(deal_id: Uuid, event: &deal::Event) -> (&'static str, Vec<u8>) {
    match event {
        deal::Event::Agreed(deal) => {
            (event_types::DEAL_AGREED, pb::DealAgreed { deal: Some(deal_to_stored(deal)) }.encode_to_vec())
        }
        deal::Event::Cancelled { by, reason, at_ms } => (
            event_types::DEAL_CANCELLED,
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

/// The deal event of a stored type and payload of the current shape.
pub fn decode_deal_event(event_type: &str, payload: &[u8]) -> Result<deal::Event, String> {
    let malformed = |error: prost::DecodeError| format!("{event_type}: {error}");
    let invalid = |error: FieldError| format!("{event_type}: {error}");
    match event_type {
        event_types::DEAL_AGREED => {
            let event = pb::DealAgreed::decode(payload).map_err(malformed)?;
            let deal = event.deal.ok_or_else(|| format!("{event_type}: deal: is required"))?;
            let deal = deal_from_stored(deal).map_err(|error| invalid(error.under("deal")))?;
            Ok(deal::Event::Agreed(Box::new(deal)))
        }
        event_types::DEAL_CANCELLED => {
            let event = pb::DealCancelled::decode(payload).map_err(malformed)?;
            Ok(deal::Event::Cancelled {
                by: id(&event.organization_id, "organization_id").map_err(invalid)?,
                reason: event.reason,
                at_ms: event
                    .cancelled_at
                    .as_ref()
                    .map(|at| ms_from_timestamp(at, "cancelled_at"))
                    .transpose()
                    .map_err(invalid)?
                    .unwrap_or(0),
            })
        }
        other => Err(format!("{other} is not a deal event")),
    }
}

fn score_from_stored(score: Option<pb::StoredScore>) -> Score {
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

fn proposal_to_stored(proposal: &Proposal) -> pb::StoredProposal {
    pb::StoredProposal {
        proposal_id: proposal.id.to_string(),
        request_id: proposal.request_id.to_string(),
        buyer_organization_id: proposal.buyer.to_string(),
        lines: proposal
            .lines
            .iter()
            .map(|line| pb::StoredProposalLine {
                offer_id: line.offer_id.to_string(),
                seller_organization_id: line.seller.to_string(),
                quantity: Some(line.quantity.into()),
                price_per_unit: Some(line.price_per_unit.into()),
                pickup: Some(line.pickup.point.into()),
                pickup_country: common::Country::from(line.pickup.country).into(),
                distance_km: line.distance_km,
                required_documents: line.documents.iter().copied().map(document_to_wire).collect(),
            })
            .collect(),
        material_family: common::MaterialFamily::from(proposal.family).into(),
        waste_code: proposal.waste_code.map(Into::into),
        delivery: Some(proposal.delivery.point.into()),
        delivery_country: common::Country::from(proposal.delivery.country).into(),
        score: Some(pb::StoredScore {
            total: proposal.score.total,
            distance: proposal.score.distance,
            price: proposal.score.price,
            quantity: proposal.score.quantity,
            timing: proposal.score.timing,
            co2_kg: proposal.score.co2_kg.unwrap_or_default(),
        }),
        consolidated: proposal.consolidated,
        proposed_at: Some(timestamp_from_ms(proposal.proposed_at_ms)),
        legal_status: vocabulary::legal_status_to_wire(proposal.legal_status),
    }
}

/// A proposal as `MatchProposed` recorded it: open, accepted by no one.
fn proposal_from_stored(proposal: pb::StoredProposal) -> Result<Proposal, FieldError> {
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
                pickup: place_from_wire(line.pickup, line.pickup_country, "pickup", "pickup_country")?,
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
        legal_status: vocabulary::required(
            vocabulary::legal_status_from_wire(proposal.legal_status, "legal_status"),
            "legal_status",
        )?,
        delivery: place_from_wire(
            proposal.delivery,
            proposal.delivery_country,
            "delivery",
            "delivery_country",
        )?,
        score: score_from_stored(proposal.score),
        consolidated: proposal.consolidated,
        proposed_at_ms: proposal
            .proposed_at
            .as_ref()
            .map(|at| ms_from_timestamp(at, "proposed_at"))
            .transpose()?
            .unwrap_or(0),
        status: Status::Open,
        accepted_by: BTreeSet::new(),
        reason: String::new(),
    })
}

/// The type name and payload of a proposal event, for `proposal_id`.
pub fn encode_proposal_event(proposal_id: Uuid, event: &proposal::Event) -> (&'static str, Vec<u8>) {
    let id = proposal_id.to_string();
    match event {
        proposal::Event::Proposed(proposal) => (
            event_types::MATCH_PROPOSED,
            pb::MatchProposed { proposal: Some(proposal_to_stored(proposal)) }.encode_to_vec(),
        ),
        proposal::Event::Accepted { by, at_ms } => (
            event_types::PROPOSAL_ACCEPTED,
            pb::ProposalAccepted {
                proposal_id: id,
                organization_id: by.to_string(),
                accepted_at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        proposal::Event::Declined { by, reason } => (
            event_types::PROPOSAL_DECLINED,
            pb::ProposalDeclined { proposal_id: id, organization_id: by.to_string(), reason: reason.clone() }
                .encode_to_vec(),
        ),
        proposal::Event::Closed { reason } => (
            event_types::PROPOSAL_CLOSED,
            pb::ProposalClosed { proposal_id: id, reason: reason.clone() }.encode_to_vec(),
        ),
        proposal::Event::Concluded { deal_ids } => (
            event_types::PROPOSAL_CONCLUDED,
            pb::ProposalConcluded {
                proposal_id: id,
                deal_ids: deal_ids.iter().map(Uuid::to_string).collect(),
            }
            .encode_to_vec(),
        ),
    }
}

/// The proposal event of a stored type and payload of the current shape.
pub fn decode_proposal_event(event_type: &str, payload: &[u8]) -> Result<proposal::Event, String> {
    let malformed = |error: prost::DecodeError| format!("{event_type}: {error}");
    let invalid = |error: FieldError| format!("{event_type}: {error}");
    match event_type {
        event_types::MATCH_PROPOSED => {
            let event = pb::MatchProposed::decode(payload).map_err(malformed)?;
            let proposal = event.proposal.ok_or_else(|| format!("{event_type}: proposal: is required"))?;
            let proposal =
                proposal_from_stored(proposal).map_err(|error| invalid(error.under("proposal")))?;
            Ok(proposal::Event::Proposed(Box::new(proposal)))
        }
        event_types::PROPOSAL_ACCEPTED => {
            let event = pb::ProposalAccepted::decode(payload).map_err(malformed)?;
            Ok(proposal::Event::Accepted {
                by: id(&event.organization_id, "organization_id").map_err(invalid)?,
                at_ms: event
                    .accepted_at
                    .as_ref()
                    .map(|at| ms_from_timestamp(at, "accepted_at"))
                    .transpose()
                    .map_err(invalid)?
                    .unwrap_or(0),
            })
        }
        event_types::PROPOSAL_DECLINED => {
            let event = pb::ProposalDeclined::decode(payload).map_err(malformed)?;
            Ok(proposal::Event::Declined {
                by: id(&event.organization_id, "organization_id").map_err(invalid)?,
                reason: event.reason,
            })
        }
        event_types::PROPOSAL_CLOSED => {
            let event = pb::ProposalClosed::decode(payload).map_err(malformed)?;
            Ok(proposal::Event::Closed { reason: event.reason })
        }
        event_types::PROPOSAL_CONCLUDED => {
            let event = pb::ProposalConcluded::decode(payload).map_err(malformed)?;
            let deal_ids = event
                .deal_ids
                .iter()
                .map(|deal| id(deal, "deal_ids"))
                .collect::<Result<_, _>>()
                .map_err(invalid)?;
            Ok(proposal::Event::Concluded { deal_ids })
        }
        other => Err(format!("{other} is not a proposal event")),
    }
}

/// The proposal event `recorded` holds, whatever shape it was written in.
pub fn decode_recorded_proposal(recorded: &RecordedEvent) -> Result<proposal::Event, String> {
    let stored = symbiose_contract::upcast(upcasters::UPCASTERS, Stored::of(recorded))?;
    decode_proposal_event(stored.event_type, &stored.payload)
}

/// Folds the deal event `recorded` into `deals`, as logistics and settlement keep them
/// ([`deal::fold`]).
pub fn fold_recorded_deal(deals: &mut HashMap<Uuid, Deal>, recorded: &RecordedEvent) -> Result<(), String> {
    let id =
        recorded.stream.aggregate_id().ok_or_else(|| format!("{}: not a deal's stream", recorded.stream))?;
    deal::fold(deals, id, &decode_recorded_deal(recorded)?);
    Ok(())
}

/// The deal event `recorded` holds, whatever shape it was written in.
pub fn decode_recorded_deal(recorded: &RecordedEvent) -> Result<deal::Event, String> {
    let stored = symbiose_contract::upcast(upcasters::UPCASTERS, Stored::of(recorded))?;
    decode_deal_event(stored.event_type, &stored.payload)
}

#[cfg(test)]
mod tests {
    use symbiose_domain::lot::LegalStatus;
    use symbiose_domain::{Country, Currency, GeoPoint, MaterialFamily, Money, Quantity, Unit};

    use super::*;

    fn a_deal() -> Deal {
        let place = |latitude, longitude, country| Place {
            point: GeoPoint::new(latitude, longitude).expect("a point"),
            country,
        };
        Deal {
            id: Uuid::now_v7(),
            proposal_id: Uuid::now_v7(),
            offer_id: Uuid::now_v7(),
            request_id: Uuid::now_v7(),
            seller: Uuid::now_v7(),
            buyer: Uuid::now_v7(),
            family: MaterialFamily::Pallets,
            waste_code: Some(WasteCode::parse("15 01 03").expect("a code")),
            legal_status: LegalStatus::Waste,
            quantity: Quantity::new(40_000, Unit::Pallet, false).expect("a quantity"),
            price_per_unit: Money::new(350, Currency::Eur).expect("a price"),
            pickup: place(48.5734, 7.7521, Country::Fr),
            delivery: place(48.5722, 7.8157, Country::De),
            distance_km: 4.7,
            documents: vec![RequiredDocument::AnnexVii],
            agreed_at_ms: 1_780_000_000_000,
            status: DealStatus::Agreed,
        }
    }

    #[test]
    fn a_deal_agreed_before_the_split_decodes_as_one_written_now() {
        // Before the contracts, `DealAgreed` held the API's `Deal`, with its state and version.
        let deal = a_deal();
        let (event_type, payload) = encode_deal_event(deal.id, &deal::Event::Agreed(Box::new(deal.clone())));
        let stored = pb::DealAgreed::decode(payload.as_slice()).expect("decodes").deal.expect("a deal");
        let api = pb::Deal::decode(stored.encode_to_vec().as_slice()).expect("the same fields by number");
        assert_eq!(api.deal_id, deal.id.to_string());
        assert_eq!(api.distance_km.to_bits(), 4.7_f64.to_bits());
        let old = pb::Deal { state: pb::DealState::Agreed.into(), version: 0, ..api };
        let old_payload = {
            #[derive(Clone, PartialEq, prost::Message)]
            struct OldDealAgreed {
                #[prost(message, optional, tag = "1")]
                deal: Option<pb::Deal>,
            }
            OldDealAgreed { deal: Some(old) }.encode_to_vec()
        };
        assert_ne!(old_payload, payload, "the old form carries the API's state");
        assert_eq!(
            decode_deal_event(event_type, &old_payload),
            Ok(deal::Event::Agreed(Box::new(deal.clone()))),
        );
        assert_eq!(decode_deal_event(event_type, &payload), Ok(deal::Event::Agreed(Box::new(deal))));
        let cancelled = deal::Event::Cancelled {
            by: Uuid::now_v7(),
            reason: "no truck".to_owned(),
            at_ms: 1_780_000_100_000,
        };
        let (event_type, payload) = encode_deal_event(Uuid::now_v7(), &cancelled);
        assert_eq!(decode_deal_event(event_type, &payload), Ok(cancelled));
        assert_eq!(
            decode_deal_event("symbiose.matching.v1.Nothing", &[]),
            Err("symbiose.matching.v1.Nothing is not a deal event".to_owned())
        );
    }
}
