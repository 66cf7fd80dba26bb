//! `SettlementService` through gRPC: a cross-border pallet deal paid through escrow (held when
//! agreed, paid out for the accepted part at delivery, the rest released), its invoice
//! (intra-EU exempt, numbered), the statement; an escrow refused for want of funds; a
//! cancellation that voids the escrow.

use std::time::{Duration, Instant};

use symbiose_proto::common::v1 as common;
use symbiose_proto::logistics::v1 as logistics;
use symbiose_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use symbiose_proto::matching::v1 as matching;
use symbiose_proto::matching::v1::matching_service_client::MatchingServiceClient;
use symbiose_proto::settlement::v1 as settlement;
use symbiose_proto::settlement::v1::settlement_service_client::SettlementServiceClient;
use symbiose_tests::fixtures::{self, Member, member};
use symbiose_tests::{AuthedChannel, TestServer};
use tonic::Code;
use tonic_types::StatusExt as _;

type Settlement = SettlementServiceClient<AuthedChannel>;

/// Longest wait for the settler to act on a fact.
const SETTLE_WAIT: Duration = Duration::from_secs(20);

async fn settlement(server: &TestServer, token: &str) -> Settlement {
    SettlementServiceClient::new(server.authed(token).await.expect("channel"))
}

fn eur(minor: i64) -> common::Money {
    common::Money { amount_minor: minor, currency_code: "EUR".into() }
}

async fn deposit(server: &TestServer, organization: &str, minor: i64) {
    fixtures::deposit(server, organization, minor).await.expect("a deposit");
}

/// The transfers of `deal`, polled (with a bound) until `done` says they are what is awaited.
async fn transfers_until(
    client: &mut Settlement,
    deal: &str,
    done: impl Fn(&settlement::ListDealTransfersResponse) -> bool,
) -> settlement::ListDealTransfersResponse {
    let deadline = Instant::now() + SETTLE_WAIT;
    loop {
        let listed = client
            .list_deal_transfers(settlement::ListDealTransfersRequest {
                deal_id: deal.into(),
                min_position: 0,
                ..Default::default()
            })
            .await
            .expect("transfers")
            .into_inner();
        if done(&listed) {
            return listed;
        }
        assert!(Instant::now() < deadline, "the settler did not act on deal {deal}: {listed:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn available(client: &mut Settlement) -> (i64, i64, i64) {
    let balances = client
        .get_balances(settlement::GetBalancesRequest { organization_id: String::new(), min_position: 0 })
        .await
        .expect("balances")
        .into_inner()
        .balances;
    let eur = balances.iter().find(|balance| balance.currency_code == "EUR").cloned().unwrap_or_default();
    (eur.posted_minor, eur.pending_debits_minor, eur.available_minor)
}

fn state(transfer: &settlement::Transfer) -> settlement::TransferState {
    settlement::TransferState::try_from(transfer.state).expect("a state")
}

/// Moves `deal` from booking to the receiver's acceptance of `accepted` of its 40 pallets.
async fn deliver(server: &TestServer, buyer: &Member, carrier: &Member, deal: &str, accepted: i64) {
    let shipment = deliver_unconfirmed(server, buyer, carrier, deal, accepted).await;
    confirm(server, buyer, shipment).await;
}

/// Moves `deal` from booking to its delivery of `accepted` of its 40 pallets, once its escrow
/// is held (a pickup waits for it); the shipment.
pub(crate) async fn deliver_unconfirmed(
    server: &TestServer,
    buyer: &Member,
    carrier: &Member,
    deal: &str,
    accepted: i64,
) -> String {
    let shipment = book(server, buyer, deal).await;
    fixtures::escrow_held(server, &buyer.token, deal).await.expect("the payment held");
    pickup(server, carrier, &shipment).await.expect("picked up");
    let mut carrier_side = LogisticsServiceClient::new(server.authed(&carrier.token).await.expect("channel"));
    carrier_side
        .report_delivery(logistics::ReportDeliveryRequest {
            request_id: String::new(),
            shipment_id: shipment.clone(),
            received: Some(fixtures::pallets(40)),
            accepted: Some(fixtures::pallets(accepted)),
            refused: (accepted < 40).then(|| fixtures::pallets(40 - accepted)),
            refusal_reason: if accepted < 40 { "broken boards".into() } else { String::new() },
            pallets: None,
        })
        .await
        .expect("delivered");
    shipment
}

/// The carrier reports the pickup of all 40 pallets of `shipment`.
async fn pickup(
    server: &TestServer,
    carrier: &Member,
    shipment: &str,
) -> Result<tonic::Response<logistics::ReportPickupResponse>, tonic::Status> {
    LogisticsServiceClient::new(server.authed(&carrier.token).await.expect("channel"))
        .report_pickup(logistics::ReportPickupRequest {
            request_id: String::new(),
            shipment_id: shipment.into(),
            quantity: Some(fixtures::pallets(40)),
            pallets: None,
        })
        .await
}

/// The buyer books the first quote of `deal`'s transport; the shipment.
async fn book(server: &TestServer, buyer: &Member, deal: &str) -> String {
    let mut buyer_side = LogisticsServiceClient::new(server.authed(&buyer.token).await.expect("channel"));
    let deadline = Instant::now() + SETTLE_WAIT;
    let quote = loop {
        let listed = buyer_side
            .list_quotes(logistics::ListQuotesRequest {
                deal_id: deal.into(),
                min_position: 0,
                ..Default::default()
            })
            .await;
        // Logistics may not have read the deal yet: not found is "not yet", as no quote is.
        let quotes = match listed {
            Ok(listed) => listed.into_inner().quotes,
            Err(status) if status.code() == Code::NotFound => Vec::new(),
            Err(status) => panic!("quotes: {status:?}"),
        };
        if let Some(quote) = quotes.into_iter().next() {
            break quote;
        }
        assert!(Instant::now() < deadline, "no quote");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    buyer_side
        .book_shipment(logistics::BookShipmentRequest {
            request_id: String::new(),
            deal_id: deal.into(),
            quote_id: quote.quote_id,
            prior_notification_number: String::new(),
        })
        .await
        .expect("booked")
        .into_inner()
        .shipment
        .expect("a shipment")
        .shipment_id
}

async fn confirm(server: &TestServer, buyer: &Member, shipment: String) {
    LogisticsServiceClient::new(server.authed(&buyer.token).await.expect("channel"))
        .confirm_acceptance(logistics::ConfirmAcceptanceRequest {
            request_id: String::new(),
            shipment_id: shipment,
        })
        .await
        .expect("accepted");
}

/// The producer in Strasbourg, the buyer in Kehl, and a carrier in Strasbourg with its profile.
pub(crate) async fn parties(server: &TestServer) -> (Member, Member, Member) {
    let seller = fixtures::strasbourg_producer(server).await.expect("seller");
    let buyer = fixtures::kehl_buyer(server).await.expect("buyer");
    let carrier = fixtures::rhine_carrier(server).await.expect("carrier");
    (seller, buyer, carrier)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_border_deal_is_paid_through_escrow_and_invoiced() {
    let server = TestServer::start().await.expect("server");
    let (seller, buyer, carrier) = parties(&server).await;
    deposit(&server, &buyer.organization_id, 50_000).await;

    // Agreed: 40 pallets at 3.50 EUR: net 140.00, the 2% fee 2.80, no VAT (intra-EU, the buyer
    // has a VAT number): 142.80 held.
    let deal = fixtures::pallet_deal(&server, &seller, &buyer).await.expect("a deal");
    let mut buyer_money = settlement(&server, &buyer.token).await;
    let held = transfers_until(&mut buyer_money, &deal.deal_id, |listed| !listed.transfers.is_empty()).await;
    assert_eq!(held.transfers.len(), 1, "{held:?}");
    assert_eq!(state(&held.transfers[0]), settlement::TransferState::Pending);
    assert_eq!(held.transfers[0].amount, Some(eur(14_280)));
    assert_eq!(available(&mut buyer_money).await, (50_000, 14_280, 35_720));

    // Delivered: 38 of 40 accepted: 133.00 to the seller, 2.66 of fee, 7.14 back to the buyer.
    deliver(&server, &buyer, &carrier, &deal.deal_id, 38).await;
    let settled =
        transfers_until(&mut buyer_money, &deal.deal_id, |listed| listed.transfers.len() >= 3).await;
    let hold = &settled.transfers[0];
    assert_eq!(state(hold), settlement::TransferState::PartlyPosted);
    assert_eq!(hold.posted, Some(eur(13_566)));
    let paid: Vec<(String, i64)> = settled.transfers[1..]
        .iter()
        .map(|transfer| {
            (transfer.code.clone(), transfer.amount.as_ref().map_or(0, |amount| amount.amount_minor))
        })
        .collect();
    assert_eq!(paid, [("settlement".to_owned(), 13_300), ("fee".to_owned(), 266)]);
    assert_eq!(available(&mut buyer_money).await, (50_000 - 13_566, 0, 50_000 - 13_566));
    let mut seller_money = settlement(&server, &seller.token).await;
    assert_eq!(available(&mut seller_money).await, (13_300, 0, 13_300));
    let platform = settlement(&server, &server.operator_token)
        .await
        .get_balances(settlement::GetBalancesRequest::default())
        .await
        .expect("the platform's balances")
        .into_inner()
        .balances;
    let platform = |account: &str| {
        platform.iter().find(|balance| balance.account == account).map(|balance| balance.posted_minor)
    };
    assert_eq!(platform("fees:EUR"), Some(266));
    assert_eq!(platform("escrow:EUR"), Some(0));
    assert_eq!(platform("external:EUR"), Some(-50_000), "every ledger sums to zero");

    // The seller's statement shows the settlement.
    let statement = seller_money
        .get_statement(settlement::GetStatementRequest { currency_code: "EUR".into(), ..Default::default() })
        .await
        .expect("a statement")
        .into_inner();
    assert_eq!(statement.lines.len(), 1);
    assert_eq!(
        (statement.lines[0].code.as_str(), statement.lines[0].amount_minor, statement.lines[0].balance_minor),
        ("settlement", 13_300, 13_300)
    );

    // The invoice: the seller's first of the year, exempt intra-EU supply with both VAT numbers.
    let invoice = fixtures::first_invoice(&server, &seller.token).await.expect("an invoice");
    let year = invoice.issue_date[..4].to_owned();
    assert_eq!(invoice.number, format!("FR-{year}-000001"));
    assert_eq!(invoice.vat_regime, "intra_eu_exempt");
    assert_eq!(invoice.net_total, Some(eur(13_300)));
    assert_eq!(invoice.vat, Some(eur(0)));
    assert_eq!(invoice.gross_total, Some(eur(13_300)));
    assert!(invoice.mentions.iter().any(|mention| mention.contains("262 ter")), "{:?}", invoice.mentions);
    assert_eq!(invoice.customer.as_ref().map(|customer| customer.vat_number.as_str()), Some("DE136695976"));
    let shown = buyer_money
        .get_invoice(settlement::GetInvoiceRequest {
            invoice_id: invoice.invoice_id.clone(),
            min_position: 0,
        })
        .await
        .expect("the buyer's copy")
        .into_inner();
    assert!(shown.text.contains(&invoice.number) && shown.text.contains("133.00"), "{}", shown.text);
    let hidden = settlement(&server, &carrier.token)
        .await
        .get_invoice(settlement::GetInvoiceRequest { invoice_id: invoice.invoice_id, min_position: 0 })
        .await
        .expect_err("not the carrier's");
    assert_eq!(hidden.code(), Code::NotFound);
    server.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfunded_escrow_is_refused_and_a_cancelled_deal_is_voided() {
    let server = TestServer::start().await.expect("server");
    let seller = fixtures::strasbourg_producer(&server).await.expect("seller");
    let funded = fixtures::kehl_buyer(&server).await.expect("a funded buyer");
    let unfunded = member(
        &server,
        "Recyclage Lorrain SARL",
        common::Country::France,
        &fixtures::siren(4_001),
        &[common::Role::Buyer],
        "Haguenau",
    )
    .await
    .expect("an unfunded buyer");
    let carrier = fixtures::rhine_carrier(&server).await.expect("carrier");
    deposit(&server, &funded.organization_id, 50_000).await;

    let deal = fixtures::pallet_deal(&server, &seller, &unfunded).await.expect("a deal");
    let mut unfunded_money = settlement(&server, &unfunded.token).await;
    let refused =
        transfers_until(&mut unfunded_money, &deal.deal_id, |listed| !listed.escrow_refused.is_empty()).await;
    assert!(refused.transfers.is_empty());
    assert!(refused.escrow_refused.contains("available"), "{}", refused.escrow_refused);

    // Until a deposit covers it, the deal waits for its payment and its material stays put.
    let shipment = book(&server, &unfunded, &deal.deal_id).await;
    let status = pickup(&server, &carrier, &shipment).await.expect_err("not funded yet");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains(&deal.deal_id) && status.message().contains("not funded"),
        "{}",
        status.message()
    );
    // The deposit funds it: the payment is held without anyone asking again, and the pickup
    // goes through.
    deposit(&server, &unfunded.organization_id, 20_000).await;
    // The hold is two appends (the ledger's, then the escrow's): wait for both, as a backend
    // with a longer round trip (PostgreSQL) shows the first alone for longer.
    let held = transfers_until(&mut unfunded_money, &deal.deal_id, |listed| {
        !listed.transfers.is_empty() && listed.escrow_refused.is_empty()
    })
    .await;
    assert_eq!(held.transfers.len(), 1, "held once: {held:?}");
    assert_eq!(state(&held.transfers[0]), settlement::TransferState::Pending);
    assert!(held.escrow_refused.is_empty(), "no longer waiting: {}", held.escrow_refused);
    let amount = held.transfers[0].amount.as_ref().expect("an amount").amount_minor;
    assert_eq!(available(&mut unfunded_money).await.2, 20_000 - amount);
    let deadline = Instant::now() + SETTLE_WAIT;
    while let Err(status) = pickup(&server, &carrier, &shipment).await {
        assert!(Instant::now() < deadline, "the pickup is still refused: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let deal = fixtures::pallet_deal(&server, &seller, &funded).await.expect("a deal");
    let mut funded_money = settlement(&server, &funded.token).await;
    transfers_until(&mut funded_money, &deal.deal_id, |listed| !listed.transfers.is_empty()).await;
    MatchingServiceClient::new(server.authed(&funded.token).await.expect("channel"))
        .cancel_deal(matching::CancelDealRequest {
            request_id: String::new(),
            deal_id: deal.deal_id.clone(),
            reason: "plans changed".into(),
        })
        .await
        .expect("cancelled");
    let voided = transfers_until(&mut funded_money, &deal.deal_id, |listed| {
        listed.transfers.first().is_some_and(|transfer| state(transfer) == settlement::TransferState::Voided)
    })
    .await;
    assert_eq!(voided.transfers.len(), 1);
    assert_eq!(available(&mut funded_money).await, (50_000, 0, 50_000));

    // Deposits are the operator's, and name a positive amount.
    let status = funded_money
        .record_deposit(settlement::RecordDepositRequest {
            request_id: String::new(),
            organization_id: funded.organization_id.clone(),
            amount: Some(eur(1_000)),
        })
        .await
        .expect_err("not the operator");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = settlement(&server, &server.operator_token)
        .await
        .record_deposit(settlement::RecordDepositRequest {
            request_id: String::new(),
            organization_id: funded.organization_id,
            amount: Some(eur(-5)),
        })
        .await
        .expect_err("a negative deposit");
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_have_no_gap_when_deliveries_are_accepted_at_once() {
    const DEALS: usize = 4;
    let server = TestServer::start().await.expect("server");
    let (seller, buyer, carrier) = parties(&server).await;
    deposit(&server, &buyer.organization_id, 100_000).await;
    let mut shipments = Vec::new();
    for _ in 0..DEALS {
        let deal = fixtures::pallet_deal(&server, &seller, &buyer).await.expect("a deal");
        shipments.push(deliver_unconfirmed(&server, &buyer, &carrier, &deal.deal_id, 40).await);
    }
    // Every delivery accepted at once: the settler issues their invoices one after the other,
    // each the next number of the seller's sequence.
    let mut confirmations = Vec::new();
    for shipment in shipments {
        let channel = server.authed(&buyer.token).await.expect("channel");
        confirmations.push(tokio::spawn(async move {
            LogisticsServiceClient::new(channel)
                .confirm_acceptance(logistics::ConfirmAcceptanceRequest {
                    request_id: String::new(),
                    shipment_id: shipment,
                })
                .await
                .map(|_| ())
        }));
    }
    for confirmation in confirmations {
        confirmation.await.expect("the task").expect("accepted");
    }
    let mut seller_money = settlement(&server, &seller.token).await;
    let deadline = Instant::now() + SETTLE_WAIT;
    let numbers = loop {
        let invoices = seller_money
            .list_invoices(settlement::ListInvoicesRequest::default())
            .await
            .expect("invoices")
            .into_inner()
            .invoices;
        if invoices.len() == DEALS {
            let mut numbers: Vec<String> = invoices.into_iter().map(|invoice| invoice.number).collect();
            numbers.sort();
            break numbers;
        }
        assert!(Instant::now() < deadline, "{} invoices of {DEALS}", invoices.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let year = &numbers[0][3..7];
    let expected: Vec<String> = (1..=DEALS).map(|number| format!("FR-{year}-{number:06}")).collect();
    assert_eq!(numbers, expected);
    server.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deals_transfers_are_listed_page_by_page() {
    let server = TestServer::start().await.expect("server");
    let (seller, buyer, carrier) = parties(&server).await;
    deposit(&server, &buyer.organization_id, 50_000).await;
    let deal = fixtures::pallet_deal(&server, &seller, &buyer).await.expect("a deal");
    deliver(&server, &buyer, &carrier, &deal.deal_id, 38).await;
    let mut buyer_money = settlement(&server, &buyer.token).await;
    // The hold, the settlement and the fee (no VAT transfer: the supply is intra-EU exempt).
    let all = transfers_until(&mut buyer_money, &deal.deal_id, |listed| listed.transfers.len() >= 3).await;
    assert_eq!(all.transfers.len(), 3, "{all:?}");
    assert!(all.next_page_token.is_empty(), "the default page holds them all: {all:?}");

    for (page_size, pages_expected) in [(1, 3), (2, 2)] {
        let (paged, pages) = fixtures::read_pages(page_size, |page_token| {
            let (mut client, deal_id) = (buyer_money.clone(), deal.deal_id.clone());
            async move {
                let request =
                    settlement::ListDealTransfersRequest { deal_id, min_position: 0, page_size, page_token };
                let page = client.list_deal_transfers(request).await.expect("a page").into_inner();
                (page.transfers, page.next_page_token)
            }
        })
        .await;
        assert_eq!(pages, pages_expected, "pages of {page_size}");
        assert_eq!(paged, all.transfers, "pages of {page_size}");
    }

    // Bad page input is refused naming its field: over the largest page (100), a token this
    // service did not issue, and one it could have issued but for another list.
    let cases = [
        (101, "not a token".to_owned(), "page_size"),
        (0, "not a token".to_owned(), "page_token"),
        (0, symbiose_kit::page::encode_token("no index"), "page_token"),
    ];
    for (page_size, page_token, expected) in cases {
        let status = buyer_money
            .list_deal_transfers(settlement::ListDealTransfersRequest {
                deal_id: deal.deal_id.clone(),
                min_position: 0,
                page_size,
                page_token,
            })
            .await
            .expect_err(expected);
        assert_eq!(status.code(), Code::InvalidArgument, "{expected}: {status:?}");
        let field = status.get_details_bad_request().map(|bad| bad.field_violations[0].field.clone());
        assert_eq!(field.as_deref(), Some(expected), "{status:?}");
    }
    server.stop().await.expect("stop");
}
