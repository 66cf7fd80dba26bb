//! The command-line client of matching: find matches for a listing, answer proposals, and
//! follow deals.

use clap::Subcommand;
use symbiose_proto::common::v1 as common;
use symbiose_proto::matching::v1 as pb;
use symbiose_proto::matching::v1::matching_service_client::MatchingServiceClient;

use crate::cli::{Authed, Output, status_error};

#[derive(Debug, Subcommand)]
pub enum MatchCommand {
    /// The best counterparts of one of your listings, now.
    Find {
        listing: String,
        /// At most 20.
        #[arg(long, default_value_t = 5)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProposalCommand {
    /// The proposals naming your listings (one of them with --listing), newest first.
    List {
        #[arg(long)]
        listing: Option<String>,
    },
    /// Accept a proposal for your side; the last acceptance makes the deal.
    Accept { proposal: String },
    /// Decline a proposal.
    Decline {
        proposal: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DealCommand {
    /// Your deals, newest first.
    List,
    /// One deal.
    Show { deal: String },
    /// Cancel a deal before pickup: the reservation on the offer is released.
    Cancel {
        deal: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

pub(crate) fn quantity(quantity: Option<&common::Quantity>) -> String {
    let Some(quantity) = quantity else { return "-".to_owned() };
    let unit = common::Unit::try_from(quantity.unit)
        .map_or("?", |unit| unit.as_str_name().trim_start_matches("UNIT_"))
        .to_lowercase();
    format!("{} {unit}", decimal(quantity.amount_milli, 3))
}

pub(crate) fn money(money: Option<&common::Money>) -> String {
    money
        .map_or("-".to_owned(), |money| format!("{} {}", decimal(money.amount_minor, 2), money.currency_code))
}

/// `amount` with `digits` decimals, trailing zeros of a quantity dropped.
fn decimal(amount: i64, digits: u32) -> String {
    let scale = 10_i64.pow(digits);
    let sign = if amount < 0 { "-" } else { "" };
    let (units, fraction) = (amount.unsigned_abs() / scale as u64, amount.unsigned_abs() % scale as u64);
    let fraction = format!("{fraction:0width$}", width = digits as usize);
    let fraction = if digits == 2 { fraction.as_str() } else { fraction.trim_end_matches('0') };
    if fraction.is_empty() { format!("{sign}{units}") } else { format!("{sign}{units}.{fraction}") }
}

fn documents(documents: &[i32]) -> String {
    let names: Vec<&str> = documents
        .iter()
        .map(|document| match pb::RequiredDocument::try_from(*document) {
            Ok(pb::RequiredDocument::AnnexVii) => "annex-vii",
            Ok(pb::RequiredDocument::PriorNotification) => "prior-notification",
            _ => "?",
        })
        .collect();
    if names.is_empty() { "none".to_owned() } else { names.join(",") }
}

fn proposal_state(state: i32) -> &'static str {
    match pb::ProposalState::try_from(state) {
        Ok(pb::ProposalState::Open) => "open",
        Ok(pb::ProposalState::Concluded) => "concluded",
        Ok(pb::ProposalState::Declined) => "declined",
        Ok(pb::ProposalState::Unavailable) => "unavailable",
        _ => "?",
    }
}

fn print_proposal(proposal: &pb::Proposal) {
    let score = proposal.score.unwrap_or_default();
    println!(
        "proposal {}  {}  request {}  score {:.3}{}",
        proposal.proposal_id,
        proposal_state(proposal.state),
        proposal.request_id,
        score.total,
        if proposal.consolidated { "  consolidated" } else { "" }
    );
    for line in &proposal.lines {
        println!(
            "  offer {}  {}  at {}  {:.1} km  documents: {}",
            line.offer_id,
            quantity(line.quantity.as_ref()),
            money(line.price_per_unit.as_ref()),
            line.distance_km,
            documents(&line.required_documents)
        );
    }
    if !proposal.accepted_by.is_empty() {
        println!("  accepted by: {}", proposal.accepted_by.join(", "));
    }
    if !proposal.reason.is_empty() {
        println!("  reason: {}", proposal.reason);
    }
}

fn print_deal(deal: &pb::Deal) {
    let state = match pb::DealState::try_from(deal.state) {
        Ok(pb::DealState::Agreed) => "agreed",
        Ok(pb::DealState::Cancelled) => "cancelled",
        _ => "?",
    };
    println!("deal {}  {state}", deal.deal_id);
    println!("  seller {}  buyer {}", deal.seller_organization_id, deal.buyer_organization_id);
    println!(
        "  {} at {} = {}  over {:.1} km",
        quantity(deal.quantity.as_ref()),
        money(deal.price_per_unit.as_ref()),
        money(deal.total.as_ref()),
        deal.distance_km
    );
    println!("  documents: {}", documents(&deal.required_documents));
    if !deal.cancel_reason.is_empty() {
        println!("  cancelled: {}", deal.cancel_reason);
    }
}

pub async fn match_command(channel: Authed, command: MatchCommand, output: Output) -> anyhow::Result<bool> {
    let MatchCommand::Find { listing, limit } = command;
    let mut client = MatchingServiceClient::new(channel);
    let request = pb::FindMatchesRequest { listing_id: listing, limit, min_position: 0 };
    let found = client.find_matches(request).await.map_err(status_error)?.into_inner();
    if output.json(&found)? {
        return Ok(true);
    }
    for found in &found.matches {
        let score = found.score.unwrap_or_default();
        let counterpart = found.counterpart.clone().unwrap_or_default();
        println!(
            "{:7.1} km  score {:.3} (distance {:.2}, price {:.2}, quantity {:.2}, timing {:.2}, {:.1} kg CO2e)  {}  {}  {}{}",
            found.distance_km,
            score.total,
            score.distance,
            score.price,
            score.quantity,
            score.timing,
            score.co2_kg,
            counterpart.listing_id,
            quantity(found.quantity.as_ref()),
            money(counterpart.price_per_unit.as_ref()),
            if found.cross_border {
                format!("  cross-border: {}", documents(&found.required_documents))
            } else {
                String::new()
            }
        );
    }
    if let Some(consolidation) = &found.consolidation {
        println!(
            "consolidated pickup: {} from {} offers within {:.1} km of each other, {:.1} km away",
            quantity(consolidation.total.as_ref()),
            consolidation.offers.len(),
            consolidation.pickup_radius_km,
            consolidation.distance_km
        );
    }
    println!("({} matches)", found.matches.len());
    Ok(true)
}

pub async fn proposal_command(
    channel: Authed,
    command: ProposalCommand,
    output: Output,
) -> anyhow::Result<bool> {
    let mut client = MatchingServiceClient::new(channel);
    match command {
        ProposalCommand::List { listing } => {
            let request =
                pb::ListProposalsRequest { listing_id: listing.unwrap_or_default(), ..Default::default() };
            let listed = client.list_proposals(request).await.map_err(status_error)?.into_inner();
            if output.json(&listed)? {
                return Ok(true);
            }
            listed.proposals.iter().for_each(print_proposal);
            println!("({} proposals)", listed.proposals.len());
        }
        ProposalCommand::Accept { proposal } => {
            let request = pb::AcceptProposalRequest { request_id: String::new(), proposal_id: proposal };
            let accepted = client.accept_proposal(request).await.map_err(status_error)?.into_inner();
            if let Some(proposal) = &accepted.proposal {
                print_proposal(proposal);
            }
            accepted.deals.iter().for_each(print_deal);
        }
        ProposalCommand::Decline { proposal, reason } => {
            let request =
                pb::DeclineProposalRequest { request_id: String::new(), proposal_id: proposal, reason };
            let declined = client.decline_proposal(request).await.map_err(status_error)?.into_inner();
            if let Some(proposal) = &declined.proposal {
                print_proposal(proposal);
            }
        }
    }
    Ok(true)
}

pub async fn deal_command(channel: Authed, command: DealCommand, output: Output) -> anyhow::Result<bool> {
    let mut client = MatchingServiceClient::new(channel);
    match command {
        DealCommand::List => {
            let listed =
                client.list_deals(pb::ListDealsRequest::default()).await.map_err(status_error)?.into_inner();
            if output.json(&listed)? {
                return Ok(true);
            }
            listed.deals.iter().for_each(print_deal);
            println!("({} deals)", listed.deals.len());
        }
        DealCommand::Show { deal } => {
            let request = pb::GetDealRequest { deal_id: deal, min_position: 0 };
            let shown = client.get_deal(request).await.map_err(status_error)?.into_inner();
            if output.json(&shown)? {
                return Ok(true);
            }
            if let Some(deal) = &shown.deal {
                print_deal(deal);
            }
        }
        DealCommand::Cancel { deal, reason } => {
            let request = pb::CancelDealRequest { request_id: String::new(), deal_id: deal, reason };
            let cancelled = client.cancel_deal(request).await.map_err(status_error)?.into_inner();
            if let Some(deal) = &cancelled.deal {
                print_deal(deal);
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn amounts_print_as_decimals() {
        assert_eq!(decimal(40_000, 3), "40");
        assert_eq!(decimal(12_500, 3), "12.5");
        assert_eq!(decimal(14_000, 2), "140.00");
        assert_eq!(decimal(-1_205, 2), "-12.05");
    }
}
