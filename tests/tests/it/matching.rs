//! `MatchingService` through gRPC: a cross-border pallet deal from the automatic proposal to
//! the cancellation; the rules that keep pairs apart (distance, permits); many buyers racing
//! for one offer; bad requests.

use std::time::{Duration, Instant};

use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::matching::v1 as matching;
use symbiose_proto::matching::v1::matching_service_client::MatchingServiceClient;
use symbiose_tests::fixtures::{self, Member, member, pallet_terms, publish};
use symbiose_tests::{AuthedChannel, TestServer};
use tonic::Code;
use tonic_types::StatusExt;

type Matching = MatchingServiceClient<AuthedChannel>;

/// Longest wait for the proposer to propose after a publication.
const PROPOSAL_WAIT: Duration = Duration::from_secs(20);

async fn matching(server: &TestServer, token: &str) -> Matching {
    MatchingServiceClient::new(server.authed(token).await.expect("channel"))
}

async fn producer(server: &TestServer, town: &str) -> Member {
    member(
        server,
        "Palettes de l'Est SAS",
        common::Country::France,
        "73282932000074",
        &[common::Role::Producer],
        town,
    )
    .await
    .expect("producer")
}

/// The proposals naming `listing` that `member` sees, polled (with a bound) until there are
/// at least `count`: the proposer works after the publication, not within it.
async fn proposals_of(
    server: &TestServer,
    member: &Member,
    listing: &str,
    count: usize,
) -> Vec<matching::Proposal> {
    let mut client = matching(server, &member.token).await;
    let deadline = Instant::now() + PROPOSAL_WAIT;
    loop {
        let proposals = client
            .list_proposals(matching::ListProposalsRequest {
                listing_id: listing.into(),
                ..Default::default()
            })
            .await
            .expect("list proposals")
            .into_inner()
            .proposals;
        if proposals.len() >= count {
            return proposals;
        }
        assert!(
            Instant::now() < deadline,
            "{} proposals for {listing} after {PROPOSAL_WAIT:?}",
            proposals.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn accept(
    client: &mut Matching,
    proposal_id: &str,
) -> Result<matching::AcceptProposalResponse, tonic::Status> {
    client
        .accept_proposal(matching::AcceptProposalRequest {
            request_id: String::new(),
            proposal_id: proposal_id.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn available(server: &TestServer, token: &str, listing: &str) -> i64 {
    ListingServiceClient::new(server.authed(token).await.expect("channel"))
        .get_listing(pb::GetListingRequest { listing_id: listing.into() })
        .await
        .expect("listing")
        .into_inner()
        .listing
        .and_then(|listing| listing.available)
        .map_or(0, |quantity| quantity.amount_milli)
}

/// The ids of the listings `found` offers, best first.
fn counterparts(found: &matching::FindMatchesResponse) -> Vec<&str> {
    found
        .matches
        .iter()
        .filter_map(|found| found.counterpart.as_ref().map(|counterpart| counterpart.listing_id.as_str()))
        .collect()
}

fn field(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| bad.field_violations[0].field.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_border_pallet_deal_from_proposal_to_cancellation() {
    let server = TestServer::start().await.expect("server");
    let seller = producer(&server, "Strasbourg").await;
    let buyer = member(
        &server,
        "Kehler Palettenservice GmbH",
        common::Country::Germany,
        "DE136695976",
        &[common::Role::Buyer],
        "Kehl",
    )
    .await
    .expect("buyer");
    let (offer, _) =
        publish(&server, &seller.token, pallet_terms(pb::ListingSide::Offer, &seller.site_id, 40, 350))
            .await
            .expect("offer");
    let (request, published) =
        publish(&server, &buyer.token, pallet_terms(pb::ListingSide::Request, &buyer.site_id, 40, 400))
            .await
            .expect("request");

    // Asked on demand, the request's best match is the offer across the Rhine.
    let mut buyer_side = matching(&server, &buyer.token).await;
    let found = buyer_side
        .find_matches(matching::FindMatchesRequest {
            listing_id: request.clone(),
            limit: 5,
            min_position: published,
        })
        .await
        .expect("matches")
        .into_inner();
    let best = found.matches.first().expect("a match");
    assert_eq!(
        best.counterpart.as_ref().map(|counterpart| counterpart.listing_id.as_str()),
        Some(offer.as_str())
    );
    assert!(best.cross_border);
    assert!((4.0..6.0).contains(&best.distance_km), "Strasbourg to Kehl is about 5 km: {}", best.distance_km);
    assert_eq!(best.required_documents, [i32::from(matching::RequiredDocument::AnnexVii)]);
    let score = best.score.as_ref().expect("a score");
    assert!(score.distance > 0.95 && score.total > 0.0 && score.co2_kg > 0.0, "{score:?}");

    // Published, the request was proposed to both sides.
    let proposal = proposals_of(&server, &buyer, &request, 1).await.remove(0);
    let seller_view = proposals_of(&server, &seller, &offer, 1).await.remove(0);
    assert_eq!(seller_view.proposal_id, proposal.proposal_id);
    assert_eq!(proposal.state, i32::from(matching::ProposalState::Open));
    assert_eq!(proposal.lines.len(), 1);
    assert_eq!(proposal.lines[0].offer_id, offer);
    assert_eq!(proposal.lines[0].quantity.as_ref().map(|quantity| quantity.amount_milli), Some(40_000));

    // A stranger cannot answer it.
    let stranger = member(
        &server,
        "Recyclage Lorrain SARL",
        common::Country::France,
        &fixtures::siren(4_242),
        &[common::Role::Buyer],
        "Metz",
    )
    .await
    .expect("stranger");
    let refused = accept(&mut matching(&server, &stranger.token).await, &proposal.proposal_id)
        .await
        .expect_err("not a party");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // The seller accepts: nothing is reserved yet.
    let mut seller_side = matching(&server, &seller.token).await;
    let half = accept(&mut seller_side, &proposal.proposal_id).await.expect("seller accepts");
    assert!(half.deals.is_empty());
    assert_eq!(
        half.proposal.as_ref().map(|proposal| proposal.accepted_by.clone()),
        Some(vec![seller.organization_id.clone()])
    );
    assert_eq!(available(&server, &seller.token, &offer).await, 40_000);

    // The buyer accepts: the deal exists and the offer's 40 pallets are reserved.
    let concluded = accept(&mut buyer_side, &proposal.proposal_id).await.expect("buyer accepts");
    assert_eq!(
        concluded.proposal.as_ref().map(|proposal| proposal.state),
        Some(i32::from(matching::ProposalState::Concluded))
    );
    let deal = concluded.deals.first().expect("a deal").clone();
    assert_eq!(deal.seller_organization_id, seller.organization_id);
    assert_eq!(deal.buyer_organization_id, buyer.organization_id);
    assert_eq!(deal.quantity.as_ref().map(|quantity| quantity.amount_milli), Some(40_000));
    assert_eq!(
        deal.total.as_ref().map(|total| (total.amount_minor, total.currency_code.as_str())),
        Some((14_000, "EUR"))
    );
    assert_eq!(deal.pickup_country, i32::from(common::Country::France));
    assert_eq!(deal.delivery_country, i32::from(common::Country::Germany));
    assert_eq!(deal.required_documents, [i32::from(matching::RequiredDocument::AnnexVii)]);
    assert_eq!(available(&server, &seller.token, &offer).await, 0);
    // Accepting again changes nothing and shows the same deal.
    let again = accept(&mut buyer_side, &proposal.proposal_id).await.expect("accept again");
    assert_eq!(
        again.deals.iter().map(|deal| deal.deal_id.as_str()).collect::<Vec<_>>(),
        [deal.deal_id.as_str()]
    );

    // Both parties see it; a stranger learns nothing.
    let shown = seller_side
        .get_deal(matching::GetDealRequest {
            deal_id: deal.deal_id.clone(),
            min_position: concluded.position,
        })
        .await
        .expect("the seller's deal")
        .into_inner();
    assert_eq!(shown.deal.map(|deal| deal.deal_id), Some(deal.deal_id.clone()));
    let hidden = matching(&server, &stranger.token)
        .await
        .get_deal(matching::GetDealRequest {
            deal_id: deal.deal_id.clone(),
            min_position: concluded.position,
        })
        .await
        .expect_err("not a party");
    assert_eq!(hidden.code(), Code::NotFound);
    let listed = buyer_side
        .list_deals(matching::ListDealsRequest { min_position: concluded.position, ..Default::default() })
        .await
        .expect("deals")
        .into_inner();
    assert_eq!(
        listed.deals.iter().map(|deal| deal.deal_id.as_str()).collect::<Vec<_>>(),
        [deal.deal_id.as_str()]
    );

    // The buyer cancels before pickup: the reservation is released.
    let cancelled = buyer_side
        .cancel_deal(matching::CancelDealRequest {
            request_id: String::new(),
            deal_id: deal.deal_id.clone(),
            reason: "the truck is not free".into(),
        })
        .await
        .expect("cancelled")
        .into_inner();
    let cancelled_deal = cancelled.deal.expect("the deal");
    assert_eq!(cancelled_deal.state, i32::from(matching::DealState::Cancelled));
    assert_eq!(cancelled_deal.cancelled_by, buyer.organization_id);
    assert_eq!(available(&server, &seller.token, &offer).await, 40_000);
    server.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_too_far_apart_or_without_a_permit_are_not_matched() {
    let server = TestServer::start().await.expect("server");
    let seller = producer(&server, "Strasbourg").await;
    let reims = member(
        &server,
        "Champagne Emballages SAS",
        common::Country::France,
        &fixtures::siren(1_001),
        &[common::Role::Buyer],
        "Reims",
    )
    .await
    .expect("buyer in Reims");
    let (offer, _) =
        publish(&server, &seller.token, pallet_terms(pb::ListingSide::Offer, &seller.site_id, 40, 350))
            .await
            .expect("offer");
    let (request, position) =
        publish(&server, &reims.token, pallet_terms(pb::ListingSide::Request, &reims.site_id, 40, 400))
            .await
            .expect("request");
    // Strasbourg to Reims is about 282 km: beyond the default 200 km.
    let found = matching(&server, &reims.token)
        .await
        .find_matches(matching::FindMatchesRequest { listing_id: request, limit: 5, min_position: position })
        .await
        .expect("matches")
        .into_inner();
    assert!(found.matches.is_empty(), "{found:?}");
    // The same request reaching 300 km finds the offer: the answer above is the distance's.
    let reaching = pb::ListingTerms {
        max_distance_km: 300,
        ..pallet_terms(pb::ListingSide::Request, &reims.site_id, 40, 400)
    };
    let (request, position) = publish(&server, &reims.token, reaching).await.expect("a request to 300 km");
    let found = matching(&server, &reims.token)
        .await
        .find_matches(matching::FindMatchesRequest { listing_id: request, limit: 5, min_position: position })
        .await
        .expect("matches")
        .into_inner();
    assert_eq!(counterparts(&found), [offer.as_str()]);

    // A hazardous solvent offered in Strasbourg, asked for in Strasbourg by a recycler whose
    // permit does not cover it: the request itself is refused by listings; a request of the
    // same family without a code is never offered the hazardous lot.
    let solvent = pb::ListingTerms {
        family: common::MaterialFamily::Solvents.into(),
        waste_code: "14 06 03*".into(),
        description: "Spent solvent mixture".into(),
        quality: None,
        quantity: Some(common::Quantity {
            amount_milli: 2_000_000,
            unit: common::Unit::Litre.into(),
            basis: common::QuantityBasis::Estimated.into(),
        }),
        minimum_lot: None,
        ..pallet_terms(pb::ListingSide::Offer, &seller.site_id, 1, 10)
    };
    let (solvent_offer, _) =
        publish(&server, &seller.token, solvent.clone()).await.expect("a hazardous offer");
    // The same solvent as a by-product with no code needs no permit: it is offered.
    let by_product = pb::ListingTerms {
        waste_code: String::new(),
        legal_status: pb::LegalStatus::ByProduct.into(),
        ..solvent.clone()
    };
    let (by_product_offer, _) = publish(&server, &seller.token, by_product).await.expect("a by-product");
    let recycler = member(
        &server,
        "Solvants Recyclage SAS",
        common::Country::France,
        &fixtures::siren(1_002),
        &[common::Role::Recycler],
        "Strasbourg",
    )
    .await
    .expect("recycler");
    let any_solvent = pb::ListingTerms {
        side: pb::ListingSide::Request.into(),
        waste_code: String::new(),
        legal_status: pb::LegalStatus::ByProduct.into(),
        site_id: recycler.site_id.clone(),
        ..solvent
    };
    let (solvent_request, position) =
        publish(&server, &recycler.token, any_solvent).await.expect("a request");
    let found = matching(&server, &recycler.token)
        .await
        .find_matches(matching::FindMatchesRequest {
            listing_id: solvent_request,
            limit: 5,
            min_position: position,
        })
        .await
        .expect("matches")
        .into_inner();
    assert_eq!(
        counterparts(&found),
        [by_product_offer.as_str()],
        "the by-product only, no hazardous lot to a buyer without a permit ({solvent_offer})"
    );
    server.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_racing_for_one_offer_never_get_more_than_it_has() {
    const BUYERS: usize = 8;
    let server = TestServer::start().await.expect("server");
    let seller = producer(&server, "Strasbourg").await;
    // 10 pallets; each buyer asks for 4: two deals fit, the third would oversell.
    let (offer, _) =
        publish(&server, &seller.token, pallet_terms(pb::ListingSide::Offer, &seller.site_id, 10, 350))
            .await
            .expect("offer");
    let buyers = fixtures::strasbourg_buyers(&server, BUYERS, 2_000, 4).await.expect("buyers");
    // Each request's publication proposed the offer; the seller accepts every proposal.
    let mut seller_side = matching(&server, &seller.token).await;
    let mut proposals = Vec::new();
    for (buyer, request) in &buyers {
        let proposal = proposals_of(&server, buyer, request, 1).await.remove(0);
        accept(&mut seller_side, &proposal.proposal_id).await.expect("the seller accepts");
        proposals.push((buyer.clone(), proposal.proposal_id));
    }
    // Then every buyer accepts at once.
    let mut racing = Vec::new();
    for (buyer, proposal_id) in proposals {
        let mut client = matching(&server, &buyer.token).await;
        racing.push(tokio::spawn(async move { accept(&mut client, &proposal_id).await }));
    }
    let mut won = Vec::new();
    let mut lost = 0;
    for outcome in racing {
        match outcome.await.expect("the task") {
            Ok(concluded) => won.extend(concluded.deals),
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert!(status.message().contains("unavailable"), "{status:?}");
                lost += 1;
            }
        }
    }
    let reserved: i64 =
        won.iter().filter_map(|deal| deal.quantity.as_ref()).map(|quantity| quantity.amount_milli).sum();
    assert!(reserved <= 10_000, "deals for {reserved} milli-pallets out of 10 pallets");
    assert_eq!(won.len(), 2, "two lots of 4 fit in 10");
    assert_eq!(lost, BUYERS - 2, "every other buyer is told");
    assert_eq!(available(&server, &seller.token, &offer).await, 10_000 - reserved);
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn bad_matching_requests_are_refused_naming_the_field() {
    let server = TestServer::start().await.expect("server");
    let seller = producer(&server, "Strasbourg").await;
    let mut client = matching(&server, &seller.token).await;
    let status = client
        .find_matches(matching::FindMatchesRequest { listing_id: "not-an-id".into(), ..Default::default() })
        .await
        .expect_err("bad id");
    assert_eq!((status.code(), field(&status)), (Code::InvalidArgument, "listing_id".to_owned()));
    let (offer, _) =
        publish(&server, &seller.token, pallet_terms(pb::ListingSide::Offer, &seller.site_id, 10, 350))
            .await
            .expect("offer");
    let status = client
        .find_matches(matching::FindMatchesRequest { listing_id: offer, limit: 21, min_position: 0 })
        .await
        .expect_err("limit over the maximum");
    assert_eq!((status.code(), field(&status)), (Code::InvalidArgument, "limit".to_owned()));
    let status = client
        .list_proposals(matching::ListProposalsRequest { page_size: 101, ..Default::default() })
        .await
        .expect_err("page over the maximum");
    assert_eq!((status.code(), field(&status)), (Code::InvalidArgument, "page_size".to_owned()));
    let status = client
        .list_deals(matching::ListDealsRequest { page_token: "garbage".into(), ..Default::default() })
        .await
        .expect_err("bad token");
    assert_eq!((status.code(), field(&status)), (Code::InvalidArgument, "page_token".to_owned()));
    let status = accept(&mut client, "").await.expect_err("no proposal id");
    assert_eq!((status.code(), field(&status)), (Code::InvalidArgument, "proposal_id".to_owned()));
    let status = accept(&mut client, &uuid::Uuid::now_v7().to_string()).await.expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .cancel_deal(matching::CancelDealRequest {
            request_id: String::new(),
            deal_id: uuid::Uuid::now_v7().to_string(),
            reason: String::new(),
        })
        .await
        .expect_err("unknown deal");
    assert_eq!(status.code(), Code::NotFound);
    server.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_fully_served_leaves_the_catalog_and_gets_no_more_matches() {
    use symbiose_proto::catalog::v1 as catalog;
    use symbiose_proto::catalog::v1::catalog_service_client::CatalogServiceClient;

    let server = TestServer::start().await.expect("server");
    let seller = producer(&server, "Strasbourg").await;
    let buyer = fixtures::kehl_buyer(&server).await.expect("buyer");
    let deal = fixtures::pallet_deal(&server, &seller, &buyer).await.expect("a deal");
    let request = deal.request_id.clone();
    // The deal serves the whole request: it is reserved like an offer.
    assert_eq!(available(&server, &buyer.token, &request).await, 0, "40 of 40 served");

    // Gone from the catalog: the requests near Kehl no longer list it.
    let requests_near_kehl = || catalog::SearchCatalogRequest {
        near: Some(symbiose_domain::geo::place("Kehl").expect("a town").point.into()),
        radius_km: 50,
        side: pb::ListingSide::Request.into(),
        ..Default::default()
    };
    // Another buyer's request, published after the deal: once the catalog lists it, it has
    // seen the deal's reservation too (the catalog follows the log in order).
    let open = fixtures::strasbourg_buyers(&server, 1, 5_000, 10).await.expect("another buyer");
    let mut catalog_client = CatalogServiceClient::new(server.authed(&buyer.token).await.expect("channel"));
    let deadline = Instant::now() + PROPOSAL_WAIT;
    loop {
        let hits = catalog_client.search_catalog(requests_near_kehl()).await.expect("search").into_inner();
        let listed: Vec<&str> = hits.entries.iter().map(|entry| entry.listing_id.as_str()).collect();
        if listed == [open[0].1.as_str()] {
            break;
        }
        assert!(Instant::now() < deadline, "the catalog lists {listed:?}, not only the open request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A second offer that would fit finds the other open request, and not the one served.
    let (second, position) =
        publish(&server, &seller.token, pallet_terms(pb::ListingSide::Offer, &seller.site_id, 40, 300))
            .await
            .expect("a second offer");
    let found = matching(&server, &seller.token)
        .await
        .find_matches(matching::FindMatchesRequest { listing_id: second, limit: 20, min_position: position })
        .await
        .expect("matches")
        .into_inner();
    let counterparts = counterparts(&found);
    assert!(counterparts.contains(&open[0].1.as_str()), "the open request is matched: {counterparts:?}");
    assert!(!counterparts.contains(&request.as_str()), "the served request is not: {counterparts:?}");

    // Cancelled, the deal gives the request back: 40 asked again.
    matching(&server, &buyer.token)
        .await
        .cancel_deal(matching::CancelDealRequest {
            request_id: String::new(),
            deal_id: deal.deal_id.clone(),
            reason: "plans changed".into(),
        })
        .await
        .expect("cancelled");
    let deadline = Instant::now() + PROPOSAL_WAIT;
    while available(&server, &buyer.token, &request).await != 40_000 {
        assert!(Instant::now() < deadline, "the request was not released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await.expect("stop");
}
