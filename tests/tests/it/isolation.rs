//! Tenant isolation: a stranger (an organization of the marketplace with every ordinary role,
//! party to nothing) calls every read and write of settlement, logistics, matching and listings
//! on the objects of a cross-border deal, at each step of its life where the call would do
//! something for a party. Each call is refused, PERMISSION_DENIED or NOT_FOUND (where existence
//! must not leak), and each object reads back unchanged by its owner.

use std::time::{Duration, Instant};

use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::logistics::v1 as logistics;
use symbiose_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use symbiose_proto::matching::v1 as matching;
use symbiose_proto::matching::v1::matching_service_client::MatchingServiceClient;
use symbiose_proto::settlement::v1 as settlement;
use symbiose_proto::settlement::v1::settlement_service_client::SettlementServiceClient;
use symbiose_tests::fixtures::{self, Member, member, pallet_terms, publish};
use symbiose_tests::{AuthedChannel, TestServer};
use tonic::{Code, Response, Status};

/// Longest wait for a service to react to a fact: a quote, a hold, a payout, an invoice.
const REACTION_WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_reads_nothing_and_changes_nothing_of_a_cross_border_deal() {
    let server = TestServer::start().await.expect("server");
    let seller = fixtures::strasbourg_producer(&server).await.expect("seller");
    let buyer = fixtures::kehl_buyer(&server).await.expect("buyer");
    let carrier = fixtures::rhine_carrier(&server).await.expect("carrier");
    // Every ordinary role, but no carrier profile: it is quoted for no transport.
    let stranger = member(
        &server,
        "Recyclage Lorrain SARL",
        common::Country::France,
        &fixtures::siren(5_001),
        &[common::Role::Producer, common::Role::Buyer, common::Role::Carrier],
        "Haguenau",
    )
    .await
    .expect("a stranger");
    fixtures::deposit(&server, &buyer.organization_id, 50_000).await.expect("a deposit");
    let deal = fixtures::pallet_deal(&server, &seller, &buyer).await.expect("a deal");
    let deal_id = deal.deal_id.clone();
    fixtures::escrow_held(&server, &buyer.token, &deal_id).await.expect("the payment held");
    let mut them = Clients::of(&server, &stranger).await;
    let mut seller_side = Clients::of(&server, &seller).await;
    let mut buyer_side = Clients::of(&server, &buyer).await;
    let mut carrier_side = Clients::of(&server, &carrier).await;

    // Agreed and held, not booked: the deal could still be cancelled, its quote booked, its
    // reservation released.
    let agreed = deal_seen(&mut seller_side.matching, &deal_id).await;
    let quote = first_quote(&mut buyer_side.logistics, &deal_id).await;
    let quotes = buyer_side.logistics.list_quotes(list_quotes(&deal_id)).await.expect("quotes").into_inner();
    let buyer_money = Money::of(&mut buyer_side.settlement, &deal_id).await;
    let offer = listing(&mut seller_side.listings, &deal.offer_id).await;
    let request = listing(&mut buyer_side.listings, &deal.request_id).await;
    refused("GetDeal", them.matching.get_deal(get_deal(&deal_id)).await);
    refused("CancelDeal", them.matching.cancel_deal(cancel_deal(&deal_id)).await);
    let listed = them.matching.list_deals(matching::ListDealsRequest::default()).await.expect("its deals");
    assert!(listed.into_inner().deals.is_empty(), "ListDeals shows a stranger another's deal");
    refused("ListQuotes", them.logistics.list_quotes(list_quotes(&deal_id)).await);
    refused("BookShipment", them.logistics.book_shipment(book(&deal_id, &quote.quote_id)).await);
    refused("ListDealTransfers", them.settlement.list_deal_transfers(transfers(&deal_id)).await);
    for organization in [&buyer.organization_id, &seller.organization_id] {
        refused("GetBalances of another", them.settlement.get_balances(balances_of(organization)).await);
        refused("GetStatement of another", them.settlement.get_statement(statement_of(organization)).await);
    }
    refused("GetStatement of the escrow", them.settlement.get_statement(statement_of("escrow:EUR")).await);
    refused(
        "PayForPallets from another",
        them.settlement.pay_for_pallets(pay(&buyer.organization_id, &stranger.organization_id)).await,
    );
    refused(
        "ReleaseReservation of another's offer",
        them.listings
            .release_reservation(pb::ReleaseReservationRequest {
                request_id: String::new(),
                listing_id: deal.offer_id.clone(),
                reservation_id: deal.reservation_id.clone(),
            })
            .await,
    );
    assert_eq!(deal_seen(&mut seller_side.matching, &deal_id).await, agreed, "the deal changed");
    let quotes_after = buyer_side.logistics.list_quotes(list_quotes(&deal_id)).await.expect("quotes");
    assert_eq!(quotes_after.into_inner(), quotes, "the quotes changed");
    assert_eq!(Money::of(&mut buyer_side.settlement, &deal_id).await, buyer_money, "the buyer's money moved");
    assert_eq!(listing(&mut seller_side.listings, &deal.offer_id).await, offer, "the offer changed");
    assert_eq!(listing(&mut buyer_side.listings, &deal.request_id).await, request, "the request changed");

    // Booked: the stranger neither sees the shipment nor reports its pickup. The buyer books
    // after the stranger's attempt: a shipment the stranger had booked would refuse it.
    let shipment_id = buyer_side
        .logistics
        .book_shipment(book(&deal_id, &quote.quote_id))
        .await
        .expect("booked by the buyer")
        .into_inner()
        .shipment
        .expect("a shipment")
        .shipment_id;
    let booked = shipment(&mut buyer_side.logistics, &shipment_id).await;
    refused("BookShipment again", them.logistics.book_shipment(book(&deal_id, &quote.quote_id)).await);
    refused("GetShipment", them.logistics.get_shipment(get_shipment(&shipment_id)).await);
    refused("GetAnnexVii", them.logistics.get_annex_vii(annex(&shipment_id)).await);
    refused("ReportPickup", them.logistics.report_pickup(pickup(&shipment_id)).await);
    refused("ConfirmAcceptance", them.logistics.confirm_acceptance(confirm(&shipment_id)).await);
    assert_eq!(shipment(&mut buyer_side.logistics, &shipment_id).await, booked, "the booking changed");
    carrier_side.logistics.report_pickup(pickup(&shipment_id)).await.expect("picked up by the carrier");

    // Picked up: the stranger reports neither the border crossing nor the delivery.
    let picked_up = shipment(&mut buyer_side.logistics, &shipment_id).await;
    refused("ReportBorderCrossing", them.logistics.report_border_crossing(crossing(&shipment_id)).await);
    refused("ReportDelivery", them.logistics.report_delivery(delivery(&shipment_id)).await);
    refused("CancelDeal after the pickup", them.matching.cancel_deal(cancel_deal(&deal_id)).await);
    assert_eq!(shipment(&mut buyer_side.logistics, &shipment_id).await, picked_up, "the pickup changed");
    carrier_side.logistics.report_border_crossing(crossing(&shipment_id)).await.expect("crossed");
    carrier_side.logistics.report_delivery(delivery(&shipment_id)).await.expect("delivered");

    // Delivered: the stranger does not confirm the acceptance in the buyer's place.
    let delivered = shipment(&mut buyer_side.logistics, &shipment_id).await;
    refused("ConfirmAcceptance", them.logistics.confirm_acceptance(confirm(&shipment_id)).await);
    refused("ReportDelivery again", them.logistics.report_delivery(delivery(&shipment_id)).await);
    assert_eq!(shipment(&mut buyer_side.logistics, &shipment_id).await, delivered, "the delivery changed");
    buyer_side.logistics.confirm_acceptance(confirm(&shipment_id)).await.expect("accepted by the buyer");

    // Closed, paid out and invoiced: the stranger reads none of the money or the documents.
    transfers_until(&mut buyer_side.settlement, &deal_id, 3).await;
    let invoice = fixtures::first_invoice(&server, &seller.token).await.expect("an invoice");
    let shown =
        seller_side.settlement.get_invoice(get_invoice(&invoice.invoice_id)).await.expect("the invoice");
    let shown = shown.into_inner();
    let closed = shipment(&mut buyer_side.logistics, &shipment_id).await;
    let buyer_money = Money::of(&mut buyer_side.settlement, &deal_id).await;
    let seller_money = Money::of(&mut seller_side.settlement, &deal_id).await;
    buyer_side.logistics.get_annex_vii(annex(&shipment_id)).await.expect("the buyer's Annex VII");
    refused("GetInvoice", them.settlement.get_invoice(get_invoice(&invoice.invoice_id)).await);
    let listed = them.settlement.list_invoices(settlement::ListInvoicesRequest::default()).await;
    assert!(listed.expect("its invoices").into_inner().invoices.is_empty(), "ListInvoices shows another's");
    refused("ListDealTransfers", them.settlement.list_deal_transfers(transfers(&deal_id)).await);
    for organization in [&buyer.organization_id, &seller.organization_id] {
        refused("GetBalances of another", them.settlement.get_balances(balances_of(organization)).await);
        refused("GetStatement of another", them.settlement.get_statement(statement_of(organization)).await);
    }
    refused(
        "PayForPallets from another",
        them.settlement.pay_for_pallets(pay(&seller.organization_id, &stranger.organization_id)).await,
    );
    refused("GetShipment", them.logistics.get_shipment(get_shipment(&shipment_id)).await);
    refused("GetAnnexVii", them.logistics.get_annex_vii(annex(&shipment_id)).await);
    refused("ConfirmAcceptance", them.logistics.confirm_acceptance(confirm(&shipment_id)).await);
    let pallets = them
        .logistics
        .get_pallet_balances(logistics::GetPalletBalancesRequest { min_position: 0 })
        .await
        .expect("its pallet balances");
    assert!(pallets.into_inner().balances.is_empty(), "GetPalletBalances shows another's");
    let shown_after =
        seller_side.settlement.get_invoice(get_invoice(&invoice.invoice_id)).await.expect("the invoice");
    assert_eq!(shown_after.into_inner(), shown, "the invoice changed");
    assert_eq!(shipment(&mut buyer_side.logistics, &shipment_id).await, closed, "the shipment changed");
    assert_eq!(Money::of(&mut buyer_side.settlement, &deal_id).await, buyer_money, "the buyer's money moved");
    assert_eq!(
        Money::of(&mut seller_side.settlement, &deal_id).await,
        seller_money,
        "the seller's money moved"
    );

    // Matching and listings: an open proposal of a second pair, the concluded one of the deal,
    // and a draft never published.
    let (offer_id, _) =
        publish(&server, &seller.token, pallet_terms(pb::ListingSide::Offer, &seller.site_id, 20, 350))
            .await
            .expect("a second offer");
    let (request_id, _) =
        publish(&server, &buyer.token, pallet_terms(pb::ListingSide::Request, &buyer.site_id, 20, 400))
            .await
            .expect("a second request");
    let open = fixtures::first_proposal(&server, &buyer.token, &request_id).await.expect("a proposal");
    let draft_id = seller_side
        .listings
        .create_listing(pb::CreateListingRequest {
            request_id: String::new(),
            terms: Some(pallet_terms(pb::ListingSide::Offer, &seller.site_id, 10, 350)),
        })
        .await
        .expect("a draft")
        .into_inner()
        .listing_id;
    let proposals =
        [(open.proposal_id.clone(), request_id.clone()), (deal.proposal_id.clone(), deal.request_id.clone())];
    let mut proposals_before = Vec::new();
    for (proposal_id, listing_id) in &proposals {
        proposals_before.push(proposal(&mut buyer_side.matching, listing_id, proposal_id).await);
    }
    let owned = [
        (seller_side.listings.clone(), offer_id.clone()),
        (buyer_side.listings.clone(), request_id.clone()),
        (seller_side.listings.clone(), draft_id.clone()),
    ];
    let mut listings_before = Vec::new();
    for (mut owner, listing_id) in owned.clone() {
        listings_before.push(listing(&mut owner, &listing_id).await);
    }
    for listing_id in [&offer_id, &request_id, &draft_id] {
        refused("FindMatches", them.matching.find_matches(find_matches(listing_id)).await);
        // Proposals are listed by party: naming another's listing shows none of its proposals.
        let named = them.matching.list_proposals(list_proposals(listing_id)).await;
        if let Ok(named) = named {
            let named = named.into_inner().proposals;
            assert!(named.is_empty(), "ListProposals shows a stranger another's: {named:?}");
        } else {
            refused("ListProposals", named);
        }
        refused("AmendListing", them.listings.amend_listing(amend(listing_id, &stranger.site_id)).await);
        refused("WithdrawListing", them.listings.withdraw_listing(withdraw(listing_id)).await);
    }
    refused("PublishListing", them.listings.publish_listing(publish_draft(&draft_id)).await);
    refused("GetListing of a draft", them.listings.get_listing(get_listing(&draft_id)).await);
    let all = them.matching.list_proposals(list_proposals("")).await.expect("its proposals");
    assert!(all.into_inner().proposals.is_empty(), "ListProposals shows a stranger another's");
    for (proposal_id, _) in &proposals {
        refused("AcceptProposal", them.matching.accept_proposal(accept(proposal_id)).await);
        refused("DeclineProposal", them.matching.decline_proposal(decline(proposal_id)).await);
    }
    for ((proposal_id, listing_id), before) in proposals.iter().zip(&proposals_before) {
        let after = proposal(&mut buyer_side.matching, listing_id, proposal_id).await;
        assert_eq!(&after, before, "proposal {proposal_id} changed");
    }
    for ((mut owner, listing_id), before) in owned.into_iter().zip(&listings_before) {
        assert_eq!(&listing(&mut owner, &listing_id).await, before, "listing {listing_id} changed");
    }
    server.stop().await.expect("stop");
}

/// Asserts that a stranger's call was refused, as PERMISSION_DENIED or NOT_FOUND.
#[track_caller]
fn refused<T: std::fmt::Debug>(call: &str, answer: Result<Response<T>, Status>) {
    match answer {
        Ok(response) => panic!("{call}: a stranger was answered {:?}", response.into_inner()),
        Err(status) => assert!(
            matches!(status.code(), Code::PermissionDenied | Code::NotFound),
            "{call}: refused with {status:?}, not PERMISSION_DENIED or NOT_FOUND"
        ),
    }
}

/// The four services as one organization calls them.
struct Clients {
    settlement: SettlementServiceClient<AuthedChannel>,
    logistics: LogisticsServiceClient<AuthedChannel>,
    matching: MatchingServiceClient<AuthedChannel>,
    listings: ListingServiceClient<AuthedChannel>,
}

impl Clients {
    async fn of(server: &TestServer, member: &Member) -> Clients {
        let channel = server.authed(&member.token).await.expect("channel");
        Clients {
            settlement: SettlementServiceClient::new(channel.clone()),
            logistics: LogisticsServiceClient::new(channel.clone()),
            matching: MatchingServiceClient::new(channel.clone()),
            listings: ListingServiceClient::new(channel),
        }
    }
}

/// What a party's money looks like around a deal: its balances, its statement, the deal's
/// transfers.
#[derive(Debug, PartialEq)]
struct Money {
    balances: Vec<settlement::Balance>,
    statement: Vec<settlement::StatementLine>,
    transfers: settlement::ListDealTransfersResponse,
}

impl Money {
    async fn of(client: &mut SettlementServiceClient<AuthedChannel>, deal: &str) -> Money {
        let balances = client.get_balances(balances_of("")).await.expect("balances").into_inner().balances;
        let statement = client.get_statement(statement_of("")).await.expect("a statement").into_inner().lines;
        let transfers = client.list_deal_transfers(transfers(deal)).await.expect("transfers").into_inner();
        Money { balances, statement, transfers }
    }
}

/// The deal as its party sees it once matching's view holds it, waited for with a bound.
async fn deal_seen(client: &mut MatchingServiceClient<AuthedChannel>, deal: &str) -> matching::Deal {
    let deadline = Instant::now() + REACTION_WAIT;
    loop {
        match client.get_deal(get_deal(deal)).await {
            Ok(answer) => return answer.into_inner().deal.expect("a deal"),
            Err(status) => assert!(Instant::now() < deadline, "deal {deal} is not seen: {status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The cheapest quote of `deal`'s transport, waited for with a bound.
async fn first_quote(client: &mut LogisticsServiceClient<AuthedChannel>, deal: &str) -> logistics::Quote {
    let deadline = Instant::now() + REACTION_WAIT;
    loop {
        let quotes = client.list_quotes(list_quotes(deal)).await.expect("quotes").into_inner().quotes;
        if let Some(quote) = quotes.into_iter().next() {
            return quote;
        }
        assert!(Instant::now() < deadline, "no quote for deal {deal}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (with a bound) until `deal` has at least `count` transfers: the payout is made.
async fn transfers_until(client: &mut SettlementServiceClient<AuthedChannel>, deal: &str, count: usize) {
    let deadline = Instant::now() + REACTION_WAIT;
    loop {
        let listed = client.list_deal_transfers(transfers(deal)).await.expect("transfers").into_inner();
        if listed.transfers.len() >= count {
            return;
        }
        assert!(Instant::now() < deadline, "the settler did not pay deal {deal} out: {listed:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn shipment(client: &mut LogisticsServiceClient<AuthedChannel>, id: &str) -> logistics::Shipment {
    client
        .get_shipment(get_shipment(id))
        .await
        .expect("the shipment")
        .into_inner()
        .shipment
        .expect("a shipment")
}

async fn listing(client: &mut ListingServiceClient<AuthedChannel>, id: &str) -> pb::GetListingResponse {
    client.get_listing(get_listing(id)).await.expect("the listing").into_inner()
}

/// Proposal `id`, as a party listing the proposals of its `listing` sees it.
async fn proposal(
    client: &mut MatchingServiceClient<AuthedChannel>,
    listing: &str,
    id: &str,
) -> matching::Proposal {
    let listed = client.list_proposals(list_proposals(listing)).await.expect("proposals").into_inner();
    listed.proposals.into_iter().find(|proposal| proposal.proposal_id == id).expect("the proposal")
}

fn get_deal(deal: &str) -> matching::GetDealRequest {
    matching::GetDealRequest { deal_id: deal.into(), min_position: 0 }
}

fn cancel_deal(deal: &str) -> matching::CancelDealRequest {
    matching::CancelDealRequest { request_id: String::new(), deal_id: deal.into(), reason: "mine now".into() }
}

fn find_matches(listing: &str) -> matching::FindMatchesRequest {
    matching::FindMatchesRequest { listing_id: listing.into(), limit: 0, min_position: 0 }
}

fn list_proposals(listing: &str) -> matching::ListProposalsRequest {
    matching::ListProposalsRequest { listing_id: listing.into(), ..Default::default() }
}

fn accept(proposal: &str) -> matching::AcceptProposalRequest {
    matching::AcceptProposalRequest { request_id: String::new(), proposal_id: proposal.into() }
}

fn decline(proposal: &str) -> matching::DeclineProposalRequest {
    matching::DeclineProposalRequest {
        request_id: String::new(),
        proposal_id: proposal.into(),
        reason: "not for you".into(),
    }
}

fn list_quotes(deal: &str) -> logistics::ListQuotesRequest {
    logistics::ListQuotesRequest { deal_id: deal.into(), min_position: 0, ..Default::default() }
}

fn book(deal: &str, quote: &str) -> logistics::BookShipmentRequest {
    logistics::BookShipmentRequest {
        request_id: String::new(),
        deal_id: deal.into(),
        quote_id: quote.into(),
        prior_notification_number: String::new(),
    }
}

fn get_shipment(shipment: &str) -> logistics::GetShipmentRequest {
    logistics::GetShipmentRequest { shipment_id: shipment.into(), min_position: 0 }
}

fn annex(shipment: &str) -> logistics::GetAnnexViiRequest {
    logistics::GetAnnexViiRequest { shipment_id: shipment.into(), min_position: 0, include_pdf: false }
}

/// All 40 pallets picked up.
fn pickup(shipment: &str) -> logistics::ReportPickupRequest {
    logistics::ReportPickupRequest {
        request_id: String::new(),
        shipment_id: shipment.into(),
        quantity: Some(fixtures::pallets(40)),
        pallets: None,
    }
}

/// Into Germany, now.
fn crossing(shipment: &str) -> logistics::ReportBorderCrossingRequest {
    logistics::ReportBorderCrossingRequest {
        request_id: String::new(),
        shipment_id: shipment.into(),
        country: common::Country::Germany.into(),
        at: None,
    }
}

/// All 40 pallets received and accepted.
fn delivery(shipment: &str) -> logistics::ReportDeliveryRequest {
    logistics::ReportDeliveryRequest {
        request_id: String::new(),
        shipment_id: shipment.into(),
        received: Some(fixtures::pallets(40)),
        accepted: Some(fixtures::pallets(40)),
        refused: None,
        refusal_reason: String::new(),
        pallets: None,
    }
}

fn confirm(shipment: &str) -> logistics::ConfirmAcceptanceRequest {
    logistics::ConfirmAcceptanceRequest { request_id: String::new(), shipment_id: shipment.into() }
}

fn transfers(deal: &str) -> settlement::ListDealTransfersRequest {
    settlement::ListDealTransfersRequest { deal_id: deal.into(), min_position: 0, ..Default::default() }
}

/// The balances of `organization` (empty: the caller's own).
fn balances_of(organization: &str) -> settlement::GetBalancesRequest {
    settlement::GetBalancesRequest { organization_id: organization.into(), min_position: 0 }
}

/// The EUR statement of `account` (empty: the caller's own).
fn statement_of(account: &str) -> settlement::GetStatementRequest {
    settlement::GetStatementRequest {
        currency_code: "EUR".into(),
        account: account.into(),
        ..Default::default()
    }
}

fn get_invoice(invoice: &str) -> settlement::GetInvoiceRequest {
    settlement::GetInvoiceRequest { invoice_id: invoice.into(), min_position: 0 }
}

/// 100.00 EUR from `debtor` to `creditor`, as if for pallets.
fn pay(debtor: &str, creditor: &str) -> settlement::PayForPalletsRequest {
    settlement::PayForPalletsRequest {
        settlement_id: uuid::Uuid::now_v7().to_string(),
        debtor_organization_id: debtor.into(),
        creditor_organization_id: creditor.into(),
        amount: Some(common::Money { amount_minor: 10_000, currency_code: "EUR".into() }),
    }
}

fn get_listing(listing: &str) -> pb::GetListingRequest {
    pb::GetListingRequest { listing_id: listing.into() }
}

/// New terms for `listing`: one pallet, free, at the stranger's `site`.
fn amend(listing: &str, site: &str) -> pb::AmendListingRequest {
    pb::AmendListingRequest {
        request_id: String::new(),
        listing_id: listing.into(),
        terms: Some(pallet_terms(pb::ListingSide::Offer, site, 1, 0)),
    }
}

fn withdraw(listing: &str) -> pb::WithdrawListingRequest {
    pb::WithdrawListingRequest { request_id: String::new(), listing_id: listing.into() }
}

fn publish_draft(listing: &str) -> pb::PublishListingRequest {
    pb::PublishListingRequest { request_id: String::new(), listing_id: listing.into() }
}
