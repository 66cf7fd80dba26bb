//! A request_id names one request: sent again with the same request it has one effect and the
//! same answer; sent again with another request it is refused with FAILED_PRECONDITION naming
//! `request_id`, never answered with the first request's result, and nothing changes.

use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::logistics::v1 as logistics;
use symbiose_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use symbiose_proto::settlement::v1 as settlement;
use symbiose_proto::settlement::v1::settlement_service_client::SettlementServiceClient;
use symbiose_tests::TestServer;
use symbiose_tests::fixtures::{self, member, pallet_terms, pallets};
use tonic::Code;

#[track_caller]
fn refused_naming_request_id(status: &tonic::Status) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().starts_with("request_id:"), "{}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_sent_again_with_another_request_is_refused_everywhere() {
    let server = TestServer::start().await.expect("server");
    let producer = fixtures::strasbourg_producer(&server).await.expect("producer");

    // Listings: the same creation twice is one listing; other terms under its id are refused.
    let mut listings = ListingServiceClient::new(server.authed(&producer.token).await.expect("channel"));
    let create = |terms: pb::ListingTerms| pb::CreateListingRequest {
        request_id: "create-pallets-1".into(),
        terms: Some(terms),
    };
    let terms = pallet_terms(pb::ListingSide::Offer, &producer.site_id, 40, 350);
    let first = listings.create_listing(create(terms.clone())).await.expect("created").into_inner();
    let again = listings.create_listing(create(terms.clone())).await.expect("the same again").into_inner();
    assert_eq!((again.listing_id.as_str(), again.version), (first.listing_id.as_str(), first.version));
    let other = pb::ListingTerms { quantity: Some(pallets(30)), ..terms };
    let status = listings.create_listing(create(other)).await.expect_err("other terms, same id");
    refused_naming_request_id(&status);
    let shown = listings
        .get_listing(pb::GetListingRequest { listing_id: first.listing_id.clone() })
        .await
        .expect("the listing")
        .into_inner();
    assert_eq!(shown.version, first.version, "nothing appended");
    let quantity = shown.listing.and_then(|listing| listing.terms).and_then(|terms| terms.quantity);
    assert_eq!(quantity.map(|quantity| quantity.amount_milli), Some(40_000));

    // Settlement: a deposit repeated moves the money once; another amount under its id is
    // refused and moves nothing.
    let mut operator = SettlementServiceClient::new(server.operator().await.expect("channel"));
    let deposit = |minor: i64| settlement::RecordDepositRequest {
        request_id: "bank-2026-12-02-001".into(),
        organization_id: producer.organization_id.clone(),
        amount: Some(common::Money { amount_minor: minor, currency_code: "EUR".into() }),
    };
    let first = operator.record_deposit(deposit(10_000)).await.expect("deposited").into_inner();
    let again = operator.record_deposit(deposit(10_000)).await.expect("the same again").into_inner();
    let available = |response: &settlement::RecordDepositResponse| {
        response.balance.as_ref().map(|balance| balance.available_minor)
    };
    assert_eq!((available(&first), available(&again)), (Some(10_000), Some(10_000)), "moved once");
    assert_eq!(again, first, "the same answer");
    let status = operator.record_deposit(deposit(20_000)).await.expect_err("another amount, same id");
    refused_naming_request_id(&status);
    let balances = SettlementServiceClient::new(server.authed(&producer.token).await.expect("channel"))
        .get_balances(settlement::GetBalancesRequest::default())
        .await
        .expect("balances")
        .into_inner()
        .balances;
    assert_eq!(balances.iter().map(|balance| balance.available_minor).collect::<Vec<_>>(), [10_000]);

    // Logistics: a carrier profile registered under an id; another profile under it is refused.
    let carrier = member(
        &server,
        "Transports de l'Ill SARL",
        common::Country::France,
        &fixtures::siren(3_002),
        &[common::Role::Carrier],
        "Strasbourg",
    )
    .await
    .expect("carrier");
    let profile = |radius_km: u32| fixtures::carrier_profile(radius_km).expect("a profile");
    let mut logistics_client =
        LogisticsServiceClient::new(server.authed(&carrier.token).await.expect("channel"));
    let register = |radius_km: u32| logistics::RegisterCarrierRequest {
        request_id: "profile-1".into(),
        profile: Some(profile(radius_km)),
    };
    let first = logistics_client.register_carrier(register(100)).await.expect("registered").into_inner();
    let again = logistics_client.register_carrier(register(100)).await.expect("the same again").into_inner();
    assert_eq!(again.version, first.version, "applied once");
    let status =
        logistics_client.register_carrier(register(300)).await.expect_err("another profile, same id");
    refused_naming_request_id(&status);
    server.stop().await.expect("stop");
}
